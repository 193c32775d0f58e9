"""The DuckDB backend: a session on one open transaction of a DuckDB file."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pandas as pd

from protiv_dagster.warehouse.conversion import plain
from protiv_dagster.warehouse.declarations import Column, quote
from protiv_dagster.warehouse.results import duckdb_kind, fetched_frame


class DuckDBSession:
    """A `Session` on an open DuckDB connection."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._connection.execute(sql, [plain(param) for param in params])

    def fetch(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        cursor = self._connection.execute(sql, [plain(param) for param in params])
        description = cursor.description or []
        return fetched_frame(
            [item[0] for item in description], [duckdb_kind(str(item[1])) for item in description], cursor
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
            names = ", ".join(quote(column.name) for column in columns)
            casts = ", ".join(f"CAST({quote(column.name)} AS {column.sql_type})" for column in columns)
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


def is_lock_conflict(exc: BaseException) -> bool:
    """Whether opening the file failed because another process holds it (worth waiting for)."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()
