"""Closed-form linear classifiers: ridge one-vs-all and linear discriminant analysis.

Both are functions of a few sufficient statistics: class counts, per-class feature sums and
the features' Gram matrix ``XᵀX``. Their fast paths compute these once per fold (on features
shifted by a data value near their centre, see :func:`~.naive_bayes.lower_median`) and update
them per scenario with the removed and added examples' outer products, O(|delta| × d²), then
solve one d × d system, instead of a pass over all n examples (n × d²).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import scipy.linalg
from pydantic import Field

from datalever.core.config import LearnerConfig
from datalever.core.delta import Delta
from datalever.core.learner import FastPath
from datalever.tasks.classify.examples import ExampleSet
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.learners.naive_bayes import (
    CANCELLED,
    FAST_BATCH,
    UninformedModel,
    class_counts,
    class_sums,
    delta_rows,
    lower_median,
    softmax_columns,
)

#: Singular values of the covariance below this fraction of the largest are taken as zero in
#: LDA's least-squares solve. scikit-learn uses machine epsilon, but a feature set that is
#: singular (digits' blank pixels, features that vary only between classes) then has "zero"
#: singular values of rounding size on either side of that cutoff, and the solution along
#: them is rounding error amplified 1e14-fold: reordering the examples changes
#: scikit-learn's probabilities by up to 1. 1e-10 lies far above rounding (about 1e-16
#: relative) and below genuine structure; where a training set has no singular values
#: between the two, as digits, the result is scikit-learn's.
LSTSQ_CUTOFF = 1e-10


def _gram_memory(n_features: int, n_records: int) -> int:
    """The Gram matrix and the solver's copies (about six d × d float64 matrices), and the
    plain fit's centred copy of the features."""
    return 6 * 8 * n_features**2 + 8 * n_features * n_records


class _GramStatistics:
    """Class counts, per-class sums of ``x - shift`` and ``Σ (x - shift)(x - shift)ᵀ`` of a
    base training set, and the same for a scenario after its delta."""

    def __init__(self, base: ExampleSet, shift: np.ndarray) -> None:
        self.base, self.shift = base, shift
        k = base.n_classes
        d = base.X - shift
        self.counts = class_counts(base.y, k)
        self.sums = class_sums(d, base.y, k)
        self.gram = d.T @ d

    def updated(self, delta: Delta) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The scenario's counts, class sums and Gram matrix, and the magnitude of the Gram
        diagonal's terms (base, removed and added), for the cancellation guard."""
        k = self.base.n_classes
        x_rem, y_rem, x_add, y_add = delta_rows(self.base, delta)
        counts = self.counts - class_counts(y_rem, k) + class_counts(y_add, k)
        sums, gram = self.sums.copy(), self.gram.copy()
        magnitude = np.diag(self.gram).copy()
        # The removed rows are a copy, centred in place; the added ones belong to the delta.
        for x, y, sign, out in ((x_rem, y_rem, -1.0, x_rem), (x_add, y_add, 1.0, None)):
            if len(y) == 0:
                continue
            d = np.subtract(x, self.shift, out=out)
            outer = d.T @ d  # a symmetric rank-k product (BLAS syrk)
            sums += sign * class_sums(d, y, k)
            gram += sign * outer
            magnitude += np.diag(outer)
        return counts, sums, gram, magnitude


# --- ridge -------------------------------------------------------------------------------


class RidgeModel(ClassifierModel):
    """Decision values ``X W + b`` per class; ``-inf`` for classes absent from training."""

    def __init__(self, weights: np.ndarray, intercept: np.ndarray, present: np.ndarray) -> None:
        self.weights, self.intercept, self.present = weights, intercept, present
        self.n_classes = len(intercept)

    def scores(self, X: np.ndarray) -> np.ndarray:
        out = self.weights.T @ np.asarray(X).T  # classes × examples: the faster product
        out += self.intercept[:, None]
        out[~self.present] = -np.inf
        return out.T


class RidgeClassifier(Classifier):
    """Ridge regression on ±1 one-vs-all targets, as scikit-learn's ``RidgeClassifier`` (its
    Cholesky solver): ``(XcᵀXc + αI) W = XcᵀYc`` on centred features and targets. Its scores
    are decision values, not probabilities."""

    name = "ridge"
    batch_size = FAST_BATCH
    probabilistic = False

    class Config(LearnerConfig):
        alpha: float = Field(
            1.0, gt=0, le=1e8, description="The L2 penalty on the weights (λ of XᵀX + λI)."
        )
        fit_intercept: bool = Field(
            True, description="Centre features and targets, fitting one intercept per class."
        )

    def __init__(self, alpha: float = 1.0, fit_intercept: bool = True) -> None:
        c = self.configure(alpha=alpha, fit_intercept=fit_intercept)
        self.alpha: float = c.alpha
        self.fit_intercept: bool = c.fit_intercept

    def memory_bytes(self, n_contributors: int, width: int, n_records: int) -> int:
        return _gram_memory(width, n_records) + super().memory_bytes(
            n_contributors, width, n_records
        )

    def fit(self, train: ExampleSet) -> ClassifierModel:
        if len(train) == 0:
            return UninformedModel(train.n_classes, self.probabilistic)
        k = train.n_classes
        X = train.X
        Y = np.where(train.y[:, None] == np.arange(k), 1.0, -1.0)
        if self.fit_intercept:
            x_offset, y_offset = X.mean(axis=0), Y.mean(axis=0)
            X, Y = X - x_offset, Y - y_offset
        a = X.T @ X
        a.flat[:: a.shape[0] + 1] += self.alpha
        weights = scipy.linalg.solve(a, X.T @ Y, assume_a="pos", overwrite_a=True)
        intercept = y_offset - x_offset @ weights if self.fit_intercept else np.zeros(k)
        return RidgeModel(weights, intercept, class_counts(train.y, k) > 0)

    def fast_path(self, base: ExampleSet) -> FastPath:
        return _RidgePath(self, base)


class _RidgePath(FastPath):
    """With ``D = X - shift``, ``s = Σ D`` and ``S_c`` the class sums of ``D``:
    ``XcᵀXc = DᵀD - s sᵀ/n`` and, as ``Y`` is +1 in its class and -1 elsewhere,
    ``XcᵀYc = 2 S_c - s (1 + ȳ_c)`` with ``ȳ_c = (2 n_c - n)/n``. Without an intercept the
    shift is 0 and nothing is centred. The penalised system is well conditioned, so rounding
    in the updated statistics moves the weights by about ``ε ‖DᵀD‖ / α``."""

    name = "sufficient-statistics"

    def __init__(self, learner: RidgeClassifier, base: ExampleSet) -> None:
        self.learner = learner
        shift = lower_median(base.X) if learner.fit_intercept else np.zeros(base.n_features)
        self.stats = _GramStatistics(base, shift)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[ClassifierModel]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> ClassifierModel:
        counts, sums, gram, _ = self.stats.updated(delta)
        n = counts.sum()
        if n == 0:
            return UninformedModel(len(counts), self.learner.probabilistic)
        total = sums.sum(axis=0)
        rhs = (2 * sums - total).T
        a = gram
        if self.learner.fit_intercept:
            mean = total / n
            y_mean = (2 * counts - n) / n
            a = gram - np.outer(total, mean)
            rhs = rhs - np.outer(total, y_mean)
        a.flat[:: a.shape[0] + 1] += self.learner.alpha
        weights = scipy.linalg.solve(a, rhs, assume_a="pos", overwrite_a=True)
        if self.learner.fit_intercept:
            intercept = y_mean - (self.stats.shift + mean) @ weights
        else:
            intercept = np.zeros(len(counts))
        return RidgeModel(weights, intercept, counts > 0)


# --- linear discriminant analysis --------------------------------------------------------


class LDAModel(ClassifierModel):
    """Linear discriminant scores ``X Wᵀ + b`` turned into class probabilities (softmax);
    absent classes have probability 0."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray) -> None:
        self.coef, self.intercept = coef, intercept
        self.n_classes = len(intercept)

    def scores(self, X: np.ndarray) -> np.ndarray:
        jll = self.coef @ np.asarray(X).T
        jll += self.intercept[:, None]
        return softmax_columns(jll).T


def _lda_model(
    means: np.ndarray, cov: np.ndarray, counts: np.ndarray, shrinkage: float | None
) -> LDAModel:
    """scikit-learn's ``lsqr`` solution from the present classes' means (rows of ``means``)
    and the pooled within-class covariance: the minimum-norm least-squares solve of
    ``Σ Wᵀ = Mᵀ`` (``Σ`` is singular when a feature is constant within every class)."""
    present = counts > 0
    if shrinkage is not None:
        d = cov.shape[0]
        mu = np.trace(cov) / d
        cov = (1.0 - shrinkage) * cov
        cov.flat[:: d + 1] += shrinkage * mu
    coef = scipy.linalg.lstsq(cov, means.T, cond=LSTSQ_CUTOFF)[0].T
    priors = counts[present] / counts.sum()
    full_coef = np.zeros((len(counts), cov.shape[0]))
    full_coef[present] = coef
    intercept = np.full(len(counts), -np.inf)
    intercept[present] = -0.5 * np.diag(means @ coef.T) + np.log(priors)
    return LDAModel(full_coef, intercept)


class LDA(Classifier):
    """Linear discriminant analysis with a pooled covariance (optionally shrunk towards a
    multiple of the identity) and priors from class counts, equal to scikit-learn's
    ``LinearDiscriminantAnalysis(solver="lsqr", shrinkage=shrinkage)``."""

    name = "lda"
    batch_size = FAST_BATCH

    class Config(LearnerConfig):
        shrinkage: float | None = Field(
            None,
            ge=0,
            le=1,
            description="Fixed shrinkage of each class covariance towards its mean variance "
            "times the identity (unset: none).",
            json_schema_extra={"accepts": "a number from 0 to 1, or unset for no shrinkage"},
        )

    def __init__(self, shrinkage: float | None = None) -> None:
        self.shrinkage: float | None = self.configure(shrinkage=shrinkage).shrinkage

    def memory_bytes(self, n_contributors: int, width: int, n_records: int) -> int:
        return _gram_memory(width, n_records) + super().memory_bytes(
            n_contributors, width, n_records
        )

    def fit(self, train: ExampleSet) -> ClassifierModel:
        if len(train) == 0:
            return UninformedModel(train.n_classes, self.probabilistic)
        X, y = train.X, train.y
        counts = class_counts(y, train.n_classes)
        present = np.flatnonzero(counts)
        means = class_sums(X, y, train.n_classes)[present] / counts[present, None]
        # Each class's biased covariance weighted by its prior, as scikit-learn sums them (the
        # shrinkage, being linear, is applied once to the pooled matrix).
        cov = np.zeros((X.shape[1], X.shape[1]))
        for c in present:
            cov += counts[c] / len(y) * np.atleast_2d(np.cov(X[y == c].T, bias=True))
        return _lda_model(means, cov, counts, self.shrinkage)

    def fast_path(self, base: ExampleSet) -> FastPath:
        return _LDAPath(self, base)


class _LDAPath(FastPath):
    """The pooled within-class covariance is ``(DᵀD - Σ_c S_c S_cᵀ / n_c) / n`` with
    ``D = X - shift`` and ``S_c`` the class sums of ``D``.

    Unlike ridge, nothing regularises the solve, and the least-squares solve treats a feature
    constant within every class (an exact zero row and column in the plain fit) as a null
    direction only if it is exactly zero: a feature whose within-class scatter is lost to
    cancellation is therefore set to exact zeros, as the plain fit has it.
    """

    name = "sufficient-statistics"

    def __init__(self, learner: LDA, base: ExampleSet) -> None:
        self.learner = learner
        self.stats = _GramStatistics(base, lower_median(base.X))

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[ClassifierModel]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> ClassifierModel:
        counts, sums, gram, magnitude = self.stats.updated(delta)
        n = counts.sum()
        if n == 0:
            return UninformedModel(len(counts), self.learner.probabilistic)
        present = counts > 0
        s, n_c = sums[present], counts[present, None]
        scatter = gram - s.T @ (s / n_c)
        lost = np.diag(scatter) <= CANCELLED * magnitude
        scatter[lost, :] = 0.0
        scatter[:, lost] = 0.0
        means = self.stats.shift + s / n_c
        return _lda_model(means, scatter / n, counts, self.learner.shrinkage)
