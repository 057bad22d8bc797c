"""The class-prior baseline: every example gets the training set's class frequencies.

It is the classifiers' reference learner (as item mean is the recommenders'): "share of the
gap" measures a collective's effect against what knowing only the class balance achieves. Its
accuracy is the majority class's share.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from datalever.core.delta import Delta
from datalever.core.learner import FastPath
from datalever.tasks.classify.examples import ExampleSet
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel


class PriorModel(ClassifierModel):
    def __init__(self, counts: np.ndarray) -> None:
        self.n_classes = len(counts)
        total = counts.sum()
        self.priors = counts / total if total > 0 else np.full(len(counts), 1 / len(counts))

    def scores(self, X: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.priors, (len(X), self.n_classes)).copy()


class ClassPrior(Classifier):
    """Predicts the class frequencies of the training examples, whatever the features."""

    name = "prior"

    def __init__(self) -> None:
        self.configure()

    def fit(self, train: ExampleSet) -> PriorModel:
        return PriorModel(np.bincount(train.y, minlength=train.n_classes).astype(np.float64))

    def fast_path(self, base: ExampleSet) -> FastPath:
        return _PriorCounts(base)


class _PriorCounts(FastPath):
    """Class counts of the base, minus those removed, plus those added."""

    name = "sufficient-statistics"

    def __init__(self, base: ExampleSet) -> None:
        self.base = base
        self.counts = np.bincount(base.y, minlength=base.n_classes).astype(np.float64)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[PriorModel]:
        k = self.base.n_classes
        for delta in deltas:
            counts = self.counts - np.bincount(self.base.y[delta.removed], minlength=k)
            if delta.added is not None:
                counts = counts + np.bincount(delta.added.y, minlength=k)
            yield PriorModel(counts)
