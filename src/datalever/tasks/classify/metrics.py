"""Classification metrics, computed per example so any evaluation group is a mask.

A model is scored once on a fold's held-out examples; :class:`ExampleValues` keeps the true
labels, the scores and each example's contributor, and reads a metric for any group of
contributors from them without asking the model again. Groups are read thousands of times
per run, so the metrics are plain vectorised numpy rather than calls into scikit-learn
(whose definitions they follow; the tests compare the two):

* ``accuracy``: the share of examples whose highest-scoring class (the lowest class code among
  ties, as :meth:`ClassifierModel.predict` breaks them) is the true class.
* ``macro_f1``: the unweighted mean of per-class F1 ``2·tp / (2·tp + fp + fn)`` over the
  classes present among the judged examples' true *or* predicted labels. A class neither
  true nor predicted for any example of the group does not count (it has no F1 to speak of),
  which is what ``sklearn.metrics.f1_score(average="macro")`` does without ``labels``.
* ``auc``: macro one-vs-rest ROC AUC over the classes present among the judged examples' true
  labels: for each such class ``c``, the Mann–Whitney probability that an example of ``c``
  scores higher on ``c`` than an example of another class (ties count one half), then the
  unweighted mean. NaN when fewer than two classes are present (no negatives to rank
  against). With exactly two classes present this averages both one-vs-rest AUCs, where
  scikit-learn's binary AUC reads one column; they agree when the two columns are
  complementary probabilities.
* ``log_loss``: the mean over examples of ``-ln p``, where ``p`` is the model's probability
  of the true class clipped to ``[1e-15, 1]``, so a confident mistake costs about 34.5 rather
  than infinity. Probabilities are taken as the model gives them (not renormalised). Only
  for probabilistic learners: decision values are no probabilities.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from datalever.errors import DataleverError

#: The metrics of the classification task family, by canonical name.
CLASSIFIER_METRICS: tuple[str, ...] = ("accuracy", "macro_f1", "auc", "log_loss")
#: The smallest probability log-loss takes the logarithm of.
LOG_LOSS_FLOOR = 1e-15


def plugin_metrics() -> dict[str, Callable[[np.ndarray, np.ndarray], float]]:
    """Classification metrics that plugins register (``datalever.metrics`` entry points whose
    function has ``task = "classification"``): ``fn(labels, scores) -> float`` over any set
    of examples, with optional ``higher_is_better`` and ``needs_probabilities``."""
    from datalever import plugins

    return {
        kind: fn
        for kind, fn in plugins.metrics().items()
        if getattr(fn, "task", None) == "classification" and kind not in CLASSIFIER_METRICS
    }


@dataclass(frozen=True)
class ClassifierMetric:
    """A parsed classification metric such as ``macro_f1``."""

    kind: str

    @property
    def name(self) -> str:
        return self.kind

    @property
    def plugin(self) -> Callable[[np.ndarray, np.ndarray], float] | None:
        return None if self.kind in CLASSIFIER_METRICS else plugin_metrics()[self.kind]

    @property
    def higher_is_better(self) -> bool:
        if self.plugin is not None:
            return bool(getattr(self.plugin, "higher_is_better", True))
        return self.kind != "log_loss"

    @property
    def needs_probabilities(self) -> bool:
        if self.plugin is not None:
            return bool(getattr(self.plugin, "needs_probabilities", False))
        return self.kind == "log_loss"

    def value(self, labels: np.ndarray, scores: np.ndarray) -> float:
        """The metric over all of the examples given (true class codes, score matrix)."""
        if len(labels) == 0:
            return float("nan")
        if self.plugin is not None:
            return _plugin_value(self.kind, self.plugin, labels, scores)
        if self.kind == "accuracy":
            return accuracy(labels, predictions(scores))
        if self.kind == "macro_f1":
            return macro_f1(labels, predictions(scores))
        if self.kind == "auc":
            return roc_auc_ovr(labels, scores)
        return log_loss(labels, scores)


def parse_classifier_metric(name: str) -> ClassifierMetric:
    """Parse a classification metric name; case, surrounding spaces and the separator
    (``macro f1``, ``Macro-F1``) do not count. Unknown names raise a DataleverError listing
    the known ones."""
    known = ", ".join(CLASSIFIER_METRICS)
    if not isinstance(name, str) or len(name) > 40:
        shown = repr(name)[:40]
        raise DataleverError(f"Unknown classification metric {shown}.", f"use one of: {known}.")
    kind = re.sub(r"[\s\-]+", "_", name.strip().lower())
    if kind not in CLASSIFIER_METRICS and kind not in plugin_metrics():
        known = ", ".join([*CLASSIFIER_METRICS, *plugin_metrics()])
        raise DataleverError(f"Unknown classification metric {name!r}.", f"use one of: {known}.")
    return ClassifierMetric(kind)


def _plugin_value(kind: str, fn: Callable, labels: np.ndarray, scores: np.ndarray) -> float:
    """A plugin metric's value, checked: anything but a number is one clear error."""
    try:
        value = fn(labels, scores)
        return float(value)
    except DataleverError:
        raise
    except Exception as e:
        raise DataleverError(
            f"The plugin metric {kind!r} failed: {type(e).__name__}: {str(e)[:200]}.",
            "fix the plugin, or drop the metric from the spec.",
        ) from None


def predictions(scores: np.ndarray) -> np.ndarray:
    """The highest-scoring class of each row (the lowest class code among ties)."""
    return np.argmax(scores, axis=1)


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """The share of examples predicted right (NaN for no examples)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(labels == predicted))


def macro_f1(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean per-class F1 over the classes among ``labels`` or ``predicted`` (NaN for none).

    Counted with bincounts: true positives per class, true and predicted counts per class,
    so ``2·tp + fp + fn = n_true + n_predicted``.
    """
    if len(labels) == 0:
        return float("nan")
    size = int(max(labels.max(), predicted.max())) + 1
    tp = np.bincount(labels[labels == predicted], minlength=size)
    support = np.bincount(labels, minlength=size) + np.bincount(predicted, minlength=size)
    present = support > 0
    return float(np.mean(2.0 * tp[present] / support[present]))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks (1-based) of each column's values within the column, ties sharing their average
    rank (as ``scipy.stats.rankdata(method="average", axis=0)``)."""
    n = values.shape[0]
    order = np.argsort(values, axis=0, kind="stable")
    ordered = np.take_along_axis(values, order, axis=0)
    position = np.arange(n).reshape((n,) + (1,) * (values.ndim - 1))
    first = np.ones(values.shape, dtype=bool)
    first[1:] = ordered[1:] != ordered[:-1]
    last = np.ones(values.shape, dtype=bool)
    last[:-1] = first[1:]
    # Each position's tie run: the latest run start at or before it, the earliest run end at
    # or after it; the run shares the mean of its 1-based positions.
    start = np.maximum.accumulate(np.where(first, position, 0), axis=0)
    end = np.flip(np.minimum.accumulate(np.flip(np.where(last, position, n), 0), axis=0), 0)
    ranks = np.empty(values.shape, dtype=np.float64)
    np.put_along_axis(ranks, order, (start + end) / 2.0 + 1.0, axis=0)
    return ranks


def roc_auc_ovr(labels: np.ndarray, scores: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC over the classes present in ``labels`` (NaN if fewer than
    two), by the rank-sum (Mann–Whitney) statistic with average ranks for ties."""
    n = len(labels)
    n_pos = np.bincount(labels, minlength=scores.shape[1])
    present = np.flatnonzero(n_pos)
    if len(present) < 2:
        return float("nan")
    ranks = average_ranks(scores[:, present])
    is_pos = labels[:, None] == present[None, :]
    rank_sum = np.where(is_pos, ranks, 0.0).sum(axis=0)
    pos = n_pos[present].astype(np.float64)
    auc = (rank_sum - pos * (pos + 1.0) / 2.0) / (pos * (n - pos))
    return float(np.mean(auc))


def true_class_loss(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """Each example's ``-ln p(true class)``, ``p`` clipped to ``[1e-15, 1]``."""
    p = probabilities[np.arange(len(labels)), labels]
    return -np.log(np.clip(p, LOG_LOSS_FLOOR, 1.0))


def log_loss(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean natural-log loss of the true classes' probabilities (NaN for no examples)."""
    if len(labels) == 0:
        return float("nan")
    return float(np.mean(true_class_loss(labels, probabilities)))


@dataclass(frozen=True, eq=False)
class ExampleValues:
    """One model's outcome on a fold's held-out examples, readable for any group.

    ``labels`` are the true class codes, ``scores`` the model's ``(n, n_classes)`` scores and
    ``contributors`` each example's contributor code. What every group shares (predictions,
    per-example correctness and loss) is worked out once, here; a group then only selects.
    Compared by identity: it holds arrays.
    """

    labels: np.ndarray
    scores: np.ndarray
    contributors: np.ndarray
    metric: ClassifierMetric
    _per_example: np.ndarray | None = field(init=False, repr=False, compare=False)
    _predicted: np.ndarray | None = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        kind = self.metric.kind
        predicted = predictions(self.scores) if kind in ("accuracy", "macro_f1") else None
        per_example = None
        if kind == "accuracy":
            per_example = (self.labels == predicted).astype(np.float64)
        elif kind == "log_loss":
            per_example = true_class_loss(self.labels, self.scores)
        object.__setattr__(self, "_predicted", predicted)
        object.__setattr__(self, "_per_example", per_example)

    def over(self, members: np.ndarray, population: np.ndarray | None = None) -> float:
        """The metric over the held-out examples of the contributors in the boolean mask
        ``members`` (NaN when none). ``population`` is not needed: no classification metric
        is a share of everyone's total."""
        chosen = np.asarray(members, dtype=bool)[self.contributors]
        if not chosen.any():
            return float("nan")
        if self.metric.plugin is not None:
            return self.metric.value(self.labels[chosen], self.scores[chosen])
        if self._per_example is not None:
            return float(np.mean(self._per_example[chosen]))
        if self._predicted is not None:
            return macro_f1(self.labels[chosen], self._predicted[chosen])
        return roc_auc_ovr(self.labels[chosen], self.scores[chosen])
