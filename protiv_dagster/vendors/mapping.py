"""What every vendor mapping does the same way: tolerant parsing that reports, per row, what failed.

Each parser returns the parsed values and a mask of the rows whose value was present but unusable,
so a mapping can set those rows aside with a reason naming the field instead of dropping them or
crashing the company's sync.

``split`` also sets aside any row holding text neither warehouse can store (a NUL, which PostgreSQL
refuses, or a lone surrogate, which is not UTF-8 and which DuckDB refuses): one such record would
otherwise fail the write of its whole partition.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd

HOURS_PER_YEAR = 2080
# The largest values the warehouse's NUMERIC columns hold (tables.py): a larger one would fail the
# write of the whole partition, so the mappings set its record aside instead.
MAX_WAGE = 1e6  # NUMERIC(10,4): $ per hour
MAX_AMOUNT = 1e12  # NUMERIC(14,2): $ budgets and prices
MAX_RATE = 1e10  # NUMERIC(14,4): $ per unit of work


def too_large(values: pd.Series, limit: float) -> pd.Series:
    """Which numbers (NaN = none) are too large in magnitude for a warehouse column holding less than ``limit``."""
    return values.notna() & (values.abs() >= limit)


def no_reasons(frame: pd.DataFrame) -> pd.Series:
    """An empty reason for every row; ``collect`` adds to it."""
    return pd.Series([""] * len(frame), index=frame.index, dtype=object)


def unstorable(value: Any) -> bool:
    """Text that cannot be written to the warehouse: it holds NUL or is not valid UTF-8."""
    if not isinstance(value, str):
        return False
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


# What pandas infers for a column holding no string at all (dates, numbers, flags, nothing).
_KINDS_WITHOUT_TEXT = frozenset(
    {"empty", "date", "datetime", "datetime64", "integer", "floating", "mixed-integer-float", "boolean"}
)


def unstorable_rows(values: pd.Series) -> pd.Series:
    """Which values are ``unstorable``. The texts of the column are checked joined first, at C
    speed: only a column holding a bad text at all is checked value by value."""
    texts = values.tolist()
    try:
        joined = "".join(texts)
    except TypeError:  # not all text: the strings among the values
        kind = pd.api.types.infer_dtype(values, skipna=True)
        if kind in _KINDS_WITHOUT_TEXT:
            joined = ""
        elif kind == "string":  # text and missing values
            joined = "".join(values.dropna().tolist())
        else:
            joined = "".join([value for value in texts if isinstance(value, str)])
    if "\x00" in joined or not (joined.isascii() or _encodes(joined)):
        return values.map(unstorable).astype(bool)
    return pd.Series(False, index=values.index)


def _encodes(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def storable_text(value: str) -> str:
    """``value`` with NUL and lone surrogates escaped (``\\x00``, ``\\ud800``), for ids of set-aside records."""
    return value.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def split(
    rows: pd.DataFrame, frame: pd.DataFrame, ids: pd.Series, reasons: pd.Series, live: pd.Series | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows without a reason, the other records set aside with their reasons).

    Rows outside ``live`` (records the vendor deleted) are neither: a mapping works on every
    record and drops those here, in the one copy of the rows it makes anyway."""
    for name in rows.columns:
        if rows[name].dtype == object or pd.api.types.is_string_dtype(rows[name].dtype):
            reasons = collect(
                reasons,
                unstorable_rows(rows[name]),
                f"{name} is text the warehouse cannot store (NUL or invalid Unicode)",
            )
    bad = reasons != ""
    if live is not None:
        bad &= live
        keep = live & ~bad
    else:
        keep = ~bad
    aside = set_aside_frame(frame[bad], ids[bad], reasons[bad])
    return (rows if keep.all() else rows[keep]), aside  # the usual chunk keeps every row: no copy


def set_aside_frame(records: pd.DataFrame, ids: pd.Series, reasons: pd.Series) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "record_id": ids.astype("string").fillna("").map(storable_text).values,
            "reason": reasons.values,
            "record": [json.dumps(r, sort_keys=True, default=str) for r in records["_raw"]],
        }
    )


def records_frame(records: Iterable[Mapping[str, Any]], fields: Iterable[str] | None = None) -> pd.DataFrame:
    """The records as a frame, one column per field, and the records themselves in ``_raw``.

    With ``fields``, only those columns are built (a field no record has is a column of None, as
    ``column`` gives): far cheaper than every field of every record when a mapping reads a few."""
    records = list(records)
    if fields is None:
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
    elif records:
        frame = _fields_frame(records, list(fields))
    else:
        frame = pd.DataFrame()
    frame["_raw"] = records  # type: ignore[assignment]  # pandas-stubs: a list of dicts is a column of objects
    return frame


def _fields_frame(records: list[Mapping[str, Any]], fields: list[str]) -> pd.DataFrame:
    """The ``fields`` of the records, one column each, with the values and dtypes ``from_records`` gives."""
    if len(fields) > 1:
        # The usual case, every record holding every field (vendors send them all, null or not): the
        # fields of a record are read in one call at C speed, and the frame built from the rows at once.
        try:
            rows = list(map(itemgetter(*fields), records))
        except (KeyError, TypeError):  # a record without one of the fields (or not a mapping)
            pass
        else:
            return pd.DataFrame(rows, columns=fields)
    return pd.DataFrame({name: _field_values(records, name) for name in fields})


def _field_values(records: list[Mapping[str, Any]], name: str) -> pd.Series:
    # The same values and dtype inference as from_records: a missing field reads as None.
    return pd.Series([record.get(name) for record in records])


def per_distinct(values: pd.Series, work_out: Callable[[pd.Series], dict[str, pd.Series]]) -> dict[str, pd.Series]:
    """``work_out(values)``, worked out once per distinct value and spread over the rows.

    A week of entries names a few hundred workers or jobs in a quarter of a million rows. The first
    row of each distinct value is handed to ``work_out`` (the same dtype and values; missing values
    count as one), which must answer for each value on its own (no sums or counts over the rows).

    A column of mixed Python objects is worked out row by row: hashing takes 1, 1.0 and True for
    one value (and lists cannot be hashed), where an id mapping tells them apart."""
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=True) not in ("string", "empty"):
        return work_out(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    first = np.empty(len(uniques), dtype=np.intp)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)  # the last write, the first row, wins
    distinct = values.take(first).reset_index(drop=True)
    return {name: found.take(codes).set_axis(values.index) for name, found in work_out(distinct).items()}


def jobs_of_entries(job_or_milestone: pd.Series, jobs_by_id: pd.DataFrame) -> dict[str, pd.Series]:
    """For the job or milestone id of each entry: ``known`` (a job or milestone of ``jobs_by_id``),
    the entry's ``job_id`` (the milestone's job for a milestone) and ``milestone_id``, and whether
    the job or milestone ``is_drive``."""

    def work_out(ids: pd.Series) -> dict[str, pd.Series]:
        known = ids.isin(jobs_by_id.index)
        parent = ids.map(jobs_by_id["parent_job_id"]).where(known, None)
        is_milestone = parent.notna()
        return {
            "known": known,
            "job_id": parent.where(is_milestone, ids),
            "milestone_id": ids.where(is_milestone, None),
            "is_drive": ids.map(jobs_by_id["is_drive"]).where(known, False).astype(bool),
        }

    return per_distinct(job_or_milestone, work_out)


def column(frame: pd.DataFrame, name: str) -> pd.Series:
    return frame[name] if name in frame else pd.Series([None] * len(frame), index=frame.index, dtype=object)


def id_of(value: Any) -> str | None:
    """One vendor id as text (``id_text`` of a single value); 0, empty and missing mean 'none'."""
    if value is None or (isinstance(value, float) and pd.isna(value)) or isinstance(value, bool):
        return None
    if isinstance(value, int):
        text = str(value)  # exactly: float() of a huge JSON integer overflows
    else:
        text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    return None if text in ("", "0") else text


def id_text(values: pd.Series) -> pd.Series:
    """Vendor ids as text; 0, empty and missing mean 'none'."""
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iu":
        # Whole columns of integers (the usual JSON ids), converted at once: same texts as ``id_of``,
        # one text per distinct id (a worker's id is one string object in all their entries).
        codes, uniques = pd.factorize(values)
        id_texts = np.array([str(value) for value in uniques.tolist()] + [None], dtype=object)
        ids = pd.Series(id_texts[codes], index=values.index, dtype=object)
        zero = values == 0
        return ids.where(~zero, None) if zero.any() else ids
    if is_text_column(values):
        # Whole columns of text (UUIDs): stripped at once, same texts as ``id_of``.
        if _plain_ids(values):
            return values.astype(object)
        text = stripped(values)
        texts = text.tolist()
        given = values.notna()
        if "" in texts or "0" in texts:  # a plain scan of the strings, cheaper than hashing them
            given &= ~text.isin(["", "0"])
        return text.astype(object) if given.all() else text.astype(object).where(given, None)
    return values.map(id_of).astype(object)


def not_a_whole_number(raw: pd.Series, ids: pd.Series) -> pd.Series:
    """Rows whose id (``ids``, from ``id_text`` of the ``raw`` column) is given but is not a whole
    number: QuickBooks Time and Aspire number their records, so such an id is malformed."""
    if isinstance(raw.dtype, np.dtype) and raw.dtype.kind in "iu":
        return pd.Series(False, index=raw.index)  # the usual column of JSON integers, at once
    return ids.notna() & ~ids.astype("string").str.fullmatch(r"[0-9]+").fillna(False).astype(bool)


def _plain_ids(values: pd.Series) -> bool:
    """A text column whose every value is an id as it stands: present, nothing to strip, neither
    empty nor "0" (the usual UUID column, told in two passes over the strings at C speed)."""
    if values.hasnans or stripped(values) is not values:
        return False
    return min(map(len, values.tolist()), default=2) > 1  # "" and "0" are the only ids this short


def is_text_column(values: pd.Series) -> bool:
    """A column pandas holds as text (str dtype): every value is a string or missing."""
    return values.dtype != object and pd.api.types.is_string_dtype(values.dtype)


def stripped(values: pd.Series) -> pd.Series:
    """``values.str.strip()`` of a text column. Ids and stamps from an API are seldom padded: the
    strings are stripped at C speed first (``str.strip`` hands back the very string when there is
    nothing to strip, so the comparison is by identity), and only a column that changes is
    stripped by pandas."""
    texts = values.tolist()
    try:
        unchanged = list(map(str.strip, texts)) == texts
    except TypeError:  # missing values (NaN) among the strings
        texts = [text for text in texts if type(text) is str]
        unchanged = list(map(str.strip, texts)) == texts
    return values if unchanged else values.str.strip()


def _nonblank_text(values: pd.Series) -> pd.Series:
    """Which values are text that is not blank (vectorised for a column that is all text)."""
    if is_text_column(values):
        return values.notna() & (stripped(values) != "")
    return values.map(lambda v: isinstance(v, str) and v.strip() != "").astype(bool)


def utc(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse ISO 8601 with offsets to UTC; also return which non-empty values failed to parse."""
    if values.dtype == object and not values.notna().any():  # nothing given (deletedOn of live records)
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]"), pd.Series(False, index=values.index)
    if is_text_column(values):
        # Blank text parses to NaT like missing: the whole column is parsed as it is, and only the
        # values that did not parse are told apart (blank means missing, anything else is bad).
        parsed = _utc_in_range(pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601"))
        failed = parsed.isna()
        if failed.any():
            failed &= values.notna()  # a column of mostly nulls (deletedOn) leaves few to tell apart
            if failed.any():
                failed[failed] = _nonblank_text(values[failed])
        return parsed, failed
    text = values.where(_nonblank_text(values), None)
    parsed = _utc_in_range(pd.to_datetime(text, utc=True, errors="coerce", format="ISO8601"))
    return parsed, text.notna() & parsed.isna()


_FIRST_UTC, _LAST_UTC = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")


def in_range(parsed: pd.Series, first: Any, last: Any) -> pd.Series:
    """``parsed`` with the moments outside ``first``..``last`` missing. pandas 3 parses years like
    0001 or 2300 that datetime64[ns] cannot hold: those are bad values too. The usual column lies
    inside, told by its min and max, and is kept as it is."""
    if parsed.notna().any() and not (first <= parsed.min() and parsed.max() <= last):
        parsed = parsed.where((parsed >= first) & (parsed <= last))
    return parsed


def _utc_in_range(parsed: pd.Series) -> pd.Series:
    return in_range(parsed, _FIRST_UTC, _LAST_UTC).astype("datetime64[ns, UTC]")


def dates(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Parse YYYY-MM-DD dates; "" and 0000-00-00 mean unset. Also return which set values failed."""
    if is_text_column(values):
        # Unset text does not parse either: the whole column is parsed as it is, and only the values
        # that did not parse are told apart (unset, or bad).
        parsed = _dates_in_range(pd.to_datetime(values, errors="coerce", format="%Y-%m-%d"))
        failed = parsed.isna()
        if failed.any():
            unparsed = values[failed]
            failed[failed] = unparsed.notna() & ~unparsed.isin(["", "0000-00-00"])
        return calendar_days(parsed, as_dt_date=True), failed
    text = values.where(values.map(lambda v: isinstance(v, str) and v not in ("", "0000-00-00")), None)
    parsed = _dates_in_range(pd.to_datetime(text, errors="coerce", format="%Y-%m-%d"))
    return calendar_days(parsed, as_dt_date=True), text.notna() & parsed.isna()


def _dates_in_range(parsed: pd.Series) -> pd.Series:
    return in_range(parsed, pd.Timestamp.min, pd.Timestamp.max)  # the models' Date needs datetime64[ns]


def local_dates(moments: pd.Series, timezone: str) -> pd.Series:
    """The local calendar day in ``timezone`` of each UTC moment (None for NaT)."""
    return calendar_days(moments.dt.tz_convert(timezone), as_dt_date=True)


def calendar_days(moments: pd.Series, *, as_dt_date: bool = False) -> pd.Series:
    """The calendar day (``datetime.date``) of each naive or zoned datetime64 value, None for NaT.

    A week of entries spans a few distinct days: each distinct value becomes a date object once
    (what ``.dt.date`` does value by value, in the values' own zone), and the rows take theirs.
    ``as_dt_date``: missing days as ``.dt.date.where(notna, None)`` leaves them, which is NaT when
    no value has a day at all."""
    if as_dt_date and len(moments) and not moments.notna().any():
        return pd.Series(pd.NaT, index=moments.index, dtype=object)
    try:
        wall_time = moments.dt.tz_localize(None) if moments.dt.tz is not None else moments
        codes, uniques = pd.factorize(wall_time.dt.floor("D"))
    except ValueError:  # a local day beyond what datetime64[ns] holds (OutOfBoundsDatetime): value by value
        return moments.dt.date.where(moments.notna(), None).astype(object)
    days = np.array([*pd.DatetimeIndex(uniques).date, None], dtype=object)
    return pd.Series(days[codes], index=moments.index, dtype=object)


def numbers(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    if isinstance(values.dtype, np.dtype) and values.dtype.kind in "iuf":
        # A column of plain numbers (int64 cannot exceed float range): the same answer, vectorised.
        parsed = values.astype(float)
        present = values.notna()
        parsed = parsed.where(np.isfinite(parsed))
        return parsed, present & parsed.isna()
    present = values.map(
        lambda v: v is not None and not (isinstance(v, float) and pd.isna(v)) and v != "" and not isinstance(v, bool)
    )
    # An integer beyond float range (valid JSON) would make to_numeric raise: it is no usable number.
    given = values.where(present, None).map(
        lambda v: math.inf if isinstance(v, int) and abs(v) > sys.float_info.max else v
    )
    numbers = pd.to_numeric(given, errors="coerce").astype(float)
    numbers = numbers.where(numbers.map(math.isfinite))  # "inf", "nan", 1e999 are not numbers of hours or dollars
    return numbers, present & numbers.isna()


def collect(reasons: pd.Series, failed: pd.Series, message: str) -> pd.Series:
    """Append ``message`` to the reasons of the rows where ``failed`` holds."""
    failed = failed.fillna(False).astype(bool) if failed.dtype != bool else failed
    if not failed.any():
        return reasons
    reasons = reasons.copy()
    reasons[failed] = reasons[failed].map(lambda r: f"{r}; {message}" if r else message)
    return reasons
