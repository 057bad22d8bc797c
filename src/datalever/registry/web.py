"""The contributor's web page: sign in with a contributor token, register works, reserve or
allow purposes, and read the account's history. Plain server-rendered forms, no script.

The page runs inside the API's app (``create_app`` mounts it), so the app's rate limit covers
it; sign-in attempts also have a stricter bucket of their own, per client address.

A web session lives in one signed cookie (HMAC-SHA256 over a small JSON payload): the account
and the token's id, never the token itself. Every request re-checks that the token is still a
live contributor token of that account, so revoking the token ends its sessions. Each session
carries a random nonce; a form's CSRF token is an HMAC of that nonce, checked on every POST
before anything is read or written. The signing secret comes from the environment or a file,
never from code; without one a random secret is made at start-up and sessions end on restart.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException

from datalever.errors import DataleverError
from datalever.registry import schema as s
from datalever.registry.api import RateLimit, _RateLimiter
from datalever.registry.purposes import DESCRIPTIONS, PURPOSES
from datalever.registry.registry import Registry, RegistryStorageError

log = logging.getLogger("datalever.registry.web")

SECRET_ENV = "DATALEVER_REGISTRY_SECRET"
SECRET_FILE_ENV = "DATALEVER_REGISTRY_SECRET_FILE"
SECRET_MIN_LENGTH = 32
COOKIE = "datalever_session"
SIGNED_IN_SECONDS = 8 * 3600
ANONYMOUS_SECONDS = 3600
SIGN_IN_LIMIT = RateLimit(per_second=1 / 6, burst=10)
"""Sign-in attempts per client address: ten at once, then one every six seconds."""
MAX_FIELD = 4000
VALUES = ("reserved", "allowed")
_TEMPLATES = Path(__file__).parent / "templates"
DONE = {
    "work": "The work is registered.",
    "preference": "Your preference is recorded.",
    "signed-out": "You are signed out.",
}
"""Notices after a successful form, chosen by a fixed key: the URL never carries page text."""


# --- the secret --------------------------------------------------------------------------


def read_session_secret(environ: Mapping[str, str] | None = None) -> bytes | None:
    """The cookie-signing secret from ``DATALEVER_REGISTRY_SECRET`` or the file named by
    ``DATALEVER_REGISTRY_SECRET_FILE``; None if neither is set. Kept out of code and command
    lines, where it would leak into version control or ``ps``."""
    environ = os.environ if environ is None else environ
    text = environ.get(SECRET_ENV) or None
    where = SECRET_ENV
    path = environ.get(SECRET_FILE_ENV)
    if text is None and path:
        where = path
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise DataleverError(
                f"Cannot read the web session secret file {path!r}: {e.__class__.__name__}.",
                "give a readable text file holding only the secret.",
            ) from None
    if text is None:
        return None
    if len(text.strip()) < SECRET_MIN_LENGTH:
        raise DataleverError(
            f"The web session secret ({where}) is shorter than {SECRET_MIN_LENGTH} characters.",
            'use a long random one: python -c "import secrets; print(secrets.token_urlsafe())"',
        )
    return text.strip().encode()


# --- sessions ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WebSession:
    """What the signed cookie says: a nonce (the CSRF token's seed), its expiry and, once
    signed in, the account and the id of the token used."""

    nonce: str
    expires: int
    account_id: int | None = None
    token_id: int | None = None


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class WebState:
    """The page's keys, templates and sign-in limiter, held on ``app.state.web``."""

    session_key: bytes
    csrf_key: bytes
    templates: Environment
    css: str
    csp: str
    sign_ins: _RateLimiter
    now: Callable[[], float] = time.time

    def seal(self, session: WebSession) -> str:
        payload = _b64(
            json.dumps(
                [session.nonce, session.expires, session.account_id, session.token_id],
                separators=(",", ":"),
            ).encode()
        )
        mac = hmac.new(self.session_key, payload.encode(), hashlib.sha256).digest()
        return f"{payload}.{_b64(mac)}"

    def open(self, cookie: str | None) -> WebSession | None:
        """The session a cookie carries, or None if it is missing, forged or expired."""
        if not cookie or len(cookie) > 400 or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        expected = _b64(hmac.new(self.session_key, payload.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac.encode(), expected.encode()):
            return None
        try:
            nonce, expires, account_id, token_id = json.loads(_unb64(payload))
        except (ValueError, TypeError):
            return None
        session = WebSession(nonce, expires, account_id, token_id)
        if not isinstance(expires, int) or expires <= self.now():
            return None
        return session

    def new_session(self, account_id: int | None = None, token_id: int | None = None) -> WebSession:
        seconds = ANONYMOUS_SECONDS if account_id is None else SIGNED_IN_SECONDS
        return WebSession(
            secrets.token_urlsafe(16), int(self.now()) + seconds, account_id, token_id
        )

    def csrf(self, session: WebSession) -> str:
        return _b64(hmac.new(self.csrf_key, session.nonce.encode(), hashlib.sha256).digest())


def _web(request: Request) -> WebState:
    return request.app.state.web


def _set_cookie(request: Request, response: Response, session: WebSession) -> None:
    response.set_cookie(
        COOKIE,
        _web(request).seal(session),
        max_age=max(0, session.expires - int(_web(request).now())),
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )


def _token_is_live(registry: Registry, session: WebSession) -> bool:
    """Whether the session's token is still an unrevoked contributor token of its account."""
    t = s.api_tokens
    with registry._read("checking a web session") as conn:
        row = conn.execute(
            sa.select(t.c.scope, t.c.account_id, t.c.revoked_event_id).where(
                t.c.id == session.token_id
            )
        ).first()
    return (
        row is not None
        and row.scope == "contributor"
        and row.account_id == session.account_id
        and row.revoked_event_id is None
    )


def _signed_in(request: Request) -> WebSession | None:
    session = _web(request).open(request.cookies.get(COOKIE))
    if session is None or session.account_id is None:
        return None
    return session if _token_is_live(request.app.state.registry, session) else None


# --- answers -----------------------------------------------------------------------------


def _headers(request: Request) -> dict[str, str]:
    """No script may run, no other site may frame the page, no URL leaks onward."""
    return {
        "Content-Security-Policy": _web(request).csp,
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store",
    }


def _page(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    web = _web(request)
    html = web.templates.get_template(template).render(css=web.css, **context)
    return HTMLResponse(html, status_code=status, headers=_headers(request))


def _redirect(request: Request, to: str) -> RedirectResponse:
    return RedirectResponse(to, status_code=303, headers=_headers(request))


def _refuse(request: Request, status: int, problem: str, fix: str) -> Response:
    """A refusal as a page for a browser, as the API's ``{"problem", "fix"}`` for anything
    else (scripts and the API's own clients read that format)."""
    if "text/html" in request.headers.get("accept", ""):
        return _page(request, "error.html", status, problem={"problem": problem, "fix": fix})
    return JSONResponse({"problem": problem, "fix": fix}, status, _headers(request))


def _storage_failed(request: Request, e: RegistryStorageError) -> Response:
    # The database's own words may name hosts and files: they go to the log only.
    log.error("registry storage failed: %s", e, exc_info=e)
    return _refuse(
        request, 503, "The registry's database failed; nothing was changed.", "try again later."
    )


async def _form(request: Request) -> dict[str, str]:
    """The posted form's text fields (files and long values are dropped, never read into a
    page)."""
    try:
        form = await request.form(max_files=0, max_fields=20)
    except (StarletteHTTPException, MultiPartException, ValueError):
        return {}  # a malformed body is an empty form, which the CSRF check refuses
    return {k: v for k, v in form.items() if isinstance(v, str) and len(v) <= MAX_FIELD}


Form = Annotated[dict[str, str], Depends(_form)]


def _csrf_refusal(request: Request, session: WebSession | None, form: dict) -> Response | None:
    """A 403 unless the form carries this session's CSRF token."""
    if session is None:
        return _refuse(
            request,
            403,
            "Your browser sent no valid session cookie with the form.",
            "allow cookies for this site, reload the page and send the form again.",
        )
    sent = form.get("csrf", "")
    if not hmac.compare_digest(sent.encode(), _web(request).csrf(session).encode()):
        return _refuse(
            request,
            403,
            "The form's security token is missing or wrong (an old page, or a form sent "
            "from another site).",
            "reload the page and send the form again.",
        )
    return None


# --- the routes --------------------------------------------------------------------------

router = APIRouter(include_in_schema=False)


@router.get("/")
def root(request: Request) -> Response:
    """The registry's address opens the page."""
    return _redirect(request, "/web/")


@router.get("/web/")
def sign_in_form(request: Request, done: str | None = None) -> Response:
    """The sign-in form, with a fresh anonymous session for its CSRF token."""
    try:
        if _signed_in(request) is not None:
            return _redirect(request, "/web/account")
    except RegistryStorageError as e:
        return _storage_failed(request, e)
    return _sign_in_page(request, notice=DONE.get(done or ""))


def _sign_in_page(request: Request, status: int = 200, **context: Any) -> Response:
    web = _web(request)
    session = web.open(request.cookies.get(COOKIE))
    if session is None or session.account_id is not None:
        session = web.new_session()
    response = _page(request, "signin.html", status, csrf=web.csrf(session), **context)
    _set_cookie(request, response, session)
    return response


@router.post("/web/sign-in")
def sign_in(request: Request, form: Form) -> Response:
    """Trade a contributor token for a signed session cookie. Attempts are rate limited per
    client address, whatever token they carry."""
    web = _web(request)
    session = web.open(request.cookies.get(COOKIE))
    refused = _csrf_refusal(request, session, form)
    if refused is not None:
        return refused
    client = request.client.host if request.client else "unknown"
    wait = web.sign_ins._take(f"sign-in:{client}")
    if wait > 0:
        seconds = str(math.ceil(wait))
        response = _sign_in_page(
            request,
            429,
            problem={
                "problem": "Too many sign-in attempts from your address.",
                "fix": f"wait {seconds} s, then paste your token again.",
            },
        )
        response.headers["Retry-After"] = seconds
        return response
    token = form.get("token", "").strip()
    try:
        info = request.app.state.registry.verify_token(token) if token else None
    except RegistryStorageError as e:
        return _storage_failed(request, e)
    problem = None
    if not token:
        problem = {"problem": "No token was given.", "fix": "paste your contributor token."}
    elif info is None:
        problem = {
            "problem": "That token is unknown or revoked.",
            "fix": "paste the whole contributor token an admin gave you, or ask for a new one.",
        }
    elif info.scope != "contributor" or info.account_id is None:
        problem = {
            "problem": f"That is a token of scope {info.scope}: it cannot sign in to this page.",
            "fix": "sign in with a contributor token; pipeline and admin tokens are for the API.",
        }
    if problem is not None:
        return _sign_in_page(request, 422 if not token else 403, problem=problem)
    response = _redirect(request, "/web/account")
    # A new nonce on sign-in: a session (and CSRF token) seen before it is worth nothing.
    _set_cookie(request, response, web.new_session(info.account_id, info.token_id))
    return response


@router.get("/web/account")
def account_page(request: Request, done: str | None = None) -> Response:
    """The signed-in contributor's own account: works, preferences, forms and history."""
    try:
        session = _signed_in(request)
        if session is None:
            response = _redirect(request, "/web/")
            _clear_cookie(request, response)
            return response
        return _account_page(request, session, notice=DONE.get(done or ""))
    except RegistryStorageError as e:
        return _storage_failed(request, e)


def _account_page(
    request: Request, session: WebSession, status: int = 200, **context: Any
) -> Response:
    registry: Registry = request.app.state.registry
    assert session.account_id is not None
    account = registry.account(session.account_id)
    if account is None:  # an account is never deleted; answer as if signed out
        return _redirect(request, "/web/")
    history = [_describe(e) for e in reversed(registry.events(session.account_id))]
    return _page(
        request,
        "account.html",
        status,
        account=account,
        history=history,
        purposes=[(p, DESCRIPTIONS[p]) for p in PURPOSES],
        values=VALUES,
        csrf=_web(request).csrf(session),
        **context,
    )


def _describe(event: dict) -> dict[str, Any]:
    """One history row: the event's own fields and a sentence a contributor can read."""
    detail = json.loads(event["detail"]) if event.get("detail") else {}
    kind, work = event["kind"], detail.get("work")
    what = {
        "account_created": f"Account created ({detail.get('name', '')})",
        "work_registered": f"Registered {work}",
        "preference_set": f"{(event.get('value') or '').capitalize()} {event.get('purpose')} "
        f"for {work or 'all my works'}",
        "identity_added": f"Claimed {detail.get('kind')}:{detail.get('value')}",
        "identity_verified": f"Identity check ({detail.get('method')}): {event.get('value')}",
        "token_issued": f"A {event.get('value')} token was issued",
        "token_revoked": "A token was revoked",
    }.get(kind, kind)
    return {"id": event["id"], "at": event["at"], "kind": kind, "what": what}


def _change(
    request: Request, form: dict, done: str, action: Callable[[Registry, int], object]
) -> Response:
    """Check the session and CSRF token, apply ``action`` to the signed-in account, and
    redirect to the account page; a problem re-renders the page with the problem and fix."""
    try:
        session = _signed_in(request)
        refused = _csrf_refusal(request, session, form)
        if refused is not None:
            return refused
        assert session is not None and session.account_id is not None
        registry: Registry = request.app.state.registry
        try:
            action(registry, session.account_id)
        except RegistryStorageError:
            raise
        except DataleverError as e:
            return _account_page(
                request, session, 422, problem={"problem": e.problem, "fix": e.fix}, form=form
            )
        return _redirect(request, f"/web/account?done={done}")
    except RegistryStorageError as e:
        return _storage_failed(request, e)


@router.post("/web/works")
def register_work(request: Request, form: Form) -> Response:
    """Claim a work for the signed-in account (the id is checked by ``parse_work``)."""

    def action(registry: Registry, account_id: int) -> None:
        registry.register_work(account_id, form.get("work", "").strip())

    return _change(request, form, "work", action)


@router.post("/web/preferences")
def set_preference(request: Request, form: Form) -> Response:
    """Reserve or allow a purpose for one of the account's works, or for all of them."""

    def action(registry: Registry, account_id: int) -> None:
        purpose, value = form.get("purpose", ""), form.get("value", "")
        if purpose not in PURPOSES:
            raise DataleverError(
                f"Unknown purpose {purpose[:40]!r}.", f"choose one of {', '.join(PURPOSES)}."
            )
        if value not in VALUES:
            raise DataleverError(
                f"A preference is reserved or allowed, not {value[:40]!r}.",
                "choose reserved or allowed.",
            )
        work = form.get("work", "").strip() or None
        registry.set_preference(account_id, purpose, value, work)

    return _change(request, form, "preference", action)


@router.post("/web/sign-out")
def sign_out(request: Request, form: Form) -> Response:
    """End the session: the cookie is cleared (and it was never the token itself)."""
    session = _web(request).open(request.cookies.get(COOKIE))
    refused = _csrf_refusal(request, session, form)
    if refused is not None:
        return refused
    response = _redirect(request, "/web/?done=signed-out")
    _clear_cookie(request, response)
    return response


# --- mounting ----------------------------------------------------------------------------


def add_web_routes(
    app: FastAPI,
    *,
    secret: bytes | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Serve the contributor page from ``app``. ``secret`` signs session cookies; by default
    it is read from the environment or a file (``read_session_secret``)."""
    if secret is None:
        secret = read_session_secret()
    if secret is None:
        log.warning(
            "No %s or %s: web sessions are signed with a random secret and end when the "
            "registry restarts.",
            SECRET_ENV,
            SECRET_FILE_ENV,
        )
        secret = secrets.token_bytes(32)
    templates = Environment(
        loader=FileSystemLoader(_TEMPLATES),
        autoescape=select_autoescape(default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    css = templates.get_template("style.html").render()
    css_hash = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    app.state.web = WebState(
        session_key=hmac.new(secret, b"datalever web session", hashlib.sha256).digest(),
        csrf_key=hmac.new(secret, b"datalever web csrf", hashlib.sha256).digest(),
        templates=templates,
        css=css,
        csp=(
            f"default-src 'none'; style-src 'sha256-{css_hash}'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        sign_ins=_RateLimiter(None, SIGN_IN_LIMIT, clock),  # type: ignore[arg-type]
    )
    # One by one, so app.routes lists every page (include_router would nest them).
    for route in router.routes:
        assert isinstance(route, APIRoute)
        app.add_api_route(
            route.path, route.endpoint, methods=list(route.methods), include_in_schema=False
        )


__all__ = ["WebSession", "add_web_routes", "read_session_secret"]
