"""The `warehouse` fixture: an empty warehouse on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from protiv_dagster.resources.warehouse import Warehouse


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """An empty warehouse on each backend: a fresh DuckDB file, or a fresh PostgreSQL schema."""
    if request.param == "duckdb":
        return Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return Warehouse(
        url=request.getfixturevalue("postgres_url"), schema_name=request.getfixturevalue("postgres_schema")
    )
