"""Creating tables and views: idempotent, with comments, and a table that drifted reported, not migrated."""

from __future__ import annotations

import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.declarations import Column, View
from protiv_dagster.warehouse.session import WarehouseError
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, comments, week_rows


def test_ensure_tables_is_idempotent_and_sets_comments(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    warehouse.ensure_tables([ATTENDANCE])

    assert len(warehouse.read_table(ATTENDANCE)) == 6
    table_comment, column_comments = comments(warehouse, "attendance")
    assert table_comment == "Hours per worker and day; the worker's approved time"
    assert column_comments == {column.name: column.description or None for column in ATTENDANCE.columns}


def test_an_existing_table_with_other_columns_is_reported_not_migrated(warehouse: Warehouse) -> None:
    warehouse.execute("create schema {schema}")
    warehouse.execute(
        "create table {schema}.attendance (company_id TEXT, work_date DATE, worker_id TEXT, legacy_flag BOOLEAN)"
    )

    with pytest.raises(WarehouseError) as raised:
        warehouse.ensure_tables([ATTENDANCE])

    message = str(raised.value)
    assert f"{warehouse.schema_name}.attendance" in message
    assert "missing columns ['worker_name', 'hours', 'approved', 'clock_in', 'pay', 'rate']" in message
    assert "extra columns ['legacy_flag']" in message
    assert "worker_id is TEXT, declared BIGINT" in message
    unchanged = warehouse.read_table("attendance").columns.tolist()
    assert unchanged == ["company_id", "work_date", "worker_id", "legacy_flag"]


HOURS_PER_COMPANY = View(
    name="hours_per_company",
    description="Hours per company.",
    select="SELECT company_id, CAST(SUM(hours) AS DOUBLE PRECISION) AS hours FROM {schema}.attendance GROUP BY company_id",
    columns=(
        Column("company_id", "TEXT", True, "Company."),
        Column("hours", "DOUBLE PRECISION", True, "Hours worked."),
    ),
)


def test_ensure_views_recreates_views_with_comments_and_checks_their_columns(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    warehouse.ensure_views([HOURS_PER_COMPANY])
    warehouse.ensure_views([HOURS_PER_COMPANY])  # idempotent: dropped and created again
    frame = warehouse.query("select * from {schema}.hours_per_company")
    assert list(frame.columns) == ["company_id", "hours"] and len(frame) == 1
    if warehouse.backend == "postgres":  # DuckDB keeps view comments in duckdb_views(), checked by hand
        _, column_comments = comments(warehouse, "hours_per_company")
        assert column_comments == {"company_id": "Company.", "hours": "Hours worked."}

    # A view whose SQL yields other columns than declared is refused and nothing changes.
    wrong = View(
        name="hours_per_company",
        description="",
        select=HOURS_PER_COMPANY.select.replace("AS DOUBLE PRECISION", "AS BIGINT"),
        columns=HOURS_PER_COMPANY.columns,
    )
    with pytest.raises(WarehouseError, match="view hours_per_company yields .*BIGINT.*declared"):
        warehouse.ensure_views([wrong])
    assert warehouse.query("select hours from {schema}.hours_per_company")["hours"].dtype == "float64"
