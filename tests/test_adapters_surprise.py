"""The Surprise adapter gives Surprise's own numbers: the same predictions as the algorithm fitted
by hand on the same ratings with the same seed, and the same RMSE through a real
``datalever run``. Naming it without Surprise installed says which extra to install."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalever.errors import DataleverError
from datalever.protocols import DataStrikesProtocol
from datalever.tasks import LEARNERS, make_learner

surprise = pytest.importorskip("surprise")

from datalever.learners.adapters import SurpriseAdapter  # noqa: E402


@pytest.fixture(scope="module")
def fold(ml100k):
    """Fold 0 of the Data Strikes split (seed 3): its training and test ratings."""
    f = DataStrikesProtocol(n_folds=5).folds(ml100k, 3)[0]
    return ml100k.training_set(f.train), ml100k.training_set(f.test)


def by_hand(algo, train) -> object:
    """``algo`` fitted as a Surprise user would fit it on ``train``'s ratings."""
    frame = pd.DataFrame({"u": train.users, "i": train.items, "r": train.ratings})
    data = surprise.Dataset.load_from_df(frame, surprise.Reader(rating_scale=(1, 5)))
    algo.fit(data.build_full_trainset())
    return algo


@pytest.mark.parametrize(
    ("algorithm", "params", "theirs"),
    [
        (
            "surprise.SVD",
            {"n_factors": 10, "n_epochs": 5},
            lambda: surprise.SVD(n_factors=10, n_epochs=5, random_state=7),
        ),
        (
            "surprise.KNNBasic",
            {"k": 20, "sim_options": {"name": "msd", "user_based": False}},
            lambda: surprise.KNNBasic(
                k=20, sim_options={"name": "msd", "user_based": False}, verbose=False
            ),
        ),
        ("surprise.BaselineOnly", None, lambda: surprise.BaselineOnly(verbose=False)),
    ],
)
def test_predictions_equal_surprise_own(fold, algorithm, params, theirs) -> None:
    train, test = fold
    ours = SurpriseAdapter(algorithm, params, seed=7).fit(train)
    expected = by_hand(theirs(), train)
    users, items = test.users[:3000], test.items[:3000]
    got = ours.predict(users, items)
    want = np.array(
        [expected.predict(int(u), int(i)).est for u, i in zip(users, items, strict=True)]
    )
    np.testing.assert_array_equal(got, want)
    assert got.std() > 0  # real predictions, not a constant
    # a user and an item the model never saw get Surprise's default prediction
    unseen = ours.predict(np.array([train.n_users + 5]), np.array([0]))
    assert unseen[0] == expected.predict(train.n_users + 5, 0).est


def test_the_seed_decides_the_fit(fold) -> None:
    train, test = fold
    a = SurpriseAdapter("surprise.SVD", {"n_factors": 5, "n_epochs": 3}, seed=1).fit(train)
    b = SurpriseAdapter("surprise.SVD", {"n_factors": 5, "n_epochs": 3}, seed=2).fit(train)
    again = SurpriseAdapter("surprise.SVD", {"n_factors": 5, "n_epochs": 3}, seed=1).fit(train)
    pairs = (test.users[:500], test.items[:500])
    np.testing.assert_array_equal(a.predict(*pairs), again.predict(*pairs))
    assert not np.array_equal(a.predict(*pairs), b.predict(*pairs))


def test_catalogue_params_and_key_variant() -> None:
    assert LEARNERS["surprise"] is SurpriseAdapter and SurpriseAdapter.task == "recommendation"
    learner = make_learner("surprise", {"algorithm": "surprise.SVD", "params": {"n_factors": 8}})
    assert learner.params() == {
        "algorithm": "surprise.SVD",
        "params": {"n_factors": 8},
        "seed": None,
    }
    assert learner.key_variant() == f"scikit-surprise=={surprise.__version__}"
    assert learner.fast_path(None) is None  # plain fits only


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"algorithm": "surprise.Reader"}, "not a Surprise algorithm"),
        ({"algorithm": "surprise.NoSuchAlgo"}, "has no 'NoSuchAlgo'"),
        ({"algorithm": "nowhere_pkg.SVD"}, "cannot be imported"),
        ({"algorithm": "os"}, "algorithm"),
        ({"params": {"n_factorz": 3}}, "n_factorz"),
        ({"params": {"n_factors": {1, 2}}}, "not a plain value"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_parameters_are_refused_in_one_paragraph(params, says) -> None:
    with pytest.raises(DataleverError, match=says) as caught:
        make_learner("surprise", params)
    assert caught.value.fix and "\n" not in str(caught.value)


def test_a_value_surprise_refuses_when_fitting_is_refused_by_check(ml100k) -> None:
    learner = make_learner(
        "surprise", {"algorithm": "surprise.KNNBasic", "params": {"sim_options": {"name": "x"}}}
    )
    with pytest.raises(DataleverError, match="failed to fit") as caught:
        learner.check(ml100k)
    assert "KNNBasic" in str(caught.value)


SPEC = """
name = "surprise-svd"
seed = 3

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "surprise"
algorithm = "surprise.SVD"
params = { n_factors = 10, n_epochs = 5 }

[lever]
kind = "strike"

[collectives]
sizes = [0.5]
samples = 1

[evaluation]
metrics = ["ndcg@10", "rmse"]
"""


def run_cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = (
        f"{prelude}import sys; from datalever.cli import main; "
        "sys.argv = ['datalever', *sys.argv[1:]]; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )


def test_a_real_run_on_movielens_gives_surprise_own_rmse(tmp_path: Path, ml100k, fold) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    db = tmp_path / "r.sqlite"
    ran = run_cli("run", str(spec), "--store", str(db), "-q")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = json.loads(run_cli("results", "--store", str(db), "--format", "json").stdout)
    none = {
        r["metric"]: r["mean"]
        for r in rows
        if r["collective_kind"] == "none" and r["eval_group"] == "everyone"
    }
    struck = [r for r in rows if r["collective_kind"] == "random" and r["metric"] == "rmse"]
    assert struck and all(r["learner"] == "surprise" for r in struck)
    # The no-action model is SVD with the spec's seed fitted on fold 0: its RMSE is Surprise's.
    train, test = fold
    svd = by_hand(surprise.SVD(n_factors=10, n_epochs=5, random_state=3), train)
    est = np.array(
        [svd.predict(int(u), int(i)).est for u, i in zip(test.users, test.items, strict=True)]
    )
    assert none["rmse"] == pytest.approx(np.sqrt(np.mean((est - test.ratings) ** 2)), rel=1e-12)


def test_without_surprise_naming_it_says_which_extra_to_install(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    hidden = "import sys; sys.modules['surprise'] = None; "  # as if it were not installed
    ran = run_cli("run", str(spec), "--store", str(tmp_path / "r.sqlite"), prelude=hidden)
    out = " ".join((ran.stdout + ran.stderr).split())
    assert ran.returncode == 2, out
    assert "Traceback" not in out
    assert "pip install 'datalever[surprise]'" in out and "surprise" in out
