"""Benchmark: one refresh tick over a fleet of connected, already synced companies.

A fleet (default 1,000 companies of 50 workers, spread over QuickBooks Time, Aspire and BusyBusy) is
served by the three emulators, each in its own process, answering every request after a fixed latency
(default 50 ms). The fleet is seeded as a finished initial sync leaves it (bench/fleet.py). Then the
real schedule and sensors of the code location are evaluated on a real Dagster instance (SQLite, the
embedded default) the way the daemon evaluates them, nothing having changed at any vendor:
refresh_every_two_hours, new_connections, company_syncs, connection_status and the declarative
automation (follow_upstream_changes) over all the companies' partitions.

Printed per tick and per evaluation: wall time, vendor requests (total from the emulators, and per
company as counted in the client: per vendor max, mean and distribution), runs requested. The issue's
targets: a tick under 30 s; a quiet company at most 2 calls and no run. Exit status 1 when any run is
requested for the quiet fleet or a quiet company of any vendor costs more than 2 requests. Aspire has
no deleted feed: its check lists the ids of the open weeks and of a rotating slice of older days, one
page, plus either a token request (about once a day; the token is kept in the registry) or one
reference endpoint in turn (sources/aspire.py).

    .venv/bin/python bench/refresh_tick.py [--companies 1000] [--workers 50] [--latency 0.05] [--ticks 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import Fleet, RequestsByCompany, code_location, cpu_seconds, fresh_environment, load, machine, seed_synced  # noqa: E402

SENSORS = ("new_connections", "company_syncs", "connection_status")
SCHEDULE = "refresh_every_two_hours"
AUTOMATION = "follow_upstream_changes"
# What a quiet company's check costs at most by design (sources/*.py): QuickBooks Time one
# last_modified_timestamps call, BusyBusy a login and one GraphQL query, Aspire one listing page plus
# a token request or one reference endpoint.
BOUND = {"quickbooks_time": 2, "aspire": 2, "busybusy": 2}


class Ticker:
    """Evaluates the code location's schedule and sensors like the daemon, keeping their cursors, and
    applies what a sensor asks for besides runs (new partitions, observations), as the daemon does."""

    def __init__(self, defs, resources, instance):
        self.defs, self.instance = defs, instance
        self.resources = resources
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None

    def tick(self, name: str) -> tuple[float, float, int, str]:
        """(seconds evaluating, seconds applying sensor results, runs requested, skip message)."""
        import dagster as dg

        from protiv_dagster.sync import runs as syncs

        started = time.perf_counter()
        if name == SCHEDULE:
            with dg.build_schedule_context(
                instance=self.instance,
                instance_ref=self.instance.get_ref(),
                resources=self.resources,
                scheduled_execution_time=syncs.utc_now(),
                repository_def=self.defs.get_repository_def(),
            ) as context:
                data = self.defs.get_schedule_def(name).evaluate_tick(context)
            return time.perf_counter() - started, 0.0, len(data.run_requests or []), data.skip_message or ""
        if name == AUTOMATION:
            result = dg.evaluate_automation_conditions(
                defs=self.defs, instance=self.instance, cursor=self.automation_cursor
            )
            self.automation_cursor = result.cursor
            return time.perf_counter() - started, 0.0, result.total_requested, ""
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursors.get(name),
            resources=self.resources,
            definitions=self.defs,
        ) as context:
            data = self.defs.get_sensor_def(name).evaluate_tick(context)
        evaluated = time.perf_counter()
        self.cursors[name] = data.cursor
        for request in data.dynamic_partitions_requests or []:
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for event in data.asset_events or []:
            self.instance.report_runless_asset_event(event)
        return (
            evaluated - started,
            time.perf_counter() - evaluated,
            len(data.run_requests or []),
            data.skip_message or "",
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--companies", type=int, default=1000, help="connected companies, spread over the three vendors"
    )
    parser.add_argument("--workers", type=int, default=50, help="workers per company")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument("--ticks", type=int, default=1, help="steady-state ticks to time after the cold one")
    args = parser.parse_args()

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message=".*get_(schedule|sensor)_def will return.*")  # evaluated like the daemon
    from protiv_dagster.connections.registry import ConnectionRegistry
    from protiv_dagster.sync import runs as syncs

    print(f"machine: {machine()}")
    print(f"load average before: {load()}")
    print(
        f"command: refresh_tick.py --companies {args.companies} --workers {args.workers} --latency {args.latency} "
        f"--ticks {args.ticks}"
    )
    bench_started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="protiv-bench-") as folder:
        fresh_environment(Path(folder))
        started = time.perf_counter()
        with Fleet(args.companies, args.workers) as fleet:
            print(
                f"\nfleet: {args.companies} companies x {args.workers} workers, "
                + ", ".join(f"{p} {len(v.hosted)}" for p, v in fleet.vendors.items())
                + f"; generated and hosted in {time.perf_counter() - started:.1f} s"
            )
            counter = RequestsByCompany()
            (defs, resources), registry, instance = code_location(), ConnectionRegistry(), dg.DagsterInstance.get()
            print("seeding (latency 0):")
            seed_synced(
                fleet,
                registry,
                defs,
                resources,
                instance,
                syncs.utc_now(),
                on_step=lambda name, seconds: print(f"  {name}: {seconds:.1f} s", flush=True),
            )
            window_rows = resources["warehouse"].query(
                "select company_id, count(*) as n from {schema}.raw_timesheets where feed = 'WorkTicketTimes' group by company_id"
            )["n"]
            if len(window_rows):
                print(
                    f"  Aspire time rows in a company's window: {int(window_rows.min())}..{int(window_rows.max())}, "
                    f"{int((window_rows >= 1000).sum())} companies over 1,000 (a page; a check lists the open "
                    "weeks and a slice of older days that fit one)"
                )
            fleet.latency(args.latency)
            print(f"emulator latency now {args.latency * 1000:.0f} ms per request; load average {load()}")

            ticker, failures = Ticker(defs, resources, instance), []
            names = (SCHEDULE, *SENSORS, AUTOMATION)
            for number in range(args.ticks + 1):
                label = "cold (no sensor or automation cursor yet)" if number == 0 else f"steady {number}"
                print(f"\n=== tick {number}: {label} ===")
                print(
                    f"  {'evaluation':<26}{'wall s':>8}{'apply s':>9}{'cpu s':>7}{'emu cpu':>8}{'requests':>10}{'max/co':>8}"
                    f"{'runs':>6}  note"
                )
                tick_wall = 0.0
                for name in names:
                    counter.reset()
                    before, emulator_cpu, cpu = sum(fleet.requests().values()), fleet.cpu_seconds(), cpu_seconds()
                    evaluated, applied, runs, note = ticker.tick(name)
                    cpu, emulator_cpu = cpu_seconds() - cpu, fleet.cpu_seconds() - emulator_cpu
                    made = sum(fleet.requests().values()) - before
                    tick_wall += evaluated + applied
                    most = max(counter.counts.values(), default=0)
                    print(
                        f"  {name:<26}{evaluated:>8.2f}{applied:>9.2f}{cpu:>7.2f}{emulator_cpu:>8.2f}{made:>10}{most:>8}{runs:>6}"
                        f"  {note[:80]}"
                    )
                    if name == SCHEDULE:
                        checked = len(counter.counts)
                        print(
                            f"  {'':<26}companies asked: {checked}, requests counted in the client: "
                            f"{sum(counter.counts.values())} (emulators: {made})"
                        )
                        for provider in fleet.vendors:
                            costs = [counter.counts[c] for c, p in fleet.ids if p == provider]
                            over = [
                                c for c, p in fleet.ids if p == provider and counter.counts[c] > BOUND.get(p, 10**6)
                            ]
                            print(
                                f"  {'':<26}{provider}: {sum(costs)} requests, per company max {max(costs)}, mean "
                                f"{sum(costs) / len(costs):.2f}, distribution {dict(sorted(Counter(costs).items()))}"
                            )
                            if over:
                                failures.append(
                                    f"tick {number}: {len(over)} quiet {provider} companies cost more than "
                                    f"{BOUND[provider]} requests, e.g. {over[0]} {counter.counts[over[0]]}"
                                )
                        if runs:
                            failures.append(f"tick {number}: the refresh requested {runs} runs for a quiet fleet")
                    elif runs and number > 0:
                        failures.append(f"tick {number}: {name} requested {runs} runs")
                print(f"  all evaluations of the tick: {tick_wall:.2f} s; load average {load()}")
                print(
                    "  (cpu s: this process, every thread; emu cpu: the three emulator processes, which share this "
                    "machine's cores, unlike a vendor's servers)"
                )
            instance.dispose()
    print(f"\nbenchmark wall time {time.perf_counter() - bench_started:.0f} s")
    if failures:
        print("FAILED: " + "; ".join(failures))
        raise SystemExit(1)
    print("OK: no run requested; every quiet company of every vendor cost at most 2 vendor requests")


if __name__ == "__main__":
    main()
