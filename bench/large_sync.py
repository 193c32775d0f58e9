"""Benchmark: peak memory and wall time of a company sync with about a million timesheets.

The company is a generated QuickBooks Time company (500 workers, 14 days) whose crews are repeated
``--crews`` times with fresh worker and timesheet ids on the same jobs: 64 copies give about
32,000 workers and a million live timesheets in the synced window (three ISO weeks, the largest
holding about half of them). The QuickBooks Time emulator serves it from its own process, so its
memory is not counted. The sync runs through Dagster exactly like ``initial_sync.py`` (DuckDB
warehouse and SQLite registry in a fresh data folder, a temporary DAGSTER_HOME): workers and jobs,
each week of attendance, then ProPays.

Printed: peak RSS of the pipeline process, wall time, HTTP requests, rows per table, per-run wall
time. The attendance rows of each week are checked against the emulator's ground truth (live
timesheets of the week) and nothing may be set aside; on a mismatch the exit status is 1.

The emulator filters and sorts every timesheet on each page request, which is fine for a real
company's week but quadratic over a million: in its own process this script memoizes the filtered,
sorted listing of each query (page excluded), so what it serves is unchanged.

    .venv/bin/python bench/large_sync.py [--crews 64] [--days 14] [--latency 0]
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing as mp
import os
import secrets
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from initial_sync import cpu_seconds, machine, rss_mib  # noqa: E402

from protiv_dagster.cli.common import LAPTOP_INSTANCE  # noqa: E402

COMPANY = "bench-large"
SEED = 13
WORKERS = 500  # the generator's largest crew; repeated --crews times
TABLES = ("raw_timesheets", "attendance", "workers", "jobs", "propay_opportunities", "rejected_rows")
TARGET_PEAK_MIB = 1024


def repeated_company(crews: int, days: int):
    """A generated company whose workers and their timesheets are repeated ``crews`` times, with
    new ids (and a copy number in the last name), on the same jobs."""
    from protiv_emulators.generator import generate_company

    base = generate_company(COMPANY, seed=SEED, workers=WORKERS, days=days)
    worker_step = 10 ** len(str(max(w.id for w in base.workers)))
    shift_step = 10 ** len(str(max(s.id for s in [*base.shifts, *base.deleted_shifts])))
    workers, shifts, deleted = [], [], []
    for copy in range(crews):
        workers += [
            dataclasses.replace(
                w, id=w.id + copy * worker_step, last_name=f"{w.last_name} {copy + 1}" if copy else w.last_name
            )
            for w in base.workers
        ]
        for source, target in ((base.shifts, shifts), (base.deleted_shifts, deleted)):
            target += [
                dataclasses.replace(s, id=s.id + copy * shift_step, worker_id=s.worker_id + copy * worker_step)
                for s in source
                # One running sheet, as in every generated company: the copies' are closed out.
                if copy == 0 or not s.on_the_clock
            ]
    return dataclasses.replace(base, workers=workers, shifts=shifts, deleted_shifts=deleted)


def memoize_listings() -> None:
    """Serve each /timesheets and /timesheets_deleted query from one filtered, sorted listing."""
    from protiv_emulators import quickbooks_time as emulated

    company_class = emulated.QuickBooksTimeCompany
    listings: dict[tuple, list] = {}
    original_page = company_class._page

    def key(self, name: str, query) -> tuple:
        return id(self), name, tuple(sorted((k, v) for k, v in query.raw.items() if k != "page"))

    def page(self, name, records, query, render, supplemental=lambda _: {}):
        if name not in ("timesheets", "timesheets_deleted"):
            return original_page(self, name, records, query, render, supplemental)
        # Sorted once per query: setdefault would sort its argument again on every page, a pass over
        # the whole listing per page (a window of a million sheets then costs the emulator minutes).
        listing = listings.get(key(self, name, query))
        if listing is None:
            listing = listings[key(self, name, query)] = sorted(records, key=lambda r: r.id)
        page_number, limit = query.paging()
        chosen = listing[(page_number - 1) * limit : page_number * limit]
        body = {
            "results": {name: {str(r["id"]): r for r in map(render, chosen)}},
            "more": page_number * limit < len(listing),
        }
        if query.choice("supplemental_data", ("yes", "no"), "yes") == "yes":
            body["supplemental_data"] = supplemental(chosen)
        return body

    def memoized(serve, name: str, render):
        def serve_memoized(self, query):
            known = listings.get(key(self, name, query))
            if known is None:
                return serve(self, query)  # validates the query, filters, and lands in page() above
            return page(self, name, known, query, render(self), self._supplemental_for_sheets)

        return serve_memoized

    company_class._page = page
    company_class._serve_timesheets = memoized(
        company_class._serve_timesheets, "timesheets", lambda self: self._render_timesheet
    )
    company_class._serve_timesheets_deleted = memoized(
        company_class._serve_timesheets_deleted,
        "timesheets_deleted",
        lambda self: lambda t: self._render_timesheet(t, deleted=True),
    )


def serve_emulator(conn, token: str, crews: int, days: int, latency: float) -> None:
    """Child process: build the company, serve it, answer "truth" and "requests" until "stop"."""
    from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

    memoize_listings()
    started = time.perf_counter()
    data = repeated_company(crews, days)
    emulator = QuickBooksTimeEmulator(port=0)
    emulator.add_company(data, access_token=token)
    emulator.start()
    emulator.faults.latency(latency)
    conn.send((emulator.base_url, time.perf_counter() - started))
    company = emulator.company(COMPANY)
    while (message := conn.recv())[0] != "stop":
        if message[0] == "truth":
            weeks = {date.fromisoformat(m): Counter() for m in message[1]}
            for sheet in company.timesheets():
                monday = date.fromisoformat(sheet["date"])
                monday -= timedelta(days=monday.weekday())
                if monday in weeks:
                    weeks[monday]["live"] += 1
            conn.send(
                {
                    "users": len(company.users()),
                    "weeks": {m.isoformat(): c["live"] for m, c in weeks.items()},
                    "deleted_total": len(company.deleted_timesheets()),
                }
            )
        else:
            conn.send(Counter(r.path.rsplit("/", 1)[-1] for r in emulator.request_log))
    emulator.stop()


class PeakTracker:
    """Which call first brought the process to its peak RSS: the warehouse's reads and writes, the
    raw-week mapping and pandera, wrapped once; the peak is read when each call returns."""

    def __init__(self) -> None:
        from protiv_dagster.assets import attendance, common
        from protiv_dagster.resources.warehouse import Warehouse

        self.step = "before the sync"
        self.peaks: list[tuple[float, str]] = []  # (peak MiB after the call, where)
        self.wrap(Warehouse, "replace_partitions", "warehouse write")  # replace_partition goes through it
        self.wrap(Warehouse, "query", "warehouse read")
        self.wrap(attendance, "map_raw_week", "decode and map")
        self.wrap(common, "split_valid", "pandera")

    def wrap(self, owner, name: str, label: str) -> None:
        original = getattr(owner, name)

        def tracked(*args, **kwargs):
            try:
                return original(*args, **kwargs)
            finally:
                writes = args[1] if len(args) > 1 and label == "warehouse write" else []
                tables = ", ".join(sorted({write.table.name for write in writes}))
                self.peaks.append((rss_mib(), f"{self.step}: {label}" + (f" of {tables}" if tables else "")))

        setattr(owner, name, tracked)

    def where(self) -> str:
        peak = max(mib for mib, _ in self.peaks) if self.peaks else 0.0
        return next((place for mib, place in self.peaks if mib == peak), "unknown")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crews", type=int, default=64, help="copies of the 500-worker company's crews")
    parser.add_argument("--days", type=int, default=14, help="days of attendance to sync")
    parser.add_argument("--latency", type=float, default=0.0, help="emulator latency per request, seconds")
    args = parser.parse_args()

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
    from protiv_dagster.definitions import build_defs
    from protiv_dagster.partitions import week_keys
    from protiv_dagster.resources.warehouse import Warehouse
    from protiv_dagster.sync.company import plan_sync, sync_company

    baseline_rss = rss_mib()
    print(f"machine: {machine()}")
    print(f"command: large_sync.py --crews {args.crews} --days {args.days} --latency {args.latency}")
    with tempfile.TemporaryDirectory(prefix="protiv-bench-large-") as folder:
        (home := Path(folder) / "dagster_home").mkdir()
        (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)  # the laptop's instance, as protiv writes it
        for name in ("PROTIV_WAREHOUSE_URL", "PROTIV_REGISTRY_URL"):
            os.environ.pop(name, None)
        os.environ.update(
            PROTIV_DATA_DIR=str(Path(folder) / "data"), DAGSTER_HOME=str(home), PROTIV_SECRET_KEY=generate_secret_key()
        )
        token, spawn = secrets.token_urlsafe(24), mp.get_context("spawn")
        parent, child = spawn.Pipe()
        emulator = spawn.Process(target=serve_emulator, args=(child, token, args.crews, args.days, args.latency))
        emulator.start()
        try:
            base_url, build_seconds = parent.recv()
            print(f"emulator: company built and hosted in {build_seconds:.1f} s (own process, not counted)")
            today = date.today()
            connection = ConnectionRegistry().connect(
                COMPANY,
                "quickbooks_time",
                base_url,
                {"access_token": token},
                attendance_pull_date=today - timedelta(days=args.days),
                today=today,
            )
            first_day = connection.attendance_pull_date
            steps = plan_sync(COMPANY, first_day, today)
            weeks = week_keys(first_day, today)
            defs, instance = build_defs(), dg.DagsterInstance.get()
            tracker = PeakTracker()
            marks: dict[str, tuple[float, float]] = {}

            def on_step(step, state):
                now = time.perf_counter()
                tracker.step = step.label
                if state == "started":
                    marks[step.label] = (now, now)
                else:
                    marks[step.label] = (marks[step.label][0], now)
                    print(
                        f"  {step.label:<32}{now - marks[step.label][0]:>8.1f} s   peak RSS so far {rss_mib():>6.0f} MiB",
                        flush=True,
                    )

            rss_before, cpu_before, started = rss_mib(), cpu_seconds(), time.perf_counter()
            sync_company(defs, instance, COMPANY, first_day, today, on_step)
            wall, cpu, peak = time.perf_counter() - started, cpu_seconds() - cpu_before, rss_mib()
            warehouse = Warehouse()
            counts = (
                warehouse.query(
                    "select "
                    + ", ".join(f"(select count(*) from {{schema}}.{t} where company_id = ?) as {t}" for t in TABLES),
                    [COMPANY] * len(TABLES),
                )
                .iloc[0]
                .astype(int)
                .to_dict()
            )
            per_week = warehouse.query(
                "select strftime(work_date - cast(isodow(work_date) - 1 as integer), '%Y-%m-%d') as monday, count(*) as n "
                "from {schema}.attendance where company_id = ? group by 1",
                [COMPANY],
            )
            loaded = dict(zip(per_week["monday"], per_week["n"].astype(int)))
            parent.send(("truth", weeks))
            parent.send(("requests",))
            truth, requests = parent.recv(), parent.recv()
            instance.dispose()
        finally:
            parent.send(("stop",))
            emulator.join(timeout=30)
            if emulator.is_alive():
                emulator.terminate()
    live = sum(truth["weeks"].values())
    print(
        f"\ncompany: {truth['users']} users, {live} live timesheets in the window {first_day}..{today} "
        f"({', '.join(f'{m}: {n}' for m, n in truth['weeks'].items())}), {truth['deleted_total']} deleted"
    )
    print(
        f"sync: {len(steps)} Dagster runs, {wall:.1f} s wall, {cpu:.1f} s CPU in the pipeline process; "
        f"HTTP requests {sum(requests.values())} ({', '.join(f'{k} {v}' for k, v in sorted(requests.items()))})"
    )
    print("rows: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    ok = counts["rejected_rows"] == 0
    for monday, expected in truth["weeks"].items():
        got = loaded.get(monday, 0)
        ok &= got == expected
        print(
            f"check: attendance of the week of {monday}: {got} rows, emulator {expected}: "
            f"{'OK' if got == expected else 'MISMATCH'}"
        )
    print(f"check: nothing set aside: {'OK' if counts['rejected_rows'] == 0 else 'MISMATCH'}")
    print(
        f"peak RSS of the pipeline process: {peak:.0f} MiB (target < {TARGET_PEAK_MIB} MiB: "
        f"{'met' if peak < TARGET_PEAK_MIB else 'NOT met'}), first reached after {tracker.where()}; "
        f"{rss_before:.0f} MiB just before the sync, "
        f"{baseline_rss:.0f} MiB after importing Python + dagster + pandas + duckdb + the definitions"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
