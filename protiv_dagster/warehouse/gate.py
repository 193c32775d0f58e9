"""One of this project's processes at a time in a DuckDB warehouse file, and the word that another
one waits for it.

DuckDB locks its file only after reading the headers that say where the current database starts:
``duckdb.connect`` (2.0.1) opens the file read-only, reads its first 12 KiB, closes it, then opens it
again and takes its lock, and does not read those headers again (seen with strace). A process that
read the headers while another held the file, and got the lock the moment that one let go, opened
the database as it was before the other's last checkpoint. It read rows that were gone and missed
rows that were there (a company's jobs read as none, so all its attendance was set aside), and its
own checkpoint wrote over blocks the newer database used ("Corrupt database file: computed checksum
5381 does not match stored checksum 0"). Eight processes writing one file on a loaded 2-core machine
did either in 4 of 10 two-minute runs (bench/RESULTS.md).

So a process takes this gate before DuckDB reads anything and leaves it only after DuckDB has closed
the file: an exclusive ``flock`` on a hidden file beside the warehouse. flock rather than another
POSIX record lock, because closing some other descriptor of a file drops every record lock the
process holds on it, and because the gate is the process's: every thread of a process shares
DuckDB's one open database, so the process enters once, for as long as any of its threads has the
file open. Programs that do not take the gate (an analyst's session on the warehouse file itself, a
dbt build run by hand) are still kept out by DuckDB's own lock, with the race above. Where the
operating system has no flock (Windows), there is no gate.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: DuckDB's own lock only
    fcntl = None  # type: ignore[assignment]


class GateTimeout(TimeoutError):
    """Another process kept the file for the whole wait."""


def canonical(path: Path) -> Path:
    """The one name of the DuckDB file ``path``, however it is spelled (relative, through ``..`` or a
    symbolic link): processes that spell it differently share one gate, and a process that spells it
    two ways enters once rather than waiting for itself until its timeout."""
    return Path(os.path.realpath(path))


def waiting_marker(path: Path) -> Path:
    """The file whose modification time says a process waits for the DuckDB file ``path`` (beside it,
    hidden): touched by every process while it waits, read by a `WarehouseStore.kept_open` block
    when its time is up."""
    path = canonical(path)
    return path.with_name(f".{path.name}.waiting")


def gate_file(path: Path) -> Path:
    path = canonical(path)
    return path.with_name(f".{path.name}.gate")


def say_waiting(path: Path) -> None:
    """Tell a process keeping the DuckDB file ``path`` open (`WarehouseStore.kept_open`) that this
    one waits for it, so that it lets the file go when its time is up instead of keeping it on."""
    marker = waiting_marker(path)
    try:
        marker.touch()
        os.utime(marker)  # touch() leaves an existing file's time alone on some systems
    except OSError:  # a read-only folder: the keeper lets go at its longest time anyway
        pass


def someone_waited(path: Path, since: float) -> bool:
    """Whether a process said it waits for ``path`` at ``since`` (``time.time()``) or later."""
    try:
        # A file's time is the kernel's coarse clock, a few milliseconds behind time.time().
        return waiting_marker(path).stat().st_mtime >= since - 0.05
    except OSError:
        return False


@dataclass
class _Entry:
    guard: threading.Lock = field(default_factory=threading.Lock)
    descriptor: int | None = None
    holders: int = 0


_entries: dict[Path, _Entry] = {}
_entries_guard = threading.Lock()
# How often a waiting process says so while it waits, and how long it sleeps between tries: the
# gate is free again within milliseconds of a transaction's end, so waiters look often.
_SAY_EVERY_SECONDS = 0.1
_NAP_SECONDS = (0.002, 0.02)


def _forget_in_child() -> None:
    """A process forked while holding a gate holds nothing: its copy of the descriptor is closed
    (the parent's flock stays, held by the parent's own descriptor) and it enters afresh."""
    global _entries_guard
    for entry in _entries.values():
        if entry.descriptor is not None:
            with contextlib.suppress(OSError):
                os.close(entry.descriptor)
    _entries.clear()
    _entries_guard = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


def _entry(path: Path) -> _Entry:
    with _entries_guard:
        return _entries.setdefault(path, _Entry())


def enter(path: Path, timeout: float) -> None:
    """Take the gate of the DuckDB file ``path`` for this process, waiting at most ``timeout``
    seconds while another process holds it (GateTimeout after that). Each `enter` is paired with a
    `leave` once the DuckDB connection it was for is closed."""
    if fcntl is None:
        return
    path = canonical(path)
    entry = _entry(path)
    with entry.guard:
        if entry.holders:
            entry.holders += 1
            return
        try:
            descriptor = os.open(gate_file(path), os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:  # a folder this process cannot write: DuckDB's own lock only
            entry.holders += 1
            return
        try:
            _wait(descriptor, path, timeout)
        except BaseException:
            os.close(descriptor)
            raise
        entry.descriptor, entry.holders = descriptor, 1


def leave(path: Path) -> None:
    """Give back one `enter`; the last one of the process opens the gate to the others."""
    if fcntl is None:
        return
    entry = _entry(canonical(path))
    with entry.guard:
        entry.holders -= 1
        if entry.holders == 0 and entry.descriptor is not None:
            descriptor, entry.descriptor = entry.descriptor, None
            os.close(descriptor)  # closing the descriptor ends its flock


def _wait(descriptor: int, path: Path, timeout: float) -> None:
    deadline, said = time.monotonic() + timeout, float("-inf")
    while True:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:
                raise GateTimeout(f"another process of this project held it for {timeout:g} s") from None
            if now - said >= _SAY_EVERY_SECONDS:
                say_waiting(path)
                said = now
            time.sleep(min(random.uniform(*_NAP_SECONDS), max(deadline - now, 0.0)))
