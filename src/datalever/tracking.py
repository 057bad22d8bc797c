"""Logging a stored run to MLflow (``datalever run SPEC --mlflow URI``, ``datalever report
--mlflow URI``), for teams whose experiments live there.

What is logged, into the experiment named by ``$MLFLOW_EXPERIMENT_NAME`` or else the spec's
name, as one MLflow run per datalever run (logging the same run again updates it):

- params: the spec's values, flattened to dotted paths (``learners.0.n_factors``; a list of
  plain values, such as ``collectives.sizes``, is one param);
- metrics: per summary row (learner × lever × collective × evaluation group × metric) its
  mean, interval ends, paired change with its interval ends and relative change, named
  ``LEARNER/LEVER/COLLECTIVE/GROUP/METRIC/STAT`` with characters MLflow refuses replaced
  (``ndcg@10`` is ``ndcg_at_10``, ``gender:F`` is ``gender_F``), e.g.
  ``biased_mf/strike/random 0.3/everyone/ndcg_at_10/change``;
- tags: the datalever run id, dataset, data checksum and version;
- artifacts: ``spec.json``, ``results/summary.csv``, ``results/summary.parquet``,
  ``results/raw.parquet`` and ``report.html``.

MLflow is an optional extra: ``pip install 'datalever[mlflow]'``.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datalever.errors import DataleverError

INSTALL = "pip install 'datalever[mlflow]'"
#: The statistics of each summary row logged as metrics.
STATS = ("mean", "ci_low", "ci_high", "change", "change_ci_low", "change_ci_high", "change_pct")
RUN_TAG = "datalever.run_id"
MAX_KEY = 250
MAX_PARAM_VALUE = 6000
PARAMS_PER_BATCH = 100
METRICS_PER_BATCH = 1000


@dataclass(frozen=True)
class Logged:
    """Where a run was logged."""

    experiment: str
    mlflow_run_id: str
    metrics: dict[str, float]
    params: dict[str, str]


def require_mlflow(uri: str) -> None:
    """Fail early, before a long run, when MLflow is missing or the URI is blank."""
    if not uri.strip():
        raise DataleverError(
            "The MLflow tracking URI is blank.",
            "give --mlflow a URI such as file:///tmp/mlruns, sqlite:///mlflow.db or "
            "http://localhost:5000.",
        )
    try:
        import mlflow  # noqa: F401
    except ImportError:
        raise DataleverError(
            "--mlflow logs to MLflow, which is not installed.", f"run: {INSTALL}"
        ) from None


def _is_file_store(uri: str) -> bool:
    return uri.startswith("file:") or "://" not in uri


def flatten(value: Any, prefix: str = "") -> dict[str, str]:
    """A spec as dotted params: tables and lists of tables are walked (``learners.0.name``),
    lists of plain values kept whole (``collectives.sizes`` = ``[0.1, 0.5]``)."""
    out: dict[str, str] = {}
    if isinstance(value, dict):
        for key, v in value.items():
            out.update(flatten(v, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        for i, v in enumerate(value):
            out.update(flatten(v, f"{prefix}.{i}"))
    else:
        text = value if isinstance(value, str) else json.dumps(value)
        out[_key(prefix)] = text[:MAX_PARAM_VALUE]
    return out


_REPLACE = (("@", "_at_"), ("%", "pct"), ("×", "x"), (":", "_"), ("=", "_"))


def _segment(text: str) -> str:
    """One part of an MLflow name: letters, digits, ``_ - .`` and spaces only."""
    for old, new in _REPLACE:
        text = text.replace(old, new)
    text = re.sub(r"[^A-Za-z0-9_\-. ]+", "_", text).strip(" .")
    return (text or "_")[:60]


def _key(dotted: str) -> str:
    return re.sub(r"[^A-Za-z0-9_\-. /]+", "_", dotted)[:MAX_KEY]


def metric_name(row: Any, stat: str) -> str:
    """``LEARNER/LEVER/COLLECTIVE/GROUP/METRIC/STAT`` for a summary row, as MLflow accepts."""
    parts = [row["learner"], row["lever"], row["collective"], row["eval_group"], row["metric"]]
    return "/".join(_segment(str(p)) for p in [*parts, stat])[:MAX_KEY]


def summary_metrics(summary) -> dict[str, float]:
    """The summary's figures by MLflow metric name (finite values only; names made unique)."""
    out: dict[str, float] = {}
    for _, row in summary.iterrows():
        for stat in STATS:
            value = row[stat]
            if value is None or not math.isfinite(float(value)):
                continue
            name = metric_name(row, stat)
            base, n = name, 1
            while name in out:  # two labels that differ only in characters MLflow refuses
                n += 1
                name = f"{base}_{n}"
            out[name] = float(value)
    return out


def log_run(
    uri: str, store, run_id: str, spec, answer: str | None = None, experiment: str | None = None
) -> Logged:
    """Log the stored run ``run_id`` to MLflow at ``uri``: params, metrics, artifacts."""
    require_mlflow(uri)
    if _is_file_store(uri):  # MLflow 3 asks for an opt-in to its file store; the URI is one
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from datalever import __version__
    from datalever.analysis import summarise
    from datalever.export import raw_results
    from datalever.report.html import render_report, report_inputs

    results = store.results(run_id)
    summary = summarise(results, confidence=spec.evaluation.confidence)
    params = flatten(store.run_spec(run_id))
    metrics = summary_metrics(summary)
    name = experiment or os.environ.get("MLFLOW_EXPERIMENT_NAME") or spec.name
    tags = {
        RUN_TAG: run_id,
        "datalever.dataset": str(spec.data.dataset)[:5000],
        "datalever.checksum": store.run_checksum(run_id),
        "datalever.version": __version__,
    }
    try:
        mlflow_run_id = _log(uri, name, f"{spec.name} ({run_id})"[:250], tags, params, metrics)
        with tempfile.TemporaryDirectory(prefix="datalever-mlflow-") as tmp:
            folder = Path(tmp)
            (folder / "spec.json").write_text(
                json.dumps(store.run_spec(run_id), indent=2) + "\n", encoding="utf-8"
            )
            (folder / "results").mkdir()
            summary.to_csv(folder / "results" / "summary.csv", index=False)
            summary.to_parquet(folder / "results" / "summary.parquet", index=False)
            raw_results(store, run_id).to_parquet(folder / "results" / "raw.parquet", index=False)
            html = render_report(report_inputs(store, run_id, spec, answer))
            (folder / "report.html").write_text(html, encoding="utf-8")
            _client(uri).log_artifacts(mlflow_run_id, str(folder))
            _client(uri).set_terminated(mlflow_run_id)
    except DataleverError:
        raise
    except Exception as e:  # MLflow's and its transports' errors have no common base class
        raise DataleverError(
            f"Logging run {run_id} to MLflow at {uri} failed: {str(e)[:300]}. Its results are "
            "stored.",
            f"check the tracking URI and server, then run `datalever report --run {run_id} "
            f"--mlflow {uri}` to log it again.",
        ) from None
    return Logged(name, mlflow_run_id, metrics, params)


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _log(
    uri: str,
    experiment: str,
    run_name: str,
    tags: dict[str, str],
    params: dict[str, str],
    metrics: dict[str, float],
) -> str:
    """Create (or find, when this datalever run was logged before) the MLflow run, and log
    its tags, params and metrics in batches of the sizes MLflow accepts."""
    import time

    from mlflow.entities import Metric, Param, RunTag

    client = _client(uri)
    found = client.get_experiment_by_name(experiment)
    experiment_id = found.experiment_id if found else client.create_experiment(experiment)
    earlier = client.search_runs(
        [experiment_id], filter_string=f"tags.`{RUN_TAG}` = '{tags[RUN_TAG]}'", max_results=1
    )
    if earlier:
        run_id = earlier[0].info.run_id
        client.update_run(run_id, status="RUNNING")
    else:
        run_id = client.create_run(experiment_id, run_name=run_name).info.run_id
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])
    items = list(params.items())
    for i in range(0, len(items), PARAMS_PER_BATCH):
        chunk = items[i : i + PARAMS_PER_BATCH]
        client.log_batch(run_id, params=[Param(k, v) for k, v in chunk])
    now = int(time.time() * 1000)
    values = list(metrics.items())
    for i in range(0, len(values), METRICS_PER_BATCH):
        chunk = values[i : i + METRICS_PER_BATCH]
        client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in chunk])
    return run_id
