"""What the warehouse gained since the previous release: the rules §9 ProPay columns, the reference
tables beside jobs and workers, and the ProPay engine's two new tables.

New tables, empty until the next sync fills them: ``task_lines``, ``worker_wages``,
``job_assignments`` (written with jobs and workers), ``jobs_without_propay`` and
``propay_settings_versions`` (written with the ProPay tables).

New nullable columns, left null: ``attendance.task_id`` and ``jobs.created_date`` (the previous
release did not keep them; the next sync of a week, or of jobs, writes them).

Columns that became nullable: ``propay_opportunities.labor_cost``, ``saved_amount``,
``overage_amount`` and ``propay_worker_bonuses.wage``, ``labor_cost`` (null now means a wage is
missing; every old row has a value and keeps it).

New columns of the ProPay tables, backfilled from each old row. The ProPay tables are derived: the
next ProPay materialization of a company replaces all of its rows with values computed under
today's rules, so these backfills only have to be true to what the old row says, and safe:

- ``settings_version`` (all three tables): 1. The previous release had one settings per company,
  which the registry's revision 0002 records as version 1, from the start.
- ``propay_opportunities``: ``pay_state`` by today's rule from the old row (final when the pool is
  above bash and the ProPay completed, provisional when above bash otherwise, else none);
  ``no_bonus_reason`` null when the pool is above bash, else the first reason today's order gives that
  the old columns show (excluded, disqualified, canceled, pending, no hours, over budget, on budget,
  under a cent, penalty; null when none of them does); ``actual_seconds`` = actual_hours x 3600,
  rounded; ``budget_unit`` hours for hours and task_hours budgets, else dollars, and the budget as
  a fraction of what the old row kept: budget_hours in millionths of an hour (it was rounded to 6
  decimals) or budget_amount in cents, 0/1 when the old row had none;
  ``began_before_pull_date`` false: the previous release did not apply that rule, so no old ProPay
  was excluded or computed as one that began before the pull date (the next materialization decides
  it); ``labor_cost_numerator``/``labor_cost_denominator`` null (nullable): the previous release
  kept only the labor cost rounded to the cent, not the exact value.
- ``propay_worker_bonuses``: ``seconds`` = hours x 3600, rounded; ``wage_count`` 1 (the previous
  release used the one wage of each worker; 0 where no wage); under the previous rules a worker was
  paid from one bucket only, so ``crew_share`` = bonus and ``role_bucket_share`` = 0 for the crew
  bucket, the other way round for a role bucket, which is then ``role_buckets_held`` (null for the
  crew); ``labor_cost_numerator``/``labor_cost_denominator`` null, as above.
- ``propay_overtime_weeks``: ``seconds_worked`` and ``overtime_seconds`` = the hours x 3600, rounded.

Each NOT NULL column is added with a placeholder default that is dropped at once, then backfilled
(DuckDB cannot add a NOT NULL constraint after an update in the same transaction); the statements
are the same on DuckDB and PostgreSQL, and keep PostgreSQL's grants and row-level security. New
columns come after the old ones (a fresh warehouse has attendance.task_id and jobs.created_date
earlier in the column order; nothing reads these tables by position). A table already in today's
shape is left alone.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

NEW_TABLES = {
    "task_lines": """
        "company_id" TEXT NOT NULL,
        "job_id" TEXT NOT NULL,
        "task_id" TEXT NOT NULL,
        "name" TEXT,
        "budget_hours" DOUBLE PRECISION,
        "budget_amount" NUMERIC(14,2),
        PRIMARY KEY ("company_id", "job_id", "task_id")
    """,
    "worker_wages": """
        "company_id" TEXT NOT NULL,
        "worker_id" TEXT NOT NULL,
        "effective_date" DATE NOT NULL,
        "hourly_wage" NUMERIC(10,4) NOT NULL,
        "pay_interval" TEXT,
        "burden_percent" DOUBLE PRECISION,
        PRIMARY KEY ("company_id", "worker_id", "effective_date")
    """,
    "job_assignments": """
        "company_id" TEXT NOT NULL,
        "job_id" TEXT NOT NULL,
        "worker_id" TEXT NOT NULL,
        "role" TEXT NOT NULL,
        PRIMARY KEY ("company_id", "job_id", "worker_id", "role")
    """,
    "jobs_without_propay": """
        "company_id" TEXT NOT NULL,
        "item_id" TEXT NOT NULL,
        "job_id" TEXT NOT NULL,
        "milestone_id" TEXT,
        "name" TEXT,
        "reason" TEXT NOT NULL,
        PRIMARY KEY ("company_id", "item_id")
    """,
    "propay_settings_versions": """
        "company_id" TEXT NOT NULL,
        "version" BIGINT NOT NULL,
        "effective_from" DATE,
        "recorded_at" TIMESTAMPTZ NOT NULL,
        "settings" TEXT NOT NULL,
        "attendance_pull_date" DATE NOT NULL,
        PRIMARY KEY ("company_id", "version")
    """,
}

# Per table: the columns added (name, type, placeholder while it is backfilled, None: nullable,
# left null), the columns that became nullable, and the backfill's SET clause.
Added = list[tuple[str, str, str | None]]
CHANGES: dict[str, tuple[Added, list[str], str | None]] = {
    "attendance": ([("task_id", "TEXT", None)], [], None),
    "jobs": ([("created_date", "DATE", None)], [], None),
    "propay_opportunities": (
        [
            ("settings_version", "BIGINT", "0"),
            ("pay_state", "TEXT", "'none'"),
            ("no_bonus_reason", "TEXT", None),
            ("began_before_pull_date", "BOOLEAN", "FALSE"),
            ("actual_seconds", "BIGINT", "0"),
            ("budget_unit", "TEXT", "'hours'"),
            ("budget_numerator", "NUMERIC(38,0)", "0"),
            ("budget_denominator", "NUMERIC(38,0)", "1"),
            ("labor_cost_numerator", "NUMERIC(38,0)", None),
            ("labor_cost_denominator", "NUMERIC(38,0)", None),
        ],
        ["labor_cost", "saved_amount", "overage_amount"],
        """
        settings_version = 1,
        pay_state = CASE WHEN bonus_pool > 0 THEN
            CASE WHEN status = 'completed' THEN 'final' ELSE 'provisional' END ELSE 'none' END,
        no_bonus_reason = CASE
            WHEN bonus_pool > 0 THEN NULL
            WHEN exclusion_reason IS NOT NULL THEN 'excluded'
            WHEN disqualified THEN 'disqualified'
            WHEN status = 'canceled' THEN 'canceled'
            WHEN status = 'pending' THEN 'pending'
            WHEN actual_hours = 0 THEN 'no hours'
            WHEN overage_amount > 0 THEN 'over budget'
            WHEN saved_amount = 0 THEN 'on budget'
            WHEN pool_before_penalty = 0 THEN 'under a cent'
            WHEN penalty_amount > 0 THEN 'penalty'
        END,
        began_before_pull_date = FALSE,
        actual_seconds = CAST(ROUND(actual_hours * 3600) AS BIGINT),
        budget_unit = CASE WHEN budget_type IN ('hours', 'task_hours') THEN 'hours' ELSE 'dollars' END,
        budget_numerator = CASE WHEN budget_type IN ('hours', 'task_hours')
            THEN COALESCE(CAST(ROUND(budget_hours * 1000000) AS NUMERIC(38,0)), 0)
            ELSE COALESCE(CAST(ROUND(budget_amount * 100) AS NUMERIC(38,0)), 0) END,
        budget_denominator = CASE
            WHEN budget_type IN ('hours', 'task_hours') AND budget_hours IS NOT NULL THEN 1000000
            WHEN budget_type NOT IN ('hours', 'task_hours') AND budget_amount IS NOT NULL THEN 100
            ELSE 1 END
        """,
    ),
    "propay_worker_bonuses": (
        [
            ("settings_version", "BIGINT", "0"),
            ("seconds", "BIGINT", "0"),
            ("wage_count", "BIGINT", "0"),
            ("labor_cost_numerator", "NUMERIC(38,0)", None),
            ("labor_cost_denominator", "NUMERIC(38,0)", None),
            ("crew_share", "NUMERIC(14,2)", "0"),
            ("role_bucket_share", "NUMERIC(14,2)", "0"),
            ("role_buckets_held", "TEXT", None),
        ],
        ["wage", "labor_cost"],
        """
        settings_version = 1,
        seconds = CAST(ROUND(hours * 3600) AS BIGINT),
        wage_count = CASE WHEN wage IS NULL THEN 0 ELSE 1 END,
        crew_share = CASE WHEN bucket = 'crew' THEN bonus ELSE 0 END,
        role_bucket_share = CASE WHEN bucket = 'crew' THEN 0 ELSE bonus END,
        role_buckets_held = CASE WHEN bucket = 'crew' THEN NULL ELSE bucket END
        """,
    ),
    "propay_overtime_weeks": (
        [
            ("settings_version", "BIGINT", "0"),
            ("seconds_worked", "BIGINT", "0"),
            ("overtime_seconds", "BIGINT", "0"),
        ],
        [],
        """
        settings_version = 1,
        seconds_worked = CAST(ROUND(hours_worked * 3600) AS BIGINT),
        overtime_seconds = CAST(ROUND(overtime_hours * 3600) AS BIGINT)
        """,
    ),
}


def _columns(schema: str, table: str) -> set[str]:
    rows = op.get_bind().execute(
        sa.text(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = :schema AND table_name = :table"
        ),
        {"schema": schema, "table": table},
    )
    return {row[0] for row in rows}


def upgrade(schema: str | None = None) -> None:
    if schema is None:  # the environment always names the warehouse's schema
        raise ValueError("the warehouse's revisions need the schema they upgrade")
    for name, clauses in NEW_TABLES.items():
        op.execute(f'CREATE TABLE IF NOT EXISTS "{schema}"."{name}" ({clauses.strip()})')
    backfills = []
    for name, (added, now_nullable, backfill) in CHANGES.items():
        qualified = f'"{schema}"."{name}"'
        present = _columns(schema, name)
        if not present or added[0][0] in present:  # no such table (created fresh later) or already today's
            continue
        for column in now_nullable:
            op.execute(f'ALTER TABLE {qualified} ALTER COLUMN "{column}" DROP NOT NULL')
        for column, sql_type, placeholder in added:
            if placeholder is None:
                op.execute(f'ALTER TABLE {qualified} ADD COLUMN "{column}" {sql_type}')
            else:
                op.execute(f'ALTER TABLE {qualified} ADD COLUMN "{column}" {sql_type} NOT NULL DEFAULT {placeholder}')
                op.execute(f'ALTER TABLE {qualified} ALTER COLUMN "{column}" DROP DEFAULT')
        if backfill:
            backfills.append(f"UPDATE {qualified} SET {backfill.strip()}")
    # Updates last: DuckDB refuses DDL on a table with updates outstanding in the transaction.
    for statement in backfills:
        op.execute(statement)


def downgrade(schema: str | None = None) -> None:
    raise NotImplementedError(
        "the warehouse is not downgraded: restore a backup taken before `protiv upgrade`, or drop the schema "
        "and sync again with the previous release"
    )
