"""A table, its rows and catalog lookups shared by the warehouse tests."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pandas as pd

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.declarations import Column, Table

ATTENDANCE = Table(
    name="attendance",
    description="Hours per worker and day; the worker's approved time",
    primary_key=("company_id", "work_date", "worker_id"),
    columns=(
        Column("company_id", "TEXT", nullable=False, description="QuickBooks Time company"),
        Column("work_date", "DATE", nullable=False, description="Day worked, in the company's time zone"),
        Column("worker_id", "BIGINT", nullable=False),
        Column("worker_name", "TEXT", nullable=False, description="Worker's display name"),
        Column("hours", "DOUBLE PRECISION"),
        Column("approved", "BOOLEAN"),
        Column("clock_in", "TIMESTAMPTZ"),
        Column("pay", "NUMERIC(14,2)"),
        Column("rate", "NUMERIC(10,4)"),
    ),
)


JAN_1 = date(2024, 1, 1)
FIRST_WEEK = ("work_date", JAN_1, JAN_1 + timedelta(days=6))
SECOND_WEEK = ("work_date", JAN_1 + timedelta(days=7), JAN_1 + timedelta(days=13))


def week_rows(company: str, date_range: tuple[str, date, date], version: int = 1) -> pd.DataFrame:
    """Two workers on each of the first three days of `date_range`; `version` changes every value."""
    first = date_range[1]
    records = [
        {
            "company_id": company,
            "work_date": first + timedelta(days=day),
            "worker_id": worker,
            "worker_name": f"Worker {worker} v{version}",
            "hours": 7.5 + version,
            "approved": bool(version % 2),
            "clock_in": pd.Timestamp(f"{first + timedelta(days=day)} 07:00", tz="America/Denver"),
            "pay": Decimal("100.25") * version,
            "rate": Decimal("25.1250"),
        }
        for day in range(3)
        for worker in (1, 2)
    ]
    return pd.DataFrame.from_records(records)


def comments(warehouse: Warehouse, table: str) -> tuple[str | None, dict[str, str | None]]:
    """The table comment and the column comments, read from the backend's own catalog."""
    params = [warehouse.schema_name, table]
    if warehouse.backend == "duckdb":
        table_comment = warehouse.query(
            "select comment from duckdb_tables() where schema_name = ? and table_name = ?", params
        )
        column_comments = warehouse.query(
            "select column_name, comment from duckdb_columns() where schema_name = ? and table_name = ?", params
        )
    else:
        table_comment = warehouse.query(
            "select obj_description(c.oid, 'pg_class') as comment from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = ? and c.relname = ?",
            params,
        )
        column_comments = warehouse.query(
            "select a.attname as column_name, col_description(c.oid, a.attnum) as comment "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = ? and c.relname = ? and a.attnum > 0 and not a.attisdropped",
            params,
        )
    by_column = {row.column_name: None if pd.isna(row.comment) else row.comment for row in column_comments.itertuples()}
    return table_comment.comment.iloc[0], by_column


def in_chunks(rows: pd.DataFrame, size: int):
    """`rows` as a generator of chunks of `size` rows, as a paged source produces them."""
    for start in range(0, len(rows), size):
        yield rows.iloc[start : start + size]
