"""EASE (Steck 2019, "Embarrassingly Shallow Autoencoders"): a closed-form item-item model.

The learner sees only which items each user has records for (a binary matrix ``X``; the rating
values and duplicate records are ignored), solves ``B = argmin ||X - XB||^2 + λ||B||^2`` subject
to ``diag(B) = 0`` in closed form, and scores ``X B``. The scores rank items for top-N; they are
not rating estimates.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence

import numba
import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import blas, lapack

from datalever.core.config import LearnerConfig
from datalever.data.contributions import TrainingSet
from datalever.learners.base import Delta, FastPath, Learner, Model, shape_after
from datalever.learners.knn import UserRows, add_products, grown_csr

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


def regularized_inverse(gram: np.ndarray, regularization: float) -> np.ndarray:
    """``P = (G + λI)⁻¹`` (``G`` is overwritten). ``G + λI`` is symmetric positive definite
    for λ > 0, so the inverse comes from its Cholesky factor (LAPACK ``potrf`` + ``potri``)."""
    gram[np.diag_indices_from(gram)] += regularization
    factor, info = lapack.dpotrf(gram, lower=False, overwrite_a=True)
    if info == 0:
        inverse, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:  # pragma: no cover - impossible for λ > 0 short of overflow
        raise np.linalg.LinAlgError(f"EASE: Cholesky inverse failed (LAPACK info {info})")
    # potri fills the upper triangle only; mirror it (the lower one holds the factor's rest).
    _mirror_upper(inverse)
    # LAPACK hands back a Fortran-ordered array; its transpose is the same symmetric matrix in
    # C order, which the per-scenario row gathers and products need (twice as fast).
    return inverse.T if not inverse.flags.c_contiguous else inverse


@numba.njit(cache=True, nogil=True)
def _mirror_upper(a):  # pragma: no cover - compiled
    """Copy the upper triangle of the square ``a`` onto its lower one, in place, in tiles (so
    the transposed reads stay in cache; ten times faster than ``np.triu`` twice)."""
    n = a.shape[0]
    tile = 64
    for i0 in range(0, n, tile):
        for j0 in range(0, i0 + 1, tile):
            for i in range(i0, min(i0 + tile, n)):
                for j in range(j0, min(j0 + tile, i)):
                    a[i, j] = a[j, i]


def weights_from_inverse(p: np.ndarray) -> np.ndarray:
    """Steck's closed form from ``P``: ``B = -P / diag(P)`` by column, ``diag(B) = 0``."""
    b = p / -np.diag(p)
    np.fill_diagonal(b, 0.0)
    return b


def weights_from_gram(gram: np.ndarray, regularization: float) -> np.ndarray:
    """EASE weights from the Gram matrix ``G`` (overwritten)."""
    return weights_from_inverse(regularized_inverse(gram, regularization))


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

    class Config(LearnerConfig):
        regularization: float = Field(
            500.0,
            gt=0,
            le=1e6,
            description="The L2 penalty λ on the item-item weights (Steck's range: 100 to 1000).",
        )

    def __init__(self, regularization: float = 500.0) -> None:
        self.regularization: float = self.configure(regularization=regularization).regularization

    def memory_bytes(self, n_users: int, n_items: int, n_records: int) -> int:
        # The Gram matrix, its inverse and their working copies: about six items × items
        # matrices of float64 (6.4 GiB measured at MovieLens-10M's 10,677 items).
        return 6 * 8 * n_items**2 + super().memory_bytes(n_users, n_items, n_records)

    def fit(self, train: TrainingSet) -> EASEModel:
        x = binary_matrix(train.users, train.items, train.n_users, train.n_items)
        return EASEModel(x, ease_weights(x, self.regularization))

    def fast_path(self, base: TrainingSet) -> FastPath:
        return _EASEPath(self, base)


class _EASEPath(FastPath):
    """EASE's sufficient statistic is the Gram matrix ``G = XᵀX``, a sum over users of their
    binary rows' outer products, and the model needs ``P = (G + λI)⁻¹``. A delta changes ``G``
    by the touched users' new rows' products minus their old rows': ``ΔG = Uᵀ C U`` with ``U``
    the stacked rows (k of them, sparse) and ``C = diag(±1)``. By the Woodbury identity the
    scenario's inverse is ``P' = P + (U P)ᵀ Q (U P)`` with ``Q = -(C⁻¹ + U P Uᵀ)⁻¹``.

    ``P'`` itself is never formed. The scores are ``X' B' = X' - (X' P') D'⁻¹`` (``D'`` the
    diagonal of ``P'``; the ``X'`` term is Steck's ``diag(B) = 0``), with
    ``X' P' = X' P + (X' (U P)ᵀ) Q (U P)``. The fold keeps ``P``, ``A = X P`` and
    ``K = X P Xᵀ`` (while they fit in memory and, for ``K``, take bounded work): an
    untouched user's row of ``X' P`` is its row of ``A``, a removed row of ``U P`` is a row
    of ``A``, and ``U P Uᵀ`` and ``X' (U P)ᵀ`` over removed rows are blocks of ``K``. A
    strike therefore costs a k-by-k Cholesky factor and its inverse, a triangular product with
    ``n_items`` columns (``k² n_items``) and, per scored user, ``k · n_items``, instead of the
    ``n_items³`` inverse and the full sparse product of a plain fit. Deltas with more rows
    (about ``k > 0.6 n_items``, see :func:`_update_is_cheaper`) recompute ``G`` and invert it
    as a plain fit does.

    This is exact algebra; in floating point the scores agree with a plain fit's to about
    1e-12 relative (tests/test_fast_paths.py checks 1e-9). An item left with no records has,
    exactly, ``P'`` column ``e_j / λ``; its scores are set to the plain fit's exact zeros so
    that ties among such items are broken as a plain fit breaks them.

    A delta whose added records bring new users or items (fake profiles, a new song) is
    fitted through the same statistics grown to its shape (:meth:`grown`): the base has no
    record of the new codes, so ``X``, ``G``, ``A`` and ``K`` gain zero rows and columns and
    ``P`` gains ``1 / λ`` on the new items' diagonal, exactly, and the new users are touched
    users whose old rows are empty.
    """

    name = "sufficient-statistics"
    #: ``A`` and ``K`` are kept only while each is at most this many bytes; above it their
    #: rows are computed when needed (the same numbers, more work per scenario).
    cache_bytes = 1 << 30
    #: ``K`` is computed whole only when that takes at most this many multiply-adds (its
    #: cost is ``nnz(X) · n_users``, about 5 s at 2^32); beyond, each scenario computes what it
    #: needs from its own touched rows instead (``nnz(touched rows) · k``). Measured on 1M
    #: records, ``K`` repays its cost within about 15 scenarios of the fold.
    k_work = 1 << 33

    def __init__(self, learner: EASE, base: TrainingSet) -> None:
        self.learner = learner
        self.base = base
        self.rows = UserRows(base)
        self.x = binary_matrix(base.users, base.items, base.n_users, base.n_items)
        self.gram = gram_matrix(self.x)
        self.item_counts = np.diag(self.gram).copy()
        self.inverse = regularized_inverse(self.gram.copy(), learner.regularization)
        self._last_grown: _EASEPath | None = None  # the last shape a delta grew the base to

    @functools.cached_property
    def a(self) -> np.ndarray | None:
        """``A = X P`` (every user's row of ``X P``), computed on first use, or ``None`` when
        larger than :attr:`cache_bytes`. Scoring every user needs all of it per scenario."""
        n_users, n_items = self.x.shape
        if n_users * n_items * 8 > self.cache_bytes:
            return None
        return np.asarray(self.x @ self.inverse)

    @functools.cached_property
    def k(self) -> np.ndarray | None:
        """``K = X P Xᵀ`` when it fits :attr:`cache_bytes` and takes at most :attr:`k_work`."""
        n_users = self.x.shape[0]
        if n_users * n_users * 8 > self.cache_bytes or self.x.nnz * n_users > self.k_work:
            return None
        if self.a is None:  # K is built from A
            return None
        return np.ascontiguousarray(np.asarray(self.x @ self.a.T).T)

    def xp_rows(self, users: np.ndarray) -> np.ndarray:
        """Rows ``X[users] P`` (a new array)."""
        if self.a is not None:
            return self.a[users]
        return np.asarray(self.x[users] @ self.inverse)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[Model]:
        for delta in deltas:
            yield self.grown(shape_after(self.base, delta))._fit(delta)

    def grown(self, shape: tuple[int, int]) -> _EASEPath:
        """This path's statistics for ``shape = (n_users, n_items)``, at least the base's: the
        new users and items have no base record (zero rows and columns of ``X``, ``G``, ``A``
        and ``K``; ``P``'s new diagonal is ``1 / λ``, the inverse of ``λ`` alone). The last
        grown shape is kept, since a lever's scenarios often share one (each copy costs about
        what scoring every user of one scenario costs)."""
        if shape == self.x.shape:
            return self
        if self._last_grown is not None and self._last_grown.x.shape == shape:
            return self._last_grown
        n_users, n_items = shape
        grown = object.__new__(_EASEPath)
        grown.learner, grown.base, grown.rows = self.learner, self.base, self.rows
        grown.x = grown_csr(self.x, n_users, n_items)
        grown.gram = _padded(self.gram, (n_items, n_items))
        grown.item_counts = _padded(self.item_counts, (n_items,))
        grown.inverse = _padded(self.inverse, (n_items, n_items))
        new = np.arange(self.x.shape[1], n_items)
        grown.inverse[new, new] = 1.0 / self.learner.regularization
        # The cached properties, set directly: the base's, padded (None stays None).
        grown.__dict__["a"] = None if self.a is None else _padded(self.a, shape)
        grown.__dict__["k"] = None if self.k is None else _padded(self.k, (n_users, n_users))
        grown._last_grown = None
        self._last_grown = grown
        return grown

    def _fit(self, delta: Delta) -> Model:
        n_users, n_items = self.x.shape
        t = self.rows.touched(delta)
        n = len(t.users)
        old = binary_matrix(t.old[0], t.old[1], n, n_items)
        new = binary_matrix(t.new[0], t.new[1], n, n_items)
        old_has, new_has = np.diff(old.indptr) > 0, np.diff(new.indptr) > 0
        if _update_is_cheaper(int(old_has.sum() + new_has.sum()), n_items):
            x = replace_rows(self.x, t.users, new)
            return _UpdatedEASEModel(self, x, t.users, t.users[old_has], new[new_has])
        # A rank-k update would cost more than a fresh inverse: fit as a plain fit does, with G
        # from the touched rows or, when the delta is the larger part, from the modified data.
        if t.update_work > t.scratch_work:
            train = delta.apply(self.base)
            x = binary_matrix(train.users, train.items, n_users, n_items)
            gram = gram_matrix(x)
        else:
            x = replace_rows(self.x, t.users, new)
            rows = sp.vstack([new, old]).tocsr()
            gram = add_products(self.gram, rows, rows, np.r_[np.ones(n), -np.ones(n)])
        return EASEModel(x, weights_from_gram(gram, self.learner.regularization))


class _UpdatedEASEModel(Model):
    """A scenario's EASE through the fold's ``P``, ``A`` and ``K`` and a rank-k update (see
    :class:`_EASEPath`); scores equal a plain fit's to floating-point tolerance.

    The update rows are the touched users' new rows (sign +1, ``m`` of them) over the base rows
    of the users who had records (sign -1).
    """

    def __init__(
        self,
        path: _EASEPath,
        x: sp.csr_matrix,
        touched: np.ndarray,
        old_users: np.ndarray,
        new: sp.csr_matrix,
    ) -> None:
        self.path, self.x = path, x
        self.n_users, self.n_items = x.shape
        self.touched = np.zeros(self.n_users, dtype=bool)
        self.touched[touched] = True
        self.old_users, self.new = old_users, new
        m, k = new.shape[0], new.shape[0] + len(old_users)
        new_p = np.asarray(new @ path.inverse)
        up = np.vstack([new_p, path.xp_rows(old_users)])  # U P
        inner = np.empty((k, k))  # C⁻¹ + U P Uᵀ, C⁻¹ = C
        if path.k is not None:
            inner[m:, m:] = path.k[np.ix_(old_users, old_users)]
        else:  # X_old P X_oldᵀ from the old rows of U P
            inner[m:, m:] = np.asarray(path.x[old_users] @ up[m:].T)
        if m:
            inner[:m, :m] = np.asarray(new @ new_p.T)
            cross = np.asarray(path.x[old_users] @ new_p.T)
            inner[m:, :m], inner[:m, m:] = cross, cross.T
        inner[np.diag_indices(k)] += np.r_[np.ones(m), -np.ones(k - m)]
        self.up = up
        self.l_inv = None
        if m == 0 and k:
            # Removals only: -inner = I - U P Uᵀ is positive definite (G' + λI is), so
            # Q = (LLᵀ)⁻¹ and P' = P + ZᵀZ with Z = L⁻¹ U P, half the work of an LU solve.
            self.l_inv = _lower_cholesky_inverse(-inner)
            # Z = L⁻¹ U P, computed as Zᵀ = (U P)ᵀ L⁻ᵀ (a triangular product on the C-ordered
            # U P seen as its Fortran-ordered transpose, so nothing is copied).
            self.right = blas.dtrmm(1.0, self.l_inv, up.T, side=1, lower=1, trans_a=1).T
            self.diag = np.diag(path.inverse) + np.einsum("ij,ij->j", self.right, self.right)
        else:
            self.right = -np.linalg.solve(inner, up) if k else up  # Q U P
            self.diag = np.diag(path.inverse) + np.einsum("ij,ij->j", up, self.right)
        counts = path.item_counts + np.asarray(new.sum(axis=0)).ravel()
        counts -= np.asarray(path.x[old_users].sum(axis=0)).ravel()
        self.dead = counts == 0

    def _has_records(self, users: np.ndarray) -> np.ndarray:
        """Known users with records left; the others score 0, as in a plain fit."""
        ok = (users >= 0) & (users < self.n_users)
        ok[ok] = np.diff(self.x.indptr)[users[ok]] > 0
        return ok

    def _coefficients(self, users: np.ndarray) -> np.ndarray:
        """Per user, the coefficients of the rank-k part of ``X' P'`` on ``self.right``:
        ``X' (U P)ᵀ``, through ``L⁻ᵀ`` for a Cholesky update."""
        if self.path.k is None:  # one sparse product, O(the users' records · k)
            y = np.asarray(self.x[users] @ self.up_t)
        else:  # the removed rows' part is a block of K
            m = self.new.shape[0]
            y = np.empty((len(users), m + len(self.old_users)))
            y[:, m:] = self.path.k[np.ix_(users, self.old_users)]
            if m:
                y[:, :m] = np.asarray(self.new @ self.path.xp_rows(users).T).T
            moved = np.flatnonzero(self.touched[users])
            if len(moved):  # touched users' rows of X' differ from X: computed directly
                y[moved] = np.asarray(self.x[users[moved]] @ self.up_t)
        if self.l_inv is not None:  # X' Zᵀ = X' (U P)ᵀ L⁻ᵀ
            y = blas.dtrmm(1.0, self.l_inv, y, side=1, lower=1, trans_a=1)
        return y

    @functools.cached_property
    def up_t(self) -> np.ndarray:
        """``(U P)ᵀ``, contiguous, for sparse products with rows of ``X'``."""
        return np.ascontiguousarray(self.up.T)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        has = self._has_records(users)
        rows = users[has]
        # The rank-k part of X' P', one BLAS product.
        if self.right.shape[0] and len(rows):
            low_rank = np.ascontiguousarray(self._coefficients(rows) @ self.right)
        else:
            low_rank = np.zeros((0, self.n_items))
        moved = np.flatnonzero(self.touched[rows])
        xp = self.path.xp_rows(rows) if self.path.a is None else self.path.a
        source = rows.copy() if self.path.a is not None else np.arange(len(rows))
        # Touched users' rows of X' P are not rows of A: computed, and marked -1 - index.
        moved_xp = np.asarray(self.x[rows[moved]] @ self.path.inverse)
        source[moved] = -1 - np.arange(len(moved))
        out = np.empty((len(users), self.n_items))
        _assemble_scores(
            out,
            np.flatnonzero(has),
            rows,
            source,
            xp,
            moved_xp,
            low_rank,
            1.0 / self.diag,
            self.dead,
            self.x.indptr,
            self.x.indices,
        )
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros(len(users))
        ok = self._has_records(users)
        if not ok.any():
            return out
        uniq, inv = np.unique(users[ok], return_inverse=True)
        it = items[ok]
        # X' P per pair, gathering only P's rows of the user's items.
        xp = EASEModel(self.x, self.path.inverse).predict(users[ok], it)
        if self.right.shape[0]:
            # In chunks of pairs (by user), so that the gathered columns of the rank-k part
            # (k per pair) and the users' coefficients stay below _BLOCK entries.
            step = max(1, _BLOCK // max(self.n_items, self.right.shape[0]))
            by_user = np.argsort(inv, kind="stable")
            for lo in range(0, len(by_user), step):
                pairs = by_user[lo : lo + step]
                chunk_users, at = np.unique(inv[pairs], return_inverse=True)
                y = self._coefficients(uniq[chunk_users])
                xp[pairs] += np.einsum("ij,ji->i", y[at], self.right[:, it[pairs]])
        scores = np.asarray(self.x[users[ok], it]).ravel() - xp / self.diag[it]
        scores[self.dead[it]] = 0.0
        out[ok] = scores
        return out


def _padded(a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``a`` in the top-left corner of zeros of ``shape`` (a new C-ordered array)."""
    out = np.zeros(shape, dtype=a.dtype)
    out[tuple(slice(0, n) for n in a.shape)] = a
    return out


def _update_is_cheaper(k: int, n_items: int) -> bool:
    """Whether a rank-k update (Cholesky factor and inverse, ``2k³/3``, and the triangular
    product, ``k² n``) costs less than half a fresh inverse (``n³``): the update's products run
    slower per operation than one large factorisation (measured at 10M records). Scoring adds
    ``k · n_items`` per scored user, which this rule leaves out: near the threshold, judging
    every user can cost more than the refit saves."""
    return 2 * k**3 / 3 + k * k * n_items < n_items**3 / 2


def _lower_cholesky_inverse(a: np.ndarray) -> np.ndarray:
    """``L⁻¹`` for the lower Cholesky factor ``L`` of the positive definite ``a``."""
    factor, info = lapack.dpotrf(a, lower=1)
    if info == 0:
        factor, info = lapack.dtrtri(factor, lower=1)
    if info != 0:  # pragma: no cover - impossible for λ > 0 short of overflow
        raise np.linalg.LinAlgError(f"EASE: Cholesky update failed (LAPACK info {info})")
    return np.tril(factor)


@numba.njit(cache=True, nogil=True)
def _assemble_scores(
    out, at, users, source, xp, moved_xp, low_rank, inv_diag, dead, indptr, indices
):  # pragma: no cover - compiled
    """One pass writing ``X' - (X' P') D'⁻¹`` per scored user (row ``at[r]`` of ``out``) and
    zeros for everyone else; ``X' P'`` is ``xp[source[r]]`` (``moved_xp[-1 - source[r]]`` for
    a negative source) plus the rank-k part."""
    out[:] = 0.0
    n_items = out.shape[1]
    has_low_rank = low_rank.shape[0] > 0
    for r in range(len(users)):
        row = out[at[r]]
        base = xp[source[r]] if source[r] >= 0 else moved_xp[-1 - source[r]]
        for j in range(n_items):
            v = base[j]
            if has_low_rank:
                v += low_rank[r, j]
            row[j] = -v * inv_diag[j]
        for e in range(indptr[users[r]], indptr[users[r] + 1]):
            row[indices[e]] += 1.0
        for j in range(n_items):
            if dead[j]:
                row[j] = 0.0
