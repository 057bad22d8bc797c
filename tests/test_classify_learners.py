"""Classifiers: plain fits against scikit-learn, fast paths against plain fits, bad params.

Tolerances. The plain fits compute scikit-learn's formulas in scikit-learn's order, so on
digits they agree to the last bits (measured: 0 for naive Bayes, ridge and logistic, 4e-14
for LDA, whose pooled covariance is summed in another order); the tests allow rtol 1e-7 as
specified. A fast path reaches the same statistics by subtracting and adding sums, so it
agrees with the plain fit to rounding of those sums, amplified by the model's conditioning:
measured at most ~3e-13 for naive Bayes and ridge and ~2e-11 for unshrunk LDA, whose
covariance on digits has a condition number near 1e6 (its plain fit alone moves by ~6e-10
when the training examples are reordered). The limits below are those with a margin.
"""

from __future__ import annotations

import functools
import inspect

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn import discriminant_analysis, ensemble, linear_model, naive_bayes

from datalever.core.delta import Delta
from datalever.errors import DataleverError
from datalever.tasks.classify.examples import ExampleSet, load_digits_dataset
from datalever.tasks.classify.learners import (
    LDA,
    LEARNERS,
    GaussianNB,
    LogisticRegression,
    MultinomialNB,
    RidgeClassifier,
    SklearnClassifier,
)
from datalever.tasks.classify.learners.base import Classifier


@functools.cache
def digits() -> ExampleSet:
    return load_digits_dataset().training_set()


def sk_scores(estimator, method: str, train: ExampleSet, X: np.ndarray) -> np.ndarray:
    return getattr(estimator.fit(train.X, train.y), method)(X)


# --- (1) plain fits against scikit-learn ---------------------------------------------------

SKLEARN_TWINS = [
    (MultinomialNB(), naive_bayes.MultinomialNB(alpha=1.0), "predict_proba"),
    (MultinomialNB(alpha=0.01), naive_bayes.MultinomialNB(alpha=0.01), "predict_proba"),
    (GaussianNB(), naive_bayes.GaussianNB(var_smoothing=1e-9), "predict_proba"),
    (GaussianNB(1e-3), naive_bayes.GaussianNB(var_smoothing=1e-3), "predict_proba"),
    (RidgeClassifier(), linear_model.RidgeClassifier(alpha=1.0), "decision_function"),
    (
        RidgeClassifier(alpha=10.0, fit_intercept=False),
        linear_model.RidgeClassifier(alpha=10.0, fit_intercept=False),
        "decision_function",
    ),
    (LDA(), discriminant_analysis.LinearDiscriminantAnalysis(solver="lsqr"), "predict_proba"),
    (
        LDA(shrinkage=0.3),
        discriminant_analysis.LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.3),
        "predict_proba",
    ),
    (LogisticRegression(), linear_model.LogisticRegression(max_iter=200), "predict_proba"),
    (
        SklearnClassifier("sklearn.ensemble.RandomForestClassifier", {"n_estimators": 10}),
        ensemble.RandomForestClassifier(n_estimators=10, random_state=0),
        "predict_proba",
    ),
    (
        SklearnClassifier("sklearn.linear_model.RidgeClassifier"),
        linear_model.RidgeClassifier(),
        "decision_function",
    ),
]


@pytest.mark.parametrize(("ours", "theirs", "method"), SKLEARN_TWINS, ids=repr)
def test_plain_fit_equals_sklearn_on_digits(ours: Classifier, theirs, method: str) -> None:
    train = digits()
    got = ours.fit(train).scores(train.X)
    want = sk_scores(theirs, method, train, train.X)
    assert got.shape == (len(train), 10)
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-12)


@pytest.mark.parametrize(("ours", "theirs", "method"), SKLEARN_TWINS[:9], ids=repr)
def test_absent_class_scores_lowest_and_the_rest_equal_sklearn(
    ours: Classifier, theirs, method: str
) -> None:
    """A training set without threes: scikit-learn fits nine classes, ours keeps ten columns
    with the threes' probability 0 (or decision value -inf)."""
    train = digits().subset(digits().y != 3)
    X = digits().X[::7]
    got = ours.fit(train).scores(X)
    lowest = -np.inf if method == "decision_function" else 0.0
    assert (got[:, 3] == lowest).all()
    kept = [c for c in range(10) if c != 3]
    np.testing.assert_allclose(
        got[:, kept], sk_scores(theirs, method, train, X), rtol=1e-7, atol=1e-12
    )
    if method == "predict_proba":
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=1e-12)


def test_two_classes_by_decision_function_give_two_opposite_columns() -> None:
    train = digits().subset(np.isin(digits().y, [2, 5]))
    model = SklearnClassifier("sklearn.linear_model.RidgeClassifier").fit(train)
    scores = model.scores(digits().X[:20])
    assert np.isneginf(scores[:, [0, 1, 3, 4, 6, 7, 8, 9]]).all()
    np.testing.assert_array_equal(scores[:, 2], -scores[:, 5])


def test_probabilistic_follows_the_estimator() -> None:
    assert SklearnClassifier("sklearn.ensemble.RandomForestClassifier").probabilistic
    assert not SklearnClassifier("sklearn.svm.SVC").probabilistic
    assert SklearnClassifier("sklearn.svm.SVC", {"probability": True}).probabilistic
    assert not RidgeClassifier.probabilistic and GaussianNB.probabilistic


def test_seed_is_random_state_only_when_the_estimator_takes_one() -> None:
    forest = SklearnClassifier("sklearn.ensemble.RandomForestClassifier", seed=7)
    assert forest.params() == {
        "estimator": "sklearn.ensemble.RandomForestClassifier",
        "params": None,
        "seed": 7,
    }
    assert forest._build().random_state == 7
    assert SklearnClassifier()._build().random_state == 0  # the default seed
    given_state = SklearnClassifier(
        "sklearn.ensemble.RandomForestClassifier", {"random_state": 3}, seed=7
    )
    assert given_state._build().random_state == 3
    # An estimator without random_state takes the seed (a spec's seed reaches every learner
    # that has one) and has no use for it.
    assert SklearnClassifier("sklearn.naive_bayes.GaussianNB", seed=7)._kwargs() == {}


def test_defaults_are_the_constructor_defaults() -> None:
    for cls in LEARNERS.values():
        defaults = {
            n: p.default
            for n, p in inspect.signature(cls.__init__).parameters.items()
            if n != "self"
        }
        assert cls().params() == defaults == cls.Config.model_validate({}).model_dump()


def test_catalogue_names_every_learner() -> None:
    assert {"multinomial_nb", "gaussian_nb", "ridge", "lda", "logistic", "sklearn"} <= set(LEARNERS)
    assert all(LEARNERS[name].name == name for name in LEARNERS)


# --- (2) fast paths against plain fits -------------------------------------------------------


@functools.cache
def split() -> tuple[ExampleSet, np.ndarray]:
    """A base without nines (so added nines make a class from nothing) and held-out rows."""
    data = digits()
    order = np.random.default_rng(0).permutation(len(data))
    held, rest = order[:200], order[200:]
    rest = rest[data.y[rest] != 9]
    return data.subset(np.sort(rest)), data.X[held]


FAST = {
    "multinomial_nb": (MultinomialNB(), 1e-10),
    "multinomial_nb_small_alpha": (MultinomialNB(alpha=1e-6), 1e-10),
    "gaussian_nb": (GaussianNB(), 1e-9),
    "ridge": (RidgeClassifier(), 1e-9),
    "ridge_no_intercept": (RidgeClassifier(alpha=3.0, fit_intercept=False), 1e-9),
    "lda": (LDA(), 1e-8),
    "lda_shrunk": (LDA(shrinkage=0.2), 1e-9),
}


@functools.cache
def prepared(key: str):
    """One fast path per learner for the whole test: any state a scenario left behind would
    show up in the next one."""
    learner, _ = FAST[key]
    return learner.fast_path(split()[0])


@st.composite
def deltas(draw) -> Delta:
    base, _ = split()
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    removed = rng.choice(len(base), int(draw(st.floats(0, 0.9)) * len(base)), replace=False)
    wiped = draw(st.none() | st.integers(0, 8))
    if wiped is not None:  # every example of one class goes
        removed = np.union1d(removed, np.flatnonzero(base.y == wiped))
    n_added = draw(st.integers(0, 12))
    kind = draw(st.sampled_from(["copies", "integers", "reals"]))
    if kind == "copies":
        X = digits().X[rng.integers(0, len(digits()), n_added)]
    elif kind == "integers":
        X = rng.integers(0, 17, (n_added, 64)).astype(np.float64)
    else:
        X = rng.uniform(0, 16, (n_added, 64))
    labels = draw(st.sampled_from(["any", "nines", "wiped"]))
    y = rng.integers(0, 10, n_added)
    if labels == "nines":
        y[:] = 9
    elif labels == "wiped" and wiped is not None:
        y[: n_added // 2] = wiped
    if n_added == 0 and draw(st.booleans()):
        return Delta(removed)
    return Delta(removed, ExampleSet(X, y, np.arange(n_added), 10))


@pytest.mark.parametrize("key", list(FAST))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=st.lists(deltas(), min_size=1, max_size=3))
def test_fast_path_equals_plain_fit(key: str, batch: list[Delta]) -> None:
    learner, tol = FAST[key]
    base, X = split()
    for delta, fast in zip(batch, prepared(key).fit_many(batch), strict=True):
        plain = learner.fit(delta.apply(base)).scores(X)
        got = fast.scores(X)
        np.testing.assert_array_equal(np.isinf(got), np.isinf(plain))
        finite = np.isfinite(plain)
        np.testing.assert_allclose(got[finite], plain[finite], rtol=tol, atol=tol)


def test_fast_paths_equal_plain_fits_on_the_base_and_on_repeated_positions() -> None:
    """No delta at all; and a position named twice, which a plain fit removes once."""
    base, X = split()
    repeated = Delta(np.array([5, 5, 7, 700, 5]))
    for key, (learner, tol) in FAST.items():
        none, twice = prepared(key).fit_many([Delta(np.array([], dtype=np.int64)), repeated])
        for fast, train in ((none, base), (twice, repeated.apply(base))):
            np.testing.assert_allclose(
                fast.scores(X), learner.fit(train).scores(X), rtol=tol, atol=tol, err_msg=key
            )


def test_no_examples_left_gives_a_model_that_scores_every_class_alike() -> None:
    """A collective of everyone withholding everything leaves no training examples: plain
    and fast fits alike give every class probability 1/10 (or decision value 0)."""
    base, X = split()
    everything = Delta(np.arange(len(base)))
    plain_only = [LogisticRegression(), SklearnClassifier()]
    for learner in [*(learner for learner, _ in FAST.values()), *plain_only]:
        expected = np.full((len(X), 10), 0.1 if learner.probabilistic else 0.0)
        np.testing.assert_array_equal(learner.fit(everything.apply(base)).scores(X), expected)
        fast = learner.fast_path(base)
        if fast is not None:
            (model,) = fast.fit_many([everything])
            np.testing.assert_array_equal(model.scores(X), expected)


def test_multinomial_refuses_negative_features_unless_a_delta_removes_them() -> None:
    base, X = split()
    negative = ExampleSet(base.X.copy(), base.y, base.contributors, 10)
    negative.X[:3, 5] = -1.0
    learner = MultinomialNB()
    with pytest.raises(DataleverError, match="non-negative"):
        learner.fit(negative)
    fast = learner.fast_path(negative)
    with pytest.raises(DataleverError, match="non-negative"):
        list(fast.fit_many([Delta(np.array([0, 1]))]))
    cleaned = Delta(np.array([0, 1, 2]))
    (model,) = fast.fit_many([cleaned])
    np.testing.assert_allclose(
        model.scores(X), learner.fit(cleaned.apply(negative)).scores(X), rtol=1e-10, atol=1e-10
    )
    bad_added = Delta(np.array([0, 1, 2]), ExampleSet(-np.ones((1, 64)), np.array([0]), [0], 10))
    with pytest.raises(DataleverError, match="non-negative"):
        list(fast.fit_many([bad_added]))


# --- (3) multinomial naive Bayes by hand ----------------------------------------------------


def test_multinomial_nb_worked_example() -> None:
    """Class 0: x = (2, 1), (1, 0); class 1: x = (0, 3); class 2 has no examples. With
    alpha = 1 the smoothed counts are (4, 2) / 6 and (1, 4) / 5, so
    P(word | 0) = (2/3, 1/3) and P(word | 1) = (1/5, 4/5); the priors are 2/3 and 1/3.
    For x = (1, 1): 2/3 · 2/3 · 1/3 = 4/27 against 1/3 · 1/5 · 4/5 = 4/75, so
    P(0 | x) = 75/102 = 25/34. For x = (0, 2): 2/3 · (1/3)² = 2/27 against
    1/3 · (4/5)² = 16/75, so P(0 | x) = 50/194 = 25/97. Class 2 gets 0."""
    train = ExampleSet(
        np.array([[2.0, 1.0], [1.0, 0.0], [0.0, 3.0]]), np.array([0, 0, 1]), np.arange(3), 3
    )
    model = MultinomialNB(alpha=1.0).fit(train)
    expected = np.array([[25 / 34, 9 / 34, 0.0], [25 / 97, 72 / 97, 0.0]])
    np.testing.assert_allclose(model.scores(np.array([[1.0, 1.0], [0.0, 2.0]])), expected)
    (fast,) = MultinomialNB().fast_path(train).fit_many([Delta(np.array([], dtype=int))])
    np.testing.assert_allclose(fast.scores(np.array([[1.0, 1.0], [0.0, 2.0]])), expected)


# --- (4) bad parameters ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "says"),
    [
        (lambda: MultinomialNB(alpha=0.0), "alpha"),
        (lambda: MultinomialNB(alpha=-1.0), "alpha"),
        (lambda: GaussianNB(var_smoothing=0.0), "var_smoothing"),
        (lambda: RidgeClassifier(alpha=0.0), "alpha"),
        (lambda: RidgeClassifier(fit_intercept="yes"), "fit_intercept"),  # type: ignore[arg-type]
        (lambda: LDA(shrinkage=1.5), "shrinkage"),
        (lambda: LogisticRegression(C=0.0), "C"),
        (lambda: LogisticRegression(max_iter=0), "max_iter"),
        (lambda: SklearnClassifier("sklearn.nowhere.Forest"), "no module"),
        (lambda: SklearnClassifier("sklearn.ensemble.NoSuchForest"), "has no 'NoSuchForest'"),
        (lambda: SklearnClassifier("sklearn.preprocessing.StandardScaler"), "no predict"),
        (lambda: SklearnClassifier("sklearn.linear_model.LinearRegression"), "not a sci"),
        (lambda: SklearnClassifier("sklearn.base.clone"), "not a class"),
        (lambda: SklearnClassifier("sklearn.svm.SVC", {"kernal": "rbf"}), "kernal"),
        (lambda: SklearnClassifier("sklearn.svm.SVC", {"C": "big"}), "C"),
        (lambda: SklearnClassifier("sklearn.svm.SVC", {"C": {1, 2}}), "not a plain value"),
    ],
)
def test_bad_params_are_refused(build, says: str) -> None:
    with pytest.raises(DataleverError, match=says) as caught:
        build()
    assert caught.value.fix


def test_multinomial_refuses_negative_features() -> None:
    train = ExampleSet(np.array([[1.0, -2.0], [0.0, 1.0]]), np.array([0, 1]), np.arange(2), 2)
    with pytest.raises(DataleverError, match="non-negative"):
        MultinomialNB().fit(train)
