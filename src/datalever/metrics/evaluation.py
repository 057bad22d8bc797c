"""Turn a fitted model's scores on held-out records into per-user ranked lists.

Two evaluation modes, one per protocol family:

* ``"ratings"`` (Data Strikes): each user's held-out ratings are ranked by predicted score;
  relevance is the true rating, graded. Ties in score are broken in one random order drawn from
  a seed (the same for every model judged on the same records), as the published code did.
* ``"topn"`` (per-user holdout): every item the user has no training record for is ranked, the
  top ``k`` form the recommendation list; relevance is 1 for a held-out item, 0 otherwise.

Both reduce to the same per-user quantities, which the metrics in :mod:`.catalog` consume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np

from datalever.learners.base import Model


@dataclass(frozen=True)
class HeldOut:
    """Held-out (test) records of one fold."""

    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    n_users: int


@dataclass
class Evaluation:
    """Per-user quantities of one model on one set of held-out records.

    ``entry_*`` arrays describe ranked list entries (sorted by user, then rank, 1-based);
    ``ideal_*`` the same held-out records in ideal order (by true relevance).
    """

    mode: str
    n_users: int
    entry_user: np.ndarray
    entry_rank: np.ndarray
    entry_rel: np.ndarray
    ideal_user: np.ndarray
    ideal_rank: np.ndarray
    ideal_rel: np.ndarray
    n_test: np.ndarray
    n_relevant: np.ndarray
    relevance_threshold: float
    sq_error: np.ndarray | None = None
    abs_error: np.ndarray | None = None

    def per_user_sum(self, user: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return np.bincount(user, weights=weights, minlength=self.n_users)

    def hits_within(self, cutoff: np.ndarray) -> np.ndarray:
        """Relevant entries each user has at ranks ``<= cutoff[user]``."""
        hit = (self.entry_rank <= cutoff[self.entry_user]) & (
            self.entry_rel >= self.relevance_threshold
        )
        return self.per_user_sum(self.entry_user, hit.astype(float))


def _rank_within_user(sorted_users: np.ndarray) -> np.ndarray:
    """1-based positions inside each user's block of a user-sorted array."""
    starts = np.searchsorted(sorted_users, sorted_users, side="left")
    return np.arange(len(sorted_users)) - starts + 1


def _ideal(held_out: HeldOut, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((-rel, held_out.users))
    users = held_out.users[order]
    return users, _rank_within_user(users), rel[order]


def evaluate_ratings(
    model: Model, held_out: HeldOut, relevance_threshold: float, tie_seed: int, errors: bool
) -> Evaluation:
    """Rank each user's held-out ratings by the model's scores (the Data Strikes protocol).
    See :class:`RatingsTask`."""
    return RatingsTask(held_out, relevance_threshold, tie_seed).evaluate(model, errors)


class RatingsTask:
    """The Data Strikes judging, prepared once per fold and applied to many models.

    Each user's held-out ratings are ranked by the model's scores, best first; equal scores
    keep one random order of the records drawn from ``tie_seed`` (the same for every model
    judged on the fold); NaN scores rank last. What does not depend on the model (the ideal
    order, counts, the records grouped by user in tie order) is computed here once.
    """

    def __init__(self, held_out: HeldOut, relevance_threshold: float, tie_seed: int) -> None:
        self.held_out, self.relevance_threshold = held_out, relevance_threshold
        perm = np.random.default_rng(tie_seed).permutation(len(held_out.users))
        # Records grouped by user, in tie order within each user (a stable sort).
        self.grouped = perm[np.argsort(held_out.users[perm], kind="stable")]
        self.users = held_out.users[self.grouped]
        self.ranks = _rank_within_user(self.users)
        self.bounds = np.r_[0, np.flatnonzero(np.diff(self.users)) + 1, len(self.users)]
        self.rel = held_out.ratings.astype(float)
        self.ideal = _ideal(held_out, self.rel)
        self.n_test = np.bincount(held_out.users, minlength=held_out.n_users)
        relevant = (self.rel >= relevance_threshold).astype(float)
        self.n_relevant = np.bincount(held_out.users, weights=relevant, minlength=held_out.n_users)

    def evaluate(self, model: Model, errors: bool) -> Evaluation:
        held_out = self.held_out
        scores = np.asarray(model.predict(held_out.users, held_out.items), dtype=np.float64)
        order = self.grouped[_sort_segments(scores[self.grouped], self.bounds)]
        ideal_user, ideal_rank, ideal_rel = self.ideal
        ev = Evaluation(
            mode="ratings",
            n_users=held_out.n_users,
            entry_user=self.users,
            entry_rank=self.ranks,
            entry_rel=self.rel[order],
            ideal_user=ideal_user,
            ideal_rank=ideal_rank,
            ideal_rel=ideal_rel,
            n_test=self.n_test,
            n_relevant=self.n_relevant,
            relevance_threshold=self.relevance_threshold,
        )
        if errors:
            diff = scores - held_out.ratings
            ev.sq_error = ev.per_user_sum(held_out.users, diff * diff)
            ev.abs_error = ev.per_user_sum(held_out.users, np.abs(diff))
        return ev


@numba.njit(cache=True, nogil=True)
def _sort_segments(scores, bounds):  # pragma: no cover - compiled
    """Positions that sort each segment ``bounds[s]:bounds[s+1]`` by score, highest first,
    stably (equal scores keep their order), NaN last: an insertion sort, as segments (one
    user's held-out ratings) are short."""
    out = np.arange(len(scores))
    for s in range(len(bounds) - 1):
        lo, hi = bounds[s], bounds[s + 1]
        for a in range(lo + 1, hi):
            cur = out[a]
            v = scores[cur]
            b = a
            # move left past entries that rank strictly lower (NaN ranks below everything)
            while b > lo:
                w = scores[out[b - 1]]
                if v > w or (w != w and v == v):
                    out[b] = out[b - 1]
                    b -= 1
                else:
                    break
            out[b] = cur
    return out


#: Part of every scenario key: bumped when a change here changes what a model is judged to
#: score, so stored results judged the old way are not reused.
EVALUATION_VERSION = "2"


def evaluate_topn(
    model: Model,
    held_out: HeldOut,
    known_users: np.ndarray,
    known_items: np.ndarray,
    k: int,
    batch: int | None = None,
    tie_seed: int = 0,
) -> Evaluation:
    """Recommend the top ``k`` unknown items to each held-out user (per-user holdout protocol).

    ``known_users``/``known_items`` are the records each user already has in the base training
    data; those items are never recommended to that user. See :class:`TopNTask`.
    """
    return TopNTask(held_out, known_users, known_items, k, batch, tie_seed).evaluate(model)


class TopNTask:
    """The per-user holdout's judging, prepared once per fold and applied to many models.

    Each held-out user is recommended the ``k`` highest-scoring items they have no training
    record for. Equal scores are ranked in one random order of the items drawn from
    ``tie_seed``, the same for every model judged on the fold (as the ratings protocol breaks
    ties), so a model with no information about a user (all scores equal) recommends a random
    list rather than, say, the lowest item ids. Items scoring NaN or ``-inf`` are never
    recommended, so a user with fewer other items gets a shorter list.
    """

    def __init__(
        self,
        held_out: HeldOut,
        known_users: np.ndarray,
        known_items: np.ndarray,
        k: int,
        batch: int | None = None,
        tie_seed: int = 0,
        dataset_items: int | None = None,
    ) -> None:
        if k < 1:
            raise ValueError(f"a top-N list needs k >= 1 (got {k})")
        self.held_out, self.k = held_out, k
        self.tie_seed = tie_seed
        self.dataset_items = dataset_items
        self._tie_orders: dict[int, np.ndarray] = {}
        self.test_users = np.unique(held_out.users)
        n_items = int(max(held_out.items.max(initial=0), known_items.max(initial=0))) + 1
        self.n_items = n_items
        # Users scored per call of ``score_users``: every one at once, up to 2^22 scores.
        self.batch = batch or max(1, (1 << 22) // max(n_items, 1))
        # Each test user's known items and held-out items, as sorted runs (CSR-like).
        self.known_ptr, self.known_items = _runs(
            self.test_users, np.asarray(known_users), np.asarray(known_items)
        )
        self.test_ptr, self.test_items = _runs(
            self.test_users, np.asarray(held_out.users), np.asarray(held_out.items)
        )
        ones = np.ones(len(held_out.users))
        self.ideal = _ideal(held_out, ones)
        self.n_test = np.bincount(held_out.users, minlength=held_out.n_users)

    def top_lists(self, model: Model) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every held-out user's list: entries' users, items and relevance (0/1), user by
        user, best first."""
        users_out, items_out, rel_out = [], [], []
        for start in range(0, len(self.test_users), self.batch):
            stop = min(start + self.batch, len(self.test_users))
            scores = np.asarray(model.score_users(self.test_users[start:stop]), dtype=np.float64)
            if (
                scores.shape[1] < self.n_items
            ):  # a model that knows fewer items: the rest never score
                scores = np.pad(
                    scores,
                    ((0, 0), (0, self.n_items - scores.shape[1])),
                    constant_values=-np.inf,
                )
            top, length, rel = _top_k(
                np.ascontiguousarray(scores),
                self.known_ptr[start : stop + 1] - self.known_ptr[start],
                self.known_items[self.known_ptr[start] : self.known_ptr[stop]],
                self.test_ptr[start : stop + 1] - self.test_ptr[start],
                self.test_items[self.test_ptr[start] : self.test_ptr[stop]],
                self.tie_order(scores.shape[1]),
                self.k,
            )
            keep = np.arange(top.shape[1])[None, :] < length[:, None]
            users_out.append(np.repeat(self.test_users[start:stop], top.shape[1])[keep.ravel()])
            items_out.append(top[keep])
            rel_out.append(rel[keep])
        if not users_out:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        return (
            np.concatenate(users_out),
            np.concatenate(items_out),
            np.concatenate(rel_out).astype(float),
        )

    def tie_order(self, n_items: int) -> np.ndarray:
        """The order in which equal scores are ranked: a permutation of ``n_items`` items. For
        a model that knows items beyond the dataset's ``dataset_items`` (added by a lever), the
        dataset's items keep their order and the new ones follow, so adding an item reshuffles
        no tie among the others."""
        if n_items not in self._tie_orders:
            own = self.dataset_items if self.dataset_items else n_items
            rng = np.random.default_rng(self.tie_seed)
            if n_items > own:
                order = np.r_[rng.permutation(own), np.arange(own, n_items)]
            else:
                order = rng.permutation(n_items)
            self._tie_orders[n_items] = order
        return self._tie_orders[n_items]

    def evaluate(self, model: Model) -> Evaluation:
        entry_user, _, entry_rel = self.top_lists(model)
        ideal_user, ideal_rank, ideal_rel = self.ideal
        return Evaluation(
            mode="topn",
            n_users=self.held_out.n_users,
            entry_user=entry_user,
            entry_rank=_rank_within_user(entry_user),
            entry_rel=entry_rel.astype(float),
            ideal_user=ideal_user,
            ideal_rank=ideal_rank,
            ideal_rel=ideal_rel,
            n_test=self.n_test,
            n_relevant=self.n_test.astype(float),
            relevance_threshold=1.0,
        )


def _runs(keys: np.ndarray, users: np.ndarray, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each of the sorted ``keys``, its sorted, distinct items: offsets and values."""
    if not len(keys):
        return np.zeros(1, dtype=np.int64), np.zeros(0, dtype=np.int64)
    at = np.minimum(np.searchsorted(keys, users), len(keys) - 1)
    mine = keys[at] == users
    width = int(items.max(initial=0)) + 1
    pairs = np.unique(at[mine].astype(np.int64) * width + items[mine])  # sorted by key, item
    ptr = np.zeros(len(keys) + 1, dtype=np.int64)
    np.cumsum(np.bincount(pairs // width, minlength=len(keys)), out=ptr[1:])
    return ptr, pairs % width


@numba.njit(cache=True, nogil=True)
def _top_k(scores, known_ptr, known, test_ptr, test, order, k):  # pragma: no cover - compiled
    """Per row: the ``k`` best items not in the row's ``known`` run, best first (of equal
    scores, the one earlier in ``order``), their count, and whether each is in the row's
    ``test`` run. The row is read in index order; ties compare positions in ``order``."""
    rows, n_items = scores.shape
    kk = min(k, n_items)
    top = np.zeros((rows, kk), dtype=np.int64)
    length = np.zeros(rows, dtype=np.int64)
    rel = np.zeros((rows, kk), dtype=np.bool_)
    best = np.empty(kk)
    best_pos = np.empty(kk, dtype=np.int64)
    position = np.empty(n_items, dtype=np.int64)
    for o in range(n_items):
        position[order[o]] = o
    blocked = np.zeros(n_items, dtype=np.bool_)
    for r in range(rows):
        for e in range(known_ptr[r], known_ptr[r + 1]):
            blocked[known[e]] = True
        count = 0
        threshold = -np.inf  # until k items are in, anything above -inf (NaN compares False)
        for j in range(n_items):
            s = scores[r, j]
            if not (s >= threshold) or s == -np.inf or blocked[j]:
                continue
            p = position[j]
            if count == kk and s == threshold and p > best_pos[kk - 1]:
                continue  # ties with the k-th but later in the order
            slot = count if count < kk else kk - 1
            while slot > 0 and (
                s > best[slot - 1] or (s == best[slot - 1] and p < best_pos[slot - 1])
            ):
                best[slot] = best[slot - 1]
                best_pos[slot] = best_pos[slot - 1]
                top[r, slot] = top[r, slot - 1]
                slot -= 1
            best[slot] = s
            best_pos[slot] = p
            top[r, slot] = j
            if count < kk:
                count += 1
            if count == kk:
                threshold = best[kk - 1]
        for e in range(known_ptr[r], known_ptr[r + 1]):
            blocked[known[e]] = False
        length[r] = count
        for e in range(count):
            item = top[r, e]
            lo, hi = test_ptr[r], test_ptr[r + 1]
            while lo < hi:  # binary search in the row's sorted held-out items
                mid = (lo + hi) // 2
                if test[mid] < item:
                    lo = mid + 1
                else:
                    hi = mid
            rel[r, e] = lo < test_ptr[r + 1] and test[lo] == item
    return top, length, rel
