"""Simple learners: the yardsticks leverage is measured against (global mean, item mean,
popularity)."""

from __future__ import annotations

import numpy as np

from datalever.data.contributions import TrainingSet
from datalever.learners.base import Learner, Model


class _ItemScoreModel(Model):
    """A model whose score depends on the item alone."""

    def __init__(self, item_scores: np.ndarray) -> None:
        self.item_scores = item_scores
        self.n_items = len(item_scores)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_scores[items]

    def score_users(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores, (len(users), self.n_items)).copy()


def _global_mean(train: TrainingSet) -> float:
    lo, hi = train.rating_scale
    return float(train.ratings.mean()) if len(train) else (lo + hi) / 2


class GlobalMean(Learner):
    """Predicts the mean of all training ratings for every pair."""

    name = "global_mean"

    def fit(self, train: TrainingSet) -> Model:
        return _ItemScoreModel(np.full(train.n_items, _global_mean(train)))


class ItemMean(Learner):
    """Predicts each item's mean training rating; items without ratings get the global mean.

    This is the baseline of the Data Strikes paper ("MovieMean"), against which the share of the
    gap a strike erases is measured.
    """

    name = "item_mean"

    def fit(self, train: TrainingSet) -> Model:
        counts = np.bincount(train.items, minlength=train.n_items)
        sums = np.bincount(train.items, weights=train.ratings, minlength=train.n_items)
        means = np.full(train.n_items, _global_mean(train))
        rated = counts > 0
        means[rated] = sums[rated] / counts[rated]
        return _ItemScoreModel(means)


class Popularity(Learner):
    """Scores each item by its number of training records (most popular first)."""

    name = "popularity"
    predicts_ratings = False

    def fit(self, train: TrainingSet) -> Model:
        return _ItemScoreModel(np.bincount(train.items, minlength=train.n_items).astype(float))
