"""Benchmark: cleaning throughput, raw time records to the validated attendance frame, per vendor.

For each vendor a generated company (default 500 workers, 460 days: about half a million time
records) is hosted on that vendor's emulator in this process. Workers and jobs are read through the
real source over loopback HTTP, like the reference assets do. The time records come from the
emulator's own serializers (the records its API serves), rendered once as the raw layer stores them
(JSON text per record), and kept in memory. Checked once before timing: the records one API week
answers over HTTP have the same fields as the serialized ones.

Timed: the attendance asset's own path from the raw rows to the validated frame, which is
``assets.attendance.map_raw_week`` (JSON decode, the vendor mapping with its set-aside rows, the
outside-the-week check) followed by ``schemas.split_valid`` (pandera). The JSON decode is then
timed alone (``decode_feeds``) and reported apart: "map + validate" is the time from records
in memory, the issue's measure; "with the JSON decode" is the asset's whole path. Not timed: HTTP, the
warehouse read and write. The window passed as the "week" spans every record, so the outside-week
check runs but sets nothing aside. Every run must load or set aside each record (counts reconcile)
and set nothing aside, or the script exits with status 1.

    .venv/bin/python bench/cleaning_throughput.py [--vendors quickbooks_time,aspire,busybusy]
        [--workers 500] [--days 460] [--repeat 3] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import statistics
import tempfile
import time
import warnings
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from machine import describe

COMPANY = "bench-cleaning"
SEED = 5
TARGET_ROWS_PER_SECOND = 200_000
VENDORS = ("quickbooks_time", "aspire", "busybusy")


def machine() -> str:
    return describe(("pandas", "pandera", "numpy"))


class Hosted:
    """One vendor's emulator hosting the company, its connection, and the raw rows of its time feeds."""

    def __init__(self, provider: str, workers: int, days: int, folder: Path):
        from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource
        from protiv_dagster.resources.vendors import VendorApis
        from protiv_dagster.vendors.aspire.client import AspireTuning
        from protiv_emulators.generator import generate_company

        self.provider = provider
        started = time.perf_counter()
        self.data = generate_company(COMPANY, seed=SEED, workers=workers, days=days)
        self.generate_seconds = time.perf_counter() - started
        started = time.perf_counter()
        base_url, credentials, settings = self._host()
        self.host_seconds = time.perf_counter() - started
        registry_url = f"sqlite:///{folder / f'{provider}-registry.sqlite'}"
        ConnectionRegistry(registry_url).connect(
            COMPANY,
            provider,
            base_url,
            credentials,
            settings=settings,
            attendance_pull_date=self.data.first_local_date,
            today=self.data.last_local_date,
        )
        # Aspire reads its employees' latest wages from recent work ticket times; a short look-back
        # keeps that reference read small (wages do not enter attendance).
        apis = VendorApis(aspire=AspireTuning(wage_lookback_days=7))
        self.registry = ConnectionRegistryResource(url=registry_url)
        self.source = apis.source_for(COMPANY, self.registry)

    def _host(self) -> tuple[str, dict, dict]:
        settings = {"timezone": self.data.timezone}
        if self.provider == "quickbooks_time":
            from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

            self.emulator = QuickBooksTimeEmulator(port=0)
            token = self.emulator.add_company(self.data)
            self.emulator.start()
            return self.emulator.base_url, {"access_token": token}, settings
        if self.provider == "aspire":
            from protiv_emulators.aspire import AspireEmulator

            self.emulator = AspireEmulator(port=0)
            client_id, secret = self.emulator.add_company(self.data)
            self.emulator.start()
            return self.emulator.base_url, {"client_id": client_id, "secret": secret}, settings
        from protiv_emulators.busybusy import BusyBusyEmulator

        self.emulator = BusyBusyEmulator(port=0)
        username, password = self.emulator.add_company(self.data)
        self.emulator.start()
        return self.emulator.rest_url, {"username": username, "password": password}, settings

    def serialized_feeds(self) -> dict[str, list[dict]]:
        """Every time record of the company as the vendor's API renders it, per raw feed."""
        company = self.emulator.company(COMPANY)
        if self.provider == "quickbooks_time":
            return {"timesheets": company.timesheets(), "timesheets_deleted": company.deleted_timesheets()}
        if self.provider == "aspire":
            return {"WorkTicketTimes": company.records("WorkTicketTimes"), "ClockTimes": company.records("ClockTimes")}
        from protiv_dagster.vendors.busybusy.client import iso

        return {
            "timeEntries": company.records("timeEntries"),
            "costCodes": company.records("costCodes"),
            "vendorClock": [{"id": "vendorClock", "now": iso(datetime.now(UTC))}],
        }

    def check_fields_against_api(self, feeds: dict[str, list[dict]]) -> str:
        """The records of the last week as the API serves them carry the serialized records' fields."""
        from protiv_dagster.partitions import week_start

        monday = week_start(self.data.last_local_date)
        served = self.source.time_entry_feeds(monday, monday + timedelta(days=6))
        for feed, records in served.items():
            if feed == "vendorClock" or not records or not feeds.get(feed):
                continue
            api_fields, serialized_fields = set(records[0]), set(feeds[feed][0])
            # BusyBusy's GraphQL adds the paging cursor to each record; nothing reads it.
            api_fields.discard("cursor")
            if api_fields != serialized_fields:
                raise SystemExit(
                    f"{self.provider} {feed}: API fields {sorted(api_fields)} differ from the "
                    f"serialized {sorted(serialized_fields)}"
                )
        return f"{sum(len(r) for r in served.values())} records of the week of {monday} over HTTP"

    def stop(self) -> None:
        self.emulator.stop()


def raw_rows(feeds: dict[str, list[dict]]):
    """The raw layer's rows for these feeds: feed and JSON payload, in feed and position order."""
    import pandas as pd

    feed_names = sorted(feeds)
    return pd.DataFrame(
        {
            "feed": [feed for feed in feed_names for _ in feeds[feed]],
            "payload": [json.dumps(record, sort_keys=True) for feed in feed_names for record in feeds[feed]],
        }
    ).astype({"feed": "str", "payload": "str"})  # what read_table hands back for TEXT columns


def reference_frames(source):
    """Workers and jobs as the attendance asset reads them: mapped, validated, typed like the warehouse."""
    from protiv_dagster import schemas

    workers, _ = schemas.split_valid(source.workers().rows, schemas.Worker, "worker_id")
    jobs, _ = schemas.split_valid(source.jobs().rows, schemas.Job, "job_id")
    return workers.astype({"worker_id": "str"}), jobs.astype({"job_id": "str", "parent_job_id": "str"})


def clean_once(source, raw, jobs, workers, first_day: date, last_day: date) -> dict:
    """One pass of the attendance asset's path: decode and map the raw rows, validate; then the
    JSON decode alone, to tell its share."""
    from protiv_dagster import schemas
    from protiv_dagster.assets.attendance import _collector_paused, decode_feeds, map_raw_week, raw_week_in_chunks

    started = time.perf_counter()
    mapped, rows, set_aside = map_raw_week(
        source, *raw_week_in_chunks(raw, source), jobs, workers["worker_id"], first_day, last_day
    )
    mapped_at = time.perf_counter()
    valid, rejected = schemas.split_valid(rows, schemas.Attendance, "entry_id")
    done = time.perf_counter()
    del rows, set_aside
    decode_started = time.perf_counter()
    with _collector_paused():  # as map_raw_week decodes
        decode_feeds(raw)
    decode = time.perf_counter() - decode_started
    set_aside_total = len(mapped.set_aside) + len(rejected)
    removed = mapped.removed_as_deleted + mapped.without_row
    return {
        "decode": decode,
        "map": mapped_at - started - decode,
        "validate": done - mapped_at,
        "clean": done - started - decode,
        "total": done - started,
        "fetched": mapped.fetched_count,
        "valid": len(valid),
        "set_aside": set_aside_total,
        "removed": removed,
        "reconciles": mapped.fetched_count == len(valid) + set_aside_total + removed,
    }


def bench_vendor(provider: str, args, folder: Path) -> bool:
    print(f"\n=== {provider} ===")
    hosted = Hosted(provider, args.workers, args.days, folder)
    try:
        feeds = hosted.serialized_feeds()
        print(
            f"company: {args.workers} workers, {args.days} days ({hosted.data.first_local_date}.."
            f"{hosted.data.last_local_date}); generated in {hosted.generate_seconds:.1f} s, hosted in "
            f"{hosted.host_seconds:.1f} s; feeds: " + ", ".join(f"{f} {len(r)}" for f, r in feeds.items())
        )
        print(f"fields check: {hosted.check_fields_against_api(feeds)} have the serialized records' fields")
        raw = raw_rows(feeds)
        del feeds
        workers, jobs = reference_frames(hosted.source)
        print(
            f"raw rows {len(raw)}, {raw['payload'].str.len().sum() / 2**20:.0f} MiB of JSON; "
            f"reference: {len(workers)} workers, {len(jobs)} jobs"
        )
        first, last = hosted.data.first_local_date - timedelta(days=1), hosted.data.last_local_date + timedelta(days=1)
        # Warm-up on a slice: the lookups a source caches (Aspire's tickets, zones, branches) are read once.
        clean_once(hosted.source, raw.head(2_000), jobs, workers, first, last)
        runs = []
        for attempt in range(args.repeat):
            gc.collect()
            if args.profile and attempt == 0:
                profiler = cProfile.Profile()
                profiler.enable()
                result = clean_once(hosted.source, raw, jobs, workers, first, last)
                profiler.disable()
                print("cProfile of the first timed run (timings inflated), top 25 by cumulative time:")
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
            else:
                result = clean_once(hosted.source, raw, jobs, workers, first, last)
            runs.append(result)
            print(
                f"  run {attempt + 1}: decode alone {result['decode']:.2f} s, map {result['map']:.2f} s, validate "
                f"{result['validate']:.2f} s; fetched {result['fetched']}, valid {result['valid']}, set aside "
                f"{result['set_aside']}, removed {result['removed']}; records/s: "
                f"{result['fetched'] / result['clean']:,.0f} map + validate, "
                f"{result['fetched'] / result['total']:,.0f} with the JSON decode"
            )
        ok = all(r["reconciles"] and r["set_aside"] == 0 for r in runs)
        records = runs[0]["fetched"]

        def rate(kind: str, pick) -> str:
            seconds = pick(r[kind] for r in runs)
            return f"{records / seconds:,.0f}/s ({seconds:.2f} s)"

        median_clean = records / statistics.median(r["clean"] for r in runs)
        print(
            f"{provider}: {records} records -> {runs[0]['valid']} attendance rows over {len(runs)} runs; "
            f"map + validate: best {rate('clean', min)}, median {rate('clean', statistics.median)}; "
            f"with the JSON decode of the raw rows: best {rate('total', min)}, median {rate('total', statistics.median)}; "
            f"best decode {min(r['decode'] for r in runs):.2f} s, map {min(r['map'] for r in runs):.2f} s, "
            f"validate {min(r['validate'] for r in runs):.2f} s; target {TARGET_ROWS_PER_SECOND:,}/s (map + validate, "
            f"median): {'met' if median_clean >= TARGET_ROWS_PER_SECOND else 'NOT met'}; "
            f"counts reconcile, nothing set aside: {'OK' if ok else 'MISMATCH'}; "
            f"load average now {', '.join(f'{load:.1f}' for load in os.getloadavg())}"
        )
        return ok
    finally:
        hosted.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--vendors", default=",".join(VENDORS), help="comma-separated providers")
    parser.add_argument("--workers", type=int, default=500, help="crew size of the generated company (at most 500)")
    parser.add_argument("--days", type=int, default=460, help="days of time records (460 days of 500 workers: ~0.5 M)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per vendor (after one warm-up run)")
    parser.add_argument("--profile", action="store_true", help="cProfile the first timed run of each vendor")
    args = parser.parse_args()

    import dagster

    warnings.filterwarnings("ignore", category=dagster.BetaWarning)
    from protiv_dagster.connections.registry import generate_secret_key

    print(f"machine: {machine()}")
    print(
        f"command: cleaning_throughput.py --vendors {args.vendors} --workers {args.workers} --days {args.days} "
        f"--repeat {args.repeat}"
    )
    with tempfile.TemporaryDirectory(prefix="protiv-bench-cleaning-") as folder:
        os.environ.setdefault("PROTIV_SECRET_KEY", generate_secret_key())
        os.environ["PROTIV_DATA_DIR"] = str(Path(folder) / "data")
        results = [bench_vendor(provider, args, Path(folder)) for provider in args.vendors.split(",")]
    if not all(results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
