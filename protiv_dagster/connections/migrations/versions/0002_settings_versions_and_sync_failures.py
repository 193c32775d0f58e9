"""Company settings versions, and the failures count of the sync state.

- ``protiv_settings_versions`` (new): every version of a company's ProPay settings with the date it
  applies from. Backfill: each existing connection gets version 1, in force from the start
  (``effective_from`` null), holding the settings stored on the connection and recorded at its
  ``connected_at``. That is what the code already takes a connection without versions to have
  (``Connection.settings_versions`` and ``update_settings``), now written down.
- ``protiv_sync_state.failures`` (new, NOT NULL): checks and syncs failed in a row. Backfill 0, the
  column's default: the previous release did not count them, so the initial sync's backoff starts
  from its first wait.

Either step is skipped where it is already done (a registry opened by a development version between
the two releases added ``failures`` by itself). The sync state tables are created here when the
previous release never made them (it made each table on first use: a registry used only by
``protiv connect`` has no sync state, one used only by the sync state has no connections).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade(schema: str | None = None) -> None:
    inspector = sa.inspect(op.get_bind())
    tables = set(inspector.get_table_names(schema=schema))
    if "protiv_connections" not in tables:
        # The previous release made each table on first use: a registry only the sync state used lacks it.
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
    if "protiv_settings_versions" not in tables:
        versions = op.create_table(
            "protiv_settings_versions",
            sa.Column("company_id", sa.Text, primary_key=True),
            sa.Column("version", sa.Integer, primary_key=True),
            sa.Column("effective_from", sa.Date, nullable=True),
            sa.Column("settings", sa.Text, nullable=False),
            sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
            schema=schema,
        )
        connections = sa.table(
            "protiv_connections",
            sa.column("company_id"),
            sa.column("settings"),
            sa.column("connected_at"),
            schema=schema,
        )
        op.execute(
            versions.insert().from_select(
                ["company_id", "version", "effective_from", "settings", "recorded_at"],
                sa.select(
                    connections.c.company_id,
                    sa.literal(1, sa.Integer),
                    sa.null(),
                    connections.c.settings,
                    connections.c.connected_at,
                ),
            )
        )
    if "protiv_sync_state" not in tables:
        op.create_table(
            "protiv_sync_state",
            sa.Column("company_id", sa.Text, primary_key=True),
            sa.Column("cursor", sa.Text),
            sa.Column("initial_sync_for", sa.DateTime(timezone=True)),
            sa.Column("current_as_of", sa.DateTime(timezone=True)),
            sa.Column("last_success_at", sa.DateTime(timezone=True)),
            sa.Column("last_checked_at", sa.DateTime(timezone=True)),
            sa.Column("last_error", sa.Text),
            sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
            schema=schema,
        )
    elif "failures" not in {column["name"] for column in inspector.get_columns("protiv_sync_state", schema=schema)}:
        op.add_column(
            "protiv_sync_state", sa.Column("failures", sa.Integer, nullable=False, server_default="0"), schema=schema
        )
    if "protiv_sync_batches" not in tables:
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
    with op.batch_alter_table("protiv_sync_state", schema=schema) as table:
        table.drop_column("failures")
    op.drop_table("protiv_settings_versions", schema=schema)
