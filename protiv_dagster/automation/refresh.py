"""Plan syncs: the initial sync of a new connection, and the refresh of what changed at the vendor.

A refresh asks every connected company's vendor what changed since the company's cursor, at most a
couple of requests each and many companies at once (the calls wait on the network, not the CPU),
then plans a sync of exactly the affected weeks: the weeks of changed records as the vendor tells
now, the weeks where the warehouse held them before (an entry moved from one week to another must
leave the old one), and the current week. A company with no change gets no run (an entry still on
the clock keeps the hours it had at the last sync until the worker clocks out, which is a change the
next refresh picks up). A company whose check fails is recorded with the reason (its health check turns red) and never holds up the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from protiv_dagster.automation.syncs import all_weeks, company_today, sync_window
from protiv_dagster.partitions import week_start
from protiv_dagster.registry import Connection, ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sources import Changes
from protiv_dagster.sync_state import SyncBatch, SyncStateStore

CHECK_CONCURRENCY = 16
ID_CHUNK = 500


@dataclass(frozen=True)
class CheckResult:
    connection: Connection
    changes: Changes | None = None
    error: str | None = None
    live_feed: str | None = None  # the raw feed holding the vendor's live entries


def _error_text(exc: Exception) -> str:
    # Vendor and registry errors are written to be shown (vendor named, secrets never included);
    # anything else is reported by type so an unexpected message cannot leak a credential.
    from protiv_dagster.registry import RegistryError
    from protiv_dagster.resources.http import VendorError

    if isinstance(exc, (VendorError, RegistryError)):
        return str(exc)
    return f"change check failed: {type(exc).__name__}"


def check_companies(
    connections: Iterable[Connection],
    cursors: dict[str, str | None],
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    now: datetime,
) -> list[CheckResult]:
    """Ask each company's vendor what changed since its cursor, concurrently."""

    def check(connection: Connection) -> CheckResult:
        try:
            source = vendors.source_for(connection.company_id, registry)
            first, last = sync_window(connection, now)
            changes = source.changes_since(cursors.get(connection.company_id), first, last)
            return CheckResult(connection, changes, live_feed=source.live_feed)
        except Exception as exc:  # noqa: BLE001 - one company's failure must not stop the others
            return CheckResult(connection, error=_error_text(exc))

    connections = list(connections)
    if not connections:
        return []
    with ThreadPoolExecutor(max_workers=min(CHECK_CONCURRENCY, len(connections))) as pool:
        return list(pool.map(check, connections))


def stored_weeks(warehouse: Warehouse, company_id: str, entry_ids: Iterable[str]) -> set[str]:
    """The weeks whose raw partition holds these entries now (where a moved entry must be removed)."""
    ids = sorted(set(entry_ids))
    weeks: set[str] = set()
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start:start + ID_CHUNK]
        placeholders = ", ".join("?" for _ in chunk)
        frame = warehouse.query(
            f"select distinct week_start from {{schema}}.raw_timesheets where company_id = ? and entry_id in ({placeholders})",
            [company_id, *chunk],
        )
        weeks.update(str(value)[:10] for value in frame["week_start"])
    return weeks


def vanished_weeks(
    warehouse: Warehouse, company_id: str, feed: str, first_week: str, live_ids: frozenset[str]
) -> set[str]:
    """Weeks holding stored entries the vendor no longer lists (vendors without a deleted feed
    report the ids still live; whatever is stored in the window and not among them is gone)."""
    frame = warehouse.query(
        "select distinct entry_id, week_start from {schema}.raw_timesheets where company_id = ? and feed = ? and week_start >= ?",
        [company_id, feed, first_week],
    )
    gone = frame[~frame["entry_id"].astype(str).isin(live_ids)]
    return {str(value)[:10] for value in gone["week_start"]}


def plan_initial_syncs(
    registry: ConnectionRegistryResource, vendors: VendorApis, store: SyncStateStore, now: datetime
) -> tuple[list[Connection], list[SyncBatch]]:
    """For every connection without an initial sync (new, or reconnected after removal): the company
    partitions to add and the initial sync batches (reference first, then every week)."""
    states = store.all_states()
    due = [c for c in registry.list() if states.get(c.company_id) is None or states[c.company_id].initial_sync_for != c.connected_at]
    results = check_companies(due, {}, registry, vendors, now)
    batches = []
    for result in results:
        company_id = result.connection.company_id
        if result.error is not None:
            store.record_check(company_id, now, error=result.error)
            continue
        batches.append(store.open_batch(
            company_id, "initial_sync", result.changes.cursor, all_weeks(result.connection, now), True, now,
            initial_sync_for=result.connection.connected_at,
        ))
    return due, batches


@dataclass(frozen=True)
class RefreshPlan:
    batches: list[SyncBatch]
    quiet: int
    failed: dict[str, str]
    skipped: int  # companies with a sync in flight or no initial sync yet
    requests: int  # vendor requests the checks made
    providers: dict[str, str]  # company id -> provider, of every connection


def plan_refresh(
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
    store: SyncStateStore,
    now: datetime,
) -> RefreshPlan:
    """Check every connected company that has synced once and has no sync in flight (a sync in
    flight has not moved the cursor, so its changes are asked for again next time)."""
    states = store.all_states()
    busy = {batch.company_id for batch in store.pending_batches()}
    connections = registry.list()
    ready = [
        c for c in connections
        if c.company_id not in busy and c.company_id in states and states[c.company_id].cursor is not None
        and states[c.company_id].initial_sync_for == c.connected_at
    ]
    skipped = len(connections) - len(ready)
    results = check_companies(ready, {c.company_id: states[c.company_id].cursor for c in ready}, registry, vendors, now)
    batches, failed, quiet, requests = [], {}, 0, 0
    for result in results:
        company_id = result.connection.company_id
        if result.error is not None:
            failed[company_id] = result.error
            store.record_check(company_id, now, error=result.error)
            continue
        changes = result.changes
        requests += changes.requests
        first, last = sync_window(result.connection, now)
        first_week = week_start(first).isoformat()
        weeks = {w.isoformat() for w in changes.weeks}
        weeks |= stored_weeks(warehouse, company_id, changes.entry_ids)
        if changes.live_entry_ids is not None:
            weeks |= vanished_weeks(warehouse, company_id, result.live_feed, first_week, changes.live_entry_ids)
        if not weeks and not changes.reference_changed:
            quiet += 1
            store.record_check(company_id, now)
            continue
        weeks.add(week_start(company_today(result.connection, now)).isoformat())
        weeks = {w for w in weeks if first_week <= w <= last.isoformat()}
        batches.append(store.open_batch(company_id, "refresh", changes.cursor, sorted(weeks), changes.reference_changed, now))
    return RefreshPlan(batches, quiet, failed, skipped, requests, {c.company_id: c.provider for c in connections})
