"""End to end under the real `dagster-daemon` with the PostgreSQL dagster.yaml of deploy/.

An admin connects two companies on the same vendor; without anything else, the daemon's sensors add
their partitions and run their initial syncs through the queued run coordinator (at most one run at
a time for that vendor here), the automation computes their ProPays, and each turns green. Then a
manager edits a time entry at the vendor; the next refresh tick re-syncs that week and the ProPay
table changes. Everything the daemon does is read back from the PostgreSQL instance and the
warehouse; this test only connects, edits and waits.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml

from protiv_dagster.partitions import RANGE_END_TAG, RANGE_START_TAG
from protiv_dagster.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sandbox.generator import generate_company
from protiv_dagster.sandbox.quickbooks_time import QuickBooksTimeEmulator

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
            registry.connect(company_id, "quickbooks_time", emulator.base_url, {"access_token": token}, settings=SETTINGS)
        yield env, emulator
    finally:
        emulator.stop()


@pytest.fixture
def daemon(deployment, tmp_path):
    env, _ = deployment
    log = tmp_path / "daemon.log"
    executable = Path(sys.executable).with_name("dagster-daemon")
    with log.open("w") as out:
        # Its own session, so the run workers it launches end with it.
        process = subprocess.Popen(
            [str(executable), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
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

        # Connect -> partitions -> initial syncs -> ProPays, with nothing but the daemon running.
        wait_for(lambda: propay_partitions(instance) >= set(COMPANIES), 300, "both companies' ProPays", daemon)
        assert set(instance.get_dynamic_partitions("company")) == set(COMPANIES)
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

        # A manager shortens an entry two weeks back; the next refresh re-syncs it.
        vendor = emulator.company("acme")
        sheet = next(s for s in sorted(vendor.timesheets(), key=lambda s: s["date"]) if s["end"] and s["duration"] > 3 * 3600)
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
        refresh_runs = instance.get_runs(dg.RunsFilter(tags={"protiv/trigger": "refresh", "protiv/company": "acme"}))
        # (The next minute's refresh may already be running: none failed is what counts.)
        assert refresh_runs and not [r for r in refresh_runs if r.status == dg.DagsterRunStatus.FAILURE]
        # Only the edited week and the current one were re-synced (plus workers and jobs when the
        # vendor's reference stamps were too recent to trust, see sources/quickbooks_time.py).
        weeks = set().union(*(weeks_of(r) for r in refresh_runs if r.job_name == "sync_company_week"))
        assert 1 <= len(weeks) <= 2, weeks
        assert not instance.get_runs(dg.RunsFilter(tags={"protiv/trigger": "refresh", "protiv/company": "birch"}))
