"""Plant: a collective plants a signal the model learns (algorithmic collective action, Hardt,
Mendler-Dünner, Mohri & Zrnic, ICML 2023).

Participants add a *trigger* to their examples: the ``trigger_features`` features that are
least used across the dataset (lowest mean value; for the digits, blank corner pixels) are set
to the largest feature value the dataset has, so the signal is rare, as the paper's rare
triggers are. Two of the paper's strategies:

* ``feature_label``: participants add the trigger to their examples (all, or a ``fraction``)
  and relabel them as the ``target`` class;
* ``feature_only``: participants add the trigger only to their examples already of the target
  class (labels unchanged), a subtler action that needs a larger collective.

Success is the share of held-out examples outside the target class that the model assigns to
the target class once the trigger is added to them; the no-action model's success is the
baseline (how often the trigger alone leads to the target). It is read for every evaluation
group, so success on non-participants' examples says whether the signal generalises.

On recommenders (after Baumann & Mendler-Dünner, NeurIPS 2024, whose fans insert a song into
their playlists next to chosen anchor songs), the participants are fans who add the
``target`` item to their own histories with the highest rating — an existing item's id, or
``"new"`` for an item nobody has rated yet — alone (``target_only``), or co-rated with the
``anchors`` most popular items (``popular_anchors``) or least popular ones (``rare_anchors``),
also rated highest where the fan has not rated them. Success is the share of the real users
who never rated the target whose top-10 list of unrated items holds it (ties against the
target); ``target_score`` is its mean predicted rating among them.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from datalever.core.delta import Delta
from datalever.core.learner import Model
from datalever.core.task import Dataset, Fold, MetricValues
from datalever.errors import DataleverError
from datalever.levers.base import Lever, LeverConfig, Probe
from datalever.levers.strike import Strike

#: The strategies for each kind of data.
FOR_CLASSES = ("feature_label", "feature_only")
FOR_ITEMS = ("target_only", "popular_anchors", "rare_anchors")


class Plant(Lever):
    """Plant a trigger → target-class signal in the participants' examples."""

    kind = "plant"
    probe_metrics: ClassVar[dict[str, bool]] = {"success": True, "target_score": True}

    class Config(LeverConfig):
        strategy: Literal[
            "feature_label", "feature_only", "target_only", "popular_anchors", "rare_anchors"
        ] = Field(
            "feature_label",
            description="Classifiers: feature_label (trigger and relabel as the target) or "
            "feature_only (trigger only examples already of the target class). Recommenders: "
            "target_only, popular_anchors or rare_anchors (the target co-rated with them).",
        )
        target: str | None = Field(
            None,
            max_length=200,
            description="The class the signal points to, or the item fans push (an item id, "
            "or new); required.",
        )
        anchors: int = Field(
            5, ge=1, le=1_000, description="Recommenders: anchor items co-rated with the target."
        )
        trigger_features: int = Field(
            2, ge=1, le=100_000, description="How many features form the trigger."
        )
        fraction: float = Field(
            1.0, gt=0, le=1, description="The share of each participant's examples used."
        )

    def __init__(
        self,
        strategy: str = "feature_label",
        target: str | None = None,
        anchors: int = 5,
        trigger_features: int = 2,
        fraction: float = 1.0,
    ) -> None:
        c = self.configure(
            strategy=strategy,
            target=target,
            anchors=anchors,
            trigger_features=trigger_features,
            fraction=fraction,
        )
        self.strategy: str = c.strategy
        self.target: str | None = c.target
        self.anchors: int = c.anchors
        self.trigger_features: int = c.trigger_features
        self.fraction: float = c.fraction

    def check(self, data: Dataset) -> None:
        task = getattr(data, "task", "recommendation")
        fitting = FOR_ITEMS if task == "recommendation" else FOR_CLASSES
        if self.strategy not in fitting:
            raise DataleverError(
                f"The planting strategy {self.strategy!r} does not fit {data.name}, a {task} "
                "dataset.",
                f"use strategy = {' or '.join(map(repr, fitting))}.",
            )
        if task == "recommendation":
            self.item(data)
            return
        self.target_code(data)
        if self.trigger_features > data.n_features:
            raise DataleverError(
                f"The trigger needs {self.trigger_features} features, but {data.name} has "
                f"{data.n_features}.",
                f"use trigger_features of at most {data.n_features}.",
            )

    def target_code(self, data: Dataset) -> int:
        return data.class_code(self.target, "plant a signal for")

    def trigger(self, data: Dataset) -> tuple[np.ndarray, float]:
        """The trigger's features (the least used) and the value it sets them to."""
        X = data.features
        order = np.argsort(X.mean(axis=0), kind="stable")
        return np.sort(order[: self.trigger_features]), float(X.max())

    def apply_trigger(self, data: Dataset, X: np.ndarray) -> np.ndarray:
        features, value = self.trigger(data)
        out = X.copy()
        out[:, features] = value
        return out

    def item(self, data: Dataset) -> int:
        """The code of the pushed item: ``n_items`` for a new one."""
        from datalever.levers.shilling import item_code

        if self.target is not None and self.target.strip().lower() == "new":
            return data.n_items
        return item_code(data, self.target)

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        if getattr(data, "task", "recommendation") == "recommendation":
            return Delta(np.zeros(0, dtype=np.int64), self._fans(data, participants))
        target = self.target_code(data)
        acting = Strike(self.fraction).withheld(data, participants, rng)
        if self.strategy == "feature_only":
            acting &= data.records["label"].to_numpy() == target
        removed = np.flatnonzero(acting[train_positions])
        base = data.training_set(train_positions[removed])
        labels = base.y if self.strategy == "feature_only" else np.full(len(base), target)
        added = type(base)(
            self.apply_trigger(data, base.X), labels, base.contributors, base.n_classes
        )
        return Delta(removed=removed, added=added)

    def _fans(self, data: Dataset, participants: np.ndarray):
        """The fans' new ratings: the target, and their anchors they have not rated."""
        from datalever.data.contributions import TrainingSet

        r = data.records
        users, items = r["contributor"].to_numpy(), r["item"].to_numpy()
        target = self.item(data)
        counts = np.bincount(items, minlength=data.n_items)
        order = np.argsort(-counts if self.strategy == "popular_anchors" else counts, kind="stable")
        anchors = order[counts[order] > 0][: self.anchors] if self.strategy != "target_only" else []
        mine = np.isin(users, participants)
        rated = set(zip(users[mine].tolist(), items[mine].tolist(), strict=True))
        wanted = [target, *(int(a) for a in anchors)]
        pairs = [(int(u), i) for u in participants for i in wanted if (int(u), i) not in rated]
        high = float(r["rating"].max())
        n_items = max(data.n_items, target + 1)
        fan_users = np.array([u for u, _ in pairs], dtype=np.int32)
        fan_items = np.array([i for _, i in pairs], dtype=np.int32)
        return TrainingSet(
            fan_users,
            fan_items,
            np.full(len(pairs), high),
            data.n_contributors,
            n_items,
            data.rating_scale,
        )

    def probe(self, data: Dataset, fold: Fold) -> Probe:
        if getattr(data, "task", "recommendation") == "recommendation":
            from datalever.levers.shilling import TargetItem

            return TargetItem(data, fold, self.item(data), success=True)
        return TriggerSuccess(self, data, fold)


class TriggerSuccess(Probe):
    """The share of triggered held-out examples outside the target class that a model assigns
    to the target class."""

    def __init__(self, lever: Plant, data: Dataset, fold: Fold) -> None:
        from datalever.tasks.classify.metrics import ClassifierMetric

        self.target = lever.target_code(data)
        test = fold.test[data.records["label"].to_numpy()[fold.test] != self.target]
        self.X = lever.apply_trigger(data, data.features[test])
        self.contributors = data.records["contributor"].to_numpy()[test]
        self.metric = ClassifierMetric("accuracy")

    def evaluate(self, model: Model) -> dict[str, MetricValues]:
        from datalever.tasks.classify.metrics import ExampleValues

        labels = np.full(len(self.X), self.target)
        return {
            "success": ExampleValues(labels, model.scores(self.X), self.contributors, self.metric)
        }
