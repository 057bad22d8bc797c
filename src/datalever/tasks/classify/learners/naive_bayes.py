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
#: Up to this many classes, per-class sums are a product with a one-hot matrix (BLAS): its
#: n_classes-fold arithmetic still costs less than sorting the rows by class.
ONE_HOT_CLASSES = 64
#: Rows per piece of that one-hot matrix (at most 32 MiB).
ONE_HOT_ROWS = 1 << 16
#: The largest rounding error Gaussian NB allows its matrix products in a log-likelihood before
#: summing that one term by term instead; see :meth:`GaussianNBModel.scores`.
EXPANSION_ROUNDING = 1e-9
#: Scenarios the engine hands the fast paths at once: a scenario takes milliseconds, so the
#: engine's work per batch (thread limits, claims) is spread over many.
FAST_BATCH = 64
#: The shift of the fast paths' statistics is the lower median of at most this many rows.
CENTRE_ROWS = 1001


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
    """Per-class sums of the rows of ``values`` (``n_classes`` × columns).

    Up to :data:`ONE_HOT_CLASSES` classes this is one BLAS product of the rows' one-hot class
    matrix with ``values``; beyond, the rows are sorted by class and summed in runs, in
    O(rows × columns) whatever the number of classes. Sums of integers are exact either way.
    """
    out = np.zeros((n_classes, values.shape[1]))
    if len(y) == 0:
        return out
    if n_classes <= ONE_HOT_CLASSES:
        classes = np.arange(n_classes)[:, None]
        for start in range(0, len(y), ONE_HOT_ROWS):  # the one-hot matrix in bounded pieces
            rows = slice(start, start + ONE_HOT_ROWS)
            out += (y[rows] == classes).astype(np.float64) @ values[rows]
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
    once by :meth:`Delta.apply`, so it must be subtracted from the statistics once. Levers
    name them in increasing order, which needs no sorting."""
    removed = np.asarray(delta.removed, dtype=np.int64)
    if len(removed) < 2 or bool((removed[1:] > removed[:-1]).all()):
        return removed
    return np.unique(removed)


def delta_rows(
    base: ExampleSet, delta: Delta, removed: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The features and labels of the examples ``delta`` removes from ``base`` and of those it
    adds (empty arrays when it adds none). ``removed``: the delta's
    :func:`removed_positions`, when the caller has them already."""
    if removed is None:
        removed = removed_positions(delta)
    added = delta.added
    if added is None or len(added) == 0:
        x_add = np.empty((0, base.n_features))
        y_add = np.empty(0, dtype=np.int64)
    else:
        x_add = np.asarray(added.X, dtype=np.float64)
        y_add = np.asarray(added.y, dtype=np.int64)
    return np.take(base.X, removed, axis=0), base.y[removed].astype(np.int64), x_add, y_add


def lower_median(X: np.ndarray) -> np.ndarray:
    """Each column's lower median over at most :data:`CENTRE_ROWS` evenly spaced rows: a
    value of the data itself, near its centre.

    The fast paths keep sums of ``x - shift`` rather than of ``x``: centred data keeps the
    differences of sums (variances, covariances) from cancelling. A data value rather than
    the mean is the shift because integer features (pixel intensities, counts) then stay
    integers, so their sums, and the differences of sums, are exact. Any value near the
    centre serves, so a sample of the rows gives it at a fraction of a full median's cost.
    """
    if len(X) == 0:
        return np.zeros(X.shape[1])
    step = -(-len(X) // CENTRE_ROWS)
    return np.quantile(X[::step], 0.5, axis=0, method="lower")


def softmax_columns(jll: np.ndarray) -> np.ndarray:
    """The softmax of each column of ``jll`` (classes × examples), in place: the models score
    in this layout, where every step runs over long contiguous rows."""
    jll -= jll.max(axis=0)
    np.exp(jll, out=jll)
    jll /= jll.sum(axis=0)
    return jll


def logsumexp_columns(jll: np.ndarray) -> np.ndarray:
    """Class probabilities from the columns of ``jll`` (classes × examples), in place, as
    ``exp(jll - logsumexp(jll))`` with scipy's ``logsumexp`` (the largest terms kept out of
    the sum, ``log1p``), so that log-likelihoods so large that rounding them moves the result
    (Gaussian NB with tiny variances) round as scikit-learn's do. ``exp(jll - lse)`` is taken
    as ``exp(jll - top) · exp(top - lse)``, equal to rounding, which needs one pass of ``exp``
    over the matrix rather than two."""
    top = jll.max(axis=0)
    is_top = jll == top
    ties = is_top.sum(axis=0).astype(np.float64)
    jll -= top
    np.exp(jll, out=jll)
    rest = np.where(is_top, 0.0, jll).sum(axis=0) / ties
    lse = np.log1p(rest) + np.log(ties) + top
    jll *= np.exp(top - lse)
    return jll


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
        jll = self.feature_log_prob @ np.asarray(X).T
        jll += self.class_log_prior[:, None]
        return logsumexp_columns(jll).T


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
    batch_size = FAST_BATCH

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
        self.negative_count = int(self.negative.sum())
        self.counts = class_counts(base.y, k)
        self.sums = class_sums(base.X, base.y, k)
        self.magnitude = (
            class_sums(np.abs(base.X), base.y, k) if self.negative_count else self.sums.copy()
        )

    def fit_many(self, deltas: Sequence[Delta]) -> Iterator[ClassifierModel]:
        for delta in deltas:
            yield self._fit(delta)

    def _fit(self, delta: Delta) -> ClassifierModel:
        k = self.base.n_classes
        removed_at = removed_positions(delta)
        x_rem, y_rem, x_add, y_add = delta_rows(self.base, delta, removed_at)
        counts = self.counts - class_counts(y_rem, k) + class_counts(y_add, k)
        if counts.sum() == 0:
            return UninformedModel(k, self.learner.probabilistic)
        negative = int(self.negative_count - self.negative[removed_at].sum())
        negative += int((x_add < 0).any(axis=1).sum())
        if negative:
            raise _negative_examples_error(negative)
        removed, added = class_sums(x_rem, y_rem, k), class_sums(x_add, y_add, k)
        sums = self.sums - removed + added
        # Added examples are non-negative (checked above), and so are removed ones unless the
        # base has negative examples: their sums are then their magnitudes.
        removed_magnitude = class_sums(np.abs(x_rem), y_rem, k) if self.negative_count else removed
        magnitude = self.magnitude + removed_magnitude + added
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
        """scikit-learn's joint log-likelihood ``log prior - ½ Σ log 2πσ² - ½ Q`` with
        ``Q = Σ (x - θ)² / σ²``, and its probabilities.

        ``Q`` is expanded about ``μ``, the mean of the class means, into matrix products over
        every class and row at once: ``Q = A - 2B + C`` with ``A = Σ w x̃²``, ``B = Σ w θ̃ x̃``
        and ``C = Σ w θ̃²`` (``w = 1/σ²``, ``x̃ = x - μ``, ``θ̃ = θ - μ``). Its rounding error is
        at most about ``d ε (√A + √C)²`` (``|B| ≤ √(A C)``), which is known once the products
        are. Wherever that could exceed :data:`EXPANSION_ROUNDING` (a feature nearly constant
        within a class, whose variance is little more than the smoothing, makes the terms
        huge), ``Q`` is summed term by term in scikit-learn's order instead, so the two agree
        to rounding there too.
        """
        X = np.asarray(X, dtype=np.float64)
        n, d = X.shape
        classes = np.flatnonzero(self.present)
        theta, var = self.theta[classes], self.var[classes]
        centre = theta.mean(axis=0)
        w, t = 1.0 / var, theta - centre
        x = X - centre
        a = w @ (x * x).T
        quadratic = (-2.0 * w * t) @ x.T
        c = (w * t * t).sum(axis=1)[:, None]
        quadratic += a
        quadratic += c
        rounding = np.sqrt(a) + np.sqrt(c)
        rounding *= rounding
        rounding *= d * np.finfo(np.float64).eps
        joint = np.log(self.prior[classes])
        spread = -0.5 * np.sum(np.log(2.0 * np.pi * var), axis=1)
        jll = np.full((self.n_classes, n), -np.inf)
        jll[classes] = (joint + spread)[:, None] - 0.5 * quadratic
        for row, c in enumerate(classes):
            coarse = np.flatnonzero(~(rounding[row] <= EXPANSION_ROUNDING))  # NaN: coarse
            if len(coarse):
                terms = ((X[coarse] - self.theta[c]) ** 2) / self.var[c]
                jll[c, coarse] = joint[row] + (spread[row] - 0.5 * np.sum(terms, axis=1))
        return logsumexp_columns(jll).T


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
    batch_size = FAST_BATCH

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
    in the base).

    Variances come from the shifted sums as ``S2/n - (S1/n)²``; with the shift a data value
    near the centre this loses no more than a pass over centred data would, and integer
    features are exact. A variance lost to cancellation (a feature left constant within its
    class) is set to the exact 0 a plain fit computes. The variance over all examples (for the
    smoothing) follows from the same sums, moved to one shift for all classes (the base's
    lower median): ``Σ (x - s) = Σ_c S1_c + n_c δ_c`` and
    ``Σ (x - s)² = Σ_c S2_c + 2 δ_c S1_c + n_c δ_c²`` with ``δ_c = shift_c - s``.
    """

    name = "sufficient-statistics"

    def __init__(self, learner: GaussianNB, base: ExampleSet) -> None:
        self.learner, self.base = learner, base
        X, y, k = base.X, base.y, base.n_classes
        self.total_shift = lower_median(X)
        self.shift = np.tile(self.total_shift, (k, 1))
        for c in range(k):
            rows = np.flatnonzero(y == c)
            if len(rows):  # lower_median's sample of the class's rows, without copying them all
                self.shift[c] = lower_median(X[rows[:: -(-len(rows) // CENTRE_ROWS)]])
        self.gap = self.shift - self.total_shift
        d = X - self.shift[y]
        self.counts = class_counts(y, k)
        self.s1 = class_sums(d, y, k)
        self.s2 = class_sums(d * d, y, k)

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
        s1, s2, magnitude = self.s1.copy(), self.s2.copy(), self.s2.copy()
        # The removed rows are a copy, centred in place; the added ones belong to the delta.
        for x, y, sign, out in ((x_rem, y_rem, -1.0, x_rem), (x_add, y_add, 1.0, None)):
            if len(y) == 0:
                continue
            d = np.subtract(x, self.shift[y], out=out)
            squares = class_sums(d * d, y, k)
            s1 += sign * class_sums(d, y, k)
            s2 += sign * squares
            magnitude += squares

        present = counts > 0
        theta = np.zeros_like(s1)
        var = np.ones_like(s1)
        n_c = counts[present, None]
        mean = s1[present] / n_c
        v = s2[present] / n_c - mean * mean
        v[v <= CANCELLED * magnitude[present] / n_c] = 0.0
        theta[present] = self.shift[present] + mean
        var[present] = v

        gap, n_gap = self.gap, counts[:, None] * self.gap
        t1 = (s1 + n_gap).sum(axis=0)
        t2 = (s2 + 2.0 * gap * s1 + n_gap * gap).sum(axis=0)
        total_var = t2 / n - (t1 / n) ** 2
        epsilon = self.learner.var_smoothing * np.max(total_var)
        return _gaussian_model(counts, theta, var, epsilon)
