"""BusyBusy records -> cleaned workers, jobs and attendance, checked against the generator's ground truth.

The records come from the emulator's company state (exactly what GraphQL serves); the generator's
``CompanyData`` is the independent answer key. The last tests run the ``BusyBusySource`` over real
HTTP, the way the assets use it.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.schemas import Attendance, Job, TaskLine, Worker, WorkerWage, split_valid
from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.busybusy.mapping import (
    budgets_to_task_lines,
    drive_cost_code_ids,
    members_to_wages,
    members_to_workers,
    project_units,
    projects_to_jobs,
    time_entries_to_attendance,
    wages_on,
)
from protiv_dagster.vendors.busybusy.source import BusyBusySource
from protiv_emulators.busybusy import COST_PER_BUDGET_HOUR, BusyBusyCompany, BusyBusyEmulator
from protiv_emulators.generator import PAY_SALARIED, STATUS_OPEN, CompanyData, generate_company

COMPANY = "acme"
ZONE = "America/Denver"
SETTINGS = CompanySettings(timezone=ZONE)
AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


def hosted(data: CompanyData) -> BusyBusyCompany:
    emulator = BusyBusyEmulator()
    emulator.add_company(data)
    return emulator.company(data.company_id)


@pytest.fixture(scope="module")
def data() -> CompanyData:
    return generate_company(COMPANY, seed=1, workers=30, days=28, as_of=AS_OF, timezone=ZONE)


@pytest.fixture(scope="module")
def company(data) -> BusyBusyCompany:
    return hosted(data)


@dataclass
class Cleaned:
    workers: pd.DataFrame
    jobs: pd.DataFrame
    attendance: pd.DataFrame
    aside: dict[str, pd.DataFrame] = field(default_factory=dict)
    removed: int = 0
    fetched: int = 0


def clean(company: BusyBusyCompany, entries: list[dict[str, Any]] | None = None) -> Cleaned:
    members = company.records("members")
    workers, workers_aside = members_to_workers(members, COMPANY, ZONE, now=company.frozen_now)
    workers, workers_invalid = split_valid(workers, Worker, "worker_id")
    jobs, jobs_aside, _ = projects_to_jobs(
        company.records("projects"),
        [b for b in company.records("budgetHours") if b["isLatest"]],
        company.records("budgetCosts"),
        SETTINGS,
        COMPANY,
    )
    jobs_with_cost = jobs
    jobs, jobs_invalid = split_valid(jobs, Job, "job_id")
    jobs = jobs.merge(jobs_with_cost[["job_id", "budget_cost"]], on="job_id")
    entries = company.records("timeEntries") if entries is None else entries
    rows, entries_aside, removed = time_entries_to_attendance(
        entries,
        jobs,
        workers["worker_id"],
        COMPANY,
        ZONE,
        company.frozen_now,
        drive_cost_code_ids(company.records("costCodes"), SETTINGS),
    )
    valid, invalid = split_valid(rows, Attendance, "entry_id") if len(rows) else (rows, rows)
    return Cleaned(
        workers,
        jobs,
        valid,
        {
            "workers": pd.concat([workers_aside, workers_invalid]),
            "jobs": pd.concat([jobs_aside, jobs_invalid]),
            "attendance": pd.concat([entries_aside, invalid]),
        },
        removed,
        len(entries),
    )


@pytest.fixture(scope="module")
def cleaned(company) -> Cleaned:
    return clean(company)


def test_counts_reconcile_and_nothing_is_set_aside(cleaned, data):
    assert all(len(frame) == 0 for frame in cleaned.aside.values()), cleaned.aside
    assert cleaned.fetched == len(cleaned.attendance) + len(cleaned.aside["attendance"]) + cleaned.removed
    assert cleaned.removed == len(data.deleted_shifts)
    assert len(cleaned.attendance) == len(data.shifts)
    assert len(cleaned.workers) == len(data.workers)
    assert len(cleaned.jobs) == len(data.jobs) + len(data.milestones)


def test_hours_per_worker_and_local_day_equal_the_ground_truth(cleaned, data, company):
    truth: dict[tuple[str, date], float] = defaultdict(float)
    for shift in data.shifts:  # drive included
        truth[(company.member_id(shift.worker_id), shift.local_date)] += shift.duration_seconds / 3600
    got = cleaned.attendance.groupby(["worker_id", "work_date"])["hours"].sum().to_dict()
    assert set(got) == set(truth)
    for key, hours in truth.items():
        assert got[key] == pytest.approx(hours, abs=1e-9), key


def test_each_entry_maps_like_its_shift(cleaned, data, company):
    by_id = cleaned.attendance.set_index("entry_id")
    for shift in data.shifts:
        row = by_id.loc[company.entry_id(shift.id)]
        assert row["job_id"] == company.project_id(shift.job_id)
        if shift.milestone_id:
            assert row["milestone_id"] == company.project_id(shift.milestone_id)
        else:
            assert pd.isna(row["milestone_id"])
        assert row["is_drive"] == shift.is_drive
        assert row["on_the_clock"] == shift.on_the_clock
        assert row["entry_type"] == ("manual" if shift.manual else "regular")
        assert row["work_date"] == shift.local_date
        if shift.start is not None:
            assert row["start_at"] == pd.Timestamp(shift.start)


def test_breaks_are_subtracted(cleaned, data, company):
    with_break = [s for s in data.shifts if s.breaks and s.end]
    assert with_break
    by_id = cleaned.attendance.set_index("entry_id")
    for shift in with_break[:20]:
        row = by_id.loc[company.entry_id(shift.id)]
        elapsed = (shift.end - shift.start).total_seconds()
        lunch = sum((e - s).total_seconds() for s, e in shift.breaks)
        assert row["hours"] * 3600 == pytest.approx(elapsed - lunch)
        assert lunch > 0 and row["hours"] * 3600 < elapsed


def test_running_entry_counts_up_to_the_vendor_clock(cleaned, data, company):
    shift = data.on_the_clock_shift
    row = cleaned.attendance.set_index("entry_id").loc[company.entry_id(shift.id)]
    assert row["on_the_clock"] and pd.isna(row["end_at"])
    assert row["hours"] == pytest.approx((data.as_of - shift.start).total_seconds() / 3600)
    assert row["hours"] == pytest.approx(shift.duration_seconds / 3600)


def test_workers_equal_the_ground_truth(cleaned, data, company):
    by_id = cleaned.workers.set_index("worker_id")
    for worker in data.workers:
        row = by_id.loc[company.member_id(worker.id)]
        assert row["active"] == worker.active
        assert row["first_name"] == worker.first_name and row["last_name"] == worker.last_name
        if worker.pay_interval == PAY_SALARIED:
            assert row["pay_interval"] == "year"
            assert row["hourly_wage"] == pytest.approx(float(worker.annual_salary) / 2080, abs=1e-4)
        else:
            assert row["pay_interval"] == "hour"
            assert row["hourly_wage"] == pytest.approx(float(worker.hourly_wage))
        if not worker.active and worker.term_date:
            assert row["term_date"] == worker.term_date


def test_wage_histories_equal_the_ground_truth_and_give_the_wage_of_each_work_date(company, data, cleaned):
    histories, aside, deleted, superseded = members_to_wages(
        company.records("members"), cleaned.workers["worker_id"], COMPANY, ZONE
    )
    histories, invalid = split_valid(histories, WorkerWage, "worker_id")
    assert aside.empty and invalid.empty and superseded == 0
    assert deleted == sum(1 for m in company.records("members") for w in m["wageHistories"] if w["deletedOn"])
    assert deleted > 0 and histories["hourly_wage"].lt(99).all()  # the deleted 99.99 mistakes are not wages
    expected = sorted(
        (company.member_id(w.id), change.effective_date, float(change.hourly_wage))
        for w in data.workers
        for change in w.wage_history
    )
    got = sorted(zip(histories["worker_id"], histories["effective_date"], histories["hourly_wage"].astype(float)))
    assert [(w, d) for w, d, _ in got] == [(w, d) for w, d, _ in expected]
    assert [h for _, _, h in got] == pytest.approx([h for _, _, h in expected])
    raised = [w for w in data.workers if len(w.wage_history) == 2]
    assert raised, "some workers got a raise a few days ago"
    rows = cleaned.attendance[cleaned.attendance["worker_id"].isin({company.member_id(w.id) for w in raised})]
    wages = wages_on(histories, rows["worker_id"], rows["work_date"])
    by_member = {company.member_id(w.id): w for w in raised}
    for worker_id, day, wage in zip(rows["worker_id"], rows["work_date"], wages):
        assert wage == pytest.approx(float(by_member[worker_id].wage_on(day))), (worker_id, day)
    raise_days = {company.member_id(w.id): w.wage_history[1].effective_date for w in raised}
    before = [day < raise_days[w] for w, day in zip(rows["worker_id"], rows["work_date"])]
    assert any(before) and not all(before)  # time at the old wage and at the new one


def test_jobs_equal_the_ground_truth(cleaned, data, company):
    by_id = cleaned.jobs.set_index("job_id")
    for job in data.jobs:
        row = by_id.loc[company.project_id(job.id)]
        assert row["level"] == "job" and pd.isna(row["parent_job_id"])
        assert row["name"] == job.name
        assert row["is_drive"] == job.is_drive
        assert (row["status"] == "open") == (job.status == STATUS_OPEN)
        if job.budget_hours is None:
            assert pd.isna(row["budget_hours"])
        else:
            assert row["budget_hours"] == pytest.approx(job.budget_hours)
            assert row["budget_cost"] > 0
    for milestone in data.milestones:
        row = by_id.loc[company.project_id(milestone.id)]
        assert row["level"] == "milestone" and row["parent_job_id"] == company.project_id(milestone.job_id)
        if milestone.budget_hours is not None:
            assert row["budget_hours"] == pytest.approx(milestone.budget_hours)


def test_drive_cost_code_marks_drive_time_on_any_project(company, data):
    entries = company.records("timeEntries")
    work = next(
        e for e in entries if e["costCodeId"] and e["costCodeId"] != company.drive_cost_code_id and not e["deletedOn"]
    )
    moved = [{**work, "costCodeId": company.drive_cost_code_id}]
    result = clean(company, moved)
    assert result.attendance["is_drive"].tolist() == [True]


def test_dst_fall_back_counts_real_elapsed_hours():
    data = generate_company(
        COMPANY, seed=1, workers=5, days=7, as_of=datetime(2026, 11, 3, 12, tzinfo=UTC), timezone=ZONE
    )
    company = hosted(data)
    shift = next(s for s in data.shifts if not s.is_drive)
    # 00:30 MDT to 03:30 MST on 1 November 2026: 3 hours on the wall clock, 4 hours worked.
    start = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    entry = company.add_time_entry(
        company.member_id(shift.worker_id), company.project_id(shift.job_id), start, start + timedelta(hours=4)
    )
    result = clean(company)
    row = result.attendance.set_index("entry_id").loc[entry["id"]]
    assert row["hours"] == pytest.approx(4.0)
    assert row["work_date"] == date(2026, 11, 1)


def test_bad_records_are_set_aside_with_reasons(company):
    entries = [e for e in company.records("timeEntries") if not e["deletedOn"] and e["endTime"]][:9]
    bad = copy.deepcopy(entries)
    bad[0]["memberId"] = None
    bad[1]["projectId"] = "00000000-0000-0000-0000-000000000000"
    bad[2]["startTime"] = "not a time"
    bad[3]["endTime"] = "2001-01-01T00:00:00Z"
    bad[4]["breaks"] = [{"startTime": "later", "endTime": None}]
    bad[5]["deletedOn"] = "yesterday-ish"
    bad[6]["memberId"] = "11111111-1111-1111-1111-111111111111"
    bad[7]["updatedOn"] = None
    result = clean(company, bad)
    aside = result.aside["attendance"].set_index("record_id")["reason"]
    expected = {
        0: "memberId is missing",
        1: "projectId is not a known",
        2: "startTime",
        3: "endTime is before startTime",
        4: "breaks are malformed",
        5: "deletedOn",
        6: "memberId is not a known worker",
        7: "updatedOn",
    }
    for index, fragment in expected.items():
        assert fragment in aside[bad[index]["id"]], (index, aside[bad[index]["id"]])
    assert result.attendance["entry_id"].tolist() == [bad[8]["id"]]
    assert result.fetched == len(result.attendance) + len(result.aside["attendance"]) + result.removed


def test_bad_members_and_projects_are_set_aside(company):
    members = copy.deepcopy(company.records("members")[:3])
    members[0]["wageHistories"][0]["wageRate"] = 99
    members[1]["updatedOn"] = "garbage"
    workers, aside = members_to_workers(members, COMPANY, ZONE, now=company.frozen_now)
    assert len(workers) == 1 and len(aside) == 2
    assert "wageRate" in aside["reason"].iloc[0] and "updatedOn" in aside["reason"].iloc[1]
    projects = copy.deepcopy(company.records("projects")[:3])
    projects[0]["depth"] = 3
    projects[1]["title"] = ""
    jobs, aside, _ = projects_to_jobs(projects, [], [], SETTINGS, COMPANY)
    assert len(jobs) == 1 and len(aside) == 2
    assert "depth" in aside["reason"].iloc[0] and "title" in aside["reason"].iloc[1]


def test_empty_feed_maps_to_nothing():
    rows, aside, removed = time_entries_to_attendance([], pd.DataFrame(), [], COMPANY, ZONE, AS_OF)
    assert len(rows) == 0 and len(aside) == 0 and removed == 0


# -- the source, over real HTTP ------------------------------------------------------------------------
@dataclass
class FakeConnection:
    company_id: str
    base_url: str
    settings: CompanySettings
    secrets: dict[str, str]

    def credentials(self) -> dict[str, str]:
        return dict(self.secrets)


def test_source_end_to_end(data):
    with BusyBusyEmulator() as emulator:
        username, password = emulator.add_company(data)
        connection = FakeConnection(COMPANY, emulator.rest_url, SETTINGS, {"username": username, "password": password})
        source = BusyBusySource(connection, BusyBusyTuning(page_size=200))
        assert source.provider == "busybusy" and source.live_feed == "timeEntries"
        workers = source.workers()
        jobs = source.jobs()
        valid_workers, _ = split_valid(workers.rows, Worker, "worker_id")
        valid_jobs, _ = split_valid(jobs.rows, Job, "job_id")
        feeds = source.time_entry_feeds(data.first_local_date, data.last_local_date)
        assert feeds["vendorClock"] == [{"id": "vendorClock", "now": "2026-11-20T00:00:00Z"}]
        mapped = source.attendance(feeds, valid_jobs, valid_workers["worker_id"])
        assert len(feeds["timeEntries"]) == len(mapped.rows) + len(mapped.set_aside) + mapped.removed_as_deleted
        assert len(mapped.set_aside) == 0 and mapped.removed_as_deleted == len(data.deleted_shifts)
        assert mapped.rows["hours"].sum() == pytest.approx(sum(s.duration_seconds for s in data.shifts) / 3600)
        assert source.request_count == emulator.request_count
        wages = source.worker_wages(valid_workers["worker_id"])
        assert len(wages.rows) == sum(len(w.wage_history) for w in data.workers)
        assert wages.fetched_count == len(wages.rows) + wages.removed_as_deleted and wages.removed_as_deleted > 0
        lines = source.task_lines(valid_jobs["job_id"])
        assert len(lines.rows) == len(data.task_lines) and lines.set_aside.empty
        assert source.job_assignments(valid_jobs["job_id"]).fetched_count == 0
        # Members and budgets are read once for both tables; cost codes for the line items' names.
        assert [r.operation for r in emulator.request_log].count("members") == 1


def test_source_needs_a_timezone(data):
    with BusyBusyEmulator() as emulator:
        username, password = emulator.add_company(data)
        connection = FakeConnection(
            COMPANY, emulator.rest_url, CompanySettings(), {"username": username, "password": password}
        )
        with pytest.raises(ValueError, match="timezone"):
            BusyBusySource(connection, BusyBusyTuning()).time_entry_feeds(date(2026, 11, 1), date(2026, 11, 7))


def test_cost_budget_is_the_budget_amount_only_for_an_amount_company(company):
    projects, hours, costs = company.records("projects"), company.records("budgetHours"), company.records("budgetCosts")
    hours_company, _, _ = projects_to_jobs(projects, hours, costs, SETTINGS, COMPANY)
    assert hours_company["budget_amount"].isna().all() and hours_company["budget_type"].isna().all()
    amount_settings = CompanySettings(timezone=ZONE, default_budget_type="amount")
    amount_company, _, _ = projects_to_jobs(projects, hours, costs, amount_settings, COMPANY)
    jobs, rejected = split_valid(amount_company, Job, "job_id")
    assert rejected.empty
    with_cost = amount_company["budget_cost"].notna()
    assert with_cost.any()
    assert (jobs.set_index("job_id")["budget_amount"].dropna() > 0).all()
    assert (
        amount_company.loc[with_cost, "budget_amount"].tolist() == amount_company.loc[with_cost, "budget_cost"].tolist()
    )
    for column in ("contract_price", "labor_budget_percent", "rate", "quantity", "service_type", "property_id"):
        assert jobs[column].isna().all(), column


# -- line items, creation dates and wage histories ------------------------------------------------------
def test_task_lines_created_dates_and_entry_cost_codes_equal_the_ground_truth(company, data, cleaned):
    lines, aside = budgets_to_task_lines(
        company.records("budgetHours"),
        company.records("budgetCosts"),
        company.records("costCodes"),
        cleaned.jobs["job_id"],
        COMPANY,
    )
    lines, invalid = split_valid(lines, TaskLine, "task_id")
    assert aside.empty and invalid.empty and data.task_lines
    got = {(r.job_id, r.task_id): (r.name, r.budget_hours, float(r.budget_amount)) for r in lines.itertuples()}
    assert got == {
        (company.project_id(t.job_id), company.task_cost_code_id(t.id)): (
            t.name,
            t.budget_hours,
            round(t.budget_hours * COST_PER_BUDGET_HOUR, 2),
        )
        for t in data.task_lines
    }
    # A job whose line items are its only own budget rows has no budget of its own (they are not added up).
    for task in data.task_lines:
        assert pd.isna(cleaned.jobs.set_index("job_id").loc[company.project_id(task.job_id), "budget_hours"])
    created = cleaned.jobs.set_index("job_id")["created_date"]
    for record in [*data.jobs, *data.milestones]:
        assert created[company.project_id(record.id)] == record.created_at.astimezone(data.zone).date()
    by_id = cleaned.attendance.set_index("entry_id")["task_id"]
    booked = [s for s in data.shifts if s.task_id is not None]
    assert booked
    for shift in data.shifts:
        task = by_id[company.entry_id(shift.id)]
        if shift.task_id is not None:
            assert task == company.task_cost_code_id(shift.task_id)
        elif shift.manual:
            assert pd.isna(task)
        else:
            assert task == company.cost_code_id("99-900" if shift.is_drive else "01-100")


def _project(project_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "id": project_id,
        "title": f"Project {project_id}",
        "parentProjectId": None,
        "depth": 1,
        "archivedOn": None,
        "createdOn": "2026-11-06T15:00:00Z",
        "updatedOn": "2026-11-07T15:00:00Z",
        "projectInfo": None,
        **changes,
    }


def _budget(budget_id: str, project: str, seconds: Any = None, cost: Any = None, **ids: Any) -> dict[str, Any]:
    row = {"id": budget_id, "projectId": project, "costCodeId": None, "memberId": None, "equipmentId": None, **ids}
    return {**row, "budgetSeconds": seconds} if cost is None else {**row, "costBudget": cost}


def test_a_cost_code_budget_is_a_task_line_never_part_of_the_project_budget():
    projects = [_project("p1"), _project("p2", createdOn="not a date")]
    hours = [
        _budget("h1", "p1", 60 * 3600),
        _budget("h2", "p1", 20 * 3600, costCodeId="c1"),
        _budget("h3", "p1", 5 * 3600, memberId="m1"),  # a member's budget: no labor budget of the job
        _budget("h4", "p1", 7 * 3600, equipmentId="e1"),  # an equipment budget: neither
        _budget("h5", "p1", 99 * 3600, costCodeId="c1", isLatest=False),  # an old version
        _budget("h6", "p1", "lots", costCodeId="c2"),
        _budget("h7", "p9", 3600, costCodeId="c1"),  # a project that is not a job
        _budget("h8", "p1", 30 * 3600, costCodeId="c3"),
        _budget("h9", "p1", 25 * 3600, costCodeId="c3"),  # two latest versions: the smaller counts
    ]
    costs = [
        _budget("b1", "p1", cost=1920.0),
        _budget("b2", "p1", cost=640.0, costCodeId="c1"),
        _budget("b3", "p1", cost=1e13, costCodeId="c4"),
    ]
    cost_codes = [
        {"id": "c1", "costCode": "20-100", "title": "Demolition"},
        {"id": "c3", "costCode": "20-300", "title": "  "},
    ]
    jobs, aside, _ = projects_to_jobs(projects, hours, costs, SETTINGS, COMPANY)
    assert jobs.set_index("job_id").loc["p1", "budget_hours"] == 60.0
    assert jobs.set_index("job_id").loc["p1", "budget_cost"] == 1920.0
    assert jobs.set_index("job_id").loc["p1", "created_date"] == date(2026, 11, 6)  # 08:00 in Denver
    assert aside["record_id"].tolist() == ["p2"] and "createdOn" in aside["reason"].iloc[0]
    lines, aside = budgets_to_task_lines(hours, costs, cost_codes, jobs["job_id"], COMPANY)
    lines = split_valid(lines, TaskLine, "task_id")[0].set_index("task_id")
    assert lines.loc["c1", ["job_id", "name", "budget_hours"]].tolist() == ["p1", "Demolition", 20.0]
    assert float(lines.loc["c1", "budget_amount"]) == 640.0
    assert lines.loc["c3", ["name", "budget_hours"]].tolist() == ["20-300", 25.0]  # a blank title: the code
    assert pd.isna(lines.loc["c3", "budget_amount"])
    reasons = aside.set_index("record_id")["reason"]
    assert "budgetSeconds is not a number of seconds" in reasons["p1/c2"]
    assert "projectId is not a mapped job" in reasons["p9/c1"]
    assert "beyond any $ amount" in reasons["p1/c4"]
    assert len(lines) + len(aside) == 5  # every (project, cost code) is loaded or set aside


def _history(wage: Any, change: str, rate: Any = 10, **changes: Any) -> dict[str, Any]:
    return {
        "wage": wage,
        "wageRate": rate,
        "overburden": 0.0,
        "effectiveRate": wage,
        "changeDate": change,
        "createdOn": change,
        "updatedOn": change,
        "deletedOn": None,
        **changes,
    }


def test_wage_histories_are_dated_converted_and_set_aside_with_reasons():
    members = [
        {
            "id": "m1",
            "wageHistories": [
                _history(30.0, "2026-10-01T06:00:00Z"),
                _history(36.0, "2026-11-15T07:00:00Z", overburden=12.5),
                _history(99.99, "2026-11-06T07:00:00Z", deletedOn="2026-11-06T16:00:00Z"),  # deleted: no wage
                _history(1600.0, "2026-11-17T07:00:00Z", rate=20),  # weekly: $40 an hour
                _history(41.0, "2026-11-17T22:00:00Z"),  # later the same local day: this one is the day's wage
            ],
        },
        {
            "id": "m2",
            "wageHistories": [
                _history(20.0, "later"),
                _history(20.0, "2026-11-01T06:00:00Z", rate=99),
                _history(25.0, "2026-11-02T06:00:00Z"),
                _history(26.0, "2026-11-02T06:00:00Z"),  # same moment: unknown
                _history(52000.0, "2026-11-03T07:00:00Z", rate=40),  # yearly: $25 an hour
            ],
        },
        {"id": "m3", "wageHistories": [_history(30.0, "2026-10-01T06:00:00Z")]},  # not a mapped worker
        {"id": "m4", "wageHistories": "none"},
    ]
    rows, aside, deleted, superseded = members_to_wages(members, ["m1", "m2", "m4"], COMPANY, ZONE)
    rows, invalid = split_valid(rows, WorkerWage, "worker_id")
    assert invalid.empty
    got = [(r.worker_id, r.effective_date, float(r.hourly_wage), r.pay_interval) for r in rows.itertuples()]
    assert got == [
        ("m1", date(2026, 10, 1), 30.0, "hour"),
        ("m1", date(2026, 11, 15), 36.0, "hour"),
        ("m1", date(2026, 11, 17), 41.0, "hour"),
        ("m2", date(2026, 11, 3), 25.0, "year"),
    ]
    assert rows.set_index("effective_date").loc[date(2026, 11, 15), "burden_percent"] == 12.5
    assert (deleted, superseded) == (1, 1)
    reasons = aside["reason"].tolist()
    assert sum("changeDate is missing or not ISO 8601" in r for r in reasons) == 1
    assert sum("wageRate 99" in r for r in reasons) == 1
    assert sum("same moment" in r for r in reasons) == 2
    assert sum("not a mapped worker" in r for r in reasons) == 1
    assert sum("wageHistories is not a list" in r for r in reasons) == 1
    read = sum(len(m["wageHistories"]) if isinstance(m["wageHistories"], list) else 1 for m in members)
    assert read == len(rows) + len(aside) + deleted + superseded
    wages = wages_on(
        rows,
        pd.Series(["m1"] * 4),
        pd.Series([date(2026, 9, 1), date(2026, 11, 14), date(2026, 11, 15), date(2026, 11, 19)]),
    )
    assert wages.tolist() == [30.0, 30.0, 36.0, 41.0]


# -- sub-projects nest up to 7 levels ---------------------------------------------------------------
# Patio (depth 1) > Base (2) > Gravel (3) > Layer 1 (4) > Compaction (5); Patio > Walls (2); a depth-3
# project whose parent is not listed; one whose depth disagrees with its parent chain.
NESTED = [
    _project("patio", title="Patio"),
    _project("base", title="Base", parentProjectId="patio", depth=2),
    _project("gravel", title="Gravel", parentProjectId="base", depth=3),
    _project("layer1", title="Layer 1", parentProjectId="gravel", depth=4),
    _project("compaction", title="Compaction", parentProjectId="layer1", depth=5),
    _project("walls", title="Walls", parentProjectId="patio", depth=2),
    _project("orphan", title="Orphan", parentProjectId="gone", depth=3),
    _project("liar", title="Liar", parentProjectId="base", depth=4),
]


def _entry(entry_id: str, project: str, start: str, end: str, breaks: list | None = None) -> dict[str, Any]:
    return {
        "id": entry_id,
        "memberId": "m1",
        "projectId": project,
        "costCodeId": None,
        "startTime": start,
        "endTime": end,
        "breaks": breaks or [],
        "updatedOn": "2026-11-18T01:00:00Z",
        "deletedOn": None,
    }


# Denver is UTC-7 in November: 15:00Z is 08:00 local.
NESTED_ENTRIES = [
    _entry("e-base", "base", "2026-11-16T15:00:00Z", "2026-11-16T19:00:00Z"),  # 4 h on the milestone itself
    # 08:00-16:30 with a 30-minute lunch on a depth-5 project: 8 h
    _entry(
        "e-compaction",
        "compaction",
        "2026-11-17T15:00:00Z",
        "2026-11-17T23:30:00Z",
        [{"startTime": "2026-11-17T19:00:00Z", "endTime": "2026-11-17T19:30:00Z"}],
    ),
    _entry("e-gravel", "gravel", "2026-11-18T15:00:00Z", "2026-11-18T17:15:00Z"),  # 2.25 h on depth 3
    _entry("e-patio", "patio", "2026-11-18T18:00:00Z", "2026-11-18T19:00:00Z"),  # 1 h on the job
    _entry("e-orphan", "orphan", "2026-11-19T15:00:00Z", "2026-11-19T16:00:00Z"),
]


def _nested(depth: int) -> tuple[pd.DataFrame, pd.DataFrame, int, pd.DataFrame, pd.DataFrame]:
    settings = SETTINGS.model_copy(update={"busybusy_milestone_depth": depth})
    jobs, aside, folded = projects_to_jobs(NESTED, [], [], settings, COMPANY)
    jobs = split_valid(jobs, Job, "job_id")[0]
    rows, entries_aside, _ = time_entries_to_attendance(
        NESTED_ENTRIES, jobs, ["m1"], COMPANY, ZONE, AS_OF, (), project_units(NESTED, depth)
    )
    return jobs.set_index("job_id"), aside.set_index("record_id"), folded, rows.set_index("entry_id"), entries_aside


def test_time_on_deep_sub_projects_counts_to_the_job_and_the_depth_2_milestone():
    jobs, aside, folded, rows, entries_aside = _nested(2)
    # Rows: the job and its two depth-2 milestones; gravel, layer1 and compaction have no row of their own.
    assert jobs["level"].to_dict() == {"patio": "job", "base": "milestone", "walls": "milestone"}
    assert jobs.loc[["base", "walls"], "parent_job_id"].tolist() == ["patio", "patio"]
    assert folded == 3
    assert "names no listed project" in aside.loc["orphan", "reason"]
    assert "depth 4 disagrees" in aside.loc["liar", "reason"]
    assert len(jobs) + len(aside) + folded == len(NESTED)  # every project counted once
    # Every hour belongs to the top-level project; depth 3..5 counts to the depth-2 ancestor.
    assert rows.loc[["e-base", "e-compaction", "e-gravel", "e-patio"], "job_id"].tolist() == ["patio"] * 4
    assert rows.loc[["e-base", "e-compaction", "e-gravel"], "milestone_id"].tolist() == ["base"] * 3
    assert pd.isna(rows.loc["e-patio", "milestone_id"])
    assert rows["hours"].to_dict() == {"e-base": 4.0, "e-compaction": 8.0, "e-gravel": 2.25, "e-patio": 1.0}
    # The milestone Base holds 4 + 8 + 2.25 = 14.25 hours, the job 15.25.
    assert rows.groupby("milestone_id")["hours"].sum().to_dict() == {"base": 14.25}
    assert rows["hours"].sum() == 15.25
    # Time on a project whose parent chain is broken is set aside, never counted elsewhere.
    assert entries_aside["record_id"].tolist() == ["e-orphan"]
    assert "not a known job or milestone" in entries_aside["reason"].iloc[0]


def test_the_milestone_depth_is_a_company_setting():
    jobs, aside, folded, rows, _ = _nested(3)
    # Depth 3 is the milestone: Gravel is one (of Patio, its top-level project); Base and Walls
    # (depth 2) and the depth-4 and -5 projects have no row.
    assert jobs["level"].to_dict() == {"patio": "job", "gravel": "milestone"}
    assert jobs.loc["gravel", "parent_job_id"] == "patio"
    assert folded == 4
    assert rows["job_id"].eq("patio").all()
    # Depth 5 counts to its depth-3 ancestor; time on Base (depth 2, above the milestones) is the job's.
    assert rows.loc[["e-compaction", "e-gravel"], "milestone_id"].tolist() == ["gravel", "gravel"]
    assert rows.loc[["e-base", "e-patio"], "milestone_id"].isna().all()
    assert rows.groupby("milestone_id")["hours"].sum().to_dict() == {"gravel": 10.25}
    with pytest.raises(ValueError):
        CompanySettings(busybusy_milestone_depth=8)
    with pytest.raises(ValueError):
        CompanySettings(busybusy_milestone_depth=1)


def test_a_wage_change_date_without_an_offset_is_a_company_local_date():
    # BusyBusy stamps UTC; a bare date (or wall time) is read in the company zone, not as UTC midnight
    # (which is the evening before in Denver).
    members = [{"id": "m1", "wageHistories": [_history(30.0, "2026-10-01T06:00:00Z"), _history(36.0, "2026-11-15")]}]
    rows, aside, _, _ = members_to_wages(members, ["m1"], COMPANY, ZONE)
    assert len(aside) == 0
    assert list(zip(rows["effective_date"], rows["hourly_wage"])) == [
        (date(2026, 10, 1), 30.0),
        (date(2026, 11, 15), 36.0),
    ]
    days = pd.Series([date(2026, 11, 14), date(2026, 11, 15)])
    assert wages_on(rows, pd.Series(["m1", "m1"]), days).tolist() == [30.0, 36.0]


def test_an_entry_shortened_through_its_break_keeps_the_harness_and_the_mapping_agreeing(data):
    """The test harness's ``shorten`` (a manager ending an entry earlier) used to leave a break
    hanging past the new end: its ground truth subtracted the whole break, the mapping the part
    inside the entry, and a 10,000-company benchmark flagged 2 of 500 edited companies. The edit now
    cuts the break at the new end, as the vendor's editor keeps breaks inside their entry."""
    from tests.assets.vendors import BusyBusyHarness

    harness = BusyBusyHarness(data)
    try:
        company = harness.vendor
        entry = next(
            e
            for e in company.records("timeEntries")
            if e["endTime"] and e["deletedOn"] is None and e["breaks"] and e["breaks"][-1]["endTime"]
        )
        last = entry["breaks"][-1]
        lunch_start, lunch_end = (datetime.fromisoformat(last[k]) for k in ("startTime", "endTime"))
        # The new end falls in the middle of the last break.
        cut = (datetime.fromisoformat(entry["endTime"]) - (lunch_start + (lunch_end - lunch_start) / 2)).total_seconds()
        harness.shorten(entry["id"], hours=cut / 3600)
        edited = next(e for e in company.records("timeEntries") if e["id"] == entry["id"])
        end = datetime.fromisoformat(edited["endTime"])
        assert lunch_start < end < lunch_end
        assert all(datetime.fromisoformat(b["endTime"]) <= end for b in edited["breaks"])
        assert datetime.fromisoformat(edited["breaks"][-1]["endTime"]) == end  # cut, not dropped

        truth = harness.entries().set_index("entry_id")["hours"]
        mapped = clean(company).attendance.set_index("entry_id")["hours"]
        assert mapped[entry["id"]] == pytest.approx(truth[entry["id"]], abs=1e-9)
        # Worked out by hand: the entry to its new end, less the earlier breaks and the cut one's
        # part before that end.
        start = datetime.fromisoformat(entry["startTime"])
        earlier = sum(
            (datetime.fromisoformat(b["endTime"]) - datetime.fromisoformat(b["startTime"])).total_seconds()
            for b in entry["breaks"][:-1]
        )
        by_hand = ((end - start).total_seconds() - earlier - (end - lunch_start).total_seconds()) / 3600
        assert mapped[entry["id"]] == pytest.approx(by_hand, abs=1e-9)
    finally:
        harness.stop()
