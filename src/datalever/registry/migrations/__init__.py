"""Alembic migrations of the registry's schema, shipped with the package so that a registry
created by one release is brought up to date when the next opens it."""
