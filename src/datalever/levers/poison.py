"""Poison: participants alter their records, or add junk, instead of withholding them.

Attacks, by task family:

* ``vandalism`` (recommendation) is the "No AI" protest of a recommender's users (and the
  random vandal of the Conscious Data Contribution code): each participant replaces the
  ratings of their records (all, or a ``fraction`` of each participant's) with ratings drawn
  uniformly from the values the dataset uses, on the same items. On code, each participant's
  files (all, or a ``fraction``) have their tokens shuffled: the same tokens, no longer code.
* ``label_flip`` (classification): each participant relabels their examples (all, or a
  ``fraction``): to the ``target`` class when one is named, else to a random other class.
* ``junk`` (classification): each participant adds ``examples`` junk examples (default 1):
  features drawn uniformly within each feature's range in the dataset, labels at random. The
  junk belongs to its participant, who keeps their real examples. On code, ``examples`` junk
  files each (as long as the corpus's mean file): tokens drawn at random from the corpus, or a
  protest ``banner`` (Python source, such as a comment) repeated to fill the file.
* ``shilling`` (recommendation): each participant adds ``profiles`` fake profiles (default 1)
  that push or nuke the ``target`` item (``method`` random, average or bandwagon; ``filler``,
  ``selected``; see :mod:`datalever.levers.shilling`). The profiles are new contributors; the
  participants keep their own ratings. The target's predicted rating and top-10 hit rate among
  users who never rated it are measured beside the usual metrics.

Participants stay users of the service and stay in evaluation, judged on their true held-out
records. Which records are altered and how is decided once over all records (from the seed),
independent of folds; a fold's delta removes the altered records of its training set and adds
them back altered (junk is added to every fold's training set).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field

from datalever.core.delta import Delta
from datalever.core.task import Dataset, Fold
from datalever.errors import DataleverError
from datalever.levers import code_edits, shilling
from datalever.levers.base import Lever, LeverConfig, Probe
from datalever.levers.strike import Strike

#: The task families each attack applies to.
ATTACK_TASKS = {
    "vandalism": ("recommendation", "code"),
    "shilling": ("recommendation",),
    "label_flip": ("classification",),
    "junk": ("classification", "code"),
}


def _unset(value: Any) -> bool:
    return value is None


#: The attacks each optional parameter applies to.
USED_BY = {
    "target": ("label_flip", "shilling"),
    "examples": ("junk",),
    "banner": ("junk",),
    "profiles": ("shilling",),
    "method": ("shilling",),
    "intent": ("shilling",),
    "filler": ("shilling",),
    "selected": ("shilling",),
}


class Poison(Lever):
    """Alter records (random ratings, flipped labels) or add junk examples."""

    kind = "poison"
    #: A shilling attack's aim is measured on its target item (other attacks report neither).
    probe_metrics: ClassVar[dict[str, bool]] = {"target_score": True, "target_hit@10": True}

    class Config(LeverConfig):
        attack: Literal["vandalism", "shilling", "label_flip", "junk"] = Field(
            "vandalism",
            description="vandalism: random ratings on the participant's own items "
            "(recommendation) or their files' tokens shuffled (code); shilling: fake profiles "
            "pushing or nuking a target item (recommendation); label_flip: relabel their "
            "examples (classification); junk: add noise examples with random labels "
            "(classification) or junk files (code).",
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
            "other class); shilling: the id of the item pushed or nuked (required).",
        )
        examples: int | None = Field(
            None,
            ge=1,
            le=10_000,
            exclude_if=_unset,
            description="junk: how many junk examples (or files) each participant adds "
            "(default 1).",
        )
        banner: str | None = Field(
            None,
            min_length=1,
            max_length=500,
            exclude_if=_unset,
            json_schema_extra={"accepts": "a text of 1 to 500 characters, or left out"},
            description="junk on code: a protest banner (Python source, e.g. a comment) "
            "repeated to fill each junk file (default: tokens drawn from the corpus).",
        )
        profiles: int | None = Field(
            None,
            ge=1,
            le=1_000,
            exclude_if=_unset,
            description="shilling: fake profiles each participant adds (default 1).",
        )
        method: Literal["random", "average", "bandwagon"] | None = Field(
            None, exclude_if=_unset, description="shilling: how filler items are rated."
        )
        intent: Literal["push", "nuke"] | None = Field(
            None, exclude_if=_unset, description="shilling: raise or sink the target."
        )
        filler: float | None = Field(
            None,
            gt=0,
            le=1,
            exclude_if=_unset,
            description="shilling: the share of items each profile rates besides the target "
            "(default 0.05).",
        )
        selected: int | None = Field(
            None,
            ge=1,
            le=1_000,
            exclude_if=_unset,
            description="shilling, bandwagon: how many of the most popular items each profile "
            "rates highest (default 3).",
        )

    def __init__(
        self,
        attack: str = "vandalism",
        fraction: float = 1.0,
        target: str | None = None,
        examples: int | None = None,
        profiles: int | None = None,
        method: str | None = None,
        intent: str | None = None,
        filler: float | None = None,
        selected: int | None = None,
        banner: str | None = None,
    ) -> None:
        c = self.configure(
            attack=attack,
            fraction=fraction,
            target=target,
            examples=examples,
            profiles=profiles,
            method=method,
            intent=intent,
            filler=filler,
            selected=selected,
            banner=banner,
        )
        self.attack: str = c.attack
        self.fraction: float = c.fraction
        self.target: str | None = c.target
        self.examples: int | None = c.examples
        self.profiles: int | None = c.profiles
        self.method: str | None = c.method
        self.intent: str | None = c.intent
        self.filler: float | None = c.filler
        self.selected: int | None = c.selected
        self.banner: str | None = c.banner
        for name, attacks in USED_BY.items():
            if getattr(self, name) is not None and self.attack not in attacks:
                raise DataleverError(
                    f"The poison attack {self.attack!r} takes no {name}.",
                    f"drop {name}, or use attack = {' or '.join(map(repr, attacks))}.",
                )
        if self.attack == "shilling" and self.fraction != 1.0:
            raise DataleverError(
                "A shilling attack adds fake profiles and alters no records, so it takes no "
                "fraction.",
                "drop fraction; set profiles for more fake profiles per participant.",
            )
        if self.selected is not None and self.method != "bandwagon":
            raise DataleverError(
                "Only the bandwagon attack rates selected popular items.",
                'drop selected, or use method = "bandwagon".',
            )

    def params(self) -> dict[str, Any]:
        """Parameters not given are left out, so adding one never changes older keys."""
        return {k: v for k, v in super().params().items() if v is not None}

    def check(self, data: Dataset) -> None:
        task = getattr(data, "task", "recommendation")
        if task not in ATTACK_TASKS[self.attack]:
            fitting = [a for a, tasks in ATTACK_TASKS.items() if task in tasks]
            raise DataleverError(
                f"The poison attack {self.attack!r} alters "
                f"{' or '.join(ATTACK_TASKS[self.attack])} data, but {data.name} is a {task} "
                "dataset.",
                f"use attack = {' or '.join(repr(a) for a in fitting)}.",
            )
        if self.banner is not None and task != "code":
            raise DataleverError(
                "A banner fills junk files of code; junk examples are noise.", "drop banner."
            )
        if task == "code":
            if self.banner is not None:
                code_edits.written(data, self.banner, "banner")
            return
        if self.attack == "shilling":
            shilling.item_code(data, self.target)
        elif self.target is not None:
            self._target_code(data)
        if self.attack == "vandalism":
            self._rating_values(data)
        if self.attack == "junk":
            self._check_junk_memory(data)

    def _check_junk_memory(self, data: Dataset) -> None:
        """Refuse junk that could not be held: every contributor acting, a fold's copy."""
        from datalever.core.resources import memory_limit

        need = 8 * (self.examples or 1) * data.n_contributors * data.n_features * 2
        if need > memory_limit() // 2:
            gib = 2**30
            raise DataleverError(
                f"{self.examples or 1:,} junk examples per participant of {data.n_features:,} "
                f"features each could take {need / gib:,.1f} GiB when everyone acts, more than "
                f"half of the {memory_limit() / gib:,.1f} GiB available.",
                "give fewer junk examples per participant (examples); to allow it anyway, "
                "set DATALEVER_MAX_MEMORY (bytes).",
            )

    def _target_code(self, data: Dataset) -> int:
        return data.class_code(self.target, "flip labels to")

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
        if self.target is not None:  # examples already of the target class stay as they are
            target = self._target_code(data)
            return mask & (labels != target), np.full(len(mask), target)
        # A random other class: shift by 1..k-1 classes, modulo k.
        k = data.n_classes
        return mask, (labels + rng.integers(1, k, size=len(mask))) % k

    def probe(self, data: Dataset, fold: Fold) -> Probe | None:
        if self.attack != "shilling":
            return None
        return shilling.TargetItem(data, fold, shilling.item_code(data, self.target))

    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        if self.attack == "shilling":
            profiles = shilling.fake_profiles(
                data,
                len(participants) * (self.profiles or 1),
                shilling.item_code(data, self.target),
                self.method or "random",
                self.intent or "push",
                self.filler or 0.05,
                self.selected or 3,
                rng,
            )
            return Delta(np.zeros(0, dtype=np.int64), profiles)
        if getattr(data, "task", "") == "code":
            return self._code_delta(data, participants, rng, train_positions)
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

    def _code_delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        """Junk files added, or the participants' files vandalised (tokens shuffled)."""
        if self.attack == "junk":
            owners = np.repeat(np.asarray(participants, dtype=np.int32), self.examples or 1)
            junk = code_edits.junk_files(data, owners, rng, self.banner)
            return Delta(np.zeros(0, dtype=np.int64), junk)
        mask = Strike(self.fraction).withheld(data, participants, rng)
        removed = np.flatnonzero(mask[train_positions])
        files = data.training_set(train_positions[removed])
        return Delta(removed=removed, added=code_edits.shuffled(files, rng))

    def _junk(self, data: Dataset, participants: np.ndarray, rng: np.random.Generator):
        from datalever.tasks.classify.examples import ExampleSet

        per = self.examples or 1
        owners = np.repeat(np.asarray(participants, dtype=np.int32), per)
        X = data.features
        lo, hi = X.min(axis=0), X.max(axis=0)
        noise = lo + rng.random((len(owners), X.shape[1])) * (hi - lo)
        labels = rng.integers(0, data.n_classes, size=len(owners))
        return ExampleSet(noise, labels, owners, data.n_classes)
