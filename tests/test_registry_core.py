"""The consent registry's storage and decisions: worked examples for both dataset policies,
account-wide and per-work statements, as-of queries, tokens, migrations and concurrent writers.
Every test runs on SQLite, and on PostgreSQL too when DATALEVER_TEST_POSTGRES names a server."""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from datalever.errors import DataleverError
from datalever.registry import Registry, parse_work, purpose_chain
from datalever.registry.schema import VERSION_TABLE
from tests.conftest import T0, Clock


@pytest.fixture
def url(registry_url: str) -> str:
    return registry_url


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def reg(url, clock):
    registry = Registry(url, clock=clock)
    yield registry
    registry.close()


def outcomes(decisions) -> list[str]:
    return [d.outcome for d in decisions]


A = "https://art.example/a.png"
B = "https://art.example/b.png"
OTHER = "https://elsewhere.example/c.png"


# --- worked examples -------------------------------------------------------------------------


def test_opt_out_dataset_honours_reservations_and_defaults_to_allow(reg, clock):
    reg.set_dataset_policy("crawl", "opt-out")
    ann = reg.create_account("ann")
    reg.register_work(ann, A)
    reg.register_work(ann, B)
    clock.tick()
    event = reg.set_preference(ann, "train-ai", "reserved", work=A)
    got = reg.decide("crawl", [A, B, OTHER], "train-ai")
    assert outcomes(got) == ["reserved", "allowed", "allowed"]
    assert got[0].event_id == event and f"(event {event})" in got[0].rule
    assert "reservation for train-ai on this work" in got[0].rule
    assert got[1].rule == "opt-out dataset: no recorded reservation → allowed"
    assert {d.snapshot for d in got} == {reg.snapshot()}
    # the narrower purpose falls back on the general one; a sibling does not
    assert outcomes(reg.decide("crawl", [A], "train-genai")) == ["reserved"]
    assert "covers train-genai" in reg.decide("crawl", [A], "train-genai")[0].rule
    assert outcomes(reg.decide("crawl", [A], "search")) == ["allowed"]


def test_opt_in_dataset_requires_a_recorded_allow(reg, clock):
    reg.set_dataset_policy("curated", "opt-in")
    ann = reg.create_account("ann")
    reg.register_work(ann, A)
    reg.register_work(ann, B)
    got = reg.decide("curated", [A, B, OTHER], "train-genai")
    assert outcomes(got) == ["reserved"] * 3
    assert got[0].rule == "opt-in dataset: no recorded allow → reserved"
    clock.tick()
    reg.set_preference(ann, "train-genai", "allowed", work=B)
    assert outcomes(reg.decide("curated", [A, B, OTHER], "train-genai")) == [
        "reserved",
        "allowed",
        "reserved",
    ]
    # an allow for generative training says nothing about training in general
    assert outcomes(reg.decide("curated", [B], "train-ai")) == ["reserved"]
    # the broad umbrella covers everything beneath it
    clock.tick()
    reg.set_preference(ann, "tdm", "allowed")
    assert outcomes(reg.decide("curated", [A, B], "search")) == ["allowed", "allowed"]


def test_account_wide_and_per_work_statements_latest_wins(reg, clock):
    reg.set_dataset_policy("crawl", "opt-out")
    ann, bob = reg.create_account("ann"), reg.create_account("bob")
    reg.register_work(ann, A)
    reg.register_work(ann, B)
    reg.register_work(bob, OTHER)
    clock.tick()
    reg.set_preference(ann, "train-ai", "reserved")  # the whole account
    assert outcomes(reg.decide("crawl", [A, B, OTHER], "train-ai")) == [
        "reserved",
        "reserved",
        "allowed",  # bob's work is untouched by ann's statement
    ]
    clock.tick()
    reg.set_preference(ann, "train-ai", "allowed", work=B)  # a later exception for one work
    got = reg.decide("crawl", [A, B], "train-ai")
    assert outcomes(got) == ["reserved", "allowed"]
    assert "on the whole account" in got[0].rule and "on this work" in got[1].rule
    clock.tick()
    reg.set_preference(ann, "train-ai", "reserved")  # a later account-wide word overrides it
    assert outcomes(reg.decide("crawl", [A, B], "train-ai")) == ["reserved", "reserved"]


def test_as_of_sees_only_earlier_events_and_refilters_retroactively(reg, clock):
    reg.set_dataset_policy("crawl", "opt-out")
    ann = reg.create_account("ann")
    for work in (A, B):
        reg.register_work(ann, work)
    built = clock.tick()  # the dataset snapshot was built here
    snapshot_then = reg.snapshot(built)
    clock.tick()
    reg.set_preference(ann, "train-ai", "reserved", work=A)  # a later opt-out
    clock.tick()
    then = reg.decide("crawl", [A, B], "train-ai", as_of=built)
    now = reg.decide("crawl", [A, B], "train-ai")
    assert outcomes(then) == ["allowed", "allowed"] and then[0].snapshot == snapshot_then
    assert outcomes(now) == ["reserved", "allowed"] and now[0].snapshot > snapshot_then
    # asking again as of the old time gives the same answer: history is never rewritten
    assert reg.decide("crawl", [A, B], "train-ai", as_of=built) == then
    assert reg.decide("crawl", [A], "train-ai", as_of=built.isoformat()) == then[:1]
    # before the work was registered, an account-wide statement could not cover it
    assert reg.snapshot(T0 - timedelta(days=1)) == 0


def test_dataset_policy_change_is_as_of_too(reg, clock):
    reg.set_dataset_policy("crawl", "opt-out")
    first = clock.now
    clock.tick()
    reg.set_dataset_policy("crawl", "opt-in")
    clock.tick()
    assert reg.dataset_policy("crawl", as_of=first) == "opt-out"
    assert reg.dataset_policy("crawl") == "opt-in"
    assert outcomes(reg.decide("crawl", [A], "train-ai", as_of=first)) == ["allowed"]
    assert outcomes(reg.decide("crawl", [A], "train-ai")) == ["reserved"]
    with pytest.raises(DataleverError, match="no declared policy as of"):
        reg.decide("crawl", [A], "train-ai", as_of=T0 - timedelta(days=1))


def test_every_change_is_an_event_in_order(reg, clock):
    ann = reg.create_account("ann")
    ident = reg.add_identity(ann, "github", "ann-draws")
    reg.set_identity_state(ident, "well-known", "verified")
    reg.register_work(ann, A)
    reg.set_preference(ann, "search", "allowed")
    reg.set_dataset_policy("crawl", "opt-out")
    reg.issue_token("contributor", ann)
    log = reg.events()
    assert [e["kind"] for e in log] == [
        "account_created",
        "identity_added",
        "identity_verified",
        "work_registered",
        "preference_set",
        "dataset_policy_set",
        "token_issued",
    ]
    ids = [e["id"] for e in log]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    assert [e["at_us"] for e in log] == sorted(e["at_us"] for e in log)


def test_clock_running_backwards_keeps_times_in_id_order(reg, clock):
    reg.set_dataset_policy("crawl", "opt-out")
    clock.now = T0 - timedelta(days=30)  # a clock stepped back (NTP, a restore)
    reg.set_dataset_policy("crawl", "opt-in")
    at = [e["at_us"] for e in reg.events()]
    assert at == sorted(at)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda r: r.decide("crawl", [A], "train-everything"), "Unknown purpose"),
        (lambda r: r.decide("nope", [A], "train-ai"), "Unknown dataset"),
        (lambda r: r.decide("crawl", ["ftp://x/y"], "train-ai"), "Malformed work id"),
        (lambda r: r.decide("crawl", ["sha256:abc"], "train-ai"), "64 hexadecimal"),
        (lambda r: r.decide("crawl", ["https:///nohost"], "train-ai"), "no host"),
        (lambda r: r.decide("crawl", ["just text"], "train-ai"), "Malformed work id"),
        (lambda r: r.decide("crawl", [None], "train-ai"), "not text"),
        (lambda r: r.decide("crawl", A, "train-ai"), "list of work ids"),
        (lambda r: r.decide("crawl", [A], "train-ai", as_of="yesterday"), "ISO 8601"),
        (lambda r: r.set_dataset_policy("crawl", "opt-maybe"), "opt-in"),
        (lambda r: r.set_preference(999, "train-ai", "reserved"), "No account 999"),
        (lambda r: r.issue_token("root"), "Unknown token scope"),
    ],
)
def test_bad_input_is_a_clear_error_and_changes_nothing(reg, call, match):
    reg.set_dataset_policy("crawl", "opt-out")
    before = reg.event_count()
    with pytest.raises(DataleverError, match=match) as e:
        call(reg)
    assert e.value.fix
    assert reg.event_count() == before


def test_a_work_cannot_be_claimed_twice_or_set_by_another_account(reg):
    ann, bob = reg.create_account("ann"), reg.create_account("bob")
    reg.register_work(ann, A)
    before = reg.event_count()
    with pytest.raises(DataleverError, match="another account"):
        reg.register_work(bob, A.upper().replace("/A.PNG", "/a.png"))  # same work, other case
    with pytest.raises(DataleverError, match="not registered to account"):
        reg.set_preference(bob, "train-ai", "allowed", work=A)
    assert reg.event_count() == before


def test_a_failed_write_leaves_nothing_half_applied(url, clock, monkeypatch):
    reg = Registry(url, clock=clock)
    ann = reg.create_account("ann")
    before = reg.event_count()

    def fail(*_args, **_kwargs):
        raise sa.exc.OperationalError("INSERT", {}, Exception("disk I/O error"))

    # the event is appended, then inserting the work fails: neither may remain
    original = sa.Connection.execute

    def execute(self, statement, *args, **kwargs):
        if getattr(statement, "table", None) is not None and statement.table.name == "works":
            fail()
        return original(self, statement, *args, **kwargs)

    monkeypatch.setattr(sa.Connection, "execute", execute)
    with pytest.raises(DataleverError, match="Nothing was changed"):
        reg.register_work(ann, A)
    monkeypatch.undo()
    assert reg.event_count() == before
    reg.close()


@pytest.mark.parametrize(
    "bad", ["http://registry.example/", "mysql://u@h/db", "redis://h", ":memory:", "sqlite://"]
)
def test_bad_registry_locations_are_refused(bad):
    with pytest.raises(DataleverError) as e:
        Registry(bad if bad != ":memory:" else "sqlite:///:memory:")
    assert e.value.fix


def test_a_foreign_database_is_refused_unchanged(tmp_path):
    path = tmp_path / "other.sqlite"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id, name)")
    conn.commit()
    conn.close()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(DataleverError, match="not a datalever registry"):
        Registry(path)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == digest


def test_work_ids_have_one_canonical_form():
    assert parse_work("HTTPS://Art.Example/A.png#frag") == ("url", "url:https://art.example/A.png")
    assert parse_work("url:https://art.example/x") == ("url", "url:https://art.example/x")
    assert parse_work("sha256:" + "AB" * 32) == ("content_hash", "sha256:" + "ab" * 32)
    assert parse_work("repo:GitHub.com/ann/tool") == ("repository", "repo:github.com/ann/tool")
    assert parse_work("contributor:movielens-100k/42") == (
        "dataset_contributor",
        "contributor:movielens-100k/42",
    )
    assert purpose_chain("train-genai") == ("train-genai", "train-ai", "tdm")


# --- tokens ----------------------------------------------------------------------------------


def test_tokens_are_stored_only_as_hashes(reg, url):
    ann = reg.create_account("ann")
    token = reg.issue_token("contributor", ann)
    pipeline = reg.issue_token("pipeline")
    assert len(token) >= 40 and token != pipeline
    info = reg.verify_token(token)
    assert info is not None and (info.scope, info.account_id) == ("contributor", ann)
    assert reg.verify_token(pipeline).scope == "pipeline"
    for wrong in ("", token[:-1], token + "x", "x" * 500, None):
        assert reg.verify_token(wrong) is None
    # nowhere in the database is the plain token
    with reg.engine.connect() as conn:
        for table in sa.inspect(conn).get_table_names():
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                assert not any(token in str(v) or pipeline in str(v) for v in row)
        stored = conn.execute(sa.text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert hashlib.sha256(token.encode()).hexdigest() in stored
    if "://" not in url:
        raw = Path(url).read_bytes()
        assert token.encode() not in raw and pipeline.encode() not in raw
    reg.revoke_token(info.token_id)
    assert reg.verify_token(token) is None


# --- migrations ------------------------------------------------------------------------------


def test_a_fresh_database_is_migrated_to_head_and_reopening_is_a_no_op(url, clock):
    from alembic.script import ScriptDirectory

    import datalever.registry.registry as module

    head = ScriptDirectory(str(Path(module.__file__).parent / "migrations")).get_current_head()
    reg = Registry(url, clock=clock)
    assert reg.revision() == head
    ann = reg.create_account("ann")
    with reg.engine.connect() as conn:
        names = set(sa.inspect(conn).get_table_names())
        version = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
        assert list(version) == [head]
    assert {"accounts", "identities", "works", "datasets", "api_tokens", "events"} <= names
    reg.close()
    digest = hashlib.sha256(Path(url).read_bytes()).hexdigest() if "://" not in url else None
    again = Registry(url, clock=clock)
    assert again.revision() == head and again.event_count() == 1
    assert again.events()[0]["account_id"] == ann
    again.close()
    if digest is not None:  # not a byte of the file changed
        assert hashlib.sha256(Path(url).read_bytes()).hexdigest() == digest


def test_a_registry_from_the_first_release_opens_in_this_one(url, clock):
    """A registry written at the first schema revision is upgraded in place on opening, and
    keeps every record and every answer."""
    from alembic import command
    from alembic.config import Config

    import datalever.registry.registry as module

    reg = Registry(url, clock=clock)
    ann = reg.create_account("ann")
    reg.register_work(ann, "https://ann.example/a")
    reg.set_dataset_policy("d", "opt-out")
    reg.set_preference(ann, "train-ai", "reserved", work="https://ann.example/a")
    before = reg.decide("d", ["https://ann.example/a", "https://x.example/"], "train-ai")
    events = reg.events()
    with reg._write("going back to the first revision") as conn:
        config = Config()
        config.set_main_option("script_location", str(Path(module.__file__).parent / "migrations"))
        config.attributes["connection"] = conn
        command.downgrade(config, "r0001")
    assert reg.revision() == "r0001"
    reg.close()
    again = Registry(url, clock=clock)
    assert again.revision() != "r0001"
    with again.engine.connect() as conn:
        indexes = {ix["name"] for ix in sa.inspect(conn).get_indexes("events")}
    assert "ix_events_dataset" in indexes
    assert again.events() == events
    assert again.decide("d", ["https://ann.example/a", "https://x.example/"], "train-ai") == before
    again.close()


def test_a_registry_from_a_newer_release_is_refused(url, clock):
    Registry(url, clock=clock).close()
    engine = sa.create_engine(url if "://" in url else f"sqlite:///{url}")
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {VERSION_TABLE} SET version_num = 'r9999'"))
    engine.dispose()
    with pytest.raises(DataleverError, match="newer datalever"):
        Registry(url, clock=clock)


# --- scale and concurrency -------------------------------------------------------------------


def _bulk_registry(url: str, n: int) -> tuple[Registry, list[str]]:
    """A registry with ``n`` works over 100 accounts, a quarter of them reserved, by direct
    inserts (the write path is tested above; this builds scale quickly)."""
    from datalever.registry import schema as s

    reg = Registry(url)
    reg.set_dataset_policy("big", "opt-out")
    accounts = [reg.create_account(f"acct{i}") for i in range(100)]
    works = [f"https://site.example/w/{i}" for i in range(n)]
    with reg._write("bulk set-up") as conn:
        at = reg._append(conn, "work_registered")
        conn.execute(
            s.works.insert(),
            [
                {
                    "account_id": accounts[i % 100],
                    "kind": "url",
                    "ref": parse_work(w)[1],
                    "event_id": at,
                }
                for i, w in enumerate(works)
            ],
        )
    with reg.engine.connect() as conn:  # closed at once: a held reader would block writers
        ids = {ref: wid for wid, ref in conn.execute(sa.select(s.works.c.id, s.works.c.ref))}
    with reg._write("bulk set-up") as conn:
        for i, w in enumerate(works[::4]):
            reg._append(
                conn,
                "preference_set",
                account_id=accounts[(4 * i) % 100],
                work_id=ids[parse_work(w)[1]],
                purpose="train-ai",
                value="reserved",
            )
    return reg, works


def test_bulk_decide_of_10000_works(url):
    reg, works = _bulk_registry(url, 10_000)
    statements: list[str] = []
    sa.event.listen(reg.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    got = reg.decide("big", works, "train-genai")
    assert len(got) == 10_000
    assert sum(d.outcome == "reserved" for d in got) == 2_500
    assert [d.work for d in got] == [parse_work(w)[1] for w in works]
    assert len([q for q in statements if "events" in q or "works" in q]) <= 4
    # Its speed is measured in benchmarks/registry_bulk.py, not here.
    reg.close()


def test_two_writers_lose_no_event(url):
    Registry(url).close()
    setup = Registry(url)
    accounts = [setup.create_account("ann"), setup.create_account("bob")]
    for i, account in enumerate(accounts):
        setup.register_work(account, f"https://site.example/{i}")
    before = setup.event_count()
    acknowledged = []
    errors = []

    def writer(index: int) -> None:
        reg = Registry(url)  # each writer opens its own registry, as two processes would
        try:
            for n in range(40):
                value = "reserved" if n % 2 else "allowed"
                work = f"https://site.example/{index}" if n % 3 else None
                acknowledged.append(reg.set_preference(accounts[index], "train-ai", value, work))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)
        finally:
            reg.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(acknowledged) == 80 and len(set(acknowledged)) == 80
    assert setup.event_count() - before == len(acknowledged)
    log = setup.events()
    assert [e["at_us"] for e in log] == sorted(e["at_us"] for e in log)
    setup.close()
