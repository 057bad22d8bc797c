"""The engine end to end on the real MovieLens-100K: planning, storing, pairing, resuming."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from datalever.analysis import summarise
from datalever.engine import run_spec
from datalever.scenarios import plan
from datalever.spec import parse_spec
from datalever.store import ResultsStore
from tests.conftest import SMALL_SPEC


def _values(store: ResultsStore, run_id: str) -> pd.DataFrame:
    df = store.results(run_id)
    return df.sort_values(["key", "eval_group", "metric"]).reset_index(drop=True)[
        ["key", "eval_group", "metric", "value", "baseline", "reference"]
    ]


def test_plan_counts_and_stable_keys(small_spec, ml100k):
    scenarios = plan(small_spec, ml100k.checksum())
    # 2 learners × 2 folds × (no action + 2 sizes × 2 samples + 1 group × 2 samples)
    assert len(scenarios) == 2 * 2 * (1 + 4 + 2)
    assert len({s.key for s in scenarios}) == len(scenarios)
    again = plan(parse_spec(SMALL_SPEC), ml100k.checksum())
    assert [s.key for s in scenarios] == [s.key for s in again]
    other_seed = parse_spec(SMALL_SPEC.replace("seed = 3", "seed = 4"))
    assert not {s.key for s in plan(other_seed, ml100k.checksum())} & {s.key for s in scenarios}


def test_run_stores_every_scenario_once_with_paired_baseline(small_spec, ml100k, tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    report = run_spec(small_spec, store, data=ml100k)
    assert report.n_computed == report.n_planned == 28
    assert store.count(report.run_id) == 28
    df = store.results(report.run_id)
    none = df[df["collective_kind"] == "none"]
    # The no-action scenario is judged against itself: the paired change is exactly zero.
    assert np.allclose(none["value"], none["baseline"])
    # Striking 60 % of users removes records, so item-mean RMSE for everyone gets worse.
    s = summarise(df)
    row = s[
        (s.learner == "item_mean")
        & (s.metric == "rmse")
        & (s.eval_group == "everyone")
        & (s["size"] == 0.6)
    ].iloc[0]
    assert row["change"] > 0 and row["n_samples"] == 2 and row["n_folds"] == 2
    # Rank-only learners get no rating metrics.
    assert not ((df.learner == "popularity") & (df.metric == "rmse")).any()
    # A targeted group has its non-participating half as an evaluation group.
    assert "like-participants" in set(df[df.collective_kind == "group"]["eval_group"])
    # Running again computes nothing.
    again = run_spec(small_spec, store, data=ml100k)
    assert again.n_computed == 0 and again.n_already_done == 28


def test_same_spec_same_numbers_in_process_and_pool(small_spec, ml100k, tmp_path):
    a, b = ResultsStore(tmp_path / "a.sqlite"), ResultsStore(tmp_path / "b.sqlite")
    ra = run_spec(small_spec, a, data=ml100k, jobs=1)
    rb = run_spec(small_spec, b, data=ml100k, jobs=2)
    pd.testing.assert_frame_equal(_values(a, ra.run_id), _values(b, rb.run_id))


def test_gpu_learners_batches_run_in_this_process_beside_the_pool(
    small_spec, ml100k, tmp_path, monkeypatch
):
    """With a pool, a GPU learner's batches run in the engine's own process (the workers never
    start the device); the numbers are the same as an in-process run's."""
    from datalever.engine import executor as runner

    a, b = ResultsStore(tmp_path / "a.sqlite"), ResultsStore(tmp_path / "b.sqlite")
    ra = run_spec(small_spec, a, data=ml100k, jobs=1)
    runner._WORKER.clear()
    monkeypatch.setattr(runner, "_gpu_learners", lambda spec: {0})  # as if item_mean were
    rb = run_spec(small_spec, b, data=ml100k, jobs=2)
    pd.testing.assert_frame_equal(_values(a, ra.run_id), _values(b, rb.run_id))
    # learner 0's fold contexts were built here; learner 1's only in the workers
    assert {li for li, _ in runner._WORKER["contexts"]} == {0}


def test_boycott_participants_leave_evaluation(ml100k, tmp_path):
    spec = parse_spec(SMALL_SPEC.replace('kind = "strike"', 'kind = "boycott"'))
    store = ResultsStore(tmp_path / "r.sqlite")
    df = store.results(run_spec(spec, store, data=ml100k).run_id)
    struck = df[df.collective_kind == "random"]
    assert "participants" not in set(struck.eval_group)
    every = struck[struck.eval_group == "everyone"].set_index(["key", "metric"])["value"]
    non = struck[struck.eval_group == "non-participants"].set_index(["key", "metric"])["value"]
    pd.testing.assert_series_equal(every.sort_index(), non.sort_index(), check_names=False)


def test_interrupted_run_resumes_to_same_numbers(small_spec, ml100k, tmp_path):
    full = ResultsStore(tmp_path / "full.sqlite")
    reference = run_spec(small_spec, full, data=ml100k)
    store = ResultsStore(tmp_path / "cut.sqlite")

    def stop_after_five(finished: int, pending: int) -> None:
        if finished == 5:
            raise KeyboardInterrupt

    cut = run_spec(small_spec, store, data=ml100k, on_progress=stop_after_five)
    done = store.count(cut.run_id)  # the batch holding the fifth, stored whole
    assert cut.interrupted and 5 <= done == cut.n_computed < 28
    rest = run_spec(small_spec, store, data=ml100k)
    assert rest.n_already_done == done and rest.n_computed == 28 - done
    assert store.count(rest.run_id) == 28
    pd.testing.assert_frame_equal(_values(store, rest.run_id), _values(full, reference.run_id))


@pytest.mark.slow
def test_killed_process_resumes_without_recomputing(tmp_path):
    """A real ``datalever run`` killed with SIGKILL part-way, then run again."""
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SMALL_SPEC.replace('name = "item_mean"', 'name = "biased_mf"'))
    db = tmp_path / "r.sqlite"
    cmd = [sys.executable, "-m", "datalever", "run", str(spec_path), "--store", str(db), "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run_id = parse_spec(spec_path.read_text()).run_id()
    deadline = time.time() + 120
    stored = 0
    while time.time() < deadline and proc.poll() is None:
        if db.exists():
            try:
                stored = ResultsStore(db).count(run_id)
            except Exception:  # the schema may not exist yet
                stored = 0
            if stored >= 3:
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = ResultsStore(db).count(run_id)
    assert 3 <= killed_at < 28
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{killed_at} of 28 scenarios already stored" in done.stderr
    store = ResultsStore(db)
    assert store.count(run_id) == 28
    # Each planned scenario is stored exactly once, with its metric rows.
    df = store.results(run_id)
    assert df["key"].nunique() == 28
    assert not df.duplicated(["key", "eval_group", "metric"]).any()


HOLDOUT_SPEC = """
name = "holdout"
seed = 1

[data]
dataset = "movielens-100k"

[protocol]
kind = "holdout"
test_fraction = 0.2
list_length = 10

[[learners]]
name = "popularity"

[[learners]]
name = "ease"
regularization = 200.0

[lever]
kind = "strike"

[collectives]
sizes = [0.5]
samples = 2

[evaluation]
metrics = ["ndcg@10", "recall@10", "hitrate@10"]
"""


def test_holdout_protocol_top_n(ml100k, tmp_path):
    spec = parse_spec(HOLDOUT_SPEC)
    store = ResultsStore(tmp_path / "r.sqlite")
    report = run_spec(spec, store, data=ml100k)
    assert report.n_planned == 2 * (1 + 2)  # one fold: no action + 2 samples, per learner
    s = summarise(store.results(report.run_id))
    assert set(s.metric) == {"ndcg@10", "recall@10", "hitrate@10"}
    base = s[(s.collective_kind == "none") & (s.metric == "ndcg@10")].set_index("learner")
    # EASE personalises; it must beat ranking by popularity on held-out items.
    assert base.loc["ease", "mean"] > base.loc["popularity", "mean"] > 0.05
    struck = s[
        (s.collective_kind == "random") & (s.metric == "ndcg@10") & (s.eval_group == "participants")
    ].set_index("learner")
    # Struck users are cold-start for EASE (all scores 0): their lists collapse.
    assert struck.loc["ease", "change"] < -0.05


def test_repeated_groups_are_planned_once_and_file_groups_follow_their_file(ml100k, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("\n".join(str(i) for i in ml100k.contributor_ids[:50]))
    text = SMALL_SPEC.replace(
        'groups = ["gender:F"]', f'groups = ["gender:F", "gender:F", "file:{ids}"]'
    )
    before = plan(parse_spec(text), ml100k.checksum())
    assert len({s.key for s in before}) == len(before)
    assert (
        sum(s.collective.group == "gender:F" for s in before) == 2 * 2 * 2
    )  # learners×folds×samples
    ids.write_text("\n".join(str(i) for i in ml100k.contributor_ids[50:100]))
    after = plan(parse_spec(text), ml100k.checksum())
    file_keys = lambda scs: {s.key for s in scs if (s.collective.group or "").startswith("file:")}  # noqa: E731
    assert file_keys(before).isdisjoint(file_keys(after))


def test_strikes_of_no_one_reuse_the_no_action_model(ml100k, tmp_path, monkeypatch):
    """0.04 % of 943 users rounds to no one: such scenarios take the fold's no-action model
    (fitted and judged once) and give what fitting them again gives, to the last bit."""
    from datalever.engine import scenario_eval
    from datalever.learners.base import Delta

    spec = parse_spec(
        SMALL_SPEC.replace("sizes = [0.0, 0.2, 0.6]", "sizes = [0.0, 0.0004, 0.2]")
        .replace('groups = ["gender:F"]', "groups = []")
        .replace('[[learners]]\nname = "popularity"\n', "")
        .replace('name = "item_mean"', 'name = "biased_mf"\nn_epochs = 2')
    )
    fitted: list[Delta] = []
    real_fit = scenario_eval.fit_scenarios

    def counting_fit(learner, base, deltas, fast):
        fitted.extend(deltas)
        return real_fit(learner, base, deltas, fast)

    monkeypatch.setattr(scenario_eval, "fit_scenarios", counting_fit)
    store = ResultsStore(tmp_path / "a.sqlite")
    reused = _values(store, run_spec(spec, store, data=ml100k).run_id)
    # per fold: the no-action model in the set-up, then the 2 draws of size 0.2 only
    assert len(fitted) == 2 * (1 + 2) and sum(d.is_empty for d in fitted) == 2
    df = store.results(run_spec(spec, store, data=ml100k).run_id)
    nobody = df[df["size"] == 0.0004]
    assert len(nobody) > 0 and (nobody["n_participants"] == 0).all()
    np.testing.assert_array_equal(nobody["value"], nobody["baseline"])

    monkeypatch.setattr(Delta, "is_empty", property(lambda self: False))  # fit them all
    other = ResultsStore(tmp_path / "b.sqlite")
    refitted = _values(other, run_spec(spec, other, data=ml100k).run_id)
    pd.testing.assert_frame_equal(reused, refitted, check_exact=True)
