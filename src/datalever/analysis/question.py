"""The question datalever answers: can a collective change metric M by delta Z?

A delta is written the way people say it: ``-2%`` (relative to the no-action value), ``-0.01``
(absolute, in the metric's units), ``gap:50%`` (half of the learner's lead over the reference
learner erased) or ``=0.8`` (a level the metric reaches: a planted signal's success of 0.9, a
DLP of 0.8; it is reached from below when it lies above the no-action value, and from above
when below). Each drawn collective (sample) gets a *score*, oriented so that reaching the
target always means ``score >= threshold``; deciding a size is then one-sided and uniform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from datalever.errors import DataleverError

_DELTA = re.compile(r"^(gap:|=)?\s*([+-]?\d+(?:\.\d+)?)\s*(%?)$")


@dataclass(frozen=True)
class Target:
    """A parsed delta: ``kind`` is ``absolute``, ``relative``, ``gap`` or ``level``; ``amount``
    is signed (relative and gap amounts as fractions; a level is the value to reach)."""

    kind: str
    amount: float
    text: str

    @property
    def threshold(self) -> float:
        if self.kind == "level":
            return 0.0
        return self.amount if self.kind == "gap" else abs(self.amount)

    def scores(self, change: np.ndarray, baseline: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Per-sample scores: reaching the target means ``score >= threshold``."""
        change = np.asarray(change, float)
        if self.kind == "level":
            value = np.asarray(baseline, float) + change
            upward = np.sign(self.amount - np.nanmean(np.asarray(baseline, float))) >= 0
            return (value - self.amount) if upward else (self.amount - value)
        if self.kind == "absolute":
            return np.sign(self.amount) * change
        if self.kind == "relative":
            return np.sign(self.amount) * change / np.asarray(baseline, float)
        gap = np.asarray(baseline, float) - np.asarray(reference, float)
        return -change / gap

    def describe(self, metric: str) -> str:
        if self.kind == "level":
            return f"brings {metric} to {self.amount:g}"
        if self.kind == "gap":
            share = f"{100 * self.amount:g} %"
            return f"erases at least {share} of its lead in {metric} over the reference"
        verb = "reduces" if self.amount < 0 else "raises"
        size = (
            f"{100 * abs(self.amount):g} %" if self.kind == "relative" else f"{abs(self.amount):g}"
        )
        return f"{verb} {metric} by at least {size}"


def parse_delta(text: str) -> Target:
    m = _DELTA.match(text.strip())
    if not m or (m.group(1) != "=" and float(m.group(2)) == 0):
        raise DataleverError(
            f"Cannot read the delta {text!r}.",
            "write it as -2% (relative), -0.01 (absolute, in the metric's units), gap:50% "
            "(share of the lead over the reference learner) or =0.8 (a level to reach).",
        )
    gap, number, pct = m.group(1), float(m.group(2)), m.group(3)
    if gap == "=":
        return Target("level", number / 100 if pct else number, text)
    if gap:
        if number <= 0:
            raise DataleverError(f"The gap share in {text!r} must be positive.", "e.g. gap:50%.")
        return Target("gap", number / 100 if pct else number, text)
    return Target("relative" if pct else "absolute", number / 100 if pct else number, text)
