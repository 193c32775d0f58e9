"""Four ways Aspire really behaves, on hand-made records (found by an outside check with an
independently written Aspire server): distributed ticket time inside the clock time, the work's
status on the ticket (not on the "Won" opportunity), a recurring opportunity with one ticket, and
running ticket times whose ``Hours`` is still null."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from protiv_dagster.propay.units import build_candidates
from protiv_dagster.vendors.aspire.mapping import (
    CLOCK_ENTRY_PREFIX,
    MILESTONE_PREFIX,
    Zones,
    crew_leaders_to_assignments,
    opportunities_to_jobs,
    ticket_targets,
    times_to_attendance,
)

COMPANY = "acme"
ZONE = "America/Denver"  # UTC-7 in November
ZONES = Zones(default=ZONE)
WORKER = "7"


def opportunity(
    opportunity_id: int, *, kind: str = "Work Order", status: str = "Won", estimate: float | None = 10.0, **extra: Any
) -> dict[str, Any]:
    return {
        "OpportunityID": opportunity_id,
        "OpportunityName": f"Job {opportunity_id}",
        "OpportunityStatusName": status,
        "OpportunityType": kind,
        "EstimatedLaborHours": estimate,
        "BranchID": 1,
        "ModifiedDate": "2026-11-02T08:00:00",
        "CreatedDateTime": "2026-11-01T08:00:00",
        **extra,
    }


def ticket(
    ticket_id: int, opportunity_id: int, *, status: str = "Open", hours: float | None = 8.0, **extra: Any
) -> dict[str, Any]:
    return {
        "WorkTicketID": ticket_id,
        "OpportunityID": opportunity_id,
        "WorkTicketNumber": ticket_id,
        "WorkTicketStatusName": status,
        "HoursEst": hours,
        "BranchID": 1,
        "LastModifiedDateTime": "2026-11-02T08:00:00",
        "CreatedDateTime": "2026-11-01T08:00:00",
        **extra,
    }


def time_row(
    time_id: int,
    ticket_id: int,
    start: str | None,
    end: str | None,
    hours: float | None,
    *,
    day: str = "2026-11-17",
    breaks: float = 0.0,
) -> dict[str, Any]:
    return {
        "WorkTicketTimeID": time_id,
        "ContactID": int(WORKER),
        "WorkTicketID": ticket_id,
        "WorkTicketTimeDate": f"{day}T00:00:00",
        "StartTime": start,
        "EndTime": end,
        "Hours": hours,
        "BreakTime": breaks,
        "DistributedTime": start is None and end is None,
        "BranchTimeZone": "Mountain Standard Time",
        "LastModifiedDateTime": f"{day}T18:00:00",
    }


def clock(clock_id: int, start: str, end: str | None, breaks: float = 0.0) -> dict[str, Any]:
    return {
        "ClockTimeID": clock_id,
        "ContactID": int(WORKER),
        "ClockStart": start,
        "ClockEnd": end,
        "BreakTime": breaks,
    }


def jobs_of(opportunities: list[dict[str, Any]], tickets: list[dict[str, Any]]) -> pd.DataFrame:
    rows, aside = opportunities_to_jobs(opportunities, tickets, ZONES, COMPANY)
    assert aside.empty, aside["reason"].tolist()
    return rows


def attendance(times, clocks, tickets, jobs, now: datetime | None = None):
    return times_to_attendance(times, clocks, ticket_targets(tickets), jobs, {WORKER}, ZONES, {}, COMPANY, now=now)


# -- 2. distributed ticket time is inside the clock time -----------------------------------------------
def test_distributed_ticket_hours_come_out_of_the_clock_times_remainder():
    tickets = [ticket(501, 50)]
    jobs = jobs_of([opportunity(50)], tickets)
    # 07:00-17:30 on the clock: 10.5 h. On tickets: 07:30-12:30 timed (5.0 h) and 4.0 h distributed.
    times = [
        time_row(1, 501, "2026-11-17T07:30:00", "2026-11-17T12:30:00", 5.0),
        time_row(2, 501, None, None, 4.0),
    ]
    rows, aside, no_row = attendance(times, [clock(90, "2026-11-17T07:00:00", "2026-11-17T17:30:00")], tickets, jobs)
    assert aside.empty and no_row == 0
    hours = rows.set_index("entry_id")["hours"].to_dict()
    # Drive = 10.5 - 5.0 - 4.0 = 1.5 h (it was 5.5 h, a day of 14.5 h for 10.5 h on the clock).
    assert hours == {"1": 5.0, "2": 4.0, f"{CLOCK_ENTRY_PREFIX}90": 1.5}
    assert sum(hours.values()) == 10.5
    assert rows.set_index("entry_id").loc["2", "entry_type"] == "manual"


def test_distributed_hours_drain_the_days_latest_clock_time_first_and_never_below_zero():
    tickets = [ticket(501, 50)]
    jobs = jobs_of([opportunity(50)], tickets)
    clocks = [
        clock(90, "2026-11-17T06:00:00", "2026-11-17T11:00:00"),  # 5.0 h, 2.0 h on a ticket: 3.0 left
        clock(91, "2026-11-17T12:00:00", "2026-11-17T14:00:00"),  # 2.0 h, 1.0 h on a ticket: 1.0 left
        clock(92, "2026-11-18T07:00:00", "2026-11-18T09:00:00"),  # another day: untouched
    ]
    times = [
        time_row(1, 501, "2026-11-17T06:30:00", "2026-11-17T08:30:00", 2.0),
        time_row(2, 501, "2026-11-17T12:30:00", "2026-11-17T13:30:00", 1.0),
        time_row(3, 501, None, None, 3.5),  # 1.0 h from clock 91 (down to zero), 2.5 h from clock 90
        time_row(4, 501, None, None, 1.5, day="2026-11-19"),  # no clock time that day: stands alone
    ]
    rows, aside, no_row = attendance(times, clocks, tickets, jobs)
    assert aside.empty and no_row == 1  # clock 91 is fully allocated now
    hours = rows.set_index("entry_id")["hours"].to_dict()
    assert hours == {
        "1": 2.0,
        "2": 1.0,
        "3": 3.5,
        "4": 1.5,
        f"{CLOCK_ENTRY_PREFIX}90": 0.5,
        f"{CLOCK_ENTRY_PREFIX}92": 2.0,
    }
    by_day = rows.groupby("work_date")["hours"].sum()
    assert by_day[pd.Timestamp("2026-11-17").date()] == 7.0  # the day's clock time: 5.0 + 2.0


# -- 3. the ticket says whether the work is done ---------------------------------------------------------
def test_a_won_opportunity_takes_its_status_from_its_one_ticket_jobstatus_and_completedate():
    opportunities = [
        opportunity(1),
        opportunity(2),
        opportunity(3),
        opportunity(4, JobStatusName="Complete"),
        opportunity(5, CompleteDate="2026-11-10T00:00:00"),
        opportunity(6, JobStatusName="In Progress"),
        opportunity(7),
        opportunity(8, status="Lost"),
    ]
    tickets = [
        ticket(11, 1, status="Cancelled"),
        ticket(21, 2, status="Complete"),
        ticket(31, 3, status="Scheduled", CompleteDate="2026-11-12T15:00:00"),
        ticket(41, 4),
        ticket(51, 5),
        ticket(61, 6),
        ticket(71, 7, status="Complete"),
        ticket(72, 7, WorkTicketStatusName=None, WorkTicketStatus="Cancelled"),
        ticket(81, 8, status="Complete"),
    ]
    status = jobs_of(opportunities, tickets).set_index("job_id")["status"].to_dict()
    assert {k: status[k] for k in "12345678"} == {
        "1": "canceled",
        "2": "completed",
        "3": "completed",
        "4": "completed",
        "5": "completed",
        "6": "open",
        "7": "open",  # several tickets: each is a milestone with its own status
        "8": "canceled",  # canceled wins over a completed ticket: a canceled ProPay pays nothing
    }
    assert status[MILESTONE_PREFIX + "71"] == "completed" and status[MILESTONE_PREFIX + "72"] == "canceled"
    candidates = build_candidates(jobs_of(opportunities, tickets)).table.set_index("propay_id")["source_status"]
    assert candidates["1"] == "canceled" and candidates["2"] == "completed"


# -- 4. a recurring opportunity with one ticket ------------------------------------------------------------
def test_the_one_ticket_of_a_recurring_opportunity_is_its_milestone_and_gets_the_propay():
    opportunities = [opportunity(60, kind="Contract", estimate=250.0), opportunity(70, kind="Contract", estimate=40.0)]
    tickets = [ticket(601, 60, hours=200.0, CrewLeaderContactID=9), ticket(701, 70, hours=None)]
    jobs = jobs_of(opportunities, tickets)
    by_id = jobs.set_index("job_id")
    milestone = MILESTONE_PREFIX + "601"
    assert by_id.loc[milestone, ["parent_job_id", "level", "budget_hours", "recurring"]].tolist() == [
        "60",
        "milestone",
        200.0,
        True,
    ]
    assert by_id.loc["60", "budget_hours"] == 250.0  # kept: the milestone's ProPay falls back on it
    candidates = build_candidates(jobs)
    table = candidates.table.set_index("propay_id")
    assert table.loc[milestone, ["job_id", "milestone_id", "recurring"]].tolist() == ["60", milestone, True]
    assert MILESTONE_PREFIX + "701" in table.index  # a ticket without HoursEst: the job's 40 h is its budget
    assert candidates.unplaced["reason"].tolist() == ["drive job"]  # the recurring jobs are placed
    # Its time and its crew leader land on the milestone.
    times = [time_row(1, 601, "2026-11-17T07:00:00", "2026-11-17T15:00:00", 8.0)]
    rows, aside, _ = attendance(times, [], tickets, jobs)
    assert aside.empty and rows.loc[0, ["job_id", "milestone_id"]].tolist() == ["60", milestone]
    leads, _ = crew_leaders_to_assignments(tickets, [], jobs["job_id"], COMPANY)
    assert leads[["job_id", "worker_id"]].values.tolist() == [[milestone, "9"]]


# -- 5. a running ticket time is on the clock -------------------------------------------------------------
def test_a_running_ticket_time_with_null_hours_is_on_the_clock_up_to_the_sync_time():
    tickets = [ticket(501, 50)]
    jobs = jobs_of([opportunity(50)], tickets)
    now = datetime(2026, 11, 17, 20, 15, tzinfo=UTC)  # 13:15 in Denver
    times = [
        time_row(1, 501, "2026-11-17T07:00:00", None, None, breaks=0.5),  # 6.25 h elapsed, 0.5 h break
        time_row(2, 501, "2026-11-17T14:00:00", None, None),  # after the sync time: not yet
    ]
    clocks = [clock(90, "2026-11-17T07:00:00", None)]  # the running clock time gives no row
    rows, aside, no_row = attendance(times, clocks, tickets, jobs, now=now)
    assert no_row == 1
    row = rows.set_index("entry_id").loc["1"]
    assert row["hours"] == pytest.approx(5.75) and bool(row["on_the_clock"]) and pd.isna(row["end_at"])
    assert row["start_at"] == pd.Timestamp("2026-11-17T14:00:00Z")
    assert aside["reason"].tolist() == ["a running ticket time starts after the sync time"]
    # A finished time without Hours is still set aside.
    broken = [time_row(3, 501, "2026-11-17T07:00:00", "2026-11-17T09:00:00", None)]
    _, aside, _ = attendance(broken, [], tickets, jobs, now=now)
    assert "Hours is missing" in aside["reason"].iloc[0]
