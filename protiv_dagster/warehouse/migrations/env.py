"""Alembic environment of the warehouse (the `protiv` schema's tables): run from code."""

from alembic import context

from protiv_dagster.migrations import run_migrations

run_migrations(context)
