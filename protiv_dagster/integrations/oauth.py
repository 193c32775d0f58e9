"""The ``state`` of an OAuth 2.0 authorization-code flow (QuickBooks Time): what ties the vendor's
callback to the admin who started it.

A state is 32 random bytes (URL-safe), handed to the vendor in the authorize URL and given back on
the callback. It is single use (deleted when read), expires after ``STATE_LIFETIME``, and is bound to
the company, the admin (subject and role, for the audit entry) and the attendance pull date they
chose. The registry database keeps only its SHA-256, so reading that table does not let anyone
finish someone else's flow; a callback whose state is unknown, used or expired is refused.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa

from protiv_dagster.connections.registry import default_registry_url

STATE_LIFETIME = timedelta(minutes=10)


def oauth_states_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "protiv_oauth_states",
        metadata,
        sa.Column("state_hash", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("company_id", sa.Text, nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column("attendance_pull_date", sa.Date),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )


@dataclass(frozen=True)
class PendingAuthorization:
    """An authorization an admin started: for which company, by whom, with which pull date."""

    provider: str
    company_id: str
    actor: str
    role: str
    attendance_pull_date: date | None
    created_at: datetime


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class OAuthStates:
    """Issues and redeems states (table ``protiv_oauth_states``)."""

    def __init__(self, url: str | None = None, lifetime: timedelta = STATE_LIFETIME):
        from protiv_dagster.connections.migrations import prepare_registry

        self.url = url or default_registry_url()
        self.lifetime = lifetime
        self.engine = sa.create_engine(self.url, future=True)
        self.table = oauth_states_table(sa.MetaData())
        prepare_registry(self.engine, self.url)

    def issue(self, pending: PendingAuthorization) -> str:
        """A new state for ``pending``; states expired meanwhile are dropped on the way."""
        state = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(self.table.delete().where(self.table.c.expires_at < pending.created_at))
            conn.execute(
                self.table.insert().values(
                    state_hash=_hash(state),
                    provider=pending.provider,
                    company_id=pending.company_id,
                    actor=pending.actor,
                    role=pending.role,
                    attendance_pull_date=pending.attendance_pull_date,
                    created_at=pending.created_at,
                    expires_at=pending.created_at + self.lifetime,
                )
            )
        return state

    def redeem(self, state: str, provider: str, now: datetime | None = None) -> PendingAuthorization | None:
        """The authorization ``state`` was issued for, removed so it cannot be used again; None when
        it is unknown, already used, expired or for another provider."""
        now = now or datetime.now(UTC)
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.state_hash == _hash(state))).mappings().first()
            if row is None:
                return None
            # Only the transaction that deletes the row may use it: two callbacks with one state race here.
            deleted = conn.execute(self.table.delete().where(self.table.c.state_hash == row["state_hash"])).rowcount
        if deleted != 1 or row["provider"] != provider or _aware(row["expires_at"]) < now:
            return None
        return PendingAuthorization(
            provider=row["provider"],
            company_id=row["company_id"],
            actor=row["actor"],
            role=row["role"],
            attendance_pull_date=row["attendance_pull_date"],
            created_at=_aware(row["created_at"]),
        )
