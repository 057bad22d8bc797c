"""The question datalever answers: can a collective change metric M by delta Z?

A delta is written the way people say it: ``-2%`` (relative to the no-action value), ``-0.01``
(absolute, in the metric's units) or ``gap:50%`` (half of the learner's lead over the reference
learner erased). Each drawn collective (sample) gets a *score*, oriented so that reaching the
target always means ``score >= threshold``; deciding a size is then one-sided and uniform.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from datalever.errors import DataleverError

_DELTA = re.compile(r"^(gap:)?\s*([+-]?\d+(?:\.\d+)?)\s*(%?)$")


@dataclass(frozen=True)
class Target:
    """A parsed delta: ``kind`` is ``absolute``, ``relative`` or ``gap``; ``amount`` is signed
    (relative and gap amounts as fractions)."""

    kind: str
    amount: float
    text: str

    @property
    def threshold(self) -> float:
        return self.amount if self.kind == "gap" else abs(self.amount)

    def scores(self, change: np.ndarray, baseline: np.ndarray, reference: np.ndarray) -> np.ndarray:
        """Per-sample scores: reaching the target means ``score >= threshold``."""
        change = np.asarray(change, float)
        if self.kind == "absolute":
            return np.sign(self.amount) * change
        if self.kind == "relative":
            return np.sign(self.amount) * change / np.asarray(baseline, float)
        gap = np.asarray(baseline, float) - np.asarray(reference, float)
        return -change / gap

    def describe(self, metric: str) -> str:
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
    if not m or float(m.group(2)) == 0:
        raise DataleverError(
            f"Cannot read the delta {text!r}.",
            "write it as -2% (relative), -0.01 (absolute, in the metric's units) or gap:50% "
            "(share of the lead over the reference learner).",
        )
    gap, number, pct = m.group(1), float(m.group(2)), m.group(3)
    if gap:
        if number <= 0:
            raise DataleverError(f"The gap share in {text!r} must be positive.", "e.g. gap:50%.")
        return Target("gap", number / 100 if pct else number, text)
    return Target("relative" if pct else "absolute", number / 100 if pct else number, text)
