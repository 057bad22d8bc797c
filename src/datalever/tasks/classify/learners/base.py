"""The classifier interface: models that score every class for each example."""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import numpy as np

from datalever.core import learner as core
from datalever.core.learner import FastPath
from datalever.tasks.classify.examples import ExampleSet


class ClassifierModel(core.Model):
    """A fitted classifier over ``n_classes`` classes."""

    n_classes: int = 0

    @abstractmethod
    def scores(self, X: np.ndarray) -> np.ndarray:
        """Scores of every class for each row of ``X``, shape ``(len(X), n_classes)``: class
        probabilities for probabilistic learners, decision values otherwise. A class the
        training data lacked scores lowest (probability 0, or ``-inf``)."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The class with the highest score (the lowest class code among ties)."""
        return np.argmax(self.scores(X), axis=1)


class Classifier(core.Learner):
    """A classifier: fits on an :class:`ExampleSet`."""

    task: ClassVar[str] = "classification"
    #: True when scores are class probabilities, so log-loss is meaningful.
    probabilistic: ClassVar[bool] = True

    @abstractmethod
    def fit(self, train: ExampleSet) -> ClassifierModel:
        """Fit on ``train`` and return the fitted model."""

    def fast_path(self, base: ExampleSet) -> FastPath | None:
        return None
