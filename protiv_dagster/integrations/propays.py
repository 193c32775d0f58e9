"""A company's ProPays as the integration page lists them, read from the warehouse.

On a DuckDB warehouse the page reads the analysts' read-only copy (``warehouse.store.analysts_copy``,
published after every sync), never the file the syncs write: one open of that file by this process
would make a sync wait for it. Before the first publication it falls back to the warehouse itself.
A PostgreSQL warehouse is read directly (readers do not block its writers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import dagster as dg

    from protiv_dagster.warehouse.store import WarehouseStore

# What the page shows of each ProPay; the warehouse's columns of the same names.
COLUMNS = ("propay_id", "name", "status", "budget_hours", "actual_hours", "bonus_pool", "pay_state")
QUERY = (
    f"SELECT {', '.join(COLUMNS)} FROM {{schema}}.propay_opportunities WHERE company_id = ? ORDER BY name, propay_id"
)


class WarehouseUnavailable(Exception):
    """The warehouse could not be read now (locked for longer than its timeout, unreachable)."""


@dataclass(frozen=True)
class ProPayRow:
    propay_id: str
    name: str
    status: str
    budget_hours: float | None
    actual_hours: float
    bonus_pool: float | None
    pay_state: str


def company_propays(
    defs: dg.Definitions, company_id: str, instance: dg.DagsterInstance | None = None
) -> list[ProPayRow]:
    """The company's ProPays, by name; none before its first ProPay computation. ``instance``: a
    threaded caller's Dagster instance (see ``sync.company.built_resources``)."""
    from protiv_dagster.sync.company import built_resources

    with built_resources(defs, "warehouse", instance=instance) as built:
        store: WarehouseStore = built.warehouse.store
    if store.backend == "duckdb":
        rows = _from_analysts_copy(store, company_id)
        if rows is not None:
            return rows
    return _from_warehouse(store, company_id)


def propays_as_of(defs: dg.Definitions, instance: dg.DagsterInstance, company_id: str) -> datetime | None:
    """When what ``company_propays`` reads of the company's ProPays was last written: the analysts'
    copy's last publication on a DuckDB warehouse (the page reads the copy, published after the
    ProPay engine's run), else the company's last ProPay computation; None before either. Two
    indexed reads of the Dagster instance, no warehouse open: the page asks with every status."""
    import dagster as dg

    from protiv_dagster.assets.analysts import ANALYSTS_COPY, publishes_analysts_copy
    from protiv_dagster.tables import PROPAY_OPPORTUNITIES

    if publishes_analysts_copy(defs):
        published = instance.get_latest_materialization_event(ANALYSTS_COPY)
        if published is not None:
            return datetime.fromtimestamp(published.timestamp, UTC)
    computed = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(PROPAY_OPPORTUNITIES.name), asset_partitions=[company_id]), limit=1
    ).records
    return datetime.fromtimestamp(computed[0].timestamp, UTC) if computed else None


def _from_analysts_copy(store: WarehouseStore, company_id: str) -> list[ProPayRow] | None:
    import duckdb

    from protiv_dagster.warehouse.store import analysts_copy

    copy = analysts_copy(store.duckdb_file())
    if not copy.exists():
        return None
    try:
        connection = duckdb.connect(str(copy), read_only=True)
    except duckdb.Error:
        return None  # replaced while opening, or not a database yet: the warehouse answers
    try:
        if not _has_table(connection, store.schema_name):
            return []
        rows = connection.execute(store.with_schema(QUERY), [company_id]).fetchall()
    finally:
        connection.close()
    return [_row(values) for values in rows]


def _has_table(connection, schema_name: str) -> bool:
    found = connection.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = 'propay_opportunities'",
        [schema_name],
    ).fetchone()
    return bool(found and found[0])


def _from_warehouse(store: WarehouseStore, company_id: str) -> list[ProPayRow]:
    from protiv_dagster.warehouse.session import WarehouseError

    try:
        tables = store.query(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
            [store.schema_name, "propay_opportunities"],
        )
        if tables.empty:
            return []
        frame = store.query(QUERY, [company_id])
    except WarehouseError as exc:
        raise WarehouseUnavailable(str(exc)) from None
    return [_row(tuple(values)) for values in frame[list(COLUMNS)].itertuples(index=False)]


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type] # DECIMAL and floats alike
    return None if math.isnan(number) else number


def _row(values: tuple) -> ProPayRow:
    propay_id, name, status, budget_hours, actual_hours, bonus_pool, pay_state = values
    return ProPayRow(
        propay_id=str(propay_id),
        name=str(name),
        status=str(status),
        budget_hours=_number(budget_hours),
        actual_hours=_number(actual_hours) or 0.0,
        bonus_pool=_number(bonus_pool),
        pay_state=str(pay_state),
    )
