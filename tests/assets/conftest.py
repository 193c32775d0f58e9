"""A connected company served by one vendor's emulator, and a runner for its sync through Dagster.

The ``pipeline`` fixture runs on QuickBooks Time unless a test parametrizes ``provider`` (every
test in test_pipeline.py runs on all three vendors) or ``warehouse_backend``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.company import sync_company
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.generator import generate_company
from tests.assets.vendors import VendorHarness, host

ROOT = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
PULL_DATE = date(2026, 11, 6)
TODAY = date(2026, 11, 20)
COMPANY = "acme"
# Budgets padded by half: the generated crews run close to their budgets, and the tests need
# ProPays that save on every vendor (BusyBusy's projects are never recurring, so they are larger).
SETTINGS = {"role_buckets": {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1}, "budget_modification_percent": 150}
# Four attempts with waits capped at 0.2 s: faults recover quickly and outages end quickly.
FAST_RETRIES = {"max_attempts": 4, "max_wait_seconds": 0.2}


@dataclass
class Pipeline:
    harness: VendorHarness
    warehouse: Warehouse
    defs: dg.Definitions
    instance: dg.DagsterInstance
    registry: ConnectionRegistry

    def sync(self, company_id: str = COMPANY) -> list[str]:
        return sync_company(self.defs, self.instance, company_id, PULL_DATE, TODAY)

    @property
    def emulator(self):
        return self.harness.emulator

    def tables(self) -> dict[str, pd.DataFrame]:
        return {table.name: self.warehouse.read_table(table) for table in ALL_TABLES}

    def attendance(self) -> pd.DataFrame:
        return self.warehouse.read_table("attendance", where={"company_id": COMPANY}, order_by=["entry_id"])


@pytest.fixture
def warehouse_backend() -> str:
    return "duckdb"


@pytest.fixture
def provider() -> str:
    return "quickbooks_time"


@pytest.fixture
def instance_kind() -> str:
    return "ephemeral"


@contextmanager
def dagster_instance(request, kind: str, tmp_path: Path, monkeypatch) -> Iterator[dg.DagsterInstance]:
    """An in-memory instance, the laptop's on SQLite files (as ``protiv`` writes its dagster.yaml:
    every run's events in one file), or one on PostgreSQL configured by deploy/dagster.yaml."""
    if kind == "ephemeral":
        with dg.DagsterInstance.ephemeral() as instance:
            yield instance
        return
    if kind == "sqlite":
        home = tmp_path / "dagster_home"
        home.mkdir()
        (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)
        monkeypatch.setenv("DAGSTER_HOME", str(home))  # where the laptop's instance keeps its event log
        with dg.DagsterInstance.get() as instance:
            yield instance
        return
    database = request.getfixturevalue("dagster_database")
    home = tmp_path / "dagster_home_pg"
    home.mkdir()
    shutil.copy(ROOT / "deploy" / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", database.replace("postgresql://", "postgresql+psycopg2://", 1))
    with dg.DagsterInstance.get() as instance:
        yield instance


@pytest.fixture
def pipeline(request, tmp_path, monkeypatch, warehouse_backend, provider, instance_kind):
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    if warehouse_backend == "postgres":
        warehouse = Warehouse(
            url=request.getfixturevalue("postgres_url"), schema_name=request.getfixturevalue("postgres_schema")
        )
    else:
        warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    registry_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    data = generate_company(COMPANY, seed=11, workers=15, days=14, as_of=AS_OF, timezone="America/Denver")
    harness = host(provider, data)
    # In memory unless a test asks for PostgreSQL: most tests here are about the data.
    try:
        with dagster_instance(request, instance_kind, tmp_path, monkeypatch) as instance:
            registry = ConnectionRegistry(registry_url)
            registry.connect(
                COMPANY,
                provider,
                harness.base_url,
                harness.credentials,
                attendance_pull_date=PULL_DATE,
                settings={**SETTINGS, "timezone": data.timezone},
            )
            defs = build_defs(
                warehouse=warehouse,
                registry=ConnectionRegistryResource(url=registry_url),
                vendors=VendorApis(
                    quickbooks_time=QuickBooksTimeTuning(**FAST_RETRIES),
                    aspire=AspireTuning(**FAST_RETRIES),
                    busybusy=BusyBusyTuning(**FAST_RETRIES),
                    step_retries=1,
                    step_retry_seconds=0.05,
                ),
            )
            yield Pipeline(harness, warehouse, defs, instance, registry)
    finally:
        harness.stop()
