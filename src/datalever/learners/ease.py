"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): a closed-form item-item model.

The learner sees only which items each user has records for (a binary matrix ``X``; the rating
values and duplicate records are ignored), solves ``B = argmin ||X - XB||^2 + λ||B||^2`` subject
to ``diag(B) = 0`` in closed form, and scores ``X B``. The scores rank items for top-N; they are
not rating estimates.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.base import Learner, Model

#: Largest number of gathered ``B`` entries per predict chunk, to bound memory.
_BLOCK = 1 << 22


def ease_weights(x: sp.spmatrix, regularization: float) -> np.ndarray:
    """Steck's closed form: ``P = (XᵀX + λI)⁻¹``, ``B = -P / diag(P)`` by column, ``diag(B) = 0``.

    Solved once per fit because the whole model is this one item-by-item matrix.
    """
    gram = np.asarray((x.T @ x).toarray(), dtype=np.float64)
    gram[np.diag_indices_from(gram)] += regularization
    # G is symmetric positive definite for λ > 0, so a Cholesky inverse is exact and stable.
    p = la.cho_solve(la.cho_factor(gram), np.eye(len(gram)))
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


class EASEModel(Model):
    """A fitted EASE: the binary user-item matrix and the item-item weights ``B``."""

    def __init__(self, x: sp.csr_matrix, b: np.ndarray) -> None:
        self.x = x
        self.b = b
        self.n_users, self.n_items = x.shape

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """``X[u] · B[:, i]`` per pair, gathering only the B rows of u's items (no dense X)."""
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros(len(users))
        valid = (users >= 0) & (users < self.n_users)
        ptr, cols = self.x.indptr, self.x.indices
        starts = ptr[np.where(valid, users, 0)]
        lens = np.where(valid, ptr[np.where(valid, users, 0) + 1] - starts, 0)
        start = 0
        while start < len(users):
            # Chunk so that the gathered entries stay below _BLOCK.
            csum = np.cumsum(lens[start:])
            stop = start + max(1, int(np.searchsorted(csum, _BLOCK, side="right")))
            chunk_lens = lens[start:stop]
            total = int(chunk_lens.sum())
            if total:
                pair = np.repeat(np.arange(stop - start), chunk_lens)
                offsets = np.repeat(np.cumsum(chunk_lens) - chunk_lens, chunk_lens)
                first = np.repeat(starts[start:stop], chunk_lens)
                j = cols[first + np.arange(total) - offsets]
                vals = self.b[j, items[start:stop][pair]]
                out[start:stop] = np.bincount(pair, weights=vals, minlength=stop - start)
            start = stop
        return out

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """``X[users] @ B``: one sparse-dense product; users with no records score 0."""
        users = np.asarray(users, dtype=np.int64)
        valid = (users >= 0) & (users < self.n_users)
        out = np.zeros((len(users), self.n_items))
        if valid.any():
            out[valid] = self.x[users[valid]] @ self.b
        return out


class EASE(Learner):
    """Steck's EASE with L2 regularisation λ (``regularization``); ranks items for top-N."""

    name = "ease"
    predicts_ratings = False

    def __init__(self, regularization: float = 500.0) -> None:
        if not float(regularization) > 0:
            raise DataleverError(
                f"EASE needs regularization > 0 (got {regularization}).",
                "use a positive value; Steck's default range is 100 to 1000.",
            )
        self.regularization = float(regularization)

    def fit(self, train: TrainingSet) -> EASEModel:
        n = len(train)
        x = sp.csr_matrix(
            (np.ones(n), (np.asarray(train.users), np.asarray(train.items))),
            shape=(train.n_users, train.n_items),
        )
        x.data[:] = 1.0  # duplicates were summed; the model is binary
        x.sort_indices()
        return EASEModel(x, ease_weights(x, self.regularization))
