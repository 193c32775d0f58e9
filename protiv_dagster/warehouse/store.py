"""The warehouse store: ProPay tables in DuckDB (embedded default) or PostgreSQL, without Dagster.

Tables are declared as plain data (`Table`, `Column`) by the modules that own them and written
partition by partition with `WarehouseStore.replace_partition`, which deletes and re-inserts one
partition in a single transaction, so a re-run is idempotent and a failed run leaves the previous
rows in place. Results come back as the same pandas types on both backends (`results`).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import duckdb
import pandas as pd
import psycopg
from tenacity import RetryError, Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

from protiv_dagster.settings import WAREHOUSE_URL_VARIABLE, default_duckdb_path
from protiv_dagster.warehouse import gate
from protiv_dagster.warehouse.conversion import key_value
from protiv_dagster.warehouse.declarations import Table, check_identifier, quote
from protiv_dagster.warehouse.duckdb import DuckDBSession, is_lock_conflict
from protiv_dagster.warehouse.postgres import PostgresSession
from protiv_dagster.warehouse.session import Session, WarehouseError, database_errors
from protiv_dagster.warehouse.spool import Partition, PartitionWrite, Spool, converted_chunks
from protiv_dagster.warehouse.urls import Backend, Target, parse_url, redact_url

log = logging.getLogger(__name__)

# What `duckdb_memory_limit` may say: it is spelled into a SET statement.
MEMORY_LIMIT_PATTERN = r"^\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)$"

# How long `WarehouseStore.kept_open` keeps a DuckDB file open across transactions before it looks
# whether another process waits for the file: longer than a small company's whole step (its
# transactions then cost no open), short enough that a process waiting for the file waits about as
# long as it would for one large write.
KEEP_OPEN_SECONDS = 1.0
# The longest a block keeps the file while nobody says it waits (a process of another program, or
# of an older version, waits without saying so): well inside the 30 s other writers wait for it.
KEEP_OPEN_AT_MOST_SECONDS = 10.0
# A block is kept for another period only after a transaction shorter than this: next to a longer one
# an open costs nothing that matters, and letting go frees DuckDB's buffers (a 500-worker sync's peak
# RSS was 1,020 MiB with large weeks' buffers kept from one week to the next, 949 MiB without).
KEEP_ON_AFTER_SECONDS = 0.25


@dataclass
class _KeptFile:
    connection: duckdb.DuckDBPyConnection | None  # None once let go: not opened again in the block
    until: float  # time.monotonic() when it next looks whether another process waits
    last: float  # time.monotonic() after which it is let go in any case
    since: float  # time.time() when this period began: a wait said after it is for this block
    period: float  # the block's seconds


# The DuckDB files each thread keeps open (`WarehouseStore.kept_open`), by path. Per thread, so no
# lock is needed: the connections of every thread of the process share one database in DuckDB.
_kept = threading.local()


def _kept_files() -> dict[Path, _KeptFile]:
    if not hasattr(_kept, "files"):
        _kept.files = {}
    return _kept.files


def _close_kept_if_due(path: Path, transaction_seconds: float) -> None:
    """At the end of a transaction in a `kept_open` block whose time is up: keep the file for another
    period when that transaction was short and no process said it waits for it since this period
    began, else let it go."""
    kept = _kept_files().get(path)
    if kept is None or kept.connection is None:
        return
    now = time.monotonic()
    if now < kept.until:
        return
    short = transaction_seconds < KEEP_ON_AFTER_SECONDS
    if short and now < kept.last and not gate.someone_waited(path, kept.since):
        kept.until, kept.since = now + kept.period, time.time()
        return
    connection, kept.connection = kept.connection, None
    _let_go(connection, path)


def _let_go(connection: duckdb.DuckDBPyConnection, path: Path) -> None:
    """Close a connection of `WarehouseStore._open_duckdb`, then leave the file's gate."""
    try:
        connection.close()
    finally:
        gate.leave(path)


@dataclass(frozen=True)
class WarehouseStore:
    """The analytics warehouse where ProPay tables live, in DuckDB or PostgreSQL.

    `url` picks the backend: `postgresql://user:password@host:port/database` for PostgreSQL, or a
    `duckdb:///path.duckdb` URL or a path ending in `.duckdb` for a DuckDB file. Left empty, it is
    read from the PROTIV_WAREHOUSE_URL environment variable whenever an operation runs, falling back
    to the DuckDB file in the project data folder. Messages, reprs and logs show URLs with the
    password masked.

    Tables live in the schema `schema_name`, where analysts query them with SQL. Every operation
    opens its own connection (DuckDB lets one process hold the file at a time) and runs in one
    transaction; inside `kept_open`, a DuckDB file stays open between them while no other process
    waits for it (at most `KEEP_OPEN_AT_MOST_SECONDS`).
    `schema.ensure_tables` creates the tables; `security` manages analyst roles.
    """

    url: str = ""
    schema_name: str = "protiv"
    # How long to wait for another process to release the DuckDB file before failing.
    lock_timeout_seconds: float = 30.0
    # Memory DuckDB may hold per connection (its buffers; beyond it, it spills to disk).
    duckdb_memory_limit: str = "512MB"

    def __post_init__(self) -> None:
        check_identifier(self.schema_name, "schema_name")
        if not re.fullmatch(MEMORY_LIMIT_PATTERN, self.duckdb_memory_limit):
            raise ValueError(f"duckdb_memory_limit {self.duckdb_memory_limit!r} must match {MEMORY_LIMIT_PATTERN}")

    def __repr__(self) -> str:
        # A repr must not raise, even when PROTIV_WAREHOUSE_URL holds something unusable.
        try:
            return f"WarehouseStore({self.describe()})"
        except ValueError as exc:
            return f"WarehouseStore(invalid: {exc})"

    @property
    def backend(self) -> Backend:
        """'duckdb' or 'postgres'."""
        return self._target().backend

    def describe(self) -> str:
        """Where the tables live, password masked, for logs and asset metadata."""
        target = self._target()
        if target.backend == "duckdb":
            return f"DuckDB {self.duckdb_file()}, schema {self.schema_name}"
        return f"PostgreSQL {redact_url(target.location or '')}, schema {self.schema_name}"

    # -- operations ------------------------------------------------------------------------------

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
        prepared: list[tuple[PartitionWrite, Partition, Iterable[list[list[object]]]]] = []
        spools: list[Spool] = []
        try:
            for write in writes:
                owned = Partition.of(write.table, write.partition, write.date_range)
                chunks = converted_chunks(write, owned, spools)
                prepared.append((write, owned, chunks))
            if not prepared:
                return []
            written = [0] * len(prepared)
            action = f"replacing {prepared[0][1]}" + (
                f" and {len(prepared) - 1} more partitions" if len(prepared) > 1 else ""
            )
            with self.session(action) as session:
                # Locks in one order (by table) whatever the order of the writes: two runs writing
                # the same tables never wait on each other crosswise.
                for name in sorted({write.table.name for write, _, _ in prepared}):
                    session.serialize(f"protiv_dagster.warehouse table {self.schema_name}.{name}")
                for position, (write, owned, chunks) in enumerate(prepared):
                    # The error names the partition whose write failed, not only the first one.
                    with database_errors(f"replacing {owned}", self.describe()):
                        qualified = f"{quote(self.schema_name)}.{quote(write.table.name)}"
                        condition, params = owned.condition()
                        session.execute(f"DELETE FROM {qualified} WHERE {condition}", params)
                        for values in chunks:
                            count = len(values[0])
                            if write.move_rows and count:
                                for sql, chunk_params in _moved_row_deletes(
                                    qualified, write.table, write.partition, values
                                ):
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
        with self.session("query") as session:
            return session.fetch(self.with_schema(sql), params)

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
        tables, and one connection opened instead of one per read (opening a DuckDB file is not free).
        Keep the block short: on DuckDB it holds the file for this process."""
        with self.session("reading") as session:
            yield WarehouseReader(self, session)

    def _read_table_sql(
        self, table: Table | str, where: Mapping[str, object] | None, order_by: Sequence[str] | None
    ) -> tuple[str, list[object]]:
        if isinstance(table, Table):
            name, columns = table.name, ", ".join(quote(column) for column in table.column_names)
            order_by = table.primary_key if order_by is None else order_by
            for column in [*(where or {}), *order_by]:
                table.column(column)
        else:
            name, columns = check_identifier(table, "table name"), "*"
        conditions, params = [], []
        for column, value in (where or {}).items():
            if value is None:
                conditions.append(f"{quote(check_identifier(column, 'column name'))} IS NULL")
            else:
                conditions.append(f"{quote(check_identifier(column, 'column name'))} = ?")
                params.append(key_value(table, column, value) if isinstance(table, Table) else value)
        sql = f"SELECT {columns} FROM {quote(self.schema_name)}.{quote(name)}"
        if conditions:
            sql += " WHERE " + " AND ".join(conditions)
        if order_by:
            ordering = (quote(check_identifier(column, "column name")) for column in order_by)
            sql += " ORDER BY " + ", ".join(ordering)
        return sql, params

    def execute(self, sql: str, params: Sequence[object] = ()) -> None:
        """Run one DDL or DML statement in its own transaction, with the placeholder rules of `query`."""
        with self.session("statement") as session:
            session.execute(self.with_schema(sql), params)

    # -- connections -----------------------------------------------------------------------------

    def _target(self) -> Target:
        # Read at use time, so a password in the environment never enters Dagster's config or UI.
        return parse_url(self.url or os.environ.get(WAREHOUSE_URL_VARIABLE, ""))

    def with_schema(self, sql: str) -> str:
        """`sql` with `{schema}` replaced by the quoted schema."""
        return sql.replace("{schema}", quote(self.schema_name))

    def duckdb_file(self) -> Path:
        """The DuckDB file of this warehouse (the data folder's when the URL names none)."""
        location = self._target().location
        return default_duckdb_path() if location is None else Path(location).expanduser()

    @contextmanager
    def checkpointed(self) -> Iterator[BinaryIO]:
        """The DuckDB file with every commit folded into it (its write-ahead log emptied), opened for
        reading and held by this process for the block: no other process writes it meanwhile, so what
        is read from it inside is a whole database. Waits for the file like any write.

        Read it through the file object given, never by opening its path again: DuckDB's lock on the
        file is a POSIX record lock, which belongs to the process and goes with the first close of
        ANY of its descriptors of that file. A copy made by path (``shutil.copyfile``) let another
        process open and write the file while this one still had it open (seen in a probe: the other
        process's insert went through). The file object given is closed after DuckDB's connection."""
        if self.backend != "duckdb":
            raise ValueError(f"{self.describe()} is not a DuckDB file")
        with database_errors("checkpoint", self.describe()):
            duck = self._open_duckdb()
            try:
                duck.execute("CHECKPOINT")
                reader = self.duckdb_file().open("rb")
            except BaseException:
                _let_go(duck, self.duckdb_file())
                raise
            try:
                yield reader
            finally:
                try:
                    _let_go(duck, self.duckdb_file())
                finally:
                    reader.close()  # only now: closing it earlier would have dropped DuckDB's lock

    @contextmanager
    def session(self, action: str) -> Iterator[Session]:
        """A fresh connection and one transaction: committed on success, rolled back on any error."""
        with database_errors(action, self.describe()):
            if self.backend == "postgres":
                with psycopg.connect(self._target().location or "", autocommit=True) as connection:
                    # UTC everywhere, so TIMESTAMPTZ values come back the same as from DuckDB.
                    connection.execute("SET TIME ZONE 'UTC'")
                    with connection.transaction():
                        yield PostgresSession(connection)
                return
            duck, started = self._open_duckdb(), time.monotonic()
            try:
                duck.execute("SET TimeZone = 'UTC'")
                duck.execute(f"SET memory_limit = '{self.duckdb_memory_limit}'")  # checked in __post_init__
                duck.begin()
                try:
                    yield DuckDBSession(duck)
                except BaseException:
                    duck.rollback()
                    raise
                duck.commit()
            finally:
                # Closing releases the file at once for the next process (unless a block of
                # `kept_open` keeps it, for at most its time).
                _let_go(duck, self.duckdb_file())
                _close_kept_if_due(gate.canonical(self.duckdb_file()), time.monotonic() - started)

    @contextmanager
    def gated(self) -> Iterator[None]:
        """This project's other processes kept out of a DuckDB file for the block (`gate`), for a
        program this process starts that opens the file itself (dbt). Waits like any write; does
        nothing on PostgreSQL."""
        if self.backend != "duckdb":
            yield
            return
        path = self.duckdb_file()
        try:
            gate.enter(path, self.lock_timeout_seconds)
        except gate.GateTimeout as exc:
            raise self._stayed_locked(path, exc) from exc
        try:
            yield
        finally:
            gate.leave(path)

    @contextmanager
    def kept_open(self, seconds: float = KEEP_OPEN_SECONDS) -> Iterator[None]:
        """Keep a DuckDB file open in this process across the transactions of the block; each
        transaction is still its own.

        Opening a DuckDB file costs about 11 ms and closing it about 5 ms (the checkpoint), whatever
        the transaction in between: a small company's sync paid 0.3 s of its 1.6 s for 20 of them,
        and a sync of 100 weeks made about 300 (bench/RESULTS.md, issue 20). While one connection
        stays open, DuckDB hands this process further connections to the same database at once, and
        closing them folds nothing.

        Every ``seconds``, at the end of a transaction, the block looks whether another process said
        it waits for the file (`gate.say_waiting`, which every warehouse write and dbt build does while
        sleeping for it). If none did and the transaction was short (``KEEP_ON_AFTER_SECONDS``), it
        keeps the file for another period, up to ``KEEP_OPEN_AT_MOST_SECONDS`` in all; else, and
        after that, it lets the file go and its transactions open and close the file each, as
        outside it. So a waiting process waits about ``seconds`` and a transaction. Does nothing on
        PostgreSQL, or inside another block of this thread for the same file."""
        path = gate.canonical(self.duckdb_file()) if self.backend == "duckdb" else None
        if path is None or path in _kept_files():
            yield
            return
        with database_errors("opening the file", self.describe()):  # _open_duckdb's own errors pass as they are
            opened = self._open_duckdb()
        now = time.monotonic()
        kept = _KeptFile(opened, now + seconds, now + max(seconds, KEEP_OPEN_AT_MOST_SECONDS), time.time(), seconds)
        _kept_files()[path] = kept
        try:
            yield
        finally:
            del _kept_files()[path]
            if kept.connection is not None:
                _let_go(kept.connection, path)

    def _open_duckdb(self) -> duckdb.DuckDBPyConnection:
        """Open the DuckDB file through its gate (`gate`: one of this project's processes at a time,
        entered before DuckDB reads the file), waiting while another process holds either; close it
        with `_let_go`, which leaves the gate."""
        path = self.duckdb_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout_seconds
        try:
            gate.enter(path, self.lock_timeout_seconds)
        except gate.GateTimeout as exc:
            raise self._stayed_locked(path, exc) from exc
        retrying = Retrying(
            # Through the gate, the file is still held by a program that does not take it (an
            # analyst's session on the warehouse file, a dbt build run by hand): wait for DuckDB's lock.
            retry=retry_if_exception(is_lock_conflict),
            # Jittered and never more than half a second apart: several processes waiting for the file
            # do not retry in step, and none sleeps through the moments it is free.
            wait=wait_random_exponential(multiplier=0.05, max=0.5),
            stop=stop_after_delay(max(deadline - time.monotonic(), 0.0)),
            before_sleep=lambda _: gate.say_waiting(path),  # a process keeping the file open lets it go
        )
        try:
            return retrying(duckdb.connect, str(path))
        except RetryError as exc:
            gate.leave(path)
            raise self._stayed_locked(path, exc.last_attempt.exception()) from exc.last_attempt.exception()
        except BaseException:
            gate.leave(path)
            raise

    def _stayed_locked(self, path: Path, cause: BaseException | None) -> WarehouseError:
        return WarehouseError(
            f"{self.describe()} stayed locked by another process for {self.lock_timeout_seconds:g} s "
            f"(DuckDB allows one writing process per file): {cause}. If that is an analyst's session, it "
            f"should open the analysts' copy {analysts_copy(path)} instead (read-only, published after "
            "every change): one open on the warehouse file stops every sync"
        )


def analysts_copy(warehouse_file: Path) -> Path:
    """Where the analysts' copy of a DuckDB warehouse file is published: beside it, the same name
    with ``.analysts`` before ``.duckdb`` (``data/warehouse.duckdb`` -> ``data/warehouse.analysts.duckdb``)."""
    return warehouse_file.with_name(f"{warehouse_file.stem}.analysts{warehouse_file.suffix or '.duckdb'}")


class WarehouseReader:
    """The reads of `WarehouseStore.reading()`: `query` and `read_table` as on the store, all on
    one connection."""

    def __init__(self, store: WarehouseStore, session: Session) -> None:
        self._warehouse, self._session = store, session

    def query(self, sql: str, params: Sequence[object] = ()) -> pd.DataFrame:
        return self._session.fetch(self._warehouse.with_schema(sql), params)

    def read_table(
        self, table: Table | str, where: Mapping[str, object] | None = None, order_by: Sequence[str] | None = None
    ) -> pd.DataFrame:
        return self.query(*self._warehouse._read_table_sql(table, where, order_by))


def _moved_row_deletes(
    qualified: str, table: Table, partition: Mapping[str, object], values: Sequence[list[object]]
) -> Iterator[tuple[str, list[object]]]:
    """DELETE statements (chunked, parameterised) for incoming keys that live in other partitions."""
    free = [name for name in table.primary_key if name not in partition]
    if len(free) != 1:
        raise ValueError(f"move_rows on {table.name} needs a partition covering its primary key but one column")
    fixed = [name for name in table.primary_key if name in partition]
    keys = values[table.column_names.index(free[0])]
    fixed_conditions = [f"{quote(name)} = ?" for name in fixed]
    fixed_params = [key_value(table, name, partition[name]) for name in fixed]
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        condition = " AND ".join([*fixed_conditions, f"{quote(free[0])} IN ({', '.join('?' * len(chunk))})"])
        yield f"DELETE FROM {qualified} WHERE {condition}", [*fixed_params, *chunk]
