"""The lever interface: what a collective does, as a delta against the base training data.

A lever is configured in its constructor (checked by its typed ``Config``, like a learner's)
and has no hidden state. For one drawn collective it returns the :class:`Delta` of a fold's
training set: the records removed and the records added. A lever never knows which learner
runs, and a learner never knows which lever acted; they meet in the delta. What a lever does
to evaluation is declared, not coded in the engine: ``leaves_service`` says its participants
stop being served (a boycott), so they leave "everyone" and are not judged as participants.

A lever whose aim is targeted (plant a signal, push an item) also brings a :class:`Probe`: an
evaluation of its own, such as the share of triggered held-out examples the model assigns to
the planted class. The engine judges every model of the lever (and the no-action model, for
pairing) through the probe as well, and stores its metrics beside the task's.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from datalever.collectives import Collective
from datalever.core.config import LearnerConfig
from datalever.core.delta import Delta
from datalever.core.learner import Model
from datalever.core.task import Dataset, Fold, MetricValues


class Probe(ABC):
    """A lever's own evaluation on one fold, the same for every draw of the lever."""

    @abstractmethod
    def evaluate(self, model: Model, delta: Delta | None = None) -> dict[str, MetricValues]:
        """The lever's metrics (named in the lever's ``probe_metrics``) for ``model``, fitted on
        the fold's training set changed by ``delta`` (``None``: the training set as it is)."""


#: One result row a lever derives itself: (evaluation group, its members as a boolean mask over
#: contributors, metric, value, baseline).
ExtraRow = tuple[str, np.ndarray, str, float, float]


class LeverConfig(LearnerConfig):
    """A lever's parameters: strict types, bounded ranges and a description per field (the
    same checks as a learner's; a refusal names the lever, the parameter and its range)."""

    owner: ClassVar[str] = "lever"


class Lever(ABC):
    """What a collective does. Subclasses set ``kind``, declare their parameters in a nested
    ``Config`` and take them in ``__init__``."""

    kind: ClassVar[str] = "lever"
    Config: ClassVar[type[LeverConfig]] = LeverConfig
    #: Participants stop being served: they leave the "everyone" group and are not judged.
    leaves_service: ClassVar[bool] = False
    #: The models one scenario of the lever fits: the service itself first, then any other
    #: firm the lever acts on (a competitor receiving contributed data).
    firms: ClassVar[tuple[str, ...]] = ("service",)
    #: The metrics the lever's probe reports (none for levers without one), with their
    #: direction: True when higher is better for the collective's aim.
    probe_metrics: ClassVar[dict[str, bool]] = {}
    #: The lever acts through collectives of its own (see :meth:`collectives`), not the spec's.
    brings_collectives: ClassVar[bool] = False

    def collectives(
        self, data: Dataset, folder: str | None, samples: int
    ) -> list[tuple[Collective, int]]:
        """For a lever that ``brings_collectives``: its collectives over ``data`` and how many
        samples of each to draw (``samples`` is the spec's); ``folder`` is the spec's, for
        relative paths."""
        raise NotImplementedError(f"the lever {self.kind!r} acts through the spec's collectives")

    def falls_back(self) -> bool:
        """Whether the lever's firms serve contributors they have no records of by the task's
        named fallback (popularity, for recommenders) rather than the learner's own rule."""
        return False

    @classmethod
    def configure(cls, **params: Any) -> Any:
        """The checked parameters, or a DataleverError naming the lever and the parameter."""
        return cls.Config.check(cls.kind, params)

    @abstractmethod
    def delta(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
    ) -> Delta:
        """The change the collective ``participants`` makes to a fold's training set (the
        records at ``train_positions`` of ``data``); ``rng`` draws any random choice."""

    def deltas(
        self,
        data: Dataset,
        participants: np.ndarray,
        rng: np.random.Generator,
        train_positions: np.ndarray,
        seed: int = 0,
    ) -> list[Delta]:
        """One delta per firm (see ``firms``); ``seed`` is the spec's, for choices that must
        not vary between samples (a competitor's own data)."""
        return [self.delta(data, participants, rng, train_positions)]

    def fixed_deltas(
        self, data: Dataset, train_positions: np.ndarray, seed: int = 0
    ) -> dict[str, Delta | None]:
        """Models the lever's own metrics are measured against, the same for every draw: fitted
        and judged once per fold (``None``: a firm with no data at all)."""
        return {}

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
        """Rows the lever derives from its firms' models (``firms``, by name, then metric),
        its fixed models, the no-action ``baseline`` and the changes it made (``deltas``, one
        per firm) on ``fold``: nothing by default."""
        return []

    def probe(self, data: Dataset, fold: Fold) -> Probe | None:
        """The lever's own evaluation on ``fold`` (``None``: the task's metrics say it all)."""
        return None

    def check(self, data: Dataset) -> None:  # noqa: B027 - a hook; most levers fit any data
        """Refuse, before anything runs, parameters that do not fit ``data`` (an unknown
        target class, an attack for another task family). Nothing to check by default."""

    def params(self) -> dict[str, Any]:
        """The constructor parameters, recorded with every result."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def key(self) -> list:
        """What of the lever decides a scenario's result, for scenario keys."""
        return [self.kind, *self.params().values()]

    @property
    def label(self) -> str:
        """A short name for tables: the kind, and the parameters that differ from defaults."""
        defaults = self.Config()
        changed = [
            f"{v:g}" if isinstance(v, float) else str(v)
            for k, v in self.params().items()
            if getattr(defaults, k) != v
        ]
        return " ".join([self.kind, *changed])

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.params() == self.params()

    def __hash__(self) -> int:
        return hash((self.kind, tuple(self.params().items())))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"
