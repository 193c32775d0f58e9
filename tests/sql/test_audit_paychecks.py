"""The audit query of docs/data-dictionary.md, run on the demo companies of every vendor: from the
warehouse's tables alone it gets every ProPay's time, labor cost, pool and buckets, and every
worker's crew share, role-bucket share and bonus, equal to what the engine stored."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.cli.demo import DEMO_SEED, DEMO_WORKERS
from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.data_dictionary import AUDIT_SQL, dictionary_page
from protiv_dagster.definitions import build_defs
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.company import sync_company
from protiv_emulators.demo import start_demo_vendor
from tests.assets.vendors import PROVIDERS

PAIRS = [
    ("actual_seconds", "ProPay seconds from attendance"),
    ("labor_cost", "ProPay labor cost from attendance x wages"),
    ("pool_before_penalty", "pool from the exact saving and the worker share"),
    ("bonus_pool", "pool after the penalty"),
    ("crew_bucket", "crew bucket"),
    ("crew_lead_bucket", "crew-lead bucket"),
    ("manager_bucket", "manager bucket"),
    ("seconds", "worker seconds"),
    ("worker_labor_cost", "worker labor cost"),
    ("crew_share", "worker crew share"),
    ("role_bucket_share", "worker role-bucket share"),
    ("bonus", "worker bonus"),
]


@pytest.fixture(scope="module")
def demo_warehouses(tmp_path_factory):
    """Each vendor's demo company (the demo's seed, crew size and settings) synced into DuckDB."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    today = date.today()
    warehouses = {}
    try:
        for provider in PROVIDERS:
            folder = tmp_path_factory.mktemp(provider)
            registry_url = f"sqlite:///{folder / 'registry.sqlite3'}"
            warehouse = Warehouse(url=str(folder / "warehouse.duckdb"))
            vendor = start_demo_vendor(provider, port=0, seed=DEMO_SEED, workers=DEMO_WORKERS)
            try:
                connection = ConnectionRegistry(registry_url).connect(
                    vendor.company_id,
                    provider,
                    vendor.base_url,
                    vendor.credentials,
                    settings=vendor.settings,
                    today=today,
                )
                defs = build_defs(warehouse=warehouse, registry=ConnectionRegistryResource(url=registry_url))
                with dg.DagsterInstance.ephemeral() as instance:
                    sync_company(defs, instance, vendor.company_id, connection.attendance_pull_date, today)
            finally:
                vendor.stop()
            warehouses[provider] = warehouse
    finally:
        monkeypatch.undo()
    return warehouses


WORKER_PAIRS = {"seconds", "worker_labor_cost", "crew_share", "role_bucket_share", "bonus"}


def audit(warehouse: Warehouse) -> pd.DataFrame:
    return warehouse.query(AUDIT_SQL.replace("protiv.", "{schema}."))


def differences(rows: pd.DataFrame) -> dict[str, list[dict]]:
    """Per amount that differs, the first ProPays and workers where it does (worker amounts only
    on rows with a worker)."""
    found = {}
    for column, what in PAIRS:
        stored, recomputed = rows[f"stored_{column}"], rows[f"audit_{column}"]
        differ = ~((stored == recomputed) | (stored.isna() & recomputed.isna()))
        if column in WORKER_PAIRS:
            differ &= rows["worker_id"].notna()
        if differ.any():
            found[what] = rows.loc[differ, ["propay_id", "worker_id"]].head().to_dict("records")
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_audit_query_recomputes_every_paycheck_to_the_cent(demo_warehouses, provider):
    warehouse = demo_warehouses[provider]
    rows = audit(warehouse)
    propays = warehouse.query("select propay_id, bonus_pool, pay_state from {schema}.propay_opportunities")
    bonuses = warehouse.query("select propay_id, worker_id from {schema}.propay_worker_bonuses")
    # Every ProPay and every stored bonus row is audited, and some of them pay.
    assert set(rows["propay_id"]) == set(propays["propay_id"])
    assert len(rows.dropna(subset=["worker_id"])) == len(bonuses)
    assert (propays["bonus_pool"] > 0).sum() >= 3 and (propays["pay_state"] == "final").any()
    assert rows["labor_cost_matches"].all(), rows.loc[~rows["labor_cost_matches"].astype(bool), "propay_id"].tolist()
    assert differences(rows) == {}, provider
    assert rows["audit_bonus"].sum() == rows["stored_bonus"].sum() > Decimal(0)


def test_the_data_dictionary_shows_the_audit_query_it_tests():
    assert AUDIT_SQL.strip() in dictionary_page()


VARIANTS = [
    {"distribution_method": "wage", "budgets_include_burden": True, "burden_percent": 12.5},
    {"distribution_method": "crew_lead_weighted", "lead_multiplier": 1.5, "worker_share": 0.33335},
    {"distribution_method": "equal", "include_drive_time": True, "budget_modification_percent": 115},
    {"distribution_method": "manual", "role_buckets": {"crew": 0.6, "crew_lead": 0.25, "other": 0.05, "company": 0.1}},
]


def test_the_audit_query_follows_every_distribution_method_burden_share_and_bucket_setting(tmp_path, monkeypatch):
    """The QuickBooks Time demo company re-priced under other settings, each recorded as a version
    from the pull date on: the audit still recomputes every paycheck."""
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    registry_url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    vendor = start_demo_vendor("quickbooks_time", port=0, seed=DEMO_SEED, workers=20)
    registry = ConnectionRegistry(registry_url)
    try:
        connection = registry.connect(
            vendor.company_id,
            "quickbooks_time",
            vendor.base_url,
            vendor.credentials,
            settings=vendor.settings,
            today=date.today(),
        )
        pull = connection.attendance_pull_date
        defs = build_defs(warehouse=warehouse, registry=ConnectionRegistryResource(url=registry_url))
        workers = None
        with dg.DagsterInstance.ephemeral() as instance:
            sync_company(defs, instance, vendor.company_id, pull, date.today())
            workers = warehouse.read_table("workers")["worker_id"].tolist()
            for variant in VARIANTS:
                settings = {
                    **vendor.settings,
                    **variant,
                    "worker_roles": {workers[0]: "crew_lead", workers[1]: "other"},
                }
                if variant["distribution_method"] == "manual":
                    settings["manual_distribution"] = {w: 10 + i for i, w in enumerate(workers[:6])}
                propays = warehouse.read_table("propay_opportunities")
                some = propays.loc[propays["actual_seconds"] > 0, "propay_id"].tolist()
                settings["penalties"] = {some[0]: 7.5}
                registry.update_settings(vendor.company_id, settings, effective_from=pull, today=pull)
                result = defs.resolve_job_def("compute_propay").execute_in_process(
                    instance=instance, partition_key=vendor.company_id
                )
                assert result.success
                rows = audit(warehouse)
                assert rows["labor_cost_matches"].all()
                assert differences(rows) == {}, variant
                assert rows["stored_bonus"].sum() > 0, variant
    finally:
        vendor.stop()
