"""The analysts' copy of a DuckDB warehouse: whole, read-only, swapped atomically, never in the way.

Analyst sessions run in processes of their own here (a DuckDB file lock is held per process), as
an analyst's notebook would."""

from __future__ import annotations

import shutil
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.publish import publish_for_analysts
from protiv_dagster.warehouse.session import WarehouseError
from protiv_dagster.warehouse.store import WarehouseStore, analysts_copy
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, SECOND_WEEK, week_rows


def analyst_session(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``path`` open read-only for ``seconds``, printing its count at start and end."""
    script = textwrap.dedent(
        f"""
        import sys, time, duckdb
        con = duckdb.connect({str(path)!r}, read_only=True)
        count = lambda: con.execute("SELECT count(*) FROM protiv.attendance").fetchone()[0]
        print("open", count(), flush=True)
        time.sleep({seconds})
        print("still", count(), flush=True)
        """
    )
    session = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert session.stdout is not None
    assert session.stdout.readline().startswith("open")  # holds the file from here on
    return session


def write_week(warehouse: Warehouse, week: tuple) -> None:
    warehouse.replace_partition(ATTENDANCE, week_rows("acme", week), {"company_id": "acme"}, week)


def test_the_copy_is_the_whole_warehouse_and_read_only(tmp_path: Path):
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables([ATTENDANCE])
    write_week(warehouse, FIRST_WEEK)
    write_week(warehouse, SECOND_WEEK)

    published = publish_for_analysts(warehouse.store)

    assert published.path == tmp_path / "warehouse.analysts.duckdb" == analysts_copy(tmp_path / "warehouse.duckdb")
    assert published.size_bytes == published.path.stat().st_size > 0
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # no staging file left
    with duckdb.connect(str(published.path), read_only=True) as analyst:
        assert analyst.execute("SELECT count(*) FROM protiv.attendance").fetchone() == (12,)
    # Read-only for every user (root, which this suite may run as, ignores modes: hence no write attempt).
    assert stat.S_IMODE(published.path.stat().st_mode) == 0o444


def test_an_open_analyst_session_never_blocks_a_write_or_the_next_publication(tmp_path: Path):
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"), lock_timeout_seconds=2)
    warehouse.ensure_tables([ATTENDANCE])
    write_week(warehouse, FIRST_WEEK)
    first = publish_for_analysts(warehouse.store)

    session = analyst_session(first.path, seconds=3)
    try:
        started = time.monotonic()
        write_week(warehouse, SECOND_WEEK)
        second = publish_for_analysts(warehouse.store)
        assert time.monotonic() - started < 2  # nobody waited for the lock
    finally:
        out, _ = session.communicate(timeout=30)
    assert session.returncode == 0 and out.strip() == "still 6"  # the open session kept its copy
    with duckdb.connect(str(second.path), read_only=True) as analyst:  # a new session sees the new one
        assert analyst.execute("SELECT count(*) FROM protiv.attendance").fetchone() == (12,)


def other_process_writes(path: Path) -> subprocess.CompletedProcess:
    """Another process opening the warehouse file to write to it, as another run's process would."""
    script = (
        f"import duckdb; duckdb.connect({str(path)!r}).execute('CREATE TABLE protiv.intruder (x INT)'); print('wrote')"
    )
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)


def test_the_file_stays_locked_for_the_whole_copy_and_until_the_block_ends(tmp_path: Path):
    # DuckDB's lock is a POSIX record lock: closing any descriptor of the file in this process drops
    # it. A copy by path inside the block let another process write the file it still had open.
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables([ATTENDANCE])
    write_week(warehouse, FIRST_WEEK)
    with warehouse.store.checkpointed() as held:
        assert len(held.read()) == (tmp_path / "warehouse.duckdb").stat().st_size > 0
        refused = other_process_writes(tmp_path / "warehouse.duckdb")
        assert refused.returncode != 0 and "Could not set lock" in refused.stderr
    assert held.closed
    assert other_process_writes(tmp_path / "warehouse.duckdb").stdout.strip() == "wrote"  # let go after the block


def test_a_publication_leaves_the_file_locked_until_it_has_let_go(tmp_path: Path, monkeypatch):
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables([ATTENDANCE])
    write_week(warehouse, FIRST_WEEK)
    after_copy = []
    real_copy = shutil.copyfileobj

    def copy_then_try_another_process(source, target, length=0):
        real_copy(source, target, length)
        after_copy.append(other_process_writes(tmp_path / "warehouse.duckdb"))

    monkeypatch.setattr(shutil, "copyfileobj", copy_then_try_another_process)
    published = publish_for_analysts(warehouse.store)

    assert after_copy[0].returncode != 0 and "Could not set lock" in after_copy[0].stderr
    with duckdb.connect(str(published.path), read_only=True) as analyst:
        assert analyst.execute("SELECT count(*) FROM protiv.attendance").fetchone() == (6,)


def test_a_session_open_on_the_warehouse_itself_is_named_with_the_copy_to_open_instead(tmp_path: Path):
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"), lock_timeout_seconds=0.5)
    warehouse.ensure_tables([ATTENDANCE])
    write_week(warehouse, FIRST_WEEK)
    session = analyst_session(tmp_path / "warehouse.duckdb", seconds=5)
    try:
        with pytest.raises(WarehouseError) as refused:
            write_week(warehouse, SECOND_WEEK)
    finally:
        session.kill()
        session.wait()
    message = str(refused.value)
    assert "stayed locked by another process for 0.5 s" in message
    assert f"it should open the analysts' copy {tmp_path / 'warehouse.analysts.duckdb'} instead" in message
    assert warehouse.read_table(ATTENDANCE).shape[0] == 6  # nothing lost


@pytest.mark.postgres
def test_a_postgresql_warehouse_has_no_copy_to_publish(postgres_url: str, postgres_schema: str):
    with pytest.raises(ValueError, match="is not a DuckDB file"):
        publish_for_analysts(WarehouseStore(postgres_url, postgres_schema))
