"""The learner interface every task family implements: a model recipe that fits on records.

A learner is configured in its constructor and has no hidden state: ``fit`` returns a new
:class:`Model`. A scenario is a :class:`~datalever.core.delta.Delta` against a fold's base
training set; a learner with an exact fast path (sufficient statistics, batched fitting)
returns a :class:`FastPath` prepared on the base from :meth:`Learner.fast_path`, and the engine
fits every scenario of the fold through it. Without one, the engine applies each delta and
calls :meth:`Learner.fit` (the plain path). What a model answers (scores for user-item pairs,
class probabilities) is the task family's business: its judge is the only caller.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

from datalever.core.config import LearnerConfig
from datalever.core.delta import Delta, Records


class Model(ABC):  # noqa: B024 - a marker: each task family declares what its models answer
    """A fitted model."""


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
    learner: Learner, base: Records, deltas: Sequence[Delta], fast: FastPath | None
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
    #: The task family whose records the learner fits ("recommendation", "classification").
    task: ClassVar[str] = ""
    #: The learner's parameters: types, ranges, defaults and descriptions (none by default).
    Config: ClassVar[type[LearnerConfig]] = LearnerConfig
    #: How many scenarios of one fold the engine hands over at once (batched paths want more).
    batch_size: int = 8
    #: True when the learner fits on a GPU: the engine then runs its batches in its own
    #: process, not in a pool of workers that would each start the device.
    runs_on_gpu: bool = False
    #: Bumped whenever a change to the learner changes its results, so stored scenarios
    #: fitted by an earlier version are not reused (the version is part of scenario keys).
    version: str = "1"

    @abstractmethod
    def fit(self, train: Any) -> Model:
        """Fit on ``train`` (the task's records) and return the fitted model."""

    @classmethod
    def configure(cls, **params: Any) -> Any:
        """The checked parameters (an instance of ``Config``), or a DataleverError naming the
        learner, the parameter, the value and its range: constructors start with this, so a
        learner built from Python is checked as one built from a spec."""
        return cls.Config.check(cls.name, params)

    def memory_bytes(self, n_contributors: int, width: int, n_records: int) -> int:
        """A rough upper estimate of the memory one fold of this learner holds (its statistics
        and a base model), so a run that cannot fit is refused before it starts. ``width`` is
        the dataset's other dimension (items for a recommender, features for a classifier).
        The default suits learners whose state grows with the records."""
        return 64 * n_records + 16 * (n_contributors + width)

    def params(self) -> dict:
        """The constructor parameters, for scenario keys and provenance."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def key_variant(self) -> str | None:
        """What, beyond its parameters, decides this learner's numbers on this machine (such as
        a GPU backend that rounds differently); part of scenario keys when not ``None``."""
        return None

    def check(self, data: Any) -> None:  # noqa: B027 - a hook; most learners need none
        """Refuse, before a run starts, a learner that cannot fit ``data`` (for an adapter, a
        parameter its library refuses only when fitting). Nothing to check by default."""

    def fast_path(self, base: Any) -> FastPath | None:
        """An exact fast path prepared on ``base`` (statistics computed once per fold), or
        ``None`` when the learner has only plain fits. Overridden by learners that have one."""
        return None

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
