"""ProPay layer: every ProPay, each worker's bonus and the overtime owed on it, computed by the pure
engine (``protiv_dagster.propay``) from the cleaned tables, stored as three assets of one company
partition."""

from typing import Any

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
from protiv_dagster.company_settings import SettingsHistory
from protiv_dagster.connections.registry import Connection, ConnectionRegistryResource, StoredSettingsVersion
from protiv_dagster.partitions import company_partitions
from protiv_dagster.propay import compute_propays
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import (
    ATTENDANCE,
    JOB_ASSIGNMENTS,
    JOBS,
    JOBS_WITHOUT_PROPAY,
    PROPAY_OPPORTUNITIES,
    PROPAY_OVERTIME_WEEKS,
    PROPAY_SETTINGS_VERSIONS,
    PROPAY_WORKER_BONUSES,
    TASK_LINES,
    WORKER_WAGES,
    WORKERS,
)
from protiv_dagster.warehouse.declarations import Table
from protiv_dagster.warehouse.spool import PartitionWrite

_DESCRIPTIONS = {
    PROPAY_OPPORTUNITIES.name: (
        "One row per ProPay of the company (a budgeted non-recurring job, or each budgeted milestone of a recurring "
        "job), excluded ones included with the reason: budget (hours and $, and exactly as a fraction), actual "
        "worker-seconds and labor cost, saved or over-budget hours and $, efficiency, bonus pool after penalty split "
        "into role buckets, what was paid to workers and kept by the company, overtime owed, pay_state (final, "
        "provisional or none) with the reason a ProPay pays $0, and the settings version it was computed with. "
        "Computed by the pure ProPay engine from jobs, task lines, workers, wage histories, assignments and every "
        "week of attendance under the company's settings history (docs/data-dictionary.md walks a paycheck back)."
    ),
    PROPAY_WORKER_BONUSES.name: (
        "One row per ProPay and worker with counted time on it or holding one of its role buckets: role, bucket, "
        "seconds and hours, wage (with wage histories, the average), exact labor cost, weight under the company's "
        "distribution method, crew share plus role-bucket share = bonus (cents settle by the largest remainder, so "
        "a ProPay's bonuses sum to its paid_to_workers) and the overtime owed on the bonus."
    ),
    PROPAY_OVERTIME_WEEKS.name: (
        "One row per worker and workweek that carries a ProPay bonus: every hour worked that week, overtime hours, "
        "the bonus allocated to the week and the FLSA regular-rate adjustment owed on it "
        "(bonus / hours worked x 0.5 x overtime hours)."
    ),
    JOBS_WITHOUT_PROPAY.name: (
        "Every job or milestone that pays no ProPay of its own and is not counted in one (drive jobs, recurring jobs "
        "whose milestones are the ProPays, no budget, ...) and every excluded ProPay, with the reason: where to look "
        "when a job expected to pay has no bonus."
    ),
    PROPAY_SETTINGS_VERSIONS.name: (
        "The company's ProPay settings versions in force when the ProPays were computed, each with the first work "
        "date it applies to, as JSON: with propay_opportunities.settings_version, what an auditor needs to "
        "recompute any ProPay from the warehouse alone."
    ),
}

# The engine's tables with the pandera model and the id column rejected rows are reported by.
_ENGINE_TABLES = (
    (PROPAY_OPPORTUNITIES, schemas.PropayOpportunity, "propay_id"),
    (PROPAY_WORKER_BONUSES, schemas.PropayWorkerBonus, "propay_id"),
    (PROPAY_OVERTIME_WEEKS, schemas.PropayOvertimeWeek, "worker_id"),
    (JOBS_WITHOUT_PROPAY, schemas.JobWithoutPropay, "item_id"),
    (PROPAY_SETTINGS_VERSIONS, schemas.PropaySettingsVersion, "version"),
)


# The UI shows these tables without an automation condition: it says here how they stay fresh.
_KEPT_WITH_OPPORTUNITIES = (
    "Written in the same run of the ProPay engine as propay_opportunities, whose automation condition "
    "requests this table with it once the company's attendance changed."
)


def _spec(table: Table) -> dg.AssetSpec:
    return dg.AssetSpec(
        table.name,
        description=_DESCRIPTIONS[table.name]
        + ("" if table is PROPAY_OPPORTUNITIES else f" {_KEPT_WITH_OPPORTUNITIES}"),
        group_name="propay",
        kinds={"python", "sql"},
        metadata={
            "dagster/column_schema": column_schema(table),
            "dagster/table_name": f"protiv.{table.name}",
        },
        deps=[dg.AssetDep(attendance, partition_mapping=BY_COMPANY), jobs, workers],
        # On propay_opportunities alone: the engine's tables are one non-subsettable run, and Dagster
        # requests every table of it when one is requested. Each condition maps its company partitions
        # to all of their attendance weeks; at 10,000 companies x 100 weeks, five of them made most of
        # a 15-28 s evaluation after a refresh (bench/RESULTS.md, 2026-12-05).
        automation_condition=PROPAY_FOLLOWS_ATTENDANCE if table is PROPAY_OPPORTUNITIES else None,
        freshness_policy=TWO_HOUR_PROMISE,
    )


def settings_history(connection: Connection) -> tuple[SettingsHistory, pd.DataFrame]:
    """The company's settings versions in force, for the engine and as the rows of
    ``propay_settings_versions``. A connection recorded before versions were kept has only its
    current settings: version 1, in force from the start."""
    stored = connection.settings_in_force() or [
        StoredSettingsVersion(
            version=1, effective_from=None, settings=connection.settings, recorded_at=connection.connected_at
        )
    ]
    rows = pd.DataFrame(
        {
            "company_id": connection.company_id,
            "version": [v.version for v in stored],
            "effective_from": [v.effective_from for v in stored],
            "recorded_at": pd.to_datetime([v.recorded_at for v in stored], utc=True),
            "settings": [v.settings.model_dump_json() for v in stored],
            "attendance_pull_date": connection.attendance_pull_date,
        }
    )
    return SettingsHistory.of(stored), rows


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
    final = opportunities["pay_state"] == "final"
    provisional = opportunities["pay_state"] == "provisional"
    savings = opportunities[opportunities["saved_amount"] > 0].nlargest(5, "saved_amount")
    overages = opportunities[opportunities["overage_amount"] > 0].nlargest(5, "overage_amount")

    def hours(value: Any) -> str:  # a cell of a row: a number, or missing
        return "" if pd.isna(value) else f"{value:,.1f}"

    lines = [
        f"**{len(opportunities)} ProPays**, bonus pool **{_money(opportunities['bonus_pool'].sum())}** "
        f"(paid to workers {_money(opportunities['paid_to_workers'].sum())}, kept by the company "
        f"{_money(opportunities['kept_by_company'].sum())}), overtime owed {_money(opportunities['overtime_adjustment'].sum())}, "
        f"overage {_money(opportunities['overage_amount'].sum())}.",
        f"Final (completed) pools {_money(opportunities.loc[final, 'bonus_pool'].sum())} on {int(final.sum())} ProPays; "
        f"provisional (started, may change) {_money(opportunities.loc[provisional, 'bonus_pool'].sum())} on "
        f"{int(provisional.sum())}; {int((~final & ~provisional).sum())} pay nothing.",
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
        *(
            f"| {r.name} | {r.budget_type} | {hours(r.overage_hours)} | {r.overage_amount:,.2f} |"
            for r in overages.itertuples()
        ),
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
            *(
                f"| {w} | {r.hours:,.1f} | {r.bonus:,.2f} | {r.overtime_adjustment:,.2f} |"
                for w, r in per_worker.iterrows()
            ),
        ]
    )


def reasons_markdown(unpaid: pd.DataFrame) -> str:
    """Jobs and milestones without a ProPay, counted by reason."""
    if unpaid.empty:
        return "Every job with a budget has a ProPay that can pay."
    by_reason = unpaid["reason"].value_counts()
    return "\n".join(
        [
            "| reason | jobs or milestones |",
            "|---|---|",
            *(f"| {reason} | {count} |" for reason, count in by_reason.items()),
        ]
    )


def versions_markdown(versions: pd.DataFrame) -> str:
    """The settings versions the ProPays were computed with, and the date each applies from."""
    return "\n".join(
        [
            "| version | applies from | recorded at |",
            "|---|---|---|",
            *(
                f"| {r.version} | {r.effective_from or 'the start'!s} | {r.recorded_at:%Y-%m-%d %H:%M} UTC |"
                for r in versions.itertuples()
            ),
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
    specs=[_spec(table) for table, _, _ in _ENGINE_TABLES],
    partitions_def=company_partitions,
    check_specs=[reconcile_spec(table.name, company_partitions) for table, _, _ in _ENGINE_TABLES],
    can_subset=False,  # one engine run yields every table; they are only consistent together
    pool="propay_engine",  # CPU and memory bound over the company's whole history (docs/scaling.md)
)
def propay_tables(context: dg.AssetExecutionContext, registry: ConnectionRegistryResource, warehouse: Warehouse):
    """Every ProPay of the company, each worker's bonus, the overtime owed on bonuses, the jobs without
    a ProPay and the settings versions used, from one run of the ProPay engine over the company's
    cleaned jobs, task lines, workers, wages, assignments and attendance."""
    company_id = context.partition_key
    prepare_warehouse(warehouse)
    connection = registry.get(company_id)
    label_run(context, company_id, connection.provider)
    where = {"company_id": company_id}
    # Its read and its write open a DuckDB file once.
    with warehouse.kept_open():
        with warehouse.reading() as read:  # one consistent view of the inputs
            inputs = {
                table.name: read.read_table(table, where=where)
                for table in (JOBS, ATTENDANCE, WORKERS, TASK_LINES, WORKER_WAGES, JOB_ASSIGNMENTS)
            }
        history, settings_rows = settings_history(connection)
        result = compute_propays(
            inputs[JOBS.name],
            inputs[ATTENDANCE.name],
            inputs[WORKERS.name],
            history,
            company_id,
            task_lines=inputs[TASK_LINES.name],
            wages=inputs[WORKER_WAGES.name],
            assignments=inputs[JOB_ASSIGNMENTS.name],
            pull_date=connection.attendance_pull_date,
        )
        without = result.jobs_without_propay
        computed = {
            PROPAY_OPPORTUNITIES.name: result.opportunities,
            PROPAY_WORKER_BONUSES.name: result.worker_bonuses,
            PROPAY_OVERTIME_WEEKS.name: result.overtime_weeks,
            JOBS_WITHOUT_PROPAY.name: without.assign(item_id=without["milestone_id"].fillna(without["job_id"])),
            PROPAY_SETTINGS_VERSIONS.name: settings_rows,
        }
        stored: dict[str, pd.DataFrame] = {}
        rejected: dict[str, pd.DataFrame] = {}
        removed: dict[str, int] = {}
        for table, model, record_id in _ENGINE_TABLES:
            candidates = computed[table.name]
            if table is PROPAY_WORKER_BONUSES:
                # A worker's bonus row names its ProPay: without the ProPay (set aside above) it is removed too.
                candidates = candidates[
                    candidates["propay_id"].isin(set(stored[PROPAY_OPPORTUNITIES.name]["propay_id"]))
                ]
                removed[table.name] = len(computed[table.name]) - len(candidates)
            stored[table.name], rejected[table.name] = validated(
                table, model, record_id, candidates, schemas.no_rejects()
            )
        # Every table and its set-aside records in ONE transaction: an analyst never sees ProPays of
        # this run beside bonuses of the previous one, and a failure leaves all as they were.
        warehouse.replace_partitions(
            [
                write
                for table, _, _ in _ENGINE_TABLES
                for write in (
                    PartitionWrite(table, stored[table.name], where),
                    set_aside_write(company_id, table.name, company_id, rejected[table.name]),
                )
            ]
        )
    opportunities = stored[PROPAY_OPPORTUNITIES.name]
    bonuses = stored[PROPAY_WORKER_BONUSES.name]
    weeks = stored[PROPAY_OVERTIME_WEEKS.name]
    versions = stored[PROPAY_SETTINGS_VERSIONS.name]

    def total(frame: pd.DataFrame, column: str, where_rows: pd.Series | None = None) -> float:
        values = frame[column] if where_rows is None else frame.loc[where_rows, column]
        return float(values.fillna(0).astype(float).sum()) if len(values) else 0.0

    pay_state = opportunities["pay_state"]
    # Per table: its own figures and its summary, beside the ones every table shows.
    figures: dict[str, tuple[dict[str, float | int], str]] = {
        PROPAY_OPPORTUNITIES.name: (
            {
                "bonus_pool_total": total(opportunities, "bonus_pool"),
                "final_bonus_pool": total(opportunities, "bonus_pool", pay_state == "final"),
                "provisional_bonus_pool": total(opportunities, "bonus_pool", pay_state == "provisional"),
                "excluded": int(opportunities["exclusion_reason"].notna().sum()),
                "disqualified": int(opportunities["disqualified"].astype(bool).sum()),
            },
            summary_markdown(opportunities),
        ),
        PROPAY_WORKER_BONUSES.name: ({"bonus_total": total(bonuses, "bonus")}, worker_bonus_summary(bonuses)),
        PROPAY_OVERTIME_WEEKS.name: (
            {"overtime_adjustment_total": total(weeks, "overtime_adjustment")},
            overtime_summary(weeks),
        ),
        JOBS_WITHOUT_PROPAY.name: ({}, reasons_markdown(stored[JOBS_WITHOUT_PROPAY.name])),
        PROPAY_SETTINGS_VERSIONS.name: (
            {"latest_version": int(versions["version"].max()) if len(versions) else 0},
            versions_markdown(versions),
        ),
    }
    for table, _, _ in _ENGINE_TABLES:
        own, summary = figures[table.name]
        yield dg.MaterializeResult(
            asset_key=dg.AssetKey(table.name),
            metadata={
                "provider": connection.provider,
                "dagster/row_count": len(stored[table.name]),
                "set_aside": len(rejected[table.name]),
                **own,
                "summary": dg.MetadataValue.md(summary),
            },
        )
    for table, _, _ in _ENGINE_TABLES:
        yield reconcile(
            table.name,
            len(computed[table.name]),
            len(stored[table.name]),
            len(rejected[table.name]),
            removed.get(table.name, 0),
        )
