"""The registry's tables (SQLAlchemy Core). ``events`` is the source of truth for every
decision: it is only ever appended to, so any past state can be read back. The other tables
are catalogues (who owns what) that decisions join against.

Changing this file needs a new migration in ``migrations/versions``: a registry written by
one release must open in the next.
"""

from __future__ import annotations

import sqlalchemy as sa

VERSION_TABLE = "datalever_registry_version"
"""Alembic's revision marker, under a name of its own so a registry is never mistaken for, or
mixed with, another application's migrated database."""

# SQLite only auto-increments an INTEGER PRIMARY KEY; elsewhere ids are 64-bit.
Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("event_id", sa.BigInteger, nullable=False),
)

identities = sa.Table(
    "identities",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),  # github, domain, email, orcid, …
    sa.Column("value", sa.String(500), nullable=False),
    sa.Column("method", sa.String(40), nullable=True),  # dns-txt, well-known, email-link, …
    sa.Column("state", sa.String(20), nullable=False),  # unverified, verified, failed
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.UniqueConstraint("kind", "value", name="uq_identities_kind_value"),
)

datasets = sa.Table(
    "datasets",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("policy", sa.String(10), nullable=False),  # the latest: opt-in or opt-out
    sa.Column("event_id", sa.BigInteger, nullable=False),
)

works = sa.Table(
    "works",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),
    sa.Column("ref", sa.String(2100), nullable=False, unique=True),  # see works.parse_work
    sa.Column("event_id", sa.BigInteger, nullable=False),  # when it was registered
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # SHA-256, hex
    sa.Column("scope", sa.String(20), nullable=False),  # contributor, pipeline, admin
    sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=True),
    sa.Column("event_id", sa.BigInteger, nullable=False),
    sa.Column("revoked_event_id", sa.BigInteger, nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", Id, primary_key=True, autoincrement=True),
    sa.Column("at_us", sa.BigInteger, nullable=False),  # UTC microseconds, never decreasing
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("account_id", sa.BigInteger, nullable=True),
    sa.Column("work_id", sa.BigInteger, nullable=True),  # none: the whole account
    sa.Column("dataset_id", sa.BigInteger, nullable=True),
    sa.Column("purpose", sa.String(40), nullable=True),
    sa.Column("value", sa.String(20), nullable=True),  # allowed/reserved, opt-in/opt-out, …
    sa.Column("detail", sa.Text, nullable=True),  # JSON: what else the change said
    sa.Index("ix_events_account_kind", "account_id", "kind", "id"),
    sa.Index("ix_events_at", "at_us"),
    sa.Index("ix_events_dataset", "dataset_id", "kind", "id"),
)

EVENT_KINDS = (
    "account_created",
    "identity_added",
    "identity_verified",
    "work_registered",
    "preference_set",
    "dataset_policy_set",
    "token_issued",
    "token_revoked",
)
