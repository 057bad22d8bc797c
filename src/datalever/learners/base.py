"""The learner interface: a model recipe that fits on records and scores (user, item) pairs.

A learner is configured in its constructor and has no hidden state: ``fit`` returns a new
:class:`Model`. A scenario is a delta against a fold's base training set; a learner with an exact
fast path (sufficient statistics, batched fitting) returns a :class:`FastPath` prepared on the
base from :meth:`Learner.fast_path`, and the engine fits every scenario of the fold through it.
Without one, the engine applies each delta and calls :meth:`Learner.fit` (the plain path).
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from datalever.data.contributions import TrainingSet
from datalever.learners.config import LearnerConfig


@dataclass(frozen=True)
class Delta:
    """How a scenario's training data differs from the base: records removed and added.

    ``removed`` holds positions into the base training set; ``added`` holds new records
    (for levers such as poisoning or contribution); ``None`` means nothing is added.
    """

    removed: np.ndarray
    added: TrainingSet | None = None

    @property
    def is_empty(self) -> bool:
        """Nothing removed and nothing added: the base training set itself."""
        return len(self.removed) == 0 and (self.added is None or len(self.added) == 0)

    def fingerprint(self) -> str:
        """A digest of what the delta changes: equal digests mean equal training sets, so
        scenarios whose levers make the same change (a strike and a boycott of the same
        draw) share one fit."""
        digest = hashlib.sha256(np.ascontiguousarray(self.removed, dtype=np.int64).tobytes())
        if self.added is not None:
            for part in (self.added.users, self.added.items, self.added.ratings):
                part = np.ascontiguousarray(part)
                digest.update(f"|{part.dtype}|{len(part)}|".encode() + part.tobytes())
            digest.update(f"|{self.added.n_users}|{self.added.n_items}".encode())
        return digest.hexdigest()

    def apply(self, base: TrainingSet) -> TrainingSet:
        """The modified training set: the plain computation every fast path must equal."""
        keep = np.ones(len(base), dtype=bool)
        keep[self.removed] = False
        train = base.subset(keep)
        return train if self.added is None else train.concat(self.added)


class Model(ABC):
    """A fitted model."""

    @abstractmethod
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores for (user, item) pairs; rating estimates for rating learners."""

    def score_users(self, users: np.ndarray) -> np.ndarray:
        """Dense scores of every item for each user, shape ``(len(users), n_items)``."""
        n_items = self.n_items
        uu = np.repeat(users, n_items)
        ii = np.tile(np.arange(n_items, dtype=np.int32), len(users))
        return self.predict(uu, ii).reshape(len(users), n_items)

    n_items: int = 0


class FastPath(ABC):
    """An exact shortcut for fitting many scenarios that share one base training set.

    ``fit_many(deltas)`` must return, for each delta, a model equal to
    ``learner.fit(delta.apply(base))`` — to floating-point tolerance for closed-form learners,
    or exactly the same computation for batched iterative ones. Tests check this against the
    plain fit for every learner that has a fast path.
    """

    #: The name recorded with every result computed through this path.
    name: str = "fast"

    @abstractmethod
    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[Model]:
        """One fitted model per delta."""


def fit_scenarios(
    learner: Learner, base: TrainingSet, deltas: Sequence[Delta], fast: FastPath | None
) -> Iterator[Model]:
    """Fit one model per delta: through ``fast`` when given, else by plain fits."""
    if fast is not None:
        yield from fast.fit_many(deltas)
    else:
        for delta in deltas:
            yield learner.fit(delta.apply(base))


class Learner(ABC):
    """A model recipe. Subclasses set ``name``, declare their parameters' types and ranges in a
    nested ``Config`` and take the parameters in ``__init__``, checked by :meth:`configure`."""

    name: str = "learner"
    #: The learner's parameters: types, ranges, defaults and descriptions (none by default).
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig
    #: True when scores are rating estimates, so RMSE and MAE are meaningful.
    predicts_ratings: bool = True
    #: How many scenarios of one fold the engine hands over at once (batched paths want more).
    batch_size: int = 8
    #: True when the learner fits on a GPU: the engine then runs its batches in its own
    #: process, not in a pool of workers that would each start the device.
    runs_on_gpu: bool = False
    #: Bumped whenever a change to the learner changes its results, so stored scenarios
    #: fitted by an earlier version are not reused (the version is part of scenario keys).
    version: str = "1"

    @abstractmethod
    def fit(self, train: TrainingSet) -> Model:
        """Fit on ``train`` and return the fitted model."""

    @classmethod
    def configure(cls, **params: Any) -> Any:
        """The checked parameters (an instance of ``Config``), or a DataleverError naming the
        learner, the parameter, the value and its range: constructors start with this, so a
        learner built from Python is checked as one built from a spec."""
        return cls.Config.check(cls.name, params)

    def memory_bytes(self, n_users: int, n_items: int, n_records: int) -> int:
        """A rough upper estimate of the memory one fold of this learner holds (its statistics
        and a base model), so a run that cannot fit is refused before it starts. The default
        suits learners whose state grows with the records."""
        return 64 * n_records + 16 * (n_users + n_items)

    def params(self) -> dict:
        """The constructor parameters, for scenario keys and provenance."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def key_variant(self) -> str | None:
        """What, beyond its parameters, decides this learner's numbers on this machine (such as
        a GPU backend that rounds differently); part of scenario keys when not ``None``."""
        return None

    def fast_path(self, base: TrainingSet) -> FastPath | None:
        """An exact fast path prepared on ``base`` (statistics computed once per fold), or
        ``None`` when the learner has only plain fits. Overridden by learners that have one."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
