"""The recommendation learner interface: models that score (user, item) pairs.

The generic parts (learners, fast paths, deltas) live in :mod:`datalever.core`; a recommender
adds what its models answer (:meth:`Model.predict` for user-item pairs) and whether the scores
are rating estimates (so RMSE and MAE are meaningful).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from datalever.core import learner as core
from datalever.core.delta import Delta
from datalever.core.learner import FastPath, fit_scenarios
from datalever.data.contributions import TrainingSet


def shape_after(base: TrainingSet, delta: Delta) -> tuple[int, int]:
    """``(n_users, n_items)`` of ``delta.apply(base)``, without applying it.

    Added records may come from new contributors (fake profiles) and be on new items: codes
    from the base's ``n_users`` / ``n_items`` on, counted in the added set's own larger
    ``n_users`` / ``n_items``. The modified set counts the larger of each
    (:meth:`TrainingSet.concat`), even when the added set holds no record, so a fast path must
    size its model by this and not by the base."""
    added = delta.added
    if added is None:
        return base.n_users, base.n_items
    return max(base.n_users, added.n_users), max(base.n_items, added.n_items)


class Model(core.Model):
    """A fitted recommender."""

    @abstractmethod
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores for (user, item) pairs; rating estimates for rating learners."""

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Dense scores of every item for each user, shape ``(len(users), n_items)``."""
        n_items = self.n_items
        uu = np.repeat(users, n_items)
        ii = np.tile(np.arange(n_items, dtype=np.int32), len(users))
        return self.predict(uu, ii).reshape(len(users), n_items)

    n_items: int = 0


class Learner(core.Learner):
    """A recommender: fits on a :class:`TrainingSet` of ratings."""

    task: ClassVar[str] = "recommendation"
    #: True when scores are rating estimates, so RMSE and MAE are meaningful.
    predicts_ratings: bool = True

    @abstractmethod
    def fit(self, train: TrainingSet) -> Model:
        """Fit on ``train`` and return the fitted model."""

    def fast_path(self, base: TrainingSet) -> FastPath | None:
        return None


__all__ = ["Delta", "FastPath", "Learner", "Model", "fit_scenarios", "shape_after"]
