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
    fast = store.results(run_spec(spec, store, data=digits).run_id)
    plain = store.results(run_spec(spec, store, data=digits, path="plain").run_id)
    key = ["learner", "lever", "collective", "sample", "fold", "eval_group", "metric"]
    both = fast.merge(plain, on=key, suffixes=("_fast", "_plain"))
    assert len(both) == len(fast) and "success" in set(fast.metric)
    np.testing.assert_allclose(both.value_fast, both.value_plain, rtol=1e-9, atol=1e-12)
    success = fast[(fast.metric == "success") & (fast.eval_group == "non-participants")]
    by_size = success.groupby(["learner", "size"]).value.mean().unstack()
    assert (by_size[0.3] > 0.9).all()  # 30 % of the data planting: the signal is learnt
    assert (by_size[0.005] < by_size[0.3]).all()
    assert (success.baseline < 0.2).all()  # the trigger alone does not lead to a 3


@pytest.mark.parametrize(
    ("lever", "needle"),
    [
        ('kind = "plant"', "needs a target class"),
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
