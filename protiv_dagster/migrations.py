"""Schema versions of the project's two databases, kept with Alembic.

Two Alembic environments ship inside the package, one per database: the registry (connections,
settings versions and the sync state; ``connections/migrations``) and the warehouse (``protiv``
schema; ``warehouse/migrations``). Each is driven from code (no ``alembic.ini``): revision 0001 is
the schema of the previous release, later revisions what changed since.

Opening a database checks its revision: a database without tables is created at the newest
revision (a fresh install), an unversioned database of today's shape is stamped with it, and one of
an older revision (or of the previous release's shape, made before revisions were kept) is refused
with a message to run ``protiv upgrade``, which upgrades it in place (``upgrade_registry``,
``upgrade_warehouse``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic.command import upgrade as alembic_upgrade
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

UPGRADE_COMMAND = "protiv upgrade"
# Shapes of a database without a version table (see `Environment.unversioned_state`).
EMPTY, CURRENT_SHAPE, PREVIOUS_SHAPE, OTHER_SHAPE = "empty", "current shape", "previous release's shape", "other shape"
PREVIOUS_RELEASE = "0001"


class SchemaVersionError(RuntimeError):
    """A database's schema revision is not the one this code needs; the message says what to do."""


class UpgradeRequired(SchemaVersionError):
    pass


class NewerThanCode(SchemaVersionError):
    pass


@dataclass(frozen=True)
class Environment:
    """One Alembic environment: its scripts, inside the package, and the table keeping the revision."""

    what: str  # "registry" or "warehouse", for messages
    script_location: Path
    version_table: str

    @functools.cached_property
    def script(self) -> ScriptDirectory:
        return ScriptDirectory.from_config(self.config())

    @property
    def head(self) -> str:
        return self.script.get_current_head() or ""

    def knows(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except Exception:  # alembic raises its own errors for an unknown or ambiguous id
            return False

    def config(self, connection: sa.Connection | None = None, schema: str | None = None) -> Config:
        """An Alembic configuration without an ini file; env.py reads the connection and schema from
        its attributes."""
        config = Config()
        config.set_main_option("script_location", str(self.script_location).replace("%", "%%"))
        config.attributes.update(connection=connection, schema=schema, version_table=self.version_table)
        return config

    def migration_context(self, connection: sa.Connection, schema: str | None = None) -> MigrationContext:
        return MigrationContext.configure(
            connection, opts={"version_table": self.version_table, "version_table_schema": schema}
        )

    def current(self, connection: sa.Connection, schema: str | None = None) -> str | None:
        return self.migration_context(connection, schema).get_current_revision()

    def stamp(self, connection: sa.Connection, revision: str, schema: str | None = None) -> None:
        self.migration_context(connection, schema).stamp(self.script, revision)

    def upgrade(self, connection: sa.Connection, schema: str | None = None) -> None:
        alembic_upgrade(self.config(connection, schema), "head")

    def refusal(self, database: str, revision: str | None) -> SchemaVersionError:
        """The error for a database at ``revision`` (None: unversioned, of the previous release's
        shape) when this code needs the head revision."""
        if revision is not None and not self.knows(revision):
            return NewerThanCode(
                f"the {self.what} {database} has schema revision {revision}, which this version of protiv_dagster "
                f"does not know (its newest is {self.head}): a newer version upgraded it; run that version"
            )
        made_by = (
            "the previous release (before schema revisions were kept)"
            if revision is None
            else f"an earlier version (schema revision {revision})"
        )
        return UpgradeRequired(
            f"the {self.what} {database} was made by {made_by}; this version needs schema revision {self.head}: "
            f"run `{UPGRADE_COMMAND}` to upgrade it in place (every row is kept)"
        )


@dataclass(frozen=True)
class UpgradeResult:
    """What ``protiv upgrade`` did to one database."""

    database: str  # what it is and where, password masked
    before: str  # revision before, or how an unversioned database looked
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after


def shape_of(
    present: Mapping[str, object],
    head: Mapping[str, object],
    previous: Mapping[str, object],
) -> str:
    """How an unversioned database looks: ``present`` maps each of the environment's tables found to
    its shape (any comparable value); ``head`` and ``previous`` map table names to their shapes at the
    newest revision and at 0001 (a table absent from ``previous`` is new since)."""
    if not present:
        return EMPTY
    if all(head.get(name) == shape for name, shape in present.items()):
        return CURRENT_SHAPE
    if all(shape in (head.get(name), previous.get(name, head.get(name))) for name, shape in present.items()):
        return PREVIOUS_SHAPE
    return OTHER_SHAPE


@contextmanager
def postgres_lock(connection: sa.Connection, key: str) -> Iterator[None]:
    """On PostgreSQL, an advisory lock for the rest of the transaction: two processes opening a new
    database at once take turns to create it. Other backends serialise writers themselves."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": key})
    yield


def run_migrations(context) -> None:  # context: alembic's EnvironmentContext, as env.py has it
    """What both env.py files do: migrate the connection the caller handed over in the
    configuration's attributes (see ``Environment.config``), in its transaction. Each revision's
    ``upgrade`` gets the schema its tables live in (None: the connection's default)."""
    attributes = context.config.attributes
    connection = attributes.get("connection")
    if connection is None:
        raise SchemaVersionError(f"migrations run from code only: `{UPGRADE_COMMAND}` (no alembic.ini)")
    schema = attributes.get("schema")
    if schema:  # the version table goes there before the first revision runs
        connection.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
    context.configure(
        connection=connection,
        version_table=attributes["version_table"],
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.run_migrations(schema=schema)


def database_cause(exc: Exception) -> BaseException:
    """The database driver's own error behind a SQLAlchemy one (its message says what the server
    refused), or the error itself."""
    return getattr(exc, "orig", None) or exc
