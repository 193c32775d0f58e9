"""The integrations service's tables: the audit log and the OAuth states in flight.

- ``protiv_audit`` (new): who connected, force synced, disconnected a company or changed its pull
  date, when, and the outcome (``protiv_dagster/integrations/audit.py``). No backfill: nothing was
  recorded before; the CLI's actions are recorded from this revision on.
- ``protiv_oauth_states`` (new): QuickBooks Time authorizations started and not yet finished, each
  bound to a company, an admin and a pull date, kept by the hash of its ``state`` and deleted when
  used (``protiv_dagster/integrations/oauth.py``). Empty at first.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade(schema: str | None = None) -> None:
    op.create_table(
        "protiv_audit",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("company_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
        schema=schema,
    )
    op.create_table(
        "protiv_oauth_states",
        sa.Column("state_hash", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("company_id", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("attendance_pull_date", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )


def downgrade(schema: str | None = None) -> None:
    op.drop_table("protiv_oauth_states", schema=schema)
    op.drop_table("protiv_audit", schema=schema)
