"""A user's own model as a learner: a Python function ``fit(train) -> predict`` or a PyTorch
module with its training function, for recommendation and classification. Their scores equal
the user's code run by hand with the same data and seed, bad code is refused in one paragraph,
the code's content is part of scenario keys, and real ``datalever run``s on MovieLens and
digits work end to end."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from datalever.errors import DataleverError
from datalever.protocols import DataStrikesProtocol
from datalever.tasks import LEARNERS, make_learner
from datalever.tasks.classify.examples import load_digits_dataset

torch = pytest.importorskip("torch")

USER_MODELS = """
import numpy as np
import torch


def item_bias(train, reg=10.0):
    '''Damped item means: a recommender written as one function.'''
    mu = train.ratings.mean()
    sums = np.bincount(train.items, weights=train.ratings - mu, minlength=train.n_items)
    bias = sums / (np.bincount(train.items, minlength=train.n_items) + reg)

    def predict(users, items):
        return mu + bias[items]

    return predict


class MF(torch.nn.Module):
    def __init__(self, n_users, n_items, dim):
        super().__init__()
        self.user = torch.nn.Embedding(n_users, dim)
        self.item = torch.nn.Embedding(n_items, dim)
        self.bias = torch.nn.Embedding(n_items, 1)
        for e in (self.user, self.item):
            torch.nn.init.normal_(e.weight, std=0.1)
        torch.nn.init.zeros_(self.bias.weight)

    def forward(self, users, items):
        dot = (self.user(users) * self.item(items)).sum(1)
        return 3.5 + dot + self.bias(items).squeeze(1)


def make_mf(n_users, n_items, dim=8):
    return MF(n_users, n_items, dim)


def train_mf(module, train, epochs=3, lr=0.05, seed=0):
    g = torch.Generator().manual_seed(seed)
    users = torch.as_tensor(train.users, dtype=torch.long)
    items = torch.as_tensor(train.items, dtype=torch.long)
    ratings = torch.as_tensor(train.ratings, dtype=torch.float32)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    for _ in range(epochs):
        for batch in torch.randperm(len(users), generator=g).split(8192):
            opt.zero_grad()
            loss = ((module(users[batch], items[batch]) - ratings[batch]) ** 2).mean()
            loss.backward()
            opt.step()


def logistic(train, C=1.0, seed=0):
    '''A classifier written as one function (scikit-learn inside).'''
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=C, max_iter=300, random_state=seed).fit(train.X, train.y)

    def predict(X):
        out = np.zeros((len(X), train.n_classes))
        out[:, model.classes_] = model.predict_proba(X)
        return out

    return predict


def make_mlp(n_features, n_classes, hidden=32):
    return torch.nn.Sequential(
        torch.nn.Linear(n_features, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, n_classes)
    )


def train_mlp(module, train, epochs=40, lr=0.01):
    X = torch.as_tensor(train.X, dtype=torch.float32)
    y = torch.as_tensor(train.y, dtype=torch.long)
    opt = torch.optim.Adam(module.parameters(), lr=lr)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(module(X), y).backward()
        opt.step()
    return module


def returns_nothing(train):
    return None


def wrong_shape(train):
    return lambda X: np.zeros(len(X))


def raises(train):
    raise RuntimeError("the model's own bug")
"""


@pytest.fixture
def user_models(tmp_path: Path, monkeypatch):
    """The user's module, importable as ``user_models`` (a fresh import per test)."""
    (tmp_path / "user_models.py").write_text(textwrap.dedent(USER_MODELS))
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("user_models", None)
    yield importlib.import_module("user_models")
    sys.modules.pop("user_models", None)


@pytest.fixture(scope="module")
def fold(ml100k):
    f = DataStrikesProtocol(n_folds=5).folds(ml100k, 3)[0]
    return ml100k.training_set(f.train), ml100k.training_set(f.test)


@pytest.fixture(scope="module")
def digits():
    data = load_digits_dataset()
    order = np.random.default_rng(0).permutation(len(data.records))
    return data.training_set(np.sort(order[:1200])), data.features[order[1200:]]


def test_python_recommender_scores_are_the_function_own(user_models, fold) -> None:
    train, test = fold
    learner = make_learner(
        "python_recommender", {"function": "user_models:item_bias", "params": {"reg": 5.0}}
    )
    got = learner.fit(train).predict(test.users, test.items)
    np.testing.assert_array_equal(
        got, user_models.item_bias(train, reg=5.0)(test.users, test.items)
    )
    assert LEARNERS["python_recommender"].task == "recommendation"
    assert learner.params()["params"] == {"reg": 5.0}


def test_torch_recommender_equals_the_module_trained_by_hand(user_models, fold) -> None:
    train, test = fold
    params = {
        "model": "user_models:make_mf",
        "train": "user_models:train_mf",
        "model_params": {"dim": 4},
        "train_params": {"epochs": 2},
        "seed": 11,
    }
    got = make_learner("torch_recommender", params).fit(train).predict(test.users, test.items)
    torch.manual_seed(11)
    module = user_models.make_mf(train.n_users, train.n_items, dim=4)
    user_models.train_mf(module, train, epochs=2, seed=11)
    with torch.no_grad():
        want = module.eval()(
            torch.as_tensor(test.users, dtype=torch.long),
            torch.as_tensor(test.items, dtype=torch.long),
        )
    np.testing.assert_array_equal(got, want.double().numpy())
    rmse = np.sqrt(np.mean((got - test.ratings) ** 2))
    assert 0.8 < rmse < 1.3  # a trained model, not noise
    other = make_learner("torch_recommender", {**params, "seed": 12}).fit(train)
    assert not np.array_equal(other.predict(test.users, test.items), got)


def test_python_classifier_scores_are_the_function_own(user_models, digits) -> None:
    train, test = digits
    learner = make_learner("python_classifier", {"function": "user_models:logistic", "seed": 3})
    assert learner.probabilistic
    expected = user_models.logistic(train, seed=3)(test)
    np.testing.assert_array_equal(learner.fit(train).scores(test), expected)


def test_torch_classifier_equals_the_module_trained_by_hand(user_models, digits) -> None:
    train, test = digits
    params = {"model": "user_models:make_mlp", "train": "user_models:train_mlp", "seed": 5}
    model = make_learner("torch_classifier", params).fit(train)
    torch.manual_seed(5)
    module = user_models.train_mlp(user_models.make_mlp(train.n_features, train.n_classes), train)
    with torch.no_grad():
        logits = module.eval()(torch.as_tensor(test, dtype=torch.float32)).double()
    np.testing.assert_allclose(model.scores(test), logits.softmax(1).numpy(), rtol=1e-12)
    assert (model.predict(test) == logits.argmax(1).numpy()).all()
    raw = make_learner("torch_classifier", {**params, "probabilistic": False}).fit(train)
    np.testing.assert_array_equal(raw.scores(test), logits.numpy())


def test_the_user_code_is_part_of_the_key(user_models, tmp_path: Path) -> None:
    learner = make_learner("python_recommender", {"function": "user_models:item_bias"})
    before = learner.key_variant()
    assert before.startswith("source:")
    (tmp_path / "user_models.py").write_text(textwrap.dedent(USER_MODELS) + "\n# edited\n")
    sys.modules.pop("user_models")
    assert (
        make_learner("python_recommender", {"function": "user_models:item_bias"}).key_variant()
        != before
    )
    torch_key = make_learner(
        "torch_classifier", {"model": "user_models:make_mlp", "train": "user_models:train_mlp"}
    ).key_variant()
    assert torch_key.startswith(f"torch=={torch.__version__}|source:")


@pytest.mark.parametrize(
    ("name", "params", "says"),
    [
        ("python_recommender", {"function": "user_models:nope"}, "has no 'nope'"),
        ("python_recommender", {"function": "user_models:MF"}, "not a function"),
        ("python_recommender", {"function": "no_such_module:fit"}, "cannot be imported"),
        ("python_recommender", {"function": "user_models:item_bias", "params": {"x": 1}}, "x"),
        (
            "python_classifier",
            {"function": "user_models:logistic", "params": {"C": [{1}]}},
            "plain",
        ),
        (
            "torch_classifier",
            {"model": "user_models:make_mlp", "train": "user_models:nope"},
            "nope",
        ),
        (
            "torch_recommender",
            {"model": "user_models:make_mf", "train": "user_models:train_mf", "device": "tpu"},
            "device",
        ),
    ],
)
def test_bad_parameters_are_refused(user_models, name, params, says) -> None:
    with pytest.raises(DataleverError, match=says) as caught:
        make_learner(name, params)
    assert caught.value.fix and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("function", "says"),
    [
        ("user_models:returns_nothing", "not a predict function"),
        ("user_models:wrong_shape", r"shape \(\d+,\) for \d+ examples of 10 classes"),
        ("user_models:raises", "RuntimeError: .the model's own bug"),
    ],
)
def test_bad_user_code_fails_in_one_paragraph(user_models, digits, function, says) -> None:
    train, test = digits
    with pytest.raises(DataleverError, match=says) as caught:
        make_learner("python_classifier", {"function": function}).fit(train).scores(test)
    assert function in str(caught.value)


RECSYS_SPEC = """
name = "own-recommenders"
seed = 3

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "python_recommender"
function = "user_models:item_bias"

[[learners]]
name = "torch_recommender"
model = "user_models:make_mf"
train = "user_models:train_mf"
model_params = { dim = 4 }
train_params = { epochs = 2 }

[lever]
kind = "strike"

[collectives]
sizes = [0.5]
samples = 1

[evaluation]
metrics = ["ndcg@10", "rmse"]
"""

DIGITS_SPEC = """
name = "own-classifiers"
seed = 1

[data]
dataset = "digits"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "python_classifier"
function = "user_models:logistic"

[[learners]]
name = "torch_classifier"
model = "user_models:make_mlp"
train = "user_models:train_mlp"

[lever]
kind = "poison"
attack = "label_flip"

[collectives]
sizes = [0.4]
samples = 1

[evaluation]
metrics = ["accuracy", "log_loss"]
"""


def cli(folder: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
    return subprocess.run(
        [sys.executable, "-m", "datalever", *args],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


@pytest.mark.parametrize(
    ("spec", "metric", "learners"),
    [
        (RECSYS_SPEC, "rmse", {"python_recommender", "torch_recommender"}),
        (DIGITS_SPEC, "accuracy", {"python_classifier", "torch_classifier"}),
    ],
)
def test_real_runs(user_models, ml100k, tmp_path: Path, spec, metric, learners) -> None:
    path = tmp_path / "spec.toml"
    path.write_text(spec)
    db = tmp_path / "r.sqlite"
    ran = cli(tmp_path, "run", str(path), "--store", str(db), "-q")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = json.loads(cli(tmp_path, "results", "--store", str(db), "--format", "json").stdout)
    seen = {
        (r["learner"], r["collective_kind"]): r["mean"]
        for r in rows
        if r["metric"] == metric and r["eval_group"] == "everyone"
    }
    assert {learner for learner, _ in seen} == learners
    for learner in learners:
        assert np.isfinite(seen[(learner, "none")]) and np.isfinite(seen[(learner, "random")])
    if metric == "accuracy":
        assert all(seen[(lr, "none")] > 0.85 for lr in learners)
