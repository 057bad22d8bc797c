"""The learner interface: a model recipe that fits on records and scores (user, item) pairs.

A learner is configured in its constructor and has no hidden state: ``fit`` returns a new
:class:`Model`. The engine never builds a scenario's training data itself; it hands the learner
the base training set and the scenario deltas through :meth:`Learner.fit_many`, so a learner with
an exact fast path (sufficient statistics, batched fitting) can override that one method.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from datalever.data.contributions import TrainingSet


@dataclass(frozen=True)
class Delta:
    """How a scenario's training data differs from the base: records removed and added.

    ``removed`` holds positions into the base training set; ``added`` holds new records
    (for levers such as poisoning or contribution); ``None`` means nothing is added.
    """

    removed: np.ndarray
    added: TrainingSet | None = None

    def apply(self, base: TrainingSet) -> TrainingSet:
        """The modified training set: the plain computation every fast path must equal."""
        keep = np.ones(len(base), dtype=bool)
        keep[self.removed] = False
        train = base.subset(keep)
        return train if self.added is None else train.concat(self.added)


class Model(ABC):
    """A fitted model."""

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


class Learner(ABC):
    """A model recipe. Subclasses set ``name`` and take their parameters in ``__init__``."""

    name: str = "learner"
    #: True when scores are rating estimates, so RMSE and MAE are meaningful.
    predicts_ratings: bool = True

    @abstractmethod
    def fit(self, train: TrainingSet) -> Model:
        """Fit on ``train`` and return the fitted model."""

    def params(self) -> dict:
        """The constructor parameters, for scenario keys and provenance."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def fit_many(
        self, base: TrainingSet, deltas: Sequence[Delta], path: str = "auto"
    ) -> Iterator[Model]:
        """One fitted model per delta against ``base``.

        ``path="plain"`` forces a plain fit of each modified training set; ``"auto"`` lets a
        learner use its fastest exact path. The default has only the plain path.
        """
        for delta in deltas:
            yield self.fit(delta.apply(base))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
