"""The PostgreSQL backend: a session on one open transaction, with the ? placeholders of the
warehouse's SQL rewritten for psycopg."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql as pgsql

from protiv_dagster.warehouse.conversion import plain
from protiv_dagster.warehouse.declarations import Column, quote
from protiv_dagster.warehouse.results import fetched_frame, postgres_kind, result_frame

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


class PostgresSession:
    """A `Session` on an open psycopg connection."""

    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self._connection = connection

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        self._connection.execute(_psycopg_sql(sql), [plain(param) for param in params])

    def fetch(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        cursor = self._connection.execute(_psycopg_sql(sql), [plain(param) for param in params])
        description = cursor.description or []
        names, kinds = [item.name for item in description], [postgres_kind(item.type_code) for item in description]
        return fetched_frame(names, kinds, cursor) if description else result_frame(names, kinds, [])

    def literal(self, text: str | None) -> str:
        # psycopg quotes for this connection's settings (standard_conforming_strings included).
        return pgsql.Literal(text).as_string(self._connection)

    def serialize(self, key: str) -> None:
        # Parallel Dagster runs write the same tables; a transaction-scoped advisory lock makes
        # them take turns instead of racing on CREATE or on delete-then-insert of the same keys.
        self._connection.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (key,))

    def insert(self, qualified_table: str, columns: Sequence[Column], values: Sequence[list[object]]) -> None:
        names = ", ".join(quote(column.name) for column in columns)
        copy_sql = f"COPY {qualified_table} ({names}) FROM STDIN"
        with self._connection.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for row in zip(*values, strict=True):
                copy.write_row(row)
