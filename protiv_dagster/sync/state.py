"""Where each company's sync stands: the vendor cursor, the last success, and the syncs in flight.

Kept in the registry database (same URL, own tables) because it belongs to the connection, must
survive daemon restarts, and is written by the automation only, never by admins.

A *sync* is a batch of Dagster runs asked for together (an initial sync, or a refresh that found
changes). It carries the vendor cursor observed when it was planned; the company's cursor advances
to it only once every run of the batch has succeeded, so a failed or killed run never lets a change
slip past the cursor: the next check asks the vendor again from the old cursor.

Runs are sequenced in two phases because attendance is mapped against the company's workers and
jobs: the reference run (workers, jobs) goes first when the batch needs one, the week runs (raw and
attendance; one run per stretch of consecutive weeks) once it has succeeded.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import sqlalchemy as sa

from protiv_dagster.connections.migrations import prepare_registry
from protiv_dagster.connections.registry import OnePerUrl, default_registry_url

PENDING, SUCCEEDED, FAILED = "pending", "succeeded", "failed"
# The phase of a sync whose runs one process runs itself, in order (the integrations service's initial
# sync of a company it has just connected): recorded before its first run so the daemon's sensors
# count the company as syncing, and moved along by that process only (see sensors.company_syncs).
IN_PROCESS = "in_process"
# An initial sync that failed is tried again after a backoff that doubles with each failure in a
# row, from RETRY_INITIAL_SYNC_AFTER up to RETRY_INITIAL_SYNC_AT_MOST: without a cursor the refresh
# never checks a company, so nothing else would sync it. A vendor blip is over by the first retry; a
# company whose vendor refuses it for days costs a few checks a day, not one every tick.
# PROTIV_INITIAL_SYNC_RETRY_SECONDS sets the first wait (tests of the real daemon make it seconds).
RETRY_INITIAL_SYNC_AFTER = timedelta(seconds=float(os.environ.get("PROTIV_INITIAL_SYNC_RETRY_SECONDS") or 1800))
RETRY_INITIAL_SYNC_AT_MOST = timedelta(hours=6)


@dataclass(frozen=True)
class CompanySyncState:
    company_id: str
    cursor: str | None = None  # vendor high-water mark of the last fully successful sync
    initial_sync_for: datetime | None = None  # connected_at of the connection whose initial sync was asked
    # When the warehouse was last known to hold everything the vendor had: the planning time of the
    # last successful sync, or the time of a check that found no change.
    current_as_of: datetime | None = None
    last_success_at: datetime | None = None  # when the last sync's runs all succeeded
    last_checked_at: datetime | None = None  # when the vendor was last asked what changed
    last_error: str | None = None  # why the last check or sync failed; None once one succeeds
    failures: int = 0  # checks and syncs failed in a row (the initial sync's backoff); 0 once one succeeds

    @property
    def initial_sync_failed(self) -> bool:
        """The company has never synced for its connection, and its last attempt failed."""
        return self.cursor is None and self.last_error is not None

    def initial_sync_retry_at(self) -> datetime | None:
        """When a failed initial sync is tried again (None when it has not failed): the last attempt
        plus RETRY_INITIAL_SYNC_AFTER, doubled for each further failure in a row, at most
        RETRY_INITIAL_SYNC_AT_MOST."""
        if not self.initial_sync_failed or self.last_checked_at is None:
            return None
        doublings = min(max(self.failures, 1) - 1, 16)
        return self.last_checked_at + min(RETRY_INITIAL_SYNC_AFTER * 2**doublings, RETRY_INITIAL_SYNC_AT_MOST)


# The first key of the PostgreSQL transaction lock that serializes the planning of one company's
# syncs (the second is the company's hash); any constant unused by other advisory locks of the database.
_PLANNING_LOCK = 7_140_221


@dataclass(frozen=True)
class SyncBatch:
    batch_id: str
    company_id: str
    trigger: str  # initial_sync | refresh
    cursor: str | None
    weeks: tuple[str, ...]
    with_reference: bool
    phase: str  # reference | weeks | done
    status: str
    requested_at: datetime
    finished_at: datetime | None = None
    error: str | None = None


class SyncInFlight(Exception):
    """The company already has a sync in flight (``batch``; None when it ended meanwhile), so no
    other was recorded."""

    def __init__(self, company_id: str, batch: SyncBatch | None):
        self.company_id, self.batch = company_id, batch
        which = f"its {batch.trigger.replace('_', ' ')}, sync {batch.batch_id}" if batch else "it has just ended"
        super().__init__(f"company {company_id!r} already has a sync in flight ({which})")


@dataclass
class StatusRecords:
    """The sync records of companies' statuses (``SyncStateStore.status_records``), by company."""

    states: dict[str, CompanySyncState] = field(default_factory=dict)
    in_flight: dict[str, list[SyncBatch]] = field(default_factory=dict)
    recent: dict[str, list[SyncBatch]] = field(default_factory=dict)


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
@overload
def _aware(value: datetime | None) -> datetime | None: ...
def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else (value if value.tzinfo else value.replace(tzinfo=UTC))


def sync_state_tables(metadata: sa.MetaData) -> tuple[sa.Table, sa.Table]:
    """The sync state's tables in the registry database: each company's state, and the syncs asked for."""
    states = sa.Table(
        "protiv_sync_state",
        metadata,
        sa.Column("company_id", sa.Text, primary_key=True),
        sa.Column("cursor", sa.Text),
        sa.Column("initial_sync_for", sa.DateTime(timezone=True)),
        sa.Column("current_as_of", sa.DateTime(timezone=True)),
        sa.Column("last_success_at", sa.DateTime(timezone=True)),
        sa.Column("last_checked_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.Text),
        sa.Column("failures", sa.Integer, nullable=False, server_default="0"),
    )
    batches = sa.Table(
        "protiv_sync_batches",
        metadata,
        sa.Column("batch_id", sa.Text, primary_key=True),
        sa.Column("company_id", sa.Text, nullable=False, index=True),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("cursor", sa.Text),
        sa.Column("weeks", sa.Text, nullable=False),
        sa.Column("with_reference", sa.Boolean, nullable=False),
        sa.Column("phase", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False, index=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("error", sa.Text),
    )
    return states, batches


class SyncStateStore:
    """Reads and writes the sync state tables (``protiv_sync_state``, ``protiv_sync_batches``)."""

    def __init__(self, url: str | None = None):
        self.url = url or default_registry_url()
        self.engine = sa.create_engine(self.url, future=True)
        self.states, self.batches = sync_state_tables(sa.MetaData())
        # The registry's schema revision: created at the newest on a new database, refused with
        # "run protiv upgrade" on an older one (see connections/migrations).
        prepare_registry(self.engine, self.url)
        self._status_reads: dict[str, tuple[Any, Any, Any]] | None = None

    # -- company state -----------------------------------------------------------------------------
    def state(self, company_id: str) -> CompanySyncState:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.states).where(self.states.c.company_id == company_id)).mappings().first()
        return self._state(row) if row else CompanySyncState(company_id)

    def all_states(self) -> dict[str, CompanySyncState]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.states)).mappings().all()
        return {row["company_id"]: self._state(row) for row in rows}

    @staticmethod
    def _state(row) -> CompanySyncState:
        return CompanySyncState(
            company_id=row["company_id"],
            cursor=row["cursor"],
            initial_sync_for=_aware(row["initial_sync_for"]),
            current_as_of=_aware(row["current_as_of"]),
            last_success_at=_aware(row["last_success_at"]),
            last_checked_at=_aware(row["last_checked_at"]),
            last_error=row["last_error"],
            failures=row["failures"] or 0,
        )

    def _upsert(self, conn, company_id: str, **values) -> None:
        updated = conn.execute(
            self.states.update().where(self.states.c.company_id == company_id).values(**values)
        ).rowcount
        if not updated:
            conn.execute(self.states.insert().values(company_id=company_id, **values))

    def record_check(
        self, company_id: str, at: datetime, error: str | None = None, initial_sync_for: datetime | None = None
    ) -> None:
        """A change check found nothing (the warehouse is current as of ``at``) or failed with ``error``.
        ``initial_sync_for``: the check was the start of that connection's initial sync (its failure
        is an attempt of the initial sync, retried with its backoff)."""
        with self.engine.begin() as conn:
            initial = self._initial_sync_values(conn, company_id, initial_sync_for)
            if error is None:
                self._upsert(
                    conn, company_id, last_checked_at=at, last_error=None, current_as_of=at, failures=0, **initial
                )
            else:
                self._upsert(
                    conn,
                    company_id,
                    last_checked_at=at,
                    last_error=error,
                    failures=self._failures(conn, company_id) + 1,
                    **initial,
                )

    def _initial_sync_values(self, conn, company_id: str, initial_sync_for: datetime | None) -> dict:
        """The state an initial sync attempt for the connection of ``initial_sync_for`` records: the
        connection, and no cursor when it is another connection's (see ``open_batch``)."""
        if initial_sync_for is None:
            return {}
        stored = conn.execute(
            sa.select(self.states.c.initial_sync_for).where(self.states.c.company_id == company_id)
        ).scalar_one_or_none()
        return {
            "initial_sync_for": initial_sync_for,
            **({} if _aware(stored) == initial_sync_for else {"cursor": None}),
        }

    def _failures(self, conn, company_id: str) -> int:
        return (
            conn.execute(
                sa.select(self.states.c.failures).where(self.states.c.company_id == company_id)
            ).scalar_one_or_none()
            or 0
        )

    def record_quiet_checks(
        self, company_ids: Iterable[str], at: datetime, cursors: Mapping[str, str] | None = None
    ) -> None:
        """Change checks that found nothing, for many companies in one transaction (a refresh of
        1,000 quiet companies would otherwise commit 1,000 times). ``cursors`` (one per company)
        are the checks' new cursors: with nothing to sync they may be kept at once."""
        company_ids = list(company_ids)
        if not company_ids:
            return
        values = {"last_checked_at": at, "last_error": None, "current_as_of": at, "failures": 0}
        if cursors is not None:
            missing = [company_id for company_id in company_ids if company_id not in cursors]
            if missing:
                raise ValueError(f"quiet checks without a cursor: {', '.join(missing[:5])}")
        with self.engine.begin() as conn:
            known: set[str] = set()
            for start in range(0, len(company_ids), 500):
                chunk = company_ids[start : start + 500]
                known.update(
                    conn.execute(
                        sa.select(self.states.c.company_id).where(self.states.c.company_id.in_(chunk))
                    ).scalars()
                )
            per_company = {c: {**values, "cursor": cursors[c]} if cursors is not None else values for c in company_ids}
            updates = [
                {"target": company_id, **per_company[company_id]} for company_id in company_ids if company_id in known
            ]
            if updates:
                conn.execute(
                    self.states.update().where(self.states.c.company_id == sa.bindparam("target")),
                    updates,
                )
            inserts = [
                {"company_id": company_id, **per_company[company_id]}
                for company_id in company_ids
                if company_id not in known
            ]
            if inserts:
                conn.execute(self.states.insert(), inserts)

    # -- batches ---------------------------------------------------------------------------------------
    def open_batch(
        self,
        company_id: str,
        trigger: str,
        cursor: str | None,
        weeks: Sequence[str],
        with_reference: bool,
        at: datetime,
        initial_sync_for: datetime | None = None,
        phase: str | None = None,
        only_when_idle: bool = False,
    ) -> SyncBatch:
        """Record a planned sync; an initial sync also remembers which connection it was for. The
        first initial sync of a connection (new, or reconnected) drops the cursor of an earlier one:
        until it succeeds the company counts as never synced, so a failure is retried as an initial
        sync, not refreshed from a cursor that belongs to another connection. ``phase``: IN_PROCESS
        for a sync the calling process runs itself; otherwise the first of its phases.

        ``only_when_idle``: record it only if the company has no sync in flight, else raise
        ``SyncInFlight`` with that sync. The daemon's sensors and the integrations service plan syncs
        in different processes, each after reading what is in flight; the check and the insert are one
        statement (SQLite holds its write lock for the whole statement; PostgreSQL first takes a
        transaction lock on the company), so two of them never both start a company's sync."""
        batch = SyncBatch(
            batch_id=uuid.uuid4().hex[:12],
            company_id=company_id,
            trigger=trigger,
            cursor=cursor,
            weeks=tuple(sorted(weeks)),
            with_reference=with_reference,
            phase=phase or ("reference" if with_reference else "weeks"),
            status=PENDING,
            requested_at=at,
        )
        row = {
            "batch_id": batch.batch_id,
            "company_id": company_id,
            "trigger": trigger,
            "cursor": cursor,
            "weeks": json.dumps(list(batch.weeks)),
            "with_reference": with_reference,
            "phase": batch.phase,
            "status": PENDING,
            "requested_at": at,
        }
        with self.engine.begin() as conn:
            if not only_when_idle:
                conn.execute(self.batches.insert().values(**row))
            elif not self._insert_when_idle(conn, row):
                in_flight = self._pending_of(conn, company_id)
                raise SyncInFlight(company_id, in_flight[0] if in_flight else None)
            self._upsert(
                conn, company_id, last_checked_at=at, **self._initial_sync_values(conn, company_id, initial_sync_for)
            )
        return batch

    def _insert_when_idle(self, conn, row: dict[str, Any]) -> bool:
        """Insert the batch ``row`` unless its company has one pending; whether it was inserted."""
        if conn.dialect.name == "postgresql":
            # Under READ COMMITTED two concurrent INSERT ... WHERE NOT EXISTS would both see no row:
            # serialize the planners of one company (released at commit).
            conn.execute(
                sa.text("SELECT pg_advisory_xact_lock(:namespace, hashtext(:company_id))"),
                {"namespace": _PLANNING_LOCK, "company_id": row["company_id"]},
            )
        columns = [self.batches.c[name] for name in row]
        values = sa.select(*(sa.literal(value, column.type) for value, column in zip(row.values(), columns)))
        in_flight = sa.select(self.batches.c.batch_id).where(
            self.batches.c.company_id == row["company_id"], self.batches.c.status == PENDING
        )
        insert = self.batches.insert().from_select(columns, values.where(~in_flight.exists()))
        return conn.execute(insert.returning(self.batches.c.batch_id)).first() is not None

    def _pending_of(self, conn, company_id: str | None) -> list[SyncBatch]:
        query = sa.select(self.batches).where(self.batches.c.status == PENDING).order_by(self.batches.c.requested_at)
        if company_id is not None:
            query = query.where(self.batches.c.company_id == company_id)
        return [self._batch(row) for row in conn.execute(query).mappings().all()]

    def pending_batches(self, company_id: str | None = None) -> list[SyncBatch]:
        with self.engine.connect() as conn:
            return self._pending_of(conn, company_id)

    def batches_of(self, company_id: str) -> list[SyncBatch]:
        """A company's sync history: every sync asked for it, oldest first."""
        query = (
            sa.select(self.batches).where(self.batches.c.company_id == company_id).order_by(self.batches.c.requested_at)
        )
        with self.engine.connect() as conn:
            return [self._batch(row) for row in conn.execute(query).mappings().all()]

    def status_records(self, company_id: str | None = None, limit: int = 10) -> StatusRecords:
        """What a company's status is made of (every company's with None): its sync state, its
        syncs in flight (oldest first) and its latest ``limit`` syncs (newest first), in three
        indexed reads on one connection. A status is asked often (every app page polls it) and a
        company's history grows by a refresh every two hours, so the history is never read whole.
        The statements are built once per store."""
        if self._status_reads is None:
            self._status_reads = self._status_statements()
        reads = self._status_reads["all" if company_id is None else "one"]
        values: dict[str, object] = {"limit": limit}
        if company_id is not None:
            values["company_id"] = company_id
        records = StatusRecords()
        with self.engine.connect() as conn:
            for row in conn.execute(reads[0], values).mappings():
                records.states[row["company_id"]] = self._state(row)
            for row in conn.execute(reads[1], values).mappings():
                records.in_flight.setdefault(row["company_id"], []).append(self._batch(row))
            for row in conn.execute(reads[2], values).mappings():
                records.recent.setdefault(row["company_id"], []).append(self._batch(row))
        return records

    def _status_statements(self) -> dict[str, tuple[Any, Any, Any]]:
        """The reads of ``status_records``, for one company (bound ``company_id``) and for all."""
        states, batches = self.states, self.batches
        one = batches.c.company_id == sa.bindparam("company_id")
        in_flight = sa.select(batches).where(batches.c.status == PENDING).order_by(batches.c.requested_at)
        newest = (
            sa.func.row_number()
            .over(partition_by=batches.c.company_id, order_by=(batches.c.requested_at.desc(), batches.c.batch_id))
            .label("newest")
        )
        ranked = sa.select(batches, newest).subquery()
        return {
            "one": (
                sa.select(states).where(states.c.company_id == sa.bindparam("company_id")),
                in_flight.where(one),
                sa.select(batches)
                .where(one)
                .order_by(batches.c.requested_at.desc(), batches.c.batch_id)
                .limit(sa.bindparam("limit")),
            ),
            "all": (
                sa.select(states),
                in_flight,
                sa.select(ranked)
                .where(ranked.c.newest <= sa.bindparam("limit"))
                .order_by(ranked.c.company_id, ranked.c.newest),
            ),
        }

    def batch(self, batch_id: str) -> SyncBatch:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.batches).where(self.batches.c.batch_id == batch_id)).mappings().one()
        return self._batch(row)

    @staticmethod
    def _batch(row) -> SyncBatch:
        return SyncBatch(
            batch_id=row["batch_id"],
            company_id=row["company_id"],
            trigger=row["trigger"],
            cursor=row["cursor"],
            weeks=tuple(json.loads(row["weeks"])),
            with_reference=bool(row["with_reference"]),
            phase=row["phase"],
            status=row["status"],
            requested_at=_aware(row["requested_at"]),
            finished_at=_aware(row["finished_at"]),
            error=row["error"],
        )

    def set_phase(self, batch_id: str, phase: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(self.batches.update().where(self.batches.c.batch_id == batch_id).values(phase=phase))

    def finish_batch(
        self, batch_id: str, *, succeeded: bool, at: datetime, error: str | None = None, cursor: str | None = None
    ) -> None:
        """Close a batch. On success the company's cursor moves to the batch's, unless a batch asked
        for later has already moved it further (batches may finish out of order). ``cursor``: the
        vendor's cursor of a batch recorded before its vendor check (IN_PROCESS), kept with it."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(self.batches).where(self.batches.c.batch_id == batch_id)).mappings().one()
            batch = self._batch(row)
            if cursor is not None:
                batch = replace(batch, cursor=cursor)
            conn.execute(
                self.batches.update()
                .where(self.batches.c.batch_id == batch_id)
                .values(
                    status=SUCCEEDED if succeeded else FAILED,
                    phase="done",
                    finished_at=at,
                    error=error,
                    cursor=batch.cursor,
                )
            )
            if not succeeded:
                self._upsert(
                    conn, batch.company_id, last_error=error, failures=self._failures(conn, batch.company_id) + 1
                )
                return
            newer_done = conn.execute(
                sa.select(sa.func.count())
                .select_from(self.batches)
                .where(
                    self.batches.c.company_id == batch.company_id,
                    self.batches.c.status == SUCCEEDED,
                    self.batches.c.requested_at > batch.requested_at,
                )
            ).scalar_one()
            values: dict[str, object] = {"last_success_at": at, "last_error": None, "failures": 0}
            if not newer_done:
                values["current_as_of"] = batch.requested_at
                if batch.cursor is not None:
                    values["cursor"] = batch.cursor
            self._upsert(conn, batch.company_id, **values)


_stores = OnePerUrl(SyncStateStore)


def shared_store(url: str | None = None) -> SyncStateStore:
    """One store (one engine) per registry URL and process: the sensors ask for it on every tick."""
    return _stores.get(url)
