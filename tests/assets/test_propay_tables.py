"""From a vendor's emulator to the analysts' views, on DuckDB and on PostgreSQL.

Each vendor's company is synced through Dagster into a DuckDB warehouse and, with a second registry
and instance, into a PostgreSQL one. The ProPay tables and every view must hold the same results on
both, and the views must add up to the tables they summarise.
"""

from __future__ import annotations

from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource
from protiv_dagster.definitions import build_defs
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sync.company import sync_company
from protiv_dagster.tables import (
    JOBS_WITHOUT_PROPAY,
    PROPAY_OPPORTUNITIES,
    PROPAY_OVERTIME_WEEKS,
    PROPAY_SETTINGS_VERSIONS,
    PROPAY_WORKER_BONUSES,
)
from protiv_dagster.views import ALL_VIEWS
from tests.assets.conftest import COMPANY, PULL_DATE, SETTINGS, TODAY
from tests.assets.vendors import PROVIDERS

PROPAY_TABLES = (
    PROPAY_OPPORTUNITIES,
    PROPAY_WORKER_BONUSES,
    PROPAY_OVERTIME_WEEKS,
    JOBS_WITHOUT_PROPAY,
    PROPAY_SETTINGS_VERSIONS,
)


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Floats rounded (sums of doubles may differ in the last bits between engines), rows in one order."""
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == "float64":
            frame[name] = frame[name].round(6)
    return frame.sort_values(list(frame.columns), ignore_index=True, key=lambda s: s.astype(str))


def snapshot(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    # When a version was recorded differs between the two registries; what it holds must not.
    frames = {
        table.name: warehouse.read_table(table).drop(columns=["recorded_at"], errors="ignore")
        for table in PROPAY_TABLES
    }
    for view in ALL_VIEWS:
        frames[view.name] = warehouse.query(f"select * from {{schema}}.{view.name}")
    return {name: comparable(frame) for name, frame in frames.items()}


def settings_for(warehouse: Warehouse, timezone: str) -> dict:
    """The test company's settings plus a crew lead, a manager, an excluded job, a disqualified and a
    penalised ProPay, chosen from what the first sync loaded (vendor ids differ per vendor)."""
    workers = warehouse.read_table("workers", where={"company_id": COMPANY}, order_by=["worker_id"])
    propays = warehouse.query(
        "select propay_id, saved_amount from {schema}.propay_opportunities "
        "where company_id = ? and exclusion_reason is null order by propay_id",
        [COMPANY],
    )
    saving = propays[propays["saved_amount"].fillna(0) > 0]["propay_id"].tolist()
    others = [p for p in propays["propay_id"] if p not in saving[:2]]
    assert len(saving) >= 2 and others and len(workers) >= 2
    return {
        **SETTINGS,
        "timezone": timezone,
        "worker_roles": {workers["worker_id"].iloc[0]: "crew_lead", workers["worker_id"].iloc[1]: "manager"},
        "exclusions": {"manual": {others[0]: "warranty work"}},
        "disqualifications": {saving[0]: "safety incident"},
        "penalties": {saving[1]: 5.0},
    }


@pytest.mark.parametrize("provider", PROVIDERS)
def test_propay_tables_and_views_are_the_same_on_duckdb_and_postgres(
    pipeline, provider, postgres_url, postgres_schema, tmp_path
):
    pipeline.sync()
    connection = pipeline.registry.get(COMPANY)
    settings = settings_for(pipeline.warehouse, connection.settings.timezone)
    # Recorded on the pull date, so that the version prices every ProPay of the window.
    pipeline.registry.update_settings(COMPANY, settings, effective_from=PULL_DATE, today=PULL_DATE)
    pipeline.sync()
    on_duckdb = snapshot(pipeline.warehouse)

    # The same company into PostgreSQL: its own registry (sync state) and Dagster instance.
    postgres = Warehouse(url=postgres_url, schema_name=postgres_schema)
    registry_url = f"sqlite:///{tmp_path / 'registry_postgres.sqlite3'}"
    second = ConnectionRegistry(registry_url)
    second.connect(
        # The admin's credentials, as connected (the first registry also holds tokens the vendor issued).
        COMPANY,
        provider,
        pipeline.harness.base_url,
        pipeline.harness.credentials,
        attendance_pull_date=PULL_DATE,
        settings={**SETTINGS, "timezone": connection.settings.timezone},
    )
    second.update_settings(COMPANY, settings, effective_from=PULL_DATE, today=PULL_DATE)  # the same history
    defs = build_defs(
        warehouse=postgres,
        registry=ConnectionRegistryResource(url=registry_url),
        vendors=pipeline.defs.resources["vendors"],
    )
    with dg.DagsterInstance.ephemeral() as instance:
        sync_company(defs, instance, COMPANY, PULL_DATE, TODAY)
    on_postgres = snapshot(postgres)

    assert set(on_duckdb) == set(on_postgres)
    for name, frame in on_duckdb.items():
        pd.testing.assert_frame_equal(on_postgres[name], frame, obj=f"{name} on PostgreSQL vs DuckDB")

    opportunities = on_duckdb["propay_opportunities"]
    assert (opportunities["exclusion_reason"] == "excluded manually: warranty work").sum() == 1
    assert opportunities["disqualified"].sum() == 1
    assert (opportunities["penalty_amount"] > 0).sum() == 1
    assert_views_add_up(on_duckdb)


def assert_views_add_up(frames: dict[str, pd.DataFrame]) -> None:
    propays = frames["propay_opportunities"].set_index("propay_id")
    bonuses = frames["propay_worker_bonuses"]
    weeks = frames["propay_overtime_weeks"]

    # Worker bonuses add up to each ProPay's paid_to_workers, to the cent; paid + kept = pool.
    paid = bonuses.groupby("propay_id")["bonus"].sum()
    assert (paid == propays.loc[paid.index, "paid_to_workers"]).all()
    assert (propays.loc[~propays.index.isin(paid.index), "paid_to_workers"] == 0).all()
    assert ((propays["paid_to_workers"] + propays["kept_by_company"]) == propays["bonus_pool"]).all()
    assert bonuses["overtime_adjustment"].sum() == propays["overtime_adjustment"].sum()
    assert abs(weeks["overtime_adjustment"].sum() - bonuses["overtime_adjustment"].sum()) <= Decimal("0.01") * len(
        weeks
    )
    assert bonuses["bonus"].sum() > 0

    # Per ProPay and per company: hour figures are sums over the completed, eligible ProPays with time;
    # money is final (completed) or provisional (started), never summed together.
    savings = frames["propay_savings"]
    assert len(savings) == len(propays)
    final = savings[
        (savings["status"] == "completed") & ~savings["excluded"].astype(bool) & (savings["actual_hours"] > 0)
    ]
    summary = frames["company_propay_summary"].set_index("company_id").loc[COMPANY]
    assert summary["propays"] == len(propays) and summary["completed_propays"] == len(final)
    assert summary["started_propays"] == (propays["status"] == "started").sum()
    assert summary["unpaid_propays"] == (propays["pay_state"] == "none").sum()
    assert summary["actual_hours"] == pytest.approx(propays["actual_hours"].sum(), abs=1e-6)
    assert summary["saved_hours"] == pytest.approx(final["saved_hours"].sum(), abs=1e-6)
    assert summary["net_saved_hours"] == pytest.approx(final["net_saved_hours"].sum(), abs=1e-6)
    assert summary["saved_hours"] >= summary["net_saved_hours"]
    assert (savings["saved_hours"] >= 0).all()
    for state in ("final", "provisional"):
        paying = propays[propays["pay_state"] == state]
        assert summary[f"{state}_propays"] == len(paying)
        assert summary[f"{state}_bonus_pool"] == paying["bonus_pool"].sum()
        assert summary[f"{state}_paid_to_workers"] == bonuses[bonuses["propay_id"].isin(paying.index)]["bonus"].sum()
    assert summary["final_bonus_pool"] + summary["provisional_bonus_pool"] == propays["bonus_pool"].sum()
    assert (propays.loc[propays["pay_state"] == "none", "bonus_pool"] == 0).all()
    assert propays.loc[propays["pay_state"] == "none", "no_bonus_reason"].notna().all()
    assert propays.loc[propays["pay_state"] != "none", "no_bonus_reason"].isna().all()
    assert (propays.loc[propays["status"].isin(["canceled", "pending"]), "pay_state"] == "none").all()
    assert (summary["excluded_propays"], summary["disqualified_propays"]) == (
        propays["exclusion_reason"].notna().sum(),
        1,
    )
    efficient = final[final["budget_hours"].notna() & (final["actual_hours"] > 0)]
    assert summary["efficiency"] == pytest.approx(efficient["budget_hours"].sum() / efficient["actual_hours"].sum())
    per_propay = savings.dropna(subset=["efficiency"])
    assert (per_propay["efficiency_percent"] - per_propay["efficiency"] * 100).abs().max() < 1e-6

    # Hours gained: weeks and months partition the same completed ProPays.
    gained = frames["propay_hours_gained"]
    for period in ("week", "month"):
        rows = gained[gained["period"] == period]
        assert rows["completed_propays"].sum() == len(final[final["last_work_date"].notna()])
        assert rows["hours_gained"].sum() == pytest.approx(summary["net_saved_hours"], abs=1e-6)
    weekly = gained[gained["period"] == "week"]
    assert all(day.weekday() == 0 for day in weekly["period_start"])

    revenue = frames["company_revenue_per_hour"]
    assert len(revenue) > 0
    assert (
        revenue["revenue_per_hour"] - revenue["budget_revenue"].astype(float) / revenue["hours_worked"]
    ).abs().max() < 1e-6

    # Bonus wage: the final bonus money per hour on final ProPays, on top of the base wage.
    wages = frames["worker_bonus_wages"]
    state = bonuses["propay_id"].map(propays["pay_state"])
    assert wages["final_bonus"].sum() == bonuses.loc[state == "final", "bonus"].sum()
    assert wages["provisional_bonus"].sum() == bonuses.loc[state == "provisional", "bonus"].sum()
    assert len(wages) == bonuses["worker_id"].nunique()
    known = wages.dropna(subset=["base_wage", "wage_increase"])
    assert (known["bonus_wage"] >= known["base_wage"].astype(float) - 1e-9).all()
    increase = (known["final_bonus"] + known["final_overtime_adjustment"]).astype(float) / known["final_hours"]
    assert (known["wage_increase"] - increase).abs().max() < 1e-6

    # Leaderboards: the worker board holds every bonus of ProPays no rule excludes, final and
    # provisional apart; lead and manager boards their roles' bonuses.
    board = frames["propay_leaderboard"]
    eligible = bonuses[bonuses["propay_id"].isin(propays.index[propays["exclusion_reason"].isna()])]
    eligible_state = eligible["propay_id"].map(propays["pay_state"])
    workers = board[board["board"] == "worker"]
    assert workers["bonus"].sum() == eligible.loc[eligible_state == "final", "bonus"].sum()
    assert workers["provisional_bonus"].sum() == eligible.loc[eligible_state == "provisional", "bonus"].sum()
    assert len(workers) == eligible["worker_id"].nunique() and workers["rank"].min() == 1
    top = workers.sort_values("rank").iloc[0]
    assert top["bonus"] == workers["bonus"].max()
    for role in ("crew_lead", "manager"):
        rows = board[board["board"] == role]
        mine = eligible["role"] == role
        assert rows["bonus"].sum() == eligible.loc[mine & (eligible_state == "final"), "bonus"].sum()
        assert len(rows) == eligible.loc[mine, "worker_id"].nunique() == 1


def test_each_propay_asset_shows_its_schema_row_count_and_summary(pipeline):
    pipeline.sync()
    specs = {spec.key.to_user_string(): spec for spec in pipeline.defs.resolve_all_asset_specs()}
    for table in PROPAY_TABLES:
        spec = specs[table.name]
        schema = spec.metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == table.column_names
        assert all(c.description for c in schema.columns), table.name
        event = pipeline.instance.get_latest_materialization_event(dg.AssetKey(table.name))
        metadata = event.asset_materialization.metadata
        assert metadata["dagster/row_count"].value == len(pipeline.warehouse.read_table(table)), table.name
        assert metadata["summary"].value and metadata["provider"].value == "quickbooks_time"
        check = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey(table.name), "counts_reconcile")]
        )
        assert check and all(record.status.value == "SUCCEEDED" for record in check.values()), table.name
    summary = (
        pipeline.instance.get_latest_materialization_event(dg.AssetKey("propay_opportunities"))
        .asset_materialization.metadata["summary"]
        .value
    )
    for part in (
        "ProPays",
        "| status | ProPays |",
        "largest savings",
        "largest overages",
        "Excluded:",
        "disqualified:",
    ):
        assert part in summary
