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

Known differences, all outside what Surprise can do: Surprise raises ``ZeroDivisionError`` for
``min_k=0`` when no neighbour counts and for a cosine between two x whose common ratings are
all 0; we return the global mean and a similarity of 0. With ratings that are not exactly
representable sums (e.g. 3.7), similarities may differ from Surprise's in the last bit, which
moves estimates by ~1e-15 and could reorder two neighbours whose similarities tie to the bit.
"""

from __future__ import annotations

import numba
import numpy as np
import scipy.sparse as sp

from datalever.data.contributions import TrainingSet
from datalever.errors import DataleverError
from datalever.learners.base import Learner, Model

SIMILARITIES = ("msd", "cosine")
#: Largest number of (query, candidate) similarity entries handled at once, to bound memory.
_BLOCK = 1 << 22


def similarity_matrix(
    xs: np.ndarray, ys: np.ndarray, rs: np.ndarray, n_x: int, n_y: int, measure: str = "msd"
) -> np.ndarray:
    """Dense ``(n_x, n_x)`` Surprise similarities between the x of records ``(xs, ys, rs)``."""
    xs = np.asarray(xs, dtype=np.int64)
    ys = np.asarray(ys, dtype=np.int64)
    rs = np.asarray(rs, dtype=np.float64)

    def mat(values: np.ndarray) -> sp.csr_matrix:
        # csr from coordinates sums duplicates: per-(x, y) sums over records, as Surprise counts.
        return sp.csr_matrix((values, (xs, ys)), shape=(n_x, n_y))

    count, rating, square = mat(np.ones_like(rs)), mat(rs), mat(rs * rs)
    freq = (count @ count.T).toarray()
    prods = (rating @ rating.T).toarray()
    sq_x = (square @ count.T).toarray()  # sum over common y of r_x^2 (row x, column x')
    support = freq > 0
    sim = np.zeros((n_x, n_x))
    if measure == "msd":
        sq_diff = np.maximum(sq_x + sq_x.T - 2.0 * prods, 0.0)
        sim[support] = 1.0 / (sq_diff[support] / freq[support] + 1.0)
    elif measure == "cosine":
        denom = np.sqrt(sq_x * sq_x.T)
        ok = support & (denom > 0)
        sim[ok] = prods[ok] / denom[ok]
    else:
        raise DataleverError(
            f"Unknown similarity {measure!r}.", f"use one of {', '.join(SIMILARITIES)}."
        )
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


@numba.njit(cache=True)
def _grid(sim, cand_x, cand_r, y_ptr, xs, ys, k, min_k, fallback, out):  # pragma: no cover
    """``out[a, b]`` = estimate of x ``xs[a]`` from y ``ys[b]``'s candidates, by the rule of
    :meth:`KNNModel._estimate`, compiled so that a full top-N grid needs no temporaries."""
    buf = np.empty(cand_x.shape[0])
    work = np.empty(cand_x.shape[0])
    tie = np.empty(cand_x.shape[0], dtype=np.int64)
    for b in range(ys.shape[0]):
        lo = y_ptr[ys[b]]
        m = y_ptr[ys[b] + 1] - lo
        for a in range(xs.shape[0]):
            num, den, count = _top_k(sim[xs[a]], cand_x, cand_r, lo, m, k, buf, work, tie)
            out[a, b] = num / den if count >= min_k and count > 0 else fallback


class KNNModel(Model):
    """A fitted KNNBasic: the similarity matrix plus the training records grouped by y."""

    def __init__(self, train: TrainingSet, user_based: bool, k: int, min_k: int, measure: str):
        self.user_based = user_based
        self.k = int(k)
        self.min_k = int(min_k)
        self.n_users, self.n_items = train.n_users, train.n_items
        self.scale = (float(train.rating_scale[0]), float(train.rating_scale[1]))
        users = np.asarray(train.users, dtype=np.int64)
        items = np.asarray(train.items, dtype=np.int64)
        ratings = np.asarray(train.ratings, dtype=np.float64)
        self.global_mean = float(ratings.mean()) if len(ratings) else 0.0
        self.known_user = np.bincount(users, minlength=self.n_users) > 0
        self.known_item = np.bincount(items, minlength=self.n_items) > 0
        xs, ys = (users, items) if user_based else (items, users)
        self.n_x, self.n_y = (
            (self.n_users, self.n_items) if user_based else (self.n_items, self.n_users)
        )
        self.sim = similarity_matrix(xs, ys, ratings, self.n_x, self.n_y, measure)
        # Candidates of each y in training order: a stable sort keeps Surprise's tie order.
        order = np.argsort(ys, kind="stable")
        self.cand_x = xs[order]
        self.cand_r = ratings[order]
        self.y_ptr = np.concatenate([[0], np.cumsum(np.bincount(ys, minlength=self.n_y))])

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
            _grid(
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


class _KNNBasic(Learner):
    """Shared recipe of the two orientations of Surprise's ``KNNBasic``."""

    predicts_ratings = True
    _user_based = True

    def __init__(self, k: int = 40, min_k: int = 1, similarity: str = "msd") -> None:
        if similarity not in SIMILARITIES:
            raise DataleverError(
                f"Unknown similarity {similarity!r} for {type(self).__name__}.",
                f"use one of {', '.join(SIMILARITIES)}.",
            )
        if int(k) < 1 or int(min_k) < 0:
            raise DataleverError(
                f"{type(self).__name__} needs k >= 1 and min_k >= 0 (got k={k}, min_k={min_k}).",
                "pick a positive number of neighbours.",
            )
        self.k = int(k)
        self.min_k = int(min_k)
        self.similarity = similarity

    def fit(self, train: TrainingSet) -> KNNModel:
        return KNNModel(train, self._user_based, self.k, self.min_k, self.similarity)


class UserKNN(_KNNBasic):
    """User-based KNNBasic: a rating is the similarity-weighted mean of similar users' ratings."""

    name = "user_knn"
    _user_based = True


class ItemKNN(_KNNBasic):
    """Item-based KNNBasic: a rating is the weighted mean of the user's ratings of similar items."""

    name = "item_knn"
    _user_based = False
