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
        [--weeks N] [--days 15] [--changed 0] [--spread 1] [--profile FILE] [--keep DIR]

Issue 20's size is ``--companies 10000 --weeks 100 --workers 5 --days 8``: every company has 100
weeks of partitions materialized (a million company-weeks per week asset) while the vendors hold 8
days of time of 5 workers each. ``--changed`` edits that share of the companies at the vendor before
the last steady tick (the refresh then plans their syncs; no run is executed). Besides wall and CPU
time the peak RSS of this process during each evaluation is printed (its high-water mark reset before
each), standing for the daemon's and code server's memory. ``--spread N`` spreads the schedule's checks
over N ticks (``PROTIV_REFRESH_SPREAD``): each tick asks the Nth of the companies asked longest ago.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import json
import os
import pstats
import re
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import (  # noqa: E402
    Fleet,
    RequestsByCompany,
    code_location,
    cpu_seconds,
    evaluate_automation_like_daemon,
    fresh_environment,
    load,
    machine,
    seed_synced,
)

SENSORS = ("new_connections", "company_syncs", "connection_status")
SCHEDULE = "refresh_every_two_hours"
AUTOMATION = "follow_upstream_changes"
# What a quiet company's check costs at most by design (sources/*.py): QuickBooks Time one
# last_modified_timestamps call, BusyBusy a login and one GraphQL query, Aspire one listing page plus
# a token request or one reference endpoint.
BOUND = {"quickbooks_time": 2, "aspire": 2, "busybusy": 2}


def reset_peak_rss() -> None:
    """Reset this process's high-water mark of resident memory (Linux), so the next peak is the
    evaluation's own and not the seeding's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def rss_mib() -> float:
    found = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


def peak_rss_mib() -> float:
    """This process's peak resident set size (VmHWM) since the last reset, MiB."""
    with contextlib.suppress(OSError):
        found = re.search(r"^VmHWM:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
        if found:
            return int(found.group(1)) / 1024
    return 0.0


class Ticker:
    """Evaluates the code location's schedule and sensors like the daemon, keeping their cursors, and
    applies what a sensor asks for besides runs (new partitions, observations), as the daemon does."""

    def __init__(self, defs, resources, instance):
        self.defs, self.instance = defs, instance
        self.resources = resources
        self.cursors: dict[str, str | None] = {}
        self.automation_cursor = None
        # The declarative automation evaluated as dagster-daemon's asset daemon does, not with
        # dg.evaluate_automation_conditions (the testing API, which reads the company partitions
        # from storage anew for every condition node it serializes: ~300 reads per evaluation).
        self.like_daemon = True
        self.daemon_cursor: str | None = None

    def _automation_like_daemon(self) -> int:
        """One evaluation of the automation sensor as dagster-daemon runs it; the runs are requested,
        not launched. Returns the runs requested."""
        run_requests, self.daemon_cursor = evaluate_automation_like_daemon(
            self.defs, self.instance, AUTOMATION, self.daemon_cursor
        )
        return len(run_requests)

    def tick(self, name: str, profile: cProfile.Profile | None = None) -> tuple[float, float, int, str]:
        """(seconds evaluating, seconds applying sensor results, runs requested, skip message)."""
        if profile is None:
            return self._tick(name)
        profile.enable()
        try:
            return self._tick(name)
        finally:
            profile.disable()

    def _tick(self, name: str) -> tuple[float, float, int, str]:
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
        if name == AUTOMATION and self.like_daemon:
            runs = self._automation_like_daemon()
            return time.perf_counter() - started, 0.0, runs, ""
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
    parser.add_argument(
        "--weeks", type=int, default=None, help="weeks of partitions per company (default: the 3 of a 14-day pull)"
    )
    parser.add_argument("--days", type=int, default=15, help="days of generated time per company at its vendor")
    parser.add_argument(
        "--changed", type=float, default=0.0, help="share of companies edited at the vendor before the last tick"
    )
    parser.add_argument(
        "--spread",
        type=int,
        default=1,
        help="PROTIV_REFRESH_SPREAD: each schedule tick checks this share of the companies (default 1: all)",
    )
    parser.add_argument("--profile", help="write a cProfile of the last tick's slowest evaluation to this file")
    parser.add_argument("--keep", help="seed into this empty folder and keep it (instance, registry, warehouse)")
    args = parser.parse_args()

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    warnings.filterwarnings("ignore", category=dg.PreviewWarning)
    warnings.filterwarnings("ignore", message=".*get_(schedule|sensor)_def will return.*")  # evaluated like the daemon
    from protiv_dagster.automation.sensors import REPORT_CHANGED_PER_TICK
    from protiv_dagster.connections.registry import ConnectionRegistry
    from protiv_dagster.sync import runs as syncs

    print(f"machine: {machine()}")
    print(f"load average before: {load()}")
    print(
        f"command: refresh_tick.py --companies {args.companies} --workers {args.workers} --latency {args.latency} "
        f"--ticks {args.ticks} --days {args.days}"
        + (f" --weeks {args.weeks}" if args.weeks else "")
        + (f" --changed {args.changed}" if args.changed else "")
        + (f" --spread {args.spread}" if args.spread > 1 else "")
    )
    bench_started = time.perf_counter()
    with (
        contextlib.nullcontext(args.keep) if args.keep else tempfile.TemporaryDirectory(prefix="protiv-bench-")
    ) as folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        fresh_environment(Path(folder))
        os.environ["PROTIV_REFRESH_SPREAD"] = str(args.spread)  # read by the schedule at each tick
        started = time.perf_counter()
        with Fleet(args.companies, args.workers, days=args.days) as fleet:
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
                on_step=lambda name, seconds: print(f"  {name}: {seconds:.1f} s; load {load()}", flush=True),
                weeks=args.weeks,
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
            every = max(1, round(1 / args.changed)) if args.changed else 0
            changed = [c for number, (c, _) in enumerate(fleet.ids) if every and number % every == 0]
            profiles: dict[str, cProfile.Profile] = {}
            asked_in_ticks: Counter = Counter()  # schedule ticks in which each company was asked
            profiled_walls: dict[str, float] = {}
            gc.collect()
            print(f"RSS of this process before the ticks: {rss_mib():.0f} MiB")
            for number in range(args.ticks + 1):
                label = "cold (no sensor or automation cursor yet)" if number == 0 else f"steady {number}"
                last = number == args.ticks
                if last and changed:
                    fleet.latency(0)
                    fleet.edit(changed)
                    fleet.latency(args.latency)
                    label += f", {len(changed)} companies changed at the vendor"
                print(f"\n=== tick {number}: {label} ===")
                print(
                    f"  {'evaluation':<26}{'wall s':>8}{'apply s':>9}{'cpu s':>7}{'emu cpu':>8}{'requests':>10}{'max/co':>8}"
                    f"{'runs':>6}{'peak MiB':>9}  note"
                )
                tick_wall = 0.0
                for name in names:
                    counter.reset()
                    before, emulator_cpu, cpu = sum(fleet.requests().values()), fleet.cpu_seconds(), cpu_seconds()
                    profile = profiles.setdefault(name, cProfile.Profile()) if last and args.profile else None
                    reset_peak_rss()
                    evaluated, applied, runs, note = ticker.tick(name, profile)
                    peak = peak_rss_mib()
                    cpu, emulator_cpu = cpu_seconds() - cpu, fleet.cpu_seconds() - emulator_cpu
                    made = sum(fleet.requests().values()) - before
                    tick_wall += evaluated + applied
                    most = max(counter.counts.values(), default=0)
                    if profile is not None:
                        profiled_walls[name] = evaluated + applied
                    print(
                        f"  {name:<26}{evaluated:>8.2f}{applied:>9.2f}{cpu:>7.2f}{emulator_cpu:>8.2f}{made:>10}{most:>8}{runs:>6}"
                        f"{peak:>9.0f}  {note[:80]}",
                        flush=True,
                    )
                    if name == SCHEDULE:
                        checked = len(counter.counts)
                        asked_in_ticks.update(c for c, n in counter.counts.items() if n)
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
                            if over and not (last and changed):
                                failures.append(
                                    f"tick {number}: {len(over)} quiet {provider} companies cost more than "
                                    f"{BOUND[provider]} requests, e.g. {over[0]} {counter.counts[over[0]]}"
                                )
                        if runs and not (last and changed):
                            failures.append(f"tick {number}: the refresh requested {runs} runs for a quiet fleet")
                    elif name == "connection_status":
                        # A fleet's first reports follow over the first ticks, at most the bound each.
                        if runs > REPORT_CHANGED_PER_TICK:
                            failures.append(f"tick {number}: connection_status requested {runs} runs, over its bound")
                    elif runs and number > 0 and not (last and changed):
                        failures.append(f"tick {number}: {name} requested {runs} runs")
                print(f"  all evaluations of the tick: {tick_wall:.2f} s; load average {load()}")
                print(
                    "  (cpu s: this process, every thread; emu cpu: the three emulator processes, which share this "
                    "machine's cores, unlike a vendor's servers)"
                )
            times_asked = Counter(asked_in_ticks[c] for c, _ in fleet.ids)
            print(
                f"\ncompanies by the number of the {args.ticks + 1} schedule ticks that asked them (spread "
                f"{args.spread}): {dict(sorted(times_asked.items()))}"
            )
            if profiles:
                slowest = max(profiled_walls, key=profiled_walls.__getitem__)
                profiles[slowest].dump_stats(args.profile)
                print(f"\nprofile of {slowest} (last tick) in {args.profile}; by cumulative time:")
                pstats.Stats(profiles[slowest]).sort_stats("cumulative").print_stats(30)
            if args.keep:  # the daemon keeps its cursors in its storage: so does the kept folder
                (Path(folder) / "cursors.json").write_text(
                    json.dumps({"sensors": ticker.cursors, "automation": ticker.daemon_cursor})
                )
            instance.dispose()
    print(f"\nbenchmark wall time {time.perf_counter() - bench_started:.0f} s")
    if failures:
        print("FAILED: " + "; ".join(failures))
        raise SystemExit(1)
    print(
        "OK: no sync run requested; every quiet company of every vendor cost at most 2 vendor requests; "
        "connection_status's first reports within their bound per tick"
    )


if __name__ == "__main__":
    main()
