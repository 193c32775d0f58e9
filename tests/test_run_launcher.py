"""MonitoredRunLauncher's health check against real code servers (`dagster api grpc` subprocesses)
and real run workers, killed with SIGKILL as the out-of-memory killer does; the run failed by
Dagster's own run-monitoring step (monitor_started_run), as the daemon calls it.

The instance is a temporary SQLite one shared by this process, the code servers and their run
workers; tests/test_daemon_e2e.py runs the same launcher under the real daemon on PostgreSQL.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._core.workspace.context import WorkspaceProcessContext
from dagster._core.workspace.load_target import EmptyWorkspaceTarget, GrpcServerTarget
from dagster._daemon.monitoring.run_monitoring import monitor_started_run
from dagster._grpc.client import DagsterGrpcClient

from protiv_dagster.run_launcher import CALL_TIMEOUT_SECONDS, WORKER_GONE, MonitoredRunLauncher
from tests.run_launcher_location import long_run
from tests.run_workers import children_of, code_server_worker

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
LOCATION = "long_runs"
GRACE = 3  # seconds a code server may be unreachable before its runs are failed (60 in deploy/dagster.yaml)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def code_server(port: int, command: str = "api grpc"):
    """`dagster api grpc` (or `dagster code-server start`) serving tests/run_launcher_location.py."""
    process = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("dagster")),
            *command.split(),
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
            "-f",
            str(ROOT / "tests" / "run_launcher_location.py"),
            "--location-name",
            LOCATION,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = DagsterGrpcClient(port=port, host="127.0.0.1")
        deadline = time.monotonic() + 60
        while True:
            try:
                client.ping("up")
                break
            except Exception:
                assert process.poll() is None and time.monotonic() < deadline, "the code server did not start"
                time.sleep(0.3)
        yield process
    finally:
        for pid in [*children_of(process.pid), process.pid]:  # its run workers (or inner server) too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.fixture
def instance(tmp_path):
    overrides = {
        "run_launcher": {
            "module": "protiv_dagster.run_launcher",
            "class": "MonitoredRunLauncher",
            "config": {"unreachable_grace_seconds": GRACE},
        },
        "run_monitoring": {"enabled": True, "max_resume_run_attempts": 0},
        "run_retries": {"enabled": True, "max_retries": 2, "retry_on_asset_or_op_failure": False},
    }
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        yield instance


def wait_until(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def launch(instance: dg.DagsterInstance, port: int) -> dg.DagsterRun:
    """A run of long_run launched on the code server at ``port`` by the instance's launcher, once STARTED."""
    target = GrpcServerTarget(host="127.0.0.1", port=port, socket=None, location_name=LOCATION)
    with WorkspaceProcessContext(instance, target) as workspace:
        context = workspace.create_request_context()
        remote_job = context.get_code_location(LOCATION).get_repository("__repository__").get_full_job("long_run")
        run = instance.create_run_for_job(
            job_def=long_run,
            remote_job_origin=remote_job.get_remote_origin(),
            job_code_origin=remote_job.get_python_origin(),
        )
        instance.launch_run(run.run_id, context)
    return wait_until(
        lambda: (r := instance.get_run_by_id(run.run_id)).status == dg.DagsterRunStatus.STARTED and r,
        60,
        "the run to start",
    )


def monitor(instance: dg.DagsterInstance, run: dg.DagsterRun) -> None:
    """One pass of the run-monitoring daemon over this run (its workspace serves only to resume runs,
    which this launcher does not)."""
    with WorkspaceProcessContext(instance, EmptyWorkspaceTarget()) as workspace:
        record = instance.get_run_record_by_id(run.run_id)
        monitor_started_run(instance, workspace.create_request_context(), record, logging.getLogger("monitor"))


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    [record] = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    return record.dagster_event.message


def test_the_health_check_follows_the_run_worker_and_its_code_server(instance):
    launcher = instance.run_launcher
    assert isinstance(launcher, MonitoredRunLauncher) and launcher.supports_check_run_worker_health
    port = free_port()
    with code_server(port):
        # A run in progress is RUNNING: its code server lists it.
        run = launch(instance, port)
        assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING

        # Its worker killed alone: the code server, which watches its children, fails the run at
        # once, and no longer lists it.
        worker, server = code_server_worker(instance, run.run_id)
        os.kill(worker, signal.SIGKILL)
        wait_until(lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE, 30, "the failure")
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED and WORKER_GONE in health.msg

        # The worker and its code server killed together (a container out of memory): nothing
        # reports the run, which stays STARTED until run monitoring fails it.
        run = launch(instance, port)
        worker, server = code_server_worker(instance, run.run_id)
        os.kill(worker, signal.SIGKILL)
        os.kill(server, signal.SIGKILL)
        killed = time.monotonic()
        # A server that does not answer is given the grace period: a blip fails nothing.
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.RUNNING and "unreachable" in health.msg
        monitor(instance, run)
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        time.sleep(max(0.0, GRACE + 0.5 - (time.monotonic() - killed)))
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.UNKNOWN and WORKER_GONE in health.msg, health
        monitor(instance, run)
        failed = instance.get_run_by_id(run.run_id)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        assert WORKER_GONE in failure_message(instance, run.run_id)
        # Run retries re-execute it although asset failures are not retried: it is no asset failure.
        assert failed.tags["dagster/will_retry"] == "true"

    # The code server back on the same address (a compose container restarted) answers without
    # the run: its worker is gone, no grace needed.
    with code_server(port):
        health = launcher.check_run_worker_health(run)
        assert health.status == WorkerStatus.FAILED and WORKER_GONE in health.msg


def test_what_the_health_check_cannot_judge_is_never_failed(instance):
    launcher = instance.run_launcher
    # Executed in process (`protiv sync`): not launched through a code server.
    run = instance.create_run_for_job(job_def=long_run)
    assert launcher.check_run_worker_health(run).status == WorkerStatus.RUNNING
    # `dagster code-server start` is a proxy that does not list its runs (deploy/docker-compose.yaml
    # therefore runs `dagster api grpc`).
    port = free_port()
    with code_server(port, "code-server start"):
        tagged = run.with_tags({**run.tags, GRPC_INFO_TAG: f'{{"host": "127.0.0.1", "port": {port}}}'})
        health = launcher.check_run_worker_health(tagged)
        assert health.status == WorkerStatus.RUNNING and "does not list its runs" in health.msg


def test_a_code_server_that_never_answers_costs_one_timeout_per_poll_not_one_per_run(instance):
    """A host that swallows packets: each call waits for its deadline, so the runs of one poll
    share the first call's verdict instead of each waiting in turn (the 2-minute bound holds with
    a dozen runs on that host)."""
    launcher = instance.run_launcher
    with socket.socket() as silent:  # accepts connections (the kernel does) and never says a word
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        tag = f'{{"host": "127.0.0.1", "port": {silent.getsockname()[1]}}}'
        runs = [instance.create_run_for_job(job_def=long_run, tags={GRPC_INFO_TAG: tag}) for _ in range(3)]
        started = time.monotonic()
        results = [launcher.check_run_worker_health(run) for run in runs]
        elapsed = time.monotonic() - started
    # (Past this test's grace of 3 s after the first call's 10 s, so each verdict is UNKNOWN.)
    assert all(r.status == WorkerStatus.UNKNOWN and "DEADLINE_EXCEEDED" in r.msg for r in results), results
    assert CALL_TIMEOUT_SECONDS <= elapsed < 2 * CALL_TIMEOUT_SECONDS, elapsed
