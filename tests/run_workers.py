"""Find a run's worker process in the process table (/proc), to kill it as the out-of-memory killer
would: tests/test_run_launcher.py and tests/test_daemon_e2e.py."""

from __future__ import annotations

from pathlib import Path

import dagster as dg


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> int | None:
    """The pid the run's worker recorded as it started ("Started process for run (pid: N)")."""
    for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT):
        data = record.dagster_event.engine_event_data if record.dagster_event else None
        if data is not None and "pid" in data.metadata:
            return int(data.metadata["pid"].value)
    return None


def cmdline(pid: int) -> str:
    return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")


def parent_pid(pid: int) -> int:
    stat = (Path("/proc") / str(pid) / "stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if parent_pid(int(entry.name)) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):  # ended meanwhile
                continue
    return found


def code_server_worker(instance: dg.DagsterInstance, run_id: str) -> tuple[int, int]:
    """(the run's worker, the code server that started it), checked in the process table: the worker
    is a multiprocessing child of a `dagster api grpc` process."""
    pid = worker_pid(instance, run_id)
    assert pid is not None, f"run {run_id} recorded no worker pid"
    server = parent_pid(pid)
    assert "multiprocessing" in cmdline(pid), cmdline(pid)
    assert "dagster api grpc" in cmdline(server), cmdline(server)
    return pid, server
