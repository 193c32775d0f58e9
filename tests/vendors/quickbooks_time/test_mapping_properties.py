"""Any QuickBooks Time records, however broken, are loaded, set aside with a reason, or removed as
deleted: the mapping never raises, the counts reconcile, and every loaded or set-aside value can be
written to either warehouse.

test_quickbooks_time.py fuzzes timesheets and users with plausible ids; this file adds jobcodes with
their custom fields, ids and text in odd Unicode (lone surrogates as a non-UTF-8 payload decodes to,
NUL, bidi controls, full-width digits), a deleted feed with odd ids, and the check that what comes out
is storable text.
"""

from __future__ import annotations

import copy
import json
from datetime import date
from typing import Any

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.schemas import Attendance, Job, Worker, no_rejects, split_valid
from protiv_dagster.tables import ATTENDANCE, JOBS, WORKERS
from protiv_dagster.vendors.quickbooks_time.mapping import jobcodes_to_jobs, timesheets_to_attendance, users_to_workers
from protiv_dagster.warehouse.declarations import Table
from tests.vendors.busybusy.test_mapping_properties import (
    ODD_TEXT,
    PROPERTY,
    WEIRD,
    assert_storable,
    iso_timestamps,
    records,
)

COMPANY = "acme"
WORKER_IDS = ["1", "2", "3", "\u202e4"]
CUSTOMFIELDS = [
    {"id": 100, "name": "Budget Hours"},
    {"id": 101, "name": "Job Status"},
    {"id": 102, "name": "Recurring"},
    {"id": 103, "name": "Budget Type"},
    {"id": 104, "name": "Budget Amount"},
    {"id": 105, "name": "Labor Budget %"},
    {"id": 106, "name": "Service Type"},
]
JOBCODES = [
    {"id": 10, "parent_id": 0, "name": "Smith patio", "active": True, "last_modified": "2026-01-01T00:00:00+00:00"},
    {"id": 11, "parent_id": 10, "name": "Pavers", "active": True, "last_modified": "2026-01-01T00:00:00+00:00"},
    {"id": 12, "parent_id": 0, "name": "Drive Time", "active": True, "last_modified": "2026-01-01T00:00:00+00:00"},
]
IDS = st.one_of(
    st.integers(-2, 8), st.sampled_from(["6", " 7 ", "0", "4.0", "\ud800", "a\x00b", "\u202e9", "１２"]), ODD_TEXT
)


def validate(rows: pd.DataFrame, model: Any, record_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """split_valid as the assets call it: an empty frame is not validated."""
    return (rows, no_rejects()) if rows.empty else split_valid(rows, model, record_id)


def check_outcome(
    records_in: list[dict[str, Any]], table: Table, valid: pd.DataFrame, *asides: pd.DataFrame, removed: int = 0
) -> None:
    """Counts reconcile, every set-aside record says why, and everything can be written."""
    assert len(records_in) == len(valid) + sum(len(a) for a in asides) + removed
    for aside in asides:
        assert (aside["reason"].str.len() > 0).all()
        for text in aside["record"]:
            json.loads(text)
        assert_storable(aside)
    assert_storable(valid, table)


CUSTOM_VALUES = st.fixed_dictionaries(
    {},
    optional={
        "100": st.one_of(st.sampled_from(["12", "-3", "1e400", "nan", "", "twelve"]), WEIRD),
        "101": st.one_of(st.sampled_from(["Open", "completed", "Cancelled", "Dreaming", ""]), WEIRD),
        "102": st.one_of(st.sampled_from(["Yes", "no", ""]), WEIRD),
        "103": st.one_of(st.sampled_from(["Contract Price", "task-hours", "Hours", "\ud800"]), WEIRD),
        "104": st.one_of(st.sampled_from(["$5,000", "5000", "-1", "$", "1e13", "$999,999,999,999.995"]), WEIRD),
        "105": st.one_of(st.sampled_from(["35 %", "150", "-5"]), WEIRD),
        "106": st.one_of(st.sampled_from(["Warranty", " ", "\x00"]), WEIRD),
    },
)
JOBCODE = records(
    {
        "id": IDS,
        "parent_id": st.one_of(st.sampled_from([0, 10, 11, "10", 99]), IDS),
        "name": st.one_of(st.sampled_from(["Patio", "Drive Time", "", "Drive\x00Time"]), ODD_TEXT),
        "short_code": st.one_of(st.none(), st.text(max_size=3), ODD_TEXT),
        "active": st.booleans(),
        "last_modified": iso_timestamps(),
        "customfields": st.one_of(CUSTOM_VALUES, WEIRD),
    }
)
TIMESHEET = records(
    {
        "id": IDS,
        "user_id": st.one_of(st.integers(0, 4), st.sampled_from(WORKER_IDS), IDS),
        "jobcode_id": st.one_of(st.sampled_from([10, 11, 12, 13, "11", 0]), IDS),
        "start": st.one_of(iso_timestamps(), st.just("")),
        "end": st.one_of(iso_timestamps(), st.just("")),
        # Huge and negative durations, and durations that disagree with start and end.
        "duration": st.one_of(st.integers(-(10**7), 10**7), st.sampled_from([86_401, 10**20, -1, 2**63])),
        "date": st.one_of(
            st.dates().map(date.isoformat), st.sampled_from(["2026-02-30", "0000-00-00", "2026-11-02\x00"])
        ),
        "type": st.sampled_from(["regular", "regular", "manual", "Regular", "manual\u200b"]),
        "on_the_clock": st.booleans(),
        "last_modified": iso_timestamps(),
    }
)
USER = records(
    {
        "id": IDS,
        "first_name": st.one_of(st.text(max_size=5), ODD_TEXT),
        "last_name": st.one_of(st.text(max_size=5), ODD_TEXT),
        "active": st.booleans(),
        "pay_rate": st.one_of(
            st.floats(-10, 1e10), st.sampled_from(["25.5", "-3", 10**400, 999_999.99995, 2_079_999_999])
        ),
        "pay_interval": st.one_of(st.sampled_from(["hour", "year", "week"]), WEIRD),
        "hire_date": st.one_of(st.dates().map(date.isoformat), st.just("0000-00-00")),
        "term_date": st.one_of(st.dates().map(date.isoformat), st.just("0000-00-00")),
        "last_modified": iso_timestamps(),
    }
)


@settings(PROPERTY, max_examples=60)
@given(st.lists(JOBCODE, max_size=8))
def test_any_jobcodes_with_any_custom_fields_are_loaded_or_set_aside(jobcodes: list[dict[str, Any]]) -> None:
    received = copy.deepcopy(jobcodes)
    rows, aside = jobcodes_to_jobs(jobcodes, CUSTOMFIELDS, CompanySettings(), COMPANY)
    valid, invalid = validate(rows, Job, "job_id")
    assert jobcodes == received
    check_outcome(jobcodes, JOBS, valid, aside, invalid)
    if not valid.empty:
        assert valid["job_id"].is_unique
        assert (valid["level"] == "milestone").eq(valid["parent_job_id"].notna()).all()
        assert (valid["budget_hours"].dropna() >= 0).all() and valid["labor_budget_percent"].dropna().between(
            0, 100
        ).all()


@settings(PROPERTY, max_examples=60)
@given(
    st.lists(TIMESHEET, max_size=12),
    st.lists(st.one_of(IDS, st.none()), max_size=3),
)
def test_any_timesheets_and_deleted_feed_reconcile_and_are_storable(
    timesheets: list[dict[str, Any]], deleted: list[Any]
) -> None:
    jobs, _ = validate(jobcodes_to_jobs(JOBCODES, [], CompanySettings(), COMPANY)[0], Job, "job_id")
    deleted_ids = {str(d) for d in deleted}  # as the source reads the deleted feed
    rows, aside, removed = timesheets_to_attendance(timesheets, deleted_ids, jobs, WORKER_IDS, COMPANY)
    valid, invalid = validate(rows, Attendance, "entry_id")
    check_outcome(timesheets, ATTENDANCE, valid, aside, invalid, removed=removed)
    if not valid.empty:
        assert valid["entry_id"].is_unique and valid["worker_id"].isin(WORKER_IDS).all()
        assert valid["hours"].between(0, 24).all()


@settings(PROPERTY, max_examples=40)
@given(st.lists(USER, max_size=8))
def test_any_users_with_odd_text_are_loaded_or_set_aside_and_storable(users: list[dict[str, Any]]) -> None:
    rows, aside = users_to_workers(users, COMPANY)
    valid, invalid = validate(rows, Worker, "worker_id")
    check_outcome(users, WORKERS, valid, aside, invalid)
    if not valid.empty:
        assert (valid["hourly_wage"].dropna() >= 0).all()
