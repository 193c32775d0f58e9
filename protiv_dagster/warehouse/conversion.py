"""Turning DataFrame cells into the Python values both drivers bind the same way: one converter per
declared SQL type, which refuses a cell that does not fit its column (naming the column and row)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import ROUND_HALF_UP, Context, Decimal

import numpy as np
import pandas as pd

from protiv_dagster.warehouse.declarations import MAX_NUMERIC_PRECISION, NUMERIC_TYPE, Column, Table


class _BadValue(Exception):
    """A cell that does not fit its column's SQL type; carries the reason."""


def _to_text(value: object) -> str:
    if isinstance(value, str):
        return value
    raise _BadValue("expected a string")


_BIGINT_RANGE = range(-(2**63), 2**63)


def _to_bigint(value: object) -> int:
    if isinstance(value, bool | np.bool_):
        raise _BadValue("expected an integer, got a boolean")
    # Integral floats are accepted because pandas turns an integer column holding NaN into floats.
    if isinstance(value, float | np.floating) and float(value).is_integer():
        value = int(value)
    if isinstance(value, int | np.integer) and int(value) in _BIGINT_RANGE:
        return int(value)
    raise _BadValue("expected an integer that fits BIGINT")


def _to_double(value: object) -> float:
    if isinstance(value, bool | np.bool_):
        raise _BadValue("expected a number, got a boolean")
    if isinstance(value, int | float | Decimal | np.integer | np.floating):
        return float(value)
    raise _BadValue("expected a number")


def _to_boolean(value: object) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise _BadValue("expected a boolean")


def _to_date(value: object) -> dt.date:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    # datetime is a subclass of date, so timestamps are checked first: a time of day or a time
    # zone would be silently dropped by a DATE column.
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and value.time() == dt.time():
            return value.date()
        raise _BadValue("expected a date, got a timestamp with a time of day or a time zone")
    if isinstance(value, dt.date):
        return value
    raise _BadValue("expected a date")


def _to_timestamptz(value: object) -> dt.datetime:
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if isinstance(value, dt.datetime):
        # A naive time would be read in the session time zone, silently shifting it by hours.
        if value.tzinfo is None:
            raise _BadValue("expected a time-zone-aware timestamp; localize naive times first (dt.tz_localize)")
        if isinstance(value, pd.Timestamp):
            value = value.to_pydatetime()
        return value.astimezone(dt.UTC)
    raise _BadValue("expected a timestamp")


# Wide enough that quantizing any value that passed the size check cannot overflow.
_DECIMAL_CONTEXT = Context(prec=2 * MAX_NUMERIC_PRECISION + 2)


def _numeric_converter(precision: int, scale: int) -> Callable[[object], Decimal]:
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)

    def convert(value: object) -> Decimal:
        if isinstance(value, bool | np.bool_):
            raise _BadValue("expected a number, got a boolean")
        if isinstance(value, float | np.floating):
            # repr() is the shortest text that round-trips, so 0.1 + 0.2 becomes 0.30, not 0.2999...
            value = Decimal(repr(float(value)))
        elif isinstance(value, int | np.integer):
            value = Decimal(int(value))
        elif not isinstance(value, Decimal):
            raise _BadValue("expected a Decimal, int or float")
        # adjusted() is the power of ten of the leading digit; zero has none and always fits.
        if not value.is_finite() or (value and value.adjusted() >= precision - scale):
            raise _BadValue(f"does not fit NUMERIC({precision},{scale})")
        # Rounded here, half away from zero like PostgreSQL, so both backends store the same value.
        rounded = value.quantize(quantum, rounding=ROUND_HALF_UP, context=_DECIMAL_CONTEXT)
        if abs(rounded) >= limit:
            raise _BadValue(f"does not fit NUMERIC({precision},{scale})")
        return rounded

    return convert


_CONVERTERS: dict[str, Callable[[object], object]] = {
    "TEXT": _to_text,
    "BIGINT": _to_bigint,
    "DOUBLE PRECISION": _to_double,
    "BOOLEAN": _to_boolean,
    "DATE": _to_date,
    "TIMESTAMPTZ": _to_timestamptz,
}


def _converter(sql_type: str) -> Callable[[object], object]:
    numeric = NUMERIC_TYPE.match(sql_type)
    if numeric:
        return _numeric_converter(int(numeric[1]), int(numeric[2]))
    return _CONVERTERS[sql_type]


# numpy dtype kinds whose values are already what the SQL type binds (NaN aside).
_PLAIN_KINDS = {"DOUBLE PRECISION": "f", "BIGINT": "i", "BOOLEAN": "b"}


def column_values(table: Table, column: Column, series: pd.Series) -> list[object]:
    """The cells of `series` as Python values for `column`; NA, NaN and NaT become None."""
    # Columns whose dtype already guarantees the type (text, float, integer, boolean arrays) are
    # converted in one go: the per-cell checks below could not fail on them.
    if column.sql_type == "TEXT" and series.dtype != object and pd.api.types.is_string_dtype(series.dtype):
        return series.astype(object).where(series.notna(), None).tolist()
    kinds = _PLAIN_KINDS.get(column.sql_type)
    if kinds and isinstance(series.dtype, np.dtype) and series.dtype.kind in kinds:
        plain_values = series.tolist()
        return (
            [None if value != value else value for value in plain_values] if series.dtype.kind == "f" else plain_values
        )
    convert = _converter(column.sql_type)
    # One vectorised conversion to Python datetimes instead of a pandas Timestamp per cell.
    if isinstance(series.dtype, pd.DatetimeTZDtype):
        series = series.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        series = series.dt.to_pydatetime()
    values: list[object] = []
    for position, (value, missing) in enumerate(zip(series.tolist(), series.isna().tolist(), strict=True)):
        if missing:
            values.append(None)
            continue
        try:
            values.append(convert(value))
        except _BadValue as exc:
            raise ValueError(
                f"{table.name}.{column.name} ({column.sql_type}), row {position}: {exc}, got {value!r:.80}"
            ) from None
    return values


def key_value(table: Table, name: str, value: object) -> object:
    """`value` converted for comparison with column `name`, as a bound parameter."""
    column = table.column(name)
    if value is None:
        raise ValueError(f"value for {table.name}.{name} is missing; it is matched with '='")
    try:
        return _converter(column.sql_type)(value)
    except _BadValue as exc:
        raise ValueError(f"value for {table.name}.{name} ({column.sql_type}): {exc}, got {value!r:.80}") from None


def plain(param: object) -> object:
    """`param` as a builtin Python value: psycopg cannot adapt numpy scalars such as numpy.int64."""
    return param.item() if isinstance(param, np.generic) else param
