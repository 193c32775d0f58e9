"""Adding a vendor is one folder and one registry line: Tiny Clock (tests/vendors/tiny/), registered
here with ``monkeypatch``, is connected, checked and synced through Dagster to the ProPay tables
like the three real vendors, without a change anywhere else."""

from __future__ import annotations

import dagster as dg
import pytest

from protiv_dagster.connections.registry import (
    ConnectionRegistry,
    ConnectionRegistryResource,
    RegistryError,
    generate_secret_key,
)
from protiv_dagster.definitions import build_defs
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.company import force_sync
from protiv_dagster.vendors.registry import VENDORS
from protiv_emulators.generator import generate_company
from tests.assets.conftest import AS_OF, PULL_DATE, SETTINGS
from tests.vendors import tiny
from tests.vendors.tiny.server import TinyClockServer

COMPANY = "tiny-crew"


@pytest.fixture
def tiny_clock(monkeypatch):
    monkeypatch.setitem(VENDORS, tiny.VENDOR.provider, tiny.VENDOR)  # the one registry line
    data = generate_company(COMPANY, seed=5, workers=8, days=14, as_of=AS_OF, timezone="America/Denver")
    server = TinyClockServer(data)
    yield server, data
    server.stop()


def test_a_fourth_vendor_syncs_end_to_end_through_dagster(tiny_clock, tmp_path, monkeypatch):
    server, data = tiny_clock
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    registry_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    registry = ConnectionRegistry(registry_url)

    # The registry knows its credentials: a missing key is refused by name, before anything is stored.
    with pytest.raises(RegistryError, match="Tiny Clock credentials for company 'tiny-crew': missing api_key"):
        registry.connect(COMPANY, "tiny_clock", server.base_url, {})
    connection = registry.connect(
        COMPANY,
        "tiny_clock",
        server.base_url,
        {"api_key": server.api_key},
        attendance_pull_date=PULL_DATE,
        settings={**SETTINGS, "timezone": data.timezone},
    )
    assert connection.provider_label == "Tiny Clock"

    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    defs = build_defs(warehouse=warehouse, registry=ConnectionRegistryResource(url=registry_url), vendors=VendorApis())
    with dg.DagsterInstance.ephemeral() as instance:
        run_ids = force_sync(defs, instance, connection, AS_OF)
        assert len(run_ids) == 3
        runs = [instance.get_run_by_id(run_id) for run_id in run_ids]
        assert {run.tags["protiv/provider"] for run in runs} == {"tiny_clock"}

    # Every entry the vendor lists in the window is in attendance, with its hours.
    listed = {str(r["id"]): r for r in server.listings["entries"] if PULL_DATE.isoformat() <= r["date"]}
    attendance = warehouse.read_table("attendance", where={"company_id": COMPANY})
    assert len(listed) > 20
    assert set(attendance["entry_id"]) == set(listed)
    workers = warehouse.read_table("workers", where={"company_id": COMPANY})
    assert len(workers) == len(server.listings["people"])
    # The ProPay engine ran on the new vendor's data like on any other.
    propays = warehouse.read_table("propay_opportunities", where={"company_id": COMPANY})
    assert len(propays) > 0
    assert propays["actual_seconds"].astype("int64").sum() > 0
    # Its connection check and mapping went to its own server, over HTTP, with its own key.
    assert {"people", "jobs", "fields", "entries"} <= set(server.requests)
