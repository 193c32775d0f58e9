"""End to end under the real `dagster-daemon` with the PostgreSQL dagster.yaml of deploy/.

An admin connects two companies on the same vendor; without anything else, the daemon's sensors add
their partitions and run their initial syncs through the queued run coordinator (at most one run at
a time for that vendor here), the automation computes their ProPays, and each turns green. Then a
manager edits a time entry at the vendor; the next refresh tick re-syncs that week and the ProPay
table changes. Everything the daemon does is read back from the PostgreSQL instance and the
warehouse; this test only connects, edits and waits.

The second test SIGKILLs run workers mid-run, first alone, then together with the code server that
started them (a container or process group killed, out of memory): each run is failed within two
minutes, the vendor's run slot goes to a queued run, run retries re-execute it, the company's sync
completes and the warehouse ends equal to a clean sync.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
import yaml
from dagster._core.storage.dagster_run import IN_PROGRESS_RUN_STATUSES
from pandas.testing import assert_frame_equal

from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.data_dictionary import AUDIT_SQL
from protiv_dagster.definitions import build_defs
from protiv_dagster.partitions import RANGE_END_TAG, RANGE_START_TAG
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.run_launcher import WORKER_GONE
from protiv_dagster.sync.company import sync_company
from protiv_dagster.sync.health import company_health
from protiv_dagster.sync.runs import sync_window, utc_now
from protiv_dagster.sync.state import SUCCEEDED, SyncStateStore
from protiv_dagster.tables import ALL_TABLES
from protiv_emulators.generator import generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator
from tests.run_workers import code_server_worker

ROOT = Path(__file__).resolve().parents[1]
COMPANIES = ("acme", "birch")
HEALTH_CHECK = dg.AssetCheckKey(dg.AssetKey("vendor_connection"), "connection_healthy")
PROVIDER_LIMIT = 1  # runs on one vendor at a time, to see the coordinator hold the limit
SETTINGS = {"timezone": "America/Denver", "role_buckets": {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1}}

pytestmark = pytest.mark.postgres


def weeks_of(run: dg.DagsterRun) -> set[str]:
    """The weeks a week run covered: its partition, or every week of its partition range."""
    if "dagster/partition" in run.tags:
        return {run.tags["dagster/partition"].split("|")[-1]}
    first = date.fromisoformat(run.tags[RANGE_START_TAG].split("|")[-1])
    last = date.fromisoformat(run.tags[RANGE_END_TAG].split("|")[-1])
    return {(first + timedelta(days=7 * n)).isoformat() for n in range((last - first).days // 7 + 1)}


def instance_config(postgres_url: str) -> dict:
    """deploy/dagster.yaml, with this vendor's limit at one run and a faster queue and monitor."""
    config = yaml.safe_load((ROOT / "deploy" / "dagster.yaml").read_text())
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    for limit in config["concurrency"]["runs"]["tag_concurrency_limits"]:
        if limit["value"] == "quickbooks_time":
            limit["limit"] = PROVIDER_LIMIT
    config["run_monitoring"]["poll_interval_seconds"] = 5
    return config


def wait_for(condition, timeout: float, what: str, daemon_log: Path, step: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    tail = daemon_log.read_text(errors="replace")[-3000:] if daemon_log.exists() else ""
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}; daemon log tail:\n{tail}")


def propay_partitions(instance: dg.DagsterInstance) -> set[str]:
    return set(instance.get_materialized_partitions(dg.AssetKey("propay_opportunities")))


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    """The most intervals open at one moment."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    current = peak = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


@pytest.fixture
def deployment(tmp_path, dagster_database, monkeypatch):
    """Two companies on one QuickBooks Time emulator, connected; the daemon's environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(instance_config(dagster_database)))
    key = generate_secret_key()
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": dagster_database.replace("postgresql://", "postgresql+psycopg2://", 1),
        "PROTIV_DATA_DIR": str(tmp_path / "data"),
        "PROTIV_REGISTRY_URL": f"sqlite:///{tmp_path / 'registry.sqlite3'}",
        "PROTIV_WAREHOUSE_URL": str(tmp_path / "warehouse.duckdb"),
        "PROTIV_SECRET_KEY": key,
        "PROTIV_REFRESH_CRON": "* * * * *",  # a refresh every minute instead of every two hours
        "PROTIV_INITIAL_SYNC_RETRY_SECONDS": "3",  # a failed initial sync is tried again after 3 s, 6 s, ...
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    # Generated as seen half an hour ago: the vendor's newest stamps are then old enough to be
    # trusted by the change detection (sources/quickbooks_time.py), so birch really is quiet.
    now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    emulator = QuickBooksTimeEmulator().start()
    try:
        registry = ConnectionRegistry()
        for seed, company_id in enumerate(COMPANIES, start=1):
            data = generate_company(company_id, seed=seed, workers=8, days=14, as_of=now, timezone=SETTINGS["timezone"])
            token = emulator.add_company(data)
            registry.connect(
                company_id, "quickbooks_time", emulator.base_url, {"access_token": token}, settings=SETTINGS
            )
        yield env, emulator
    finally:
        emulator.stop()


@pytest.fixture
def daemon(deployment, tmp_path):
    """The product's code location (workspace.yaml) under the daemon."""
    yield from run_daemon(deployment, tmp_path, ROOT / "workspace.yaml")


@pytest.fixture
def pipeline_daemon(deployment, tmp_path):
    """The sync pipeline alone under the daemon: no dbt marts, reports or analysts' copy."""
    yield from run_daemon(deployment, tmp_path, ROOT / "tests" / "sync_pipeline_workspace.yaml")


def run_daemon(deployment, tmp_path: Path, workspace: Path) -> Iterator[Path]:
    env, _ = deployment
    log = tmp_path / "daemon.log"
    executable = Path(sys.executable).with_name("dagster-daemon")
    with log.open("w") as out:
        # Its own session, so the run workers it launches end with it.
        process = subprocess.Popen(
            [str(executable), "run", "-w", str(workspace)],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield log
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        # The daemon's code server runs in a session of its own and outlives it: end every process
        # this test started, known by the test's own folder in its command line.
        for pid in processes_mentioning(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)


def processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:  # ended meanwhile, or not ours to read
                continue
    return found


def test_the_daemon_syncs_new_connections_then_refreshes_what_changed(deployment, daemon):
    env, emulator = deployment
    warehouse = Warehouse(url=env["PROTIV_WAREHOUSE_URL"])
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"

        # A third company whose vendor refuses its token at first (not issued yet): its initial sync
        # fails, and the automation tries again with backoff, never leaving it stranded.
        late_token = "issued-later-" + "x" * 16
        ConnectionRegistry().connect(
            "cedar", "quickbooks_time", emulator.base_url, {"access_token": late_token}, settings=SETTINGS
        )
        store = SyncStateStore()
        wait_for(lambda: store.state("cedar").failures >= 1, 120, "cedar's first initial sync to fail", daemon)
        health = company_health(ConnectionRegistry().get("cedar"), store.state("cedar"), [], utc_now())
        assert not health.healthy and health.reason.startswith("initial sync failing"), health.reason
        # The vendor issues the token now: a later attempt of the initial sync goes through.
        now = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
        emulator.add_company(
            generate_company("cedar", seed=9, workers=5, days=14, as_of=now, timezone=SETTINGS["timezone"]),
            access_token=late_token,
        )

        # Connect -> partitions -> initial syncs -> ProPays, with nothing but the daemon running.
        wait_for(lambda: propay_partitions(instance) >= set(COMPANIES), 300, "both companies' ProPays", daemon)
        assert set(instance.get_dynamic_partitions("company")) >= set(COMPANIES)
        for company_id in COMPANIES:
            truth = emulator.company(company_id).timesheets()
            loaded = warehouse.read_table("attendance", where={"company_id": company_id})
            assert sorted(loaded["entry_id"]) == sorted(str(s["id"]) for s in truth)
            assert len(warehouse.read_table("propay_opportunities", where={"company_id": company_id})) > 0

        # The coordinator never ran two of this vendor's sync runs at once. The ProPay runs the
        # automation starts carry the provider tag too (added as they run) but never call the vendor:
        # they queue in the propay_engine pool, and may run beside a sync.
        records = instance.get_run_records(dg.RunsFilter(tags={"protiv/provider": "quickbooks_time"}))
        intervals = [
            (r.start_time, r.end_time)
            for r in records
            if r.start_time and r.end_time and r.dagster_run.job_name in ("sync_company_reference", "sync_company_week")
        ]
        assert len(intervals) >= 2 * (1 + 1)  # per company: workers and jobs, then its three weeks in one run
        assert max_overlap(intervals) <= PROVIDER_LIMIT

        # Each company turns green once its initial sync is done.
        def healthy() -> bool:
            history = instance.event_log_storage.get_asset_check_execution_history(HEALTH_CHECK, limit=50)
            latest = {}
            for record in history:  # newest first
                latest.setdefault(record.partition, record.status.value)
            return all(latest.get(company_id) == "SUCCEEDED" for company_id in COMPANIES)

        wait_for(healthy, 120, "both connections green", daemon)

        # The analysts' marts follow the ProPays: dbt built in a run worker the daemon launched, and
        # every dbt test passed as an asset check.
        # (The instance started empty: whatever built them is the daemon.)
        def marts_builds() -> list[dg.DagsterRun]:
            return [
                run
                for run in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.SUCCESS]))
                if run.asset_selection and any(key.path[0] == "analytics" for key in run.asset_selection)
            ]

        built = wait_for(marts_builds, 240, "the analysts' marts built by the daemon", daemon)
        evaluations = instance.all_logs(built[0].run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        assert evaluations and all(e.dagster_event.event_specific_data.passed for e in evaluations)

        wait_for(lambda: "cedar" in propay_partitions(instance), 240, "cedar's initial sync on a later attempt", daemon)
        assert store.state("cedar").failures == 0 and store.state("cedar").cursor is not None

        # A manager shortens an entry two weeks back; the next refresh re-syncs it.
        vendor = emulator.company("acme")
        sheet = next(
            s for s in sorted(vendor.timesheets(), key=lambda s: s["date"]) if s["end"] and s["duration"] > 3 * 3600
        )
        end = datetime.fromisoformat(sheet["end"]) - timedelta(hours=1)
        vendor.edit_timesheet(int(sheet["id"]), end=end.isoformat())
        edited_at = time.time()

        def refreshed() -> bool:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("propay_opportunities"), asset_partitions=["acme"]), limit=1
            ).records
            if not records or records[0].timestamp < edited_at:
                return False
            hours = warehouse.read_table("attendance", where={"company_id": "acme"}).set_index("entry_id")["hours"]
            return abs(float(hours[str(sheet["id"])]) - (sheet["duration"] / 3600 - 1)) < 1e-6

        wait_for(refreshed, 240, "the refresh to re-sync the edited week and the ProPays", daemon)

        # Every attendance change is followed by a ProPay recompute, whatever the timing of the runs:
        # once the daemon settles, each ProPay counts exactly the seconds attendance holds for it
        # (the analysts' audit query recomputes them from the tables).
        def propays_follow_attendance() -> bool:
            rows = warehouse.query(AUDIT_SQL.replace("protiv.", "{schema}."))
            mine = rows[rows["company_id"] == "acme"].drop_duplicates("propay_id")
            return len(mine) > 0 and bool((mine["stored_actual_seconds"] == mine["audit_actual_seconds"]).all())

        wait_for(propays_follow_attendance, 180, "the ProPays to count the edited attendance", daemon)
        refresh_runs = instance.get_runs(dg.RunsFilter(tags={"protiv/trigger": "refresh", "protiv/company": "acme"}))
        # (The next minute's refresh may already be running: none failed is what counts.)
        assert refresh_runs and not [r for r in refresh_runs if r.status == dg.DagsterRunStatus.FAILURE]
        # Only the edited week and the current one were re-synced (plus workers and jobs when the
        # vendor's reference stamps were too recent to trust, see sources/quickbooks_time.py).
        weeks = set().union(*(weeks_of(r) for r in refresh_runs if r.job_name == "sync_company_week"))
        assert 1 <= len(weeks) <= 2, weeks
        assert not instance.get_runs(dg.RunsFilter(tags={"protiv/trigger": "refresh", "protiv/company": "birch"}))


# -- a run worker killed mid-run ------------------------------------------------------------------------
DEAD_RUN_FAILED_WITHIN = 120  # seconds from the kill to the run marked failed (deploy/dagster.yaml)
HOLD_SECONDS = 45  # under the vendor client's 60 s read timeout: a held read is never retried meanwhile
SYNC_JOBS = ("sync_company_reference", "sync_company_week")


class HeldPage:
    """The next listing page the emulator serves waits until released (at most HOLD_SECONDS): the
    run worker that asked for it is then mid-run, in a vendor read, for as long as the test needs.
    No sensor or schedule reads a listing page before a company's initial sync is done (the initial
    change check reads one unpaged endpoint), so the page held is a sync run's."""

    def __init__(self, emulator: QuickBooksTimeEmulator):
        self.reached, self.released = threading.Event(), threading.Event()
        emulator.faults.between_pages(self._hold, after_pages=1)

    def _hold(self) -> None:
        self.reached.set()
        self.released.wait(HOLD_SECONDS)


@pytest.fixture
def held_pages(deployment):
    """Holds the first sync run's first page: armed before the daemon starts (request this fixture
    before `daemon`); ``arm()`` holds the next page served."""
    emulator = deployment[1]
    held: list[HeldPage] = []

    def arm() -> HeldPage:
        held.append(HeldPage(emulator))
        return held[-1]

    arm()
    yield arm, held[0]
    for page in held:
        page.released.set()


def held_sync_run(instance: dg.DagsterInstance, page: HeldPage, daemon_log: Path) -> dg.DagsterRun:
    """The sync run whose worker waits on the held page: the only one in progress (one run at a time
    on this vendor)."""
    wait_for(page.reached.is_set, 240, "a sync run to read its first vendor page", daemon_log, step=0.5)
    runs = [
        r for r in instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])) if r.job_name in SYNC_JOBS
    ]
    assert len(runs) == 1, [(r.run_id, r.job_name) for r in runs]
    return runs[0]


def failed_after_kill(instance: dg.DagsterInstance, run_id: str, killed_at: float, daemon_log: Path) -> float:
    """Seconds from the kill until the run was marked failed."""
    wait_for(
        lambda: instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE,
        DEAD_RUN_FAILED_WITHIN + 30,
        f"run {run_id} to be marked failed",
        daemon_log,
        step=0.5,
    )
    seconds = time.monotonic() - killed_at
    assert seconds < DEAD_RUN_FAILED_WITHIN, f"run {run_id} was marked failed {seconds:.0f} s after its worker died"
    return seconds


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    [record] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return record.dagster_event.message or ""


def warehouse_tables(warehouse: Warehouse) -> dict[str, pd.DataFrame]:
    return {
        table.name: warehouse.read_table(table, order_by=list(table.primary_key)).reset_index(drop=True)
        for table in ALL_TABLES
    }


def clean_sync(tmp_path: Path, company_ids) -> dict[str, pd.DataFrame]:
    """The tables a clean sync of the same vendor data writes: each company synced once, in process
    (as `protiv sync` does), into a fresh warehouse."""
    warehouse = Warehouse(url=str(tmp_path / "clean.duckdb"))
    defs = build_defs(warehouse=warehouse)
    connections = {c.company_id: c for c in ConnectionRegistry().list()}
    with dg.DagsterInstance.ephemeral() as instance:
        for company_id in company_ids:
            sync_company(defs, instance, company_id, *sync_window(connections[company_id], utc_now()))
    return warehouse_tables(warehouse)


def test_a_killed_run_worker_is_failed_its_slot_freed_and_its_sync_retried(
    deployment, held_pages, pipeline_daemon, tmp_path
):
    env, _ = deployment
    daemon = pipeline_daemon  # its log
    store = SyncStateStore(env["PROTIV_REGISTRY_URL"])
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_launcher).__name__ == "MonitoredRunLauncher"

        # 1. The first sync run's worker, killed alone (the out-of-memory killer's pick): its code
        # server, which watches its children, reports it at once.
        arm, first_page = held_pages
        alone = held_sync_run(instance, first_page, daemon)
        worker, server = code_server_worker(instance, alone.run_id)
        next_page = arm()
        os.kill(worker, signal.SIGKILL)
        killed_at = time.monotonic()
        first_page.released.set()
        seconds_alone = failed_after_kill(instance, alone.run_id, killed_at, daemon)

        # 2. The next sync run (the other company's, queued behind the limit of one run on this
        # vendor, or the retry) is killed with its code server, as a container out of memory would
        # be: nobody reports it; run monitoring fails it once the code server has not answered for
        # the grace period (the daemon meanwhile starts a new code server for new runs).
        together = held_sync_run(instance, next_page, daemon)
        # Dagster's run retries have created the first run's retry meanwhile (with its code server
        # up: a retry Dagster cannot plan is given up, and the automation then plans the initial sync
        # again half an hour later, tests/automation/test_retried_runs.py).
        wait_for(
            lambda: instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": alone.run_id})),
            60,
            "the killed run's retry",
            daemon,
        )
        worker, server = code_server_worker(instance, together.run_id)
        os.kill(worker, signal.SIGKILL)
        os.kill(server, signal.SIGKILL)
        killed_at = time.monotonic()
        next_page.released.set()
        seconds_together = failed_after_kill(instance, together.run_id, killed_at, daemon)
        assert WORKER_GONE in failure_message(instance, together.run_id)
        print(
            f"run marked failed {seconds_alone:.1f} s after its worker was killed alone, "
            f"{seconds_together:.1f} s after it was killed with its code server"
        )

        # Its queue slot is free: a run queued on the same vendor starts.
        failed_at = instance.get_run_record_by_id(together.run_id).end_time
        wait_for(
            lambda: [
                r
                for r in instance.get_run_records(dg.RunsFilter(tags={"protiv/provider": "quickbooks_time"}))
                if r.start_time and r.start_time >= failed_at
            ],
            120,
            "a queued run of the same vendor to start",
            daemon,
        )
        # No pool slot is left with a dead run (with `run` granularity pools count running runs).
        assert not {alone.run_id, together.run_id} & set(instance.event_log_storage.get_concurrency_run_ids())

        # Run retries re-execute both, the syncs complete and both companies' ProPays are computed.
        wait_for(lambda: propay_partitions(instance) >= set(COMPANIES), 300, "both companies' ProPays", daemon)
        wait_for(lambda: not store.pending_batches(), 120, "every sync to finish", daemon)
        batches = [store.batch(run.tags["protiv/batch"]) for run in (alone, together)]
        assert all(batch.status == SUCCEEDED for batch in batches), batches

        runs = instance.get_runs(dg.RunsFilter(tags={"protiv/trigger": "initial_sync"}))
        for killed in (alone, together):
            [retry] = [r for r in runs if r.tags.get("dagster/parent_run_id") == killed.run_id]
            assert retry.tags["protiv/batch"] == killed.tags["protiv/batch"]
            assert instance.get_run_by_id(killed.run_id).tags["dagster/will_retry"] == "true"
        # No double work: each company's initial sync succeeded once per job, and only the killed runs failed.
        for company_id in COMPANIES:
            mine = [r for r in runs if r.tags.get("protiv/company") == company_id and r.job_name in SYNC_JOBS]
            assert sorted(r.job_name for r in mine if r.status == dg.DagsterRunStatus.SUCCESS) == sorted(SYNC_JOBS)
        failed = {r.run_id for r in runs if r.status != dg.DagsterRunStatus.SUCCESS}
        assert failed == {alone.run_id, together.run_id}

        # Nothing left to run (the automation's ProPay runs included) before the tables are compared.
        busy = [dg.DagsterRunStatus.QUEUED, *IN_PROGRESS_RUN_STATUSES]
        wait_for(lambda: not instance.get_runs(dg.RunsFilter(statuses=busy)), 120, "every run to end", daemon)

        # `protiv status` shows both green: nothing failed for good.
        connections = {c.company_id: c for c in ConnectionRegistry().list()}
        for company_id in COMPANIES:
            health = company_health(connections[company_id], store.state(company_id), [], utc_now())
            assert health.healthy, health.reason

    # The warehouse holds exactly what a clean sync of the same vendor data writes.
    synced = warehouse_tables(Warehouse(url=env["PROTIV_WAREHOUSE_URL"]))
    for name, frame in clean_sync(tmp_path, COMPANIES).items():
        assert_frame_equal(synced[name], frame, obj=name)
