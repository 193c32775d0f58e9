"""Cleaned layer: workers, jobs and attendance in one shape for every vendor, enforced by pandera.

The workers asset also writes the workers' wage histories (worker_wages), and the jobs asset the
jobs' line items (task_lines) and the people assigned to them (job_assignments): each table beside
its asset's own, in the same transaction, with its own counts check."""

import gc
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import orjson
import pandas as pd

from protiv_dagster import schemas
from protiv_dagster.assets.common import (
    GroupedWrites,
    column_schema,
    company_source,
    prepare_warehouse,
    reconcile,
    reconcile_spec,
    retry_vendor_outages,
    set_aside_write,
    validated,
    validated_writes,
    weeks_before_pull_date,
)
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.assets.raw import raw_timesheets
from protiv_dagster.automation.conditions import ATTENDANCE_FOLLOWS_RAW, TWO_HOUR_PROMISE
from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.partitions import (
    BY_COMPANY,
    company_partitions,
    company_week_key,
    company_week_partitions,
    weeks_by_company,
)
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import (
    ATTENDANCE,
    JOB_ASSIGNMENTS,
    JOBS,
    RAW_TIMESHEETS,
    REJECTED_ROWS,
    TASK_LINES,
    WORKER_WAGES,
    WORKERS,
)
from protiv_dagster.vendors.base import Mapped, Source
from protiv_dagster.warehouse.declarations import Table
from protiv_dagster.warehouse.spool import PartitionWrite

# orjson reads an integer beyond 64 bits (20 digits or more) as a float. Digit runs are found by
# translating every digit to "9" and everything else to a space, then searching for 20 nines: a
# fraction of the time a regular expression takes over the week's payloads.
_DIGITS_AS_NINES = bytes(ord("9") if chr(code).isdigit() and code < 128 else ord(" ") for code in range(256))
_LONG_DIGIT_RUN = b"9" * 20


def _has_long_digit_run(text: str) -> bool:
    return _LONG_DIGIT_RUN in text.encode("utf-8", "surrogatepass").translate(_DIGITS_AS_NINES)


def _table_metadata(table) -> dict:
    return {"dagster/column_schema": column_schema(table), "dagster/table_name": f"protiv.{table.name}"}


@dataclass(frozen=True)
class Beside:
    """A table a reference asset writes beside its own: ``fetch`` maps it from the same source, given
    the asset's valid rows (a line item of a job that was set aside is set aside too)."""

    table: Table
    model: type
    record_id: str
    fetch: Callable[[Source, pd.DataFrame], Mapped]

    @property
    def check_name(self) -> str:
        return f"{self.table.name}_counts_reconcile"

    def check_spec(self, asset_name: str) -> dg.AssetCheckSpec:
        return dg.AssetCheckSpec(
            self.check_name,
            asset=asset_name,
            partitions_def=company_partitions,  # each result tied to its company, as the asset's
            description=f"{self.table.name}, written with {asset_name}: fetched = loaded + set aside "
            "(+ removed because the vendor lists them as deleted or a later record replaced them)",
        )


WORKER_WAGES_BESIDE = Beside(
    WORKER_WAGES, schemas.WorkerWage, "worker_id", lambda source, workers: source.worker_wages(workers["worker_id"])
)
TASK_LINES_BESIDE = Beside(
    TASK_LINES, schemas.TaskLine, "task_id", lambda source, jobs: source.task_lines(jobs["job_id"])
)
JOB_ASSIGNMENTS_BESIDE = Beside(
    JOB_ASSIGNMENTS, schemas.JobAssignment, "worker_id", lambda source, jobs: source.job_assignments(jobs["job_id"])
)


def _reference_table(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
    *,
    table,
    model,
    record_id: str,
    fetch: Callable[[Source], Mapped],
    beside: tuple[Beside, ...] = (),
    describe: Callable[[pd.DataFrame], dict] = lambda valid: {},
):
    """Read one company's reference records from its vendor, enforce the model, and replace the
    table's company partition together with the tables ``beside`` it and every record set aside, in
    ONE transaction; report counts plus a reconciliation check per table."""
    company_id = context.partition_key
    prepare_warehouse(warehouse)
    source = company_source(context, company_id, registry, vendors)
    with retry_vendor_outages(context, vendors):
        mapped = fetch(source)
    valid, set_aside = validated(table, model, record_id, mapped.rows, mapped.set_aside)
    written = [(table, mapped, valid, set_aside)]
    for other in beside:
        with retry_vendor_outages(context, vendors):
            other_mapped = other.fetch(source, valid)
        written.append(
            (
                other.table,
                other_mapped,
                *validated(other.table, other.model, other.record_id, other_mapped.rows, other_mapped.set_aside),
            )
        )
    partition = {"company_id": company_id}
    warehouse.replace_partitions(
        [
            write
            for written_table, _, rows, aside in written
            for write in (
                PartitionWrite(written_table, rows, partition),
                set_aside_write(company_id, written_table.name, company_id, aside),
            )
        ]
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(valid),
            "set_aside": len(set_aside),
            "provider": source.provider,
            "vendor_requests": source.request_count,
            **describe(valid),
            **{
                key: value
                for other_table, _, rows, aside in written[1:]
                for key, value in ((other_table.name, len(rows)), (f"{other_table.name}_set_aside", len(aside)))
            },
        }
    )
    # The main table's count check first, then one per table written beside it.
    checked_beside: list[Beside | None] = [None, *beside]
    for (_, counted, rows, aside), beside_table in zip(written, checked_beside):
        check = reconcile(
            table.name, counted.fetched_count, len(rows), len(aside), counted.removed_as_deleted + counted.without_row
        )
        if beside_table is not None:
            check = dg.AssetCheckResult(
                check_name=beside_table.check_name, asset_key=table.name, passed=check.passed, metadata=check.metadata
            )
        yield check


@dg.asset(
    partitions_def=company_partitions,
    group_name="cleaned",
    kinds={"python", "sql"},
    metadata=_table_metadata(WORKERS),
    check_specs=[reconcile_spec("workers", company_partitions), WORKER_WAGES_BESIDE.check_spec("workers")],
    deps=[vendor_connection],
    pool="vendor_api",
)
def workers(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Every worker of the company, active or not, with today's hourly wage; written together with
    worker_wages, the wage histories the vendor keeps (BusyBusy wage histories, Aspire pay rates;
    none for QuickBooks Time), from which labor is costed at the wage in force on each work date.
    Read from the vendor on each materialization; rows that fail the schema are set aside in
    rejected_rows with their reason."""
    yield from _reference_table(
        context,
        registry,
        vendors,
        warehouse,
        table=WORKERS,
        model=schemas.Worker,
        record_id="worker_id",
        fetch=lambda source: source.workers(),
        beside=(WORKER_WAGES_BESIDE,),
    )


@dg.asset(
    partitions_def=company_partitions,
    group_name="cleaned",
    kinds={"python", "sql"},
    metadata=_table_metadata(JOBS),
    check_specs=[
        reconcile_spec("jobs", company_partitions),
        TASK_LINES_BESIDE.check_spec("jobs"),
        JOB_ASSIGNMENTS_BESIDE.check_spec("jobs"),
    ],
    deps=[vendor_connection],
    pool="vendor_api",
)
def jobs(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Jobs and their milestones with labor budget (worker-hours), status (open, completed,
    canceled), recurring and drive flags and the date the vendor created them, mapped from the
    vendor as the company's settings say; written together with task_lines (the line items of the
    jobs' budgets: BusyBusy cost code budgets, Aspire opportunity services) and job_assignments (the
    crew leads Aspire names on work tickets), in the same transaction."""
    yield from _reference_table(
        context,
        registry,
        vendors,
        warehouse,
        table=JOBS,
        model=schemas.Job,
        record_id="job_id",
        fetch=lambda source: source.jobs(),
        beside=(TASK_LINES_BESIDE, JOB_ASSIGNMENTS_BESIDE),
        describe=lambda valid: {"with_budget": int(valid["budget_hours"].notna().sum()) if len(valid) else 0},
    )


@dg.asset(
    partitions_def=company_week_partitions,
    group_name="cleaned",
    kinds={"python", "sql"},
    metadata=_table_metadata(ATTENDANCE),
    deps=[
        raw_timesheets,
        dg.AssetDep(jobs, partition_mapping=BY_COMPANY),
        dg.AssetDep(workers, partition_mapping=BY_COMPANY),
    ],
    check_specs=[reconcile_spec("attendance")],
    automation_condition=ATTENDANCE_FOLLOWS_RAW,
    freshness_policy=TWO_HOUR_PROMISE,
    pool="vendor_api",  # Aspire's mapping reads work tickets, zones and branches from the vendor
    backfill_policy=dg.BackfillPolicy.single_run(),  # the weeks of a sync in one run, as raw_timesheets
)
def attendance(
    context: dg.AssetExecutionContext,
    registry: ConnectionRegistryResource,
    vendors: VendorApis,
    warehouse: Warehouse,
):
    """Worked time of one company and ISO week in the one schema every vendor maps to: worker, job,
    milestone, local work date, start and end in UTC, hours, drive and on-the-clock flags, source
    modification time. Nothing dated before the company's attendance pull date (the pull date's
    week holds its days from the pull date on). Entries the vendor lists as deleted are removed;
    entries that fail the schema or reference an unknown worker or job are set aside in
    rejected_rows with their reason. A run over several weeks cleans them one by one and commits
    their writes in transactions of up to about 25,000 rows; its counts check adds up all of them."""
    prepare_warehouse(warehouse)
    totals: Counter[str] = Counter()
    by_company = weeks_by_company(context)
    for company_id, mondays in by_company.items():
        source = company_source(context, company_id, registry, vendors)
        # The company's weeks, each read and written in transactions of its own, open a DuckDB file
        # once (unless another run waits for it meanwhile).
        with warehouse.kept_open():
            with warehouse.reading() as read:
                company_jobs = read.read_table(JOBS, where={"company_id": company_id})
                company_workers = read.read_table(WORKERS, where={"company_id": company_id})
            pull_date = registry.get(company_id).attendance_pull_date
            before, due = weeks_before_pull_date(mondays, pull_date)
            if before:
                clear_weeks(warehouse, company_id, before)
                for monday in before:
                    context.add_asset_metadata(
                        {"dagster/row_count": 0, "provider": source.provider, "before_pull_date": True},
                        partition_key=str(company_week_key(company_id, monday.isoformat())),
                    )
            with GroupedWrites(warehouse) as grouped:
                for monday in due:
                    partition_key = str(company_week_key(company_id, monday.isoformat()))
                    metadata, counts, writes = clean_week(
                        warehouse, source, company_id, monday, company_jobs, company_workers, pull_date=pull_date
                    )
                    grouped.add(writes, counts["loaded"] + counts["set_aside"])
                    context.add_asset_metadata(metadata, partition_key=partition_key)
                    totals.update(counts)
    # Metadata went to each week's materialization above; the result only ends the step.
    yield dg.MaterializeResult()
    # One result for the run's weeks (a range cannot be one check partition): it names them.
    covered = ", ".join(
        f"{company_id} {mondays[0].isoformat()}" + ("" if len(mondays) == 1 else f"..{mondays[-1].isoformat()}")
        for company_id, mondays in by_company.items()
    )
    yield reconcile(
        "attendance",
        totals["fetched"],
        totals["loaded"],
        totals["set_aside"],
        totals["removed"],
        description=f"counts of {covered} (company, weeks)",
        metadata={
            "company": ", ".join(by_company),
            "weeks": covered,
        },
    )


def clear_weeks(warehouse: Warehouse, company_id: str, mondays: list[date]) -> None:
    """Empty weeks that hold nothing (they end before the pull date), rows and set-aside records,
    all in one transaction."""
    writes = []
    for monday in mondays:
        partition_key = str(company_week_key(company_id, monday.isoformat()))
        date_range = ("work_date", monday, monday + timedelta(days=6))
        writes += [
            PartitionWrite(
                ATTENDANCE, pd.DataFrame(columns=ATTENDANCE.column_names), {"company_id": company_id}, date_range
            ),
            PartitionWrite(
                REJECTED_ROWS,
                pd.DataFrame(columns=REJECTED_ROWS.column_names),
                {"company_id": company_id, "asset": "attendance", "partition_key": partition_key},
            ),
        ]
    warehouse.replace_partitions(writes)


def clean_week(
    warehouse: Warehouse,
    source: Source,
    company_id: str,
    monday: date,
    company_jobs: pd.DataFrame,
    company_workers: pd.DataFrame,
    pull_date: date | None = None,
) -> tuple[dict, dict[str, int], list[PartitionWrite]]:
    """Map one stored raw week to attendance and enforce the model; returns (the week's
    materialization metadata, its counts, the writes that replace the week's rows and its set-aside
    records in one transaction).

    A function of its own so that a week's frames other than its rows to write are let go before the
    next week of a run is mapped.

    Rows dated before ``pull_date`` are not synced: the raw layer no longer stores them, and a raw
    week stored by an older version (which kept the pull date's whole week) loses them here, neither
    set aside nor counted as deleted (``before_pull_date`` in the metadata; the counts check takes
    them out of the fetched records)."""
    sunday = monday + timedelta(days=6)
    lookups, live_chunks = stored_raw_week(warehouse, company_id, monday, source)
    mapped, rows, set_aside = map_raw_week(
        source, lookups, live_chunks, company_jobs, company_workers["worker_id"], monday, sunday
    )
    before_pull_date = 0
    if pull_date is not None and monday <= pull_date and len(rows):
        early = rows["work_date"].lt(pull_date).to_numpy()
        before_pull_date = int(early.sum())
        rows = rows[~early]
    valid, all_set_aside, writes = validated_writes(
        ATTENDANCE,
        schemas.Attendance,
        "entry_id",
        rows,
        set_aside,
        company_id=company_id,
        asset="attendance",
        partition_key=str(company_week_key(company_id, monday.isoformat())),
        partition={"company_id": company_id},
        date_range=("work_date", monday, sunday),
        move_rows=True,
    )
    set_aside_count = len(all_set_aside)
    metadata = {
        "dagster/row_count": len(valid),
        "provider": source.provider,
        "set_aside": set_aside_count,
        "removed_as_deleted": mapped.removed_as_deleted,
        "before_pull_date": before_pull_date,
        "hours": round(float(valid["hours"].sum()), 2) if len(valid) else 0.0,
        "drive_hours": round(float(valid.loc[valid["is_drive"], "hours"].sum()), 2) if len(valid) else 0.0,
        "on_the_clock_entries": int(valid["on_the_clock"].sum()) if len(valid) else 0,
    }
    counts = {
        "fetched": mapped.fetched_count - before_pull_date,
        "loaded": len(valid),
        "set_aside": set_aside_count,
        "removed": mapped.removed_as_deleted + mapped.without_row,
    }
    return metadata, counts, writes


# Live records decoded and mapped at a time by a source whose records map independently.
CHUNK_ROWS = 25_000


def stored_raw_week(
    warehouse: Warehouse, company_id: str, monday: date, source: Source, chunk_rows: int = CHUNK_ROWS
) -> tuple[pd.DataFrame, Iterator[pd.DataFrame]]:
    """The week's raw rows as ``map_raw_week`` takes them: the lookup feeds whole, and the live feed
    in chunks of ``chunk_rows`` positions read one query at a time (one query for a source whose
    records do not map independently). Only ``feed`` and ``payload`` are read: the ids and stamps
    stored beside each payload are for analysts."""
    where = "company_id = ? AND week_start = ?"
    live_sql = (
        f"SELECT feed, payload FROM {{schema}}.{RAW_TIMESHEETS.name} WHERE {where} AND feed = ? "
        "AND position >= ? AND position < ? ORDER BY position"
    )
    with warehouse.reading() as read:
        lookups = read.query(
            f"SELECT feed, payload FROM {{schema}}.{RAW_TIMESHEETS.name} WHERE {where} AND feed <> ? ORDER BY feed, position",
            [company_id, monday, source.live_feed],
        )
        positions = read.query(
            f"SELECT max(position) AS last FROM {{schema}}.{RAW_TIMESHEETS.name} WHERE {where} AND feed = ?",
            [company_id, monday, source.live_feed],
        )["last"].iloc[0]
        end = 0 if pd.isna(positions) else int(positions) + 1
        step = chunk_rows if source.maps_records_independently else max(end, 1)
        if end <= step:  # the usual week: its live rows in one chunk, on the same connection
            whole = [read.query(live_sql, [company_id, monday, source.live_feed, 0, step])] if end else []
            return lookups, iter(whole)

    def live_chunks() -> Iterator[pd.DataFrame]:
        # A large week: one connection per chunk, let go while the chunk before is being mapped.
        for start in range(0, end, step):
            yield warehouse.query(live_sql, [company_id, monday, source.live_feed, start, start + step])

    return lookups, live_chunks()


def raw_week_in_chunks(
    raw: pd.DataFrame, source: Source, chunk_rows: int = CHUNK_ROWS
) -> tuple[pd.DataFrame, Iterator[pd.DataFrame]]:
    """Raw rows held in memory (``feed``, ``payload`` in feed and position order) split as
    ``stored_raw_week`` reads them from the warehouse."""
    is_live = (raw["feed"] == source.live_feed).to_numpy()
    live = raw[is_live]
    return raw[~is_live], (live.iloc[start : start + chunk_rows] for start in range(0, len(live), chunk_rows))


def map_raw_week(
    source: Source,
    lookups: pd.DataFrame,
    live_chunks: Iterable[pd.DataFrame],
    company_jobs: pd.DataFrame,
    worker_ids: pd.Series,
    monday: date,
    sunday: date,
) -> tuple[Mapped, pd.DataFrame, pd.DataFrame]:
    """``map_week`` over raw rows (``feed``, ``payload``), decoding them: the lookup feeds, and the
    live feed in chunks (``stored_raw_week``, ``raw_week_in_chunks``).

    A source whose mapping reads each live record on its own (``maps_records_independently``: the
    other feeds are lookups) is mapped a chunk at a time, so a large week is never held as decoded
    records whole; the rows and counts are the same as in one pass. Other sources get every chunk
    at once.
    """
    id_field = source.feed_fields.get(source.live_feed, ("id", None))[0]
    listed: Counter[str] = Counter()
    with _collector_paused():
        if not source.maps_records_independently:
            feeds = decode_feeds(pd.concat([lookups, *live_chunks], ignore_index=True))
            listed.update(_ids_of(feeds.get(source.live_feed, []), id_field))
            return set_aside_repeated(map_week(source, feeds, company_jobs, worker_ids, monday, sunday), listed)
        lookup_feeds = decode_feeds(lookups)
        parts = []
        for chunk in live_chunks:
            live = decode_feeds(chunk).get(source.live_feed, [])
            listed.update(_ids_of(live, id_field))
            parts.append(
                map_week(source, {**lookup_feeds, source.live_feed: live}, company_jobs, worker_ids, monday, sunday)
            )
        if not parts:  # an empty week still maps once, for its empty frames
            parts.append(
                map_week(source, {**lookup_feeds, source.live_feed: []}, company_jobs, worker_ids, monday, sunday)
            )
    if len(parts) == 1:
        return set_aside_repeated(parts[0], listed)
    rows = pd.concat([part[1] for part in parts], ignore_index=True)
    set_aside = pd.concat([part[2] for part in parts], ignore_index=True)
    mapped = Mapped(
        rows=rows,
        set_aside=set_aside,
        removed_as_deleted=sum(part[0].removed_as_deleted for part in parts),
        without_row=sum(part[0].without_row for part in parts),
        fetched=sum(part[0].fetched_count for part in parts),
    )
    return set_aside_repeated((mapped, rows, set_aside), listed)


def _ids_of(records: list[dict], id_field: str) -> Iterator[str]:
    for record in records:
        value = record.get(id_field)
        if value is not None and not isinstance(value, (list, dict)):
            yield str(value).strip()


def set_aside_repeated(
    week: tuple[Mapped, pd.DataFrame, pd.DataFrame], listed: Counter[str]
) -> tuple[Mapped, pd.DataFrame, pd.DataFrame]:
    """Every copy of an entry id the vendor listed more than once in the week is set aside alike,
    whatever else the mapping made of each copy: paying one copy (the one that happened to pass, or
    a lone copy dated in another week) would pay hours the vendor itself is unsure of."""
    mapped, rows, set_aside = week
    repeated = {entry_id for entry_id, count in listed.items() if count > 1}
    if not repeated or not len(rows):
        return week
    hit = rows["entry_id"].isin(repeated)
    if not hit.any():
        return week
    copies = rows[hit]
    moved = pd.DataFrame(
        {
            "record_id": copies["entry_id"].values,
            "reason": [
                f"the vendor listed entry id {entry_id} {listed[entry_id]} times: every copy is set aside"
                for entry_id in copies["entry_id"]
            ],
            "record": copies.astype(str).apply(lambda r: json.dumps(r.to_dict(), sort_keys=True), axis=1).values,
        }
    )
    return mapped, rows[~hit], pd.concat([set_aside, moved], ignore_index=True)


@contextmanager
def _collector_paused() -> Iterator[None]:
    # Decoding and mapping allocate hundreds of thousands of dicts and frames without reference
    # cycles; the cyclic collector would scan them over and over (half the decode time).
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode_feeds(raw: pd.DataFrame) -> dict[str, list[dict]]:
    """The records of raw rows (``feed``, ``payload`` in feed and position order), per feed.

    orjson reads the JSON several times faster than the standard library. It refuses NaN, infinity
    and escaped lone surrogates (the standard library then reads the payload) and reads integers
    beyond 64 bits as floats, so a payload holding a run of 20 digits is read by the standard library
    too: every record decodes to exactly the value the standard library gives."""
    feeds: dict[str, list[dict]] = defaultdict(list)
    payloads = raw["payload"].tolist()
    long_numbers = _has_long_digit_run("\n".join(payloads))
    for feed, payload in zip(raw["feed"].tolist(), payloads):
        if long_numbers and _has_long_digit_run(payload):
            record = json.loads(payload)
        else:
            try:
                record = orjson.loads(payload)
            except orjson.JSONDecodeError:
                record = json.loads(payload)
        feeds[feed].append(record)
    return feeds


def map_week(
    source: Source,
    feeds: Mapping[str, list[dict]],
    company_jobs: pd.DataFrame,
    worker_ids: pd.Series,
    monday: date,
    sunday: date,
) -> tuple[Mapped, pd.DataFrame, pd.DataFrame]:
    """The records of one company week mapped to attendance candidates: (what the mapping counted,
    candidate rows, rows set aside so far).

    Everything the attendance asset does between decoding the raw rows and the pandera model, kept
    in one function so the cleaning benchmark times exactly this path."""
    mapped = source.attendance(feeds, company_jobs, worker_ids)
    rows, set_aside = mapped.rows, mapped.set_aside
    if len(rows):
        # A vendor that answers outside the requested dates must not write into another week.
        outside = ~rows["work_date"].between(monday, sunday)
        if outside.any():
            stray = rows[outside]
            set_aside = pd.concat(
                [
                    set_aside,
                    pd.DataFrame(
                        {
                            "record_id": stray["entry_id"].values,
                            "reason": f"work_date outside the requested week {monday}..{sunday}",
                            "record": stray.astype(str)
                            .apply(lambda r: json.dumps(r.to_dict(), sort_keys=True), axis=1)
                            .values,
                        }
                    ),
                ],
                ignore_index=True,
            )
            rows = rows[~outside]
    return mapped, rows, set_aside
