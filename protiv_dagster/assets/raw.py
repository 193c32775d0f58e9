"""Raw layer: time entries exactly as the vendor sent them, one company x ISO week per partition."""


import json

import dagster as dg
import pandas as pd

from protiv_dagster.assets.common import column_schema, company_source, prepare_warehouse, retry_vendor_outages
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.mapping.common import storable_text
from protiv_dagster.partitions import BY_COMPANY, company_week_partitions, split_company_week
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import RAW_TIMESHEETS


@dg.asset(
    partitions_def=company_week_partitions,
    group_name="raw",
    kinds={"python", "sql"},
    metadata={"dagster/column_schema": column_schema(RAW_TIMESHEETS), "dagster/table_name": "protiv.raw_timesheets"},
    deps=[dg.AssetDep(vendor_connection, partition_mapping=BY_COMPANY)],
    pool="vendor_api",  # runs that call a vendor, however launched (limit: docs/scaling.md)
)
def raw_timesheets(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
) -> dg.MaterializeResult:
    """Every time entry of one company whose work date falls in one ISO week, as received from the
    company's vendor (live entries and the vendor's deleted-entries feed), with ids and modification
    times. Replaced as a whole on every materialization, so re-running is safe."""
    company_id, monday, sunday = split_company_week(context)
    prepare_warehouse(warehouse)
    source = company_source(context, company_id, registry, vendors)
    with retry_vendor_outages(context, vendors):
        feeds = source.time_entry_feeds(monday, sunday)
    def field_text(record: dict, name: str | None) -> str | None:
        # Vendor ids are stored as received, except NUL and lone surrogates, which neither warehouse
        # can hold: escaped, so one hostile id cannot fail the whole week's raw write.
        value = record.get(name) if name else None
        return None if value is None else storable_text(str(value))

    rows = [
        {
            "company_id": company_id,
            "week_start": monday,
            "provider": source.provider,
            "feed": feed,
            "position": position,
            "entry_id": field_text(record, source.feed_fields.get(feed, ("id", None))[0]),
            "source_modified": field_text(record, source.feed_fields.get(feed, ("id", None))[1]),
            "payload": json.dumps(record, sort_keys=True),
        }
        for feed, records in feeds.items()
        for position, record in enumerate(records)
    ]
    frame = pd.DataFrame(rows, columns=RAW_TIMESHEETS.column_names)
    written = warehouse.replace_partition(RAW_TIMESHEETS, frame, {"company_id": company_id, "week_start": monday})
    per_feed = {f"{feed}_records": len(records) for feed, records in feeds.items()}
    context.log.info(
        "%s: %s for %s..%s in %d requests", company_id, per_feed, monday, sunday, source.request_count
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "provider": source.provider,
            "vendor_requests": source.request_count,
            **per_feed,
        }
    )
