"""The recommendation task family: users rate items; models score (user, item) pairs.

Records are ratings (:class:`~datalever.data.contributions.Contributions`), learners are the
recommenders of :mod:`datalever.learners`, the protocols are the Data Strikes k-fold split and
the per-user holdout (:mod:`datalever.protocols`), and the metrics are the ranked-list and
rating-error metrics of :mod:`datalever.metrics`, each summed per user so that any group of
users is read from one judging.
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
from datalever.learners import LEARNERS
from datalever.learners.base import Model
from datalever.metrics import HeldOut, Metric, RatingsTask, TopNTask, group_value, parse_metric
from datalever.metrics.catalog import _KINDS, _WITH_K
from datalever.protocols import DataStrikesProtocol, HoldoutProtocol

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


def tie_seed(seed: int, fold: int) -> int:
    """The seed of a fold's tie order: the same for every model judged on the fold."""
    return int(np.random.SeedSequence([seed, fold]).generate_state(1)[0])


class RecommendationJudge(Judge):
    """Judges recommenders on one fold: ranked held-out ratings (Data Strikes protocol) or
    top-N lists of unseen items (per-user holdout)."""

    def __init__(self, spec: Spec, data: Contributions, fold: Fold) -> None:
        self.metrics = [parse_metric(m) for m in spec.evaluation.metrics]
        self.ratings_mode = spec.protocol.kind == "data-strikes"
        test = data.training_set(fold.test)
        held_out = HeldOut(test.users, test.items, test.ratings, test.n_users)
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
        rates = self.ratings_mode and getattr(learner, "predicts_ratings", False)
        if self.ratings_mode:
            ev = self.ranking.evaluate(model, rates)
        else:
            ev = self.ranking.evaluate(model)
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
    protocols = ("data-strikes", "holdout")
    record_noun: ClassVar[str] = "rating"
    contributor_noun: ClassVar[str] = "user"

    def parse_metric(self, name: str) -> Metric:
        return parse_metric(name)

    def metric_names(self) -> list[str]:
        return [f"{k}@K" if k in _WITH_K else k for k in _KINDS]

    def computable(self, metric: str, learner: type[Learner], spec: Spec) -> bool:
        if not parse_metric(metric).needs_ratings:
            return True
        return spec.protocol.kind == "data-strikes" and getattr(learner, "predicts_ratings", False)

    def folds(self, spec: Spec, data: Dataset) -> list[Fold]:
        p = spec.protocol
        if p.kind == "data-strikes":
            return DataStrikesProtocol(n_folds=p.folds).folds(data, spec.seed)
        return HoldoutProtocol(test_fraction=p.test_fraction).folds(data, spec.seed)

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
                "rating": records["rating"].to_numpy(),
            }
        )
        if "timestamp" in records:
            table["timestamp"] = records["timestamp"].to_numpy()
        path = folder / "ratings.csv"
        table.to_csv(path, index=False)
        return path

    def load(self, spec: Spec) -> Contributions:
        """The spec's ratings: a catalogue name, a MovieLens folder or archive, or a table."""
        from datalever.data.registry import load_dataset, resolve_name
        from datalever.data.tabular import load_table

        dataset = spec.data.dataset
        if spec.data.columns:
            return load_table(spec.path(dataset), spec.data.columns, name=dataset)
        return load_dataset(dataset if resolve_name(dataset) else spec.path(dataset))
