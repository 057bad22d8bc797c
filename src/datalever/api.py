"""The Python API: the command line's work, callable from a notebook or a script.

Load a spec (a file, a dict, or one built in Python), run it into a results store, read its
results as pandas DataFrames, ask a question of it, and write its report::

    import datalever as dl

    spec = dl.load_spec("examples/data-strikes-ml100k.toml")
    run = dl.run(spec, store="strikes.sqlite", jobs=2)
    summary = run.summary()            # one row per learner × lever × size × group × metric
    scenarios = run.scenarios()        # one row per stored scenario, metric and group
    run.report("report.html")

Everything here is a thin layer over the packages below it (``spec``, ``engine``, ``store``,
``analysis``, ``report``), which stay internal: the names in :data:`__all__` are the ones
kept stable.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from datalever.errors import DataleverError

if TYPE_CHECKING:
    import pandas as pd

    from datalever.answer import Answer
    from datalever.core.task import Dataset
    from datalever.spec import Spec
    from datalever.store import ResultsStore

#: The results store the command line uses when none is named.
DEFAULT_STORE = "datalever.sqlite"


def load_spec(spec: Spec | Mapping[str, Any] | str | os.PathLike) -> Spec:
    """A checked spec from a TOML file's path, a dict of the same tables, or a spec as it is.

    Relative paths in a file (a data file, ``file:`` groups) are taken from the file's folder.
    Anything the spec gets wrong is a :class:`~datalever.errors.DataleverError` naming the
    field and the fix, before anything runs."""
    from datalever.spec import Spec, spec_from_dict
    from datalever.spec import load_spec as load_file

    if isinstance(spec, Spec):
        return spec
    if isinstance(spec, Mapping):
        return spec_from_dict(dict(spec), "the spec dict")
    if isinstance(spec, str | os.PathLike):
        return load_file(Path(spec))
    raise DataleverError(
        f"A spec is a file path, a dict or a Spec, not {type(spec).__name__}.",
        'pass e.g. "examples/data-strikes-ml100k.toml".',
    )


def load_dataset(data: Spec | Mapping[str, Any] | str | os.PathLike) -> Dataset:
    """A dataset as a run would load it: from a spec, from a spec's ``[data]`` table as a
    dict (``{"dataset": "movielens-100k"}``, or a file with a ``columns`` mapping), or from a
    dataset name or path."""
    from datalever.spec import Spec
    from datalever.tasks import load_data, load_section

    if isinstance(data, Spec):
        return load_data(data)
    if isinstance(data, Mapping):
        return load_section(data)[2]
    if isinstance(data, str | os.PathLike):
        return load_section({"dataset": os.fspath(data)})[2]
    raise DataleverError(
        f"A dataset is a name, a path, a [data] dict or a Spec, not {type(data).__name__}.",
        'pass e.g. "movielens-100k".',
    )


@dataclass(frozen=True)
class Run:
    """A run in a results store: what :func:`run` returns, or :func:`open_run` finds."""

    store: str
    run_id: str
    #: Scenarios computed by this call (0 when opened), and those found already stored.
    n_computed: int = 0
    n_reused: int = 0
    interrupted: bool = False

    def spec(self) -> Spec:
        """The spec the run was made from, as stored with it."""
        from datalever.spec import spec_from_dict

        with _open_store(self.store) as s:
            return spec_from_dict(s.run_spec(self.run_id), f"run {self.run_id}", stored=True)

    def scenarios(self) -> pd.DataFrame:
        """Every stored result of the run: one row per scenario, metric and evaluation group,
        with the paired baseline it is compared against."""
        with _open_store(self.store) as s:
            s.require_results(self.run_id)
            return s.results(self.run_id)

    def summary(self, confidence: float | None = None) -> pd.DataFrame:
        """One row per learner × lever × collective × group × metric: the mean, its interval,
        the paired change and the share of the gap (``datalever results``). ``confidence``
        defaults to the spec's."""
        from datalever.analysis import summarise

        level = confidence if confidence is not None else self.spec().evaluation.confidence
        if not 0.5 <= level < 1:
            raise DataleverError(
                f"A confidence level is between 0.5 and 1, not {level!r}.", "e.g. 0.95."
            )
        return summarise(self.scenarios(), confidence=level)

    def answer(self) -> str | None:
        """The answer to the spec's ``[question]`` from the sizes the run has (or the one
        ``ask`` stored); ``None`` when the spec asks nothing."""
        from datalever.answer import answer_run

        spec = self.spec()
        with _open_store(self.store) as s:
            stored = s.answer(self.run_id)
            if stored is not None or spec.question is None:
                return stored
            n_users = load_dataset(spec).n_contributors
            judged = answer_run(s, self.run_id, spec, n_users)
        return judged.text if judged is not None else None

    def report(self, output: str | os.PathLike = "report.html") -> Path:
        """Write the run's self-contained HTML report to ``output``; returns its path. The
        file appears whole or not at all."""
        from datalever.report.html import write_report

        out = Path(output)
        spec, answer = self.spec(), self.answer()
        partial = out.with_name(f".{out.name}.partial")
        with _open_store(self.store) as s:
            s.require_results(self.run_id)
            try:
                write_report(s, self.run_id, spec, answer, partial)
                os.replace(partial, out)
            except OSError as e:
                partial.unlink(missing_ok=True)
                raise DataleverError(
                    f"Cannot write the report to {out}: {e.strerror or e}.",
                    "give a writable path on a disk with free space.",
                ) from None
        return out


def run(
    spec: Spec | Mapping[str, Any] | str | os.PathLike,
    store: str | os.PathLike = DEFAULT_STORE,
    *,
    jobs: int = 1,
    path: str = "auto",
    on_progress: Callable[[int, int], None] | None = None,
    executor: str = "local",
    address: str | None = None,
) -> Run:
    """Run every scenario of ``spec`` not yet in ``store`` (a SQLite path or a
    ``postgresql://`` URL) and return the run. A run interrupted (Ctrl-C) keeps every finished
    scenario; calling again resumes it. ``on_progress(finished, pending)`` follows the work.
    ``executor="ray"`` runs the scenarios on a Ray cluster (``address``, or one started on this
    machine); the results are the same."""
    from datalever.engine import run_spec
    from datalever.engine.runner import check_runnable
    from datalever.store import ResultsStore

    checked_spec = load_spec(spec)
    data = load_dataset(checked_spec)
    # refused runs leave no store
    checked = check_runnable(checked_spec, data, path, jobs if executor == "local" else 1)
    location = _location(store)
    with _closing(ResultsStore(location)) as s:
        report = run_spec(
            checked_spec,
            s,
            data=data,
            jobs=jobs,
            path=path,
            on_progress=on_progress,
            checked=checked,
            executor=executor,
            address=address,
        )
    return Run(
        location,
        report.run_id,
        n_computed=report.n_computed,
        n_reused=report.n_already_done,
        interrupted=report.interrupted,
    )


def open_run(store: str | os.PathLike = DEFAULT_STORE, run_id: str | None = None) -> Run:
    """A run already in ``store`` (the latest when ``run_id`` is not given)."""
    location = _location(store)
    with _open_store(location) as s:
        return Run(location, run_id or s.latest_run())


def runs(store: str | os.PathLike = DEFAULT_STORE) -> pd.DataFrame:
    """The runs in ``store``, one row each (``datalever runs``)."""
    with _open_store(_location(store)) as s:
        return s.runs()


def ask(
    spec: Spec | Mapping[str, Any] | str | os.PathLike,
    store: str | os.PathLike = DEFAULT_STORE,
    *,
    max_minutes: float = 5.0,
    jobs: int = 1,
    executor: str = "local",
    address: str | None = None,
) -> Answer:
    """Search collective sizes adaptively for the spec's ``[question]`` and answer it with
    numbers (``datalever ask --spec``). ``answer.text`` is the sentence; ``answer.to_dict()``
    has the sizes examined. ``executor="ray"`` runs the scenarios on a Ray cluster."""
    from datalever.answer import ask as search
    from datalever.answer import check_answerable
    from datalever.engine.runner import check_runnable
    from datalever.store import ResultsStore

    checked_spec = load_spec(spec)
    check_answerable(checked_spec)
    data = load_dataset(checked_spec)
    check_runnable(checked_spec, data, jobs=jobs if executor == "local" else 1)
    with _closing(ResultsStore(_location(store))) as s:
        return search(
            checked_spec,
            s,
            data,
            max_seconds=60 * max_minutes,
            jobs=jobs,
            executor=executor,
            address=address,
        )


def _location(store: object) -> str:
    """A store's location as text: a SQLite path or a postgresql:// URL."""
    if not isinstance(store, str | os.PathLike):
        raise DataleverError(
            f"A results store is a path or a URL, not {type(store).__name__}.",
            'pass e.g. store="results.sqlite".',
        )
    return os.fspath(store)


class _closing:
    """A store opened for one block and closed after it."""

    def __init__(self, store: ResultsStore) -> None:
        self.store = store

    def __enter__(self) -> ResultsStore:
        return self.store

    def __exit__(self, *exc: object) -> None:
        self.store.engine.dispose()  # no connection outlives the call


def _open_store(location: str) -> _closing:
    """A store that must exist already: opening a missing SQLite file would create it."""
    from datalever.store import ResultsStore, sqlite_path

    path = sqlite_path(location)
    if path is not None and not path.exists():
        raise DataleverError(
            f"There is no results store at {location}.",
            "run a spec into it first (datalever.run(spec, store=...)).",
        )
    return _closing(ResultsStore(location))


__all__ = [
    "DEFAULT_STORE",
    "Run",
    "ask",
    "load_dataset",
    "load_spec",
    "open_run",
    "run",
    "runs",
]
