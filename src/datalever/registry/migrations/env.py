"""Alembic's entry point: the registry hands over its own connection, already inside the
write transaction, so a migration and the check that asked for it are one atomic step."""

from alembic import context

from datalever.registry.schema import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
