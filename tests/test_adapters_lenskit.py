"""The LensKit adapter gives LensKit's own scores: a scorer or a pipeline trained by hand on the
same ratings with the same seed scores every (user, item) pair alike; a real ``datalever run``
on MovieLens works end to end. Without LensKit, naming it says which extra to install."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from datalever.errors import DataleverError
from datalever.protocols import DataStrikesProtocol
from datalever.tasks import LEARNERS, make_learner


@pytest.fixture(scope="module")
def lenskit():
    return pytest.importorskip("lenskit")


@pytest.fixture(scope="module")
def fold(ml100k):
    f = DataStrikesProtocol(n_folds=5).folds(ml100k, 3)[0]
    return ml100k.training_set(f.train), ml100k.training_set(f.test)


def by_hand_dataset(train):
    """The ratings as a LensKit user would load them."""
    from lenskit.data import from_interactions_df

    frame = pd.DataFrame({"user": train.users, "item": train.items, "rating": train.ratings})
    return from_interactions_df(frame, user_col="user", item_col="item", rating_col="rating")


def their_scores(score, users: np.ndarray, items: np.ndarray) -> np.ndarray:
    """LensKit's scores, one call per user, NaN (unscorable) as -inf like the adapter ranks it."""
    from lenskit.data import ItemList

    out = np.empty(len(users))
    for u in np.unique(users):
        at = np.flatnonzero(users == u)
        got = score(int(u), ItemList(item_ids=items[at]))
        assert np.array_equal(got.ids(), items[at])
        out[at] = got.scores()
    return np.where(np.isnan(out), -np.inf, out)


def pairs(train, test, n_users: int = 40):
    """Test pairs of a few users plus, for each, items no one rated in training."""
    users = np.unique(test.users)[:n_users]
    mask = np.isin(test.users, users)
    return test.users[mask], test.items[mask]


@pytest.mark.parametrize(
    ("scorer", "config"),
    [
        ("lenskit.als.BiasedMFScorer", {"embedding_size": 10, "epochs": 3}),
        ("lenskit.knn.ItemKNNScorer", {"max_nbrs": 20, "feedback": "explicit"}),
    ],
)
def test_scorer_scores_equal_lenskit_own(lenskit, fold, scorer, config) -> None:
    """The component in LensKit's own top-N pipeline, trained and run as LensKit's docs do."""
    from lenskit.pipeline import topn_pipeline
    from lenskit.training import TrainingOptions

    from datalever.learners.adapters._common import resolve

    train, test = fold
    users, items = pairs(train, test)
    ours = make_learner("lenskit", {"scorer": scorer, "params": config, "seed": 7}).fit(train)
    theirs = topn_pipeline(resolve(scorer, "the scorer")(**config), n=10)
    theirs.train(by_hand_dataset(train), TrainingOptions(rng=7))
    expected = their_scores(lambda u, il: theirs.run("scorer", query=u, items=il), users, items)
    got = ours.predict(users, items)
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(got).mean() > 0.9 and np.nanstd(got[np.isfinite(got)]) > 0


PIPELINE = """
from lenskit.knn import ItemKNNScorer
from lenskit.pipeline import topn_pipeline


def knn(max_nbrs=20):
    return topn_pipeline(ItemKNNScorer(max_nbrs=max_nbrs, feedback="explicit"), n=10)
"""


@pytest.fixture
def pipeline_module(tmp_path: Path, monkeypatch) -> Path:
    (tmp_path / "my_lenskit_pipelines.py").write_text(textwrap.dedent(PIPELINE))
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_pipeline_scores_equal_lenskit_own(lenskit, fold, pipeline_module) -> None:
    import my_lenskit_pipelines  # type: ignore[import-not-found]
    from lenskit.training import TrainingOptions

    train, test = fold
    users, items = pairs(train, test, 20)
    learner = make_learner(
        "lenskit", {"pipeline": "my_lenskit_pipelines:knn", "params": {"max_nbrs": 15}, "seed": 7}
    )
    pipe = my_lenskit_pipelines.knn(max_nbrs=15)
    pipe.train(by_hand_dataset(train), TrainingOptions(rng=7))
    expected = their_scores(lambda u, il: pipe.run("scorer", query=u, items=il), users, items)
    np.testing.assert_array_equal(learner.fit(train).predict(users, items), expected)
    assert learner.key_variant().startswith(f"lenskit=={lenskit.__version__}|source:")
    plain = make_learner("lenskit", {"scorer": "lenskit.knn.ItemKNNScorer"})
    assert plain.key_variant() == f"lenskit=={lenskit.__version__}"


@pytest.mark.parametrize(
    ("params", "says"),
    [
        ({"scorer": "lenskit.data.ItemList"}, "not a LensKit component"),
        ({"scorer": "lenskit.als.NoSuchScorer"}, "has no 'NoSuchScorer'"),
        ({"scorer": "lenskit.als.BiasedMFScorer", "params": {"epochs": "x"}}, "configuration"),
        ({"scorer": "lenskit.als.BiasedMFScorer", "pipeline": "a:b"}, "both"),
        ({"pipeline": "lenskit.pipeline:Pipeline"}, "not a function"),
    ],
)
def test_bad_parameters_are_refused(lenskit, params, says) -> None:
    with pytest.raises(DataleverError, match=says) as caught:
        make_learner("lenskit", params)
    assert caught.value.fix and "\n" not in str(caught.value)


def test_a_pipeline_without_the_node_is_refused_before_the_run(
    lenskit, ml100k, pipeline_module
) -> None:
    learner = make_learner("lenskit", {"pipeline": "my_lenskit_pipelines:knn", "node": "nope"})
    with pytest.raises(DataleverError, match="failed to score items"):
        learner.check(ml100k)


SPEC = """
name = "lenskit-mf"
seed = 3

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "lenskit"
scorer = "lenskit.als.BiasedMFScorer"
params = { embedding_size = 10, epochs = 3 }

[lever]
kind = "strike"

[collectives]
sizes = [0.5]
samples = 1

[evaluation]
metrics = ["ndcg@10"]
"""


def run_cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess:
    code = (
        f"{prelude}import sys; from datalever.cli import main; "
        "sys.argv = ['datalever', *sys.argv[1:]]; main()"
    )
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=600
    )


def test_a_real_run_on_movielens(lenskit, tmp_path: Path, ml100k) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    db = tmp_path / "r.sqlite"
    ran = run_cli("run", str(spec), "--store", str(db), "-q")
    assert ran.returncode == 0, ran.stdout + ran.stderr
    rows = json.loads(run_cli("results", "--store", str(db), "--format", "json").stdout)
    ours = [r for r in rows if r["eval_group"] == "everyone" and r["metric"] == "ndcg@10"]
    assert {r["collective_kind"] for r in ours} == {"none", "random"}
    assert all(r["learner"] == "lenskit" and 0.5 < r["mean"] < 1 for r in ours)
    assert LEARNERS["lenskit"].task == "recommendation"


def test_without_lenskit_naming_it_says_which_extra_to_install(tmp_path: Path) -> None:
    spec = tmp_path / "spec.toml"
    spec.write_text(SPEC)
    hidden = "import sys; sys.modules['lenskit'] = None; "  # as if it were not installed
    ran = run_cli("run", str(spec), "--store", str(tmp_path / "r.sqlite"), prelude=hidden)
    out = " ".join((ran.stdout + ran.stderr).split())
    assert ran.returncode == 2, out
    assert "Traceback" not in out
    assert "LensKit adapter" in out and "pip install 'datalever[lenskit]'" in out
