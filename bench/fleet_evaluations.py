"""Benchmark: the daemon's evaluations that need no vendor, on a fleet seeded and kept by refresh_tick.py.

``refresh_tick.py --keep DIR`` leaves the seeded fleet's Dagster instance, registry and warehouse in
``DIR`` (and the environment naming them in ``DIR/env``). This script opens them in a fresh process,
as the daemon and the code server do after a restart, and evaluates what reads only the instance and
the registry: the new_connections, company_syncs and connection_status sensors and the declarative
automation (follow_upstream_changes), with their cursors kept from tick to tick like the daemon's.

Each round is a steady tick (nothing changed) followed by a tick after a refresh's week runs of
``--changed`` of the companies: their current and previous weeks of raw_timesheets are recorded as
materialized (as the week runs would), so the automation requests their attendance; then their
attendance is recorded, so it requests their ProPays. Printed per evaluation: wall and CPU time,
runs requested, and the peak RSS of this process (its high-water mark reset before each evaluation).
``--profile FILE`` writes a cProfile of the slowest evaluation of the last round.

    .venv/bin/python bench/fleet_evaluations.py DIR [--rounds 1] [--changed 0.05] [--profile FILE]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import sys
import time
import warnings
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import cpu_seconds, load, machine, record_runless  # noqa: E402
from refresh_tick import AUTOMATION, SENSORS, Ticker, peak_rss_mib, reset_peak_rss, rss_mib  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a folder seeded by refresh_tick.py --keep")
    parser.add_argument("--rounds", type=int, default=1, help="rounds of (steady tick, tick after changes)")
    parser.add_argument("--changed", type=float, default=0.05, help="share of companies whose weeks were re-synced")
    parser.add_argument("--profile", help="write a cProfile of the last round's slowest evaluation to this file")
    parser.add_argument(
        "--evaluations",
        default=",".join((*SENSORS, AUTOMATION)),
        help="comma-separated, of " + ", ".join((*SENSORS, AUTOMATION)),
    )
    args = parser.parse_args()

    folder = Path(args.folder)
    for line in (folder / "env").read_text().splitlines():
        name, _, value = line.partition("=")
        os.environ[name] = value

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    warnings.filterwarnings("ignore", message=".*get_(schedule|sensor)_def will return.*")
    from fleet import code_location

    from protiv_dagster.partitions import COMPANY_PARTITIONS_NAME, company_week_key, week_start
    from protiv_dagster.sync import runs as syncs

    print(f"machine: {machine()}")
    print(f"load average before: {load()}")
    print(
        f"command: fleet_evaluations.py {folder.name} --rounds {args.rounds} --changed {args.changed} "
        f"--evaluations {args.evaluations}"
    )
    started, cpu = time.perf_counter(), cpu_seconds()
    (defs, resources), instance = code_location(), dg.DagsterInstance.get()
    companies = instance.get_dynamic_partitions(COMPANY_PARTITIONS_NAME)
    print(
        f"definitions and instance loaded in {time.perf_counter() - started:.1f} s ({cpu_seconds() - cpu:.1f} s CPU); "
        f"{len(companies)} companies; RSS {rss_mib():.0f} MiB"
    )
    every = max(1, round(1 / args.changed))
    changed = companies[::every]
    monday = week_start(syncs.utc_now().date() - timedelta(days=1))
    weeks = [str(monday - timedelta(weeks=1)), str(monday)]
    changed_weeks = [str(company_week_key(company_id, week)) for company_id in changed for week in weeks]

    ticker = Ticker(defs, resources, instance)
    # The daemon's cursors as refresh_tick.py left them (the daemon keeps them in its storage).
    if (folder / "cursors.json").exists():
        cursors = json.loads((folder / "cursors.json").read_text())
        ticker.cursors, ticker.daemon_cursor = cursors["sensors"], cursors["automation"]
    profiles: dict[str, cProfile.Profile] = {}
    walls: dict[str, float] = {}

    def evaluate(round_number: int, label: str, names) -> None:
        print(f"\n=== round {round_number}: {label}; load average {load()} ===")
        print(f"  {'evaluation':<26}{'wall s':>8}{'apply s':>9}{'cpu s':>8}{'runs':>7}{'peak MiB':>10}")
        for name in names:
            last = round_number == args.rounds
            profile = profiles.setdefault(f"{name}, {label}", cProfile.Profile()) if last and args.profile else None
            gc.collect()
            reset_peak_rss()
            cpu = cpu_seconds()
            evaluated, applied, runs, _ = ticker.tick(name, profile)
            if profile is not None:
                walls[f"{name}, {label}"] = evaluated + applied
            print(
                f"  {name:<26}{evaluated:>8.2f}{applied:>9.2f}{cpu_seconds() - cpu:>8.2f}{runs:>7}{peak_rss_mib():>10.0f}",
                flush=True,
            )

    names = tuple(args.evaluations.split(","))
    evaluate(0, "first tick of this process (with the cursors refresh_tick.py kept, if any)", names)
    for number in range(1, args.rounds + 1):
        evaluate(number, "steady", names)
        if AUTOMATION not in names:
            continue
        record_runless(instance, [("raw_timesheets", key) for key in changed_weeks])
        evaluate(number, f"{len(changed)} companies' two raw weeks re-synced", (AUTOMATION,))
        record_runless(instance, [("attendance", key) for key in changed_weeks])
        evaluate(number, f"{len(changed)} companies' two attendance weeks re-synced", (AUTOMATION,))
    if profiles:
        slowest = max(walls, key=walls.__getitem__)
        profiles[slowest].dump_stats(args.profile)
        print(f"\nprofile of {slowest} (last round) in {args.profile}; by cumulative time:")
        pstats.Stats(profiles[slowest]).sort_stats("cumulative").print_stats(35)
    print(f"\nload average after: {load()}")
    # Kept for the next process, as the daemon keeps its cursors in its storage.
    (folder / "cursors.json").write_text(json.dumps({"sensors": ticker.cursors, "automation": ticker.daemon_cursor}))
    instance.dispose()


if __name__ == "__main__":
    main()
