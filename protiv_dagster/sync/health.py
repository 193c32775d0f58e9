"""A company's connection health: green when its vendor accepts the credentials, answers, and the
warehouse is current within the two-hour promise; red with the reason otherwise.

Pure: computed from the connection and its sync state, no vendor call. The refresh's change checks
and the syncs' outcomes keep that state up to date, so the status is as fresh as the last check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from protiv_dagster.connections.registry import Connection
from protiv_dagster.sync.state import CompanySyncState, SyncBatch

SYNC_PROMISE = timedelta(hours=2)
# The refresh runs every two hours and a sync takes minutes: allow one slow cycle before going red.
GRACE = timedelta(minutes=20)


@dataclass(frozen=True)
class Health:
    company_id: str
    healthy: bool
    reason: str
    metadata: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return "green" if self.healthy else "red"


def _age(now: datetime, then: datetime) -> str:
    minutes = max(0, int((now - then).total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def company_health(connection: Connection, state: CompanySyncState, pending: list[SyncBatch], now: datetime) -> Health:
    """Green or red, with the reason a data engineer or an admin acts on."""
    metadata = {
        "provider": connection.provider_label,
        "current_as_of": state.current_as_of.isoformat() if state.current_as_of else "never",
        "last_checked_at": state.last_checked_at.isoformat() if state.last_checked_at else "never",
        "syncs_in_flight": len(pending),
    }

    def red(reason: str) -> Health:
        return Health(connection.company_id, False, reason, metadata)

    retry_at = state.initial_sync_retry_at()
    if retry_at is not None and state.initial_sync_for == connection.connected_at:
        # Errors from the vendor clients name the vendor and never a secret (resources/http.py).
        times = "once" if state.failures <= 1 else f"{state.failures} times in a row"
        again = "in flight again" if pending else f"next attempt at {retry_at.strftime('%Y-%m-%d %H:%M UTC')}"
        return red(f"initial sync failing (failed {times}; {again}): {state.last_error}")
    if state.last_error:
        return red(state.last_error)
    if state.current_as_of is None:
        if pending:
            return red(f"initial sync in progress since {_age(now, pending[0].requested_at)} ago")
        return red("never synced: the initial sync has not been requested yet")
    age = now - state.current_as_of
    if age > SYNC_PROMISE + GRACE:
        return red(f"data is {_age(now, state.current_as_of)} old; the promise is a sync every 2 hours")
    return Health(connection.company_id, True, f"current as of {_age(now, state.current_as_of)} ago", metadata)


def next_step(company_id: str, reason: str) -> str:
    """What to do about a red company, in one sentence (``protiv status`` and the failed
    vendor_connection run in the UI say the same)."""
    if reason.startswith("initial sync in progress") or "initial sync is under way" in reason:
        return f"wait for its initial sync to end (its runs are tagged protiv/company={company_id})"
    if reason.startswith("reconnected"):
        return (
            f"force sync it to check the new connection now (`protiv sync {company_id}`), or wait for the next refresh"
        )
    if reason.startswith("never synced"):
        return "start the Dagster daemon (`make ui`, or dagster-daemon run): its new_connections sensor starts the initial sync"
    if "reconnect" in reason or "credential" in reason or "HTTP 401" in reason or "HTTP 403" in reason:
        fix = f"an admin reconnects it with valid credentials (`protiv connect {company_id} ...`)"
    elif "connection refused" in reason or "timed out" in reason or "unreachable" in reason:
        fix = "make the vendor reachable from the daemon (`protiv status --probe` asks it now)"
    elif reason.startswith("data is "):
        fix = "make sure the Dagster daemon runs with the refresh_every_two_hours schedule on"
    else:
        fix = "read the failed run in the Dagster UI (`protiv status --probe` asks the vendor now)"
    return (
        f"{fix}, then force sync it (`protiv sync {company_id}`, or job force_sync of partition {company_id} in the "
        "Dagster UI); it turns green once a sync succeeds"
    )
