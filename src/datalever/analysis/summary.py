"""The summary table: capability change against collective size, with confidence intervals.

Each scenario result is paired with the no-action model of the same learner judged on the same
held-out records (same fold, same evaluation group). Per sample (one drawn collective), values
and paired changes are averaged over folds; across samples we report the mean, a bootstrap
confidence interval (BCa by default) and a paired t-test of the change against zero. A
group drawn once (a fixed set of contributors) is spread over its folds instead. The share
of the gap is ``(baseline - value) / (baseline - reference)``: the part of the learner's lead
over the reference learner (item mean by default) that the action erased; it reads the same way
for metrics where lower is better (RMSE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datalever.analysis.statistics import gap_note, gap_share, mean_ci, paired_test
from datalever.errors import DataleverError
from datalever.tasks import parse_metric

KEYS = [
    "learner",
    "lever",
    "collective_kind",
    "collective",
    "size",
    "count",
    "grp",
    "eval_group",
    "metric",
]
COLUMNS = KEYS + [
    "n_samples",
    "n_folds",
    "n_participants",
    "mean",
    "ci_low",
    "ci_high",
    "baseline",
    "change",
    "change_ci_low",
    "change_ci_high",
    "ci_method",
    "change_pct",
    "p_value",
    "gap_share",
    "gap_note",
    "reference",
]


def per_sample(results: pd.DataFrame) -> pd.DataFrame:
    """Values and paired changes of each drawn collective, averaged over folds."""
    df = results.copy()
    df["change"] = df["value"] - df["baseline"]
    return (
        df.groupby(KEYS + ["sample"], dropna=False)
        .agg(
            value=("value", "mean"),
            baseline=("baseline", "mean"),
            reference=("reference", "mean"),
            change=("change", "mean"),
            n_folds=("fold", "nunique"),
            n_participants=("n_participants", "mean"),
        )
        .reset_index()
    )


def per_unit(results: pd.DataFrame) -> pd.DataFrame:
    """The units intervals are taken over: each drawn collective (averaged over folds), except
    for a group drawn once (a fixed set, such as a registry's opt-outs), whose folds are its
    units: it has no spread over draws, only over held-out data (``ci_method`` says so)."""
    by_key = results.groupby(KEYS, dropna=False)
    fixed = (
        (results["collective_kind"] == "group")
        & (by_key["sample"].transform("nunique") == 1)
        & (by_key["fold"].transform("nunique") > 1)
    )
    samples = per_sample(results[~fixed]).assign(units="draws")
    if not fixed.any():
        return samples
    folds = results[fixed].copy()
    folds["change"] = folds["value"] - folds["baseline"]
    folds["n_folds"] = folds.groupby(KEYS, dropna=False)["fold"].transform("nunique")
    columns = [*KEYS, "sample", "value", "baseline", "reference", "change", "n_folds"]
    return pd.concat(
        [samples, folds[[*columns, "n_participants"]].assign(units="folds")], ignore_index=True
    )


def _higher_is_better(metric: str) -> bool:
    try:
        return parse_metric(metric).higher_is_better
    except DataleverError:
        return True


def summarise(results: pd.DataFrame, confidence: float = 0.95, method: str = "BCa") -> pd.DataFrame:
    """One row per learner × lever × collective × evaluation group × metric."""
    if results.empty:
        return pd.DataFrame(columns=COLUMNS)
    rows = []
    for key, g in per_unit(results).groupby(KEYS, dropna=False, sort=False):
        value_ci, _ = mean_ci(g["value"].to_numpy(), confidence, method)
        change_ci, used = mean_ci(g["change"].to_numpy(), confidence, method)
        if g["units"].iloc[0] == "folds":
            used = f"{used} over folds"
        baseline, change = g["baseline"].mean(), g["change"].mean()
        reference = g["reference"].mean()
        note = gap_note(baseline, reference, _higher_is_better(key[KEYS.index("metric")]))
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "n_samples": int(g["value"].notna().sum())
                if g["units"].iloc[0] == "draws"
                else int(g["sample"].nunique()),
                "n_folds": int(g["n_folds"].max()),
                "n_participants": float(g["n_participants"].mean()),
                "mean": g["value"].mean(),
                "ci_low": value_ci.low,
                "ci_high": value_ci.high,
                "baseline": baseline,
                "change": change,
                "change_ci_low": change_ci.low,
                "change_ci_high": change_ci.high,
                "ci_method": used,
                "change_pct": 100 * change / baseline if baseline else np.nan,
                "p_value": paired_test(g["change"].to_numpy()) if len(g) > 1 else np.nan,
                "gap_share": np.nan if note else gap_share(change, baseline, reference),
                "gap_note": note,
                "reference": reference,
            }
        )
    out = pd.DataFrame(rows, columns=COLUMNS)
    out["_kind"] = out["collective_kind"].map({"none": 0, "random": 1, "group": 2})
    out["_size"] = out["size"].fillna(-1).where(out["count"].isna(), out["count"] * 1e6)
    out = out.sort_values(
        ["learner", "metric", "eval_group", "_kind", "grp", "_size"], na_position="first"
    )
    return out.drop(columns=["_kind", "_size"]).reset_index(drop=True)
