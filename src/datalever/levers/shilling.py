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

from datalever.core.delta import Delta
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


class Amplification:
    """How much more often the target reaches users' top-k lists than *peer* items, those
    with the same number of training records (Baumann & Mendler-Dünner's amplification):
    the target's hit rate over the peers' mean hit rate, among a group's eligible users."""

    def __init__(
        self, hit: np.ndarray, top: np.ndarray, peers: np.ndarray, eligible: np.ndarray
    ) -> None:
        self.hit, self.top, self.peers, self.eligible = hit, top, peers, eligible

    def over(self, members: np.ndarray, population: np.ndarray) -> float:
        chosen = members & self.eligible
        if not chosen.any() or not len(self.peers):
            return float("nan")
        peer_rate = np.isin(self.top[chosen], self.peers).sum() / (chosen.sum() * len(self.peers))
        return float(self.hit[chosen].mean() / peer_rate) if peer_rate > 0 else float("nan")


class TargetItem(Probe):
    """The target's mean predicted rating and its top-10 hit rate among the real users who
    never rated it (the items each user rated in the fold's training set are not ranked); a
    planted item's hit rate is its ``success``, and its ``amplification`` compares it with the
    items that have as many training records as the target has in the model's training data
    (the nearest count when no item has exactly as many). A new item (code ``n_items``)
    scores as the models score it; models that do not know it (the no-action model) rank it
    last."""

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
        self.n_items = max(data.n_items, target + 1)

    def peers(self, delta: Delta | None) -> np.ndarray:
        """The items other than the target whose training count is nearest the target's, in
        the training set ``delta`` makes of the fold's."""
        base_items = self.known[1]
        counts = np.bincount(base_items, minlength=self.n_items)
        if delta is not None:
            counts = counts - np.bincount(base_items[delta.removed], minlength=self.n_items)
            if delta.added is not None and len(delta.added):
                counts = (
                    counts + np.bincount(delta.added.items, minlength=self.n_items)[: self.n_items]
                )
        gap = np.abs(counts - counts[self.target]).astype(np.float64)
        gap[self.target] = np.inf
        return np.flatnonzero(gap == gap.min()) if np.isfinite(gap.min()) else gap[:0]

    def evaluate(self, model: Model, delta: Delta | None = None) -> dict[str, MetricValues]:
        n, k = self.n_contributors, self.k
        score = np.full(n, np.nan)
        hit = np.zeros(n)
        top = np.full((n, k), -1)
        exposure = "success" if self.success else f"target_hit@{k}"
        known_users, known_items = self.known
        for start in range(0, len(self.users), BLOCK):
            block = self.users[start : start + BLOCK]
            scores = np.asarray(model.score_users(block), dtype=np.float64)
            row = np.full(n, -1)
            row[block] = np.arange(len(block))
            mine = row[known_users] >= 0
            scores[row[known_users[mine]], known_items[mine]] = -np.inf
            if self.target < scores.shape[1]:
                t = scores[:, self.target].copy()
                scores[:, self.target] = -np.inf
                ahead = (scores >= t[:, None]).sum(axis=1)  # ties count against the target
                score[block], hit[block] = t, ahead < k
                # In the top-k lists too, the target ranks after every item scored as high.
                scores[:, self.target] = np.nextafter(t, -np.inf)
            if self.success:
                best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
                shown = np.take_along_axis(scores, best, axis=1) > -np.inf
                top[block] = np.where(shown, best, -1)
        values = {
            "target_score": PerUser(score, self.eligible),
            exposure: PerUser(hit, self.eligible),
        }
        if self.success:
            values["amplification"] = Amplification(hit, top, self.peers(delta), self.eligible)
        return values
