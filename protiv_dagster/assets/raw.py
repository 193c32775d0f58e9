"""Raw layer: time entries exactly as the vendor sent them, one company x ISO week per partition."""


import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator

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


def week_pages(
    source, monday, sunday, stored_live_entries: Callable[[], int], log: logging.Logger
) -> Iterator[tuple[str, list[dict]]]:
    """The week's feed pages, read a second time when the live feed comes back empty although the
    warehouse holds live entries of that week.

    Aspire and BusyBusy answer lists without a count or a "more" flag, so an empty first page reads
    exactly like a week without entries; taken at its word, a vendor glitch would replace a week of
    paid hours with nothing. A week that really emptied (every entry deleted) reads empty twice and
    is then replaced; the second read costs requests only in that rare case. Pages of the other
    feeds are held back until a live record arrives (the live feed comes first, so that is at once).
    """
    held: list[tuple[str, list[dict]]] = []
    pages = feed_pages(source, monday, sunday)
    for feed, records in pages:
        if feed == source.live_feed and records:
            yield from held
            yield feed, records
            yield from pages
            return
        held.append((feed, records))
    if stored_live_entries() > 0:
        log.warning(
            "%s came back without any %s for %s..%s although the warehouse holds some: reading the week again",
            source.provider, source.live_feed, monday, sunday,
        )
        held = list(feed_pages(source, monday, sunday))
    yield from held


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

    def stored_live_entries() -> int:
        counted = warehouse.query(
            "SELECT count(*) AS n FROM {schema}.raw_timesheets WHERE company_id = ? AND week_start = ? AND feed = ?",
            [company_id, monday, source.live_feed],
        )
        return int(counted["n"].iloc[0])

    def chunks() -> Iterator[pd.DataFrame]:
        # Page by page: each page becomes its rows (the payload encoded once) and its records are
        # let go, so a large week is never held as records and rows at once.
        for feed, records in week_pages(source, monday, sunday, stored_live_entries, context.log):
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
