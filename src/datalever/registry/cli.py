"""``datalever registry ...``: serve the consent registry, create accounts, issue tokens."""

from __future__ import annotations

import enum
import os
from pathlib import Path
from typing import Annotated

import typer

from datalever.console import console, exits_on_problems
from datalever.errors import DataleverError

ADMIN_TOKEN_ENV = "DATALEVER_REGISTRY_ADMIN_TOKEN"
URL_ENV = "DATALEVER_REGISTRY"
SECRET_ENV = "DATALEVER_REGISTRY_SECRET"

registry_app = typer.Typer(
    help="The consent registry: who reserved or allowed which works, served over HTTP.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
)


class LogLevel(enum.StrEnum):
    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"


UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="The registry: a SQLite file path or postgresql://USER@HOST/DBNAME. "
        "[default: registry.sqlite in the user data folder]",
        envvar="DATALEVER_REGISTRY",
    ),
]


def _open(url: str | None):
    from datalever.registry.registry import Registry

    try:
        return Registry(url)
    except OSError as e:  # its folder cannot be made: a file in the way, no permission
        raise DataleverError(
            f"Cannot open the registry {str(url)[:300]!r} ({e.strerror or e}).",
            "give a file path in a folder you can write to.",
        ) from None


def read_admin_token(path: Path | None) -> str | None:
    """The bootstrap admin secret from ``--admin-token-file`` or the environment, if any.
    A secret never appears on a command line, where any user's ``ps`` could read it."""
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise DataleverError(
                f"Cannot read the admin token file {str(path)!r}: {e.__class__.__name__}.",
                "give a readable text file holding only the token.",
            ) from None
    return os.environ.get(ADMIN_TOKEN_ENV) or None


@registry_app.command()
@exits_on_problems
def serve(
    url: UrlOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8750,
    admin_token_file: Annotated[
        Path | None,
        typer.Option(
            "--admin-token-file",
            help=f"A file holding the bootstrap admin token (or set {ADMIN_TOKEN_ENV}).",
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=64,
            help="Server processes on the port, each with a socket of its own (one core "
            "each); more than one needs DATALEVER_REGISTRY_SECRET (or _FILE) so that they "
            "share sessions and challenges.",
        ),
    ] = 1,
    log_level: Annotated[
        LogLevel, typer.Option(help="warning and above leave out the line per request.")
    ] = LogLevel.info,
) -> None:
    """Serve the registry's HTTP API (JSON under /v1; the schema at /openapi.json).
    DATALEVER_REGISTRY_RATE_LIMIT=off turns the per-token rate limit off (behind a limiter of
    your own)."""
    import uvicorn

    from datalever.registry.api import app_from_environment
    from datalever.registry.server import serve_processes

    registry = _open(url)
    admin_token = read_admin_token(admin_token_file)
    console.print(f"Serving the registry {registry.shown} on http://{host}:{port}/v1")
    if workers > 1 and not (os.environ.get(SECRET_ENV) or os.environ.get(f"{SECRET_ENV}_FILE")):
        registry.close()
        raise DataleverError(
            f"{workers} workers would each make up their own secret, so a web session or "
            "a domain challenge from one would fail on another.",
            f"set {SECRET_ENV} (a long random value) or {SECRET_ENV}_FILE.",
        )
    # Every server process opens the registry itself, from the environment.
    os.environ[URL_ENV] = str(registry.engine.url.render_as_string(hide_password=False))
    if admin_token is not None:
        os.environ[ADMIN_TOKEN_ENV] = admin_token
    registry.close()
    if workers > 1:
        serve_processes(host, port, workers, log_level.value)
        return
    uvicorn.run(app_from_environment(), host=host, port=port, log_level=log_level.value,
                server_header=False)  # fmt: skip


@registry_app.command()
@exits_on_problems
def account(
    name: Annotated[str, typer.Argument(help="The contributor's display name.")],
    url: UrlOpt = None,
) -> None:
    """Create a contributor account and print its id."""
    with _open(url) as registry:
        typer.echo(registry.create_account(name))


@registry_app.command()
@exits_on_problems
def token(
    scope: Annotated[str, typer.Argument(help="contributor, pipeline or admin.")],
    account_id: Annotated[
        int | None,
        typer.Option("--account", min=1, max=2**63 - 1, help="The account (contributor tokens)."),
    ] = None,
    url: UrlOpt = None,
) -> None:
    """Issue an API token and print it. It is shown only this once: store it now."""
    with _open(url) as registry:
        typer.echo(registry.issue_token(scope, account_id))  # plain, never wrapped
