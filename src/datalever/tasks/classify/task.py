"""The classification task family: labelled examples, classifiers, accuracy and friends.

Protocols: ``data-strikes`` is the Data Strikes protocol applied to examples, a stratified
k-fold split drawn before any lever acts (a participant's held-out examples stay held out, so
participants stay in evaluation); ``holdout`` is one fixed stratified holdout. Metrics are read
per evaluation group from the held-out examples of the group's contributors.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from datalever.core.learner import Learner
from datalever.core.task import Dataset, Fold, Judge, Task
from datalever.tasks.classify.data import EMBEDDED, load_examples_table
from datalever.tasks.classify.examples import LabelledExamples
from datalever.tasks.classify.judge import ClassificationJudge
from datalever.tasks.classify.learners import LEARNERS
from datalever.tasks.classify.learners.naive_bayes import UninformedModel
from datalever.tasks.classify.metrics import ClassifierMetric, parse_classifier_metric
from datalever.tasks.classify.protocols import stratified_holdout, stratified_kfold

if TYPE_CHECKING:
    from datalever.spec import Spec


class ClassificationTask(Task):
    name = "classification"
    learners = LEARNERS
    default_metrics = ("accuracy", "macro_f1", "log_loss")
    default_reference = "prior"
    default_learner = "lda"
    protocols = ("data-strikes", "holdout")
    record_noun: ClassVar[str] = "example"

    def parse_metric(self, name: str) -> ClassifierMetric:
        return parse_classifier_metric(name)

    def metric_names(self) -> list[str]:
        from datalever.tasks.classify.metrics import CLASSIFIER_METRICS, plugin_metrics

        return [*CLASSIFIER_METRICS, *plugin_metrics()]

    def computable(self, metric: str, learner: type[Learner], spec: Spec) -> bool:
        return not parse_classifier_metric(metric).needs_probabilities or getattr(
            learner, "probabilistic", True
        )

    def folds(self, spec: Spec, data: Dataset) -> list[Fold]:
        p = spec.protocol
        labels = data.records["label"].to_numpy()
        if p.kind == "data-strikes":
            return stratified_kfold(labels, p.folds, spec.seed)
        return stratified_holdout(labels, p.test_fraction, spec.seed)

    def judge(self, spec: Spec, data: Dataset, fold: Fold) -> Judge:
        return ClassificationJudge(data, fold, list(spec.evaluation.metrics))

    def uninformed_model(self, data: Dataset, learner: Learner) -> UninformedModel:
        return UninformedModel(data.n_classes, getattr(learner, "probabilistic", True))

    def export(self, spec: Spec, data: LabelledExamples, keep: np.ndarray, folder: Path) -> Path:
        """The kept contributors' examples as ``examples.parquet``: ``contributor``,
        ``label`` and one column per feature, which a spec loads with
        ``columns = {label = "label", contributor = "contributor"}``."""
        rows = keep[data.records["contributor"].to_numpy()]
        records = data.records[rows]
        table = pd.DataFrame(data.features[rows], columns=[str(f) for f in data.feature_names])
        table.insert(0, "label", data.class_names[records["label"].to_numpy()])
        table.insert(0, "contributor", data.contributor_ids[records["contributor"].to_numpy()])
        path = folder / "examples.parquet"
        table.to_parquet(path, index=False)
        return path

    def load(self, spec: Spec) -> LabelledExamples:
        dataset = spec.data.dataset
        if dataset in EMBEDDED and not spec.data.columns:
            return EMBEDDED[dataset]()
        return load_examples_table(
            spec.path(dataset), spec.data.columns or {}, dataset, spec.data.vectoriser
        )
