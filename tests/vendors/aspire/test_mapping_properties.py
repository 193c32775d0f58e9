"""Any Aspire records, however broken, are loaded, set aside with a reason, or accounted for (a clock
time fully covered by ticket time, a ticket that is its job): the mapping never raises, the counts
reconcile, and every value that comes out can be written to either warehouse.

Aspire sends branch-local wall times without an offset and names zones the Windows way, so the
strategies add unknown, odd and hostile zone names and local times in repeated or skipped hours.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from protiv_dagster.schemas import Attendance, Job, Worker, no_rejects, split_valid
from protiv_dagster.tables import ATTENDANCE, JOBS, WORKERS
from protiv_dagster.vendors.aspire.mapping import (
    DRIVE_JOB_ID,
    Zones,
    _unallocated_hours,
    branch_zones,
    employees_to_workers,
    latest_wages,
    opportunities_to_jobs,
    ticket_targets,
    times_to_attendance,
)
from tests.vendors.busybusy.test_mapping_properties import ODD_TEXT, PROPERTY, WEIRD, assert_storable, records

COMPANY = "acme"
WORKER_IDS = ["1", "2", "3"]
ZONE_NAMES = st.one_of(
    st.sampled_from(
        [
            "Central Standard Time",
            "Mountain Standard Time",
            "America/Denver",
            "Pacific/Chatham",
            "Asia/Kathmandu",
            "Mars Standard Time",
            "",
            "../../etc/passwd",
            "UTC",
            "Etc/GMT+12",
            "x" * 300,
            "America/Denver\x00",
            "\ud800",
        ]
    ),
    ODD_TEXT,
    WEIRD,
)
IDS = st.one_of(st.integers(-1, 6), st.sampled_from(["2", " 3 ", "4.0", "\ud800", "a\x00b", "\u202e1"]), ODD_TEXT)


@st.composite
def wall_times(draw: st.DrawFn) -> str:
    """Local times as Aspire sends them, mostly without an offset; around the 2026 DST changes."""
    moment = draw(
        st.one_of(
            st.datetimes(min_value=datetime(2026, 10, 31), max_value=datetime(2026, 11, 3)),
            st.datetimes(min_value=datetime(2026, 3, 8), max_value=datetime(2026, 3, 9)),
            st.datetimes(),  # years 1 to 9999
        )
    )
    offset = draw(st.sampled_from(["", "", "", "Z", "-06:00", "+14:00", "+05:45"]))
    return moment.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds", "minutes"]))) + offset


HOURS = st.one_of(st.floats(-5, 30), st.sampled_from([0, 24, 24.0001, 1e300, -1e300, "8", "eight", 10**400]))


def validate(rows: pd.DataFrame, model: Any, record_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    return (rows, no_rejects()) if rows.empty else split_valid(rows, model, record_id)


def check_aside(*frames: pd.DataFrame) -> None:
    for frame in frames:
        assert (frame["reason"].str.len() > 0).all()
        for text in frame["record"]:
            json.loads(text)
        assert_storable(frame)


def tagged(strategy: st.SearchStrategy, kind: str) -> st.SearchStrategy:
    """Records carrying an unbroken marker of their feed, to count each feed's records in the output."""
    return strategy.map(lambda record: {**record, "_feed": kind})


CONTACT = records(
    {
        "ContactID": IDS,
        "ContactTypeName": st.sampled_from(["Employee", "Employee", "Customer", "employee"]),
        "FirstName": st.one_of(st.text(max_size=5), ODD_TEXT),
        "LastName": st.one_of(st.text(max_size=5), ODD_TEXT),
        "Active": st.booleans(),
        "TerminationDate": st.one_of(st.none(), wall_times()),
        "BranchID": st.one_of(st.sampled_from([1, 2, 9]), IDS),
        "ModifiedDate": wall_times(),
    }
)
BRANCH = records({"BranchID": st.one_of(st.sampled_from([1, 2]), IDS), "TimeZone": ZONE_NAMES})
OPPORTUNITY = records(
    {
        "OpportunityID": IDS,
        "OpportunityName": st.one_of(st.sampled_from(["Smith patio", "", " "]), ODD_TEXT),
        "OpportunityStatusName": st.sampled_from(["Won", "Complete", "Lost", "In Progress", "Dreaming", "won "]),
        "OpportunityType": st.sampled_from(["Contract", "Work Order", "contract"]),
        "OpportunityNumber": st.one_of(st.integers(0, 99), ODD_TEXT),
        "EstimatedLaborHours": HOURS,
        "BranchID": st.sampled_from([1, 2, 9]),
        "ModifiedDate": wall_times(),
        "DivisionName": st.one_of(st.none(), st.sampled_from(["Maintenance", " "]), ODD_TEXT),
        "PropertyID": st.one_of(st.none(), IDS),
        "PropertyName": st.one_of(st.none(), ODD_TEXT),
    }
)
TICKET = records(
    {
        "WorkTicketID": st.one_of(st.integers(100, 106), IDS),
        "OpportunityID": IDS,
        "WorkTicketNumber": st.one_of(st.integers(0, 99), ODD_TEXT),
        "WorkTicketStatusName": st.sampled_from(["Open", "Complete", "Cancelled", "Scheduled", "??"]),
        "HoursEst": HOURS,
        "BranchID": st.sampled_from([1, 2, 9]),
        "LastModifiedDateTime": wall_times(),
    }
)
TIME = records(
    {
        "WorkTicketTimeID": st.one_of(st.integers(1000, 1008), IDS),
        "ContactID": st.one_of(st.sampled_from([1, 2, 3, 4]), IDS),
        "WorkTicketID": st.one_of(st.sampled_from([100, 101, 102, 103, 999]), IDS),
        "BranchTimeZone": st.one_of(st.none(), ZONE_NAMES),
        "BranchID": st.sampled_from([1, 2, 9]),
        "StartTime": st.one_of(st.none(), wall_times()),
        "EndTime": st.one_of(st.none(), wall_times()),
        "Hours": HOURS,
        "BreakTime": st.one_of(st.none(), HOURS),
        "WorkTicketTimeDate": wall_times(),
        "LastModifiedDateTime": wall_times(),
        "BaseHourlyRate": st.one_of(st.floats(-5, 100), st.sampled_from([999_999.99995, 1e7, float("inf")]), WEIRD),
    }
)
CLOCK = records(
    {
        "ClockTimeID": st.one_of(st.integers(1, 6), IDS),
        "ContactID": st.one_of(st.sampled_from([1, 2, 3, 4]), IDS),
        "ClockStart": wall_times(),
        "ClockEnd": st.one_of(st.none(), wall_times()),
        "BreakTime": st.one_of(st.none(), HOURS),
    }
)
ZONES = Zones({"1": "America/Chicago", "2": "America/Denver"}, "America/Chicago")
# A fixed account the time rows refer to: opportunity 1 has two tickets (milestones), 2 has one.
FIXED_OPPORTUNITIES = [
    {
        "OpportunityID": o,
        "OpportunityName": f"Job {o}",
        "OpportunityStatusName": "Won",
        "OpportunityType": "Work Order",
        "EstimatedLaborHours": 10,
        "BranchID": 1,
        "ModifiedDate": "2026-10-01T08:00:00",
    }
    for o in (1, 2)
]
FIXED_TICKETS = [
    {
        "WorkTicketID": t,
        "OpportunityID": o,
        "WorkTicketNumber": t,
        "WorkTicketStatusName": "Open",
        "HoursEst": 5,
        "BranchID": 1,
        "LastModifiedDateTime": "2026-10-01T08:00:00",
    }
    for t, o in ((100, 1), (101, 1), (102, 2))
]


@settings(PROPERTY, max_examples=60)
@given(st.lists(tagged(OPPORTUNITY, "opportunity"), max_size=6), st.lists(tagged(TICKET, "ticket"), max_size=8))
def test_any_opportunities_and_tickets_are_loaded_set_aside_or_merged(
    opportunities: list[dict[str, Any]], tickets: list[dict[str, Any]]
) -> None:
    received = copy.deepcopy((opportunities, tickets))
    ticket_targets(tickets)  # never raises either
    rows, aside = opportunities_to_jobs(opportunities, tickets, ZONES, COMPANY)
    valid, invalid = validate(rows, Job, "job_id")
    assert (opportunities, tickets) == received
    check_aside(aside, invalid)
    assert_storable(valid, JOBS)
    assert (valid["job_id"] == DRIVE_JOB_ID).sum() == 1
    feed = aside["record"].map(lambda r: json.loads(r).get("_feed"))
    level = invalid["record"].map(lambda r: json.loads(r).get("level"))
    jobs_out = ((valid["level"] == "job") & (valid["job_id"] != DRIVE_JOB_ID)).sum() + (level == "job").sum()
    assert len(opportunities) == jobs_out + (feed == "opportunity").sum()
    # A ticket is a milestone row, set aside, or merged into its job (one ticket per job at most).
    merged = (
        len(tickets) - (valid["level"] == "milestone").sum() - (level == "milestone").sum() - (feed == "ticket").sum()
    )
    assert 0 <= merged <= jobs_out
    if len(valid):
        assert valid["job_id"].is_unique
        assert (valid["budget_hours"].dropna() >= 0).all()


@settings(PROPERTY, max_examples=60)
@given(st.lists(TIME, max_size=10), st.lists(CLOCK, max_size=5), st.sampled_from([None, "Asia/Kathmandu", "UTC"]))
def test_any_ticket_times_and_clock_times_reconcile(
    times: list[dict[str, Any]], clocks: list[dict[str, Any]], override: str | None
) -> None:
    zones = Zones(ZONES.by_branch, ZONES.default, override)
    jobs, _ = validate(opportunities_to_jobs(FIXED_OPPORTUNITIES, FIXED_TICKETS, zones, COMPANY)[0], Job, "job_id")
    received = copy.deepcopy((times, clocks))
    branches = {"1": "1", "2": "2", "3": "9"}
    rows, aside, without_row = times_to_attendance(
        times, clocks, ticket_targets(FIXED_TICKETS), jobs, WORKER_IDS, zones, branches, COMPANY
    )
    valid, invalid = validate(rows, Attendance, "entry_id")
    assert (times, clocks) == received
    assert len(times) + len(clocks) == len(valid) + len(aside) + len(invalid) + without_row
    check_aside(aside, invalid)
    assert_storable(valid, ATTENDANCE)
    if len(valid):
        assert valid["entry_id"].is_unique and valid["worker_id"].isin(WORKER_IDS).all()
        assert valid["hours"].between(0, 24).all()
        assert valid.loc[valid["job_id"] == DRIVE_JOB_ID, "is_drive"].all()


@settings(PROPERTY, max_examples=40)
@given(
    st.lists(CONTACT, max_size=6),
    st.lists(TIME, max_size=6),
    st.lists(BRANCH, max_size=3),
    st.sampled_from([None, "UTC"]),
)
def test_any_contacts_wages_and_branches_are_loaded_or_set_aside(
    contacts: list[dict[str, Any]], times: list[dict[str, Any]], branches: list[dict[str, Any]], override: str | None
) -> None:
    zones = branch_zones(branches, override)
    wages = latest_wages(times)
    assert all(isinstance(w, float) and w >= 0 for w in wages.values())
    rows, aside = employees_to_workers(contacts, wages, zones, COMPANY)
    valid, invalid = validate(rows, Worker, "worker_id")
    assert len(contacts) == len(valid) + len(aside) + len(invalid)
    check_aside(aside, invalid)
    assert_storable(valid, WORKERS)


MINUTES = st.integers(0, 24 * 60)


@PROPERTY
@given(
    st.lists(st.tuples(st.sampled_from(["1", "2", "3"]), st.one_of(st.none(), MINUTES), st.floats(0, 12)), max_size=25),
    st.lists(
        st.tuples(
            st.sampled_from(["1", "2", "4", None]),
            st.one_of(st.none(), MINUTES),
            st.one_of(st.none(), MINUTES),
            st.floats(0, 2),
        ),
        max_size=10,
    ),
)
def test_clock_hours_left_after_ticket_times_equal_a_plain_sum_per_clock_time(
    tickets: list[tuple[str, int | None, float]], clocks: list[tuple[str | None, int | None, int | None, float]]
) -> None:
    """All clock times at once give, bit for bit, what a plain loop gives: a clock time's hours less the
    hours of its employee's ticket times starting inside it, summed in the tickets' order."""
    day = pd.Timestamp("2026-11-01", tz="UTC")

    def moments(minutes: list[int | None]) -> pd.Series:
        return pd.Series(
            [day + pd.Timedelta(minutes=m) if m is not None else pd.NaT for m in minutes], dtype="datetime64[ns, UTC]"
        )

    ticket_rows = pd.DataFrame(
        {
            "worker_id": [t[0] for t in tickets],
            "start_at": moments([t[1] for t in tickets]),
            "hours": [t[2] for t in tickets],
        }
    ).set_axis(range(100, 100 + len(tickets)))  # ticket rows keep their frame's index
    worker_id = pd.Series([c[0] for c in clocks], dtype=object)
    start_at, end_at = moments([c[1] for c in clocks]), moments([c[2] for c in clocks])
    breaks = pd.Series([c[3] for c in clocks], dtype=float)

    at_once = _unallocated_hours(ticket_rows, worker_id, start_at, end_at, breaks)

    for clock, (worker, start, end, break_hours) in enumerate(clocks):
        if worker is None or start is None or end is None:
            assert np.isnan(at_once[clock])
            continue
        inside = sum(
            hours for who, begin, hours in tickets if who == worker and begin is not None and start <= begin < end
        )
        elapsed = (end - start) * 60 * 1e9 / 1e9 / 3600
        assert at_once[clock] == elapsed - break_hours - inside, (clock, at_once[clock], elapsed - break_hours - inside)
