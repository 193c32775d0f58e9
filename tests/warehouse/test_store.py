"""Partition replaces on real DuckDB files and a real PostgreSQL server: idempotent, other partitions
untouched, and a failure at any point leaves the previous rows in place."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.declarations import Column, Table
from protiv_dagster.warehouse.session import WarehouseError
from protiv_dagster.warehouse.spool import PartitionWrite
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, SECOND_WEEK, in_chunks, week_rows


def test_replacing_a_partition_leaves_other_partitions_untouched(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    for company, week in [("c1", FIRST_WEEK), ("c1", SECOND_WEEK), ("c2", FIRST_WEEK)]:
        warehouse.replace_partition(ATTENDANCE, week_rows(company, week), {"company_id": company}, week)
    before = warehouse.read_table(ATTENDANCE)

    fewer = week_rows("c1", FIRST_WEEK, version=2).head(4)
    warehouse.replace_partition(ATTENDANCE, fewer, {"company_id": "c1"}, FIRST_WEEK)

    after = warehouse.read_table(ATTENDANCE)
    replaced = (after.company_id == "c1") & (after.work_date <= FIRST_WEEK[2])
    assert after[replaced].worker_name.str.endswith("v2").all()
    assert replaced.sum() == 4
    untouched = (before.company_id != "c1") | (before.work_date > FIRST_WEEK[2])
    pd.testing.assert_frame_equal(after[~replaced].reset_index(drop=True), before[untouched].reset_index(drop=True))


def test_replacing_twice_with_the_same_rows_gives_identical_tables(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c2", FIRST_WEEK), {"company_id": "c2"}, FIRST_WEEK)

    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    once = warehouse.read_table(ATTENDANCE)
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), once)
    assert len(once) == 12


@pytest.mark.parametrize("fault", ["duplicate primary key", "NOT NULL violation"])
def test_a_failed_write_keeps_the_previous_partition_rows(warehouse: Warehouse, fault: str) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    before = warehouse.read_table(ATTENDANCE)
    bad = week_rows("c1", FIRST_WEEK, version=2)
    if fault == "duplicate primary key":
        bad = pd.concat([bad, bad.tail(1)], ignore_index=True)
    else:
        bad.loc[len(bad) - 1, "worker_name"] = None

    with pytest.raises(WarehouseError, match="attendance"):
        warehouse.replace_partition(ATTENDANCE, bad, {"company_id": "c1"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)


@pytest.mark.parametrize(
    ("column", "value"),
    [("company_id", "c2"), ("work_date", SECOND_WEEK[1]), ("work_date", None)],
)
def test_a_row_outside_the_partition_is_refused_before_any_change(
    warehouse: Warehouse, column: str, value: object
) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    before = warehouse.read_table(ATTENDANCE)
    stray = week_rows("c1", FIRST_WEEK, version=2)
    stray[column] = stray[column].astype(object)
    stray.loc[2, column] = value

    with pytest.raises(ValueError, match=column):
        warehouse.replace_partition(ATTENDANCE, stray, {"company_id": "c1"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)


def test_move_rows_moves_an_entry_whose_date_changed_partition(warehouse):
    """A time entry edited into another week moves there instead of colliding on its key."""
    table = Table(
        name="entries",
        columns=(
            Column("company_id", "TEXT", nullable=False),
            Column("entry_id", "TEXT", nullable=False),
            Column("work_date", "DATE", nullable=False),
        ),
        primary_key=("company_id", "entry_id"),
    )
    warehouse.ensure_tables([table])
    week1 = (date(2026, 11, 2), date(2026, 11, 8))
    week2 = (date(2026, 11, 9), date(2026, 11, 15))

    def rows(*pairs):
        return pd.DataFrame(
            {"company_id": "acme", "entry_id": [p[0] for p in pairs], "work_date": [p[1] for p in pairs]}
        )

    warehouse.replace_partition(
        table, rows(("1", week1[0]), ("2", week1[1])), {"company_id": "acme"}, ("work_date", *week1)
    )
    # Entry 2 was edited to the next week; week 2 is synced before week 1 is looked at again.
    warehouse.replace_partition(
        table, rows(("2", week2[0]), ("3", week2[1])), {"company_id": "acme"}, ("work_date", *week2), move_rows=True
    )
    result = warehouse.read_table(table)
    assert list(result["entry_id"]) == ["1", "2", "3"]
    assert list(result["work_date"]) == [week1[0], week2[0], week2[1]]


def test_a_partition_written_in_chunks_equals_one_written_whole(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    rows = pd.concat([week_rows("c1", FIRST_WEEK), week_rows("c1", SECOND_WEEK)], ignore_index=True)
    whole_range = ("work_date", FIRST_WEEK[1], SECOND_WEEK[2])
    assert warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"}, whole_range) == 12
    whole = warehouse.read_table(ATTENDANCE)
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK, version=3), {"company_id": "c1"}, whole_range)

    written = warehouse.replace_partition(ATTENDANCE, in_chunks(rows, 5), {"company_id": "c1"}, whole_range)

    assert written == 12
    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), whole)


def test_no_chunks_empty_the_partition(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    warehouse.replace_partition(ATTENDANCE, week_rows("c2", FIRST_WEEK), {"company_id": "c2"}, FIRST_WEEK)

    assert warehouse.replace_partition(ATTENDANCE, iter([]), {"company_id": "c1"}, FIRST_WEEK) == 0

    assert set(warehouse.read_table(ATTENDANCE)["company_id"]) == {"c2"}


def test_a_failure_mid_stream_leaves_the_previous_partition_intact(warehouse: Warehouse) -> None:
    """A source failing after some pages (a vendor outage on page 3) writes nothing at all."""
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    before = warehouse.read_table(ATTENDANCE)

    def pages_then_outage():
        yield from in_chunks(week_rows("c1", FIRST_WEEK, version=2), 2)
        raise ConnectionResetError("the vendor went away on page 4")

    with pytest.raises(ConnectionResetError):
        warehouse.replace_partition(ATTENDANCE, pages_then_outage(), {"company_id": "c1"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)


def test_a_chunk_outside_the_partition_is_refused_and_nothing_is_written(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    before = warehouse.read_table(ATTENDANCE)
    chunks = [week_rows("c1", FIRST_WEEK, version=2).head(3), week_rows("c2", FIRST_WEEK, version=2).tail(3)]

    with pytest.raises(ValueError, match="company_id"):
        warehouse.replace_partition(ATTENDANCE, iter(chunks), {"company_id": "c1"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)


def test_a_duplicate_key_across_chunks_rolls_back_the_whole_partition(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    before = warehouse.read_table(ATTENDANCE)
    again = week_rows("c1", FIRST_WEEK, version=2)

    with pytest.raises(WarehouseError, match="attendance"):
        warehouse.replace_partition(ATTENDANCE, iter([again, again.tail(1)]), {"company_id": "c1"}, FIRST_WEEK)

    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)


def test_several_partitions_of_several_tables_are_replaced_together_or_not_at_all(warehouse: Warehouse) -> None:
    # The ProPay tables are written this way: a failure in the last write keeps every earlier one out.
    workers = Table(
        name="workers_on_call",
        primary_key=("company_id", "worker_id"),
        columns=(Column("company_id", "TEXT", nullable=False), Column("worker_id", "BIGINT", nullable=False)),
    )
    warehouse.ensure_tables([ATTENDANCE, workers])
    roster = pd.DataFrame({"company_id": ["c1", "c1"], "worker_id": [1, 2]})
    counts = warehouse.replace_partitions(
        [
            PartitionWrite(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK),
            PartitionWrite(ATTENDANCE, week_rows("c1", SECOND_WEEK), {"company_id": "c1"}, SECOND_WEEK),
            PartitionWrite(workers, roster, {"company_id": "c1"}),
        ]
    )
    assert counts == [6, 6, 2]
    before = (warehouse.read_table(ATTENDANCE), warehouse.read_table(workers))

    duplicated = pd.DataFrame({"company_id": ["c1", "c1"], "worker_id": [3, 3]})  # breaks the primary key
    with pytest.raises(WarehouseError, match="workers_on_call"):
        warehouse.replace_partitions(
            [
                PartitionWrite(ATTENDANCE, week_rows("c1", FIRST_WEEK, version=2), {"company_id": "c1"}, FIRST_WEEK),
                PartitionWrite(workers, duplicated, {"company_id": "c1"}),
            ]
        )
    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before[0])
    pd.testing.assert_frame_equal(warehouse.read_table(workers), before[1])
