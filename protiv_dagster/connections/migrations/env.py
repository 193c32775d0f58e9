"""Alembic environment of the registry (connections, settings versions, sync state): run from code."""

from alembic import context

from protiv_dagster.migrations import run_migrations

run_migrations(context)
