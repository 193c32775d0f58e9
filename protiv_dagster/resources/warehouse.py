"""The warehouse as a Dagster resource: its configuration, checked when Dagster loads it, over the
library in `protiv_dagster.warehouse` (which knows nothing of Dagster)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager

import dagster as dg
import pandas as pd
from pydantic import ConfigDict, Field, field_validator

from protiv_dagster.settings import WAREHOUSE_URL_VARIABLE
from protiv_dagster.warehouse import schema, security
from protiv_dagster.warehouse.declarations import Table, View, check_identifier
from protiv_dagster.warehouse.security import AnalystGrant
from protiv_dagster.warehouse.spool import PartitionWrite
from protiv_dagster.warehouse.store import MEMORY_LIMIT_PATTERN, WarehouseReader, WarehouseStore
from protiv_dagster.warehouse.urls import Backend, parse_url


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
        pattern=MEMORY_LIMIT_PATTERN,
        description=(
            "Memory DuckDB may hold per connection (its buffers; beyond it, it spills to disk). DuckDB's own "
            "default, 80 % of RAM, would let one large write take a run process's memory."
        ),
    )

    # Both checks skip EnvVar placeholders: Dagster validates again once the variable is resolved.
    @field_validator("url", mode="before")
    @classmethod
    def _check_url(cls, value: object) -> object:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            parse_url(value)
        return value

    @field_validator("schema_name", mode="before")
    @classmethod
    def _check_schema_name(cls, value: object) -> object:
        if isinstance(value, str) and not isinstance(value, dg.EnvVar):
            check_identifier(value, "schema_name")
        return value

    def __repr__(self) -> str:
        # A repr must not raise, even when PROTIV_WAREHOUSE_URL holds something unusable.
        try:
            return f"Warehouse({self.describe()})"
        except ValueError as exc:
            return f"Warehouse(invalid: {exc})"

    __str__ = __repr__

    @property
    def store(self) -> WarehouseStore:
        """The library object doing the work, configured like this resource."""
        return WarehouseStore(self.url, self.schema_name, self.lock_timeout_seconds, self.duckdb_memory_limit)

    @property
    def backend(self) -> Backend:
        """'duckdb' or 'postgres'."""
        return self.store.backend

    def describe(self) -> str:
        """Where the tables live, password masked, for logs and asset metadata."""
        if isinstance(self.url, dg.EnvVar):
            return f"warehouse from environment variable {self.url.env_var_name}, schema {self.schema_name}"
        return self.store.describe()

    # -- operations: see `WarehouseStore`, `schema` and `security` for what each one does ------

    def ensure_tables(self, tables: Iterable[Table]) -> None:
        """Create the schema and any missing tables; a table that drifted raises WarehouseError."""
        schema.ensure_tables(self.store, tables)

    def ensure_views(self, views: Iterable[View]) -> None:
        """(Re)create the views, in order, in one transaction, with their comments."""
        schema.ensure_views(self.store, views)

    def replace_partition(
        self,
        table: Table,
        rows: pd.DataFrame | Iterable[pd.DataFrame],
        partition: Mapping[str, object],
        date_range: tuple[str, dt.date, dt.date] | None = None,
        *,
        move_rows: bool = False,
    ) -> int:
        """Replace one partition of `table` with `rows` in a single transaction; return the row count."""
        return self.store.replace_partition(table, rows, partition, date_range, move_rows=move_rows)

    def replace_partitions(self, writes: Sequence[PartitionWrite]) -> list[int]:
        """Replace several partitions, possibly of several tables, in ONE transaction; return the row counts."""
        return self.store.replace_partitions(writes)

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        """Run one read query with ? placeholders; `{schema}` in `sql` becomes the quoted schema."""
        return self.store.query(sql, params)

    def read_table(
        self,
        table: Table | str,
        where: Mapping[str, object] | None = None,
        order_by: Sequence[str] | None = None,
    ) -> pd.DataFrame:
        """The rows of `table` where each `where` column equals its value (None matches NULL)."""
        return self.store.read_table(table, where, order_by)

    @contextmanager
    def reading(self) -> Iterator[WarehouseReader]:
        """Several reads on one connection and in one transaction."""
        with self.store.reading() as reader:
            yield reader

    @contextmanager
    def kept_open(self) -> Iterator[None]:
        """A DuckDB file opened once for the transactions of the block, until another process waits
        for it (see `WarehouseStore.kept_open`)."""
        with self.store.kept_open():
            yield

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """Run one DDL or DML statement in its own transaction, with the placeholder rules of `query`."""
        self.store.execute(sql, params)

    def enable_row_security(self) -> list[str]:
        """Lay per-company row-level security over the schema's tables and views (PostgreSQL)."""
        return security.enable_row_security(self.store)

    def grant_company_analyst(self, role: str, company_id: str) -> AnalystGrant:
        """Let the existing PostgreSQL `role` read `company_id`'s rows, and no other company's."""
        return security.grant_company_analyst(self.store, role, company_id)

    def revoke_company_analyst(self, role: str, company_id: str | None = None) -> pd.DataFrame:
        """Take `company_id` (every company when None) away from `role`; return the grants removed."""
        return security.revoke_company_analyst(self.store, role, company_id)

    def company_analysts(self) -> pd.DataFrame:
        """Every analyst grant with its state (ok or stale)."""
        return security.company_analysts(self.store)
