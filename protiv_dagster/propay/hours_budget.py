"""Compatibility: today's hours-only ProPay table, now computed by the full engine.

``compute_hours_budget`` returns exactly the columns the ``propay_opportunities`` table had first
(``OPPORTUNITY_COLUMNS``), for ProPays with an hours budget that no rule excludes (those columns
have no exclusion reason). The rules themselves are documented in ``engine``, ``units``, ``wages``,
``distribution`` and ``overtime``.
"""

from __future__ import annotations

import pandas as pd

from protiv_dagster.company_settings import ROLE_BUCKETS, CompanySettings
from protiv_dagster.propay.engine import compute_propays
from protiv_dagster.propay.units import assign_attendance, select_opportunities

__all__ = ["OPPORTUNITY_COLUMNS", "assign_attendance", "compute_hours_budget", "select_opportunities"]

OPPORTUNITY_COLUMNS = [
    "company_id",
    "propay_id",
    "job_id",
    "milestone_id",
    "name",
    "budget_type",
    "budget_hours",
    "actual_hours",
    "labor_cost",
    "blended_wage",
    "saved_hours",
    "saved_amount",
    "overage_amount",
    "bonus_pool",
    *(f"{role}_bucket" for role in ROLE_BUCKETS),
    "status",
    "worker_count",
    "first_work_date",
    "last_work_date",
]


def compute_hours_budget(
    jobs: pd.DataFrame,
    attendance: pd.DataFrame,
    workers: pd.DataFrame,
    settings: CompanySettings,
    company_id: str,
) -> pd.DataFrame:
    """One row per eligible hours-budget ProPay with actuals, savings, pool and buckets (``OPPORTUNITY_COLUMNS``)."""
    opportunities = compute_propays(jobs, attendance, workers, settings, company_id).opportunities
    kept = opportunities[opportunities["exclusion_reason"].isna() & (opportunities["budget_type"] == "hours")]
    return kept[OPPORTUNITY_COLUMNS].reset_index(drop=True)
