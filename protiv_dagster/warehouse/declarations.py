"""Warehouse declarations: tables and views as plain data (`Table`, `Column`, `View`), with the
identifier and SQL type rules that keep one declaration valid on both DuckDB and PostgreSQL."""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*\Z")
# PostgreSQL silently truncates longer names, which would make two declared names collide.
_MAX_IDENTIFIER_LENGTH = 63
NUMERIC_TYPE = re.compile(r"NUMERIC\((\d+),(\d+)\)\Z")
_SIMPLE_TYPES = ("TEXT", "BIGINT", "DOUBLE PRECISION", "BOOLEAN", "DATE", "TIMESTAMPTZ")
# DuckDB's DECIMAL stops at 38 digits; PostgreSQL goes further, so 38 is the portable limit.
MAX_NUMERIC_PRECISION = 38


def check_identifier(name: str, what: str) -> str:
    if not (isinstance(name, str) and _IDENTIFIER.match(name) and len(name) <= _MAX_IDENTIFIER_LENGTH):
        raise ValueError(
            f"{what} {name!r} must be a plain lowercase SQL identifier "
            f"([a-z_][a-z0-9_]*, at most {_MAX_IDENTIFIER_LENGTH} characters)"
        )
    return name


def quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Column:
    """One column of a warehouse table, declared with a type both backends understand."""

    name: str
    sql_type: str  # TEXT, BIGINT, DOUBLE PRECISION, BOOLEAN, DATE, TIMESTAMPTZ or NUMERIC(p,s)
    nullable: bool = True
    description: str = ""  # becomes COMMENT ON COLUMN

    def __post_init__(self) -> None:
        # Lowercase plain names only: DuckDB compares quoted names case-insensitively and
        # PostgreSQL does not, so "Hours" and "hours" would mean different things per backend.
        check_identifier(self.name, "column name")
        numeric = NUMERIC_TYPE.match(self.sql_type)
        if numeric:
            precision, scale = int(numeric[1]), int(numeric[2])
            if not (1 <= precision <= MAX_NUMERIC_PRECISION and scale <= precision):
                raise ValueError(
                    f"column {self.name!r}: {self.sql_type} needs 1 <= precision <= "
                    f"{MAX_NUMERIC_PRECISION} and scale <= precision"
                )
        elif self.sql_type not in _SIMPLE_TYPES:
            raise ValueError(
                f"column {self.name!r}: type {self.sql_type!r} is not portable; use one of "
                f"{', '.join(_SIMPLE_TYPES)} or NUMERIC(p,s)"
            )


@dataclass(frozen=True)
class Table:
    """A warehouse table: its columns, primary key and comment, declared as plain data."""

    name: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...]
    description: str = ""  # becomes COMMENT ON TABLE

    def __post_init__(self) -> None:
        check_identifier(self.name, "table name")
        # Tuples keep the declaration hashable even when a caller passes lists.
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "primary_key", tuple(self.primary_key))
        names = self.column_names
        if not names:
            raise ValueError(f"table {self.name!r} declares no columns")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"table {self.name!r} declares columns more than once: {duplicates}")
        if not self.primary_key:
            raise ValueError(f"table {self.name!r} needs a primary key so replacements stay idempotent")
        unknown = [name for name in self.primary_key if name not in names]
        if unknown:
            raise ValueError(f"table {self.name!r}: primary key columns {unknown} are not declared")

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> Column:
        """The declared column called `name`; ValueError naming the table when there is none."""
        for column in self.columns:
            if column.name == name:
                return column
        raise ValueError(f"table {self.name!r} has no column {name!r} (columns: {self.column_names})")


@dataclass(frozen=True)
class View:
    """A warehouse view: its SELECT (``{schema}`` stands for the quoted schema), the columns it must
    yield, and its comment. One SQL text for both backends, so every computed column is cast to its
    declared type."""

    name: str
    select: str
    columns: tuple[Column, ...]
    description: str = ""  # becomes COMMENT ON VIEW

    def __post_init__(self) -> None:
        check_identifier(self.name, "view name")
        object.__setattr__(self, "columns", tuple(self.columns))
        names = self.column_names
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if not names or duplicates:
            raise ValueError(f"view {self.name!r} must declare each of its columns once (twice: {duplicates})")

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]
