"""The two-hour refresh: ask every vendor what changed, sync only that."""

from __future__ import annotations

import dagster as dg

from protiv_dagster.automation import described
from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.jobs import sync_company_week
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import refresh_cron, refresh_spread
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.refresh import plan_refresh
from protiv_dagster.sync.runs import phase_requests


@described(
    dg.schedule,
    name="refresh_every_two_hours",
    cron_schedule=refresh_cron(),
    job=sync_company_week,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def refresh_every_two_hours(
    context: dg.ScheduleEvaluationContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Every two hours, each connected company's vendor is asked what changed since the last
    successful sync (QuickBooks Time last-modified timestamps, Aspire LastModifiedDateTime, BusyBusy
    updatedOn). Only the weeks with changes are re-synced, plus the current week; a company with no
    change costs at most two vendor calls and no run. ProPays follow by automation. With
    PROTIV_REFRESH_SPREAD set above 1 (large fleets), each tick asks only that share of the companies,
    those asked longest ago."""
    spread = refresh_spread()
    plan = plan_refresh(registry, vendors, warehouse, registry.sync_state(), syncs.utc_now(), spread=spread)
    context.log.info(
        "refresh: %d companies changed, %d quiet, %d failed, %d skipped (sync in flight or never synced), "
        "%d left to the next ticks (spread over %d), %d vendor requests",
        len(plan.batches),
        plan.quiet,
        len(plan.failed),
        plan.skipped,
        plan.deferred,
        spread,
        plan.requests,
    )
    # Week-only syncs start here; a sync that needs fresh workers and jobs first is started by the
    # company_syncs sensor (a schedule launches one job).
    runs = [
        request
        for batch in plan.batches
        if batch.phase == "weeks"
        for request in phase_requests(batch, plan.providers[batch.company_id])
    ]
    if not runs:
        return dg.SkipReason(
            f"{len(plan.batches)} syncs planned with workers and jobs first, {plan.quiet} companies quiet, "
            f"{len(plan.failed)} checks failed"
            + (f", {plan.deferred} companies left to the next ticks of the spread" if plan.deferred else "")
        )
    return runs
