"""The warehouse of the previous release (commit 5a7857a): its eight tables, as it created them.

Frozen here as that release's ``_create_table_sql`` wrote them (the same text for DuckDB and
PostgreSQL), independent of today's declarations. A warehouse of that release has no version
table; opening it says to run ``protiv upgrade``, which stamps it with this revision and upgrades
it from here. Views are not revisions: they hold no data and are made again whenever a
preparation finds them missing or changed (``prepare``, ``ensure_views``).

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Each table's column and primary key clauses.
TABLES = {
    "raw_timesheets": """
        "company_id" TEXT NOT NULL,
        "week_start" DATE NOT NULL,
        "provider" TEXT NOT NULL,
        "feed" TEXT NOT NULL,
        "position" BIGINT NOT NULL,
        "entry_id" TEXT,
        "source_modified" TEXT,
        "payload" TEXT NOT NULL,
        PRIMARY KEY ("company_id", "week_start", "feed", "position")
    """,
    "attendance": """
        "company_id" TEXT NOT NULL,
        "entry_id" TEXT NOT NULL,
        "worker_id" TEXT NOT NULL,
        "job_id" TEXT NOT NULL,
        "milestone_id" TEXT,
        "work_date" DATE NOT NULL,
        "start_at" TIMESTAMPTZ,
        "end_at" TIMESTAMPTZ,
        "hours" DOUBLE PRECISION NOT NULL,
        "is_drive" BOOLEAN NOT NULL,
        "on_the_clock" BOOLEAN NOT NULL,
        "entry_type" TEXT NOT NULL,
        "source_modified_at" TIMESTAMPTZ NOT NULL,
        PRIMARY KEY ("company_id", "entry_id")
    """,
    "workers": """
        "company_id" TEXT NOT NULL,
        "worker_id" TEXT NOT NULL,
        "first_name" TEXT,
        "last_name" TEXT,
        "active" BOOLEAN NOT NULL,
        "hourly_wage" NUMERIC(10,4),
        "pay_interval" TEXT,
        "hire_date" DATE,
        "term_date" DATE,
        "source_modified_at" TIMESTAMPTZ NOT NULL,
        PRIMARY KEY ("company_id", "worker_id")
    """,
    "jobs": """
        "company_id" TEXT NOT NULL,
        "job_id" TEXT NOT NULL,
        "parent_job_id" TEXT,
        "level" TEXT NOT NULL,
        "name" TEXT NOT NULL,
        "short_code" TEXT,
        "budget_hours" DOUBLE PRECISION,
        "status" TEXT NOT NULL,
        "recurring" BOOLEAN NOT NULL,
        "is_drive" BOOLEAN NOT NULL,
        "budget_type" TEXT,
        "budget_amount" NUMERIC(14,2),
        "contract_price" NUMERIC(14,2),
        "labor_budget_percent" DOUBLE PRECISION,
        "rate" NUMERIC(14,4),
        "quantity" DOUBLE PRECISION,
        "service_type" TEXT,
        "property_id" TEXT,
        "active" BOOLEAN NOT NULL,
        "source_modified_at" TIMESTAMPTZ NOT NULL,
        PRIMARY KEY ("company_id", "job_id")
    """,
    "propay_opportunities": """
        "company_id" TEXT NOT NULL,
        "propay_id" TEXT NOT NULL,
        "job_id" TEXT NOT NULL,
        "milestone_id" TEXT,
        "name" TEXT NOT NULL,
        "budget_type" TEXT NOT NULL,
        "budget_hours" DOUBLE PRECISION,
        "budget_amount" NUMERIC(14,2),
        "actual_hours" DOUBLE PRECISION NOT NULL,
        "labor_cost" NUMERIC(14,2) NOT NULL,
        "blended_wage" NUMERIC(10,4),
        "saved_hours" DOUBLE PRECISION,
        "saved_amount" NUMERIC(14,2) NOT NULL,
        "overage_hours" DOUBLE PRECISION,
        "overage_amount" NUMERIC(14,2) NOT NULL,
        "efficiency" DOUBLE PRECISION,
        "pool_before_penalty" NUMERIC(14,2) NOT NULL,
        "penalty_amount" NUMERIC(14,2) NOT NULL,
        "bonus_pool" NUMERIC(14,2) NOT NULL,
        "crew_bucket" NUMERIC(14,2) NOT NULL,
        "crew_lead_bucket" NUMERIC(14,2) NOT NULL,
        "manager_bucket" NUMERIC(14,2) NOT NULL,
        "other_bucket" NUMERIC(14,2) NOT NULL,
        "company_bucket" NUMERIC(14,2) NOT NULL,
        "unclaimed_amount" NUMERIC(14,2) NOT NULL,
        "paid_to_workers" NUMERIC(14,2) NOT NULL,
        "kept_by_company" NUMERIC(14,2) NOT NULL,
        "overtime_adjustment" NUMERIC(14,2) NOT NULL,
        "disqualified" BOOLEAN NOT NULL,
        "disqualification_reason" TEXT,
        "status" TEXT NOT NULL,
        "worker_count" BIGINT NOT NULL,
        "first_work_date" DATE,
        "last_work_date" DATE,
        "exclusion_reason" TEXT,
        PRIMARY KEY ("company_id", "propay_id")
    """,
    "propay_worker_bonuses": """
        "company_id" TEXT NOT NULL,
        "propay_id" TEXT NOT NULL,
        "worker_id" TEXT NOT NULL,
        "role" TEXT NOT NULL,
        "bucket" TEXT NOT NULL,
        "hours" DOUBLE PRECISION NOT NULL,
        "wage" NUMERIC(10,4) NOT NULL,
        "weight" DOUBLE PRECISION NOT NULL,
        "labor_cost" NUMERIC(14,2) NOT NULL,
        "bonus" NUMERIC(14,2) NOT NULL,
        "overtime_adjustment" NUMERIC(14,2) NOT NULL,
        PRIMARY KEY ("company_id", "propay_id", "worker_id")
    """,
    "propay_overtime_weeks": """
        "company_id" TEXT NOT NULL,
        "worker_id" TEXT NOT NULL,
        "week_start" DATE NOT NULL,
        "hours_worked" DOUBLE PRECISION NOT NULL,
        "overtime_hours" DOUBLE PRECISION NOT NULL,
        "bonus_in_week" NUMERIC(14,2) NOT NULL,
        "overtime_adjustment" NUMERIC(14,2) NOT NULL,
        PRIMARY KEY ("company_id", "worker_id", "week_start")
    """,
    "rejected_rows": """
        "company_id" TEXT NOT NULL,
        "asset" TEXT NOT NULL,
        "partition_key" TEXT NOT NULL,
        "position" BIGINT NOT NULL,
        "record_id" TEXT,
        "reason" TEXT NOT NULL,
        "record" TEXT NOT NULL,
        PRIMARY KEY ("company_id", "asset", "partition_key", "position")
    """,
}


def upgrade(schema: str | None = None) -> None:
    op.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
    for name, clauses in TABLES.items():
        op.execute(f'CREATE TABLE "{schema}"."{name}" ({clauses.strip()})')


def downgrade(schema: str | None = None) -> None:
    for name in reversed(TABLES):
        op.execute(f'DROP TABLE "{schema}"."{name}"')
