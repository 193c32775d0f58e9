"""Benchmark: one full two-hour refresh cycle over a fleet in which 5 % of the companies changed.

A fleet (bench/fleet.py; default 150 companies of 50 workers, the issue's full size is
``--companies 1000``) is seeded as after its initial syncs; the companies that will change get a real
initial sync through Dagster, so their warehouse tables are exactly what runs write. Then, at the
vendors, each changed company gets a manager's edits after the fact: an entry shortened in the
current week, one shortened at least a week back, one deleted. The emulators answer after 50 ms.

The cycle, timed: the refresh schedule's tick, then what the daemon does until everything settles:
runs requested by the schedule and the company_syncs sensor are executed, the sensor moves each sync
along, and the declarative automation (follow_upstream_changes) is evaluated as dagster-daemon's
asset daemon evaluates it (bench/fleet.py, ``evaluate_automation_like_daemon``) and its runs executed
(attendance, then the ProPay tables). The longest evaluation of the schedule, of each sensor and of
the automation is printed against the issue's limits. Runs execute in this process, one after another, on the real
SQLite instance: the same job code and event storage as the daemon's run workers, without the 2-4 s
of starting a Python process per run (the daemon's default launcher), which a deployment spends in
parallel on its run workers, up to the run coordinator's limits.

Checked against the emulators' ground truth (exit status 1 on a mismatch): for every changed company
the attendance table holds exactly the vendor's live entries with the vendor's hours (the edits in,
the deletion out), and its ProPay tables equal what the ProPay engine computes from those tables now.
No run may be started for a company that did not change.

    .venv/bin/python bench/two_hour_cycle.py [--companies 150] [--workers 50] [--changed 0.05] [--latency 0.05]
        [--weeks N] [--days 15] [--sync-empty-weeks] [--cold-status-cache] [--postgres]

The seeding ends in the daemon's steady state: its sensors' and the automation's cursors set and
Dagster's partition status caches built (``--cold-status-cache`` leaves those to the cycle's first
evaluation, as on a new instance).

The instance is Dagster's SQLite default, the warehouse DuckDB and the registry SQLite, unless
``--postgres`` puts all three in one new PostgreSQL database, as a deployment keeps them
(deploy/dagster.yaml): the shape for a fleet of thousands of companies (docs/scaling.md).

``--weeks`` gives every company that many weeks of partitions (issue 20: ``--companies 10000 --weeks 100
--workers 5 --days 8``). The changed companies' real initial syncs cover the weeks in which the vendors
hold time, and their older weeks, empty at the vendor, are recorded as materialized like the other
companies' (bench/fleet.py, ``seed_synced``): the same tables and partitions as a sync of all 100
weeks, which ``--sync-empty-weeks`` runs (about 15 s a company instead of 3 s).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import (  # noqa: E402
    Fleet,
    code_location,
    evaluate_automation_like_daemon,
    fresh_environment,
    load,
    machine,
    postgres_database,
    seed_synced,
)

DERIVED_DRIVE_PREFIX = "ClockTime-"  # Aspire drive rows derive from clock time, not from a vendor entry
AUTOMATION = "follow_upstream_changes"
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class Daemon:
    """What dagster-daemon does in a cycle, in this process: ticks, then runs of what they requested
    (a run key is launched once), the automation's runs one per partition with every asset
    requested for it."""

    def __init__(self, defs, resources, instance):
        self.defs, self.resources, self.instance = defs, resources, instance
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None
        self.launched_keys: set[str] = set()
        self.runs: Counter = Counter()  # job name -> runs
        self.run_companies: set[str] = set()
        self.failures: list[str] = []
        self.seconds = Counter()  # evaluation vs runs
        self.longest: dict[str, float] = {}  # schedule, sensor or automation -> its longest evaluation, s
        self.verbose = False

    def _timed(self, kind: str, started: float, name: str | None = None) -> None:
        seconds = time.perf_counter() - started
        self.seconds[kind] += seconds
        if name is not None:
            self.longest[name] = max(self.longest.get(name, 0.0), seconds)

    def schedule(self, name: str):
        import dagster as dg

        from protiv_dagster.sync import runs as syncs

        started = time.perf_counter()
        with dg.build_schedule_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            resources=self.resources,
            scheduled_execution_time=syncs.utc_now(),
            repository_def=self.defs.get_repository_def(),
        ) as context:
            data = self.defs.get_schedule_def(name).evaluate_tick(context)
        self._timed("ticks", started, name)
        return data.run_requests or []

    def sensor(self, name: str):
        import dagster as dg

        started = time.perf_counter()
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursors.get(name),
            resources=self.resources,
            definitions=self.defs,
        ) as context:
            data = self.defs.get_sensor_def(name).evaluate_tick(context)
        self.cursors[name] = data.cursor
        for event in data.asset_events or []:
            self.instance.report_runless_asset_event(event)
        self._timed("ticks", started, name)
        return data.run_requests or []

    def launch(self, requests) -> int:
        from protiv_dagster.sync.runs import run_failure_message

        launched = 0
        for request in requests:
            if request.run_key in self.launched_keys:
                continue
            self.launched_keys.add(request.run_key)
            if self.verbose:
                print(f"    run {request.job_name} {request.partition_key}", flush=True)
            started = time.perf_counter()
            result = self.defs.resolve_job_def(request.job_name).execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                run_config=QUIET_CONSOLE,
                tags={**request.tags, "dagster/run_key": request.run_key},
                raise_on_error=False,
            )
            self._timed("runs", started)
            self.runs[request.job_name] += 1
            self.run_companies.add(request.tags["protiv/company"])
            launched += 1
            if not result.success:
                self.failures.append(run_failure_message(self.instance, result.run_id))
        return launched

    def follow_upstream(self) -> int:
        """One evaluation of the declarative automation as dagster-daemon's asset daemon runs it, then
        its runs executed: one per partition and job, with the assets it requested for them."""
        from protiv_dagster.sync.runs import run_failure_message

        started = time.perf_counter()
        requests, self.automation_cursor = evaluate_automation_like_daemon(
            self.defs, self.instance, AUTOMATION, self.automation_cursor
        )
        self._timed("automation", started, AUTOMATION)
        for request in sorted(requests, key=lambda r: str(r.partition_key)):
            keys = list(request.asset_selection or [])
            if self.verbose:
                print(
                    f"    automation requests {request.partition_key}: {', '.join(k.to_user_string() for k in keys)}",
                    flush=True,
                )
            started = time.perf_counter()
            job = self.defs.resolve_implicit_job_def_def_for_assets(keys)
            # Unpartitioned requests (the analysts' marts and copy) run without a key.
            run = job.execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                asset_selection=keys,
                raise_on_error=False,
                run_config=QUIET_CONSOLE,
            )
            self._timed("runs", started)
            self.runs[f"automation: {', '.join(sorted(k.to_user_string() for k in keys))[:40]}"] += 1
            if request.partition_key is not None:
                self.run_companies.add(str(request.partition_key).split("|")[0])
            if not run.success:
                self.failures.append(run_failure_message(self.instance, run.run_id))
        return len(requests)


def check_company(warehouse, registry, company_id: str, truth, edits) -> list[str]:
    """Mismatches between the warehouse and the vendor for one changed company (empty: all right)."""
    import pandas as pd

    from protiv_dagster.propay import compute_propays
    from protiv_dagster.tables import ATTENDANCE, JOBS, PROPAY_OPPORTUNITIES, WORKERS

    problems = []
    where = {"company_id": company_id}
    attendance = warehouse.read_table(ATTENDANCE, where=where)
    loaded = attendance[~attendance["entry_id"].str.startswith(DERIVED_DRIVE_PREFIX)].set_index("entry_id").sort_index()
    # What the vendor has from the company's attendance pull date on: the emulator's generated days may
    # start before it, and a sync stores nothing before the pull date (rules: the admin's pull date).
    pull_date = registry.get(company_id).attendance_pull_date.isoformat()
    truth = truth[truth["work_date"].astype(str) >= pull_date].set_index("entry_id").sort_index()
    if list(loaded.index) != list(truth.index):
        problems.append(
            f"{company_id}: attendance ids differ from the vendor's "
            f"({len(set(loaded.index) - set(truth.index))} extra, {len(set(truth.index) - set(loaded.index))} missing)"
        )
        return problems
    if [str(d) for d in loaded["work_date"]] != list(truth["work_date"]):
        problems.append(f"{company_id}: work dates differ from the vendor's")
    closed = truth["hours"].notna()
    differ = loaded.loc[closed, "hours"].astype(float).round(6) != truth.loc[closed, "hours"].round(6)
    if differ.any():
        first = differ[differ].index[0]
        problems.append(
            f"{company_id}: hours of {int(differ.sum())} entries differ from the vendor's, e.g. {first}: "
            f"{float(loaded.loc[first, 'hours']):.4f} loaded, {float(truth.loc[first, 'hours']):.4f} at the vendor "
            f"(edited: {edits}, work date {truth.loc[first, 'work_date']})"
        )
    if any(entry_id in loaded.index for entry_id in edits["deleted"]):
        problems.append(f"{company_id}: a deleted entry is still in attendance")
    expected = compute_propays(
        warehouse.read_table(JOBS, where=where),
        attendance,
        warehouse.read_table(WORKERS, where=where),
        registry.get(company_id).settings,
        company_id,
    ).opportunities
    stored = warehouse.read_table(PROPAY_OPPORTUNITIES, where=where)
    mine = expected.set_index("propay_id")["actual_hours"].astype(float).round(4).sort_index()
    theirs = stored.set_index("propay_id")["actual_hours"].astype(float).round(4).sort_index()
    if not mine.equals(theirs):
        problems.append(
            f"{company_id}: ProPay hours are not those of the current attendance "
            f"({float(theirs.sum()):.2f} stored, {float(mine.sum()):.2f} expected)"
        )
    return problems if not pd.isna(mine.sum()) else problems + [f"{company_id}: no ProPay hours"]


def warm_status_caches(defs, instance) -> str:
    """Build Dagster's partition status cache of every partitioned asset, as a running daemon has
    them: its evaluations keep them current, each from the last one's storage id on. The seeding
    records its materializations without them, which left the whole build (every materialized
    company-week) to the cycle's first evaluation after week runs (31 s of it at 10,000 companies
    by 100 weeks), a cost a deployment pays once, not every two hours. Returns what it did."""
    from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

    started = time.perf_counter()
    graph = defs.resolve_asset_graph()
    partitioned = [key for key in graph.materializable_asset_keys if graph.get(key).partitions_def is not None]
    for key in partitioned:
        get_and_update_asset_status_cache_value(instance, key, graph.get(key).partitions_def)
    return f"partition status caches of {len(partitioned)} assets built in {time.perf_counter() - started:.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=150, help="connected companies (the issue's full size: 1000)")
    parser.add_argument("--workers", type=int, default=50, help="workers per company")
    parser.add_argument("--changed", type=float, default=0.05, help="share of companies with changes at the vendor")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument("--verbose", action="store_true", help="print every run as it starts")
    parser.add_argument(
        "--weeks", type=int, default=None, help="weeks of partitions per company (default: the 3 of a 14-day pull)"
    )
    parser.add_argument("--days", type=int, default=15, help="days of generated time per company at its vendor")
    parser.add_argument("--profile", default=None, help="write cProfile statistics of the cycle (not the seeding) here")
    parser.add_argument(
        "--cold-status-cache",
        action="store_true",
        help="leave Dagster's partition status caches unbuilt: the cycle's first evaluation builds them",
    )
    parser.add_argument(
        "--postgres",
        action="store_true",
        help="the deployment's shape (deploy/dagster.yaml): the Dagster instance, the warehouse and the registry in "
        "a new database on the PostgreSQL server at PROTIV_TEST_POSTGRES_URL (default: the local one), dropped after",
    )
    parser.add_argument(
        "--sync-empty-weeks",
        action="store_true",
        help="the changed companies' real initial syncs cover every week, the empty ones too (slow with --weeks)",
    )
    args = parser.parse_args()

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*get_(schedule|sensor)_def will return.*")
    from protiv_dagster.connections.registry import ConnectionRegistry
    from protiv_dagster.sync import runs as syncs

    print(f"machine: {machine()}")
    print(f"load average before: {load()}")
    print(
        f"command: two_hour_cycle.py --companies {args.companies} --workers {args.workers} --changed {args.changed} "
        f"--latency {args.latency} --days {args.days}"
        + (f" --weeks {args.weeks}" if args.weeks else "")
        + (" --sync-empty-weeks" if args.sync_empty_weeks else "")
        + (" --cold-status-cache" if args.cold_status_cache else "")
        + (" --postgres" if args.postgres else "")
    )
    bench_started = time.perf_counter()
    with (
        tempfile.TemporaryDirectory(prefix="protiv-bench-") as folder,
        postgres_database() if args.postgres else contextlib.nullcontext() as database,
    ):
        fresh_environment(Path(folder), database)
        print(
            "instance, warehouse, registry: "
            + ("PostgreSQL (a new database)" if database else "SQLite (Dagster's default), DuckDB, SQLite")
        )
        started = time.perf_counter()
        with Fleet(args.companies, args.workers, days=args.days) as fleet:
            every = max(1, round(1 / args.changed))
            changed = [company_id for number, (company_id, _) in enumerate(fleet.ids) if number % every == 0]
            print(
                f"\nfleet: {args.companies} companies x {args.workers} workers, "
                + ", ".join(f"{p} {len(v.hosted)}" for p, v in fleet.vendors.items())
                + f"; generated and hosted in {time.perf_counter() - started:.1f} s; {len(changed)} will change ("
                + ", ".join(f"{p} {sum(fleet.provider_of[c] == p for c in changed)}" for p in fleet.vendors)
                + ")"
            )
            (defs, resources), registry, instance = code_location(), ConnectionRegistry(), dg.DagsterInstance.get()
            print("seeding (latency 0):")
            seed_synced(
                fleet,
                registry,
                defs,
                resources,
                instance,
                syncs.utc_now(),
                full_sync=changed,
                on_step=lambda name, seconds: print(f"  {name}: {seconds:.1f} s; load {load()}", flush=True),
                weeks=args.weeks,
                sync_empty_weeks=args.sync_empty_weeks,
            )
            daemon = Daemon(defs, resources, instance)
            # The daemon has been running: its sensor and automation cursors are in steady state.
            health_runs = len(daemon.sensor("connection_status"))
            daemon.follow_upstream()
            cache = "" if args.cold_status_cache else f", {warm_status_caches(defs, instance)}"
            before_runs = len(instance.get_run_records())
            print(
                f"  steady state: connection_status cursor set ({health_runs} health runs of the initial syncs not "
                f"launched), automation cursor set{cache}; {before_runs} runs in the instance"
            )

            edits = fleet.edit(changed)
            fleet.latency(args.latency)
            requests_before = sum(fleet.requests().values())
            daemon.seconds.clear()
            daemon.longest.clear()
            daemon.verbose = args.verbose
            print(
                f"edited at the vendors: {len(edits)} companies x (2 shortened, 1 deleted); latency "
                f"{args.latency * 1000:.0f} ms; load average {load()}"
            )

            profiler = cProfile.Profile() if args.profile else None
            if profiler is not None:
                profiler.enable()
            cycle_started = time.perf_counter()
            rounds = 0

            def progress(label: str, before: Counter, launched: int) -> None:
                """One line per daemon round, so that a run stopped before the end still shows where
                the cycle's time went."""
                spent = daemon.seconds - before
                print(
                    f"  {label} at {time.perf_counter() - cycle_started:.0f} s: ticks {spent['ticks']:.1f} s, "
                    f"automation {spent['automation']:.1f} s, {launched} runs in {spent['runs']:.1f} s; "
                    f"load {load()}",
                    flush=True,
                )

            before = Counter(daemon.seconds)
            launched = daemon.launch(daemon.schedule("refresh_every_two_hours"))
            progress("schedule tick and its runs", before, launched)
            while True:
                rounds += 1
                before = Counter(daemon.seconds)
                launched = daemon.launch(daemon.sensor("company_syncs"))
                launched += daemon.follow_upstream()
                progress(f"round {rounds}", before, launched)
                pending = resources["registry"].sync_state().pending_batches()
                if not launched and not pending:
                    break
                if rounds > 20:
                    daemon.failures.append(f"not settled after 20 rounds ({len(pending)} syncs pending)")
                    break
            cycle = time.perf_counter() - cycle_started
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(args.profile)
                print(f"  the cycle's profile: {args.profile} (python -m pstats)")
            requests = sum(fleet.requests().values()) - requests_before
            print(f"\n=== cycle: {cycle:.1f} s wall ({rounds} daemon rounds after the schedule tick) ===")
            print(
                f"  ticks (schedule, sensors) {daemon.seconds['ticks']:.1f} s, automation evaluations "
                f"{daemon.seconds['automation']:.1f} s, runs {daemon.seconds['runs']:.1f} s"
            )
            print(
                "  longest evaluation of each (target 30 s; the schedule's tick 60 s): "
                + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(daemon.longest.items()))
            )
            total_runs = sum(daemon.runs.values())
            print(
                f"  runs: {total_runs} for {len(daemon.run_companies)} companies "
                f"({total_runs / max(len(daemon.run_companies), 1):.1f} per company, "
                f"{daemon.seconds['runs'] / max(total_runs, 1):.2f} s per run)"
            )
            for job, count in sorted(daemon.runs.items()):
                print(f"    {job:<50}{count:>5}")
            print(f"  vendor requests: {requests} ({requests / args.companies:.2f} per company)")
            print(f"  load average after: {load()}")

            truth = fleet.truth(changed)
            problems = list(daemon.failures)
            strays = daemon.run_companies - set(changed)
            if strays:
                problems.append(f"runs for companies that did not change: {sorted(strays)[:5]}")
            for company_id in changed:
                problems += check_company(
                    resources["warehouse"], registry, company_id, truth[company_id], edits[company_id]
                )
            instance.dispose()
    print(f"\nbenchmark wall time {time.perf_counter() - bench_started:.0f} s")
    if problems:
        print("MISMATCH:\n  " + "\n  ".join(problems[:20]))
        raise SystemExit(1)
    print(
        f"OK: {len(changed)} changed companies: attendance equals the vendor's entries (edits in, deletions out) "
        "and the ProPay tables equal the engine's result on them; no run for a quiet company"
    )


if __name__ == "__main__":
    main()
