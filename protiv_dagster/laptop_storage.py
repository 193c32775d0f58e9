"""The storages of the laptop's Dagster instance (`protiv demo`, `protiv ui`, `protiv sync`): Dagster's
SQLite files and schemas, opened through kept connections.

Dagster's SQLite storages build a new SQLAlchemy engine, and open and close a new SQLite connection,
for every statement they run: some 370 engines and 300 connections in one small company's initial
sync. A new engine compiles every statement again, and closing a database's last connection
checkpoints its write-ahead log and deletes it, so every event paid for a checkpoint on top of its
insert. Three Dagster runs with no work in them (bench/dagster_floor.py) took 0.57 s that way, and
0.15 s on these storages (bench/RESULTS.md, issue 20).

Here each storage object keeps one engine whose pool keeps its SQLite connections open between
uses. Locking between the processes sharing the files (the UI, the daemon, run workers) is
unchanged: SQLite locks belong to transactions, not connections, and a connection goes back to the
pool only after its transaction has ended. Dagster creates the files in write-ahead-log mode, and
these connections commit with ``synchronous=NORMAL``, SQLite's setting for that mode: a commit is
durable when the process dies, and the database stays whole when the machine loses power, at the
price of the last commits before the loss. For a laptop's run history that is the right trade;
a deployment keeps its instance in PostgreSQL (deploy/dagster.yaml). A commit now stays in the
log until a thousand pages have gathered there, so the event log watches the log as well as the
file for the UI's live view of a run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any

from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy import Connection, Engine, event
from sqlalchemy.pool import QueuePool
from watchdog.events import FileSystemEvent, PatternMatchingEventHandler
from watchdog.observers import Observer

# Connections kept open per storage between uses. More are opened when more threads (the UI's) need
# one at once, and closed when they are returned beyond this many: a busy moment never waits on the
# pool, as it never waited with Dagster's one connection per use.
KEPT_CONNECTIONS = 4


def kept_connections_engine(conn_string: str) -> Engine:
    """An engine over one SQLite file whose pool keeps ``KEPT_CONNECTIONS`` open between uses."""
    engine = create_engine(
        conn_string,
        poolclass=QueuePool,
        pool_size=KEPT_CONNECTIONS,
        max_overflow=-1,
        # A connection may be returned by one thread of the UI and taken by another; SQLite allows it
        # once no two threads use it at the same time, which the pool guarantees.
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
    )

    @event.listens_for(engine, "connect")
    def _commit_without_fsync_per_transaction(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    return engine


class _KeptConnections:
    """One engine for the storage's SQLite file, disposed of with the storage. ``connect`` is the name
    Dagster's run and schedule storages give their one way to the database."""

    _conn_string: str

    @cached_property
    def _engine(self) -> Engine:
        return kept_connections_engine(self._conn_string)

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()  # type: ignore[misc]  # the Dagster storage this is mixed into
        if "_engine" in self.__dict__:
            self._engine.dispose()


class LaptopEventLogStorage(_KeptConnections, ConsolidatedSqliteEventLogStorage):
    """Every run's events in ``event_log.db`` under ``base_dir`` (Dagster's one-file event log)."""

    _connect = _KeptConnections.connect  # Dagster's name for it in this storage

    @cached_property
    def _tables_seen(self) -> set[str]:
        return set()

    def has_table(self, table_name: str) -> bool:
        # Asked before many writes and reads (asset event tags, dynamic partitions: 94 times in a small
        # sync, each on an engine of its own in Dagster's class). A table, once made, stays: only
        # migrations touch the schema, and they only add tables.
        if table_name not in self._tables_seen:
            with self._engine.connect() as conn:
                if self._engine.dialect.has_table(conn, table_name):
                    self._tables_seen.add(table_name)
        return table_name in self._tables_seen

    def watch(self, run_id: str, cursor: str | None, callback: Any) -> None:
        """Follow a run's new events (the UI's live view of a run), as Dagster's class does, but on
        the write-ahead log as well as the database file: a commit lands in the log, and the file
        changes only when the log is folded into it. That happened at every commit when every
        connection was closed after use; with kept connections it happens every thousand pages, so
        watching the file alone would show a run's events only long after they happened."""
        if not self._obs:
            observer = Observer()
            observer.start()
            observer.schedule(_EventLogChanged(self), self._base_dir, recursive=True)
            self._obs = observer  # type: ignore[assignment]  # Dagster declares it None until it watches
        self._watchers[run_id][callback] = cursor


class _EventLogChanged(PatternMatchingEventHandler):
    """Calls the storage's watchers when its database file or its write-ahead log is written."""

    def __init__(self, storage: LaptopEventLogStorage) -> None:
        self._storage = storage
        database = storage.get_db_path()
        super().__init__(patterns=[database, f"{database}-wal"])

    def on_created(self, event: FileSystemEvent) -> None:
        self._storage.on_modified()

    def on_modified(self, event: FileSystemEvent) -> None:
        self._storage.on_modified()


class LaptopRunStorage(_KeptConnections, SqliteRunStorage):
    """The runs in Dagster's own file for them, ``history/runs.db`` under ``base_dir`` (the instance's
    home, where Dagster's default run storage keeps it: a home upgraded to this keeps its runs)."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> LaptopRunStorage:
        prepared = SqliteRunStorage.from_local(os.path.join(config_value["base_dir"], "history"), inst_data=inst_data)
        return cls(prepared._conn_string, inst_data)


class LaptopScheduleStorage(_KeptConnections, SqliteScheduleStorage):
    """Sensor and schedule ticks in Dagster's own file for them, ``schedules/schedules.db`` under
    ``base_dir`` (the instance's home, as Dagster's default schedule storage)."""

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> LaptopScheduleStorage:
        prepared = SqliteScheduleStorage.from_local(
            os.path.join(config_value["base_dir"], "schedules"), inst_data=inst_data
        )
        return cls(prepared._conn_string, inst_data)
