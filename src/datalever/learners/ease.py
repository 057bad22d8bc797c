"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): a closed-form item-item model.

The learner sees only which items each user has records for (a binary matrix ``X``; the rating
values and duplicate records are ignored), solves ``B = argmin ||X - XB||^2 + λ||B||^2`` subject
to ``diag(B) = 0`` in closed form, and scores ``X B``. The scores rank items for top-N; they are
not rating estimates.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import scipy.linalg as la
import scipy.sparse as sp

from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.base import Delta, FastPath, Learner, Model
from datalever.learners.knn import UserRows, add_products

#: Largest number of gathered ``B`` entries per predict chunk, to bound memory.
_BLOCK = 1 << 22


def binary_matrix(
    users: np.ndarray, items: np.ndarray, n_users: int, n_items: int
) -> sp.csr_matrix:
    """The binary user-item matrix of the records (duplicates ignored), indices sorted."""
    x = sp.csr_matrix(
        (np.ones(len(users)), (np.asarray(users), np.asarray(items))), shape=(n_users, n_items)
    )
    x.data[:] = 1.0  # duplicates were summed; the model is binary
    x.sort_indices()
    return x


def gram_matrix(x: sp.spmatrix) -> np.ndarray:
    """``XᵀX``, dense: the number of users with both items (the sufficient statistic)."""
    return np.asarray((x.T @ x).toarray(), dtype=np.float64)


def weights_from_gram(gram: np.ndarray, regularization: float) -> np.ndarray:
    """Steck's closed form from the Gram matrix ``G`` (overwritten): ``P = (G + λI)⁻¹``,
    ``B = -P / diag(P)`` by column, ``diag(B) = 0``."""
    gram[np.diag_indices_from(gram)] += regularization
    # G is symmetric positive definite for λ > 0, so a Cholesky inverse is exact and stable.
    p = la.cho_solve(la.cho_factor(gram), np.eye(len(gram)))
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def ease_weights(x: sp.spmatrix, regularization: float) -> np.ndarray:
    """Steck's closed form on the binary matrix ``x``: :func:`weights_from_gram` of ``XᵀX``.

    Solved once per fit because the whole model is this one item-by-item matrix.
    """
    return weights_from_gram(gram_matrix(x), regularization)


def replace_rows(x: sp.csr_matrix, rows: np.ndarray, new: sp.csr_matrix) -> sp.csr_matrix:
    """``x`` with its rows ``rows`` (sorted, unique) replaced by the rows of ``new``: one
    memory-speed pass over the entries, no arithmetic."""
    lens = np.diff(x.indptr)
    new_lens = lens.copy()
    new_lens[rows] = np.diff(new.indptr)
    replaced = np.zeros(x.shape[0], dtype=bool)
    replaced[rows] = True
    keep = ~np.repeat(replaced, lens)
    row_of = np.concatenate(
        [np.repeat(np.arange(x.shape[0]), lens)[keep], np.repeat(rows, np.diff(new.indptr))]
    )
    # A stable sort by row keeps each row's sorted columns (each row comes from one source).
    order = np.argsort(row_of, kind="stable")
    indices = np.concatenate([x.indices[keep], new.indices])[order]
    data = np.concatenate([x.data[keep], new.data])[order]
    indptr = np.concatenate([[0], np.cumsum(new_lens)])
    out = sp.csr_matrix((data, indices, indptr), shape=x.shape)
    out.sort_indices()
    return out


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
        x = binary_matrix(train.users, train.items, train.n_users, train.n_items)
        return EASEModel(x, ease_weights(x, self.regularization))

    def fast_path(self, base: TrainingSet) -> FastPath:
        return _EASEPath(self, base)


class _EASEPath(FastPath):
    """EASE's sufficient statistic is the Gram matrix ``G = XᵀX``, a sum over users of their
    binary rows' outer products. A delta subtracts its touched users' old rows' products and
    adds their new rows' (a sparse-dense product, O(their items × n_items), and n_items²
    additions), or recomputes ``G`` from the modified data when the touched users hold more
    records than it; then one finalize, the n_items³ Cholesky inverse, which dominates. The
    model's binary matrix is the base's with the touched users' rows replaced (one copy of its
    entries). ``G`` counts users, so it is exact and the weights bit-identical to a plain fit's.
    """

    name = "sufficient-statistics"
    batch_size = 8  # the inverse dominates; each model holds an n_items² matrix

    def __init__(self, learner: EASE, base: TrainingSet) -> None:
        self.learner = learner
        self.base = base
        self.rows = UserRows(base)
        self.x = binary_matrix(base.users, base.items, base.n_users, base.n_items)
        self.gram = gram_matrix(self.x)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[Model]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> EASEModel:
        base = self.base
        t = self.rows.touched(delta)
        if t.update_work <= t.scratch_work:
            n = len(t.users)
            old = binary_matrix(t.old[0], t.old[1], n, base.n_items)
            new = binary_matrix(t.new[0], t.new[1], n, base.n_items)
            rows = sp.vstack([old, new]).tocsr()
            gram = add_products(self.gram, rows, rows, np.r_[-np.ones(n), np.ones(n)])
            x = replace_rows(self.x, t.users, new)
        else:
            train = delta.apply(base)
            x = binary_matrix(train.users, train.items, base.n_users, base.n_items)
            gram = gram_matrix(x)
        return EASEModel(x, weights_from_gram(gram, self.learner.regularization))
