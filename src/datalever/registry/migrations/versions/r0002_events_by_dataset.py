"""Events by dataset: a check reads its dataset's policy as of a snapshot by one index seek,
not by walking the log back from its end.

Revision ID: r0002
Revises: r0001
"""

from alembic import op

revision = "r0002"
down_revision = "r0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_dataset", "events", ["dataset_id", "kind", "id"])


def downgrade() -> None:
    op.drop_index("ix_events_dataset", table_name="events")
