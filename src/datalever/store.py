"""The results store: SQLAlchemy Core over SQLite (a file) or any database URL.

Each scenario's result is written in one transaction, keyed by the scenario's stable hash, so a
run that is interrupted loses at most the scenarios in flight and resumes where it stopped.
Scenarios are shared between runs: a run whose plan contains a scenario already stored (same
data, protocol, seed, learner, lever, collective, sample, fold) links to it instead of
recomputing it.

The store's guarantees:

- It only ever writes into a database it recognises as its own (a ``datalever_meta`` table with
  the schema version), into a new empty one, or into a store written by an earlier release
  (the four tables ``runs``, ``scenarios``, ``run_scenarios``, ``results`` and nothing else),
  which it adopts. Any other database is refused before a single byte of it changes.
- A SQLite file is checked (``PRAGMA quick_check``) when it is opened; a damaged file is
  refused, and damage found later stops every further write.
- Writes are idempotent: a scenario another run stored first is linked, not inserted twice.
  Runs sharing a store claim the scenarios they compute (``claims``: key, owner, lease), so
  concurrent runs split the work instead of colliding; a claim that is not renewed expires.
- Every database failure (read-only, full disk, locked, unreachable, damaged) reaches the user
  as a ``DataleverError``; the transaction it interrupted is rolled back, so nothing stored
  changes.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from datalever.errors import DataleverError

#: 1: the first releases (no marker); 2: the marker table and claims; 3: lever parameters.
SCHEMA_VERSION = 3
"""Version 1 was the four tables of the first releases (no marker); 2 adds the marker and
claims."""
BUSY_TIMEOUT_S = 30.0
"""How long a SQLite writer waits for another process's transaction before giving up."""
QUICK_CHECK_MAX_BYTES = 1024**3
"""Files larger than this skip the integrity check on open (it reads every page: about 2 ms per
MB, 11 ms for a store of 5,000 scenarios); damage met later is still caught."""
_CHUNK = 500  # keys per IN (...) clause, below every database's parameter limit

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("run_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200)),
    sa.Column("dataset", sa.String(500)),
    sa.Column("checksum", sa.String(64)),
    sa.Column("spec", sa.Text),
    sa.Column("n_planned", sa.Integer),
    sa.Column("created_at", sa.String(40)),
    sa.Column("answer", sa.Text, nullable=True),
)

scenarios = sa.Table(
    "scenarios",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("learner", sa.String(100)),
    sa.Column("lever", sa.String(100)),
    # The lever's parameters as JSON (any lever fills it; none for no-action scenarios).
    sa.Column("lever_params", sa.Text, nullable=True),
    sa.Column("collective_kind", sa.String(20)),
    sa.Column("collective", sa.String(200)),
    sa.Column("size", sa.Float, nullable=True),
    sa.Column("count", sa.Integer, nullable=True),
    sa.Column("grp", sa.String(200), nullable=True),
    sa.Column("sample", sa.Integer),
    sa.Column("fold", sa.Integer),
    sa.Column("n_participants", sa.Integer),
    sa.Column("path", sa.String(40)),
    sa.Column("seconds", sa.Float),
    sa.Column("finished_at", sa.String(40)),
)

run_scenarios = sa.Table(
    "run_scenarios",
    metadata,
    sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.run_id"), primary_key=True),
    sa.Column("key", sa.String(64), sa.ForeignKey("scenarios.key"), primary_key=True),
)

results = sa.Table(
    "results",
    metadata,
    sa.Column("key", sa.String(64), sa.ForeignKey("scenarios.key"), primary_key=True),
    sa.Column("eval_group", sa.String(40), primary_key=True),
    sa.Column("metric", sa.String(40), primary_key=True),
    sa.Column("value", sa.Float, nullable=True),
    sa.Column("baseline", sa.Float, nullable=True),
    sa.Column("reference", sa.Float, nullable=True),
    sa.Column("n_users", sa.Integer),
)

meta = sa.Table(
    "datalever_meta",
    metadata,
    sa.Column("name", sa.String(40), primary_key=True),
    sa.Column("value", sa.String(200)),
)

claims = sa.Table(
    "claims",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("owner", sa.String(64)),
    sa.Column("expires_at", sa.Float),
)

RESULT_COLUMNS = [c.name for c in scenarios.columns] + [
    "eval_group",
    "metric",
    "value",
    "baseline",
    "reference",
    "n_users",
]
"""The columns of ``ResultsStore.results``, empty or not."""

# What a store of the first releases holds: these tables, each with at least these columns
# (later columns are added on open) and none that datalever does not know.
_LEGACY_TABLES = {"runs", "scenarios", "run_scenarios", "results"}
_LEGACY_REQUIRED = {
    "runs": {"run_id", "name", "dataset", "checksum", "spec", "n_planned", "created_at"},
    "scenarios": {c.name for c in scenarios.columns} - {"path", "lever_params"},
    "run_scenarios": {"run_id", "key"},
    "results": {c.name for c in results.columns},
}

# Python modules of database drivers, and the package that provides each.
_DRIVER_PACKAGES = {
    "psycopg": "'datalever[postgres]'",
    "psycopg2": "psycopg2-binary",
    "asyncpg": "asyncpg",
    "pg8000": "pg8000",
    "MySQLdb": "mysqlclient",
    "pymysql": "pymysql",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "oracledb": "oracledb",
    "cx_Oracle": "cx_Oracle",
    "pyodbc": "pyodbc",
    "pymssql": "pymssql",
}


@dataclass
class ScenarioResult:
    """What the engine hands the store for one finished scenario."""

    key: str
    row: dict
    metrics: list[dict]


def _add_missing_columns(conn: sa.Connection) -> None:
    """Bring a store written by an earlier datalever up to date. Changes to the schema are only
    ever new nullable columns, so adding them keeps every stored result as it was."""
    inspector = sa.inspect(conn)
    for table in metadata.sorted_tables:
        have = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in have:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}'))


def store_url(location: str | Path) -> str:
    """The database URL of a --store value: a URL as given, anything else a SQLite file."""
    text = str(location)
    if not text.strip():
        raise DataleverError(
            "The results store location is blank.",
            "give --store a SQLite file path such as results.sqlite, or a database URL.",
        )
    return text if "://" in text else f"sqlite:///{Path(text).expanduser()}"


def _shorten(text: str, limit: int = 120) -> str:
    """User text in a message, cut to a readable length."""
    return text if len(text) <= limit else f"{text[: limit - 40]}…{text[-30:]}"


def _mask(url: str) -> str:
    """A URL with its password, if any, hidden."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def _chunks(keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), _CHUNK):
        yield keys[start : start + _CHUNK]


def _insert_ignore(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert ``rows``, skipping those whose primary key another writer stored first."""
    if not rows:
        return
    name = conn.dialect.name
    if name in ("sqlite", "postgresql"):
        if name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        conn.execute(insert(table).on_conflict_do_nothing(), rows)
        return
    for row in rows:
        try:
            with conn.begin_nested():
                conn.execute(table.insert().values(**row))
        except IntegrityError:
            pass


def _make_engine(url: sa.URL, shown: str) -> sa.Engine:
    """An engine for ``url``; a missing driver is named with the package that provides it."""
    backend = url.get_backend_name()
    connect_args: dict = {}
    if backend == "sqlite":
        connect_args["timeout"] = BUSY_TIMEOUT_S
    elif backend == "postgresql" and "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = 10
    try:
        engine = sa.create_engine(url, connect_args=connect_args)
    except ImportError as e:
        module = (e.name or str(e)).split(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        if backend == "postgresql":
            problem = (
                f"The results store {shown} is a PostgreSQL database, but its Python driver "
                f"({module}) is not installed."
            )
        else:
            problem = (
                f"The results store {shown} needs the Python database driver module "
                f"{module!r}, which is not installed."
            )
        raise DataleverError(
            problem, f"pip install {package}, or give --store a SQLite file path."
        ) from None
    except sa.exc.NoSuchModuleError:
        raise DataleverError(
            f"The results store {shown} names a kind of database datalever does not know "
            f"({url.drivername!r}).",
            "give --store a SQLite file path or a URL such as postgresql://user@host/dbname.",
        ) from None
    except (SQLAlchemyError, ValueError, TypeError) as e:
        raise DataleverError(
            f"Cannot use the results store {shown}: {_mask(str(e).splitlines()[0])}.",
            "give --store a SQLite file path or a database URL such as "
            "postgresql://user@host/dbname.",
        ) from None
    if backend == "sqlite":
        # pysqlite starts transactions lazily and never before DDL; datalever begins them
        # itself, so that creating the schema is atomic and a writer takes the write lock at
        # BEGIN (IMMEDIATE) and waits its turn instead of failing on a lock upgrade.
        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn: sa.Connection) -> None:
            write = conn.get_execution_options().get("datalever_write", False)
            conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine


def _sqlite_target(url: sa.URL) -> str | None:
    """The file of a SQLite URL (``sqlite:///path`` or a ``file:`` URI), None if in memory."""
    database = url.database or ""
    uri = str(url.query.get("uri", "")).lower() in ("true", "1")
    target = database
    if uri and target.startswith("file:"):
        target = target.removeprefix("file:").removeprefix("//localhost").split("?")[0]
    in_memory = (
        not target.strip()
        or target == ":memory:"
        or (uri and database.startswith("file::memory:"))
        or str(url.query.get("mode", "")) == "memory"
    )
    return None if in_memory else target


def sqlite_path(location: str | Path) -> Path | None:
    """The file a --store value names if it is a SQLite store, else None (a database server, or
    a location the store refuses anyway). Lets a command check that a store exists before
    opening it, which would create it."""
    try:
        url = sa.engine.make_url(store_url(location))
    except (SQLAlchemyError, ValueError, DataleverError):
        return None
    if not url.drivername.startswith("sqlite"):
        return None
    target = _sqlite_target(url)
    return None if target is None else Path(target)


def looks_like_sqlite(path: str | Path) -> bool:
    """Whether ``path`` is a SQLite database file (its 16-byte header), such as a results store
    that must never be overwritten by an output file."""
    try:
        with open(path, "rb") as f:
            return f.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


def claim_owner() -> str:
    """A name for one run's claims that says where it runs (host and process), so that runs on
    the same machine can tell at once that a killed run's claims are dead."""
    return f"{_machine()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _machine() -> str:
    """This machine as claims name it: the host name, and on Linux the boot and the process
    namespace, so two containers or cloned nodes that share a host name are told apart (a
    process id means something only within one of them)."""
    parts = [socket.gethostname().replace(":", "_")]
    with contextlib.suppress(OSError):
        parts.append(Path("/proc/sys/kernel/random/boot_id").read_text().strip()[:8])
        parts.append("".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit()))
    return "/".join(parts)


def _owner_alive(owner: str) -> bool:
    """False only for an owner on this machine whose process has ended; owners elsewhere are
    trusted until their lease lapses."""
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _machine() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True
    return True


class ResultsStore:
    """Results of every run, in one database."""

    def __init__(self, location: str | Path) -> None:
        self.url = store_url(location)
        # How messages name the store: a path as given, a URL without its password.
        self.shown = _shorten(str(location) if "://" not in str(location) else _mask(self.url))
        try:
            parsed = sa.engine.make_url(self.url)
        except (SQLAlchemyError, ValueError) as e:
            raise DataleverError(
                f"The results store {self.shown} is not a valid database URL ({_mask(str(e))}).",
                "give --store a SQLite file path or a URL such as postgresql://user@host/dbname.",
            ) from None
        if parsed.drivername.split("+")[0] == "postgres":  # the scheme many hosts hand out
            parsed = parsed.set(drivername=parsed.drivername.replace("postgres", "postgresql"))
        self._damaged: str | None = None
        self.path: Path | None = None
        if parsed.drivername.startswith("sqlite"):
            self.path = self._check_sqlite_location(parsed)
        self.engine = _make_engine(parsed, self.shown)
        try:
            self._open()
        except BaseException:
            self.engine.dispose()
            raise

    # --- opening ---------------------------------------------------------------------------

    def _check_sqlite_location(self, url: sa.URL) -> Path:
        """Refuse stores whose results would vanish, and paths SQLite cannot open."""
        target = _sqlite_target(url)
        if target is None:
            raise DataleverError(
                f"The results store {self.shown} is in memory: every result would vanish when "
                "datalever exits.",
                "give --store a SQLite file path such as results.sqlite.",
            )
        path = Path(target)
        shown = _shorten(target)
        try:
            if path.exists() and path.is_dir():
                raise DataleverError(
                    f"The store {shown} is a directory.", "give a file path such as results.sqlite."
                )
            if path.exists() and not path.is_file():
                raise DataleverError(
                    f"The store {shown} is not a regular file (a device, pipe or socket).",
                    "give --store a SQLite file path such as results.sqlite.",
                )
            if not path.parent.exists():
                raise DataleverError(
                    f"Cannot open the store {shown}: the folder {_shorten(str(path.parent))} "
                    "does not exist.",
                    "create the folder, or give another --store path.",
                )
        except OSError as e:
            if e.errno == errno.ENAMETOOLONG:
                raise DataleverError(
                    f"The store path is too long for this system ({len(target)} characters).",
                    "give --store a shorter path.",
                ) from None
            raise DataleverError(
                f"Cannot open the store {shown}: {e.strerror or e}.",
                "give another --store path.",
            ) from None
        return path

    def _open(self) -> None:
        """Check a SQLite file's integrity, then create, migrate or adopt the schema, or refuse
        a database that is not a datalever store without changing it."""
        if self.path is not None:
            self._quick_check()
        with self._read("opening") as conn:
            state = _schema_state(conn)
        if state == "current":
            return
        self._refuse_unless_ours(state)
        try:
            with self._write("preparing") as conn:
                if conn.dialect.name == "postgresql":  # one creator at a time (SQLite: BEGIN
                    # IMMEDIATE already holds the write lock)
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(1685480497)"))
                state = _schema_state(conn)  # again, now that no one else can change it
                self._refuse_unless_ours(state)
                if state == "current":
                    return
                metadata.create_all(conn)
                _add_missing_columns(conn)
                _fill_lever_params(conn)
                conn.execute(meta.delete().where(meta.c.name == "schema_version"))
                conn.execute(meta.insert().values(name="schema_version", value=str(SCHEMA_VERSION)))
        except DataleverError:
            # A database without transactional DDL may have been prepared by another process
            # at the same moment; if so, use it as it now is.
            if self._damaged is not None:
                raise
            with self._read("opening") as conn:
                if _schema_state(conn) != "current":
                    raise

    def _refuse_unless_ours(self, state: str) -> None:
        if state.startswith("foreign:"):
            names = state.removeprefix("foreign:")
            raise DataleverError(
                f"The database {self.shown} is not a datalever results store: it holds other "
                f"tables ({_shorten(names, 160)}). datalever changed nothing in it.",
                "give --store a new file (or an empty database), or a datalever store.",
            )
        if state.startswith("newer:"):
            raise DataleverError(
                f"The results store {self.shown} was written by a newer datalever (schema "
                f"version {state.removeprefix('newer:')}; this one knows up to {SCHEMA_VERSION}).",
                "upgrade datalever (pip install -U datalever), or give another --store.",
            )

    def _quick_check(self) -> None:
        """Refuse a damaged SQLite file before reading or writing it. ``quick_check`` reads
        every page (see ``QUICK_CHECK_MAX_BYTES``) but skips the costlier cross-checks of
        indexes against tables."""
        assert self.path is not None
        try:
            if self.path.stat().st_size > QUICK_CHECK_MAX_BYTES:
                return
        except OSError:
            return  # a new file: nothing to check
        with self._read("opening") as conn:
            found = [r[0] for r in conn.exec_driver_sql("PRAGMA quick_check(5)")]
        if found != ["ok"]:
            problems = [
                line.strip()
                for f in found
                for line in str(f).splitlines()
                if line.strip() and not line.startswith("***")
            ]
            self._damaged = _shorten("; ".join(problems[:2]) or "integrity check failed", 160)
            raise self._damaged_error("opening")

    # --- errors ----------------------------------------------------------------------------

    def _damaged_error(self, action: str) -> DataleverError:
        detail = f" ({self._damaged})" if self._damaged else ""
        start = (
            f"Cannot open the results store {self.shown}: it"
            if action == "opening"
            else f"While {action}, the results store {self.shown} turned out to be damaged: it"
        )
        return DataleverError(
            f"{start} is not a SQLite database, or it is damaged{detail}. datalever will not "
            "write into it.",
            "restore the file from a backup, or give another --store (a new file starts an "
            "empty store).",
        )

    def _translate(self, e: BaseException, action: str) -> DataleverError:
        """One paragraph for a database failure; the transaction it broke has rolled back.
        The failure is looked for along the exception's chain, since cleaning up after it (such
        as rolling back) may fail in turn and hide it."""
        chain: list[BaseException] = []
        seen: BaseException | None = e
        while seen is not None and len(chain) < 10:
            chain.append(seen)
            seen = seen.__cause__ or seen.__context__
        for link in chain:
            found = self._classify(link, action)
            if found is not None:
                return found
        orig = getattr(e, "orig", None) or e
        message = _shorten((str(orig).splitlines() or [type(orig).__name__])[0], 300)
        if action == "opening":
            return DataleverError(
                f"Cannot open the results store {self.shown}: {message}.",
                "check the URL, that the database server runs and accepts this user, or give "
                "--store a SQLite file path.",
            )
        return DataleverError(
            f"The results store {self.shown} failed while {action}: {message}. What was being "
            "written was not stored.",
            "run the command again (it resumes where it stopped); if it fails again, give "
            "another --store.",
        )

    def _classify(self, e: BaseException, action: str) -> DataleverError | None:
        """The clear error for a failure of a known kind, else None."""
        orig = getattr(e, "orig", None) or e
        if not isinstance(orig, sqlite3.Error | SQLAlchemyError) and not hasattr(e, "orig"):
            return None
        message = _shorten((str(orig).splitlines() or [type(orig).__name__])[0], 300)
        low = message.lower()
        shown = self.shown
        if (
            type(orig) is sqlite3.DatabaseError
            or "malformed" in low
            or "not a database" in low
            or "corrupt" in low
        ):
            self._damaged = message
            return self._damaged_error(action)
        if "readonly" in low or "read-only" in low or "read only" in low:
            return DataleverError(
                f"Cannot write to the results store {shown}: it is read-only ({message}). "
                "Nothing stored was changed.",
                "make the file and its folder writable, or give another --store.",
            )
        if "full" in low and ("disk" in low or "database" in low):
            return DataleverError(
                f"The disk holding the results store {shown} is full ({message}). What was "
                "being written was not stored; everything stored before is intact.",
                "free some space, or give --store on another disk, and run the same command "
                "again: it resumes where it stopped.",
            )
        if "locked" in low or "busy" in low:
            return DataleverError(
                f"The results store {shown} stayed locked by another process for more than "
                f"{BUSY_TIMEOUT_S:.0f} s ({message}).",
                "wait for the other process to finish, or give another --store.",
            )
        if "unable to open" in low:
            return DataleverError(
                f"Cannot open the results store {shown} ({message}).",
                "check that its folder exists and is writable and that the path is not too "
                "long, or give another --store.",
            )
        if "i/o error" in low:
            return DataleverError(
                f"Reading or writing the results store {shown} failed with a disk error "
                f"({message}). What was being written was not stored.",
                "check the disk, or give another --store.",
            )
        if "connect" in low or "could not translate host" in low or "timeout" in low:
            return DataleverError(
                f"Cannot reach the results store {shown} ({message}).",
                "check the URL, that the database server runs and accepts this user, or give "
                "--store a SQLite file path.",
            )
        return None

    @contextmanager
    def _guard(self, action: str) -> Iterator[None]:
        if self._damaged is not None:
            raise self._damaged_error(action)
        try:
            yield
        except (SQLAlchemyError, sqlite3.Error) as e:
            raise self._translate(e, action) from None

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        with self._guard(action), self.engine.connect() as conn:
            yield conn

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        """One write transaction (on SQLite, holding the write lock from its start)."""
        with self._guard(action), self.engine.connect() as conn:
            conn.execution_options(datalever_write=True)
            with conn.begin():
                yield conn

    # --- runs ------------------------------------------------------------------------------

    def start_run(
        self, run_id: str, name: str, dataset: str, checksum: str, spec: dict, n_planned: int
    ) -> None:
        with self._write("starting the run") as conn:
            exists = conn.execute(
                sa.select(runs.c.n_planned).where(runs.c.run_id == run_id)
            ).first()
            if exists:  # a run that grows (as `ask` makes it) records its latest plan
                conn.execute(
                    runs.update()
                    .where(runs.c.run_id == run_id)
                    .values(spec=json.dumps(spec), n_planned=max(exists[0] or 0, n_planned))
                )
            else:  # the same run started elsewhere at this moment has the same spec: keep one
                row = dict(
                    run_id=run_id,
                    name=name,
                    dataset=dataset,
                    checksum=checksum,
                    spec=json.dumps(spec),
                    n_planned=n_planned,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"),
                )
                _insert_ignore(conn, runs, [row])

    def link_existing(self, run_id: str, keys: Iterable[str]) -> set[str]:
        """Link already stored scenarios among ``keys`` to the run; return all done keys."""
        keys = list(keys)
        done: set[str] = set()
        with self._write("linking stored scenarios") as conn:
            for chunk in _chunks(keys):
                found = conn.execute(sa.select(scenarios.c.key).where(scenarios.c.key.in_(chunk)))
                done.update(r[0] for r in found)
            linked = {
                r[0]
                for r in conn.execute(
                    sa.select(run_scenarios.c.key).where(run_scenarios.c.run_id == run_id)
                )
            }
            _insert_ignore(
                conn, run_scenarios, [{"run_id": run_id, "key": k} for k in sorted(done - linked)]
            )
        return done

    def write(self, run_id: str, result: ScenarioResult, owner: str | None = None) -> bool:
        """Store one scenario and its metric rows in a single transaction, link it to the run
        and release ``owner``'s claim on it. A scenario that another run stored first is only
        linked (its results are the same: the key hashes everything that determines them).
        Returns whether this call stored it."""
        return self.write_many(run_id, [result], owner)[0]

    def write_many(
        self, run_id: str, batch: list[ScenarioResult], owner: str | None = None
    ) -> list[bool]:
        """:meth:`write` for a batch of scenarios, in one transaction (a transaction per
        scenario cost as much as a fast path's fit): all of them are stored, or none."""
        out = []
        with self._write("storing scenarios") as conn:
            for result in batch:
                out.append(self._write_one(conn, run_id, result, owner))
        return out

    def _write_one(
        self, conn: sa.Connection, run_id: str, result: ScenarioResult, owner: str | None
    ) -> bool:
        stored = self._has_scenario(conn, result.key)
        if not stored and conn.dialect.name == "sqlite":
            # The write lock, held since BEGIN IMMEDIATE, makes the check above exact.
            conn.execute(scenarios.insert().values(key=result.key, **result.row))
            if result.metrics:
                conn.execute(results.insert(), [{"key": result.key, **m} for m in result.metrics])
        elif not stored:  # another server's transaction may store it meanwhile
            try:
                with conn.begin_nested():
                    conn.execute(scenarios.insert().values(key=result.key, **result.row))
                    if result.metrics:
                        conn.execute(
                            results.insert(),
                            [{"key": result.key, **m} for m in result.metrics],
                        )
            except IntegrityError:
                if not self._has_scenario(conn, result.key):
                    raise  # not a concurrent writer: a genuine conflict in the rows
                stored = True
        _insert_ignore(conn, run_scenarios, [{"run_id": run_id, "key": result.key}])
        if owner is not None:
            conn.execute(claims.delete().where(claims.c.key == result.key, claims.c.owner == owner))
        return not stored

    @staticmethod
    def _has_scenario(conn: sa.Connection, key: str) -> bool:
        return (
            conn.execute(sa.select(scenarios.c.key).where(scenarios.c.key == key)).first()
            is not None
        )

    # --- claims: concurrent runs split the work -------------------------------------------

    def claim(
        self, owner: str, keys: Iterable[str], lease: float, limit: int | None = None
    ) -> set[str]:
        """Claim for ``owner``, for ``lease`` seconds, the scenarios among ``keys`` that are not
        stored and not claimed by another live owner (a claim past its lease is dead: its run
        was killed or lost its store; so is one whose process on this machine has ended), in
        order, until ``owner`` holds ``limit`` of them. Returns the keys ``owner`` now holds."""
        keys = list(keys)
        now = time.time()
        mine: set[str] = set()
        with self._write("claiming scenarios") as conn:
            conn.execute(claims.delete().where(claims.c.expires_at < now))
            owners = {r[0] for r in conn.execute(sa.select(claims.c.owner).distinct())}
            dead = [o for o in owners if o != owner and not _owner_alive(o)]
            for chunk in _chunks(dead):
                conn.execute(claims.delete().where(claims.c.owner.in_(chunk)))
            for chunk in _chunks(keys):
                if limit is not None and len(mine) >= limit:
                    break
                done = {
                    r[0]
                    for r in conn.execute(
                        sa.select(scenarios.c.key).where(scenarios.c.key.in_(chunk))
                    )
                }
                holders = dict(
                    conn.execute(
                        sa.select(claims.c.key, claims.c.owner).where(claims.c.key.in_(chunk))
                    ).all()
                )
                free = [k for k in chunk if k not in done and k not in holders]
                if limit is not None:
                    already = sum(1 for o in holders.values() if o == owner)
                    free = free[: max(0, limit - len(mine) - already)]
                _insert_ignore(
                    conn,
                    claims,
                    [{"key": k, "owner": owner, "expires_at": now + lease} for k in free],
                )
                conn.execute(
                    claims.update()
                    .where(claims.c.owner == owner, claims.c.key.in_(chunk))
                    .values(expires_at=now + lease)
                )
                mine.update(
                    r[0]
                    for r in conn.execute(
                        sa.select(claims.c.key).where(
                            claims.c.owner == owner, claims.c.key.in_(chunk)
                        )
                    )
                )
        return mine

    def renew_claims(self, owner: str, lease: float) -> int:
        """Extend ``owner``'s claims by ``lease`` seconds from now; returns how many it holds."""
        with self._write("renewing claims") as conn:
            return conn.execute(
                claims.update()
                .where(claims.c.owner == owner)
                .values(expires_at=time.time() + lease)
            ).rowcount

    def release_claims(self, owner: str) -> None:
        """Give up ``owner``'s claims, so other runs take its scenarios at once."""
        with self._write("releasing claims") as conn:
            conn.execute(claims.delete().where(claims.c.owner == owner))

    # --- reading ---------------------------------------------------------------------------

    def runs(self) -> pd.DataFrame:
        counts = (
            sa.select(run_scenarios.c.run_id, sa.func.count().label("n_done"))
            .group_by(run_scenarios.c.run_id)
            .subquery()
        )
        q = (
            sa.select(
                runs.c.run_id,
                runs.c.name,
                runs.c.dataset,
                runs.c.n_planned,
                sa.func.coalesce(counts.c.n_done, 0).label("n_done"),
                runs.c.created_at,
            )
            .select_from(runs.outerjoin(counts, runs.c.run_id == counts.c.run_id))
            .order_by(runs.c.created_at)
        )
        with self._read("listing runs") as conn:
            return pd.DataFrame(
                conn.execute(q).mappings().all(),
                columns=["run_id", "name", "dataset", "n_planned", "n_done", "created_at"],
            )

    def run_spec(self, run_id: str) -> dict:
        with self._read("reading a run") as conn:
            row = conn.execute(sa.select(runs.c.spec).where(runs.c.run_id == run_id)).first()
        if row is None:
            raise DataleverError(
                f"No run {_shorten(run_id, 60)!r} in {self.shown}.", "see `datalever runs`."
            )
        return json.loads(row[0])

    def set_answer(self, run_id: str, answer: str) -> None:
        """Keep the sentence an adaptive search (`ask`) arrived at with its run."""
        with self._write("storing the answer") as conn:
            conn.execute(runs.update().where(runs.c.run_id == run_id).values(answer=answer))

    def answer(self, run_id: str) -> str | None:
        with self._read("reading a run") as conn:
            row = conn.execute(sa.select(runs.c.answer).where(runs.c.run_id == run_id)).first()
        return None if row is None else row[0]

    def run_checksum(self, run_id: str) -> str:
        with self._read("reading a run") as conn:
            row = conn.execute(sa.select(runs.c.checksum).where(runs.c.run_id == run_id)).first()
        return "" if row is None else str(row[0])

    def latest_run(self) -> str:
        """The most recently started run that has at least one finished scenario.

        A run that stopped before any scenario finished (it crashed, or was refused or
        interrupted at the start) has nothing to show, so it never hides the results of the
        run before it; ask for it by name (``--run``) to be told so."""
        table = self.runs()
        if table.empty:
            raise DataleverError(
                f"The store {self.shown} holds no runs yet.",
                "run `datalever demo` or `datalever run SPEC.toml` first, or give --store.",
            )
        finished = table[table["n_done"] > 0]
        if finished.empty:
            raise DataleverError(
                f"None of the {len(table)} runs in {self.shown} has a finished scenario: each "
                "stopped before its first scenario was stored.",
                "run the spec again (`datalever run SPEC.toml`): it resumes where it stopped.",
            )
        return str(finished["run_id"].iloc[-1])

    def require_results(self, run_id: str) -> None:
        """Fail with a clear message unless ``run_id`` exists and has a finished scenario, so a
        command never prints an empty table for it."""
        self.run_spec(run_id)  # an unknown run is named as such
        if self.count(run_id) == 0:
            raise DataleverError(
                f"Run {_shorten(run_id, 60)!r} in {self.shown} has no finished scenario: it "
                "stopped before its first scenario was stored.",
                "run its spec again to resume it, or choose another run with --run "
                "(see `datalever runs`).",
            )

    def results(self, run_id: str) -> pd.DataFrame:
        """One row per scenario × evaluation group × metric of the run (the columns of
        ``RESULT_COLUMNS``, also when the run has none)."""
        q = (
            sa.select(
                scenarios,
                results.c.eval_group,
                results.c.metric,
                results.c.value,
                results.c.baseline,
                results.c.reference,
                results.c.n_users,
            )
            .select_from(
                run_scenarios.join(scenarios, run_scenarios.c.key == scenarios.c.key).join(
                    results, results.c.key == scenarios.c.key
                )
            )
            .where(run_scenarios.c.run_id == run_id)
        )
        with self._read("reading results") as conn:
            return pd.DataFrame(conn.execute(q).mappings().all(), columns=RESULT_COLUMNS)

    def count(self, run_id: str) -> int:
        with self._read("counting scenarios") as conn:
            return conn.execute(
                sa.select(sa.func.count())
                .select_from(run_scenarios)
                .where(run_scenarios.c.run_id == run_id)
            ).scalar_one()


def _fill_lever_params(conn: sa.Connection) -> None:
    """Stores from before schema 3 knew two levers, written as a label ("strike",
    "boycott 0.5"): give their scenarios the parameters the label stands for."""
    labels = conn.execute(
        sa.select(scenarios.c.lever)
        .where(scenarios.c.lever_params.is_(None), scenarios.c.lever != "none")
        .distinct()
    ).scalars()
    for label in list(labels):
        kind, _, fraction = str(label).partition(" ")
        if kind not in ("strike", "boycott"):
            continue
        try:
            params = json.dumps({"fraction": float(fraction) if fraction else 1.0})
        except ValueError:
            continue
        conn.execute(
            scenarios.update()
            .where(scenarios.c.lever == label, scenarios.c.lever_params.is_(None))
            .values(lever_params=params)
        )


def _schema_state(conn: sa.Connection) -> str:
    """What the database holds: ``empty``, ``current`` (this release's store), ``migrate``
    (a datalever store to bring up to date), ``legacy`` (a store of the first releases, without
    the marker), ``newer:N`` or ``foreign:<tables>``."""
    inspector = sa.inspect(conn)
    names = set(inspector.get_table_names())
    if not names:
        return "empty"
    if meta.name in names:
        row = conn.execute(sa.select(meta.c.value).where(meta.c.name == "schema_version")).first()
        try:
            version = int(row[0]) if row is not None else 0
        except ValueError:
            version = 0
        if version > SCHEMA_VERSION:
            return f"newer:{version}"
        if version < SCHEMA_VERSION or not _complete(inspector, names):
            return "migrate"
        return "current"
    if names == _LEGACY_TABLES and all(
        _LEGACY_REQUIRED[t]
        <= {c["name"] for c in inspector.get_columns(t)}
        <= set(metadata.tables[t].columns.keys())
        for t in names
    ):
        return "legacy"
    return "foreign:" + ", ".join(sorted(names))


def _complete(inspector: sa.Inspector, names: set[str]) -> bool:
    for table in metadata.sorted_tables:
        if table.name not in names:
            return False
        have = {c["name"] for c in inspector.get_columns(table.name)}
        if not set(table.columns.keys()) <= have:
            return False
    return True
