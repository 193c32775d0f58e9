"""Raw layer: time entries exactly as the vendor sent them, one company x ISO week per partition."""

import json
import logging
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from protiv_dagster.assets.common import (
    GroupedWrites,
    column_schema,
    company_source,
    prepare_warehouse,
    retry_vendor_outages,
    weeks_before_pull_date,
)
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.partitions import (
    BY_COMPANY,
    company_week_key,
    company_week_partitions,
    consecutive_runs,
    weeks_by_company,
)
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import RAW_TIMESHEETS
from protiv_dagster.vendors.base import Source, pages_by_week
from protiv_dagster.vendors.http import VendorPayloadError
from protiv_dagster.vendors.mapping import storable_text
from protiv_dagster.vendors.registry import label as vendor_label
from protiv_dagster.warehouse.spool import PartitionSpool, PartitionWrite


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

    def __init__(self, company_id: str, mondays: list[date], source: Source, pull_date: date | None = None) -> None:
        self.company_id, self.mondays, self.source, self.pull_date = company_id, mondays, source, pull_date
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
        for monday, feed, records in pages_by_week(self.source, mondays, self.pull_date):
            self.add(monday, feed, records)

    def live_entries(self, monday: date) -> int:
        return self.counts[monday][self.source.live_feed]

    def writes(self) -> list[PartitionWrite]:
        return [self.spools[monday].write() for monday in self.mondays]

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()


def read_again_where_emptied(
    weeks: RawWeeks, stored_live_ids: Callable[[list[date]], dict[date, list[str]]], log: logging.Logger
) -> list[date]:
    """Read again the weeks whose live feed came back empty although the warehouse holds live
    entries of them; returns those weeks.

    Aspire and BusyBusy answer lists without a count or a "more" flag, so an empty first page reads
    exactly like a window without entries; taken at its word, a vendor glitch would replace weeks of
    paid hours with nothing. Consecutive suspicious weeks are read again as one window. A week that
    reads empty twice is replaced only when the vendor confirms it, asked for the stored entries by
    id (``Source.live_entries``): every one of them deleted, or dated in another week now. A vendor
    that still lists one of them as live in that week contradicts its own empty listing, and the
    sync fails with the week named: an answer is not believed just because it came twice."""
    empty = [monday for monday in weeks.mondays if weeks.live_entries(monday) == 0]
    if not empty:
        return []
    stored = stored_live_ids(empty)
    suspicious = [monday for monday in empty if stored.get(monday)]
    for group in consecutive_runs(suspicious):
        log.warning(
            "%s came back without any %s for %s..%s although the warehouse holds some: reading %s again",
            weeks.source.provider,
            weeks.source.live_feed,
            group[0],
            group[-1] + timedelta(days=6),
            "the week" if len(group) == 1 else f"those {len(group)} weeks",
        )
        for monday in group:
            weeks.start_over(monday)
        weeks.read(group)
    still_empty = [monday for monday in suspicious if weeks.live_entries(monday) == 0]
    if still_empty:
        confirm_emptied(weeks.source, {monday: stored[monday] for monday in still_empty}, weeks.pull_date)
    return suspicious


def confirm_emptied(source: Source, stored: dict[date, list[str]], pull_date: date | None = None) -> None:
    """Raise unless the vendor, asked by id, holds none of each week's stored entries live in that
    week any more (see ``read_again_where_emptied``); an entry dated before the pull date (stored by
    an older version, which kept the pull date's whole week) is not synced, so it contradicts nothing."""
    live = source.live_entries(sorted({entry_id for ids in stored.values() for entry_id in ids}))
    for monday, ids in stored.items():
        sunday = monday + timedelta(days=6)
        first = max(monday, pull_date) if pull_date is not None else monday
        contradicting = [
            entry_id for entry_id in ids if (day := live.get(entry_id)) is not None and first <= day <= sunday
        ]
        if contradicting:
            raise VendorPayloadError(
                vendor_label(source.provider),
                f"the {source.live_feed} listing of {monday}..{sunday} came back empty twice, yet {len(contradicting)} "
                f"of the {len(ids)} entries stored for that week are still live there when asked by id (e.g. "
                f"{contradicting[0]}): refusing to replace the week with nothing; every table is left as it was",
            )


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
    times. Nothing dated before the company's attendance pull date: the pull date's week holds only
    its days from the pull date on. Replaced as a whole on every materialization, so re-running is
    safe. A run over several weeks asks the vendor once for all of them and splits the records by
    work date."""
    prepare_warehouse(warehouse)
    for company_id, mondays in weeks_by_company(context).items():
        source = company_source(context, company_id, registry, vendors)
        pull_date = registry.get(company_id).attendance_pull_date
        before, due = weeks_before_pull_date(mondays, pull_date)
        if before:
            empty = pd.DataFrame(columns=RAW_TIMESHEETS.column_names)
            warehouse.replace_partitions(
                [
                    PartitionWrite(RAW_TIMESHEETS, empty, {"company_id": company_id, "week_start": monday})
                    for monday in before
                ]
            )
            context.log.info(
                "%s: %d weeks before the pull date %s cleared, vendor not asked", company_id, len(before), pull_date
            )
            for monday in before:
                context.add_asset_metadata(
                    {"dagster/row_count": 0, "provider": source.provider, "before_pull_date": True},
                    partition_key=str(company_week_key(company_id, monday.isoformat())),
                )
        for group in consecutive_runs(due):
            requests_before = source.request_count
            with retry_vendor_outages(context, vendors):
                weeks = _sync_raw_weeks(context, warehouse, source, company_id, group, pull_date)
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
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    source: Source,
    company_id: str,
    mondays: list[date],
    pull_date: date | None = None,
) -> dict[date, tuple[Counter[str], int]]:
    """Read consecutive weeks from the vendor, then replace their raw partitions, weeks together in
    transactions of up to about 25,000 rows (a vendor failing mid-window writes nothing); returns
    each week's records per feed and its rows written."""

    def stored_live_ids(empty: list[date]) -> dict[date, list[str]]:
        placeholders = ", ".join("?" for _ in empty)
        found = warehouse.query(
            "SELECT week_start, entry_id FROM {schema}.raw_timesheets WHERE company_id = ? AND feed = ?"
            f" AND week_start IN ({placeholders}) AND entry_id IS NOT NULL",
            [company_id, source.live_feed, *empty],
        )
        ids: dict[date, list[str]] = {}
        for week, entry_id in zip(found["week_start"], found["entry_id"]):
            ids.setdefault(date.fromisoformat(str(week)[:10]), []).append(str(entry_id))
        return ids

    weeks = RawWeeks(company_id, mondays, source, pull_date)
    try:
        weeks.read(mondays)
        with warehouse.kept_open():  # the weeks' writes: one open of a DuckDB file
            read_again_where_emptied(weeks, stored_live_ids, context.log)
            with GroupedWrites(warehouse) as grouped:
                for monday, write in zip(mondays, weeks.writes(), strict=True):
                    grouped.add([write], sum(weeks.counts[monday].values()))
        return {monday: (weeks.counts[monday], rows) for monday, rows in zip(mondays, grouped.written, strict=True)}
    finally:
        weeks.close()
