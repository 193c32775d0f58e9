"""Run a company's sync through Dagster: reference data, its weeks of attendance, then ProPays.

Every step is a real run of a job of the code location, recorded in the instance (so it shows in
the UI), with the company's dynamic partition added first. ``force_sync`` (the CLI's ``protiv sync``
and the demo) is a sync like the automation's: it asks the vendor for its cursor before the runs
and records the sync with that cursor in the sync state, so the daemon refreshes the company from
there instead of syncing it all over again. ``sync_company`` alone (the benchmarks) records nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import dagster as dg

from protiv_dagster.assets.analysts import ANALYSTS_COPY, publication_metadata, publishes_analysts_copy
from protiv_dagster.connections.registry import Connection
from protiv_dagster.partitions import COMPANY_PARTITIONS_NAME, company_week_range_tags, week_keys
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.runs import run_failure_message, sync_window
from protiv_dagster.sync.state import SyncBatch
from protiv_dagster.warehouse.publish import Publication, publish_for_analysts
from protiv_dagster.warehouse.session import WarehouseError


@dataclass(frozen=True)
class SyncStep:
    job_name: str
    partition_key: str | None  # None for a run over a partition range (given by ``tags``)
    label: str
    tags: dict[str, str] = field(default_factory=dict)


# The run's events go to the instance (and the UI); the terminal only needs warnings and errors.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class SyncFailed(RuntimeError):
    pass


# The trigger of a force sync launched from the Dagster UI (job force_sync); the CLI's is "force_sync".
UI_FORCE_SYNC = "ui_force_sync"


def plan_sync(company_id: str, first_day: date, last_day: date) -> list[SyncStep]:
    """The runs that bring a company's tables up to date for ``first_day``..``last_day``: workers and
    jobs, every week in one run (one vendor query for the window), then ProPays."""
    weeks = week_keys(first_day, last_day)
    if not weeks:
        # A connection stored by an older version may hold a pull date after today (connect refuses
        # one now): nothing can be synced from it until an admin sets a pull date in the past.
        raise SyncFailed(
            f"company {company_id!r} has nothing to sync: its attendance pull date {first_day} is after {last_day}; "
            "an admin must reconnect it with a pull date that is not in the future"
        )
    return [
        SyncStep("sync_company_reference", company_id, "workers and jobs"),
        SyncStep(
            "sync_company_week",
            None,
            f"attendance, week of {weeks[0]}" if len(weeks) == 1 else f"attendance, {len(weeks)} weeks from {weeks[0]}",
            tags=company_week_range_tags(company_id, weeks[0], weeks[-1]),
        ),
        SyncStep("compute_propay", company_id, "ProPay opportunities"),
    ]


def sync_company(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    company_id: str,
    first_day: date,
    last_day: date,
    on_step: Callable[[SyncStep, str], None] | None = None,
    trigger: str = "initial_sync",
    tags: Mapping[str, str] | None = None,
) -> list[str]:
    """Run every step in order; returns the run ids. Stops at the first failed run with its error.
    ``tags`` go on every run besides the company's and the trigger's."""
    if not instance.has_dynamic_partition(COMPANY_PARTITIONS_NAME, company_id):
        instance.add_dynamic_partitions(COMPANY_PARTITIONS_NAME, [company_id])
    run_ids = []
    for step in plan_sync(company_id, first_day, last_day):
        if on_step:
            on_step(step, "started")
        result = defs.resolve_job_def(step.job_name).execute_in_process(
            instance=instance,
            partition_key=step.partition_key,
            raise_on_error=False,
            run_config=QUIET_CONSOLE,
            # The run adds its provider tag itself (assets/common.py), as UI-launched runs do.
            tags={**(tags or {}), "protiv/company": company_id, "protiv/trigger": trigger, **step.tags},
        )
        run_ids.append(result.run_id)
        if not result.success:
            message = run_failure_message(instance, result.run_id)
            raise SyncFailed(f"{step.label} failed for company {company_id!r} (run {result.run_id}): {message}")
        if on_step:
            on_step(step, "done")
    return run_ids


@contextmanager
def built_resources(defs: dg.Definitions, *keys: str, instance: dg.DagsterInstance | None = None) -> Iterator[Any]:
    """The code location's resources ``keys``, built outside a run (the CLI, the integrations
    service), as its runs build them. Pass the caller's Dagster instance where there is one: without
    it Dagster makes an in-memory instance and stamps its schema with Alembic, whose module-level
    context is not thread-safe. Two threads of the integrations service doing that at once (a
    connect's vendor check in a request, a sync in the worker) ran one's statement on the other's
    connection: the connect answered 500."""
    assert defs.resources is not None, "the code location declares its resources"
    with dg.build_resources({key: defs.resources[key] for key in keys}, instance=instance) as built:
        yield built


def force_sync(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    connection: Connection,
    now: datetime,
    on_step: Callable[[SyncStep, str], None] | None = None,
    trigger: str = "force_sync",
    tags: Mapping[str, str] | None = None,
    refuse_in_flight: bool = False,
    batch: SyncBatch | None = None,
) -> list[str]:
    """Sync a company now, as the automation would, and record it: the window runs from its
    attendance pull date to its own today (its settings' time zone, not this machine's date); the
    vendor's cursor is read before the first run (a change made during the sync is seen by the next
    refresh); once every run has succeeded the sync is recorded with that cursor (the company counts
    as synced for its connection, current as of ``now``), and a failed one with its reason.

    With ``refuse_in_flight`` (the UI's force sync, which has nobody watching a terminal) a company
    whose sync the automation has under way is refused with that sync's runs, instead of synced
    twice at once (safe, every write replaces its partition, but twice the vendor's load).

    ``batch``: the sync as recorded before it started (phase IN_PROCESS, by the integrations service
    for the initial sync of a company it has just connected, so the daemon does not start another);
    its outcome closes that batch instead of recording a new one."""
    from protiv_dagster.sync.refresh import check_companies

    company_id = connection.company_id
    first, last = sync_window(connection, now)
    weeks = week_keys(first, last)
    # The code location's own resources, as its runs use them.
    with built_resources(defs, "registry", "vendors", instance=instance) as built:
        store = built.registry.sync_state()
        in_flight = store.pending_batches(company_id) if refuse_in_flight else []
        in_flight = [other for other in in_flight if batch is None or other.batch_id != batch.batch_id]
        if in_flight:
            other = in_flight[0]
            raise SyncFailed(
                f"company {company_id!r} has a sync in flight (its {other.trigger.replace('_', ' ')} since "
                f"{other.requested_at:%Y-%m-%d %H:%M} UTC, runs tagged protiv/batch={other.batch_id}); "
                "force sync it again once that sync has ended"
            )
        [checked] = check_companies([connection], {}, built.registry, built.vendors, now)
    if checked.error is not None:
        if batch is not None:
            store.finish_batch(batch.batch_id, succeeded=False, at=syncs.utc_now(), error=checked.error)
        else:
            store.record_check(company_id, now, error=checked.error)
        raise SyncFailed(f"the vendor check before the sync of company {company_id!r} failed: {checked.error}")
    try:
        run_ids = sync_company(defs, instance, company_id, first, last, on_step, trigger, tags)
    except SyncFailed as exc:
        failed = batch or store.open_batch(company_id, trigger, None, weeks, True, now)
        store.finish_batch(failed.batch_id, succeeded=False, at=syncs.utc_now(), error=str(exc))
        raise
    # Published before the sync is recorded as finished: the integration page reads the ProPays from
    # the analysts' copy as soon as the company's last sync time moves, and would show the copy of
    # before the sync.
    try:
        publish_analysts_copy(defs, instance, trigger)
        not_published = None
    except (OSError, WarehouseError) as exc:
        not_published = exc
    if batch is None:
        batch = store.open_batch(
            company_id,
            trigger,
            checked.known_changes.cursor,
            weeks,
            True,
            now,
            initial_sync_for=connection.connected_at,
        )
    store.finish_batch(batch.batch_id, succeeded=True, at=syncs.utc_now(), cursor=checked.known_changes.cursor)
    if not_published is not None:
        raise SyncFailed(
            f"company {company_id!r} was synced (runs {', '.join(run_ids)}), but the analysts' copy of the "
            f"warehouse was not published: {not_published}"
        ) from not_published
    return run_ids


def build_marts(defs: dg.Definitions, instance: dg.DagsterInstance, trigger: str) -> dg.ExecuteInJobResult:
    """Build the analysts' marts now (``dbt build``: the views in schema ``analytics`` and their
    tests, the marts' asset checks), as a run of the code location recorded in ``instance``, then
    publish the analysts' copy with them. For a deployment's first sync (the demo): the automation
    builds them after the next ProPay update, and, views over the tables, they stay current between
    builds, so a force sync does not wait for dbt."""
    from protiv_dagster.assets.analytics import analytics_marts

    job = defs.resolve_implicit_job_def_def_for_assets(list(analytics_marts.keys))
    assert job is not None, "the marts are assets of the code location"
    result = job.execute_in_process(
        instance=instance,
        asset_selection=list(analytics_marts.keys),
        raise_on_error=False,
        run_config=QUIET_CONSOLE,
        tags={"protiv/trigger": trigger},
    )
    if not result.success:
        raise SyncFailed(
            f"the analysts' marts were not built (run {result.run_id}): {run_failure_message(instance, result.run_id)}"
        )
    publish_analysts_copy(defs, instance, trigger)
    return result


def publish_analysts_copy(defs: dg.Definitions, instance: dg.DagsterInstance, trigger: str) -> Publication | None:
    """Publish the analysts' copy of a DuckDB warehouse now, recorded as a materialization of
    `analysts_database` (a force sync ends with current ProPays and current analysts' tables; the
    automation would publish them a tick later). None on PostgreSQL, which has nothing to publish."""
    if not publishes_analysts_copy(defs):
        return None
    with built_resources(defs, "warehouse", instance=instance) as built:
        publication = publish_for_analysts(built.warehouse.store)
    metadata = {**publication_metadata(publication), "published_by": trigger}
    instance.report_runless_asset_event(dg.AssetMaterialization(ANALYSTS_COPY, metadata=metadata))
    return publication
