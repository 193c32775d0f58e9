"""Schema revisions of the warehouse: the tables of the ``protiv`` schema (views are made again
whenever a preparation finds them missing or their declarations changed, so they need none).

An Alembic environment shipped in the package (``versions/``: 0001 is the previous release's
warehouse, 0002 what changed since), driven from code; the revision is kept in the schema's
``protiv_warehouse_version`` table, whose comment holds the digest of the declarations the last
preparation made (``prepare``). DuckDB goes through SQLAlchemy's ``duckdb-engine`` dialect for
Alembic (``protiv upgrade`` only); opening the warehouse for a run reads the revision through the
store's own session, so a run worker opens the DuckDB file once. A new revision: write
``versions/000N_<what>.py`` by hand from ``script.py.mako`` (``upgrade(schema)`` gets the schema),
with its backfills in the docstring.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from alembic.ddl.impl import DefaultImpl

from protiv_dagster import migrations
from protiv_dagster.warehouse.declarations import Table, View, quote
from protiv_dagster.warehouse.results import canonical_type
from protiv_dagster.warehouse.schema import (
    columns_as_declared,
    declarations_digest,
    ensure_tables,
    ensure_views,
    view_definitions_digest,
)
from protiv_dagster.warehouse.session import Session, WarehouseError
from protiv_dagster.warehouse.store import WarehouseStore

WAREHOUSE = migrations.Environment(
    what="warehouse", script_location=Path(__file__).parent, version_table="protiv_warehouse_version"
)


class DuckDBImpl(DefaultImpl):
    """Alembic's operations on DuckDB (through duckdb-engine): the defaults, with transactional DDL."""

    __dialect__ = "duckdb"
    transactional_ddl = True


class WarehouseUpgradeRequired(WarehouseError, migrations.UpgradeRequired):
    pass


class WarehouseNewerThanCode(WarehouseError, migrations.NewerThanCode):
    pass


def _lock_key(store: WarehouseStore) -> str:
    # The key `ensure_tables` serialises on: an upgrade and a run creating tables take turns.
    return f"protiv_dagster.warehouse schema {store.schema_name}"


def _project_declarations() -> tuple[list[Table], list[View]]:
    from protiv_dagster.tables import ALL_TABLES
    from protiv_dagster.views import ALL_VIEWS

    return list(ALL_TABLES), list(ALL_VIEWS)


@functools.cache
def _head_shapes() -> dict[str, dict[str, str]]:
    tables, _ = _project_declarations()
    return {table.name: {column.name: column.sql_type for column in table.columns} for table in tables}


def _shapes(rows) -> dict[str, dict[str, str]]:
    """Each project table's columns and types from information_schema rows (table_name, column_name,
    data_type, numeric_precision, numeric_scale), types spelled as declared."""
    shapes: dict[str, dict[str, str]] = {}
    for table_name, column_name, data_type, precision, scale in rows:
        if table_name in _head_shapes():
            shapes.setdefault(table_name, {})[column_name] = canonical_type(
                data_type, None if precision is None else int(precision), None if scale is None else int(scale)
            )
    return shapes


_COLUMNS_SQL = (
    "SELECT c.table_name, c.column_name, c.data_type, c.numeric_precision, c.numeric_scale "
    "FROM information_schema.columns c JOIN information_schema.tables t "
    "ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
    "WHERE c.table_schema = {schema} AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, c.ordinal_position"
)


@functools.cache
def _previous_shapes() -> dict[str, dict[str, str]]:
    """The previous release's tables, from revision 0001 itself (run on an in-memory DuckDB)."""
    from alembic.command import upgrade

    engine = sa.create_engine("duckdb:///:memory:")
    try:
        with engine.begin() as connection:
            upgrade(WAREHOUSE.config(connection, "protiv"), migrations.PREVIOUS_RELEASE)
            return _shapes(connection.execute(sa.text(_COLUMNS_SQL.format(schema="'protiv'"))).all())
    finally:
        engine.dispose()


def _present_shapes(session: Session, schema: str) -> dict[str, dict[str, str]]:
    frame = session.fetch(_COLUMNS_SQL.format(schema="?"), [schema])
    return _shapes(
        (
            row.table_name,
            row.column_name,
            row.data_type,
            *(None if pd.isna(v) else v for v in (row.numeric_precision, row.numeric_scale)),  # type: ignore[arg-type]  # pandas-stubs: a cell is any scalar
        )
        for row in frame.itertuples()
    )


def _current(session: Session, schema: str) -> str | None:
    exists = session.fetch(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, WAREHOUSE.version_table],
    )
    if exists.empty:
        return None
    rows = session.fetch(f"SELECT version_num FROM {quote(schema)}.{quote(WAREHOUSE.version_table)}")
    return None if rows.empty else str(rows["version_num"].iloc[0])


def _refusal(store: WarehouseStore, revision: str | None) -> WarehouseError:
    error = WAREHOUSE.refusal(store.describe(), revision)
    kind = WarehouseNewerThanCode if isinstance(error, migrations.NewerThanCode) else WarehouseUpgradeRequired
    return kind(str(error))


def check(store: WarehouseStore) -> bool:
    """Whether the warehouse must be stamped with the newest revision once its tables are made (a new
    one, or an unversioned one of today's shape). Raises WarehouseUpgradeRequired for an older
    revision or an unversioned warehouse of the previous release's shape (run ``protiv upgrade``),
    WarehouseNewerThanCode for a revision this code does not know. Other drift is left to
    ``ensure_tables``, which names it."""
    with store.session("checking the schema revision") as session:
        revision = _current(session, store.schema_name)
        if revision == WAREHOUSE.head:
            return False
        if revision is not None:
            raise _refusal(store, revision)
        shape = migrations.shape_of(_present_shapes(session, store.schema_name), _head_shapes(), _previous_shapes())
    if shape == migrations.PREVIOUS_SHAPE:
        raise _refusal(store, None)
    return shape in (migrations.EMPTY, migrations.CURRENT_SHAPE)


def _stamp_head(store: WarehouseStore) -> None:
    """Record the newest revision in Alembic's own layout, unless a revision is already there."""
    schema, table = quote(store.schema_name), quote(WAREHOUSE.version_table)
    with store.session("recording the schema revision") as session:
        session.serialize(_lock_key(store))
        session.execute(
            f"CREATE TABLE IF NOT EXISTS {schema}.{table} (version_num VARCHAR(32) NOT NULL, "
            f"CONSTRAINT {quote(WAREHOUSE.version_table + '_pkc')} PRIMARY KEY (version_num))"
        )
        if _current(session, store.schema_name) is None:
            session.execute(f"INSERT INTO {schema}.{table} (version_num) VALUES (?)", [WAREHOUSE.head])


def prepare(store: WarehouseStore, *, remake: bool = False) -> None:
    """Make the project's tables and views where they are missing, at this code's schema revision
    (see ``check``), so any asset can run first.

    Every run process prepares the warehouse before its first write. When the warehouse already is
    what this code declares (the newest revision, every table and view with its declared columns,
    and this code's digest of the declarations, with one of the views' SQL as the catalog holds it,
    recorded by the last preparation), that costs one connection and five catalog reads
    (0.04-0.05 s). Otherwise the tables are checked and made, the
    views dropped and made again with their comments, and the digest recorded on the revision table:
    0.17-0.2 s of DDL under the schema's lock in a fresh run process, which every run process paid
    before (bench/RESULTS.md, issue 20).

    ``remake`` (``protiv upgrade``) takes the second way whatever is recorded: a version older than
    this one, run against the warehouse meanwhile, may have made its own views without recording
    a digest, and views of the same columns look as declared.
    """
    tables, views = _project_declarations()
    digest = declarations_digest(store, tables, views)
    with store.kept_open():  # its five transactions open a DuckDB file once
        if not remake and _prepared_as_declared(store, tables, views, digest):
            return
        stamp = check(store)
        ensure_tables(store, tables)
        ensure_views(store, views)
        if stamp:
            _stamp_head(store)
        _record_digest(store, digest)


def _prepared_as_declared(store: WarehouseStore, tables: list[Table], views: list[View], digest: str) -> bool:
    with store.session("checking the schema") as session:
        return (
            _current(session, store.schema_name) == WAREHOUSE.head
            and _recorded_digest(session, store) == f"{digest} {view_definitions_digest(session, store)}"
            and columns_as_declared(session, store.schema_name, tables, views)
        )


def _recorded_digest(session: Session, store: WarehouseStore) -> str | None:
    """The comment on the revision table, where ``prepare`` records the declarations' digest."""
    if store.backend == "postgres":
        sql = (
            "SELECT obj_description(c.oid, 'pg_class') AS comment FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = ? AND c.relname = ?"
        )
    else:
        sql = "SELECT comment FROM duckdb_tables() WHERE schema_name = ? AND table_name = ?"
    rows = session.fetch(sql, [store.schema_name, WAREHOUSE.version_table])
    return None if rows.empty or pd.isna(rows["comment"].iloc[0]) else str(rows["comment"].iloc[0])


def _record_digest(store: WarehouseStore, digest: str) -> None:
    schema, table = quote(store.schema_name), quote(WAREHOUSE.version_table)
    with store.session("recording the schema's declarations") as session:
        session.serialize(_lock_key(store))
        if _current(session, store.schema_name) == WAREHOUSE.head:  # else the next preparation checks again
            # With the views as the catalog now holds them: one rewritten by hand later is told apart.
            recorded = f"{digest} {view_definitions_digest(session, store)}"
            session.execute(f"COMMENT ON TABLE {schema}.{table} IS {session.literal(recorded)}")


def _engine(store: WarehouseStore) -> sa.Engine:
    target = store._target()
    if target.backend == "duckdb":
        return sa.create_engine(f"duckdb:///{store.duckdb_file()}", poolclass=sa.pool.NullPool)
    return sa.create_engine(
        "postgresql+psycopg://" + (target.location or "").removeprefix("postgresql://"), poolclass=sa.pool.NullPool
    )


def upgrade_warehouse(store: WarehouseStore | None = None) -> migrations.UpgradeResult:
    """Upgrade the warehouse (``PROTIV_WAREHOUSE_URL`` or the data folder's DuckDB file) to this
    code's newest revision in place, every row kept, then make its views again; idempotent."""
    store = store or WarehouseStore()
    database = f"warehouse {store.describe()}"
    engine = _engine(store)
    try:
        # SQLAlchemy's DuckDB driver opens the file itself: through the gate, as every process of ours.
        with (
            store.gated(),
            engine.begin() as connection,
            migrations.postgres_lock(connection, _lock_key(store)),
        ):
            schema = store.schema_name
            revision = WAREHOUSE.current(connection, schema)
            if revision is not None and not WAREHOUSE.knows(revision):
                raise _refusal(store, revision)
            before = revision
            if revision is None:
                present = _shapes(
                    connection.execute(sa.text(_COLUMNS_SQL.format(schema=":schema")), {"schema": schema}).all()
                )
                shape = migrations.shape_of(present, _head_shapes(), _previous_shapes())
                before = f"unversioned ({shape})"
                if shape == migrations.PREVIOUS_SHAPE:
                    WAREHOUSE.stamp(connection, migrations.PREVIOUS_RELEASE, schema)
            if WAREHOUSE.current(connection, schema) is not None:
                WAREHOUSE.upgrade(connection, schema)
    except sa.exc.SQLAlchemyError as exc:
        raise WarehouseError(
            f"upgrading {store.describe()} failed: {type(migrations.database_cause(exc)).__name__}: {migrations.database_cause(exc)}"
        ) from exc
    finally:
        engine.dispose()
    # Tables created where missing (a new warehouse), the drift check, comments, views at today's
    # definitions, and the newest revision recorded where none was.
    prepare(store, remake=True)
    return migrations.UpgradeResult(database, before or "", WAREHOUSE.head)
