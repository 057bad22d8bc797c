"""Levers: what a collective does, expressed as a delta against the base training data.

* ``strike``: participants withhold their records (all of them, or a ``fraction`` of each
  participant's records: a partial strike). They stay users of the service, so they stay in
  evaluation.
* ``boycott``: a strike whose participants also leave the service, so they leave evaluation.

Which records a participant withholds is decided once over all of their records (from the
seed), independent of folds; a fold's delta is the withheld records in its training set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from datalever.data.contributions import Contributions
from datalever.errors import DataleverError
from datalever.learners.base import Delta

LEVERS = ("strike", "boycott")


@dataclass(frozen=True)
class Lever:
    kind: str = "strike"
    fraction: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in LEVERS:
            raise DataleverError(
                f"Unknown lever {self.kind!r}.", f"use one of: {', '.join(LEVERS)}."
            )
        if not 0 < self.fraction <= 1:
            raise DataleverError(
                f"The lever's fraction must be in (0, 1], not {self.fraction}.",
                "give the share of each participant's records withheld, e.g. 0.5.",
            )

    @property
    def leaves_service(self) -> bool:
        return self.kind == "boycott"

    @property
    def label(self) -> str:
        return self.kind if self.fraction == 1 else f"{self.kind} {self.fraction:g}"

    def withheld(
        self, data: Contributions, participants: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """A boolean mask over all records: those the participants withhold."""
        users = data.records["contributor"].to_numpy()
        is_participant = np.zeros(data.n_contributors, dtype=bool)
        is_participant[participants] = True
        mine = is_participant[users]
        if self.fraction == 1:
            return mine
        # Each participant withholds round(fraction × their records) (halves round to even,
        # as numpy does), chosen at random.
        keys = rng.random(len(users))
        order = np.lexsort((keys, users))
        sorted_users = users[order]
        rank = np.arange(len(users)) - np.searchsorted(sorted_users, sorted_users)
        quota = np.round(self.fraction * np.bincount(users, minlength=data.n_contributors))
        out = np.zeros(len(users), dtype=bool)
        out[order] = rank < quota[sorted_users]
        return out & mine

    def delta(self, train_positions: np.ndarray, withheld: np.ndarray) -> Delta:
        """The delta against a fold's training set (positions ``train_positions``)."""
        return Delta(removed=np.flatnonzero(withheld[train_positions]))
