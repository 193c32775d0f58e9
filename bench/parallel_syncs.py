"""Benchmark: initial syncs of several companies at once, in processes of their own, on one DuckDB
warehouse file and one laptop Dagster instance, with and without `WarehouseStore.kept_open`.

Under the daemon every run is a process of its own, and DuckDB lets one process hold a file at a
time: the others wait (with backoff) for it. `kept_open` keeps the file between the transactions of
a step, for at most a second, which makes one company's sync cheaper but may make the others wait
longer. This measures both: N companies (the vendors taking turns) are connected, then N processes
start their company's initial sync (the three runs of `protiv sync`) at the same moment; the table
gives the wall time until the last one ended, each sync's wall, and the time spent opening (or
waiting for) the DuckDB file. The variants alternate, each on a new data folder, so the machine's
drift touches both. "off" replaces `kept_open` with a block that does nothing: the code before it.

    .venv/bin/python bench/parallel_syncs.py [--companies 4] [--workers 20] [--rounds 3] [--latency 0.05]
        [--syncs 1] [--variants on,off]

Exit status 1 when a sync fails (a "stayed locked" error among them), or a company's attendance is
not the vendor's or its ProPays not the engine's (two_hour_cycle.check_company). A failed check
prints the company's raw, attendance and set-aside rows and its process's table reads and writes.
``--syncs N`` makes each process sync its company N times in a row and check its tables after each
(more traffic on the file per round, to look for a rare fault).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from fleet import Fleet, connect_fleet, fresh_environment, pull_date
from machine import describe
from two_hour_cycle import check_company

VARIANTS = ("on", "off")


def sync_one(company_id: str, variant: str, syncs: int, start, results) -> None:
    """Child process: wait for the start, run the company's initial sync (and ``syncs - 1`` syncs of
    the same window after it, each checked at once), report its figures."""
    import dagster as dg

    from protiv_dagster.definitions import build_defs
    from protiv_dagster.sync.company import sync_company
    from protiv_dagster.sync.runs import sync_window
    from protiv_dagster.warehouse.store import WarehouseStore, _kept_files

    if variant == "off":

        @contextlib.contextmanager
        def not_kept(self, seconds: float = 0.0):
            yield

        WarehouseStore.kept_open = not_kept  # type: ignore[method-assign]
    opening = [0.0, 0]
    real_open = WarehouseStore._open_duckdb

    def timed_open(self):
        started = time.perf_counter()
        try:
            opened = real_open(self)
        finally:
            opening[0] += time.perf_counter() - started
            opening[1] += 1
        # With the file held, nobody else writes its log: one there now was left by the process
        # before, whose closing checkpoint did not run, and this open has replayed it.
        kept_here = self.duckdb_file().absolute() in _kept_files()  # then the log may be this process's own
        if not kept_here and Path(f"{self.duckdb_file()}.wal").exists():
            trace.append(f"{time.time():.3f} a write-ahead log was there when the file was opened")
        return opened

    WarehouseStore._open_duckdb = timed_open  # type: ignore[method-assign]
    from protiv_dagster.warehouse.store import WarehouseReader

    trace: list[str] = []  # this process's table reads and writes, for the diagnosis of a failed check
    real_replace, real_read = WarehouseStore.replace_partitions, WarehouseReader.read_table

    def traced_replace(self, writes):
        counts = real_replace(self, writes)
        trace.append(f"{time.time():.3f} wrote " + ", ".join(f"{w.table.name}={n}" for w, n in zip(writes, counts)))
        return counts

    def traced_read(self, table, where=None, order_by=None):
        rows = real_read(self, table, where, order_by)
        trace.append(f"{time.time():.3f} read {getattr(table, 'name', table)} {dict(where or {})}: {len(rows)} rows")
        return rows

    WarehouseStore.replace_partitions = traced_replace  # type: ignore[method-assign]
    WarehouseReader.read_table = traced_read  # type: ignore[method-assign]
    from protiv_dagster.connections.registry import ConnectionRegistry

    started, error = time.perf_counter(), None
    try:
        defs, connection = build_defs(), ConnectionRegistry().get(company_id)
        with dg.DagsterInstance.get() as instance:
            first, last = sync_window(connection, datetime.now(UTC))
            start.wait()
            started = time.perf_counter()
            for number in range(syncs):
                sync_company(defs, instance, company_id, first, last)
                if syncs > 1:  # a later sync replaces what an earlier one left wrong: look now
                    counts = tables_of(WarehouseStore(), company_id)
                    trace.append(f"{time.time():.3f} after sync {number + 1}: {counts}")
                    if not counts["attendance"] or not counts["jobs"] or counts["attendance_set_aside"] > 5:
                        error = f"after sync {number + 1}: {counts}; its reads and writes {trace[-14:]}"
                        break
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the benchmark
        error = f"{type(exc).__name__}: {exc}"
    finally:
        results.put((company_id, time.perf_counter() - started, opening[0], opening[1], error, trace))


def tables_of(warehouse, company_id: str) -> dict[str, int]:
    """A company's rows in the tables a sync writes (a generated company has attendance, jobs and
    workers, and sets aside at most a few records)."""
    counts = warehouse.query(
        "select (select count(*) from {schema}.attendance where company_id = ?) as attendance, "
        "(select count(*) from {schema}.rejected_rows where company_id = ? and asset = 'attendance') "
        "as attendance_set_aside, (select count(*) from {schema}.jobs where company_id = ?) as jobs, "
        "(select count(*) from {schema}.workers where company_id = ?) as workers",
        [company_id] * 4,
    )
    return {name: int(value) for name, value in counts.iloc[0].items()}


def diagnosis(warehouse, company_id: str, truth, trace: list[str]) -> str:
    """For a company whose check failed: the vendor's entries, raw rows, attendance rows and rows set
    aside per week, to tell a lost write from a short vendor answer."""
    where = [company_id]
    raw = warehouse.query(
        "select week_start, feed, count(*) as n from {schema}.raw_timesheets where company_id = ? group by 1, 2", where
    )
    loaded = warehouse.query(
        "select date_trunc('week', work_date) as week, count(*) as n from {schema}.attendance "
        "where company_id = ? group by 1",
        where,
    )
    aside = warehouse.query(
        "select partition_key, count(*) as n from {schema}.rejected_rows where company_id = ? group by 1", where
    )
    reasons = warehouse.query(
        "select asset, reason, count(*) as n from {schema}.rejected_rows where company_id = ? group by 1, 2 "
        "order by n desc limit 5",
        where,
    )
    vendor = truth.assign(week=truth["work_date"].astype(str)).groupby("week").size().to_dict()
    return (
        f"{company_id} by day at the vendor {vendor}; raw {raw.to_dict('records')}; "
        f"attendance {loaded.to_dict('records')}; set aside {aside.to_dict('records')}; "
        f"reasons {reasons.to_dict('records')}; at the end {tables_of(warehouse, company_id)}; "
        f"its process's reads and writes: {trace}"
    )


def run_round(args, fleet: Fleet, variant: str) -> dict:
    """A new data folder, the companies connected, then every sync at once."""
    import dagster as dg

    from protiv_dagster.cli.common import LAPTOP_INSTANCE
    from protiv_dagster.connections.registry import ConnectionRegistry
    from protiv_dagster.resources.warehouse import Warehouse
    from protiv_dagster.warehouse.migrations import prepare

    with tempfile.TemporaryDirectory(prefix="protiv-parallel-") as folder:
        fresh_environment(Path(folder))
        (Path(folder) / "dagster_home" / "dagster.yaml").write_text(LAPTOP_INSTANCE)
        # The instance's files and the warehouse made before the syncs, as on a laptop in use (a
        # daemon's run workers find them made).
        dg.DagsterInstance.get().dispose()
        prepare(Warehouse().store)
        registry = ConnectionRegistry()
        connect_fleet(fleet, registry, pull_date(datetime.now(UTC), None))
        spawn = mp.get_context("spawn")
        start, results = spawn.Event(), spawn.Queue()
        children = [
            spawn.Process(target=sync_one, args=(company_id, variant, args.syncs, start, results))
            for company_id, _ in fleet.ids
        ]
        for child in children:
            child.start()
        time.sleep(args.settle)  # every child imported and waiting (their imports are not measured)
        started = time.perf_counter()
        start.set()
        figures = [results.get(timeout=600) for _ in children]
        wall = time.perf_counter() - started
        for child in children:
            child.join(timeout=60)
        errors = [f"{company}: {error}" for company, _, _, _, error, _ in figures if error]
        traces = {company: trace for company, *_, trace in figures}
        ids = [company_id for company_id, _ in fleet.ids]
        truth, warehouse = fleet.truth(ids), Warehouse()
        for company_id in ids:  # attendance as at the vendor, ProPays as the engine computes them
            problems = check_company(warehouse, registry, company_id, truth[company_id], {"deleted": []})
            if problems:
                problems.append(diagnosis(warehouse, company_id, truth[company_id], traces[company_id]))
            errors += problems
    return {
        "wall": wall,
        "syncs": sorted(seconds for _, seconds, *_ in figures),
        "opening": sum(seconds for _, _, seconds, *_ in figures),
        "opens": sum(count for _, _, _, count, *_ in figures),
        "errors": errors,
        "logs_found": sum(line.endswith("when the file was opened") for trace in traces.values() for line in trace),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=4, help="companies synced at once, a process each")
    parser.add_argument("--workers", type=int, default=20, help="crew size of each generated company")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per variant, alternating")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument("--variants", default="on,off", help="which variants to run: on, off or both")
    parser.add_argument(
        "--syncs", type=int, default=1, help="syncs of each company per round (more DuckDB traffic), each checked"
    )
    parser.add_argument("--settle", type=float, default=15.0, help="seconds the children get to import and wait")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(f"command: parallel_syncs.py {' '.join(sys.argv[1:])}")
    os.environ.pop("PROTIV_REFRESH_CRON", None)
    rounds: dict[str, list[dict]] = {variant: [] for variant in VARIANTS}
    with Fleet(args.companies, args.workers) as fleet:
        fleet.latency(args.latency)
        for number in range(args.rounds):
            chosen = [variant for variant in VARIANTS if variant in args.variants.split(",")]
            for variant in chosen if number % 2 == 0 else reversed(chosen):
                result = run_round(args, fleet, variant)
                rounds[variant].append(result)
                print(
                    f"round {number + 1}, kept_open {variant}: all {args.companies} syncs done in {result['wall']:.2f} s; "
                    f"each {', '.join(f'{s:.2f}' for s in result['syncs'])} s; DuckDB opens {result['opens']} taking "
                    f"{result['opening']:.2f} s in all (waits for the file included); a write-ahead log left "
                    f"at {result['logs_found']} opens" + (f"; ERRORS: {result['errors']}" if result["errors"] else ""),
                    flush=True,
                )
    print(f"\n{args.companies} companies of {args.workers} workers at once, medians over {args.rounds} rounds:")
    print("  kept_open  all done, s  median sync, s  slowest sync, s  DuckDB opens  opening and waiting, s")
    for variant in (variant for variant in VARIANTS if rounds[variant]):
        done = rounds[variant]
        print(
            f"  {variant:>9}  {statistics.median(r['wall'] for r in done):>11.2f}"
            f"  {statistics.median(statistics.median(r['syncs']) for r in done):>14.2f}"
            f"  {statistics.median(max(r['syncs']) for r in done):>15.2f}"
            f"  {statistics.median(r['opens'] for r in done):>12.0f}"
            f"  {statistics.median(r['opening'] for r in done):>22.2f}"
        )
    errors = [error for done in rounds.values() for result in done for error in result["errors"]]
    if errors:
        print(f"\nFAILED: {errors[:5]}", file=sys.stderr)
        raise SystemExit(1)
    print("check: every sync succeeded; every company's attendance is the vendor's and its ProPays the engine's: OK")


if __name__ == "__main__":
    main()
