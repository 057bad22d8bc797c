"""Poison: participants alter their records instead of withholding them.

The ``vandalism`` attack is the "No AI" protest of a recommender's users (and the random vandal
of the Conscious Data Contribution code): each participant replaces the ratings of their
records (all, or a ``fraction`` of each participant's) with ratings drawn uniformly from the
values the dataset uses, on the same items. Participants stay users of the service and stay
in evaluation, judged on their true held-out ratings.

As for a strike, which records are vandalised and the ratings they get are decided once over
all records (from the seed), independent of folds; a fold's delta removes the vandalised
records of its training set and adds them back with their new ratings.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import Field

from datalever.data.contributions import Contributions, TrainingSet
from datalever.errors import DataleverError
from datalever.learners.base import Delta
from datalever.levers.base import Lever, LeverConfig
from datalever.levers.strike import Strike


class Poison(Lever):
    """Alter records: ``vandalism`` gives them random ratings on the same items."""

    kind = "poison"

    class Config(LeverConfig):
        attack: Literal["vandalism"] = Field(
            "vandalism",
            description="vandalism: random ratings on the participant's own items.",
        )
        fraction: float = Field(
            1.0,
            gt=0,
            le=1,
            description="The share of each participant's records altered (1: all of them).",
        )

    def __init__(self, attack: str = "vandalism", fraction: float = 1.0) -> None:
        c = self.configure(attack=attack, fraction=fraction)
        self.attack: str = c.attack
        self.fraction: float = c.fraction

    def altered(
        self, data: Contributions, participants: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A boolean mask over all records (those altered) and every record's new rating."""
        mask = Strike(self.fraction).withheld(data, participants, rng)
        values = np.unique(data.records["rating"].to_numpy(dtype=np.float64))
        if len(values) < 2:
            raise DataleverError(
                f"Vandalism re-rates records at random, but every rating in {data.name} is "
                f"{values[0]:g}, so it would change nothing.",
                "use a dataset with more than one rating value, or a strike.",
            )
        new = values[rng.integers(0, len(values), size=len(mask))]
        return mask, new

    def delta(
        self,
        data: Contributions,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        mask, new = self.altered(data, participants, rng)
        removed = np.flatnonzero(mask[train_positions])
        base = data.training_set(train_positions[removed])
        added = TrainingSet(
            base.users,
            base.items,
            new[train_positions[removed]],
            base.n_users,
            base.n_items,
            base.rating_scale,
        )
        return Delta(removed=removed, added=added)
