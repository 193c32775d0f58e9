"""The PostgreSQL server the tests (and the benchmarks' ``--postgres``) use, and fresh databases on it."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql

POSTGRES_URL_VARIABLE = "PROTIV_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def postgres_test_url() -> str:
    return os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL)


@contextmanager
def new_database(server_url: str, prefix: str) -> Iterator[str]:
    """A new database named ``prefix`` and a random suffix on the server of ``server_url``, dropped
    afterwards (its connections closed with it); yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    try:
        yield f"{server_url.rpartition('/')[0]}/{name}"
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
