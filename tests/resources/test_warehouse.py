"""The Warehouse resource against real DuckDB files and a real PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from protiv_dagster.resources.warehouse import (
    Column,
    PartitionSpool,
    PartitionWrite,
    Table,
    View,
    Warehouse,
    WarehouseError,
    redact_url,
)
from protiv_dagster.settings import WAREHOUSE_URL_VARIABLE

ATTENDANCE = Table(
    name="attendance",
    description="Hours per worker and day; the worker's approved time",
    primary_key=("company_id", "work_date", "worker_id"),
    columns=(
        Column("company_id", "TEXT", nullable=False, description="QuickBooks Time company"),
        Column("work_date", "DATE", nullable=False, description="Day worked, in the company's time zone"),
        Column("worker_id", "BIGINT", nullable=False),
        Column("worker_name", "TEXT", nullable=False, description="Worker's display name"),
        Column("hours", "DOUBLE PRECISION"),
        Column("approved", "BOOLEAN"),
        Column("clock_in", "TIMESTAMPTZ"),
        Column("pay", "NUMERIC(14,2)"),
        Column("rate", "NUMERIC(10,4)"),
    ),
)

JAN_1 = date(2024, 1, 1)
FIRST_WEEK = ("work_date", JAN_1, JAN_1 + timedelta(days=6))
SECOND_WEEK = ("work_date", JAN_1 + timedelta(days=7), JAN_1 + timedelta(days=13))


def week_rows(company: str, date_range: tuple[str, date, date], version: int = 1) -> pd.DataFrame:
    """Two workers on each of the first three days of `date_range`; `version` changes every value."""
    first = date_range[1]
    records = [
        {
            "company_id": company,
            "work_date": first + timedelta(days=day),
            "worker_id": worker,
            "worker_name": f"Worker {worker} v{version}",
            "hours": 7.5 + version,
            "approved": bool(version % 2),
            "clock_in": pd.Timestamp(f"{first + timedelta(days=day)} 07:00", tz="America/Denver"),
            "pay": Decimal("100.25") * version,
            "rate": Decimal("25.1250"),
        }
        for day in range(3)
        for worker in (1, 2)
    ]
    return pd.DataFrame.from_records(records)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Warehouse:
    """An empty warehouse on each backend: a fresh DuckDB file, or a fresh PostgreSQL schema."""
    if request.param == "duckdb":
        return Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return Warehouse(
        url=request.getfixturevalue("postgres_url"), schema_name=request.getfixturevalue("postgres_schema")
    )


def comments(warehouse: Warehouse, table: str) -> tuple[str | None, dict[str, str | None]]:
    """The table comment and the column comments, read from the backend's own catalog."""
    params = [warehouse.schema_name, table]
    if warehouse.backend == "duckdb":
        table_comment = warehouse.query(
            "select comment from duckdb_tables() where schema_name = ? and table_name = ?", params
        )
        column_comments = warehouse.query(
            "select column_name, comment from duckdb_columns() where schema_name = ? and table_name = ?", params
        )
    else:
        table_comment = warehouse.query(
            "select obj_description(c.oid, 'pg_class') as comment from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname = ? and c.relname = ?",
            params,
        )
        column_comments = warehouse.query(
            "select a.attname as column_name, col_description(c.oid, a.attnum) as comment "
            "from pg_attribute a join pg_class c on c.oid = a.attrelid "
            "join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = ? and c.relname = ? and a.attnum > 0 and not a.attisdropped",
            params,
        )
    by_column = {
        row.column_name: None if pd.isna(row.comment) else row.comment for row in column_comments.itertuples()
    }
    return table_comment.comment.iloc[0], by_column


def test_ensure_tables_is_idempotent_and_sets_comments(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    warehouse.ensure_tables([ATTENDANCE])

    assert len(warehouse.read_table(ATTENDANCE)) == 6
    table_comment, column_comments = comments(warehouse, "attendance")
    assert table_comment == "Hours per worker and day; the worker's approved time"
    assert column_comments == {column.name: column.description or None for column in ATTENDANCE.columns}


def test_replace_partition_round_trips_every_type(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    rows = pd.DataFrame(
        {
            "company_id": ["c1", "c1", "c1"],
            # 2024-03-10 is the day Denver moves to daylight saving time.
            "work_date": [date(2024, 3, 9), date(2024, 3, 10), date(2024, 3, 10)],
            "worker_id": [1, 1, 2],
            "worker_name": ["Ann", "Ann", "Bob \"the\" builder\t\\"],
            "hours": [7.5, None, np.nan],
            "approved": [True, False, None],
            "clock_in": pd.to_datetime(["2024-03-09 07:00", "2024-03-10 07:00", None]).tz_localize(
                "America/Denver"
            ),
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
            "worker_name": pd.Series(["Ann", "Ann", "Bob \"the\" builder\t\\"], dtype="str"),
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
    pd.testing.assert_frame_equal(
        after[~replaced].reset_index(drop=True), before[untouched].reset_index(drop=True)
    )


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


def test_an_existing_table_with_other_columns_is_reported_not_migrated(warehouse: Warehouse) -> None:
    warehouse.execute("create schema {schema}")
    warehouse.execute(
        "create table {schema}.attendance (company_id TEXT, work_date DATE, worker_id TEXT, legacy_flag BOOLEAN)"
    )

    with pytest.raises(WarehouseError) as raised:
        warehouse.ensure_tables([ATTENDANCE])

    message = str(raised.value)
    assert f"{warehouse.schema_name}.attendance" in message
    assert "missing columns ['worker_name', 'hours', 'approved', 'clock_in', 'pay', 'rate']" in message
    assert "extra columns ['legacy_flag']" in message
    assert "worker_id is TEXT, declared BIGINT" in message
    unchanged = warehouse.read_table("attendance").columns.tolist()
    assert unchanged == ["company_id", "work_date", "worker_id", "legacy_flag"]


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


def test_bad_urls_and_schema_names_are_refused_without_echoing_the_password() -> None:
    with pytest.raises(ValueError) as raised:
        Warehouse(url="mysql://admin:hunter2@db.example.com/protiv")
    assert "hunter2" not in str(raised.value)
    assert "mysql://admin:***@db.example.com/protiv" in str(raised.value)
    assert "postgresql://" in str(raised.value)

    with pytest.raises(ValueError, match="schema_name"):
        Warehouse(schema_name='protiv"; drop schema protiv; --')

    warehouse = Warehouse(url="postgresql+psycopg://admin:hunter2@db.example.com:5432/protiv")
    assert warehouse.backend == "postgres"
    for shown in (repr(warehouse), str(warehouse), warehouse.describe()):
        assert "hunter2" not in shown
        assert "admin:***@db.example.com:5432/protiv" in shown


@pytest.mark.parametrize(
    ("url", "redacted"),
    [
        ("postgresql://alice:s3cret@db:5432/protiv", "postgresql://alice:***@db:5432/protiv"),
        ("postgresql://alice:p@ss/w:rd@db/protiv", "postgresql://alice:***@db/protiv"),
        ("postgresql://:s3cret@db/protiv", "postgresql://:***@db/protiv"),
        ("postgresql://alice@db/protiv?sslmode=require", "postgresql://alice@db/protiv?sslmode=require"),
        (
            "postgresql://db/protiv?user=alice&password=s3cret&sslmode=require",
            "postgresql://db/protiv?user=alice&password=***&sslmode=require",
        ),
        ("host=db user=alice password='s3 cret' dbname=protiv", "host=db user=alice password=*** dbname=protiv"),
        ("duckdb:///data/warehouse.duckdb", "duckdb:///data/warehouse.duckdb"),
        ("", ""),
    ],
)
def test_redact_url(url: str, redacted: str) -> None:
    assert redact_url(url) == redacted


def test_an_empty_url_means_the_environment_variable_else_the_data_folder_file(
    data_dir: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(WAREHOUSE_URL_VARIABLE, raising=False)
    warehouse = Warehouse()

    warehouse.ensure_tables([ATTENDANCE])

    assert warehouse.backend == "duckdb"
    assert str(Path(data_dir) / "warehouse.duckdb") in warehouse.describe()
    assert (Path(data_dir) / "warehouse.duckdb").is_file()

    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, "postgresql://admin:hunter2@db.example.com/protiv")
    assert warehouse.backend == "postgres"
    assert warehouse.describe() == "PostgreSQL postgresql://admin:***@db.example.com/protiv, schema protiv"
    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, "mysql://admin:hunter2@db.example.com/protiv")
    with pytest.raises(ValueError, match="unrecognised warehouse URL") as raised:
        warehouse.read_table(ATTENDANCE)
    assert "hunter2" not in str(raised.value)


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


def test_the_url_can_come_from_an_env_var_in_dagster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, f"duckdb:///{path}")
    warehouse = Warehouse(url=dg.EnvVar(WAREHOUSE_URL_VARIABLE))

    @dg.asset
    def attendance(warehouse: Warehouse) -> int:
        warehouse.ensure_tables([ATTENDANCE])
        rows = week_rows("c1", FIRST_WEEK)
        return warehouse.replace_partition(ATTENDANCE, rows, {"company_id": "c1"}, FIRST_WEEK)

    result = dg.materialize([attendance], resources={"warehouse": warehouse})

    assert WAREHOUSE_URL_VARIABLE in repr(warehouse)
    assert result.output_for_node("attendance") == 6
    assert len(Warehouse(url=str(path)).read_table(ATTENDANCE)) == 6


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
    rows = lambda *pairs: pd.DataFrame(
        {"company_id": "acme", "entry_id": [p[0] for p in pairs], "work_date": [p[1] for p in pairs]}
    )
    warehouse.replace_partition(table, rows(("1", week1[0]), ("2", week1[1])), {"company_id": "acme"}, ("work_date", *week1))
    # Entry 2 was edited to the next week; week 2 is synced before week 1 is looked at again.
    warehouse.replace_partition(
        table, rows(("2", week2[0]), ("3", week2[1])), {"company_id": "acme"}, ("work_date", *week2), move_rows=True
    )
    result = warehouse.read_table(table)
    assert list(result["entry_id"]) == ["1", "2", "3"]
    assert list(result["work_date"]) == [week1[0], week2[0], week2[1]]


HOURS_PER_COMPANY = View(
    name="hours_per_company",
    description="Hours per company.",
    select="SELECT company_id, CAST(SUM(hours) AS DOUBLE PRECISION) AS hours FROM {schema}.attendance GROUP BY company_id",
    columns=(Column("company_id", "TEXT", True, "Company."), Column("hours", "DOUBLE PRECISION", True, "Hours worked.")),
)


def test_ensure_views_recreates_views_with_comments_and_checks_their_columns(warehouse: Warehouse) -> None:
    warehouse.ensure_tables([ATTENDANCE])
    warehouse.replace_partition(ATTENDANCE, week_rows("c1", FIRST_WEEK), {"company_id": "c1"}, FIRST_WEEK)
    warehouse.ensure_views([HOURS_PER_COMPANY])
    warehouse.ensure_views([HOURS_PER_COMPANY])  # idempotent: dropped and created again
    frame = warehouse.query("select * from {schema}.hours_per_company")
    assert list(frame.columns) == ["company_id", "hours"] and len(frame) == 1
    if warehouse.backend == "postgres":  # DuckDB keeps view comments in duckdb_views(), checked by hand
        _, column_comments = comments(warehouse, "hours_per_company")
        assert column_comments == {"company_id": "Company.", "hours": "Hours worked."}

    # A view whose SQL yields other columns than declared is refused and nothing changes.
    wrong = View(
        name="hours_per_company", description="", select=HOURS_PER_COMPANY.select.replace("AS DOUBLE PRECISION", "AS BIGINT"),
        columns=HOURS_PER_COMPANY.columns,
    )
    with pytest.raises(WarehouseError, match="view hours_per_company yields .*BIGINT.*declared"):
        warehouse.ensure_views([wrong])
    assert warehouse.query("select hours from {schema}.hours_per_company")["hours"].dtype == "float64"


def test_raw_ids_neither_warehouse_can_hold_are_escaped_not_fatal(warehouse: Warehouse) -> None:
    from protiv_dagster.vendors.mapping import storable_text
    from protiv_dagster.tables import RAW_TIMESHEETS

    hostile = "12\x00\ud800"  # NUL breaks PostgreSQL, a lone surrogate breaks DuckDB
    assert storable_text(hostile) == "12\\x00\\ud800" and storable_text("plain-id") == "plain-id"
    warehouse.ensure_tables([RAW_TIMESHEETS])
    monday = date(2026, 11, 16)
    row = {
        "company_id": "acme", "week_start": monday, "provider": "quickbooks_time", "feed": "timesheets",
        "position": 0, "entry_id": storable_text(hostile), "source_modified": None, "payload": "{}",
    }
    frame = pd.DataFrame([row], columns=RAW_TIMESHEETS.column_names)
    assert warehouse.replace_partition(RAW_TIMESHEETS, frame, {"company_id": "acme", "week_start": monday}) == 1
    assert list(warehouse.read_table(RAW_TIMESHEETS)["entry_id"]) == ["12\\x00\\ud800"]


def in_chunks(rows: pd.DataFrame, size: int):
    """`rows` as a generator of chunks of `size` rows, as a paged source produces them."""
    for start in range(0, len(rows), size):
        yield rows.iloc[start : start + size]


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


def test_a_frame_larger_than_a_batch_is_written_whole_or_not_at_all(
    warehouse: Warehouse, monkeypatch: pytest.MonkeyPatch
) -> None:
    from protiv_dagster.resources import warehouse as warehouse_module

    monkeypatch.setattr(warehouse_module, "_BATCH_ROWS", 4)  # 12 rows: three batches
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
