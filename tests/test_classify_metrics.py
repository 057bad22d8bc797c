"""Classification metrics, judge and stratified protocols.

Each metric is checked three ways: against scikit-learn on random and real scores, against a
worked example computed by hand, and for groups (a group's value is the metric computed on
its examples alone).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC

from datalever.errors import DataleverError
from datalever.tasks.classify.examples import ExampleSet, load_digits_dataset
from datalever.tasks.classify.judge import ClassificationJudge
from datalever.tasks.classify.learners.base import Classifier, ClassifierModel
from datalever.tasks.classify.metrics import (
    CLASSIFIER_METRICS,
    ExampleValues,
    accuracy,
    average_ranks,
    log_loss,
    macro_f1,
    parse_classifier_metric,
    roc_auc_ovr,
)
from datalever.tasks.classify.protocols import stratified_holdout, stratified_kfold

# --- models: a fixed score matrix, and real scikit-learn fits ---------------------------------


class FixedScores(ClassifierModel):
    """A model whose scores for the judged examples are given (a worked example)."""

    def __init__(self, scores: np.ndarray) -> None:
        self._scores = np.asarray(scores, dtype=np.float64)
        self.n_classes = self._scores.shape[1]

    def scores(self, X: np.ndarray) -> np.ndarray:
        assert len(X) == len(self._scores)
        return self._scores


class SklearnModel(ClassifierModel):
    """A fitted scikit-learn estimator, its scores laid out over all ``n_classes`` classes."""

    def __init__(self, estimator, n_classes: int, probabilistic: bool) -> None:
        self.estimator, self.n_classes, self.probabilistic = estimator, n_classes, probabilistic

    def scores(self, X: np.ndarray) -> np.ndarray:
        if self.probabilistic:
            out, raw = np.zeros((len(X), self.n_classes)), self.estimator.predict_proba(X)
        else:
            out, raw = (
                np.full((len(X), self.n_classes), -np.inf),
                self.estimator.decision_function(X),
            )
        out[:, self.estimator.classes_] = raw
        return out


class Logistic(Classifier):
    name = "logistic_test"
    probabilistic = True

    def fit(self, train: ExampleSet) -> ClassifierModel:
        est = LogisticRegression(max_iter=300).fit(train.X / 16.0, train.y)
        return SklearnModel(_Scaled(est), train.n_classes, True)


class Svm(Classifier):
    name = "svm_test"
    probabilistic = False

    def fit(self, train: ExampleSet) -> ClassifierModel:
        est = LinearSVC(C=0.1).fit(train.X / 16.0, train.y)
        return SklearnModel(_Scaled(est), train.n_classes, False)


class _Scaled:
    """Applies the training scaling of the pixels (0–16) before the estimator."""

    def __init__(self, est) -> None:
        self.est, self.classes_ = est, est.classes_

    def predict_proba(self, X):
        return self.est.predict_proba(X / 16.0)

    def decision_function(self, X):
        return self.est.decision_function(X / 16.0)


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


@pytest.fixture(scope="module")
def digits_fold(digits):
    return stratified_holdout(digits.labels, 0.25, seed=7)[0]


@pytest.fixture(scope="module")
def fitted(digits, digits_fold):
    train = digits.training_set(digits_fold.train)
    return {"logistic": (Logistic(), Logistic().fit(train)), "svm": (Svm(), Svm().fit(train))}


# --- the worked example -----------------------------------------------------------------------

# Six examples, three classes, three contributors (0, 1, 2, 0, 1, 2).
HAND_Y = np.array([0, 0, 1, 1, 2, 2])
HAND_SCORES = np.array(
    [
        [0.7, 0.2, 0.1],  # true 0, predicted 0
        [0.4, 0.5, 0.1],  # true 0, predicted 1
        [0.2, 0.6, 0.2],  # true 1, predicted 1
        [0.1, 0.4, 0.5],  # true 1, predicted 2
        [0.1, 0.1, 0.8],  # true 2, predicted 2
        [0.3, 0.2, 0.5],  # true 2, predicted 2
    ]
)
HAND_WHO = np.array([0, 1, 2, 0, 1, 2])

# accuracy: 4 of 6 right.
HAND_ACCURACY = 4 / 6
# F1 = 2tp / (n_true + n_pred): class 0: 2·1/(2+1) = 2/3; class 1: 2·1/(2+2) = 1/2;
# class 2: 2·2/(2+3) = 4/5; mean = (20/30 + 15/30 + 24/30) / 3 = 59/90.
HAND_MACRO_F1 = 59 / 90
# AUC per class, counting (positive, negative) pairs the positive wins (ties ½), of 2·4 = 8:
# class 0: positives 0.7, 0.4 beat every negative (0.2, 0.1, 0.1, 0.3): 8/8 = 1;
# class 1: positives 0.6, 0.4 vs negatives 0.2, 0.5, 0.1, 0.2: 4 + 3 = 7/8;
# class 2: positives 0.8, 0.5 vs negatives 0.1, 0.1, 0.2, 0.5: 4 + 3 + ½ (tie) = 7.5/8;
# mean = (1 + 0.875 + 0.9375) / 3 = 0.9375.
HAND_AUC = 0.9375
# log-loss: true-class probabilities 0.7, 0.4, 0.6, 0.4, 0.8, 0.5;
# -(ln 0.7 + ln 0.4 + ln 0.6 + ln 0.4 + ln 0.8 + ln 0.5) / 6 = -ln(0.7·0.4·0.6·0.4·0.8·0.5) / 6
# = -ln(0.02688) / 6 = 3.6163728 / 6 ≈ 0.6027288.
HAND_LOG_LOSS = 0.6027288


def test_worked_example_by_hand():
    pred = HAND_SCORES.argmax(axis=1)
    assert accuracy(HAND_Y, pred) == pytest.approx(HAND_ACCURACY)
    assert macro_f1(HAND_Y, pred) == pytest.approx(HAND_MACRO_F1)
    assert roc_auc_ovr(HAND_Y, HAND_SCORES) == pytest.approx(HAND_AUC)
    assert log_loss(HAND_Y, HAND_SCORES) == pytest.approx(HAND_LOG_LOSS, abs=1e-7)


def test_worked_example_matches_sklearn():
    pred = HAND_SCORES.argmax(axis=1)
    assert skm.accuracy_score(HAND_Y, pred) == pytest.approx(HAND_ACCURACY)
    assert skm.f1_score(HAND_Y, pred, average="macro") == pytest.approx(HAND_MACRO_F1)
    ovr = skm.roc_auc_score(HAND_Y, HAND_SCORES, multi_class="ovr", average="macro")
    assert ovr == pytest.approx(HAND_AUC)
    assert skm.log_loss(HAND_Y, HAND_SCORES) == pytest.approx(HAND_LOG_LOSS, abs=1e-7)


def test_worked_example_groups_by_hand():
    values = {
        m: ExampleValues(HAND_Y, HAND_SCORES, HAND_WHO, parse_classifier_metric(m))
        for m in CLASSIFIER_METRICS
    }
    everyone = np.ones(3, dtype=bool)
    assert values["accuracy"].over(everyone, everyone) == pytest.approx(HAND_ACCURACY)
    assert values["macro_f1"].over(everyone, everyone) == pytest.approx(HAND_MACRO_F1)
    assert values["auc"].over(everyone, everyone) == pytest.approx(HAND_AUC)
    assert values["log_loss"].over(everyone, everyone) == pytest.approx(HAND_LOG_LOSS, abs=1e-7)
    # Contributor 0 holds examples 0 (true 0, predicted 0) and 3 (true 1, predicted 2).
    first = np.array([True, False, False])
    assert values["accuracy"].over(first, everyone) == pytest.approx(1 / 2)
    # Classes among true ∪ predicted: 0 (F1 = 1), 1 (tp 0: F1 = 0), 2 (tp 0: F1 = 0) → 1/3;
    # class-absent from the group's truth and predictions would not count.
    assert values["macro_f1"].over(first, everyone) == pytest.approx(1 / 3)
    # Class 0: 0.7 (positive) > 0.1; class 1: 0.4 (positive) > 0.2; both 1 → 1.
    assert values["auc"].over(first, everyone) == pytest.approx(1.0)
    # -(ln 0.7 + ln 0.4) / 2 = -ln 0.28 / 2 = 1.2729657 / 2 ≈ 0.6364828.
    assert values["log_loss"].over(first, everyone) == pytest.approx(0.6364828, abs=1e-7)
    nobody = np.zeros(3, dtype=bool)
    for v in values.values():
        assert math.isnan(v.over(nobody, everyone))


def test_single_class_auc_is_nan_and_log_loss_is_clipped():
    # Examples 0 and 1 are both of class 0: no negatives to rank against.
    only_zero = np.array([0, 0])
    assert math.isnan(roc_auc_ovr(only_zero, HAND_SCORES[:2]))
    # A true-class probability of 0 costs -ln(1e-15) = 15 ln 10 ≈ 34.5387764.
    scores = np.array([[0.0, 1.0], [0.5, 0.5]])
    assert log_loss(np.array([0, 0]), scores) == pytest.approx(
        (15 * math.log(10) + math.log(2)) / 2
    )


def test_macro_f1_counts_only_classes_true_or_predicted():
    # Classes 0 and 3 only (1, 2 absent from both): class 0 tp 1, n_true 2, n_pred 1 → 2/3;
    # class 3 tp 0, n_true 0, n_pred 1 → 0; mean 1/3 — as scikit-learn without labels.
    y, pred = np.array([0, 0]), np.array([0, 3])
    assert macro_f1(y, pred) == pytest.approx(1 / 3)
    assert skm.f1_score(y, pred, average="macro") == pytest.approx(1 / 3)


# --- against scikit-learn ---------------------------------------------------------------------


def _random_case(rng: np.random.Generator, n: int, k: int, ties: bool):
    y = rng.integers(0, k, n)
    probs = rng.dirichlet(np.ones(k), n)
    if ties:  # coarse probabilities: many tied scores within each column
        probs = np.round(probs, 1) + 1e-3
        probs /= probs.sum(axis=1, keepdims=True)
    return y, probs


@pytest.mark.parametrize("seed", range(12))
def test_metrics_match_sklearn(seed):
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 7))
    y, probs = _random_case(rng, int(rng.integers(5, 200)), k, ties=seed % 2 == 0)
    pred = probs.argmax(axis=1)
    assert accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
    assert macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))
    assert log_loss(y, probs) == pytest.approx(skm.log_loss(y, probs, labels=np.arange(k)))
    present = np.unique(y)
    per_class = [skm.roc_auc_score(y == c, probs[:, c]) for c in present]
    expected = float(np.mean(per_class)) if len(present) >= 2 else math.nan
    assert roc_auc_ovr(y, probs) == pytest.approx(expected, nan_ok=True)
    if len(present) == k and k > 2:
        ovr = skm.roc_auc_score(y, probs, multi_class="ovr", average="macro")
        assert roc_auc_ovr(y, probs) == pytest.approx(ovr)


def test_metrics_match_sklearn_on_digits(digits, digits_fold, fitted):
    X, y = digits.features[digits_fold.test], digits.labels[digits_fold.test]
    for name, (_, model) in fitted.items():
        scores = model.scores(X)
        pred = model.predict(X)
        assert accuracy(y, pred) == pytest.approx(skm.accuracy_score(y, pred))
        assert macro_f1(y, pred) == pytest.approx(skm.f1_score(y, pred, average="macro"))
        per_class = [skm.roc_auc_score(y == c, scores[:, c]) for c in range(10)]
        assert roc_auc_ovr(y, scores) == pytest.approx(np.mean(per_class))
        if name == "logistic":
            assert log_loss(y, scores) == pytest.approx(skm.log_loss(y, scores))
            ovr = skm.roc_auc_score(y, scores, multi_class="ovr", average="macro")
            assert roc_auc_ovr(y, scores) == pytest.approx(ovr)
        assert accuracy(y, pred) > 0.9


def test_average_ranks_share_ties():
    values = np.array([[3.0, 1.0], [1.0, 1.0], [3.0, -np.inf], [2.0, 1.0]])
    # Column 0: 1 → 1, 2 → 2, the two 3s share (3 + 4)/2; column 1: -inf → 1, the 1s share 3.
    expected = np.array([[3.5, 3.0], [1.0, 3.0], [3.5, 1.0], [2.0, 3.0]])
    np.testing.assert_array_equal(average_ranks(values), expected)


# --- groups -----------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", CLASSIFIER_METRICS)
def test_group_values_equal_the_metric_on_the_group(metric):
    rng = np.random.default_rng(11)
    n, k, n_who = 300, 4, 40
    y, probs = _random_case(rng, n, k, ties=True)
    who = rng.integers(0, n_who, n)
    m = parse_classifier_metric(metric)
    values = ExampleValues(y, probs, who, m)
    everyone = np.ones(n_who, dtype=bool)
    for _ in range(10):
        members = rng.random(n_who) < rng.random()
        chosen = members[who]
        expected = m.value(y[chosen], probs[chosen]) if chosen.any() else math.nan
        assert values.over(members, everyone) == pytest.approx(expected, nan_ok=True)
    assert values.over(everyone, everyone) == pytest.approx(m.value(y, probs))


# --- properties -------------------------------------------------------------------------------


@st.composite
def labelled_scores(draw):
    n = draw(st.integers(1, 40))
    k = draw(st.integers(2, 5))
    y = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    flat = draw(st.lists(st.integers(-3, 3), min_size=n * k, max_size=n * k))
    return y, np.array(flat, dtype=np.float64).reshape(n, k)


@settings(max_examples=150, deadline=None)
@given(labelled_scores())
def test_properties(case):
    y, scores = case
    pred = scores.argmax(axis=1)
    assert accuracy(y, pred) == pytest.approx(np.mean(pred == y))
    assert 0.0 <= macro_f1(y, pred) <= 1.0
    auc = roc_auc_ovr(y, scores)
    if len(np.unique(y)) < 2:
        assert math.isnan(auc)
    else:
        assert 0.0 <= auc <= 1.0
        # Ranks are all AUC reads: a strictly increasing transform changes nothing, and
        # reversing every column's order mirrors each class's AUC.
        assert roc_auc_ovr(y, np.exp(scores)) == pytest.approx(auc)
        assert roc_auc_ovr(y, -scores) == pytest.approx(1.0 - auc)


# --- parsing ----------------------------------------------------------------------------------


def test_parse_metric():
    assert parse_classifier_metric(" Accuracy ").name == "accuracy"
    assert parse_classifier_metric("Macro-F1").name == "macro_f1"
    assert parse_classifier_metric("log loss").name == "log_loss"
    assert parse_classifier_metric("AUC").higher_is_better
    assert not parse_classifier_metric("log_loss").higher_is_better
    assert parse_classifier_metric("log_loss").needs_probabilities
    assert not any(parse_classifier_metric(m).needs_probabilities for m in CLASSIFIER_METRICS[:3])
    for bad in ("ndcg@10", "f1", "", 3, "x" * 100):
        with pytest.raises(DataleverError) as err:
            parse_classifier_metric(bad)  # type: ignore[arg-type]
        assert "accuracy, macro_f1, auc, log_loss" in str(err.value)


# --- the judge --------------------------------------------------------------------------------


def test_judge_scores_once_and_skips_log_loss_for_decision_values(digits, digits_fold, fitted):
    judge = ClassificationJudge(digits, digits_fold, ["accuracy", "AUC", "log_loss", "macro f1"])
    everyone = np.ones(digits.n_contributors, dtype=bool)
    learner, model = fitted["logistic"]
    out = judge.evaluate(model, learner)
    assert list(out) == ["accuracy", "auc", "log_loss", "macro_f1"]
    X, y = digits.features[digits_fold.test], digits.labels[digits_fold.test]
    scores = model.scores(X)
    assert out["accuracy"].over(everyone, everyone) == pytest.approx(
        skm.accuracy_score(y, model.predict(X))
    )
    assert out["log_loss"].over(everyone, everyone) == pytest.approx(skm.log_loss(y, scores))
    assert out["auc"].scores is out["accuracy"].scores  # one scoring, shared

    learner, model = fitted["svm"]
    out = judge.evaluate(model, learner)
    assert list(out) == ["accuracy", "auc", "macro_f1"]
    # Contributors are one per image: the group of sevens' contributors is the sevens.
    sevens = (digits.contributors["label"] == "7").to_numpy()
    is_seven = y == 7
    assert out["accuracy"].over(sevens, everyone) == pytest.approx(
        np.mean(model.predict(X)[is_seven] == 7)
    )
    assert math.isnan(out["auc"].over(sevens, everyone))  # one class: AUC undefined
    assert math.isnan(out["accuracy"].over(~everyone, everyone))


def test_judge_rejects_scores_of_the_wrong_shape(digits, digits_fold):
    judge = ClassificationJudge(digits, digits_fold, ["accuracy"])
    with pytest.raises(ValueError, match="expected"):
        judge.evaluate(FixedScores(np.zeros((len(digits_fold.test), 3))), Logistic())
    assert (
        ClassificationJudge(digits, digits_fold, ["log_loss"]).evaluate(
            FixedScores(np.zeros((1, 3))), Svm()
        )
        == {}
    )


# --- protocols --------------------------------------------------------------------------------


def _labels(seed: int = 0) -> np.ndarray:
    # Classes of 1, 2, 3, 7, 50 and 137 examples, shuffled.
    sizes = [1, 2, 3, 7, 50, 137]
    return np.random.default_rng(seed).permutation(np.repeat(np.arange(6), sizes))


@pytest.mark.parametrize("n_folds", [2, 5, 10])
def test_kfold_partitions_and_stratifies(n_folds):
    labels = _labels()
    folds = stratified_kfold(labels, n_folds, seed=3)
    assert [f.index for f in folds] == list(range(n_folds))
    tests = np.concatenate([f.test for f in folds])
    np.testing.assert_array_equal(np.sort(tests), np.arange(len(labels)))
    counts = np.bincount(labels)
    for f in folds:
        assert f.train.dtype == np.int64 and f.test.dtype == np.int64
        assert np.all(np.diff(f.train) > 0) and np.all(np.diff(f.test) > 0)
        np.testing.assert_array_equal(
            np.sort(np.concatenate([f.train, f.test])), np.arange(len(labels))
        )
        in_test = np.bincount(labels[f.test], minlength=len(counts))
        assert np.all(np.abs(in_test - counts / n_folds) < 1)
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5, 0.9])
def test_holdout_stratifies(fraction):
    labels = _labels()
    (fold,) = stratified_holdout(labels, fraction, seed=3)
    assert fold.index == 0
    np.testing.assert_array_equal(
        np.sort(np.concatenate([fold.train, fold.test])), np.arange(len(labels))
    )
    assert np.all(np.diff(fold.test) > 0) and fold.test.dtype == np.int64
    counts = np.bincount(labels)
    in_test = np.bincount(labels[fold.test], minlength=len(counts))
    assert np.all(np.abs(in_test - fraction * counts) <= 1)
    assert in_test[0] == 0  # a lone example stays in training
    assert np.all(in_test[1:] >= 1) and np.all(in_test < counts)  # every class in both


def test_splits_depend_only_on_the_seed():
    labels = _labels()
    a, b = stratified_kfold(labels, 5, seed=1), stratified_kfold(labels.copy(), 5, seed=1)
    assert all(np.array_equal(x.test, y.test) for x, y in zip(a, b, strict=True))
    c = stratified_kfold(labels, 5, seed=2)
    assert not all(np.array_equal(x.test, y.test) for x, y in zip(a, c, strict=True))
    h1, h2 = stratified_holdout(labels, 0.2, 1), stratified_holdout(labels, 0.2, 1)
    assert np.array_equal(h1[0].test, h2[0].test)
    assert not np.array_equal(h1[0].test, stratified_holdout(labels, 0.2, 2)[0].test)


def test_split_arguments_are_checked():
    with pytest.raises(DataleverError):
        stratified_kfold(_labels(), 1, seed=0)
    for bad in (0.0, 1.0, -0.5):
        with pytest.raises(DataleverError):
            stratified_holdout(_labels(), bad, seed=0)
