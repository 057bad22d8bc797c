"""What a code language model is judged on, per contributor, so any group reads from one judging.

Every metric is a ratio of sums over the held-out predictions of a group's contributors
(each file's tokens and its end of file):

* ``bits_per_token``: cross-entropy, ``−Σ log2 p / n`` (lower is better); on a group of
  participants, its change against no action is the **own-style gap**: how much worse the model
  predicts their held-out code once their data is gone;
* ``perplexity``: ``2 ** bits_per_token`` (lower is better);
* ``top1`` and ``top5``: the share of predictions whose true next token is the model's first
  guess, or among its five first (code completion);
* ``memorisation``: of the contributor's *distinctive* held-out 4-grams (four tokens in a row
  that occur in their own training files and in no one else's), the share greedy completion
  reproduces: given the code up to the 4-gram's first token, the model's first guesses are its
  next three tokens (with the true history, which is what greedy completion sees as long as it
  is right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datalever.errors import DataleverError

KINDS = {
    "bits_per_token": False,
    "perplexity": False,
    "top1": True,
    "top5": True,
    "memorisation": True,
}
#: Length of the n-grams the memorisation probe follows.
MEMORISED_N = 4


@dataclass(frozen=True)
class CodeMetric:
    """A code metric by its canonical name."""

    name: str

    @property
    def higher_is_better(self) -> bool:
        return KINDS[self.name]

    @property
    def needs_top_k(self) -> int:
        """How many first guesses the metric reads (0: only probabilities)."""
        return {"top1": 1, "top5": 5, "memorisation": 1}.get(self.name, 0)


def parse_code_metric(name: str) -> CodeMetric:
    text = name.strip().lower() if isinstance(name, str) else ""
    aliases = {"bits": "bits_per_token", "cross_entropy": "bits_per_token", "ppl": "perplexity"}
    text = aliases.get(text, text)
    if text not in KINDS:
        raise DataleverError(
            f"Unknown code metric {str(name)[:60]!r}.",
            f"use one of: {', '.join(KINDS)}.",
        )
    return CodeMetric(text)


@dataclass(frozen=True)
class PerContributor:
    """Per-contributor numerators and denominators: a group's value is the ratio of their sums
    over its members (``perplexity`` then raised from bits)."""

    metric: CodeMetric
    num: np.ndarray
    den: np.ndarray

    def over(self, members: np.ndarray, population: np.ndarray | None = None) -> float:
        members = np.asarray(members, dtype=bool)
        den = float(self.den[members].sum())
        if den == 0:
            return float("nan")
        value = float(self.num[members].sum()) / den
        return float(2.0**value) if self.metric.name == "perplexity" else value
