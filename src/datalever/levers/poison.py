"""Poison: participants alter their records, or add junk, instead of withholding them.

Attacks, by task family:

* ``vandalism`` (recommendation) is the "No AI" protest of a recommender's users (and the
  random vandal of the Conscious Data Contribution code): each participant replaces the
  ratings of their records (all, or a ``fraction`` of each participant's) with ratings drawn
  uniformly from the values the dataset uses, on the same items.
* ``label_flip`` (classification): each participant relabels their examples (all, or a
  ``fraction``): to the ``target`` class when one is named, else to a random other class.
* ``junk`` (classification): each participant adds ``examples`` junk examples (default 1):
  features drawn uniformly within each feature's range in the dataset, labels at random. The
  junk belongs to its participant, who keeps their real examples.

Participants stay users of the service and stay in evaluation, judged on their true held-out
records. Which records are altered and how is decided once over all records (from the seed),
independent of folds; a fold's delta removes the altered records of its training set and adds
them back altered (junk is added to every fold's training set).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from datalever.core.delta import Delta
from datalever.core.task import Dataset
from datalever.errors import DataleverError
from datalever.levers.base import Lever, LeverConfig
from datalever.levers.strike import Strike

#: The task family each attack applies to.
ATTACK_TASK = {
    "vandalism": "recommendation",
    "label_flip": "classification",
    "junk": "classification",
}


def _unset(value: Any) -> bool:
    return value is None


class Poison(Lever):
    """Alter records (random ratings, flipped labels) or add junk examples."""

    kind = "poison"

    class Config(LeverConfig):
        attack: Literal["vandalism", "label_flip", "junk"] = Field(
            "vandalism",
            description="vandalism: random ratings on the participant's own items "
            "(recommendation); label_flip: relabel their examples; junk: add noise examples "
            "with random labels (classification).",
        )
        fraction: float = Field(
            1.0,
            gt=0,
            le=1,
            description="The share of each participant's records altered (1: all of them).",
        )
        target: str | None = Field(
            None,
            max_length=200,
            exclude_if=_unset,
            description="label_flip: the class every flipped example gets (default: a random "
            "other class).",
        )
        examples: int | None = Field(
            None,
            ge=1,
            le=10_000,
            exclude_if=_unset,
            description="junk: how many junk examples each participant adds (default 1).",
        )

    def __init__(
        self,
        attack: str = "vandalism",
        fraction: float = 1.0,
        target: str | None = None,
        examples: int | None = None,
    ) -> None:
        c = self.configure(attack=attack, fraction=fraction, target=target, examples=examples)
        self.attack: str = c.attack
        self.fraction: float = c.fraction
        self.target: str | None = c.target
        self.examples: int | None = c.examples
        if self.target is not None and self.attack != "label_flip":
            raise DataleverError(
                f"The poison attack {self.attack!r} takes no target class.",
                'drop target, or use attack = "label_flip".',
            )
        if self.examples is not None and self.attack != "junk":
            raise DataleverError(
                f"The poison attack {self.attack!r} takes no number of junk examples.",
                'drop examples, or use attack = "junk".',
            )

    def params(self) -> dict[str, Any]:
        """Parameters not given are left out, so adding one never changes older keys."""
        return {k: v for k, v in super().params().items() if v is not None}

    def check(self, data: Dataset) -> None:
        task = getattr(data, "task", "recommendation")
        if ATTACK_TASK[self.attack] != task:
            fitting = [a for a, t in ATTACK_TASK.items() if t == task]
            raise DataleverError(
                f"The poison attack {self.attack!r} alters {ATTACK_TASK[self.attack]} data, but "
                f"{data.name} is a {task} dataset.",
                f"use attack = {' or '.join(repr(a) for a in fitting)}.",
            )
        if self.target is not None:
            self._target_code(data)
        if self.attack == "vandalism":
            self._rating_values(data)

    def _target_code(self, data: Dataset) -> int:
        names = [str(c) for c in data.class_names]
        if self.target not in names:
            raise DataleverError(
                f"{data.name} has no class {self.target!r} to flip labels to.",
                f"use one of: {', '.join(names[:20])}{' …' if len(names) > 20 else ''}.",
            )
        return names.index(self.target)

    def _rating_values(self, data: Dataset) -> np.ndarray:
        values = np.unique(data.records["rating"].to_numpy(dtype=np.float64))
        if len(values) < 2:
            raise DataleverError(
                f"Vandalism re-rates records at random, but every rating in {data.name} is "
                f"{values[0]:g}, so it would change nothing.",
                "use a dataset with more than one rating value, or a strike.",
            )
        return values

    def altered(
        self, data: Dataset, participants: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A boolean mask over all records (those altered) and every record's new value (a
        rating, or a class code)."""
        mask = Strike(self.fraction).withheld(data, participants, rng)
        if self.attack == "vandalism":
            values = self._rating_values(data)
            return mask, values[rng.integers(0, len(values), size=len(mask))]
        labels = data.records["label"].to_numpy(np.int64)
        if self.target is not None:
            return mask, np.full(len(mask), self._target_code(data))
        # A random other class: shift by 1..k-1 classes, modulo k.
        k = data.n_classes
        return mask, (labels + rng.integers(1, k, size=len(mask))) % k

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        if self.attack == "junk":
            return Delta(np.zeros(0, dtype=np.int64), self._junk(data, participants, rng))
        mask, new = self.altered(data, participants, rng)
        removed = np.flatnonzero(mask[train_positions])
        base = data.training_set(train_positions[removed])
        values = new[train_positions[removed]]
        if self.attack == "vandalism":
            added = type(base)(
                base.users, base.items, values, base.n_users, base.n_items, base.rating_scale
            )
        else:
            added = type(base)(base.X, values, base.contributors, base.n_classes)
        return Delta(removed=removed, added=added)

    def _junk(self, data: Dataset, participants: np.ndarray, rng: np.random.Generator):
        from datalever.tasks.classify.examples import ExampleSet

        per = self.examples or 1
        owners = np.repeat(np.asarray(participants, dtype=np.int32), per)
        X = data.features
        lo, hi = X.min(axis=0), X.max(axis=0)
        noise = lo + rng.random((len(owners), X.shape[1])) * (hi - lo)
        labels = rng.integers(0, data.n_classes, size=len(owners))
        return ExampleSet(noise, labels, owners, data.n_classes)
