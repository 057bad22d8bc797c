"""Neighbourhood learners that reproduce Surprise's ``KNNBasic`` exactly, but vectorised.

``UserKNN`` is ``KNNBasic(sim_options={"user_based": True})`` and ``ItemKNN`` is
``KNNBasic(sim_options={"user_based": False})``. We write ``x`` for the side the similarities are
between (users for ``UserKNN``, items for ``ItemKNN``) and ``y`` for the other side, as Surprise
does. Matching Surprise matters because results are compared against it, so every rule below
follows its code (``surprise/similarities.pyx`` and ``knns.py``, version 1.1.x):

* Similarities use common support only and default ``min_support=1``: ``msd`` is
  ``1 / (mean squared difference + 1)``, ``cosine`` is ``sum r_x r_x' / sqrt(sum r_x^2 sum r_x'^2)``
  over the common ``y``; a pair with no common ``y`` has similarity 0 and ``sim(x, x) = 1``.
  Records are counted one by one, so a duplicated (user, item) record counts twice, as in
  Surprise. They are computed as sparse products of count, rating and squared-rating matrices,
  which is exact (bit-identical to Surprise) whenever ratings are multiples of a power of two
  such as whole or half stars, since then every sum is exact.
* The candidates for (u, i) are the training records of ``y`` (every record of item i for
  ``UserKNN``, every record of user u for ``ItemKNN``), in training order. Surprise keeps the
  ``k`` with the largest similarity with ``heapq.nlargest``, which is stable: among equal
  similarities the record that comes first in the training set wins. We reproduce this rule
  exactly (a partition finds the k-th largest similarity; ties at it are filled in record
  order). Of those ``k``, only positive similarities count; the estimate is their weighted mean.
* If the user or the item has no training record, or fewer than ``min_k`` neighbours count, the
  prediction is the global mean of the training ratings. Every prediction is clipped to the
  rating scale, as ``predict(clip=True)`` does.

Both learners have exact fast paths for scenarios (see ``_ItemKNNPath`` and ``_UserKNNPath``):
they update the statistics of the similarities for the users a delta touches, and rebuild the
candidate lists in the modified training set's record order, so that ties fall the same way.
A delta may bring new users (fake profiles) and new items: they have no base record, so their
base statistics and similarities are zeros (and 1 with themselves) until their added records
count, exactly as in a plain fit on the modified data.

Known differences, all outside what Surprise can do: Surprise raises ``ZeroDivisionError`` for
``min_k=0`` when no neighbour counts and for a cosine between two x whose common ratings are
all 0; we return the global mean and a similarity of 0. With ratings that are not exactly
representable sums (e.g. 3.7), similarities may differ from Surprise's in the last bit, which
moves estimates by ~1e-15 and could reorder two neighbours whose similarities tie to the bit.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numba
import numpy as np
import scipy.sparse as sp
from pydantic import Field

from datalever.core.config import LearnerConfig
from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.base import Delta, FastPath, Learner, Model, shape_after
from datalever.learners.baselines import RecordTotals, removed_positions
from datalever.learners.parallel import parallel_kernel

Similarity = Literal["msd", "cosine"]
SIMILARITIES = get_args(Similarity)
#: The most neighbours a score may use (a bound on typos; scores take at most every record).
MAX_NEIGHBOURS = 10_000
#: Largest number of (query, candidate) similarity entries handled at once, to bound memory.
_BLOCK = 1 << 22


def _check_measure(measure: str) -> None:
    if measure not in SIMILARITIES:
        raise DataleverError(
            f"Unknown similarity {measure!r}.", f"use one of {', '.join(SIMILARITIES)}."
        )


def record_matrices(
    rows: np.ndarray, cols: np.ndarray, rs: np.ndarray, n_rows: int, n_cols: int
) -> tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix]:
    """Per-(row, col) record counts, rating sums and squared-rating sums as sparse matrices.

    A csr matrix built from coordinates sums duplicates: per-cell sums over records, so a
    duplicated record counts twice, as Surprise counts.
    """
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    rs = np.asarray(rs, dtype=np.float64)

    def mat(values: np.ndarray) -> sp.csr_matrix:
        return sp.csr_matrix((values, (rows, cols)), shape=(n_rows, n_cols))

    return mat(np.ones_like(rs)), mat(rs), mat(rs * rs)


def pair_statistics(
    xs: np.ndarray, ys: np.ndarray, rs: np.ndarray, n_x: int, n_y: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The sufficient statistics of the similarities between the x, as dense ``(n_x, n_x)``
    sums over the common y: ``freq`` (record pairs), ``prods`` (sum r_x r_x') and ``sq``
    (sum r_x^2, row x, column x'). Each is a sum over y of one y's contribution, which is what
    lets a fast path subtract and add the contributions of the y a delta touches. Computed in
    blocks of rows, so no sparse product of the whole matrix is ever held."""
    stats = tuple(np.empty((n_x, n_x)) for _ in range(3))
    records = record_matrices(ys, xs, rs, n_y, n_x)
    for rows, freq, prods, sq, _ in statistic_blocks(records, transposed=False):
        for whole, block in zip(stats, (freq, prods, sq), strict=True):
            whole[rows] = block
    return stats


#: Entries of each statistic computed at once (with 4 statistics, 32 MiB of float64 per block).
_STAT_BLOCK = 1 << 20


def statistic_blocks(
    records: tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix],
    weights: np.ndarray | None = None,
    base: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    transposed: bool = True,
) -> Iterator[tuple[slice, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]]:
    """The statistics of the similarities between the x, a block of rows at a time.

    ``records`` are the (count, rating, squared rating) matrices with one row per y and one
    column per x (:func:`record_matrices`), each y's contribution scaled by ``weights`` (±1 to
    subtract or add a touched user's records) and added to the dense ``base`` statistics. The
    base may cover only the first x (a delta that brings new items): the others have no base
    record, so their base statistics are zeros, and are left out rather than added.
    Yields ``(rows, freq, prods, sq, sq_t)`` with ``sq_t[a, b] = sq[b, a]`` (``None`` unless
    ``transposed``: the statistics alone do not need it). Memory is one
    block of each statistic, not the sparse product of the whole matrix, which at 10 million
    records held more than the dense result.
    """
    count, rating, square = records
    n = count.shape[1]
    if weights is not None:
        scale = sp.diags(np.asarray(weights, dtype=np.float64))
        count_w, rating_w, square_w = ((scale @ m).tocsr() for m in (count, rating, square))
    else:
        count_w, rating_w, square_w = count, rating, square
    count_t, rating_t, square_t = (m.T.tocsr() for m in (count, rating, square))
    step = max(1, _STAT_BLOCK // max(n, 1))
    for lo in range(0, n, step):
        rows = slice(lo, min(n, lo + step))
        freq = (count_t[rows] @ count_w).toarray()
        prods = (rating_t[rows] @ rating_w).toarray()
        sq = (square_t[rows] @ count_w).toarray()
        sq_t = (count_t[rows] @ square_w).toarray() if transposed else None
        if base is not None:  # the delta first, then the base: the order add_products used
            _add_base(base, rows, freq, prods, sq, sq_t)
        yield rows, freq, prods, sq, sq_t


def _add_base(
    base: tuple[np.ndarray, np.ndarray, np.ndarray],
    rows: slice,
    freq: np.ndarray,
    prods: np.ndarray,
    sq: np.ndarray,
    sq_t: np.ndarray | None,
) -> None:
    """Add the base statistics to a block of rows ``rows`` (in place), where the base has
    them: its ``n_base`` first rows and columns."""
    n_base = base[0].shape[0]
    if rows.start >= n_base:
        return
    inside = slice(rows.start, min(rows.stop, n_base))
    local = slice(0, inside.stop - inside.start)
    freq[local, :n_base] += base[0][inside]
    prods[local, :n_base] += base[1][inside]
    sq[local, :n_base] += base[2][inside]
    if sq_t is not None:
        sq_t[local, :n_base] += base[2][:, inside].T


def similarity_from_records(
    records: tuple[sp.csr_matrix, sp.csr_matrix, sp.csr_matrix],
    measure: str,
    weights: np.ndarray | None = None,
    base: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """Dense similarities between the x from :func:`statistic_blocks`, finalized block by
    block (so the whole statistics are never formed), ``sim(x, x) = 1``."""
    _check_measure(measure)
    n = records[0].shape[1]
    sim = np.empty((n, n))
    for rows, freq, prods, sq, sq_t in statistic_blocks(records, weights, base):
        _similarities(freq, prods, sq, sq_t, measure == "msd", sim[rows])
    np.fill_diagonal(sim, 1.0)
    return sim


def finalize_similarity(
    freq: np.ndarray, prods: np.ndarray, sq: np.ndarray, sq_t: np.ndarray, measure: str
) -> np.ndarray:
    """Similarities from their statistics, entry by entry (no diagonal rule).

    ``sq_t`` holds ``sq`` transposed at the same entries, so that a block of rows can be
    finalized alone and give bit for bit what the whole matrix gives there.
    """
    _check_measure(measure)
    sim = np.empty(freq.shape)
    _similarities(freq, prods, sq, sq_t, measure == "msd", sim)
    return sim


@numba.njit(cache=True)
def _similarities(freq, prods, sq, sq_t, msd, out):  # pragma: no cover
    """One pass of the similarity rules over the statistics, in tiles (``sq_t`` is often a
    transposed view). Every entry takes the same IEEE operations, in the same order, as
    ``1 / (max(sq + sq_t - 2 prods, 0) / freq + 1)`` (msd) and ``prods / sqrt(sq sq_t)``
    (cosine) evaluated by numpy; entries without support, or cosines with a zero norm, are 0."""
    n, m = out.shape
    tile = 64
    for i0 in range(0, n, tile):
        for j0 in range(0, m, tile):
            for i in range(i0, min(i0 + tile, n)):
                for j in range(j0, min(j0 + tile, m)):
                    f = freq[i, j]
                    s = 0.0
                    if f > 0:
                        if msd:
                            d = sq[i, j] + sq_t[i, j] - 2.0 * prods[i, j]
                            if d < 0.0:
                                d = 0.0
                            s = 1.0 / (d / f + 1.0)
                        else:
                            den = np.sqrt(sq[i, j] * sq_t[i, j])
                            if den > 0:
                                s = prods[i, j] / den
                    out[i, j] = s


def similarity_matrix(
    xs: np.ndarray, ys: np.ndarray, rs: np.ndarray, n_x: int, n_y: int, measure: str = "msd"
) -> np.ndarray:
    """Dense ``(n_x, n_x)`` Surprise similarities between the x of records ``(xs, ys, rs)``."""
    return similarity_from_records(record_matrices(ys, xs, rs, n_y, n_x), measure)


def _similarity_from_statistics(
    freq: np.ndarray, prods: np.ndarray, sq: np.ndarray, measure: str
) -> np.ndarray:
    sim = finalize_similarity(freq, prods, sq, sq.T, measure)
    np.fill_diagonal(sim, 1.0)
    return sim


@numba.njit(cache=True)
def _kth_largest(buf, m, k):  # pragma: no cover
    """The k-th largest of ``buf[:m]``, reordering it: Hoare-partition quickselect (Numerical
    Recipes' ``select``), which stops on equal values and so stays fast with many ties."""
    target = m - k  # the k-th largest is the (m - k)-th smallest, counting from 0
    lo = 0
    hi = m - 1
    while hi > lo + 1:
        mid = (lo + hi) >> 1
        buf[mid], buf[lo + 1] = buf[lo + 1], buf[mid]
        if buf[lo] > buf[hi]:  # median of three into buf[lo + 1], sentinels at both ends
            buf[lo], buf[hi] = buf[hi], buf[lo]
        if buf[lo + 1] > buf[hi]:
            buf[lo + 1], buf[hi] = buf[hi], buf[lo + 1]
        if buf[lo] > buf[lo + 1]:
            buf[lo], buf[lo + 1] = buf[lo + 1], buf[lo]
        pivot = buf[lo + 1]
        i = lo + 1
        j = hi
        while True:
            i += 1
            while buf[i] < pivot:
                i += 1
            j -= 1
            while buf[j] > pivot:
                j -= 1
            if j < i:
                break
            buf[i], buf[j] = buf[j], buf[i]
        buf[lo + 1] = buf[j]
        buf[j] = pivot
        if j >= target:
            hi = j - 1
        if j <= target:
            lo = i
    if hi == lo + 1 and buf[hi] < buf[lo]:
        buf[lo], buf[hi] = buf[hi], buf[lo]
    return buf[target]


@numba.njit(cache=True)
def _kth_largest_heap(buf, m, k, heap):  # pragma: no cover
    """The k-th largest of ``buf[:m]`` (at least 0) from a min-heap of the k largest seen:
    one pass with few insertions when m is much larger than k."""
    heap[:k] = 0.0
    for j in range(m):
        s = buf[j]
        if s > heap[0]:  # replace the smallest kept value and sift it down
            p = 0
            while True:
                c = 2 * p + 1
                if c >= k:
                    break
                if c + 1 < k and heap[c + 1] < heap[c]:
                    c += 1
                if heap[c] >= s:
                    break
                heap[p] = heap[c]
                p = c
            heap[p] = s
    return heap[0]


@numba.njit(cache=True)
def _top_k(row, cand_x, cand_r, lo, m, k, buf, work, tie):  # pragma: no cover
    """(sum sim*r, sum sim, count) over the k most similar positive candidates of y.

    The k-th largest similarity is found first; then every candidate above it counts and, as
    Surprise's stable ``heapq.nlargest`` has it, the earliest records tied at it fill the rest.
    """
    for j in range(m):
        buf[j] = row[cand_x[lo + j]]
    kth = 0.0  # with m <= k every positive candidate counts
    if m > 16 * k:  # few heap insertions
        kth = _kth_largest_heap(buf, m, k, work)
    elif m > k:
        work[:m] = buf[:m]
        kth = max(_kth_largest(work, m, k), 0.0)  # if <= 0, every positive one is in the top k
    num = 0.0
    den = 0.0
    count = 0
    n_tie = 0
    for j in range(m):
        s = buf[j]
        if s > kth:
            num += s * cand_r[lo + j]
            den += s
            count += 1
        elif s == kth and s > 0:
            tie[n_tie] = j
            n_tie += 1
    n_tie = min(n_tie, k - count)
    for q in range(n_tie):
        num += kth * cand_r[lo + tie[q]]
        den += kth
    return num, den, count + n_tie


@numba.njit(cache=True, parallel=True)
def neighbour_grid(sim, cand_x, cand_r, y_ptr, xs, ys, k, min_k, fallback, out):  # pragma: no cover
    """``out[a, b]`` = estimate of x ``xs[a]`` from y ``ys[b]``'s candidates, by the rule of
    :meth:`KNNModel._estimate`, compiled for a full top-N grid; in parallel over the y (each
    column of ``out`` is one y's, computed exactly as alone)."""
    for b in numba.prange(ys.shape[0]):
        lo = y_ptr[ys[b]]
        m = y_ptr[ys[b] + 1] - lo
        buf = np.empty(m)
        work = np.empty(m)
        tie = np.empty(m, dtype=np.int64)
        for a in range(xs.shape[0]):
            num, den, count = _top_k(sim[xs[a]], cand_x, cand_r, lo, m, k, buf, work, tie)
            out[a, b] = num / den if count >= min_k and count > 0 else fallback


class KNNModel(Model):
    """A fitted KNNBasic: the similarity matrix plus the training records grouped by y."""

    def __init__(
        self,
        user_based: bool,
        k: int,
        min_k: int,
        sim: np.ndarray,
        candidates: tuple[np.ndarray, np.ndarray, np.ndarray],
        totals: RecordTotals,
    ) -> None:
        self.user_based = user_based
        self.k = int(k)
        self.min_k = int(min_k)
        self.n_users, self.n_items = len(totals.user_counts), len(totals.item_counts)
        self.scale = (float(totals.rating_scale[0]), float(totals.rating_scale[1]))
        self.global_mean = totals.global_mean(empty=0.0)
        self.known_user = totals.user_counts > 0
        self.known_item = totals.item_counts > 0
        self.n_x, self.n_y = (
            (self.n_users, self.n_items) if user_based else (self.n_items, self.n_users)
        )
        self.sim = sim
        # cand_x, cand_r: every y's records (x and rating) in training order; y_ptr: offsets.
        self.cand_x, self.cand_r, self.y_ptr = candidates

    def _estimate(self, xq: np.ndarray, y: int) -> np.ndarray:
        """Unclipped estimates for the query x ``xq`` against y's candidates (Surprise's rule)."""
        lo, hi = self.y_ptr[y], self.y_ptr[y + 1]
        cx, cr = self.cand_x[lo:hi], self.cand_r[lo:hi]
        m = hi - lo
        out = np.empty(len(xq))
        step = max(1, _BLOCK // max(m, 1))
        for s in range(0, len(xq), step):
            sims = self.sim[xq[s : s + step]][:, cx]
            if m > self.k:
                # k-th largest similarity per row; ties at it go to the earliest records.
                kth = -np.partition(-sims, self.k - 1, axis=1)[:, self.k - 1 : self.k]
                above = sims > kth
                at = sims == kth
                room = self.k - above.sum(axis=1, keepdims=True)
                chosen = above | (at & (np.cumsum(at, axis=1) <= room))
                chosen &= sims > 0
            else:
                chosen = sims > 0
            weights = np.where(chosen, sims, 0.0)
            actual_k = chosen.sum(axis=1)
            den = weights.sum(axis=1)
            ok = (actual_k >= self.min_k) & (actual_k > 0)
            est = np.full(len(weights), self.global_mean)
            est[ok] = (weights[ok] @ cr) / den[ok]
            out[s : s + step] = est
        return out

    def _known(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        ok = (users >= 0) & (users < self.n_users) & (items >= 0) & (items < self.n_items)
        ok[ok] = self.known_user[users[ok]] & self.known_item[items[ok]]
        return ok

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        users = np.asarray(users, dtype=np.int64)
        items = np.asarray(items, dtype=np.int64)
        out = np.full(len(users), self.global_mean)
        idx = np.flatnonzero(self._known(users, items))
        xq, yq = (users[idx], items[idx]) if self.user_based else (items[idx], users[idx])
        order = np.argsort(yq, kind="stable")
        idx, xq, yq = idx[order], xq[order], yq[order]
        bounds = np.flatnonzero(np.diff(yq)) + 1
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, len(yq)], strict=True):
            if b > a:
                out[idx[a:b]] = self._estimate(xq[a:b], int(yq[a]))
        return np.clip(out, *self.scale)

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Every item's estimate for each user, from a compiled loop over the (user, item) grid."""
        users = np.asarray(users, dtype=np.int64)
        out = np.full((len(users), self.n_items), self.global_mean)
        valid = (users >= 0) & (users < self.n_users)
        valid[valid] = self.known_user[users[valid]]
        rows = np.flatnonzero(valid)
        cols = np.flatnonzero(self.known_item)
        if len(rows) and len(cols):
            if self.user_based:  # x = user (grid rows), y = item (grid columns)
                block = np.empty((len(rows), len(cols)))
                args = (users[rows], cols)
            else:  # x = item, y = user: fill the transposed grid
                block = np.empty((len(cols), len(rows)))
                args = (cols, users[rows])
            with parallel_kernel():
                neighbour_grid(
                    self.sim,
                    self.cand_x,
                    self.cand_r,
                    self.y_ptr,
                    *args,
                    self.k,
                    self.min_k,
                    self.global_mean,
                    block,
                )
            out[np.ix_(rows, cols)] = block if self.user_based else block.T
        return np.clip(out, *self.scale)


class Candidates:
    """The training records grouped by y, in training order within each y: the candidates
    Surprise scans for an estimate. A stable sort keeps record order, which decides ties."""

    def __init__(self, xs: np.ndarray, ys: np.ndarray, rs: np.ndarray, n_y: int) -> None:
        self.ys = np.asarray(ys, dtype=np.int64)
        self.order = np.argsort(self.ys, kind="stable")
        self.cand_x = np.asarray(xs, dtype=np.int64)[self.order]
        self.cand_r = np.asarray(rs, dtype=np.float64)[self.order]
        self.counts = np.bincount(self.ys, minlength=n_y)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.cand_x, self.cand_r, _offsets(self.counts)

    def after(
        self,
        removed: np.ndarray,
        add_x: np.ndarray,
        add_y: np.ndarray,
        add_r: np.ndarray,
        n_y: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The candidates of ``Delta(removed, added).apply(base)``: each y's kept base records
        in base order, then its added records in their order, exactly as a stable sort of the
        modified training set by y gives them. One masked copy of the arrays (linear in the
        base, but a memory-speed pass) plus an insertion of the added records. ``n_y``: the
        modified set's number of y, when the delta brings new ones (they come last, with
        their added records alone)."""
        cand_x, cand_r, counts = self.cand_x, self.cand_r, self.counts
        if n_y is not None and n_y > len(counts):
            counts = np.concatenate([counts, np.zeros(n_y - len(counts), dtype=counts.dtype)])
        if len(removed):
            keep = np.ones(len(self.ys), dtype=bool)
            keep[removed] = False
            keep_sorted = keep[self.order]
            cand_x, cand_r = cand_x[keep_sorted], cand_r[keep_sorted]
            counts = counts - np.bincount(self.ys[removed], minlength=len(counts))
        if len(add_y):
            order = np.argsort(add_y, kind="stable")
            at = np.cumsum(counts)[add_y[order]]  # after the kept records of the same y
            cand_x = np.insert(cand_x, at, add_x[order])
            cand_r = np.insert(cand_r, at, add_r[order])
            counts = counts + np.bincount(add_y, minlength=len(counts))
        return cand_x, cand_r, _offsets(counts)


def _offsets(counts: np.ndarray) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(counts)])


# --------------------------------------------------------------------------- fast paths
#
# A delta changes the training records of a few users: the "touched" users, who have a removed
# or an added record. Every statistic below is a sum over users of a per-user term, or (for
# user-KNN) a per-pair-of-users term, so a scenario only recomputes the touched users' terms.


@dataclass(frozen=True)
class Touched:
    """The users a delta touches and their records before and after it.

    ``old`` and ``new`` are ``(row, item, rating)`` arrays whose ``row`` is the index of the
    user in ``users``; ``new`` lists each user's kept base records, then its added ones.
    ``added`` is the delta's (possibly empty, or ``None``); ``shape`` is the modified training
    set's ``(n_users, n_items)`` (:func:`shape_after`).
    """

    removed: np.ndarray
    added: TrainingSet | None
    shape: tuple[int, int]
    users: np.ndarray
    old: tuple[np.ndarray, np.ndarray, np.ndarray]
    new: tuple[np.ndarray, np.ndarray, np.ndarray]
    #: The work of updating the touched users' terms (their records before and after) and of
    #: recomputing every user's term (the records after the delta), in records: an update
    #: costs about as much per record as a recomputation, measured on MovieLens-100K.
    update_work: int
    scratch_work: int

    def added_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return _arrays(self.added)


def _arrays(records: TrainingSet | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, ratings) of ``records`` as int64, int64, float64; empty for ``None``."""
    if records is None:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    return (
        np.asarray(records.users, dtype=np.int64),
        np.asarray(records.items, dtype=np.int64),
        np.asarray(records.ratings, dtype=np.float64),
    )


class UserRows:
    """A base training set's records grouped by user, so that a delta's touched users' records
    are gathered without a pass over the base."""

    def __init__(self, base: TrainingSet) -> None:
        self.base = base
        users = np.asarray(base.users, dtype=np.int64)
        self.order = np.argsort(users, kind="stable")
        self.counts = np.bincount(users, minlength=base.n_users)
        self.ptr = _offsets(self.counts)

    def positions(self, users: np.ndarray) -> np.ndarray:
        """Base positions of the records of ``users`` (user by user, base order within); new
        users (codes from the base's ``n_users`` on) have none."""
        n = len(self.counts)
        known = users < n
        lens = np.zeros(len(users), dtype=np.int64)
        lens[known] = self.counts[users[known]]
        first = np.repeat(self.ptr[np.minimum(users, n)] - (np.cumsum(lens) - lens), lens)
        return self.order[first + np.arange(int(lens.sum()))]

    def touched(self, delta: Delta) -> Touched:
        """O(removed + added + the touched users' records). The touched users include the new
        users the delta's added records bring (with no old records)."""
        base = self.base
        removed = removed_positions(delta, len(base))
        added = delta.added
        add_u, add_i, add_r = _arrays(added)
        n_users, _ = shape_after(base, delta)
        hit = np.bincount(base.users[removed], minlength=n_users)
        users = np.flatnonzero(hit + np.bincount(add_u, minlength=n_users))
        old = self.positions(users)
        kept = old[~_contains(removed, old)]
        old_rows = np.searchsorted(users, base.users[old])
        new_rows = np.concatenate(
            [np.searchsorted(users, base.users[kept]), np.searchsorted(users, add_u)]
        )
        return Touched(
            removed,
            added,
            shape_after(base, delta),
            users,
            (old_rows, base.items[old].astype(np.int64), base.ratings[old].astype(np.float64)),
            (
                new_rows,
                np.concatenate([base.items[kept].astype(np.int64), add_i]),
                np.concatenate([base.ratings[kept].astype(np.float64), add_r]),
            ),
            update_work=len(old) + len(new_rows),
            scratch_work=len(base) - len(removed) + len(add_u),
        )


def _contains(sorted_values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Whether each query is in ``sorted_values`` (a binary search each)."""
    if not len(sorted_values):
        return np.zeros(len(queries), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_values, queries), len(sorted_values) - 1)
    return sorted_values[at] == queries


def add_products(base: np.ndarray, a: sp.spmatrix, b: sp.spmatrix, signs: np.ndarray) -> np.ndarray:
    """``base + aᵀ diag(signs) b`` as a new dense array (``base`` is left as it is).

    ``a`` and ``b`` hold a few rows (the touched users'), so ``b`` is densified and the product
    is a sparse-dense one, O(nnz(a) · columns of b), plus one pass to add ``base``.
    """
    dense = b.toarray()
    dense *= signs[:, None]
    out = np.asarray(a.T @ dense)
    out += base
    return out


def _stacked(t: Touched) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The touched users' old rows (signed -1) stacked over their new rows (signed +1)."""
    n = len(t.users)
    rows = np.concatenate([t.old[0], t.new[0] + n])
    items = np.concatenate([t.old[1], t.new[1]])
    ratings = np.concatenate([t.old[2], t.new[2]])
    return rows, items, ratings, np.concatenate([-np.ones(n), np.ones(n)])


class _KNNPath(FastPath):
    """Shared state of the two KNN fast paths: totals, rows by user and the candidates."""

    def __init__(self, learner: _KNNBasic, base: TrainingSet) -> None:
        self.learner = learner
        self.base = base
        self.totals = RecordTotals.of(base)
        self.rows = UserRows(base)
        self.user_based = learner._user_based
        xs, ys, _, n_y = _orient(base, self.user_based)
        self.candidates = Candidates(xs, ys, base.ratings, n_y)

    def _similarity(self, delta: Delta, t: Touched) -> np.ndarray:
        raise NotImplementedError

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[Model]:
        for delta in deltas:
            # One model at a time; the statistics are freed before the model is handed over.
            t = self.rows.touched(delta)
            yield self._model(self._similarity(delta, t), t)

    def _model(self, sim: np.ndarray, t: Touched) -> KNNModel:
        add_u, add_i, add_r = t.added_arrays()
        add_x, add_y = (add_u, add_i) if self.user_based else (add_i, add_u)
        n_y = t.shape[1] if self.user_based else t.shape[0]
        lr = self.learner
        return KNNModel(
            self.user_based,
            lr.k,
            lr.min_k,
            sim,
            self.candidates.after(t.removed, add_x, add_y, add_r, n_y),
            self.totals.after(self.base, t.removed, t.added),
        )


class _ItemKNNPath(_KNNPath):
    """Item-KNN's statistics are sums over users of each user's item-pair terms: a delta
    subtracts its touched users' old terms and adds their new ones (a sparse-dense product over
    those users alone, O(their records × n_items)), then finalizes the n_items² similarity.
    When the touched users hold more records than the modified data, recomputing the
    statistics from the modified data (as a plain fit does) is cheaper, and is what is done.

    Per delta: the touched users' records, 3 products and n_items² additions, one compiled
    n_items² finalize, and the candidate lists (one masked copy of the training records,
    linear in the base but at memory speed; Surprise's tie order needs them in record order).

    Subtracting is exact only when every sum of ratings and of products of two ratings is
    (ratings on a grid of 2^-m, as whole or half stars, and sums below 2^53): then the
    statistics, hence the similarities and every tie among them, are bit-identical to a plain
    fit's. Otherwise a difference in the last bit could break a tie (two equal similarities,
    say two msd of exactly 1) the other way, so such data always takes the plain computation.
    """

    name = "sufficient-statistics"

    def __init__(self, learner: _KNNBasic, base: TrainingSet) -> None:
        super().__init__(learner, base)
        self.stats = pair_statistics(
            base.items, base.users, base.ratings, base.n_items, base.n_users
        )
        self.grid = _rating_grid(base.ratings)
        self.per_item = int(self.totals.item_counts.max(initial=0))

    def _similarity(self, delta: Delta, t: Touched) -> np.ndarray:
        base = self.base
        n_added = len(t.added) if t.added is not None else 0
        exact = self.grid is not None and _exact_sums(
            self.grid, _rating_grid(t.added_arrays()[2]), self.per_item + n_added
        )
        measure = self.learner.similarity
        n_users, n_items = t.shape  # new items' base statistics are zeros: left out
        if exact and t.update_work <= t.scratch_work:
            rows, items, ratings, signs = _stacked(t)
            records = record_matrices(rows, items, ratings, len(signs), n_items)
            return similarity_from_records(records, measure, signs, self.stats)
        train = delta.apply(base)
        records = record_matrices(train.users, train.items, train.ratings, n_users, n_items)
        return similarity_from_records(records, measure)


def _rating_grid(ratings: np.ndarray) -> tuple[int, float] | None:
    """``(m, largest |r| · 2^m)`` for the smallest ``m <= 16`` such that every rating is a
    multiple of 2^-m, or ``None`` when there is none (e.g. 3.7)."""
    r = np.abs(np.asarray(ratings, dtype=np.float64))
    if not len(r):
        return 0, 0.0
    for m in range(17):
        scaled = r * 2.0**m  # exact: a power-of-two scaling
        if np.all(scaled == np.floor(scaled)):
            return m, float(scaled.max())
    return None


def _exact_sums(a: tuple[int, float], b: tuple[int, float] | None, per_item: int) -> bool:
    """Whether item-KNN's statistics, and every partial sum and difference formed on the way,
    are exact in float64 for ratings on grids ``a`` and ``b`` and at most ``per_item`` records
    per item. Each is a sum over users of products of two items' per-user rating sums (or
    counts), so all are multiples of 2^-2m and at most (per_item · max|r|)² in absolute value
    (max|r| at least 1, for the counts): exact below 2^53 · 2^-2m."""
    if b is None:
        return False
    m = max(a[0], b[0])
    largest = max(1.0, a[1] * 2.0 ** (m - a[0]), b[1] * 2.0 ** (m - b[0]))
    return (per_item * largest) ** 2 < 2.0**53


class _UserKNNPath(_KNNPath):
    """User-KNN's similarity between two users depends on their two rows alone, so a delta
    keeps the base similarity of every pair of untouched users and recomputes the rows and
    columns of its touched users: sparse products of their new rows with every user's row
    (O(sum over their records of the item's number of raters)), finalized on 2·touched·n_users
    entries, plus one copy of the n_users² base similarity. A user left with no record gets
    similarity 0 to everyone else (and is unknown to the model), as in a plain fit.

    The candidate lists are rebuilt as for item-KNN (one masked copy of the records). With
    exact rating sums the similarities are bit-identical to a plain fit's."""

    name = "user-knn-rows"

    def __init__(self, learner: _KNNBasic, base: TrainingSet) -> None:
        super().__init__(learner, base)
        count, rating, square = record_matrices(
            base.users, base.items, base.ratings, base.n_users, base.n_items
        )
        self.count_t, self.rating_t, self.square_t = (m.T.tocsr() for m in (count, rating, square))
        stats = pair_statistics(base.users, base.items, base.ratings, base.n_users, base.n_items)
        self.sim = _similarity_from_statistics(*stats, learner.similarity)

    def _similarity(self, delta: Delta, t: Touched) -> np.ndarray:
        users = t.users
        n_users, n_items = t.shape
        count, rating, square = record_matrices(*t.new, len(users), n_items)
        count_t, rating_t, square_t = (
            grown_csr(m, n_items, n_users) for m in (self.count_t, self.rating_t, self.square_t)
        )
        freq = _user_rows(count, count_t, count, users)
        prods = _user_rows(rating, rating_t, rating, users)
        sq = _user_rows(square, count_t, count, users)  # sq[u, v]
        sq_t = _user_rows(count, square_t, square, users)  # sq[v, u]
        block = finalize_similarity(freq, prods, sq, sq_t, self.learner.similarity)
        block[np.arange(len(users)), users] = 1.0
        sim = _grown_similarity(self.sim, n_users)
        sim[users] = block
        sim[:, users] = block.T
        return sim


def grown_csr(m: sp.csr_matrix, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """``m`` with empty rows and columns appended up to ``(n_rows, n_cols)`` (the base's records
    of items and users a delta brings: none), sharing its arrays."""
    if m.shape == (n_rows, n_cols):
        return m
    extra = np.full(n_rows - m.shape[0], m.indptr[-1], dtype=m.indptr.dtype)
    return sp.csr_matrix(
        (m.data, m.indices, np.concatenate([m.indptr, extra])), shape=(n_rows, n_cols)
    )


def _grown_similarity(sim: np.ndarray, n: int) -> np.ndarray:
    """A copy of the base similarities for ``n`` x: new x (no base record) are similar to no
    one, and to themselves 1, as a plain fit has them before their own records count."""
    m = len(sim)
    if n == m:
        return sim.copy()
    grown = np.zeros((n, n))
    grown[:m, :m] = sim
    grown[np.arange(m, n), np.arange(m, n)] = 1.0
    return grown


def _user_rows(
    a: sp.csr_matrix, b_base_t: sp.csr_matrix, b_new: sp.csr_matrix, users: np.ndarray
) -> np.ndarray:
    """``a @ bᵀ`` for the touched users' rows ``a`` against every user's row of ``b``: the base
    rows of ``b``, except the touched users' own columns, which take their new rows."""
    out = (a @ b_base_t).toarray()
    out[:, users] = (a @ b_new.T).toarray()
    return out


def _orient(train: TrainingSet, user_based: bool):
    """(xs, ys, n_x, n_y): x is the side the similarities are between."""
    users = np.asarray(train.users, dtype=np.int64)
    items = np.asarray(train.items, dtype=np.int64)
    if user_based:
        return users, items, train.n_users, train.n_items
    return items, users, train.n_items, train.n_users


class _KNNBasic(Learner):
    """Shared recipe of the two orientations of Surprise's ``KNNBasic``."""

    predicts_ratings = True
    _user_based = True

    class Config(LearnerConfig):
        k: int = Field(
            40, ge=1, le=MAX_NEIGHBOURS, description="The most neighbours an estimate uses."
        )
        min_k: int = Field(
            1,
            ge=0,
            le=MAX_NEIGHBOURS,
            description="With fewer neighbours, the estimate is the global mean.",
        )
        similarity: Similarity = Field(
            "msd",
            description="msd (1 / (mean squared difference + 1)) or cosine, over common "
            "ratings only, as Surprise computes them.",
        )

    def __init__(self, k: int = 40, min_k: int = 1, similarity: str = "msd") -> None:
        c = self.configure(k=k, min_k=min_k, similarity=similarity)
        self.k: int = c.k
        self.min_k: int = c.min_k
        self.similarity: str = c.similarity

    def memory_bytes(self, n_users: int, n_items: int, n_records: int) -> int:
        # Co-rating sums and similarities of the neighbours' side: about six dense n × n
        # float64 matrices (item-KNN peaked at 5.5 GiB at MovieLens-10M's 10,677 items).
        n = n_users if self._user_based else n_items
        return 6 * 8 * n**2 + super().memory_bytes(n_users, n_items, n_records)

    def fit(self, train: TrainingSet) -> KNNModel:
        xs, ys, n_x, n_y = _orient(train, self._user_based)
        ratings = np.asarray(train.ratings, dtype=np.float64)
        sim = similarity_matrix(xs, ys, ratings, n_x, n_y, self.similarity)
        candidates = Candidates(xs, ys, ratings, n_y).arrays()
        return KNNModel(
            self._user_based, self.k, self.min_k, sim, candidates, RecordTotals.of(train)
        )


class UserKNN(_KNNBasic):
    """User-based KNNBasic: a rating is the similarity-weighted mean of similar users' ratings."""

    name = "user_knn"
    _user_based = True

    def fast_path(self, base: TrainingSet) -> FastPath:
        return _UserKNNPath(self, base)


class ItemKNN(_KNNBasic):
    """Item-based KNNBasic: a rating is the weighted mean of the user's ratings of similar items."""

    name = "item_knn"
    _user_based = False

    def fast_path(self, base: TrainingSet) -> FastPath:
        return _ItemKNNPath(self, base)
