"""Naive Bayes classifiers (multinomial and Gaussian), as scikit-learn computes them.

Both are fitted from per-class sufficient statistics (counts, feature sums, sums of squares),
so a scenario's model follows from the base's statistics minus the removed examples' plus the
added ones': their fast path costs O(|delta| × features) per scenario instead of a pass over
every example. The helpers at the top (class sums, the rows a delta touches, the cancellation
guard) are shared with the linear learners, which use the same kind of statistics.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from pydantic import Field
from scipy.special import logsumexp

from datalever.core.config import LearnerConfig
from datalever.core.delta import Delta
from datalever.core.learner import FastPath
from datalever.errors import DataleverError
from datalever.tasks.classify.examples import ExampleSet
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel

#: A statistic obtained by subtracting sums is taken as exactly zero when it is at most this
#: fraction of the magnitudes that went into it: below that it is rounding error, and the plain
#: fit's value there is a feature constant within its class (an exact zero). Without the guard a
#: zero variance or count left by removals comes out as a tiny (or negative) number.
CANCELLED = 1e-12


class UninformedModel(ClassifierModel):
    """The model of an empty training set (a collective of everyone withheld every example):
    it knows nothing, so it scores every class alike, probability ``1 / n_classes`` or
    decision value 0, as the class-prior baseline does."""

    def __init__(self, n_classes: int, probabilistic: bool) -> None:
        self.n_classes = n_classes
        self.value = 1.0 / n_classes if probabilistic else 0.0

    def scores(self, X: np.ndarray) -> np.ndarray:
        return np.full((len(X), self.n_classes), self.value)


def class_sums(values: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    """Per-class sums of the rows of ``values`` (``n_classes`` × columns), in O(rows ×
    columns) whatever the number of classes (a one-hot product would cost ``n_classes`` times
    more)."""
    out = np.zeros((n_classes, values.shape[1]))
    if len(y) == 0:
        return out
    order = np.argsort(y, kind="stable")
    ys = y[order]
    starts = np.flatnonzero(np.r_[True, ys[1:] != ys[:-1]])
    out[ys[starts]] = np.add.reduceat(values[order], starts, axis=0)
    return out


def class_counts(y: np.ndarray, n_classes: int) -> np.ndarray:
    return np.bincount(y, minlength=n_classes).astype(np.float64)


def removed_positions(delta: Delta) -> np.ndarray:
    """The base positions ``delta`` removes, each once: a position named twice is removed
    once by :meth:`Delta.apply`, so it must be subtracted from the statistics once."""
    return np.unique(np.asarray(delta.removed, dtype=np.int64))


def delta_rows(
    base: ExampleSet, delta: Delta
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The features and labels of the examples ``delta`` removes from ``base`` and of those it
    adds (empty arrays when it adds none)."""
    removed = removed_positions(delta)
    added = delta.added
    if added is None or len(added) == 0:
        x_add = np.empty((0, base.n_features))
        y_add = np.empty(0, dtype=np.int64)
    else:
        x_add = np.asarray(added.X, dtype=np.float64)
        y_add = np.asarray(added.y, dtype=np.int64)
    return base.X[removed], base.y[removed].astype(np.int64), x_add, y_add


def lower_median(X: np.ndarray) -> np.ndarray:
    """Each column's lower median: a value of the data itself, near its centre.

    The fast paths keep sums of ``x - shift`` rather than of ``x``: centred data keeps the
    differences of sums (variances, covariances) from cancelling. A data value rather than
    the mean is the shift because integer features (pixel intensities, counts) then stay
    integers, so their sums, and the differences of sums, are exact.
    """
    if len(X) == 0:
        return np.zeros(X.shape[1])
    return np.quantile(X, 0.5, axis=0, method="lower")


def probabilities(jll: np.ndarray) -> np.ndarray:
    """Class probabilities from joint log-likelihoods (``-inf`` for absent classes), as
    scikit-learn's ``predict_proba`` computes them."""
    return np.exp(jll - logsumexp(jll, axis=1, keepdims=True))


def _negative_examples_error(count: int) -> DataleverError:
    return DataleverError(
        f"The learner 'multinomial_nb' needs non-negative features (counts or frequencies), "
        f"but {count:,} training example(s) have negative values.",
        "use gaussian_nb, or rescale the features to be non-negative (such as min-max "
        "scaling) before loading.",
    )


# --- multinomial -------------------------------------------------------------------------


class MultinomialNBModel(ClassifierModel):
    """Log feature probabilities per class and log class priors (``-inf`` for absent
    classes, which then get probability 0)."""

    def __init__(self, feature_log_prob: np.ndarray, class_log_prior: np.ndarray) -> None:
        self.feature_log_prob = feature_log_prob
        self.class_log_prior = class_log_prior
        self.n_classes = len(class_log_prior)

    def scores(self, X: np.ndarray) -> np.ndarray:
        return probabilities(np.asarray(X) @ self.feature_log_prob.T + self.class_log_prior)


def _multinomial_model(
    counts: np.ndarray, feature_counts: np.ndarray, alpha: float
) -> MultinomialNBModel:
    """scikit-learn's smoothed estimates from class counts and per-class feature sums."""
    smoothed = feature_counts + alpha
    feature_log_prob = np.log(smoothed) - np.log(smoothed.sum(axis=1, keepdims=True))
    present = counts > 0
    prior = np.full(len(counts), -np.inf)
    prior[present] = np.log(counts[present]) - np.log(counts.sum())
    return MultinomialNBModel(feature_log_prob, prior)


class MultinomialNB(Classifier):
    """Multinomial naive Bayes with Lidstone smoothing ``alpha``, for counts (word counts,
    pixel intensities). Equals scikit-learn's ``MultinomialNB(alpha=alpha)``."""

    name = "multinomial_nb"

    class Config(LearnerConfig):
        alpha: float = Field(
            1.0,
            gt=0,
            le=1e6,
            description="Additive (Laplace/Lidstone) smoothing of the per-class feature counts.",
        )

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha: float = self.configure(alpha=alpha).alpha

    def fit(self, train: ExampleSet) -> ClassifierModel:
        if len(train) == 0:
            return UninformedModel(train.n_classes, self.probabilistic)
        negative = int((train.X < 0).any(axis=1).sum())
        if negative:
            raise _negative_examples_error(negative)
        k = train.n_classes
        return _multinomial_model(
            class_counts(train.y, k), class_sums(train.X, train.y, k), self.alpha
        )

    def fast_path(self, base: ExampleSet) -> FastPath:
        return _MultinomialPath(self, base)


class _MultinomialPath(FastPath):
    """Class counts and per-class feature sums of the base, updated per delta.

    Negative features are refused per scenario, as a plain fit would: a delta may remove the
    base's offending examples.
    """

    name = "sufficient-statistics"

    def __init__(self, learner: MultinomialNB, base: ExampleSet) -> None:
        self.learner, self.base = learner, base
        k = base.n_classes
        self.negative = (base.X < 0).any(axis=1)
        self.counts = class_counts(base.y, k)
        self.sums = class_sums(base.X, base.y, k)
        self.magnitude = class_sums(np.abs(base.X), base.y, k)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[ClassifierModel]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> ClassifierModel:
        k = self.base.n_classes
        x_rem, y_rem, x_add, y_add = delta_rows(self.base, delta)
        counts = self.counts - class_counts(y_rem, k) + class_counts(y_add, k)
        if counts.sum() == 0:
            return UninformedModel(k, self.learner.probabilistic)
        negative = int(self.negative.sum() - self.negative[removed_positions(delta)].sum())
        negative += int((x_add < 0).any(axis=1).sum())
        if negative:
            raise _negative_examples_error(negative)
        removed, added = class_sums(x_rem, y_rem, k), class_sums(x_add, y_add, k)
        sums = self.sums - removed + added
        magnitude = self.magnitude + class_sums(np.abs(x_rem), y_rem, k) + np.abs(added)
        sums[sums <= CANCELLED * magnitude] = 0.0
        return _multinomial_model(counts, sums, self.learner.alpha)


# --- Gaussian ----------------------------------------------------------------------------


class GaussianNBModel(ClassifierModel):
    """Per-class feature means and (smoothed) variances, and class priors."""

    def __init__(
        self, theta: np.ndarray, var: np.ndarray, prior: np.ndarray, present: np.ndarray
    ) -> None:
        self.theta, self.var, self.prior = theta, var, prior
        self.present = present
        self.n_classes = len(prior)

    def scores(self, X: np.ndarray) -> np.ndarray:
        # scikit-learn's joint log-likelihood, term by term in its order, so the two agree to
        # rounding even where the smoothed variances are tiny and the terms huge.
        X = np.asarray(X)
        jll = np.full((len(X), self.n_classes), -np.inf)
        for c in np.flatnonzero(self.present):
            joint = np.log(self.prior[c])
            n_ij = -0.5 * np.sum(np.log(2.0 * np.pi * self.var[c]))
            n_ij = n_ij - 0.5 * np.sum(((X - self.theta[c]) ** 2) / self.var[c], axis=1)
            jll[:, c] = joint + n_ij
        return probabilities(jll)


def _gaussian_model(
    counts: np.ndarray, theta: np.ndarray, var: np.ndarray, epsilon: float
) -> GaussianNBModel:
    """Smoothed variances and priors from counts; absent classes are left out of scores."""
    present = counts > 0
    return GaussianNBModel(theta, var + epsilon, counts / counts.sum(), present)


class GaussianNB(Classifier):
    """Gaussian naive Bayes. Variances are smoothed by ``var_smoothing`` times the largest
    variance of any feature over all training examples, as scikit-learn's ``GaussianNB``
    does (and equal to it)."""

    name = "gaussian_nb"

    class Config(LearnerConfig):
        var_smoothing: float = Field(
            1e-9,
            gt=0,
            le=1,
            description="Share of the largest feature variance added to every variance, for "
            "stability (features constant within a class).",
        )

    def __init__(self, var_smoothing: float = 1e-9) -> None:
        self.var_smoothing: float = self.configure(var_smoothing=var_smoothing).var_smoothing

    def fit(self, train: ExampleSet) -> ClassifierModel:
        if len(train) == 0:
            return UninformedModel(train.n_classes, self.probabilistic)
        X, y, k = train.X, train.y, train.n_classes
        counts = class_counts(y, k)
        theta = np.zeros((k, X.shape[1]))
        var = np.ones((k, X.shape[1]))  # absent classes: never used, kept finite
        for c in np.flatnonzero(counts):
            rows = X[y == c]
            theta[c] = np.mean(rows, axis=0)
            var[c] = np.var(rows, axis=0)
        epsilon = self.var_smoothing * np.max(np.var(X, axis=0))
        return _gaussian_model(counts, theta, var, epsilon)

    def fast_path(self, base: ExampleSet) -> FastPath:
        return _GaussianPath(self, base)


class _GaussianPath(FastPath):
    """Per class: counts, sums and sums of squares of ``x - shift`` (the class's lower median
    in the base), and the same over all examples for the smoothing's largest variance.

    Variances come from the shifted sums as ``S2/n - (S1/n)²``; with the shift a data value
    near the centre this loses no more than a pass over centred data would, and integer
    features are exact. A variance lost to cancellation (a feature left constant within its
    class) is set to the exact 0 a plain fit computes.
    """

    name = "sufficient-statistics"

    def __init__(self, learner: GaussianNB, base: ExampleSet) -> None:
        self.learner, self.base = learner, base
        X, y, k = base.X, base.y, base.n_classes
        self.total_shift = lower_median(X)
        self.shift = np.tile(self.total_shift, (k, 1))
        for c in np.unique(y):
            self.shift[c] = lower_median(X[y == c])
        d = X - self.shift[y]
        self.counts = class_counts(y, k)
        self.s1 = class_sums(d, y, k)
        self.s2 = class_sums(d * d, y, k)
        t = X - self.total_shift
        self.t1, self.t2 = t.sum(axis=0), (t * t).sum(axis=0)

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[ClassifierModel]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> ClassifierModel:
        k = self.base.n_classes
        x_rem, y_rem, x_add, y_add = delta_rows(self.base, delta)
        counts = self.counts - class_counts(y_rem, k) + class_counts(y_add, k)
        n = counts.sum()
        if n == 0:
            return UninformedModel(k, self.learner.probabilistic)
        d_rem, d_add = x_rem - self.shift[y_rem], x_add - self.shift[y_add]
        sq_rem, sq_add = class_sums(d_rem * d_rem, y_rem, k), class_sums(d_add * d_add, y_add, k)
        s1 = self.s1 - class_sums(d_rem, y_rem, k) + class_sums(d_add, y_add, k)
        s2 = self.s2 - sq_rem + sq_add
        magnitude = self.s2 + sq_rem + sq_add

        present = counts > 0
        theta = np.zeros_like(s1)
        var = np.ones_like(s1)
        n_c = counts[present, None]
        mean = s1[present] / n_c
        v = s2[present] / n_c - mean * mean
        v[v <= CANCELLED * magnitude[present] / n_c] = 0.0
        theta[present] = self.shift[present] + mean
        var[present] = v

        t_rem, t_add = x_rem - self.total_shift, x_add - self.total_shift
        t1 = self.t1 - t_rem.sum(axis=0) + t_add.sum(axis=0)
        t2 = self.t2 - (t_rem * t_rem).sum(axis=0) + (t_add * t_add).sum(axis=0)
        total_var = t2 / n - (t1 / n) ** 2
        epsilon = self.learner.var_smoothing * np.max(total_var)
        return _gaussian_model(counts, theta, var, epsilon)
