"""A whole force sync (`protiv sync`, three Dagster runs) SIGKILLed at arbitrary moments.

tests/resources/test_crash_consistency.py kills a warehouse write at chosen moments; this kills the
real thing, the CLI's process with its Dagster runs, vendor reads and warehouse writes, at moments
spread over the sync. After every kill each partition holds exactly what it held before the sync or
exactly what a clean sync writes (never a mix, never a half-written week), and the next sync gives
exactly the tables of a clean sync into a fresh warehouse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import ALL_TABLES
from protiv_emulators.generator import generate_company
from tests.assets.vendors import host

pytestmark = pytest.mark.slow

# Seconds after the CLI starts, each kill on the same warehouse as before the sync: spread over its
# start-up (about 3 s), the reference run, the run of the three weeks and the ProPay run (2-6 s more here).
KILL_AFTER = (3.5, 4.25, 5.0, 5.75, 6.5, 8.0)
# How each table is cut into the partitions one write replaces as a whole.
PARTITIONS = {
    "raw_timesheets": lambda frame: frame["week_start"].astype(str),
    "attendance": lambda frame: pd.to_datetime(frame["work_date"]).dt.to_period("W-SUN").astype(str),
    "rejected_rows": lambda frame: frame["asset"] + "/" + frame["partition_key"],
}


def start_sync(data: Path, key: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
    env.update(PROTIV_SECRET_KEY=key, PROTIV_DATA_DIR=str(data), COLUMNS="200")
    return subprocess.Popen(
        [sys.executable, "-m", "protiv_dagster.cli", "sync", "acme"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def synced(data: Path, key: str) -> None:
    process = start_sync(data, key)
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]


def tables(data: Path) -> dict[str, pd.DataFrame]:
    warehouse = Warehouse(url=str(data / "warehouse.duckdb"))
    # Each data folder has its own registry: when it recorded the settings differs, nothing else.
    return {
        table.name: warehouse.read_table(table, order_by=list(table.primary_key))
        .drop(columns=["recorded_at"], errors="ignore")
        .reset_index(drop=True)
        for table in ALL_TABLES
    }


def parts(name: str, frame: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """The table's partitions (a company-wide table is one partition)."""
    if name not in PARTITIONS or frame.empty:
        return {"": frame}
    return {key: part.reset_index(drop=True) for key, part in frame.groupby(PARTITIONS[name](frame))}


def same(left: pd.DataFrame | None, right: pd.DataFrame | None) -> bool:
    if left is None or right is None:
        return (left is None or left.empty) and (right is None or right.empty)
    try:
        assert_frame_equal(left, right)
    except AssertionError:
        return False
    return True


def connect(data: Path, harness, timezone: str) -> None:
    data.mkdir()
    registry = ConnectionRegistry(f"sqlite:///{data / 'registry.sqlite3'}")
    registry.connect("acme", "quickbooks_time", harness.base_url, harness.credentials, settings={"timezone": timezone})


def test_a_sync_killed_at_any_moment_leaves_every_partition_old_or_new_and_the_next_sync_is_clean(
    tmp_path, monkeypatch
):
    key = generate_secret_key()
    monkeypatch.setenv("PROTIV_SECRET_KEY", key)  # for the registries written from this process
    # Two days back: no entry is still on the clock, so two syncs of the same vendor state agree.
    company = generate_company(
        "acme", seed=5, workers=25, days=14, as_of=datetime.now(UTC) - timedelta(days=2), timezone="America/Denver"
    )
    harness = host("quickbooks_time", company)
    try:
        killed, clean = tmp_path / "killed", tmp_path / "clean"
        connect(killed, harness, company.timezone)
        synced(killed, key)
        before = tables(killed)
        assert len(before["attendance"]) > 500

        # The vendor changes in two weeks, so every layer has something new to write.
        entries = harness.editable_entries()
        harness.shorten(entries.iloc[0].entry_id, hours=1.0)
        harness.delete(entries.iloc[len(entries) // 2].entry_id)
        harness.shorten(entries.iloc[-1].entry_id, hours=1.5)
        connect(clean, harness, company.timezone)
        synced(clean, key)
        after = tables(clean)
        assert not same(before["attendance"], after["attendance"])

        backup = tmp_path / "before.duckdb"
        shutil.copyfile(killed / "warehouse.duckdb", backup)
        snapshots = []
        for delay in KILL_AFTER:
            shutil.copyfile(backup, killed / "warehouse.duckdb")
            (killed / "warehouse.duckdb.wal").unlink(missing_ok=True)  # the last kill's, for the old file
            process = start_sync(killed, key)
            time.sleep(delay)
            process.kill()
            process.communicate(timeout=60)
            snapshots.append((delay, tables(killed)))

        states = set()  # which changed partitions each kill left old and which new
        for delay, snapshot in snapshots:
            for name, frame in snapshot.items():
                old, new = parts(name, before[name]), parts(name, after[name])
                for partition, rows in parts(name, frame).items():
                    is_old, is_new = same(rows, old.get(partition)), same(rows, new.get(partition))
                    assert is_old or is_new, (
                        f"killed after {delay} s: {name} {partition or '(company)'} is neither the old nor the new rows"
                    )
                    if is_old != is_new:
                        states.add((delay, "new" if is_new else "old"))
                for partition in set(old) | set(new):  # a partition that vanished was emptied on purpose
                    if partition not in parts(name, frame):
                        assert old.get(partition) is None or new.get(partition) is None or new[partition].empty, (
                            f"killed after {delay} s: {name} {partition} lost its rows"
                        )

        print("kills that left changed partitions old / new:", sorted(states))
        synced(killed, key)
        for name, frame in tables(killed).items():
            assert_frame_equal(frame, after[name], obj=name)
    finally:
        harness.stop()
