"""Raw layer: time entries exactly as the vendor sent them, one company x ISO week per partition."""

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from protiv_dagster.assets.common import column_schema, company_source, prepare_warehouse, retry_vendor_outages
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.mapping.common import storable_text
from protiv_dagster.partitions import (
    BY_COMPANY,
    company_week_key,
    company_week_partitions,
    consecutive_runs,
    weeks_by_company,
)
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import PartitionSpool, PartitionWrite, Warehouse
from protiv_dagster.sources import Source, pages_by_week
from protiv_dagster.tables import RAW_TIMESHEETS


def raw_rows(
    company_id: str, monday: date, source: Source, feed: str, records: list[dict], first_position: int
) -> pd.DataFrame:
    """Records of one feed as raw rows: payload encoded once, id and stamp beside it for analysts."""
    id_field, stamp_field = source.feed_fields.get(feed, ("id", None))

    def field_text(record: dict, name: str | None) -> str | None:
        # Vendor ids are stored as received, except NUL and lone surrogates, which neither warehouse
        # can hold: escaped, so one hostile id cannot fail the whole week's raw write.
        value = record.get(name) if name else None
        return None if value is None else storable_text(str(value))

    return pd.DataFrame(
        {
            "company_id": company_id,
            "week_start": monday,
            "provider": source.provider,
            "feed": feed,
            "position": range(first_position, first_position + len(records)),
            "entry_id": [field_text(record, id_field) for record in records],
            "source_modified": [field_text(record, stamp_field) for record in records],
            "payload": [json.dumps(record, sort_keys=True) for record in records],
        },
        columns=RAW_TIMESHEETS.column_names,
    )


class RawWeeks:
    """The raw partitions of one company's consecutive weeks, filled from one vendor query.

    Each week is spooled to disk as its records arrive (``PartitionSpool``), so a window of large
    weeks is never held in memory. Counts per week and feed are kept for the materialization."""

    def __init__(self, company_id: str, mondays: list[date], source: Source) -> None:
        self.company_id, self.mondays, self.source = company_id, mondays, source
        self.spools: dict[date, PartitionSpool] = {}
        self.counts: dict[date, Counter[str]] = {}
        for monday in mondays:
            self.start_over(monday)

    def start_over(self, monday: date) -> None:
        """Drop what was read for the week (a suspicious answer is about to be read again)."""
        if monday in self.spools:
            self.spools[monday].close()
        self.spools[monday] = PartitionSpool(RAW_TIMESHEETS, {"company_id": self.company_id, "week_start": monday})
        self.counts[monday] = Counter()

    def add(self, monday: date, feed: str, records: list[dict]) -> None:
        counts = self.counts[monday]
        self.spools[monday].add(raw_rows(self.company_id, monday, self.source, feed, records, counts[feed]))
        counts[feed] += len(records)

    def read(self, mondays: list[date]) -> None:
        for monday, feed, records in pages_by_week(self.source, mondays):
            self.add(monday, feed, records)

    def live_entries(self, monday: date) -> int:
        return self.counts[monday][self.source.live_feed]

    def writes(self) -> list[PartitionWrite]:
        return [self.spools[monday].write() for monday in self.mondays]

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()


def read_again_where_emptied(
    weeks: RawWeeks, stored_live_entries: Callable[[list[date]], dict[date, int]], log: logging.Logger
) -> list[date]:
    """Read again the weeks whose live feed came back empty although the warehouse holds live
    entries of them; returns those weeks.

    Aspire and BusyBusy answer lists without a count or a "more" flag, so an empty first page reads
    exactly like a window without entries; taken at its word, a vendor glitch would replace weeks of
    paid hours with nothing. A week that really emptied (every entry deleted) reads empty twice and
    is then replaced; the second read costs requests only in that rare case. Consecutive suspicious
    weeks are read again as one window."""
    empty = [monday for monday in weeks.mondays if weeks.live_entries(monday) == 0]
    if not empty:
        return []
    stored = stored_live_entries(empty)
    suspicious = [monday for monday in empty if stored.get(monday, 0) > 0]
    for group in consecutive_runs(suspicious):
        log.warning(
            "%s came back without any %s for %s..%s although the warehouse holds some: reading %s again",
            weeks.source.provider, weeks.source.live_feed, group[0], group[-1] + timedelta(days=6),
            "the week" if len(group) == 1 else f"those {len(group)} weeks",
        )
        for monday in group:
            weeks.start_over(monday)
        weeks.read(group)
    return suspicious


@dg.asset(
    partitions_def=company_week_partitions,
    group_name="raw",
    kinds={"python", "sql"},
    metadata={"dagster/column_schema": column_schema(RAW_TIMESHEETS), "dagster/table_name": "protiv.raw_timesheets"},
    deps=[dg.AssetDep(vendor_connection, partition_mapping=BY_COMPANY)],
    pool="vendor_api",  # runs that call a vendor, however launched (limit: docs/scaling.md)
    # Many weeks in one run: the vendor is asked once for the whole window, not once per week.
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def raw_timesheets(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
) -> None:
    """Every time entry of one company whose work date falls in one ISO week, as received from the
    company's vendor (live entries and the vendor's deleted-entries feed), with ids and modification
    times. Replaced as a whole on every materialization, so re-running is safe. A run over several
    weeks asks the vendor once for all of them and splits the records by work date."""
    prepare_warehouse(warehouse)
    for company_id, mondays in weeks_by_company(context).items():
        source = company_source(context, company_id, registry, vendors)
        for group in consecutive_runs(mondays):
            requests_before = source.request_count
            with retry_vendor_outages(context, vendors):
                weeks = _sync_raw_weeks(context, warehouse, source, company_id, group)
            window = f"{group[0]}..{group[-1] + timedelta(days=6)}"
            requests = source.request_count - requests_before
            context.log.info("%s: raw weeks %s in %d vendor requests", company_id, window, requests)
            for monday, (records, rows) in weeks.items():
                per_feed = {f"{feed}_records": count for feed, count in records.items()}
                context.add_asset_metadata(
                    {
                        "dagster/row_count": rows,
                        "provider": source.provider,
                        # Requests are made for the window, not per week.
                        "vendor_requests": requests,
                        "vendor_window": window,
                        **per_feed,
                    },
                    partition_key=str(company_week_key(company_id, monday.isoformat())),
                )


def _sync_raw_weeks(
    context: dg.AssetExecutionContext, warehouse: Warehouse, source: Source, company_id: str, mondays: list[date]
) -> dict[date, tuple[Counter[str], int]]:
    """Read consecutive weeks from the vendor, then replace their raw partitions, each in its own
    transaction (a vendor failing mid-window writes nothing); returns each week's records per feed
    and its rows written."""

    def stored_live_entries(empty: list[date]) -> dict[date, int]:
        placeholders = ", ".join("?" for _ in empty)
        counted = warehouse.query(
            "SELECT week_start, count(*) AS n FROM {schema}.raw_timesheets WHERE company_id = ? AND feed = ?"
            f" AND week_start IN ({placeholders}) GROUP BY week_start",
            [company_id, source.live_feed, *empty],
        )
        return {date.fromisoformat(str(week)[:10]): int(n) for week, n in zip(counted["week_start"], counted["n"])}

    weeks = RawWeeks(company_id, mondays, source)
    try:
        weeks.read(mondays)
        read_again_where_emptied(weeks, stored_live_entries, context.log)
        # A transaction per week, as a run of one week: one transaction over a window of large weeks
        # held them all uncommitted at once (a 1 M-row window peaked at 1.2 GiB against 0.8 GiB).
        written = [warehouse.replace_partitions([write])[0] for write in weeks.writes()]
        return {monday: (weeks.counts[monday], rows) for monday, rows in zip(mondays, written)}
    finally:
        weeks.close()
