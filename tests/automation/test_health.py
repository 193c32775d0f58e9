"""Connection health: green when current within the promise, red with a reason an admin can act on."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.connections.registry import Connection
from protiv_dagster.sync.health import company_health
from protiv_dagster.sync.state import PENDING, CompanySyncState, SyncBatch

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CONNECTION = Connection(
    "acme", "aspire", "http://127.0.0.1:1/", date(2026, 11, 6), CompanySettings(), {}, NOW - timedelta(days=1), NOW
)


def state(**values) -> CompanySyncState:
    return CompanySyncState("acme", **values)


def test_current_within_the_promise_is_green():
    health = company_health(CONNECTION, state(current_as_of=NOW - timedelta(minutes=95)), [], NOW)
    assert health.healthy and health.label == "green"
    assert health.reason == "current as of 95 min ago"
    assert health.metadata["provider"] == "Aspire"


def test_stale_data_is_red_and_says_how_old():
    health = company_health(CONNECTION, state(current_as_of=NOW - timedelta(hours=3)), [], NOW)
    assert not health.healthy and health.reason == "data is 3.0 h old; the promise is a sync every 2 hours"


def test_a_vendor_error_is_the_reason():
    error = "Aspire: the client id or secret was refused (HTTP 401); an admin must reconnect this company"
    health = company_health(CONNECTION, state(current_as_of=NOW, last_error=error), [], NOW)
    assert not health.healthy and health.reason == error


def test_before_the_first_sync_it_is_red_with_the_initial_sync_progress():
    batch = SyncBatch(
        "b1", "acme", "initial_sync", None, ("2026-11-16",), True, "reference", PENDING, NOW - timedelta(minutes=3)
    )
    assert company_health(CONNECTION, state(), [batch], NOW).reason == "initial sync in progress since 3 min ago"
    assert company_health(CONNECTION, state(), [], NOW).reason.startswith("never synced")
