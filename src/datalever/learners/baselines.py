"""Simple learners: the yardsticks leverage is measured against (global mean, item mean,
popularity).

Each depends on the data only through per-item counts and rating sums and the overall total,
so each has an exact sufficient-statistics fast path: the totals of a fold's base training set
are computed once, and a scenario's model is ``finalize(total − removed + added)``, costing the
size of the delta plus one pass over the items. Added records may bring new users and items
(fake profiles, a new song): their totals start from zero, and the model scores the new items
too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from datalever.data.contributions import TrainingSet
from datalever.learners.base import Delta, FastPath, Learner, Model, shape_after


def removed_positions(delta: Delta, n: int) -> np.ndarray:
    """The delta's removed base positions, sorted and unique (as :meth:`Delta.apply` reads
    them: a position listed twice, or given as a boolean mask, is removed once)."""
    removed = np.asarray(delta.removed)
    if removed.dtype == bool:
        return np.flatnonzero(removed)
    removed = removed.astype(np.int64, copy=False)
    if len(removed) and removed.min() < 0:
        removed = np.where(removed < 0, removed + n, removed)
    if np.all(removed[1:] > removed[:-1]):  # already sorted and unique, as levers give them
        return removed
    removed = np.sort(removed)
    return removed[np.concatenate([[True], removed[1:] != removed[:-1]])]


@dataclass(frozen=True)
class RecordTotals:
    """Sufficient statistics of the simple learners (and the counts KNN needs): records and
    rating sums per item, records per user, and the overall rating sum and count."""

    item_counts: np.ndarray
    item_sums: np.ndarray
    user_counts: np.ndarray
    total: float
    n: int
    rating_scale: tuple[float, float]

    @classmethod
    def of(cls, train: TrainingSet) -> RecordTotals:
        ratings = np.asarray(train.ratings, dtype=np.float64)
        return cls(
            np.bincount(train.items, minlength=train.n_items),
            # (bincount of nothing is integer even with weights)
            np.bincount(train.items, weights=ratings, minlength=train.n_items).astype(np.float64),
            np.bincount(train.users, minlength=train.n_users),
            float(ratings.sum()),
            len(ratings),
            train.rating_scale,
        )

    def after(self, base: TrainingSet, removed: np.ndarray, added: TrainingSet | None):
        """The totals of ``Delta(removed, added).apply(base)``, from the delta alone
        (``removed`` sorted unique positions): O(delta + n_users + n_items).

        New users and items that ``added`` brings (see :func:`shape_after`) start from zero
        totals, as they have no base record."""
        n_users, n_items = shape_after(base, Delta(removed, added))
        items, users = base.items[removed], base.users[removed]
        ratings = np.asarray(base.ratings[removed], dtype=np.float64)
        item_counts = _grown(self.item_counts, n_items) - np.bincount(items, minlength=n_items)
        item_sums = _grown(self.item_sums, n_items) - np.bincount(
            items, weights=ratings, minlength=n_items
        )
        user_counts = _grown(self.user_counts, n_users) - np.bincount(users, minlength=n_users)
        total, n = self.total - float(ratings.sum()), self.n - len(removed)
        if added is not None and len(added):
            add_r = np.asarray(added.ratings, dtype=np.float64)
            item_counts += np.bincount(added.items, minlength=n_items)
            item_sums += np.bincount(added.items, weights=add_r, minlength=n_items)
            user_counts += np.bincount(added.users, minlength=n_users)
            total, n = total + float(add_r.sum()), n + len(add_r)
        return RecordTotals(item_counts, item_sums, user_counts, total, n, self.rating_scale)

    def global_mean(self, empty: float | None = None) -> float:
        """The mean rating; with no records, ``empty`` or else the middle of the scale."""
        if self.n:
            return self.total / self.n
        lo, hi = self.rating_scale
        return (lo + hi) / 2 if empty is None else empty


def _grown(totals: np.ndarray, n: int) -> np.ndarray:
    """``totals`` followed by zeros up to length ``n`` (the totals of codes without records)."""
    if len(totals) >= n:
        return totals
    return np.concatenate([totals, np.zeros(n - len(totals), dtype=totals.dtype)])


class _ItemScoreModel(Model):
    """A model whose score depends on the item alone."""

    def __init__(self, item_scores: np.ndarray) -> None:
        self.item_scores = item_scores
        self.n_items = len(item_scores)

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return self.item_scores[items]

    def score_users(self, users: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.item_scores, (len(users), self.n_items)).copy()


class _TotalsPath(FastPath):
    """Per-item totals of the base, updated by each delta and finalized into item scores."""

    name = "sufficient-statistics"

    def __init__(self, base: TrainingSet, finalize: Callable[[RecordTotals], Model]) -> None:
        self.base = base
        self.totals = RecordTotals.of(base)
        self.finalize = finalize

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[Model]:
        for delta in deltas:
            removed = removed_positions(delta, len(self.base))
            yield self.finalize(self.totals.after(self.base, removed, delta.added))


class _TotalsLearner(Learner):
    """A learner whose model is a function of :class:`RecordTotals`."""

    batch_size = 32  # each model costs O(delta + n_items): hand over many at once

    def _finalize(self, totals: RecordTotals) -> Model:
        raise NotImplementedError

    def fit(self, train: TrainingSet) -> Model:
        return self._finalize(RecordTotals.of(train))

    def fast_path(self, base: TrainingSet) -> FastPath:
        return _TotalsPath(base, self._finalize)


class GlobalMean(_TotalsLearner):
    """Predicts the mean of all training ratings for every pair."""

    name = "global_mean"

    def _finalize(self, totals: RecordTotals) -> Model:
        return _ItemScoreModel(np.full(len(totals.item_counts), totals.global_mean()))


class ItemMean(_TotalsLearner):
    """Predicts each item's mean training rating; items without ratings get the global mean.

    This is the baseline of the Data Strikes paper ("MovieMean"), against which the share of the
    gap a strike erases is measured.
    """

    name = "item_mean"

    def _finalize(self, totals: RecordTotals) -> Model:
        means = np.full(len(totals.item_counts), totals.global_mean())
        rated = totals.item_counts > 0
        means[rated] = totals.item_sums[rated] / totals.item_counts[rated]
        return _ItemScoreModel(means)


class Popularity(_TotalsLearner):
    """Scores each item by its number of training records (most popular first)."""

    name = "popularity"
    predicts_ratings = False

    def _finalize(self, totals: RecordTotals) -> Model:
        return _ItemScoreModel(totals.item_counts.astype(float))
