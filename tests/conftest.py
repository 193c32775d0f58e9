"""Fixtures shared by the whole suite: real PostgreSQL, real DuckDB, isolated data folders."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from protiv_dagster.analytics import analytics_schema
from tests.postgres import POSTGRES_URL_VARIABLE, new_database, postgres_test_url


def _postgres_unreachable_reason(url: str) -> str | None:
    try:
        with psycopg.connect(url, connect_timeout=3) as conn:
            conn.execute("select 1")
    except psycopg.Error as exc:
        return f"PostgreSQL at {POSTGRES_URL_VARIABLE} is unreachable ({type(exc).__name__}: {exc})"
    return None


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """URL of a reachable PostgreSQL; skips when there is none, except in CI where that fails."""
    url = postgres_test_url()
    reason = _postgres_unreachable_reason(url)
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must have PostgreSQL", pytrace=False)
        pytest.skip(reason)
    return url


@pytest.fixture
def postgres_schema(postgres_url: str) -> Iterator[str]:
    """A fresh schema name for one test, dropped afterwards so tests never see each other's rows
    (with the analysts' marts of a warehouse in that schema, protiv_dagster.analytics.analytics_schema)."""
    schema = f"test_{uuid.uuid4().hex[:12]}"
    yield schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'drop schema if exists "{schema}" cascade')
        conn.execute(f'drop schema if exists "{analytics_schema(schema)}" cascade')


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> str:
    """An empty project data folder (warehouse file, registry) for one test."""
    path = tmp_path / "data"
    path.mkdir()
    monkeypatch.setenv("PROTIV_DATA_DIR", str(path))
    return str(path)


@pytest.fixture
def dagster_database(postgres_url):
    """A fresh database for the instance's tables, dropped afterwards."""
    with new_database(postgres_url, "protiv_dagster") as url:
        yield url
