"""A run killed in the middle of ``Warehouse.replace_partition`` leaves the previous partition intact.

A child process (this module run with ``python -m``) replaces a big partition through the real
``Warehouse`` on DuckDB or PostgreSQL and is SIGKILLed at a chosen moment of the write:

- ``before_insert``: the partition's rows are deleted, the new ones not yet inserted;
- ``mid_insert``: part way through inserting the new rows (a timed kill once the insert started);
- ``before_commit``: every new row inserted, the transaction not committed;
- ``after_commit``: ``replace_partition`` returned (the control: the new rows must all be there).

The child reports each moment on stdout and, at the hooked ones, stalls until it is killed. The
parent then checks that the partition holds exactly its previous rows (or exactly the new ones after
the commit), that the other partition was never touched, and that the next write produces exactly
what a clean write into a fresh warehouse produces.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse.declarations import Column, Table
from protiv_dagster.warehouse.duckdb import DuckDBSession
from protiv_dagster.warehouse.postgres import PostgresSession

ROOT = Path(__file__).resolve().parents[2]
ROWS = 50_000  # big enough that the insert outlasts MID_INSERT_DELAY_SECONDS on both backends
FIRST_DAY = date(2026, 11, 16)
WEEK = ("work_date", FIRST_DAY, FIRST_DAY + timedelta(days=6))
PHASES = ["before_insert", "mid_insert", "before_commit", "after_commit"]
MID_INSERT_DELAY_SECONDS = 0.01
CLEAN: dict[str, pd.DataFrame] = {}  # acme's week after an uninterrupted run, by backend

ENTRIES = Table(
    name="crash_entries",
    description="Time entries written by the crash test",
    primary_key=("company_id", "work_date", "entry_id"),
    columns=(
        Column("company_id", "TEXT", nullable=False),
        Column("work_date", "DATE", nullable=False),
        Column("entry_id", "BIGINT", nullable=False),
        Column("worker", "TEXT", nullable=False),
        Column("hours", "DOUBLE PRECISION"),
        Column("pay", "NUMERIC(14,2)"),
    ),
)


def rows(company: str, version: int, count: int = ROWS) -> pd.DataFrame:
    """``count`` entries of one week; ``version`` changes every value but the keys."""
    return _rows(company, version, count).copy()


@functools.cache
def _rows(company: str, version: int, count: int) -> pd.DataFrame:
    ids = np.arange(count, dtype="int64")
    days = [FIRST_DAY + timedelta(days=day) for day in range(7)]
    workers = [f"worker {w} v{version}" for w in range(40)]
    amounts = [Decimal(cents * version) / 100 for cents in range(1000)]
    return pd.DataFrame(
        {
            "company_id": company,
            "work_date": [days[i] for i in ids % 7],
            "entry_id": ids,
            "worker": [workers[i] for i in ids % 40],
            "hours": (ids % 9 + version) / 2.0,
            "pay": [amounts[i] for i in ids % 1000],
        }
    )


# -- the child: a write that is killed --------------------------------------------------------------
def _say(marker: str) -> None:
    print(marker, flush=True)


def _stall_if(phase: str, moment: str) -> None:
    if phase == moment:
        time.sleep(120)  # the parent kills us here; 120 s only bounds an orphan


def child(url: str, schema: str, phase: str) -> None:
    """Replace the partition of ``acme`` with version 2, reporting (and stalling at) each moment."""
    for session_class in (DuckDBSession, PostgresSession):
        original = session_class.insert

        def insert(self, qualified_table, columns, values, _original=original):
            _say("deleted")  # insert() runs after the partition's DELETE, in the same transaction
            _stall_if(phase, "before_insert")
            _original(self, qualified_table, columns, values)
            _say("inserted")
            _stall_if(phase, "before_commit")

        session_class.insert = insert
    warehouse = Warehouse(url=url, schema_name=schema) if schema else Warehouse(url=url)
    new = rows("acme", version=2)
    _say("ready")
    warehouse.replace_partition(ENTRIES, new, {"company_id": "acme"}, WEEK)
    _say("committed")
    _stall_if(phase, "after_commit")


# -- the parent ---------------------------------------------------------------------------------------
def warehouse_for(request, backend: str, tmp_path: Path, name: str) -> tuple[Warehouse, dict[str, str]]:
    if backend == "duckdb":
        url = str(tmp_path / f"{name}.duckdb")
        return Warehouse(url=url), {"url": url, "schema": ""}
    url = request.getfixturevalue("postgres_url")
    schema = f"{request.getfixturevalue('postgres_schema')}_{name}"
    request.addfinalizer(lambda: _drop_schema(url, schema))
    return Warehouse(url=url, schema_name=schema), {"url": url, "schema": schema}


def _drop_schema(url: str, schema: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute(f'drop schema if exists "{schema}" cascade')


def seed(warehouse: Warehouse) -> None:
    """Version 1 of ``acme``'s week, and another company's week that no write may touch."""
    warehouse.ensure_tables([ENTRIES])
    warehouse.replace_partition(ENTRIES, rows("acme", version=1), {"company_id": "acme"}, WEEK)
    warehouse.replace_partition(ENTRIES, rows("other", version=1, count=500), {"company_id": "other"}, WEEK)


def read(warehouse: Warehouse, company: str) -> pd.DataFrame:
    return warehouse.read_table(ENTRIES, where={"company_id": company})


def kill_during_write(target: dict[str, str], phase: str) -> list[str]:
    """Run the child until ``phase``, SIGKILL it, and return the moments it reported."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.warehouse.test_crash_consistency", json.dumps({**target, "phase": phase})],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert process.stdout is not None
    seen = []
    wanted = {
        "before_insert": "deleted",
        "mid_insert": "deleted",
        "before_commit": "inserted",
        "after_commit": "committed",
    }[phase]
    try:
        for line in process.stdout:
            seen.append(line.strip())
            if seen[-1] == wanted:
                break
        else:
            process.wait(timeout=30)
            pytest.fail(
                f"the writer ended before {wanted!r} (saw {seen}): {process.stderr.read() if process.stderr else ''}"
            )
        if phase == "mid_insert":
            time.sleep(MID_INSERT_DELAY_SECONDS)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        seen += [line.strip() for line in process.stdout]  # what it printed before the signal landed
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGKILL
    return seen


@pytest.mark.parametrize("phase", PHASES)
@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_write_killed_at_any_moment_leaves_the_previous_partition(request, tmp_path, backend, phase):
    warehouse, target = warehouse_for(request, backend, tmp_path, "crashed")
    seed(warehouse)
    previous, other = read(warehouse, "acme"), read(warehouse, "other")
    assert len(previous) == ROWS

    seen = kill_during_write(target, phase)
    if phase == "mid_insert":
        assert "inserted" not in seen, "the insert finished before the kill: raise ROWS"

    survived = read(warehouse, "acme")
    if phase == "after_commit":
        assert_frame_equal(survived, read_clean(request, backend, tmp_path, "committed"))
    else:
        assert_frame_equal(survived, previous)  # every old row, nothing new, nothing half-written
    assert_frame_equal(read(warehouse, "other"), other)

    # The next run's write gives exactly what a clean run gives.
    warehouse.replace_partition(ENTRIES, rows("acme", version=2), {"company_id": "acme"}, WEEK)
    assert_frame_equal(read(warehouse, "acme"), read_clean(request, backend, tmp_path, "clean"))
    assert_frame_equal(read(warehouse, "other"), other)


def read_clean(request, backend: str, tmp_path: Path, name: str) -> pd.DataFrame:
    """``acme``'s week after an uninterrupted run into a fresh warehouse: seeded, then replaced by
    version 2 (written once per backend)."""
    if backend not in CLEAN:
        clean, _ = warehouse_for(request, backend, tmp_path, name)
        seed(clean)
        clean.replace_partition(ENTRIES, rows("acme", version=2), {"company_id": "acme"}, WEEK)
        CLEAN[backend] = read(clean, "acme")
    return CLEAN[backend]


if __name__ == "__main__":
    arguments = json.loads(sys.argv[1])
    child(arguments["url"], arguments["schema"], arguments["phase"])
