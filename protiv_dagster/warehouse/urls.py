"""Warehouse URLs: which backend a URL names, and the same URL with its password masked."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

Backend = Literal["duckdb", "postgres"]

_DUCKDB_PREFIX = "duckdb:///"
_POSTGRES_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgres://")
_ACCEPTED_URLS = (
    "'' (DuckDB file in the project data folder), 'duckdb:///relative/path.duckdb' or "
    "'duckdb:////absolute/path.duckdb', a plain path ending in '.duckdb', or "
    "'postgresql://user:password@host:port/database' (also 'postgresql+psycopg://', 'postgres://')"
)


_URL_PASSWORD = re.compile(
    r"^(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@]*:)(?P<password>.*)@(?P<tail>[^@]*)$", re.DOTALL
)
_KEYWORD_PASSWORD = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|[^&\s]+)")


def redact_url(url: str) -> str:
    """`url` with every password replaced by ``***``, safe for messages, reprs and logs.

    Masks the ``user:password@`` part of a URL (up to the last ``@``, so a password holding an
    unescaped ``@`` or ``/`` is masked whole) and ``password=`` settings in a query string or a
    libpq keyword string.
    """
    match = _URL_PASSWORD.match(url)
    if match:
        url = f"{match['head']}***@{match['tail']}"
    return _KEYWORD_PASSWORD.sub(r"\1***", url)


@dataclass(frozen=True)
class Target:
    backend: Backend
    location: str | None  # DuckDB file path, PostgreSQL URL, or None for the default DuckDB file


def parse_url(url: str) -> Target:
    """Which backend `url` names, without touching the file system or the network."""
    lowered = url.lower()
    if not url:
        return Target("duckdb", None)
    if lowered.startswith(_DUCKDB_PREFIX):
        path = url[len(_DUCKDB_PREFIX) :]
        # Every operation opens its own connection, so an in-memory database would forget
        # everything between two calls.
        if not path or path == ":memory:":
            raise ValueError(f"warehouse URL {redact_url(url)!r} names no DuckDB file; expected {_ACCEPTED_URLS}")
        return Target("duckdb", path)
    for prefix in _POSTGRES_PREFIXES:
        if lowered.startswith(prefix):
            # libpq knows postgresql:// and postgres:// but not SQLAlchemy's driver suffix.
            return Target("postgres", "postgresql://" + url[len(prefix) :])
    if "://" not in url and lowered.endswith(".duckdb"):
        return Target("duckdb", url)
    raise ValueError(f"unrecognised warehouse URL {redact_url(url)!r}; expected {_ACCEPTED_URLS}")
