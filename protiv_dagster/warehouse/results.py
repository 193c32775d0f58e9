"""Query results as the same DataFrame on both backends.

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

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd
from psycopg.postgres import types as postgres_types

_ResultKind = Literal["text", "integer", "float", "boolean", "date", "timestamptz", "timestamp", "numeric", "other"]

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


def result_frame(names: Sequence[str], kinds: Sequence[_ResultKind], rows: Sequence[Sequence[object]]) -> pd.DataFrame:
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
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [()] * len(kinds)
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


def fetched_frame(names: Sequence[str], kinds: Sequence[_ResultKind], cursor: Any) -> pd.DataFrame:
    """`result_frame` of every row of `cursor`, read ``_FETCH_ROWS`` rows at a time."""
    parts: list[pd.DataFrame] = []
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


def duckdb_kind(type_name: str) -> _ResultKind:
    if type_name.startswith("DECIMAL"):
        return "numeric"
    return _DUCKDB_KINDS.get(type_name, "other")


def postgres_kind(type_oid: int) -> _ResultKind:
    info = postgres_types.get(type_oid)
    return _POSTGRES_KINDS.get(info.name, "other") if info else "other"


def canonical_type(data_type: str, precision: int | None, scale: int | None) -> str:
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
