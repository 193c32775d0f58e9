"""Any BusyBusy records, however broken, are loaded, set aside with a reason, or removed as deleted:
the mapping never raises, the counts always reconcile, and every value that comes out can be written
to either warehouse (no NUL, which PostgreSQL refuses; no lone surrogate, which is not UTF-8).

The strategies and ``assert_storable`` are shared with the QuickBooks Time and Aspire property tests.
"""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.schemas import Attendance, Job, Worker, split_valid
from protiv_dagster.tables import ATTENDANCE, JOBS, WORKERS
from protiv_dagster.vendors.busybusy.mapping import (
    _break_seconds,
    _breaks_of_entries,
    members_to_workers,
    projects_to_jobs,
    time_entries_to_attendance,
)
from protiv_dagster.vendors.mapping import utc
from protiv_dagster.warehouse.conversion import column_values
from protiv_dagster.warehouse.declarations import Table

COMPANY = "acme"
ZONE = "America/Denver"
SETTINGS = CompanySettings(timezone=ZONE)
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
WORKER_IDS = ["m-1", "m-2", "m-3"]
JOB, MILESTONE, DRIVE = "p-job", "p-milestone", "p-drive"
PROJECTS = [
    {
        "id": JOB,
        "title": "Patio",
        "parentProjectId": None,
        "depth": 1,
        "archivedOn": None,
        "updatedOn": "2026-01-01T00:00:00Z",
    },
    {
        "id": MILESTONE,
        "title": "Base",
        "parentProjectId": JOB,
        "depth": 2,
        "archivedOn": None,
        "updatedOn": "2026-01-01T00:00:00Z",
    },
    {
        "id": DRIVE,
        "title": "Drive Time",
        "parentProjectId": None,
        "depth": 1,
        "archivedOn": None,
        "updatedOn": "2026-01-01T00:00:00Z",
    },
]

WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "\ud800", "\x00", "nan", "inf", "1e400", "0000-00-00"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Text a vendor's JSON can carry: lone surrogates (what a non-UTF-8 payload decodes to with
# surrogateescape, or a JSON "\ud800" escape), NUL, bidi and zero-width controls, other digits.
ODD_TEXT = st.one_of(
    st.sampled_from(
        ["\ud800", "\udcff\udcfe", "a\x00b", "\x00", "\u202eevil", "\u200b", "\ufeffid", "١٢", "１２", "e\u0301", "🙂"]
    ),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Mn", "Nd", "So", "Zs"]), min_size=1, max_size=4),
    st.text(alphabet=st.characters(), max_size=6),
)
OFFSETS = st.sampled_from(["Z", "+00:00", "-07:00", "+05:45", "", "+0530", "+14:00", "-12:00", "+23:59", "-00:00"])
ZONES = st.sampled_from(
    ["America/Denver", "UTC", "Pacific/Chatham", "Asia/Kathmandu", "America/St_Johns", "Pacific/Kiritimati"]
)


def assert_storable(frame: pd.DataFrame, table: Table | None = None) -> None:
    """Every text cell can be written to DuckDB (UTF-8 only) and PostgreSQL (no NUL either); with
    ``table``, every cell also converts to its column's SQL type the way the warehouse writes it."""
    for name in frame.columns:
        for value in frame[name]:
            if isinstance(value, str):
                assert "\x00" not in value, f"{name} holds NUL: {value!r}"
                value.encode("utf-8")  # raises on a lone surrogate
    if table is not None and len(frame):
        for column in table.columns:
            column_values(table, column, frame[column.name])  # raises ValueError naming the cell


@st.composite
def iso_timestamps(draw: st.DrawFn) -> str:
    moment = draw(
        st.one_of(st.datetimes(min_value=datetime(2026, 10, 31), max_value=datetime(2026, 11, 3)), st.datetimes())
    )
    return moment.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds"]))) + draw(OFFSETS)


@st.composite
def records(
    draw: st.DrawFn, plausible: dict[str, st.SearchStrategy], weird: st.SearchStrategy = WEIRD
) -> dict[str, Any]:
    """A record whose fields are plausible, except a few that are missing or any ``weird`` value."""
    record = {name: draw(strategy) for name, strategy in plausible.items()}
    broken = draw(st.sets(st.sampled_from(sorted(plausible)), max_size=len(plausible)))
    for name in sorted(broken)[: draw(st.sampled_from([0, 1, 2, 3, len(plausible)]))]:
        if draw(st.booleans()):
            del record[name]
        else:
            record[name] = draw(weird)
    return record


BREAK = records({"id": st.just("b"), "startTime": iso_timestamps(), "endTime": st.one_of(st.none(), iso_timestamps())})
ENTRY = records(
    {
        "id": st.one_of(st.sampled_from(["e-1", "e-2", "e-3", "e-4", "e-5", "e-6"]), ODD_TEXT),
        "memberId": st.one_of(st.sampled_from([*WORKER_IDS, "m-unknown"]), ODD_TEXT),
        "projectId": st.sampled_from([JOB, MILESTONE, DRIVE, "p-unknown"]),
        "costCodeId": st.sampled_from([None, "cc-drive", "cc-labor"]),
        "startTime": iso_timestamps(),
        "endTime": st.one_of(st.none(), iso_timestamps()),
        "breaks": st.one_of(st.just([]), st.lists(BREAK, max_size=2)),
        "actionType": st.sampled_from([10, 30]),
        "updatedOn": iso_timestamps(),
        "deletedOn": st.one_of(st.none(), st.none(), iso_timestamps()),
    }
)
WAGE = records(
    {
        "wage": st.one_of(st.floats(0, 500), st.sampled_from(["25", -1, 999_999.99995, 5e8])),
        "wageRate": st.sampled_from([10, 40, 20, 30, 99]),
        "changeDate": iso_timestamps(),
        "deletedOn": st.one_of(st.none(), iso_timestamps()),
        "overburden": st.floats(0, 50),
    }
)
MEMBER = records(
    {
        "id": st.one_of(st.sampled_from(WORKER_IDS), ODD_TEXT),
        "firstName": st.one_of(st.text(max_size=5), ODD_TEXT),
        "lastName": st.one_of(st.text(max_size=5), ODD_TEXT),
        "archivedOn": st.one_of(st.none(), iso_timestamps()),
        "updatedOn": iso_timestamps(),
        "wageHistories": st.one_of(st.lists(WAGE, max_size=3), WEIRD),
    }
)
PROJECT = records(
    {
        "id": st.one_of(st.sampled_from(["a", "b", "c", "d"]), ODD_TEXT),
        "title": st.one_of(st.sampled_from(["Patio", "Drive Time", ""]), ODD_TEXT),
        "parentProjectId": st.sampled_from([None, "a", "b"]),
        "depth": st.sampled_from([1, 2, 3]),
        "archivedOn": st.one_of(st.none(), iso_timestamps()),
        "updatedOn": iso_timestamps(),
        "projectInfo": st.one_of(st.none(), st.just({"number": "X1"})),
    }
)
PROPERTY = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def jobs() -> pd.DataFrame:
    rows, aside, _ = projects_to_jobs(PROJECTS, [], [], SETTINGS, COMPANY)
    assert len(aside) == 0
    return split_valid(rows, Job, "job_id")[0]


@PROPERTY
@given(st.lists(ENTRY, max_size=12), ZONES)
def test_any_time_entries_are_loaded_set_aside_or_removed(
    jobs: pd.DataFrame, entries: list[dict[str, Any]], zone: str
) -> None:
    received = copy.deepcopy(entries)
    rows, aside, removed = time_entries_to_attendance(entries, jobs, WORKER_IDS, COMPANY, zone, NOW, {"cc-drive"})
    valid, invalid = split_valid(rows, Attendance, "entry_id") if len(rows) else (rows, aside.iloc[0:0])
    assert entries == received  # the records are not changed
    assert len(entries) == len(valid) + len(aside) + len(invalid) + removed
    reasons = pd.concat([aside["reason"], invalid["reason"]])
    assert (reasons.str.len() > 0).all()
    for text in aside["record"]:
        json.loads(text)
    for frame in (valid, aside, invalid):
        assert_storable(frame)
    assert_storable(valid, ATTENDANCE)
    if valid.empty:
        return
    assert valid["entry_id"].is_unique and valid["worker_id"].isin(WORKER_IDS).all()
    assert valid["hours"].between(0, 24).all()
    assert (valid["job_id"] != MILESTONE).all() and set(valid["milestone_id"].dropna()) <= {MILESTONE}
    # Valid ids are unique among the loaded rows, but a set-aside or deleted record may share one.
    ids = [e.get("id") for e in entries]
    drive_code = {
        e["id"]: e.get("costCodeId") == "cc-drive"
        for e in entries
        if isinstance(e.get("id"), str) and ids.count(e["id"]) == 1
    }
    single = valid["entry_id"].isin(list(drive_code))
    on_drive = (valid["job_id"] == DRIVE) | valid["entry_id"].map(drive_code).where(single, False).astype(bool)
    assert (valid.loc[single, "is_drive"] == on_drive[single]).all()
    assert valid.loc[valid["job_id"] == DRIVE, "is_drive"].all()
    assert (valid["on_the_clock"] == valid["end_at"].isna()).all()


@settings(PROPERTY, max_examples=30)
@given(st.lists(MEMBER, max_size=6), ZONES)
def test_any_members_are_loaded_or_set_aside(members: list[dict[str, Any]], zone: str) -> None:
    rows, aside = members_to_workers(members, COMPANY, zone, now=NOW)
    valid, invalid = split_valid(rows, Worker, "worker_id") if len(rows) else (rows, aside.iloc[0:0])
    assert len(members) == len(valid) + len(aside) + len(invalid)
    for frame in (valid, aside, invalid):
        assert_storable(frame)
    assert_storable(valid, WORKERS)
    if not valid.empty:
        assert valid["worker_id"].is_unique and (valid["hourly_wage"].dropna() >= 0).all()


@settings(PROPERTY, max_examples=30)
@given(st.lists(PROJECT, max_size=6))
def test_any_projects_are_loaded_or_set_aside(projects: list[dict[str, Any]]) -> None:
    costs = [
        {"projectId": "a", "costBudget": 9e11},
        {"projectId": "a", "costBudget": 9e11},
        {"projectId": "b", "costBudget": 10.5},
    ]
    rows, aside, folded = projects_to_jobs(
        projects,
        [{"projectId": "a", "budgetSeconds": 3600}],
        costs,
        SETTINGS.model_copy(update={"default_budget_type": "amount"}),
        COMPANY,
    )
    valid, invalid = split_valid(rows, Job, "job_id") if len(rows) else (rows, aside.iloc[0:0])
    assert len(projects) == len(valid) + len(aside) + len(invalid) + folded
    for frame in (valid, aside, invalid):
        assert_storable(frame)
    assert_storable(valid, JOBS)
    if not valid.empty:
        assert set(valid["level"]) <= {"job", "milestone"}
        assert (valid["level"] == "milestone").eq(valid["parent_job_id"].notna()).all()


WHOLE_SECONDS = st.datetimes(min_value=datetime(2026, 10, 31), max_value=datetime(2026, 11, 3)).map(
    lambda moment: moment.replace(microsecond=0).isoformat() + "Z"
)
STAMP = st.one_of(WHOLE_SECONDS, WHOLE_SECONDS, iso_timestamps())
LISTED_BREAKS = st.one_of(
    st.none(),
    st.just([]),
    WEIRD,
    st.lists(
        records({"id": st.just("b"), "startTime": STAMP, "endTime": st.one_of(st.none(), st.just(""), STAMP)}),
        min_size=1,
        max_size=3,
    ),
    st.lists(st.one_of(WEIRD, st.just({"startTime": "2026-11-01T10:00:00Z"})), min_size=1, max_size=2),
)


@PROPERTY
@given(st.lists(st.tuples(LISTED_BREAKS, st.one_of(st.none(), STAMP), st.one_of(st.none(), STAMP)), max_size=8))
def test_the_breaks_of_all_entries_at_once_are_the_breaks_of_each_entry(entries: list[tuple[Any, Any, Any]]) -> None:
    """The column-wise break clipping gives, bit for bit, what ``_break_seconds`` gives entry by entry
    (NaN where it finds the breaks malformed; 0 for an entry without breaks or without both times)."""
    listed = [listed_breaks for listed_breaks, _, _ in entries]
    start = utc(pd.Series([start for _, start, _ in entries], dtype=object))[0]
    until = utc(pd.Series([until for _, _, until in entries], dtype=object))[0]

    at_once = _breaks_of_entries(listed, start, until)

    for position, listed_breaks in enumerate(listed):
        timed = pd.notna(start.iat[position]) and pd.notna(until.iat[position])
        listing = listed_breaks is not None and listed_breaks != []
        one = _break_seconds(listed_breaks, start.iat[position], until.iat[position]) if timed and listing else 0.0
        if one is None:
            assert pd.isna(at_once.iat[position]), (position, listed_breaks)
        else:
            assert at_once.iat[position] == one, (position, listed_breaks, at_once.iat[position], one)
