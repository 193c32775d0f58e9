"""Connect -> initial sync -> two-hour refresh -> ProPays follow, on a real instance, every vendor.

The daemon's part is simulated by ``Daemon`` (tests/automation/conftest.py): it ticks the sensors,
the schedule and the declarative automation, and launches exactly the runs they request.
"""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.partitions import RANGE_END_TAG, RANGE_START_TAG
from protiv_dagster.propay import compute_propays
from tests.assets.conftest import COMPANY, PULL_DATE
from tests.assets.test_pipeline import assert_attendance_matches_vendor
from tests.assets.vendors import PROVIDERS

on_every_vendor = pytest.mark.parametrize("provider", PROVIDERS)
WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16"]


def weeks_of(request: dg.RunRequest) -> list[str]:
    """The weeks a week run covers: its partition, or every week of its partition range."""
    if request.partition_key is not None:
        return [request.partition_key.split("|")[-1]]  # company|week: Dagster orders dimensions by name
    first = date.fromisoformat(request.tags[RANGE_START_TAG].split("|")[-1])
    last = date.fromisoformat(request.tags[RANGE_END_TAG].split("|")[-1])
    return [(first + timedelta(days=7 * n)).isoformat() for n in range((last - first).days // 7 + 1)]


def weeks_requested(requests) -> list[str]:
    return sorted(week for request in requests for week in weeks_of(request))


def initial_sync(daemon) -> None:
    data = daemon.tick_sensor("new_connections")
    assert [r.job_name for r in data.run_requests] == ["sync_company_reference"]
    daemon.launch(data.run_requests)
    daemon.settle()


def propay_hours(pipeline) -> float:
    return float(pipeline.warehouse.read_table("propay_opportunities")["actual_hours"].astype(float).sum())


def propay_by_entry(pipeline) -> dict[str, str | None]:
    """The ProPay whose actual hours each attendance entry counts in, or None (drive time, a job
    without a ProPay). An excluded ProPay (e.g. a job begun before the pull date) still counts its
    hours; it pays nothing. (Both tables read once: a lookup per entry costs seconds a test.)"""
    propays = set(pipeline.warehouse.read_table("propay_opportunities")["propay_id"])

    def counted_in(row) -> str | None:
        if row.is_drive:
            return None
        return next((key for key in (row.milestone_id, row.job_id) if key is not None and key in propays), None)

    return {row.entry_id: counted_in(row) for row in pipeline.attendance().itertuples()}


def propay_of(pipeline, entry_id: str):
    return propay_by_entry(pipeline)[entry_id]


def request_count(pipeline) -> int:
    return pipeline.emulator.request_count


@on_every_vendor
def test_a_new_connection_gets_its_partition_and_initial_sync_then_propays_follow(pipeline, daemon, provider):
    assert not pipeline.instance.has_dynamic_partition("company", COMPANY)
    data = daemon.tick_sensor("new_connections")
    assert pipeline.instance.has_dynamic_partition("company", COMPANY)
    assert [(r.job_name, r.partition_key) for r in data.run_requests] == [("sync_company_reference", COMPANY)]
    assert data.run_requests[0].tags["protiv/trigger"] == "initial_sync"
    daemon.launch(data.run_requests)
    assert daemon.tick_sensor("new_connections").run_requests == []  # asked once per connection

    followed = daemon.settle()
    week_runs = [r for r in daemon.launched if r.job_name == "sync_company_week"]
    # One run over every week from the pull date (Nov 6) to today (Nov 20): one vendor query.
    assert len(week_runs) == 1 and weeks_requested(week_runs) == WEEKS
    # Only propay_opportunities has the condition; Dagster requests the engine's other tables with it.
    for table in (
        "propay_opportunities",
        "propay_worker_bonuses",
        "propay_overtime_weeks",
        "jobs_without_propay",
        "propay_settings_versions",
    ):
        assert (table, COMPANY) in followed, table
    assert daemon.failures == []
    assert_attendance_matches_vendor(pipeline)
    assert len(pipeline.warehouse.read_table("propay_opportunities")) > 0

    state = daemon.store().state(COMPANY)
    assert state.cursor is not None and state.current_as_of is not None and state.last_error is None
    assert not daemon.store().pending_batches()

    # The health check is green and reported on the company's ProPay partition.
    daemon.launch(daemon.tick_sensor("connection_status").run_requests)
    check = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("vendor_connection"), "connection_healthy")]
    )
    assert [record.status.value for record in check.values()] == ["SUCCEEDED"]


@on_every_vendor
def test_a_quiet_company_costs_at_most_two_vendor_calls_and_no_run(pipeline, daemon, provider):
    initial_sync(daemon)
    before, runs_before = request_count(pipeline), len(pipeline.instance.get_runs())
    result = daemon.tick_schedule("refresh_every_two_hours")
    assert not result.run_requests and result.skip_message
    assert request_count(pipeline) - before <= 2
    daemon.settle()
    assert len(pipeline.instance.get_runs()) == runs_before
    assert daemon.store().state(COMPANY).last_checked_at is not None


@on_every_vendor
def test_an_edit_three_weeks_back_resyncs_exactly_that_week_and_the_current_one(pipeline, daemon, provider):
    initial_sync(daemon)
    harness = pipeline.harness
    old = harness.editable_entries()
    edited = old[old["work_date"] < "2026-11-09"].iloc[0]
    harness.shorten(edited.entry_id, hours=1)

    result = daemon.tick_schedule("refresh_every_two_hours")
    assert weeks_requested(result.run_requests) == ["2026-11-02", "2026-11-16"]
    assert len(result.run_requests) == 2  # the two weeks are not consecutive: a run each
    assert all(r.tags["protiv/trigger"] == "refresh" for r in result.run_requests)
    daemon.launch(result.run_requests)
    before = propay_hours(pipeline)
    followed = daemon.settle()
    assert ("propay_opportunities", COMPANY) in followed and daemon.failures == []
    loaded = assert_attendance_matches_vendor(pipeline)
    assert loaded.loc[edited.entry_id, "hours"] == pytest.approx(edited.hours - 1)
    # The hour left the ProPay the entry counts towards (if it counts towards one).
    expected = before - (1 if propay_of(pipeline, edited.entry_id) is not None else 0)
    assert propay_hours(pipeline) == pytest.approx(expected, abs=1e-6)

    # Done: the cursor moved, and the next refresh finds nothing.
    assert not daemon.tick_schedule("refresh_every_two_hours").run_requests


@on_every_vendor
def test_a_deletion_and_a_move_between_weeks_are_propagated(pipeline, daemon, provider):
    initial_sync(daemon)
    harness = pipeline.harness
    candidates = harness.editable_entries()
    deleted = candidates.iloc[0]
    moved = candidates.iloc[1:][candidates.iloc[1:]["work_date"] < "2026-11-09"].iloc[0]
    harness.delete(deleted.entry_id)
    harness.move(moved.entry_id, days=7)

    result = daemon.tick_schedule("refresh_every_two_hours")
    weeks = set(weeks_requested(result.run_requests))
    moved_to = (pd.Timestamp(moved.work_date) + pd.Timedelta(days=7)).date()
    assert {"2026-11-02", "2026-11-16", (moved_to - timedelta(days=moved_to.weekday())).isoformat()} <= weeks
    daemon.launch(result.run_requests)
    daemon.settle()
    loaded = assert_attendance_matches_vendor(pipeline)
    assert deleted.entry_id not in loaded.index
    assert str(loaded.loc[moved.entry_id, "work_date"]) == moved_to.isoformat()


def test_a_failed_sync_keeps_the_cursor_and_the_next_refresh_asks_again(pipeline, daemon):
    initial_sync(daemon)
    cursor = daemon.store().state(COMPANY).cursor
    harness = pipeline.harness
    harness.shorten(harness.editable_entries().iloc[0].entry_id, hours=1)
    result = daemon.tick_schedule("refresh_every_two_hours")
    assert result.run_requests
    pipeline.emulator.faults.server_error(times=10_000, status=503)
    daemon.launch(result.run_requests)
    daemon.settle()
    state = daemon.store().state(COMPANY)
    assert state.cursor == cursor and "HTTP 503" in state.last_error

    daemon.launch(daemon.tick_sensor("connection_status").run_requests)
    check = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey("vendor_connection"), "connection_healthy")]
    )
    assert [record.status.value for record in check.values()] == ["FAILED"]

    pipeline.emulator.faults.clear()
    again = daemon.tick_schedule("refresh_every_two_hours")
    assert weeks_requested(again.run_requests) == weeks_requested(result.run_requests)
    daemon.launch(again.run_requests)
    daemon.settle()
    assert_attendance_matches_vendor(pipeline)
    assert daemon.store().state(COMPANY).cursor != cursor


def test_removing_a_connection_stops_its_syncs_and_reconnecting_resumes_without_duplicates(pipeline, daemon):
    initial_sync(daemon)
    before = pipeline.attendance()
    connection = pipeline.registry.get(COMPANY)
    pipeline.registry.disconnect(COMPANY)
    assert daemon.tick_schedule("refresh_every_two_hours").run_requests == []
    assert pipeline.instance.has_dynamic_partition("company", COMPANY)  # the partition and data stay
    pd.testing.assert_frame_equal(pipeline.attendance(), before)

    pipeline.registry.connect(
        COMPANY,
        connection.provider,
        connection.base_url,
        pipeline.harness.credentials,
        attendance_pull_date=PULL_DATE,
        settings=connection.settings.model_dump(),
    )
    data = daemon.tick_sensor("new_connections")
    assert [r.job_name for r in data.run_requests] == ["sync_company_reference"]
    daemon.launch(data.run_requests)
    daemon.settle()
    again = pipeline.attendance()
    assert not again["entry_id"].duplicated().any()
    assert sorted(again["entry_id"]) == sorted(before["entry_id"])


@pytest.mark.parametrize("instance_kind", ["postgres"])
@pytest.mark.analysts_layer  # the runs of no company's, on PostgreSQL
def test_on_a_postgres_instance(pipeline, daemon):
    assert type(pipeline.instance.run_storage).__name__ == "PostgresRunStorage"
    initial_sync(daemon)
    assert_attendance_matches_vendor(pipeline)
    runs = pipeline.instance.get_runs()
    # Every run of the company carries its vendor (queue limits); the analysts' copy and marts are no company's.
    shared = {"analysts_database", "analytics"}
    company_runs = [r for r in runs if not (r.asset_selection and all(k.path[0] in shared for k in r.asset_selection))]
    assert len(company_runs) < len(runs)
    assert {r.tags.get("protiv/provider") for r in company_runs} == {"quickbooks_time"}
    assert daemon.store().state(COMPANY).cursor is not None


def test_a_company_whose_vendor_fails_never_blocks_the_others(pipeline, daemon):
    initial_sync(daemon)
    pipeline.registry.connect(
        "broken",
        pipeline.harness.provider,
        "http://127.0.0.1:9/",
        pipeline.harness.wrong_credentials(),
        attendance_pull_date=PULL_DATE,
    )
    data = daemon.tick_sensor("new_connections")  # the broken company's check fails; no run for it
    assert data.run_requests == [] or all(r.tags["protiv/company"] != "broken" for r in data.run_requests)
    assert daemon.store().state("broken").last_error
    pipeline.harness.shorten(pipeline.harness.editable_entries().iloc[0].entry_id, hours=1)
    result = daemon.tick_schedule("refresh_every_two_hours")
    assert {r.tags["protiv/company"] for r in result.run_requests} == {COMPANY}


def test_a_manual_materialization_of_a_raw_week_is_followed_by_attendance_and_propays(pipeline, daemon):
    initial_sync(daemon)
    pipeline.harness.shorten(pipeline.harness.editable_entries().iloc[0].entry_id, hours=1)
    # What a data engineer does in the UI: materialize only raw_timesheets of one week.
    week = dg.MultiPartitionKey({"company": COMPANY, "week": "2026-11-16"})
    job = pipeline.defs.resolve_implicit_job_def_def_for_assets([dg.AssetKey("raw_timesheets")])
    assert job.execute_in_process(
        instance=pipeline.instance, partition_key=str(week), asset_selection=[dg.AssetKey("raw_timesheets")]
    ).success
    followed = daemon.follow_upstream()
    assert ("attendance", str(week)) in followed
    assert ("propay_opportunities", COMPANY) in daemon.follow_upstream() + followed
    assert daemon.failures == []


def test_a_refresh_with_new_workers_first_ends_with_propays_of_the_new_attendance(pipeline, daemon):
    initial_sync(daemon)
    vendor = pipeline.harness.vendor
    vendor.edit_user(vendor.users()[0]["id"], last_name="Renamed")  # workers and jobs are synced first
    entries = pipeline.harness.editable_entries()
    propays = propay_by_entry(pipeline)
    edited = next(row for row in entries.itertuples() if propays[row.entry_id] is not None)
    pipeline.harness.shorten(edited.entry_id, hours=1)

    result = daemon.tick_schedule("refresh_every_two_hours")
    assert result.run_requests == []  # the company_syncs sensor starts a sync that needs workers first
    followed = daemon.settle()
    # Once, after the weeks: not after the reference run, with the old attendance.
    assert followed.count(("propay_opportunities", COMPANY)) == 1
    assert daemon.failures == []
    loaded = assert_attendance_matches_vendor(pipeline)
    assert loaded.loc[edited.entry_id, "hours"] == pytest.approx(edited.hours - 1)
    attendance = pipeline.attendance()
    expected = compute_propays(
        pipeline.warehouse.read_table("jobs"),
        attendance,
        pipeline.warehouse.read_table("workers"),
        pipeline.registry.get(COMPANY).settings,
        COMPANY,
    ).opportunities
    stored = pipeline.warehouse.read_table("propay_opportunities")
    assert stored.set_index("propay_id")["actual_hours"].astype(float).round(4).sort_index().to_dict() == (
        expected.set_index("propay_id")["actual_hours"].astype(float).round(4).sort_index().to_dict()
    )
