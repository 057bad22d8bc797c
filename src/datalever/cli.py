"""The ``datalever`` command line."""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from datalever import __version__
from datalever.console import console, err_console, exits_on_problems, print_problem
from datalever.data.guard import shown
from datalever.errors import DataleverError
from datalever.export import ExportFormat
from datalever.registry.cli import registry_app

# Help texts and every message are printed literally: `[data]` is a TOML table, not markup.
app = typer.Typer(
    help="Measure data leverage: how much a collective of contributors can boost or harm a model.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
data_app = typer.Typer(
    help="Obtain datasets and look at them.", no_args_is_help=True, rich_markup_mode=None
)
app.add_typer(data_app, name="data")
consent_app = typer.Typer(
    help="Honour consent: a dataset or a list of works as a registry allows it.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(consent_app, name="consent")
app.add_typer(registry_app, name="registry")

# Notes from loading data (duplicates dropped, say) are printed by the commands themselves.
logging.getLogger("datalever.data").addHandler(logging.NullHandler())

#: The most worker processes a command accepts (more than any machine's cores is a typo).
MAX_JOBS = 1024


def friendly(command: Callable) -> Callable:
    """User-fixable problems print one paragraph and exit 2, never a traceback; a run that
    runs out of memory or is interrupted says that its finished scenarios are stored."""
    checked = exits_on_problems(command)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return checked(*args, **kwargs)
        except MemoryError:
            print_problem(
                "This machine ran out of memory for the run; every finished scenario is "
                "stored. Fix: use fewer jobs (each worker holds its own models), a smaller "
                "dataset or smaller learner parameters, or a machine with more memory."
            )
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            err_console.print(
                "Interrupted; every finished scenario is stored. Run the same command again to "
                "resume.",
                style="yellow",
            )
            raise typer.Exit(130) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        console.print(f"datalever {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Measure data leverage: how much a collective of contributors can boost or harm a model."""


StoreOpt = Annotated[
    str,
    typer.Option(
        "--store",
        help="Results store: a SQLite file path or a database URL.",
        envvar="DATALEVER_STORE",
    ),
]
DEFAULT_STORE = "datalever.sqlite"

SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        metavar="PATH=VALUE",
        help="Override a spec value before it is checked (repeatable), e.g. --set "
        "learners.0.n_factors=50 --set collectives.sizes=[0.1,0.5]; values are read as TOML "
        '(50, 0.1, true, [1, 2], "text"), a bare word as text.',
    ),
]


class ExecutorKind(StrEnum):
    local = "local"
    ray = "ray"


class Format(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


class FitPath(StrEnum):
    auto = "auto"
    plain = "plain"


def _run_with_progress(
    spec,
    location: str,
    jobs: int,
    path: str,
    quiet: bool = False,
    executor: str = "local",
    address: str | None = None,
):
    """Load the data, check the run, then open the store (a refused run creates no store) and
    run with a progress bar, on this machine or a Ray cluster. Returns the run's report and
    the store."""
    from datalever.engine import run_spec
    from datalever.engine.runner import check_runnable, load_spec_data
    from datalever.store import ResultsStore

    progress = Progress(
        TextColumn("{task.description}", markup=False, style="bold"),
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

    waiting_for = 0

    def on_wait(n: int) -> None:
        nonlocal waiting_for
        if n != waiting_for:
            waiting_for = n
            progress.update(
                task,
                description=f"{spec.name} (waiting for {n} scenarios that "
                "another run on this store is computing)"
                if n
                else spec.name,
            )

    err_console.print(f"Loading {shown(spec.data.dataset, 200)}…")
    data = load_spec_data(spec)
    _print_notes(data)
    checked = check_runnable(spec, data, path, jobs if executor == "local" else 1)
    store = ResultsStore(location)
    with progress:
        report = run_spec(
            spec,
            store,
            data=data,
            jobs=jobs,
            path=path,
            on_plan=on_plan,
            on_progress=on_progress,
            on_wait=on_wait,
            checked=checked,
            executor=executor,
            address=address,
        )
    if report.interrupted:
        err_console.print(
            f"Interrupted after {report.n_computed} scenarios; every finished scenario "
            "is stored. Run the same command again to resume.",
            style="yellow",
        )
        raise typer.Exit(130)
    err_console.print(
        f"Run {report.run_id}: {report.n_computed} scenarios computed, "
        f"{report.n_already_done} reused, in {report.seconds:.1f} s."
    )
    return report, store


def _print_summary(
    store,
    run_id: str,
    fmt: Format,
    metric: str | None = None,
    group: str | None = None,
    confidence: float = 0.95,
) -> None:
    from datalever.analysis import summarise
    from datalever.report import render_summary, summary_records
    from datalever.tasks import parse_metric

    summary = summarise(_run_results(store, run_id), confidence=confidence)
    if metric:
        summary = _only(summary, "metric", parse_metric(metric).name, run_id)
    if group:
        summary = _only(summary, "eval_group", group, run_id)
    if fmt is Format.csv:
        sys.stdout.write(summary.to_csv(index=False))
    elif fmt is Format.json:
        sys.stdout.write(json.dumps(summary_records(summary), indent=2) + "\n")
    else:
        wide = Console(width=max(console.width, 140), markup=False, highlight=False)
        render_summary(summary, wide, title=f"Run {run_id}", confidence=confidence)


def _only(summary, column: str, value: str, run_id: str):
    """The rows with ``column == value``, or an error naming the values the run has."""
    have = list(dict.fromkeys(summary[column]))
    if value not in have:
        what = "metric" if column == "metric" else "evaluation group"
        raise DataleverError(
            f"Run {run_id} has no {what} {value!r}.", f"it has: {', '.join(map(str, have))}."
        )
    return summary[summary[column] == value]


def _run_results(store, run_id: str):
    """The run's results, or a clear error when it has no finished scenario yet."""
    store.require_results(run_id)
    return store.results(run_id)


def _print_answer(store, run_id: str, spec) -> None:
    """The answer line, when the spec asks a question."""
    stored = store.answer(run_id)  # what `ask` concluded, with its own stopping rule
    if stored is not None:
        console.print(stored, style="bold")
        return
    if spec.question is None:
        return
    from datalever.answer import answer_run

    answer = answer_run(store, run_id, spec, _n_users(spec))
    if answer is not None:
        console.print(answer.text, style="bold")


def _n_users(spec) -> int:
    from datalever.engine.runner import load_spec_data

    try:
        return load_spec_data(spec).n_contributors
    except DataleverError:
        return 0


def _print_curves(store, run_id: str) -> None:
    from datalever.analysis import summarise
    from datalever.report import render_curve

    results = store.results(run_id)
    if results.empty:
        return
    summary = summarise(results)
    for metric in dict.fromkeys(summary["metric"]):
        render_curve(summary, console, metric)
    if (results["metric"] == "dlp").any():
        from datalever.analysis.dlp import dlp_table
        from datalever.report.terminal import render_dlp_table

        render_dlp_table(dlp_table(results), console)


class DemoData(StrEnum):
    movielens = "movielens-100k"
    digits = "digits"
    code = "python-stdlib"


DEMO_SPECS = {
    DemoData.movielens: "specs/demo.toml",
    DemoData.digits: "specs/demo-digits.toml",
    DemoData.code: "specs/demo-code.toml",
}


@app.command()
@friendly
def demo(
    store: StoreOpt = DEFAULT_STORE,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=MAX_JOBS)] = (os.cpu_count() or 1),
    dataset: Annotated[
        DemoData,
        typer.Option(
            "--dataset",
            help="movielens-100k: random data strikes on recommenders; digits: strikes and "
            "label flipping on classifiers (no download); python-stdlib: opting out of a code "
            "language model trained on the standard library (no download).",
        ),
    ] = DemoData.movielens,
    sets: SetOpt = None,
) -> None:
    """Run an embedded demo: a random data-strike sweep on MovieLens-100K, strikes and label
    flipping on the handwritten digits, or opting out of a code language model."""
    from datalever.overrides import parse_overrides, parse_spec_with

    text = resources.files("datalever").joinpath(DEMO_SPECS[dataset]).read_text()
    spec = parse_spec_with(text, parse_overrides(sets or []), source="the demo spec")
    report, results_store = _run_with_progress(spec, store, jobs, "auto")
    if dataset is DemoData.code:
        from datalever.analysis import summarise
        from datalever.report.terminal import render_groups

        summary = summarise(results_store.results(report.run_id))
        for metric in spec.evaluation.metrics:
            render_groups(summary, console, metric, ("everyone", "participants"))
    else:
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
    jobs: Annotated[
        int, typer.Option("--jobs", "-j", min=1, max=MAX_JOBS, help="Worker processes.")
    ] = 1,
    path: Annotated[
        FitPath,
        typer.Option(
            "--path", help="auto: fastest exact path; plain: plain fits only, for checking."
        ),
    ] = FitPath.auto,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar (the results still print).")
    ] = False,
    sets: SetOpt = None,
    mlflow: Annotated[
        str | None,
        typer.Option(
            "--mlflow",
            metavar="URI",
            help="Also log the run to MLflow at this tracking URI (file:///PATH, "
            "sqlite:///FILE, http://HOST:PORT): the spec as params, the summary as metrics, "
            "the spec, results and HTML report as artifacts. Needs 'datalever[mlflow]'.",
        ),
    ] = None,
    executor: Annotated[
        ExecutorKind,
        typer.Option(
            "--executor",
            help="Where scenarios run: local (this machine, --jobs processes) or ray (a Ray "
            "cluster; pip install 'datalever[ray]').",
        ),
    ] = ExecutorKind.local,
    address: Annotated[
        str | None,
        typer.Option(
            "--address",
            help="With --executor ray: the cluster's address (HOST:PORT as `ray start --head` "
            "printed it, or auto); without it Ray starts on this machine.",
        ),
    ] = None,
) -> None:
    """Run the experiment a spec describes; run it again to resume after an interruption."""
    from datalever.overrides import load_spec_with, parse_overrides

    if address is not None and executor is ExecutorKind.local:
        raise DataleverError(
            "--address names a Ray cluster, but the run is local.",
            "add --executor ray, or leave out --address.",
        )
    if mlflow is not None:
        from datalever.tracking import require_mlflow

        require_mlflow(mlflow)  # before the run, not after an hour of it
    spec = load_spec_with(spec_path, parse_overrides(sets or []))
    report, results_store = _run_with_progress(
        spec, store, jobs, path.value, quiet, executor.value, address
    )
    _print_curves(results_store, report.run_id)
    _print_answer(results_store, report.run_id, spec)
    if mlflow is not None:
        _log_to_mlflow(mlflow, results_store, report.run_id, spec)


def _log_to_mlflow(uri: str, store, run_id: str, spec) -> None:
    """Log a stored run to MLflow and say where it went."""
    from datalever.tracking import log_run

    logged = log_run(uri, store, run_id, spec, answer=_report_answer(store, run_id, spec))
    console.print(
        f"Logged run {run_id} to MLflow at {uri} (experiment {logged.experiment!r}, "
        f"MLflow run {logged.mlflow_run_id})."
    )


def _report_answer(store, run_id: str, spec) -> str | None:
    """The answer sentence a report shows: the one `ask` stored, else the spec question's."""
    answer = store.answer(run_id)
    if answer is None and spec.question is not None:
        from datalever.answer import answer_run

        judged = answer_run(store, run_id, spec, _n_users(spec))
        answer = judged.text if judged is not None else None
    return answer


@app.command()
@friendly
def ask(
    delta: Annotated[
        str | None,
        typer.Option(
            help="Target change: -2% (relative), -0.01 (absolute), gap:50% (share of the "
            "lead over the item mean) or =0.8 (a level to reach). Default: the spec's "
            "[question] delta."
        ),
    ] = None,
    target: Annotated[
        float | None,
        typer.Option(
            help="A level the metric must reach, e.g. --metric success --target 0.9 "
            "(the same as --delta =0.9)."
        ),
    ] = None,
    data: Annotated[
        str | None, typer.Option(help="Dataset name or path. [default: movielens-100k]")
    ] = None,
    learner: Annotated[
        str | None, typer.Option(help="Learner name. [default: ease; lda for classification]")
    ] = None,
    lever: Annotated[
        str | None,
        typer.Option(
            help="strike, boycott, poison, contribute or plant (its parameters from --spec "
            "or --param). [default: strike]"
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="A lever parameter, KEY=VALUE (repeatable), e.g. --param target=0 "
            "--param strategy=feature_label."
        ),
    ] = None,
    metric: Annotated[
        str | None,
        typer.Option(
            help="Capability metric, or a lever's own (success, dlp). [default: ndcg@10; "
            "accuracy for classification]"
        ),
    ] = None,
    group: Annotated[str | None, typer.Option(help="Evaluation group. [default: everyone]")] = None,
    confidence: Annotated[
        float | None, typer.Option(min=0.5, max=0.999, help="Confidence level. [default: 0.95]")
    ] = None,
    max_minutes: Annotated[
        float, typer.Option(min=0.01, max=7 * 24 * 60, help="Time budget in minutes.")
    ] = 5.0,
    protocol: Annotated[
        str | None, typer.Option(help="data-strikes or holdout. [default: data-strikes]")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(min=1, max=20, help="Folds run per scenario (data-strikes). [default: 1]"),
    ] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Seed. [default: 0]")] = None,
    spec_path: Annotated[
        Path | None,
        typer.Option(
            "--spec",
            help="Take data, protocol, learners, lever and [question] from a spec; the flags "
            "given override it.",
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=1, max=MAX_JOBS)] = (os.cpu_count() or 1),
    fmt: Annotated[
        Format, typer.Option("--format", "-f", help="table (text), csv (the sizes) or json.")
    ] = Format.table,
    executor: Annotated[
        ExecutorKind,
        typer.Option(
            "--executor",
            help="Where the search's scenarios run: local (this machine, --jobs processes) "
            "or ray (a Ray cluster; pip install 'datalever[ray]').",
        ),
    ] = ExecutorKind.local,
    address: Annotated[
        str | None,
        typer.Option("--address", help="With --executor ray: the cluster's address."),
    ] = None,
    sets: SetOpt = None,
) -> None:
    """Can a collective change a model's capability by DELTA? Search collective sizes
    adaptively and answer with numbers."""
    from datalever.answer import ask as run_ask
    from datalever.answer import check_answerable
    from datalever.engine.runner import check_runnable, load_spec_data
    from datalever.overrides import parse_overrides
    from datalever.store import ResultsStore

    overrides = parse_overrides(sets or [])

    if address is not None and executor is ExecutorKind.local:
        raise DataleverError(
            "--address names a Ray cluster, but the search is local.",
            "add --executor ray, or leave out --address.",
        )
    if not math.isfinite(max_minutes):
        raise DataleverError("--max-minutes must be a number of minutes.", "e.g. --max-minutes 5.")
    if target is not None:
        if delta is not None:
            raise DataleverError(
                "--delta and --target both say what to look for.", "give one of them."
            )
        if not math.isfinite(target):
            raise DataleverError("--target must be a number.", "e.g. --target 0.9.")
        delta = f"={target!r}"
    flags = {
        "delta": delta,
        "data": data,
        "learner": learner,
        "lever": lever,
        "metric": metric,
        "group": group,
        "confidence": confidence,
        "protocol": protocol,
        "folds": folds,
        "seed": seed,
        "params": _lever_params(param or []),
    }
    spec = _question_spec(spec_path, {k: v for k, v in flags.items() if v is not None}, overrides)
    check_answerable(spec)
    err_console.print(f"Loading {shown(spec.data.dataset, 200)}…")
    dataset = load_spec_data(spec)
    _print_notes(dataset)
    check_runnable(spec, dataset, jobs=jobs if executor is ExecutorKind.local else 1)
    results_store = ResultsStore(store)
    with err_console.status("Searching collective sizes…") as status:

        def on_look(looks: list[tuple[float, int]]) -> None:
            sizes = ", ".join(f"{100 * size:.3g} %" for size, _ in looks)
            status.update(f"Collectives of {sizes} of users: {looks[0][1]} samples each…")

        answer = run_ask(
            spec,
            results_store,
            dataset,
            max_seconds=60 * max_minutes,
            jobs=jobs,
            on_look=on_look,
            executor=executor.value,
            address=address,
        )
    if fmt is Format.json:
        sys.stdout.write(json.dumps(answer.to_dict(), indent=2) + "\n")
        return
    rows = answer.size_rows()
    if fmt is Format.csv:
        import pandas as pd

        sys.stdout.write(pd.DataFrame(rows).to_csv(index=False))
        return
    from rich.table import Table

    table = Table(
        title="Collective sizes examined (score: the change in the delta's units "
        f"({answer.score_unit}), oriented so that reaching the delta means score ≥ "
        f"{answer.threshold_text})",
        header_style="bold",
    )
    for col in ("size", "users", "samples", "mean score", "bounds", "decision"):
        table.add_column(col, justify="right" if col != "decision" else "left")
    for row in rows:
        bounds = (
            "–"
            if row["low"] is None
            else f"{answer.format_score(row['low'])} – {answer.format_score(row['high'])}"
        )
        mean = "–" if row["mean_score"] is None else answer.format_score(row["mean_score"])
        table.add_row(
            f"{100 * row['size']:.3g} %",
            str(row["users"]),
            str(row["samples"]),
            mean,
            bounds,
            row["decision"],
        )
    console.print(table)
    console.print(answer.text, style="bold")
    console.print(f"Scenarios are stored in run {answer.run_id} of {store}.")


def _lever_params(pairs: list[str]) -> dict[str, str] | None:
    """``KEY=VALUE`` pairs, as text (typed once the lever is known)."""
    params: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise DataleverError(
                f"Cannot read the lever parameter {shown(pair, 80)!r}.",
                "write it as KEY=VALUE, e.g. --param target=0.",
            )
        params[key] = value.strip()
    return params or None


def _typed_params(kind: object, params: dict[str, str]) -> dict:
    """Lever parameters given as text, typed as the lever declares them: text stays text
    (a class named 0, an item id), other values are read as TOML (numbers, true/false)."""
    import tomllib

    from datalever.levers import LEVERS

    fields = LEVERS[kind].Config.model_fields if kind in LEVERS else {}
    typed: dict = {}
    for key, value in params.items():
        annotation = str(fields[key].annotation) if key in fields else ""
        if "str" in annotation or "Literal" in annotation:
            typed[key] = value
            continue
        try:
            typed[key] = tomllib.loads(f"v = {value}")["v"]
        except tomllib.TOMLDecodeError:
            typed[key] = value
    return typed


def _question_spec(spec_path: Path | None, flags: dict, overrides: list | None = None):
    """The spec `ask` answers: the spec file's (if any, with its --set overrides) with the
    flags given overriding it, else one built from the flags and their defaults, then --set.
    Validated as a whole, once."""
    from datalever.overrides import load_spec_with, override_dict
    from datalever.spec import spec_from_dict

    overrides = overrides or []
    if spec_path is not None:
        raw = load_spec_with(spec_path, overrides).stored()
        source = str(spec_path)
        if raw.get("question") is None and "delta" not in flags:
            raise DataleverError(
                f"{spec_path} has no [question] table, and no --delta was given.",
                'add one, e.g. [question] metric = "ndcg@10", delta = "-2%", or pass --delta.',
            )
    else:
        if "delta" not in flags:
            raise DataleverError(
                "ask needs the change to look for.",
                "pass --delta (e.g. --delta=-2%), or --spec with a [question] table.",
            )
        raw = {
            "name": "ask",
            "data": {"dataset": "movielens-100k"},
            "protocol": {"kind": "data-strikes", "run_folds": 1},
            "learners": [{"name": "ease"}],
            "lever": {"kind": "strike"},
            "collectives": {"sizes": [0.5]},
            "evaluation": {"metrics": [], "groups": []},
        }
        source = "the question"
    from datalever.tasks import TASKS, probe_metrics, task_of_data

    if "data" in flags:
        raw["data"] = {"dataset": flags["data"]}
    data = raw["data"]
    family = TASKS[task_of_data(data.get("dataset", ""), data.get("columns"), data.get("layout"))]
    if spec_path is None and family.name != "recommendation":
        raw["learners"] = [{"name": family.default_learner}]
    question = raw.get("question") or {"metric": family.default_metrics[0], "group": "everyone"}
    raw["question"] = question
    # Without a spec the one learner is the question's; naming it again would change the run
    # id of searches stored by earlier releases.
    asked = ("delta", "metric", "group", "confidence") + (("learner",) if spec_path else ())
    for flag in asked:
        if flag in flags:
            question[flag] = flags[flag]
    if "lever" in flags:  # the spec's own parameters for that lever, if it lists it
        listed = [lv for lv in raw.pop("levers", None) or [raw.get("lever", {})]]
        same = [lv for lv in listed if isinstance(lv, dict) and lv.get("kind") == flags["lever"]]
        raw["lever"] = same[0] if len(same) == 1 else {"kind": flags["lever"]}
    if "params" in flags:
        lever_table = raw.get("lever")
        if not isinstance(lever_table, dict) or raw.get("levers"):
            raise DataleverError(
                "--param sets a parameter of the one lever asked about, but the spec lists "
                "several.",
                "pass --lever too.",
            )
        lever_table.update(_typed_params(lever_table.get("kind", "strike"), flags["params"]))
    if "protocol" in flags:
        raw["protocol"]["kind"] = flags["protocol"]
    if "folds" in flags:
        raw["protocol"]["run_folds"] = flags["folds"]
    if "seed" in flags:
        raw["seed"] = flags["seed"]
    names = [ls["name"] for ls in raw["learners"]]
    if "learner" in flags and flags["learner"] not in names:
        if spec_path is None:
            raw["learners"] = [{"name": flags["learner"]}]
        else:
            raw["learners"].append({"name": flags["learner"]})
    evaluation = raw["evaluation"]
    asked_metric = question.get("metric")
    if isinstance(asked_metric, str) and asked_metric.strip().lower() in probe_metrics():
        asked_metric = family.default_metrics[0]  # a lever's own measure is stored anyway
    for key, value in (("metrics", asked_metric), ("groups", question.get("group"))):
        if isinstance(value, str) and value not in evaluation.setdefault(key, []):
            evaluation[key].append(value)
    if spec_path is None:
        raw["name"] = f"ask {question.get('learner', names[0])} {raw['lever']['kind']} " + (
            f"{question.get('metric')} {question.get('delta')}"
        )
        if overrides:
            raw = override_dict(raw, overrides)
            source = f"the question with --set {', '.join(o.dotted for o in overrides)}"
    return spec_from_dict(raw, source)


@app.command()
@friendly
def results(
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    fmt: Annotated[
        ExportFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="table, csv, json or parquet (parquet needs --output). "
            "[default: table; csv with --raw]",
        ),
    ] = None,
    metric: Annotated[str | None, typer.Option(help="Only this metric, e.g. ndcg@10.")] = None,
    group: Annotated[str | None, typer.Option(help="Only this evaluation group.")] = None,
    confidence: Annotated[
        float | None,
        typer.Option(min=0.5, max=0.999, help="Interval level (default: the spec's)."),
    ] = None,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw",
            help="Every stored result instead of the summary: one row per scenario (learner, "
            "lever, collective, sample, fold) × evaluation group × metric.",
        ),
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Write to this file instead of the terminal (csv, json, parquet).",
        ),
    ] = None,
) -> None:
    """Summarise a run: mean, confidence interval, paired change and share of the gap; or
    export the summary or every stored result (--raw) as CSV, JSON or Parquet."""
    from datalever.spec import spec_from_dict

    fmt = fmt or (ExportFormat.csv if raw else ExportFormat.table)
    if fmt is ExportFormat.table and (raw or output is not None):
        raise DataleverError(
            "The table format is for the terminal"
            + (", and --raw rows are too many for it." if raw else ", not for a file."),
            "pass --format csv, json or parquet.",
        )
    if fmt is ExportFormat.parquet and output is None:
        raise DataleverError(
            "Parquet is a binary format, so it is written to a file, not to the terminal.",
            "pass --output PATH, e.g. --output results.parquet.",
        )
    if output is not None:
        from datalever.export import check_output

        check_output(output, fmt)
    s = _existing_store(store)
    run_id = run_id or s.latest_run()
    spec = spec_from_dict(s.run_spec(run_id), f"run {run_id}", stored=True)
    level = confidence if confidence is not None else spec.evaluation.confidence
    if fmt is ExportFormat.table:
        _print_summary(s, run_id, Format.table, metric, group, level)
        _print_answer(s, run_id, spec)
        return
    from datalever.export import raw_results, to_text, write_export

    if raw:
        _run_results(s, run_id)
        frame = raw_results(s, run_id)
    else:
        from datalever.analysis import summarise

        frame = summarise(_run_results(s, run_id), confidence=level)
    frame = _filtered(frame, run_id, metric, group)
    if output is None:
        sys.stdout.write(to_text(frame, fmt))
        return
    write_export(frame, fmt, output)
    what = "rows" if raw else "summary rows"
    err_console.print(f"Wrote {output} ({len(frame):,} {what} of run {run_id}).")


def _filtered(frame, run_id: str, metric: str | None, group: str | None):
    """``frame`` with only the metric and evaluation group asked for (if any)."""
    from datalever.tasks import parse_metric

    if metric:
        frame = _only(frame, "metric", parse_metric(metric).name, run_id)
    if group:
        frame = _only(frame, "eval_group", group, run_id)
    return frame


@app.command()
@friendly
def report(
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="The HTML file to write. [default: report.html, unless only --figures is given]",
        ),
    ] = None,
    store: StoreOpt = DEFAULT_STORE,
    run_id: Annotated[str | None, typer.Option("--run", help="Run id (default: latest).")] = None,
    figures: Annotated[
        Path | None,
        typer.Option(
            "--figures",
            metavar="DIR",
            help="Write every plot of the report as SVG, PNG and PDF into DIR (created if "
            "missing), named for what it shows, e.g. change-ndcg-at-10-everyone.pdf; with "
            "--output the HTML report too.",
        ),
    ] = None,
    mlflow: Annotated[
        str | None,
        typer.Option(
            "--mlflow",
            metavar="URI",
            help="Also log the run to MLflow at this tracking URI: the spec as params, the "
            "summary as metrics, the spec, results and HTML report as artifacts. Needs "
            "'datalever[mlflow]'.",
        ),
    ] = None,
) -> None:
    """Write a self-contained HTML report of a run: the answer, leverage curves, normalised
    views, targeted collectives and provenance; or its plots as SVG, PNG and PDF files."""
    from datalever.report.html import render_report, report_inputs, write_figures
    from datalever.spec import spec_from_dict

    if output is None and figures is None:
        output = Path("report.html")
    if output is not None:
        _check_report_path(output)
    if figures is not None:
        _check_figures_folder(figures)
    if mlflow is not None:
        from datalever.tracking import require_mlflow

        require_mlflow(mlflow)
    s = _existing_store(store)
    run_id = run_id or s.latest_run()
    spec = spec_from_dict(s.run_spec(run_id), f"run {run_id}", stored=True)
    _run_results(s, run_id)
    answer = _report_answer(s, run_id, spec)
    inputs = report_inputs(s, run_id, spec, answer)
    if output is not None:
        # Written beside the target and moved into place, so a failed write never leaves
        # half a report (or damages the file it replaces).
        partial = output.with_name(f".{output.name}.partial")
        try:
            partial.write_text(render_report(inputs), encoding="utf-8")
            os.replace(partial, output)
        except OSError as e:
            partial.unlink(missing_ok=True)
            raise DataleverError(
                f"Cannot write the report to {output}: {e.strerror or e}.",
                "give --output a writable path on a disk with free space.",
            ) from None
        console.print(f"Wrote {output} (run {run_id}).")
    if figures is not None:
        try:
            figures.mkdir(exist_ok=True)
            written = write_figures(inputs, figures)
        except OSError as e:
            raise DataleverError(
                f"Cannot write the figures into {figures}: {e.strerror or e}.",
                "give --figures a writable folder on a disk with free space.",
            ) from None
        plots = len(written) // 3
        console.print(
            f"Wrote {plots} plot{'s' if plots != 1 else ''} as SVG, PNG and PDF into "
            f"{figures} (run {run_id}):"
        )
        for path in written[::3]:
            console.print(f"  {path.stem}")
    if mlflow is not None:
        _log_to_mlflow(mlflow, s, run_id, spec)


def _check_figures_folder(folder: Path) -> None:
    """A folder for figures: an existing one, or a new one inside an existing folder."""
    from datalever.data.guard import user_path

    user_path(folder, "--figures folder", "give --figures a shorter path, e.g. figures/.")
    if folder.exists() and not folder.is_dir():
        raise DataleverError(
            f"{folder} is a file, not a folder.", "give --figures a folder, e.g. figures/."
        )
    if not folder.exists() and not folder.parent.is_dir():
        raise DataleverError(
            f"The folder {folder.parent} does not exist, so {folder} cannot be made in it.",
            "create it, or give --figures another folder.",
        )


def _check_report_path(output: Path) -> None:
    """Refuse an output path that is a folder, lies under a file or a missing folder, or is an
    existing file that is not a datalever report (a results store, say): never overwrite it."""
    from datalever.export import check_replaceable

    check_replaceable(output, "report.html", _is_report, "a datalever report", "report")


def _is_report(path: Path) -> bool:
    """A regular file that starts like the reports datalever writes."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(4096).decode("utf-8", errors="replace").lower()
    except OSError:
        return False
    return head.startswith("<!doctype html") and "<title>datalever report:" in head


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
    """Open a store that must already exist (opening a missing SQLite file would create it)."""
    from datalever.store import ResultsStore, sqlite_path

    path = sqlite_path(store)
    if path is not None and not path.exists():
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
    from datalever.tasks.classify.data import EMBEDDED

    if name in EMBEDDED:
        console.print(f"{name} ships with datalever's dependencies; there is nothing to fetch.")
        return
    where = fetch_dataset(name, source=source, path=path)
    console.print(f"{name} is ready in {where}")


@data_app.command("info")
@friendly
def data_info(
    name: Annotated[str, typer.Argument(help="A catalogue name or a path.")],
    columns: Annotated[
        str | None,
        typer.Option(
            help="For a CSV/Parquet file: our column names mapped to the file's, as in a "
            "spec's columns table, e.g. user=userId,item=movieId,rating=stars."
        ),
    ] = None,
    vectoriser: Annotated[
        str | None,
        typer.Option(help="For labelled examples with a text column: hashing or hashing:N."),
    ] = None,
    layout: Annotated[
        str | None,
        typer.Option(
            help="For a folder of code: repositories (one contributor each) or owners "
            "(owner/repository)."
        ),
    ] = None,
) -> None:
    """Counts of contributors, items and records, and the attributes available for groups."""
    from datalever.data.registry import load_dataset
    from datalever.data.tabular import load_table
    from datalever.tasks import task_of_data
    from datalever.tasks.classify.data import EMBEDDED, load_examples_table

    mapping = _column_mapping(columns) if columns is not None else None
    if layout is not None and layout not in ("repositories", "owners"):
        raise DataleverError(
            f"Unknown layout {shown(layout, 40)!r}.", "use --layout repositories or owners."
        )
    if layout is not None and mapping:
        raise DataleverError(
            "--layout reads a folder of code and --columns a table; give one of them.",
            "drop --columns for a folder of repositories, or --layout for a table.",
        )
    from datalever.tasks import plugin_dataset
    from datalever.tasks.code.corpus import is_json_lines

    found = plugin_dataset(name, mapping, layout)
    if found is not None:  # a dataset an installed plugin registers under this name
        _print_notes(found)
        printer = {"code": _print_code_info, "classification": _print_examples_info}
        printer.get(found.task, _print_ratings_info)(found)
        return
    if layout is None and not mapping and is_json_lines(name):
        raise DataleverError(
            f"{shown(name, 200)} is a JSON-lines table, which holds code, and no --columns "
            "maps its fields.",
            "pass --columns contributor=FIELD,path=FIELD,text=FIELD.",
        )
    if task_of_data(name, mapping, layout) == "code":
        from datalever.tasks.code.corpus import load_folder, load_stdlib
        from datalever.tasks.code.corpus import load_table as load_code_table
        from datalever.tasks.code.task import EMBEDDED_CORPORA

        if name in EMBEDDED_CORPORA and not mapping and not layout:
            corpus = load_stdlib(include_site_packages=name.endswith("site-packages"))
        elif layout:
            corpus = load_folder(name, "owner" if layout == "owners" else "repository")
        else:
            corpus = load_code_table(name, mapping)
        _print_notes(corpus)
        _print_code_info(corpus)
        return
    if task_of_data(name, mapping) == "classification":
        if vectoriser is not None:
            from datalever.tasks.classify.data import vectoriser_features

            vectoriser_features(vectoriser)
        examples = (
            load_examples_table(name, mapping, vectoriser=vectoriser)
            if mapping
            else EMBEDDED[name]()
        )
        _print_notes(examples)
        _print_examples_info(examples)
        return
    if columns is not None:
        d = load_table(name, _column_mapping(columns), name=name)
    else:
        d = load_dataset(name)
    _print_notes(d)
    _print_ratings_info(d)


def _print_ratings_info(d) -> None:
    """Counts of a recommendation dataset, and the attributes groups can be drawn by."""
    console.print(Text.assemble((d.name, "bold"), f"  (checksum {d.checksum()})"))
    console.print(f"  contributors: {d.n_contributors:,}")
    console.print(f"  items:        {d.n_items:,}")
    console.print(f"  records:      {len(d):,}")
    if getattr(d, "implicit", False):
        console.print("  feedback:     implicit (interactions, no ratings)")
    else:
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


def _print_code_info(c) -> None:
    """Counts of a code corpus: files, contributors, tokens and the largest contributors."""
    console.print(Text.assemble((shown(c.name, 200), "bold"), f"  (identity {c.identity})"))
    console.print(f"  files:        {len(c):,}")
    console.print(f"  contributors: {c.n_contributors:,}")
    console.print(f"  tokens:       {c.n_tokens:,} ({c.scheme})")
    console.print(f"  vocabulary:   {len(c.vocabulary):,}")
    if c.skipped:
        console.print(f"  left out:     {len(c.skipped):,} file(s) (see the notes)")
    largest = c.contributors["tokens"].sort_values(ascending=False).head(8)
    listed = ", ".join(f"{shown(c.contributor_ids[k], 40)} ({v:,})" for k, v in largest.items())
    console.print(f"  largest:      {listed}")


def _print_examples_info(d) -> None:
    """Counts of a classification dataset: examples, contributors, features and classes."""
    console.print(Text.assemble((shown(d.name, 200), "bold"), f"  (checksum {d.checksum()})"))
    console.print(f"  examples:     {len(d):,}")
    console.print(f"  contributors: {d.n_contributors:,}")
    console.print(
        f"  features:     {d.n_features:,}" + (f" ({d.vectoriser})" if d.vectoriser else "")
    )
    counts = d.records["label"].value_counts().sort_index()
    listed = ", ".join(f"{shown(d.class_names[k], 40)} ({v})" for k, v in counts.head(25).items())
    more = f", and {len(counts) - 25:,} more" if len(counts) > 25 else ""
    console.print(f"  classes:      {d.n_classes} — {listed}{more}")
    for col in d.contributors.columns:
        example = shown(d.contributors[col].iloc[0], 40)
        console.print(f"  group by {col}: e.g. {col}:{example}")


def _print_notes(data) -> None:
    """What loading the data decided on the user's behalf (duplicates dropped, say)."""
    for note in data.notes:
        err_console.print(f"Note: {note}", style="yellow")


def _column_mapping(text: str) -> dict[str, str]:
    """``user=a,item=b`` as a dictionary, with a clear error for anything else."""
    mapping: dict[str, str] = {}
    for part in text.split(","):
        if "=" not in part and mapping.get("features") and list(mapping)[-1] == "features":
            mapping["features"] += "," + part.strip()  # features=a,b,c lists several columns
            continue
        ours, sep, theirs = part.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise DataleverError(
                f"Cannot read the column mapping {text[:200]!r}.",
                "write it as user=COLUMN,item=COLUMN,rating=COLUMN (our name = the file's).",
            )
        if ours.strip() in mapping:
            raise DataleverError(
                f"The column mapping names {ours.strip()!r} twice.", "give each of ours once."
            )
        mapping[ours.strip()] = theirs.strip()
    return mapping


@consent_app.command("filter")
@friendly
def consent_filter(
    data: Annotated[
        str,
        typer.Argument(
            help="A dataset (catalogue name or path, as `data info` takes it), or with --list "
            "a text file of URLs, work ids or file paths, one per line."
        ),
    ],
    registry: Annotated[
        str | None,
        typer.Option(
            help="The registry: http(s)://HOST:PORT of a served one (with --token), a SQLite "
            "file or postgresql://USER@HOST/DBNAME. [default: the user data folder's]",
            envvar="DATALEVER_REGISTRY",
        ),
    ] = None,
    purpose: Annotated[str, typer.Option(help="The AIPREF purpose asked about.")] = "train-ai",
    as_of: Annotated[
        str | None, typer.Option(help="Consent as it stood then (ISO 8601). [default: now]")
    ] = None,
    name: Annotated[
        str | None,
        typer.Option(help="The dataset's name in the registry. [default: the data's own]"),
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="The folder to write. [default: NAME-consented]")
    ] = None,
    is_list: Annotated[
        bool, typer.Option("--list", help="DATA is a list of works, not a dataset.")
    ] = False,
    token: Annotated[
        str | None,
        typer.Option(help="A pipeline token, for a served registry.", envvar="DATALEVER_TOKEN"),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds a served registry may take.")] = 60.0,
    columns: Annotated[
        str | None, typer.Option(help="For a table: our column names mapped to the file's.")
    ] = None,
    layout: Annotated[
        str | None, typer.Option(help="For a folder of code: repositories or owners.")
    ] = None,
    vectoriser: Annotated[
        str | None, typer.Option(help="For labelled examples with a text column.")
    ] = None,
) -> None:
    """Write the data a registry allows for a purpose, and a manifest of what was dropped and
    why, against which registry snapshot, with the input's and output's checksums."""
    from datalever.registry import Registry
    from datalever.registry.filter import (
        RemoteRegistry,
        filter_dataset,
        filter_list,
        require_registry,
    )
    from datalever.registry.purposes import check_purpose

    check_purpose(purpose)
    if not 0 < timeout < 10**6:  # nan and inf too: the socket layer would raise on them
        raise DataleverError(
            f"--timeout must be a positive number of seconds below a million, not {timeout}.",
            "pass e.g. --timeout 60.",
        )
    if registry and registry.lower().startswith(("http://", "https://")):
        if not token:
            raise DataleverError(
                "A served registry needs a pipeline token.",
                "pass --token or set DATALEVER_TOKEN.",
            )
        source = RemoteRegistry(registry, token, timeout)
    else:
        require_registry(registry)
        source = Registry(registry)
    try:
        if is_list:
            dataset = name or Path(data).stem
            folder = out or Path(f"{Path(data).stem}-consented")
            manifest = filter_list(source, Path(data), dataset, purpose, folder, as_of)
            unit = "lines"
        else:
            spec, task, loaded = _data_for(data, columns, layout, vectoriser)
            folder = out or Path(f"{Path(loaded.name).name}-consented")
            manifest = filter_dataset(spec, loaded, task, source, purpose, folder, as_of, name)
            unit = "contributors"
    finally:
        source.close()
    kept, total = manifest["output"], manifest["input"]
    consent = manifest["consent"]
    console.print(
        f"Kept {kept[unit]:,} of {total[unit]:,} {unit} ({len(manifest['dropped']):,} dropped) "
        f"as {consent['registry']} stood at snapshot {consent['snapshot']}, for "
        f"{consent['purpose']}."
    )
    if consent["failed_closed"]:
        err_console.print(
            f"Note: the registry gave no usable answer for {consent['failed_closed']:,} works; "
            "they were dropped (reserved) and the manifest says why.",
            style="yellow",
        )
    console.print(f"Wrote {folder / kept['path']} and {folder / 'manifest.json'}")


def _data_for(data: str, columns: str | None, layout: str | None, vectoriser: str | None):
    """(spec, task family, dataset) for a dataset named on the command line."""
    from datalever.tasks import load_section

    section: dict = {"dataset": data}
    if columns is not None:
        section["columns"] = _column_mapping(columns)
    if layout is not None:
        section["layout"] = layout
    if vectoriser is not None:
        section["vectoriser"] = vectoriser
    spec, family, loaded = load_section(section)
    _print_notes(loaded)
    return spec, family, loaded


def _stop_on_sigterm(signum, frame) -> None:
    """SIGTERM (``kill``, a batch scheduler) stops a run as Ctrl-C does: finished scenarios
    stored, workers stopped, exit 130."""
    raise KeyboardInterrupt


def main() -> None:
    """Entry point of the ``datalever`` script."""
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    app()
