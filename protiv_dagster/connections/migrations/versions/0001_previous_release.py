"""The registry of the previous release (commit 5a7857a): connections and the sync state.

Frozen here as it was, independent of today's table declarations. A registry of that release has
no version table; opening it says to run `protiv upgrade`, which stamps it with this revision and
upgrades it from here.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade(schema: str | None = None) -> None:
    op.create_table(
        "protiv_connections",
        sa.Column("company_id", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("attendance_pull_date", sa.Date, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("credentials", sa.Text, nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_table(
        "protiv_sync_state",
        sa.Column("company_id", sa.Text, primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("initial_sync_for", sa.DateTime(timezone=True)),
        sa.Column("current_as_of", sa.DateTime(timezone=True)),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_checked_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        schema=schema,
    )
    op.create_table(
        "protiv_sync_batches",
        sa.Column("batch_id", sa.Text, primary_key=True),
        sa.Column("company_id", sa.Text, nullable=False, index=True),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("weeks", sa.Text, nullable=False),
        sa.Column("with_reference", sa.Boolean, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, index=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
        schema=schema,
    )


def downgrade(schema: str | None = None) -> None:
    for table in ("protiv_sync_batches", "protiv_sync_state", "protiv_connections"):
        op.drop_table(table, schema=schema)
