"""Aspire records -> cleaned workers, jobs and attendance, against the generator's ground truth.

Records come from the emulator's company state (exactly what the API serves); ``CompanyData`` is
the independent answer key. The source test runs the whole path over real HTTP.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.mapping.aspire import (
    CLOCK_ENTRY_PREFIX,
    DRIVE_JOB_ID,
    MILESTONE_PREFIX,
    Zones,
    branch_zones,
    employees_to_workers,
    iana_zone,
    latest_wages,
    opportunities_to_jobs,
    ticket_targets,
    times_to_attendance,
)
from protiv_dagster.resources.aspire import AspireResource
from protiv_dagster.sandbox.aspire import AspireCompany, AspireEmulator
from protiv_dagster.sandbox.generator import CompanyData, generate_company
from protiv_dagster.schemas import Attendance, Job, Worker, no_rejects, split_valid
from protiv_dagster.sources.aspire import AspireSource

COMPANY = "acme"


def validate(rows: pd.DataFrame, model: Any, record_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    if rows.empty:
        return rows, no_rejects()
    return split_valid(rows, model, record_id)


@dataclass
class Cleaned:
    workers: pd.DataFrame
    jobs: pd.DataFrame
    attendance: pd.DataFrame
    mapping_aside: pd.DataFrame
    validation_aside: pd.DataFrame
    clock_without_row: int


def hosted(data: CompanyData) -> AspireCompany:
    emulator = AspireEmulator()
    emulator.add_company(data)
    return emulator.company(data.company_id)


def clean(company: AspireCompany, times: list[dict[str, Any]] | None = None, clocks: list[dict[str, Any]] | None = None,
          zones: Zones | None = None) -> Cleaned:
    zones = zones or branch_zones(company.records("Branches"))
    contacts = [c for c in company.records("Contacts") if c["ContactTypeName"] == "Employee"]
    times = company.records("WorkTicketTimes") if times is None else times
    clocks = company.records("ClockTimes") if clocks is None else clocks
    workers, workers_aside = employees_to_workers(contacts, latest_wages(times), zones, COMPANY)
    workers, _ = validate(workers, Worker, "worker_id")
    tickets = company.records("WorkTickets")
    jobs, jobs_aside = opportunities_to_jobs(company.records("Opportunities"), tickets, zones, COMPANY)
    assert jobs_aside.empty and workers_aside.empty
    jobs, _ = validate(jobs, Job, "job_id")
    branches = {str(c["ContactID"]): str(c["BranchID"]) for c in contacts}
    rows, aside, without_row = times_to_attendance(
        times, clocks, ticket_targets(tickets), jobs, set(workers["worker_id"]), zones, branches, COMPANY
    )
    valid, rejected = validate(rows, Attendance, "entry_id")
    return Cleaned(workers, jobs, valid, aside, rejected, without_row)


@pytest.fixture(scope="module")
def data() -> CompanyData:
    # The window holds the fall-back night of 2025-11-02 in Chicago.
    return generate_company(COMPANY, seed=11, workers=30, days=21, as_of=datetime(2025, 11, 12, tzinfo=UTC), timezone="America/Chicago")


@pytest.fixture(scope="module")
def company(data) -> AspireCompany:
    return hosted(data)


@pytest.fixture(scope="module")
def cleaned(company) -> Cleaned:
    return clean(company)


# -- ground truth ---------------------------------------------------------------------------------
def test_hours_per_worker_and_local_day_equal_the_generator_including_drive(data, cleaned):
    assert cleaned.mapping_aside.empty and cleaned.validation_aside.empty
    truth: dict[tuple[str, Any], float] = defaultdict(float)
    for shift in data.shifts:
        truth[(str(shift.worker_id), shift.local_date)] += shift.duration_seconds / 3600
    got = cleaned.attendance.groupby(["worker_id", "work_date"])["hours"].sum().to_dict()
    assert set(got) == set(truth)
    for key, hours in truth.items():
        assert got[key] == pytest.approx(hours, abs=1e-4), key
    drive_truth = sum(s.duration_seconds for s in data.shifts if s.is_drive) / 3600
    drive = cleaned.attendance[cleaned.attendance["is_drive"]]
    assert drive["hours"].sum() == pytest.approx(drive_truth, abs=1e-3)
    assert set(drive["job_id"]) == {DRIVE_JOB_ID} and drive["entry_id"].str.startswith(CLOCK_ENTRY_PREFIX).all()


def test_ticket_rows_carry_the_shift_job_milestone_and_utc_times(data, cleaned):
    rows = cleaned.attendance.set_index("entry_id")
    for shift in data.shifts:
        if shift.is_drive:
            continue
        row = rows.loc[str(shift.id)]
        assert row["job_id"] == str(shift.job_id)
        expected_milestone = MILESTONE_PREFIX + str(shift.milestone_id) if shift.milestone_id else None
        assert (row["milestone_id"] if pd.notna(row["milestone_id"]) else None) == expected_milestone
        assert row["work_date"] == shift.local_date
        assert row["on_the_clock"] == shift.on_the_clock
        assert row["entry_type"] == ("manual" if shift.manual else "regular")
        if shift.start is not None:
            assert row["start_at"] == pd.Timestamp(shift.start)
        if shift.end is not None:
            assert row["end_at"] == pd.Timestamp(shift.end)
        assert row["hours"] == pytest.approx(shift.duration_seconds / 3600, abs=1e-5)


def test_workers_wages_and_terminations(data, cleaned):
    workers = cleaned.workers.set_index("worker_id")
    with_time = {s.worker_id for s in data.shifts if not s.is_drive}
    assert len(workers) == len(data.workers)
    for worker in data.workers:
        row = workers.loc[str(worker.id)]
        assert row["active"] == worker.active and row["first_name"] == worker.first_name
        assert (row["term_date"] if pd.notna(row["term_date"]) else None) == worker.term_date
        if worker.id in with_time:
            assert row["hourly_wage"] == pytest.approx(float(worker.hourly_wage)) and row["pay_interval"] == "hour"
        else:
            assert pd.isna(row["hourly_wage"])
        assert row["source_modified_at"] == pd.Timestamp(worker.modified_at)


def test_jobs_milestones_budgets_statuses_and_the_drive_job(data, cleaned):
    jobs = cleaned.jobs.set_index("job_id")
    for job in data.jobs:
        if job.is_drive:
            continue
        row = jobs.loc[str(job.id)]
        assert row["level"] == "job" and row["name"] == job.name
        assert row["status"] == job.status and row["recurring"] == job.recurring and not row["is_drive"]
        assert (None if pd.isna(row["budget_hours"]) else row["budget_hours"]) == job.budget_hours
        for milestone in data.milestones_of(job.id):
            ms = jobs.loc[MILESTONE_PREFIX + str(milestone.id)]
            assert ms["parent_job_id"] == str(job.id) and ms["level"] == "milestone" and ms["status"] == milestone.status
            assert (None if pd.isna(ms["budget_hours"]) else ms["budget_hours"]) == milestone.budget_hours
            assert ms["recurring"] == job.recurring
    drive = jobs.loc[DRIVE_JOB_ID]
    assert drive["is_drive"] and drive["name"] == "Drive Time" and drive["level"] == "job"
    assert len(jobs) == len(data.jobs) + len(data.milestones)  # the drive job stands in for the generator's


def test_counts_reconcile_across_both_feeds(company, cleaned):
    fetched = len(company.records("WorkTicketTimes")) + len(company.records("ClockTimes"))
    loaded = len(cleaned.attendance) + len(cleaned.mapping_aside) + len(cleaned.validation_aside)
    assert fetched == loaded + cleaned.clock_without_row


# -- time zones ----------------------------------------------------------------------------------
def test_dst_fall_back_shift_counts_its_real_elapsed_hours(data):
    company = hosted(data)
    contact = next(w.id for w in data.workers if w.active)
    ticket = next(iter(company.tickets))
    # 00:30 CDT -> 03:30 CST on 2025-11-02 is four real hours.
    across = company.add_work_ticket_time(ContactID=contact, WorkTicketID=ticket, StartTime="2025-11-02T00:30:00", EndTime="2025-11-02T03:30:00")
    assert across["Hours"] == pytest.approx(4.0)
    cleaned = clean(company)
    row = cleaned.attendance.set_index("entry_id").loc[str(across["WorkTicketTimeID"])]
    assert row["hours"] == pytest.approx(4.0)
    assert (row["end_at"] - row["start_at"]) == timedelta(hours=4)
    assert row["start_at"] == pd.Timestamp("2025-11-02T05:30:00Z")


def test_an_end_in_the_repeated_hour_takes_the_fold_that_matches_hours(company):
    template = company.records("WorkTicketTimes")[0]
    second_pass = dict(template, WorkTicketTimeID=1, StartTime="2025-11-01T22:00:00", EndTime="2025-11-02T01:30:00",
                       WorkTicketTimeDate="2025-11-01T00:00:00", Hours=4.5, BreakTime=0.0)
    first_pass = dict(second_pass, WorkTicketTimeID=2, Hours=3.5)
    cleaned = clean(company, times=[template, second_pass, first_pass], clocks=[])
    rows = cleaned.attendance.set_index("entry_id")
    assert rows.loc["1", "end_at"] == pd.Timestamp("2025-11-02T07:30:00Z")  # 01:30 CST
    assert rows.loc["2", "end_at"] == pd.Timestamp("2025-11-02T06:30:00Z")  # 01:30 CDT


def test_zone_names_and_precedence():
    assert iana_zone("Central Standard Time") == "America/Chicago"
    assert iana_zone("America/Denver") == "America/Denver"
    assert iana_zone("Mars Standard Time") is None
    zones = Zones({"1": "America/Denver"}, "America/Denver")
    assert zones.resolve("Eastern Standard Time", 1) == "America/New_York"
    assert zones.resolve(None, 1) == "America/Denver" and zones.resolve(None, 9) == "America/Denver"
    assert Zones({"1": "America/Denver"}, None, override="America/Phoenix").resolve("Eastern Standard Time", 1) == "America/Phoenix"


# -- bad records ----------------------------------------------------------------------------------
def test_bad_records_are_set_aside_with_reasons_and_counts_reconcile(company):
    times = company.records("WorkTicketTimes")
    clocks = company.records("ClockTimes")
    bad_times = copy.deepcopy(times[:7])
    bad_times[0]["ContactID"] = None
    bad_times[1]["WorkTicketID"] = 12345
    bad_times[2]["StartTime"] = "yesterday"
    bad_times[3]["Hours"] = "lots"
    bad_times[4]["BranchTimeZone"] = "Mars Standard Time"
    bad_times[4]["BranchID"] = 99
    bad_times[5]["LastModifiedDateTime"] = None
    bad_times[6]["Hours"] = 30.0  # passes mapping, fails the model's 24 h check
    bad_clocks = copy.deepcopy(clocks[:2])
    bad_clocks[0]["ClockStart"] = None
    bad_clocks[1]["ContactID"] = 999
    all_times = bad_times + times[7:]
    all_clocks = bad_clocks + clocks[2:]
    zones = Zones({"1": "America/Chicago"}, None)
    cleaned = clean(company, all_times, all_clocks, zones)
    reasons = dict(zip(cleaned.mapping_aside["record_id"], cleaned.mapping_aside["reason"]))
    assert "ContactID is missing" in reasons[str(bad_times[0]["WorkTicketTimeID"])]
    assert "not a known work ticket" in reasons[str(bad_times[1]["WorkTicketTimeID"])]
    assert "StartTime" in reasons[str(bad_times[2]["WorkTicketTimeID"])]
    assert "Hours" in reasons[str(bad_times[3]["WorkTicketTimeID"])]
    assert "time zone" in reasons[str(bad_times[4]["WorkTicketTimeID"])]
    assert "LastModifiedDateTime" in reasons[str(bad_times[5]["WorkTicketTimeID"])]
    assert "ClockStart" in reasons[str(bad_clocks[0]["ClockTimeID"])]
    assert "not a known employee" in reasons[str(bad_clocks[1]["ClockTimeID"])]
    assert list(cleaned.validation_aside["record_id"]) == [str(bad_times[6]["WorkTicketTimeID"])]
    fetched = len(all_times) + len(all_clocks)
    assert fetched == len(cleaned.attendance) + len(cleaned.mapping_aside) + len(cleaned.validation_aside) + cleaned.clock_without_row
    assert not cleaned.attendance["entry_id"].isin([str(t["WorkTicketTimeID"]) for t in bad_times]).any()


def test_bad_opportunities_and_tickets_are_set_aside(company):
    zones = branch_zones(company.records("Branches"))
    opportunities = copy.deepcopy(company.records("Opportunities"))
    tickets = copy.deepcopy(company.records("WorkTickets"))
    opportunities[0]["OpportunityStatusName"] = "Dreaming"
    multi = next(t for t in tickets if sum(x["OpportunityID"] == t["OpportunityID"] for x in tickets) > 1)
    multi["HoursEst"] = "many"
    rows, aside = opportunities_to_jobs(opportunities, tickets, zones, COMPANY)
    reasons = dict(zip(aside["record_id"], aside["reason"]))
    assert "OpportunityStatusName" in reasons[str(opportunities[0]["OpportunityID"])]
    assert "HoursEst" in reasons[str(multi["WorkTicketID"])]
    assert str(opportunities[0]["OpportunityID"]) not in set(rows["job_id"])
    # Tickets of the set-aside opportunity are set aside too, each with its reason.
    orphaned = [t for t in tickets if t["OpportunityID"] == opportunities[0]["OpportunityID"]]
    for ticket in orphaned:
        if str(ticket["WorkTicketID"]) in reasons:
            assert "not a known opportunity" in reasons[str(ticket["WorkTicketID"])]


def test_an_employee_filter_miss_is_set_aside(company):
    zones = branch_zones(company.records("Branches"))
    contacts = company.records("Contacts")
    rows, aside = employees_to_workers(contacts, {}, zones, COMPANY)
    assert len(rows) + len(aside) == len(contacts)
    assert set(aside["reason"]) == {"ContactTypeName is not 'Employee'"}


# -- the source over HTTP ------------------------------------------------------------------------
def test_source_end_to_end_over_http(data):
    with AspireEmulator() as emulator:
        client_id, secret = emulator.add_company(data)
        connection = SimpleNamespace(
            company_id=COMPANY, base_url=emulator.base_url, settings=CompanySettings(timezone=None),
            credentials=lambda: {"client_id": client_id, "secret": secret},
        )
        source = AspireSource(connection, AspireResource(page_size=200))
        assert source.provider == "aspire" and source.live_feed == "WorkTicketTimes"
        workers, jobs = source.workers(), source.jobs()
        assert workers.set_aside.empty and jobs.set_aside.empty
        feeds = source.time_entry_feeds(data.first_local_date, data.last_local_date)
        assert set(feeds) == {"WorkTicketTimes", "ClockTimes"}
        mapped = source.attendance(feeds, jobs.rows, workers.rows["worker_id"])
        assert mapped.set_aside.empty and mapped.removed_as_deleted == 0
        assert mapped.rows["hours"].sum() == pytest.approx(sum(s.duration_seconds for s in data.shifts) / 3600, abs=1e-3)
        assert len(feeds["WorkTicketTimes"]) + len(feeds["ClockTimes"]) == len(mapped.rows) + source.clock_times_without_row
        assert source.request_count == emulator.request_count
        # The company's own zone setting overrides the branch zone.
        connection.settings = CompanySettings(timezone="America/New_York")
        eastern = AspireSource(connection, AspireResource())
        shifted = eastern.attendance(feeds, jobs.rows, workers.rows["worker_id"]).rows.set_index("entry_id")
        central = mapped.rows.set_index("entry_id")
        timed = central["start_at"].notna()
        assert ((central.loc[timed, "start_at"] - shifted.loc[central.index[timed], "start_at"]) == timedelta(hours=1)).all()


def test_property_and_division_of_the_opportunity_reach_the_job(company, cleaned):
    opportunities = company.records("Opportunities")
    jobs = cleaned.jobs.set_index("job_id")
    for opportunity in opportunities[:5]:
        row = jobs.loc[str(opportunity["OpportunityID"])]
        assert row["property_id"] == opportunity["PropertyName"].strip()  # the emulator sends no PropertyID
        assert pd.isna(row["service_type"]) and pd.isna(row["budget_type"]) and pd.isna(row["budget_amount"])
    milestones = cleaned.jobs[cleaned.jobs["level"] == "milestone"]
    assert milestones["property_id"].isna().all()  # the ProPay engine takes the job's

    zones = branch_zones(company.records("Branches"))
    given = copy.deepcopy(opportunities[:1])
    given[0] |= {"PropertyID": 4711, "DivisionName": " Maintenance "}
    rows, aside = opportunities_to_jobs(given, [], zones, COMPANY)
    row = rows.set_index("job_id").loc[str(given[0]["OpportunityID"])]
    assert aside.empty and (row["property_id"], row["service_type"]) == ("4711", "Maintenance")


def test_a_duplicated_opportunity_id_is_mapped_without_error(company):
    zones = branch_zones(company.records("Branches"))
    opportunities = copy.deepcopy(company.records("Opportunities"))
    tickets = copy.deepcopy(company.records("WorkTickets"))
    twin = next(o for o in opportunities if sum(t["OpportunityID"] == o["OpportunityID"] for t in tickets) > 1)
    opportunities.append(copy.deepcopy(twin))
    rows, _ = opportunities_to_jobs(opportunities, tickets, zones, COMPANY)
    twin_id = str(twin["OpportunityID"])
    # Both twins reach validation, whose uniqueness check sets them aside with the reason.
    assert (rows["job_id"] == twin_id).sum() == 2
    assert not rows.loc[rows["parent_job_id"] == twin_id, "recurring"].any()  # no twin's flag picked
    valid, rejected = split_valid(rows, Job, "job_id")
    assert twin_id not in set(valid["job_id"])
    assert rejected.loc[rejected["record_id"] == twin_id, "reason"].str.contains("unique").all()


def test_the_single_ticket_of_an_opportunity_set_aside_for_unstorable_text_is_set_aside_too(company):
    # Found by hypothesis: the ticket was counted as merged into a job that never reached the rows.
    zones = branch_zones(company.records("Branches"))
    opportunities = copy.deepcopy(company.records("Opportunities"))
    tickets = copy.deepcopy(company.records("WorkTickets"))
    lone = next(o for o in opportunities if sum(t["OpportunityID"] == o["OpportunityID"] for t in tickets) == 1)
    ticket = next(t for t in tickets if t["OpportunityID"] == lone["OpportunityID"])
    lone["OpportunityID"] = ticket["OpportunityID"] = "\ud800"
    rows, aside = opportunities_to_jobs(opportunities, tickets, zones, COMPANY)
    reasons = dict(zip(aside["record_id"], aside["reason"]))
    assert "cannot store" in reasons["\\ud800"]
    assert "opportunity that was set aside" in reasons[str(ticket["WorkTicketID"])]
    jobs_out = ((rows["level"] == "job") & (rows["job_id"] != DRIVE_JOB_ID)).sum()
    opportunities_aside = aside["record"].str.contains('"OpportunityName"').sum()
    assert jobs_out + opportunities_aside == len(opportunities)
