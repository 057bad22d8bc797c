"""The recommendation task family: users rate items; models score (user, item) pairs.

Records are ratings (:class:`~datalever.data.contributions.Contributions`), learners are the
recommenders of :mod:`datalever.learners`, the protocols are the Data Strikes k-fold split, the
per-user holdout, the temporal cutoff and leave-one-out (:mod:`datalever.protocols`), and the
metrics are the ranked-list and rating-error metrics of :mod:`datalever.metrics`, each summed per
user so that any group of users is read from one judging.

Data without ratings (a table with no rating column) is implicit feedback: it is judged on
top-N lists only, by learners that rank interactions; :func:`check_implicit` refuses anything
else before a run starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from datalever.core.learner import Learner
from datalever.core.task import Dataset, Fold, Judge, MetricValues, Task
from datalever.data.contributions import Contributions
from datalever.errors import DataleverError
from datalever.learners import LEARNERS
from datalever.learners.base import Model
from datalever.metrics import HeldOut, Metric, RatingsTask, TopNTask, group_value, parse_metric
from datalever.metrics.catalog import _KINDS, _WITH_K
from datalever.protocols import (
    DataStrikesProtocol,
    HoldoutProtocol,
    LeaveOneOutProtocol,
    Protocol,
    TemporalProtocol,
)

if TYPE_CHECKING:
    from datalever.spec import Spec


@dataclass(frozen=True)
class PerUser:
    """A metric's per-user numerators and denominators: a group's value is the ratio of their
    sums over its members (see :mod:`datalever.metrics.catalog`)."""

    metric: Metric
    num: np.ndarray
    den: np.ndarray

    def over(self, members: np.ndarray, population: np.ndarray) -> float:
        return group_value(self.metric, self.num, self.den, members, population)


#: Protocols whose held-out records carry ratings a rating learner can be scored on (RMSE,
#: MAE): the Data Strikes folds, and the time-based splits (the held-out records are the
#: user's real later ratings). The per-user holdout judges top-N lists only.
RATED_PROTOCOLS = ("data-strikes", "temporal", "leave-one-out")

#: Learners that rank implicit feedback (interactions without rating values) meaningfully: they
#: depend on which items a user has, not on the values. A learner class may say so itself with
#: a class attribute ``implicit_feedback``; the others average, centre or fit rating values,
#: which are all 1 on implicit data.
IMPLICIT_LEARNERS = frozenset({"popularity", "ease"})


def handles_implicit(name: str, learner: type[Learner] | None = None) -> bool:
    """Whether the learner ``name`` ranks implicit feedback meaningfully."""
    declared = getattr(learner, "implicit_feedback", None) if learner is not None else None
    return bool(declared) if declared is not None else name in IMPLICIT_LEARNERS


def protocol_of(spec: Spec) -> Protocol:
    """The spec's split protocol, with its parameters."""
    p = spec.protocol
    if p.kind == "data-strikes":
        return DataStrikesProtocol(n_folds=p.folds)
    if p.kind == "temporal":
        return TemporalProtocol(cutoff=p.cutoff, quantile=p.quantile or 0.8)
    if p.kind == "leave-one-out":
        return LeaveOneOutProtocol()
    return HoldoutProtocol(test_fraction=p.test_fraction)


def check_implicit(spec: Spec, data: Contributions) -> None:
    """Refuse, in one paragraph, what implicit feedback cannot give: the data-strikes protocol
    (it ranks held-out records by their ratings), rating metrics (RMSE, MAE) and learners that
    fit rating values (their scores would all be alike), the reference learner included."""
    if not getattr(data, "implicit", False):
        return
    problems, fixes = [], []
    if spec.protocol.kind == "data-strikes":
        problems.append("the data-strikes protocol ranks each user's held-out ratings")
        fixes.append('use [protocol] kind = "holdout", "temporal" or "leave-one-out"')
    rated = [m for m in spec.evaluation.metrics if parse_metric(m).needs_ratings]
    if rated:
        verb = "measures" if len(rated) == 1 else "measure"
        problems.append(f"{', '.join(rated)} {verb} rating errors")
        fixes.append(f"drop {', '.join(rated)} (ndcg@K, precision@K, recall@K, hitrate@K apply)")
    named = [ls.name for ls in spec.learners]
    learners = [n for n in named if n in LEARNERS and not handles_implicit(n, LEARNERS[n])]
    if learners:
        verb = "fits" if len(learners) == 1 else "fit"
        problems.append(f"{', '.join(learners)} {verb} rating values")
        able = sorted(n for n, cls in LEARNERS.items() if handles_implicit(n, cls))
        fixes.append(f"use learners that rank interactions ({', '.join(able)})")
    rerated = [
        f"poison ({lever.params().get('attack')})"
        for lever in spec.all_levers()
        if lever.kind == "poison" and lever.params().get("attack") in ("vandalism", "shilling")
    ]
    if rerated:
        problems.append(f"{', '.join(rerated)} writes rating values")
        fixes.append("use strike, boycott or contribute")
    ref = spec.evaluation.reference
    if ref in LEARNERS and not handles_implicit(ref, LEARNERS[ref]):
        problems.append(f"the reference learner {ref} fits rating values")
        fixes.append('set [evaluation] reference = "popularity"')
    if problems:
        raise DataleverError(
            f"{data.name} is implicit feedback (its table has no rating column, so every record "
            f"is an interaction of value 1), but {'; '.join(problems)}.",
            "; ".join(fixes) + "; or map a rating column if the table has one.",
        )


def tie_seed(seed: int, fold: int) -> int:
    """The seed of a fold's tie order: the same for every model judged on the fold."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


class RecommendationJudge(Judge):
    """Judges recommenders on one fold: ranked held-out ratings (Data Strikes protocol) or
    top-N lists of unseen items (per-user holdout)."""

    def __init__(self, spec: Spec, data: Contributions, fold: Fold) -> None:
        self.metrics = [parse_metric(m) for m in spec.evaluation.metrics]
        self.ratings_mode = spec.protocol.kind == "data-strikes"
        self.rated = spec.protocol.kind in RATED_PROTOCOLS
        test = data.training_set(fold.test)
        held_out = HeldOut(test.users, test.items, test.ratings, test.n_users)
        self.held_out = held_out
        seed = tie_seed(spec.seed, fold.index)
        if self.ratings_mode:
            self.ranking = RatingsTask(held_out, spec.protocol.relevance_threshold, seed)
        else:
            base = data.training_set(fold.train)
            self.ranking = TopNTask(
                held_out,
                base.users,
                base.items,
                spec.protocol.list_length,
                tie_seed=seed,
                dataset_items=data.n_items,
            )

    def evaluate(self, model: Model, learner: Learner) -> dict[str, MetricValues]:
        rates = self.rated and getattr(learner, "predicts_ratings", False)
        if self.ratings_mode:
            ev = self.ranking.evaluate(model, rates)
        else:
            ev = self.ranking.evaluate(model)
            if rates and any(m.needs_ratings for m in self.metrics):
                # The time-based splits also score rating estimates on the held-out records.
                h = self.held_out
                diff = np.asarray(model.predict(h.users, h.items), dtype=np.float64) - h.ratings
                ev.sq_error = ev.per_user_sum(h.users, diff * diff)
                ev.abs_error = ev.per_user_sum(h.users, np.abs(diff))
        return {
            m.name: PerUser(m, *m.per_user(ev))
            for m in self.metrics
            if rates or not m.needs_ratings
        }


class ConstantModel(Model):
    """Every (user, item) scored alike, at the middle of the rating scale: a service with no
    data. Rankings then follow the fold's tie order (a random order, the same for every
    model judged on the fold)."""

    def __init__(self, value: float, n_items: int) -> None:
        self.value, self.n_items = value, n_items

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        return np.full(len(users), self.value)


class PopularityFallback(Model):
    """A model whose users without a single training record are served by popularity: items
    ranked by how many training ratings they have, and each item's rating estimated by its
    mean training rating (the training mean for an item nobody rated). Users with records get
    the model's own scores. This is the named fallback of a firm that never saw a user."""

    def __init__(self, model: Model, train) -> None:
        self.model, self.n_items = model, model.n_items
        n_items = max(model.n_items, train.n_items)
        self.seen = np.bincount(train.users, minlength=train.n_users) > 0
        counts = np.bincount(train.items, minlength=n_items).astype(np.float64)
        sums = np.bincount(train.items, weights=train.ratings, minlength=n_items)
        overall = float(train.ratings.mean()) if len(train) else 0.0
        self.popularity = counts[: self.n_items]
        self.mean = np.divide(sums, counts, out=np.full(n_items, overall), where=counts > 0)[
            : self.n_items
        ]

    def _unseen(self, users: np.ndarray) -> np.ndarray:
        users = np.asarray(users)
        known = users < len(self.seen)
        out = ~known
        out[known] = ~self.seen[users[known]]
        return out

    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.model.predict(users, items), dtype=np.float64).copy()
        unseen = self._unseen(users)
        scores[unseen] = self.mean[np.asarray(items)[unseen]]
        return scores

    def score_users(self, users: np.ndarray) -> np.ndarray:
        scores = np.asarray(self.model.score_users(users), dtype=np.float64).copy()
        scores[self._unseen(users)] = self.popularity
        return scores


class RecommendationTask(Task):
    name = "recommendation"
    learners = LEARNERS
    default_metrics = ("ndcg@10", "precision@10", "rmse")
    default_reference = "item_mean"
    default_learner = "ease"
    protocols = ("data-strikes", "holdout", "temporal", "leave-one-out")
    record_noun: ClassVar[str] = "rating"
    contributor_noun: ClassVar[str] = "user"

    def parse_metric(self, name: str) -> Metric:
        return parse_metric(name)

    def metric_names(self) -> list[str]:
        return [f"{k}@K" if k in _WITH_K else k for k in _KINDS]

    def computable(self, metric: str, learner: type[Learner], spec: Spec) -> bool:
        if not parse_metric(metric).needs_ratings:
            return True
        return spec.protocol.kind in RATED_PROTOCOLS and getattr(learner, "predicts_ratings", False)

    def folds(self, spec: Spec, data: Dataset) -> list[Fold]:
        return protocol_of(spec).folds(data, spec.seed)

    def check(self, spec: Spec, data: Contributions) -> None:
        """What the spec asks of the data, refused before a run starts: a protocol the data
        cannot be split by (no timestamps, a cutoff outside the records) and, for implicit
        feedback, anything that needs rating values."""
        check_implicit(spec, data)
        protocol = protocol_of(spec)
        if isinstance(protocol, TemporalProtocol | LeaveOneOutProtocol):
            protocol.check(data)

    def judge(self, spec: Spec, data: Dataset, fold: Fold) -> Judge:
        return RecommendationJudge(spec, data, fold)

    def uninformed_model(self, data: Dataset, learner: Learner) -> Model:
        low, high = data.rating_scale
        return ConstantModel((low + high) / 2, data.n_items)

    def with_fallback(self, model: Model, train) -> Model:
        return PopularityFallback(model, train)

    def export(self, spec: Spec, data: Contributions, keep: np.ndarray, folder: Path) -> Path:
        """The kept contributors' ratings as ``ratings.csv`` (user, item, rating and timestamp,
        under the source's ids), which a spec loads as ``dataset = "ratings.csv"``."""
        records = data.records[keep[data.records["contributor"].to_numpy()]]
        table = pd.DataFrame(
            {
                "user": data.contributor_ids[records["contributor"].to_numpy()],
                "item": data.item_ids[records["item"].to_numpy()],
            }
        )
        if not getattr(data, "implicit", False):  # implicit data is written back without one
            table["rating"] = records["rating"].to_numpy()
        if "timestamp" in records:
            table["timestamp"] = records["timestamp"].to_numpy()
        path = folder / "ratings.csv"
        table.to_csv(path, index=False)
        return path

    def load(self, spec: Spec) -> Contributions:
        """The spec's ratings: a catalogue name, a MovieLens folder or archive, or a table;
        checked against the spec's protocol, metrics and learners (:meth:`check`)."""
        from datalever.data.registry import load_dataset, resolve_name
        from datalever.data.tabular import load_table

        dataset = spec.data.dataset
        if spec.data.columns:
            data = load_table(spec.path(dataset), spec.data.columns, name=dataset)
        else:
            data = load_dataset(dataset if resolve_name(dataset) else spec.path(dataset))
        self.check(spec, data)
        return data
