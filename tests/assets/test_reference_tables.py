"""The tables the reference assets write beside workers and jobs, through Dagster on every vendor:
task_lines and job_assignments with jobs, worker_wages with workers, plus attendance.task_id and
jobs.created_date. Each is compared with the generator's ground truth in the vendor's own ids
(``VendorHarness.expected_*``), over real HTTP against the emulators.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.sync.company import SyncFailed
from protiv_emulators.server import Answer
from tests.assets.hostile import install
from tests.assets.vendors import PROVIDERS

on_every_vendor = pytest.mark.parametrize("provider", PROVIDERS)


def _float(value) -> float | None:
    return None if pd.isna(value) else float(value)


def _checks(pipeline, asset: str, names: list[str]) -> dict:
    keys = [dg.AssetCheckKey(dg.AssetKey(asset), name) for name in names]
    records = pipeline.instance.event_log_storage.get_latest_asset_check_execution_by_key(keys)
    return {key.name: record for key, record in records.items()}


@on_every_vendor
def test_task_lines_wages_assignments_and_creation_dates_equal_the_ground_truth(pipeline, provider):
    pipeline.sync()
    harness = pipeline.harness
    tables = pipeline.tables()
    assert tables["rejected_rows"].empty

    lines = tables["task_lines"]
    got = {(r.job_id, r.task_id, r.name, _float(r.budget_hours), _float(r.budget_amount)) for r in lines.itertuples()}
    assert got == harness.expected_task_lines()
    assert (len(lines) > 0) == (provider != "quickbooks_time")  # QuickBooks Time has no line items

    wages = tables["worker_wages"]
    assert {
        (r.worker_id, r.effective_date, float(r.hourly_wage)) for r in wages.itertuples()
    } == harness.expected_wages()
    # Today's wage is the last one of each history, for every worker, with time or without.
    workers = tables["workers"].set_index("worker_id")["hourly_wage"].astype(float)
    assert {w: round(h, 4) for w, h in workers.items()} == {
        harness.worker_key(w.id): round(float(w.hourly_wage), 4) for w in harness.data.workers
    }

    assignments = tables["job_assignments"]
    assert (
        set(zip(assignments["job_id"], assignments["worker_id"], assignments["role"])) == harness.expected_assignments()
    )
    assert (len(assignments) > 0) == (provider == "aspire")  # only Aspire names crew leaders

    jobs = tables["jobs"].set_index("job_id")["created_date"]
    assert {job_id: (None if pd.isna(day) else day) for job_id, day in jobs.items()} == harness.expected_created_dates()
    pull_date = harness.data.first_local_date
    customer = [j for j in harness.data.jobs if not j.is_drive]
    before = [j for j in customer if jobs[harness.job_key(j.id)] < pull_date]
    assert before and len(before) < len(customer) / 2  # some jobs began before the pull date, most after

    attendance = tables["attendance"].set_index("entry_id")["task_id"]
    expected = harness.expected_task_ids()
    assert {entry: (None if pd.isna(task) else task) for entry, task in attendance[list(expected)].items()} == expected
    if provider == "aspire":
        assert attendance[attendance.index.str.startswith("ClockTime-")].isna().all()  # drive rows

    # Each table has its counts check beside its asset's own, and its row count in the metadata.
    for asset, table, name in (
        ("workers", wages, "worker_wages"),
        ("jobs", lines, "task_lines"),
        ("jobs", assignments, "job_assignments"),
    ):
        check = _checks(pipeline, asset, [f"{name}_counts_reconcile"])[f"{name}_counts_reconcile"]
        assert check.status.value == "SUCCEEDED", (asset, name)
        metadata = pipeline.instance.get_latest_materialization_event(dg.AssetKey(asset)).asset_materialization.metadata
        assert metadata[name].value == len(table) and metadata[f"{name}_set_aside"].value == 0


@pytest.mark.parametrize("provider", ["busybusy"])
def test_busybusy_a_cost_code_budget_is_a_task_line_beside_the_project_budget(pipeline, provider):
    vendor, data = pipeline.harness.vendor, pipeline.harness.data
    job = next(j for j in data.jobs if not j.is_drive and not data.milestones_of(j.id))
    project, labor = vendor.project_id(job.id), vendor.cost_code_id("01-100")
    vendor.set_budget(project, hours=60)
    vendor.set_budget(project, costCodeId=labor, hours=20)
    pipeline.sync()
    tables = pipeline.tables()
    assert tables["jobs"].set_index("job_id").loc[project, "budget_hours"] == 60.0  # not 80
    lines = tables["task_lines"]
    line = lines[(lines["job_id"] == project) & (lines["task_id"] == labor)]
    assert line[["name", "budget_hours"]].values.tolist() == [["Labor", 20.0]]
    assert pd.isna(line["budget_amount"].iloc[0])  # no cost budget for that cost code


@pytest.mark.parametrize("provider", ["busybusy"])
def test_busybusy_a_raise_from_30_to_36_five_days_ago_keeps_both_wages_with_their_dates(pipeline, provider):
    vendor, data = pipeline.harness.vendor, pipeline.harness.data
    worker = next(w for w in data.workers if w.active and w.pay_interval == "hour" and len(w.wage_history) == 1)
    member = vendor.member_id(worker.id)
    raise_day = data.last_local_date - timedelta(days=5)

    def local_midnight(day: date) -> str:
        return datetime.combine(day, datetime.min.time(), tzinfo=data.zone).astimezone(UTC).isoformat()

    vendor.add_wage_change(member, 30.0, local_midnight(date(2026, 10, 1)))
    vendor.add_wage_change(member, 36.0, local_midnight(raise_day))
    pipeline.sync()
    tables = pipeline.tables()
    history = tables["worker_wages"]
    history = history[history["worker_id"] == member].sort_values("effective_date")
    assert [(r.effective_date, float(r.hourly_wage)) for r in history.itertuples()] == [
        (worker.hire_date, float(worker.hourly_wage)),
        (date(2026, 10, 1), 30.0),
        (raise_day, 36.0),
    ]
    assert float(tables["workers"].set_index("worker_id").loc[member, "hourly_wage"]) == 36.0


@pytest.mark.parametrize("provider", ["aspire"])
def test_aspire_a_pay_rate_is_the_wage_without_recent_time_and_time_rows_are_the_fallback(pipeline, provider):
    harness = pipeline.harness
    vendor, data = harness.vendor, harness.data
    with_time = [w for w in data.workers if any(s.worker_id == w.id and not s.is_drive for s in data.shifts)]
    no_time, no_rate, neither = with_time[0], with_time[1], with_time[2]
    for worker in (no_time, neither):  # every work ticket time of theirs is gone
        for time_id in [
            t["WorkTicketTimeID"] for t in vendor.records("WorkTicketTimes") if t["ContactID"] == worker.id
        ]:
            vendor.delete_work_ticket_time(time_id)
    for worker in (no_rate, neither):  # their pay rates are gone
        for rate_id in [r["PayRateID"] for r in vendor.records("PayRates") if r["ContactID"] == worker.id]:
            vendor.delete_pay_rate(rate_id)
    before = len(harness.emulator.request_log)
    pipeline.sync()
    workers = pipeline.tables()["workers"].set_index("worker_id")["hourly_wage"]
    assert float(workers[str(no_time.id)]) == float(no_time.hourly_wage)  # the pay rate in force today
    assert float(workers[str(no_rate.id)]) == float(no_rate.hourly_wage)  # BaseHourlyRate of their latest time
    assert pd.isna(workers[str(neither.id)])
    # The time rows were read for the two employees without a pay rate only.
    fallback = [
        e
        for e in harness.emulator.request_log[before:]
        if e.path == "/WorkTicketTimes" and "BaseHourlyRate" in e.query.get("$select", "")
    ]
    assert len(fallback) == 1
    assert {f"ContactID eq {w.id}" in fallback[0].query["$filter"] for w in (no_rate, neither, no_time)} == {
        True,
        False,
    }
    wages = pipeline.tables()["worker_wages"]
    assert set(wages["worker_id"]) == {str(w.id) for w in data.workers} - {str(no_rate.id), str(neither.id)}


@pytest.mark.parametrize("provider", ["aspire"])
def test_jobs_and_their_task_lines_are_written_together_or_not_at_all(pipeline, provider):
    pipeline.sync()
    before = pipeline.tables()
    ticket = pipeline.harness.vendor.records("WorkTickets")[0]
    pipeline.harness.vendor.edit_work_ticket(ticket["WorkTicketID"], HoursEst=(ticket["HoursEst"] or 0) + 40)

    def services_down(request, answer_vendor):
        if request.path == "/OpportunityServices":
            return Answer(503, {"Message": "Service Unavailable"})
        return answer_vendor(request)

    install(pipeline.emulator, services_down)
    with pytest.raises(SyncFailed, match="OpportunityServices"):
        pipeline.sync()
    after = pipeline.tables()
    for name in ("jobs", "task_lines", "job_assignments", "rejected_rows"):
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)  # the new ticket budget is not half-written
