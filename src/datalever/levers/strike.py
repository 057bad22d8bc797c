"""Strike: participants withhold their records (all of them, or a ``fraction`` of each
participant's records: a partial strike). They stay users of the service, so they stay in
evaluation, as the Data Strikes paper evaluates strikers (cold-start users).

Which records a participant withholds is decided once over all of their records (from the
seed), independent of folds; a fold's delta is the withheld records in its training set.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from datalever.core.delta import Delta
from datalever.core.task import Dataset
from datalever.levers.base import Lever, LeverConfig


class Strike(Lever):
    """Withhold records: all of each participant's, or a ``fraction`` of them."""

    kind = "strike"

    class Config(LeverConfig):
        fraction: float = Field(
            1.0,
            gt=0,
            le=1,
            description="The share of each participant's records withheld (1: all of them).",
        )

    def __init__(self, fraction: float = 1.0) -> None:
        self.fraction: float = self.configure(fraction=fraction).fraction

    def withheld(
        self, data: Dataset, participants: np.ndarray, rng: np.random.Generator
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

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        withheld = self.withheld(data, participants, rng)
        return Delta(removed=np.flatnonzero(withheld[train_positions]))
