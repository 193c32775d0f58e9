"""ProPay layer: every ProPay, each worker's bonus and the overtime owed on it, computed by the pure
engine (``protiv_dagster.propay``) from the cleaned tables, stored as three assets of one company
partition."""


import dagster as dg
import pandas as pd

from protiv_dagster import schemas
from protiv_dagster.assets.attendance import BY_COMPANY, attendance, jobs, workers
from protiv_dagster.assets.common import (
    column_schema,
    label_run,
    prepare_warehouse,
    reconcile,
    reconcile_spec,
    set_aside_write,
    validated,
)
from protiv_dagster.automation.conditions import PROPAY_FOLLOWS_ATTENDANCE, TWO_HOUR_PROMISE
from protiv_dagster.partitions import company_partitions
from protiv_dagster.propay import compute_propays
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.warehouse import PartitionWrite, Table, Warehouse
from protiv_dagster.tables import (
    ATTENDANCE,
    JOBS,
    PROPAY_OPPORTUNITIES,
    PROPAY_OVERTIME_WEEKS,
    PROPAY_WORKER_BONUSES,
    WORKERS,
)

# The connection health check (assets/checks.py) and the sensors address the ProPay partition of a
# company by this key; the other two ProPay assets are materialized with it, never alone.
propay_opportunities = dg.AssetKey(PROPAY_OPPORTUNITIES.name)
propay_worker_bonuses = dg.AssetKey(PROPAY_WORKER_BONUSES.name)
propay_overtime_weeks = dg.AssetKey(PROPAY_OVERTIME_WEEKS.name)

_DESCRIPTIONS = {
    PROPAY_OPPORTUNITIES.name: (
        "One row per ProPay of the company (a budgeted job, or each budgeted milestone of a recurring job), "
        "excluded ones included with the reason: budget (hours and $), actual worker-hours and labor cost, saved "
        "or over-budget hours and $, efficiency, bonus pool after penalty split into role buckets, what was paid "
        "to workers and kept by the company, overtime owed, disqualification, status and work dates. Computed by "
        "the pure ProPay engine from jobs, workers and every week of attendance; the company's settings are read "
        "at each materialization."
    ),
    PROPAY_WORKER_BONUSES.name: (
        "One row per ProPay and worker with counted time on it: role, the bucket they are paid from, hours, wage, "
        "labor cost, weight under the company's distribution method, bonus (cents settle by the largest "
        "remainder, so a ProPay's bonuses sum to its paid_to_workers) and the overtime owed on the bonus."
    ),
    PROPAY_OVERTIME_WEEKS.name: (
        "One row per worker and workweek that carries a ProPay bonus: every hour worked that week, overtime hours, "
        "the bonus allocated to the week and the FLSA regular-rate adjustment owed on it "
        "(bonus / hours worked x 0.5 x overtime hours)."
    ),
}


def _spec(table: Table) -> dg.AssetSpec:
    return dg.AssetSpec(
        table.name,
        description=_DESCRIPTIONS[table.name],
        group_name="propay",
        kinds={"python", "sql"},
        metadata={
            "dagster/column_schema": column_schema(table),
            "dagster/table_name": f"protiv.{table.name}",
        },
        deps=[dg.AssetDep(attendance, partition_mapping=BY_COMPANY), jobs, workers],
        automation_condition=PROPAY_FOLLOWS_ATTENDANCE,
        freshness_policy=TWO_HOUR_PROMISE,
    )


def _money(value: float) -> str:
    return f"${value:,.2f}"


def summary_markdown(opportunities: pd.DataFrame) -> str:
    """The ProPay materialization at a glance: ProPays by status, pool and where it went, excluded and
    disqualified counts, the largest savings and the largest overages."""
    if opportunities.empty:
        return "No ProPays: no job or milestone has a valid budget yet."
    by_status = opportunities["status"].value_counts().sort_index()
    excluded = int(opportunities["exclusion_reason"].notna().sum())
    disqualified = int(opportunities["disqualified"].astype(bool).sum())
    savings = opportunities[opportunities["saved_amount"] > 0].nlargest(5, "saved_amount")
    overages = opportunities[opportunities["overage_amount"] > 0].nlargest(5, "overage_amount")

    def hours(value: float) -> str:
        return "" if pd.isna(value) else f"{value:,.1f}"

    lines = [
        f"**{len(opportunities)} ProPays**, bonus pool **{_money(opportunities['bonus_pool'].sum())}** "
        f"(paid to workers {_money(opportunities['paid_to_workers'].sum())}, kept by the company "
        f"{_money(opportunities['kept_by_company'].sum())}), overtime owed {_money(opportunities['overtime_adjustment'].sum())}, "
        f"overage {_money(opportunities['overage_amount'].sum())}.",
        f"Excluded: **{excluded}**, disqualified: **{disqualified}**.",
        "",
        "| status | ProPays |",
        "|---|---|",
        *(f"| {status} | {count} |" for status, count in by_status.items()),
        "",
        "| largest savings | budget type | saved h | saved $ | pool $ |",
        "|---|---|---|---|---|",
        *(
            f"| {r.name} | {r.budget_type} | {hours(r.saved_hours)} | {r.saved_amount:,.2f} | {r.bonus_pool:,.2f} |"
            for r in savings.itertuples()
        ),
        "",
        "| largest overages | budget type | over h | over $ |",
        "|---|---|---|---|",
        *(f"| {r.name} | {r.budget_type} | {hours(r.overage_hours)} | {r.overage_amount:,.2f} |" for r in overages.itertuples()),
    ]
    return "\n".join(lines)


def worker_bonus_summary(bonuses: pd.DataFrame) -> str:
    """Worker bonuses at a glance: who earned most, by bucket, and the overtime owed on top."""
    if bonuses.empty:
        return "No worker has counted time on a ProPay yet."
    paid = bonuses[bonuses["bonus"] > 0]
    per_worker = bonuses.groupby("worker_id")[["hours", "bonus", "overtime_adjustment"]].sum().nlargest(5, "bonus")
    by_bucket = bonuses.groupby("bucket")["bonus"].sum().sort_index()
    return "\n".join(
        [
            f"**{bonuses['worker_id'].nunique()} workers** on {bonuses['propay_id'].nunique()} ProPays; "
            f"{paid['worker_id'].nunique()} earned a bonus, **{_money(bonuses['bonus'].sum())}** in all, "
            f"overtime owed {_money(bonuses['overtime_adjustment'].sum())}.",
            "",
            "| bucket | bonus $ |",
            "|---|---|",
            *(f"| {bucket} | {total:,.2f} |" for bucket, total in by_bucket.items()),
            "",
            "| top earners (worker id) | hours | bonus $ | overtime $ |",
            "|---|---|---|---|",
            *(f"| {w} | {r.hours:,.1f} | {r.bonus:,.2f} | {r.overtime_adjustment:,.2f} |" for w, r in per_worker.iterrows()),
        ]
    )


def overtime_summary(weeks: pd.DataFrame) -> str:
    """Overtime owed on bonuses at a glance."""
    if weeks.empty:
        return "No workweek carries a ProPay bonus yet."
    with_overtime = weeks[weeks["overtime_hours"] > 0]
    return (
        f"**{len(weeks)} worker-weeks** carry a bonus ({_money(weeks['bonus_in_week'].sum())}); "
        f"{len(with_overtime)} of them have overtime ({with_overtime['overtime_hours'].sum():,.1f} h), "
        f"owing **{_money(weeks['overtime_adjustment'].sum())}** in regular-rate adjustments."
    )


@dg.multi_asset(
    name="propay",
    specs=[_spec(PROPAY_OPPORTUNITIES), _spec(PROPAY_WORKER_BONUSES), _spec(PROPAY_OVERTIME_WEEKS)],
    partitions_def=company_partitions,
    check_specs=[reconcile_spec(table.name) for table in (PROPAY_OPPORTUNITIES, PROPAY_WORKER_BONUSES, PROPAY_OVERTIME_WEEKS)],
    can_subset=False,  # one engine run yields all three tables; they are only consistent together
    pool="propay_engine",  # CPU and memory bound over the company's whole history (docs/scaling.md)
)
def propay_tables(context: dg.AssetExecutionContext, registry: ConnectionRegistryResource, warehouse: Warehouse):
    """Every ProPay of the company, each worker's bonus, and the overtime owed on bonuses, from one run
    of the ProPay engine over the company's cleaned jobs, workers and attendance."""
    company_id = context.partition_key
    prepare_warehouse(warehouse)
    connection = registry.get(company_id)
    label_run(context, company_id, connection.provider)
    where = {"company_id": company_id}
    with warehouse.reading() as read:  # one consistent view of the three tables
        company_jobs = read.read_table(JOBS, where=where)
        company_attendance = read.read_table(ATTENDANCE, where=where)
        company_workers = read.read_table(WORKERS, where=where)
    result = compute_propays(company_jobs, company_attendance, company_workers, connection.settings, company_id)
    opportunities, opportunities_rejected = validated(
        PROPAY_OPPORTUNITIES, schemas.PropayOpportunity, "propay_id", result.opportunities, schemas.no_rejects()
    )
    # A worker's bonus row names its ProPay: without the ProPay (set aside above) it is removed too.
    bonus_candidates = result.worker_bonuses[result.worker_bonuses["propay_id"].isin(set(opportunities["propay_id"]))]
    bonuses, bonuses_rejected = validated(
        PROPAY_WORKER_BONUSES, schemas.PropayWorkerBonus, "propay_id", bonus_candidates, schemas.no_rejects()
    )
    weeks, weeks_rejected = validated(
        PROPAY_OVERTIME_WEEKS, schemas.PropayOvertimeWeek, "worker_id", result.overtime_weeks, schemas.no_rejects()
    )
    # The three tables and their set-aside records in ONE transaction: an analyst never sees
    # ProPays of this run beside bonuses of the previous one, and a failure leaves all as they were.
    warehouse.replace_partitions(
        [
            write
            for table, rows, rejected in (
                (PROPAY_OPPORTUNITIES, opportunities, opportunities_rejected),
                (PROPAY_WORKER_BONUSES, bonuses, bonuses_rejected),
                (PROPAY_OVERTIME_WEEKS, weeks, weeks_rejected),
            )
            for write in (
                PartitionWrite(table, rows, where),
                set_aside_write(company_id, table.name, company_id, rejected),
            )
        ]
    )
    opportunities_aside, bonuses_aside, weeks_aside = len(opportunities_rejected), len(bonuses_rejected), len(weeks_rejected)

    common = {"provider": connection.provider}
    yield dg.MaterializeResult(
        asset_key=propay_opportunities,
        metadata={
            **common,
            "dagster/row_count": len(opportunities),
            "set_aside": opportunities_aside,
            "bonus_pool_total": float(opportunities["bonus_pool"].sum()) if len(opportunities) else 0.0,
            "excluded": int(opportunities["exclusion_reason"].notna().sum()) if len(opportunities) else 0,
            "disqualified": int(opportunities["disqualified"].astype(bool).sum()) if len(opportunities) else 0,
            "summary": dg.MetadataValue.md(summary_markdown(opportunities)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=propay_worker_bonuses,
        metadata={
            **common,
            "dagster/row_count": len(bonuses),
            "set_aside": bonuses_aside,
            "bonus_total": float(bonuses["bonus"].sum()) if len(bonuses) else 0.0,
            "summary": dg.MetadataValue.md(worker_bonus_summary(bonuses)),
        },
    )
    yield dg.MaterializeResult(
        asset_key=propay_overtime_weeks,
        metadata={
            **common,
            "dagster/row_count": len(weeks),
            "set_aside": weeks_aside,
            "overtime_adjustment_total": float(weeks["overtime_adjustment"].sum()) if len(weeks) else 0.0,
            "summary": dg.MetadataValue.md(overtime_summary(weeks)),
        },
    )
    yield reconcile(PROPAY_OPPORTUNITIES.name, len(result.opportunities), len(opportunities), opportunities_aside)
    yield reconcile(
        PROPAY_WORKER_BONUSES.name, len(result.worker_bonuses), len(bonuses), bonuses_aside,
        removed=len(result.worker_bonuses) - len(bonus_candidates),
    )
    yield reconcile(PROPAY_OVERTIME_WEEKS.name, len(result.overtime_weeks), len(weeks), weeks_aside)
