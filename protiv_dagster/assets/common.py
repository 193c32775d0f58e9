"""What every asset does the same way: resolve the company's source, set rows aside, report counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta

import dagster as dg
import pandas as pd

from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.schemas import split_valid
from protiv_dagster.tables import REJECTED_ROWS
from protiv_dagster.vendors.base import Source
from protiv_dagster.vendors.http import VendorUnavailableError
from protiv_dagster.warehouse.declarations import Table
from protiv_dagster.warehouse.migrations import prepare
from protiv_dagster.warehouse.spool import PartitionWrite

COUNTS_RECONCILE = "counts_reconcile"


def column_schema(table: Table) -> dg.TableSchema:
    """The table's columns as Dagster shows them on the asset page."""
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.sql_type,
                description=c.description or None,
                constraints=dg.TableColumnConstraints(nullable=c.nullable),
            )
            for c in table.columns
        ]
    )


COMPANY_TAG, PROVIDER_TAG = "protiv/company", "protiv/provider"


@contextmanager
def retry_vendor_outages(context: dg.AssetExecutionContext, vendors: VendorApis) -> Iterator[None]:
    """Retry the step, with exponential backoff, when the vendor is down longer than the client's own
    retries cover (5xx, timeouts, resets). Anything else (a refused password, a malformed payload)
    fails at once: trying again would not change the answer."""
    try:
        yield
    except VendorUnavailableError as exc:
        attempt = context.retry_number
        if attempt >= vendors.step_retries:
            raise
        wait = vendors.step_retry_seconds * (2**attempt)
        context.log.warning(
            "%s; retrying this step in %.0f s (retry %d of %d)", exc, wait, attempt + 1, vendors.step_retries
        )
        raise dg.RetryRequested(max_retries=vendors.step_retries, seconds_to_wait=wait) from exc


def company_source(
    context: dg.AssetExecutionContext, company_id: str, registry: ConnectionRegistryResource, vendors: VendorApis
) -> Source:
    """The company's source; the run is labelled with its company and provider on the way."""
    source = vendors.source_for(company_id, registry)
    label_run(context, company_id, source.provider)
    return source


# The run this process labelled last and its labels: a run's steps follow each other in its process,
# so the second step of a run need not write the tags again.
_last_labelled: tuple[str, dict[str, str]] | None = None


def label_run(context: dg.AssetExecutionContext, company_id: str, provider: str) -> None:
    """Tag the run with the company and its provider. Done from inside the run so that every run
    carries them, including a force sync launched from the UI, and the Runs page can filter by
    ``protiv/provider``."""
    wanted = {COMPANY_TAG: company_id, PROVIDER_TAG: provider}
    global _last_labelled
    if _last_labelled == (context.run.run_id, wanted):
        return  # an earlier step of this run did (context.run still holds the tags it was launched with)
    missing = {key: value for key, value in wanted.items() if context.run.tags.get(key) != value}
    if missing:
        context.instance.add_run_tags(context.run.run_id, missing)
    _last_labelled = (context.run.run_id, wanted)


_prepared_warehouses: set[str] = set()


def prepare_warehouse(warehouse: Warehouse) -> None:
    """Create the project's tables where they are missing, and the analysts' views over them, so any
    asset can run first; a warehouse of an older schema revision fails the run with "run `protiv
    upgrade`" (see ``warehouse/migrations``).

    Checked once per process and warehouse: a run process (or the demo, which runs several runs in
    one process) checks once, not in every step; a warehouse already as declared costs one
    connection and five catalog reads, no DDL (``warehouse.migrations.prepare``).
    """
    key = f"{warehouse.describe()}|{warehouse.schema_name}"
    if key not in _prepared_warehouses:
        prepare(warehouse.store)
        _prepared_warehouses.add(key)


def weeks_before_pull_date(mondays: list[date], pull_date: date | None) -> tuple[list[date], list[date]]:
    """(weeks ending before the attendance pull date, the others). The first hold nothing by
    definition: a "Materialize" of every week of a company (the UI's default selection) clears them
    in one transaction instead of asking the vendor and writing them one by one."""
    if pull_date is None:
        return [], list(mondays)
    before = [monday for monday in mondays if monday + timedelta(days=6) < pull_date]
    return before, [monday for monday in mondays if monday + timedelta(days=6) >= pull_date]


def set_aside_write(company_id: str, asset: str, partition_key: str, set_aside: pd.DataFrame) -> PartitionWrite:
    """The replace of the records this asset set aside for this partition, in `rejected_rows`."""
    rows = set_aside.reset_index(drop=True).assign(company_id=company_id, asset=asset, partition_key=partition_key)
    rows["position"] = range(len(rows))
    return PartitionWrite(
        REJECTED_ROWS, rows, {"company_id": company_id, "asset": asset, "partition_key": partition_key}
    )


def validated(
    table: Table, model, record_id: str, candidates: pd.DataFrame, set_aside: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rows the pandera model accepts, every record set aside: by the mapping, then by the model)."""
    if candidates.empty:
        return candidates.reindex(columns=table.column_names), set_aside
    valid, invalid = split_valid(candidates, model, record_id)
    return valid, pd.concat([set_aside, invalid], ignore_index=True)


def validated_writes(
    table: Table,
    model,
    record_id: str,
    candidates: pd.DataFrame,
    set_aside: pd.DataFrame,
    *,
    company_id: str,
    asset: str,
    partition_key: str,
    partition: dict,
    date_range=None,
    move_rows: bool = False,
) -> tuple[pd.DataFrame, pd.DataFrame, list[PartitionWrite]]:
    """Enforce the pandera model on a partition's rows.

    Returns (rows to write, every record set aside: by the mapping plus by the model, the two writes
    that replace the partition's rows and its set-aside records, for one transaction).
    """
    valid, all_set_aside = validated(table, model, record_id, candidates, set_aside)
    writes = [
        PartitionWrite(table, valid, partition, date_range, move_rows),
        set_aside_write(company_id, asset, partition_key, all_set_aside),
    ]
    return valid, all_set_aside, writes


# Rows a run's partition writes gather into one transaction (GroupedWrites). A transaction per week
# (open, commit, checkpoint) was about a third of a 100-week sync's writes: 5.9 s in 200 transactions,
# 3.9 s in 2 (bench/RESULTS.md, 2026-12-05). One transaction over a window of large weeks would hold
# them all uncommitted at once, in memory until the commit: a week this large or larger is still
# written alone.
ROWS_PER_TRANSACTION = 25_000


class GroupedWrites:
    """Partition writes of a run (its weeks, in order) committed in transactions of about
    ``rows_per_transaction`` rows each instead of one per partition; each partition is replaced
    whole or not at all, as alone. Use as a context manager: leaving it writes what is pending,
    also when the block fails, so the weeks done before a failing one are kept as a transaction
    per week kept them. ``written`` holds each write's rows, in the order added."""

    def __init__(self, warehouse: Warehouse, rows_per_transaction: int = ROWS_PER_TRANSACTION) -> None:
        self.warehouse, self.rows_per_transaction = warehouse, rows_per_transaction
        self.pending: list[PartitionWrite] = []
        self.pending_rows = 0
        self.written: list[int] = []

    def add(self, writes: list[PartitionWrite], rows: int) -> None:
        """Writes of one partition (its rows and set-aside records: ``rows`` in all)."""
        if self.pending and self.pending_rows + rows > self.rows_per_transaction:
            self.flush()  # a large week goes alone, not in one transaction with the small ones before it
        self.pending += writes
        self.pending_rows += rows
        if self.pending_rows >= self.rows_per_transaction:
            self.flush()

    def flush(self) -> None:
        writes, self.pending, self.pending_rows = self.pending, [], 0
        if writes:
            self.written += self.warehouse.replace_partitions(writes)

    def __enter__(self) -> GroupedWrites:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.flush()


def reconcile(
    asset_key: str,
    fetched: int,
    loaded: int,
    set_aside: int,
    removed: int = 0,
    *,
    description: str | None = None,
    metadata: dict | None = None,
) -> dg.AssetCheckResult:
    """Every fetched record is loaded, set aside with a reason, or removed by design (deleted at the
    vendor, or a record that yields no row such as Aspire clock time fully covered by tickets)."""
    return dg.AssetCheckResult(
        check_name=COUNTS_RECONCILE,
        asset_key=asset_key,
        passed=fetched == loaded + set_aside + removed,
        description=description,
        metadata={
            **(metadata or {}),
            "fetched": fetched,
            "loaded": loaded,
            "set_aside": set_aside,
            "removed": removed,
        },
    )


def reconcile_spec(asset_name: str, partitions_def: dg.PartitionsDefinition | None = None) -> dg.AssetCheckSpec:
    """The counts check of an asset; ``partitions_def`` (the company partitions of a company asset)
    ties each result to the company its run materialized. The attendance check has none: one run
    covers a range of weeks, so its result names the company and the weeks instead."""
    return dg.AssetCheckSpec(
        COUNTS_RECONCILE,
        asset=asset_name,
        partitions_def=partitions_def,
        description="fetched = loaded + set aside (+ removed because the vendor lists them as deleted)",
    )
