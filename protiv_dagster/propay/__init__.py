"""The ProPay engine: pure functions over DataFrames, no Dagster, HTTP or SQL.

``compute_propays`` is the engine (rules in the docstrings of ``engine``, ``units``, ``wages``,
``distribution`` and ``overtime``; exact arithmetic in ``exact``); ``compute_hours_budget`` keeps
today's hours-only table.
"""

from protiv_dagster.propay.engine import (
    COLUMN_DESCRIPTIONS,
    JOBS_WITHOUT_PROPAY_COLUMNS,
    OPPORTUNITY_OUTPUT_COLUMNS,
    OVERTIME_WEEK_COLUMNS,
    WORKER_BONUS_COLUMNS,
    PropayResult,
    compute_propays,
)
from protiv_dagster.propay.hours_budget import OPPORTUNITY_COLUMNS, compute_hours_budget
from protiv_dagster.propay.money import allocate, allocate_cents_by_group, half_up_cents, to_cents
from protiv_dagster.propay.units import select_opportunities

__all__ = [
    "COLUMN_DESCRIPTIONS",
    "JOBS_WITHOUT_PROPAY_COLUMNS",
    "OPPORTUNITY_COLUMNS",
    "OPPORTUNITY_OUTPUT_COLUMNS",
    "OVERTIME_WEEK_COLUMNS",
    "WORKER_BONUS_COLUMNS",
    "PropayResult",
    "allocate",
    "allocate_cents_by_group",
    "compute_hours_budget",
    "compute_propays",
    "half_up_cents",
    "select_opportunities",
    "to_cents",
]
