"""Running `protiv` as a user runs it: in a fresh interpreter, in a folder of its own, with no
PROTIV_ or DAGSTER_ variable but those a test gives."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path


def free_port(span: int = 3) -> int:
    """A port from which ``span`` consecutive ports are free: `protiv demo --port P` serves the
    vendors on P, P + 1 and P + 2 (one per vendor, in the registry's order)."""
    for _ in range(100):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            first = sock.getsockname()[1]
        if first + span > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + span):
                held = socket.socket()
                sockets.append(held)
                held.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for held in sockets:
                held.close()
    raise RuntimeError(f"no {span} consecutive free ports on 127.0.0.1")


def protiv(
    *args: str, cwd: Path, env_extra: dict | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
    env.update({"COLUMNS": "200", **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "protiv_dagster.cli", *args],
        cwd=cwd,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def summary(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"ProPays|attendance rows|│", line)]
