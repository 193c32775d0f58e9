"""Benchmark: a company's force sync from the Dagster UI against the CLI's `protiv sync` (issue 20).

Embedded default, as the README's demo: SQLite registry, DuckDB warehouse and SQLite Dagster instance
in a fresh temporary data folder and DAGSTER_HOME; one generated QuickBooks Time company hosted on the
emulator in its own process (``--workers``, ``--days`` back to the pull date, ``--latency`` per
request). After an untimed initial sync, each of ``--repeat`` rounds times, in turn:

- the CLI: ``protiv sync <company>`` as a subprocess, wall from its start to its exit;
- the UI: a real ``dagster-webserver`` on workspace.yaml (started once, before the rounds: the UI is
  open when the engineer clicks) launches job ``force_sync`` for the company's partition through its
  GraphQL API, as the launchpad does, and the run's status is polled every ``--poll`` seconds until it
  has ended. A code server starts the run worker (a new process: it loads the code location, then
  runs the op that runs `protiv sync`'s code).

Both are split by the instance's own records: the Dagster runs of the sync (workers and jobs, the
weeks, the ProPays: first start, last end) and the time the sync was recorded in the sync state (its
batch's ``finished_at``). CPU (user + system) is that of the process doing the sync (the CLI's, the
run worker's), sampled at each poll until the sync is recorded; the CLI's to its exit is printed too.
For the UI also: the launch call's answer, the wait in the queue, the run worker's process start (its
"Started process for run" event), the run's start (``RUN_START``: the code location loaded) and end,
and the webserver's CPU (the polls included).

The Dagster instance is the laptop's, as `protiv ui` / `make ui` (``dagster dev``) use it: its
dagster.yaml is the one ``protiv_dagster.cli.common.dagster_home`` writes, so a launched run is queued
and the Dagster daemon (``dagster-daemon run``, started beside the webserver) dequeues and launches it;
the daemon's sensors and schedule are stopped first (through GraphQL, as in the UI), so that no run but
the force sync's competes. With ``--no-daemon`` the instance starts a launched run at once
(DefaultRunCoordinator, as tests/test_webserver_force_sync.py does) and no daemon runs.

Exit status 1 when a sync fails or is not recorded.

    .venv/bin/python bench/ui_force_sync.py [--workers 20] [--days 14] [--latency 0.05] [--repeat 3] [--no-daemon]
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing as mp
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "bench"), str(ROOT)]

from fleet import Vendor, serve_vendor  # noqa: E402
from machine import describe  # noqa: E402

from tests.graphql import Webserver, dagster_webserver  # noqa: E402

PROVIDER = "quickbooks_time"
COMPANY = "bench-ui-force"
LOCATION = "protiv_dagster"
PROTIV = ROOT / ".venv" / "bin" / "protiv"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

REPOSITORY = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"
LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } }
}
"""
STATUS = "query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status } } }"
INSTIGATORS = """
query ($selector: RepositorySelector!) {
  sensorsOrError(repositorySelector: $selector) { ... on Sensors { results { id name } } }
  schedulesOrError(repositorySelector: $selector) { ... on Schedules { results { id name } } }
}
"""
STOP_SENSOR = "mutation ($id: String) { stopSensor(id: $id) { __typename } }"
STOP_SCHEDULE = "mutation ($id: String) { stopRunningSchedule(id: $id) { __typename } }"


@dataclass
class Round:
    """One force sync, timed from its start (the subprocess's start, or the launch call)."""

    kind: str
    wall: float  # to the process's exit (CLI), to the run's end as the UI's poll saw it (UI)
    cpu: float  # of the CLI process, or of the run worker, until the sync was recorded
    to_recorded: float  # to the sync's batch recorded as succeeded
    to_first_run: float
    runs: float  # first sync run's start to the last one's end
    after_runs: float  # last sync run's end to the sync recorded
    detail: dict[str, float] = field(default_factory=dict)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def cpu_of(pid: int) -> float | None:
    """User + system seconds a process has used so far, from /proc; None once it has gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def stop_the_automation(server: Webserver, selector: dict) -> list[str]:
    """Turn every sensor and the schedule off, as a data engineer would in the UI; their names."""
    found = server.query(INSTIGATORS, {"selector": selector})
    stopped = []
    for sensor in found["sensorsOrError"]["results"]:
        server.query(STOP_SENSOR, {"id": sensor["id"]})
        stopped.append(sensor["name"])
    for schedule in found["schedulesOrError"]["results"]:
        server.query(STOP_SCHEDULE, {"id": schedule["id"]})
        stopped.append(schedule["name"])
    return stopped


@contextlib.contextmanager
def dagster_daemon(env: dict[str, str], log: Path):
    """``dagster-daemon run`` on workspace.yaml in its own process group (it starts its own code
    server), stopped with the group on the way out."""
    executable = Path(sys.executable).with_name("dagster-daemon")
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(executable), "run", "-w", str(ROOT / "workspace.yaml")],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def wait_for_the_queue_daemon(instance, within: float = 180) -> None:
    """Until the daemon's run queue has beaten once: before, a queued run would wait for its start."""
    started = time.time()
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        beat = instance.get_daemon_heartbeats().get("QUEUED_RUN_COORDINATOR")
        if beat is not None and beat.timestamp > started:
            return
        time.sleep(0.5)
    raise SystemExit(f"the daemon's run queue did not beat within {within:.0f} s")


def recorded_sync(store, started_at: datetime, trigger: str):
    """The sync of ``trigger`` asked since ``started_at`` once it has been recorded as ended, else None."""
    batches = [b for b in store.batches_of(COMPANY) if b.trigger == trigger and b.requested_at >= started_at]
    return batches[0] if batches and batches[0].finished_at is not None else None


def sync_batch_after(store, started_at: datetime, trigger: str):
    batches = [b for b in store.batches_of(COMPANY) if b.trigger == trigger and b.requested_at >= started_at]
    if len(batches) != 1 or batches[0].status != "succeeded" or batches[0].finished_at is None:
        raise SystemExit(f"the {trigger} of {COMPANY} was not recorded as one succeeded sync: {batches}")
    return batches[0]


def sync_runs(instance, trigger: str, after: float, force_sync_run: str | None = None) -> tuple[float, float, int]:
    """(first start, last end, count) of the sync's Dagster runs created after ``after``."""
    import dagster as dg

    from protiv_dagster.jobs import FORCE_SYNC_RUN_TAG

    tags = {"protiv/company": COMPANY, "protiv/trigger": trigger}
    if force_sync_run:
        tags[FORCE_SYNC_RUN_TAG] = force_sync_run
    records = instance.get_run_records(dg.RunsFilter(tags=tags, created_after=datetime.fromtimestamp(after, UTC)))
    if len(records) != 3 or any(r.dagster_run.status != dg.DagsterRunStatus.SUCCESS for r in records):
        raise SystemExit(f"expected the sync's 3 successful runs, found {[r.dagster_run.status for r in records]}")
    return min(r.start_time for r in records), max(r.end_time for r in records), len(records)


def cli_round(env: dict[str, str], folder: Path, instance, store, poll: float) -> Round:
    """``protiv sync`` as a subprocess; its CPU is sampled until its sync is recorded, and at its exit."""
    started_at = datetime.now(UTC)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.time()
    clock_start = time.perf_counter()
    process = subprocess.Popen(
        [str(PROTIV), "sync", COMPANY], cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    cpu_to_recorded = None
    while process.poll() is None:
        if cpu_to_recorded is None and recorded_sync(store, started_at, "force_sync") is not None:
            cpu_to_recorded = cpu_of(process.pid)
        time.sleep(poll)
    wall = time.perf_counter() - clock_start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = process.stdout.read().decode(errors="replace") if process.stdout else ""
    if process.returncode != 0:
        raise SystemExit(f"protiv sync {COMPANY} failed ({process.returncode}):\n{output[-3000:]}")
    batch = sync_batch_after(store, started_at, "force_sync")
    first, last, _ = sync_runs(instance, "force_sync", started)
    recorded = batch.finished_at.timestamp()
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    return Round(
        "CLI",
        wall,
        cpu_to_recorded if cpu_to_recorded is not None else cpu,
        recorded - started,
        first - started,
        last - first,
        recorded - last,
        {"after recorded to exit": started + wall - recorded, "CPU to exit (with its children)": cpu},
    )


def print_timeline(instance, run_id: str, launched: float) -> None:
    """Every event of the force_sync run and of the sync's runs it started, by seconds since the launch."""
    import dagster as dg

    from protiv_dagster.jobs import FORCE_SYNC_RUN_TAG

    runs = [run_id] + [r.run_id for r in instance.get_runs(dg.RunsFilter(tags={FORCE_SYNC_RUN_TAG: run_id}))]
    entries = sorted((e for r in runs for e in instance.all_logs(r)), key=lambda e: e.timestamp)
    for entry in entries:
        kind = entry.dagster_event.event_type_value if entry.dagster_event else "log"
        job = "force_sync" if entry.run_id == run_id else entry.job_name
        text = (
            (entry.user_message or entry.message or "").splitlines()[0][:90] if kind in ("log", "ENGINE_EVENT") else ""
        )
        print(f"      {entry.timestamp - launched:7.2f} s  {job:<22} {kind:<24} {text}")


def ui_round(server: Webserver, selector: dict, instance, store, poll: float, timeline: bool = False) -> Round:
    """Launch force_sync as the launchpad does, poll its status; the run worker's CPU is sampled
    (its pid from the run's "Started process" event) until the sync is recorded."""
    import dagster as dg

    params = {
        "selector": {**selector, "jobName": "force_sync"},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": COMPANY}]},
        "mode": "default",
    }
    webserver_before = cpu_of(server.process.pid) or 0.0
    started_at = datetime.now(UTC)
    started = time.time()
    clock_start = time.perf_counter()
    launched = server.query(LAUNCH, {"params": params})["launchRun"]
    answered = time.perf_counter() - clock_start
    if launched["__typename"] != "LaunchRunSuccess":
        raise SystemExit(f"launch of force_sync refused: {launched}")
    run_id = launched["run"]["runId"]
    worker, worker_cpu = None, None
    while (status := server.query(STATUS, {"runId": run_id})["runOrError"]["status"]) not in (
        "SUCCESS",
        "FAILURE",
        "CANCELED",
    ):
        if time.perf_counter() - clock_start > 300:
            raise SystemExit(f"force_sync run {run_id} still {status} after 300 s")
        if worker is None:
            worker = run_worker_pid(instance, run_id)
        elif recorded_sync(store, started_at, "ui_force_sync") is None:
            worker_cpu = cpu_of(worker) or worker_cpu
        time.sleep(poll)
    wall = time.perf_counter() - clock_start
    webserver_cpu = (cpu_of(server.process.pid) or 0.0) - webserver_before
    if status != "SUCCESS":
        raise SystemExit(f"force_sync run {run_id} ended {status}; its events are in the instance")
    batch = sync_batch_after(store, started_at, "ui_force_sync")
    first, last, _ = sync_runs(instance, "ui_force_sync", started, force_sync_run=run_id)
    record = instance.get_run_record_by_id(run_id)
    # RUN_STARTING: the run handed to the launcher (by the daemon from the queue, or at once).
    [starting] = [e.timestamp for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_STARTING)]
    process_started = next(
        entry.timestamp
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        if entry.message.startswith("Started process for run")
    )
    recorded = batch.finished_at.timestamp()
    if timeline:
        print_timeline(instance, run_id, started)
    return Round(
        "UI",
        wall,
        worker_cpu if worker_cpu is not None else float("nan"),
        recorded - started,
        first - started,
        last - first,
        recorded - last,
        {
            "launch call answered": answered,
            "launch to RUN_STARTING (out of the queue)": starting - started,
            "launch to worker process started": process_started - started,
            "worker started to RUN_START (code location loaded)": record.start_time - process_started,
            "RUN_START to first sync run": first - record.start_time,
            "recorded to RUN_SUCCESS": record.end_time - recorded,
            "RUN_SUCCESS seen by the poll": started + wall - record.end_time,
            "webserver CPU": webserver_cpu,
        },
    )


def run_worker_pid(instance, run_id: str) -> int | None:
    import re

    import dagster as dg

    for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        if found := re.match(r"Started process for run \(pid: (\d+)\)", entry.message):
            return int(found[1])
    return None


def print_round(number: int, result: Round) -> None:
    print(
        f"  {result.kind} round {number}: to the sync recorded {result.to_recorded:.2f} s, wall {result.wall:.2f} s, "
        f"CPU {result.cpu:.2f} s; to the first sync run {result.to_first_run:.2f} s, the 3 runs {result.runs:.2f} s, "
        f"then recorded after {result.after_runs:.2f} s (load {load()})"
    )
    print("    " + "; ".join(f"{name} {value:.2f} s" for name, value in result.detail.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=20, help="crew size of the generated company")
    parser.add_argument("--days", type=int, default=14, help="days of attendance to sync (the pull date)")
    parser.add_argument("--latency", type=float, default=0.05, help="emulator latency per request, seconds")
    parser.add_argument("--repeat", type=int, default=3, help="rounds, each a CLI and a UI force sync")
    parser.add_argument("--poll", type=float, default=0.25, help="seconds between the UI run's status polls")
    parser.add_argument("--timeline", action="store_true", help="print each UI round's Dagster events with their times")
    parser.add_argument(
        "--no-daemon",
        action="store_true",
        help="no Dagster daemon: the instance starts a launched run at once (DefaultRunCoordinator)",
    )
    args = parser.parse_args()

    import warnings

    import dagster as dg

    warnings.filterwarnings("ignore", category=dg.BetaWarning)
    from protiv_dagster.cli.common import dagster_home
    from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
    from protiv_dagster.sync.state import SyncStateStore

    print(f"machine: {describe()}")
    print(
        f"command: ui_force_sync.py --workers {args.workers} --days {args.days} --latency {args.latency:g} "
        f"--repeat {args.repeat} --poll {args.poll:g}" + (" --no-daemon" if args.no_daemon else "")
    )
    results: list[Round] = []
    with tempfile.TemporaryDirectory(prefix="protiv-bench-") as name:
        folder = Path(name)
        home = folder / "dagster_home"
        for variable in ("PROTIV_WAREHOUSE_URL", "PROTIV_REGISTRY_URL", "PROTIV_WEBHOOK_URL", "PROTIV_REFRESH_CRON"):
            os.environ.pop(variable, None)  # the embedded default
        os.environ.update(
            PROTIV_DATA_DIR=str(folder / "data"), DAGSTER_HOME=str(home), PROTIV_SECRET_KEY=generate_secret_key()
        )
        if args.no_daemon:
            home.mkdir()
            (home / "dagster.yaml").write_text(
                "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
                "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
            )
        else:
            dagster_home()  # the laptop's instance, as `protiv ui` finds it
        print(f"instance: {(home / 'dagster.yaml').read_text().strip()!r}")
        env = dict(os.environ)
        as_of = datetime.combine(date.today(), clock(0), tzinfo=UTC)
        context = mp.get_context("spawn")
        parent, child = context.Pipe()
        emulator = context.Process(
            target=serve_vendor, args=(child, PROVIDER, [COMPANY], args.workers, args.days + 1, as_of), daemon=True
        )
        emulator.start()
        vendor = Vendor(PROVIDER, emulator, parent)  # type: ignore[arg-type]  # fleet.py's annotation: mp.Process
        try:
            vendor.base_url, vendor.hosted = parent.recv()
            vendor.call("latency", args.latency)
            credentials, zone = vendor.hosted[COMPANY]
            ConnectionRegistry().connect(
                COMPANY,
                PROVIDER,
                vendor.base_url,
                credentials,
                attendance_pull_date=date.today() - timedelta(days=args.days),
                settings={"timezone": zone},
            )
            started = time.perf_counter()
            initial = subprocess.run(
                [str(PROTIV), "sync", COMPANY], cwd=folder, env=env, capture_output=True, text=True
            )
            if initial.returncode != 0:
                raise SystemExit(f"the initial sync failed:\n{initial.stdout[-3000:]}{initial.stderr[-3000:]}")
            print(f"initial sync (protiv sync, not timed as a round): {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            with contextlib.ExitStack() as running:
                server = running.enter_context(
                    dagster_webserver(ROOT / "workspace.yaml", env, folder / "webserver.log")
                )
                [repository] = server.query(REPOSITORY)["repositoriesOrError"]["nodes"]
                selector = {"repositoryLocationName": LOCATION, "repositoryName": repository["name"]}
                if not args.no_daemon:
                    print(f"stopped in the UI: {', '.join(stop_the_automation(server, selector))}")
                    running.enter_context(dagster_daemon(env, folder / "daemon.log"))
                print(
                    f"dagster-webserver up with its code location loaded in {time.perf_counter() - started:.1f} s"
                    + ("" if args.no_daemon else ", dagster-daemon started")
                    + f"; load {load()}"
                )
                store = SyncStateStore()
                with dg.DagsterInstance.get() as instance:
                    if not args.no_daemon:
                        wait_for_the_queue_daemon(instance)
                    for number in range(1, args.repeat + 1):
                        # Each round's order alternates, so a drift of the machine's load favours neither.
                        kinds = ("CLI", "UI") if number % 2 else ("UI", "CLI")
                        for kind in kinds:
                            if kind == "CLI":
                                result = cli_round(env, folder, instance, store, args.poll)
                            else:
                                result = ui_round(server, selector, instance, store, args.poll, args.timeline)
                            results.append(result)
                            print_round(number, result)
        finally:
            with contextlib.suppress(BrokenPipeError, OSError):
                parent.send(("stop",))
            emulator.join(timeout=10)
            if emulator.is_alive():
                emulator.terminate()

    print(f"\nover {args.repeat} rounds (load at the end {load()}), median:")
    print(
        "| | to the sync recorded, s | wall, s | CPU, s | to the first sync run, s | the 3 runs, s | each round to recorded, s |"
    )
    print("|---|---|---|---|---|---|---|")
    for kind in ("CLI", "UI"):
        mine = [r for r in results if r.kind == kind]

        def median(values) -> str:
            return f"{statistics.median(values):.2f}"

        print(
            f"| {kind} | {median([r.to_recorded for r in mine])} | {median([r.wall for r in mine])} | "
            f"{median([r.cpu for r in mine])} | {median([r.to_first_run for r in mine])} | "
            f"{median([r.runs for r in mine])} | {' '.join(f'{r.to_recorded:.2f}' for r in mine)} |"
        )
    ui = statistics.median(r.to_recorded for r in results if r.kind == "UI")
    cli = statistics.median(r.wall for r in results if r.kind == "CLI")
    print(f"UI to the sync recorded / CLI wall (median): {ui / cli:.2f} (target of issue 20: at most 1.0)")


if __name__ == "__main__":
    main()
