"""The ProPay engine: pure functions over DataFrames, no Dagster, HTTP or SQL."""

from protiv_dagster.propay.hours_budget import compute_hours_budget, select_opportunities
from protiv_dagster.propay.money import allocate, to_cents

__all__ = ["allocate", "compute_hours_budget", "select_opportunities", "to_cents"]
