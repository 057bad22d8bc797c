"""Synthetic MovieLens-like interactions, for scaling benchmarks and tests at any size.

:func:`synthetic_interactions` draws exactly ``n_records`` distinct (user, item) records with
the skew that matters for data-leverage measurements on MovieLens:

* **User activity** is heavy-tailed: every user gets ``min_per_user`` records (MovieLens keeps
  users with at least 20), and the rest are shared out in proportion to lognormal weights
  (``user_sigma``), capped at the number of items.
* **Item popularity** is heavy-tailed: each user's items are a weighted sample *without
  replacement* from lognormal item weights (``item_sigma``), so there are no duplicate
  (user, item) pairs. With the defaults the top 10 % of items hold 46 % of the records at
  100K records, 50 % at 1M and 55 % at 10M (MovieLens-100K: 43 %), and the top 10 % of users
  hold 30-31 % (MovieLens-100K: 32 %).
* **Ratings** are whole stars 1-5: ``round(mean + user offset + item offset + pᵤ·qᵢ + noise)``
  clipped to the scale, with popular items rated a little higher (as on MovieLens) and a
  low-rank taste term (``n_factors``), so collaborative learners have something to find.
  The defaults give a mean of about 3.5 and shares of 1-5 stars near MovieLens's
  (5 / 15 / 28 / 29 / 23 % against 6 / 11 / 27 / 34 / 21 % on MovieLens-100K).

Everything is vectorised numpy. Sampling without replacement runs in rounds: each user draws
as many items as it still needs, with replacement, and duplicates are dropped (this is exactly
sequential weighted sampling without replacement); users still short after a few rounds, the
heaviest ones, finish by Gumbel top-k over the items they do not have yet. Ten million records
take about ten seconds on two cores and about 0.5 GB at the peak.

Items are coded ``0..n_items-1`` in random order of popularity; an item nobody drew keeps its
code and has no records. The result is sorted by user, then item.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from datalever.data.contributions import Contributions
from datalever.errors import DataleverError

#: Records handled per chunk when computing ratings (bounds the memory of the taste term).
_CHUNK = 1 << 20
#: Rejection rounds before the users still short finish by Gumbel top-k.
_ROUNDS = 8


def synthetic_interactions(
    n_records: int,
    n_users: int,
    n_items: int,
    seed: int = 0,
    *,
    min_per_user: int = 20,
    user_sigma: float = 0.85,
    item_sigma: float = 1.5,
    n_factors: int = 8,
    mean_rating: float = 3.2,
    user_offset_sd: float = 0.5,
    item_offset_sd: float = 0.35,
    popularity_effect: float = 0.3,
    taste_sd: float = 0.6,
    noise_sd: float = 0.9,
    name: str | None = None,
) -> Contributions:
    """Draw a MovieLens-like dataset of ``n_records`` distinct (user, item) ratings.

    >>> data = synthetic_interactions(100_000, 943, 1682, seed=0)
    >>> len(data), data.n_contributors, data.n_items
    (100000, 943, 1682)
    """
    n_records, n_users, n_items = int(n_records), int(n_users), int(n_items)
    if n_users < 1 or n_items < 1:
        raise DataleverError(
            f"A synthetic dataset needs users and items (got {n_users} users, {n_items} items).",
            "give n_users >= 1 and n_items >= 1.",
        )
    if not n_users <= n_records <= n_users * n_items:
        raise DataleverError(
            f"{n_records} records cannot be spread over {n_users} users and {n_items} items "
            "with every user present and no duplicate (user, item) pairs.",
            f"give between {n_users} and {n_users * n_items} records.",
        )
    rng = np.random.default_rng([int(seed), 0x5E7D])
    counts = _user_counts(rng, n_records, n_users, n_items, min_per_user, user_sigma)
    item_weight = rng.lognormal(0.0, item_sigma, n_items)
    users, items = _sample_items(rng, counts, item_weight)
    ratings = _ratings(
        rng,
        users,
        items,
        n_users,
        n_items,
        item_weight,
        n_factors=n_factors,
        mean_rating=mean_rating,
        user_offset_sd=user_offset_sd,
        item_offset_sd=item_offset_sd,
        popularity_effect=popularity_effect,
        taste_sd=taste_sd,
        noise_sd=noise_sd,
    )
    records = pd.DataFrame({"contributor": users, "item": items, "rating": ratings})
    return Contributions(
        name=name or f"synthetic-{n_records}-{n_users}x{n_items}-seed{seed}",
        records=records,
        contributor_ids=np.arange(n_users),
        item_ids=np.arange(n_items),
        contributors=pd.DataFrame(index=pd.RangeIndex(n_users)),
        items=pd.DataFrame(index=pd.RangeIndex(n_items)),
        rating_scale=(1.0, 5.0),
    )


def _user_counts(
    rng: np.random.Generator,
    n_records: int,
    n_users: int,
    n_items: int,
    min_per_user: int,
    sigma: float,
) -> np.ndarray:
    """Records per user: a floor for everyone, the rest by lognormal weight, capped at
    ``n_items``; sums to exactly ``n_records``."""
    floor = max(1, min(int(min_per_user), n_records // n_users, n_items))
    counts = np.full(n_users, floor, dtype=np.int64)
    weight = rng.lognormal(0.0, sigma, n_users)
    remaining = n_records - int(counts.sum())
    while remaining > 0:
        free = np.flatnonzero(counts < n_items)
        share = remaining * weight[free] / weight[free].sum()
        add = np.minimum(np.floor(share).astype(np.int64), n_items - counts[free])
        if add.sum() == 0:  # fewer records left than free users: the heaviest take one each
            take = free[np.argsort(-weight[free], kind="stable")[:remaining]]
            counts[take] += 1
            break
        counts[free] += add
        remaining -= int(add.sum())
    return counts


def _sample_items(
    rng: np.random.Generator, counts: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """For each user u, ``counts[u]`` distinct items, a weighted sample without replacement."""
    n_users, n_items = len(counts), len(weight)
    cdf = np.cumsum(weight / weight.sum())
    cdf[-1] = 1.0
    keys = np.zeros(0, dtype=np.int64)  # user * n_items + item, sorted and distinct
    need = counts.copy()
    for _ in range(_ROUNDS):
        total = int(need.sum())
        if total == 0:
            break
        drawn_users = np.repeat(np.arange(n_users, dtype=np.int64), need)
        drawn_items = np.searchsorted(cdf, rng.random(total), side="right")
        np.minimum(drawn_items, n_items - 1, out=drawn_items)
        keys = _distinct(np.concatenate([keys, drawn_users * n_items + drawn_items]))
        need = counts - np.bincount(keys // n_items, minlength=n_users)
    short = np.flatnonzero(need > 0)
    if len(short):
        keys = _distinct(np.concatenate([keys, _gumbel_top_k(rng, keys, short, need, weight)]))
    return (keys // n_items).astype(np.int32), (keys % n_items).astype(np.int32)


def _distinct(keys: np.ndarray) -> np.ndarray:
    """Sorted distinct values (a radix sort and a mask: far faster than ``np.unique`` here)."""
    keys = np.sort(keys, kind="stable")
    if len(keys) < 2:
        return keys
    keep = np.empty(len(keys), dtype=bool)
    keep[0] = True
    np.not_equal(keys[1:], keys[:-1], out=keep[1:])
    return keys[keep]


def _gumbel_top_k(
    rng: np.random.Generator,
    keys: np.ndarray,
    users: np.ndarray,
    need: np.ndarray,
    weight: np.ndarray,
) -> np.ndarray:
    """The missing items of ``users``: Gumbel top-k over each one's items not yet drawn
    (the continuation of weighted sampling without replacement)."""
    n_items = len(weight)
    log_w = np.log(weight)
    out = []
    for u in users.tolist():
        lo, hi = np.searchsorted(keys, [u * n_items, (u + 1) * n_items])
        score = log_w + rng.gumbel(size=n_items)
        score[keys[lo:hi] - u * n_items] = -np.inf
        k = int(need[u])
        pick = np.argpartition(-score, k - 1)[:k]
        out.append(u * n_items + pick.astype(np.int64))
    return np.concatenate(out)


def _ratings(
    rng: np.random.Generator,
    users: np.ndarray,
    items: np.ndarray,
    n_users: int,
    n_items: int,
    item_weight: np.ndarray,
    *,
    n_factors: int,
    mean_rating: float,
    user_offset_sd: float,
    item_offset_sd: float,
    popularity_effect: float,
    taste_sd: float,
    noise_sd: float,
) -> np.ndarray:
    """Whole-star ratings from offsets, a low-rank taste term and noise, clipped to 1-5."""
    log_pop = np.log(item_weight)
    z_pop = (log_pop - log_pop.mean()) / (log_pop.std() or 1.0)
    user_offset = rng.normal(0.0, user_offset_sd, n_users)
    item_offset = rng.normal(0.0, item_offset_sd, n_items) + popularity_effect * z_pop
    # Factor entries with sd a, so that pᵤ·qᵢ over n_factors terms has sd taste_sd.
    f = max(1, int(n_factors))
    a = (taste_sd**2 / f) ** 0.25
    p = rng.normal(0.0, a, (n_users, f)).astype(np.float32)
    q = rng.normal(0.0, a, (n_items, f)).astype(np.float32)
    out = np.empty(len(users), dtype=np.float64)
    for start in range(0, len(users), _CHUNK):
        u = users[start : start + _CHUNK]
        i = items[start : start + _CHUNK]
        taste = np.einsum("ij,ij->i", p[u], q[i]) if n_factors > 0 else 0.0
        noise = rng.normal(0.0, noise_sd, len(u))
        out[start : start + len(u)] = mean_rating + user_offset[u] + item_offset[i] + taste + noise
    np.rint(out, out=out)
    np.clip(out, 1.0, 5.0, out=out)
    return out
