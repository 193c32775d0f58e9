"""The warehouse tables analysts query, derived from the pandera models so there is one description.

Cleaned tables come from ``schemas.py``; the raw and set-aside tables are declared here because
they hold records as received, which no model can validate.
"""

from __future__ import annotations

import pandera.pandas as pa

from protiv_dagster import schemas
from protiv_dagster.warehouse.declarations import Column, Table


def table_from_model(
    model: type[pa.DataFrameModel], name: str, primary_key: tuple[str, ...], description: str
) -> Table:
    schema = model.to_schema()
    columns = tuple(
        Column(
            name=column_name,
            sql_type=column.metadata[schemas.SQL_TYPE],
            nullable=column.nullable,
            description=column.description or "",
        )
        for column_name, column in schema.columns.items()
    )
    return Table(name=name, columns=columns, primary_key=primary_key, description=description)


ATTENDANCE = table_from_model(
    schemas.Attendance,
    "attendance",
    ("company_id", "entry_id"),
    "Worked time entries of every vendor in one shape; deleted entries are removed. Partitioned by company and ISO week of work_date.",
)
WORKERS = table_from_model(
    schemas.Worker, "workers", ("company_id", "worker_id"), "Workers of each company with the wage used for labor cost."
)
JOBS = table_from_model(
    schemas.Job, "jobs", ("company_id", "job_id"), "Jobs and their milestones with labor budgets and status."
)
TASK_LINES = table_from_model(
    schemas.TaskLine,
    "task_lines",
    ("company_id", "job_id", "task_id"),
    "Line items of the jobs' labor budgets (BusyBusy cost code budgets, Aspire opportunity services), with their "
    "hours and $ budgets; attendance.task_id books time to them. Written with jobs, per company.",
)
WORKER_WAGES = table_from_model(
    schemas.WorkerWage,
    "worker_wages",
    ("company_id", "worker_id", "effective_date"),
    "Wage histories (BusyBusy wage histories, Aspire pay rates): the wage in force on a work date is the row with "
    "the latest effective_date on or before it. QuickBooks Time keeps none: its workers have only workers.hourly_wage. "
    "Written with workers, per company.",
)
JOB_ASSIGNMENTS = table_from_model(
    schemas.JobAssignment,
    "job_assignments",
    ("company_id", "job_id", "worker_id", "role"),
    "Crew leads and managers the vendor assigns to a job or milestone (Aspire: the crew leader of the work tickets "
    "and of their time); QuickBooks Time and BusyBusy assign none. Written with jobs, per company.",
)
PROPAY_OPPORTUNITIES = table_from_model(
    schemas.PropayOpportunity,
    "propay_opportunities",
    ("company_id", "propay_id"),
    "One row per ProPay (a budgeted job, or a budgeted milestone of a recurring job), excluded ones included with "
    "the reason: budget, actual hours and labor cost, savings or overage, efficiency, bonus pool with penalty and "
    "role buckets, what was paid to workers and kept by the company, overtime owed, status and work dates.",
)
PROPAY_WORKER_BONUSES = table_from_model(
    schemas.PropayWorkerBonus,
    "propay_worker_bonuses",
    ("company_id", "propay_id", "worker_id"),
    "One row per ProPay and worker with counted time on it: role, bucket, hours, wage, labor cost, weight, "
    "bonus and the overtime owed on it. Bonuses of a ProPay sum to its paid_to_workers.",
)
PROPAY_OVERTIME_WEEKS = table_from_model(
    schemas.PropayOvertimeWeek,
    "propay_overtime_weeks",
    ("company_id", "worker_id", "week_start"),
    "One row per worker and workweek carrying a ProPay bonus: hours worked, overtime hours, the bonus "
    "allocated to the week and the FLSA regular-rate overtime adjustment owed on it.",
)
JOBS_WITHOUT_PROPAY = table_from_model(
    schemas.JobWithoutPropay,
    "jobs_without_propay",
    ("company_id", "item_id"),
    "Every job or milestone that pays no ProPay of its own and is not counted in one, and every excluded ProPay, "
    "with the reason. Written with the ProPay tables, per company.",
)
PROPAY_SETTINGS_VERSIONS = table_from_model(
    schemas.PropaySettingsVersion,
    "propay_settings_versions",
    ("company_id", "version"),
    "The company's ProPay settings versions in force, each with the first work date it applies to: "
    "propay_opportunities.settings_version names the one a ProPay was computed with. Written with the ProPay "
    "tables, per company.",
)

RAW_TIMESHEETS = Table(
    name="raw_timesheets",
    description="Time entries as received from each company's vendor, live and deleted feeds, per company and ISO week of their work date.",
    primary_key=("company_id", "week_start", "feed", "position"),
    columns=(
        Column("company_id", "TEXT", False, "Protiv company."),
        Column("week_start", "DATE", False, "Monday of the ISO week the sheets were requested for."),
        Column("provider", "TEXT", False, "The vendor the records came from."),
        Column("feed", "TEXT", False, "The vendor endpoint, e.g. timesheets (live) or timesheets_deleted."),
        Column("position", "BIGINT", False, "Order in which the record was received."),
        Column("entry_id", "TEXT", True, "The record's id as received."),
        Column("source_modified", "TEXT", True, "The record's last_modified as received."),
        Column("payload", "TEXT", False, "The record as received, JSON."),
    ),
)

REJECTED_ROWS = Table(
    name="rejected_rows",
    description="Records set aside by validation, with the reason; the counts reconcile: fetched = loaded + set aside.",
    primary_key=("company_id", "asset", "partition_key", "position"),
    columns=(
        Column("company_id", "TEXT", False, "Protiv company."),
        Column(
            "asset",
            "TEXT",
            False,
            "The asset that set the record aside (attendance, workers, jobs), or the table it writes beside its own "
            "(worker_wages with workers, task_lines and job_assignments with jobs).",
        ),
        Column("partition_key", "TEXT", False, "The partition materialized when it was set aside."),
        Column("position", "BIGINT", False, "Order within that materialization."),
        Column("record_id", "TEXT", True, "The vendor id of the record, when it has one."),
        Column("reason", "TEXT", False, "Every check the record failed."),
        Column("record", "TEXT", False, "The record, JSON."),
    ),
)

ALL_TABLES = (
    RAW_TIMESHEETS,
    ATTENDANCE,
    WORKERS,
    JOBS,
    PROPAY_OPPORTUNITIES,
    PROPAY_WORKER_BONUSES,
    PROPAY_OVERTIME_WEEKS,
    REJECTED_ROWS,
    TASK_LINES,
    WORKER_WAGES,
    JOB_ASSIGNMENTS,
    JOBS_WITHOUT_PROPAY,
    PROPAY_SETTINGS_VERSIONS,
)
