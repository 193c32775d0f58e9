"""Partition writes: which rows a write owns (`Partition`), and the converted rows of a write kept
in a temporary file until it runs (`Spool`, `PartitionSpool`), so a large partition is never held
in memory whole."""

from __future__ import annotations

import datetime as dt
import pickle
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import cast

import pandas as pd

from protiv_dagster.warehouse.conversion import column_values, key_value
from protiv_dagster.warehouse.declarations import Table, quote


@dataclass(frozen=True)
class Partition:
    """The rows `replace_partition` owns: equal key columns, and optionally a DATE column range."""

    table: Table
    equals: Mapping[str, object]  # values already converted to their column's type
    dates: tuple[str, dt.date, dt.date] | None

    @classmethod
    def of(
        cls, table: Table, partition: Mapping[str, object], date_range: tuple[str, dt.date, dt.date] | None
    ) -> Partition:
        if not partition and date_range is None:
            # An empty partition would delete the whole table, which is never what a typo meant.
            raise ValueError(f"replace_partition on {table.name} needs partition columns or a date_range")
        equals = {name: key_value(table, name, value) for name, value in partition.items()}
        dates = None
        if date_range is not None:
            name, first, last = date_range
            if table.column(name).sql_type != "DATE":
                raise ValueError(f"date_range column {table.name}.{name} must be a DATE column")
            # A DATE column's key values are dates.
            dates = (name, cast(dt.date, key_value(table, name, first)), cast(dt.date, key_value(table, name, last)))
            if dates[1] > dates[2]:
                raise ValueError(f"date_range for {table.name}.{name} is empty: {dates[1]} is after {dates[2]}")
        return cls(table, equals, dates)

    def condition(self) -> tuple[str, list[object]]:
        """The WHERE clause selecting these rows, and its parameters."""
        conditions = [f"{quote(name)} = ?" for name in self.equals]
        params = list(self.equals.values())
        if self.dates is not None:
            name, first, last = self.dates
            conditions.append(f"{quote(name)} BETWEEN ? AND ?")
            params.extend([first, last])
        return " AND ".join(conditions), params

    def check(self, values: Mapping[str, list[object]]) -> None:
        """ValueError naming the column when any row lies outside this partition."""
        for name, expected in self.equals.items():
            outside = [value for value in values[name] if value != expected]
            if outside:
                raise ValueError(
                    f"{len(outside)} row(s) outside the partition: {self.table.name}.{name} must be "
                    f"{expected!r}, got e.g. {outside[0]!r:.80}; nothing was written"
                )
        if self.dates is not None:
            name, first, last = self.dates
            days = cast(list[dt.date | None], values[name])  # converted values of a DATE column
            outside = [value for value in days if value is None or not first <= value <= last]
            if outside:
                raise ValueError(
                    f"{len(outside)} row(s) outside the partition: {self.table.name}.{name} must lie in "
                    f"{first}..{last}, got e.g. {outside[0]!r:.80}; nothing was written"
                )

    def __str__(self) -> str:
        described = ", ".join(f"{name}={value!r}" for name, value in self.equals.items())
        if self.dates is not None:
            described += f"{', ' if described else ''}{self.dates[0]} {self.dates[1]}..{self.dates[2]}"
        return f"{self.table.name} [{described}]"


def _checked_values(table: Table, owned: Partition, rows: pd.DataFrame) -> list[list[object]]:
    """The cells of `rows` converted per declared column, after checking they lie in `owned`."""
    missing = [name for name in table.column_names if name not in rows.columns]
    if missing:
        raise ValueError(f"rows for {table.name} lack columns {missing}")
    values = [column_values(table, column, rows[column.name]) for column in table.columns]
    owned.check(dict(zip(table.column_names, values, strict=True)))
    return values


# Rows per insert when a partition is written in batches (large frames, chunked sources).
_BATCH_ROWS = 50_000


class Spool:
    """Converted chunks of a partition, pickled to an anonymous temporary file until the write.

    Small chunks (a vendor page is 200 rows) are gathered into batches of about ``batch_rows``
    rows, so the write makes one insert per batch rather than one per page."""

    def __init__(self, batch_rows: int | None = None) -> None:
        # Kept open across add() calls until close(), hence no with block.
        self._file = tempfile.TemporaryFile(prefix="protiv-partition-")  # noqa: SIM115
        self._batch_rows = batch_rows or _BATCH_ROWS
        self._pending: list[list[object]] | None = None
        self._batches = 0

    def add(self, values: list[list[object]]) -> None:
        if self._pending is None:
            self._pending = [list(column) for column in values]
        else:
            for pending, column in zip(self._pending, values, strict=True):
                pending.extend(column)
        if len(self._pending[0]) >= self._batch_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending is not None and len(self._pending[0]):
            pickle.dump(self._pending, self._file, protocol=pickle.HIGHEST_PROTOCOL)
            self._batches += 1
        self._pending = None

    def __iter__(self) -> Iterator[list[list[object]]]:
        self._flush()
        self._file.seek(0)
        for _ in range(self._batches):
            yield pickle.load(self._file)

    def close(self) -> None:
        self._file.close()


class PartitionSpool:
    """Rows of one partition, converted and checked as they are added and kept in a temporary file
    until `WarehouseStore.replace_partitions` writes them (pass the spool as a `PartitionWrite`'s rows).

    For a caller filling several partitions at once: the records of three weeks arrive interleaved
    from one vendor query, and none of the weeks is held in memory whole. A row outside the
    partition is refused when added (ValueError), before anything is written. Close it (or use it
    as a context manager) once written or given up."""

    def __init__(
        self, table: Table, partition: Mapping[str, object], date_range: tuple[str, dt.date, dt.date] | None = None
    ) -> None:
        self.table, self.partition, self.date_range = table, dict(partition), date_range
        self._owned = Partition.of(table, partition, date_range)
        self._spool = Spool()
        self.rows = 0

    def add(self, rows: pd.DataFrame) -> None:
        if len(rows):
            self._spool.add(_checked_values(self.table, self._owned, rows))
            self.rows += len(rows)

    def write(self, move_rows: bool = False) -> PartitionWrite:
        """The replace of the partition with the rows added."""
        return PartitionWrite(self.table, self, self.partition, self.date_range, move_rows)

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> PartitionSpool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class PartitionWrite:
    """One partition replace for `WarehouseStore.replace_partitions` (arguments as in `replace_partition`;
    `rows` may also be a filled `PartitionSpool`)."""

    table: Table
    rows: pd.DataFrame | Iterable[pd.DataFrame] | PartitionSpool
    partition: Mapping[str, object]
    date_range: tuple[str, dt.date, dt.date] | None = None
    move_rows: bool = False


def converted_chunks(write: PartitionWrite, owned: Partition, spools: list[Spool]) -> Iterable[list[list[object]]]:
    """The rows of `write` converted per column and checked against `owned`, in batches as the write
    inserts them. A spool made here is added to `spools`; the caller closes it once written."""
    rows = write.rows
    if isinstance(rows, pd.DataFrame) and len(rows) > _BATCH_ROWS:
        # Converted cells take several times the frame's memory: convert a large frame in
        # slices and spool them, as chunks are.
        frame = rows
        rows = (frame.iloc[start : start + _BATCH_ROWS] for start in range(0, len(frame), _BATCH_ROWS))
    if isinstance(rows, PartitionSpool):
        # Checked as it was filled; its owner closes it.
        return rows._spool
    if isinstance(rows, pd.DataFrame):
        return [_checked_values(write.table, owned, rows)]
    spool = Spool()
    spools.append(spool)
    for chunk in rows:
        spool.add(_checked_values(write.table, owned, chunk))
    return spool
