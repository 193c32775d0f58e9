"""Benchmark: the force sync button, from the click to current ProPay tables (issue 18).

Embedded default: SQLite registry, DuckDB warehouse and SQLite Dagster instance in a fresh temporary
data folder and DAGSTER_HOME; the service runs as ``protiv serve`` starts it, in its own process; the
QuickBooks Time emulator hosts ``--repeat`` generated companies of ``--workers`` workers (the fleet's
generator, bench/fleet.py) in its own process and answers every request after ``--latency`` seconds.

Per company, in turn: an admin connects it through the service (``PUT /companies/{id}/integration``,
the vendor asked first; the service then runs its initial sync itself, and the benchmark waits for the
green status), a manager edits its timesheets at the vendor (two entries shortened, one of them at least
a week back, one deleted), then the click: ``POST /companies/{id}/syncs``, and the sync's status URL
polled every ``--poll`` seconds until it reads succeeded. That interval, click to succeeded, is the
figure (the ProPay tables are written by the sync's last run, before it is marked succeeded). Then the
warehouse is checked: attendance equals the vendor's entries after the edits and
``propay_opportunities`` equals the ProPay engine's result on them, i.e. the ProPays were recomputed.
Also printed: the click's own answer time, each Dagster run's duration (from the instance), the time
before the first run (queue and the vendor's cursor check) and after the last, vendor requests.
Exit status 1 when a sync fails or a check does not hold.

    .venv/bin/python bench/service_force_sync.py [--workers 60] [--days 14] [--latency 0.05] [--repeat 3]
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
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import Vendor, serve_vendor  # noqa: E402
from machine import describe  # noqa: E402
from service_status import start_service, stop_service  # noqa: E402
from two_hour_cycle import check_company  # noqa: E402

from protiv_dagster.cli.common import LAPTOP_INSTANCE  # noqa: E402

PROVIDER = "quickbooks_time"


def wait_until(predicate, timeout: float, poll: float, what: str):
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(poll)
    raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")


def one_company(company_id: str, vendor: Vendor, call, keys, args, instance) -> dict:
    """Connect, wait for green, edit at the vendor, click, wait for succeeded, check the warehouse."""
    import requests

    from protiv_dagster.connections.registry import ConnectionRegistry
    from protiv_dagster.resources.warehouse import Warehouse

    headers = {"Authorization": f"Bearer {keys.token(f'admin-{company_id}', 'admin', company_id)}"}
    credentials, zone = vendor.hosted[company_id]
    started = time.perf_counter()
    answer = call(
        "PUT",
        f"/companies/{company_id}/integration",
        headers,
        json={
            "provider": PROVIDER,
            "base_url": vendor.base_url,
            "credentials": credentials,
            "attendance_pull_date": (date.today() - timedelta(days=args.days)).isoformat(),
            "settings": {"timezone": zone},
        },
    )
    if answer.status_code != 201:
        raise SystemExit(f"connect of {company_id}: HTTP {answer.status_code} {answer.text[:300]}")

    def green():
        status = call("GET", f"/companies/{company_id}/integration", headers).json()
        if status["status"] == "failed":
            raise SystemExit(f"{company_id}'s initial sync failed: {status['reason']}")
        under_way = [s for s in status["syncs"] if s["status"] in ("queued", "running")]
        return status if status["status"] == "connected" and not under_way else None

    wait_until(green, 300, 0.25, f"{company_id} to be connected, its initial sync ended")
    connected = time.perf_counter() - started
    edits = vendor.call("edit", [company_id])[company_id]
    requests_before = vendor.call("requests")

    clicked_at = datetime.now(UTC)
    click = time.perf_counter()
    answer = call("POST", f"/companies/{company_id}/syncs", headers)
    answered = time.perf_counter() - click
    if answer.status_code != 202 or answer.json()["already_running"]:
        raise SystemExit(f"force sync of {company_id}: HTTP {answer.status_code} {answer.text[:300]}")
    status_url = answer.json()["status_url"]

    def finished():
        sync = requests.get(status_url, headers=headers, timeout=60).json()
        return sync if sync["status"] in ("succeeded", "failed") else None

    sync = wait_until(finished, 600, args.poll, f"{company_id}'s force sync")
    seconds = time.perf_counter() - click
    done_at = datetime.now(UTC)
    requests_made = vendor.call("requests") - requests_before
    if sync["status"] != "succeeded":
        raise SystemExit(f"{company_id}'s force sync failed: {sync.get('error')}")

    runs = []
    for run_id in sync["run_ids"]:
        run, stats = instance.get_run_by_id(run_id), instance.get_run_stats(run_id)
        runs.append((run.job_name, stats.start_time, stats.end_time))
    first_start = min(r[1] for r in runs)
    last_end = max(r[2] for r in runs)
    registry = ConnectionRegistry()
    pull_date = registry.get(company_id).attendance_pull_date.isoformat()
    truth = vendor.call("truth", [company_id])[company_id]
    truth = truth[truth["work_date"] >= pull_date]  # the generator's first day is before the pull date
    problems = check_company(Warehouse(), registry, company_id, truth, edits)
    propays = len(Warehouse().read_table("propay_opportunities", where={"company_id": company_id}))
    return {
        "company_id": company_id,
        "connected": connected,
        "seconds": seconds,
        "answered": answered,
        "runs": runs,
        "before_first_run": first_start - clicked_at.timestamp(),
        "after_last_run": done_at.timestamp() - last_end,
        "requests": requests_made,
        "propays": propays,
        "attendance": len(truth),
        "problems": problems,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=60, help="crew size of each generated company")
    parser.add_argument("--days", type=int, default=14, help="days of attendance to sync (the pull date)")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument("--repeat", type=int, default=3, help="force syncs, each of its own company")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between the sync status polls")
    args = parser.parse_args()

    import warnings

    import dagster as dg
    import requests

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from protiv_dagster.connections.registry import generate_secret_key
    from protiv_dagster.integrations.auth import DevelopmentKeys

    print(f"machine: {describe()}")
    print(
        f"command: service_force_sync.py --workers {args.workers} --days {args.days} --latency {args.latency:g} "
        f"--repeat {args.repeat} --poll {args.poll:g}"
    )
    ids = [f"bench-force-{n}" for n in range(1, args.repeat + 1)]
    results, ok = [], True
    with tempfile.TemporaryDirectory(prefix="protiv-bench-") as folder:
        (home := Path(folder) / "dagster_home").mkdir()
        (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)  # the laptop's instance, as protiv writes it
        for name in ("PROTIV_WAREHOUSE_URL", "PROTIV_REGISTRY_URL", "PROTIV_WEBHOOK_URL"):  # the embedded default
            os.environ.pop(name, None)
        keys = DevelopmentKeys(Path(folder) / "keys")
        keys.create()
        os.environ.update(
            PROTIV_DATA_DIR=str(Path(folder) / "data"),
            DAGSTER_HOME=str(home),
            PROTIV_SECRET_KEY=generate_secret_key(),
            PROTIV_SERVICE_JWKS=str(keys.jwks_path),
        )
        # The fleet's emulator process, hosting one company per repeat, as seen at midnight UTC today.
        as_of = datetime.combine(date.today(), clock(0), tzinfo=UTC)
        parent, child = mp.get_context("spawn").Pipe()
        process = mp.get_context("spawn").Process(
            target=serve_vendor, args=(child, PROVIDER, ids, args.workers, args.days + 1, as_of), daemon=True
        )
        process.start()
        vendor = Vendor(PROVIDER, process, parent)  # type: ignore[arg-type]  # fleet.py's annotation: mp.Process
        vendor.base_url, vendor.hosted = parent.recv()
        vendor.call("latency", args.latency)
        server, url = start_service(Path(folder))
        try:

            def call(method: str, path: str, headers: dict, **options) -> requests.Response:
                return requests.request(method, url + path, headers=headers, timeout=120, **options)

            with dg.DagsterInstance.get() as instance:
                for number, company_id in enumerate(ids, 1):
                    result = one_company(company_id, vendor, call, keys, args, instance)
                    results.append(result)
                    print(
                        f"\n=== force sync {number} of {args.repeat}: {company_id} ({args.workers} workers, "
                        f"{result['attendance']} entries at the vendor in the window) ==="
                    )
                    print(
                        f"  click to succeeded: {result['seconds']:.2f} s (the click answered 202 in "
                        f"{1000 * result['answered']:.0f} ms; status polled every {1000 * args.poll:.0f} ms)"
                    )
                    runs = result["runs"]
                    print(
                        f"  Dagster runs: {len(runs)}, "
                        + ", ".join(f"{job} {end - start:.2f} s" for job, start, end in runs)
                        + f" (sum {sum(end - start for _, start, end in runs):.2f} s); before the first run "
                        f"{result['before_first_run']:.2f} s (queue, vendor cursor check), after the last "
                        f"{result['after_last_run']:.2f} s (recording, seen by the poll)"
                    )
                    print(
                        f"  vendor requests {result['requests']}; propay_opportunities {result['propays']} rows; "
                        f"connect to green (the service's own initial sync, not timed as the click) "
                        f"{result['connected']:.2f} s"
                    )
                    check = "; ".join(result["problems"]) or "OK"
                    print(
                        "  check: attendance = the vendor's entries after the edits, ProPay hours = the engine's "
                        f"on them: {check}"
                    )
                    ok &= not result["problems"]
        finally:
            stop_service(server)
            with contextlib.suppress(BrokenPipeError, OSError):
                parent.send(("stop",))
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
    seconds = [r["seconds"] for r in results]
    print(
        f"\nover {len(seconds)} force syncs: click to current ProPays median {statistics.median(seconds):.2f} s "
        f"(each: {', '.join(f'{s:.2f}' for s in seconds)} s); target < 15 s"
    )
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
