"""Conscious data contribution: two firms per scenario, data leverage power checked against
its definition on stored rows, the DLP table's crossings by hand, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

from datalever.analysis.dlp import dlp_table, first_crossing, format_share
from datalever.collectives import Collective, draw
from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.levers import Contribute
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from datalever.tasks import TASKS
from datalever.tasks.classify import load_digits_dataset
from tests.conftest import run_fast_and_plain

SPEC = """
name = "contribute test"
seed = 4

[data]
dataset = "digits"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "gaussian_nb"

[[levers]]
kind = "contribute"

[[levers]]
kind = "contribute"
variant = "transfer"
competitor_share = 0.1

[collectives]
sizes = [0.05, 0.3]
samples = 2

[evaluation]
metrics = ["accuracy", "log_loss"]
"""


@pytest.fixture(scope="module")
def digits():
    return load_digits_dataset()


def test_each_variant_changes_the_firms_it_says(digits):
    fold = TASKS["classification"].folds(parse_spec(SPEC), digits)[0]
    d = draw(Collective("random", size=0.2), digits, 0, seed=0)
    contributor = digits.records["contributor"].to_numpy()[fold.train]
    mine = np.isin(contributor, d.participants)
    rng = np.random.default_rng(0)
    give, compete = Contribute().deltas(digits, d.participants, rng, fold.train, seed=1)
    assert give.is_empty  # the incumbent keeps everything
    assert set(np.flatnonzero(~mine)) == set(compete.removed)  # the competitor has theirs only
    strike, alone = Contribute("strike").deltas(digits, d.participants, rng, fold.train, seed=1)
    assert set(strike.removed) == set(np.flatnonzero(mine)) and len(alone.removed) == len(mine)
    lever = Contribute("transfer", competitor_share=0.1)
    base = lever.competitor_base(digits, seed=1)
    assert base.sum() == round(0.1 * digits.n_contributors)
    assert (lever.competitor_base(digits, seed=1) == base).all()  # fixed by the spec's seed
    _, with_base = lever.deltas(digits, d.participants, rng, fold.train, seed=1)
    kept = np.setdiff1d(np.arange(len(fold.train)), with_base.removed)
    assert set(kept) == set(np.flatnonzero(mine | base[contributor]))


def test_dlp_rows_follow_their_definition_and_fast_equals_plain(tmp_path, digits):
    spec = parse_spec(SPEC)
    store = ResultsStore(tmp_path / "r.sqlite")
    fast = run_fast_and_plain(spec, store, digits, rtol=1e-9, atol=1e-12)
    acted = fast[fast.lever != "none"]
    for (_, _, _), s in acted.groupby(["lever", "collective", "sample"]):
        row = s.set_index(["eval_group", "metric"])
        incumbent = row.loc[("everyone", "accuracy")]
        competitor = row.loc[("competitor", "accuracy")]
        best, worst = incumbent.baseline, competitor.baseline  # B, and W for the competitor
        expected = 1 - (incumbent.value - competitor.value) / (best - worst)
        assert row.loc[("everyone", "dlp")].value == pytest.approx(expected, abs=1e-12)
        assert row.loc[("everyone", "dlp")].baseline == 0
        assert {"competitor-own", "company"} <= {g for g, _ in row.index}
    # Without data of its own the competitor starts from a model that knows nothing.
    alone = acted[(acted.lever == "contribute") & (acted.eval_group == "competitor")]
    assert alone[alone.metric == "accuracy"].baseline.max() < 0.2
    # Giving 30 % of the digits gets the competitor most of the way.
    dlp = acted[(acted.metric == "dlp") & (acted.eval_group == "everyone")]
    assert dlp[dlp["size"] == 0.3].value.min() > 0.5


def test_the_dlp_table_crosses_where_the_curve_does():
    sizes = np.array([0.1, 0.2, 0.4])
    # Between 0.1 (0.2) and 0.2 (0.6), 0.5 is three quarters of the way: 0.1 + 0.75 × 0.1.
    assert first_crossing(sizes, np.array([0.2, 0.6, 0.95]), 0.5) == pytest.approx(0.175)
    # Already past 0.1 at the smallest size: nothing smaller is extrapolated.
    assert first_crossing(sizes, np.array([0.2, 0.6, 0.95]), 0.1) == pytest.approx(0.1)
    assert np.isnan(first_crossing(sizes, np.array([0.2, 0.6, 0.7]), 0.9))
    assert format_share(0.1, 0.1, 0.4) == "≤ 10 %" and format_share(np.nan, 0.1, 0.4) == "> 40 %"
    assert format_share(None, 0.1, 0.4) == "n/a"  # one sample per size: no interval


def test_the_dlp_table_reads_a_run(tmp_path, digits):
    spec = parse_spec(SPEC.replace("samples = 2", "samples = 3"))
    store = ResultsStore(tmp_path / "r.sqlite")
    table = dlp_table(store.results(run_spec(spec, store, data=digits).run_id))
    assert set(table.perspective) == {"fixed holdout", "company"}
    assert set(table.threshold) == {0.5, 0.6, 0.7, 0.8, 0.9}
    ok = table.dropna(subset=["estimate", "low", "high"])
    assert not ok.empty and (ok.low <= ok.estimate).all() and (ok.estimate <= ok.high).all()


def test_bad_contribution_parameters_are_refused(tmp_path, digits):
    for share in ("1.0", "0", "-0.2"):
        with pytest.raises(DataleverError, match="competitor_share"):
            parse_spec(SPEC.replace("competitor_share = 0.1", f"competitor_share = {share}"))
    tiny = parse_spec(SPEC.replace("competitor_share = 0.1", "competitor_share = 0.0001"))
    with pytest.raises(DataleverError, match="is no one of the 1,797 contributors"):
        run_spec(tiny, ResultsStore(tmp_path / "r.sqlite"), data=digits)
    asks = SPEC.replace(
        '[[levers]]\nkind = "contribute"\nvariant = "transfer"\ncompetitor_share = 0.1\n', ""
    )
    spec = parse_spec(asks + '\n[question]\nmetric = "dlp"\ndelta = "+0.8"\n')
    assert spec.question.metric == "dlp"


def test_popularity_serves_users_a_model_never_saw_worked_by_hand():
    from datalever.data.contributions import TrainingSet
    from datalever.learners.base import Model
    from datalever.tasks.recsys import PopularityFallback

    class Fixed(Model):  # a model that scores item i as 10 + i for everyone
        n_items = 3

        def predict(self, users, items):
            return 10.0 + np.asarray(items, dtype=np.float64)

    # users 0 and 1 rated; user 2 did not. Item 0: 2 ratings (4, 2); item 1: 1 rating (5);
    # item 2: none (the training mean, 11/3).
    train = TrainingSet(
        np.array([0, 1, 0], dtype=np.int32),
        np.array([0, 0, 1], dtype=np.int32),
        np.array([4.0, 2.0, 5.0]),
        3,
        3,
    )
    model = PopularityFallback(Fixed(), train)
    np.testing.assert_allclose(model.score_users(np.array([0, 2])), [[10, 11, 12], [2, 1, 0]])
    np.testing.assert_allclose(
        model.predict(np.array([1, 2, 2, 2]), np.array([2, 0, 1, 2])), [12, 3, 5, 11 / 3]
    )


RECSYS = """
name = "contribute recsys"
seed = 4

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 1

[[learners]]
name = "ease"

[[levers]]
kind = "contribute"

[[levers]]
kind = "contribute"
newcomers = "learner"

[collectives]
sizes = [0.2]
samples = 1

[evaluation]
metrics = ["ndcg@10"]
"""


def test_firms_serve_users_they_never_saw_by_popularity_unless_told_otherwise(tmp_path, ml100k):
    store = ResultsStore(tmp_path / "r.sqlite")
    results = run_fast_and_plain(parse_spec(RECSYS), store, ml100k, rtol=1e-7, atol=1e-9)
    rows = results[(results.metric == "ndcg@10") & (results.eval_group == "competitor")]
    by = rows.set_index("lever").value
    # EASE scores a user without ratings as zero everywhere (a random order): popularity
    # serves the 80 % the competitor never saw far better.
    assert by["contribute"] > by["contribute learner"] + 0.02
    # The incumbent has everyone's data: the fallback serves no one there.
    inc = results[(results.metric == "ndcg@10") & (results.eval_group == "everyone")]
    assert inc[inc.lever != "none"].value.nunique() == 1
