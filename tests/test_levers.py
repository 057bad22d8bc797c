"""Levers as objects: the catalogue, typed parameters, several levers in one spec sharing draws,
their parameters in the store, and the example spec's published numbers unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.levers import LEVERS, Boycott, Strike, lever_class, make_lever
from datalever.scenarios import plan
from datalever.spec import load_spec, parse_spec
from datalever.store import ResultsStore
from datalever.tasks import load_data
from tests.conftest import SMALL_SPEC

ROOT = Path(__file__).resolve().parent.parent
TWO_LEVERS = SMALL_SPEC.replace(
    '[lever]\nkind = "strike"',
    '[[levers]]\nkind = "strike"\n\n[[levers]]\nkind = "boycott"\nfraction = 0.5',
)


def test_the_catalogue_builds_checked_levers():
    assert set(LEVERS) == {"strike", "boycott", "poison", "plant", "contribute", "optout"}
    assert make_lever("strike") == Strike() and make_lever("boycott") == Boycott()
    assert make_lever("boycott", {"fraction": 0.5}).label == "boycott 0.5"
    assert Strike().key() == ["strike", 1.0]  # as scenario keys have always held it
    with pytest.raises(DataleverError, match="The lever 'strike' has no parameter"):
        make_lever("strike", {"colour": "red"})
    with pytest.raises(DataleverError, match="fraction must be a finite number above 0"):
        Strike(True)


def test_a_lever_is_written_the_same_with_or_without_its_defaults():
    explicit = parse_spec(
        SMALL_SPEC.replace('kind = "strike"\n', 'kind = "strike"\nfraction = 1\n')
    )
    assert explicit.run_id() == parse_spec(SMALL_SPEC).run_id()


def test_several_levers_share_draws_and_the_no_action_scenarios():
    both, strike = parse_spec(TWO_LEVERS), parse_spec(SMALL_SPEC)
    both_keys = [s.key for s in plan(both, "c")]
    strike_keys = [s.key for s in plan(strike, "c")]
    assert set(strike_keys) < set(both_keys)  # the strike scenarios are the same scenarios
    assert len(both_keys) == len(set(both_keys))
    per_learner_fold = 1 + 2 * 3 * 2  # no action + levers × collectives × samples
    assert len(both_keys) == 2 * 2 * per_learner_fold
    labels = {s.lever.label for s in plan(both, "c") if not s.is_baseline}
    assert labels == {"strike", "boycott 0.5"}


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (TWO_LEVERS + '\n[lever]\nkind = "strike"\n', "both a [lever] table and [[levers]]"),
        (
            TWO_LEVERS.replace("fraction = 0.5", "fraction = 1.0").replace("boycott", "strike"),
            "lists the lever 'strike' twice",
        ),
        (TWO_LEVERS.replace('kind = "boycott"', 'kind = "flood"'), "Unknown lever 'flood'"),
        (TWO_LEVERS.replace("fraction = 0.5", "fraction = 0"), "fraction must be"),
    ],
)
def test_bad_levers_are_refused(text, needle):
    with pytest.raises(DataleverError) as refused:
        parse_spec(text)
    assert needle in str(refused.value)


def test_levers_run_side_by_side_and_the_store_keeps_their_parameters(tmp_path, ml100k):
    spec = parse_spec(TWO_LEVERS.replace("run_folds = 2", "run_folds = 1"))
    store = ResultsStore(tmp_path / "r.sqlite")
    report = run_spec(spec, store, data=ml100k)
    df = store.results(report.run_id)
    assert set(df["lever"]) == {"none", "strike", "boycott 0.5"}
    params = {lever: set(g["lever_params"].dropna()) for lever, g in df.groupby("lever")}
    assert params["boycott 0.5"] == {json.dumps({"fraction": 0.5})}
    assert params["strike"] == {json.dumps({"fraction": 1.0})}
    assert params["none"] == set()  # no lever acted
    # The boycotters leave evaluation; the strikers stay in it.
    groups = {lever: set(g["eval_group"]) for lever, g in df.groupby("lever")}
    assert "participants" in groups["strike"] and "participants" not in groups["boycott 0.5"]
    # The strike's numbers are those of a strike-only run of the same draws.
    alone = ResultsStore(tmp_path / "alone.sqlite")
    strike_only = parse_spec(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"))
    only = alone.results(run_spec(strike_only, alone, data=ml100k).run_id)
    cols = ["key", "eval_group", "metric", "value"]
    mine = df[df["lever"].isin(["strike", "none"])][cols].sort_values(cols[:3])
    theirs = only[cols].sort_values(cols[:3])
    np.testing.assert_array_equal(mine["key"].to_numpy(), theirs["key"].to_numpy())
    np.testing.assert_allclose(mine["value"].astype(float), theirs["value"].astype(float))


@pytest.mark.slow
def test_the_example_specs_published_numbers_are_unchanged(tmp_path, ml100k):
    """The README's Data Strikes table (nDCG@10 and RMSE for everyone, mean over samples)."""
    from datalever.analysis import summarise

    spec = load_spec(ROOT / "examples" / "data-strikes-ml100k.toml")
    store = ResultsStore(tmp_path / "r.sqlite")
    summary = summarise(store.results(run_spec(spec, store, data=ml100k, jobs=2).run_id))
    everyone = summary[summary["eval_group"] == "everyone"]

    def curve(metric: str) -> list[float]:
        rows = everyone[everyone["metric"] == metric].sort_values("size", na_position="first")
        return [round(float(v), 4) for v in rows["mean"]]

    assert curve("ndcg@10") == [0.7746, 0.7719, 0.7684, 0.7631, 0.7423]
    assert curve("rmse") == [0.9337, 0.9466, 0.9671, 0.9897, 1.0580]


def test_a_stored_run_with_several_levers_reads_back(tmp_path, ml100k):
    from datalever.spec import spec_from_dict

    spec = parse_spec(TWO_LEVERS.replace("run_folds = 2", "run_folds = 1"))
    store = ResultsStore(tmp_path / "r.sqlite")
    run_id = run_spec(spec, store, data=ml100k).run_id
    again = spec_from_dict(store.run_spec(run_id), "the stored run", stored=True)
    assert [(lv.kind, lv.params()) for lv in again.all_levers()] == [
        (lv.kind, lv.params()) for lv in spec.all_levers()
    ]
    assert again.run_id() == spec.run_id()


def test_a_store_of_the_previous_schema_gains_the_lever_parameters_column(tmp_path, ml100k):
    """A store written before lever parameters were kept (schema 2) opens, gains the column,
    and keeps every result as it was."""
    import sqlite3

    path = tmp_path / "r.sqlite"
    spec = parse_spec(SMALL_SPEC.replace("run_folds = 2", "run_folds = 1"))
    run_id = run_spec(spec, ResultsStore(path), data=ml100k).run_id
    before = ResultsStore(path).results(run_id).drop(columns="lever_params")
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE scenarios DROP COLUMN lever_params")
        conn.execute("UPDATE datalever_meta SET value = '2' WHERE name = 'schema_version'")
    reopened = ResultsStore(path)
    after = reopened.results(run_id)
    struck = after[after["lever"] == "strike"]
    assert set(struck["lever_params"]) == {json.dumps({"fraction": 1.0})}
    assert after[after["lever"] == "none"]["lever_params"].isna().all()
    cols = list(before.columns)
    key = ["key", "eval_group", "metric"]
    left = before.sort_values(key).reset_index(drop=True)
    right = after[cols].sort_values(key).reset_index(drop=True)
    assert left.equals(right)
    with sqlite3.connect(path) as conn:
        version = conn.execute(
            "SELECT value FROM datalever_meta WHERE name = 'schema_version'"
        ).fetchone()[0]
    assert version == "3"


def test_a_strike_and_a_boycott_of_one_draw_share_one_fit(ml100k, monkeypatch):
    """The two levers make the same change to the training data; only who is judged differs,
    so the engine fits each draw once and judges it twice."""
    from datalever.engine import scenario_eval
    from datalever.engine.scenario_eval import FoldContext, spec_folds

    text = SMALL_SPEC.replace(
        '[lever]\nkind = "strike"', '[[levers]]\nkind = "strike"\n\n[[levers]]\nkind = "boycott"'
    ).replace('groups = ["gender:F"]', "")
    spec = parse_spec(text)
    fold = spec_folds(spec, ml100k)[0]
    context = FoldContext.build(spec, ml100k, fold, learner_index=0)
    scenarios = [
        s for s in plan(spec, ml100k.checksum()) if s.fold == 0 and s.learner == "item_mean"
    ]
    fitted: list[int] = []
    real = scenario_eval.fit_scenarios

    def counting(learner, base, deltas, fast):
        fitted.append(len(deltas))
        return real(learner, base, deltas, fast)

    monkeypatch.setattr(scenario_eval, "fit_scenarios", counting)
    struck = [s for s in scenarios if not s.is_baseline]
    assert len(struck) == 2 * 2 * 2  # levers × sizes × samples
    results = context.run(struck)
    assert sum(fitted) == len(struck) // 2
    by_key = {r.key: r for r in results}
    for strike, boycott in zip(struck[::2], struck[1::2], strict=True):
        assert (strike.lever.kind, boycott.lever.kind) == ("strike", "boycott")
        assert strike.collective == boycott.collective and strike.sample == boycott.sample
        value = {
            m["eval_group"]: m["value"]
            for m in by_key[strike.key].metrics
            if m["metric"] == "ndcg@10"
        }
        other = {
            m["eval_group"]: m["value"]
            for m in by_key[boycott.key].metrics
            if m["metric"] == "ndcg@10"
        }
        assert value["non-participants"] == other["non-participants"]
        assert "participants" in value and "participants" not in other


# --- poison: vandalism


def test_vandalism_rerates_the_participants_own_records(ml100k):
    from datalever.levers import Poison
    from datalever.protocols import DataStrikesProtocol

    fold = DataStrikesProtocol(n_folds=5).folds(ml100k, 0)[0]
    base = ml100k.training_set(fold.train)
    participants = np.arange(0, ml100k.n_contributors, 10)
    delta = Poison().delta(ml100k, participants, np.random.default_rng(4), fold.train)
    mine = np.isin(base.users, participants)
    np.testing.assert_array_equal(delta.removed, np.flatnonzero(mine))
    np.testing.assert_array_equal(delta.added.users, base.users[mine])
    np.testing.assert_array_equal(delta.added.items, base.items[mine])
    assert set(np.unique(delta.added.ratings)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    # random ratings: about one in five keeps its old value, and all five values appear
    same = np.mean(delta.added.ratings == base.ratings[mine])
    assert 0.15 < same < 0.25 and len(np.unique(delta.added.ratings)) == 5
    half = Poison(fraction=0.5).delta(ml100k, participants, np.random.default_rng(4), fold.train)
    assert 0.45 < len(half.removed) / mine.sum() < 0.55
    assert set(half.removed) <= set(delta.removed)


def test_vandalism_is_decided_once_across_folds(ml100k):
    """The same record gets the same new rating whichever fold it trains in."""
    from datalever.levers import Poison
    from datalever.protocols import DataStrikesProtocol

    folds = DataStrikesProtocol(n_folds=5).folds(ml100k, 0)
    participants = np.arange(0, ml100k.n_contributors, 7)
    ratings = {}
    for fold in folds[:2]:
        delta = Poison().delta(ml100k, participants, np.random.default_rng(1), fold.train)
        for pos, r in zip(fold.train[delta.removed], delta.added.ratings, strict=True):
            assert ratings.setdefault(int(pos), r) == r


@pytest.fixture(scope="module")
def fold0(ml100k):
    from datalever.protocols import DataStrikesProtocol

    return DataStrikesProtocol(n_folds=5).folds(ml100k, 0)[0]


def _learners():
    from datalever.learners import (
        EASE,
        BiasedMF,
        GlobalMean,
        ItemKNN,
        ItemMean,
        Popularity,
        UserKNN,
    )

    return [
        GlobalMean(),
        ItemMean(),
        Popularity(),
        UserKNN(k=20),
        ItemKNN(k=20, similarity="cosine"),
        EASE(),
        BiasedMF(n_factors=8, n_epochs=3, backend="numba"),
    ]


@pytest.mark.parametrize("lever", [Strike(0.5), Boycott(), "poison"], ids=str)
@pytest.mark.parametrize("learner", _learners(), ids=repr)
def test_every_fast_path_equals_a_plain_fit_for_every_lever(learner, lever, ml100k, fold0):
    """For each (learner, lever) pair, the model a fast path makes from the lever's real delta
    equals the plain fit on the modified data (removed and added records alike)."""
    from datalever.learners.base import fit_scenarios
    from datalever.levers import Poison

    lever = Poison(fraction=0.5) if lever == "poison" else lever
    base = ml100k.training_set(fold0.train)
    participants = np.random.default_rng(2).choice(ml100k.n_contributors, 90, replace=False)
    delta = lever.delta(ml100k, participants, np.random.default_rng(3), fold0.train)
    fast = learner.fast_path(base)
    assert fast is not None
    (model,) = fit_scenarios(learner, base, [delta], fast)
    plain = learner.fit(delta.apply(base))
    users = np.concatenate([participants[:10], np.arange(0, ml100k.n_contributors, 40)])
    uu = np.repeat(users, ml100k.n_items)
    ii = np.tile(np.arange(ml100k.n_items), len(users))
    np.testing.assert_allclose(model.predict(uu, ii), plain.predict(uu, ii), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_spec_is_valid_and_plans_what_it_says(path):
    spec = load_spec(path)
    # A lever that brings its own collectives (the registry's opt-outs) plans with the data.
    needs_data = any(lever_class(ls.kind).brings_collectives for ls in spec.all_levers())
    data = load_data(spec) if needs_data else None
    assert len(plan(spec, "c", data=data)) > 0
    if path.name == "optout-ml100k.toml":  # 2 learners × 5 folds × (none, the set, 10 draws)
        assert len(plan(spec, "c", data=data)) == 2 * 5 * 12
    if path.name == "poison-vs-strike-ml100k.toml":
        assert len(plan(spec, "c")) == 310  # the count the README gives


def test_keys_and_run_ids_of_a_single_lever_spec_are_those_of_the_previous_release():
    """Pinned from the release before levers were objects: the example spec's run id and
    two of its scenario keys (on MovieLens-100K's checksum)."""
    spec = load_spec(ROOT / "examples" / "data-strikes-ml100k.toml")
    keys = [s.key for s in plan(spec, "ff6022b66d4e00f7")]
    assert spec.run_id() == "9b88d4dc4b1a" and len(keys) == 105
    assert keys[0] == "bf7473ecd16c2f153ce10deb" and keys[7] == "f24385ed67065b8477f3ed94"


def test_levers_with_one_label_and_several_levers_with_a_question_are_refused():
    twins = TWO_LEVERS.replace("fraction = 0.5", "fraction = 0.3").replace(
        '[[levers]]\nkind = "strike"', '[[levers]]\nkind = "boycott"\nfraction = 0.3000001'
    )
    with pytest.raises(DataleverError, match="lists the lever 'boycott 0.3' twice"):
        parse_spec(twins)
    question = TWO_LEVERS + '\n[question]\nmetric = "ndcg@10"\ndelta = "-1%"\n'
    with pytest.raises(DataleverError, match="runs several levers"):
        parse_spec(question)


def test_the_report_keeps_levers_apart(tmp_path, ml100k):
    from datalever.analysis import summarise
    from datalever.report.html import normalised_rows, set_back_rows, targeted_rows

    spec = parse_spec(TWO_LEVERS.replace("run_folds = 2", "run_folds = 1"))
    store = ResultsStore(tmp_path / "r.sqlite")
    results = store.results(run_spec(spec, store, data=ml100k).run_id)
    summary = summarise(results)
    learners = {r["learner"] for r in normalised_rows(summary)}
    assert "item_mean (strike)" in learners and "item_mean (boycott 0.5)" in learners
    targeted = {r["learner"] for r in targeted_rows(results)}
    assert targeted <= {
        f"{name} ({lever})"
        for name in ("item_mean", "popularity")
        for lever in ("strike", "boycott 0.5")
    }
    rows = [(r["learner"], r["metric"]) for r in set_back_rows(summary, "item_mean")]
    assert rows and len(rows) == len(set(rows))
    assert {learner for learner, _ in rows} == {"popularity (strike)", "popularity (boycott 0.5)"}


def test_ask_takes_the_specs_own_parameters_for_the_lever_it_names(tmp_path):
    from datalever.cli import _question_spec

    path = tmp_path / "two.toml"
    path.write_text(TWO_LEVERS)
    spec = _question_spec(path, {"delta": "-1%", "lever": "boycott"})
    assert [(lv.kind, lv.params()) for lv in spec.all_levers()] == [("boycott", {"fraction": 0.5})]
    assert _question_spec(path, {"delta": "-1%", "lever": "poison"}).lever.kind == "poison"


def test_vandalism_needs_more_than_one_rating_value():
    import pandas as pd

    from datalever.data.contributions import Contributions
    from datalever.levers import Poison

    records = pd.DataFrame({"user": [0, 0, 1], "item": [0, 1, 0], "rating": [1.0] * 3})
    data = Contributions.from_frames("likes", records)
    with pytest.raises(DataleverError, match="would change nothing"):
        Poison().delta(data, np.array([0]), np.random.default_rng(0), np.arange(3))
