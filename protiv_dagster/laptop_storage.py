"""The event log storage of the laptop's Dagster instance (`protiv demo`, `protiv ui`, `protiv sync`).

Dagster's one-file SQLite event log builds a new SQLAlchemy engine for every connection it opens:
some 370 in one small company's initial sync. Each new engine starts with an empty statement cache,
so every insert and query is compiled again. This storage keeps one engine per storage object,
which saves about 0.15 s of a 5-worker company's 1.9 s initial sync (bench/RESULTS.md, issue 20). Its pool is still ``NullPool``, as Dagster's: each use opens and closes its own SQLite
connection, so locking between the processes sharing the file (the UI, the daemon, run workers) is
exactly Dagster's; only the engine and its compiled statements are reused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property

from dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log import ConsolidatedSqliteEventLogStorage
from dagster._core.storage.sql import create_engine
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from sqlalchemy import Connection, Engine
from sqlalchemy.pool import NullPool


class LaptopEventLogStorage(ConsolidatedSqliteEventLogStorage):
    """Every run's events in ``event_log.db`` under ``base_dir``, through one SQLAlchemy engine."""

    @cached_property
    def _engine(self) -> Engine:
        return create_engine(
            self._conn_string, poolclass=NullPool, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS}
        )

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        with self._engine.connect() as conn, conn.begin():
            yield conn

    def dispose(self) -> None:
        super().dispose()
        if "_engine" in self.__dict__:
            self._engine.dispose()
