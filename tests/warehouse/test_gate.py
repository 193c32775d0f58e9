"""The gate of a DuckDB warehouse file: no process of this project lets DuckDB read the file while
another one has it open (DuckDB reads the file's headers before it takes its own lock)."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from protiv_dagster.resources.warehouse import Warehouse
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, SECOND_WEEK, week_rows

# Another process's write, printing when DuckDB was first asked to open the file and when it wrote.
WRITER = """
import sys, time
import duckdb
from protiv_dagster.resources.warehouse import Warehouse
from tests.warehouse.helpers import ATTENDANCE, SECOND_WEEK, week_rows
real_connect = duckdb.connect
def connect(*args, **kwargs):
    print(f"connect {time.time():.6f}", flush=True)
    return real_connect(*args, **kwargs)
duckdb.connect = connect
warehouse = Warehouse(url=sys.argv[1], lock_timeout_seconds=float(sys.argv[2]))
print("ready", flush=True)
try:
    warehouse.replace_partition(ATTENDANCE, week_rows("c2", SECOND_WEEK), {"company_id": "c2"}, SECOND_WEEK)
except Exception as exc:
    print(f"failed {exc}", flush=True)
else:
    print(f"wrote {time.time():.6f}", flush=True)
"""


def start_writer(path: Path, timeout: float = 30.0) -> subprocess.Popen[str]:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(timeout)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "ready"
    return writer


def test_another_process_does_not_let_duckdb_read_the_file_until_this_one_has_closed_it(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    with warehouse.kept_open():
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        writer = start_writer(path)
        time.sleep(0.5)  # the writer waits at the gate meanwhile, DuckDB not asked
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", SECOND_WEEK), {"company_id": "c1"}, SECOND_WEEK)
        held_until = time.time()
    out, _ = writer.communicate(timeout=30)
    assert "wrote" in out, out
    # DuckDB was asked to open the file only once this process's block had let it go.
    assert min(connect_times(out)) >= held_until - 0.5, (out, held_until)
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1", "c2"]


def test_a_file_held_by_another_process_of_the_project_longer_than_the_wait_gives_the_clear_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    with warehouse.store.gated():  # as while a dbt build this process started runs
        writer = start_writer(path, timeout=0.5)
        out, _ = writer.communicate(timeout=30)
    assert "stayed locked by another process for 0.5 s" in out and "connect" not in out, out
    assert set(warehouse.read_table(ATTENDANCE).company_id) == {"c1"}  # nothing lost, nothing half written


def connect_times(out: str) -> list[float]:
    words = out.split()
    return [float(value) for word, value in zip(words, words[1:]) if word == "connect"]


def test_threads_of_one_process_share_the_gate_and_it_opens_after_the_last(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    inside, release = threading.Event(), threading.Event()

    def hold_a_reading() -> None:
        with warehouse.reading() as read:
            read.read_table(ATTENDANCE)
            inside.set()
            release.wait(30)

    holder = threading.Thread(target=hold_a_reading)
    holder.start()
    writer = None
    try:
        assert inside.wait(30)
        # Another thread of this process writes meanwhile, at once: one process, one open database.
        started = time.monotonic()
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        assert time.monotonic() - started < 5
        # That thread has let go; the reading thread still has the file: another process waits.
        writer = start_writer(path)
        time.sleep(0.5)
        assert writer.poll() is None
    finally:
        released_at = time.time()
        release.set()
        holder.join(30)
    assert writer is not None
    out, _ = writer.communicate(timeout=30)
    # DuckDB was not even asked to open the file before the last thread let go (a gate left by the
    # first thread to close would have let the writer read the headers while the reader had the file).
    assert "wrote" in out and min(connect_times(out)) >= released_at, (out, released_at)
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1", "c2"]


def test_one_file_spelled_two_ways_is_one_gate(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    path = tmp_path / "data" / "warehouse.duckdb"
    (tmp_path / "link.duckdb").symlink_to(path)
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    # Through `..`: this process enters once, rather than waiting for itself until its timeout.
    roundabout = Warehouse(url=str(tmp_path / "data" / ".." / "data" / "warehouse.duckdb"), lock_timeout_seconds=2)
    with warehouse.kept_open():
        roundabout.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        # Through a symbolic link: another process waits at the same gate.
        writer = start_writer(tmp_path / "link.duckdb")
        time.sleep(0.5)
        held_until = time.time()
    out, _ = writer.communicate(timeout=30)
    assert "wrote" in out and min(connect_times(out)) >= held_until - 0.1, (out, held_until)
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1", "c2"]


@pytest.mark.postgres
def test_a_postgresql_warehouse_has_no_gate(postgres_url: str, postgres_schema: str) -> None:
    warehouse = Warehouse(url=postgres_url, schema_name=postgres_schema)
    with warehouse.store.gated():  # nothing to enter: PostgreSQL keeps its own sessions apart
        warehouse.ensure_tables([ATTENDANCE])
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    assert set(warehouse.read_table(ATTENDANCE).company_id) == {"c1"}


def test_a_process_forked_inside_the_gate_does_not_keep_it_after_its_parent_has_left(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    with warehouse.store.gated():
        child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(20,))
        child.start()  # holds a copy of every descriptor of this process
    writer = None
    try:
        writer = start_writer(path)
        out, _ = writer.communicate(timeout=15)  # not held until the child ends
        assert "wrote" in out, out
    finally:
        if writer is not None:
            writer.kill()
            writer.wait()
        child.terminate()
        child.join()
