"""The results store refuses what it cannot keep safe, without changing it: databases of other
applications, damaged files, stores whose results would vanish, stores it cannot write, URLs
whose driver is missing. Failures while writing leave everything stored as it was."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import random
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from datalever.engine import run_spec
from datalever.errors import DataleverError
from datalever.spec import parse_spec
from datalever.store import RESULT_COLUMNS, ResultsStore, ScenarioResult
from tests.conftest import SMALL_SPEC
from tests.test_cli import assert_clear_error, datalever

ONE_FOLD = SMALL_SPEC.replace("run_folds = 2", "run_folds = 1")


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def real_store(ml100k, tmp_path_factory) -> Path:
    """A store written by a real run (one fold of the small spec); tests work on copies."""
    path = tmp_path_factory.mktemp("store") / "real.sqlite"
    run_spec(parse_spec(ONE_FOLD), ResultsStore(path), data=ml100k)
    return path


@pytest.fixture
def store_copy(real_store, tmp_path) -> Path:
    path = tmp_path / "copy.sqlite"
    shutil.copy(real_store, path)
    return path


def _row(key: str = "extra") -> ScenarioResult:
    row = dict(
        learner="item_mean",
        lever="strike",
        collective_kind="size",
        collective="0.5",
        size=0.5,
        count=None,
        grp=None,
        sample=0,
        fold=0,
        n_participants=1,
        path="auto",
        seconds=0.0,
        finished_at="2026-01-01T00:00:00",
    )
    metric = dict(eval_group="everyone", value=0.5, baseline=0.5, reference=0.5, n_users=1)
    return ScenarioResult(key, row, [{**metric, "metric": f"m{i}"} for i in range(400)])


# --- drivers and URLs -------------------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("psycopg") is not None, reason="psycopg installed")
def test_postgres_without_its_driver_names_the_extra():
    for url in ("postgresql+psycopg://u@h/db", "postgresql://u@h/db", "postgres://u:pw@h/db"):
        with pytest.raises(DataleverError, match=r"pip install 'datalever\[postgres\]'") as e:
            ResultsStore(url)
        assert "pw" not in str(e.value)
    assert_clear_error(
        datalever("runs", "--store", "postgresql+psycopg://u@h/db"), "datalever[postgres]"
    )


@pytest.mark.skipif(importlib.util.find_spec("MySQLdb") is not None, reason="MySQLdb installed")
def test_other_database_without_its_driver_names_the_module():
    with pytest.raises(DataleverError, match="MySQLdb.*pip install mysqlclient"):
        ResultsStore("mysql://u@h/db")


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("postgresql://user:secret@host:notaport/db", "not a valid database URL"),
        ("nosuchdb://host/db", "does not know"),
    ],
)
def test_bad_urls_are_refused_without_showing_passwords(url, needle):
    with pytest.raises(DataleverError, match=needle) as e:
        ResultsStore(url)
    assert "secret" not in str(e.value)


@pytest.mark.parametrize(
    "location",
    ["", "   ", ":memory:", "sqlite://", "sqlite:///:memory:", "sqlite:///file::memory:?uri=true"],
)
def test_stores_whose_results_would_vanish_are_refused(location, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataleverError, match="blank|in memory"):
        ResultsStore(location)
    assert list(tmp_path.iterdir()) == []


def test_memory_store_refused_by_run(tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(ONE_FOLD)
    assert_clear_error(datalever("run", str(spec), "--store", ":memory:"), "in memory")
    assert_clear_error(datalever("run", str(spec), "--store", " "), "blank")


def test_very_long_path_gets_a_clear_error(tmp_path):
    with pytest.raises(DataleverError, match="too long"):
        ResultsStore(tmp_path / ("a" * 5000))
    deep = tmp_path.joinpath(*["b" * 200] * 25) / "r.sqlite"
    with pytest.raises(DataleverError, match="too long"):
        ResultsStore(deep)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_device_is_not_a_store():
    with pytest.raises(DataleverError, match="not a regular file"):
        ResultsStore("/dev/full")


@pytest.fixture(name="postgres_url")
def _postgres_url():
    """A fresh PostgreSQL database, when DATALEVER_TEST_POSTGRES names a server's URL (e.g.
    postgresql://postgres@127.0.0.1:5432/postgres) and psycopg is installed."""
    import os
    import uuid

    server = os.environ.get("DATALEVER_TEST_POSTGRES")
    if not server:
        pytest.skip("set DATALEVER_TEST_POSTGRES to test a PostgreSQL store")
    pytest.importorskip("psycopg")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"datalever_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    yield sa.engine.make_url(server).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {name} WITH (FORCE)")
    admin.dispose()


# --- recognising a datalever store ------------------------------------------------------------


def _foreign(path: Path, tables: dict[str, str]) -> Path:
    conn = sqlite3.connect(path)
    for name, columns in tables.items():
        conn.execute(f"CREATE TABLE {name} ({columns})")
        conn.execute(f"INSERT INTO {name} VALUES ({', '.join('1' * len(columns.split(',')))})")
    conn.commit()
    conn.close()
    return path


@pytest.mark.parametrize(
    "tables",
    [
        {"customers": "id, name"},
        {"results": "id, score", "players": "id, name"},
        {"results": "key, eval_group, metric, value"},
        # datalever's table names, with columns datalever never wrote
        {
            "runs": "run_id, owner",
            "scenarios": "key, flavour",
            "run_scenarios": "run_id, key",
            "results": "key, points",
        },
    ],
)
def test_another_applications_database_is_refused_and_untouched(tables, tmp_path):
    path = _foreign(tmp_path / "app.sqlite", tables)
    before = sha256(path)
    with pytest.raises(DataleverError, match="not a datalever results store"):
        ResultsStore(path)
    assert sha256(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]  # no journal left


def test_run_refuses_another_applications_database(tmp_path):
    path = _foreign(tmp_path / "app.sqlite", {"results": "id, score"})
    before = sha256(path)
    spec = tmp_path / "spec.toml"
    spec.write_text(ONE_FOLD)
    assert_clear_error(
        datalever("run", str(spec), "--store", str(path), "-q"), "not a datalever results store"
    )
    assert_clear_error(datalever("results", "--store", str(path)), "not a datalever")
    assert sha256(path) == before


FIRST_RELEASE_SCHEMA = """
CREATE TABLE runs (run_id VARCHAR(32) PRIMARY KEY, name VARCHAR(200), dataset VARCHAR(500),
    checksum VARCHAR(64), spec TEXT, n_planned INTEGER, created_at VARCHAR(40));
CREATE TABLE scenarios (key VARCHAR(64) PRIMARY KEY, learner VARCHAR(100), lever VARCHAR(100),
    collective_kind VARCHAR(20), collective VARCHAR(200), size FLOAT, count INTEGER,
    grp VARCHAR(200), sample INTEGER, fold INTEGER, n_participants INTEGER, seconds FLOAT,
    finished_at VARCHAR(40));
CREATE TABLE run_scenarios (run_id VARCHAR(32), key VARCHAR(64), PRIMARY KEY (run_id, key));
CREATE TABLE results (key VARCHAR(64), eval_group VARCHAR(40), metric VARCHAR(40), value FLOAT,
    baseline FLOAT, reference FLOAT, n_users INTEGER, PRIMARY KEY (key, eval_group, metric));
INSERT INTO runs VALUES ('r1', 'old', 'movielens-100k', 'c', '{}', 1, '2025-01-01T00:00:00');
INSERT INTO scenarios VALUES ('k1', 'item_mean', 'strike', 'size', '0.1', 0.1, NULL, NULL, 0, 0,
    94, 0.5, '2025-01-01T00:00:01');
INSERT INTO run_scenarios VALUES ('r1', 'k1');
INSERT INTO results VALUES ('k1', 'everyone', 'ndcg@10', 0.25, 0.3, 0.1, 943);
"""


def test_store_of_an_earlier_release_is_adopted(tmp_path):
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(FIRST_RELEASE_SCHEMA)
    conn.close()
    store = ResultsStore(path)
    df = store.results("r1")
    assert df["value"].tolist() == [0.25] and df["path"].isna().all()
    assert store.latest_run() == "r1" and store.answer("r1") is None
    tables = set(sa.inspect(store.engine).get_table_names())
    assert {"datalever_meta", "claims"} <= tables
    ResultsStore(path)  # and it opens again as a datalever store


def test_store_of_a_newer_release_is_refused(store_copy):
    conn = sqlite3.connect(store_copy)
    conn.execute("UPDATE datalever_meta SET value = '99' WHERE name = 'schema_version'")
    conn.commit()
    conn.close()
    before = sha256(store_copy)
    with pytest.raises(DataleverError, match="newer datalever"):
        ResultsStore(store_copy)
    assert sha256(store_copy) == before


def test_empty_file_becomes_a_store(tmp_path):
    path = tmp_path / "empty.sqlite"
    path.touch()
    store = ResultsStore(path)
    assert store.runs().empty
    assert list(store.results("none").columns) == RESULT_COLUMNS


# --- damaged stores ---------------------------------------------------------------------------


def _pages(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    size, count = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("page_size", "page_count"))
    conn.close()
    return size, count


def _junk_page(path: Path) -> None:
    size, count = _pages(path)
    with path.open("r+b") as f:
        f.seek(size * (count // 2))
        f.write(random.Random(0).randbytes(size))


def _flip_header_bits(path: Path) -> None:
    """Bit flips in the middle of the file: in the b-tree header of each page of its middle
    half (SQLite keeps no checksums, so a flip inside a stored number is beyond any check)."""
    size, count = _pages(path)
    data = bytearray(path.read_bytes())
    rng = random.Random(1)
    for page in range(count // 4, 3 * count // 4 + 1):
        for _ in range(2):
            data[page * size + rng.randrange(8)] ^= 1 << rng.randrange(8)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_junk_page, _flip_header_bits])
def test_damaged_store_is_refused_and_never_written(damage, store_copy, tmp_path):
    damage(store_copy)
    before = sha256(store_copy)
    with pytest.raises(DataleverError, match="damaged") as e:
        ResultsStore(store_copy)
    assert "\n" not in str(e.value) and "backup" in str(e.value)
    spec = tmp_path / "spec.toml"
    spec.write_text(ONE_FOLD)
    assert_clear_error(datalever("run", str(spec), "--store", str(store_copy), "-q"), "damaged")
    assert_clear_error(datalever("results", "--store", str(store_copy)), "damaged")
    assert sha256(store_copy) == before


def test_random_bytes_are_not_a_store(tmp_path):
    path = tmp_path / "random.sqlite"
    path.write_bytes(random.Random(2).randbytes(64 * 1024))
    before = sha256(path)
    with pytest.raises(DataleverError, match="not a SQLite database, or it is damaged"):
        ResultsStore(path)
    assert sha256(path) == before


def test_damage_found_while_open_stops_every_write(store_copy):
    store = ResultsStore(store_copy)
    run_id = store.latest_run()
    size, count = _pages(store_copy)
    with store_copy.open("r+b") as f:  # every page but the first (the header) turns to junk
        f.seek(size)
        f.write(random.Random(3).randbytes(size * (count - 1)))
    store.engine.dispose()  # as a later connection would, read the file as it now is
    with pytest.raises(DataleverError, match="damaged"):
        store.results(run_id)
    before = sha256(store_copy)
    with pytest.raises(DataleverError, match="damaged"):
        store.write(run_id, _row())
    with pytest.raises(DataleverError, match="damaged"):
        store.start_run("new", "n", "d", "c", {}, 1)
    assert sha256(store_copy) == before


# --- stores that cannot be written ----------------------------------------------------------


def test_read_only_store_reads_and_refuses_writes(store_copy, ml100k):
    before = sha256(store_copy)
    store = ResultsStore(f"sqlite:///file:{store_copy}?mode=ro&uri=true")
    run_id = store.latest_run()
    n = store.count(run_id)
    assert n > 0 and not store.results(run_id).empty
    spec = parse_spec(ONE_FOLD.replace("sizes = [0.0, 0.2, 0.6]", "sizes = [0.0, 0.3]"))
    with pytest.raises(DataleverError, match="read-only"):
        run_spec(spec, store, data=ml100k)
    with pytest.raises(DataleverError, match="read-only"):
        store.write(run_id, _row())
    assert sha256(store_copy) == before
    assert ResultsStore(store_copy).count(run_id) == n


def _as_ordinary_user() -> list[str]:
    """A command prefix that runs without the power to ignore file permissions (root's
    CAP_DAC_OVERRIDE), so read-only files and folders are read-only."""
    if os.geteuid() != 0:
        return []
    if shutil.which("setpriv") is None:
        pytest.skip("running as root without setpriv: permissions cannot be enforced")
    drop = "-dac_override,-dac_read_search"
    return ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"]


def test_read_only_file_and_folder_refuse_writes_and_keep_the_data(store_copy, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    path = folder / "r.sqlite"
    shutil.move(store_copy, path)
    spec = tmp_path / "spec.toml"
    spec.write_text(ONE_FOLD)
    before = sha256(path)
    path.chmod(0o444)
    folder.chmod(0o555)
    try:
        prefix = _as_ordinary_user()
        base = [*prefix, sys.executable, "-m", "datalever"]

        def cli(*args: str) -> subprocess.CompletedProcess:
            return subprocess.run([*base, *args], capture_output=True, text=True, timeout=300)

        assert cli("runs", "--store", str(path)).returncode == 0
        assert_clear_error(cli("run", str(spec), "--store", str(path), "-q"), "read-only")
        assert_clear_error(
            cli("run", str(spec), "--store", str(folder / "new.sqlite"), "-q"), "Cannot open"
        )
    finally:
        folder.chmod(0o755)
        path.chmod(0o644)
    assert sha256(path) == before
    assert sorted(p.name for p in folder.iterdir()) == ["r.sqlite"]


def _limit_pages(store: ResultsStore, path: Path) -> None:
    """SQLite's own page limit: when a write needs more pages it fails exactly as on a full
    disk (SQLITE_FULL)."""
    limit = _pages(path)[1]

    @sa.event.listens_for(store.engine, "connect")
    def _cap(dbapi_connection, _record) -> None:
        dbapi_connection.execute(f"PRAGMA max_page_count = {limit}")

    store.engine.dispose()


def test_full_disk_while_writing_keeps_the_store_as_it_was(store_copy, ml100k):
    store = ResultsStore(store_copy)
    run_id = store.latest_run()
    before = store.results(run_id)
    _limit_pages(store, store_copy)
    with pytest.raises(DataleverError, match="is full.*resumes"):
        store.write(run_id, _row())
    spec = parse_spec(ONE_FOLD.replace("sizes = [0.0, 0.2, 0.6]", "sizes = [0.1, 0.3, 0.5]"))
    with pytest.raises(DataleverError, match="is full"):
        run_spec(spec, store, data=ml100k)
    after = ResultsStore(store_copy)
    assert after.results(run_id).equals(before)
    assert "extra" not in set(after.results(run_id)["key"])


# --- runs that stopped, and refusals that leave nothing -------------------------------------


def test_results_of_a_run_without_scenarios_have_the_columns(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    store.start_run("empty", "n", "d", "c", {}, 3)
    df = store.results("empty")
    assert df.empty and list(df.columns) == RESULT_COLUMNS


def test_run_that_stopped_before_any_scenario_does_not_hide_the_latest(store_copy):
    store = ResultsStore(store_copy)
    finished = store.latest_run()
    store.start_run("crashed", "n", "d", "c", {}, 3)
    assert store.runs()["run_id"].iloc[-1] == "crashed"
    assert store.latest_run() == finished
    with pytest.raises(DataleverError, match="no finished scenario"):
        store.require_results("crashed")
    with pytest.raises(DataleverError, match="No run"):
        store.require_results("nonesuch")
    store.require_results(finished)


def test_store_with_only_stopped_runs_says_so(tmp_path):
    store = ResultsStore(tmp_path / "r.sqlite")
    with pytest.raises(DataleverError, match="no runs yet"):
        store.latest_run()
    store.start_run("crashed", "n", "d", "c", {}, 3)
    with pytest.raises(DataleverError, match="has a finished scenario"):
        store.latest_run()


@pytest.mark.parametrize(
    ("kwargs", "spec_text", "needle"),
    [
        ({"jobs": 0}, ONE_FOLD, "jobs"),
        ({"jobs": 10**20}, ONE_FOLD, "jobs"),
        ({"path": "fastest"}, ONE_FOLD, "fitting path"),
        ({}, ONE_FOLD.replace('groups = ["gender:F"]', "counts = [5000]"), "exceed"),
    ],
)
def test_refused_run_leaves_nothing_in_the_store(kwargs, spec_text, needle, store_copy, ml100k):
    before = sha256(store_copy)
    store = ResultsStore(store_copy)
    with pytest.raises(DataleverError, match=needle):
        run_spec(parse_spec(spec_text), store, data=ml100k, **kwargs)
    assert sha256(store_copy) == before


def test_a_scenario_stored_twice_is_linked_not_duplicated(store_copy):
    store = ResultsStore(store_copy)
    assert store.write("r-a", _row("shared")) is True
    assert store.write("r-b", _row("shared")) is False
    with store.engine.connect() as conn:
        n = conn.exec_driver_sql("SELECT count(*) FROM results WHERE key = 'shared'").scalar()
    assert n == 400
    assert len(store.results("r-a")) == len(store.results("r-b")) == 400


def test_open_of_a_store_of_thousands_of_scenarios_is_cheap(tmp_path):
    """The integrity check on open reads the whole file; it must stay a small cost."""
    import time

    store = ResultsStore(tmp_path / "big.sqlite")
    rows = [_row(f"k{i}") for i in range(3000)]
    with store._write("test") as conn:
        from datalever.store import results, scenarios

        conn.execute(scenarios.insert(), [{"key": r.key, **r.row} for r in rows])
        conn.execute(results.insert(), [{"key": r.key, **m} for r in rows for m in r.metrics[:9]])
    started = time.perf_counter()
    ResultsStore(tmp_path / "big.sqlite")
    assert time.perf_counter() - started < 1.0
    assert os.path.getsize(tmp_path / "big.sqlite") > 2_000_000


def test_postgresql_database_of_another_application_is_refused(postgres_url):
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE results (id integer, score float)")
        conn.exec_driver_sql("INSERT INTO results VALUES (1, 2.0)")
    with pytest.raises(DataleverError, match="not a datalever results store"):
        ResultsStore(postgres_url)
    assert sa.inspect(engine).get_table_names() == ["results"]
    engine.dispose()


def test_postgresql_store_is_created_and_reopened(postgres_url):
    store = ResultsStore(postgres_url)
    store.start_run("r", "n", "d", "c", {}, 1)
    assert store.write("r", _row("k")) and not store.write("r", _row("k"))
    store.engine.dispose()
    again = ResultsStore(postgres_url)
    assert again.latest_run() == "r" and len(again.results("r")) == 400
    again.engine.dispose()


def test_helpers_for_commands_find_store_files(store_copy, tmp_path):
    from datalever.store import looks_like_sqlite, sqlite_path

    assert sqlite_path(store_copy) == store_copy
    assert sqlite_path(f"sqlite:///file:{store_copy}?mode=ro&uri=true") == store_copy
    assert sqlite_path("postgresql://u@h/db") is None and sqlite_path(":memory:") is None
    assert looks_like_sqlite(store_copy)
    page = tmp_path / "report.html"
    page.write_text("<html></html>")
    assert not looks_like_sqlite(page) and not looks_like_sqlite(tmp_path / "missing")
