"""The ``datalever`` command line."""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from datalever.errors import DataleverError

app = typer.Typer(
    help="Measure data leverage: how much a collective of contributors can boost or harm a model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
data_app = typer.Typer(help="Obtain datasets and look at them.", no_args_is_help=True)
app.add_typer(data_app, name="data")

console = Console()
err_console = Console(stderr=True)


def friendly(command: Callable) -> Callable:
    """User-fixable problems print one paragraph and exit 2, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DataleverError as e:
            err_console.print(f"[bold red]Error:[/bold red] {e}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper


StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        help="Results store: a SQLite file path or a database URL.",
        envvar="DATALEVER_STORE",
    ),
]
DEFAULT_STORE = "datalever.sqlite"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class FitPath(StrEnum):
    auto = "auto"
    plain = "plain"


def _run_with_progress(spec, store, jobs: int, path: str, quiet: bool = False):
    from datalever.engine import run_spec

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet,
    )
    task = None

    def on_plan(pending: int, planned: int) -> None:
        nonlocal task
        done = planned - pending
        if done:
            err_console.print(f"{done} of {planned} scenarios already stored; resuming.")
        task = progress.add_task(f"{spec.name}", total=pending)

    def on_progress(finished: int, pending: int) -> None:
        progress.update(task, completed=finished)

    with progress:
        err_console.print(f"Loading {spec.data.dataset}…")
        report = run_spec(
            spec, store, jobs=jobs, path=path, on_plan=on_plan, on_progress=on_progress
        )
    if report.interrupted:
        err_console.print(
            f"[yellow]Interrupted after {report.n_computed} scenarios; every finished scenario "
            "is stored. Run the same command again to resume.[/yellow]"
        )
        raise typer.Exit(130)
    err_console.print(
        f"Run {report.run_id}: {report.n_computed} scenarios computed, "
        f"{report.n_already_done} reused, in {report.seconds:.1f} s."
    )
    return report


def _print_summary(
    store,
    run_id: str,
    fmt: Format,
    metric: str | None = None,
    group: str | None = None,
    confidence: float = 0.95,
) -> None:
    from datalever.analysis import summarise
    from datalever.metrics import parse_metric
    from datalever.report import render_summary, summary_records
    from datalever.spec import EVAL_GROUPS

    summary = summarise(store.results(run_id), confidence=confidence)
    if metric:
        summary = summary[summary["metric"] == parse_metric(metric).name]
    if group:
        if group not in EVAL_GROUPS:
            raise DataleverError(
                f"Unknown evaluation group {group!r}.", f"use one of: {', '.join(EVAL_GROUPS)}."
            )
        summary = summary[summary["eval_group"] == group]
    if fmt is Format.csv:
        sys.stdout.write(summary.to_csv(index=False))
    elif fmt is Format.json:
        sys.stdout.write(json.dumps(summary_records(summary), indent=2) + "\n")
    else:
        wide = Console(width=max(console.width, 140))
        render_summary(summary, wide, title=f"Run {run_id}", confidence=confidence)


def _print_answer(store, run_id: str, spec) -> None:
    """The answer line, when the spec asks a question."""
    stored = store.answer(run_id)  # what `ask` concluded, with its own stopping rule
    if stored is not None:
        console.print(f"[bold]{stored}[/bold]")
        return
    if spec.question is None:
        return
    from datalever.answer import answer_run

    answer = answer_run(store, run_id, spec, _n_users(spec))
    if answer is not None:
        console.print(f"[bold]{answer.text}[/bold]")


def _n_users(spec) -> int:
    from datalever.engine.runner import load_spec_data

    try:
        return load_spec_data(spec).n_contributors
    except DataleverError:
        return 0


def _print_curves(store, run_id: str) -> None:
    from datalever.analysis import summarise
    from datalever.report import render_curve

    summary = summarise(store.results(run_id))
    for metric in dict.fromkeys(summary["metric"]):
        render_curve(summary, console, metric)


@app.command()
@friendly
def demo(
    store: StoreOpt = DEFAULT_STORE,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1)] = os.cpu_count() or 1,
) -> None:
    """Run the embedded demo: a random data-strike sweep on MovieLens-100K."""
    from datalever.spec import parse_spec
    from datalever.store import ResultsStore

    text = resources.files("datalever").joinpath("specs/demo.toml").read_text()
    spec = parse_spec(text, source="the demo spec")
    results_store = ResultsStore(store)
    report = _run_with_progress(spec, results_store, jobs, "auto")
    _print_curves(results_store, report.run_id)
    console.print(
        f"Full results (participants, non-participants, every metric): "
        f"datalever results --store {store} --run {report.run_id}"
    )


@app.command()
@friendly
def run(
    spec_path: Annotated[Path, typer.Argument(metavar="SPEC.toml", help="Experiment spec.")],
    store: StoreOpt = DEFAULT_STORE,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, help="Worker processes.")] = 1,
    path: Annotated[
        FitPath,
        typer.Option(
            "--path", help="auto: fastest exact path; plain: plain fits only, for checking."
        ),
    ] = FitPath.auto,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Run the experiment a spec describes; run it again to resume after an interruption."""
    from datalever.spec import load_spec
    from datalever.store import ResultsStore

    spec = load_spec(spec_path)
    results_store = ResultsStore(store)
    report = _run_with_progress(spec, results_store, jobs, path.value, quiet)
    if not quiet:
        _print_curves(results_store, report.run_id)
    _print_answer(results_store, report.run_id, spec)


@app.command()
@friendly
def ask(
    delta: Annotated[
        str,
        typer.Option(
            help="Target change: -2% (relative), -0.01 (absolute) "
            "or gap:50% (share of the lead over the item mean)."
        ),
    ],
    data: Annotated[str, typer.Option(help="Dataset name or path.")] = "movielens-100k",
    learner: Annotated[str, typer.Option(help="Learner name.")] = "ease",
    lever: Annotated[str, typer.Option(help="strike or boycott.")] = "strike",
    metric: Annotated[str, typer.Option(help="Capability metric.")] = "ndcg@10",
    group: Annotated[str, typer.Option(help="Evaluation group.")] = "everyone",
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999)] = 0.95,
    max_minutes: Annotated[float, typer.Option(help="Time budget.")] = 5.0,
    protocol: Annotated[str, typer.Option(help="data-strikes or holdout.")] = "data-strikes",
    folds: Annotated[int, typer.Option(help="Folds run per scenario (data-strikes).")] = 1,
    seed: Annotated[int, typer.Option()] = 0,
    spec_path: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="Take data, protocol, learners, lever and [question] from a spec instead.",
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1)] = os.cpu_count() or 1,
    fmt: Annotated[Format, typer.Option("--format", "-f", help="table (text) or json.")] = (
        Format.table
    ),
) -> None:
    """Can a collective change a model's capability by DELTA? Search collective sizes
    adaptively and answer with numbers."""
    from datalever.answer import ask as run_ask
    from datalever.engine.runner import load_spec_data
    from datalever.spec import load_spec, spec_from_dict
    from datalever.store import ResultsStore

    if spec_path is not None:
        spec = load_spec(spec_path)
        if spec.question is None:
            raise DataleverError(
                f"{spec_path} has no [question] table.",
                'add one, e.g. [question] metric = "ndcg@10", delta = "-2%".',
            )
    else:
        spec = spec_from_dict(
            {
                "name": f"ask {learner} {lever} {metric} {delta}",
                "seed": seed,
                "data": {"dataset": data},
                "protocol": {"kind": protocol, "run_folds": folds},
                "learners": [{"name": learner}],
                "lever": {"kind": lever},
                "collectives": {"sizes": [0.5]},
                "evaluation": {"metrics": [metric], "groups": [group]},
                "question": {
                    "metric": metric,
                    "delta": delta,
                    "group": group,
                    "confidence": confidence,
                },
            },
            "the question",
        )
    q = spec.question
    if q.group in ("like-participants", "non-members"):
        raise DataleverError(
            f"The group {q.group!r} exists only for targeted collectives, and "
            "ask draws random ones.",
            "ask about everyone, participants or non-participants.",
        )
    if q.group == "participants" and spec.lever.kind == "boycott":
        raise DataleverError(
            "Under a boycott the participants leave the service, so they are not evaluated.",
            "ask about everyone or non-participants.",
        )
    results_store = ResultsStore(store)
    err_console.print(f"Loading {spec.data.dataset}…")
    dataset = load_spec_data(spec)
    with err_console.status("Searching collective sizes…") as status:

        def on_look(looks: list[tuple[float, int]]) -> None:
            sizes = ", ".join(f"{100 * size:.3g} %" for size, _ in looks)
            status.update(f"Collectives of {sizes} of users: {looks[0][1]} samples each…")

        answer = run_ask(
            spec, results_store, dataset, max_seconds=60 * max_minutes, jobs=jobs, on_look=on_look
        )
    if fmt is Format.json:
        sys.stdout.write(json.dumps(answer.to_dict(), indent=2) + "\n")
        return
    from rich.table import Table

    table = Table(
        title="Collective sizes examined (score: the change in the delta's units, "
        "oriented so that reaching the delta means score ≥ its size)",
        header_style="bold",
    )
    for col in ("size", "users", "samples", "mean score", "bounds", "decision"):
        table.add_column(col, justify="right" if col != "decision" else "left")
    for v in answer.result.verdicts:
        bounds = "–" if v.low != v.low else f"{v.low:.4f} – {v.high:.4f}"
        table.add_row(
            f"{100 * v.size:.3g} %",
            str(round(v.size * answer.n_users)),
            str(v.n),
            f"{v.mean:.4f}",
            bounds,
            v.decision,
        )
    console.print(table)
    console.print(f"[bold]{answer.text}[/bold]")
    console.print(f"Scenarios are stored in run {answer.run_id} of {store}.")


@app.command()
@friendly
def results(
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    fmt: Annotated[Format, typer.Option("--format", "-f")] = Format.table,
    metric: Annotated[str | None, typer.Option(help="Only this metric, e.g. ndcg@10.")] = None,
    group: Annotated[str | None, typer.Option(help="Only this evaluation group.")] = None,
    confidence: Annotated[
        float | None,
        typer.Option(min=0.5, max=0.999, help="Interval level (default: the spec's)."),
    ] = None,
) -> None:
    """Summarise a run: mean, confidence interval, paired change and share of the gap."""
    from datalever.spec import spec_from_dict

    s = _existing_store(store)
    run_id = run_id or s.latest_run()
    spec = spec_from_dict(s.run_spec(run_id), f"run {run_id}")
    level = confidence if confidence is not None else spec.evaluation.confidence
    _print_summary(s, run_id, fmt, metric, group, level)
    if fmt is Format.table:
        _print_answer(s, run_id, spec)


@app.command()
@friendly
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = (
        Path("report.html")
    ),
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
) -> None:
    """Write a self-contained HTML report of a run: the answer, leverage curves, normalised
    views, targeted collectives and provenance."""
    from datalever.answer import answer_run
    from datalever.report.html import write_report
    from datalever.spec import spec_from_dict

    s = _existing_store(store)
    run_id = run_id or s.latest_run()
    spec = spec_from_dict(s.run_spec(run_id), f"run {run_id}")
    answer = s.answer(run_id)
    if answer is None and spec.question is not None:
        judged = answer_run(s, run_id, spec, _n_users(spec))
        answer = judged.text if judged is not None else None
    if not output.parent.exists():
        raise DataleverError(
            f"The folder {output.parent} does not exist.",
            "create it, or give another --output path.",
        )
    write_report(s, run_id, spec, answer, output)
    console.print(f"Wrote {output} (run {run_id}).")


@app.command()
@friendly
def runs(store: StoreOpt = DEFAULT_STORE) -> None:
    """List the runs in a store."""
    from rich.table import Table

    table_data = _existing_store(store).runs()
    table = Table(header_style="bold")
    for col in table_data.columns:
        table.add_column(col)
    for row in table_data.itertuples(index=False):
        table.add_row(*map(str, row))
    console.print(table)


def _existing_store(store: str):
    from datalever.store import ResultsStore, store_url

    url = store_url(store)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        raise DataleverError(
            f"There is no results store at {store}.",
            "run `datalever demo` or `datalever run SPEC.toml` first, or pass --store.",
        )
    return ResultsStore(store)


@data_app.command("fetch")
@friendly
def data_fetch(
    name: Annotated[
        str, typer.Argument(help="movielens-100k, -1m, -10m, -20m, -25m, -latest-small")
    ],
    source: Annotated[str, typer.Option(help="auto, grouplens or recbole (100k only).")] = "auto",
    path: Annotated[Path | None, typer.Option(help="Use this local copy (zip or folder).")] = None,
) -> None:
    """Download a dataset (with checksum verification) into the cache."""
    from datalever.data.registry import fetch_dataset

    where = fetch_dataset(name, source=source, path=path)
    console.print(f"{name} is ready in {where}")


@data_app.command("info")
@friendly
def data_info(
    name: Annotated[str, typer.Argument(help="A catalogue name or a path.")],
) -> None:
    """Counts of contributors, items and records, and the attributes available for groups."""
    from datalever.data.registry import load_dataset

    d = load_dataset(name)
    console.print(f"[bold]{d.name}[/bold]  (checksum {d.checksum()})")
    console.print(f"  contributors: {d.n_contributors:,}")
    console.print(f"  items:        {d.n_items:,}")
    console.print(f"  records:      {len(d):,}")
    console.print(f"  rating scale: {d.rating_scale[0]:g}–{d.rating_scale[1]:g}")
    for col in d.contributors.columns:
        values = d.contributors[col].dropna()
        if values.nunique() <= 25:
            counts = ", ".join(f"{k} ({v})" for k, v in values.value_counts().items())
            console.print(f"  {col}: {counts}")
        else:
            console.print(f"  {col}: {values.nunique()} distinct values")
    if genres := d.genres():
        console.print(f"  genres: {', '.join(genres)}")


def main() -> None:
    """Entry point of the ``datalever`` script."""
    app()
