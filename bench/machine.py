"""What every benchmark prints first: the machine, its load, the library versions and the commit,
so that a figure in RESULTS.md can be read against where it was measured."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def describe(packages: tuple[str, ...] = ("dagster", "duckdb", "pandas")) -> str:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")),
        platform.processor() or "unknown CPU",
    )
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    versions = ", ".join(f"{p} {version(p)}" for p in packages)
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    commit = subprocess.run(
        ["git", "describe", "--always", "--dirty"], capture_output=True, text=True, cwd=ROOT
    ).stdout.strip()
    return (
        f"{model}, {os.cpu_count()} cores, {ram:.1f} GiB RAM (load average {load}); "
        f"Python {platform.python_version()}, {versions}; code at {commit or 'unknown commit'}"
    )
