"""`protiv upgrade` on a data folder of the previous release, as a user runs it: `protiv status`
says to run it, it prints each database's revisions, a second run says up to date, and `status`
works after it. A fresh data folder is created at the newest revisions."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import sqlalchemy as sa

from protiv_dagster.connections.migrations import REGISTRY
from protiv_dagster.warehouse.migrations import WAREHOUSE

from .conftest import statements


def protiv(*args: str, data: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
    env.update({"COLUMNS": "200", "PROTIV_DATA_DIR": str(data)})
    return subprocess.run(
        [sys.executable, "-m", "protiv_dagster.cli", *args],
        cwd=data.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def previous_release_data_folder(data: Path) -> None:
    data.mkdir()
    engine = sa.create_engine(f"sqlite:///{data / 'registry.sqlite3'}")
    with engine.begin() as conn:
        for statement in statements("registry_5a7857a.sqlite.sql"):
            conn.exec_driver_sql(statement)
    engine.dispose()
    with duckdb.connect(str(data / "warehouse.duckdb")) as conn:
        for statement in statements("warehouse_5a7857a.duckdb.sql", "protiv"):
            conn.execute(statement)


def test_protiv_upgrade_upgrades_a_previous_release_data_folder_once(tmp_path):
    data = tmp_path / "data"
    previous_release_data_folder(data)

    refused = protiv("status", data=data)
    assert refused.returncode == 1
    assert "run `protiv upgrade`" in " ".join(refused.stdout.split()) and "Traceback" not in refused.stderr
    # A command without a handler of its own gets the same sentence from the CLI's last guard.
    listed = protiv("connections", data=data)
    assert (listed.returncode, listed.stderr) == (1, ""), listed.stderr[-2000:]
    assert " ".join(listed.stdout.split()).startswith("the registry sqlite:///") and "protiv upgrade" in listed.stdout

    first = protiv("upgrade", data=data)
    assert first.returncode == 0, first.stdout + first.stderr
    lines = " ".join(first.stdout.split())
    assert f"unversioned (previous release's shape) -> {REGISTRY.head}" in lines
    assert f"unversioned (previous release's shape) -> {WAREHOUSE.head}" in lines

    second = protiv("upgrade", data=data)
    assert second.returncode == 0 and " ".join(second.stdout.split()).count("up to date") == 2, second.stdout

    assert protiv("status", data=data).returncode == 0


def test_protiv_upgrade_creates_a_new_data_folder_at_the_newest_revisions(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    result = protiv("upgrade", data=data)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = " ".join(result.stdout.split())
    assert f"unversioned (empty) -> {REGISTRY.head}" in lines and f"unversioned (empty) -> {WAREHOUSE.head}" in lines
    assert protiv("upgrade", data=data).stdout.count("up to date") == 2


def test_protiv_upgrade_fails_clearly(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "warehouse.duckdb").write_text("not a DuckDB file")
    result = protiv("upgrade", data=data)
    assert result.returncode == 1
    assert "warehouse" in result.stdout and "Traceback" not in result.stderr, result.stdout + result.stderr
