"""What analysts open: the read-only copy of a DuckDB warehouse (see ``warehouse/publish.py``)."""

from __future__ import annotations

import dagster as dg

from protiv_dagster.assets.analytics import analytics_marts
from protiv_dagster.assets.propay import propay_tables
from protiv_dagster.automation.conditions import ANALYSTS_COPY_FOLLOWS_PROPAYS
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.publish import Publication, publish_for_analysts

ANALYSTS_COPY = dg.AssetKey("analysts_database")


def publishes_analysts_copy(defs: dg.Definitions) -> bool:
    """Whether these definitions publish the analysts' copy (a DuckDB warehouse's, see
    ``definitions.build_defs``)."""
    return defs.resolve_asset_graph().has(ANALYSTS_COPY)


def publication_metadata(publication: Publication) -> dict[str, dg.RawMetadataValue]:
    return {
        "path": dg.MetadataValue.path(str(publication.path)),
        "size_mib": round(publication.size_bytes / 2**20, 2),
        "seconds": round(publication.seconds, 3),
    }


@dg.asset(
    key=ANALYSTS_COPY,
    # After the ProPays, and again after the marts (views in the same file) are rebuilt on them.
    deps=[*propay_tables.keys, *analytics_marts.keys],
    group_name="analysts",
    kinds={"duckdb"},
    automation_condition=ANALYSTS_COPY_FOLLOWS_PROPAYS,
)
def analysts_database(warehouse: Warehouse) -> dg.MaterializeResult:
    """The analysts' read-only copy of the DuckDB warehouse (`data/warehouse.analysts.duckdb` beside
    `data/warehouse.duckdb`): every table and view, published after every ProPay update and every rebuild of the marts (schema
    `analytics`) by a checkpoint, a copy and one atomic rename. Analysts open it read-only and never block a sync; an
    open session keeps the copy it opened, a new one sees the latest. (A PostgreSQL warehouse has
    no such asset: analysts query it directly.)"""
    return dg.MaterializeResult(metadata=publication_metadata(publish_for_analysts(warehouse.store)))
