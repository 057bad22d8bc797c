"""The registry's real HTTP server (uvicorn in its own process on 127.0.0.1) under concurrent
writes and checks, and killed with SIGKILL in the middle of a stream of writes: no
acknowledged write is lost, no change is half-applied, and the registry opens and answers
afterwards. On SQLite, and on PostgreSQL too when DATALEVER_TEST_POSTGRES names a server.

The fail-closed client against servers that hang, fail or answer junk is tested in
test_registry_client.py; the load figures come from benchmarks/registry_load.py, whose quick
mode is run here."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from datalever.registry import Registry, parse_work
from datalever.registry import schema as s

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
try:
    import registry_load  # the server process the load benchmark starts
finally:
    sys.path.remove(str(BENCHMARKS))

PURPOSES = ("train-ai", "train-genai", "search")


@pytest.fixture
def url(registry_url: str) -> str:
    return registry_url


class Setup:
    """Accounts with works and contributor tokens, an opt-out dataset and a pipeline token,
    all written through the registry's own write path (so every record has its event)."""

    def __init__(self, url: str, accounts: int = 6, works: int = 3) -> None:
        with Registry(url) as reg:
            reg.set_dataset_policy("crawl", "opt-out")
            self.accounts = [reg.create_account(f"acct{i}") for i in range(accounts)]
            self.works = {
                a: [f"https://site{a}.example/{j}" for j in range(works)] for a in self.accounts
            }
            for a, refs in self.works.items():
                for ref in refs:
                    reg.register_work(a, ref)
            self.tokens = {a: reg.issue_token("contributor", a) for a in self.accounts}
            self.pipeline = reg.issue_token("pipeline")
            self.events = reg.event_count()

    def all_works(self) -> list[str]:
        return [w for refs in self.works.values() for w in refs]


class Writer(threading.Thread):
    """One contributor's stream of preference changes (and now and then a new work) over
    HTTP: ``count`` writes, or (None) until the server cannot be reached. Remembers each
    acknowledged write."""

    def __init__(self, base: str, setup: Setup, account: int, count: int | None, seed: int):
        super().__init__(daemon=True)
        self.base, self.account, self.count = base, account, count
        self.token, self.works = setup.tokens[account], list(setup.works[account])
        self.rng = random.Random(seed)
        self.acked: list[tuple[str, dict, dict]] = []  # (kind, request body, answer)
        self.refused: list[tuple[int, str]] = []

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            n = 0
            while self.count is None or n < self.count:
                n += 1
                if self.rng.random() < 0.1:
                    kind = "work"
                    body = {"work": f"https://site{self.account}.example/new/{uuid.uuid4().hex}"}
                else:
                    kind = "preference"
                    body = {
                        "purpose": self.rng.choice(PURPOSES),
                        "value": self.rng.choice(("allowed", "reserved")),
                    }
                    if self.rng.random() < 0.8:
                        body["work"] = self.rng.choice(self.works)
                path = f"/v1/accounts/{self.account}/{kind}s"
                try:
                    answer = client.post(path, json=body)
                except httpx.HTTPError:
                    return  # the server is gone: this write's fate is unknown
                if answer.is_success:
                    self.acked.append((kind, body, answer.json()))
                    if kind == "work":
                        self.works.append(body["work"])
                else:
                    self.refused.append((answer.status_code, answer.text[:200]))


class Checker(threading.Thread):
    """Single and bulk checks in a loop until ``stop``; every answer must be a 200 whose
    snapshot never goes back."""

    def __init__(self, base: str, setup: Setup, seed: int) -> None:
        super().__init__(daemon=True)
        self.base, self.pipeline, self.works = base, setup.pipeline, setup.all_works()
        self.rng = random.Random(seed)
        self.checks = 0
        self.problems: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.pipeline}"}
        last = 0
        with httpx.Client(base_url=self.base, headers=headers, timeout=60) as client:
            while not self.stop.is_set():
                purpose = self.rng.choice(PURPOSES)
                if self.rng.random() < 0.5:
                    params = {"dataset": "crawl", "purpose": purpose}
                    answer = client.get(
                        "/v1/checks", params={**params, "work": self.rng.choice(self.works)}
                    )
                    expected = 1
                else:
                    body = {"dataset": "crawl", "purpose": purpose, "works": self.works}
                    answer = client.post("/v1/checks", json=body)
                    expected = len(self.works)
                self.checks += 1
                if answer.status_code != 200:
                    self.problems.append(f"{answer.status_code}: {answer.text[:200]}")
                    continue
                got = answer.json()
                decisions = got["decisions"]
                if got["snapshot"] < last or len(decisions) != expected:
                    self.problems.append(f"snapshot {got['snapshot']} after {last}: {got}")
                last = got["snapshot"]
                for d in decisions:
                    if d["outcome"] not in ("allowed", "reserved") or (
                        d["event_id"] is not None and d["event_id"] > d["snapshot"]
                    ):
                        self.problems.append(f"inconsistent decision {d}")


def assert_acknowledged_writes_are_there(reg: Registry, writers: list[Writer]) -> None:
    """Every acknowledged change is in the log as it was asked for."""
    by_id = {e["id"]: e for e in reg.events()}
    with reg.engine.connect() as conn:
        works = dict(conn.execute(sa.select(s.works.c.ref, s.works.c.account_id)).all())
    for w in writers:
        for kind, body, answer in w.acked:
            if kind == "work":
                assert works.get(answer["work"]) == w.account, (body, answer)
                continue
            event = by_id.get(answer["event_id"])
            assert event is not None, f"acknowledged write lost: {body} -> {answer}"
            assert event["kind"] == "preference_set" and event["account_id"] == w.account
            assert (event["purpose"], event["value"]) == (body["purpose"], body["value"])
            detail = json.loads(event["detail"])
            assert detail["work"] == (parse_work(body["work"])[1] if "work" in body else None)


def assert_consistent(reg: Registry) -> None:
    """Each event is complete, and the catalogues hold exactly what the events say."""
    with reg.engine.connect() as conn:
        events = conn.execute(sa.select(s.events).order_by(s.events.c.id)).mappings().all()
        accounts = conn.execute(sa.select(s.accounts)).mappings().all()
        works = conn.execute(sa.select(s.works)).mappings().all()
        tokens = conn.execute(sa.select(s.api_tokens)).mappings().all()
    by_id = {e["id"]: e for e in events}
    assert [e["at_us"] for e in events] == sorted(e["at_us"] for e in events)
    assert {e["kind"] for e in events} <= set(s.EVENT_KINDS)
    owner = {w["id"]: w["account_id"] for w in works}
    for e in events:
        if e["kind"] == "preference_set":
            assert e["account_id"] is not None and e["purpose"] in PURPOSES, e
            assert e["value"] in ("allowed", "reserved"), e
            assert e["work_id"] is None or owner.get(e["work_id"]) == e["account_id"], e
            work = json.loads(e["detail"])["work"]
            assert (work is None) == (e["work_id"] is None), e
    for kind, rows, key in [
        ("account_created", accounts, None),
        ("work_registered", works, "work_id"),
        ("token_issued", tokens, None),
    ]:
        assert sum(e["kind"] == kind for e in events) == len(rows), kind
        for row in rows:
            event = by_id[row["event_id"]]
            assert event["kind"] == kind, (row, event)
            if key is not None:
                assert event[key] == row["id"] and event["account_id"] == row["account_id"]
                assert json.loads(event["detail"])["work"] == row["ref"]
    if reg.engine.dialect.name == "sqlite":
        with sqlite3.connect(reg.engine.url.database) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_concurrent_writes_and_checks_lose_nothing(url):
    """Six contributors write at once while three pipelines check: the log grows by exactly
    the writes acknowledged, and every check is answered."""
    setup = Setup(url)
    with registry_load.serve(url) as server:
        writers = [
            Writer(server.base, setup, a, count=30, seed=i) for i, a in enumerate(setup.accounts)
        ]
        checkers = [Checker(server.base, setup, seed=100 + i) for i in range(3)]
        for t in checkers + writers:
            t.start()
        for w in writers:
            w.join(120)
        for c in checkers:
            c.stop.set()
            c.join(60)
    assert not any(w.is_alive() for w in writers + checkers)
    assert [r for w in writers for r in w.refused] == []
    assert [p for c in checkers for p in c.problems] == []
    assert all(c.checks > 0 for c in checkers)
    acked = sum(len(w.acked) for w in writers)
    assert acked == 30 * len(writers)
    with Registry(url) as reg:
        assert reg.event_count() == setup.events + acked
        assert_acknowledged_writes_are_there(reg, writers)
        assert_consistent(reg)


def test_a_server_killed_mid_write_leaves_no_half_change(url):
    """Three rounds of: serve, stream writes from four contributors, SIGKILL the server after
    a random number of acknowledgements, reopen. On SQLite the kill usually lands inside a
    transaction (a hot rollback journal is left behind); reopening rolls it back."""
    setup = Setup(url, accounts=4)
    rng = random.Random(5)
    writers: list[Writer] = []
    for round_ in range(3):
        with registry_load.serve(url) as server:
            # the registry reopened after the last kill answers
            check = httpx.get(
                f"{server.base}/v1/checks",
                params={"dataset": "crawl", "purpose": "train-ai", "work": setup.all_works()[0]},
                headers={"Authorization": f"Bearer {setup.pipeline}"},
            )
            assert check.status_code == 200, check.text
            stream = [
                Writer(server.base, setup, a, count=None, seed=10 * round_ + i)
                for i, a in enumerate(setup.accounts)
            ]
            for w in stream:
                w.start()
            target, deadline = rng.randint(20, 80), time.monotonic() + 60
            while sum(len(w.acked) for w in stream) < target and time.monotonic() < deadline:
                time.sleep(0.002)
            server.kill()  # while the writers still write
            for w in stream:
                w.join(60)
        writers += stream
        assert not any(w.is_alive() for w in stream)
        assert [r for w in stream for r in w.refused] == []
        with Registry(url) as reg:
            acked = sum(len(w.acked) for w in writers)
            in_flight = len(writers)  # at most one unanswered write per writer and round
            assert setup.events + acked <= reg.event_count() <= setup.events + acked + in_flight
            assert_acknowledged_writes_are_there(reg, writers)
            assert_consistent(reg)
            works = setup.all_works()
            decided = reg.decide("crawl", works, "train-ai")
            assert [d.work for d in decided] == [parse_work(w)[1] for w in works]


def test_load_benchmark_quick_run():
    """The load benchmark's smoke run: a real server, checks under load, no failed request."""
    command = [sys.executable, str(BENCHMARKS / "registry_load.py"), "--quick"]
    if os.environ.get("DATALEVER_TEST_POSTGRES"):
        command += ["--postgres", os.environ["DATALEVER_TEST_POSTGRES"]]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr  # 1: a request failed
    assert "single checks, most requests/s" in done.stdout and "bulk check" in done.stdout
