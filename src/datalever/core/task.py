"""The task-family interface: what a kind of model is trained on and how it is judged.

A task family (recommendation, classification) owns its record schema, its learners, its
split protocols and its metrics. The engine asks it for the folds of a dataset and for a
:class:`Judge` per fold; a judge scores a fitted model on the fold's held-out records and
returns, per metric, :class:`MetricValues` that any evaluation group (a mask over contributors)
can be read from without judging again. Nothing else in datalever knows which task it serves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import numpy as np

from datalever.core.learner import Learner, Model

if TYPE_CHECKING:
    from datalever.spec import Spec


@dataclass(frozen=True)
class Fold:
    """One split of a dataset: positions of training and held-out records."""

    index: int
    train: np.ndarray
    test: np.ndarray


class MetricValues(Protocol):
    """One metric of one model on one fold, readable for any group of contributors."""

    def over(self, members: np.ndarray, population: np.ndarray) -> float:
        """The metric over the held-out records of the contributors in the boolean mask
        ``members`` (NaN when none qualify); ``population`` is everyone the service still
        serves, for metrics that are shares of a whole."""
        ...


class MetricName(Protocol):
    """A parsed metric: its canonical name and its direction."""

    @property
    def name(self) -> str: ...

    @property
    def higher_is_better(self) -> bool: ...


class Judge(ABC):
    """Judges models fitted on one fold against the fold's held-out records."""

    @abstractmethod
    def evaluate(self, model: Model, learner: Learner) -> dict[str, MetricValues]:
        """Every metric of the spec that ``learner``'s models can be judged on."""


class Dataset(Protocol):
    """What the core needs of a task's dataset: records with contributor codes."""

    name: str
    #: The task family the records belong to.
    task: str
    records: Any  # a DataFrame with at least a ``contributor`` column of dense codes
    contributor_ids: np.ndarray
    contributors: Any  # a DataFrame of contributor attributes, indexed by code
    notes: list[str]

    @property
    def n_contributors(self) -> int: ...

    @property
    def width(self) -> int:
        """The dimension beside the records that learners' state grows with (items,
        features), for memory estimates."""
        ...

    def __len__(self) -> int: ...

    def training_set(self, index: np.ndarray | None = None) -> Any: ...

    def checksum(self) -> str: ...


class Task(ABC):
    """A task family. Subclasses fill the class attributes and the methods below."""

    #: The family's name, as specs and stored results name it.
    name: ClassVar[str] = ""
    #: The learners of this family, by the names specs use.
    learners: ClassVar[Mapping[str, type[Learner]]] = {}
    #: What a spec that names no metrics is judged on.
    default_metrics: ClassVar[tuple[str, ...]] = ()
    #: The simple learner gaps are measured against ("share of the gap").
    default_reference: ClassVar[str] = ""
    #: The learner `ask` uses when none is named.
    default_learner: ClassVar[str] = ""
    #: The split protocols this family has.
    protocols: ClassVar[tuple[str, ...]] = ()
    #: What a record is called in messages ("rating", "example").
    record_noun: ClassVar[str] = "record"
    #: What a contributor is called in answers ("user" for a recommender's raters).
    contributor_noun: ClassVar[str] = "contributor"

    @abstractmethod
    def parse_metric(self, name: str) -> MetricName:
        """The metric ``name`` of this family, or a DataleverError listing its metrics."""

    @abstractmethod
    def metric_names(self) -> list[str]:
        """The metric patterns this family knows, for messages (``ndcg@K``, ``accuracy``)."""

    @abstractmethod
    def computable(self, metric: str, learner: type[Learner], spec: Spec) -> bool:
        """Whether models of ``learner`` can be judged on ``metric`` under ``spec``'s
        protocol (RMSE needs rating estimates; log-loss needs probabilities)."""

    @abstractmethod
    def folds(self, spec: Spec, data: Dataset) -> list[Fold]:
        """The spec's protocol applied to ``data``: every fold the spec may run."""

    @abstractmethod
    def judge(self, spec: Spec, data: Dataset, fold: Fold) -> Judge:
        """The judge of one fold, prepared once and applied to many models."""

    @abstractmethod
    def uninformed_model(self, data: Dataset, learner: Learner) -> Model:
        """The model of a firm with no data at all: it scores everything alike (the worst a
        competitor without data can do, for data leverage power)."""

    def with_fallback(self, model: Model, train: Any) -> Model:
        """``model`` with contributors who have no records in ``train`` served by the
        family's named fallback (popularity, for recommenders). Families whose models do not
        depend on who asks (a classifier) return the model as it is."""
        return model

    def export(self, spec: Spec, data: Dataset, keep: np.ndarray, folder: Path) -> Path:
        """Write the records of the contributors ``keep`` (a boolean mask over contributor
        codes) to a new file in ``folder``, as a table this family loads again (a spec's
        ``[data]`` names it); returns its path. For filtering a dataset by consent."""
        raise NotImplementedError(f"the {self.name} family cannot write its data")

    def n_folds(self, spec: Spec) -> int:
        """How many folds the spec's protocol makes (before ``run_folds``)."""
        return spec.protocol.folds if spec.protocol.kind == "data-strikes" else 1
