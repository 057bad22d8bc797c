"""The summary table: capability change against collective size, with confidence intervals.

Each scenario result is paired with the no-action model of the same learner judged on the same
held-out records (same fold, same evaluation group). Per sample (one drawn collective), values
and paired changes are averaged over folds; across samples we report the mean and a Student-t
confidence interval. The share of the gap is ``(baseline - value) / (baseline - reference)``:
the part of the learner's lead over the reference learner (item mean by default) that the
action erased; it reads the same way for metrics where lower is better (RMSE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

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
    "change_pct",
    "gap_share",
    "reference",
]


def _t_interval(values: pd.Series, confidence: float) -> tuple[float, float]:
    v = values.dropna().to_numpy(float)
    if len(v) < 2:
        return (np.nan, np.nan)
    half = stats.t.ppf(0.5 + confidence / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    return (v.mean() - half, v.mean() + half)


def summarise(results: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """One row per learner × lever × collective × evaluation group × metric."""
    if results.empty:
        return pd.DataFrame(columns=COLUMNS)
    df = results.copy()
    df["change"] = df["value"] - df["baseline"]
    per_sample = (
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
    rows = []
    for key, g in per_sample.groupby(KEYS, dropna=False, sort=False):
        lo, hi = _t_interval(g["value"], confidence)
        clo, chi = _t_interval(g["change"], confidence)
        baseline, change = g["baseline"].mean(), g["change"].mean()
        reference = g["reference"].mean()
        gap = baseline - reference
        rows.append(
            {
                **dict(zip(KEYS, key, strict=True)),
                "n_samples": int(g["value"].notna().sum()),
                "n_folds": int(g["n_folds"].max()),
                "n_participants": float(g["n_participants"].mean()),
                "mean": g["value"].mean(),
                "ci_low": lo,
                "ci_high": hi,
                "baseline": baseline,
                "change": change,
                "change_ci_low": clo,
                "change_ci_high": chi,
                "change_pct": 100 * change / baseline if baseline else np.nan,
                "gap_share": -change / gap
                if gap and np.isfinite(gap) and abs(gap) > 1e-12
                else np.nan,
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
