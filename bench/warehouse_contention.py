"""Benchmark: several processes writing one DuckDB warehouse file at once, each reading back what it
has just written, with and without the file's gate (protiv_dagster/warehouse/gate.py).

Each process replaces its own company's partition of a table again and again (10 to 8,000 rows, text
and numbers), then reads the partition back in a new transaction. Any read that is not exactly what
the process has just committed is a stale read: a write lost, or a database opened as it was before
another process's last checkpoint. Errors (a corrupt file, an aborted transaction) are counted too.
Without the gate, DuckDB's own lock is all that keeps the processes apart, and DuckDB reads the
file's headers before it takes that lock; the race shows on a loaded machine (run it beside other
work, or several at once).

    .venv/bin/python bench/warehouse_contention.py [--processes 8] [--seconds 120] [--runs 1]
        [--without-gate]

Exit status 1 when a process read something it had not just written, or failed.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import random
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

SIZES = (10, 200, 3000, 8000)


def things_table():
    from protiv_dagster.warehouse.declarations import Column, Table

    return Table(
        "things",
        (
            Column("company_id", "TEXT"),
            Column("thing_id", "TEXT"),
            Column("round", "BIGINT"),
            Column("payload", "TEXT"),
            Column("amount", "DOUBLE PRECISION"),
        ),
        primary_key=("company_id", "thing_id"),
    )


def write_and_read_back(path: str, company: str, seconds: float, gated: bool, results) -> None:
    """Child process: replace this company's rows, read them back, until the time is up."""
    import pandas as pd

    from protiv_dagster.warehouse import gate
    from protiv_dagster.warehouse.store import WarehouseStore

    if not gated:
        gate.fcntl = None  # type: ignore[assignment]  # DuckDB's own lock only
    store, table, rng = WarehouseStore(url=path), things_table(), random.Random(company)
    rounds, stale, errors = 0, [], []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        size = rng.choice(SIZES)
        rows = pd.DataFrame(
            {
                "company_id": company,
                "thing_id": [f"{company}-{i}" for i in range(size)],
                "round": rounds,
                "payload": [f"p{i}-" * rng.randint(1, 20) for i in range(size)],
                "amount": [i * 0.5 for i in range(size)],
            }
        )
        try:
            store.replace_partition(table, rows, {"company_id": company})
            back = store.read_table(table, where={"company_id": company})
        except Exception as exc:  # noqa: BLE001 - counted and reported by the parent
            errors.append(f"round {rounds}: {type(exc).__name__}: {str(exc)[:160]}")
            break
        if len(back) != size or (back["round"] != rounds).any():
            stale.append(f"round {rounds}: wrote {size} rows, read {len(back)} of rounds {sorted(set(back['round']))}")
        rounds += 1
    results.put((company, rounds, stale, errors))


def one_run(args, gated: bool) -> tuple[int, list[str], list[str]]:
    from protiv_dagster.warehouse.schema import ensure_tables
    from protiv_dagster.warehouse.store import WarehouseStore

    with tempfile.TemporaryDirectory(prefix="protiv-contention-") as folder:
        path = str(Path(folder) / "warehouse.duckdb")
        ensure_tables(WarehouseStore(url=path), [things_table()])
        spawn = mp.get_context("spawn")
        results = spawn.Queue()
        children = [
            spawn.Process(target=write_and_read_back, args=(path, f"c{n}", args.seconds, gated, results))
            for n in range(args.processes)
        ]
        for child in children:
            child.start()
        figures = [results.get(timeout=args.seconds + 300) for _ in children]
        for child in children:
            child.join(timeout=60)
    stale = [f"{company} {line}" for company, _, lines, _ in figures for line in lines]
    errors = [f"{company} {line}" for company, _, _, lines in figures for line in lines]
    return sum(rounds for _, rounds, _, _ in figures), stale, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=8, help="processes writing the one file")
    parser.add_argument("--seconds", type=float, default=120.0, help="how long each run lasts")
    parser.add_argument("--runs", type=int, default=1, help="runs, each on a new file")
    parser.add_argument("--without-gate", action="store_true", help="DuckDB's own lock only (the control)")
    args = parser.parse_args()
    print(f"machine: {describe()}")
    print(f"command: warehouse_contention.py {' '.join(sys.argv[1:])}")
    failed = 0
    for number in range(args.runs):
        rounds, stale, errors = one_run(args, gated=not args.without_gate)
        failed += bool(stale or errors)
        print(
            f"run {number + 1} ({'without' if args.without_gate else 'with'} the gate): {rounds} writes read back, "
            f"{len(stale)} stale, {len(errors)} failed" + (f": {(stale + errors)[:3]}" if stale or errors else ""),
            flush=True,
        )
    print(f"{failed} of {args.runs} runs had a stale read or a failure")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
