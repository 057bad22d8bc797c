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
    """Rank each user's held-out ratings by the model's scores (the Data Strikes protocol)."""
    scores = model.predict(held_out.users, held_out.items)
    n = len(scores)
    perm = np.random.default_rng(tie_seed).permutation(n)
    order = perm[np.lexsort((-scores[perm], held_out.users[perm]))]
    users = held_out.users[order]
    rel = held_out.ratings.astype(float)
    ideal_user, ideal_rank, ideal_rel = _ideal(held_out, rel)
    n_test = np.bincount(held_out.users, minlength=held_out.n_users)
    relevant = (rel >= relevance_threshold).astype(float)
    ev = Evaluation(
        mode="ratings",
        n_users=held_out.n_users,
        entry_user=users,
        entry_rank=_rank_within_user(users),
        entry_rel=rel[order],
        ideal_user=ideal_user,
        ideal_rank=ideal_rank,
        ideal_rel=ideal_rel,
        n_test=n_test,
        n_relevant=np.bincount(held_out.users, weights=relevant, minlength=held_out.n_users),
        relevance_threshold=relevance_threshold,
    )
    if errors:
        diff = scores - held_out.ratings
        ev.sq_error = ev.per_user_sum(held_out.users, diff * diff)
        ev.abs_error = ev.per_user_sum(held_out.users, np.abs(diff))
    return ev


def evaluate_topn(
    model: Model,
    held_out: HeldOut,
    known_users: np.ndarray,
    known_items: np.ndarray,
    k: int,
    batch: int = 512,
) -> Evaluation:
    """Recommend the top ``k`` unknown items to each held-out user (per-user holdout protocol).

    ``known_users``/``known_items`` are the records each user already has in the base training
    data; those items are never recommended to that user.
    """
    test_users = np.unique(held_out.users)
    n_items = int(max(held_out.items.max(initial=0), known_items.max(initial=0))) + 1
    n_items = max(n_items, getattr(model, "n_items", 0))
    test_keys = held_out.users.astype(np.int64) * n_items + held_out.items
    lists = []
    for start in range(0, len(test_users), batch):
        users = test_users[start : start + batch]
        scores = np.asarray(model.score_users(users), dtype=float)
        row_of = np.full(held_out.n_users, -1)
        row_of[users] = np.arange(len(users))
        mask = row_of[known_users] >= 0
        scores[row_of[known_users[mask]], known_items[mask]] = -np.inf
        kk = min(k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        top = np.take_along_axis(top, order, axis=1)
        # A user with fewer than k unknown items gets a shorter list, never a known item.
        keep = np.isfinite(np.take_along_axis(top_scores, order, axis=1))
        lists.append((np.repeat(users, kk)[keep.ravel()], top[keep]))
    entry_user = np.concatenate([u for u, _ in lists]) if lists else np.zeros(0, np.int64)
    entry_item = np.concatenate([i for _, i in lists]) if lists else np.zeros(0, np.int64)
    entry_rel = np.isin(entry_user.astype(np.int64) * n_items + entry_item, test_keys)
    ones = np.ones(len(held_out.users))
    ideal_user, ideal_rank, ideal_rel = _ideal(held_out, ones)
    n_test = np.bincount(held_out.users, minlength=held_out.n_users)
    return Evaluation(
        mode="topn",
        n_users=held_out.n_users,
        entry_user=entry_user,
        entry_rank=_rank_within_user(entry_user),
        entry_rel=entry_rel.astype(float),
        ideal_user=ideal_user,
        ideal_rank=ideal_rank,
        ideal_rel=ideal_rel,
        n_test=n_test,
        n_relevant=n_test.astype(float),
        relevance_threshold=1.0,
    )
