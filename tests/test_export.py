"""`datalever results` exports: the summary and every stored result (--raw) as CSV, JSON and
Parquet, on a real small run; the raw rows, averaged as the summary averages them, give the
summary's numbers."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from datalever.analysis.summary import KEYS
from datalever.export import RAW_COLUMNS
from datalever.store import RESULT_COLUMNS, ResultsStore
from tests.conftest import SMALL_SPEC


def datalever(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def clear_error(result: subprocess.CompletedProcess, *needles: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 2, output
    assert "Traceback" not in output and "Error:" in output
    flat = " ".join(output.split())
    for needle in needles:
        assert needle in flat, flat


@pytest.fixture(scope="module")
def run(tmp_path_factory, ml100k) -> tuple[Path, str]:
    """A real small run: 2 learners, 2 folds, 2 samples of 2 sizes and a targeted group."""
    tmp = tmp_path_factory.mktemp("export")
    spec = tmp / "spec.toml"
    spec.write_text(SMALL_SPEC)
    db = tmp / "r.sqlite"
    ran = datalever("run", str(spec), "--store", str(db), "-q")
    assert ran.returncode == 0, ran.stderr
    (run_id,) = ResultsStore(db).runs()["run_id"]
    return db, run_id


def test_raw_columns_are_the_stored_ones_with_the_run_and_the_change():
    assert set(RAW_COLUMNS) == set(RESULT_COLUMNS) | {"run_id", "change"}
    assert len(RAW_COLUMNS) == len(set(RAW_COLUMNS))


def test_raw_export_has_every_stored_result_in_every_format(run, tmp_path):
    db, run_id = run
    stored = ResultsStore(db).results(run_id)
    csv = datalever("results", "--store", str(db), "--raw")  # csv by default
    assert csv.returncode == 0, csv.stderr
    from_csv = pd.read_csv(io.StringIO(csv.stdout))
    assert list(from_csv.columns) == RAW_COLUMNS
    assert len(from_csv) == len(stored) > 0
    assert set(from_csv["run_id"]) == {run_id}
    # one row per scenario × evaluation group × metric
    assert not from_csv.duplicated(["key", "eval_group", "metric"]).any()
    assert set(from_csv["key"]) == set(stored["key"])
    assert set(from_csv["fold"]) == {0, 1} and set(from_csv["sample"]) == {0, 1}
    assert (from_csv["change"] - (from_csv["value"] - from_csv["baseline"])).abs().max() < 1e-12

    out = tmp_path / "raw.parquet"
    made = datalever("results", "--store", str(db), "--raw", "-f", "parquet", "-o", str(out))
    assert made.returncode == 0, made.stderr
    assert out.read_bytes()[:4] == b"PAR1"
    parquet = pd.read_parquet(out)
    assert list(parquet.columns) == RAW_COLUMNS
    pd.testing.assert_series_equal(parquet["value"], from_csv["value"], check_dtype=False)
    assert list(parquet["key"]) == list(from_csv["key"])  # the same stable order

    as_json = json.loads(datalever("results", "--store", str(db), "--raw", "-f", "json").stdout)
    assert len(as_json) == len(stored) and set(as_json[0]) == set(RAW_COLUMNS)
    none_rows = [r for r in as_json if r["collective_kind"] == "none"]
    assert none_rows and all(r["size"] is None and r["change"] == 0 for r in none_rows)

    only = datalever("results", "--store", str(db), "--raw", "--metric", "RMSE")
    assert set(pd.read_csv(io.StringIO(only.stdout))["metric"]) == {"rmse"}


def test_raw_rows_averaged_as_the_summary_does_give_its_numbers(run, tmp_path):
    """Per drawn collective the mean over folds, then the mean over draws."""
    db, _ = run
    raw_file, summary_file = tmp_path / "raw.parquet", tmp_path / "summary.parquet"
    for args, out in (((), summary_file), (("--raw",), raw_file)):
        made = datalever("results", "--store", str(db), *args, "-f", "parquet", "-o", str(out))
        assert made.returncode == 0, made.stderr
    raw, summary = pd.read_parquet(raw_file), pd.read_parquet(summary_file)
    per_sample = raw.groupby([*KEYS, "sample"], dropna=False)[["value", "change", "baseline"]]
    by_key = per_sample.mean().groupby(KEYS, dropna=False)
    ours = by_key.mean().join(by_key.size().rename("n_samples")).reset_index()
    merged = summary.merge(ours, on=KEYS, how="outer", suffixes=("", "_raw"), indicator=True)
    assert (merged["_merge"] == "both").all()  # the same rows, no more, no fewer
    assert len(merged) == len(summary) > 20
    pairs = (("mean", "value"), ("change", "change_raw"), ("baseline", "baseline_raw"))
    for column, ours_column in (*pairs, ("n_samples", "n_samples_raw")):
        assert (merged[column] - merged[ours_column]).abs().max() < 1e-12, column
    assert (merged["change"] != 0).any()  # a real comparison, not of zeros


def test_summary_exports_agree_across_formats(run, tmp_path):
    db, _ = run
    out = tmp_path / "summary.parquet"
    assert datalever("results", "--store", str(db), "-f", "parquet", "-o", str(out)).returncode == 0
    csv_file = tmp_path / "summary.csv"
    made = datalever("results", "--store", str(db), "-f", "csv", "-o", str(csv_file))
    assert made.returncode == 0 and "Wrote" in made.stderr
    printed = datalever("results", "--store", str(db), "-f", "csv").stdout
    assert csv_file.read_text() == printed
    parquet, csv = pd.read_parquet(out), pd.read_csv(csv_file)
    assert list(parquet.columns) == list(csv.columns)
    assert {"mean", "ci_low", "ci_high", "change", "change_ci_low", "p_value"} <= set(csv.columns)
    assert (parquet["mean"] - csv["mean"]).abs().max() < 1e-9
    # a later export replaces an earlier one of the same format
    again = datalever("results", "--store", str(db), "-f", "parquet", "-o", str(out))
    assert again.returncode == 0, again.stderr


def test_exports_refuse_what_they_cannot_write_and_touch_nothing(run, tmp_path):
    db, _ = run
    before = db.read_bytes()
    clear_error(
        datalever("results", "--store", str(db), "-f", "parquet"), "binary", "--output PATH"
    )
    clear_error(datalever("results", "--store", str(db), "--raw", "-f", "table"), "--raw rows")
    clear_error(datalever("results", "--store", str(db), "-o", str(tmp_path / "t.txt")), "terminal")
    clear_error(
        datalever("results", "--store", str(db), "-f", "parquet", "-o", str(db)),
        "is not an earlier datalever parquet export",
    )
    too_long = str(tmp_path / ("é" * 300 + ".csv"))
    clear_error(datalever("results", "--store", str(db), "-f", "csv", "-o", too_long), "255 bytes")
    clear_error(datalever("report", "--store", str(db), "--figures", too_long), "255 bytes")
    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC)
    clear_error(
        datalever("results", "--store", str(db), "-f", "csv", "-o", str(spec)), "left as it is"
    )
    assert spec.read_text() == SMALL_SPEC
    clear_error(
        datalever("results", "--store", str(db), "-f", "csv", "-o", str(tmp_path / "no" / "x")),
        "does not exist",
    )
    clear_error(
        datalever("results", "--store", str(db), "-f", "json", "-o", str(tmp_path)), "is a folder"
    )
    assert db.read_bytes() == before
    assert not list(tmp_path.glob(".*partial"))
