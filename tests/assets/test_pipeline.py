"""The whole sync through Dagster on every vendor: emulator over real HTTP -> raw -> cleaned -> ProPay.

Each test runs once per vendor (QuickBooks Time, Aspire, BusyBusy) against that vendor's emulator,
and compares the warehouse with the vendor's own ground truth, never with what the pipeline loaded.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction

import dagster as dg
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from protiv_dagster.sync.company import SyncFailed
from tests.assets.conftest import COMPANY, PULL_DATE, SETTINGS, TODAY
from tests.assets.vendors import PROVIDERS, leaked


def exact_saving(row) -> Fraction:
    """A ProPay's saved labor in $, exactly, from its stored exact budget, seconds and labor cost:
    hours budgets (budget h - actual h) x labor $ / actual h, $ budgets budget $ - labor $."""
    budget = Fraction(int(row.budget_numerator), int(row.budget_denominator))
    labor = Fraction(int(row.labor_cost_numerator), int(row.labor_cost_denominator))
    if row.budget_unit == "hours":
        hours = Fraction(int(row.actual_seconds), 3600)
        return (budget - hours) * labor / hours
    return budget - labor


def pool_of(row, share: str) -> Decimal:
    """The pool: the positive exact saving times the worker share, rounded once, half up, to the cent."""
    cents = max(exact_saving(row), Fraction(0)) * Fraction(share) * 100
    return Decimal((2 * cents.numerator + cents.denominator) // (2 * cents.denominator)) / 100


on_every_vendor = pytest.mark.parametrize("provider", PROVIDERS)
DERIVED_DRIVE_PREFIX = "ClockTime-"  # Aspire drive rows are derived from clock time, not vendor entries


def assert_attendance_matches_vendor(pipeline) -> pd.DataFrame:
    """Every live vendor entry from the company's attendance pull date on is loaded once, on its
    local work date, with the vendor's hours; nothing before the pull date is (rules §9)."""
    loaded = pipeline.attendance()
    assert not loaded["entry_id"].duplicated().any()
    loaded = loaded[~loaded["entry_id"].str.startswith(DERIVED_DRIVE_PREFIX)].set_index("entry_id").sort_index()
    truth = pipeline.harness.entries().set_index("entry_id").sort_index()
    truth = truth[truth["work_date"] >= pipeline.registry.get(COMPANY).attendance_pull_date.isoformat()]
    assert list(loaded.index) == list(truth.index)
    assert [str(d) for d in loaded["work_date"]] == list(truth["work_date"])
    closed = truth["hours"].notna()
    assert loaded.loc[closed, "hours"].round(6).tolist() == truth.loc[closed, "hours"].round(6).tolist()
    assert loaded.loc[~closed, "on_the_clock"].all()
    return loaded


def assert_unchanged(before: dict[str, pd.DataFrame], after: dict[str, pd.DataFrame]) -> None:
    for name, frame in before.items():
        assert_frame_equal(frame, after[name], obj=name)


def assert_no_secret_in_events(pipeline) -> None:
    """No credential or token of the vendor in any event of any run (errors included)."""
    secrets = pipeline.harness.secrets()
    for record in pipeline.instance.get_run_records():
        text = "\n".join(repr(event) for event in pipeline.instance.all_logs(record.dagster_run.run_id))
        text += repr(record.dagster_run.run_config) + repr(record.dagster_run.tags)
        assert not leaked(secrets, text), (
            f"a credential of {pipeline.harness.label} leaked into run {record.dagster_run.run_id}"
        )


@on_every_vendor
@pytest.mark.parametrize("warehouse_backend", ["duckdb", "postgres"])
def test_initial_sync_loads_the_vendor_ground_truth_and_reruns_identically(pipeline, provider):
    run_ids = pipeline.sync()
    assert len(run_ids) == 3  # reference data, the three ISO weeks in one run, ProPays
    assert all(pipeline.instance.get_run_by_id(r).is_success for r in run_ids)

    assert_attendance_matches_vendor(pipeline)
    tables = pipeline.tables()
    assert tables["rejected_rows"].empty
    assert len(tables["workers"]) == len(pipeline.harness.data.workers)
    attendance = tables["attendance"]
    assert attendance["on_the_clock"].sum() == 1
    assert attendance["is_drive"].any()

    propay = tables["propay_opportunities"]
    assert len(propay) > 0 and (propay["status"] == "started").any()
    buckets = propay[["crew_bucket", "crew_lead_bucket", "manager_bucket", "other_bucket", "company_bucket"]]
    assert (buckets.sum(axis=1) == propay["bonus_pool"]).all()  # cents add up exactly
    under = propay[(propay["saved_hours"] > 0) & (propay["pay_state"] != "none")]
    assert len(under) > 0
    assert (propay.loc[propay["pay_state"] == "none", "bonus_pool"] == 0).all()
    assert all(row.bonus_pool == pool_of(row, "0.5") for row in under.itertuples())
    expected_crew = (under["bonus_pool"] * Decimal(str(SETTINGS["role_buckets"]["crew"]))).map(
        lambda v: v.quantize(Decimal("0.01"), ROUND_HALF_UP)
    )
    assert ((under["crew_bucket"] - expected_crew).abs() <= Decimal("0.01")).all()

    # Every asset partition is recorded in the instance with its provider, and reconciles.
    for key in ("raw_timesheets", "attendance", "workers", "jobs", "propay_opportunities"):
        event = pipeline.instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None, key
        assert event.asset_materialization.metadata["provider"].value == provider, key
    checks = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("attendance"), "counts_reconcile")]
    )
    assert checks and all(record.status.value == "SUCCEEDED" for record in checks.values())
    assert all(pipeline.instance.get_run_by_id(r).tags["protiv/provider"] == provider for r in run_ids)

    pipeline.sync()
    assert_unchanged(tables, pipeline.tables())
    assert_no_secret_in_events(pipeline)


@on_every_vendor
def test_edits_deletions_and_moved_entries_after_the_fact(pipeline, provider):
    pipeline.sync()
    harness = pipeline.harness
    candidates = harness.editable_entries()
    edited, deleted = candidates.iloc[0], candidates.iloc[1]
    moved = candidates.iloc[2:][candidates.iloc[2:]["work_date"] < "2026-11-09"].iloc[0]
    harness.shorten(edited.entry_id, hours=1)
    harness.delete(deleted.entry_id)
    harness.move(moved.entry_id, days=14)  # a manager moves an entry from the week of Nov 2 to Nov 16

    pipeline.sync()
    loaded = assert_attendance_matches_vendor(pipeline)
    assert deleted.entry_id not in loaded.index
    assert loaded.loc[edited.entry_id, "hours"] == pytest.approx(edited.hours - 1)
    assert loaded.loc[moved.entry_id, "hours"] == pytest.approx(2.0)
    moved_date = (pd.Timestamp(moved.work_date) + pd.Timedelta(days=14)).date().isoformat()
    assert str(loaded.loc[moved.entry_id, "work_date"]) == moved_date
    assert pipeline.tables()["rejected_rows"].empty


@on_every_vendor
def test_rate_limits_and_server_errors_lose_nothing_and_duplicate_nothing(pipeline, provider):
    # Faults hit consecutive requests; three in a row fit in the four attempts this pipeline allows.
    pipeline.emulator.faults.rate_limit(times=1, retry_after=0)
    pipeline.emulator.faults.server_error(times=1, status=503)
    pipeline.emulator.faults.rate_limit(times=1, retry_after=None)
    pipeline.sync()
    assert_attendance_matches_vendor(pipeline)
    statuses = pipeline.harness.statuses()
    assert statuses.count(429) == 2 and statuses.count(503) == 1


@on_every_vendor
def test_an_outage_longer_than_the_clients_retries_is_retried_by_the_step(pipeline, provider):
    # Five 503s in a row: the client gives up after four attempts, the step retries and succeeds.
    pipeline.emulator.faults.server_error(times=5, status=503)
    pipeline.sync()
    assert_attendance_matches_vendor(pipeline)
    assert pipeline.harness.statuses().count(503) == 5
    retried = [r for r in pipeline.instance.get_runs() if r.job_name == "sync_company_reference"]
    events = pipeline.instance.all_logs(retried[0].run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY)
    assert len(events) == 1


@on_every_vendor
def test_a_session_that_dies_mid_sync_is_renewed(pipeline, provider):
    pipeline.sync()
    before = pipeline.registry.get(COMPANY).credentials()
    # The token (or session key) dies after the first page the next sync reads.
    pipeline.emulator.faults.between_pages(pipeline.harness.kill_session, after_pages=1)
    pipeline.sync()
    assert_attendance_matches_vendor(pipeline)
    assert 401 in pipeline.harness.statuses()
    if provider == "quickbooks_time":
        # The refreshed OAuth tokens are stored (encrypted) for the next run; the client keeps its id.
        after = pipeline.registry.get(COMPANY).credentials()
        assert after["access_token"] != before["access_token"]
        assert after["access_token"] == pipeline.harness.vendor.access_token
        assert after["client_id"] == before["client_id"]
    assert_no_secret_in_events(pipeline)


@on_every_vendor
def test_a_failed_sync_leaves_the_previous_data_and_says_why(pipeline, provider):
    pipeline.sync()
    before = pipeline.tables()
    harness = pipeline.harness
    harness.delete(harness.editable_entries().iloc[0].entry_id)
    pipeline.emulator.faults.server_error(times=10_000, status=503)
    with pytest.raises(SyncFailed, match=rf"{harness.label}: HTTP 503 on .*still failing after 4 attempts"):
        pipeline.sync()
    assert_unchanged(before, pipeline.tables())


@on_every_vendor
def test_a_secret_changed_at_the_vendor_fails_clearly_and_keeps_the_data(pipeline, provider):
    pipeline.sync()
    before = pipeline.tables()
    pipeline.harness.change_secret()
    with pytest.raises(SyncFailed) as caught:
        pipeline.sync()
    message = str(caught.value)
    assert f"{pipeline.harness.label}:" in message and "reconnect" in message
    assert not [s for s in pipeline.harness.secrets() if s in message]
    assert_unchanged(before, pipeline.tables())
    assert_no_secret_in_events(pipeline)


@on_every_vendor
def test_wrong_credentials_name_the_vendor_never_the_secret_and_store_nothing(pipeline, provider):
    harness = pipeline.harness
    wrong = harness.wrong_credentials()
    pipeline.registry.connect("intruder", provider, harness.base_url, wrong, attendance_pull_date=PULL_DATE)
    with pytest.raises(SyncFailed) as caught:
        pipeline.sync("intruder")
    message = str(caught.value)
    assert message.startswith("workers and jobs failed for company 'intruder'")
    assert f"{harness.label}:" in message
    secret_fields = ("access_token", "secret", "password")  # a username or client id may be named
    assert not [value for name, value in wrong.items() if name in secret_fields and value in message]
    tables = pipeline.tables()
    assert all((frame["company_id"] != "intruder").all() for frame in tables.values())


def test_unknown_company_fails_with_a_clear_error(pipeline):
    with pytest.raises(SyncFailed, match="company 'ghost' has no connection"):
        pipeline.sync("ghost")


def test_a_change_of_settings_is_picked_up_by_the_next_propay_materialization(pipeline):
    """A new version prices ProPays whose work begins on or after its date; those already under way
    keep theirs (rules §9)."""
    pipeline.sync()
    before = pipeline.warehouse.read_table("propay_opportunities").set_index("propay_id")
    compute = pipeline.defs.resolve_job_def("compute_propay")
    started = before["first_work_date"].notna()

    # Recorded on the pull date: it prices every ProPay of the window.
    settings = {**SETTINGS, "timezone": "America/Denver", "worker_share": 0.8}
    pipeline.registry.update_settings(COMPANY, settings, effective_from=PULL_DATE, today=PULL_DATE)
    assert compute.execute_in_process(instance=pipeline.instance, partition_key=COMPANY).success
    after = pipeline.warehouse.read_table("propay_opportunities").set_index("propay_id")
    assert (after.loc[started, "settings_version"] == 2).all()
    under = before.index[(before["saved_amount"] > 0) & (before["pay_state"] != "none")]
    assert len(under) > 0
    for row in after.loc[under].itertuples():
        assert row.bonus_pool == pool_of(row, "0.8")
        assert row.bonus_pool > before.loc[row.Index, "bonus_pool"]

    # Recorded today for next month: ProPays under way keep version 2 and their money.
    later_settings = {**settings, "worker_share": 0.3}
    pipeline.registry.update_settings(COMPANY, later_settings, effective_from=TODAY + timedelta(days=30), today=TODAY)
    assert compute.execute_in_process(instance=pipeline.instance, partition_key=COMPANY).success
    later = pipeline.warehouse.read_table("propay_opportunities").set_index("propay_id")
    assert (later.loc[started, "settings_version"] == 2).all()
    assert (later.loc[started, "bonus_pool"] == after.loc[started, "bonus_pool"]).all()
    versions = pipeline.warehouse.read_table("propay_settings_versions", order_by=["version"])
    assert versions["version"].tolist() == [1, 2, 3]
    assert [None if pd.isna(d) else str(d) for d in versions["effective_from"]] == [
        None,
        PULL_DATE.isoformat(),
        (TODAY + timedelta(days=30)).isoformat(),
    ]


def test_bad_settings_are_refused_with_the_setting_named_and_nothing_changes(pipeline):
    from protiv_dagster.connections.registry import RegistryError

    with pytest.raises(RegistryError, match=r"invalid settings for company 'acme': worker_share"):
        pipeline.registry.update_settings(COMPANY, {"worker_share": 1.5})
    assert pipeline.registry.get(COMPANY).settings.worker_share == 0.5
