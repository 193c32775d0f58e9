"""QuickBooks Time records -> cleaned workers, jobs and attendance, then the pandera models.

The records come from the sandbox emulator's company state, which returns exactly what the API
serves, so these tests pin the mapping against the vendor's real shapes; the generator's ground
truth (``CompanyData``) is the independent answer key. The bad-input and property tests pin the
contract of the whole cleaning step: nothing raises, every record is loaded, set aside with a reason
that names the field, or removed because the deleted feed lists it.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.schemas import Attendance, Job, Worker, no_rejects, split_valid
from protiv_dagster.vendors.quickbooks_time.mapping import (
    HOURS_PER_YEAR,
    jobcodes_to_jobs,
    timesheets_to_attendance,
    users_to_workers,
)
from protiv_emulators.generator import generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeCompany, QuickBooksTimeEmulator
from tests.vendors.busybusy.test_mapping_properties import records as broken_records

COMPANY = "acme"
SETTINGS = CompanySettings(timezone="America/Denver")
UTC_NS = pd.DatetimeTZDtype("ns", "UTC")


def hosted_company(**generate: Any) -> QuickBooksTimeCompany:
    """A generated company as the emulator hosts it (no server needed to read its records)."""
    emulator = QuickBooksTimeEmulator()
    emulator.add_company(generate_company(COMPANY, **generate))
    return emulator.company(COMPANY)


@dataclass
class Cleaned:
    """One pass of the cleaning step, the way the assets run it."""

    rows: pd.DataFrame  # mapping output (candidates)
    mapping_aside: pd.DataFrame
    valid: pd.DataFrame  # after split_valid
    validation_aside: pd.DataFrame
    removed: int = 0

    @property
    def set_aside(self) -> pd.DataFrame:
        return pd.concat([self.mapping_aside, self.validation_aside], ignore_index=True)

    def reconciles(self, fetched: int) -> bool:
        return fetched == len(self.valid) + len(self.mapping_aside) + len(self.validation_aside) + self.removed


def validate(rows: pd.DataFrame, model: Any, record_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """split_valid as ``assets.common.write_validated`` calls it (an empty frame is not validated)."""
    if rows.empty:
        return rows, no_rejects()
    return split_valid(rows, model, record_id)


def clean_workers(users: list[dict[str, Any]]) -> Cleaned:
    rows, aside = users_to_workers(users, COMPANY)
    return Cleaned(rows, aside, *validate(rows, Worker, "worker_id"))


def clean_jobs(jobcodes: list[dict[str, Any]], customfields: list[dict[str, Any]]) -> Cleaned:
    rows, aside = jobcodes_to_jobs(jobcodes, customfields, SETTINGS, COMPANY)
    return Cleaned(rows, aside, *validate(rows, Job, "job_id"))


def clean_attendance(
    timesheets: list[dict[str, Any]], deleted: list[dict[str, Any]], jobs: pd.DataFrame, worker_ids: Any
) -> Cleaned:
    deleted_ids = {str(r.get("id")) for r in deleted}  # as sources.QuickBooksTimeSource does
    rows, aside, removed = timesheets_to_attendance(timesheets, deleted_ids, jobs, worker_ids, COMPANY)
    return Cleaned(rows, aside, *validate(rows, Attendance, "entry_id"), removed=removed)


@dataclass
class Account:
    company: QuickBooksTimeCompany
    users: list[dict[str, Any]]
    jobcodes: list[dict[str, Any]]
    customfields: list[dict[str, Any]]
    timesheets: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    workers: Cleaned
    jobs: Cleaned
    attendance: Cleaned


def read_and_clean(company: QuickBooksTimeCompany) -> Account:
    users = company.users()
    jobcodes = company.jobcodes(customfields=True)
    customfields = company.customfields()
    timesheets = company.timesheets()
    deleted = company.deleted_timesheets()
    workers = clean_workers(users)
    jobs = clean_jobs(jobcodes, customfields)
    attendance = clean_attendance(timesheets, deleted, jobs.valid, workers.valid["worker_id"])
    return Account(company, users, jobcodes, customfields, timesheets, deleted, workers, jobs, attendance)


@pytest.fixture(scope="module")
def acme() -> Account:
    """Read-only: tests that change records build their own company."""
    return read_and_clean(
        hosted_company(seed=1, workers=20, as_of=datetime(2026, 11, 20, tzinfo=UTC), timezone="America/Denver")
    )


def by_id(frame: pd.DataFrame, column: str) -> dict[str, dict[str, Any]]:
    return {row[column]: row for row in frame.to_dict("records")}


# -- 1. real records ------------------------------------------------------------------------------
def test_real_records_are_all_loaded_and_valid(acme: Account) -> None:
    for cleaned, fetched in (
        (acme.workers, len(acme.users)),
        (acme.jobs, len(acme.jobcodes)),
        (acme.attendance, len(acme.timesheets)),
    ):
        assert cleaned.set_aside.empty, cleaned.set_aside.to_dict("records")
        assert len(cleaned.valid) == fetched
        assert cleaned.reconciles(fetched)
    assert acme.attendance.removed == 0  # the deleted feed holds only sheets gone from the live one
    assert acme.deleted, "the generated company has deleted duplicates"
    assert not {str(r["id"]) for r in acme.deleted} & set(acme.attendance.valid["entry_id"])


def test_every_timesheet_appears_once(acme: Account) -> None:
    ids = acme.attendance.valid["entry_id"]
    assert ids.is_unique
    assert sorted(ids) == sorted(str(r["id"]) for r in acme.timesheets)


def test_attendance_dtypes_after_validation(acme: Account) -> None:
    valid = acme.attendance.valid
    for column in ("start_at", "end_at", "source_modified_at"):
        assert valid[column].dtype == UTC_NS, column
    assert valid["hours"].dtype == "float64"
    assert valid["is_drive"].dtype == bool and valid["on_the_clock"].dtype == bool
    assert all(isinstance(d, date) and not isinstance(d, datetime) for d in valid["work_date"])


def test_timesheet_fields_map_one_to_one(acme: Account) -> None:
    rows = by_id(acme.attendance.valid, "entry_id")
    jobcodes = {j["id"]: j for j in acme.jobcodes}
    kinds = {"job": 0, "milestone": 0, "drive": 0, "manual": 0, "overnight": 0}
    for record in acme.timesheets:
        row = rows[str(record["id"])]
        assert row["worker_id"] == str(record["user_id"])
        assert row["hours"] == record["duration"] / 3600
        assert row["work_date"] == date.fromisoformat(record["date"])
        assert row["entry_type"] == record["type"]
        assert row["on_the_clock"] is record["on_the_clock"]
        assert row["source_modified_at"] == pd.Timestamp(record["last_modified"])
        for field, column in (("start", "start_at"), ("end", "end_at")):
            if record[field]:
                # The same instant as the offset timestamp the vendor sent, held in UTC.
                assert row[column] == pd.Timestamp(record[field]), (record["id"], field)
                assert str(row[column].tz) == "UTC"
            else:
                assert pd.isna(row[column]), (record["id"], field)
        if record["end"] and record["end"][:10] != record["date"]:
            kinds["overnight"] += 1  # the work date stays the vendor's date, not the end's
        # A child jobcode is a milestone of its parent, the job.
        jobcode = jobcodes[record["jobcode_id"]]
        if jobcode["parent_id"]:
            kinds["milestone"] += 1
            assert (row["job_id"], row["milestone_id"]) == (str(jobcode["parent_id"]), str(jobcode["id"]))
        else:
            kinds["job"] += 1
            assert row["job_id"] == str(jobcode["id"]) and pd.isna(row["milestone_id"])
        top = jobcodes[int(row["job_id"])]
        assert row["is_drive"] is (top["name"] == "Drive Time")
        kinds["drive"] += row["is_drive"]
        kinds["manual"] += record["type"] == "manual"
    assert all(kinds.values()), kinds  # the company exercises every case


def test_attendance_matches_the_generated_truth(acme: Account) -> None:
    rows = by_id(acme.attendance.valid, "entry_id")
    data = acme.company.data
    for shift in data.shifts:
        row = rows[str(shift.id)]
        assert row["job_id"] == str(shift.job_id)
        assert (None if pd.isna(row["milestone_id"]) else row["milestone_id"]) == (
            str(shift.milestone_id) if shift.milestone_id else None
        )
        assert row["work_date"] == shift.local_date
        assert row["is_drive"] is shift.is_drive
        if not shift.on_the_clock:
            assert row["hours"] == pytest.approx(shift.duration_seconds / 3600)
        if shift.start:
            assert row["start_at"] == shift.start
        if shift.end:
            assert row["end_at"] == shift.end
            # Unpaid breaks are excluded from duration, so the clock span is never shorter.
            assert (row["end_at"] - row["start_at"]).total_seconds() >= row["hours"] * 3600 - 1e-6


def test_exactly_one_sheet_on_the_clock(acme: Account) -> None:
    valid = acme.attendance.valid
    running = valid[valid["on_the_clock"]]
    assert len(running) == 1
    row = running.iloc[0]
    assert row["entry_id"] == str(acme.company.data.on_the_clock_shift.id)
    assert pd.isna(row["end_at"]) and pd.notna(row["start_at"])
    as_of = pd.Timestamp(acme.company.data.as_of)
    assert row["hours"] == pytest.approx((as_of - row["start_at"]).total_seconds() / 3600)
    assert valid.loc[~valid["on_the_clock"] & (valid["entry_type"] == "regular"), "end_at"].notna().all()


def test_manual_sheets_have_no_clock_times(acme: Account) -> None:
    valid = acme.attendance.valid
    manual = valid[valid["entry_type"] == "manual"]
    assert len(manual) > 0
    assert manual["start_at"].isna().all() and manual["end_at"].isna().all()
    assert (manual["hours"] > 0).all() and not manual["on_the_clock"].any()


def test_workers_wages_and_dates(acme: Account) -> None:
    rows = by_id(acme.workers.valid, "worker_id")
    salaried = 0
    for user in acme.users:
        row = rows[str(user["id"])]
        truth = acme.company.data.worker_by_id(user["id"])
        assert row["pay_interval"] == user["pay_interval"]
        if user["pay_interval"] == "year":
            salaried += 1
            assert row["hourly_wage"] == round(user["pay_rate"] / HOURS_PER_YEAR, 4)
            assert row["hourly_wage"] == pytest.approx(float(truth.hourly_wage), abs=0.01)
        else:
            assert row["hourly_wage"] == user["pay_rate"] == float(truth.hourly_wage)
        assert row["hire_date"] == truth.hire_date
        assert (None if pd.isna(row["term_date"]) else row["term_date"]) == truth.term_date  # "0000-00-00" is unset
        assert row["active"] is truth.active
        assert (row["first_name"], row["last_name"]) == (truth.first_name, truth.last_name)
    assert salaried > 0


def test_jobs_levels_budgets_status_and_flags(acme: Account) -> None:
    rows = by_id(acme.jobs.valid, "job_id")
    data = acme.company.data
    for job in data.jobs:
        row = rows[str(job.id)]
        assert row["level"] == "job" and pd.isna(row["parent_job_id"])
        assert row["name"] == job.name and row["status"] == job.status
        assert row["recurring"] is job.recurring and row["is_drive"] is job.is_drive
        assert (None if pd.isna(row["budget_hours"]) else row["budget_hours"]) == (
            None if job.budget_hours is None else pytest.approx(job.budget_hours, abs=0.005)
        )
    for milestone in data.milestones:
        row = rows[str(milestone.id)]
        parent = data.job_by_id(milestone.job_id)
        assert (row["level"], row["parent_job_id"]) == ("milestone", str(milestone.job_id))
        assert row["status"] == milestone.status
        assert row["recurring"] is parent.recurring  # milestones inherit the job's flags
        assert row["is_drive"] is parent.is_drive
    drive = acme.jobs.valid[acme.jobs.valid["is_drive"]]
    assert list(drive["name"]) == ["Drive Time"]


def test_created_dates_and_no_task_ids(acme: Account) -> None:
    created = by_id(acme.jobs.valid, "job_id")
    for record in [*acme.company.data.jobs, *acme.company.data.milestones]:
        assert created[str(record.id)]["created_date"] == record.created_at.astimezone(acme.company.data.zone).date()
    assert acme.attendance.valid["task_id"].isna().all()  # QuickBooks Time has no line items
    # Without the company's time zone, the date the stamp is written in; a bad stamp is set aside.
    jobcodes = copy.deepcopy(acme.jobcodes[:2])
    jobcodes[0]["created"] = "2026-11-06T02:30:00+00:00"  # the evening of Nov 5 in Denver
    jobcodes[1]["created"] = "last week"
    rows, aside = jobcodes_to_jobs(jobcodes, acme.customfields, CompanySettings(), COMPANY)
    assert rows["created_date"].tolist() == [date(2026, 11, 6)]
    assert "created is not ISO 8601" in aside["reason"].iloc[0]
    rows, _ = jobcodes_to_jobs(jobcodes[:1], acme.customfields, SETTINGS, COMPANY)
    assert rows["created_date"].tolist() == [date(2026, 11, 5)]


# -- 2. daylight saving ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fall_back() -> QuickBooksTimeCompany:
    """Denver falls back on 2026-11-01 at 02:00 MDT (08:00Z) to 01:00 MST."""
    return hosted_company(
        seed=1, workers=5, days=7, as_of=datetime(2026, 11, 3, 12, tzinfo=UTC), timezone="America/Denver"
    )


def test_shift_across_fall_back_counts_real_hours(fall_back: QuickBooksTimeCompany) -> None:
    company = fall_back
    user_id = next(u["id"] for u in company.users() if u["active"])
    job_id = next(
        j["id"] for j in company.jobcodes() if j["active"] and not j["parent_id"] and j["name"] != "Drive Time"
    )
    # 01:00 MDT (UTC-6) = 07:00Z to 03:00 MST (UTC-7) = 10:00Z: 3 real hours, 2 on the wall clock.
    across = company.add_timesheet(user_id, job_id, start="2026-11-01T01:00:00-06:00", end="2026-11-01T03:00:00-07:00")
    # 01:30 MDT (07:30Z) to 01:15 MST (08:15Z): the wall clock goes back, time does not.
    repeated = company.add_timesheet(user_id, job_id, start="2026-11-01T07:30:00Z", end="2026-11-01T08:15:00Z")
    assert (across["start"], across["end"], across["duration"]) == (
        "2026-11-01T01:00:00-06:00",
        "2026-11-01T03:00:00-07:00",
        10800,
    )
    assert (repeated["start"], repeated["end"]) == ("2026-11-01T01:30:00-06:00", "2026-11-01T01:15:00-07:00")

    account = read_and_clean(company)
    assert account.attendance.set_aside.empty, account.attendance.set_aside.to_dict("records")
    rows = by_id(account.attendance.valid, "entry_id")
    row = rows[str(across["id"])]
    assert row["start_at"] == pd.Timestamp("2026-11-01T07:00:00Z")
    assert row["end_at"] == pd.Timestamp("2026-11-01T10:00:00Z")
    assert row["end_at"] - row["start_at"] == timedelta(hours=3)
    assert row["hours"] == across["duration"] / 3600 == 3.0
    assert row["work_date"] == date(2026, 11, 1)
    row = rows[str(repeated["id"])]
    assert row["end_at"] - row["start_at"] == timedelta(minutes=45)
    assert row["hours"] == repeated["duration"] / 3600 == 0.75


def test_offsets_on_either_side_of_the_change(fall_back: QuickBooksTimeCompany) -> None:
    change = datetime(2026, 11, 1, 8, tzinfo=UTC)
    rows = by_id(read_and_clean(fall_back).attendance.valid, "entry_id")
    seen = set()
    for record in fall_back.timesheets():
        if not record["start"]:
            continue
        start = rows[str(record["id"])]["start_at"]
        offset = "-06:00" if start < change else "-07:00"
        assert record["start"].endswith(offset), record  # the offset in force at that instant
        assert start == pd.Timestamp(record["start"])
        seen.add(offset)
    assert seen == {"-06:00", "-07:00"}


# -- 3. bad input ---------------------------------------------------------------------------------
def _base_sheet(acme: Account) -> dict[str, Any]:
    """A finished regular timesheet, as served."""
    return copy.deepcopy(next(r for r in acme.timesheets if r["type"] == "regular" and not r["on_the_clock"]))


def _other_sheet(acme: Account) -> dict[str, Any]:
    return copy.deepcopy([r for r in acme.timesheets if r["type"] == "regular" and not r["on_the_clock"]][1])


def _set(**changes: Any):
    def change(record: dict[str, Any]) -> None:
        record.update(changes)

    return change


def _drop(field: str):
    def change(record: dict[str, Any]) -> None:
        del record[field]

    return change


def _end_before_start(record: dict[str, Any]) -> None:
    record["end"] = (datetime.fromisoformat(record["start"]) - timedelta(hours=1)).isoformat()


BAD_SHEETS = [
    # (case, change, stage that sets it aside, words the reason must hold)
    ("missing id", _drop("id"), "mapping", "id is missing"),
    ("id zero", _set(id=0), "mapping", "id is missing"),
    ("unknown user", _set(user_id=999), "mapping", "user_id is not a known worker"),
    ("user_id null", _set(user_id=None), "mapping", "user_id is missing"),
    ("unknown jobcode", _set(jobcode_id=999), "mapping", "jobcode_id is not a known job"),
    ("start not ISO", _set(start="yesterday 7am"), "mapping", "start is not an ISO 8601"),
    ("start out of range", _set(start="2300-01-01T07:00:00-07:00"), "mapping", "start is not an ISO 8601"),
    ("end not ISO", _set(end="17:00"), "mapping", "end is not an ISO 8601"),
    ("regular without start", _set(start=""), "mapping", "a regular timesheet has no start"),
    ("finished regular without end", _set(end=""), "mapping", "a finished regular timesheet has no end"),
    ("date malformed", _set(date="2026-13-45"), "mapping", "date is missing or not YYYY-MM-DD"),
    ("date missing", _drop("date"), "mapping", "date is missing or not YYYY-MM-DD"),
    ("date beyond datetime64", _set(date="2263-01-01"), "mapping", "date is missing or not YYYY-MM-DD"),
    ("type weird", _set(type="weird"), "mapping", "type is not regular or manual"),
    ("on_the_clock not bool", _set(on_the_clock="false"), "mapping", "on_the_clock is missing or not a boolean"),
    ("last_modified missing", _drop("last_modified"), "mapping", "last_modified is missing or not ISO 8601"),
    ("duration text", _set(duration="abc"), "mapping", "duration is missing or not a number"),
    ("duration beyond float", _set(duration=10**400), "mapping", "duration is missing or not a number"),
    ("duration infinite", _set(duration="inf"), "mapping", "duration is missing or not a number"),
    ("end before start", _end_before_start, "validation", "end_after_start (end is not before start)"),
    ("negative duration", _set(duration=-60), "validation", "hours: greater_than_or_equal_to(0)"),
    ("duration over 24 h", _set(duration=24 * 3600 + 1), "validation", "hours: less_than_or_equal_to(24)"),
]


@pytest.mark.parametrize(
    ("change", "stage", "reason"), [case[1:] for case in BAD_SHEETS], ids=[c[0] for c in BAD_SHEETS]
)
def test_bad_timesheet_is_set_aside_with_its_reason(acme: Account, change, stage: str, reason: str) -> None:
    good, bad = _other_sheet(acme), _base_sheet(acme)
    change(bad)
    cleaned = clean_attendance([good, bad], [], acme.jobs.valid, acme.workers.valid["worker_id"])

    assert cleaned.reconciles(2)
    assert list(cleaned.valid["entry_id"]) == [str(good["id"])]
    aside = cleaned.mapping_aside if stage == "mapping" else cleaned.validation_aside
    assert len(aside) == 1 and len(cleaned.set_aside) == 1
    assert reason in aside.iloc[0]["reason"], aside.iloc[0]["reason"]
    assert aside.iloc[0]["record_id"] == (str(bad["id"]) if bad.get("id") else "")
    if stage == "mapping":
        assert json.loads(aside.iloc[0]["record"]) == json.loads(json.dumps(bad, sort_keys=True, default=str))


def test_one_bad_sheet_lists_every_problem(acme: Account) -> None:
    bad = _base_sheet(acme)
    bad.update(user_id=999, jobcode_id=999, type="weird", date="nope")
    cleaned = clean_attendance([bad], [], acme.jobs.valid, acme.workers.valid["worker_id"])
    assert cleaned.rows.empty and len(cleaned.mapping_aside) == 1 and cleaned.reconciles(1)
    assert cleaned.mapping_aside.iloc[0]["reason"] == (
        "user_id is not a known worker; jobcode_id is not a known job or milestone; "
        "type is not regular or manual; date is missing or not YYYY-MM-DD"
    )


def test_duplicated_id_sets_both_copies_aside(acme: Account) -> None:
    sheet, other = _base_sheet(acme), _other_sheet(acme)
    cleaned = clean_attendance(
        [sheet, copy.deepcopy(sheet), other], [], acme.jobs.valid, acme.workers.valid["worker_id"]
    )
    assert cleaned.mapping_aside.empty
    assert list(cleaned.validation_aside["record_id"]) == [str(sheet["id"])] * 2
    assert all("unique_entry" in r for r in cleaned.validation_aside["reason"])
    assert list(cleaned.valid["entry_id"]) == [str(other["id"])]
    assert cleaned.reconciles(3)


def test_sheet_in_both_feeds_is_removed_not_set_aside(acme: Account) -> None:
    sheet, other = _base_sheet(acme), _other_sheet(acme)
    cleaned = clean_attendance([sheet, other], [{"id": sheet["id"]}], acme.jobs.valid, acme.workers.valid["worker_id"])
    assert cleaned.removed == 1
    assert cleaned.set_aside.empty
    assert list(cleaned.valid["entry_id"]) == [str(other["id"])]
    assert cleaned.reconciles(2)


def test_every_sheet_deleted_or_none_at_all(acme: Account) -> None:
    sheet = _base_sheet(acme)
    cleaned = clean_attendance([sheet], [sheet], acme.jobs.valid, acme.workers.valid["worker_id"])
    assert (cleaned.removed, len(cleaned.valid), len(cleaned.set_aside)) == (1, 0, 0)
    cleaned = clean_attendance([], [sheet], acme.jobs.valid, acme.workers.valid["worker_id"])
    assert (cleaned.removed, len(cleaned.valid), len(cleaned.set_aside)) == (0, 0, 0)


def test_manual_and_running_sheets_need_no_end(acme: Account) -> None:
    manual = copy.deepcopy(next(r for r in acme.timesheets if r["type"] == "manual"))
    running = copy.deepcopy(next(r for r in acme.timesheets if r["on_the_clock"]))
    cleaned = clean_attendance([manual, running], [], acme.jobs.valid, acme.workers.valid["worker_id"])
    assert cleaned.set_aside.empty and len(cleaned.valid) == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_set(pay_rate="abc"), "pay_rate is not a number"),
        (_set(active="false"), "active is missing or not a boolean"),
        (_drop("active"), "active is missing or not a boolean"),
        (_set(hire_date="01/19/2018"), "hire_date or term_date is not a YYYY-MM-DD date"),
        (_set(term_date="2263-01-01"), "hire_date or term_date is not a YYYY-MM-DD date"),
        (_drop("id"), "id is missing"),
        (_set(last_modified="never"), "last_modified is missing or not ISO 8601"),
        (_set(pay_rate=-5), "hourly_wage: greater_than_or_equal_to(0)"),
    ],
    ids=[
        "pay_rate abc",
        "active text",
        "active missing",
        "hire_date US",
        "term_date 2263",
        "no id",
        "last_modified",
        "negative rate",
    ],
)
def test_bad_user_is_set_aside_with_its_reason(acme: Account, change, reason: str) -> None:
    users = copy.deepcopy(acme.users[:3])
    change(users[1])
    cleaned = clean_workers(users)
    assert cleaned.reconciles(3)
    assert len(cleaned.set_aside) == 1 and len(cleaned.valid) == 2
    assert reason in cleaned.set_aside.iloc[0]["reason"]


def _customfield_id(acme: Account, name: str) -> str:
    return next(str(f["id"]) for f in acme.customfields if f["name"] == name)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("Budget Hours", "abc", "custom field 'Budget Hours' is not a number of hours"),
        ("Budget Hours", "1e999", "custom field 'Budget Hours' is not a number of hours"),
        ("Budget Hours", "-3", "budget_hours: greater_than_or_equal_to(0)"),
        ("Job Status", "Maybe", "custom field 'Job Status' is not Open, Completed or Canceled"),
    ],
)
def test_bad_jobcode_custom_field_is_set_aside(acme: Account, field: str, value: str, reason: str) -> None:
    jobcodes = copy.deepcopy(acme.jobcodes)
    target = next(j for j in jobcodes if not j["parent_id"] and j["name"] != "Drive Time")
    target["customfields"][_customfield_id(acme, field)] = value
    cleaned = clean_jobs(jobcodes, acme.customfields)
    assert cleaned.reconciles(len(jobcodes))
    assert list(cleaned.set_aside["record_id"]) == [str(target["id"])]
    assert reason in cleaned.set_aside.iloc[0]["reason"]


def test_job_status_without_the_custom_field_follows_active(acme: Account) -> None:
    jobcodes = copy.deepcopy(acme.jobcodes)
    for jobcode in jobcodes:
        jobcode.pop("customfields")
    cleaned = clean_jobs(jobcodes, acme.customfields)
    assert cleaned.set_aside.empty
    assert (cleaned.valid["status"] == cleaned.valid["active"].map({True: "open", False: "completed"})).all()
    assert cleaned.valid["budget_hours"].isna().all() and not cleaned.valid["recurring"].any()


BUDGET_FIELDS = {
    "Budget Type": 9001,
    "Budget Amount": 9002,
    "Contract Price": 9003,
    "Labor Budget %": 9004,
    "Rate": 9005,
    "Quantity": 9006,
    "Service Type": 9007,
}


def _with_budget_fields(
    acme: Account, values: dict[str, str]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], dict]:
    """The account's jobcodes with the company's budget custom fields filled on its first job."""
    fields = acme.customfields + [{"id": i, "name": name} for name, i in BUDGET_FIELDS.items()]
    jobcodes = copy.deepcopy(acme.jobcodes)
    target = next(j for j in jobcodes if not j["parent_id"] and j["name"] != "Drive Time")
    target["customfields"].update({str(BUDGET_FIELDS[name]): value for name, value in values.items()})
    return jobcodes, fields, target


def test_budget_custom_fields_fill_the_engine_columns(acme: Account) -> None:
    jobcodes, fields, target = _with_budget_fields(
        acme,
        {
            "Budget Type": "Contract Price",
            "Budget Amount": "$5,000",
            "Contract Price": "12000.50",
            "Labor Budget %": "35 %",
            "Rate": "2.50",
            "Quantity": "1,200",
            "Service Type": " Warranty ",
        },
    )
    cleaned = clean_jobs(jobcodes, fields)
    assert cleaned.set_aside.empty
    rows = by_id(cleaned.valid, "job_id")
    row = rows[str(target["id"])]
    assert row["budget_type"] == "contract_price" and row["service_type"] == "Warranty"
    assert (row["budget_amount"], row["contract_price"], row["labor_budget_percent"], row["rate"], row["quantity"]) == (
        5000.0,
        12000.5,
        35.0,
        2.5,
        1200.0,
    )
    others = cleaned.valid[cleaned.valid["job_id"] != str(target["id"])]
    assert others["budget_type"].isna().all() and others["budget_amount"].isna().all()
    assert cleaned.valid["property_id"].isna().all()  # QuickBooks Time has no property


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("Hours", "hours"),
        ("task-hours", "task_hours"),
        ("Task  Amount", "task_amount"),
        ("Rate", "rate"),
        ("Lump", "lump"),
    ],
)
def test_budget_type_is_read_in_the_engines_spelling(acme: Account, typed: str, stored: str) -> None:
    jobcodes, fields, target = _with_budget_fields(acme, {"Budget Type": typed})
    cleaned = clean_jobs(jobcodes, fields)
    assert by_id(cleaned.valid, "job_id")[str(target["id"])]["budget_type"] == stored


@pytest.mark.parametrize(
    ("field", "value"), [("Budget Amount", "lots"), ("Labor Budget %", "a third"), ("Quantity", "1e999")]
)
def test_bad_budget_custom_field_is_set_aside(acme: Account, field: str, value: str) -> None:
    jobcodes, fields, target = _with_budget_fields(acme, {field: value})
    cleaned = clean_jobs(jobcodes, fields)
    assert cleaned.reconciles(len(jobcodes))
    assert list(cleaned.set_aside["record_id"]) == [str(target["id"])]
    assert f"custom field {field!r} is not a" in cleaned.set_aside.iloc[0]["reason"]


# -- 4. property: whatever arrives, nothing raises and the counts reconcile ------------------------
WORKER_IDS = ["1", "2", "3"]
JOBCODES = [
    {"id": 10, "parent_id": 0, "name": "Smith patio", "active": True, "last_modified": "2026-01-01T00:00:00+00:00"},
    {"id": 11, "parent_id": 10, "name": "Pavers", "active": True, "last_modified": "2026-01-01T00:00:00+00:00"},
    {"id": 12, "parent_id": 0, "name": "Drive Time", "active": True, "last_modified": "2026-01-01T00:00:00+00:00"},
]
DELETED = [{"id": 4}, {"id": "5"}]

WEIRD = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([10**400, -(10**400), 2**63, -(2**63) - 1, 2**64]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["", " ", "\ud800", "\x00", "\u202e1", "٣", "１２", "nan", "inf", "-0", "1e400", "0000-00-00"]),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
OFFSETS = st.sampled_from(["Z", "+00:00", "-07:00", "-06:00", "+05:45", "+14:00", "-12:00", "+23:59", "", "+0530"])


@st.composite
def iso_timestamps(draw: st.DrawFn) -> str:
    moment = draw(
        st.one_of(
            st.datetimes(min_value=datetime(2026, 10, 31), max_value=datetime(2026, 11, 3)),
            st.datetimes(),  # years 1 to 9999: most are beyond what datetime64[ns] holds
        )
    )
    text = moment.isoformat(timespec=draw(st.sampled_from(["seconds", "microseconds", "minutes"])))
    return text + draw(OFFSETS)


def records(plausible: dict[str, st.SearchStrategy]) -> st.SearchStrategy:
    """The property tests' broken-record strategy, with this module's wider set of weird values."""
    return broken_records(plausible, weird=WEIRD)


TIMESHEET = records(
    {
        "id": st.one_of(st.integers(0, 8), st.sampled_from(["6", " 7 ", "0", "4.0"])),
        "user_id": st.one_of(st.integers(0, 4), st.sampled_from(WORKER_IDS)),
        "jobcode_id": st.sampled_from([10, 11, 12, 13, "11", 0]),
        "start": st.one_of(iso_timestamps(), st.just("")),
        "end": st.one_of(iso_timestamps(), st.just("")),
        "duration": st.one_of(st.integers(-3600, 30 * 3600), st.floats(-10, 1e6), st.sampled_from(["3600", "1.5e3"])),
        "date": st.one_of(st.dates().map(date.isoformat), st.sampled_from(["2026-02-30", "2026-11-1", "0000-00-00"])),
        "type": st.sampled_from(["regular", "regular", "manual", "Regular"]),
        "on_the_clock": st.booleans(),
        "last_modified": iso_timestamps(),
        "notes": WEIRD,
        "customfields": st.just(""),
    }
)
# Each example costs about 0.1 s of fixed pandas and pandera overhead, whatever the list length:
# fewer, longer lists cover more within the suite's time budget.
PROPERTY = settings(max_examples=80, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def property_jobs() -> pd.DataFrame:
    return clean_jobs(JOBCODES, []).valid


@PROPERTY
@given(st.lists(TIMESHEET, max_size=15))
def test_any_timesheets_are_loaded_set_aside_or_removed(
    property_jobs: pd.DataFrame, timesheets: list[dict[str, Any]]
) -> None:
    received = copy.deepcopy(timesheets)
    cleaned = clean_attendance(timesheets, DELETED, property_jobs, WORKER_IDS)

    assert timesheets == received  # the records are not changed
    assert (
        len(timesheets)
        == len(cleaned.valid) + len(cleaned.mapping_aside) + len(cleaned.validation_aside) + cleaned.removed
    )
    assert (cleaned.set_aside["reason"].str.len() > 0).all()
    for text in cleaned.set_aside["record"]:
        json.loads(text)
    valid = cleaned.valid
    if valid.empty:
        return  # possibly without columns: the asset reindexes an empty frame to the table
    assert valid["entry_id"].is_unique and not valid["entry_id"].isin(["4", "5"]).any()
    assert valid["worker_id"].isin(WORKER_IDS).all()
    assert valid["hours"].between(0, 24).all()
    assert (valid["end_at"].isna() | valid["start_at"].isna() | (valid["end_at"] >= valid["start_at"])).all()
    regular = valid["entry_type"] == "regular"
    assert valid.loc[regular, "start_at"].notna().all()
    assert valid.loc[regular & ~valid["on_the_clock"], "end_at"].notna().all()
    assert (valid["job_id"] != "11").all() and set(valid["milestone_id"].dropna()) <= {"11"}
    assert (valid["is_drive"] == (valid["job_id"] == "12")).all()


USER = records(
    {
        "id": st.integers(0, 5),
        "first_name": st.text(max_size=5),
        "last_name": st.text(max_size=5),
        "active": st.booleans(),
        "pay_rate": st.one_of(st.floats(0, 1e6), st.sampled_from(["25.5", "abc", 10**400])),
        "pay_interval": st.sampled_from(["hour", "year", "week"]),
        "hire_date": st.one_of(st.dates().map(date.isoformat), st.just("0000-00-00")),
        "term_date": st.one_of(st.dates().map(date.isoformat), st.just("0000-00-00")),
        "last_modified": iso_timestamps(),
    }
)


@settings(PROPERTY, max_examples=30)
@given(st.lists(USER, max_size=10))
def test_any_users_are_loaded_or_set_aside(users: list[dict[str, Any]]) -> None:
    cleaned = clean_workers(users)
    assert cleaned.reconciles(len(users))
    if not cleaned.valid.empty:
        assert cleaned.valid["worker_id"].is_unique and (cleaned.valid["hourly_wage"].dropna() >= 0).all()
        assert cleaned.valid["active"].dtype == bool
