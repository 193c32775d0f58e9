"""What a company's report shows, read from the analysts' views (``protiv_dagster/views.py``) in one
place: the SQL below names the views and their columns, so the report shows the figures an analyst's
SQL shows. Final and provisional money stay in columns of their own, as the views keep them.

On DuckDB the report reads the analysts' read-only copy when it exists (a report never waits for a
sync, and never makes one wait); a PostgreSQL warehouse is read directly.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd

from protiv_dagster.views import COMPANY_PROPAY_SUMMARY, HOURS_GAINED, PROPAY_SAVINGS, WORKER_BONUS_WAGES
from protiv_dagster.warehouse.duckdb import DuckDBSession
from protiv_dagster.warehouse.store import WarehouseStore, analysts_copy

# The summary's figures, from company_propay_summary: money final and provisional apart.
SUMMARY_SQL = f"""
SELECT propays, started_propays, completed_propays, final_propays, provisional_propays,
       final_bonus_pool, final_paid_to_workers, provisional_bonus_pool, provisional_paid_to_workers,
       net_saved_hours, efficiency
FROM {{schema}}.{COMPANY_PROPAY_SUMMARY.name} WHERE company_id = ?
"""
# The completed ProPays the hour figures count (the views' rule: completed, not excluded, time counted).
COMPLETED_SQL = f"""
SELECT propay_id, name, budget_hours, actual_hours, net_saved_hours, efficiency_percent, last_work_date
FROM {{schema}}.{PROPAY_SAVINGS.name}
WHERE company_id = ? AND status = 'completed' AND NOT excluded AND actual_hours > 0 AND budget_hours IS NOT NULL
ORDER BY budget_hours DESC, name, propay_id
"""
WORKERS_SQL = f"""
SELECT worker_id, first_name, last_name, final_bonus, provisional_bonus
FROM {{schema}}.{WORKER_BONUS_WAGES.name}
WHERE company_id = ? AND (final_bonus <> 0 OR provisional_bonus <> 0)
ORDER BY final_bonus DESC, provisional_bonus DESC, worker_id
"""
# Weeks for hours gained; weeks and months for efficiency over time (the chart picks one).
PERIODS_SQL = f"""
SELECT period, period_start, completed_propays, budget_hours, actual_hours, hours_gained
FROM {{schema}}.{HOURS_GAINED.name}
WHERE company_id = ?
ORDER BY period, period_start
"""
SUMMARY_FIGURES = (
    "propays",
    "started_propays",
    "completed_propays",
    "final_propays",
    "provisional_propays",
    "final_bonus_pool",
    "final_paid_to_workers",
    "provisional_bonus_pool",
    "provisional_paid_to_workers",
    "net_saved_hours",
    "efficiency",
)


@dataclass(frozen=True)
class CompanyReportData:
    """One company's figures for its report. ``summary`` is None when the warehouse has no ProPay of
    the company (an unknown company, or one not computed yet)."""

    company_id: str
    summary: dict[str, float] | None
    completed: pd.DataFrame  # one row per completed ProPay: name, budget_hours, actual_hours, ...
    workers: pd.DataFrame  # one row per worker with a bonus: name, final_bonus, provisional_bonus
    weeks: pd.DataFrame  # hours gained per ISO week: period_start, budget_hours, actual_hours, hours_gained
    months: pd.DataFrame  # the same per calendar month
    source: str  # where the figures were read, for the report's footer

    @property
    def has_data(self) -> bool:
        return self.summary is not None


Query = Callable[[str, Sequence[object]], pd.DataFrame]


def read_company(store: WarehouseStore, company_id: str, *, analysts_copy_first: bool = True) -> CompanyReportData:
    """The company's report figures from ``store``: on DuckDB from its analysts' copy when it exists
    and ``analysts_copy_first``, else from the warehouse itself (one short read transaction)."""
    if store.backend == "duckdb" and analysts_copy_first:
        copy = analysts_copy(store.duckdb_file())
        if copy.exists():
            try:
                connection = duckdb.connect(str(copy), read_only=True)
            except duckdb.Error:
                connection = None  # replaced while opening: the warehouse answers
            if connection is not None:
                try:
                    session = DuckDBSession(connection)
                    return _read(
                        lambda sql, params: session.fetch(store.with_schema(sql), params),
                        lambda: _has_views_duckdb(connection, store.schema_name),
                        company_id,
                        f"the analysts' copy {copy}",
                    )
                finally:
                    connection.close()
    has_views = store.query(
        "SELECT count(*) AS n FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [store.schema_name, COMPANY_PROPAY_SUMMARY.name],
    )
    if not int(has_views["n"].iloc[0]):
        return _no_data(company_id, store.describe())
    with store.reading() as read:  # one consistent view of the figures
        return _read(read.query, lambda: True, company_id, store.describe())


def _no_data(company_id: str, source: str) -> CompanyReportData:
    empty = pd.DataFrame()
    return CompanyReportData(company_id, None, empty, empty, empty, empty, source)


def _has_views_duckdb(connection: duckdb.DuckDBPyConnection, schema_name: str) -> bool:
    found = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema_name, COMPANY_PROPAY_SUMMARY.name],
    ).fetchone()
    return bool(found and found[0])


def _numbers(frame: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """Money (DECIMAL) and hours as floats, for drawing; missing values stay NaN."""
    frame = frame.copy()
    for column in columns:
        frame[column] = pd.to_numeric(frame[column].astype(object), errors="coerce").astype(float)
    return frame


def _read(query: Query, has_views: Callable[[], bool], company_id: str, source: str) -> CompanyReportData:
    if not has_views():
        return _no_data(company_id, source)
    summary_rows = query(SUMMARY_SQL, [company_id])
    summary: dict[str, float] | None = None
    if len(summary_rows):
        row = summary_rows.iloc[0]
        summary = {name: _float(row[name]) for name in SUMMARY_FIGURES}
    completed = _numbers(
        query(COMPLETED_SQL, [company_id]), ["budget_hours", "actual_hours", "net_saved_hours", "efficiency_percent"]
    )
    workers = _numbers(query(WORKERS_SQL, [company_id]), ["final_bonus", "provisional_bonus"])
    periods = _numbers(query(PERIODS_SQL, [company_id]), ["budget_hours", "actual_hours", "hours_gained"])
    if len(periods):
        periods["period_start"] = pd.to_datetime(periods["period_start"])
    by_period = {
        period: periods[periods["period"] == period].reset_index(drop=True) if len(periods) else periods
        for period in ("week", "month")
    }
    return CompanyReportData(company_id, summary, completed, workers, by_period["week"], by_period["month"], source)


def _float(value: Any) -> float:
    """A figure of the summary as a float; NaN when the view has none (efficiency without completed ProPays)."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return float("nan")
    return float(value)
