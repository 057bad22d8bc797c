"""Answer "can a collective of size X change metric M by delta Z?" by adaptive search.

The search is separate from what it spends: it asks an *evaluator* for the per-sample scores of
a collective size (see :mod:`.question`: reaching the target means ``score >= threshold``) and
decides, size by size, whether the expected score is above or below the threshold.

Procedure

1. A coarse sweep of sizes (1 % … 99 % of users) with a few samples each.
2. Undecided sizes that could still matter get more samples, in looks of growing size
   (5, 10, 20 samples by default), until they are decided or the looks run out.
3. Bisection between the largest size decided *short* and the smallest decided *reaches*,
   until the bracket is narrower than the tolerance, a size stays undecided, or time runs out.

Decisions and the stopping rule. Each decision is a one-sided Student-t bound on the mean
score of one size at level ``1 - alpha / (2 L)``, where ``L`` is the number of looks allowed
per size: a Bonferroni correction over the looks (so peeking after every look and stopping
when the bound clears cannot inflate the error rate) and over the two ends of the reported
bracket. The reported interval is the bracket itself; it contains the true threshold whenever
its two end decisions are right, which, given a curve whose expectation is monotone in size,
happens with probability at least ``1 - alpha``. Simulations with a known curve check this
(tests/test_statistics.py). Student-t rather than the bootstrap is used for decisions because
they are taken with as few as five samples, where bootstrap intervals are too narrow.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

COARSE_SIZES = (0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 0.99)
LOOKS = (5, 10, 20)


@dataclass
class Verdict:
    """What is known about one collective size."""

    size: float
    scores: np.ndarray
    low: float = np.nan
    high: float = np.nan
    decision: str = "undecided"  # "reaches", "short" or "undecided"

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return float(np.mean(self.scores)) if self.n else np.nan


@dataclass
class SearchResult:
    """The outcome: ``answer`` is ``yes``, ``no`` or ``undecided``."""

    answer: str
    threshold: float
    point: float = np.nan
    low: float = np.nan
    high: float = np.nan
    verdicts: list[Verdict] = field(default_factory=list)
    out_of_time: bool = False


def decide(scores: np.ndarray, threshold: float, alpha: float) -> tuple[float, float, str]:
    """One-sided bounds at level ``1 - alpha`` on the mean score, and the decision."""
    v = np.asarray(scores, float)
    mean = float(v.mean())
    if len(v) < 2:
        return np.nan, np.nan, "undecided"
    se = float(v.std(ddof=1)) / np.sqrt(len(v))
    half = float(stats.t.ppf(1 - alpha, len(v) - 1)) * se
    low, high = mean - half, mean + half
    if low >= threshold:
        return low, high, "reaches"
    if high < threshold:
        return low, high, "short"
    return low, high, "undecided"


class AdaptiveSearch:
    """Find the smallest collective size whose expected score reaches ``threshold``.

    ``evaluate(size, n)`` returns the scores of samples ``0..n-1`` of that size (an evaluator
    that stores results returns earlier samples unchanged, so looks only add samples).
    ``evaluate_many([(size, n), ...])``, when given, evaluates several looks at once (so an
    engine can keep every core busy); by default it calls ``evaluate`` for each.
    """

    def __init__(
        self,
        evaluate: Callable[[float, int], np.ndarray],
        threshold: float,
        confidence: float = 0.95,
        coarse: Sequence[float] = COARSE_SIZES,
        looks: Sequence[int] = LOOKS,
        tolerance: float = 0.02,
        resolution: float = 1e-9,
        max_seconds: float | None = None,
        evaluate_many: Callable[[list[tuple[float, int]]], list[np.ndarray]] | None = None,
    ) -> None:
        self.evaluate = evaluate
        self.evaluate_many = evaluate_many or (lambda looks: [evaluate(s, n) for s, n in looks])
        self.threshold = threshold
        self.alpha = (1 - confidence) / (2 * len(looks))
        self.coarse = sorted(coarse)
        self.looks = list(looks)
        self.tolerance = tolerance
        self.resolution = resolution
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.verdicts: dict[float, Verdict] = {}

    def _out_of_time(self) -> bool:
        return self.deadline is not None and time.monotonic() > self.deadline

    def _look(self, looks: list[tuple[float, int]]) -> None:
        for (size, _), scores in zip(looks, self.evaluate_many(looks), strict=True):
            verdict = Verdict(size, np.asarray(scores, float))
            verdict.low, verdict.high, verdict.decision = decide(
                verdict.scores, self.threshold, self.alpha
            )
            self.verdicts[size] = verdict

    def _settle(self, size: float) -> Verdict:
        """Look at ``size`` with growing samples until decided, looks run out, or time does."""
        verdict = self.verdicts.get(size)
        for n in self.looks:
            if verdict is not None and (verdict.decision != "undecided" or verdict.n >= n):
                continue
            if self._out_of_time():
                break
            self._look([(size, n)])
            verdict = self.verdicts[size]
        return verdict

    def _bracket(self) -> tuple[float, float | None]:
        reaches = [s for s, v in self.verdicts.items() if v.decision == "reaches"]
        hi = min(reaches) if reaches else None
        short = [
            s for s, v in self.verdicts.items() if v.decision == "short" and (hi is None or s < hi)
        ]
        return (max(short) if short else 0.0), hi

    def run(self) -> SearchResult:
        self._look([(size, self.looks[0]) for size in self.coarse])
        for n in self.looks[1:]:
            if self._out_of_time():
                break
            lo, hi = self._bracket()
            pending = [
                (size, n)
                for size, v in sorted(self.verdicts.items())
                if v.decision == "undecided" and size > lo and (hi is None or size < hi)
            ]
            if pending:
                self._look(pending)
        lo, hi = self._bracket()
        while hi is not None and hi - lo > self.tolerance and not self._out_of_time():
            mid = (lo + hi) / 2
            if self.resolution:
                mid = round(mid / self.resolution) * self.resolution
                if mid <= lo or mid >= hi:
                    break
            # A size already examined (to within the resolution: the same number of users)
            # and still undecided after all its looks ends the refinement.
            if any(abs(size - mid) < self.resolution for size in self.verdicts):
                break
            verdict = self._settle(mid)
            if verdict is None or verdict.decision == "undecided":
                break
            lo, hi = self._bracket()
        return self._result(lo, hi)

    def _result(self, lo: float, hi: float | None) -> SearchResult:
        verdicts = [self.verdicts[s] for s in sorted(self.verdicts)]
        out_of_time = self._out_of_time()
        if hi is not None:
            inside = [v for v in verdicts if lo <= v.size <= hi]
            sizes = np.array([0.0] + [v.size for v in inside])
            means = np.array([0.0] + [v.mean for v in inside])
            point = _first_crossing(sizes, means, self.threshold)
            point = float(np.clip(point if np.isfinite(point) else hi, lo, hi))
            return SearchResult("yes", self.threshold, point, lo, hi, verdicts, out_of_time)
        largest = verdicts[-1] if verdicts else None
        if largest is not None and largest.decision == "short" and largest.size == max(self.coarse):
            return SearchResult("no", self.threshold, np.nan, lo, np.nan, verdicts, out_of_time)
        return SearchResult("undecided", self.threshold, np.nan, lo, np.nan, verdicts, out_of_time)


def _first_crossing(sizes: np.ndarray, means: np.ndarray, level: float) -> float:
    order = np.argsort(sizes)
    x, y = sizes[order], means[order]
    for i in range(1, len(x)):
        if y[i - 1] < level <= y[i]:
            return float(x[i - 1] + (level - y[i - 1]) / (y[i] - y[i - 1]) * (x[i] - x[i - 1]))
    return np.nan
