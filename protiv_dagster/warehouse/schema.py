"""The warehouse schema: creating the declared tables and views, and refusing tables that drifted
from their declarations (missing, extra or retyped columns are reported, never migrated silently)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from typing import Any

import pandas as pd

from protiv_dagster.warehouse.declarations import Table, View, quote
from protiv_dagster.warehouse.results import canonical_type
from protiv_dagster.warehouse.session import Session, WarehouseError
from protiv_dagster.warehouse.store import WarehouseStore

log = logging.getLogger(__name__)


def ensure_tables(store: WarehouseStore, tables: Iterable[Table]) -> None:
    """Create the schema and any missing tables, with primary keys, NOT NULLs and comments.

    Idempotent. A table that already exists with other columns (missing, extra or of another
    type) is never migrated silently: WarehouseError names each difference.
    """
    tables = list(tables)
    schema = quote(store.schema_name)
    with store.session("creating tables") as session:
        session.serialize(f"protiv_dagster.warehouse schema {store.schema_name}")
        existing_schemas = session.fetch(
            "SELECT schema_name FROM information_schema.schemata WHERE schema_name = ?", [store.schema_name]
        )
        if existing_schemas.empty:
            session.execute(f"CREATE SCHEMA {schema}")
        problems: list[str] = []
        for table in tables:
            existing = session.fetch(
                "SELECT column_name, data_type, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                [store.schema_name, table.name],
            )
            if existing.empty:
                session.execute(_create_table_sql(schema, table))
                log.info("Created table %s in %s", table.name, store.describe())
            else:
                problems.extend(_differences(store.schema_name, table, existing))
        if problems:
            raise WarehouseError(
                f"tables in {store.describe()} differ from their declarations (nothing was changed; "
                f"migrate them deliberately): " + "; ".join(problems)
            )
        # Set on every run so an edited description reaches the catalog analysts browse.
        for table in tables:
            qualified = f"{schema}.{quote(table.name)}"
            session.execute(f"COMMENT ON TABLE {qualified} IS {session.literal(table.description or None)}")
            for column in table.columns:
                session.execute(
                    f"COMMENT ON COLUMN {qualified}.{quote(column.name)} "
                    f"IS {session.literal(column.description or None)}"
                )


def ensure_views(store: WarehouseStore, views: Iterable[View]) -> None:
    """(Re)create the views, in order, in one transaction, with their comments.

    Views hold no data, so each is dropped and created again: an edited definition always takes
    effect. A view whose columns (names, order, types) differ from its declaration raises
    WarehouseError and nothing changes. The tables they read must exist (``ensure_tables``).

    On PostgreSQL every view is created with ``security_invoker = true``, so it reads the tables
    as the querying role and their row-level security applies (see ``grant_company_analyst``),
    and the SELECT grants a view had are given again to the view created in its place.
    """
    views = list(views)
    schema = quote(store.schema_name)
    postgres = store.backend == "postgres"
    options = " WITH (security_invoker = true)" if postgres else ""
    with store.session("creating views") as session:
        session.serialize(f"protiv_dagster.warehouse schema {store.schema_name}")
        grants = (
            session.fetch(
                "SELECT table_name, grantee FROM information_schema.role_table_grants "
                "WHERE table_schema = ? AND privilege_type = 'SELECT' AND grantee <> current_user",
                [store.schema_name],
            )
            if postgres
            else pd.DataFrame({"table_name": [], "grantee": []})
        )
        # Later views may read earlier ones: drop in reverse order so PostgreSQL sees no dependants.
        for view in reversed(views):
            session.execute(f"DROP VIEW IF EXISTS {schema}.{quote(view.name)}")
        problems: list[str] = []
        for view in views:
            qualified = f"{schema}.{quote(view.name)}"
            session.execute(f"CREATE VIEW {qualified}{options} AS {store.with_schema(view.select).strip()}")
            for grantee in grants.loc[grants["table_name"] == view.name, "grantee"]:
                session.execute(f"GRANT SELECT ON {qualified} TO {quote(grantee)}")
            existing = session.fetch(
                "SELECT column_name, data_type, numeric_precision, numeric_scale "
                "FROM information_schema.columns WHERE table_schema = ? AND table_name = ? "
                "ORDER BY ordinal_position",
                [store.schema_name, view.name],
            )
            actual = _typed_columns(existing)
            declared = [(column.name, column.sql_type) for column in view.columns]
            if actual != declared:
                problems.append(f"view {view.name} yields {actual}, declared {declared}")
            session.execute(f"COMMENT ON VIEW {qualified} IS {session.literal(view.description or None)}")
            for column in view.columns:
                session.execute(
                    f"COMMENT ON COLUMN {qualified}.{quote(column.name)} IS {session.literal(column.description or None)}"
                )
        if problems:
            raise WarehouseError(f"views in {store.describe()} differ from their declarations: " + "; ".join(problems))


def declarations_digest(store: WarehouseStore, tables: Iterable[Table], views: Iterable[View]) -> str:
    """A digest of everything ``ensure_tables`` and ``ensure_views`` make of these declarations in this
    store: names, columns, types, keys, view definitions and every comment."""
    declared = (
        store.backend,
        store.schema_name,
        list(tables),
        [(view, store.with_schema(view.select)) for view in views],
    )
    return "sha256:" + hashlib.sha256(repr(declared).encode()).hexdigest()


def view_definitions(session: Session, store: WarehouseStore) -> dict[str, str]:
    """The schema's views as the catalog holds them: each one's SQL, by name."""
    if store.backend == "postgres":
        sql = "SELECT viewname AS name, definition AS body FROM pg_views WHERE schemaname = ? ORDER BY viewname"
    else:
        sql = (
            "SELECT view_name AS name, sql AS body FROM duckdb_views() WHERE database_name = current_database() "
            "AND schema_name = ? AND NOT internal ORDER BY view_name"
        )
    rows = session.fetch(sql, [store.schema_name])
    return dict(zip(rows["name"], rows["body"]))


def view_definitions_digest(session: Session, store: WarehouseStore) -> str:
    """A digest of ``view_definitions``: a view rewritten by hand with the columns of its declaration
    differs here from the one the last preparation made."""
    return "views-sha256:" + hashlib.sha256(repr(sorted(view_definitions(session, store).items())).encode()).hexdigest()


def columns_as_declared(session: Session, schema_name: str, tables: Iterable[Table], views: Iterable[View]) -> bool:
    """Whether every declared table and view exists with exactly its declared columns and types (one
    catalog query; ``ensure_tables`` and ``ensure_views`` name the differences)."""
    existing = session.fetch(
        "SELECT table_name, column_name, data_type, numeric_precision, numeric_scale "
        "FROM information_schema.columns WHERE table_schema = ? ORDER BY table_name, ordinal_position",
        [schema_name],
    )
    by_relation = {name: frame for name, frame in existing.groupby("table_name", sort=False)}
    for table in tables:
        frame = by_relation.get(table.name)
        if frame is None or _differences(schema_name, table, frame):
            return False
    for view in views:
        frame = by_relation.get(view.name)
        if frame is None:
            return False
        if _typed_columns(frame) != [(column.name, column.sql_type) for column in view.columns]:
            return False
    return True


def _create_table_sql(schema: str, table: Table) -> str:
    columns = [
        f"{quote(column.name)} {column.sql_type}{'' if column.nullable else ' NOT NULL'}" for column in table.columns
    ]
    primary_key = ", ".join(quote(name) for name in table.primary_key)
    return f"CREATE TABLE {schema}.{quote(table.name)} ({', '.join(columns)}, PRIMARY KEY ({primary_key}))"


def _typed_columns(columns: pd.DataFrame) -> list[tuple[str, str]]:
    """(name, type as declared) of information_schema.columns rows, in their order."""
    return [
        (
            str(row.column_name),
            canonical_type(str(row.data_type), _optional_int(row.numeric_precision), _optional_int(row.numeric_scale)),
        )
        for row in columns.itertuples()
    ]


def _optional_int(value: Any) -> int | None:
    """A catalog's precision or scale: None where the catalog has none (NULL, read as NaN)."""
    return None if pd.isna(value) else int(value)


def _differences(schema_name: str, table: Table, existing: pd.DataFrame) -> list[str]:
    """How the existing table's columns differ from `table`'s declaration, one phrase per kind."""
    actual = {
        row.column_name: canonical_type(
            str(row.data_type), _optional_int(row.numeric_precision), _optional_int(row.numeric_scale)
        )
        for row in existing.itertuples()
    }
    declared = {column.name: column.sql_type for column in table.columns}
    missing = [name for name in declared if name not in actual]
    extra = [name for name in actual if name not in declared]
    retyped = [
        f"{name} is {actual[name]}, declared {declared[name]}"
        for name in declared
        if name in actual and actual[name] != declared[name]
    ]
    phrases = []
    if missing:
        phrases.append(f"missing columns {missing}")
    if extra:
        phrases.append(f"extra columns {extra}")
    if retyped:
        phrases.append("changed types (" + ", ".join(retyped) + ")")
    return [f"table {schema_name}.{table.name} has " + ", ".join(phrases)] if phrases else []
