"""Leverage statistics, independent of any learner.

Everything here works on *paired changes*: for one drawn collective (a sample), the scenario's
metric minus the no-action metric of the same learner on the same held-out records, averaged
over folds. Samples are independent draws, so intervals and tests are taken over samples.

* :func:`bootstrap_ci` — a bootstrap confidence interval of the mean (BCa by default,
  percentile on request), from :func:`scipy.stats.bootstrap`, seeded for reproducibility.
* :func:`paired_test` — a one-sample t-test of the paired changes against zero.
* :func:`relative_change`, :func:`gap_share`, :func:`leverage_power` — normalised views.
* :func:`set_back_to` — the collective size at which a curve reaches a level (for example the
  no-action level of a simpler learner), with an interval from the confidence band.
* :func:`targeted_effect` — a targeted group's non-participating members against everyone else
  (the Data Strikes paper's Table 1).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_RESAMPLES = 2000


@dataclass(frozen=True)
class Interval:
    low: float
    high: float

    def contains(self, x: float) -> bool:
        return self.low <= x <= self.high


def bootstrap_ci(
    values: np.ndarray,
    confidence: float = 0.95,
    method: str = "BCa",
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Interval:
    """Bootstrap interval of the mean of ``values`` (NaN bounds with fewer than 2 values),
    expanded for small samples (see :func:`expanded_level`).

    With all values equal the interval is that value. BCa falls back to the percentile method
    when its acceleration cannot be estimated (degenerate resamples).
    """
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2:
        return Interval(np.nan, np.nan)
    if np.ptp(v) == 0:
        return Interval(float(v[0]), float(v[0]))
    method = {"bca": "BCa", "percentile": "percentile"}.get(method.lower(), method)
    with warnings.catch_warnings():
        # Degenerate BCa estimates (tiny or lumpy samples) are detected below and fall back.
        warnings.simplefilter("ignore")
        res = stats.bootstrap(
            (v,),
            np.mean,
            confidence_level=expanded_level(confidence, len(v)),
            method=method,
            n_resamples=n_resamples,
            random_state=np.random.default_rng(seed),
            vectorized=True,
        )
    lo, hi = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if not (np.isfinite(lo) and np.isfinite(hi)) and method == "BCa":
        return bootstrap_ci(v, confidence, "percentile", n_resamples, seed)
    return Interval(lo, hi)


def expanded_level(confidence: float, n: int) -> float:
    """The level at which to read a bootstrap interval so it covers like a t-interval.

    Bootstrap intervals of a mean are too narrow for small samples (they behave like
    ``mean ± z·sd/√n`` with the plug-in sd). Hesterberg's *expanded* percentile interval (2015)
    widens them: read the bootstrap at the level whose normal quantile equals
    ``√(n/(n-1)) · t_{n-1}`` at the requested level. With 30 samples a nominal 95 % interval
    otherwise covers about 92 %; expanded, about 95 % (tests/test_statistics.py).
    """
    alpha = 1 - confidence
    z = np.sqrt(n / (n - 1)) * stats.t.ppf(1 - alpha / 2, n - 1)
    return float(1 - 2 * stats.norm.sf(z))


def paired_test(changes: np.ndarray) -> float:
    """Two-sided p-value that the mean paired change is zero (one-sample t-test)."""
    v = np.asarray(changes, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) < 2 or np.ptp(v) == 0:
        return 0.0 if len(v) >= 2 and v[0] != 0 else 1.0
    return float(stats.ttest_1samp(v, 0.0).pvalue)


def relative_change(change: float, baseline: float) -> float:
    """Change as a fraction of the no-action value."""
    return change / baseline if baseline else np.nan


def gap_share(change: float, baseline: float, reference: float) -> float:
    """Share of the learner's lead over the reference learner that the change erased:
    ``(baseline - value) / (baseline - reference)`` with ``value = baseline + change``.
    Reads the same for metrics where lower is better."""
    gap = baseline - reference
    return -change / gap if abs(gap) > 1e-12 else np.nan


def leverage_power(value: float, worst: float, best: float) -> float:
    """Data leverage power (Vincent & Hecht, CSCW 2021): ``(value - worst) / (best - worst)``."""
    return (value - worst) / (best - worst) if best != worst else np.nan


def crossing(sizes: np.ndarray, curve: np.ndarray, level: float) -> float:
    """The smallest size at which the piecewise-linear ``curve`` reaches ``level`` going from
    its value at the smallest size; NaN if it never does."""
    x, y = np.asarray(sizes, float), np.asarray(curve, float)
    order = np.argsort(x)
    x, y = x[order], y[order]
    sign0 = np.sign(y[0] - level)
    if sign0 == 0:
        return float(x[0])
    for i in range(1, len(x)):
        if np.sign(y[i] - level) != sign0:
            t = (level - y[i - 1]) / (y[i] - y[i - 1])
            return float(x[i - 1] + t * (x[i] - x[i - 1]))
    return np.nan


def set_back_to(
    sizes: np.ndarray, mean: np.ndarray, low: np.ndarray, high: np.ndarray, level: float
) -> tuple[float, Interval]:
    """Where a falling (or rising) curve reaches ``level``, with the interval where its
    confidence band does. For a falling curve the band's lower edge reaches the level first."""
    point = crossing(sizes, mean, level)
    a, b = crossing(sizes, low, level), crossing(sizes, high, level)
    if np.isnan(a) and np.isnan(b):
        return point, Interval(np.nan, np.nan)
    # A band edge that never reaches the level within the sizes run leaves the interval open.
    high_end = np.inf if np.isnan(a) or np.isnan(b) else max(a, b)
    return point, Interval(float(np.nanmin([a, b])), float(high_end))


@dataclass(frozen=True)
class TargetedEffect:
    """The non-participating members of a targeted group against everyone else."""

    members_change: float
    others_change: float
    ratio: float
    p_value: float


def targeted_effect(members_changes: np.ndarray, others_changes: np.ndarray) -> TargetedEffect:
    """Per-sample changes of the group's non-participating members and of non-members, from
    the same scenarios; the difference is tested paired over samples."""
    m = np.asarray(members_changes, float)
    o = np.asarray(others_changes, float)
    mm, om = float(np.nanmean(m)), float(np.nanmean(o))
    return TargetedEffect(mm, om, mm / om if om else np.nan, paired_test(m - o))
