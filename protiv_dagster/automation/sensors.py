"""Sensors: new connections become partitions and initial syncs; syncs move from phase to phase;
each company's connection health is reported as a check on its ProPay partition."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import dagster as dg

from protiv_dagster.assets.common import COMPANY_TAG
from protiv_dagster.automation import described
from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.jobs import check_connection, sync_company_reference, sync_company_week
from protiv_dagster.partitions import COMPANY_PARTITIONS_NAME, company_partitions
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.health import company_health
from protiv_dagster.sync.refresh import plan_initial_syncs
from protiv_dagster.sync.runs import in_process_abandoned, phase_outcome, phase_requests
from protiv_dagster.sync.state import IN_PROCESS, CompanySyncState

CONNECTION_HEALTHY = "connection_healthy"
VENDOR_CONNECTION = dg.AssetKey("vendor_connection")
# A health result is re-reported at least this often even when it did not change, so the check's
# timestamp in the UI says when it was last evaluated.
REPORT_UNCHANGED_EVERY = timedelta(minutes=30)
# Unchanged results re-reported per tick at most (the oldest first): 1,000 companies connected
# together would otherwise be re-reported in one tick every 30 minutes, each observation a stored
# event. At one tick a minute, 100 per tick keeps 3,000 companies within the 30 minutes.
REPORT_UNCHANGED_PER_TICK = 100
# Changes of colour reported per tick at most (red first, then those reported longest ago): each is an
# observation and a check run, and at 10,000 companies a fleet's first tick (or a vendor's outage
# turning thousands red at once) took 270 s to evaluate and 864 s to store. The rest keep their last
# report in the cursor, so they are still changed at the next tick: 10,000 in under an hour.
REPORT_CHANGED_PER_TICK = 200


@described(
    dg.sensor,
    name="new_connections",
    minimum_interval_seconds=30,
    jobs=[sync_company_reference],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_connections(context: dg.SensorEvaluationContext, registry: ConnectionRegistryResource, vendors: VendorApis):
    """A company an admin has just connected (or reconnected after removing it) gets its company
    partition and its initial sync: workers and jobs, then every week from the attendance pull date
    to today; ProPays follow by automation. An initial sync whose vendor check or runs failed is
    asked again after a backoff (30 minutes, doubling up to 6 hours), and every tick names the
    companies waiting, why and when they are next tried. A removed connection is simply no longer
    synced: its partition and its data stay. A company partition that never had a connection (one
    added by hand in the UI's partition picker) is deleted: companies are made by `protiv connect`."""
    now = syncs.utc_now()
    store = registry.sync_state()
    due, batches = plan_initial_syncs(registry, vendors, store, now)
    connections = registry.list()
    known = set(context.instance.get_dynamic_partitions(COMPANY_PARTITIONS_NAME))
    new_partitions = [c.company_id for c in due if c.company_id not in known]
    providers = {c.company_id: c.provider for c in due}
    runs = [request for batch in batches for request in phase_requests(batch, providers[batch.company_id])]
    states = store.all_states()
    # Every company ever connected has a sync state from the tick that added its partition (its
    # initial sync was opened or its check recorded), so a partition with neither a connection nor a
    # state was never a company. A disconnected company keeps its partition and data.
    connected = {c.company_id for c in connections}
    never_connected = sorted(known - connected - set(states))
    if never_connected:
        context.log.info(
            "deleting company partitions that have no connection (add a company with `protiv connect`): %s",
            ", ".join(never_connected),
        )
    waiting = initial_syncs_waiting(connections, states, store, now)
    for line in waiting:
        context.log.info("initial sync waiting: %s", line)
    partition_requests: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = [
        *([company_partitions.build_add_request(new_partitions)] if new_partitions else []),
        *([company_partitions.build_delete_request(never_connected)] if never_connected else []),
    ]
    if runs:
        return dg.SensorResult(run_requests=runs, dynamic_partitions_requests=partition_requests)
    why = "; ".join(waiting) if waiting else "no new connection"
    if never_connected:
        why = f"deleted company partitions without a connection: {', '.join(never_connected)}; {why}"
    return dg.SensorResult(skip_reason=why, dynamic_partitions_requests=partition_requests)


def initial_syncs_waiting(connections, states: dict[str, CompanySyncState], store, now) -> list[str]:
    """One line per company whose initial sync failed and waits for its next attempt: the company,
    its failures, the reason and when it is tried again (the sync state's backoff)."""
    busy = {batch.company_id for batch in store.pending_batches()}
    lines = []
    for connection in connections:
        state = states.get(connection.company_id)
        if state is None or state.initial_sync_for != connection.connected_at or connection.company_id in busy:
            continue
        retry_at = state.initial_sync_retry_at()
        if retry_at is None:
            continue
        times = "once" if state.failures <= 1 else f"{state.failures} times in a row"
        lines.append(
            f"{connection.company_id} waits for its initial sync (failed {times}: {state.last_error}); "
            f"next attempt at {retry_at:%Y-%m-%d %H:%M:%S} UTC"
        )
    return lines


def launched_here(batch) -> bool:
    """The phases this sensor launches: the week runs that follow a reference run, and the reference
    run of a refresh (the schedule can only launch week runs). The initial sync's reference run is
    launched by new_connections, a refresh's week-only sync by the schedule; a force sync (the CLI's,
    job force_sync's) runs its own runs and opens its sync only once they have ended."""
    if batch.phase == "weeks":
        return batch.with_reference
    return batch.trigger == "refresh"


@described(
    dg.sensor,
    name="company_syncs",
    minimum_interval_seconds=15,
    jobs=[sync_company_reference, sync_company_week],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def company_syncs(context: dg.SensorEvaluationContext, registry: ConnectionRegistryResource):
    """Moves each sync in flight along: once its workers-and-jobs run has succeeded it launches the
    week runs (attendance is mapped against the fresh workers and jobs), and once every run has
    succeeded it advances the company's vendor cursor. A failed run ends the sync with its reason
    and leaves the cursor where it was, so the next refresh asks for the same changes again."""
    now = syncs.utc_now()
    store = registry.sync_state()
    connected = {c.company_id: c.provider for c in registry.list()}
    runs: list[dg.RunRequest] = []
    finished = []
    for batch in store.pending_batches():
        if batch.phase == IN_PROCESS:
            # The integrations service runs this sync's runs itself and closes it; only a sync whose
            # process went away is ended here, so its company is synced again.
            if in_process_abandoned(context.instance, batch, now):
                error = "the process running it (the integrations service) stopped before it ended"
                store.finish_batch(batch.batch_id, succeeded=False, at=now, error=error)
                finished.append(f"{batch.company_id}: abandoned")
            continue
        if batch.company_id not in connected:
            store.finish_batch(batch.batch_id, succeeded=False, at=now, error="the connection was removed")
            finished.append(f"{batch.company_id}: connection removed")
            continue
        outcome = phase_outcome(context.instance, batch, now)
        if outcome.state == "failed":
            store.finish_batch(batch.batch_id, succeeded=False, at=now, error=outcome.error)
            finished.append(f"{batch.company_id}: failed")
        elif outcome.state == "done" and batch.phase == "reference" and batch.weeks:
            store.set_phase(batch.batch_id, "weeks")
            runs += phase_requests(replace(batch, phase="weeks"), connected[batch.company_id])
        elif outcome.state == "done":
            store.finish_batch(batch.batch_id, succeeded=True, at=now)
            finished.append(f"{batch.company_id}: done")
        elif launched_here(batch):
            # Asked again every tick: run keys make it a no-op once launched, and a tick that died
            # after moving the phase cannot strand the sync.
            runs += phase_requests(batch, connected[batch.company_id])
    if not runs and not finished:
        return dg.SkipReason("no sync moved on")
    if finished:
        context.log.info("syncs finished: %s", "; ".join(finished))
    return dg.SensorResult(run_requests=runs)


@described(
    dg.sensor,
    name="connection_status",
    minimum_interval_seconds=60,
    jobs=[check_connection],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def connection_status(context: dg.SensorEvaluationContext, registry: ConnectionRegistryResource):
    """Keeps each connected company's health visible: when it turns green or red, a run records it
    on the company's vendor_connection partition with its `connection_healthy` check (the status
    the UI shows per company); in between, an observation at least every 30 minutes keeps the
    reason and the data's age current. A company still in its initial sync is only observed. At most
    200 changes of colour are reported a tick (red first); more wait for the next ticks."""
    now = syncs.utc_now()
    store = registry.sync_state()
    states = store.all_states()
    pending: dict[str, list] = {}
    for batch in store.pending_batches():
        pending.setdefault(batch.company_id, []).append(batch)
    known = set(context.instance.get_dynamic_partitions(COMPANY_PARTITIONS_NAME))
    previous = json.loads(context.cursor) if context.cursor else {}
    reported, events, runs = {}, [], []
    evaluated = []
    for connection in registry.list():
        company_id = connection.company_id
        if company_id not in known:
            continue  # new_connections adds the partition first
        state = states.get(company_id) or CompanySyncState(company_id)  # never synced: empty state
        health = company_health(connection, state, pending.get(company_id, []), now)
        last = previous.get(company_id, {})
        # A green reason says how old the data is; only a change of colour or of a red reason counts.
        changed = last.get("healthy") != health.healthy or (not health.healthy and last.get("reason") != health.reason)
        evaluated.append((connection, state, health, last, changed))
    due = sorted(
        (last.get("at", 0), connection.company_id)
        for connection, _, _, last, changed in evaluated
        if not changed and now.timestamp() - last.get("at", 0) >= REPORT_UNCHANGED_EVERY.total_seconds()
    )
    refreshed = {company_id for _, company_id in due[:REPORT_UNCHANGED_PER_TICK]}
    changes = sorted(
        (health.healthy, last.get("at", 0), connection.company_id)
        for connection, _, health, last, changed in evaluated
        if changed
    )
    now_changed = {company_id for _, _, company_id in changes[:REPORT_CHANGED_PER_TICK]}
    reported_now = refreshed | now_changed
    if len(changes) > REPORT_CHANGED_PER_TICK:
        context.log.info(
            "%d changes of colour reported, %d left to the next ticks (at most %d a tick)",
            REPORT_CHANGED_PER_TICK,
            len(changes) - REPORT_CHANGED_PER_TICK,
            REPORT_CHANGED_PER_TICK,
        )
    for connection, state, health, last, changed in evaluated:
        company_id = connection.company_id
        if company_id not in reported_now:
            # The last report stays (a change left to a later tick is still a change there); a first
            # report left to a later tick has none.
            if last:
                reported[company_id] = last
            continue
        reported[company_id] = {"healthy": health.healthy, "reason": health.reason, "at": now.timestamp()}
        events.append(
            dg.AssetObservation(
                asset_key=VENDOR_CONNECTION,
                partition=company_id,
                # The same provider id as on every materialization of the company's partitions.
                metadata={
                    "status": health.label,
                    "reason": health.reason,
                    **health.metadata,
                    "provider": connection.provider,
                },
            )
        )
        initial_sync_running = state.current_as_of is None and pending.get(company_id)
        if changed and not initial_sync_running:
            # A run, not a run-less check result: Dagster on PostgreSQL keeps one run-less result per
            # check and partition, ever. Run keys make a repeated request a no-op.
            runs.append(
                dg.RunRequest(
                    run_key=f"health/{company_id}/{health.label}/{int(now.timestamp())}",
                    job_name=check_connection.name,
                    partition_key=company_id,
                    tags={COMPANY_TAG: company_id},
                )
            )
    return dg.SensorResult(run_requests=runs, asset_events=events, cursor=json.dumps(reported, sort_keys=True))
