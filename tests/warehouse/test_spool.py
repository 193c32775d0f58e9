"""Rows spooled to disk before a write: in batches, checked as they are added, written whole or not at all."""

from __future__ import annotations

import pandas as pd
import pytest

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse import spool as spool_module
from protiv_dagster.warehouse.spool import PartitionSpool, PartitionWrite
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, SECOND_WEEK, week_rows


def test_a_frame_larger_than_a_batch_is_written_whole_or_not_at_all(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(spool_module, "_BATCH_ROWS", 4)  # 12 rows: three batches
    warehouse.ensure_tables([ATTENDANCE])
    rows = pd.concat([week_rows("c1", FIRST_WEEK), week_rows("c1", SECOND_WEEK)], ignore_index=True)
    whole_range = ("work_date", FIRST_WEEK[1], SECOND_WEEK[2])

    assert warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"}, whole_range) == 12
    written = warehouse.read_table(ATTENDANCE)
    assert len(written) == 12
    stray = rows.copy()
    stray.loc[11, "company_id"] = "c2"  # in the last batch
    with pytest.raises(ValueError, match="company_id"):
        warehouse.replace_partition(ATTENDANCE, stray, {"company_id": "c1"}, whole_range)
    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), written)


def test_spooled_partitions_filled_interleaved_are_written_like_frames(warehouse: Warehouse) -> None:
    # The raw layer fills several weeks at once from one vendor query, rows of each arriving in turn.
    warehouse.ensure_tables([ATTENDANCE])
    first, second = week_rows("c1", FIRST_WEEK), week_rows("c1", SECOND_WEEK)
    with (
        PartitionSpool(ATTENDANCE, {"company_id": "c1"}, FIRST_WEEK) as week_1,
        PartitionSpool(ATTENDANCE, {"company_id": "c1"}, SECOND_WEEK) as week_2,
    ):
        for start in range(0, 6, 2):
            week_1.add(first.iloc[start : start + 2])
            week_2.add(second.iloc[start : start + 2])
        week_2.add(second.iloc[0:0])  # an empty page adds nothing
        assert (week_1.rows, week_2.rows) == (6, 6)
        assert warehouse.replace_partitions([week_1.write(), week_2.write()]) == [6, 6]

    spooled = warehouse.read_table(ATTENDANCE)
    warehouse.replace_partitions(
        [
            PartitionWrite(ATTENDANCE, first, {"company_id": "c1"}, FIRST_WEEK),
            PartitionWrite(ATTENDANCE, second, {"company_id": "c1"}, SECOND_WEEK),
        ]
    )
    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), spooled)
    assert len(spooled) == 12


def test_a_spooled_row_outside_its_partition_is_refused_when_added_and_nothing_is_written(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    before = warehouse.read_table(ATTENDANCE)
    with PartitionSpool(ATTENDANCE, {"company_id": "c1"}, FIRST_WEEK) as spool:
        spool.add(week_rows("c1", FIRST_WEEK, version=2))
        with pytest.raises(ValueError, match=r"work_date must lie in 2024-01-01..2024-01-07"):
            spool.add(week_rows("c1", SECOND_WEEK, version=2))
    pd.testing.assert_frame_equal(warehouse.read_table(ATTENDANCE), before)
