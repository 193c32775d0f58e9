"""GroupedWrites: a run's partition writes committed together, each partition whole, none lost."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from protiv_dagster.assets.common import GroupedWrites, prepare_warehouse, set_aside_write
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.spool import PartitionWrite

COMPANY = "co-grouped"


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    if request.param == "duckdb":
        store = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    else:
        store = Warehouse(
            url=request.getfixturevalue("postgres_url"), schema_name=request.getfixturevalue("postgres_schema")
        )
    prepare_warehouse(store)
    return store


def week(key: str, records: int):
    """The set-aside records of one week: a partition of rejected_rows, as a sync writes it."""
    rows = pd.DataFrame(
        {
            "record_id": [f"{key}-{n}" for n in range(records)],
            "reason": ["hours: greater_than_or_equal_to(0)"] * records,
            "record": ["{}"] * records,
        }
    )
    return [set_aside_write(COMPANY, "attendance", key, rows)]


def stored(warehouse: Warehouse) -> dict[str, int]:
    counts = warehouse.query(
        "SELECT partition_key, count(*) AS n FROM {schema}.rejected_rows WHERE company_id = ? GROUP BY partition_key",
        [COMPANY],
    )
    return dict(zip(counts["partition_key"], counts["n"].astype(int), strict=True))


def test_weeks_are_committed_together_once_they_reach_the_rows_of_a_transaction(warehouse):
    with GroupedWrites(warehouse, rows_per_transaction=5) as grouped:
        grouped.add(week("w1", 2), 2)
        grouped.add(week("w2", 2), 2)
        assert stored(warehouse) == {}  # 4 rows: still gathering
        grouped.add(week("w3", 1), 1)
        assert stored(warehouse) == {"w1": 2, "w2": 2, "w3": 1}  # 5 rows: one transaction
        grouped.add(week("w4", 3), 3)
        assert "w4" not in stored(warehouse)
    assert stored(warehouse) == {"w1": 2, "w2": 2, "w3": 1, "w4": 3}
    assert grouped.written == [2, 2, 1, 3]


def test_a_week_as_large_as_a_transaction_is_written_at_once(warehouse):
    with GroupedWrites(warehouse, rows_per_transaction=3) as grouped:
        grouped.add(week("big", 4), 4)
        assert stored(warehouse) == {"big": 4}


def test_a_large_week_goes_alone_not_with_the_small_weeks_before_it(warehouse):
    """Its transaction holds only its own rows (the memory bound), and the small weeks are committed
    before it: its failure leaves them written."""
    other = set_aside_write("co-other", "attendance", "big", week("big", 6)[0].rows)
    large_and_bad = PartitionWrite(other.table, other.rows, {**other.partition, "company_id": COMPANY})
    with pytest.raises(ValueError, match="outside the partition"), GroupedWrites(warehouse, 5) as grouped:
        grouped.add(week("w1", 2), 2)
        grouped.add([large_and_bad], 6)
    assert stored(warehouse) == {"w1": 2}


def test_the_weeks_done_before_a_failure_are_kept(warehouse):
    """As when each week had its own transaction: a week failing to map loses none before it."""
    with pytest.raises(ValueError, match="a malformed payload"), GroupedWrites(warehouse) as grouped:
        grouped.add(week("w1", 2), 2)
        raise ValueError("a malformed payload in the week after")
    assert stored(warehouse) == {"w1": 2}


def test_a_group_that_cannot_be_written_writes_none_of_its_partitions(warehouse):
    """Each partition is replaced whole or not at all: a bad write rolls back its whole group, and
    the previous rows of every partition in it stay."""
    with GroupedWrites(warehouse) as grouped:
        grouped.add(week("w1", 1), 1)
    other = set_aside_write("co-other", "attendance", "w2", week("w2", 1)[0].rows)
    # Another company's rows under this company's partition: refused before anything is written.
    bad = PartitionWrite(other.table, other.rows, {**other.partition, "company_id": COMPANY})
    with pytest.raises(ValueError, match="outside the partition"), GroupedWrites(warehouse) as grouped:
        grouped.add(week("w1", 3), 3)
        grouped.add([bad], 1)
    assert stored(warehouse) == {"w1": 1}
