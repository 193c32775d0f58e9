"""Raw layer: time entries exactly as the vendor sent them, one company x ISO week per partition."""


import json
from collections import Counter
from collections.abc import Iterator

import dagster as dg
import pandas as pd

from protiv_dagster.assets.common import column_schema, company_source, prepare_warehouse, retry_vendor_outages
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.mapping.common import storable_text
from protiv_dagster.partitions import BY_COMPANY, company_week_partitions, split_company_week
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sources import feed_pages
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
    per_feed: Counter[str] = Counter()

    def field_text(record: dict, name: str | None) -> str | None:
        # Vendor ids are stored as received, except NUL and lone surrogates, which neither warehouse
        # can hold: escaped, so one hostile id cannot fail the whole week's raw write.
        value = record.get(name) if name else None
        return None if value is None else storable_text(str(value))

    def chunks() -> Iterator[pd.DataFrame]:
        # Page by page: each page becomes its rows (the payload encoded once) and its records are
        # let go, so a large week is never held as records and rows at once.
        for feed, records in feed_pages(source, monday, sunday):
            id_field, stamp_field = source.feed_fields.get(feed, ("id", None))
            first = per_feed[feed]
            per_feed[feed] += len(records)
            yield pd.DataFrame(
                {
                    "company_id": company_id,
                    "week_start": monday,
                    "provider": source.provider,
                    "feed": feed,
                    "position": range(first, first + len(records)),
                    "entry_id": [field_text(record, id_field) for record in records],
                    "source_modified": [field_text(record, stamp_field) for record in records],
                    "payload": [json.dumps(record, sort_keys=True) for record in records],
                },
                columns=RAW_TIMESHEETS.column_names,
            )

    with retry_vendor_outages(context, vendors):
        written = warehouse.replace_partition(RAW_TIMESHEETS, chunks(), {"company_id": company_id, "week_start": monday})
    per_feed_records = {f"{feed}_records": count for feed, count in per_feed.items()}
    context.log.info(
        "%s: %s for %s..%s in %d requests", company_id, per_feed_records, monday, sunday, source.request_count
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": written,
            "provider": source.provider,
            "vendor_requests": source.request_count,
            **per_feed_records,
        }
    )
