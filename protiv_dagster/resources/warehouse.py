"""The warehouse: ProPay tables in DuckDB (embedded default) or PostgreSQL, behind one resource.

Tables are declared as plain data (`Table`, `Column`) by the modules that own them and written
partition by partition with `Warehouse.replace_partition`, which deletes and re-inserts one
partition in a single transaction, so a re-run is idempotent and a failed run leaves the previous
rows in place.

Both backends hand results back as the same pandas types, so their results compare equal:

=================  ==========================================================================
SQL type           pandas column (missing value)
=================  ==========================================================================
TEXT               ``str`` dtype (NaN)
BIGINT             ``Int64`` (``pd.NA``)
DOUBLE PRECISION   ``float64`` (NaN)
BOOLEAN            ``boolean`` (``pd.NA``)
DATE               ``object`` holding ``datetime.date`` (None)
TIMESTAMPTZ        ``datetime64[us, UTC]`` (NaT)
NUMERIC(p,s)       ``object`` holding ``decimal.Decimal`` with exactly s decimals (None)
=================  ==========================================================================

Computed expressions follow each engine's own typing (``avg(bigint)`` is NUMERIC in PostgreSQL but
DOUBLE in DuckDB), so cast them explicitly when results of both backends are compared.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any, Literal, Protocol

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import psycopg
from psycopg import sql as pgsql
from psycopg.postgres import types as postgres_types
from pydantic import ConfigDict, Field, field_validator
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_delay, wait_exponential

from protiv_dagster.settings import WAREHOUSE_URL_VARIABLE, default_duckdb_path

Backend = Literal["duckdb", "postgres"]

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
# PostgreSQL silently truncates longer names, which would make two declared names collide.
_MAX_IDENTIFIER_LENGTH = 63
_NUMERIC_TYPE = re.compile(r"NUMERIC\((\d+),(\d+)\)\Z")
_SIMPLE_TYPES = ("TEXT", "BIGINT", "DOUBLE PRECISION", "BOOLEAN", "DATE", "TIMESTAMPTZ")
# DuckDB's DECIMAL stops at 38 digits; PostgreSQL goes further, so 38 is the portable limit.
_MAX_NUMERIC_PRECISION = 38

_DUCKDB_PREFIX = "duckdb:///"
_POSTGRES_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgres://")
_ACCEPTED_URLS = (
    "'' (DuckDB file in the project data folder), 'duckdb:///relative/path.duckdb' or "
    "'duckdb:////absolute/path.duckdb', a plain path ending in '.duckdb', or "
    "'postgresql://user:password@host:port/database' (also 'postgresql+psycopg://', 'postgres://')"
)

log = logging.getLogger(__name__)

ANALYST_COMPANIES = "analyst_companies"  # (role_name, company_id, role_oid): what each analyst role may read
ANALYST_POLICY = "company_analyst"
ANALYST_BINDING = "analyst_companies_binding"  # UNIQUE (role_oid, company_id)
# The states `Warehouse.company_analysts` gives a grant; a stale one gives no rows.
GRANT_OK = "ok"
GRANT_DROPPED = "stale: role dropped"
GRANT_RECREATED = "stale: role re-created (new OID)"
# The querying role's OID, as an uncorrelated scalar subquery: evaluated once per query (an
# InitPlan), and as the querying role through views with security_invoker. Schema-qualified so a
# search_path cannot put another pg_roles in its place.
_CURRENT_ROLE_OID = "(SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user)"
# A grant (aliased a) whose role is gone: its OID is no role's (or it never had one).
_STALE_GRANT = "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.oid = a.role_oid)"


def _check_identifier(name: str, what: str) -> str:
    if not (isinstance(name, str) and _IDENTIFIER.match(name) and len(name) <= _MAX_IDENTIFIER_LENGTH):
        raise ValueError(
            f"{what} {name!r} must be a plain lowercase SQL identifier "
            f"([a-z_][a-z0-9_]*, at most {_MAX_IDENTIFIER_LENGTH} characters)"
        )
    return name


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    """One column of a warehouse table, declared with a type both backends understand."""

    name: str
    sql_type: str  # TEXT, BIGINT, DOUBLE PRECISION, BOOLEAN, DATE, TIMESTAMPTZ or NUMERIC(p,s)
    nullable: bool = True
    description: str = ""  # becomes COMMENT ON COLUMN

    def __post_init__(self) -> None:
        # Lowercase plain names only: DuckDB compares quoted names case-insensitively and
        # PostgreSQL does not, so "Hours" and "hours" would mean different things per backend.
        _check_identifier(self.name, "column name")
        numeric = _NUMERIC_TYPE.match(self.sql_type)
        if numeric:
            precision, scale = int(numeric[1]), int(numeric[2])
            if not (1 <= precision <= _MAX_NUMERIC_PRECISION and scale <= precision):
                raise ValueError(
                    f"column {self.name!r}: {self.sql_type} needs 1 <= precision <= "
                    f"{_MAX_NUMERIC_PRECISION} and scale <= precision"
                )
        elif self.sql_type not in _SIMPLE_TYPES:
            raise ValueError(
                f"column {self.name!r}: type {self.sql_type!r} is not portable; use one of "
                f"{', '.join(_SIMPLE_TYPES)} or NUMERIC(p,s)"
            )


@dataclass(frozen=True)
class Table:
    """A warehouse table: its columns, primary key and comment, declared as plain data."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str = ""  # becomes COMMENT ON TABLE

    def __post_init__(self) -> None:
        _check_identifier(self.name, "table name")
        # Tuples keep the declaration hashable even when a caller passes lists.
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "primary_key", tuple(self.primary_key))
        names = self.column_names
        if not names:
            raise ValueError(f"table {self.name!r} declares no columns")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"table {self.name!r} declares columns more than once: {duplicates}")
        if not self.primary_key:
            raise ValueError(f"table {self.name!r} needs a primary key so replacements stay idempotent")
        unknown = [name for name in self.primary_key if name not in names]
        if unknown:
            raise ValueError(f"table {self.name!r}: primary key columns {unknown} are not declared")

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        """The declared column called `name`; ValueError naming the table when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise ValueError(f"table {self.name!r} has no column {name!r} (columns: {self.column_names})")


@dataclass(frozen=True)
class View:
    """A warehouse view: its SELECT (``{schema}`` stands for the quoted schema), the columns it must
    yield, and its comment. One SQL text for both backends, so every computed column is cast to its
    declared type."""

    name: str
    select: str
    columns: tuple[Column, ...]
    description: str = ""  # becomes COMMENT ON VIEW

    def __post_init__(self) -> None:
        _check_identifier(self.name, "view name")
        object.__setattr__(self, "columns", tuple(self.columns))
        names = self.column_names
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if not names or duplicates:
            raise ValueError(f"view {self.name!r} must declare each of its columns once (twice: {duplicates})")

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


class WarehouseError(RuntimeError):
    """A warehouse operation failed in the database; the message names the redacted warehouse."""


@dataclass(frozen=True)
class AnalystGrant:
    """What `Warehouse.grant_company_analyst` did."""

    role: str
    company_id: str
    role_oid: int  # the role the grant is bound to (pg_roles.oid)
    # States of the stale grants of this name and company that the grant replaced (re-bound).
    replaced: tuple[str, ...] = ()
    # Companies of stale grants still held under this name: they give no rows.
    stale_companies: tuple[str, ...] = ()


_URL_PASSWORD = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@]*:)(?P<password>.*)@(?P<tail>[^@]*)$", re.DOTALL
)
_KEYWORD_PASSWORD = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)")


def redact_url(url: str) -> str:
    """`url` with every password replaced by ``***``, safe for messages, reprs and logs.

    Masks the ``user:password@`` part of a URL (up to the last ``@``, so a password holding an
    unescaped ``@`` or ``/`` is masked whole) and ``password=`` settings in a query string or a
    libpq keyword string.
    """
    match = _URL_PASSWORD.match(url)
    if match:
        url = f"{match['head']}***@{match['tail']}"
    return _KEYWORD_PASSWORD.sub(r"\1***", url)


@dataclass(frozen=True)
class _Target:
    backend: Backend
    location: str | None  # DuckDB file path, PostgreSQL URL, or None for the default DuckDB file


def _parse_url(url: str) -> _Target:
    """Which backend `url` names, without touching the file system or the network."""
    lowered = url.lower()
    if not url:
        return _Target("duckdb", None)
    if lowered.startswith(_DUCKDB_PREFIX):
        path = url[len(_DUCKDB_PREFIX) :]
        # Every operation opens its own connection, so an in-memory database would forget
        # everything between two calls.
        if not path or path == ":memory:":
            raise ValueError(f"warehouse URL {redact_url(url)!r} names no DuckDB file; expected {_ACCEPTED_URLS}")
        return _Target("duckdb", path)
    for prefix in _POSTGRES_PREFIXES:
        if lowered.startswith(prefix):
            # libpq knows postgresql:// and postgres:// but not SQLAlchemy's driver suffix.
            return _Target("postgres", "postgresql://" + url[len(prefix) :])
    if "://" not in url and lowered.endswith(".duckdb"):
        return _Target("duckdb", url)
    raise ValueError(f"unrecognised warehouse URL {redact_url(url)!r}; expected {_ACCEPTED_URLS}")


# ---------------------------------------------------------------------------------------------
# Turning DataFrame cells into the Python values both drivers bind the same way.


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
_DECIMAL_CONTEXT = Context(prec=2 * _MAX_NUMERIC_PRECISION + 2)


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
    numeric = _NUMERIC_TYPE.match(sql_type)
    if numeric:
        return _numeric_converter(int(numeric[1]), int(numeric[2]))
    return _CONVERTERS[sql_type]


# numpy dtype kinds whose values are already what the SQL type binds (NaN aside).
_PLAIN_KINDS = {"DOUBLE PRECISION": "f", "BIGINT": "i", "BOOLEAN": "b"}


def _column_values(table: Table, column: Column, series: pd.Series) -> list[object]:
    """The cells of `series` as Python values for `column`; NA, NaN and NaT become None."""
    # Columns whose dtype already guarantees the type (text, float, integer, boolean arrays) are
    # converted in one go: the per-cell checks below could not fail on them.
    if column.sql_type == "TEXT" and series.dtype != object and pd.api.types.is_string_dtype(series.dtype):
        return series.astype(object).where(series.notna(), None).tolist()
    kinds = _PLAIN_KINDS.get(column.sql_type)
    if kinds and isinstance(series.dtype, np.dtype) and series.dtype.kind in kinds:
        values = series.tolist()
        return [None if value != value else value for value in values] if series.dtype.kind == "f" else values
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


def _key_value(table: Table, name: str, value: object) -> object:
    """`value` converted for comparison with column `name`, as a bound parameter."""
    column = table.column(name)
    if value is None:
        raise ValueError(f"value for {table.name}.{name} is missing; it is matched with '='")
    try:
        return _converter(column.sql_type)(value)
    except _BadValue as exc:
        raise ValueError(f"value for {table.name}.{name} ({column.sql_type}): {exc}, got {value!r:.80}") from None


def _plain(param: object) -> object:
    """`param` as a builtin Python value: psycopg cannot adapt numpy scalars such as numpy.int64."""
    return param.item() if isinstance(param, np.generic) else param




def _moved_row_deletes(
    qualified: str, table: Table, partition: Mapping[str, object], values: Sequence[list[object]]
) -> Iterator[tuple[str, list[object]]]:
    """DELETE statements (chunked, parameterised) for incoming keys that live in other partitions."""
    free = [name for name in table.primary_key if name not in partition]
    if len(free) != 1:
        raise ValueError(f"move_rows on {table.name} needs a partition covering its primary key but one column")
    fixed = [name for name in table.primary_key if name in partition]
    keys = values[table.column_names.index(free[0])]
    fixed_conditions = [f"{_quote(name)} = ?" for name in fixed]
    fixed_params = [_key_value(table, name, partition[name]) for name in fixed]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        condition = " AND ".join([*fixed_conditions, f"{_quote(free[0])} IN ({', '.join('?' * len(chunk))})"])
        yield f"DELETE FROM {qualified} WHERE {condition}", [*fixed_params, *chunk]


def _checked_values(table: Table, owned: _Partition, rows: pd.DataFrame) -> list[list[object]]:
    """The cells of `rows` converted per declared column, after checking they lie in `owned`."""
    missing = [name for name in table.column_names if name not in rows.columns]
    if missing:
        raise ValueError(f"rows for {table.name} lack columns {missing}")
    values = [_column_values(table, column, rows[column.name]) for column in table.columns]
    owned.check(dict(zip(table.column_names, values, strict=True)))
    return values


# Rows per insert when a partition is written in batches (large frames, chunked sources).
_BATCH_ROWS = 50_000


class _Spool:
    """Converted chunks of a partition, pickled to an anonymous temporary file until the write.

    Small chunks (a vendor page is 200 rows) are gathered into batches of about ``batch_rows``
    rows, so the write makes one insert per batch rather than one per page."""

    def __init__(self, batch_rows: int | None = None) -> None:
        self._file = tempfile.TemporaryFile(prefix="protiv-partition-")
        self._batch_rows = batch_rows or _BATCH_ROWS
        self._pending: list[list[object]] | None = None
        self._batches = 0

    def add(self, values: list[list[object]]) -> None:
        if self._pending is None:
            self._pending = [list(column) for column in values]
        else:
            for pending, column in zip(self._pending, values, strict=True):
                pending.extend(column)
        if len(self._pending[0]) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending is not None and len(self._pending[0]):
            pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._batches += 1
        self._pending = None

    def __iter__(self) -> Iterator[list[list[object]]]:
        self._flush()
        self._file.seek(0)
        for _ in range(self._batches):
            yield pickle.load(self._file)

    def close(self) -> None:
        self._file.close()


@dataclass(frozen=True)
class _Partition:
    """The rows `replace_partition` owns: equal key columns, and optionally a DATE column range."""

    table: Table
    equals: Mapping[str, object]  # values already converted to their column's type
    dates: tuple[str, dt.date, dt.date] | None

    @classmethod
    def of(
        cls, table: Table, partition: Mapping[str, object], date_range: tuple[str, dt.date, dt.date] | None
    ) -> _Partition:
        if not partition and date_range is None:
            # An empty partition would delete the whole table, which is never what a typo meant.
            raise ValueError(f"replace_partition on {table.name} needs partition columns or a date_range")
        equals = {name: _key_value(table, name, value) for name, value in partition.items()}
        dates = None
        if date_range is not None:
            name, first, last = date_range
            if table.column(name).sql_type != "DATE":
                raise ValueError(f"date_range column {table.name}.{name} must be a DATE column")
            dates = (name, _key_value(table, name, first), _key_value(table, name, last))
            if dates[1] > dates[2]:
                raise ValueError(f"date_range for {table.name}.{name} is empty: {dates[1]} is after {dates[2]}")
        return cls(table, equals, dates)

    def condition(self) -> tuple[str, list[object]]:
        """The WHERE clause selecting these rows, and its parameters."""
        conditions = [f"{_quote(name)} = ?" for name in self.equals]
        params = list(self.equals.values())
        if self.dates is not None:
            name, first, last = self.dates
            conditions.append(f"{_quote(name)} BETWEEN ? AND ?")
            params.extend([first, last])
        return " AND ".join(conditions), params

    def check(self, values: Mapping[str, list[object]]) -> None:
        """ValueError naming the column when any row lies outside this partition."""
        for name, expected in self.equals.items():
            outside = [value for value in values[name] if value != expected]
            if outside:
                raise ValueError(
                    f"{len(outside)} row(s) outside the partition: {self.table.name}.{name} must be "
                    f"{expected!r}, got e.g. {outside[0]!r:.80}; nothing was written"
                )
        if self.dates is not None:
            name, first, last = self.dates
            outside = [value for value in values[name] if value is None or not first <= value <= last]
            if outside:
                raise ValueError(
                    f"{len(outside)} row(s) outside the partition: {self.table.name}.{name} must lie in "
                    f"{first}..{last}, got e.g. {outside[0]!r:.80}; nothing was written"
                )

    def __str__(self) -> str:
        described = ", ".join(f"{name}={value!r}" for name, value in self.equals.items())
        if self.dates is not None:
            described += f"{', ' if described else ''}{self.dates[0]} {self.dates[1]}..{self.dates[2]}"
        return f"{self.table.name} [{described}]"


# ---------------------------------------------------------------------------------------------
# Turning query results into the same DataFrame on both backends.

_ResultKind = Literal[
    "text", "integer", "float", "boolean", "date", "timestamptz", "timestamp", "numeric", "other"
]

_SERIES_DTYPES: dict[_ResultKind, str] = {
    "text": "str",
    "integer": "Int64",
    "float": "float64",
    "boolean": "boolean",
    "timestamptz": "datetime64[us, UTC]",
    "timestamp": "datetime64[us]",
    # Python objects keep dates and decimals exact (no midnight timestamps, no binary rounding).
    "date": "object",
    "numeric": "object",
    "other": "object",
}


def _result_frame(
    names: Sequence[str], kinds: Sequence[_ResultKind], rows: Sequence[Sequence[object]]
) -> pd.DataFrame:
    frame = _positional_frame(kinds, rows)
    # Positions first, names after: a query may return two columns with the same name.
    frame.columns = list(names)
    return frame


def _positional_frame(
    kinds: Sequence[_ResultKind], rows: Sequence[Sequence[object]], texts: list[dict[str, str] | None] | None = None
) -> pd.DataFrame:
    """Typed columns of `rows`. With `texts` (one dict per column, kept across batches), equal
    texts of a column share one string object: a company id or a worker id repeated in a million
    rows is stored once, not once per row as the driver hands it out. A column whose texts are
    mostly distinct (ids of entries, payloads) stops being shared: its dict is dropped (None)."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * len(kinds)
    series = {}
    for position, (kind, values) in enumerate(zip(kinds, columns, strict=True)):
        seen = texts[position] if texts is not None and kind == "text" else None
        if seen is not None:
            values = [value if value is None else seen.setdefault(value, value) for value in values]
            if len(seen) > 0.9 * len(values):  # nearly all distinct already: sharing saves nothing
                texts[position] = None  # type: ignore[index]
        series[position] = pd.Series(list(values), dtype=_SERIES_DTYPES[kind])
    return pd.DataFrame(series, index=pd.RangeIndex(len(rows)))


# Rows fetched and turned into typed columns at a time: a large result is never held as one
# Python tuple per row (several times the memory of its columns).
_FETCH_ROWS = 50_000


def _fetched_frame(names: Sequence[str], kinds: Sequence[_ResultKind], cursor: Any) -> pd.DataFrame:
    """`_result_frame` of every row of `cursor`, read ``_FETCH_ROWS`` rows at a time."""
    parts = []
    texts: list[dict[str, str] | None] = [{} for _ in kinds]
    while True:
        rows = cursor.fetchmany(_FETCH_ROWS)
        if not rows and parts:
            break
        parts.append(_positional_frame(kinds, rows, texts))
        if len(rows) < _FETCH_ROWS:
            break
    frame = parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
    frame.columns = list(names)
    return frame


_DUCKDB_KINDS: dict[str, _ResultKind] = {
    "VARCHAR": "text",
    **dict.fromkeys(
        ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT"),
        "integer",
    ),
    "FLOAT": "float",
    "DOUBLE": "float",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP": "timestamp",
}

_POSTGRES_KINDS: dict[str, _ResultKind] = {
    **dict.fromkeys(("text", "varchar", "bpchar", "name"), "text"),
    **dict.fromkeys(("int2", "int4", "int8"), "integer"),
    "float4": "float",
    "float8": "float",
    "bool": "boolean",
    "date": "date",
    "timestamptz": "timestamptz",
    "timestamp": "timestamp",
    "numeric": "numeric",
}


def _duckdb_kind(type_name: str) -> _ResultKind:
    if type_name.startswith("DECIMAL"):
        return "numeric"
    return _DUCKDB_KINDS.get(type_name, "other")


def _postgres_kind(type_oid: int) -> _ResultKind:
    info = postgres_types.get(type_oid)
    return _POSTGRES_KINDS.get(info.name, "other") if info else "other"


def _canonical_type(data_type: str, precision: int | None, scale: int | None) -> str:
    """An information_schema column type spelled like a declared `Column.sql_type`."""
    spelled = data_type.upper()
    if spelled.startswith("DECIMAL") or spelled == "NUMERIC":
        return f"NUMERIC({precision},{scale})"
    return {
        "VARCHAR": "TEXT",
        "CHARACTER VARYING": "TEXT",
        "DOUBLE": "DOUBLE PRECISION",
        "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
    }.get(spelled, spelled)


# ---------------------------------------------------------------------------------------------
# The two backends: one transaction each, with the same small interface.

# psycopg reads every % as a placeholder marker, and ? must become %s only outside literals,
# quoted identifiers, comments and dollar-quoted bodies.
_PSYCOPG_TOKENS = re.compile(
    r"""
    (?P<verbatim>
        '(?:[^']|'')*'
      | "(?:[^"]|"")*"
      | --[^\n]*
      | /\*.*?\*/
      | \$(?P<tag>(?:[A-Za-z_][A-Za-z0-9_]*)?)\$.*?\$(?P=tag)\$
    )
    | (?P<placeholder>\?)
    """,
    re.VERBOSE | re.DOTALL,
)


def _psycopg_sql(sql: str) -> str:
    """`sql` with ? placeholders rewritten for psycopg and literal % signs escaped."""

    def rewrite(match: re.Match[str]) -> str:
        return "%s" if match["placeholder"] else match["verbatim"]

    return _PSYCOPG_TOKENS.sub(rewrite, sql.replace("%", "%%"))


class _Session(Protocol):
    """One open transaction on either backend; SQL uses ? placeholders and quoted identifiers."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> None: ...

    def fetch(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame: ...

    def literal(self, text: str | None) -> str: ...

    def serialize(self, key: str) -> None: ...

    def insert(self, qualified_table: str, columns: Sequence[Column], values: Sequence[list[object]]) -> None: ...


class _DuckDBSession:
    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._connection.execute(sql, [_plain(param) for param in params])

    def fetch(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        cursor = self._connection.execute(sql, [_plain(param) for param in params])
        description = cursor.description or []
        return _fetched_frame(
            [item[0] for item in description], [_duckdb_kind(str(item[1])) for item in description], cursor
        )

    def literal(self, text: str | None) -> str:
        # DuckDB has no backslash escapes in plain literals, so doubling quotes is complete.
        return "NULL" if text is None else "'" + text.replace("'", "''") + "'"

    def serialize(self, key: str) -> None:
        """Nothing to do: DuckDB lets one process write the file, and that process is us."""

    def insert(self, qualified_table: str, columns: Sequence[Column], values: Sequence[list[object]]) -> None:
        staged = pd.DataFrame(
            {
                column.name: _duckdb_staging_series(column, column_values)
                for column, column_values in zip(columns, values, strict=True)
            }
        )
        self._connection.register("staged_rows", staged)
        try:
            names = ", ".join(_quote(column.name) for column in columns)
            casts = ", ".join(f"CAST({_quote(column.name)} AS {column.sql_type})" for column in columns)
            self._connection.execute(f"INSERT INTO {qualified_table} ({names}) SELECT {casts} FROM staged_rows")
        finally:
            self._connection.unregister("staged_rows")


def _duckdb_staging_series(column: Column, values: list[object]) -> pd.Series:
    """`values` in a pandas dtype DuckDB scans without guessing; the INSERT casts to the column type."""
    if column.sql_type.startswith("NUMERIC"):
        # Decimal text casts exactly; DuckDB would otherwise infer one precision for the column.
        return pd.Series([None if value is None else format(value, "f") for value in values], dtype="str")
    return pd.Series(
        values,
        dtype={
            "TEXT": "str",
            "BIGINT": "Int64",
            "DOUBLE PRECISION": "float64",
            "BOOLEAN": "boolean",
            "DATE": "datetime64[s]",
            "TIMESTAMPTZ": "datetime64[us, UTC]",
        }[column.sql_type],
    )


class _PostgresSession:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._connection.execute(_psycopg_sql(sql), [_plain(param) for param in params])

    def fetch(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        cursor = self._connection.execute(_psycopg_sql(sql), [_plain(param) for param in params])
        description = cursor.description or []
        names, kinds = [item.name for item in description], [_postgres_kind(item.type_code) for item in description]
        return _fetched_frame(names, kinds, cursor) if description else _result_frame(names, kinds, [])

    def literal(self, text: str | None) -> str:
        # psycopg quotes for this connection's settings (standard_conforming_strings included).
        return pgsql.Literal(text).as_string(self._connection)

    def serialize(self, key: str) -> None:
        # Parallel Dagster runs write the same tables; a transaction-scoped advisory lock makes
        # them take turns instead of racing on CREATE or on delete-then-insert of the same keys.
        self._connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def insert(self, qualified_table: str, columns: Sequence[Column], values: Sequence[list[object]]) -> None:
        names = ", ".join(_quote(column.name) for column in columns)
        copy_sql = f"COPY {qualified_table} ({names}) FROM STDIN"
        with self._connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)


def _is_lock_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


@contextmanager
def _database_errors(action: str, warehouse: str) -> Iterator[None]:
    """Raise driver errors as WarehouseError, so callers catch one type on both backends."""
    try:
        yield
    except (psycopg.Error, duckdb.Error) as exc:
        raise WarehouseError(f"{action} in {warehouse} failed: {exc}") from exc


# ---------------------------------------------------------------------------------------------


class PartitionSpool:
    """Rows of one partition, converted and checked as they are added and kept in a temporary file
    until `Warehouse.replace_partitions` writes them (pass the spool as a `PartitionWrite`'s rows).

    For a caller filling several partitions at once: the records of three weeks arrive interleaved
    from one vendor query, and none of the weeks is held in memory whole. A row outside the
    partition is refused when added (ValueError), before anything is written. Close it (or use it
    as a context manager) once written or given up."""

    def __init__(
        self, table: Table, partition: Mapping[str, object], date_range: tuple[str, dt.date, dt.date] | None = None
    ) -> None:
        self.table, self.partition, self.date_range = table, dict(partition), date_range
        self._owned = _Partition.of(table, partition, date_range)
        self._spool = _Spool()
        self.rows = 0

    def add(self, rows: pd.DataFrame) -> None:
        if len(rows):
            self._spool.add(_checked_values(self.table, self._owned, rows))
            self.rows += len(rows)

    def write(self, move_rows: bool = False) -> PartitionWrite:
        """The replace of the partition with the rows added."""
        return PartitionWrite(self.table, self, self.partition, self.date_range, move_rows)

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> PartitionSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class PartitionWrite:
    """One partition replace for `Warehouse.replace_partitions` (arguments as in `replace_partition`;
    `rows` may also be a filled `PartitionSpool`)."""

    table: Table
    rows: pd.DataFrame | Iterable[pd.DataFrame] | PartitionSpool
    partition: Mapping[str, object]
    date_range: tuple[str, dt.date, dt.date] | None = None
    move_rows: bool = False


class WarehouseReader:
    """The reads of `Warehouse.reading()`: `query` and `read_table` as on the warehouse, all on
    one connection."""

    def __init__(self, warehouse: Warehouse, session: _Session) -> None:
        self._warehouse, self._session = warehouse, session

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        return self._session.fetch(self._warehouse._with_schema(sql), params)

    def read_table(
        self, table: Table | str, where: Mapping[str, object] | None = None, order_by: Sequence[str] | None = None
    ) -> pd.DataFrame:
        return self.query(*self._warehouse._read_table_sql(table, where, order_by))


class Warehouse(dg.ConfigurableResource):
    """The analytics warehouse where ProPay tables live, in DuckDB or PostgreSQL.

    `url` picks the backend: `postgresql://user:password@host:port/database` for PostgreSQL, or a
    `duckdb:///path.duckdb` URL or a path ending in `.duckdb` for a DuckDB file. Left empty, it is
    read from the PROTIV_WAREHOUSE_URL environment variable whenever an operation runs, falling back
    to the DuckDB file in the project data folder, so a password never enters Dagster's config or
    UI. Messages, reprs and logs show URLs with the password masked.

    Tables live in the schema `schema_name` (default `protiv`), where analysts query them with SQL.
    Writes replace one partition (for example one company and date range) in a single
    transaction: a failed run leaves the previous rows untouched and a re-run is idempotent.
    """

    # Pydantic would otherwise print a rejected URL, password included, in its validation error.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field(
        default="",
        description=(
            f"A postgresql:// URL, a duckdb:/// URL or a .duckdb path; empty reads ${WAREHOUSE_URL_VARIABLE}, "
            "else uses the project's DuckDB file."
        ),
    )
    schema_name: str = Field(default="protiv", description="Schema holding the tables (lowercase SQL identifier).")
    lock_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long to wait for another process to release the DuckDB file before failing.",
    )
    duckdb_memory_limit: str = Field(
        default="512MB",
        pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$",
        description=(
            "Memory DuckDB may hold per connection (its buffers; beyond it, it spills to disk). DuckDB's own "
            "default, 80 % of RAM, let the write of a 0.5 M-row raw week add about 600 MB to a run process."
        ),
    )

    # Both checks skip EnvVar placeholders: Dagster validates again once the variable is resolved.
    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: object) -> object:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            _parse_url(value)
        return value

    @field_validator("schema_name", mode="before")
    @classmethod
    def _check_schema_name(cls, value: object) -> object:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            _check_identifier(value, "schema_name")
        return value

    def __repr__(self) -> str:
        # A repr must not raise, even when PROTIV_WAREHOUSE_URL holds something unusable.
        try:
            return f"Warehouse({self.describe()})"
        except ValueError as exc:
            return f"Warehouse(invalid: {exc})"

    __str__ = __repr__

    @property
    def backend(self) -> Backend:
        """'duckdb' or 'postgres'."""
        return self._target().backend

    def describe(self) -> str:
        """Where the tables live, password masked, for logs and asset metadata."""
        if isinstance(self.url, dg.EnvVar):
            return f"warehouse from environment variable {self.url.env_var_name}, schema {self.schema_name}"
        target = self._target()
        if target.backend == "duckdb":
            return f"DuckDB {self._duckdb_path()}, schema {self.schema_name}"
        return f"PostgreSQL {redact_url(target.location or '')}, schema {self.schema_name}"

    # -- public operations ---------------------------------------------------------------------

    def ensure_tables(self, tables: Iterable[Table]) -> None:
        """Create the schema and any missing tables, with primary keys, NOT NULLs and comments.

        Idempotent. A table that already exists with other columns (missing, extra or of another
        type) is never migrated silently: WarehouseError names each difference.
        """
        tables = list(tables)
        schema = _quote(self.schema_name)
        with self._session("creating tables") as session:
            session.serialize(f"protiv_dagster.warehouse schema {self.schema_name}")
            existing_schemas = session.fetch(
                "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?", [self.schema_name]
            )
            if existing_schemas.empty:
                session.execute(f"CREATE SCHEMA {schema}")
            problems: list[str] = []
            for table in tables:
                existing = session.fetch(
                    "SELECT column_name, data_type, numeric_precision, numeric_scale "
                    "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                    "ORDER BY ordinal_position",
                    [self.schema_name, table.name],
                )
                if existing.empty:
                    session.execute(_create_table_sql(schema, table))
                    log.info("Created table %s in %s", table.name, self.describe())
                else:
                    problems.extend(_differences(self.schema_name, table, existing))
            if problems:
                raise WarehouseError(
                    f"tables in {self.describe()} differ from their declarations (nothing was changed; "
                    f"migrate them deliberately): " + "; ".join(problems)
                )
            # Set on every run so an edited description reaches the catalog analysts browse.
            for table in tables:
                qualified = f"{schema}.{_quote(table.name)}"
                session.execute(f"COMMENT ON TABLE {qualified} IS {session.literal(table.description or None)}")
                for column in table.columns:
                    session.execute(
                        f"COMMENT ON COLUMN {qualified}.{_quote(column.name)} "
                        f"IS {session.literal(column.description or None)}"
                    )

    def ensure_views(self, views: Iterable[View]) -> None:
        """(Re)create the views, in order, in one transaction, with their comments.

        Views hold no data, so each is dropped and created again: an edited definition always takes
        effect. A view whose columns (names, order, types) differ from its declaration raises
        WarehouseError and nothing changes. The tables they read must exist (``ensure_tables``).

        On PostgreSQL every view is created with ``security_invoker = true``, so it reads the tables
        as the querying role and their row-level security applies (see ``grant_company_analyst``),
        and the SELECT grants a view had are given again to the view created in its place.
        """
        views = list(views)
        schema = _quote(self.schema_name)
        postgres = self.backend == "postgres"
        options = " WITH (security_invoker = true)" if postgres else ""
        with self._session("creating views") as session:
            session.serialize(f"protiv_dagster.warehouse schema {self.schema_name}")
            grants = (
                session.fetch(
                    "SELECT table_name, grantee FROM information_schema.role_table_grants "
                    "WHERE table_schema = ? AND privilege_type = 'SELECT' AND grantee <> current_user",
                    [self.schema_name],
                )
                if postgres
                else pd.DataFrame({"table_name": [], "grantee": []})
            )
            # Later views may read earlier ones: drop in reverse order so PostgreSQL sees no dependants.
            for view in reversed(views):
                session.execute(f"DROP VIEW IF EXISTS {schema}.{_quote(view.name)}")
            problems: list[str] = []
            for view in views:
                qualified = f"{schema}.{_quote(view.name)}"
                session.execute(f"CREATE VIEW {qualified}{options} AS {self._with_schema(view.select).strip()}")
                for grantee in grants.loc[grants["table_name"] == view.name, "grantee"]:
                    session.execute(f"GRANT SELECT ON {qualified} TO {_quote(grantee)}")
                existing = session.fetch(
                    "SELECT column_name, data_type, numeric_precision, numeric_scale "
                    "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                    "ORDER BY ordinal_position",
                    [self.schema_name, view.name],
                )
                actual = [
                    (row.column_name, _canonical_type(
                        row.data_type,
                        None if pd.isna(row.numeric_precision) else int(row.numeric_precision),
                        None if pd.isna(row.numeric_scale) else int(row.numeric_scale),
                    ))
                    for row in existing.itertuples()
                ]
                declared = [(column.name, column.sql_type) for column in view.columns]
                if actual != declared:
                    problems.append(f"view {view.name} yields {actual}, declared {declared}")
                session.execute(f"COMMENT ON VIEW {qualified} IS {session.literal(view.description or None)}")
                for column in view.columns:
                    session.execute(
                        f"COMMENT ON COLUMN {qualified}.{_quote(column.name)} IS {session.literal(column.description or None)}"
                    )
            if problems:
                raise WarehouseError(f"views in {self.describe()} differ from their declarations: " + "; ".join(problems))

    def replace_partition(
        self,
        table: Table,
        rows: pd.DataFrame | Iterable[pd.DataFrame],
        partition: Mapping[str, object],
        date_range: tuple[str, dt.date, dt.date] | None = None,
        *,
        move_rows: bool = False,
    ) -> int:
        """Replace one partition of `table` with `rows` in a single transaction; return the row count.

        `rows` is one DataFrame or an iterable of DataFrames (chunks, e.g. one per vendor page). Chunks
        are converted and checked as they come and spooled to a temporary file, so a large partition
        is never held in memory whole; the warehouse is touched only once the last chunk has arrived,
        and an error while producing them (a vendor failing mid-listing) writes nothing.

        With `move_rows`, a row whose primary key already lives in another partition (a time entry
        whose work date was edited into another week) is deleted there in the same transaction, so
        it moves instead of colliding. The partition columns must cover all of the primary key but
        one column.

        The partition is the rows where every `partition` column equals its value and, with
        `date_range=(column, first, last)`, the DATE column lies between first and last inclusive.
        Every row of `rows` must belong to that partition (ValueError otherwise, before the
        database is touched). Only `table.column_names` are written; extra DataFrame columns are
        ignored. Any failure rolls back, leaving the previous rows of the partition in place.
        """
        return self.replace_partitions([PartitionWrite(table, rows, partition, date_range, move_rows)])[0]

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> list[int]:
        """Replace several partitions, possibly of several tables, in ONE transaction; return the row
        counts in the order given. Each write behaves as in `replace_partition`; rows that must be
        consistent with each other (a ProPay and its workers' bonuses) are either all replaced or
        none is."""
        prepared: list[tuple[PartitionWrite, _Partition, Iterable[list[list[object]]]]] = []
        spools: list[_Spool] = []
        try:
            for write in writes:
                owned = _Partition.of(write.table, write.partition, write.date_range)
                rows = write.rows
                if isinstance(rows, pd.DataFrame) and len(rows) > _BATCH_ROWS:
                    # Converted cells take several times the frame's memory: convert a large frame in
                    # slices and spool them, as chunks are.
                    frame = rows
                    rows = (frame.iloc[start : start + _BATCH_ROWS] for start in range(0, len(frame), _BATCH_ROWS))
                if isinstance(rows, PartitionSpool):
                    # Checked as it was filled; its owner closes it.
                    chunks: Iterable[list[list[object]]] = rows._spool
                elif isinstance(rows, pd.DataFrame):
                    chunks = [_checked_values(write.table, owned, rows)]
                else:
                    spool = _Spool()
                    spools.append(spool)
                    for chunk in rows:
                        spool.add(_checked_values(write.table, owned, chunk))
                    chunks = spool
                prepared.append((write, owned, chunks))
            if not prepared:
                return []
            written = [0] * len(prepared)
            action = f"replacing {prepared[0][1]}" + (f" and {len(prepared) - 1} more partitions" if len(prepared) > 1 else "")
            with self._session(action) as session:
                # Locks in one order (by table) whatever the order of the writes: two runs writing
                # the same tables never wait on each other crosswise.
                for name in sorted({write.table.name for write, _, _ in prepared}):
                    session.serialize(f"protiv_dagster.warehouse table {self.schema_name}.{name}")
                for position, (write, owned, chunks) in enumerate(prepared):
                    # The error names the partition whose write failed, not only the first one.
                    with _database_errors(f"replacing {owned}", self.describe()):
                        qualified = f"{_quote(self.schema_name)}.{_quote(write.table.name)}"
                        condition, params = owned.condition()
                        session.execute(f"DELETE FROM {qualified} WHERE {condition}", params)
                        for values in chunks:
                            count = len(values[0])
                            if write.move_rows and count:
                                for sql, chunk_params in _moved_row_deletes(qualified, write.table, write.partition, values):
                                    session.execute(sql, chunk_params)
                            if count:
                                session.insert(qualified, write.table.columns, values)
                            written[position] += count
        finally:
            for spool in spools:
                spool.close()
        # A plain module logger, not Dagster's: every Dagster log line is a stored event, and row
        # counts already reach the UI as materialization metadata.
        for (_, owned, _), count in zip(prepared, written):
            log.debug("Replaced %s with %d rows in %s", owned, count, self.describe())
        return written

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one read query with ? placeholders; `{schema}` in `sql` becomes the quoted schema.

        Values always go in `params`, never into `sql`. On PostgreSQL the ? in string literals,
        quoted identifiers and comments stay as they are; the jsonb ? operators are therefore not
        available (use jsonb_exists instead).
        """
        with self._session("query") as session:
            return session.fetch(self._with_schema(sql), params)

    def read_table(
        self,
        table: Table | str,
        where: Mapping[str, object] | None = None,
        order_by: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `table` where each `where` column equals its value (None matches NULL).

        With a `Table`, only its declared columns are read, in declaration order, sorted by the
        primary key unless `order_by` names other columns (ascending), and `where` values are
        converted like written cells (a datetime64 for a DATE column, say).
        """
        return self.query(*self._read_table_sql(table, where, order_by))

    @contextmanager
    def reading(self) -> Iterator[WarehouseReader]:
        """Several reads on one connection and in one transaction: one consistent view of the
        tables, and one connection opened instead of one per read (a DuckDB open costs ~15 ms).
        Keep the block short: on DuckDB it holds the file for this process."""
        with self._session("reading") as session:
            yield WarehouseReader(self, session)

    def _read_table_sql(
        self, table: Table | str, where: Mapping[str, object] | None, order_by: Sequence[str] | None
    ) -> tuple[str, list[object]]:
        if isinstance(table, Table):
            name, columns = table.name, ", ".join(_quote(column) for column in table.column_names)
            order_by = table.primary_key if order_by is None else order_by
            for column in [*(where or {}), *order_by]:
                table.column(column)
        else:
            name, columns = _check_identifier(table, "table name"), "*"
        conditions, params = [], []
        for column, value in (where or {}).items():
            if value is None:
                conditions.append(f"{_quote(_check_identifier(column, 'column name'))} IS NULL")
            else:
                conditions.append(f"{_quote(_check_identifier(column, 'column name'))} = ?")
                params.append(_key_value(table, column, value) if isinstance(table, Table) else value)
        sql = f"SELECT {columns} FROM {_quote(self.schema_name)}.{_quote(name)}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if order_by:
            ordering = (_quote(_check_identifier(column, "column name")) for column in order_by)
            sql += " ORDER BY " + ", ".join(ordering)
        return sql, params

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """Run one DDL or DML statement in its own transaction, with the placeholder rules of `query`."""
        with self._session("statement") as session:
            session.execute(self._with_schema(sql), params)

    # -- analyst roles: PostgreSQL row-level security -----------------------------------------

    def enable_row_security(self) -> list[str]:
        """Lay per-company row-level security over every table and view of the schema that has a
        ``company_id`` column; return their names. Idempotent; PostgreSQL only.

        A role reads the rows of the companies ``analyst_companies`` maps it to (``grant_company_analyst``)
        and nothing else. Views are switched to ``security_invoker`` so they read as the analyst. The
        table owner (the pipeline's role) is not subject to the policies and keeps writing every company.

        A grant is bound to the role's OID, not to its name: the policies compare ``role_oid`` with
        the OID of ``current_user``, looked up once per query. A role dropped and created again with
        the same name is another role (another OID) and reads nothing until it is granted again;
        its predecessor's grants stay inert and ``company_analysts`` lists them as stale.

        Also upgrades, in place and once, an ``analyst_companies`` of an earlier release that held
        names only: each grant is bound to the role that has its name now, and a grant whose role
        no longer exists is kept with no OID (inert, listed as ``stale: role dropped``).
        """
        self._require_postgres("row-level security")
        schema = _quote(self.schema_name)
        mapping = f"{schema}.{_quote(ANALYST_COMPANIES)}"
        with self._session("enabling row-level security") as session:
            session.serialize(f"protiv_dagster.warehouse schema {self.schema_name}")
            if session.fetch("SELECT 1 FROM information_schema.schemata WHERE schema_name = ?", [self.schema_name]).empty:
                session.execute(f"CREATE SCHEMA {schema}")
            session.execute(
                f"CREATE TABLE IF NOT EXISTS {mapping} (role_name TEXT NOT NULL, company_id TEXT NOT NULL, "
                f"role_oid OID, CONSTRAINT {_quote(ANALYST_BINDING)} UNIQUE (role_oid, company_id))"
            )
            self._bind_analyst_grants(session)
            session.execute(f"COMMENT ON TABLE {mapping} IS 'Which companies each analyst role may read (row-level security).'")
            session.execute(
                f"COMMENT ON COLUMN {mapping}.role_oid IS 'The role granted (pg_roles.oid): the policies match on it. "
                "A grant whose role no longer has this OID (dropped, or dropped and created again) gives no rows.'"
            )
            session.execute(
                f"COMMENT ON COLUMN {mapping}.role_name IS 'The name of the role granted, for display (follows renames).'"
            )
            # An analyst sees its own grants only: the policies below read this table as the analyst.
            session.execute(f"ALTER TABLE {mapping} ENABLE ROW LEVEL SECURITY")
            session.execute(f"DROP POLICY IF EXISTS {ANALYST_POLICY} ON {mapping}")
            session.execute(
                f"CREATE POLICY {ANALYST_POLICY} ON {mapping} FOR SELECT USING (role_oid = {_CURRENT_ROLE_OID})"
            )
            scoped = session.fetch(
                "SELECT c.table_name, t.table_type FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                "WHERE c.table_schema = ? AND c.column_name = 'company_id' AND c.table_name <> ? ORDER BY c.table_name",
                [self.schema_name, ANALYST_COMPANIES],
            )
            for name, kind in zip(scoped["table_name"], scoped["table_type"]):
                qualified = f"{schema}.{_quote(name)}"
                if kind == "VIEW":
                    session.execute(f"ALTER VIEW {qualified} SET (security_invoker = true)")
                    continue
                session.execute(f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY")
                session.execute(f"DROP POLICY IF EXISTS {ANALYST_POLICY} ON {qualified}")
                # Both subqueries are uncorrelated: PostgreSQL runs them once per query (an InitPlan
                # and a hashed SubPlan), not once per row.
                session.execute(
                    f"CREATE POLICY {ANALYST_POLICY} ON {qualified} FOR SELECT USING (company_id IN "
                    f"(SELECT a.company_id FROM {mapping} a WHERE a.role_oid = {_CURRENT_ROLE_OID}))"
                )
        return list(scoped["table_name"])

    def grant_company_analyst(self, role: str, company_id: str) -> AnalystGrant:
        """Let the existing PostgreSQL ``role`` read ``company_id``'s rows of every table and view,
        and no other company's. Idempotent; a role may be granted several companies.

        The grant is bound to the role that has this name now (its OID). A stale grant of the same
        name and company (made to an earlier role of that name, since dropped) is replaced: granting
        again is the admin binding the company to the role that exists now. Stale grants of the name
        for other companies stay stale; the result lists them.

        Refuses a superuser, a BYPASSRLS role or the tables' owner: row-level security does not
        apply to them, so they could never be limited to one company.
        """
        _check_identifier(role, "role")
        if not isinstance(company_id, str) or not company_id:
            raise ValueError("company_id must be a non-empty string")
        self.enable_row_security()
        schema = _quote(self.schema_name)
        mapping = f"{schema}.{_quote(ANALYST_COMPANIES)}"
        with self._session(f"granting {role} the rows of one company") as session:
            session.serialize(f"protiv_dagster.warehouse schema {self.schema_name}")
            found = session.fetch(
                "SELECT oid::bigint AS role_oid, rolsuper, rolbypassrls FROM pg_catalog.pg_roles WHERE rolname = ?", [role]
            )
            if found.empty:
                raise WarehouseError(
                    f"role {role!r} does not exist; create it first (CREATE ROLE {role} LOGIN PASSWORD '...')"
                )
            owner = session.fetch("SELECT 1 FROM pg_tables WHERE schemaname = ? AND tableowner = ?", [self.schema_name, role])
            if bool(found["rolsuper"].iloc[0]) or bool(found["rolbypassrls"].iloc[0]) or not owner.empty:
                raise WarehouseError(
                    f"role {role!r} is a superuser, has BYPASSRLS or owns the tables: row-level security "
                    "cannot limit it to one company; use a plain role"
                )
            role_oid = int(found["role_oid"].iloc[0])
            session.execute(f"GRANT USAGE ON SCHEMA {schema} TO {_quote(role)}")
            # Every table and view of the schema: each one holding company rows has a policy.
            session.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {_quote(role)}")
            stale = f"a.role_name = ? AND {_STALE_GRANT}"
            replaced = self._analyst_grants(session, f"{stale} AND a.company_id = ?", [role, company_id])
            session.execute(f"DELETE FROM {mapping} a WHERE {stale} AND a.company_id = ?", [role, company_id])
            session.execute(
                f"INSERT INTO {mapping} (role_name, company_id, role_oid) VALUES (?, ?, CAST(? AS oid)) "
                "ON CONFLICT (role_oid, company_id) DO NOTHING",
                [role, company_id, role_oid],
            )
            left = self._analyst_grants(session, stale, [role])
        if not replaced.empty:
            log.info(
                "Granting %s company %r again bound it to the role %s that exists now (OID %d), replacing %s",
                role, company_id, role, role_oid, ", ".join(replaced["state"]),
            )
        return AnalystGrant(
            role, company_id, role_oid, replaced=tuple(replaced["state"]), stale_companies=tuple(left["company_id"])
        )

    def revoke_company_analyst(self, role: str, company_id: str | None = None) -> pd.DataFrame:
        """Take ``company_id`` (every company when None) away from ``role``; return the grants
        removed, as ``company_analysts`` lists them.

        ``role`` names the role that has this name now and, as well, the stale grants left under
        this name by an earlier role (dropped, or dropped and created again): this is how stale
        grants are cleaned up, even when no role of that name exists any more. A role left with no
        company loses its SELECT grants on the schema too.
        """
        _check_identifier(role, "role")
        self.enable_row_security()  # binds the grants of an earlier release before matching them
        schema = _quote(self.schema_name)
        mapping = f"{schema}.{_quote(ANALYST_COMPANIES)}"
        with self._session(f"revoking {role}'s companies") as session:
            session.serialize(f"protiv_dagster.warehouse schema {self.schema_name}")
            found = session.fetch("SELECT oid::bigint AS role_oid FROM pg_catalog.pg_roles WHERE rolname = ?", [role])
            role_oid = None if found.empty else int(found["role_oid"].iloc[0])
            condition, params = f"(a.role_name = ? AND {_STALE_GRANT})", [role]
            if role_oid is not None:
                condition, params = f"({condition} OR a.role_oid = CAST(? AS oid))", [*params, role_oid]
            if company_id is not None:
                condition, params = f"{condition} AND a.company_id = ?", [*params, company_id]
            removed = self._analyst_grants(session, condition, params)
            session.execute(f"DELETE FROM {mapping} a WHERE {condition}", params)
            if role_oid is None:
                if removed.empty:
                    of = "" if company_id is None else f" for company {company_id!r}"
                    raise WarehouseError(f"role {role!r} does not exist and has no grants{of}")
            elif session.fetch(f"SELECT 1 FROM {mapping} WHERE role_oid = CAST(? AS oid)", [role_oid]).empty:
                session.execute(f"REVOKE SELECT ON ALL TABLES IN SCHEMA {schema} FROM {_quote(role)}")
                session.execute(f"REVOKE USAGE ON SCHEMA {schema} FROM {_quote(role)}")
        return removed

    def company_analysts(self) -> pd.DataFrame:
        """Every analyst grant: ``role_name``, ``company_id``, ``role_oid`` (the role it is bound to;
        NA for a grant of an earlier release whose role was already gone) and ``state``:

        - ``ok``: the role granted exists (``ok: role renamed to NAME`` when it was renamed since);
        - ``stale: role dropped``: no role has this OID any more;
        - ``stale: role re-created (new OID)``: a role of this name exists, but it is another role.

        Stale grants give no rows; ``revoke_company_analyst(role_name)`` removes them. Empty before
        the first grant. A table of an earlier release (names only) is upgraded first
        (``enable_row_security``), so its grants are listed, and enforced, by OID.
        """
        self._require_postgres("row-level security")
        with self._session("listing analyst roles") as session:
            columns = session.fetch(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
                [self.schema_name, ANALYST_COMPANIES],
            )
            if columns.empty:
                return pd.DataFrame({
                    "role_name": pd.Series(dtype=str), "company_id": pd.Series(dtype=str),
                    "role_oid": pd.Series(dtype="Int64"), "state": pd.Series(dtype=str),
                })
        if "role_oid" not in set(columns["column_name"]):
            self.enable_row_security()
        with self._session("listing analyst roles") as session:
            return self._analyst_grants(session)

    def _bind_analyst_grants(self, session: _Session) -> None:
        """Bring ``analyst_companies`` to the OID-bound shape, once (idempotent), and let the names
        shown follow renamed roles. Runs inside ``enable_row_security``'s transaction and lock."""
        mapping = f"{_quote(self.schema_name)}.{_quote(ANALYST_COMPANIES)}"
        columns = session.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [self.schema_name, ANALYST_COMPANIES],
        )
        if "role_oid" not in set(columns["column_name"]):
            # Only here, once: filling OIDs later would hand a role created afterwards with the
            # same name its predecessor's companies, which is the hole this column closes.
            session.execute(f"ALTER TABLE {mapping} ADD COLUMN role_oid OID")
            # The role that has the name now is the one that was granted, as far as anyone can tell.
            session.execute(
                f"UPDATE {mapping} a SET role_oid = r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = a.role_name"
            )
            # The old key (role_name, company_id) would stop a re-created role's grant from sitting
            # beside its predecessor's stale one; a grant is one role (OID) and one company.
            keys = session.fetch(
                "SELECT k.conname FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class t ON t.oid = k.conrelid "
                "JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace "
                "WHERE n.nspname = ? AND t.relname = ? AND k.contype IN ('p', 'u')",
                [self.schema_name, ANALYST_COMPANIES],
            )
            for name in keys["conname"]:
                session.execute(f"ALTER TABLE {mapping} DROP CONSTRAINT {_quote(name)}")
            session.execute(
                f"ALTER TABLE {mapping} ADD CONSTRAINT {_quote(ANALYST_BINDING)} UNIQUE (role_oid, company_id)"
            )
            unbound = session.fetch(f"SELECT role_name, company_id FROM {mapping} WHERE role_oid IS NULL ORDER BY 1, 2")
            log.warning(
                "Bound the analyst grants of %s to role OIDs; %d grant(s) of roles that no longer exist are "
                "kept, inert (stale): %s",
                self.describe(), len(unbound),
                ", ".join(f"{r.role_name}/{r.company_id!r}" for r in unbound.itertuples()) or "none",
            )
        # Display only: the grant stays with the role (its OID) when the role is renamed.
        session.execute(
            f"UPDATE {mapping} a SET role_name = r.rolname FROM pg_catalog.pg_roles r "
            "WHERE r.oid = a.role_oid AND a.role_name <> r.rolname"
        )

    def _analyst_grants(self, session: _Session, condition: str = "TRUE", params: Sequence[object] = ()) -> pd.DataFrame:
        """The grants of ``analyst_companies`` (aliased ``a``) matching ``condition``, with their state."""
        mapping = f"{_quote(self.schema_name)}.{_quote(ANALYST_COMPANIES)}"
        return session.fetch(
            "SELECT a.role_name, a.company_id, a.role_oid::bigint AS role_oid, CASE "
            f"WHEN live.oid IS NOT NULL AND live.rolname = a.role_name THEN '{GRANT_OK}' "
            f"WHEN live.oid IS NOT NULL THEN '{GRANT_OK}: role renamed to ' || live.rolname "
            f"WHEN named.oid IS NOT NULL THEN '{GRANT_RECREATED}' ELSE '{GRANT_DROPPED}' END AS state "
            f"FROM {mapping} a LEFT JOIN pg_catalog.pg_roles live ON live.oid = a.role_oid "
            "LEFT JOIN pg_catalog.pg_roles named ON named.rolname = a.role_name "
            f"WHERE {condition} ORDER BY a.role_name, a.company_id, a.role_oid",
            params,
        )

    def _require_postgres(self, what: str) -> None:
        if self.backend != "postgres":
            raise WarehouseError(f"{what} needs PostgreSQL: DuckDB has no roles ({self.describe()})")

    # -- internals -----------------------------------------------------------------------------

    def _target(self) -> _Target:
        # Read at use time, so a password in the environment never enters Dagster's config or UI.
        return _parse_url(self.url or os.environ.get(WAREHOUSE_URL_VARIABLE, ""))

    def _with_schema(self, sql: str) -> str:
        return sql.replace("{schema}", _quote(self.schema_name))

    def _duckdb_path(self) -> Path:
        location = self._target().location
        return default_duckdb_path() if location is None else Path(location).expanduser()

    @contextmanager
    def _session(self, action: str) -> Iterator[_Session]:
        """A fresh connection and one transaction: committed on success, rolled back on any error."""
        with _database_errors(action, self.describe()):
            if self.backend == "postgres":
                with psycopg.connect(self._target().location or "", autocommit=True) as connection:
                    # UTC everywhere, so TIMESTAMPTZ values come back the same as from DuckDB.
                    connection.execute("SET TIME ZONE 'UTC'")
                    with connection.transaction():
                        yield _PostgresSession(connection)
                return
            connection = self._open_duckdb()
            try:
                connection.execute("SET TimeZone = 'UTC'")
                connection.execute(f"SET memory_limit = '{self.duckdb_memory_limit}'")  # pattern-checked above
                connection.begin()
                try:
                    yield _DuckDBSession(connection)
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
            finally:
                # Closing releases the file lock at once for the next process.
                connection.close()

    def _open_duckdb(self) -> duckdb.DuckDBPyConnection:
        """Open the DuckDB file, waiting with backoff while another process holds its lock."""
        path = self._duckdb_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        retrying = Retrying(
            retry=retry_if_exception(_is_lock_conflict),
            wait=wait_exponential(multiplier=0.05, max=2.0),
            stop=stop_after_delay(self.lock_timeout_seconds),
        )
        try:
            return retrying(duckdb.connect, str(path))
        except RetryError as exc:
            raise WarehouseError(
                f"{self.describe()} stayed locked by another process for {self.lock_timeout_seconds:g} s "
                f"(DuckDB allows one writing process per file): {exc.last_attempt.exception()}"
            ) from exc.last_attempt.exception()


def _create_table_sql(schema: str, table: Table) -> str:
    columns = [
        f"{_quote(column.name)} {column.sql_type}{'' if column.nullable else ' NOT NULL'}"
        for column in table.columns
    ]
    primary_key = ", ".join(_quote(name) for name in table.primary_key)
    return f"CREATE TABLE {schema}.{_quote(table.name)} ({', '.join(columns)}, PRIMARY KEY ({primary_key}))"


def _differences(schema_name: str, table: Table, existing: pd.DataFrame) -> list[str]:
    """How the existing table's columns differ from `table`'s declaration, one phrase per kind."""
    actual = {
        row.column_name: _canonical_type(
            row.data_type,
            None if pd.isna(row.numeric_precision) else int(row.numeric_precision),
            None if pd.isna(row.numeric_scale) else int(row.numeric_scale),
        )
        for row in existing.itertuples()
    }
    declared = {column.name: column.sql_type for column in table.columns}
    missing = [name for name in declared if name not in actual]
    extra = [name for name in actual if name not in declared]
    retyped = [
        f"{name} is {actual[name]}, declared {declared[name]}"
        for name in declared
        if name in actual and actual[name] != declared[name]
    ]
    phrases = []
    if missing:
        phrases.append(f"missing columns {missing}")
    if extra:
        phrases.append(f"extra columns {extra}")
    if retyped:
        phrases.append("changed types (" + ", ".join(retyped) + ")")
    return [f"table {schema_name}.{table.name} has " + ", ".join(phrases)] if phrases else []

