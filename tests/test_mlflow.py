"""`datalever run SPEC --mlflow URI` and `report --mlflow URI` against a real local MLflow
file store, read back with MLflow's own client: params, metrics and artifacts equal
datalever's own numbers; without MLflow installed, one paragraph naming the extra."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from datalever.analysis import summarise
from datalever.export import raw_results
from datalever.store import ResultsStore
from datalever.tracking import STATS, flatten, metric_name
from tests.conftest import SMALL_SPEC

mlflow = pytest.importorskip("mlflow")


def datalever(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.fixture(scope="module")
def logged(tmp_path_factory, ml100k):
    """A real small run logged to a file store, and MLflow's client reading it."""
    from mlflow.tracking import MlflowClient

    tmp = tmp_path_factory.mktemp("mlflow")
    spec = tmp / "spec.toml"
    spec.write_text(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"))
    db, uri = tmp / "r.sqlite", f"file://{tmp / 'mlruns'}"
    ran = datalever("run", str(spec), "--store", str(db), "-q", "--mlflow", uri)
    assert ran.returncode == 0, ran.stderr
    assert "Logged run" in ran.stdout
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"  # MLflow 3's opt-in to reading it here
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("small")
    (mlflow_run,) = client.search_runs([experiment.experiment_id])
    return ResultsStore(db), uri, client, mlflow_run, db


def test_params_are_the_stored_spec_flattened(logged):
    store, _, _, mlflow_run, _ = logged
    (run_id,) = store.runs()["run_id"]
    params = mlflow_run.data.params
    spec = store.run_spec(run_id)
    assert params == flatten(spec)
    assert params["learners.0.name"] == "item_mean" and params["learners.1.name"] == "popularity"
    assert params["seed"] == "3" and json.loads(params["collectives.sizes"]) == [0.0, 0.2, 0.6]
    assert json.loads(params["evaluation.confidence"]) == spec["evaluation"]["confidence"]
    assert mlflow_run.data.tags["datalever.run_id"] == run_id
    assert mlflow_run.data.tags["datalever.checksum"] == store.run_checksum(run_id)
    assert mlflow_run.info.status == "FINISHED"


def test_metrics_are_the_summary_figures(logged):
    store, _, _, mlflow_run, _ = logged
    (run_id,) = store.runs()["run_id"]
    summary = summarise(store.results(run_id), confidence=0.95)
    metrics = mlflow_run.data.metrics
    expected = {}
    for _, row in summary.iterrows():
        for stat in STATS:
            if pd.notna(row[stat]) and math.isfinite(row[stat]):
                expected[metric_name(row, stat)] = float(row[stat])
    assert metrics == expected
    row = summary[
        (summary["learner"] == "item_mean")
        & (summary["size"] == 0.6)
        & (summary["eval_group"] == "everyone")
        & (summary["metric"] == "ndcg@10")
    ].iloc[0]
    name = "item_mean/strike/random 0.6/everyone/ndcg_at_10"
    assert metrics[f"{name}/change"] == row["change"]
    assert metrics[f"{name}/change_ci_low"] == row["change_ci_low"]
    assert metrics[f"{name}/change_ci_high"] == row["change_ci_high"]


def test_artifacts_are_the_spec_results_and_report(logged, tmp_path):
    store, _, client, mlflow_run, _ = logged
    (run_id,) = store.runs()["run_id"]
    here = Path(client.download_artifacts(mlflow_run.info.run_id, "", str(tmp_path)))
    assert json.loads((here / "spec.json").read_text()) == store.run_spec(run_id)
    raw = pd.read_parquet(here / "results" / "raw.parquet")
    pd.testing.assert_frame_equal(raw, raw_results(store, run_id), check_dtype=False)
    summary = pd.read_csv(here / "results" / "summary.csv")
    assert len(summary) == len(pd.read_parquet(here / "results" / "summary.parquet")) > 0
    assert (here / "report.html").read_text().lower().startswith("<!doctype html")


def test_logging_again_updates_the_same_mlflow_run(logged, tmp_path):
    _, uri, client, mlflow_run, db = logged
    again = datalever("report", "--store", str(db), "--mlflow", uri, "-o", str(tmp_path / "r.html"))
    assert again.returncode == 0, again.stderr
    assert mlflow_run.info.run_id in again.stdout
    experiment = client.get_experiment_by_name("small")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_without_mlflow_the_error_names_the_extra(tmp_path):
    """With MLflow impossible to import, --mlflow is refused before anything runs."""
    spec = tmp_path / "spec.toml"
    spec.write_text(SMALL_SPEC)
    db = tmp_path / "r.sqlite"
    code = (
        "import sys; sys.modules['mlflow'] = None; from datalever.cli import main; "
        f"sys.argv = ['datalever', 'run', {str(spec)!r}, '--store', {str(db)!r}, "
        "'--mlflow', 'file:///nowhere']; main()"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    text = " ".join((out.stdout + out.stderr).split())
    assert "Traceback" not in text and "pip install 'datalever[mlflow]'" in text
    assert not db.exists()
