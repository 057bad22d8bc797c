"""The Conscious Data Contribution table: the smallest participation at which data leverage
power reaches a threshold (0.5 … 0.9), with an interval.

For each learner, lever variant and perspective, the DLP curve is the mean DLP of the random
collectives against their size, with its per-size confidence interval (from
:func:`~datalever.analysis.summary.summarise`). The point estimate of the smallest size that
reaches a threshold ``t`` is where the mean curve first crosses ``t`` (linear between sizes);
the interval runs from where the curve's upper bound first crosses ``t`` (no smaller size is
plausible) to where its lower bound first does (this size surely reaches it). Nothing is
extrapolated: a curve that never crosses within the sizes run is shown as "> largest size",
and one that is already past ``t`` at the smallest size as "≤ smallest size".
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datalever.analysis.summary import summarise

THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)
#: The evaluation groups of ``dlp`` rows and the perspective each stands for.
PERSPECTIVES = {"everyone": "fixed holdout", "company": "company"}


def first_crossing(sizes: np.ndarray, values: np.ndarray, threshold: float) -> float:
    """The smallest size at which the piecewise-linear curve through the points reaches
    ``threshold``: the smallest size itself when it already does, NaN when no size does."""
    for i in range(len(sizes)):
        if np.isnan(values[i]) or values[i] < threshold:
            continue
        if i == 0 or np.isnan(values[i - 1]):
            return float(sizes[i])
        lo_x, lo_y = sizes[i - 1], values[i - 1]
        return float(lo_x + (threshold - lo_y) * (sizes[i] - lo_x) / (values[i] - lo_y))
    return float("nan")


def dlp_table(
    results: pd.DataFrame, confidence: float = 0.95, thresholds: tuple[float, ...] = THRESHOLDS
) -> pd.DataFrame:
    """One row per learner × lever × perspective × threshold: the smallest participation
    (``estimate``) and its interval (``low``, ``high``); NaN where the sizes run never reach
    it. Empty when the results hold no ``dlp`` rows."""
    columns = [
        *["learner", "lever", "perspective", "threshold", "estimate", "low", "high"],
        *["smallest", "largest"],
    ]
    dlp = results[(results["metric"] == "dlp") & (results["collective_kind"] == "random")]
    dlp = dlp[dlp["size"].notna()]
    if dlp.empty:
        return pd.DataFrame(columns=columns)
    summary = summarise(dlp, confidence)
    rows = []
    for (learner, lever, group), curve in summary.groupby(
        ["learner", "lever", "eval_group"], sort=True
    ):
        curve = curve.sort_values("size")
        sizes = curve["size"].to_numpy(float)
        # One sample per size has no interval: its bounds are unknown, not unreached.
        has_interval = curve["ci_low"].notna().any()
        for t in thresholds:
            rows.append(
                {
                    "learner": learner,
                    "lever": lever,
                    "perspective": PERSPECTIVES.get(group, group),
                    "threshold": t,
                    "estimate": first_crossing(sizes, curve["mean"].to_numpy(float), t),
                    "low": first_crossing(sizes, curve["ci_high"].to_numpy(float), t)
                    if has_interval
                    else None,
                    "high": first_crossing(sizes, curve["ci_low"].to_numpy(float), t)
                    if has_interval
                    else None,
                    "smallest": float(sizes.min()),
                    "largest": float(sizes.max()),
                }
            )
    return pd.DataFrame(rows, columns=columns)


def format_share(x: float, smallest: float, largest: float) -> str:
    """A size as a percentage: "> largest" when the curve never gets there, "≤ smallest" when
    it is there from the smallest size run; "n/a" when there is no value (no interval)."""
    if x is None:
        return "n/a"
    if np.isnan(x):
        return f"> {100 * largest:.3g} %"
    if x <= smallest:
        return f"≤ {100 * smallest:.3g} %"
    return f"{100 * x:.3g} %"
