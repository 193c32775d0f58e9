"""Old databases for the migration tests, built from the previous release's DDL (see make_fixtures.py)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.postgres import new_database

FIXTURES = Path(__file__).parent / "fixtures"


def statements(fixture: str, schema: str = "") -> list[str]:
    """The DDL statements of a fixture file, ``{schema}`` replaced by the quoted schema."""
    text = (FIXTURES / fixture).read_text().replace("{schema}", f'"{schema}"')
    return [statement.strip() for statement in re.split(r";\n\n|;\n\Z", text) if statement.strip()]


@pytest.fixture
def postgres_database(postgres_url):
    """A fresh PostgreSQL database for one test (a registry lives in a database's default schema),
    as a SQLAlchemy URL with a password that trust authentication ignores and messages must mask."""
    with new_database(postgres_url, "protiv_migration") as url:
        base, _, name = url.rpartition("/")
        scheme, _, rest = base.partition("://")
        user_host = rest.rpartition("@")
        user = user_host[0].partition(":")[0] if user_host[1] else "postgres"
        yield f"postgresql+psycopg://{user}:hunter2-secret@{user_host[2]}/{name}"
