"""Implicit feedback: a table of interactions with no rating column loads as interactions of
value 1, runs with ranking protocols, learners and metrics, and anything that needs rating
values is refused before a run starts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from datalever.data.tabular import load_table
from datalever.store import ResultsStore
from tests.test_cli import assert_clear_error, datalever

SPEC = """
name = "implicit"
seed = 2

[data]
dataset = "{path}"
columns = {{ user = "who", item = "what", timestamp = "when" }}

[protocol]
{protocol}

{learners}

[lever]
kind = "{lever}"

[collectives]
sizes = [0.2]
samples = 2

[evaluation]
metrics = [{metrics}]
groups = ["everyone", "participants"]
reference = "{reference}"
"""
EASE_AND_POPULARITY = '[[learners]]\nname = "ease"\n\n[[learners]]\nname = "popularity"'


@pytest.fixture(scope="module")
def plays(tmp_path_factory, ml100k) -> str:
    """MovieLens-100K's ratings of 4 and 5 as plays: who watched what, when (no rating)."""
    r = ml100k.records
    liked = r[r["rating"] >= 4]
    frame = pd.DataFrame(
        {
            "who": ml100k.contributor_ids[liked["contributor"].to_numpy()],
            "what": ml100k.item_ids[liked["item"].to_numpy()],
            "when": liked["timestamp"].to_numpy(),
        }
    )
    path = tmp_path_factory.mktemp("implicit") / "plays.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_a_small_table_without_ratings_is_implicit(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("user,item\nu1,a\nu1,b\nu2,a\nu3,c\nu3,a\n")
    data = load_table(path)
    assert data.implicit and len(data) == 5
    assert data.n_contributors == 3 and data.n_items == 3
    assert np.all(data.records["rating"].to_numpy() == 1.0)
    assert any("implicit feedback" in note for note in data.notes)
    rated = tmp_path / "rated.csv"
    rated.write_text("user,item,rating\nu1,a,4\nu2,a,2\n")
    assert not load_table(rated).implicit


def test_a_run_on_implicit_plays(plays, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SPEC.format(
            path=plays,
            protocol='kind = "leave-one-out"',
            learners=EASE_AND_POPULARITY,
            metrics='"ndcg@10", "recall@10"',
            reference="popularity",
            lever="strike",
        )
    )
    db = tmp_path / "r.sqlite"
    done = datalever("run", str(spec), "--store", str(db), "-q", "--jobs", "1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "implicit feedback" in done.stderr
    store = ResultsStore(db)
    results = store.results(store.latest_run())
    assert set(results["learner"]) == {"ease", "popularity"}
    values = results["value"].to_numpy(dtype=float)
    assert np.isfinite(values).all() and ((values >= 0) & (values <= 1)).all()
    ease = results[(results["learner"] == "ease") & (results["metric"] == "ndcg@10")]
    assert ease["value"].mean() > 0.01  # far above a random list of 10 among ~1,400 items


@pytest.mark.parametrize(
    ("protocol", "learners", "metrics", "reference", "needles", "lever"),
    [
        ('kind = "temporal"', EASE_AND_POPULARITY, '"ndcg@10", "rmse"', "popularity",
         ("rmse", "needs rating estimates"), "strike"),
        ('kind = "holdout"', '[[learners]]\nname = "biased_mf"', '"ndcg@10"', "popularity",
         ("implicit feedback", "biased_mf"), "strike"),
        ('kind = "data-strikes"', EASE_AND_POPULARITY, '"ndcg@10"', "popularity",
         ("implicit feedback", "data-strikes"), "strike"),
        ('kind = "holdout"', EASE_AND_POPULARITY, '"ndcg@10"', "item_mean",
         ("implicit feedback", "item_mean"), "strike"),
        ('kind = "holdout"', EASE_AND_POPULARITY, '"ndcg@10"', "popularity",
         ("implicit feedback", "poison (vandalism) writes rating values"), "poison"),
    ],
)  # fmt: skip
def test_what_needs_ratings_is_refused_before_the_run(
    plays, tmp_path, protocol, learners, metrics, reference, needles, lever
):
    spec = tmp_path / "spec.toml"
    spec.write_text(
        SPEC.format(
            path=plays,
            protocol=protocol,
            learners=learners,
            metrics=metrics,
            reference=reference,
            lever=lever,
        )
    )
    db = tmp_path / "r.sqlite"
    result = datalever("run", str(spec), "--store", str(db), "-q")
    assert_clear_error(result, *needles)
    assert not db.exists() or ResultsStore(db).runs().empty


def test_data_info_says_the_feedback_is_implicit(plays):
    shown = datalever("data", "info", plays, "--columns", "user=who,item=what,timestamp=when")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "feedback:     implicit" in shown.stdout and "rating scale" not in shown.stdout
