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
from protiv_dagster.mapping.busybusy import (
    drive_cost_code_ids,
    members_to_workers,
    projects_to_jobs,
    time_entries_to_attendance,
    wage_histories,
    wages_on,
)
from protiv_dagster.resources.busybusy import BusyBusyResource
from protiv_dagster.sandbox.busybusy import WAGE_RAISE, BusyBusyCompany, BusyBusyEmulator
from protiv_dagster.sandbox.generator import PAY_SALARIED, STATUS_OPEN, CompanyData, generate_company
from protiv_dagster.schemas import Attendance, Job, Worker, split_valid
from protiv_dagster.sources.busybusy import BusyBusySource

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
    jobs, jobs_aside = projects_to_jobs(
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
        entries, jobs, workers["worker_id"], COMPANY, ZONE, company.frozen_now,
        drive_cost_code_ids(company.records("costCodes"), SETTINGS),
    )
    valid, invalid = split_valid(rows, Attendance, "entry_id") if len(rows) else (rows, rows)
    return Cleaned(
        workers, jobs, valid,
        {"workers": pd.concat([workers_aside, workers_invalid]), "jobs": pd.concat([jobs_aside, jobs_invalid]),
         "attendance": pd.concat([entries_aside, invalid])},
        removed, len(entries),
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


def test_wage_effective_on_the_work_date(company, data, cleaned):
    histories = wage_histories(company.records("members"), COMPANY, ZONE)
    assert histories["hourly_wage"].lt(99).all()  # the deleted 99.99 mistakes are not wages
    raised = histories.groupby("worker_id").filter(lambda g: len(g) == 2)
    assert len(raised)
    raise_day = data.first_local_date + timedelta(days=data.days // 2)
    rows = cleaned.attendance[cleaned.attendance["worker_id"].isin(raised["worker_id"])]
    wages = wages_on(histories, rows["worker_id"], rows["work_date"])
    current = cleaned.workers.set_index("worker_id")["hourly_wage"]
    for worker_id, day, wage in zip(rows["worker_id"], rows["work_date"], wages):
        expected = current[worker_id] - (float(WAGE_RAISE) if day < raise_day else 0)
        assert wage == pytest.approx(expected), (worker_id, day)
    assert (rows["work_date"] < raise_day).any() and (rows["work_date"] >= raise_day).any()


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
    work = next(e for e in entries if e["costCodeId"] and e["costCodeId"] != company.drive_cost_code_id and not e["deletedOn"])
    moved = [{**work, "costCodeId": company.drive_cost_code_id}]
    result = clean(company, moved)
    assert result.attendance["is_drive"].tolist() == [True]


def test_dst_fall_back_counts_real_elapsed_hours():
    data = generate_company(COMPANY, seed=1, workers=5, days=7, as_of=datetime(2026, 11, 3, 12, tzinfo=UTC), timezone=ZONE)
    company = hosted(data)
    shift = next(s for s in data.shifts if not s.is_drive)
    # 00:30 MDT to 03:30 MST on 1 November 2026: 3 hours on the wall clock, 4 hours worked.
    start = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)
    entry = company.add_time_entry(company.member_id(shift.worker_id), company.project_id(shift.job_id),
                                   start, start + timedelta(hours=4))
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
        0: "memberId is missing", 1: "projectId is not a known", 2: "startTime", 3: "endTime is before startTime",
        4: "breaks are malformed", 5: "deletedOn", 6: "memberId is not a known worker", 7: "updatedOn",
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
    jobs, aside = projects_to_jobs(projects, [], [], SETTINGS, COMPANY)
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
        source = BusyBusySource(connection, BusyBusyResource(page_size=200))
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
        assert len(source.wage_history()) >= len(data.workers)


def test_source_needs_a_timezone(data):
    with BusyBusyEmulator() as emulator:
        username, password = emulator.add_company(data)
        connection = FakeConnection(COMPANY, emulator.rest_url, CompanySettings(), {"username": username, "password": password})
        with pytest.raises(ValueError, match="timezone"):
            BusyBusySource(connection, BusyBusyResource()).time_entry_feeds(date(2026, 11, 1), date(2026, 11, 7))


def test_cost_budget_is_the_budget_amount_only_for_an_amount_company(company):
    projects, hours, costs = company.records("projects"), company.records("budgetHours"), company.records("budgetCosts")
    hours_company, _ = projects_to_jobs(projects, hours, costs, SETTINGS, COMPANY)
    assert hours_company["budget_amount"].isna().all() and hours_company["budget_type"].isna().all()
    amount_settings = CompanySettings(timezone=ZONE, default_budget_type="amount")
    amount_company, _ = projects_to_jobs(projects, hours, costs, amount_settings, COMPANY)
    jobs, rejected = split_valid(amount_company, Job, "job_id")
    assert rejected.empty
    with_cost = amount_company["budget_cost"].notna()
    assert with_cost.any()
    assert (jobs.set_index("job_id")["budget_amount"].dropna() > 0).all()
    assert amount_company.loc[with_cost, "budget_amount"].tolist() == amount_company.loc[with_cost, "budget_cost"].tolist()
    for column in ("contract_price", "labor_budget_percent", "rate", "quantity", "service_type", "property_id"):
        assert jobs[column].isna().all(), column
