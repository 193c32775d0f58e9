"""Any BusyBusy records, however broken, are loaded, set aside with a reason, or removed as deleted:
the mapping never raises and the counts always reconcile."""

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
from protiv_dagster.mapping.busybusy import members_to_workers, projects_to_jobs, time_entries_to_attendance
from protiv_dagster.schemas import Attendance, Job, Worker, split_valid

COMPANY = "acme"
ZONE = "America/Denver"
SETTINGS = CompanySettings(timezone=ZONE)
NOW = datetime(2026, 11, 2, 12, tzinfo=UTC)
WORKER_IDS = ["m-1", "m-2", "m-3"]
JOB, MILESTONE, DRIVE = "p-job", "p-milestone", "p-drive"
PROJECTS = [
    {"id": JOB, "title": "Patio", "parentProjectId": None, "depth": 1, "archivedOn": None, "updatedOn": "2026-01-01T00:00:00Z"},
    {"id": MILESTONE, "title": "Base", "parentProjectId": JOB, "depth": 2, "archivedOn": None, "updatedOn": "2026-01-01T00:00:00Z"},
    {"id": DRIVE, "title": "Drive Time", "parentProjectId": None, "depth": 1, "archivedOn": None, "updatedOn": "2026-01-01T00:00:00Z"},
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
OFFSETS = st.sampled_from(["Z", "+00:00", "-07:00", "+05:45", "", "+0530"])


@st.composite
def iso_timestamps(draw: st.DrawFn) -> str:
    moment = draw(st.one_of(st.datetimes(min_value=datetime(2026, 10, 31), max_value=datetime(2026, 11, 3)), st.datetimes()))
    return moment.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds"]))) + draw(OFFSETS)


@st.composite
def records(draw: st.DrawFn, plausible: dict[str, st.SearchStrategy]) -> dict[str, Any]:
    record = {name: draw(strategy) for name, strategy in plausible.items()}
    broken = draw(st.sets(st.sampled_from(sorted(plausible)), max_size=len(plausible)))
    for name in sorted(broken)[: draw(st.sampled_from([0, 1, 2, 3, len(plausible)]))]:
        if draw(st.booleans()):
            del record[name]
        else:
            record[name] = draw(WEIRD)
    return record


BREAK = records({"id": st.just("b"), "startTime": iso_timestamps(), "endTime": st.one_of(st.none(), iso_timestamps())})
ENTRY = records(
    {
        "id": st.sampled_from(["e-1", "e-2", "e-3", "e-4", "e-5", "e-6"]),
        "memberId": st.sampled_from([*WORKER_IDS, "m-unknown"]),
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
        "wage": st.one_of(st.floats(0, 500), st.sampled_from(["25", -1])),
        "wageRate": st.sampled_from([10, 40, 20, 30, 99]),
        "changeDate": iso_timestamps(),
        "deletedOn": st.one_of(st.none(), iso_timestamps()),
        "overburden": st.floats(0, 50),
    }
)
MEMBER = records(
    {
        "id": st.sampled_from(WORKER_IDS),
        "firstName": st.text(max_size=5),
        "lastName": st.text(max_size=5),
        "archivedOn": st.one_of(st.none(), iso_timestamps()),
        "updatedOn": iso_timestamps(),
        "wageHistories": st.one_of(st.lists(WAGE, max_size=3), WEIRD),
    }
)
PROJECT = records(
    {
        "id": st.sampled_from(["a", "b", "c", "d"]),
        "title": st.sampled_from(["Patio", "Drive Time", ""]),
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
    rows, aside = projects_to_jobs(PROJECTS, [], [], SETTINGS, COMPANY)
    assert len(aside) == 0
    return split_valid(rows, Job, "job_id")[0]


@PROPERTY
@given(st.lists(ENTRY, max_size=12))
def test_any_time_entries_are_loaded_set_aside_or_removed(jobs: pd.DataFrame, entries: list[dict[str, Any]]) -> None:
    received = copy.deepcopy(entries)
    rows, aside, removed = time_entries_to_attendance(entries, jobs, WORKER_IDS, COMPANY, ZONE, NOW, {"cc-drive"})
    valid, invalid = split_valid(rows, Attendance, "entry_id") if len(rows) else (rows, aside.iloc[0:0])
    assert entries == received  # the records are not changed
    assert len(entries) == len(valid) + len(aside) + len(invalid) + removed
    reasons = pd.concat([aside["reason"], invalid["reason"]])
    assert (reasons.str.len() > 0).all()
    for text in aside["record"]:
        json.loads(text)
    if valid.empty:
        return
    assert valid["entry_id"].is_unique and valid["worker_id"].isin(WORKER_IDS).all()
    assert valid["hours"].between(0, 24).all()
    assert (valid["job_id"] != MILESTONE).all() and set(valid["milestone_id"].dropna()) <= {MILESTONE}
    # Valid ids are unique among the loaded rows, but a set-aside or deleted record may share one.
    ids = [e.get("id") for e in entries]
    drive_code = {
        e["id"]: e.get("costCodeId") == "cc-drive" for e in entries if isinstance(e.get("id"), str) and ids.count(e["id"]) == 1
    }
    single = valid["entry_id"].isin(list(drive_code))
    on_drive = (valid["job_id"] == DRIVE) | valid["entry_id"].map(drive_code).where(single, False).astype(bool)
    assert (valid.loc[single, "is_drive"] == on_drive[single]).all()
    assert valid.loc[valid["job_id"] == DRIVE, "is_drive"].all()
    assert (valid["on_the_clock"] == valid["end_at"].isna()).all()


@settings(PROPERTY, max_examples=30)
@given(st.lists(MEMBER, max_size=6))
def test_any_members_are_loaded_or_set_aside(members: list[dict[str, Any]]) -> None:
    rows, aside = members_to_workers(members, COMPANY, ZONE, now=NOW)
    valid, invalid = split_valid(rows, Worker, "worker_id") if len(rows) else (rows, aside.iloc[0:0])
    assert len(members) == len(valid) + len(aside) + len(invalid)
    if not valid.empty:
        assert valid["worker_id"].is_unique and (valid["hourly_wage"].dropna() >= 0).all()


@settings(PROPERTY, max_examples=30)
@given(st.lists(PROJECT, max_size=6))
def test_any_projects_are_loaded_or_set_aside(projects: list[dict[str, Any]]) -> None:
    rows, aside = projects_to_jobs(projects, [{"projectId": "a", "budgetSeconds": 3600}], [], SETTINGS, COMPANY)
    valid, invalid = split_valid(rows, Job, "job_id") if len(rows) else (rows, aside.iloc[0:0])
    assert len(projects) == len(valid) + len(aside) + len(invalid)
    if not valid.empty:
        assert set(valid["level"]) <= {"job", "milestone"}
        assert (valid["level"] == "milestone").eq(valid["parent_job_id"].notna()).all()
