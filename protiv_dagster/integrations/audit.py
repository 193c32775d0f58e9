"""Who did what to a company's integration: every connect, OAuth start, force sync, disconnect and
pull date change, with the actor, the outcome and a detail that never holds a secret.

Kept in the registry database (table ``protiv_audit``, revision 0003) beside the connections it
speaks about, so it survives restarts: the force sync limiter counts from it too (a restarted
service still knows that a company was force synced 20 seconds ago).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa

from protiv_dagster.connections.registry import default_registry_url

CONNECT, OAUTH_START, FORCE_SYNC, DISCONNECT, PULL_DATE = (
    "connect",
    "oauth_start",
    "force_sync",
    "disconnect",
    "pull_date",
)
# Outcomes: the action was done, refused by a rule or the vendor, or failed on the vendor's side.
DONE, REFUSED, FAILED = "done", "refused", "failed"


def audit_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "protiv_audit",
        metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("company_id", sa.Text, nullable=False, index=True),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
        sa.Column("detail", sa.Text),
    )


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str
    company_id: str
    action: str
    outcome: str
    detail: str | None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class AuditLog:
    """Appends to and reads ``protiv_audit``. Rows are never changed or removed."""

    def __init__(self, url: str | None = None):
        from protiv_dagster.connections.migrations import prepare_registry

        self.url = url or default_registry_url()
        self.engine = sa.create_engine(self.url, future=True)
        self.table = audit_table(sa.MetaData())
        prepare_registry(self.engine, self.url)

    def record(
        self,
        *,
        actor: str,
        role: str,
        company_id: str,
        action: str,
        outcome: str,
        detail: str | None = None,
        at: datetime | None = None,
    ) -> AuditEntry:
        """One entry. ``detail`` is written by this package from non-secret facts (a vendor's reason
        is scrubbed by the vendor client before it gets here)."""
        entry = AuditEntry(at or datetime.now(UTC), actor, role, company_id, action, outcome, detail)
        with self.engine.begin() as conn:
            conn.execute(
                self.table.insert().values(
                    at=entry.at,
                    actor=actor,
                    role=role,
                    company_id=company_id,
                    action=action,
                    outcome=outcome,
                    detail=detail,
                )
            )
        return entry

    def entries(self, company_id: str | None = None, action: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest entries first."""
        query = sa.select(self.table).order_by(self.table.c.id.desc()).limit(limit)
        if company_id is not None:
            query = query.where(self.table.c.company_id == company_id)
        if action is not None:
            query = query.where(self.table.c.action == action)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            AuditEntry(
                _aware(row["at"]),
                row["actor"],
                row["role"],
                row["company_id"],
                row["action"],
                row["outcome"],
                row["detail"],
            )
            for row in rows
        ]

    def last_sync_started(self, company_id: str) -> datetime | None:
        """When the last force sync of the company (a pull date change's included) was started."""
        query = (
            sa.select(sa.func.max(self.table.c.at))
            .where(self.table.c.company_id == company_id)
            .where(self.table.c.action.in_((FORCE_SYNC, PULL_DATE)))
            .where(self.table.c.outcome == DONE)
            .where(self.table.c.detail.like("sync %"))
        )
        with self.engine.connect() as conn:
            at = conn.execute(query).scalar_one_or_none()
        return None if at is None else _aware(at)

    def actor_of_sync(self, company_id: str, sync_id: str) -> str | None:
        """Who started the service's sync ``sync_id`` (a force sync, or a pull date change's), if anyone."""
        query = (
            sa.select(self.table.c.actor)
            .where(self.table.c.company_id == company_id)
            .where(self.table.c.action.in_((FORCE_SYNC, PULL_DATE)))
            .where(self.table.c.outcome == DONE)
            .where(sa.or_(self.table.c.detail == f"sync {sync_id}", self.table.c.detail.like(f"sync {sync_id};%")))
            .limit(1)
        )
        with self.engine.connect() as conn:
            return conn.execute(query).scalar_one_or_none()
