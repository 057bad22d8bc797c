"""The first registry schema: accounts, identities, datasets, works, tokens and events.

The tables are spelled out here rather than taken from ``schema.py``, so this revision keeps
creating exactly this schema after ``schema.py`` moves on.

Revision ID: r0001
"""

import sqlalchemy as sa
from alembic import op

revision = "r0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "identities",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.Column("method", sa.String(40), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("kind", "value", name="uq_identities_kind_value"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("policy", sa.String(10), nullable=False),
        sa.Column("event_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "works",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("ref", sa.String(2100), nullable=False, unique=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(20), nullable=False),
        sa.Column("account_id", sa.BigInteger, sa.ForeignKey("accounts.id"), nullable=True),
        sa.Column("event_id", sa.BigInteger, nullable=False),
        sa.Column("revoked_event_id", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("account_id", sa.BigInteger, nullable=True),
        sa.Column("work_id", sa.BigInteger, nullable=True),
        sa.Column("dataset_id", sa.BigInteger, nullable=True),
        sa.Column("purpose", sa.String(40), nullable=True),
        sa.Column("value", sa.String(20), nullable=True),
        sa.Column("detail", sa.Text, nullable=True),
    )
    op.create_index("ix_events_account_kind", "events", ["account_id", "kind", "id"])
    op.create_index("ix_events_at", "events", ["at_us"])


def downgrade() -> None:
    for name in ("events", "api_tokens", "works", "datasets", "identities", "accounts"):
        op.drop_table(name)
