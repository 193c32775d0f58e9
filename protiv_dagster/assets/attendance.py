"""Cleaned layer: workers, jobs and attendance in one shape for every vendor, enforced by pandera."""


import json
from collections import defaultdict
from collections.abc import Callable

import dagster as dg
import pandas as pd

from protiv_dagster import schemas
from protiv_dagster.assets.common import (
    column_schema,
    company_source,
    prepare_warehouse,
    reconcile,
    reconcile_spec,
    retry_vendor_outages,
    validate_and_store,
)
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.assets.raw import raw_timesheets
from protiv_dagster.automation.conditions import ATTENDANCE_FOLLOWS_RAW, TWO_HOUR_PROMISE
from protiv_dagster.partitions import BY_COMPANY, company_partitions, company_week_partitions, split_company_week
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sources import Mapped, Source
from protiv_dagster.tables import ATTENDANCE, JOBS, RAW_TIMESHEETS, WORKERS



def _table_metadata(table) -> dict:
    return {"dagster/column_schema": column_schema(table), "dagster/table_name": f"protiv.{table.name}"}


def _reference_table(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
    *,
    table,
    model,
    record_id: str,
    fetch: Callable[[Source], Mapped],
    describe: Callable[[pd.DataFrame], dict] = lambda valid: {},
):
    """Read one company's reference records from its vendor, enforce the model, replace the table's
    company partition, and report counts plus the reconciliation check."""
    company_id = context.partition_key
    prepare_warehouse(warehouse)
    source = company_source(context, company_id, registry, vendors)
    with retry_vendor_outages(context, vendors):
        mapped = fetch(source)
    valid, set_aside = validate_and_store(
        warehouse, table, model, record_id, mapped.rows, mapped.set_aside,
        company_id=company_id, asset=table.name, partition_key=company_id, partition={"company_id": company_id},
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(valid),
            "set_aside": set_aside,
            "provider": source.provider,
            "vendor_requests": source.request_count,
            **describe(valid),
        }
    )
    yield reconcile(table.name, mapped.fetched_count, len(valid), set_aside)


@dg.asset(
    partitions_def=company_partitions,
    group_name="cleaned",
    kinds={"python", "sql"},
    metadata=_table_metadata(WORKERS),
    check_specs=[reconcile_spec("workers")],
    deps=[vendor_connection],
    pool="vendor_api",
)
def workers(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Every worker of the company, active or not, with the hourly wage labor cost is computed from.
    Read from the vendor on each materialization; rows that fail the schema are set aside in
    rejected_rows with their reason."""
    yield from _reference_table(
        context, registry, vendors, warehouse,
        table=WORKERS, model=schemas.Worker, record_id="worker_id", fetch=lambda source: source.workers(),
    )


@dg.asset(
    partitions_def=company_partitions,
    group_name="cleaned",
    kinds={"python", "sql"},
    metadata=_table_metadata(JOBS),
    check_specs=[reconcile_spec("jobs")],
    deps=[vendor_connection],
    pool="vendor_api",
)
def jobs(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Jobs and their milestones with labor budget (worker-hours), status (open, completed,
    canceled), recurring and drive flags, mapped from the vendor as the company's settings say."""
    yield from _reference_table(
        context, registry, vendors, warehouse,
        table=JOBS, model=schemas.Job, record_id="job_id", fetch=lambda source: source.jobs(),
        describe=lambda valid: {"with_budget": int(valid["budget_hours"].notna().sum()) if len(valid) else 0},
    )


@dg.asset(
    partitions_def=company_week_partitions,
    group_name="cleaned",
    kinds={"python", "sql"},
    metadata=_table_metadata(ATTENDANCE),
    deps=[
        raw_timesheets,
        dg.AssetDep(jobs, partition_mapping=BY_COMPANY),
        dg.AssetDep(workers, partition_mapping=BY_COMPANY),
    ],
    check_specs=[reconcile_spec("attendance")],
    automation_condition=ATTENDANCE_FOLLOWS_RAW,
    freshness_policy=TWO_HOUR_PROMISE,
    pool="vendor_api",  # Aspire's mapping reads work tickets, zones and branches from the vendor
)
def attendance(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Worked time of one company and ISO week in the one schema every vendor maps to: worker, job,
    milestone, local work date, start and end in UTC, hours, drive and on-the-clock flags, source
    modification time. Entries the vendor lists as deleted are removed; entries that fail the schema
    or reference an unknown worker or job are set aside in rejected_rows with their reason."""
    company_id, monday, sunday = split_company_week(context)
    prepare_warehouse(warehouse)
    raw = warehouse.read_table(
        RAW_TIMESHEETS, where={"company_id": company_id, "week_start": monday}, order_by=["feed", "position"]
    )
    feeds: dict[str, list[dict]] = defaultdict(list)
    for feed, payload in zip(raw["feed"], raw["payload"]):
        feeds[feed].append(json.loads(payload))
    source = company_source(context, company_id, registry, vendors)
    company_jobs = warehouse.read_table(JOBS, where={"company_id": company_id})
    company_workers = warehouse.read_table(WORKERS, where={"company_id": company_id})
    mapped = source.attendance(feeds, company_jobs, company_workers["worker_id"])
    rows, set_aside = mapped.rows, mapped.set_aside
    if len(rows):
        # A vendor that answers outside the requested dates must not write into another week.
        outside = ~rows["work_date"].between(monday, sunday)
        if outside.any():
            stray = rows[outside]
            set_aside = pd.concat(
                [
                    set_aside,
                    pd.DataFrame(
                        {
                            "record_id": stray["entry_id"].values,
                            "reason": f"work_date outside the requested week {monday}..{sunday}",
                            "record": stray.astype(str).apply(lambda r: json.dumps(r.to_dict(), sort_keys=True), axis=1).values,
                        }
                    ),
                ],
                ignore_index=True,
            )
            rows = rows[~outside]
    valid, set_aside_count = validate_and_store(
        warehouse, ATTENDANCE, schemas.Attendance, "entry_id", rows, set_aside,
        company_id=company_id, asset="attendance", partition_key=str(context.partition_key),
        partition={"company_id": company_id}, date_range=("work_date", monday, sunday), move_rows=True,
    )
    hours = float(valid["hours"].sum()) if len(valid) else 0.0
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(valid),
            "provider": source.provider,
            "set_aside": set_aside_count,
            "removed_as_deleted": mapped.removed_as_deleted,
            "hours": round(hours, 2),
            "drive_hours": round(float(valid.loc[valid["is_drive"], "hours"].sum()), 2) if len(valid) else 0.0,
            "on_the_clock_entries": int(valid["on_the_clock"].sum()) if len(valid) else 0,
        }
    )
    yield reconcile(
        "attendance", mapped.fetched_count, len(valid), set_aside_count, mapped.removed_as_deleted + mapped.without_row
    )
