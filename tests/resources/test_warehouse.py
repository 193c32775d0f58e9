"""The Warehouse resource in Dagster: its config checked without echoing a password, and its URL
from an environment variable."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import WAREHOUSE_URL_VARIABLE
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, week_rows


def test_bad_urls_and_schema_names_are_refused_without_echoing_the_password() -> None:
    with pytest.raises(ValueError) as raised:
        Warehouse(url="mysql://admin:hunter2@db.example.com/protiv")
    assert "hunter2" not in str(raised.value)
    assert "mysql://admin:***@db.example.com/protiv" in str(raised.value)
    assert "postgresql://" in str(raised.value)

    with pytest.raises(ValueError, match="schema_name"):
        Warehouse(schema_name='protiv"; drop schema protiv; --')

    warehouse = Warehouse(url="postgresql+psycopg://admin:hunter2@db.example.com:5432/protiv")
    assert warehouse.backend == "postgres"
    for shown in (repr(warehouse), str(warehouse), warehouse.describe()):
        assert "hunter2" not in shown
        assert "admin:***@db.example.com:5432/protiv" in shown


def test_the_url_can_come_from_an_env_var_in_dagster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, f"duckdb:///{path}")
    warehouse = Warehouse(url=dg.EnvVar(WAREHOUSE_URL_VARIABLE))

    @dg.asset
    def attendance(warehouse: Warehouse) -> int:
        warehouse.ensure_tables([ATTENDANCE])
        rows = week_rows("c1", FIRST_WEEK)
        return warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"}, FIRST_WEEK)

    result = dg.materialize([attendance], resources={"warehouse": warehouse})

    assert WAREHOUSE_URL_VARIABLE in repr(warehouse)
    assert result.output_for_node("attendance") == 6
    assert len(Warehouse(url=str(path)).read_table(ATTENDANCE)) == 6
