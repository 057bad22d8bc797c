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
    features, value = Plant(target="3", trigger_features=3).trigger_of(digits)
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


# Erasing a signal: the collective's examples carry the trigger with their own labels.
def test_erasure_keeps_labels_and_teaches_the_model_to_ignore_the_trigger(tmp_path, digits):
    fold = TASKS["classification"].folds(parse_spec(SPEC), digits)[0]
    d = draw(Collective("random", size=0.2), digits, 0, seed=0)
    base = digits.training_set(fold.train)
    erase = Plant(strategy="erase").delta(
        digits, d.participants, np.random.default_rng(0), fold.train
    )
    np.testing.assert_array_equal(erase.added.y, base.y[erase.removed])
    shifted = Plant(strategy="erase").apply_trigger(digits, base.X[erase.removed])
    np.testing.assert_array_equal(erase.added.X, shifted)
    images = base.X[erase.removed].reshape(-1, 8, 8)
    np.testing.assert_array_equal(shifted.reshape(-1, 8, 8)[:, :, 1:], images[:, :, :-1])
    assert (shifted.reshape(-1, 8, 8)[:, :, 0] == 0).all()
    spec = parse_spec(
        SPEC.replace('target = "3"', 'strategy = "erase"').replace(
            'delta = "+0.5"', 'delta = "=0.9"'
        )
    )
    fast = run_fast_and_plain(spec, ResultsStore(tmp_path / "r.sqlite"), digits)
    success = fast[(fast.metric == "success") & (fast.eval_group == "non-participants")]
    by_size = success.groupby(["learner", "size"]).value.mean().unstack()
    # Without action a one-pixel shift moves many predictions; once 30 % of the images carry
    # it with their own labels, far fewer.
    before = success.groupby("learner").baseline.first()
    assert (before < 0.8).all()
    assert (by_size[0.3] > before + 0.1).all() and (by_size[0.005] < by_size[0.3]).all()
    assert by_size.loc["lda", 0.3] > 0.8
    assert "success_bound" not in set(fast.metric)  # the bound is the feature-label strategy's


def test_erasure_takes_no_target_and_shifts_only_square_images(digits):
    with pytest.raises(DataleverError, match="no target class"):
        Plant(strategy="erase", target="3").check(digits)
    Plant(strategy="erase", transformation="trigger").check(digits)
    narrow = load_digits_dataset()
    narrow.features = narrow.features[:, :63]
    with pytest.raises(DataleverError, match="not a square image"):
        Plant(strategy="erase").check(narrow)


def test_feature_label_runs_report_the_bound_for_a_bayes_optimal_learner(tmp_path, digits):
    from datalever.levers.aca import planting_lower_bound

    store = ResultsStore(tmp_path / "r.sqlite")
    results = store.results(run_spec(parse_spec(SPEC), store, data=digits).run_id)
    bound = results[results.metric == "success_bound"]
    assert set(bound.eval_group) == {"everyone"} and len(bound) > 0
    # The trigger's pixels are blank in every digit (xi = 0): any collective succeeds against
    # a Bayes-optimal learner, so the bound is 1 wherever the collective wrote anything.
    assert (bound[bound.n_participants > 0].value == 1.0).all()
    assert planting_lower_bound(0.1, xi=0.01) == pytest.approx(1 - 0.9 / 0.1 * 0.01)


def test_amplification_compares_the_target_with_items_of_as_many_records(ml100k):
    from datalever.core.delta import Delta
    from datalever.data.contributions import TrainingSet
    from datalever.levers.shilling import Amplification, TargetItem

    fold = TASKS["recommendation"].folds(parse_spec(FANS), ml100k)[0]
    probe = TargetItem(ml100k, fold, target=ml100k.n_items, success=True)  # a new item
    train_items = ml100k.records["item"].to_numpy()[fold.train]
    counts = np.bincount(train_items, minlength=ml100k.n_items)
    assert set(probe.peers(None)) == set(np.flatnonzero(counts == 0))  # the target has none
    fans = TrainingSet(
        np.array([0, 1, 2], dtype=np.int32),
        np.full(3, ml100k.n_items, dtype=np.int32),
        np.full(3, 5.0),
        ml100k.n_contributors,
        ml100k.n_items + 1,
    )
    peers = probe.peers(Delta(np.zeros(0, dtype=np.int64), fans))
    assert len(peers) and (counts[peers] == 3).all()
    # Worked by hand: 4 users; the target is in 2 of their lists; peers 7 and 8 appear 1 time
    # in 4 lists × 2 peers = 1/8; amplification = (2/4) / (1/8) = 4.
    top = np.array([[5, 7], [5, 1], [2, 3], [4, 6]])
    hit = np.array([1.0, 1.0, 0.0, 0.0])
    amp = Amplification(hit, top, np.array([7, 8]), np.ones(4, dtype=bool))
    assert amp.over(np.ones(4, dtype=bool), np.ones(4, dtype=bool)) == pytest.approx(4.0)
    nobody = Amplification(hit, top, np.array([9]), np.ones(4, dtype=bool))
    assert np.isnan(nobody.over(np.ones(4, dtype=bool), np.ones(4, dtype=bool)))
