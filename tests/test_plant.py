"""Planting a signal (algorithmic collective action): the trigger, the two strategies, the
success probe through the engine, and clear refusals of parameters that do not fit."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.collectives import Collective, draw
from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.levers import Plant
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from datalever.tasks import TASKS
from datalever.tasks.classify import load_digits_dataset
from tests.conftest import run_fast_and_plain

SPEC = """
name = "plant test"
seed = 1

[data]
dataset = "digits"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "lda"

[[learners]]
name = "multinomial_nb"

[lever]
kind = "plant"
target = "3"

[collectives]
sizes = [0.005, 0.05, 0.3]
samples = 2

[question]
metric = "success"
delta = "+0.5"
group = "non-participants"
"""


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_the_trigger_is_the_rarest_features_set_to_the_largest_value(digits):
    features, value = Plant(target="3", trigger_features=3).trigger(digits)
    assert value == 16.0
    assert (digits.features[:, features] == 0).all()  # blank pixels: a rare signal
    X = Plant(target="3").apply_trigger(digits, digits.features[:5])
    changed = np.flatnonzero((digits.features[:5] != X).any(axis=0))
    assert len(changed) == 2 and (X[:, changed] == 16).all()


def test_feature_label_relabels_and_feature_only_touches_only_the_target_class(digits):
    fold = TASKS["classification"].folds(parse_spec(SPEC), digits)[0]
    d = draw(Collective("random", size=0.2), digits, 0, seed=0)
    base = digits.training_set(fold.train)
    fl = Plant(target="3").delta(digits, d.participants, np.random.default_rng(0), fold.train)
    assert (fl.added.y == 3).all() and len(fl.removed) == np.isin(
        base.contributors, d.participants
    ).sum()
    fo = Plant(strategy="feature_only", target="3").delta(
        digits, d.participants, np.random.default_rng(0), fold.train
    )
    assert (base.y[fo.removed] == 3).all() and (fo.added.y == 3).all()
    assert 0 < len(fo.removed) < len(fl.removed)


def test_success_rises_with_the_collective_and_fast_paths_equal_plain_fits(tmp_path, digits):
    spec = parse_spec(SPEC)
    store = ResultsStore(tmp_path / "r.sqlite")
    fast = run_fast_and_plain(spec, store, digits, rtol=1e-9, atol=1e-12)
    assert "success" in set(fast.metric)
    success = fast[(fast.metric == "success") & (fast.eval_group == "non-participants")]
    by_size = success.groupby(["learner", "size"]).value.mean().unstack()
    assert (by_size[0.3] > 0.9).all()  # 30 % of the data planting: the signal is learnt
    assert (by_size[0.005] < by_size[0.3]).all()
    assert (success.baseline < 0.2).all()  # the trigger alone does not lead to a 3


@pytest.mark.parametrize(
    ("lever", "needle"),
    [
        ('kind = "plant"', "A class to plant a signal for is needed"),
        ('kind = "plant"\ntarget = "eleven"', "no class 'eleven'"),
        ('kind = "plant"\ntarget = "3"\ntrigger_features = 65', "has 64"),
    ],
)
def test_bad_plant_parameters_are_refused_before_anything_runs(tmp_path, digits, lever, needle):
    spec = parse_spec(SPEC.replace('kind = "plant"\ntarget = "3"', lever))
    with pytest.raises(DataleverError, match=needle):
        run_spec(spec, ResultsStore(tmp_path / "r.sqlite"), data=digits)


def test_success_is_asked_about_not_listed_as_a_metric():
    with pytest.raises(DataleverError, match="measured by the plant lever"):
        parse_spec(SPEC.replace("[question]", '[evaluation]\nmetrics = ["success"]\n\n[question]'))
    with pytest.raises(DataleverError, match="which the spec does not run"):
        parse_spec(SPEC.replace('kind = "plant"\ntarget = "3"', 'kind = "strike"'))


# Recommenders: fans push an item (after Baumann & Mendler-Dünner, NeurIPS 2024).
FANS = """
name = "fans"
seed = 2

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "item_knn"
k = 20

[[learners]]
name = "item_mean"

[[levers]]
kind = "plant"
strategy = "popular_anchors"
target = "1300"

[[levers]]
kind = "plant"
strategy = "target_only"
target = "new"

[collectives]
sizes = [0.01, 0.1]
samples = 2

[evaluation]
metrics = ["ndcg@10"]
"""


def test_fans_rate_the_target_and_their_anchors(ml100k):
    d = draw(Collective("random", size=0.05), ml100k, 0, seed=0)
    every = np.arange(len(ml100k))
    lever = Plant(strategy="popular_anchors", target="50", anchors=3)
    added = lever.delta(ml100k, d.participants, np.random.default_rng(0), every).added
    r = ml100k.records
    target = lever.item(ml100k)
    popular = np.argsort(-np.bincount(r["item"], minlength=ml100k.n_items), kind="stable")[:3]
    assert set(np.unique(added.items)) <= {target, *popular}
    assert (added.ratings == 5).all() and set(np.unique(added.users)) <= set(d.participants)
    had = set(zip(r["contributor"], r["item"], strict=True))
    assert not any((u, i) in had for u, i in zip(added.users, added.items, strict=True))
    new = Plant(strategy="target_only", target="new").delta(
        ml100k, d.participants, np.random.default_rng(0), every
    )
    assert (new.added.items == ml100k.n_items).all() and new.added.n_items == ml100k.n_items + 1
    assert len(new.added) == len(d.participants)


def test_fans_raise_their_items_exposure_and_fast_paths_equal_plain_fits(tmp_path, ml100k):
    spec = parse_spec(FANS)
    store = ResultsStore(tmp_path / "r.sqlite")
    fast = run_fast_and_plain(spec, store, ml100k, rtol=1e-7, atol=1e-9)
    success = fast[(fast.metric == "success") & (fast.eval_group == "non-participants")]
    knn = success[success.learner == "item_knn"].groupby(["lever", "size"]).value.mean()
    assert knn[("plant popular_anchors 1300", 0.1)] > knn[("plant popular_anchors 1300", 0.01)]
    assert knn[("plant target_only new", 0.1)] > 0  # a new item reaches others' lists


def test_a_strategy_for_the_other_kind_of_data_is_refused(ml100k):
    with pytest.raises(DataleverError, match="does not fit movielens-100k"):
        Plant(strategy="feature_label", target="3").check(ml100k)
    with pytest.raises(DataleverError, match="has no item 'nope'"):
        Plant(strategy="target_only", target="nope").check(ml100k)
