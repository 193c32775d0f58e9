"""The warehouse of the previous release upgrades in place, on DuckDB and PostgreSQL.

Old warehouses are built from the previous release's DDL (fixtures/warehouse_5a7857a.*.sql: its
tables and views), with rows in every table; the upgrade keeps every row and value, backfills the
new columns as revision 0002 says, and leaves the schema equal to what today's code creates fresh.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pandas as pd
import psycopg
import pytest

from protiv_dagster.assets.common import prepare_warehouse
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.views import ALL_VIEWS
from protiv_dagster.warehouse import migrations
from protiv_dagster.warehouse.migrations import (
    WAREHOUSE,
    WarehouseNewerThanCode,
    WarehouseUpgradeRequired,
    _project_declarations,
    prepare,
    upgrade_warehouse,
)
from protiv_dagster.warehouse.schema import view_definitions
from protiv_dagster.warehouse.session import WarehouseError
from protiv_dagster.warehouse.store import WarehouseStore
from tests.warehouse.helpers import comments

from .conftest import statements

PASSWORD = "hunter2-secret"


def with_password(url: str) -> str:
    """``url`` with a password, which trust authentication ignores and messages must mask."""
    scheme, _, rest = url.partition("://")
    user, at, host = rest.rpartition("@")
    return f"{scheme}://{(user.partition(':')[0] if at else 'postgres')}:{PASSWORD}@{host}"


@pytest.fixture
def new_store(request, tmp_path):
    """A function making stores of one backend: a DuckDB file, or a fresh schema in PostgreSQL
    (dropped afterwards)."""
    made: list[WarehouseStore] = []

    def make() -> WarehouseStore:
        if request.param == "duckdb":
            store = WarehouseStore(url=str(tmp_path / f"warehouse-{len(made)}.duckdb"))
        else:
            url = request.getfixturevalue("postgres_url")
            store = WarehouseStore(url=with_password(url), schema_name=f"test_{uuid.uuid4().hex[:12]}")
        made.append(store)
        return store

    yield make
    if request.param == "postgres":
        with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
            for store in made:
                conn.execute(f'drop schema if exists "{store.schema_name}" cascade')


both_backends = pytest.mark.parametrize("new_store", ["duckdb", "postgres"], indirect=True)


def old_columns(store: WarehouseStore) -> dict[str, list[tuple[str, str]]]:
    frame = store.query(
        "SELECT table_name, column_name, data_type, numeric_scale FROM information_schema.columns c "
        "WHERE table_schema = ? AND table_name IN (SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = ? AND table_type = 'BASE TABLE') ORDER BY table_name, ordinal_position",
        [store.schema_name, store.schema_name],
    )
    columns: dict[str, list[tuple[str, str]]] = {}
    for row in frame.itertuples():
        columns.setdefault(row.table_name, []).append((row.column_name, row.data_type.upper(), row.numeric_scale))
    return columns


def value(column: str, data_type: str, scale, i: int) -> object:
    if data_type in ("TEXT", "VARCHAR", "CHARACTER VARYING"):
        return f"{column}-{i}"
    if data_type == "BIGINT":
        return 1000 + i
    if data_type in ("DOUBLE", "DOUBLE PRECISION"):
        return 1.5 + i
    if data_type == "BOOLEAN":
        return i % 2 == 0
    if data_type == "DATE":
        return date(2026, 11, 2 + i)
    if data_type.startswith("TIMESTAMP"):
        return datetime(2026, 11, 2, 8, tzinfo=UTC) + timedelta(hours=i)
    if data_type.startswith(("DECIMAL", "NUMERIC")):
        return Decimal(12 + i) + Decimal(34) / 10 ** int(scale) if int(scale) else Decimal(12 + i)
    raise AssertionError(f"no test value for {column} {data_type}")


# Old values the backfills read, per table and row.
OVERRIDES = {
    "propay_opportunities": [
        {
            "budget_type": "hours",
            "budget_hours": 40.0,
            "status": "completed",
            "bonus_pool": Decimal("12.34"),
            "actual_hours": 1.5,
        },
        {
            "budget_type": "amount",
            "budget_amount": Decimal("500.00"),
            "status": "started",
            "bonus_pool": Decimal("0.00"),
            "actual_hours": 2.25,
            "exclusion_reason": "an exclusion rule",
        },
    ],
    "propay_worker_bonuses": [
        {"bucket": "crew", "bonus": Decimal("10.00"), "hours": 1.5},
        {"bucket": "crew_lead", "bonus": Decimal("20.00"), "hours": 2.5},
    ],
    "propay_overtime_weeks": [
        {"hours_worked": 41.5, "overtime_hours": 1.5},
        {"hours_worked": 38.0, "overtime_hours": 0.0},
    ],
}


def build_previous_release(store: WarehouseStore) -> dict[str, pd.DataFrame]:
    """The previous release's warehouse with two rows in each table; returns every table as read back."""
    backend = "duckdb" if store.backend == "duckdb" else "postgresql"
    with store.session("building the previous release") as session:
        for statement in statements(f"warehouse_5a7857a.{backend}.sql", store.schema_name):
            session.execute(statement)
    columns = old_columns(store)
    assert len(columns) == 8
    with store.session("old rows") as session:
        for table, table_columns in columns.items():
            for i in range(2):
                row = {name: value(name, data_type, scale, i) for name, data_type, scale in table_columns}
                row.update(OVERRIDES.get(table, [{}, {}])[i])
                names = ", ".join(f'"{name}"' for name in row)
                session.execute(
                    f'INSERT INTO "{store.schema_name}"."{table}" ({names}) VALUES ({", ".join("?" for _ in row)})',
                    list(row.values()),
                )
    return read_tables(store, columns)


def read_tables(store: WarehouseStore, columns: dict[str, list[tuple[str, str, object]]]) -> dict[str, pd.DataFrame]:
    return {
        table: store.query(
            f'SELECT {", ".join(name for name, _, _ in table_columns)} FROM "{store.schema_name}"."{table}" '
            f"ORDER BY {table_columns[1][0]}, {table_columns[2][0]}, {table_columns[3][0]}"
        )
        for table, table_columns in columns.items()
    }


def schema_of(store: WarehouseStore) -> dict:
    """Tables and views with their columns (type, nullability) and primary keys, in name order."""
    columns = store.query(
        "SELECT c.table_name, t.table_type, c.column_name, c.data_type, c.numeric_precision, c.numeric_scale, "
        "c.is_nullable FROM information_schema.columns c JOIN information_schema.tables t "
        "ON t.table_schema = c.table_schema AND t.table_name = c.table_name WHERE c.table_schema = ?",
        [store.schema_name],
    )
    keys = store.query(
        "SELECT k.table_name, k.column_name, k.ordinal_position FROM information_schema.table_constraints c "
        "JOIN information_schema.key_column_usage k ON k.constraint_schema = c.constraint_schema "
        "AND k.constraint_name = c.constraint_name AND k.table_name = c.table_name "
        "WHERE c.table_schema = ? AND c.constraint_type = 'PRIMARY KEY'",
        [store.schema_name],
    )
    shape: dict = {}
    for row in columns.itertuples():
        entry = shape.setdefault(row.table_name, {"kind": row.table_type, "columns": {}, "primary_key": []})
        entry["columns"][row.column_name] = (
            row.data_type.upper(),
            None if pd.isna(row.numeric_precision) else int(row.numeric_precision),
            None if pd.isna(row.numeric_scale) else int(row.numeric_scale),
            row.is_nullable,
        )
    for row in keys.sort_values(["table_name", "ordinal_position"]).itertuples():
        shape[row.table_name]["primary_key"].append(row.column_name)
    return shape


@both_backends
def test_a_previous_release_warehouse_is_refused_then_upgraded_with_every_row(new_store):
    store = new_store()
    before = build_previous_release(store)

    # Startup: the assets' preparation and the library both say to run the upgrade, password masked.
    for opening in (
        lambda: prepare(store),
        lambda: prepare_warehouse(Warehouse(url=store.url, schema_name=store.schema_name)),
    ):
        with pytest.raises(WarehouseUpgradeRequired) as refused:
            opening()
        message = str(refused.value)
        assert "run `protiv upgrade`" in message and "previous release" in message and store.schema_name in message
        assert PASSWORD not in message

    result = upgrade_warehouse(store)
    assert (result.before, result.after) == ("unversioned (previous release's shape)", WAREHOUSE.head)
    again = upgrade_warehouse(store)
    assert (again.before, again.after) == (WAREHOUSE.head, WAREHOUSE.head) and not again.changed

    # The schema is what today's code makes fresh (new columns come last: compared by name).
    fresh = new_store()
    prepare(fresh)
    assert schema_of(store) == schema_of(fresh)
    prepare(store)  # no drift error, no refusal

    # Every old row and value is still there.
    after = read_tables(store, old_columns_of(before))
    for table, rows in before.items():
        pd.testing.assert_frame_equal(after[table], rows, check_dtype=True, obj=table)

    # The backfills of revision 0002.
    opportunities = (
        store.query(
            f"SELECT settings_version, pay_state, no_bonus_reason, began_before_pull_date, actual_seconds, budget_unit, "
            f"budget_numerator, budget_denominator, labor_cost_numerator, labor_cost_denominator "
            f'FROM "{store.schema_name}".propay_opportunities ORDER BY actual_seconds'
        )
        .astype(object)
        .where(lambda frame: frame.notna(), None)
    )
    assert opportunities.values.tolist() == [
        [1, "final", None, False, 5400, "hours", Decimal(40_000_000), Decimal(1_000_000), None, None],
        [1, "none", "excluded", False, 8100, "dollars", Decimal(50_000), Decimal(100), None, None],
    ]
    bonuses = (
        store.query(
            f"SELECT settings_version, seconds, wage_count, crew_share, role_bucket_share, role_buckets_held "
            f'FROM "{store.schema_name}".propay_worker_bonuses ORDER BY seconds'
        )
        .astype(object)
        .where(lambda frame: frame.notna(), None)
    )
    assert bonuses.values.tolist() == [
        [1, 5400, 1, Decimal("10.00"), Decimal("0.00"), None],
        [1, 9000, 1, Decimal("0.00"), Decimal("20.00"), "crew_lead"],
    ]
    weeks = store.query(
        f'SELECT settings_version, seconds_worked, overtime_seconds FROM "{store.schema_name}".propay_overtime_weeks '
        "ORDER BY seconds_worked"
    )
    assert weeks.values.tolist() == [[1, 136800, 0], [1, 149400, 5400]]
    for table, column in (("attendance", "task_id"), ("jobs", "created_date")):
        assert (
            store.query(f'SELECT count(*) AS n FROM "{store.schema_name}".{table} WHERE {column} IS NULL')["n"][0] == 2
        )


def old_columns_of(tables: dict[str, pd.DataFrame]) -> dict[str, list[tuple[str, str, object]]]:
    return {table: [(name, "", None) for name in frame.columns] for table, frame in tables.items()}


@both_backends
def test_a_new_warehouse_is_created_at_the_newest_revision(new_store):
    store = new_store()
    prepare(store)
    version = store.query(f'SELECT version_num FROM "{store.schema_name}".{WAREHOUSE.version_table}')
    assert version["version_num"].tolist() == [WAREHOUSE.head]
    prepare(store)
    result = upgrade_warehouse(store)
    assert result.before == result.after == WAREHOUSE.head


@both_backends
def test_a_newer_or_hand_edited_warehouse_says_so(new_store):
    newer = new_store()
    prepare(newer)
    newer.execute(f"UPDATE {{schema}}.{WAREHOUSE.version_table} SET version_num = '0099'")
    for attempt in (prepare, upgrade_warehouse):
        with pytest.raises(
            WarehouseNewerThanCode, match="schema revision 0099, which this version of protiv_dagster does not know"
        ):
            attempt(newer)

    edited = new_store()
    build_previous_release(edited)
    edited.execute('ALTER TABLE {schema}.workers ADD COLUMN "nickname" TEXT')
    for attempt in (prepare, upgrade_warehouse):
        with pytest.raises(
            WarehouseError, match=r"differ from their declarations.*workers has extra columns \['nickname'\]"
        ):
            attempt(edited)


def view_comments(store: WarehouseStore) -> dict[str, str | None]:
    """Each view of the schema and its comment, from the backend's own catalog."""
    if store.backend == "duckdb":
        sql = "SELECT view_name AS name, comment FROM duckdb_views() WHERE schema_name = ?"
    else:
        sql = (
            "SELECT c.relname AS name, obj_description(c.oid, 'pg_class') AS comment FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relkind = 'v'"
        )
    frame = store.query(sql, [store.schema_name])
    return {str(row.name): None if pd.isna(row.comment) else str(row.comment) for row in frame.itertuples()}


def view_definition(store: WarehouseStore, name: str) -> str:
    """A view's SQL as the catalog holds it."""
    with store.session("reading a view") as session:
        return view_definitions(session, store)[name]


@both_backends
def test_a_warehouse_as_declared_is_prepared_without_ddl_and_any_difference_is_made_again(new_store, monkeypatch):
    """Every run process prepares the warehouse: when it already is what the code declares, nothing is
    dropped, made or commented again (a comment set by hand stays); a view dropped by hand, or an
    edited declaration, has the views made again."""
    store = new_store()
    prepare(store)
    declared = {view.name: view.description for view in ALL_VIEWS}
    assert view_comments(store) == declared
    first, last = ALL_VIEWS[0].name, ALL_VIEWS[-1].name
    store.execute(f"COMMENT ON VIEW {{schema}}.\"{first}\" IS 'set by hand'")
    prepare(store)
    assert view_comments(store) == {**declared, first: "set by hand"}
    # `protiv upgrade` makes them again whatever is recorded (an older version may have run meanwhile).
    upgrade_warehouse(store)
    assert view_comments(store) == declared
    store.execute(f"COMMENT ON VIEW {{schema}}.\"{first}\" IS 'set by hand'")

    # A view dropped by hand: the next preparation makes the views again.
    store.execute(f'DROP VIEW {{schema}}."{last}"')
    prepare(store)
    assert view_comments(store) == declared

    # A view rewritten by hand with the same columns (here: one that shows no rows): made again too.
    made = view_definition(store, last)
    select = next(view.select for view in ALL_VIEWS if view.name == last)
    store.execute(f'CREATE OR REPLACE VIEW {{schema}}."{last}" AS SELECT * FROM ({select}) AS declared WHERE false')
    assert view_definition(store, last) != made
    prepare(store)
    assert view_definition(store, last) == made
    assert view_comments(store) == declared

    # An edited description reaches the catalog although every column is as declared.
    store.execute(f"COMMENT ON VIEW {{schema}}.\"{first}\" IS 'set by hand'")
    tables, views = _project_declarations()
    edited = [replace(table, description="Edited.") if table.name == "workers" else table for table in tables]
    monkeypatch.setattr(migrations, "_project_declarations", lambda: (edited, views))
    prepare(store)
    assert comments(Warehouse(url=store.url, schema_name=store.schema_name), "workers")[0] == "Edited."
    assert view_comments(store) == declared

    # A table edited by hand is still named, as before: the quick check does not hide drift.
    store.execute('ALTER TABLE {schema}.workers ADD COLUMN "nickname" TEXT')
    with pytest.raises(WarehouseError, match=r"workers has extra columns \['nickname'\]"):
        prepare(store)
