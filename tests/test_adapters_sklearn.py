"""Any estimator with scikit-learn's interface is a classifier: those whose fit takes no
sample weights (k-nearest neighbours), another library's estimator that does not derive from
scikit-learn's base class, and one that only predicts. Scores equal the estimator's own, the
package version is part of scenario keys, and a real ``datalever run`` on digits works."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import sklearn
from sklearn.linear_model import Perceptron
from sklearn.neighbors import KNeighborsClassifier
from sklearn.tree import DecisionTreeClassifier

from datalever.errors import DataleverError
from datalever.tasks import make_learner
from datalever.tasks.classify.examples import load_digits_dataset


@pytest.fixture(scope="module")
def digits():
    data = load_digits_dataset()
    rng = np.random.default_rng(0)
    order = rng.permutation(len(data.records))
    train = data.training_set(np.sort(order[:1200]))
    return data, train, data.features[order[1200:]]


def test_an_estimator_without_sample_weight_scores_as_scikit_learn(digits) -> None:
    _, train, test = digits
    learner = make_learner(
        "sklearn",
        {"estimator": "sklearn.neighbors.KNeighborsClassifier", "params": {"n_neighbors": 3}},
    )
    assert learner.probabilistic and learner.scoring == "predict_proba"
    theirs = KNeighborsClassifier(n_neighbors=3).fit(train.X, train.y)
    np.testing.assert_array_equal(learner.fit(train).scores(test), theirs.predict_proba(test))
    assert learner.key_variant() == f"scikit-learn=={sklearn.__version__}"


FOREIGN = """
import numpy as np
from sklearn.tree import DecisionTreeClassifier


class TreeVotes:
    '''Another library's classifier: scikit-learn's interface, not its base class, and no
    class probabilities (only predictions).'''

    def __init__(self, max_depth=None, random_state=None):
        self.max_depth, self.random_state = max_depth, random_state

    def fit(self, X, y):
        self.tree_ = DecisionTreeClassifier(
            max_depth=self.max_depth, random_state=self.random_state
        ).fit(X, y)
        self.classes_ = self.tree_.classes_
        return self

    def predict(self, X):
        return self.tree_.predict(X)
"""


@pytest.fixture
def foreign(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "foreign_estimators.py").write_text(textwrap.dedent(FOREIGN))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_a_foreign_estimator_that_only_predicts_scores_by_votes(digits, foreign) -> None:
    _, train, test = digits
    learner = make_learner(
        "sklearn",
        {"estimator": "foreign_estimators.TreeVotes", "params": {"max_depth": 6}, "seed": 4},
    )
    assert learner.scoring == "predict" and not learner.probabilistic
    scores = learner.fit(train).scores(test)
    predicted = DecisionTreeClassifier(max_depth=6, random_state=4).fit(train.X, train.y)
    np.testing.assert_array_equal(scores.argmax(axis=1), predicted.predict(test))
    assert set(np.unique(scores)) == {0.0, 1.0}  # one vote per example
    assert learner.key_variant().startswith("source:")  # the user's own file, by its content


def test_decision_values_when_there_are_no_probabilities(digits) -> None:
    _, train, test = digits
    learner = make_learner("sklearn", {"estimator": "sklearn.linear_model.Perceptron", "seed": 2})
    assert learner.scoring == "decision_function" and not learner.probabilistic
    theirs = Perceptron(random_state=2).fit(train.X, train.y)
    np.testing.assert_array_equal(learner.fit(train).scores(test), theirs.decision_function(test))


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"estimator": "sklearn.linear_model.LinearRegression"}, "not a scikit-learn classifier"),
        ({"estimator": "sklearn.preprocessing.StandardScaler"}, "no predict"),
        (
            {"estimator": "sklearn.neighbors.KNeighborsClassifier", "params": {"k": 3}},
            'parameter.s. "k"',
        ),
    ],
)
def test_what_is_not_a_classifier_is_refused(params, says) -> None:
    with pytest.raises(DataleverError, match=says) as caught:
        make_learner("sklearn", params)
    assert caught.value.fix


SPEC = """
name = "digits-knn"
seed = 1

[data]
dataset = "digits"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "sklearn"
estimator = "sklearn.neighbors.KNeighborsClassifier"
params = { n_neighbors = 5 }

[lever]
kind = "poison"
attack = "label_flip"

[collectives]
sizes = [0.3]
samples = 1

[evaluation]
metrics = ["accuracy", "log_loss"]
"""


def test_a_real_run_on_digits(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    db = tmp_path / "r.sqlite"

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "datalever", *args], capture_output=True, text=True, timeout=600
        )

    ran = cli("run", str(spec), "--store", str(db), "-q")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = json.loads(cli("results", "--store", str(db), "--format", "json").stdout)
    acc = {
        r["collective_kind"]: r["mean"]
        for r in rows
        if r["metric"] == "accuracy" and r["eval_group"] == "everyone"
    }
    assert acc["none"] > 0.95  # k-NN on digits
    assert acc["random"] < acc["none"]  # flipping 30 % of the labels costs accuracy
