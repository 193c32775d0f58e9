"""What the two backends share: the `Session` interface of one open transaction, and
`WarehouseError`, the one error type callers catch whichever backend failed."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol

import duckdb
import pandas as pd
import psycopg

from protiv_dagster.warehouse.declarations import Column


class WarehouseError(RuntimeError):
    """A warehouse operation failed in the database; the message names the redacted warehouse."""


class Session(Protocol):
    """One open transaction on either backend; SQL uses ? placeholders and quoted identifiers."""

    def execute(self, sql: str, params: Sequence[object] = ()) -> None: ...

    def fetch(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame: ...

    def literal(self, text: str | None) -> str: ...

    def serialize(self, key: str) -> None: ...

    def insert(self, qualified_table: str, columns: Sequence[Column], values: Sequence[list[object]]) -> None: ...


@contextmanager
def database_errors(action: str, warehouse: str) -> Iterator[None]:
    """Raise driver errors as WarehouseError, so callers catch one type on both backends."""
    try:
        yield
    except (psycopg.Error, duckdb.Error) as exc:
        raise WarehouseError(f"{action} in {warehouse} failed: {exc}") from exc
