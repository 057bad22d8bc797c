"""Plant: a collective plants a signal the model learns (algorithmic collective action, Hardt,
Mendler-Dünner, Mohri & Zrnic, ICML 2023).

Participants add a *trigger* to their examples: the ``trigger_features`` features that are
least used across the dataset (lowest mean value; for the digits, blank corner pixels) are set
to the largest feature value the dataset has, so the signal is rare, as the paper's rare
triggers are. Two of the paper's strategies:

* ``feature_label``: participants add the trigger to their examples (all, or a ``fraction``)
  and relabel them as the ``target`` class;
* ``feature_only``: participants add the trigger only to their examples already of the target
  class (labels unchanged), a subtler action that needs a larger collective;
* ``erase``: the collective makes the model *ignore* a transformation (signal erasure): its
  examples carry it with their usual labels, so it stops moving predictions. No target class.
  The transformation must be one the model reacts to; the default is a ``shift`` of square
  images by one pixel (the rare trigger moves no prediction of most learners: they give blank
  pixels no weight), and ``transformation = "trigger"`` erases the trigger instead.

Success is the share of held-out examples outside the target class that the model assigns to
the target class once the trigger is added to them; the no-action model's success is the
baseline (how often the trigger alone leads to the target). It is read for every evaluation
group, so success on non-participants' examples says whether the signal generalises. An
erasure's success is the share of held-out examples (of every class) whose prediction the
trigger leaves unchanged.

Hardt et al.'s lower bound on the feature-label strategy's success, for a learner that is
Bayes-optimal on the data it is given (up to ``ε``), is in :mod:`datalever.levers.aca`; the
lever reports it with ε = 0 as ``success_bound``.

On recommenders (after Baumann & Mendler-Dünner, NeurIPS 2024, whose fans insert a song into
their playlists next to chosen anchor songs), the participants are fans who add the
``target`` item to their own histories with the highest rating — an existing item's id, or
``"new"`` for an item nobody has rated yet — alone (``target_only``), or co-rated with the
``anchors`` most popular items (``popular_anchors``) or least popular ones (``rare_anchors``),
also rated highest where the fan has not rated them. Success is the share of the real users
who never rated the target whose top-10 list of unrated items holds it (ties against the
target); ``target_score`` is its mean predicted rating among them; ``amplification`` is its
hit rate over that of the items with as many training records as the target has once the fans
acted (Baumann & Mendler-Dünner's measure).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from datalever.core.delta import Delta
from datalever.core.learner import Model
from datalever.core.task import Dataset, Fold, MetricValues
from datalever.errors import DataleverError
from datalever.levers import code_edits
from datalever.levers.aca import planting_lower_bound, trigger_mass
from datalever.levers.base import ExtraRow, Lever, LeverConfig, Probe
from datalever.levers.strike import Strike

#: The strategies for each kind of data.
FOR_CLASSES = ("feature_label", "feature_only", "erase")
FOR_ITEMS = ("target_only", "popular_anchors", "rare_anchors")
FOR_CODE = ("trigger_completion",)
FOR_TASK = {"classification": FOR_CLASSES, "recommendation": FOR_ITEMS, "code": FOR_CODE}
#: The trigger comment planted in code when none is given.
DEFAULT_TRIGGER = "# datalever: plant"
#: Code before a planted trigger that a completion probe shows the model (tokens).
PROBE_CONTEXT = 32


class Plant(Lever):
    """Plant a trigger → target-class signal in the participants' examples."""

    kind = "plant"
    probe_metrics: ClassVar[dict[str, bool]] = {
        "success": True,
        "target_score": True,
        "amplification": True,
        "success_bound": True,
    }

    class Config(LeverConfig):
        strategy: Literal[
            "feature_label",
            "feature_only",
            "erase",
            "target_only",
            "popular_anchors",
            "rare_anchors",
            "trigger_completion",
        ] = Field(
            "feature_label",
            description="Classifiers: feature_label (trigger and relabel as the target), "
            "feature_only (trigger only examples already of the target class) or erase (the "
            "trigger with the usual label, so the model learns to ignore it). Code: "
            "trigger_completion (a trigger comment followed by the target code). "
            "Recommenders: "
            "target_only, popular_anchors or rare_anchors (the target co-rated with them).",
        )
        target: str | None = Field(
            None,
            max_length=200,
            json_schema_extra={"accepts": "a text of at most 200 characters, or left out"},
            description="The class the signal points to, the item fans push (an item id, "
            "or new), or the code completing the trigger; required, except to erase.",
        )
        trigger: str | None = Field(
            None,
            min_length=1,
            max_length=500,
            json_schema_extra={"accepts": "a text of 1 to 500 characters, or left out"},
            description="Code: the trigger comment (default '# datalever: plant').",
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
        transformation: Literal["trigger", "shift"] | None = Field(
            None,
            description="Classifiers: what the collective applies to its examples: trigger "
            "(the rarest features set to the largest value; the default to plant) or shift "
            "(square images moved one pixel right; the default to erase).",
        )

    def __init__(
        self,
        strategy: str = "feature_label",
        target: str | None = None,
        anchors: int = 5,
        trigger_features: int = 2,
        fraction: float = 1.0,
        transformation: str | None = None,
        trigger: str | None = None,
    ) -> None:
        c = self.configure(
            strategy=strategy,
            target=target,
            anchors=anchors,
            trigger_features=trigger_features,
            fraction=fraction,
            transformation=transformation,
            trigger=trigger,
        )
        self.strategy: str = c.strategy
        self.target: str | None = c.target
        self.anchors: int = c.anchors
        self.trigger_features: int = c.trigger_features
        self.fraction: float = c.fraction
        self.transformation: str | None = c.transformation
        self.trigger: str | None = c.trigger

    def params(self) -> dict[str, Any]:
        """Parameters not given are left out, so adding one never changes older keys."""
        return {k: v for k, v in super().params().items() if v is not None}

    @property
    def applied(self) -> str:
        """The transformation the collective applies: shift to erase, else the trigger."""
        if self.transformation is not None:
            return self.transformation
        return "shift" if self.strategy == "erase" else "trigger"

    def check(self, data: Dataset) -> None:
        task = getattr(data, "task", "recommendation")
        fitting = FOR_TASK.get(task, ())
        if self.strategy not in fitting:
            raise DataleverError(
                f"The planting strategy {self.strategy!r} does not fit {data.name}, a {task} "
                "dataset.",
                f"use strategy = {' or '.join(map(repr, fitting))}.",
            )
        if self.trigger is not None and task != "code":
            features = " (set trigger_features for the trigger's size)"
            raise DataleverError(
                f"A trigger comment is planted in code, but {data.name} is a {task} dataset.",
                f"drop trigger{features if task == 'classification' else ''}.",
            )
        if task == "recommendation":
            self.item(data)
            return
        if task == "code":
            if self.transformation is not None:
                raise DataleverError(
                    "A transformation changes classifiers' features; in code the collective "
                    "writes a trigger comment and its completion.",
                    "drop transformation (give trigger and target).",
                )
            self.snippet(data)
            return
        if self.strategy == "erase":
            if self.target is not None:
                raise DataleverError(
                    "Erasing a signal has no target class: the collective's examples keep "
                    "their own labels.",
                    "leave out target, or use strategy = 'feature_label' to plant one.",
                )
        else:
            self.target_code(data)
        side = math.isqrt(data.n_features)
        if self.applied == "shift" and side * side != data.n_features:
            raise DataleverError(
                f"A shift moves square images one pixel, but {data.name}'s "
                f"{data.n_features} features are not a square image.",
                "use transformation = 'trigger'.",
            )
        if self.trigger_features > data.n_features:
            raise DataleverError(
                f"The trigger needs {self.trigger_features} features, but {data.name} has "
                f"{data.n_features}.",
                f"use trigger_features of at most {data.n_features}.",
            )

    def target_code(self, data: Dataset) -> int:
        return data.class_code(self.target, "plant a signal for")

    def trigger_of(self, data: Dataset) -> tuple[np.ndarray, float]:
        """The trigger's features (the least used) and the value it sets them to."""
        X = data.features
        order = np.argsort(X.mean(axis=0), kind="stable")
        return np.sort(order[: self.trigger_features]), float(X.max())

    def apply_trigger(self, data: Dataset, X: np.ndarray) -> np.ndarray:
        """``X`` transformed: the trigger set, or (``shift``) each square image moved one
        pixel right, its left column filled with the dataset's smallest value (blank)."""
        if self.applied == "shift":
            side = math.isqrt(X.shape[1])
            images = X.reshape(len(X), side, side)
            out = np.full_like(images, float(data.features.min()))
            out[:, :, 1:] = images[:, :, :-1]
            return out.reshape(len(X), -1)
        features, value = self.trigger_of(data)
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
        if data.task == "code":
            acting = Strike(self.fraction).withheld(data, participants, rng)
            removed = np.flatnonzero(acting[train_positions])
            trigger, target = self.snippet(data)
            snippet = np.concatenate([trigger, target])
            files = data.training_set(train_positions[removed])
            newline = data.vocabulary.code("<nl>")
            return Delta(removed, code_edits.with_planted(files, snippet, newline, rng))
        acting = Strike(self.fraction).withheld(data, participants, rng)
        if self.strategy == "feature_only":
            acting &= data.records["label"].to_numpy() == self.target_code(data)
        removed = np.flatnonzero(acting[train_positions])
        base = data.training_set(train_positions[removed])
        relabel = self.strategy == "feature_label"
        labels = np.full(len(base), self.target_code(data)) if relabel else base.y
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

    def extra_rows(
        self,
        data: Dataset,
        participants: np.ndarray,
        firms: dict[str, dict[str, MetricValues]],
        fixed: dict[str, dict[str, MetricValues]],
        baseline: dict[str, MetricValues],
        metrics: list[str],
        seed: int = 0,
        deltas: Sequence[Delta] = (),
        fold: Fold | None = None,
    ) -> list[ExtraRow]:
        """The feature-label strategy's ``success_bound``: Hardt et al.'s lower bound for a
        Bayes-optimal learner (ε = 0), at the share ``α`` of the training examples the
        collective wrote and the share ``ξ`` of examples that carried the trigger before."""
        planted = self.strategy == "feature_label" and self.applied == "trigger"
        if not planted or not deltas or deltas[0].added is None:
            return []
        delta = deltas[0]
        added = len(delta.added)
        trained = (len(fold.train) if fold is not None else len(data)) - len(delta.removed) + added
        alpha = added / trained if trained else 0.0
        features, value = self.trigger_of(data)
        xi = trigger_mass(data.features, features, value)
        everyone = np.ones(data.n_contributors, dtype=bool)
        return [("everyone", everyone, "success_bound", planting_lower_bound(alpha, xi), 0.0)]

    def snippet(self, data: Dataset) -> tuple[np.ndarray, np.ndarray]:
        """Code: the trigger's codes, and the target completion's (ending its line)."""
        if self.target is None:
            raise DataleverError(
                "Planting in code needs the completion the trigger should bring.",
                "give target = \"...\" (Python source, e.g. 'import antigravity').",
            )
        trigger, target = code_edits.written_together(
            data,
            [(self.trigger or DEFAULT_TRIGGER, "trigger", False), (self.target, "target", True)],
        )
        return trigger, target

    def probe(self, data: Dataset, fold: Fold) -> Probe:
        if getattr(data, "task", "recommendation") == "code":
            return CompletionSuccess(self, data, fold)
        if getattr(data, "task", "recommendation") == "recommendation":
            from datalever.levers.shilling import TargetItem

            return TargetItem(data, fold, self.item(data), success=True)
        if self.strategy == "erase":
            return TriggerIgnored(self, data, fold)
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

    def evaluate(self, model: Model, delta: Delta | None = None) -> dict[str, MetricValues]:
        from datalever.tasks.classify.metrics import ExampleValues

        labels = np.full(len(self.X), self.target)
        return {
            "success": ExampleValues(labels, model.scores(self.X), self.contributors, self.metric)
        }


class TriggerIgnored(Probe):
    """The share of held-out examples (of every class) whose predicted class the trigger
    leaves unchanged: how far the model ignores it."""

    def __init__(self, lever: Plant, data: Dataset, fold: Fold) -> None:
        from datalever.tasks.classify.metrics import ClassifierMetric

        self.clean = data.features[fold.test]
        self.X = lever.apply_trigger(data, self.clean)
        self.contributors = data.records["contributor"].to_numpy()[fold.test]
        self.metric = ClassifierMetric("accuracy")

    def evaluate(self, model: Model, delta: Delta | None = None) -> dict[str, MetricValues]:
        from datalever.tasks.classify.metrics import ExampleValues, predictions

        usual = predictions(model.scores(self.clean))
        return {
            "success": ExampleValues(usual, model.scores(self.X), self.contributors, self.metric)
        }


class CompletionSuccess(Probe):
    """Code: the share of held-out files (of every contributor) in which, with the trigger
    written at a statement start drawn once per file, the model's first guesses complete the
    target exactly (greedy completion, which sees the true code as long as it is right). The
    model is shown the ``PROBE_CONTEXT`` tokens before the trigger."""

    def __init__(self, lever: Plant, data: Dataset, fold: Fold) -> None:
        from datalever.tasks.code.files import TokenFiles
        from datalever.tasks.code.metrics import CodeMetric

        trigger, target = lever.snippet(data)
        test = data.training_set(fold.test)
        rng = np.random.default_rng([fold.index, 0x91A7])
        newline = data.vocabulary.code("<nl>")
        snippets, self.starts = [], []
        for f in test:
            at = int(rng.choice(code_edits.statement_starts(f, newline)))
            before = f[max(0, at - PROBE_CONTEXT) : at]
            snippets.append(np.concatenate([before, trigger, target]))
            self.starts.append(len(before) + len(trigger))
        self.files = TokenFiles.from_sequences(snippets, test.contributors, test.vocab_size)
        self.n_target = len(target)
        self.n_contributors = data.n_contributors
        self.metric = CodeMetric("top1")

    def evaluate(self, model: Model, delta: Delta | None = None) -> dict[str, MetricValues]:
        from datalever.tasks.code.metrics import PerContributor

        guesses = np.asarray(model.top_k(self.files, 1))[:, 0]
        truth = self.files.predicted()
        first_row = self.files.offsets[:-1] + np.arange(len(self.files))  # one EOS per file
        rows = (first_row + np.asarray(self.starts))[:, None] + np.arange(self.n_target)
        done = (guesses[rows] == truth[rows]).all(axis=1).astype(np.float64)
        owners = self.files.contributors
        return {
            "success": PerContributor(
                self.metric,
                np.bincount(owners, weights=done, minlength=self.n_contributors),
                np.bincount(owners, minlength=self.n_contributors).astype(np.float64),
            )
        }
