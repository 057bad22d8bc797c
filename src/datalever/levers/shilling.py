"""Shilling: fake profiles that push or nuke target items in a recommender.

The profiles follow the recommender-attack literature (Lam & Riedl, WWW 2004; Mobasher et al.,
ACM TOIT 2007). Each profile rates the target item with the highest rating (push) or the
lowest (nuke), and rates ``filler`` (a share of all items) other items chosen at random:

* ``random``: filler ratings drawn around the dataset's mean rating (its standard deviation);
* ``average``: each filler item rated around its own mean rating (its standard deviation);
* ``bandwagon``: the ``selected`` most popular items rated highest too, filler as ``random``.

Ratings are rounded to the nearest value the dataset uses. Each profile is a new contributor
(codes after the real ones). What a push or a nuke achieves is measured on the target itself,
among the real users who have never rated it: the mean predicted rating of the target
(``target_score``; its change against no action is the *prediction shift*) and the share of
those users whose top-10 list of items they have not rated holds the target (``target_hit@10``;
ties count against the target).
"""

from __future__ import annotations

import numpy as np

from datalever.core.learner import Model
from datalever.core.task import Dataset, Fold, MetricValues
from datalever.errors import DataleverError
from datalever.levers.base import Probe

#: Scored users per block when ranking every item (bounds memory at blocks × items).
BLOCK = 256


def item_code(data: Dataset, target: str | None) -> int:
    """The code of the item whose id is ``target``, or a clear error."""
    if target is None:
        raise DataleverError(
            "A shilling attack needs a target item.",
            'give target = "ITEM_ID" (an item id of the dataset, e.g. "50").',
        )
    ids = np.asarray(data.item_ids).astype(str)
    found = np.flatnonzero(ids == str(target))
    if not len(found):
        examples = ", ".join(ids[:5])
        raise DataleverError(
            f"{data.name} has no item {target!r} to push or nuke (its item ids look like "
            f"{examples}).",
            "give the id of an item of the dataset (see `datalever data info`).",
        )
    return int(found[0])


def fake_profiles(
    data: Dataset,
    n_profiles: int,
    target: int,
    method: str,
    intent: str,
    filler: float,
    selected: int,
    rng: np.random.Generator,
):
    """``n_profiles`` attack profiles as a ``TrainingSet`` of new users (codes from
    ``data.n_contributors`` on)."""
    from datalever.data.contributions import TrainingSet

    r = data.records
    items, ratings = r["item"].to_numpy(), r["rating"].to_numpy(np.float64)
    values = np.unique(ratings)
    low, high = float(values.min()), float(values.max())
    n_items = data.n_items
    counts = np.bincount(items, minlength=n_items)
    sums = np.bincount(items, weights=ratings, minlength=n_items)
    squares = np.bincount(items, weights=ratings**2, minlength=n_items)
    mean = np.divide(sums, counts, out=np.full(n_items, ratings.mean()), where=counts > 0)
    var = np.divide(squares, counts, out=np.zeros(n_items), where=counts > 0) - mean**2
    sd = np.sqrt(np.maximum(var, 0))
    popular = [i for i in np.argsort(-counts, kind="stable") if i != target][:selected]
    n_filler = max(1, round(filler * (n_items - 1)))
    users, rated, given = [], [], []
    for p in range(n_profiles):
        user = data.n_contributors + p
        others = np.setdiff1d(
            np.arange(n_items), [target, *popular] if method == "bandwagon" else [target]
        )
        fill = rng.choice(others, size=min(n_filler, len(others)), replace=False)
        if method == "average":
            fill_ratings = rng.normal(mean[fill], sd[fill])
        else:
            fill_ratings = rng.normal(ratings.mean(), ratings.std(), size=len(fill))
        chosen = [fill]
        scores = [fill_ratings]
        if method == "bandwagon" and popular:
            chosen.append(np.asarray(popular))
            scores.append(np.full(len(popular), high))
        chosen.append(np.array([target]))
        scores.append(np.array([high if intent == "push" else low]))
        item_list, score_list = np.concatenate(chosen), np.concatenate(scores)
        nearest = values[np.abs(values[None, :] - score_list[:, None]).argmin(axis=1)]
        users.append(np.full(len(item_list), user))
        rated.append(item_list)
        given.append(nearest)
    return TrainingSet(
        np.concatenate(users).astype(np.int32),
        np.concatenate(rated).astype(np.int32),
        np.concatenate(given),
        data.n_contributors + n_profiles,
        n_items,
        data.rating_scale,
    )


class PerUser:
    """A per-user quantity averaged over the members of a group who are eligible."""

    def __init__(self, values: np.ndarray, eligible: np.ndarray) -> None:
        self.values, self.eligible = values, eligible

    def over(self, members: np.ndarray, population: np.ndarray) -> float:
        chosen = members & self.eligible
        return float(self.values[chosen].mean()) if chosen.any() else float("nan")


class TargetItem(Probe):
    """The target's mean predicted rating and its top-10 hit rate among the real users who
    never rated it (the items each user rated in the fold's training set are not ranked); a
    planted item's hit rate is its ``success``. A new item (code ``n_items``) scores as the
    models score it; models that do not know it (the no-action model) rank it last."""

    def __init__(
        self, data: Dataset, fold: Fold, target: int, k: int = 10, success: bool = False
    ) -> None:
        r = data.records
        users, items = r["contributor"].to_numpy(), r["item"].to_numpy()
        self.target, self.k, self.success = target, k, success
        self.eligible = np.ones(data.n_contributors, dtype=bool)
        self.eligible[users[items == target]] = False
        self.users = np.flatnonzero(self.eligible)
        train = fold.train
        self.known = (users[train], items[train])
        self.n_contributors = data.n_contributors

    def evaluate(self, model: Model) -> dict[str, MetricValues]:
        n = self.n_contributors
        score = np.full(n, np.nan)
        hit = np.zeros(n)
        exposure = "success" if self.success else f"target_hit@{self.k}"
        if self.target >= model.n_items:  # a new item this model never saw: never shown
            return {
                "target_score": PerUser(score, self.eligible),
                exposure: PerUser(hit, self.eligible),
            }
        known_users, known_items = self.known
        for start in range(0, len(self.users), BLOCK):
            block = self.users[start : start + BLOCK]
            scores = np.asarray(model.score_users(block), dtype=np.float64)
            row = np.full(n, -1)
            row[block] = np.arange(len(block))
            mine = row[known_users] >= 0
            scores[row[known_users[mine]], known_items[mine]] = -np.inf
            t = scores[:, self.target].copy()
            scores[:, self.target] = -np.inf
            ahead = (scores >= t[:, None]).sum(axis=1)  # ties count against the target
            score[block] = t
            hit[block] = ahead < self.k
        return {
            "target_score": PerUser(score, self.eligible),
            exposure: PerUser(hit, self.eligible),
        }
