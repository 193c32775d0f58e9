"""The run launcher of one machine and docker-compose: Dagster's DefaultRunLauncher, plus a health
check of each run's worker so that run monitoring notices a worker that died.

Each run is a process started by the code server (``dagster api grpc``) that the run was launched
on. A worker killed on its own (SIGKILL, the out-of-memory killer) is reported failed by that code
server, which watches its child processes. When the code server dies with its workers (its container
restarted or out of memory, its process group killed), nobody reports anything: the DefaultRunLauncher
cannot check workers (``supports_check_run_worker_health`` is False), so the run-monitoring daemon
leaves such runs STARTED forever, holding their run queue slot (per-vendor limit) and their pools.

``MonitoredRunLauncher`` lets the run-monitoring daemon ask, every ``poll_interval_seconds``, the code
server named in the run's ``.dagster/grpc_info`` tag (set at launch) which runs it is executing
(the GetCurrentRuns API):

- the run is among them: RUNNING;
- the server answers without it: FAILED, "the run worker process is gone (killed or out of memory)".
  A run that just ended is left out too; run monitoring reads the run again before failing it and
  leaves it alone when its status moved meanwhile;
- the server cannot be reached: RUNNING while it has been unreachable for less than
  ``unreachable_grace_seconds`` (a blip or a busy server never fails a healthy run), UNKNOWN after
  that, which fails the run. A code server that Dagster stops (the daemon restarting its own, a lost
  heartbeat) finishes its runs first and keeps answering meanwhile, so one that is unreachable for a
  minute has died; in a container or a systemd unit its workers die with it. A worker orphaned by a
  code server killed on its own (one machine) is failed as well and re-executed by run retries: some
  work done twice, never a run stuck;
- the server does not implement GetCurrentRuns (``dagster code-server start``, a proxy, does not):
  RUNNING with a warning; serve the code location with ``dagster api grpc`` instead;
- a run without the tag was not launched through a code server (``protiv sync`` executes in process):
  RUNNING, as before.

Resuming a run in a new worker is not supported (keep ``max_resume_run_attempts: 0``): a failed run
is re-executed from its failure by run retries (deploy/dagster.yaml, docs/scaling.md).

Configured in dagster.yaml::

    run_launcher:
      module: protiv_dagster.run_launcher
      class: MonitoredRunLauncher
      config:
        unreachable_grace_seconds: 60   # optional
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import grpc
from dagster import DagsterRun, DefaultRunLauncher, Field, IntSource
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster._grpc.__generated__ import dagster_api_pb2
from dagster._grpc.client import DagsterGrpcClient
from dagster._grpc.types import GetCurrentRunsResult
from dagster._serdes import ConfigurableClassData, deserialize_value

logger = logging.getLogger(__name__)

WORKER_GONE = "the run worker process is gone (killed or out of memory)"
# One GetCurrentRuns call may take this long; a server that does not answer in time counts as unreachable.
CALL_TIMEOUT_SECONDS = 10
# A server whose last call timed out this recently is not asked again for the next run of the same
# poll, so a dozen runs on a host that swallows packets cost one timeout per poll, not a dozen (a
# refused connection fails at once and is simply asked again).
REUSE_TIMEOUT_SECONDS = 5.0


class MonitoredRunLauncher(DefaultRunLauncher):
    """DefaultRunLauncher whose run workers the run-monitoring daemon can check (see the module doc)."""

    def __init__(self, inst_data: ConfigurableClassData | None = None, unreachable_grace_seconds: int = 60):
        super().__init__(inst_data=inst_data)
        self.unreachable_grace_seconds = unreachable_grace_seconds
        self._lock = threading.Lock()
        # Per server (its grpc_info): (first failed call of the current outage, last failed call,
        # whether that call timed out), in memory: a daemon restart starts every grace period again,
        # which only delays a failure.
        self._unreachable: dict[str, tuple[float, float, bool]] = {}
        self._warned: set[str] = set()

    @classmethod
    def config_type(cls):
        return {
            "unreachable_grace_seconds": Field(
                IntSource,
                is_required=False,
                default_value=60,
                description="How long a run's code server may be unreachable before its runs are failed.",
            )
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]):
        return cls(inst_data=inst_data, **config_value)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        server = run.tags.get(GRPC_INFO_TAG)
        if not server:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not launched through a code server: not checked")
        info = json.loads(server)
        address = info.get("socket") or f"{info.get('host')}:{info.get('port')}"
        now = time.monotonic()
        with self._lock:
            streak = self._unreachable.get(server)
        if streak is not None and now - streak[1] > self._streak_gap():
            streak = None  # not asked for a while: an old failure says nothing about now
        if streak is not None and streak[2] and now - streak[1] < REUSE_TIMEOUT_SECONDS:
            return self._unreachable_result(address, streak[0], now, " (DEADLINE_EXCEEDED)")
        client = DagsterGrpcClient(
            port=info.get("port"),
            socket=info.get("socket"),
            host=info.get("host") or "localhost",
            use_ssl=bool(info.get("use_ssl", False)),
        )
        try:
            # DagsterGrpcClient.get_current_runs(), with a deadline of seconds instead of a minute.
            reply = client._get_response("GetCurrentRuns", dagster_api_pb2.Empty(), timeout=CALL_TIMEOUT_SECONDS)  # noqa: SLF001
        except grpc.RpcError as error:
            if error.code() == grpc.StatusCode.UNIMPLEMENTED:
                with self._lock:
                    first_time = server not in self._warned
                    self._warned.add(server)
                if first_time:
                    logger.warning("code server %s cannot list its runs; serve it with `dagster api grpc`", address)
                return CheckRunHealthResult(
                    WorkerStatus.RUNNING,
                    f"not checked: the code server at {address} does not list its runs (a `dagster code-server start` "
                    "proxy); serve the code location with `dagster api grpc`",
                )
            first = streak[0] if streak is not None else now
            timed_out = error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
            with self._lock:
                self._unreachable[server] = (first, time.monotonic(), timed_out)
            return self._unreachable_result(address, first, time.monotonic(), f" ({error.code().name})")
        with self._lock:
            self._unreachable.pop(server, None)
        result = deserialize_value(reply.serialized_current_runs, GetCurrentRunsResult)
        if run.run_id in result.current_runs:
            return CheckRunHealthResult(WorkerStatus.RUNNING)
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"{WORKER_GONE}: the code server at {address} no longer runs it"
        )

    def _streak_gap(self) -> float:
        """Failed calls further apart than this are not one outage (polls are closer together)."""
        poll = self._instance.run_monitoring_poll_interval_seconds if self.has_instance else 0
        return max(float(self.unreachable_grace_seconds), 3.0 * poll)

    def _unreachable_result(self, address: str, since: float, now: float, detail: str = "") -> CheckRunHealthResult:
        seconds = now - since
        if seconds < self.unreachable_grace_seconds:
            return CheckRunHealthResult(
                WorkerStatus.RUNNING,
                f"the code server at {address} has been unreachable for {seconds:.0f} s{detail}; "
                f"its runs are failed after {self.unreachable_grace_seconds} s",
                transient=True,
            )
        return CheckRunHealthResult(
            WorkerStatus.UNKNOWN,
            f"{WORKER_GONE} as far as can be told: the code server at {address} that ran it has been "
            f"unreachable for {seconds:.0f} s{detail}",
        )
