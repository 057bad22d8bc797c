"""Exports of a run's results: the summary, or every stored scenario result ("raw"), as CSV,
JSON or Parquet, for analysis elsewhere (pandas, R, DuckDB, a spreadsheet).

The raw export has one row per scenario × evaluation group × metric; a scenario is one
learner × lever × collective × sample (draw) × fold. Its columns, in order:

``run_id``
    The run the rows belong to (a scenario shared by two runs appears in both).
``key``
    The scenario's key: a hash of everything that determines its result.
``learner``, ``lever``, ``lever_params``
    The learner, the lever's label (``none`` for no action) and its parameters as JSON.
``collective_kind``, ``collective``
    ``none`` (no action), ``random`` (a random draw of contributors) or ``group`` (a
    targeted group), and the collective's label (``10%``, ``50 users``, ``gender:F``).
``size``, ``count``, ``grp``
    The collective as a fraction of contributors, as a number of them, or the group it is
    drawn from (empty when not that kind).
``sample``, ``fold``
    Which draw of the collective, and which cross-validation fold (or 0 for a holdout).
``n_participants``
    How many contributors acted.
``path``, ``seconds``, ``finished_at``
    How the scenario was fitted, its compute time in seconds, when it finished (UTC).
``eval_group``, ``metric``
    Who the model was judged on, and the metric (canonical name, e.g. ``ndcg@10``).
``value``, ``baseline``, ``change``
    The metric with the action, without it (same learner, fold and held-out records), and
    ``value - baseline``.
``reference``
    The reference learner's (item mean by default) no-action value on the same records.
``n_users``
    How many contributors the evaluation group held.

The summary's ``mean`` is the mean over samples of each sample's mean over folds, and its
``change`` likewise (a group drawn once is averaged over its folds).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from datalever.data.guard import user_path
from datalever.errors import DataleverError

if TYPE_CHECKING:  # pandas and the store load only when an export is made
    import pandas as pd

    from datalever.store import ResultsStore

RAW_COLUMNS = [
    "run_id",
    "key",
    "learner",
    "lever",
    "lever_params",
    "collective_kind",
    "collective",
    "size",
    "count",
    "grp",
    "sample",
    "fold",
    "n_participants",
    "path",
    "seconds",
    "finished_at",
    "eval_group",
    "metric",
    "value",
    "baseline",
    "change",
    "reference",
    "n_users",
]
"""The columns of the raw export, in order (documented in this module's docstring)."""

RAW_ORDER = [
    "learner",
    "lever",
    "collective_kind",
    "grp",
    "size",
    "count",
    "sample",
    "fold",
    "eval_group",
    "metric",
]


class ExportFormat(StrEnum):
    table = "table"
    csv = "csv"
    json = "json"
    parquet = "parquet"


def raw_results(store: ResultsStore, run_id: str) -> pd.DataFrame:
    """Every stored result of the run, one row per scenario × evaluation group × metric, in
    a stable order (the columns of :data:`RAW_COLUMNS`)."""
    frame = store.results(run_id)
    frame.insert(0, "run_id", run_id)
    frame["change"] = frame["value"] - frame["baseline"]
    frame["count"] = frame["count"].astype("Int64")  # a whole number, or empty
    frame = frame.sort_values(RAW_ORDER, na_position="first", kind="stable")
    return frame[RAW_COLUMNS].reset_index(drop=True)


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain records (NaN as None), for JSON."""
    clean = frame.astype(object).where(frame.notna(), None)
    return clean.to_dict(orient="records")


def _looks_like(path: Path, fmt: ExportFormat) -> bool:
    """Whether an existing file looks like an earlier export in ``fmt``, so replacing it
    cannot destroy anything else (a results store, a spec, a report)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return False
    if head.startswith(b"SQLite format 3"):
        return False
    if fmt is ExportFormat.parquet:
        return head.startswith(b"PAR1")
    text = head.decode("utf-8", errors="replace").lstrip()
    if fmt is ExportFormat.json:
        return text.startswith(("[", "{"))
    first = text.split("\n", 1)[0]
    return first.startswith(("run_id,", "learner,"))


def check_output(output: Path, fmt: ExportFormat) -> None:
    """Refuse a path that is a folder, lies in a missing folder or under a file, or is an
    existing file other than an earlier export in the same format."""
    check_replaceable(
        output,
        f"results.{fmt.value}",
        lambda p: _looks_like(p, fmt),
        f"an earlier datalever {fmt.value} export",
        "export",
    )


def check_replaceable(
    output: Path, example: str, ours: Callable[[Path], bool], what: str, kind: str
) -> None:
    """Refuse an output path that is a folder, lies in a missing folder or under a file, or is
    an existing file that ``ours`` does not recognise (``what`` says what it should be, ``kind``
    names it short): a file is only ever replaced by another of its kind."""
    output = user_path(output, "--output path", f"give --output a shorter path, e.g. {example}.")
    parent = output.parent
    if not parent.exists():
        raise DataleverError(
            f"The folder {parent} does not exist.", "create it, or give another --output path."
        )
    if not parent.is_dir():
        raise DataleverError(
            f"{parent} is a file, not a folder, so {output} cannot be written.",
            "give an --output path inside a folder.",
        )
    if output.is_dir():
        raise DataleverError(
            f"{output} is a folder.", f"give --output a file name, e.g. {example}."
        )
    if output.exists() and not ours(output):
        raise DataleverError(
            f"{output} exists and is not {what}; it is left as it is.",
            f"give --output a new file name, or the path of an earlier {kind} to replace.",
        )


def write_export(frame: pd.DataFrame, fmt: ExportFormat, output: Path) -> None:
    """Write ``frame`` beside ``output`` and move it into place, so a failed write never
    leaves half a file (or damages the one it replaces)."""
    check_output(output, fmt)
    partial = output.with_name(f".{output.name}.partial")
    try:
        if fmt is ExportFormat.parquet:
            frame.to_parquet(partial, index=False)
        else:
            partial.write_text(to_text(frame, fmt), encoding="utf-8")
        os.replace(partial, output)
    except OSError as e:
        partial.unlink(missing_ok=True)
        raise DataleverError(
            f"Cannot write {output}: {e.strerror or e}.",
            "give --output a writable path on a disk with free space.",
        ) from None


def to_text(frame: pd.DataFrame, fmt: ExportFormat) -> str:
    """CSV or JSON text, for standard output or a file."""
    import json

    if fmt is ExportFormat.json:
        return json.dumps(records(frame), indent=2) + "\n"
    return frame.to_csv(index=False)
