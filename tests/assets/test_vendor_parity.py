"""One company, three vendors: the same generated data served by each emulator, synced through
Dagster, gives the same attendance hours per worker and day and the same ProPay results."""

from __future__ import annotations

from datetime import UTC, date, datetime

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.company import sync_company
from protiv_emulators.demo import DEMO_SETTINGS
from protiv_emulators.generator import generate_company
from tests.assets.vendors import PROVIDERS, host

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
PULL_DATE, TODAY = date(2026, 11, 6), date(2026, 11, 20)


@pytest.fixture(scope="module")
def synced(tmp_path_factory):
    """Every provider's warehouse after an initial sync of the same company."""
    data = generate_company("acme", seed=5, workers=12, days=14, as_of=AS_OF, timezone="America/Chicago")
    results = {}
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    try:
        for provider in PROVIDERS:
            folder = tmp_path_factory.mktemp(provider)
            registry_url = f"sqlite:///{folder / 'registry.sqlite3'}"
            warehouse = Warehouse(url=str(folder / "warehouse.duckdb"))
            harness = host(provider, data)
            try:
                ConnectionRegistry(registry_url).connect(
                    "acme",
                    provider,
                    harness.base_url,
                    harness.credentials,
                    attendance_pull_date=PULL_DATE,
                    settings={**DEMO_SETTINGS, "timezone": data.timezone},
                )
                defs = build_defs(warehouse=warehouse, registry=ConnectionRegistryResource(url=registry_url))
                with dg.DagsterInstance.ephemeral() as instance:
                    sync_company(defs, instance, "acme", PULL_DATE, TODAY)
            finally:
                harness.stop()
            results[provider] = warehouse
    finally:
        monkeypatch.undo()
    return data, results


def hours_by_worker_and_day(warehouse: Warehouse) -> pd.Series:
    """Attendance hours keyed by the worker's name (vendor ids differ) and the local work date."""
    frame = warehouse.query(
        "select w.first_name, w.last_name, a.work_date, sum(a.hours) as hours "
        "from {schema}.attendance a join {schema}.workers w using (company_id, worker_id) "
        "group by w.first_name, w.last_name, a.work_date"
    )
    keyed = frame.set_index(["first_name", "last_name", "work_date"])["hours"].astype(float).round(6)
    return keyed.sort_index()


def test_attendance_hours_per_worker_and_day_equal_the_ground_truth_on_every_vendor(synced):
    data, warehouses = synced
    names = {w.id: (w.first_name, w.last_name) for w in data.workers}
    truth = (
        pd.DataFrame(
            [(*names[s.worker_id], s.local_date, s.duration_seconds / 3600) for s in data.shifts],
            columns=["first_name", "last_name", "work_date", "hours"],
        )
        .groupby(["first_name", "last_name", "work_date"])["hours"]
        .sum()
        .round(6)
        .sort_index()
    )
    for provider, warehouse in warehouses.items():
        loaded = hours_by_worker_and_day(warehouse)
        pd.testing.assert_series_equal(loaded, truth, check_names=False, obj=provider)
        assert warehouse.query("select count(*) as n from {schema}.rejected_rows").iloc[0, 0] == 0, provider


def test_propay_results_agree_wherever_the_vendors_say_the_same(synced):
    """The time on every ProPay is the same everywhere; money differs only where the vendors do.

    QuickBooks Time keeps only today's wage, Aspire and BusyBusy a wage history (rules §9), so a
    ProPay with a worker who got a raise during the window costs less on Aspire than on QuickBooks
    Time, never more. BusyBusy has no recurring projects: each project is one ProPay, so its
    ProPays are compared on the time they count in all."""
    data, warehouses = synced

    def results(warehouse: Warehouse) -> pd.DataFrame:
        frame = warehouse.query(
            "select budget_hours, actual_seconds, worker_count, status, labor_cost, saved_amount, bonus_pool "
            "from {schema}.propay_opportunities where exclusion_reason is null"
        )
        frame = frame.assign(
            budget_hours=frame["budget_hours"].astype(float).round(4),
            actual_seconds=frame["actual_seconds"].astype(int),
            worker_count=frame["worker_count"].astype(int),
            labor_cost=frame["labor_cost"].astype(float),
            saved_amount=frame["saved_amount"].astype(float),
            bonus_pool=frame["bonus_pool"].astype(float),
        )
        return frame.sort_values(["budget_hours", "actual_seconds", "worker_count", "status"], ignore_index=True)

    reference, aspire = results(warehouses["quickbooks_time"]), results(warehouses["aspire"])
    assert len(reference) > 0 and reference["bonus_pool"].sum() > 0
    time = ["budget_hours", "actual_seconds", "worker_count", "status"]
    pd.testing.assert_frame_equal(aspire[time], reference[time], obj="aspire")
    assert (aspire["labor_cost"] <= reference["labor_cost"]).all()
    assert (aspire["saved_amount"] >= reference["saved_amount"]).all()
    assert (aspire["labor_cost"] < reference["labor_cost"]).any() == any(
        len({change.hourly_wage for change in worker.wage_history}) > 1 for worker in data.workers
    )

    def counted_seconds(warehouse: Warehouse) -> int:
        return int(warehouse.query("select sum(actual_seconds) as s from {schema}.propay_opportunities").iloc[0, 0])

    assert counted_seconds(warehouses["busybusy"]) == counted_seconds(warehouses["quickbooks_time"])
