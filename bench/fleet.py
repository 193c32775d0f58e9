"""A fleet of connected companies for the automation benchmarks (refresh_tick.py, two_hour_cycle.py).

Each vendor's emulator runs in its own process hosting its share of the companies (spread round-robin
over QuickBooks Time, Aspire and BusyBusy), generated as seen at midnight UTC of the benchmark day.
The parent talks to each process over a pipe: set the latency, count requests, make a manager's
edits, read the ground truth.

``seed_synced`` puts the fleet in the state a finished initial sync leaves, without 5 Dagster runs
per company: connections in the registry (the admin path), company partitions, each company's vendor
cursor from its vendor's real ``changes_since`` stored through a closed initial-sync batch, the raw
weeks of Aspire companies (its change check compares the vendor's live ids with them) fetched
through the real client, and one materialization per partition the sync would have written
(vendor_connection, workers, jobs, raw and attendance of every week, the three ProPay tables), so the
declarative automation sees what it would see after real runs. Companies named in ``full_sync`` get a
real initial sync through Dagster instead (their warehouse tables must be right for a ProPay check).

By default the pull date is 14 days back (three ISO weeks synced) and the vendors hold 15 days of time.
``weeks`` moves the pull date back so that every company has that many weeks of partitions
materialized (100 weeks is the whole week dimension since 2025-01-06 at the end of 2026), while the
vendors keep their small window of generated time: what grows is what the daemon's evaluations see
(companies, partitions, recorded materializations), not the vendors' data. The materializations are
recorded in bulk (``record_runless``): 10,000 companies x 100 weeks are two million events.
"""

from __future__ import annotations

import contextlib
import json
import logging
import multiprocessing as mp
import os
import resource
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ("quickbooks_time", "aspire", "busybusy")
PULL_DAYS = 14
SETTINGS = {"role_buckets": {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1}}


def fleet_ids(companies: int) -> list[tuple[str, str]]:
    """(company id, provider) of each company, the providers taking turns."""
    return [(f"co-{n:04d}", PROVIDERS[n % len(PROVIDERS)]) for n in range(companies)]


# -- the emulator processes -------------------------------------------------------------------------
def _harness(provider: str, emulator, data):
    """The tests' vendor harness (ground truth and manager edits) bound to the shared emulator."""
    sys.path.insert(0, str(ROOT))
    from tests.assets.vendors import HARNESSES, VendorHarness

    harness = HARNESSES[provider].__new__(HARNESSES[provider])
    VendorHarness.__init__(harness, data)
    harness.emulator = emulator
    return harness


def _credentials(provider: str, emulator, data) -> dict[str, str]:
    if provider == "quickbooks_time":
        return {"access_token": emulator.add_company(data)}
    if provider == "aspire":
        client_id, secret = emulator.add_company(data)
        return {"client_id": client_id, "secret": secret}
    username, password = emulator.add_company(data)
    return {"username": username, "password": password}


def serve_vendor(conn, provider: str, company_ids: list[str], workers: int, days: int, as_of: datetime) -> None:
    """Child process: host the companies on ``provider``'s emulator and answer the parent's calls."""
    from protiv_emulators.aspire import AspireEmulator
    from protiv_emulators.busybusy import BusyBusyEmulator
    from protiv_emulators.generator import generate_company
    from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

    emulator = {"quickbooks_time": QuickBooksTimeEmulator, "aspire": AspireEmulator, "busybusy": BusyBusyEmulator}[
        provider
    ]()
    harnesses, hosted = {}, {}
    for number, company_id in enumerate(company_ids):
        data = generate_company(company_id, seed=number, workers=workers, days=days, as_of=as_of)
        hosted[company_id] = (_credentials(provider, emulator, data), data.timezone)
        harnesses[company_id] = _harness(provider, emulator, data)
    emulator.start()
    conn.send((emulator.rest_url if provider == "busybusy" else emulator.base_url, hosted))
    while (message := conn.recv())[0] != "stop":
        kind, *args = message
        if kind == "latency":
            emulator.faults.latency(args[0])
            conn.send(True)
        elif kind == "requests":
            conn.send(emulator.request_count)
        elif kind == "cpu":  # user + system seconds this emulator process has used
            usage = resource.getrusage(resource.RUSAGE_SELF)
            conn.send(usage.ru_utime + usage.ru_stime)
        elif kind == "edit":  # a manager's edits after the fact, per company
            conn.send({company_id: _edit(harnesses[company_id], as_of) for company_id in args[0]})
        elif kind == "truth":
            conn.send({company_id: harnesses[company_id].entries() for company_id in args[0]})
    emulator.stop()


def _edit(harness, as_of: datetime) -> dict[str, list[str]]:
    """Two entries shortened by an hour (one in the current week, one at least a week back, so an
    older week must be re-synced) and one deleted. A company with no time before this week's Monday
    in the vendor's window (its crew off on the window's first days) gets its earliest entry shortened
    instead: its sync then has no older week to redo."""
    entries = harness.editable_entries()
    monday = (as_of.date() - timedelta(days=as_of.date().weekday())).isoformat()
    old = entries[entries["work_date"] < monday]
    recent = entries[entries["work_date"] >= monday]
    shortened = [
        str((old if len(old) else entries).iloc[0].entry_id),
        str((recent if len(recent) else entries).iloc[-1].entry_id),
    ]
    deleted = str(entries[~entries["entry_id"].isin(shortened)].iloc[len(entries) // 2 - 1].entry_id)
    for entry_id in shortened:
        harness.shorten(entry_id, hours=1)
    harness.delete(deleted)
    return {"shortened": shortened, "deleted": [deleted]}


@dataclass
class Vendor:
    provider: str
    process: mp.Process
    conn: object
    base_url: str = ""
    hosted: dict = field(default_factory=dict)  # company id -> (credentials, time zone)

    def call(self, *message):
        self.conn.send(message)
        return self.conn.recv()


class Fleet:
    """The emulator processes of a fleet; ``with Fleet(...) as fleet:`` stops them at the end."""

    def __init__(self, companies: int, workers: int, days: int = PULL_DAYS + 1, as_of: datetime | None = None):
        self.ids = fleet_ids(companies)
        self.days = days  # of generated time per company, ending at ``as_of``
        self.provider_of = dict(self.ids)
        self.as_of = as_of or datetime.combine(date.today(), clock(0), tzinfo=UTC)
        spawn = mp.get_context("spawn")
        self.vendors: dict[str, Vendor] = {}
        for provider in PROVIDERS:
            mine = [company_id for company_id, p in self.ids if p == provider]
            if not mine:
                continue
            parent, child = spawn.Pipe()
            process = spawn.Process(
                target=serve_vendor, args=(child, provider, mine, workers, days, self.as_of), daemon=True
            )
            process.start()
            self.vendors[provider] = Vendor(provider, process, parent)
        for vendor in self.vendors.values():  # generated in parallel, one process per vendor
            vendor.base_url, vendor.hosted = vendor.conn.recv()

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *exc_info) -> None:
        for vendor in self.vendors.values():
            with contextlib.suppress(BrokenPipeError, OSError):
                vendor.conn.send(("stop",))
            vendor.process.join(timeout=10)
            if vendor.process.is_alive():
                vendor.process.terminate()

    def latency(self, seconds: float) -> None:
        for vendor in self.vendors.values():
            vendor.call("latency", seconds)

    def requests(self) -> dict[str, int]:
        """Vendor requests each emulator has answered so far, by provider."""
        return {provider: vendor.call("requests") for provider, vendor in self.vendors.items()}

    def cpu_seconds(self) -> float:
        """CPU seconds the emulator processes have used so far, all vendors together."""
        return sum(vendor.call("cpu") for vendor in self.vendors.values())

    def edit(self, company_ids: list[str]) -> dict[str, dict[str, list[str]]]:
        edited = {}
        for provider, vendor in self.vendors.items():
            mine = [c for c in company_ids if self.provider_of[c] == provider]
            if mine:
                edited.update(vendor.call("edit", mine))
        return edited

    def truth(self, company_ids: list[str]) -> dict:
        truth = {}
        for provider, vendor in self.vendors.items():
            mine = [c for c in company_ids if self.provider_of[c] == provider]
            if mine:
                truth.update(vendor.call("truth", mine))
        return truth


# -- the pipeline side ------------------------------------------------------------------------------
def fresh_environment(folder: Path, postgres_database: str | None = None) -> None:
    """Embedded default in ``folder``: SQLite registry, DuckDB warehouse, SQLite Dagster instance.

    With ``postgres_database`` (a URL, from ``postgres_database()``) the deployment's shape instead
    (deploy/dagster.yaml): the Dagster instance, the warehouse and the registry in that database."""
    from protiv_dagster.connections.registry import generate_secret_key

    (home := folder / "dagster_home").mkdir()
    instance = "telemetry:\n  enabled: false\n"
    for name in ("PROTIV_WAREHOUSE_URL", "PROTIV_REGISTRY_URL"):
        os.environ.pop(name, None)
    environment = dict(
        PROTIV_DATA_DIR=str(folder / "data"), DAGSTER_HOME=str(home), PROTIV_SECRET_KEY=generate_secret_key()
    )
    if postgres_database is not None:
        _, _, location = postgres_database.partition("://")
        # dagster-postgres on the psycopg2 driver, as deploy/dagster.yaml asks.
        instance += f"storage:\n  postgres:\n    postgres_url: postgresql+psycopg2://{location}\n"
        environment.update(
            PROTIV_WAREHOUSE_URL=f"postgresql://{location}", PROTIV_REGISTRY_URL=f"postgresql+psycopg://{location}"
        )
    (home / "dagster.yaml").write_text(instance)
    os.environ.update(environment)
    # For a later process on the same folder (refresh_tick.py --keep, then fleet_evaluations.py).
    (folder / "env").write_text("".join(f"{name}={value}\n" for name, value in environment.items()))


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new database on the tests' PostgreSQL server (``PROTIV_TEST_POSTGRES_URL``, by default the
    local one), dropped afterwards; yields its URL."""
    sys.path.insert(0, str(ROOT))
    from tests.postgres import new_database, postgres_test_url

    with new_database(postgres_test_url(), "protiv_bench") as url:
        yield url


class RequestsByCompany:
    """Vendor requests per company, counted in the client (each check runs on its own thread, between
    ``source_for`` and the next company)."""

    def __init__(self) -> None:
        from protiv_dagster.resources.vendors import VendorApis
        from protiv_dagster.vendors.http import VendorClient

        self.counts: Counter = Counter()
        self._current = threading.local()
        self._lock = threading.Lock()
        counter = self
        # The refresh makes each company's source by source_of (from its connection); older code by
        # source_for (from its id). Whichever runs, the thread is working for that company until
        # it asks for the next source.
        if hasattr(VendorApis, "source_of"):
            source_of = VendorApis.source_of

            def counted_source_of(self, connection, registry):
                counter._current.company_id = connection.company_id
                return source_of(self, connection, registry)

            VendorApis.source_of = counted_source_of
        else:
            source_for = VendorApis.source_for

            def counted_source_for(self, company_id, registry):
                counter._current.company_id = company_id
                return source_for(self, company_id, registry)

            VendorApis.source_for = counted_source_for
        request = VendorClient.request

        def counted_request(self, *args, **kwargs):
            company_id = getattr(counter._current, "company_id", None)
            with counter._lock:
                counter.counts[company_id] += 1
            return request(self, *args, **kwargs)

        VendorClient.request = counted_request

    def reset(self) -> None:
        self.counts = Counter()


def code_location():
    """The code location's definitions with its default resources, and those resources."""
    from protiv_dagster.connections.registry import ConnectionRegistryResource
    from protiv_dagster.definitions import build_defs
    from protiv_dagster.resources.vendors import VendorApis
    from protiv_dagster.resources.warehouse import Warehouse

    resources = {"registry": ConnectionRegistryResource(), "vendors": VendorApis(), "warehouse": Warehouse()}
    return build_defs(**resources), resources


def pull_date(now: datetime, weeks: int | None) -> date:
    """The attendance pull date of every company: ``PULL_DAYS`` back, or the Monday that gives
    ``weeks`` weeks of partitions up to the current one (never before the first partition)."""
    from protiv_dagster.partitions import HISTORY_START, week_start

    if weeks is None:
        return now.date() - timedelta(days=PULL_DAYS)
    # The companies' local today is at most a day behind UTC midnight (US zones): one day back keeps
    # the current week of every company the same.
    monday = week_start(now.date() - timedelta(days=1)) - timedelta(weeks=weeks - 1)
    return max(monday, date.fromisoformat(HISTORY_START))


def connect_fleet(fleet: Fleet, registry, pulled_from: date) -> None:
    """Every company of the fleet connected in ``registry`` (the admin path), pulled from ``pulled_from``."""
    for company_id, provider in fleet.ids:
        credentials, zone = fleet.vendors[provider].hosted[company_id]
        registry.connect(
            company_id,
            provider,
            fleet.vendors[provider].base_url,
            credentials,
            attendance_pull_date=pulled_from,
            settings={**SETTINGS, "timezone": zone},
        )


def seed_synced(
    fleet: Fleet,
    registry,
    defs,
    resources,
    instance,
    now: datetime,
    full_sync=(),
    on_step=None,
    weeks=None,
    sync_empty_weeks=False,
) -> dict[str, float]:
    """The fleet as after its initial syncs (see the module docstring); returns seconds per stage.

    The real initial syncs of ``full_sync`` cover the weeks in which the vendors hold time; the weeks
    before it, empty at the vendor, are recorded as materialized as the other companies' are. A real
    sync of an empty week writes no row into any table, so the warehouse and the partitions the
    automation sees are the same as after a sync of every week, at a fraction of the seeding's time
    (a 100-week sync is about 15 s on a grown instance, a 2-week one about 3 s).
    ``sync_empty_weeks`` syncs them all for real, as before."""
    import pandas as pd

    from protiv_dagster.assets.common import prepare_warehouse
    from protiv_dagster.partitions import company_partitions, company_week_key, week_start
    from protiv_dagster.sync.company import sync_company
    from protiv_dagster.sync.refresh import check_companies
    from protiv_dagster.sync.runs import all_weeks, sync_window
    from protiv_dagster.tables import RAW_TIMESHEETS

    spent, started = {}, time.perf_counter()

    def stage(name: str) -> None:
        nonlocal started
        spent[name] = time.perf_counter() - started
        started = time.perf_counter()
        if on_step:
            on_step(name, spent[name])

    connect_fleet(fleet, registry, pull_date(now, weeks))
    instance.add_dynamic_partitions(company_partitions.name, [company_id for company_id, _ in fleet.ids])
    stage("connections and partitions")

    resource_registry, vendors, warehouse = (resources[name] for name in ("registry", "vendors", "warehouse"))
    store = resource_registry.sync_state()
    connections = registry.list()
    # Each company's cursor as its initial sync would take it: asked before the sync's runs.
    results = check_companies(connections, {}, resource_registry, vendors, now)
    failed = [r.connection.company_id for r in results if r.error]
    if failed:
        raise SystemExit(f"seeding: the change check failed for {failed[:5]}: {results[0].error}")
    stage("cursors (change checks)")

    # Weeks before the vendors' generated time are empty at the vendor, and so in the raw table.
    first_with_time = (now.date() - timedelta(days=fleet.days + 1)).isoformat()
    with_time = week_start(date.fromisoformat(first_with_time))
    recorded_empty = [
        (company_id, week)
        for company_id in ([] if sync_empty_weeks else full_sync)
        for week in all_weeks(registry.get(company_id), now)
        if week < with_time.isoformat()
    ]
    # Recorded before the real runs, as the sync would have written them before its later weeks and
    # its ProPays: an attendance week recorded after the ProPays would be an upstream change to follow.
    record_runless(
        instance,
        [
            (key, str(company_week_key(company_id, week)))
            for company_id, week in recorded_empty
            for key in ("raw_timesheets", "attendance")
        ],
    )
    for company_id in full_sync:  # the real thing, like `protiv sync`
        first, last = sync_window(registry.get(company_id), now)
        sync_company(defs, instance, company_id, first if sync_empty_weeks else max(first, with_time), last)
    stage(
        f"real initial syncs of {len(full_sync)} companies"
        + (
            f" (from the week of {first_with_time}; {len(recorded_empty)} empty weeks recorded)"
            if recorded_empty
            else ""
        )
    )

    for result in results:
        connection = result.connection
        batch = store.open_batch(
            connection.company_id,
            "initial_sync",
            result.changes.cursor,
            all_weeks(connection, now),
            True,
            now,
            initial_sync_for=connection.connected_at,
        )
        store.finish_batch(batch.batch_id, succeeded=True, at=now)
    others = [c for c in connections if c.company_id not in set(full_sync)]
    stage("closed initial-sync batches")

    prepare_warehouse(warehouse)
    rows = []
    for connection in (c for c in others if c.provider == "aspire"):
        source = vendors.source_for(connection.company_id, resource_registry)
        for week in all_weeks(connection, now):
            if (date.fromisoformat(week) + timedelta(days=6)).isoformat() < first_with_time:
                continue
            monday = date.fromisoformat(week)
            for feed, records in source.time_entry_feeds(monday, monday + timedelta(days=6)).items():
                id_field, stamp_field = source.feed_fields.get(feed, ("id", None))
                rows += [
                    (
                        connection.company_id,
                        monday,
                        "aspire",
                        feed,
                        position,
                        str(record.get(id_field)),
                        None if not stamp_field or record.get(stamp_field) is None else str(record[stamp_field]),
                        json.dumps(record, sort_keys=True),
                    )
                    for position, record in enumerate(records)
                ]
    if rows:
        warehouse.replace_partition(
            RAW_TIMESHEETS, pd.DataFrame(rows, columns=RAW_TIMESHEETS.column_names), {"provider": "aspire"}
        )
    stage(f"raw weeks of Aspire companies ({len(rows)} records)")

    materialized = []
    for connection in others:
        company_id = connection.company_id
        # vendor_connection is left to the connection_status sensor's runs; no condition reads it.
        materialized += [
            (key, company_id)
            for key in ("workers", "jobs", "propay_opportunities", "propay_worker_bonuses", "propay_overtime_weeks")
        ]
        for week in all_weeks(connection, now):
            partition = str(company_week_key(company_id, week))
            materialized += [(key, partition) for key in ("raw_timesheets", "attendance")]
    record_runless(instance, materialized)
    stage(f"{len(materialized)} materializations recorded")
    return spent


def evaluate_automation_like_daemon(defs, instance, sensor_name: str, serialized_cursor: str | None):
    """One evaluation of the automation sensor ``sensor_name`` as dagster-daemon's asset daemon runs
    it (asset_daemon.py), not with ``dg.evaluate_automation_conditions`` (the testing API, which reads
    the company partitions from storage anew for every condition node it serializes: about 300 reads
    an evaluation). Its evaluation context over the sensor's selection, then the condition evaluations
    stored in the instance's schedule storage and the cursor serialized, as the daemon stores them.
    Returns (the run requests, one per partition and job with its assets selected; the new cursor)."""
    from dagster._core.definitions.automation_tick_evaluation_context import AutomationTickEvaluationContext
    from dagster._core.definitions.partitions.context import partition_loading_context
    from dagster._daemon.asset_daemon import (
        asset_daemon_cursor_from_instigator_serialized_cursor,
        asset_daemon_cursor_to_instigator_serialized_cursor,
    )

    sensor = defs.get_sensor_def(sensor_name)
    asset_graph = defs.resolve_asset_graph()
    cursor = asset_daemon_cursor_from_instigator_serialized_cursor(serialized_cursor, asset_graph)
    evaluation_id = cursor.evaluation_id + 1
    context = AutomationTickEvaluationContext(
        evaluation_id=evaluation_id,
        instance=instance,
        asset_graph=asset_graph,
        cursor=cursor,
        materialize_run_tags={},
        observe_run_tags={},
        auto_observe_asset_keys=set(),
        asset_selection=sensor.asset_selection,
        asset_job_keys=sensor.asset_job_keys,
        emit_backfills=False,
        logger=logging.getLogger("bench.automation"),
    )
    run_requests, new_cursor, evaluations = context.evaluate()
    storage = instance.schedule_storage
    chunk = 500  # DAGSTER_ASSET_DAEMON_ASSET_EVALUATIONS_CHUNK_SIZE's default
    # Counting a stored subset of company partitions reads the company partitions: through the
    # evaluation's own (caching) loading context.
    with partition_loading_context(new_ctx=context._partition_loading_context):
        for start in range(0, len(evaluations), chunk):
            storage.add_auto_materialize_asset_evaluations(
                evaluation_id, [evaluation.with_run_ids(set()) for evaluation in evaluations[start : start + chunk]]
            )
    return list(run_requests), asset_daemon_cursor_to_instigator_serialized_cursor(new_cursor)


def record_runless(instance, materialized: list[tuple[str, str]], chunk: int = 50_000) -> None:
    """Record a run-less materialization of each (asset key, partition key) as
    ``instance.report_runless_asset_event(AssetMaterialization(asset_key, partition=...))`` records it:
    the same event log entry, stored in the run-less run's shard and mirrored into the index shard
    (the event's row, and the asset's row pointing at its latest materialization); in PostgreSQL's
    storage, the same rows in its one events table and its asset table. Only for seeding
    benchmarks, because it is done in bulk: ``chunk`` events per transaction (Dagster's SQLite storage
    opens two connections and commits per event, 10-50 ms each: two million events would take
    hours), and each entry serialized from one template per asset and chunk, checked against
    Dagster's own serializer (serializing every entry would take 5 minutes for two million)."""
    import dagster as dg
    import sqlalchemy as db
    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.instance.utils import RUNLESS_JOB_NAME, RUNLESS_RUN_ID
    from dagster._core.storage.event_log import SqliteEventLogStorage
    from dagster._core.storage.event_log.schema import SqlEventLogStorageTable
    from dagster._serdes import serialize_value

    storage = instance.event_log_storage
    # The run-less run's shard and the index shard are two databases only in Dagster's default SQLite
    # storage (fresh_environment's instance); PostgreSQL's (and a consolidated SQLite one) keep one table.
    sharded = type(storage) is SqliteEventLogStorage
    placeholder = "<partition>"

    def entry(asset_key: str, partition: str, timestamp: float) -> EventLogEntry:
        # What report_runless_asset_event builds (instance.report_dagster_event).
        return EventLogEntry(
            user_message="",
            level=logging.INFO,
            job_name=RUNLESS_JOB_NAME,
            run_id=RUNLESS_RUN_ID,
            error_info=None,
            timestamp=timestamp,
            step_key=None,
            dagster_event=DagsterEvent(
                event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                event_specific_data=StepMaterializationData(dg.AssetMaterialization(asset_key, partition=partition)),
                job_name=RUNLESS_JOB_NAME,
            ),
        )

    for start in range(0, len(materialized), chunk):
        part, timestamp = materialized[start : start + chunk], time.time()
        templates, last = {}, {}
        rows = []
        for asset_key, partition in part:
            if asset_key not in templates:
                row = storage._event_to_row(entry(asset_key, placeholder, timestamp))
                assert row["event"].count(placeholder) == 1
                templates[asset_key] = row
                expected = serialize_value(entry(asset_key, partition, timestamp))
                if row["event"].replace(placeholder, partition) != expected:
                    raise RuntimeError(f"seeding: the event template of {asset_key} differs from Dagster's serializer")
            if json.dumps(partition) != f'"{partition}"':  # JSON would escape it: the template cannot hold it
                raise RuntimeError(f"seeding: partition key {partition!r} needs escaping")
            template = templates[asset_key]
            rows.append(
                {**template, "event": template["event"].replace(placeholder, partition), "partition": partition}
            )
            last[asset_key] = (len(rows) - 1, partition)
        if sharded:
            with storage.run_connection(RUNLESS_RUN_ID) as conn:
                conn.execute(SqlEventLogStorageTable.insert(), rows)
        with storage.index_transaction() as conn:
            before = conn.execute(db.select(db.func.max(SqlEventLogStorageTable.c.id))).scalar() or 0
            conn.execute(SqlEventLogStorageTable.insert(), rows)
            ids = [
                row[0]
                for row in conn.execute(
                    SqlEventLogStorageTable.select()
                    .with_only_columns(SqlEventLogStorageTable.c.id)
                    .where(SqlEventLogStorageTable.c.id > before)
                    .order_by(SqlEventLogStorageTable.c.id)
                )
            ]
            if len(ids) != len(rows):
                raise RuntimeError("seeding: another writer inserted events into the index shard")
            # A plain materialization has no tags to index; the asset's row ends up pointing at its
            # last event of the chunk, as it would after storing the events one by one.
            for asset_key, (position, partition) in last.items():
                storage._store_asset_event(conn, entry(asset_key, partition, timestamp), ids[position])


def machine() -> str:
    return describe()


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, every thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load() -> str:
    return Path("/proc/loadavg").read_text().strip() if Path("/proc/loadavg").exists() else "unknown"
