"""The classification judge: scores fitted classifiers on one fold's held-out examples."""

from __future__ import annotations

import numpy as np

from datalever.core.learner import Learner, Model
from datalever.core.task import Fold, Judge
from datalever.tasks.classify.examples import LabelledExamples
from datalever.tasks.classify.metrics import (
    ClassifierMetric,
    ExampleValues,
    parse_classifier_metric,
)


class ClassificationJudge(Judge):
    """Judges classifiers against one fold's held-out examples.

    The held-out features, labels and contributor codes are cut out once, when the judge is
    built, because the same fold judges every scenario's model. Each model is scored once per
    :meth:`evaluate` and all metrics read the same scores.
    """

    def __init__(self, data: LabelledExamples, fold: Fold, metrics: list[str]) -> None:
        parsed = [parse_classifier_metric(m) for m in metrics]
        #: The metrics by canonical name (a metric named twice is judged once).
        self.metrics: dict[str, ClassifierMetric] = {m.name: m for m in parsed}
        self.n_classes = data.n_classes
        self.X = np.ascontiguousarray(data.features[fold.test])
        self.y = data.labels[fold.test]
        self.contributors = data.records["contributor"].to_numpy(np.int64)[fold.test]

    def evaluate(self, model: Model, learner: Learner) -> dict[str, ExampleValues]:
        """Every metric ``learner``'s models can be judged on: all of them for probabilistic
        learners, all but those that need probabilities otherwise."""
        probabilistic = getattr(learner, "probabilistic", True)
        wanted = [m for m in self.metrics.values() if probabilistic or not m.needs_probabilities]
        if not wanted:
            return {}
        scores = np.asarray(model.scores(self.X))  # type: ignore[attr-defined]
        if scores.shape != (len(self.y), self.n_classes):
            raise ValueError(
                f"{type(model).__name__}.scores returned shape {scores.shape}; expected "
                f"{(len(self.y), self.n_classes)} (held-out examples × classes)."
            )
        return {m.name: ExampleValues(self.y, scores, self.contributors, m) for m in wanted}
