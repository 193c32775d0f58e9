"""The laptop instance's storages (protiv_dagster/laptop_storage.py): Dagster's SQLite files through
kept connections, shared with other processes as Dagster's own storages share them."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.scheduler.instigation import TickData, TickStatus
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage

from protiv_dagster.cli import common
from protiv_dagster.cli.common import LAPTOP_INSTANCE, dagster_home
from protiv_dagster.laptop_storage import (
    KEPT_CONNECTIONS,
    LaptopEventLogStorage,
    LaptopRunStorage,
    LaptopScheduleStorage,
)
from tests.cli.test_common import say_hello  # a one-op job

# The instance the version before this one wrote into a new home: the laptop's event log, Dagster's
# run and schedule storages.
WRITTEN_BEFORE = common._LAPTOP_SETTINGS + common._ONE_EVENT_LOG


def is_run_success(entry: dg.EventLogEntry) -> bool:
    return bool(entry.dagster_event and entry.dagster_event.event_type == dg.DagsterEventType.RUN_SUCCESS)


def succeeded(instance: dg.DagsterInstance, run_id: str) -> bool:
    return any(is_run_success(entry) for entry in instance.all_logs(run_id))


@pytest.fixture
def sqlite_connections():
    """How many SQLite connections were opened, by database file name."""
    opened: Counter[str] = Counter()

    def count(dbapi_connection, _record) -> None:
        [(_, _, path)] = [row for row in dbapi_connection.execute("PRAGMA database_list") if row[1] == "main"]
        opened[Path(path).name] += 1

    sqlalchemy.event.listen(sqlalchemy.pool.Pool, "connect", count)
    yield opened
    sqlalchemy.event.remove(sqlalchemy.pool.Pool, "connect", count)


def test_a_home_the_version_before_wrote_is_upgraded_and_keeps_its_runs_events_and_ticks(tmp_path, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(WRITTEN_BEFORE)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.from_config(str(home)) as before:
        assert type(before.run_storage) is SqliteRunStorage
        assert type(before.schedule_storage) is SqliteScheduleStorage
        earlier_run = say_hello.execute_in_process(instance=before).run_id
        tick = before.create_tick(
            TickData(
                instigator_origin_id="refresh-origin",
                instigator_name="refresh_every_two_hours",
                instigator_type=InstigatorType.SCHEDULE,
                status=TickStatus.SKIPPED,
                timestamp=1_000_000.0,
                selector_id="refresh-selector",
            )
        )
    dagster_home()
    assert (home / "dagster.yaml").read_text() == LAPTOP_INSTANCE

    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.event_log_storage, LaptopEventLogStorage)
        assert isinstance(instance.run_storage, LaptopRunStorage)
        assert isinstance(instance.schedule_storage, LaptopScheduleStorage)
        run_id = say_hello.execute_in_process(instance=instance).run_id
        # The same files as before: the earlier run, its events and the earlier tick are all there.
        assert {run.run_id for run in instance.get_runs()} == {earlier_run, run_id}
        assert succeeded(instance, earlier_run) and succeeded(instance, run_id)
        [kept_tick] = instance.get_ticks("refresh-origin", "refresh-selector")
        assert kept_tick.tick_id == tick.tick_id and kept_tick.status == TickStatus.SKIPPED
    assert sorted(path.name for path in home.rglob("*.db")) == ["event_log.db", "runs.db", "schedules.db"]


def test_a_run_reuses_kept_connections_where_dagsters_storages_open_one_per_statement(
    tmp_path, monkeypatch, sqlite_connections
):
    dagsters = tmp_path / "dagsters"
    dagsters.mkdir()
    (dagsters / "dagster.yaml").write_text(common._LAPTOP_SETTINGS + common._DAGSTERS_ONE_EVENT_LOG)
    monkeypatch.setenv("DAGSTER_HOME", str(dagsters))
    with dg.DagsterInstance.from_config(str(dagsters)) as instance:
        say_hello.execute_in_process(instance=instance)  # the files are made; then a run is counted
        sqlite_connections.clear()
        say_hello.execute_in_process(instance=instance)
    by_dagster = dict(sqlite_connections)

    ours = tmp_path / "ours"
    monkeypatch.setenv("DAGSTER_HOME", str(ours))
    dagster_home()
    with dg.DagsterInstance.from_config(str(ours)) as instance:
        say_hello.execute_in_process(instance=instance)
        sqlite_connections.clear()
        for _ in range(3):
            assert say_hello.execute_in_process(instance=instance).success
    by_us = dict(sqlite_connections)

    # Dagster's storages open a connection per statement: dozens for one trivial run.
    assert by_dagster["event_log.db"] > 10 and by_dagster["runs.db"] > 5, by_dagster
    # Ours opened none for three more runs: every one came from the connections kept since the first.
    assert sum(by_us.values()) <= KEPT_CONNECTIONS, by_us


def test_the_storages_commit_in_write_ahead_log_mode_without_a_sync_per_transaction(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    home = dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storages = (instance.event_log_storage, instance.run_storage, instance.schedule_storage)
        for storage in storages:
            with storage._engine.connect() as connection:  # type: ignore[attr-defined]
                assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                # 1 is NORMAL (SQLite's default, FULL, is 2): durable when the process dies.
                assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1


OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    import dagster as dg

    @dg.op
    def other() -> int:
        return 1

    @dg.job
    def other_process():
        other()

    with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
        seen = len(instance.get_runs())
        result = other_process.execute_in_process(instance=instance)
        print(result.run_id, seen)
    """
)


def test_another_process_writes_and_reads_the_files_while_this_one_keeps_its_connections(tmp_path, monkeypatch):
    """The UI, the daemon and run workers are processes of their own sharing the files: connections
    kept open between uses hold no lock, so the other process writes, and each sees the other's runs."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    home = dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        first = say_hello.execute_in_process(instance=instance).run_id
        assert instance.run_storage._engine.pool.checkedin() >= 1  # type: ignore[attr-defined]
        other = subprocess.run(
            [sys.executable, "-c", OTHER_PROCESS, str(home)], capture_output=True, text=True, timeout=120, check=False
        )
        assert other.returncode == 0, other.stderr[-2000:]
        other_run, seen_there = other.stdout.split()
        assert seen_there == "1"  # our run, written through our kept connections
        assert succeeded(instance, other_run) and instance.get_run_by_id(other_run).is_success
        last = say_hello.execute_in_process(instance=instance).run_id
        assert {run.run_id for run in instance.get_runs()} == {first, other_run, last}


WATCHED_PROCESS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import dagster as dg

    def wait_for(path):
        deadline = time.monotonic() + 60
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.05)

    @dg.op
    def slow(context) -> int:
        wait_for(Path(sys.argv[2]))
        context.log.info("halfway")
        wait_for(Path(sys.argv[3]))
        return 1

    @dg.job
    def watched():
        slow()

    with dg.DagsterInstance.from_config(sys.argv[1]) as instance:
        watched.execute_in_process(instance=instance)
    """
)


def test_the_ui_sees_a_runs_events_as_another_process_writes_them(tmp_path, monkeypatch):
    """The UI follows a running run by watching the event log for writes. With kept connections a
    commit lands in the write-ahead log, and the database file changes only when the log is folded
    into it (every thousand pages): the storage watches the log too, so an event shows while the
    run is still going."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    home = dagster_home()
    watching, finish = tmp_path / "watching", tmp_path / "finish"
    with dg.DagsterInstance.from_config(str(home)) as ui:
        say_hello.execute_in_process(instance=ui)  # the UI holds kept connections, as a busy one does
        worker = subprocess.Popen(
            [sys.executable, "-c", WATCHED_PROCESS, str(home), str(watching), str(finish)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 60
            while not (runs := ui.get_runs(filters=dg.RunsFilter(job_name="watched"))):
                assert time.monotonic() < deadline and worker.poll() is None, "the run never started"
                time.sleep(0.05)
            seen: list[dg.EventLogEntry] = []
            ui.watch_event_logs(runs[0].run_id, None, lambda entry, _cursor: seen.append(entry))
            watching.touch()
            deadline = time.monotonic() + 30
            while not any(entry.user_message == "halfway" for entry in seen):
                assert time.monotonic() < deadline, (
                    f"the run's halfway event was not seen within 30 s; {len(seen)} events seen"
                )
                time.sleep(0.05)
            assert worker.poll() is None and not any(is_run_success(entry) for entry in seen)  # still running
            finish.touch()
            assert worker.wait(timeout=60) == 0, worker.stderr.read()[-2000:] if worker.stderr else ""
            deadline = time.monotonic() + 30
            while not any(is_run_success(entry) for entry in seen):
                assert time.monotonic() < deadline, "the run's success was not seen"
                time.sleep(0.05)
        finally:
            finish.touch()
            if worker.poll() is None:
                worker.kill()
            worker.wait(timeout=30)
