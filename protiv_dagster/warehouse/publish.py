"""The analysts' copy of a DuckDB warehouse: what analysts open, so that they never block a sync.

DuckDB lets one process write a file, and a session that opens it (even read-only) holds a lock
that keeps writers out: an analyst's notebook left open on the warehouse made every sync wait, then
fail. Analysts open a copy instead. After every change the file is checkpointed and copied while
this process holds it (a whole database, never one caught mid-write), and the copy replaces the
previous one with one rename. A session already open keeps reading the copy it opened (the old file
lives on until it is closed); a new session sees the new one. Nobody ever holds the file the
pipeline writes for longer than a copy takes.

On PostgreSQL there is nothing to publish: sessions read the tables themselves, MVCC keeps readers
and writers apart, and row-level security limits each analyst role to its companies.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from protiv_dagster.warehouse.store import WarehouseStore, analysts_copy

# Read and written a chunk at a time; shutil's default of 64 KiB makes a large file's copy slower.
COPY_CHUNK_BYTES = 8 * 2**20


@dataclass(frozen=True)
class Publication:
    path: Path
    size_bytes: int
    seconds: float  # from asking for the warehouse file to the rename


def publish_for_analysts(store: WarehouseStore) -> Publication:
    """Copy a DuckDB warehouse to its analysts' copy (see the module's docstring); returns where."""
    started = time.monotonic()
    with store.checkpointed() as warehouse_file:
        target = analysts_copy(store.duckdb_file())
        # Beside the target (the same file system, so the rename is atomic) and hidden from a
        # file picker; named by process, so two publications never write the same file.
        staging = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with staging.open("wb") as copy:
                shutil.copyfileobj(warehouse_file, copy, COPY_CHUNK_BYTES)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
    try:
        with open(staging, "rb+") as copied:
            os.fsync(copied.fileno())  # on disk before it takes the analysts' name
        # Read-only for everyone: the copy is replaced, never written, so a write would be lost.
        staging.chmod(0o444)
        os.replace(staging, target)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return Publication(target, target.stat().st_size, time.monotonic() - started)
