"""DataFrame cells written to real DuckDB files and a real PostgreSQL server: every type round-trips,
and a cell that does not fit its column is refused before the database is touched."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from protiv_dagster.resources.warehouse import Warehouse
from tests.warehouse.helpers import ATTENDANCE, FIRST_WEEK, week_rows


def test_replace_partition_round_trips_every_type(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    rows = pd.DataFrame(
        {
            "company_id": ["c1", "c1", "c1"],
            # 2024-03-10 is the day Denver moves to daylight saving time.
            "work_date": [date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 10)],
            "worker_id": [1, 1, 2],
            "worker_name": ["Ann", "Ann", 'Bob "the" builder\t\\'],
            "hours": [7.5, None, np.nan],
            "approved": [True, False, None],
            "clock_in": pd.to_datetime(["2024-03-09 07:00", "2024-03-10 07:00", None]).tz_localize("America/Denver"),
            "pay": [Decimal("123.45"), 0.1 + 0.2, None],
            "rate": [Decimal("12.34565"), 3, pd.NA],
            "not_a_column": ["ignored", "ignored", "ignored"],
        }
    )

    inserted = warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"})

    expected = pd.DataFrame(
        {
            "company_id": pd.Series(["c1", "c1", "c1"], dtype="str"),
            "work_date": pd.Series([date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 10)], dtype=object),
            "worker_id": pd.Series([1, 1, 2], dtype="Int64"),
            "worker_name": pd.Series(["Ann", "Ann", 'Bob "the" builder\t\\'], dtype="str"),
            "hours": pd.Series([7.5, np.nan, np.nan], dtype="float64"),
            "approved": pd.Series([True, False, None], dtype="boolean"),
            "clock_in": pd.Series(
                [pd.Timestamp("2024-03-09 14:00", tz="UTC"), pd.Timestamp("2024-03-10 13:00", tz="UTC"), pd.NaT],
                dtype="datetime64[us, UTC]",
            ),
            "pay": pd.Series([Decimal("123.45"), Decimal("0.30"), None], dtype=object),
            "rate": pd.Series([Decimal("12.3457"), Decimal("3.0000"), None], dtype=object),
        }
    )
    result = warehouse.read_table(ATTENDANCE)
    assert inserted == 3
    pd.testing.assert_frame_equal(result, expected)
    # Decimal("0.3") == Decimal("0.30"), so the declared scale is checked on the text.
    assert [str(value) for value in result.pay] == ["123.45", "0.30", "None"]
    assert [str(value) for value in result.rate] == ["12.3457", "3.0000", "None"]
    assert all(type(value) is date for value in result.work_date)


def test_replace_partition_accepts_datetime64_dates(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    rows = week_rows("c1", FIRST_WEEK)
    rows["work_date"] = pd.to_datetime(rows["work_date"])

    warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"}, FIRST_WEEK)

    assert warehouse.read_table(ATTENDANCE).work_date.tolist() == sorted(week_rows("c1", FIRST_WEEK).work_date)


def test_bad_rows_are_refused_without_contacting_the_database(tmp_path: Path) -> None:
    # Neither warehouse exists: only checks made before connecting can produce these errors.
    unreachable = [
        Warehouse(url="postgresql://nobody:secret@127.0.0.1:1/nowhere"),
        Warehouse(url=str(tmp_path / "missing" / "warehouse.duckdb")),
    ]
    rows = week_rows("c1", FIRST_WEEK)
    for warehouse in unreachable:
        with pytest.raises(ValueError, match="company_id"):
            warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c2"})
        with pytest.raises(ValueError, match=r"lack columns \['rate'\]"):
            warehouse.replace_partition(ATTENDANCE, rows.drop(columns="rate"), {"company_id": "c1"})
        with pytest.raises(ValueError, match="clock_in"):
            warehouse.replace_partition(
                ATTENDANCE, rows.assign(clock_in=pd.Timestamp("2024-01-01 07:00")), {"company_id": "c1"}
            )
        with pytest.raises(ValueError, match=r"NUMERIC\(14,2\)"):
            warehouse.replace_partition(ATTENDANCE, rows.assign(pay=Decimal("1e12")), {"company_id": "c1"})
        with pytest.raises(ValueError, match="needs partition columns"):
            warehouse.replace_partition(ATTENDANCE, rows, {})
    assert not (tmp_path / "missing").exists()


def test_an_injection_looking_company_id_is_stored_verbatim(warehouse: Warehouse) -> None:
    evil = "x'; drop table attendance; --"
    warehouse.ensure_tables([ATTENDANCE])
    rows = week_rows(evil, FIRST_WEEK).assign(worker_name="Robert'); DROP TABLE attendance;--")

    warehouse.replace_partition(ATTENDANCE, rows, {"company_id": evil}, FIRST_WEEK)
    warehouse.replace_partition(ATTENDANCE, rows, {"company_id": evil}, FIRST_WEEK)

    stored = warehouse.read_table(ATTENDANCE, where={"company_id": evil})
    assert len(stored) == 6
    assert set(stored.company_id) == {evil}
    assert set(stored.worker_name) == {"Robert'); DROP TABLE attendance;--"}
    counted = warehouse.query("select count(*) as n from {schema}.attendance where company_id = ?", [evil])
    assert counted.n.tolist() == [6]


def test_raw_ids_neither_warehouse_can_hold_are_escaped_not_fatal(warehouse: Warehouse) -> None:
    from protiv_dagster.tables import RAW_TIMESHEETS
    from protiv_dagster.vendors.mapping import storable_text

    hostile = "12\x00\ud800"  # NUL breaks PostgreSQL, a lone surrogate breaks DuckDB
    assert storable_text(hostile) == "12\\x00\\ud800" and storable_text("plain-id") == "plain-id"
    warehouse.ensure_tables([RAW_TIMESHEETS])
    monday = date(2026, 11, 16)
    row = {
        "company_id": "acme",
        "week_start": monday,
        "provider": "quickbooks_time",
        "feed": "timesheets",
        "position": 0,
        "entry_id": storable_text(hostile),
        "source_modified": None,
        "payload": "{}",
    }
    frame = pd.DataFrame([row], columns=RAW_TIMESHEETS.column_names)
    assert warehouse.replace_partition(RAW_TIMESHEETS, frame, {"company_id": "acme", "week_start": monday}) == 1
    assert list(warehouse.read_table(RAW_TIMESHEETS)["entry_id"]) == ["12\\x00\\ud800"]
