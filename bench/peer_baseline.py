"""Peer baseline: our Dagster initial sync against the same sync written with dlt's REST API source.

Both contenders sync the same generated QuickBooks Time company (seed 11) from the emulator in its own
process with the same latency per request, into a DuckDB file; each gets a fresh emulator, so each
emulator's own request log counts that contender's HTTP requests the same way. Ours is
``bench/initial_sync.py``'s run (five Dagster runs to the ProPay tables); dlt's is
``bench/dlt_baseline.py`` run in its own virtualenv (``bench/.venv-dlt``, built on first use). The
table gives wall time, requests and rows per entity, with the ratios ours/dlt. Exit status 1 when a
contender's rows disagree with the other's or with the emulator's ground truth, or when a load fails.

``--workers`` takes one crew size or several (``5,20,60,250,1000``): the sizes run one after the other
in this process, ``--repeat`` rounds each, and a table at the end gives per size the medians, their
ratio, the requests and issue 20's target for that size (met or not).

    .venv/bin/python bench/peer_baseline.py [--workers 250|5,20,60,250,1000] [--days 14] [--latency 0.05] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import dlt_baseline
import initial_sync as ours

# dlt's root tables and the entity they hold; our tables holding the same entity (cleaned or raw).
ENTITIES = (  # label, dlt table, our count key, ground-truth key
    ("users", "users", "workers", "users"),
    ("jobcodes (regular)", "jobcodes", "jobs", "jobcodes"),
    ("jobcode custom fields", "customfields", None, "customfields"),
    ("timesheets in the window", "timesheets", "attendance", "live"),
    ("deleted timesheets in the window", "timesheets_deleted", "raw deleted", "deleted"),
)


class BenchmarkFailed(SystemExit):
    """A load that failed or rows that disagree: the figures would mean nothing."""

    def __init__(self, message: str):
        print(f"\nFAILED: {message}", file=sys.stderr)
        super().__init__(1)


# Issue 20, target 1: the ratio of medians ours/dlt a crew size must reach. A small company's sync is
# mostly fixed cost, so there the bar is parity; from 250 workers on, ours must be clearly faster.
LARGE_CREW = 250
TARGET_SMALL, TARGET_LARGE = 1.0, 0.8


def target_ratio(workers: int) -> float:
    return TARGET_LARGE if workers >= LARGE_CREW else TARGET_SMALL


def crew_sizes(text: str) -> list[int]:
    """``--workers``: one crew size or several, comma-separated (``5,20,60,250,1000``)."""
    try:
        sizes = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"crew sizes are whole numbers separated by commas, not {text!r}") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"at least one crew size, each of 1 worker or more, not {text!r}")
    return sizes


def window(args) -> tuple[list[str], date, date]:
    """The ISO weeks our initial sync pulls, and their first and last day (what dlt must pull too)."""
    from protiv_dagster.partitions import week_keys

    today = date.today()
    weeks = week_keys(today - timedelta(days=args.days), today)
    return weeks, date.fromisoformat(weeks[0]), date.fromisoformat(weeks[-1]) + timedelta(days=6)


def run_dlt(args, python: Path, weeks: list[str], first_day: date, last_day: date) -> dict:
    """A fresh emulator with the same company and latency; the dlt load in its own virtualenv."""
    token, spawn = secrets.token_urlsafe(24), mp.get_context("spawn")
    parent, child = spawn.Pipe()
    emulator = spawn.Process(target=ours.serve_emulator, args=(child, token, args.workers, args.days, args.latency))
    emulator.start()
    try:
        base_url = parent.recv()
        with tempfile.TemporaryDirectory(prefix="protiv-dlt-bench-") as folder:
            command = [
                str(python),
                str(Path(dlt_baseline.__file__).resolve()),
                "--base-url",
                base_url,
                "--first-day",
                first_day.isoformat(),
                "--last-day",
                last_day.isoformat(),
                "--workdir",
                folder,
            ]
            started = time.perf_counter()
            finished = subprocess.run(
                command,
                env={**os.environ, dlt_baseline.TOKEN_VARIABLE: token},
                capture_output=True,
                text=True,
                cwd=folder,
            )
            process_wall = time.perf_counter() - started
        if finished.returncode != 0:
            tail = "\n".join(finished.stderr.strip().splitlines()[-15:]).replace(token, "<token>")
            raise BenchmarkFailed(f"the dlt load exited with status {finished.returncode}:\n{tail}")
        result = json.loads(finished.stdout.strip().splitlines()[-1])
        parent.send(("truth", weeks))
        parent.send(("requests",))
        truth, requests = parent.recv(), parent.recv()
    finally:
        parent.send(("stop",))
        emulator.join(timeout=10)
        if emulator.is_alive():
            emulator.terminate()
    return {**result, "process_wall": process_wall, "truth": truth, "requests": requests}


def ground_truth(truth: dict) -> dict[str, int]:
    return {
        "users": truth["users"],
        "jobcodes": truth["jobcodes"],
        "customfields": truth["customfields"],
        "live": sum(live for live, _ in truth["weeks"].values()),
        "deleted": sum(deleted for _, deleted in truth["weeks"].values()),
    }


def time_to_raw(result: dict) -> float:
    """Our sync without the cleaned attendance steps and the ProPay run: an upper bound of time to raw.

    The week runs write raw_timesheets, then attendance; subtracting the attendance steps' own time
    and the whole ProPay run leaves what it takes to land the sheets raw. Workers and jobs have no raw
    layer (cleaned in the same step), and each run keeps its fixed Dagster bookkeeping, so this is
    an upper bound rather than a like-for-like figure.
    """
    propay_start, propay_end = result["marks"][result["steps"][-1].label]
    cleaning = sum(
        seconds for run in result["step_stats"] for key, seconds in run.items() if key.startswith("attendance")
    )
    return result["wall"] - (propay_end - propay_start) - cleaning


def compare(our: dict, peer: dict) -> list[str]:
    """Rows per entity, both contenders against each other and the truth; the mismatches found."""
    truth_ours, truth_dlt = ground_truth(our["truth"]), ground_truth(peer["truth"])
    counts = {
        **our["counts"],
        "raw deleted": our["raw_counts"].get("timesheets_deleted", 0),
        "raw live": our["raw_counts"].get("timesheets", 0),
    }
    problems = []
    if truth_ours != truth_dlt:
        problems.append(f"the two emulators served different companies: {truth_ours} vs {truth_dlt}")
    print(f"\n  {'rows loaded':<34}{'truth':>7}{'ours':>8}{'dlt':>8}   check")
    for label, dlt_table, our_key, truth_key in ENTITIES:
        expected, theirs = truth_dlt[truth_key], peer["rows"].get(dlt_table, 0)
        mine = counts.get(our_key) if our_key else None
        verdicts = ["dlt = truth" if theirs == expected else "dlt != truth"]
        if theirs != expected:
            problems.append(f"dlt loaded {theirs} {label}, the emulator holds {expected}")
        if mine is not None:
            verdicts.append("ours = truth" if mine == expected else "ours != truth")
            # Timesheets are the hard check (the brief); workers and jobs are cleaned tables whose
            # rules may legitimately drop records, so they are shown, not enforced.
            if mine != expected and truth_key in ("live", "deleted"):
                problems.append(f"our sync loaded {mine} {label}, the emulator holds {expected}")
        print(f"  {label:<34}{expected:>7}{'-' if mine is None else mine:>8}{theirs:>8}   {', '.join(verdicts)}")
    if counts["attendance"] != peer["rows"].get("timesheets"):
        problems.append(f"attendance {counts['attendance']} != dlt timesheets {peer['rows'].get('timesheets')}")
    if counts["raw live"] != counts["attendance"]:
        problems.append(f"our raw live sheets {counts['raw live']} != attendance {counts['attendance']}")
    if counts["rejected_rows"]:
        problems.append(f"our sync set aside {counts['rejected_rows']} rows")
    children = {t: n for t, n in peer["rows"].items() if t not in {e[1] for e in ENTITIES}}
    print(
        "  ours: attendance and raw_timesheets (live + deleted feeds), workers and jobs (cleaned), "
        f"propay_opportunities {counts['propay_opportunities']}; dlt child tables: "
        + (", ".join(f"{t} {n}" for t, n in children.items()) or "none")
    )
    return problems


def requests_by_endpoint(requests: Counter) -> Counter:
    """The emulator counts per (endpoint, start_date); summed per endpoint."""
    totals: Counter = Counter()
    for (endpoint, _start_date), n in requests.items():
        totals[endpoint] += n
    return totals


def report(our: dict, peer: dict) -> None:
    our_requests, dlt_requests = sum(our["requests"].values()), sum(peer["requests"].values())
    raw = time_to_raw(our)
    steps = peer["steps"]
    print(f"\n  {'figure':<48}{'ours':>10}{'dlt':>10}{'ours/dlt':>10}")
    rows = [
        ("wall time of the sync, s", our["wall"], peer["wall"]),
        ("  ours up to raw tables (upper bound), s", raw, peer["wall"]),
        ("HTTP requests (emulator's log)", our_requests, dlt_requests),
    ]
    for label, mine, theirs in rows:
        fmt = "{:>10.0f}" if isinstance(mine, int) else "{:>10.2f}"
        print(f"  {label:<48}" + fmt.format(mine) + fmt.format(theirs) + f"{mine / theirs:>10.2f}")
    print(
        f"  {'CPU of the loading process, s':<48}{our['cpu']:>10.2f}{peer['cpu']:>10.2f}{our['cpu'] / peer['cpu']:>10.2f}"
    )
    print(f"  {'Dagster runs / dlt steps':<48}{our['runs']:>10}{len(steps):>10}")
    print(
        f"  dlt: extract {steps.get('extract', 0):.2f} s, normalize {steps.get('normalize', 0):.2f} s, "
        f"load {steps.get('load', 0):.2f} s; its process took {peer['process_wall']:.2f} s in all "
        f"(interpreter start and `import dlt` {peer['import_seconds']:.2f} s, not counted above, as our "
        "imports and Dagster instance are not)"
    )
    mine_by, theirs_by = requests_by_endpoint(our["requests"]), requests_by_endpoint(peer["requests"])
    print(
        "  requests per endpoint (ours / dlt): "
        + ", ".join(f"{e} {mine_by.get(e, 0)}/{theirs_by.get(e, 0)}" for e in dlt_baseline.ENTITIES)
    )


def compare_size(args, python: Path, timers, baseline_rss: float) -> dict:
    """``args.repeat`` rounds at one crew size (``args.workers``), the order alternating; the walls and
    requests of each round, and the rows that disagreed."""
    weeks, first_day, last_day = window(args)
    print(f"\n##### {args.workers} workers #####")
    print(f"window: weeks {', '.join(weeks)} = work dates {first_day} .. {last_day}")
    rounds: dict[str, list] = {"ours": [], "dlt": [], "raw": [], "requests": [], "problems": []}
    for attempt in range(1, args.repeat + 1):
        order = ("ours", "dlt") if attempt % 2 else ("dlt", "ours")
        print(f"\n=== {args.workers} workers, round {attempt} of {args.repeat} ({' then '.join(order)}) ===")
        for contender in order:
            if contender == "ours":
                timers.reset()
                our = ours.run_once(args, timers)
            else:
                peer = run_dlt(args, python, weeks, first_day, last_day)
        if sorted(our["truth"]["weeks"]) != weeks:
            raise BenchmarkFailed(f"our sync pulled weeks {sorted(our['truth']['weeks'])}, the window is {weeks}")
        print("\n--- ours (bench/initial_sync.py) ---")
        ours.report(args, our, baseline_rss)
        print("\n--- ours against dlt ---")
        rounds["problems"] += [f"{args.workers} workers, round {attempt}: {p}" for p in compare(our, peer)]
        report(our, peer)
        rounds["ours"].append(our["wall"])
        rounds["dlt"].append(peer["wall"])
        rounds["raw"].append(time_to_raw(our))
        rounds["requests"].append((sum(our["requests"].values()), sum(peer["requests"].values())))
    if args.repeat > 1:
        ours_median, dlt_median = statistics.median(rounds["ours"]), statistics.median(rounds["dlt"])
        print(
            f"\n{args.workers} workers over {args.repeat} rounds: ours wall min {min(rounds['ours']):.2f} s, median "
            f"{ours_median:.2f} s (to raw, upper bound: median {statistics.median(rounds['raw']):.2f} s); dlt wall min "
            f"{min(rounds['dlt']):.2f} s, median {dlt_median:.2f} s; ratio of medians ours/dlt "
            f"{ours_median / dlt_median:.2f}"
        )
    return rounds


def summarize(sizes: dict[int, dict], repeat: int) -> bool:
    """The sweep's table, one line per crew size; whether every size met issue 20's target."""
    print(
        f"\nissue 20, target 1, over {repeat} round{'s' if repeat > 1 else ''} per size (median wall of the sync; "
        "target: ratio of medians ours/dlt, and no more requests than dlt)"
    )
    print(
        f"  {'workers':>7}{'ours, s':>9}{'dlt, s':>8}{'ours/dlt':>10}{'requests ours/dlt':>19}{'target':>8}   met"
        "    ours per round / dlt per round, s"
    )
    all_met = True
    for workers, rounds in sizes.items():
        ours_median, dlt_median = statistics.median(rounds["ours"]), statistics.median(rounds["dlt"])
        ratio, target = ours_median / dlt_median, target_ratio(workers)
        ours_requests = max(mine for mine, _ in rounds["requests"])
        dlt_requests = min(theirs for _, theirs in rounds["requests"])
        met = ratio <= target and ours_requests <= dlt_requests
        all_met &= met
        print(
            f"  {workers:>7}{ours_median:>9.2f}{dlt_median:>8.2f}{ratio:>10.2f}"
            f"{f'{ours_requests}/{dlt_requests}':>19}{target:>8.1f}   {'yes' if met else 'NO ':<3}    "
            + " ".join(f"{w:.2f}" for w in rounds["ours"])
            + " / "
            + " ".join(f"{w:.2f}" for w in rounds["dlt"])
        )
    return all_met


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--workers",
        type=crew_sizes,
        default=[250],
        help="crew size of the generated company, or several separated by commas (5,20,60,250,1000)",
    )
    parser.add_argument("--days", type=int, default=14, help="days of attendance to sync")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds per crew size; each round runs both, alternating who goes first"
    )
    ours.add_instance_option(parser)
    args = parser.parse_args()

    python = dlt_baseline.ensure_venv()
    versions = subprocess.run(
        [
            str(python),
            "-c",
            "from importlib.metadata import version as v; print('dlt', v('dlt') + ', duckdb', v('duckdb'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import dagster

    warnings.filterwarnings("ignore", category=dagster.BetaWarning)
    import protiv_dagster.definitions  # noqa: F401

    baseline_rss = ours.rss_mib()
    print(f"machine: {ours.machine()}")
    print(f"peer: {versions} in {dlt_baseline.VENV.name} ({', '.join(dlt_baseline.DLT_REQUIREMENTS)})")
    print(
        f"command: peer_baseline.py --workers {','.join(map(str, args.workers))} --days {args.days} "
        f"--latency {args.latency} --repeat {args.repeat} --instance {args.instance}"
    )
    timers, sizes = ours.Timers(), {}
    for workers in args.workers:
        sizes[workers] = compare_size(
            argparse.Namespace(**{**vars(args), "workers": workers}), python, timers, baseline_rss
        )
    print(f"\nload average now: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    summarize(sizes, args.repeat)
    problems = [problem for rounds in sizes.values() for problem in rounds["problems"]]
    if problems:
        raise BenchmarkFailed("rows disagree:\n  " + "\n  ".join(problems))
    print("check: both contenders loaded the emulator's records (timesheets, deleted, users, jobcodes, fields): OK")


if __name__ == "__main__":
    main()
