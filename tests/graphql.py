"""A dagster-webserver in a subprocess on a free loopback port, and a small client for its GraphQL API."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# Straight to loopback: proxies configured in the environment must never see this traffic.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class GraphQLError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Webserver:
    def __init__(self, port: int, process: subprocess.Popen, log: Path):
        self.url = f"http://127.0.0.1:{port}"
        self.process = process
        self.log = log

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def query(self, text: str, variables: dict | None = None, timeout: float = 30) -> dict:
        """The ``data`` of a GraphQL query; fails with the server's errors if there are any."""
        body = json.dumps({"query": text, "variables": variables or {}}).encode()
        request = urllib.request.Request(
            f"{self.url}/graphql", data=body, headers={"Content-Type": "application/json"}, method="POST"
        )
        with _OPENER.open(request, timeout=timeout) as response:
            payload = json.load(response)
        if payload.get("errors"):
            raise GraphQLError(json.dumps(payload["errors"], indent=2))
        return payload["data"]


def _ready(url: str) -> bool:
    try:
        with _OPENER.open(f"{url}/server_info", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


@contextmanager
def dagster_webserver(
    workspace: Path, env: dict[str, str], log: Path, ready_within: float = 120
) -> Iterator[Webserver]:
    """Start ``dagster-webserver -w workspace`` on 127.0.0.1 and wait until it answers; always stops
    the process (and the code server it spawned, same process group) on the way out."""
    port = free_port()
    executable = Path(sys.executable).with_name("dagster-webserver")
    command = [str(executable), "-w", str(workspace), "-h", "127.0.0.1", "-p", str(port)]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=workspace.parent, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Webserver(port, process, log)
    try:
        deadline = time.monotonic() + ready_within
        while not _ready(server.url):
            if process.poll() is not None:
                raise RuntimeError(f"dagster-webserver exited with {process.returncode}:\n{server.output()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"dagster-webserver not ready within {ready_within:.0f} s:\n{server.output()}")
            time.sleep(0.5)
        _wait_for_the_code_location(server, deadline)
        yield server
    finally:
        _stop(process)


_LOCATIONS = (
    "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus"
    " locationOrLoadError { __typename ... on PythonError { message stack } } } } } }"
)


def _wait_for_the_code_location(server: Webserver, deadline: float) -> None:
    """Until every code location has loaded: the webserver answers before its code server has the
    definitions, and a page opened meanwhile shows each asset as external, with no definition."""
    while True:
        entries = server.query(_LOCATIONS)["workspaceOrError"]["locationEntries"]
        for entry in entries:
            error = entry["locationOrLoadError"] or {}
            if error.get("__typename") == "PythonError":
                stack = "".join(error.get("stack") or [])
                raise RuntimeError(f"code location {entry['name']} failed to load: {error['message']}\n{stack}")
        if entries and all(entry["loadStatus"] == "LOADED" for entry in entries):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"code location not loaded in time: {entries}\n{server.output()}")
        time.sleep(0.5)


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM to the webserver's own process group (itself and its code server), then SIGKILL."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=5)
