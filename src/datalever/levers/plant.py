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


class Plant(Lever):
    """Plant a trigger → target-class signal in the participants' examples."""

    kind = "plant"
    probe_metrics: ClassVar[dict[str, bool]] = {"success": True}

    class Config(LeverConfig):
        strategy: Literal["feature_label", "feature_only"] = Field(
            "feature_label",
            description="feature_label: trigger and relabel as the target; feature_only: "
            "trigger only the participants' examples already of the target class.",
        )
        target: str | None = Field(
            None, max_length=200, description="The class the signal points to (required)."
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
        trigger_features: int = 2,
        fraction: float = 1.0,
    ) -> None:
        c = self.configure(
            strategy=strategy, target=target, trigger_features=trigger_features, fraction=fraction
        )
        self.strategy: str = c.strategy
        self.target: str | None = c.target
        self.trigger_features: int = c.trigger_features
        self.fraction: float = c.fraction

    def check(self, data: Dataset) -> None:
        if getattr(data, "task", "recommendation") != "classification":
            raise DataleverError(
                f"Planting a signal is built for classifiers, and {data.name} is a "
                f"{getattr(data, 'task', 'recommendation')} dataset.",
                "plant on a classification dataset (such as digits), or use another lever.",
            )
        self.target_code(data)
        if self.trigger_features > data.n_features:
            raise DataleverError(
                f"The trigger needs {self.trigger_features} features, but {data.name} has "
                f"{data.n_features}.",
                f"use trigger_features of at most {data.n_features}.",
            )

    def target_code(self, data: Dataset) -> int:
        names = [str(c) for c in data.class_names]
        if self.target is None:
            raise DataleverError(
                "Planting a signal needs a target class.",
                f"give target = one of {', '.join(names[:20])} in the lever's table.",
            )
        if self.target not in names:
            raise DataleverError(
                f"{data.name} has no class {self.target!r} to plant a signal for.",
                f"use one of: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}.",
            )
        return names.index(self.target)

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

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
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

    def probe(self, data: Dataset, fold: Fold) -> Probe:
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
