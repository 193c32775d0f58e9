"""Benchmark: loading the code location in a new process, as every run worker, the webserver's code
server, the daemon and every ``protiv`` command does (issue 20, target 2).

Each round starts a fresh interpreter that imports ``protiv_dagster.definitions`` and prints the wall
and CPU (user + system) of that import. Two ways, alternating:

- ``as shipped``: the code location as it loads (dagster-dbt without dbt-core's modules,
  ``protiv_dagster/assets/dbt_library.py``);
- ``with dbt-core``: the same after ``import dbt.version`` first, so that dagster-dbt imports dbt-core
  as it did before that change (the import of dbt.version itself is counted).

    .venv/bin/python bench/definitions_load.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from machine import describe

ROOT = Path(__file__).resolve().parents[1]

CHILD = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
started, cpu_started = time.perf_counter(), cpu()
if sys.argv[1] == "with-dbt-core":
    import dbt.version
import protiv_dagster.definitions
modules = len(sys.modules)
dbt_loaded = any(name == "dbt" or name.startswith("dbt.") for name in sys.modules)
print(json.dumps({"wall": time.perf_counter() - started, "cpu": cpu() - cpu_started, "modules": modules, "dbt": dbt_loaded}))
"""

WAYS = ("as shipped", "with dbt-core")


def load_once(way: str) -> dict:
    finished = subprocess.run(
        [sys.executable, "-c", CHILD, "with-dbt-core" if way == "with dbt-core" else "as-shipped"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    if finished.returncode != 0:
        raise SystemExit(f"loading the code location failed ({way}):\n{finished.stderr[-3000:]}")
    return json.loads(finished.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="loads per way, alternating")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(f"command: definitions_load.py --repeat {args.repeat}")
    load_once("as shipped")  # warm the file cache and the bytecode of both
    load_once("with dbt-core")
    results: dict[str, list[dict]] = {way: [] for way in WAYS}
    for attempt in range(args.repeat):
        for way in WAYS if attempt % 2 == 0 else reversed(WAYS):
            results[way].append(load_once(way))
    print(f"\n  {'way':<14}{'wall median, s':>16}{'CPU median, s':>15}{'modules':>9}  dbt-core loaded   walls, s")
    for way, loads in results.items():
        print(
            f"  {way:<14}{statistics.median(r['wall'] for r in loads):>16.2f}"
            f"{statistics.median(r['cpu'] for r in loads):>15.2f}{loads[0]['modules']:>9}  "
            f"{'yes' if loads[0]['dbt'] else 'no':<17}" + " ".join(f"{r['wall']:.2f}" for r in loads)
        )
    shipped, before = (statistics.median(r["cpu"] for r in results[way]) for way in WAYS)
    print(f"\nCPU saved per load: {before - shipped:.2f} s ({(before - shipped) / before:.0%})")
    if results["as shipped"][0]["dbt"]:
        raise SystemExit("dbt-core was loaded with the code location: assets/dbt_library.py no longer hides it")


if __name__ == "__main__":
    main()
