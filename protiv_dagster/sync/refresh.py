"""Plan syncs: the initial sync of a new connection, and the refresh of what changed at the vendor.

A refresh asks every connected company's vendor what changed since the company's cursor, at most a
couple of requests each and many companies at once (the calls wait on the network, not the CPU),
then plans a sync of exactly the affected weeks: the weeks of changed records as the vendor tells
now, the weeks where the warehouse held them before (an entry moved from one week to another must
leave the old one), and the current week. A company with no change gets no run (an entry still on
the clock keeps the hours it had at the last sync until the worker clocks out, which is a change the
next refresh picks up). A company whose check fails is recorded with the reason (its health check turns red) and never holds up the others.
A quiet check's cursor is stored at once (there is nothing to sync first), so a vendor check that
works through its data in rotation (Aspire's older days and reference endpoints) moves on.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import date, datetime

from protiv_dagster.connections.registry import Connection, ConnectionRegistryResource
from protiv_dagster.partitions import week_start
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sync.runs import all_weeks, company_today, sync_window
from protiv_dagster.sync.state import (
    RETRY_INITIAL_SYNC_AFTER,
    CompanySyncState,
    SyncBatch,
    SyncInFlight,
    SyncStateStore,
)
from protiv_dagster.vendors.base import Changes

# Checks in flight per vendor, all vendors at once: each check waits on the network (1-2 requests),
# so 1,000 companies take seconds instead of minutes, and a vendor that hangs (timeouts, retries)
# holds up only its own companies' checks, never another vendor's.
CHECKS_PER_VENDOR = 16
ID_CHUNK = 500
# An initial sync that failed (its check or its runs failed beyond the client's and Dagster's run
# retries, or Dagster could not create a retry because the code server was down at that moment) is
# planned again after a backoff: 30 minutes after its first failure, doubling up to 6 hours
# (CompanySyncState.initial_sync_retry_at). Without a cursor the refresh never checks the company,
# so nothing else would.
RETRY_FAILED_INITIAL_SYNC_AFTER = RETRY_INITIAL_SYNC_AFTER


@dataclass(frozen=True)
class CheckResult:
    connection: Connection
    changes: Changes | None = None
    error: str | None = None
    live_feed: str | None = None  # the raw feed holding the vendor's live entries

    @property
    def known_changes(self) -> Changes:
        """The changes of a check that succeeded (``error`` is None)."""
        assert self.changes is not None, f"the check of {self.connection.company_id!r} failed: {self.error}"
        return self.changes


def _error_text(exc: Exception) -> str:
    # Vendor and registry errors are written to be shown (vendor named, secrets never included);
    # anything else is reported by type so an unexpected message cannot leak a credential.
    from protiv_dagster.connections.registry import RegistryError
    from protiv_dagster.vendors.http import VendorError

    if isinstance(exc, (VendorError, RegistryError)):
        return str(exc)
    return f"change check failed: {type(exc).__name__}"


def check_companies(
    connections: Iterable[Connection],
    cursors: dict[str, str | None],
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    now: datetime,
    per_vendor: int = CHECKS_PER_VENDOR,
) -> list[CheckResult]:
    """Ask each company's vendor what changed since its cursor: at most ``per_vendor`` checks in
    flight per vendor, the vendors side by side. Results come back in the order of ``connections``."""

    def check(connection: Connection) -> CheckResult:
        try:
            source = vendors.source_of(connection, registry)
            first, last = sync_window(connection, now)
            # From the Monday of the first week: its partitions hold the whole week, days before the
            # pull date included, so an edit there must be seen too.
            changes = source.changes_since(cursors.get(connection.company_id), week_start(first), last)
            return CheckResult(connection, changes, live_feed=source.live_feed)
        except Exception as exc:  # noqa: BLE001 - one company's failure must not stop the others
            return CheckResult(connection, error=_error_text(exc))

    connections = list(connections)
    by_provider: dict[str, list[Connection]] = defaultdict(list)
    for connection in connections:
        by_provider[connection.provider].append(connection)
    with ExitStack() as stack:
        futures = {}
        for provider, mine in by_provider.items():
            pool = stack.enter_context(
                ThreadPoolExecutor(max_workers=min(per_vendor, len(mine)), thread_name_prefix=f"check-{provider}")
            )
            futures.update({id(connection): pool.submit(check, connection) for connection in mine})
        return [futures[id(connection)].result() for connection in connections]


def _chunks(items: list, size: int = ID_CHUNK):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def stored_weeks(warehouse: Warehouse, entry_ids: dict[str, Iterable[str]]) -> dict[str, set[str]]:
    """Per company, the weeks whose raw partition holds these entries now (where a moved entry must
    be removed). One query per 500 ids, whatever the number of companies."""
    pairs = sorted({(company_id, str(entry_id)) for company_id, ids in entry_ids.items() for entry_id in ids})
    weeks: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(pairs):
        placeholders = ", ".join("(?, ?)" for _ in chunk)
        frame = warehouse.query(
            "select distinct r.company_id, r.week_start from {schema}.raw_timesheets r"
            f" join (values {placeholders}) as changed(company_id, entry_id)"
            " on r.company_id = changed.company_id and r.entry_id = changed.entry_id",
            [value for pair in chunk for value in pair],
        )
        for company_id, week in zip(frame["company_id"], frame["week_start"]):
            weeks[str(company_id)].add(str(week)[:10])
    return dict(weeks)


def vanished_weeks(
    warehouse: Warehouse, live: dict[str, tuple[str, frozenset[date], frozenset[str]]]
) -> dict[str, set[str]]:
    """Per company, the weeks holding stored entries the vendor no longer lists (vendors without a
    deleted feed report the ids still live in the weeks they listed; whatever is stored in those
    weeks and not among them is gone). ``live`` maps a company to (its live feed, the weeks listed
    whole, their live ids); only those weeks are compared, never a week the check did not list. The
    stored ids of all those companies are read in one query per 500 company weeks."""
    weeks: dict[str, set[str]] = defaultdict(set)
    listed = sorted(
        (company_id, feed, week.isoformat()) for company_id, (feed, mondays, _) in live.items() for week in mondays
    )
    for chunk in _chunks(listed):
        placeholders = ", ".join("(?, ?, ?)" for _ in chunk)
        frame = warehouse.query(
            "select distinct r.company_id, r.entry_id, r.week_start from {schema}.raw_timesheets r"
            f" join (values {placeholders}) as listed(company_id, feed, week)"
            " on r.company_id = listed.company_id and r.feed = listed.feed"
            " and r.week_start = cast(listed.week as date)",
            [value for row in chunk for value in row],
        )
        for company_id, group in frame.groupby("company_id"):
            gone = group[~group["entry_id"].astype(str).isin(live[str(company_id)][2])]
            if len(gone):
                weeks[str(company_id)].update(str(value)[:10] for value in gone["week_start"])
    return dict(weeks)


def _initial_sync_due(connection: Connection, state: CompanySyncState | None, busy: set[str], now: datetime) -> bool:
    """Never asked for this connection, or asked and failed: no cursor yet (the refresh only checks
    companies with one), none in flight, and its backoff over (``initial_sync_retry_at``)."""
    if state is None or state.initial_sync_for != connection.connected_at:
        return True
    if state.cursor is not None or connection.company_id in busy:
        return False
    retry_at = state.initial_sync_retry_at()
    if retry_at is None:
        # Asked, never finished, nothing in flight, no error: a tick that died between planning
        # and recording; try again after the first backoff.
        return state.last_checked_at is None or now - state.last_checked_at >= RETRY_FAILED_INITIAL_SYNC_AFTER
    return now >= retry_at


def plan_initial_syncs(
    registry: ConnectionRegistryResource, vendors: VendorApis, store: SyncStateStore, now: datetime
) -> tuple[list[Connection], list[SyncBatch]]:
    """For every connection without an initial sync (new, or reconnected after removal), or whose
    initial sync failed: the company partitions to add and the initial sync batches (reference
    first, then every week)."""
    states = store.all_states()
    busy = {batch.company_id for batch in store.pending_batches()}
    due = [c for c in registry.list() if _initial_sync_due(c, states.get(c.company_id), busy, now)]
    results = check_companies(due, {}, registry, vendors, now)
    batches = []
    for result in results:
        company_id = result.connection.company_id
        if result.error is not None:
            store.record_check(company_id, now, error=result.error, initial_sync_for=result.connection.connected_at)
            continue
        try:
            batches.append(
                store.open_batch(
                    company_id,
                    "initial_sync",
                    result.known_changes.cursor,
                    all_weeks(result.connection, now),
                    True,
                    now,
                    initial_sync_for=result.connection.connected_at,
                    only_when_idle=True,
                )
            )
        except SyncInFlight:
            continue  # the integrations service started it since this tick read what was in flight
    return due, batches


@dataclass(frozen=True)
class RefreshPlan:
    batches: list[SyncBatch]
    quiet: int
    failed: dict[str, str]
    skipped: int  # companies with a sync in flight or no initial sync yet
    requests: int  # vendor requests the checks made
    providers: dict[str, str]  # company id -> provider, of every connection
    deferred: int = 0  # companies left to the next ticks of a spread refresh (``spread`` > 1)


def plan_refresh(
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
    store: SyncStateStore,
    now: datetime,
    spread: int = 1,
) -> RefreshPlan:
    """Check every connected company that has synced once and has no sync in flight (a sync in
    flight has not moved the cursor, so its changes are asked for again next time).

    ``spread`` > 1 spreads one round of checks over that many ticks: this tick checks the
    1/``spread`` of those companies whose vendor was asked longest ago (any check counts: a
    refresh's, an initial or a force sync's), so at one tick every 2 hours / ``spread`` each company
    is still asked every 2 hours, and a tick's work does not grow with the fleet beyond its share.
    After the daemon was down, the share stays the same: the companies overdue are asked first."""
    states = store.all_states()
    busy = {batch.company_id for batch in store.pending_batches()}
    connections = registry.list()
    ready = [
        c
        for c in connections
        if c.company_id not in busy
        and c.company_id in states
        and states[c.company_id].cursor is not None
        and states[c.company_id].initial_sync_for == c.connected_at
    ]
    skipped = len(connections) - len(ready)
    deferred = 0
    if spread > 1 and ready:
        share = -(-len(ready) // spread)  # rounded up: a round never takes more than ``spread`` ticks
        never = datetime.min.replace(tzinfo=now.tzinfo)
        ready.sort(key=lambda c: (states[c.company_id].last_checked_at or never, c.company_id))
        ready, deferred = ready[:share], len(ready) - share
    results = check_companies(ready, {c.company_id: states[c.company_id].cursor for c in ready}, registry, vendors, now)
    checked = [result for result in results if result.error is None]
    # What the warehouse holds of the changed entries, and what it holds that the vendor no longer
    # lists, for every company in a few queries (one per company cost a connection each).
    moved_from = stored_weeks(
        warehouse, {r.connection.company_id: r.known_changes.entry_ids for r in checked if r.known_changes.entry_ids}
    )
    gone_from = vanished_weeks(
        warehouse,
        {
            r.connection.company_id: (
                r.live_feed,
                r.known_changes.listed_weeks or frozenset(),
                r.known_changes.live_entry_ids,
            )
            for r in checked
            if r.known_changes.live_entry_ids is not None and r.live_feed is not None
        },
    )
    batches, failed, quiet, requests = [], {}, {}, 0
    for result in results:
        company_id = result.connection.company_id
        if result.error is not None:
            failed[company_id] = result.error
            store.record_check(company_id, now, error=result.error)
            continue
        changes = result.known_changes
        requests += changes.requests
        first, last = sync_window(result.connection, now)
        first_week = week_start(first).isoformat()
        weeks = {w.isoformat() for w in changes.weeks}
        weeks |= moved_from.get(company_id, set()) | gone_from.get(company_id, set())
        if not weeks and not changes.reference_changed:
            quiet[company_id] = changes.cursor
            continue
        weeks.add(week_start(company_today(result.connection, now)).isoformat())
        weeks = {w for w in weeks if first_week <= w <= last.isoformat()}
        try:
            batches.append(
                store.open_batch(
                    company_id,
                    "refresh",
                    changes.cursor,
                    sorted(weeks),
                    changes.reference_changed,
                    now,
                    only_when_idle=True,
                )
            )
        except SyncInFlight:
            continue  # force synced since the check began: that sync covers these changes and more
    # A quiet check's cursor is kept at once (nothing to sync first): the Aspire check moves its
    # rotations (older days listed, reference endpoint asked) forward with it.
    store.record_quiet_checks(list(quiet), now, cursors=quiet)
    return RefreshPlan(
        batches, len(quiet), failed, skipped, requests, {c.company_id: c.provider for c in connections}, deferred
    )
