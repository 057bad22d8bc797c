"""Runs that share a store at the same time cooperate: each scenario is computed and stored
once, both runs finish, and the numbers are those of a run alone."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

import pandas as pd
import pytest
import sqlalchemy as sa

from datalever.engine import run_spec, runner
from datalever.scenarios import plan
from datalever.spec import parse_spec
from datalever.store import ResultsStore, ScenarioResult, claims, results, scenarios
from tests.conftest import SMALL_SPEC
from tests.test_store import _postgres_url  # noqa: F401  (the postgres_url fixture)

SPEC_A = SMALL_SPEC.replace("run_folds = 2", "run_folds = 1").replace(
    "sizes = [0.0, 0.2, 0.6]", "sizes = [0.0, 0.1, 0.2, 0.3, 0.4, 0.6]"
)
# Shares the no-action scenarios and sizes 0.2 and 0.6 with SPEC_A.
SPEC_B = SPEC_A.replace('name = "small"', 'name = "overlap"').replace(
    "sizes = [0.0, 0.1, 0.2, 0.3, 0.4, 0.6]", "sizes = [0.2, 0.5, 0.6, 0.8]"
)

VALUE_COLUMNS = ["key", "eval_group", "metric", "value", "baseline", "reference", "n_users"]


def _values(store: ResultsStore, run_id: str) -> pd.DataFrame:
    df = store.results(run_id)[VALUE_COLUMNS]
    return df.sort_values(["key", "eval_group", "metric"]).reset_index(drop=True)


def _table_rows(store: ResultsStore, table) -> int:
    with store.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def _start_together(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    procs = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for cmd in commands
    ]
    out = []
    for proc, cmd in zip(procs, commands, strict=True):
        stdout, stderr = proc.communicate(timeout=300)
        out.append(subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr))
    return out


@pytest.fixture(scope="module")
def alone(ml100k, tmp_path_factory) -> dict[str, pd.DataFrame]:
    """Each spec run alone, in a store of its own."""
    out = {}
    for name, text in (("a", SPEC_A), ("b", SPEC_B)):
        store = ResultsStore(tmp_path_factory.mktemp(name) / "alone.sqlite")
        out[name] = _values(store, run_spec(parse_spec(text), store, data=ml100k).run_id)
    return out


def test_two_runs_of_one_spec_at_once_both_finish(tmp_path, alone):
    spec_path = tmp_path / "spec.toml"
    spec_path.write_text(SPEC_A)
    db = tmp_path / "shared.sqlite"
    cmd = [sys.executable, "-m", "datalever", "run", str(spec_path), "--store", str(db), "-q"]
    for done in _start_together([cmd, cmd]):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    store = ResultsStore(db)
    run_id = parse_spec(SPEC_A).run_id()
    df = _values(store, run_id)
    n_planned = int(store.runs().set_index("run_id").loc[run_id, "n_planned"])
    assert df["key"].nunique() == n_planned == _table_rows(store, scenarios)
    assert not df.duplicated(["key", "eval_group", "metric"]).any()
    assert _table_rows(store, results) == len(df)
    assert _table_rows(store, claims) == 0, "finished runs hold no claims"
    pd.testing.assert_frame_equal(df, alone["a"])


RUN = """
import json, sys
from datalever.engine import run_spec
from datalever.spec import parse_spec
from datalever.store import ResultsStore
r = run_spec(parse_spec(open(sys.argv[1]).read()), ResultsStore(sys.argv[2]))
print(json.dumps({"computed": r.n_computed, "others": r.n_by_others, "run_id": r.run_id}))
"""


def _check_shared_runs(finished, store: ResultsStore, names: str, alone, ml100k) -> None:
    """Runs of SPEC_A / SPEC_B (by ``names``) that shared ``store``: each finished, together
    they computed every scenario of the union once, and each run's values are a run alone's."""
    for done in finished:
        assert done.returncode == 0, done.stderr
    reports = [json.loads(done.stdout.splitlines()[-1]) for done in finished]
    checksum = ml100k.checksum()
    union = {s.key for text in (SPEC_A, SPEC_B) for s in plan(parse_spec(text), checksum)}
    assert sum(r["computed"] for r in reports) == len(union), reports
    assert _table_rows(store, scenarios) == len(union)
    for report, name in zip(reports, names, strict=True):
        pd.testing.assert_frame_equal(_values(store, report["run_id"]), alone[name])


def test_overlapping_specs_at_once_compute_shared_scenarios_once(tmp_path, alone, ml100k):
    db = tmp_path / "shared.sqlite"
    commands = []
    for name, text in (("a", SPEC_A), ("b", SPEC_B)):
        (tmp_path / f"{name}.toml").write_text(text)
        commands.append([sys.executable, "-c", RUN, str(tmp_path / f"{name}.toml"), str(db)])
    _check_shared_runs(_start_together(commands), ResultsStore(db), "ab", alone, ml100k)


def _as_result(df: pd.DataFrame, key: str) -> ScenarioResult:
    """A stored scenario as the engine hands it to the store."""
    rows = df[df["key"] == key]
    first = rows.iloc[0]
    row = {c.name: first[c.name] for c in scenarios.columns if c.name != "key"}
    row = {
        k: (None if pd.isna(v) else v.item() if hasattr(v, "item") else v) for k, v in row.items()
    }
    metrics = rows[["eval_group", "metric", "value", "baseline", "reference", "n_users"]]
    return ScenarioResult(key, row, metrics.to_dict("records"))


def test_run_waits_for_scenarios_another_run_is_computing(tmp_path, ml100k, monkeypatch, alone):
    """Scenarios a live run has claimed are not computed twice: this run stores the rest, then
    waits until the other run has stored its share."""
    monkeypatch.setattr(runner, "WAIT_POLL_S", 0.1)
    spec = parse_spec(SPEC_A)
    keys = [s.key for s in plan(spec, ml100k.checksum())]
    theirs = keys[::3]
    store = ResultsStore(tmp_path / "shared.sqlite")
    assert store.claim("other-run", theirs, lease=60) == set(theirs)
    reference = ResultsStore(tmp_path / "ref.sqlite")
    reference_values = reference.results(run_spec(spec, reference, data=ml100k).run_id)

    def other_run_finishes() -> None:
        time.sleep(1.0)
        for key in theirs:
            store.write("other", _as_result(reference_values, key), owner="other-run")

    other = threading.Thread(target=other_run_finishes)
    other.start()
    waits: list[int] = []
    report = run_spec(spec, store, data=ml100k, on_wait=waits.append)
    other.join()
    assert waits and waits[0] == len(theirs)  # told what it waits for
    assert report.n_computed == len(keys) - len(theirs)
    assert report.n_by_others == len(theirs)
    pd.testing.assert_frame_equal(_values(store, report.run_id), alone["a"])


def test_claims_of_a_killed_run_lapse_and_are_taken_over(tmp_path, ml100k, monkeypatch, alone):
    monkeypatch.setattr(runner, "WAIT_POLL_S", 0.1)
    spec = parse_spec(SPEC_A)
    keys = [s.key for s in plan(spec, ml100k.checksum())]
    store = ResultsStore(tmp_path / "shared.sqlite")
    lease = 1.5
    assert store.claim("killed-run", keys[:5], lease=lease) == set(keys[:5])
    started = time.monotonic()
    report = run_spec(spec, store, data=ml100k)
    assert time.monotonic() - started >= lease * 0.9  # it waited for the lease to lapse
    assert report.n_computed == len(keys) and report.n_by_others == 0
    assert _table_rows(store, claims) == 0
    pd.testing.assert_frame_equal(_values(store, report.run_id), alone["a"])


def test_interrupted_run_releases_its_claims(tmp_path, ml100k):
    spec = parse_spec(SPEC_A)
    store = ResultsStore(tmp_path / "r.sqlite")

    def stop_after_three(finished: int, pending: int) -> None:
        if finished == 3:
            raise KeyboardInterrupt

    cut = run_spec(spec, store, data=ml100k, on_progress=stop_after_three)
    # The batch holding the third scenario was stored whole, in one transaction.
    assert cut.interrupted and 3 <= store.count(cut.run_id) == cut.n_computed < cut.n_planned
    assert _table_rows(store, claims) == 0  # another run may take the rest at once


def test_claims_of_a_run_that_died_on_this_machine_are_taken_at_once(tmp_path, ml100k):
    from datalever.store import _machine

    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead_owner = f"{_machine()}:{ended.stdout.strip()}:0123456789ab"
    spec = parse_spec(SPEC_A)
    keys = [s.key for s in plan(spec, ml100k.checksum())]
    store = ResultsStore(tmp_path / "shared.sqlite")
    assert store.claim(dead_owner, keys, lease=90) == set(keys)
    started = time.monotonic()
    report = run_spec(spec, store, data=ml100k)
    assert report.n_computed == len(keys)
    assert time.monotonic() - started < 60, "it waited for the lease of a dead process"


def test_overlapping_runs_at_once_on_postgresql(tmp_path, alone, ml100k, postgres_url):
    commands = []
    for name, text in (("a", SPEC_A), ("b", SPEC_B), ("a", SPEC_A)):
        (tmp_path / f"{name}.toml").write_text(text)
        commands.append([sys.executable, "-c", RUN, str(tmp_path / f"{name}.toml"), postgres_url])
    store = ResultsStore(postgres_url)
    _check_shared_runs(_start_together(commands), store, "aba", alone, ml100k)
    assert _table_rows(store, claims) == 0
    store.engine.dispose()


def test_a_namesake_machine_is_not_this_one():
    """An owner on another machine that shares this host name (a container, a cloned node) is
    trusted until its lease lapses, even when its process id is not running here."""
    import socket

    from datalever.store import _machine, _owner_alive

    assert _machine().startswith(socket.gethostname())
    assert not _owner_alive(f"{_machine()}:999999999:0123456789ab")
    assert _owner_alive(f"{socket.gethostname()}/other-boot/1:999999999:0123456789ab")


def test_runs_of_one_spec_started_together_share_the_work(tmp_path, ml100k):
    """Claims are taken a chunk at a time, so a second run of the same spec takes part of the
    work instead of waiting for all of it."""
    from datalever.learners import make_learner

    spec = parse_spec(SPEC_A)
    store = ResultsStore(tmp_path / "shared.sqlite")
    keys = [s.key for s in plan(spec, ml100k.checksum())]
    other = "elsewhere/boot/1:1:0123456789ab"  # a live run on another machine
    chunk = runner._claim_chunk(1, [make_learner(ls.name, ls.params()) for ls in spec.learners])
    held = store.claim(other, keys, lease=90, limit=3)
    assert len(held) == 3 and held == set(keys[:3])
    mine = store.claim("here/boot/1:2:abcdefabcdef", keys, lease=90, limit=chunk)
    assert mine == set(keys[3 : 3 + chunk])
