"""The opt-out lever: the registry's reserved contributors, as of a time, leave the training data,
beside random sets as large; through the engine, the store and the summary."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from datalever.analysis.summary import summarise
from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.levers import make_lever
from datalever.registry import Registry
from datalever.registry.contributors import contributor_work, reserved_contributors
from datalever.scenarios import plan
from datalever.spec import load_spec
from datalever.store import ResultsStore
from tests.conftest import T0, Clock

SPEC = """
name = "opt-out"
seed = 5

[data]
dataset = "movielens-100k"

[protocol]
kind = "data-strikes"
folds = 5
run_folds = 2

[[learners]]
name = "item_mean"

[[levers]]
kind = "optout"
registry = "consent.sqlite"
purpose = "train-genai"
as_of = "{as_of}"

[collectives]
samples = 2

[evaluation]
metrics = ["rmse"]
"""


def spec_in(folder, as_of: str = "2026-01-02T00:00:00Z", change: tuple[str, str] = ("", "")):
    """The spec, written beside the registry (which it names by a relative path)."""
    path = folder / "optout.toml"
    path.write_text(SPEC.format(as_of=as_of).replace(*change))
    return load_spec(path)


@pytest.fixture
def consent(tmp_path, ml100k):
    """A registry where ten MovieLens users reserve AI training on day 1 (one of them, the
    whole account), one more on day 3, and one allows it; the dataset is opt-out."""
    clock = Clock()
    ids = [str(i) for i in ml100k.contributor_ids[:40]]
    with Registry(tmp_path / "consent.sqlite", clock=clock) as reg:
        reg.set_dataset_policy("movielens-100k", "opt-out")
        for n, uid in enumerate(ids[:10]):
            account = reg.create_account(f"user {uid}")
            work = contributor_work("movielens-100k", uid)
            reg.register_work(account, work)
            reg.set_preference(account, "train-ai", "reserved", work=None if n == 0 else work)
        clock.now = T0 + timedelta(days=2)
        late = reg.create_account("late")
        reg.register_work(late, contributor_work("movielens-100k", ids[20]))
        reg.set_preference(late, "train-ai", "reserved")
        keen = reg.create_account("keen")
        reg.register_work(keen, contributor_work("movielens-100k", ids[30]))
        reg.set_preference(keen, "train-ai", "allowed")
    return tmp_path, ids


def test_the_reserved_set_is_read_as_of_a_time(consent, ml100k):
    folder, ids = consent
    with Registry(folder / "consent.sqlite") as reg:
        day1 = reserved_contributors(
            reg, "movielens-100k", ml100k.contributor_ids, "train-genai", "2026-01-02"
        )
        day3 = reserved_contributors(
            reg, "movielens-100k", ml100k.contributor_ids, "train-genai", "2026-01-04"
        )
    by_id = np.asarray(ml100k.contributor_ids).astype(str)
    assert set(by_id[day1.codes]) == set(ids[:10])
    assert set(by_id[day3.codes]) == set(ids[:10]) | {ids[20]}
    assert day1.snapshot < day3.snapshot and day1.policy == "opt-out"
    assert day1.digest() != day3.digest()


def test_optout_runs_the_reserved_set_beside_random_sets_as_large(consent, ml100k, tmp_path):
    folder, ids = consent
    spec = spec_in(folder)
    store = ResultsStore(tmp_path / "r.sqlite")
    df = store.results(run_spec(spec, store, data=ml100k).run_id)
    acted = df[df["lever"] != "none"]
    reserved = acted[acted["collective_kind"] == "group"]
    matched = acted[acted["collective_kind"] == "random"]
    # The reserved set acts once per fold, every one of its members; the random sets are as
    # large and are drawn `samples` times.
    assert set(reserved["sample"]) == {0} and set(reserved["fold"]) == {0, 1}
    assert set(reserved["n_participants"]) == {10}
    assert set(matched["count"]) == {10} and set(matched["sample"]) == {0, 1}
    assert {"everyone", "participants", "non-participants"} <= set(reserved["eval_group"])
    # The reserved users' records leave the training data, and no one else's.
    lever = make_lever("optout", spec.all_levers()[0].params())
    members = np.asarray(lever.collectives(ml100k, str(folder), 2)[0][0].members)
    train = np.arange(len(ml100k))
    delta = lever.delta(ml100k, members, np.random.default_rng(0), train)
    users = ml100k.records["contributor"].to_numpy()
    np.testing.assert_array_equal(np.sort(delta.removed), np.flatnonzero(np.isin(users, members)))
    # Drawn once, the reserved set's interval is over its folds.
    summary = summarise(df)
    row = summary[
        (summary["grp"] == "registry: reserved train-genai as of 2026-01-02T00:00:00Z")
        & (summary["eval_group"] == "participants")
    ].iloc[0]
    assert row["n_samples"] == 1 and row["n_folds"] == 2
    assert row["ci_method"].endswith("over folds")
    assert np.isfinite(row["change_ci_low"]) and row["change_ci_low"] <= row["change"]
    # The report sets the reserved set beside the random sets as large.
    from datalever.report.html import matched_rows

    matched_table = matched_rows(summary)
    assert {(r["eval_group"], r["members"], r["draws"]) for r in matched_table} == {
        (g, 10, 2) for g in ("everyone", "participants", "non-participants")
    }
    per_fold = reserved[reserved["eval_group"] == "participants"]
    change = (per_fold["value"] - per_fold["baseline"]).astype(float)
    assert row["change"] == pytest.approx(change.mean())


def test_a_later_snapshot_plans_other_scenarios(consent, ml100k):
    folder, _ = consent
    early, later = spec_in(folder), spec_in(folder, "2026-01-04T00:00:00Z")
    checksum = ml100k.checksum()
    keys = {s.key for s in plan(early, checksum, data=ml100k) if not s.is_baseline}
    other = {s.key for s in plan(later, checksum, data=ml100k) if not s.is_baseline}
    assert keys.isdisjoint(other)
    assert len(plan(early, checksum, data=ml100k)) == 2 * (1 + 1 + 2)  # folds × (none, set, 2)


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (('purpose = "train-genai"', 'purpose = "painting"'), "purpose"),
        (('as_of = "2026-01-02T00:00:00Z"', 'as_of = "last tuesday"'), "ISO 8601"),
        (('as_of = "2026-01-02T00:00:00Z"', 'as_of = "2025-01-01"'), "no declared policy"),
        (('purpose = "train-genai"', 'purpose = "search"'), "reserves no contributor"),
        (('registry = "consent.sqlite"', 'registry = "consent.sqlite"\ndataset = "x"'), "x"),
    ],
)
def test_bad_optout_parameters_are_refused_clearly(consent, ml100k, tmp_path, change, needle):
    folder, _ = consent
    store = ResultsStore(tmp_path / "r.sqlite")
    with pytest.raises(DataleverError, match=needle):
        spec = spec_in(folder, change=change)
        run_spec(spec, store, data=ml100k)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM results").scalar() == 0


def test_ask_judges_the_reserved_set_over_its_folds(consent, ml100k, tmp_path):
    from datalever.analysis.question import parse_delta
    from datalever.answer import ask

    folder, _ = consent
    extra = '\n[question]\nmetric = "rmse"\ndelta = "+0.5%"\ngroup = "participants"\n'
    spec = spec_in(folder, change=("[evaluation]", extra.strip() + "\n\n[evaluation]"))
    store = ResultsStore(tmp_path / "r.sqlite")
    answer = ask(spec, store, ml100k)
    (verdict,) = answer.result.verdicts
    rows = store.results(answer.run_id)
    fixed = rows[
        (rows["collective_kind"] == "group") & (rows["eval_group"] == "participants")
    ].sort_values("fold")
    change = (fixed["value"] - fixed["baseline"]).to_numpy(float)
    want = parse_delta("+0.5%").scores(change, fixed["baseline"], fixed["reference"])
    np.testing.assert_allclose(verdict.scores, want)
    assert verdict.n == 2 and answer.result.answer in ("yes", "no", "undecided")
    assert "reserved set (10 users" in answer.text and "Random sets as large" in answer.text


def test_ask_refuses_a_fixed_set_on_one_fold(consent, ml100k, tmp_path):
    from datalever.answer import ask

    folder, _ = consent
    extra = '[question]\nmetric = "rmse"\ndelta = "+1%"\n\n[protocol]'
    text_change = ("[protocol]", extra)
    spec = spec_in(folder, change=text_change)
    spec.protocol.kind = "holdout"
    with pytest.raises(DataleverError, match="over folds"):
        ask(spec, ResultsStore(tmp_path / "r.sqlite"), ml100k)
