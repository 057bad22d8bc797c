"""The ``Registry``: consent records in a SQLite file or PostgreSQL, and the decisions a
training pipeline takes from them.

Every change is one transaction that writes one event, so a failed write leaves nothing
half-applied. Writers are serialised (SQLite: ``BEGIN IMMEDIATE``; PostgreSQL: an advisory
lock), which keeps event ids and timestamps in the same order: the events at or before any
moment are exactly those up to one id, the snapshot id a decision reports.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from datalever.errors import DataleverError
from datalever.registry import schema as s
from datalever.registry.purposes import check_purpose, purpose_chain
from datalever.registry.works import parse_work

Outcome = Literal["allowed", "reserved"]
POLICIES = ("opt-in", "opt-out")
SCOPES = ("contributor", "pipeline", "admin")
IDENTITY_STATES = ("unverified", "verified", "failed")
BUSY_TIMEOUT_S = 30.0
MAX_CHECK_WORKS = 100_000  # the most works one HTTP bulk check asks about
_PG_WRITE_LOCK = 1685480512  # the advisory lock that serialises registry writers
_MIGRATIONS = Path(__file__).parent / "migrations"


@dataclass(frozen=True)
class Decision:
    """Whether one work may be used, why, and against which state of the registry."""

    work: str
    outcome: Outcome
    rule: str
    snapshot: int
    event_id: int | None = None


class RegistryStorageError(DataleverError):
    """The database failed or refused a write: not the caller's input. The HTTP service
    answers 503 for it without passing on the database's own words."""


@dataclass(frozen=True)
class TokenInfo:
    """What a presented token grants."""

    token_id: int
    scope: str
    account_id: int | None


POOL_SIZE = 40  # as many as the threads of a server process (anyio's default thread pool)


def default_registry_url() -> str:
    """A SQLite file in the user data folder, so a registry needs no set-up."""
    import platformdirs

    folder = platformdirs.user_data_path("datalever")
    return f"sqlite:///{folder / 'registry.sqlite'}"


def _now() -> datetime:
    return datetime.now(UTC)


def _to_us(moment: datetime) -> int:
    if moment.tzinfo is None:  # naive times are read as UTC
        moment = moment.replace(tzinfo=UTC)
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _from_us(us: int) -> str:
    return datetime.fromtimestamp(us / 1_000_000, UTC).isoformat(timespec="microseconds")


def _hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def _mask(url: str) -> str:
    import re

    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class Registry:
    """Consent records and decisions, in one database (a SQLite file by default)."""

    def __init__(
        self, url: str | Path | None = None, *, clock: Callable[[], datetime] = _now
    ) -> None:
        self._clock = clock
        text = default_registry_url() if url is None else str(url)
        if "://" not in text:
            if not text.strip():
                raise DataleverError(
                    "The registry location is blank.",
                    "give a SQLite file path or a postgresql:// URL.",
                )
            text = f"sqlite:///{Path(text).expanduser()}"
        self.shown = _mask(text)
        try:
            parsed = sa.engine.make_url(text)
        except (SQLAlchemyError, ValueError):
            raise DataleverError(
                f"The registry {self.shown!r} is not a valid database URL.",
                "give a SQLite file path, sqlite:///PATH or postgresql://USER@HOST/DBNAME.",
            ) from None
        backend = parsed.drivername.split("+")[0]
        if backend == "postgres":
            parsed = parsed.set(drivername=parsed.drivername.replace("postgres", "postgresql"))
            backend = "postgresql"
        if backend not in ("sqlite", "postgresql"):
            raise DataleverError(
                f"The registry URL {self.shown!r} has the scheme {parsed.drivername!r}; a "
                "registry lives in SQLite or PostgreSQL.",
                "give a SQLite file path, sqlite:///PATH or postgresql://USER@HOST/DBNAME.",
            )
        if backend == "sqlite":
            self._check_sqlite(parsed)
        self.engine = self._make_engine(parsed, backend)
        self._single = self.engine.execution_options(
            isolation_level="AUTOCOMMIT", registry_single=True
        )
        try:
            self._migrate()
        except BaseException:
            self.engine.dispose()
            raise

    # --- opening -------------------------------------------------------------------------

    def _check_sqlite(self, url: sa.URL) -> None:
        database = url.database or ""
        if not database or database == ":memory:" or "mode=memory" in str(url):
            raise DataleverError(
                f"The registry {self.shown!r} is in memory: every record would vanish.",
                "give a SQLite file path.",
            )
        if "\x00" in database:
            raise DataleverError("The registry path contains a NUL byte.", "give a file path.")
        path = Path(database)
        if path.is_dir():
            raise DataleverError(
                f"The registry {database!r} is a folder.", "give a file path such as reg.sqlite."
            )
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataleverError(
                f"Cannot create the folder of the registry {database!r} ({e.strerror or e}).",
                "give a file path in a folder you can write to.",
            ) from None

    def _make_engine(self, url: sa.URL, backend: str) -> sa.Engine:
        args: dict = {}
        if backend == "sqlite":
            args = {"timeout": BUSY_TIMEOUT_S, "check_same_thread": False}
        elif "connect_timeout" not in url.query:
            args = {"connect_timeout": 10}
        try:
            # Connections kept open for every request a server process answers at once (its
            # thread pool): one opened and closed per request under load cost a PostgreSQL
            # backend's start-up each time, and tail latencies of a quarter of a second.
            engine = sa.create_engine(
                url, connect_args=args, pool_size=POOL_SIZE, max_overflow=POOL_SIZE
            )
        except ImportError as e:
            raise DataleverError(
                f"The registry {self.shown!r} needs the database driver {e.name or e}, which "
                "is not installed.",
                "pip install 'datalever[postgres]', or give a SQLite file path.",
            ) from None
        except (SQLAlchemyError, ValueError, TypeError) as e:
            raise DataleverError(
                f"Cannot use the registry {self.shown!r}: {_mask(str(e).splitlines()[0])}.",
                "give a SQLite file path or postgresql://USER@HOST/DBNAME.",
            ) from None
        if backend == "sqlite":
            # Transactions are begun here, not lazily by the driver, so DDL is atomic and a
            # writer takes the write lock at BEGIN IMMEDIATE and waits its turn.
            @sa_event.listens_for(engine, "connect")
            def _manual(dbapi_connection, _record) -> None:
                dbapi_connection.isolation_level = None

            @sa_event.listens_for(engine, "begin")
            def _begin(conn: sa.Connection) -> None:
                options = conn.get_execution_options()
                if options.get("registry_single", False):
                    return  # one statement, atomic on its own (see _read_one)
                write = options.get("registry_write", False)
                conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _revisions(self, conn: sa.Connection) -> tuple[str | None, str]:
        """(the database's revision, this release's head); refuses foreign or newer ones."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory(str(_MIGRATIONS)).get_current_head()
        assert head is not None
        names = set(sa.inspect(conn).get_table_names())
        if s.VERSION_TABLE not in names:
            if names:
                raise DataleverError(
                    f"The database {self.shown!r} is not a datalever registry: it holds other "
                    f"tables ({', '.join(sorted(names))[:160]}). Nothing in it was changed.",
                    "give a new file or an empty database, or an existing registry.",
                )
            return None, head
        ctx = MigrationContext.configure(conn, opts={"version_table": s.VERSION_TABLE})
        current = ctx.get_current_revision()
        known = {r.revision for r in ScriptDirectory(str(_MIGRATIONS)).walk_revisions()}
        if current is not None and current not in known:
            raise DataleverError(
                f"The registry {self.shown!r} was written by a newer datalever (schema "
                f"revision {current}).",
                "upgrade datalever (pip install -U datalever).",
            )
        return current, head

    def _migrate(self) -> None:
        """Bring the schema to this release's head; a registry already there is left alone."""
        with self._read("opening") as conn:
            current, head = self._revisions(conn)
        if current == head:
            return
        from alembic import command
        from alembic.config import Config

        with self._write("preparing") as conn:
            current, head = self._revisions(conn)  # again, now that writers wait for us
            if current == head:
                return
            config = Config()
            config.set_main_option("script_location", str(_MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        with self._read("reading the schema revision") as conn:
            return self._revisions(conn)[0]

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transactions --------------------------------------------------------------------

    @contextmanager
    def _read(self, action: str) -> Iterator[sa.Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except DataleverError:
            raise
        except SQLAlchemyError as e:
            raise self._translate(e, action) from None

    @contextmanager
    def _read_one(self, action: str) -> Iterator[sa.Connection]:
        """A connection for one statement, run outside an explicit transaction: a single
        statement already sees one consistent state, and BEGIN and COMMIT would cost two more
        round trips to the server than the statement itself."""
        try:
            with self._single.connect() as conn:
                yield conn
        except DataleverError:
            raise
        except SQLAlchemyError as e:
            raise self._translate(e, action) from None

    @contextmanager
    def _write(self, action: str) -> Iterator[sa.Connection]:
        """One transaction, serialised against every other writer of this registry."""
        try:
            with (
                self.engine.connect().execution_options(registry_write=True) as conn,
                conn.begin(),
            ):
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text(f"SELECT pg_advisory_xact_lock({_PG_WRITE_LOCK})"))
                yield conn
        except DataleverError:
            raise
        except IntegrityError as e:
            raise RegistryStorageError(
                f"While {action}, the registry {self.shown!r} refused a duplicate or dangling "
                f"record ({str(e.orig).splitlines()[0][:160]}). Nothing was changed.",
                "check that the record is not registered already.",
            ) from None
        except SQLAlchemyError as e:
            raise self._translate(e, action) from None

    def _translate(self, e: SQLAlchemyError, action: str) -> DataleverError:
        detail = str(getattr(e, "orig", None) or e).splitlines()[0][:200]
        return RegistryStorageError(
            f"While {action}, the registry {self.shown!r} failed: {_mask(detail)}. Nothing "
            "was changed.",
            "check that the database is reachable and writable, then try again.",
        )

    def _append(self, conn: sa.Connection, kind: str, **fields: object) -> int:
        """Append one event; its time never runs behind the previous event's."""
        last = conn.execute(sa.select(sa.func.max(s.events.c.at_us))).scalar()
        at_us = max(_to_us(self._clock()), int(last or 0))
        detail = fields.pop("detail", None)
        result = conn.execute(
            s.events.insert().values(
                at_us=at_us,
                kind=kind,
                detail=None if detail is None else json.dumps(detail, sort_keys=True),
                **fields,
            )
        )
        return int(result.inserted_primary_key[0])

    # --- writing -------------------------------------------------------------------------

    def create_account(self, name: str) -> int:
        """A new contributor account; returns its id."""
        name = _text(name, "account name", 200)
        with self._write("creating an account") as conn:
            event_id = self._append(conn, "account_created", detail={"name": name})
            account_id = int(
                conn.execute(
                    s.accounts.insert().values(name=name, event_id=event_id)
                ).inserted_primary_key[0]
            )
            conn.execute(
                s.events.update().where(s.events.c.id == event_id).values(account_id=account_id)
            )
        return account_id

    def add_identity(self, account_id: int, kind: str, value: str) -> int:
        """Record an identity (github handle, domain, email, …) as claimed, not yet verified."""
        kind = _text(kind, "identity kind", 20).lower()
        value = _text(value, "identity", 500)
        with self._write("adding an identity") as conn:
            self._require_account(conn, account_id)
            claimed = conn.execute(
                sa.select(s.identities.c.id).where(
                    s.identities.c.kind == kind, s.identities.c.value == value
                )
            ).first()
            if claimed is not None:
                raise DataleverError(
                    f"The identity {kind}:{value[:120]} is registered already.",
                    "use another identity, or contact an admin if the claim is wrong.",
                )
            event_id = self._append(
                conn,
                "identity_added",
                account_id=account_id,
                detail={"kind": kind, "value": value},
            )
            return int(
                conn.execute(
                    s.identities.insert().values(
                        account_id=account_id,
                        kind=kind,
                        value=value,
                        method=None,
                        state="unverified",
                        event_id=event_id,
                    )
                ).inserted_primary_key[0]
            )

    def set_identity_state(self, identity_id: int, method: str, state: str) -> int:
        """Record the outcome of a verification (``dns-txt``, ``well-known``, …)."""
        method = _text(method, "verification method", 40)
        if state not in IDENTITY_STATES:
            raise DataleverError(
                f"Unknown identity state {state!r}.", f"use one of {', '.join(IDENTITY_STATES)}."
            )
        with self._write("verifying an identity") as conn:
            row = conn.execute(
                sa.select(s.identities.c.account_id).where(s.identities.c.id == identity_id)
            ).first()
            if row is None:
                raise DataleverError(f"No identity {identity_id!r}.", "list the account's ones.")
            event_id = self._append(
                conn,
                "identity_verified",
                account_id=row[0],
                value=state,
                detail={"identity_id": identity_id, "method": method},
            )
            conn.execute(
                s.identities.update()
                .where(s.identities.c.id == identity_id)
                .values(method=method, state=state)
            )
        return event_id

    def register_work(self, account_id: int, work: str) -> int:
        """Claim a work for an account; returns the work's id."""
        kind, ref = parse_work(work)
        with self._write("registering a work") as conn:
            self._require_account(conn, account_id)
            owner = conn.execute(
                sa.select(s.works.c.account_id).where(s.works.c.ref == ref)
            ).first()
            if owner is not None:
                raise DataleverError(
                    f"The work {ref[:120]} is registered already"
                    + (" to this account." if owner[0] == account_id else " to another account."),
                    "set preferences on it, or contact an admin if the claim is wrong.",
                )
            event_id = self._append(
                conn, "work_registered", account_id=account_id, detail={"work": ref}
            )
            work_id = int(
                conn.execute(
                    s.works.insert().values(
                        account_id=account_id, kind=kind, ref=ref, event_id=event_id
                    )
                ).inserted_primary_key[0]
            )
            conn.execute(s.events.update().where(s.events.c.id == event_id).values(work_id=work_id))
        return work_id

    def set_preference(
        self, account_id: int, purpose: str, value: Outcome, work: str | None = None
    ) -> int:
        """Allow or reserve ``purpose`` for one of the account's works, or for all of them
        (``work=None``). Returns the event id; a later event overrides an earlier one."""
        check_purpose(purpose)
        if value not in ("allowed", "reserved"):
            raise DataleverError(
                f"A preference is 'allowed' or 'reserved', not {str(value)[:40]!r}.",
                "pass value='allowed' or value='reserved'.",
            )
        ref = None if work is None else parse_work(work)[1]
        with self._write("setting a preference") as conn:
            self._require_account(conn, account_id)
            work_id = None
            if ref is not None:
                row = conn.execute(
                    sa.select(s.works.c.id, s.works.c.account_id).where(s.works.c.ref == ref)
                ).first()
                if row is None or row[1] != account_id:
                    raise DataleverError(
                        f"The work {ref[:120]} is not registered to account {account_id}.",
                        "register the work to this account first.",
                    )
                work_id = row[0]
            return self._append(
                conn,
                "preference_set",
                account_id=account_id,
                work_id=work_id,
                purpose=purpose,
                value=value,
                detail={"work": ref},
            )

    def set_dataset_policy(self, dataset: str, policy: str) -> int:
        """Declare (or change) whether a dataset is opt-in or opt-out; returns the event id."""
        dataset = _text(dataset, "dataset name", 200)
        if policy not in POLICIES:
            raise DataleverError(
                f"A dataset policy is 'opt-in' or 'opt-out', not {str(policy)[:40]!r}.",
                "opt-in requires a recorded allow; opt-out honours recorded reservations.",
            )
        with self._write("setting a dataset policy") as conn:
            row = conn.execute(
                sa.select(s.datasets.c.id).where(s.datasets.c.name == dataset)
            ).first()
            event_id = self._append(
                conn, "dataset_policy_set", value=policy, detail={"dataset": dataset}
            )
            if row is None:
                dataset_id = conn.execute(
                    s.datasets.insert().values(name=dataset, policy=policy, event_id=event_id)
                ).inserted_primary_key[0]
            else:
                dataset_id = row[0]
                conn.execute(
                    s.datasets.update().where(s.datasets.c.id == dataset_id).values(policy=policy)
                )
            conn.execute(
                s.events.update().where(s.events.c.id == event_id).values(dataset_id=dataset_id)
            )
        return event_id

    # --- tokens --------------------------------------------------------------------------

    def issue_token(self, scope: str, account_id: int | None = None) -> str:
        """A new random API token. Only its SHA-256 is stored: the caller must keep it."""
        if scope not in SCOPES:
            raise DataleverError(
                f"Unknown token scope {str(scope)[:40]!r}.", f"use one of {', '.join(SCOPES)}."
            )
        if scope == "contributor" and account_id is None:
            raise DataleverError(
                "A contributor token belongs to an account.", "pass the account's id."
            )
        token = secrets.token_urlsafe(32)
        with self._write("issuing a token") as conn:
            if account_id is not None:
                self._require_account(conn, account_id)
            event_id = self._append(conn, "token_issued", account_id=account_id, value=scope)
            token_id = conn.execute(
                s.api_tokens.insert().values(
                    token_hash=_hash_token(token),
                    scope=scope,
                    account_id=account_id,
                    event_id=event_id,
                )
            ).inserted_primary_key[0]
            conn.execute(
                s.events.update()
                .where(s.events.c.id == event_id)
                .values(detail=json.dumps({"token_id": token_id}))
            )
        return token

    def verify_token(self, token: str) -> TokenInfo | None:
        """What ``token`` grants, or None if it is unknown or revoked. The stored hash is
        compared in constant time."""
        if not isinstance(token, str) or not token or len(token) > 200:
            return None
        digest = _hash_token(token)
        with self._read_one("checking a token") as conn:
            row = conn.execute(_TOKEN, {"digest": digest}).first()
        stored = row[1] if row is not None else "0" * 64
        if not hmac.compare_digest(stored, digest) or row is None or row[4] is not None:
            return None
        return TokenInfo(token_id=int(row[0]), scope=row[2], account_id=row[3])

    def revoke_token(self, token_id: int) -> int:
        with self._write("revoking a token") as conn:
            row = conn.execute(
                sa.select(s.api_tokens.c.account_id).where(s.api_tokens.c.id == token_id)
            ).first()
            if row is None:
                raise DataleverError(f"No token {token_id!r}.", "check the token id.")
            event_id = self._append(
                conn, "token_revoked", account_id=row[0], detail={"token_id": token_id}
            )
            conn.execute(
                s.api_tokens.update()
                .where(s.api_tokens.c.id == token_id)
                .values(revoked_event_id=event_id)
            )
        return event_id

    # --- reading -------------------------------------------------------------------------

    def snapshot(self, as_of: datetime | str | None = None) -> int:
        """The id of the last event at or before ``as_of`` (now by default); 0 if none."""
        with self._read("reading the snapshot") as conn:
            return self._snapshot(conn, as_of)

    def _snapshot(self, conn: sa.Connection, as_of: datetime | str | None) -> int:
        if as_of is None:
            return int(conn.execute(_LAST_EVENT).scalar() or 0)
        return int(conn.execute(_LAST_EVENT_AT, {"at": _to_us(_as_time(as_of))}).scalar() or 0)

    def events(self, account_id: int | None = None, *, as_of: datetime | str | None = None):
        """The event log (oldest first) as dicts, for one account or for all."""
        with self._read("reading events") as conn:
            snap = self._snapshot(conn, as_of)
            q = sa.select(s.events).where(s.events.c.id <= snap).order_by(s.events.c.id)
            if account_id is not None:
                q = q.where(s.events.c.account_id == account_id)
            return [
                {**row, "at": _from_us(row["at_us"])} for row in conn.execute(q).mappings().all()
            ]

    def account(self, account_id: int) -> dict | None:
        """One account as its owner sees it: name, identities, works and the latest
        statement per (work, purpose); None if there is no such account."""
        with self._read("reading an account") as conn:
            name = conn.execute(
                sa.select(s.accounts.c.name).where(s.accounts.c.id == account_id)
            ).scalar()
            if name is None:
                return None
            i, w, e = s.identities, s.works, s.events
            identities = (
                conn.execute(
                    sa.select(i.c.id, i.c.kind, i.c.value, i.c.method, i.c.state)
                    .where(i.c.account_id == account_id)
                    .order_by(i.c.id)
                )
                .mappings()
                .all()
            )
            refs = dict(
                conn.execute(
                    sa.select(w.c.id, w.c.ref).where(w.c.account_id == account_id).order_by(w.c.id)
                ).all()
            )
            statements = conn.execute(
                sa.select(e.c.id, e.c.at_us, e.c.work_id, e.c.purpose, e.c.value)
                .where(e.c.account_id == account_id, e.c.kind == "preference_set")
                .order_by(e.c.id)
            ).all()
        latest = {(st.work_id, st.purpose): st for st in statements}  # later ids overwrite
        return {
            "id": account_id,
            "name": name,
            "identities": [dict(x) for x in identities],
            "works": [{"id": k, "work": v} for k, v in refs.items()],
            "preferences": [
                {
                    "work": refs.get(st.work_id) if st.work_id is not None else None,
                    "purpose": st.purpose,
                    "value": st.value,
                    "event_id": st.id,
                    "at": _from_us(st.at_us),
                }
                for st in sorted(latest.values(), key=lambda st: st.id)
            ],
        }

    def identity(self, identity_id: int) -> dict | None:
        """One identity (id, account_id, kind, value, method, state); None if there is none."""
        if not isinstance(identity_id, int) or isinstance(identity_id, bool):
            return None
        i = s.identities
        with self._read("reading an identity") as conn:
            row = (
                conn.execute(
                    sa.select(
                        i.c.id, i.c.account_id, i.c.kind, i.c.value, i.c.method, i.c.state
                    ).where(i.c.id == identity_id)
                )
                .mappings()
                .first()
            )
        return None if row is None else dict(row)

    def event_count(self) -> int:
        with self._read("counting events") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(s.events)).scalar())

    def dataset_policy(self, dataset: str, as_of: datetime | str | None = None) -> str:
        return self._decide_rows(str(dataset), [], (), as_of)[0].policy

    def decide(
        self,
        dataset: str,
        works: Sequence[str],
        purpose: str,
        as_of: datetime | str | None = None,
    ) -> list[Decision]:
        """Allowed or reserved for each work (in order), as consent stood at ``as_of``.

        The latest statement that applies wins: one about the work or about its whole
        account, for ``purpose`` or a more general purpose (see ``purposes``). Opt-in datasets
        reserve works without a recorded allow; opt-out datasets allow works without a
        recorded reservation. The snapshot, the policy and every work's statement come from
        one statement, whatever the number of works."""
        chain = purpose_chain(purpose)
        if isinstance(works, str):
            raise DataleverError(
                "decide takes a list of work ids, not one string.", "wrap it in a list."
            )
        refs = [parse_work(w)[1] for w in works]
        rows = self._decide_rows(str(dataset), sorted(set(refs)), chain, as_of)
        snap, policy = int(rows[0].snap), rows[0].policy
        latest = {row.ref: row for row in rows if row.ref is not None}
        return [_decision(ref, policy, purpose, snap, latest.get(ref)) for ref in refs]

    def _decide_rows(
        self, dataset: str, refs: list[str], chain: tuple[str, ...], as_of: object
    ) -> list[sa.Row]:
        """The rows of ``_decide_query``: at least one, naming the snapshot and the policy."""
        params = {
            "name": dataset,
            "refs": json.dumps(refs),
            "chain": list(chain) or [""],
            "at": None if as_of is None else _to_us(_as_time(as_of)),
        }
        with self._read_one("deciding") as conn:
            query = _decide_query(conn.dialect.name, as_of is not None)
            rows = conn.execute(query, params).all()
        if rows[0].dataset_id is None:
            raise DataleverError(
                f"Unknown dataset {dataset[:120]!r}: it has no declared policy.",
                "declare it first (set_dataset_policy(name, 'opt-in' or 'opt-out')).",
            )
        if rows[0].policy is None:
            raise DataleverError(
                f"The dataset {dataset[:120]!r} had no declared policy as of {as_of}.",
                "ask as of a later time.",
            )
        return rows

    @staticmethod
    def _require_account(conn: sa.Connection, account_id: int) -> None:
        if not isinstance(account_id, int) or isinstance(account_id, bool):
            raise DataleverError(f"An account id is a number, not {account_id!r:.40}.")
        if not 1 <= account_id < 2**63:  # beyond SQLite's integers: no such account
            raise DataleverError(f"No account {account_id}.", "create the account first.")
        found = conn.execute(
            sa.select(s.accounts.c.id).where(s.accounts.c.id == account_id)
        ).first()
        if found is None:
            raise DataleverError(f"No account {account_id}.", "create the account first.")


# The statements of every check, built once with bound parameters: building them per call cost
# more than running them.
_TOKEN = sa.select(
    s.api_tokens.c.id,
    s.api_tokens.c.token_hash,
    s.api_tokens.c.scope,
    s.api_tokens.c.account_id,
    s.api_tokens.c.revoked_event_id,
).where(s.api_tokens.c.token_hash == sa.bindparam("digest"))
_LAST_EVENT = sa.select(sa.func.max(s.events.c.id))
_LAST_EVENT_AT = _LAST_EVENT.where(s.events.c.at_us <= sa.bindparam("at"))


@functools.cache
def _decide_query(dialect: str, timed: bool) -> sa.Select:
    """One statement for a whole check: the snapshot (the last event, at or before ``at``
    when ``timed``), the dataset's id and its policy at the snapshot, and, for the works in the
    JSON list ``refs``, the latest preference event at or before the snapshot about the work
    or its whole account, for a purpose in ``chain``. It yields one row per work with such a
    statement, or a single row with no work when none has one; every row carries the head."""
    e, w, d = s.events, s.works, s.datasets
    last = sa.select(sa.func.coalesce(sa.func.max(e.c.id), 0))
    if timed:
        last = last.where(e.c.at_us <= sa.bindparam("at"))
    dataset_id = sa.select(d.c.id).where(d.c.name == sa.bindparam("name")).scalar_subquery()
    snap = last.scalar_subquery()
    policy = (
        sa.select(e.c.value)
        .where(e.c.kind == "dataset_policy_set", e.c.dataset_id == dataset_id, e.c.id <= snap)
        .order_by(e.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    head = sa.select(
        snap.label("snap"), dataset_id.label("dataset_id"), policy.label("policy")
    ).cte("head")

    payload = sa.bindparam("refs", type_=sa.String)
    if dialect == "postgresql":
        wanted = sa.func.json_array_elements_text(sa.cast(payload, sa.JSON)).table_valued("value")
    else:
        wanted = sa.func.json_each(payload).table_valued("value")
    ranked = (
        sa.select(
            w.c.ref,
            e.c.id,
            e.c.at_us,
            e.c.value,
            e.c.purpose,
            e.c.work_id,
            sa.func.row_number().over(partition_by=w.c.ref, order_by=e.c.id.desc()).label("rank"),
        )
        .select_from(
            head.join(wanted, sa.true())
            .join(w, sa.and_(w.c.ref == wanted.c.value, w.c.event_id <= head.c.snap))
            .join(
                e,
                sa.and_(
                    e.c.account_id == w.c.account_id,
                    e.c.kind == "preference_set",
                    sa.or_(e.c.work_id == w.c.id, e.c.work_id.is_(None)),
                    e.c.purpose.in_(sa.bindparam("chain", expanding=True)),
                    e.c.id <= head.c.snap,
                ),
            )
        )
        .subquery()
    )
    latest = sa.select(ranked).where(ranked.c.rank == 1).subquery()
    return sa.select(
        head.c.snap, head.c.dataset_id, head.c.policy, *(latest.c[k] for k in _STATEMENT)
    ).select_from(head.outerjoin(latest, sa.true()))


_STATEMENT = ("ref", "id", "at_us", "value", "purpose", "work_id")


def _decision(ref: str, policy: str, purpose: str, snap: int, row: sa.Row | None) -> Decision:
    if row is None:
        if policy == "opt-in":
            return Decision(ref, "reserved", "opt-in dataset: no recorded allow → reserved", snap)
        return Decision(ref, "allowed", "opt-out dataset: no recorded reservation → allowed", snap)
    statement = "reservation" if row.value == "reserved" else "allow"
    scope = "this work" if row.work_id is not None else "the whole account"
    via = "" if row.purpose == purpose else f" (covers {purpose})"
    rule = (
        f"{policy} dataset: {statement} for {row.purpose}{via} on {scope} recorded at "
        f"{_from_us(row.at_us)} (event {row.id})"
    )
    return Decision(ref, row.value, rule, snap, int(row.id))


def _as_time(as_of: datetime | str) -> datetime:
    if isinstance(as_of, datetime):
        return as_of
    if isinstance(as_of, str):
        try:
            return datetime.fromisoformat(as_of)
        except ValueError:
            pass
    raise DataleverError(
        f"Cannot read the time {str(as_of)[:60]!r}.",
        "give an ISO 8601 time such as 2026-05-01T12:00:00Z.",
    )


def _text(value: object, what: str, limit: int) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise DataleverError(
            f"The {what} must be non-blank text of at most {limit} characters.",
            f"give another {what}.",
        )
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise DataleverError(f"The {what} contains control characters.", f"give another {what}.")
    return value.strip()
