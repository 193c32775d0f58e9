"""Warehouse URLs: passwords masked, and the URL read from the environment when left empty."""

from __future__ import annotations

from pathlib import Path

import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import WAREHOUSE_URL_VARIABLE
from protiv_dagster.warehouse.urls import redact_url
from tests.warehouse.helpers import ATTENDANCE


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://alice:s3cret@db:5432/protiv", "postgresql://alice:***@db:5432/protiv"),
        ("postgresql://alice:p@ss/w:rd@db/protiv", "postgresql://alice:***@db/protiv"),
        ("postgresql://:s3cret@db/protiv", "postgresql://:***@db/protiv"),
        ("postgresql://alice@db/protiv?sslmode=require", "postgresql://alice@db/protiv?sslmode=require"),
        (
            "postgresql://db/protiv?user=alice&password=s3cret&sslmode=require",
            "postgresql://db/protiv?user=alice&password=***&sslmode=require",
        ),
        ("host=db user=alice password='s3 cret' dbname=protiv", "host=db user=alice password=*** dbname=protiv"),
        ("duckdb:///data/warehouse.duckdb", "duckdb:///data/warehouse.duckdb"),
        ("", ""),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_an_empty_url_means_the_environment_variable_else_the_data_folder_file(
    data_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WAREHOUSE_URL_VARIABLE, raising=False)
    warehouse = Warehouse()

    warehouse.ensure_tables([ATTENDANCE])

    assert warehouse.backend == "duckdb"
    assert str(Path(data_dir) / "warehouse.duckdb") in warehouse.describe()
    assert (Path(data_dir) / "warehouse.duckdb").is_file()

    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, "postgresql://admin:hunter2@db.example.com/protiv")
    assert warehouse.backend == "postgres"
    assert warehouse.describe() == "PostgreSQL postgresql://admin:***@db.example.com/protiv, schema protiv"
    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, "mysql://admin:hunter2@db.example.com/protiv")
    with pytest.raises(ValueError, match="unrecognised warehouse URL") as raised:
        warehouse.read_table(ATTENDANCE)
    assert "hunter2" not in str(raised.value)
