"""The shared mapping helpers give, value for value and dtype for dtype, what the plain per-value
code they replace gives: the frame of the records' fields, and lookups made once per distinct value."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from hypothesis import example, given
from hypothesis import strategies as st

from protiv_dagster.vendors.mapping import calendar_days, id_text, jobs_of_entries, per_distinct, records_frame
from tests.vendors.busybusy.test_mapping_properties import ODD_TEXT, PROPERTY, WEIRD, iso_timestamps

FIELDS = ["id", "start", "count", "flag"]
VALUE = st.one_of(WEIRD, ODD_TEXT, iso_timestamps(), st.sampled_from(["7", "08", None]))


def assert_same_frame(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    for name in expected.columns:  # None and NaN are told apart too
        assert [type(v) for v in got[name]] == [type(v) for v in expected[name]], name


@PROPERTY
@given(
    st.lists(st.fixed_dictionaries({name: VALUE for name in FIELDS}), min_size=1, max_size=8),
    st.lists(st.sampled_from(FIELDS), max_size=2),
)
def test_the_fields_frame_is_the_frame_built_field_by_field(records: list[dict[str, Any]], missing: list[str]) -> None:
    """Records holding every field are read a record at a time; a record without one is read field
    by field, a missing field reading as None: both give the columns ``pd.Series`` gives per field."""
    for name in missing:
        records[0].pop(name, None)

    frame = records_frame(records, FIELDS)

    expected = pd.DataFrame({name: pd.Series([record.get(name) for record in records]) for name in FIELDS})
    assert_same_frame(frame[FIELDS], expected)
    assert frame["_raw"].tolist() == records


JOBS = pd.DataFrame(
    {"parent_job_id": [None, "10", None], "is_drive": [False, False, True]},
    index=pd.Index(["10", "11", "12"], name="job_id"),
).astype({"parent_job_id": "str"})


@PROPERTY
@given(st.lists(st.one_of(st.sampled_from(["10", "11", "12", "99"]), st.none()), max_size=12))
def test_jobs_of_entries_are_looked_up_as_row_by_row(ids: list[str | None]) -> None:
    """Looked up once per distinct id, the entries' jobs, milestones and drive flags are what the
    lookups over every row give (dtypes included)."""
    values = pd.Series(ids, dtype=object)

    found = jobs_of_entries(values, JOBS)

    known = values.isin(JOBS.index)
    parent = values.map(JOBS["parent_job_id"]).where(known, None)
    is_milestone = parent.notna()
    pd.testing.assert_series_equal(found["known"], known, check_names=False)
    pd.testing.assert_series_equal(found["job_id"], parent.where(is_milestone, values), check_names=False)
    pd.testing.assert_series_equal(found["milestone_id"], values.where(is_milestone, None), check_names=False)
    drive = values.map(JOBS["is_drive"]).where(known, False).astype(bool)
    pd.testing.assert_series_equal(found["is_drive"], drive, check_names=False)


@PROPERTY
@given(
    st.lists(st.one_of(st.none(), st.datetimes(datetime(1700, 1, 1), datetime(2200, 1, 1))), max_size=10),
    st.sampled_from([None, "UTC", "America/Denver", "Asia/Kathmandu"]),
)
def test_calendar_days_are_the_days_dt_date_gives(moments: list[Any], zone: str | None) -> None:
    values = pd.Series(pd.to_datetime(pd.Series(moments, dtype=object), errors="coerce")).astype("datetime64[ns]")
    if zone:
        values = values.dt.tz_localize("UTC").dt.tz_convert(zone)

    expected = values.dt.date.where(values.notna(), None).astype(object)

    assert calendar_days(values, as_dt_date=True).tolist() == expected.tolist()
    assert calendar_days(values).tolist() == [None if pd.isna(v) else v for v in expected]


@PROPERTY
@given(
    st.one_of(
        st.lists(VALUE, max_size=10),
        st.lists(st.integers(-2, 3), max_size=10),
        st.lists(st.sampled_from(["a", " b", "0"]), max_size=10),
    )
)
@example([1, True, 1.0, "1", 0, False, None, float("nan")])
@example([[1], "a", [1]])
def test_per_distinct_is_the_work_over_every_row(values: list[Any]) -> None:
    """Any column (numbers, text, None and NaN, lists that cannot be hashed) gives what the work over
    every row gives."""
    column = pd.Series(values)

    def work_out(ids: pd.Series) -> dict[str, pd.Series]:
        text = id_text(ids)
        return {"id": text, "missing": text.isna(), "known": text.isin({"1", "a"})}

    found, expected = per_distinct(column, work_out), work_out(column)

    for name in expected:
        pd.testing.assert_series_equal(found[name], expected[name], check_names=False)
        assert [type(v) for v in found[name]] == [type(v) for v in expected[name]], name
