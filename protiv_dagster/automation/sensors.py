"""Sensors: new connections become partitions and initial syncs; syncs move from phase to phase;
each company's connection health is reported as a check on its ProPay partition."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import dagster as dg

from protiv_dagster.automation import syncs

from protiv_dagster.automation.health import company_health
from protiv_dagster.automation.refresh import plan_initial_syncs
from protiv_dagster.automation.syncs import phase_outcome, phase_requests
from protiv_dagster.jobs import sync_company_reference, sync_company_week
from protiv_dagster.partitions import company_partitions
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis

CONNECTION_HEALTHY = "connection_healthy"
VENDOR_CONNECTION = dg.AssetKey("vendor_connection")
# A health result is re-reported at least this often even when it did not change, so the check's
# timestamp in the UI says when it was last evaluated.
REPORT_UNCHANGED_EVERY = timedelta(minutes=30)


@dg.sensor(
    name="new_connections",
    minimum_interval_seconds=30,
    jobs=[sync_company_reference],
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_connections(context: dg.SensorEvaluationContext, registry: ConnectionRegistryResource, vendors: VendorApis):
    """A company an admin has just connected (or reconnected after removing it) gets its company
    partition and its initial sync: workers and jobs, then every week from the attendance pull date
    to today; ProPays follow by automation. A removed connection is simply no longer synced: its
    partition and its data stay."""
    now = syncs.utc_now()
    store = registry.sync_state()
    due, batches = plan_initial_syncs(registry, vendors, store, now)
    known = set(context.instance.get_dynamic_partitions(company_partitions.name))
    new_partitions = [company_id for company_id in due if company_id not in known]
    providers = {c.company_id: c.provider for c in registry.list()}
    runs = [request for batch in batches for request in phase_requests(batch, providers[batch.company_id])]
    if not new_partitions and not runs:
        return dg.SkipReason("no new connection")
    return dg.SensorResult(
        run_requests=runs,
        dynamic_partitions_requests=[company_partitions.build_add_request(new_partitions)] if new_partitions else [],
    )


def launched_here(batch) -> bool:
    """The phases this sensor launches: the week runs that follow a reference run, and the reference
    run of a refresh (the schedule can only launch week runs). The initial sync's reference run is
    launched by new_connections, a refresh's week-only sync by the schedule."""
    if batch.phase == "weeks":
        return batch.with_reference
    return batch.trigger == "refresh"


@dg.sensor(
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


@dg.sensor(name="connection_status", minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def connection_status(context: dg.SensorEvaluationContext, registry: ConnectionRegistryResource):
    """Reports each connected company's health as the `connection_healthy` check of its
    vendor_connection partition (with an observation naming the provider): green when the vendor accepts the credentials, answers, and the data is current
    within the two-hour promise; red with the reason otherwise. Reported when it changes, and at
    least every 30 minutes."""
    now = syncs.utc_now()
    store = registry.sync_state()
    states = store.all_states()
    pending: dict[str, list] = {}
    for batch in store.pending_batches():
        pending.setdefault(batch.company_id, []).append(batch)
    known = set(context.instance.get_dynamic_partitions(company_partitions.name))
    previous = json.loads(context.cursor) if context.cursor else {}
    reported, events = {}, []
    for connection in registry.list():
        if connection.company_id not in known:
            continue  # the check needs the partition; new_connections adds it
        state = states.get(connection.company_id) or store.state(connection.company_id)
        health = company_health(connection, state, pending.get(connection.company_id, []), now)
        key = [health.healthy, health.reason.split(" ago")[0] if health.healthy else health.reason]
        last = previous.get(connection.company_id)
        unchanged = last and last["healthy"] == health.healthy and (health.healthy or last["reason"] == health.reason)
        if unchanged and now.timestamp() - last["at"] < REPORT_UNCHANGED_EVERY.total_seconds():
            reported[connection.company_id] = last
            continue
        reported[connection.company_id] = {"healthy": health.healthy, "reason": key[1], "at": now.timestamp()}
        metadata = {"status": health.label, "reason": health.reason, **health.metadata}
        events.append(
            dg.AssetObservation(
                asset_key=VENDOR_CONNECTION, partition=connection.company_id,
                # The same provider id as on every materialization of the company's partitions.
                metadata={**metadata, "provider": connection.provider},
            )
        )
        events.append(
            dg.AssetCheckEvaluation(
                asset_key=VENDOR_CONNECTION,
                check_name=CONNECTION_HEALTHY,
                passed=health.healthy,
                partition=connection.company_id,
                description=health.reason,
                metadata=metadata,
            )
        )
    return dg.SensorResult(asset_events=events, cursor=json.dumps(reported, sort_keys=True))
