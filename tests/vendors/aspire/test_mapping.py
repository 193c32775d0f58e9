"""Aspire records -> cleaned workers, jobs and attendance, against the generator's ground truth.

Records come from the emulator's company state (exactly what the API serves); ``CompanyData`` is
the independent answer key. The source test runs the whole path over real HTTP.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.schemas import Attendance, Job, JobAssignment, TaskLine, Worker, WorkerWage, no_rejects, split_valid
from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.aspire.mapping import (
    CLOCK_ENTRY_PREFIX,
    DRIVE_JOB_ID,
    MILESTONE_PREFIX,
    Zones,
    branch_zones,
    crew_leaders_to_assignments,
    employees_to_workers,
    iana_zone,
    latest_wages,
    opportunities_to_jobs,
    pay_rates_to_wages,
    services_to_task_lines,
    ticket_services,
    ticket_targets,
    times_to_attendance,
    wages_in_force,
)
from protiv_dagster.vendors.aspire.source import AspireSource
from protiv_emulators.aspire import IMPLICIT_SERVICE_BASE, LABOR_COST_PER_HOUR, AspireCompany, AspireEmulator
from protiv_emulators.generator import CompanyData, generate_company

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


def clean(
    company: AspireCompany,
    times: list[dict[str, Any]] | None = None,
    clocks: list[dict[str, Any]] | None = None,
    zones: Zones | None = None,
) -> Cleaned:
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
        times,
        clocks,
        ticket_targets(tickets),
        jobs,
        set(workers["worker_id"]),
        zones,
        branches,
        COMPANY,
        ticket_services(tickets),
        now=company.data.as_of,  # the emulator's Date header: running times count up to it
    )
    valid, rejected = validate(rows, Attendance, "entry_id")
    return Cleaned(workers, jobs, valid, aside, rejected, without_row)


@pytest.fixture(scope="module")
def data() -> CompanyData:
    # The window holds the fall-back night of 2025-11-02 in Chicago.
    return generate_company(
        COMPANY, seed=11, workers=30, days=21, as_of=datetime(2025, 11, 12, tzinfo=UTC), timezone="America/Chicago"
    )


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
            assert (
                ms["parent_job_id"] == str(job.id) and ms["level"] == "milestone" and ms["status"] == milestone.status
            )
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
    across = company.add_work_ticket_time(
        ContactID=contact, WorkTicketID=ticket, StartTime="2025-11-02T00:30:00", EndTime="2025-11-02T03:30:00"
    )
    assert across["Hours"] == pytest.approx(4.0)
    cleaned = clean(company)
    row = cleaned.attendance.set_index("entry_id").loc[str(across["WorkTicketTimeID"])]
    assert row["hours"] == pytest.approx(4.0)
    assert (row["end_at"] - row["start_at"]) == timedelta(hours=4)
    assert row["start_at"] == pd.Timestamp("2025-11-02T05:30:00Z")


def test_an_end_in_the_repeated_hour_takes_the_fold_that_matches_hours(company):
    template = company.records("WorkTicketTimes")[0]
    second_pass = dict(
        template,
        WorkTicketTimeID=1,
        StartTime="2025-11-01T22:00:00",
        EndTime="2025-11-02T01:30:00",
        WorkTicketTimeDate="2025-11-01T00:00:00",
        Hours=4.5,
        BreakTime=0.0,
    )
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
    assert (
        Zones({"1": "America/Denver"}, None, override="America/Phoenix").resolve("Eastern Standard Time", 1)
        == "America/Phoenix"
    )


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
    assert (
        fetched
        == len(cleaned.attendance)
        + len(cleaned.mapping_aside)
        + len(cleaned.validation_aside)
        + cleaned.clock_without_row
    )
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
            company_id=COMPANY,
            base_url=emulator.base_url,
            settings=CompanySettings(timezone=None),
            credentials=lambda: {"client_id": client_id, "secret": secret},
        )
        source = AspireSource(connection, AspireTuning(page_size=200))
        assert source.provider == "aspire" and source.live_feed == "WorkTicketTimes"
        workers, jobs = source.workers(), source.jobs()
        assert workers.set_aside.empty and jobs.set_aside.empty
        feeds = source.time_entry_feeds(data.first_local_date, data.last_local_date)
        assert set(feeds) == {"WorkTicketTimes", "ClockTimes", "vendorClock"}
        mapped = source.attendance(feeds, jobs.rows, workers.rows["worker_id"])
        assert mapped.set_aside.empty and mapped.removed_as_deleted == 0
        assert mapped.rows["hours"].sum() == pytest.approx(
            sum(s.duration_seconds for s in data.shifts) / 3600, abs=1e-3
        )
        assert (
            len(feeds["WorkTicketTimes"]) + len(feeds["ClockTimes"])
            == len(mapped.rows) + source.clock_times_without_row
        )
        assert source.request_count == emulator.request_count
        # The company's own zone setting overrides the branch zone.
        connection.settings = CompanySettings(timezone="America/New_York")
        eastern = AspireSource(connection, AspireTuning())
        shifted = eastern.attendance(feeds, jobs.rows, workers.rows["worker_id"]).rows.set_index("entry_id")
        central = mapped.rows.set_index("entry_id")
        timed = central["start_at"].notna()
        assert (
            (central.loc[timed, "start_at"] - shifted.loc[central.index[timed], "start_at"]) == timedelta(hours=1)
        ).all()


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


# -- pay rates, services, crew leaders and creation dates -------------------------------------------------
def unit_key(data: CompanyData, unit_id: int) -> str:
    """The Aspire job id of a generated job or milestone (jobs.level)."""
    return MILESTONE_PREFIX + str(unit_id) if unit_id in {m.id for m in data.milestones} else str(unit_id)


def test_pay_rates_are_the_wage_history_and_the_rate_in_force_is_the_wage(data, company):
    rows, aside = pay_rates_to_wages(company.records("PayRates"), [str(w.id) for w in data.workers], COMPANY)
    rows, invalid = split_valid(rows, WorkerWage, "worker_id")
    assert aside.empty and invalid.empty
    got = sorted((r.worker_id, r.effective_date, float(r.hourly_wage)) for r in rows.itertuples())
    assert got == sorted(
        (str(w.id), c.effective_date, float(c.hourly_wage)) for w in data.workers for c in w.wage_history
    )
    assert any(len(w.wage_history) == 2 for w in data.workers)
    in_force = wages_in_force(rows, data.last_local_date)
    assert in_force == {str(w.id): float(w.hourly_wage) for w in data.workers}
    raised = next(w for w in data.workers if len(w.wage_history) == 2)
    day_before = raised.wage_history[1].effective_date - timedelta(days=1)
    assert wages_in_force(rows, day_before)[str(raised.id)] == float(raised.wage_history[0].hourly_wage)
    # A rate entered for a future date is kept in the history but is not yet in force.
    future = dict(
        company.records("PayRates")[0],
        PayRateID=1,
        ContactID=raised.id,
        EffectiveDate="2099-01-01T00:00:00",
        HourlyBasePay=99.0,
    )
    rows, _ = pay_rates_to_wages([*company.records("PayRates"), future], None, COMPANY)
    assert date(2099, 1, 1) in set(rows["effective_date"])
    assert wages_in_force(rows, data.last_local_date)[str(raised.id)] == float(raised.hourly_wage)


def test_bad_pay_rates_are_set_aside_with_reasons():
    rate = {
        "PayRateID": 1,
        "ContactID": 7,
        "EffectiveDate": "2026-11-01T00:00:00",
        "HourlyBasePay": 30.0,
        "BurdenPercent": 10.0,
    }
    rates = [
        rate,
        dict(rate, PayRateID=2, ContactID=None),
        dict(rate, PayRateID=3, EffectiveDate="someday"),
        dict(rate, PayRateID=4, HourlyBasePay="thirty", EffectiveDate="2026-11-02T00:00:00"),
        dict(rate, PayRateID=5, ContactID=8, EffectiveDate="2026-11-03T00:00:00"),  # not a mapped employee
        dict(rate, PayRateID=6, EffectiveDate="2026-11-05T00:00:00"),
        dict(rate, PayRateID=7, EffectiveDate="2026-11-05T00:00:00", HourlyBasePay=31.0),
        dict(rate, PayRateID=8, HourlyBasePay=2e6, EffectiveDate="2026-11-06T00:00:00"),
        dict(rate, PayRateID=9, BurdenPercent=-3, EffectiveDate="2026-11-07T00:00:00"),
    ]
    rows, aside = pay_rates_to_wages(rates, ["7"], COMPANY)
    assert rows["effective_date"].tolist() == [date(2026, 11, 1)] and rows["burden_percent"].tolist() == [10.0]
    reasons = dict(zip(aside["record_id"], aside["reason"]))
    assert "ContactID is missing" in reasons["2"]
    assert "EffectiveDate" in reasons["3"]
    assert "HourlyBasePay is missing or not a number" in reasons["4"]
    assert "not a mapped employee" in reasons["5"]
    assert "same date" in reasons["6"] and "same date" in reasons["7"]
    assert "beyond any hourly wage" in reasons["8"]
    assert "BurdenPercent" in reasons["9"]
    assert len(rows) + len(aside) == len(rates)
    # Rates set aside are no wage in force either: employee 7's two rates of Nov 5 are unknown.
    valid, _ = pay_rates_to_wages(rates, None, COMPANY)
    assert wages_in_force(valid, date(2026, 11, 30)) == {"7": 30.0, "8": 30.0}


def test_services_are_the_task_lines_and_book_their_tickets_time(data, company, cleaned):
    lines, aside = services_to_task_lines(company.records("OpportunityServices"), cleaned.jobs["job_id"], COMPANY)
    lines, invalid = split_valid(lines, TaskLine, "task_id")
    assert aside.empty and invalid.empty and data.task_lines
    got = {
        (r.job_id, r.task_id): (r.name, r.budget_hours, None if pd.isna(r.budget_amount) else float(r.budget_amount))
        for r in lines.itertuples()
    }
    expected = {
        (str(t.job_id), str(t.id)): (t.name, t.budget_hours, round(t.budget_hours * LABOR_COST_PER_HOUR, 2))
        for t in data.task_lines
    }
    # Every other opportunity has one service that all its tickets name, its estimate as its budget.
    estimates = {o["OpportunityID"]: o["EstimatedLaborHours"] for o in company.records("Opportunities")}
    for job in data.jobs:
        if not job.is_drive and not data.task_lines_of(job.id):
            hours = estimates[job.id]
            expected[(str(job.id), str(IMPLICIT_SERVICE_BASE + job.id))] = (
                job.name.split(" – ")[0],
                hours if hours is not None else float("nan"),
                None if hours is None else round(hours * LABOR_COST_PER_HOUR, 2),
            )
    assert got.keys() == expected.keys()
    for key, (name, hours, amount) in expected.items():
        assert got[key][0] == name and got[key][2] == amount
        assert got[key][1] == pytest.approx(hours, nan_ok=True)
    tasks = cleaned.attendance.set_index("entry_id")["task_id"]
    for shift in data.shifts:
        if shift.is_drive:
            continue
        service = shift.task_id if shift.task_id is not None else IMPLICIT_SERVICE_BASE + shift.job_id
        assert tasks[str(shift.id)] == str(service)
    assert cleaned.attendance.loc[cleaned.attendance["is_drive"], "task_id"].isna().all()


def test_crew_leaders_of_tickets_and_their_times_are_the_assignments(data, company, cleaned):
    rows, aside = crew_leaders_to_assignments(
        company.records("WorkTickets"), company.records("WorkTicketTimes"), cleaned.jobs["job_id"], COMPANY
    )
    rows, invalid = split_valid(rows, JobAssignment, "worker_id")
    assert aside.empty and invalid.empty
    units = [m.id for m in data.milestones] + [
        j.id for j in data.jobs if not j.is_drive and not data.milestones_of(j.id)
    ]
    expected = {(unit_key(data, u), str(lead), "crew_lead") for u in units for lead in data.crew_leads_of(u)}
    assert set(zip(rows["job_id"], rows["worker_id"], rows["role"])) == expected
    assert len(rows) == len(expected)
    # Some work units have two crew leads: the one the ticket names, and another crew's who clocked time on it.
    assert any(len(data.crew_leads_of(u)) > 1 for u in units)


def test_bad_services_and_crew_leaders_are_set_aside(company, cleaned):
    services = copy.deepcopy(company.records("OpportunityServices")[:4])
    services[0]["OpportunityID"] = 424242
    services[1]["ExtendedHours"] = "many"
    services[2]["OpportunityServiceID"] = None
    rows, aside = services_to_task_lines(services, cleaned.jobs["job_id"], COMPANY)
    reasons = aside["reason"].tolist()
    assert len(rows) == 1 and len(aside) == 3
    assert (
        "not a mapped job" in reasons[0]
        and "ExtendedHours" in reasons[1]
        and "OpportunityServiceID is missing" in reasons[2]
    )
    tickets = copy.deepcopy(company.records("WorkTickets")[:2])
    times = [
        {"WorkTicketTimeID": 1, "WorkTicketID": 99, "CrewLeaderContactID": 5},  # an unknown ticket
        {"WorkTicketTimeID": 2, "WorkTicketID": tickets[0]["WorkTicketID"], "CrewLeaderContactID": "boss"},
        {
            "WorkTicketTimeID": 3,
            "WorkTicketID": tickets[0]["WorkTicketID"],
            "CrewLeaderContactID": tickets[0]["CrewLeaderContactID"],
        },
    ]
    rows, aside = crew_leaders_to_assignments(tickets, times, cleaned.jobs["job_id"], COMPANY)
    reasons = dict(zip(aside["record_id"], aside["reason"]))
    assert "not a known work ticket" in reasons["99"]
    assert "CrewLeaderContactID is not an id" in reasons[str(tickets[0]["WorkTicketID"])]
    # The ticket and its time naming the same lead are one record: the two tickets' leads plus the two bad pairs.
    assert len(rows) == 2 and len(aside) == 2


def test_created_dates_are_the_local_dates_of_creation(data, cleaned):
    created = cleaned.jobs.set_index("job_id")["created_date"]
    for record in [*data.jobs, *data.milestones]:
        if record is data.drive_job:
            continue
        assert created[unit_key(data, record.id)] == record.created_at.astimezone(data.zone).date()
    assert pd.isna(created[DRIVE_JOB_ID])
    pull_date = data.first_local_date
    customer = [j for j in data.jobs if not j.is_drive]
    before = [j for j in customer if created[str(j.id)] < pull_date]
    assert before and len(before) < len(customer) / 2  # some jobs began before a pull date, most after
