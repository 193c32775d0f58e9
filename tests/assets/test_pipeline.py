"""The whole sync through Dagster: emulator over real HTTP -> raw -> cleaned -> ProPay, real databases."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from protiv_dagster.company_sync import SyncFailed
from tests.assets.conftest import COMPANY


def ground_truth(vendor) -> pd.DataFrame:
    sheets = pd.DataFrame(vendor.timesheets())
    return pd.DataFrame(
        {"entry_id": sheets["id"].astype(str), "hours": sheets["duration"] / 3600.0}
    ).sort_values("entry_id", ignore_index=True)


def assert_attendance_matches_vendor(pipeline) -> None:
    loaded = pipeline.attendance()
    truth = ground_truth(pipeline.vendor)
    assert not loaded["entry_id"].duplicated().any()
    assert list(loaded["entry_id"]) == list(truth["entry_id"])
    assert loaded["hours"].round(6).tolist() == truth["hours"].round(6).tolist()


@pytest.mark.parametrize("warehouse_backend", ["duckdb", "postgres"])
def test_initial_sync_loads_the_vendor_ground_truth_and_reruns_identically(pipeline):
    run_ids = pipeline.sync()
    assert len(run_ids) == 5  # reference data, three ISO weeks, ProPays
    assert all(pipeline.instance.get_run_by_id(r).is_success for r in run_ids)

    assert_attendance_matches_vendor(pipeline)
    tables = pipeline.tables()
    assert tables["rejected_rows"].empty
    assert len(tables["workers"]) == len(pipeline.vendor.users())
    assert len(tables["jobs"]) == len(pipeline.vendor.jobcodes(include_inactive=True))
    attendance = tables["attendance"]
    assert attendance["on_the_clock"].sum() == 1
    assert attendance["is_drive"].any()
    assert (attendance["entry_type"] == "manual").any()

    propay = tables["propay_opportunities"]
    assert len(propay) > 0 and (propay["status"] == "started").any()
    buckets = propay[["crew_bucket", "crew_lead_bucket", "manager_bucket", "other_bucket", "company_bucket"]]
    assert (buckets.sum(axis=1) == propay["bonus_pool"]).all()  # cents add up exactly
    under = propay[propay["saved_hours"] > 0]
    assert (under["bonus_pool"] == (under["saved_amount"] * Decimal("0.5")).map(lambda v: v.quantize(Decimal("0.01"), ROUND_HALF_UP))).all()

    # Every asset partition is recorded in the instance, with a passing reconciliation check.
    for key, partition in [("attendance", dg.MultiPartitionKey({"company": COMPANY, "week": "2026-11-16"})),
                           ("propay_opportunities", COMPANY)]:
        event = pipeline.instance.get_latest_materialization_event(dg.AssetKey(key))
        assert event is not None
    checks = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("attendance"), "counts_reconcile")]
    )
    assert all(record.status.value == "SUCCEEDED" for record in checks.values())

    pipeline.sync()
    again = pipeline.tables()
    for name, frame in tables.items():
        assert_frame_equal(frame, again[name], obj=name)


def test_edits_deletions_and_moved_entries_after_the_fact(pipeline):
    pipeline.sync()
    vendor = pipeline.vendor
    sheets = [s for s in vendor.timesheets() if s["type"] == "regular" and s["end"] and s["duration"] > 7200]
    edited, deleted, moved = sheets[0], sheets[1], next(s for s in sheets[2:] if s["date"] < "2026-11-09")
    vendor.edit_timesheet(int(edited["id"]), end=(datetime.fromisoformat(edited["end"]) - timedelta(hours=1)).isoformat())
    vendor.delete_timesheet(int(deleted["id"]))
    # A manager moves an entry from the week of Nov 2 to the week of Nov 16.
    start = datetime.fromisoformat(moved["start"]) + timedelta(days=14)
    vendor.edit_timesheet(int(moved["id"]), start=start.isoformat(), end=(start + timedelta(hours=2)).isoformat())

    pipeline.sync()
    assert_attendance_matches_vendor(pipeline)
    loaded = pipeline.attendance().set_index("entry_id")
    assert deleted["id"] not in loaded.index and str(deleted["id"]) not in loaded.index
    assert loaded.loc[str(edited["id"]), "hours"] == pytest.approx(edited["duration"] / 3600 - 1)
    assert str(loaded.loc[str(moved["id"]), "work_date"]) == start.date().isoformat()


def test_rate_limits_and_server_errors_lose_nothing_and_duplicate_nothing(pipeline):
    # Faults hit consecutive requests; three in a row fit in the four attempts this pipeline allows.
    pipeline.emulator.faults.rate_limit(times=1, retry_after=0)
    pipeline.emulator.faults.server_error(times=1, status=503)
    pipeline.emulator.faults.rate_limit(times=1, retry_after=None)
    pipeline.sync()
    assert_attendance_matches_vendor(pipeline)
    statuses = [entry.status for entry in pipeline.emulator.request_log]
    assert statuses.count(429) == 2 and statuses.count(503) == 1


def test_a_failed_sync_leaves_the_previous_data_and_says_why(pipeline):
    pipeline.sync()
    before = pipeline.tables()
    sheet = pipeline.vendor.timesheets()[0]
    pipeline.vendor.delete_timesheet(int(sheet["id"]))
    pipeline.emulator.faults.server_error(times=10_000, status=503)
    with pytest.raises(SyncFailed, match=r"QuickBooks Time: HTTP 503 on .*still failing after 4 attempts"):
        pipeline.sync()
    after = pipeline.tables()
    for name, frame in before.items():
        assert_frame_equal(frame, after[name], obj=name)


def test_unknown_company_fails_with_a_clear_error(pipeline):
    with pytest.raises(SyncFailed, match="company 'ghost' has no connection"):
        pipeline.sync("ghost")
