"""Item-KNN on item-mean-centred ratings: the explicit-feedback item-KNN of LensKit.

This is the recommender of LensKit's ``ItemKNNScorer`` with ``feedback="explicit"`` (Sarwar
et al.'s item-based collaborative filtering), so that strike sweeps can be put beside LensKit's:

- each item's ratings are centred on the item's mean, and each item's vector of centred ratings
  (over all users, zero where unrated) is scaled to unit length;
- the similarity of two items is the dot product of their vectors; an item is a neighbour of
  another when their similarity is at least ``min_sim`` (an item is never its own);
- a user's score for item ``i`` takes the ``k`` most similar of the user's rated items among
  ``i``'s neighbours: ``mean_i + Σ s_j (r_uj − mean_j) / Σ s_j``. With fewer than ``min_k``
  such neighbours, or no history at all, the item has no score (NaN: never recommended).

It ranks; its scores are not meant as rating estimates (``predicts_ratings`` is false). The
fit is one sparse product; scoring every user × item takes the ``k`` best of the user's rated
items per pair, in item-KNN's compiled grid (parallel over users). There is no fast path: a
scenario's fit is cheap beside its scoring, and every item's mean moves with a strike, so the
plain fit is the path. Different from :class:`datalever.learners.ItemKNN` (Surprise's rule:
raw-rating cosine over common raters, a weighted mean of raw ratings).

>>> from datalever.learners import CenteredItemKNN
>>> learner = CenteredItemKNN(k=20, min_k=1, min_sim=1e-6)
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from datalever.core.config import LearnerConfig
from datalever.data.contributions import TrainingSet
from datalever.learners.base import Learner, Model
from datalever.learners.knn import MAX_NEIGHBOURS, Candidates, neighbour_grid
from datalever.learners.parallel import parallel_kernel


def last_rating_per_pair(train: TrainingSet) -> TrainingSet:
    """One record per (user, item), the last one listed (a later rating replaces an earlier),
    ordered by user, then item."""
    key = train.users.astype(np.int64) * train.n_items + train.items
    _, first_of_reversed = np.unique(key[::-1], return_index=True)  # sorted by key
    return train.subset(len(key) - 1 - first_of_reversed)


class CenteredItemKNNModel(Model):
    """The similarities (zero where two items are not neighbours, and on the diagonal) and
    each user's rated items with their centred ratings."""

    def __init__(
        self,
        sim: np.ndarray,
        means: np.ndarray,
        indptr: np.ndarray,
        items: np.ndarray,
        deviations: np.ndarray,
        k: int,
        min_k: int,
    ) -> None:
        self.sim, self.means = sim, means
        self.indptr, self.items, self.deviations = indptr, items, deviations
        self.k, self.min_k = int(k), int(min_k)
        self.n_items = len(means)
        self.n_users = len(indptr) - 1

    def _grid(self, items: np.ndarray, users: np.ndarray) -> np.ndarray:
        """Scores of ``items`` (rows) for ``users`` (columns), all known: the k most similar
        rated items with positive similarity, by the compiled grid shared with item-KNN (ties
        at the k-th similarity go to the user's earliest items)."""
        block = np.empty((len(items), len(users)))
        with parallel_kernel():
            neighbour_grid(
                self.sim, self.items, self.deviations, self.indptr,
                items, users, self.k, self.min_k, np.nan, block,
            )  # fmt: skip
        return block + self.means[items][:, None]

    def score_users(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), self.n_items), np.nan)
        rows = np.flatnonzero((users >= 0) & (users < self.n_users))
        if len(rows):
            out[rows] = self._grid(np.arange(self.n_items), users[rows]).T
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(len(users), np.nan)
        ok = (users >= 0) & (users < self.n_users) & (items >= 0) & (items < self.n_items)
        for u in np.unique(users[ok]):
            at = np.flatnonzero(ok & (users == u))
            out[at] = self._grid(items[at], np.array([u]))[:, 0]
        return out


class CenteredItemKNN(Learner):
    """Item-KNN on item-mean-centred, unit-length item vectors (LensKit's explicit item-KNN)."""

    name = "item_knn_centered"
    predicts_ratings = False

    class Config(LearnerConfig):
        k: int = Field(20, ge=1, le=MAX_NEIGHBOURS, description="The most neighbours a score uses.")
        min_k: int = Field(
            1,
            ge=1,
            le=MAX_NEIGHBOURS,
            description="With fewer neighbours, the item has no score for the user.",
        )
        min_sim: float = Field(
            1e-6,
            gt=0,
            le=1,
            description="The least similarity of a neighbour (similarities are cosines, at "
            "most 1; only positive ones count).",
        )

    def __init__(self, k: int = 20, min_k: int = 1, min_sim: float = 1e-6) -> None:
        c = self.configure(k=k, min_k=min_k, min_sim=min_sim)
        self.k: int = c.k
        self.min_k: int = c.min_k
        self.min_sim: float = c.min_sim

    def memory_bytes(self, n_users: int, n_items: int, n_records: int) -> int:
        # Dense item × item similarities and their working copies.
        return 6 * 8 * n_items**2 + super().memory_bytes(n_users, n_items, n_records)

    def fit(self, train: TrainingSet) -> CenteredItemKNNModel:
        train = last_rating_per_pair(train)
        n_users, n_items = train.n_users, train.n_items
        counts = np.bincount(train.items, minlength=n_items)
        sums = np.bincount(train.items, weights=train.ratings, minlength=n_items)
        means = np.divide(sums, counts, out=np.zeros(n_items), where=counts > 0)
        deviations = train.ratings - means[train.items]
        norms = np.sqrt(np.bincount(train.items, weights=deviations**2, minlength=n_items))
        unit = deviations / np.maximum(norms, np.finfo(np.float64).tiny)[train.items]
        x = sp.csr_matrix((unit, (train.users, train.items)), shape=(n_users, n_items))
        sim = np.asarray((x.T @ x).toarray())
        # Not neighbours: below min_sim, and an item and itself. The grid counts positive
        # similarities only, so these become 0.
        sim[sim < self.min_sim] = 0.0
        np.fill_diagonal(sim, 0.0)
        # Each user's history: items (ascending) and centred ratings.
        items, values, ptr = Candidates(train.items, train.users, deviations, n_users).arrays()
        return CenteredItemKNNModel(
            np.ascontiguousarray(sim), means, ptr, items, values, self.k, self.min_k
        )
