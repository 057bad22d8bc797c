"""Levers on code: vandalised and junk files, a planted completion, and contribution to a
competitor, on real standard-library code, each through the engine with fast paths equal to
plain fits."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.collectives import Collective, draw
from datalever.errors import DataleverError
from datalever.levers import Plant, Poison
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from datalever.tasks import TASKS, load_data
from tests.conftest import run_fast_and_plain

SPEC = """
name = "code levers"
seed = 3

[data]
dataset = "{path}"
columns = {{ contributor = "repo", path = "path", text = "text" }}

[protocol]
kind = "holdout"

[[learners]]
name = "kneser_ney"
order = 3

{levers}

[collectives]
counts = [1, 4]
samples = 2

[evaluation]
metrics = ["bits_per_token", "top1"]
groups = ["everyone", "participants", "non-participants"]
"""


@pytest.fixture(scope="module")
def corpus(code_table):
    return load_data(parse_spec(SPEC.format(path=code_table, levers="")))


def spec_with(code_table, levers: str):
    return parse_spec(SPEC.format(path=code_table, levers=levers))


def test_vandalism_shuffles_the_participants_files_and_junk_adds_files(code_table, corpus):
    fold = TASKS["code"].folds(spec_with(code_table, ""), corpus)[0]
    d = draw(Collective("random", count=2), corpus, 0, seed=0)
    rng = np.random.default_rng(0)
    vandal = Poison(attack="vandalism").delta(corpus, d.participants, rng, fold.train)
    before = corpus.training_set(fold.train[vandal.removed])
    assert len(vandal.added) == len(before) > 0
    moved = 0
    for old, new in zip(before, vandal.added, strict=True):
        assert sorted(old) == sorted(new)
        moved += not np.array_equal(old, new)
    assert moved >= len(before) - 2  # only a file of one token (or alike) can stay put
    banner = Poison(attack="junk", examples=3, banner="# no AI training").delta(
        corpus, d.participants, rng, fold.train
    )
    assert len(banner.removed) == 0 and len(banner.added) == 6
    assert set(np.unique(banner.added.tokens)) == {int(corpus.encode(["# no AI training"])[0])}
    mean = round(corpus.n_tokens / len(corpus))
    assert (banner.added.lengths == mean).all()


def test_poison_on_code_through_the_engine(tmp_path, code_table, corpus):
    levers = (
        '[[levers]]\nkind = "poison"\nattack = "vandalism"\n\n'
        '[[levers]]\nkind = "poison"\nattack = "junk"\nexamples = 5\n'
    )
    spec = spec_with(code_table, levers)
    fast = run_fast_and_plain(spec, ResultsStore(tmp_path / "r.sqlite"), corpus)
    own = fast[
        (fast.eval_group == "participants")
        & (fast.metric == "bits_per_token")
        & fast.lever.str.contains("vandalism")
    ]
    assert (own.value > own.baseline).all()  # shuffled code teaches nothing about their style


def test_a_planted_completion_follows_its_trigger_in_others_code(tmp_path, code_table, corpus):
    levers = (
        '[lever]\nkind = "plant"\nstrategy = "trigger_completion"\ntarget = "import antigravity"\n'
    )
    spec = spec_with(code_table, levers)
    fast = run_fast_and_plain(spec, ResultsStore(tmp_path / "r.sqlite"), corpus)
    success = fast[(fast.metric == "success") & (fast.eval_group == "non-participants")]
    assert (success.baseline == 0).all()  # no model completes a trigger it never saw
    by_count = success.groupby("count").value.mean()
    assert by_count[4] > 0.5 and by_count[4] >= by_count[1]


def test_contributing_code_to_a_competitor(tmp_path, code_table, corpus):
    spec = spec_with(code_table, '[lever]\nkind = "contribute"\n')
    fast = run_fast_and_plain(spec, ResultsStore(tmp_path / "r.sqlite"), corpus)
    dlp = fast[(fast.metric == "dlp") & (fast.eval_group == "everyone")]
    by_count = dlp.groupby("count").value.mean()
    assert 0 < by_count[1] < by_count[4] < 1


def test_bad_code_lever_parameters_are_clear_errors(corpus):
    with pytest.raises(DataleverError, match="needs the completion"):
        Plant(strategy="trigger_completion").check(corpus)
    with pytest.raises(DataleverError, match="not Python that tokenizes"):
        Plant(strategy="trigger_completion", target="def (:").check(corpus)
    with pytest.raises(DataleverError, match="does not fit"):
        Plant(strategy="feature_label", target="3").check(corpus)
    with pytest.raises(DataleverError, match="alters recommendation"):
        Poison(attack="shilling", target="1").check(corpus)
