"""Benchmark: the initial sync of one company through Dagster, end to end to the ProPay tables.

Embedded default: DuckDB warehouse and SQLite registry in a fresh temporary data folder, a temporary
DAGSTER_HOME on SQLite. The QuickBooks Time emulator answers with a fixed latency per request from
its own process, so the peak RSS reported is the pipeline's alone. Time is attributed per step by
wrapping the HTTP client and the warehouse methods; the attendance row count is checked against the
emulator's ground truth (exit status 1 on a mismatch).

    .venv/bin/python bench/initial_sync.py [--workers 250] [--days 14] [--latency 0.05] [--repeat 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import multiprocessing as mp
import os
import resource
import secrets
import statistics
import tempfile
import time
import warnings
from collections import Counter, defaultdict
from datetime import date, timedelta
from pathlib import Path

from machine import describe

from protiv_dagster.cli.common import LAPTOP_INSTANCE

COMPANY = "bench-company"
SEED = 11
PAGE = 200  # QuickBooks Time's largest page
KINDS = ("http", "tables", "writes", "reads")
TABLES = ("attendance", "workers", "jobs", "propay_opportunities", "rejected_rows")


def rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU time of this process so far: unlike wall time, barely moved by other load."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bench_company(workers: int, days: int):
    """The generated company of ``workers`` workers. Beyond the generator's largest crew (500), its
    crew is repeated with fresh worker and timesheet ids on the same jobs (as ``large_sync.py`` does),
    the last copy cut to the workers still missing: 1,000 workers are two copies of the 500."""
    from protiv_emulators.generator import MAX_WORKERS, generate_company

    if workers <= MAX_WORKERS:
        return generate_company(COMPANY, seed=SEED, workers=workers, days=days)
    base = generate_company(COMPANY, seed=SEED, workers=MAX_WORKERS, days=days)
    worker_step = 10 ** len(str(max(w.id for w in base.workers)))
    shift_step = 10 ** len(str(max(s.id for s in [*base.shifts, *base.deleted_shifts])))
    crew, shifts, deleted = [], [], []
    for copy in range(math.ceil(workers / MAX_WORKERS)):
        taken = base.workers[: min(MAX_WORKERS, workers - copy * MAX_WORKERS)]
        ids = {w.id for w in taken}
        crew += [
            dataclasses.replace(
                w, id=w.id + copy * worker_step, last_name=f"{w.last_name} {copy + 1}" if copy else w.last_name
            )
            for w in taken
        ]
        for source, target in ((base.shifts, shifts), (base.deleted_shifts, deleted)):
            target += [
                dataclasses.replace(s, id=s.id + copy * shift_step, worker_id=s.worker_id + copy * worker_step)
                for s in source
                # One running sheet, as in every generated company: the copies' are closed out.
                if s.worker_id in ids and (copy == 0 or not s.on_the_clock)
            ]
    return dataclasses.replace(base, workers=crew, shifts=shifts, deleted_shifts=deleted)


def serve_emulator(conn, token: str, workers: int, days: int, latency: float) -> None:
    """Child process: generate the company, serve it, answer "truth" and "requests" until "stop"."""
    from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

    emulator = QuickBooksTimeEmulator(port=0)
    emulator.add_company(bench_company(workers, days), access_token=token)
    emulator.start()
    emulator.faults.latency(latency)
    conn.send(emulator.base_url)
    company = emulator.company(COMPANY)
    while (message := conn.recv())[0] != "stop":
        if message[0] == "truth":  # the records each query of the pipeline must fetch
            sheets, deleted = company.timesheets(), company.deleted_timesheets()

            def in_week(records, monday):
                sunday = (date.fromisoformat(monday) + timedelta(days=6)).isoformat()
                return sum(monday <= r["date"] <= sunday for r in records)

            conn.send(
                {
                    "users": len(company.users()),
                    "jobcodes": sum(j["type"] == "regular" for j in company.jobcodes()),
                    "customfields": sum(f["applies_to"] == "jobcode" for f in company.customfields()),
                    "weeks": {m: (in_week(sheets, m), in_week(deleted, m)) for m in message[1]},
                    "deleted_total": len(deleted),
                }
            )
        else:
            conn.send(Counter((r.path.rsplit("/", 1)[-1], r.query.get("start_date", "")) for r in emulator.request_log))
    emulator.stop()


class Timers:
    """Wall time and calls in HTTP and warehouse methods, per sync step (wraps the classes once)."""

    def __init__(self) -> None:
        from dagster import DagsterInstance

        from protiv_dagster.vendors.http import VendorClient
        from protiv_dagster.warehouse import schema
        from protiv_dagster.warehouse.store import WarehouseReader, WarehouseStore

        self.reset()
        self.wrap(VendorClient, "request", "http")
        self.wrap(schema, "ensure_tables", "tables")  # the Warehouse resource calls it as schema.ensure_tables
        self.wrap(WarehouseStore, "replace_partitions", "writes")  # replace_partition goes through it
        self.wrap(WarehouseStore, "query", "reads")  # read_table goes through query
        self.wrap(WarehouseReader, "query", "reads")  # reads sharing one connection (reading())
        # Inside the ones above: one per transaction, and one per kept_open block.
        self.wrap(WarehouseStore, "_open_duckdb", "open")
        self.wrap(DagsterInstance, "handle_new_event", "event log")  # storing each event of a run

    def reset(self) -> None:
        self.step: str | None = None
        self.spent: dict[str, Counter] = defaultdict(Counter)  # step -> kind -> seconds
        self.calls: dict[str, Counter] = defaultdict(Counter)  # step -> kind -> calls

    def wrap(self, owner: object, name: str, kind: str) -> None:
        original = getattr(owner, name, None)
        if original is None:  # renamed or gone after a refactor: that column stays at zero
            return

        @functools.wraps(original)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.step is not None:
                    self.spent[self.step][kind] += time.perf_counter() - started
                    self.calls[self.step][kind] += 1

        setattr(owner, name, timed)


# The Dagster instance a sync records its runs in: the laptop's, as `protiv` writes it
# (protiv_dagster/cli/common.py: every run's events in one SQLite file), or Dagster's SQLite default
# (a database file per run), which laptops set up before it keep.
INSTANCES = {
    "laptop": LAPTOP_INSTANCE,
    "per-run-files": "telemetry:\n  enabled: false\n",
}


def run_once(args, timers: Timers) -> dict:
    """A fresh data folder, Dagster home and emulator; the sync; counts and the emulator's truth."""
    import dagster as dg

    from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
    from protiv_dagster.definitions import build_defs
    from protiv_dagster.partitions import week_keys
    from protiv_dagster.resources.warehouse import Warehouse
    from protiv_dagster.sync.company import plan_sync, sync_company

    with tempfile.TemporaryDirectory(prefix="protiv-bench-") as folder:
        (home := Path(folder) / "dagster_home").mkdir()
        (home / "dagster.yaml").write_text(INSTANCES[args.instance])
        for name in ("PROTIV_WAREHOUSE_URL", "PROTIV_REGISTRY_URL"):  # the embedded default only
            os.environ.pop(name, None)
        os.environ.update(
            PROTIV_DATA_DIR=str(Path(folder) / "data"), DAGSTER_HOME=str(home), PROTIV_SECRET_KEY=generate_secret_key()
        )
        token, spawn = secrets.token_urlsafe(24), mp.get_context("spawn")
        parent, child = spawn.Pipe()
        emulator = spawn.Process(target=serve_emulator, args=(child, token, args.workers, args.days, args.latency))
        emulator.start()
        try:
            today = date.today()
            connection = ConnectionRegistry().connect(
                COMPANY,
                "quickbooks_time",
                parent.recv(),
                {"access_token": token},
                attendance_pull_date=today - timedelta(days=args.days),
                today=today,
            )
            first_day = connection.attendance_pull_date
            steps = plan_sync(COMPANY, first_day, today)
            weeks = week_keys(first_day, today)
            defs, instance = build_defs(), dg.DagsterInstance.get()
            marks: dict[str, list[float]] = defaultdict(list)

            def on_step(step, state):
                marks[step.label].append(time.perf_counter())
                timers.step = step.label if state == "started" else None

            rss_before, cpu_before, started = rss_mib(), cpu_seconds(), time.perf_counter()
            run_ids = sync_company(defs, instance, COMPANY, first_day, today, on_step)
            wall, cpu, rss_after = time.perf_counter() - started, cpu_seconds() - cpu_before, rss_mib()
            timers.step = None
            stats = [instance.get_run_step_stats(run_id) for run_id in run_ids]
            step_seconds = [sum(s.end_time - s.start_time for s in run if s.end_time) for run in stats]
            events = [len(instance.all_logs(run_id)) for run_id in run_ids]
            counts = (
                Warehouse()
                .query(
                    "select "
                    + ", ".join(f"(select count(*) from {{schema}}.{t} where company_id = ?) as {t}" for t in TABLES),
                    [COMPANY] * len(TABLES),
                )
                .iloc[0]
                .astype(int)
                .to_dict()
            )
            raw_counts = (
                Warehouse()
                .query(  # per vendor feed (live, deleted): for the peer baseline
                    "select feed, count(*) as n from {schema}.raw_timesheets where company_id = ? group by feed",
                    [COMPANY],
                )
                .set_index("feed")["n"]
                .astype(int)
                .to_dict()
            )
            parent.send(("truth", weeks))
            parent.send(("requests",))
            truth, requests = parent.recv(), parent.recv()
            instance.dispose()
        finally:
            parent.send(("stop",))
            emulator.join(timeout=10)
            if emulator.is_alive():
                emulator.terminate()
    live = sum(week[0] for week in truth["weeks"].values())
    return {
        "wall": wall,
        "cpu": cpu,
        "runs": len(run_ids),
        "steps": steps,
        "marks": marks,
        "events": events,
        "step_seconds": step_seconds,
        "raw_counts": raw_counts,
        "step_stats": [{s.step_key: s.end_time - s.start_time for s in run if s.end_time} for run in stats],
        "spent": timers.spent,
        "calls": timers.calls,
        "counts": counts,
        "truth": truth,
        "live": live,
        "ok": counts["attendance"] == live and counts["rejected_rows"] == 0,
        "requests": requests,
        "rss_before": rss_before,
        "rss_after": rss_after,
        "first_day": first_day,
    }


def machine() -> str:
    return describe()


def minimum_requests(truth: dict) -> tuple[list[tuple[str, int, int]], int]:
    """(query, records, minimum requests) per distinct query, and the naive bound total/200.

    The sync's weeks are one run asking once for the whole window (from its first Monday), so the
    minimum is the pages of each endpoint's records in the window."""
    pages = lambda n: max(1, math.ceil(n / PAGE))  # noqa: E731
    rows = [(name, truth[name], pages(truth[name])) for name in ("users", "jobcodes", "customfields")]
    first = min(truth["weeks"])
    live = sum(week[0] for week in truth["weeks"].values())
    deleted = sum(week[1] for week in truth["weeks"].values())
    rows += [(f"timesheets {first}", live, pages(live)), (f"timesheets_deleted {first}", deleted, pages(deleted))]
    return rows, math.ceil(sum(r[1] for r in rows) / PAGE)


def report(args, result: dict, baseline_rss: float) -> None:
    truth, counts, requests, live = result["truth"], result["counts"], result["requests"], result["live"]
    print(
        f"company: {args.workers} workers, {args.days} days from {result['first_day']}, {live} timesheets in the "
        f"window, {truth['deleted_total']} deleted, {truth['users']} users, {truth['jobcodes']} jobcodes, "
        f"{truth['customfields']} custom fields"
    )
    print(
        f"\ninitial sync: {result['runs']} Dagster runs, {result['wall']:.2f} s wall, "
        f"{result['cpu']:.2f} s CPU in the pipeline process"
    )
    print(f"  {'step':<32}{'wall':>7}{'dagster':>9}" + "".join(f"{k:>8}" for k in KINDS) + "   other  events  opens")
    for step, in_steps, events in zip(result["steps"], result["step_seconds"], result["events"]):
        start, end = result["marks"][step.label]
        spent = [result["spent"][step.label][kind] for kind in KINDS]
        print(
            f"  {step.label:<32}{end - start:>7.2f}{end - start - in_steps:>9.2f}"
            + "".join(f"{s:>8.2f}" for s in spent)
            + f"{in_steps - sum(spent):>8.2f}{events:>8}{result['calls'][step.label]['open']:>7}"
        )
    totals = {k: sum(v[k] for v in result["spent"].values()) for k in (*KINDS, "open", "event log")}
    overhead = sum(e - s for s, e in result["marks"].values()) - sum(result["step_seconds"])
    print(
        "  seconds; dagster = run wall minus its steps' own time; tables = ensure_tables (DDL checks, comments);\n"
        "  writes = partition replaces; reads = warehouse queries; other = mapping, validation, JSON, metadata;\n"
        "  events = the run's Dagster event log entries; opens = DuckDB connections opened (one per "
        "transaction and kept_open block; inside a block, all but the block's own cost no file open)"
    )
    print(
        f"  totals: dagster {overhead:.2f}, "
        + ", ".join(f"{k} {totals[k]:.2f}" for k in KINDS)
        + f" (of which opening DuckDB {totals['open']:.2f}); storing {sum(result['events'])} Dagster events "
        f"{totals['event log']:.2f} (outside steps and inside them, in other)"
    )

    rows, naive = minimum_requests(truth)
    made, minimum = sum(requests.values()), sum(r[2] for r in rows)
    print(
        f"\nHTTP requests made: {made}, minimum {minimum}, ratio {made / minimum:.2f}; "
        f"naive bound ceil(all records / {PAGE}) = {naive}"
    )
    by_query = Counter({f"{endpoint} {start}".strip(): n for (endpoint, start), n in requests.items()})
    for query, records, pages in rows:
        print(f"  {query:<30}{records:>6} records  minimum {pages:>3}  made {by_query.pop(query, 0):>3}")
    for query, n in sorted(by_query.items()):
        print(f"  {query:<30}{'':>6}                      made {n:>3}  (not needed)")

    print("\nrows: " + ", ".join(f"{name} {n}" for name, n in counts.items()))
    print(
        f"check: attendance {counts['attendance']} = live timesheets in the window {live}, "
        f"nothing set aside: {'OK' if result['ok'] else 'MISMATCH'}"
    )
    print(
        f"peak RSS of the pipeline process: {result['rss_after']:.0f} MiB; growth during the sync "
        f"{result['rss_after'] - result['rss_before']:.0f} MiB over {result['rss_before']:.0f} MiB just before it "
        f"({baseline_rss:.0f} MiB after importing Python + dagster + pandas + duckdb + the definitions; the rest "
        "is the registry, instance and earlier runs)"
    )


def add_instance_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--instance",
        choices=sorted(INSTANCES),
        default="laptop",
        help="the Dagster instance's event storage: the laptop's one file (default) or a file per run",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers", type=int, default=250, help="crew size of the generated company (over 500: crews of 500 repeated)"
    )
    parser.add_argument("--days", type=int, default=14, help="days of attendance to sync")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument("--repeat", type=int, default=1, help="runs, each on fresh folders")
    add_instance_option(parser)
    args = parser.parse_args()

    import dagster  # the baseline: what every run process imports (pandas and duckdb come with the definitions)

    warnings.filterwarnings("ignore", category=dagster.BetaWarning)
    import protiv_dagster.definitions  # noqa: F401

    baseline_rss = rss_mib()
    print(f"machine: {machine()}")
    print(
        f"command: initial_sync.py --workers {args.workers} --days {args.days} --latency {args.latency} "
        f"--repeat {args.repeat} --instance {args.instance}"
    )
    timers, walls, cpus = Timers(), [], []
    for attempt in range(1, args.repeat + 1):
        print(f"\n=== run {attempt} of {args.repeat} ===")
        timers.reset()
        result = run_once(args, timers)
        report(args, result, baseline_rss)
        walls.append(result["wall"])
        cpus.append(result["cpu"])
        if not result["ok"]:
            raise SystemExit(1)
    if args.repeat > 1:
        print(
            f"\nover {args.repeat} runs: wall min {min(walls):.2f} s, median {statistics.median(walls):.2f} s; "
            f"CPU min {min(cpus):.2f} s, median {statistics.median(cpus):.2f} s\n"
            "(peak RSS is per process, so runs after the first show the running maximum)"
        )


if __name__ == "__main__":
    main()
