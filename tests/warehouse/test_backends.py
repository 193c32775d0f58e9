"""The two backends: the same placeholders and the same result frames, and DuckDB's one process per
file waited for rather than failed on."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse import store as store_module
from protiv_dagster.warehouse.gate import waiting_marker
from protiv_dagster.warehouse.session import WarehouseError
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, JAN_1, SECOND_WEEK, week_rows


def test_query_and_execute_use_question_mark_placeholders(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    for company in ("c1", "c2"):
        rows = week_rows(company, FIRST_WEEK)
        warehouse.replace_partition(ATTENDANCE, rows, {"company_id": company}, FIRST_WEEK)
    # DDL cannot take parameters on either backend; DML can.
    warehouse.execute(
        "create view {schema}.company_pay as select company_id, sum(pay) as pay "
        "from {schema}.attendance where worker_name like 'Worker%' and approved group by company_id"
    )
    warehouse.execute(
        "update {schema}.attendance set approved = ? where company_id = ? and worker_id = ?", [False, "c2", 2]
    )

    literals = warehouse.query("select ? as value, '50% sure?' as text /* why? */, 'a''?' as quoted", ["v"])
    pay = warehouse.query("select * from {schema}.company_pay where company_id = ? order by company_id", ["c2"])
    # numpy scalars, as pulled out of DataFrames, bind like Python values.
    rows = warehouse.read_table(
        ATTENDANCE,
        where={"company_id": "c1", "worker_id": np.int64(2), "rate": Decimal("25.125")},
        order_by=["work_date"],
    )
    unapproved = warehouse.query(
        "select count(*) as n from {schema}.attendance where worker_id = ? and not approved", [np.int64(2)]
    )

    assert literals.iloc[0].tolist() == ["v", "50% sure?", "a'?"]
    assert pay.to_dict("records") == [{"company_id": "c2", "pay": Decimal("300.75")}]
    assert rows.work_date.tolist() == [JAN_1, JAN_1 + timedelta(days=1), JAN_1 + timedelta(days=2)]
    assert unapproved.n.tolist() == [3]


@pytest.mark.postgres
def test_both_backends_return_equal_frames(tmp_path: Path, postgres_url: str, postgres_schema: str) -> None:
    duck = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    postgres = Warehouse(url=postgres_url, schema_name=postgres_schema)
    rows = week_rows("c1", FIRST_WEEK)
    rows["approved"] = rows["approved"].astype("boolean")
    rows.loc[1, ["hours", "approved", "clock_in", "pay", "rate"]] = None
    frames = []
    for warehouse in (duck, postgres):
        warehouse.ensure_tables([ATTENDANCE])
        warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"}, FIRST_WEEK)
        frames.append(
            (
                warehouse.read_table(ATTENDANCE),
                warehouse.query(
                    "select company_id, count(*) as n, sum(pay) as pay, max(clock_in) as last_clock_in "
                    "from {schema}.attendance group by company_id"
                ),
            )
        )

    for from_duckdb, from_postgres in zip(*frames, strict=True):
        pd.testing.assert_frame_equal(from_duckdb, from_postgres)


def test_reads_on_one_connection_give_what_separate_reads_give(warehouse: Warehouse) -> None:
    # The attendance and ProPay assets read several tables at once this way.
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    warehouse.replace_partition(ATTENDANCE, week_rows("c2", SECOND_WEEK), {"company_id": "c2"}, SECOND_WEEK)
    with warehouse.reading() as read:
        first = read.read_table(ATTENDANCE, where={"company_id": "c1"})
        second = read.query("SELECT count(*) AS n FROM {schema}.attendance WHERE company_id = ?", ["c2"])
    pd.testing.assert_frame_equal(first, warehouse.read_table(ATTENDANCE, where={"company_id": "c1"}))
    assert len(first) == 6 and int(second["n"].iloc[0]) == 6
    with pytest.raises(WarehouseError, match="reading"), warehouse.reading() as read:
        read.query("SELECT nothing FROM {schema}.attendance")


def test_two_duckdb_warehouses_on_one_file_take_turns(tmp_path: Path) -> None:
    path = tmp_path / "shared.duckdb"
    first, second = Warehouse(url=f"duckdb:///{path}"), Warehouse(url=str(path))

    first.ensure_tables([ATTENDANCE])
    first.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    second.ensure_tables([ATTENDANCE])
    second.replace_partition(ATTENDANCE, week_rows("c2", FIRST_WEEK), {"company_id": "c2"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(first.read_table(ATTENDANCE), second.read_table(ATTENDANCE))
    assert sorted(set(first.read_table(ATTENDANCE).company_id)) == ["c1", "c2"]


# Holds the DuckDB file's lock from another process, as a second Dagster run would.
HOLD_LOCK = (
    "import duckdb, sys, time; connection = duckdb.connect(sys.argv[1]); "
    "print('locked', flush=True); time.sleep(float(sys.argv[2]))"
)


def hold_lock(path: Path, seconds: float) -> subprocess.Popen[str]:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_duckdb_waits_for_another_process_to_release_the_file(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = hold_lock(path, 0.6)
    try:
        started = time.monotonic()
        Warehouse(url=str(path)).ensure_tables([ATTENDANCE])
        assert time.monotonic() - started > 0.3
    finally:
        holder.kill()
        holder.wait()


def test_duckdb_gives_a_clear_error_when_the_file_stays_locked(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    holder = hold_lock(path, 60.0)
    try:
        with pytest.raises(WarehouseError, match="stayed locked by another process for 0.5 s"):
            Warehouse(url=str(path), lock_timeout_seconds=0.5).ensure_tables([ATTENDANCE])
    finally:
        holder.kill()
        holder.wait()


# Whether another process can open the DuckDB file now: a second Dagster run's process, asking.
PROBE_OPEN = (
    "import duckdb, sys\n"
    "try:\n    duckdb.connect(sys.argv[1]).close()\nexcept duckdb.IOException as exc:\n"
    "    print('locked' if 'lock' in str(exc).lower() else exc)\nelse:\n    print('open')"
)


def another_process_opens(path: Path) -> str:
    probe = subprocess.run(
        [sys.executable, "-c", PROBE_OPEN, str(path)], capture_output=True, text=True, timeout=60, check=True
    )
    return probe.stdout.strip()


def test_a_kept_open_block_holds_the_duckdb_file_between_its_transactions_and_releases_it_after(
    tmp_path: Path,
) -> None:
    """Each transaction outside the block opens and closes the file (another process gets it between
    two); inside, the file stays open from the first to the last, so its transactions cost no open."""
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    assert another_process_opens(path) == "open"
    with warehouse.kept_open():
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        assert another_process_opens(path) == "locked"
        # The next transactions reuse the open database: something attached to it in one is there in the next.
        warehouse.execute("ATTACH ':memory:' AS kept_probe")
        assert "kept_probe" in set(warehouse.query("SELECT database_name FROM duckdb_databases()")["database_name"])
        rows = warehouse.read_table(ATTENDANCE)
    assert another_process_opens(path) == "open"
    assert "kept_probe" not in set(warehouse.query("SELECT database_name FROM duckdb_databases()")["database_name"])
    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), rows)


def test_a_kept_open_block_keeps_the_file_past_its_time_while_nobody_waits_up_to_its_longest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long block (a company's hundred weeks) keeps the file period after period while no process
    says it waits, so its transactions cost no open; at its longest time it lets the file go, and
    the rest open and close it each, as outside."""
    monkeypatch.setattr(store_module, "KEEP_OPEN_AT_MOST_SECONDS", 2.0)
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    with warehouse.store.kept_open(seconds=0.2):
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        time.sleep(0.3)
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", SECOND_WEEK), {"company_id": "c1"}, SECOND_WEEK)
        assert another_process_opens(path) == "locked"  # past its first period, kept for another
        time.sleep(2.0)
        warehouse.replace_partition(ATTENDANCE, week_rows("c2", FIRST_WEEK), {"company_id": "c2"}, FIRST_WEEK)
        assert another_process_opens(path) == "open"  # past its longest time: let go
        warehouse.replace_partition(ATTENDANCE, week_rows("c2", SECOND_WEEK), {"company_id": "c2"}, SECOND_WEEK)
        assert another_process_opens(path) == "open"
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1", "c2"]


def test_a_kept_open_block_lets_the_file_go_at_its_time_after_a_long_transaction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past its period, a block keeps the file on only after a short transaction: next to a long one
    an open costs nothing, and letting go frees DuckDB's buffers (a large sync's peak memory)."""
    monkeypatch.setattr(store_module, "KEEP_ON_AFTER_SECONDS", 0.0)  # every transaction counts as long
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    with warehouse.store.kept_open(seconds=0.2):
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        assert another_process_opens(path) == "locked"  # within its period
        time.sleep(0.3)
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", SECOND_WEEK), {"company_id": "c1"}, SECOND_WEEK)
        assert another_process_opens(path) == "open"  # nobody waited, but the transaction was long
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1"]


WAITING_WRITER = """
import sys, time
from protiv_dagster.resources.warehouse import Warehouse
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, week_rows
warehouse = Warehouse(url=sys.argv[1], lock_timeout_seconds=30)
print("waiting", flush=True)
started = time.monotonic()
warehouse.replace_partition(ATTENDANCE, week_rows("c9", FIRST_WEEK), {"company_id": "c9"}, FIRST_WEEK)
print(f"wrote after {time.monotonic() - started:.2f}", flush=True)
"""


def test_a_kept_open_block_lets_the_file_go_at_the_end_of_its_period_when_another_process_waits(
    tmp_path: Path,
) -> None:
    """Another run's write waiting for the file says so; the block lets the file go at the end of
    its period, and the writer gets in while the block goes on."""
    path = tmp_path / "warehouse.duckdb"
    warehouse = Warehouse(url=str(path))
    warehouse.ensure_tables([ATTENDANCE])
    with warehouse.store.kept_open(seconds=0.5):
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        writer = subprocess.Popen(
            [sys.executable, "-c", WAITING_WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=Path.cwd()
        )
        try:
            assert writer.stdout is not None and writer.stdout.readline().strip() == "waiting"
            time.sleep(1.0)  # its first retries say it waits; the period ends meanwhile
            warehouse.replace_partition(ATTENDANCE, week_rows("c1", SECOND_WEEK), {"company_id": "c1"}, SECOND_WEEK)
            # The block's transaction that ended after its period let the file go: the writer gets it.
            out, _ = writer.communicate(timeout=20)
        finally:
            writer.kill()
        assert writer.returncode == 0 and out.startswith("wrote after")
        warehouse.replace_partition(ATTENDANCE, week_rows("c2", FIRST_WEEK), {"company_id": "c2"}, FIRST_WEEK)
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1", "c2", "c9"]
    assert waiting_marker(path).exists()


def test_a_failed_write_in_a_kept_open_block_keeps_the_previous_rows_and_the_next_transaction_works(
    warehouse: Warehouse,
) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    with warehouse.kept_open():
        warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
        before = warehouse.read_table(ATTENDANCE)
        duplicated = week_rows("c1", FIRST_WEEK, version=2)
        duplicated = pd.concat([duplicated, duplicated.tail(1)], ignore_index=True)
        with pytest.raises(WarehouseError, match="attendance"):
            warehouse.replace_partition(ATTENDANCE, duplicated, {"company_id": "c1"}, FIRST_WEEK)
        pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)
        warehouse.replace_partition(ATTENDANCE, week_rows("c2", FIRST_WEEK), {"company_id": "c2"}, FIRST_WEEK)
    assert sorted(set(warehouse.read_table(ATTENDANCE).company_id)) == ["c1", "c2"]


def test_a_kept_open_block_waits_for_the_file_like_any_write(tmp_path: Path) -> None:
    path = tmp_path / "warehouse.duckdb"
    Warehouse(url=str(path)).ensure_tables([ATTENDANCE])
    holder = hold_lock(path, 60.0)
    try:
        kept = Warehouse(url=str(path), lock_timeout_seconds=0.5).kept_open()
        with pytest.raises(WarehouseError, match="stayed locked by another process for 0.5 s"), kept:
            pass
    finally:
        holder.kill()
        holder.wait()
