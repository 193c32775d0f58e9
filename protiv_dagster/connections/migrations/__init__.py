"""Schema revisions of the registry database: connections, settings versions and the sync state.

An Alembic environment shipped in the package (``versions/``: 0001 is the previous release's
registry, 0002 what changed since, 0003 the integrations service's audit log and OAuth states),
driven from code; the revision is kept in
``protiv_registry_version`` (not ``alembic_version``, which the Dagster instance's own storage uses
when both share a PostgreSQL database). A new revision: write ``versions/000N_<what>.py`` by hand
from ``script.py.mako`` (``upgrade(schema)`` gets the schema), with its backfills in the docstring.
"""

from __future__ import annotations

import functools
from pathlib import Path

import sqlalchemy as sa

from protiv_dagster import migrations
from protiv_dagster.connections.registry import (
    RegistryError,
    _metadata_table,
    _settings_versions_table,
    default_registry_url,
    redacted_url,
)

REGISTRY = migrations.Environment(
    what="registry", script_location=Path(__file__).parent, version_table="protiv_registry_version"
)


class RegistryUpgradeRequired(RegistryError, migrations.UpgradeRequired):
    pass


class RegistryNewerThanCode(RegistryError, migrations.NewerThanCode):
    pass


def registry_metadata() -> sa.MetaData:
    """Every table of the registry database as today's code declares it."""
    from protiv_dagster.integrations.audit import audit_table
    from protiv_dagster.integrations.oauth import oauth_states_table
    from protiv_dagster.sync.state import sync_state_tables

    metadata = sa.MetaData()
    _metadata_table(metadata)
    _settings_versions_table(metadata)
    sync_state_tables(metadata)
    audit_table(metadata)
    oauth_states_table(metadata)
    return metadata


def _shapes(connection: sa.Connection, names) -> dict[str, frozenset[str]]:
    inspector = sa.inspect(connection)
    present = set(inspector.get_table_names())
    return {
        name: frozenset(column["name"] for column in inspector.get_columns(name)) for name in names if name in present
    }


@functools.cache
def _head_shapes() -> dict[str, frozenset[str]]:
    return {table.name: frozenset(table.columns.keys()) for table in registry_metadata().sorted_tables}


@functools.cache
def _previous_shapes() -> dict[str, frozenset[str]]:
    """The previous release's tables, from revision 0001 itself (run on an in-memory SQLite)."""
    engine = sa.create_engine("sqlite://")
    with engine.begin() as connection:
        from alembic.command import upgrade

        upgrade(REGISTRY.config(connection), migrations.PREVIOUS_RELEASE)
        return _shapes(connection, _head_shapes().keys() | {"protiv_sync_state", "protiv_sync_batches"})


def _unversioned_shape(connection: sa.Connection) -> str:
    return migrations.shape_of(_shapes(connection, _head_shapes()), _head_shapes(), _previous_shapes())


def _describe(url: str) -> str:
    return redacted_url(url)


def _differences(connection: sa.Connection) -> str:
    present = _shapes(connection, _head_shapes())
    phrases = []
    for name, columns in present.items():
        declared = _head_shapes()[name]
        missing, extra = sorted(declared - columns), sorted(columns - declared)
        if missing or extra:
            phrases.append(
                f"table {name} has "
                + ", ".join(
                    part
                    for part in (
                        f"missing columns {missing}" if missing else "",
                        f"extra columns {extra}" if extra else "",
                    )
                    if part
                )
            )
    return "; ".join(phrases)


def _create_at_head(connection: sa.Connection) -> None:
    registry_metadata().create_all(connection)
    REGISTRY.stamp(connection, "head")


def prepare_registry(engine: sa.Engine, url: str) -> None:
    """Make sure the registry database at ``url`` is at this code's revision, when it is opened.

    A database without the registry's tables gets them, stamped with the newest revision (a fresh
    install); so does an unversioned one of today's shape (made before revisions were kept) that
    lacks some. An older revision, or an unversioned registry of the previous release's shape,
    raises RegistryUpgradeRequired (run ``protiv upgrade``); a newer one RegistryNewerThanCode;
    tables that are neither keep the "differ from their declarations" error."""
    for attempt in range(2):
        try:
            with engine.begin() as connection, migrations.postgres_lock(connection, "protiv_dagster.registry"):
                _check_or_create(connection, url)
            return
        except sa.exc.OperationalError:
            # Two processes creating a new SQLite registry at once: the second finds the tables made.
            if attempt:
                raise


def _check_or_create(connection: sa.Connection, url: str) -> None:
    revision = REGISTRY.current(connection)
    if revision == REGISTRY.head:
        return
    if revision is not None:
        raise _refusal(url, revision)
    shape = _unversioned_shape(connection)
    if shape in (migrations.EMPTY, migrations.CURRENT_SHAPE):
        _create_at_head(connection)
    elif shape == migrations.PREVIOUS_SHAPE:
        raise _refusal(url, None)
    else:
        raise RegistryError(
            f"tables in registry {_describe(url)} differ from their declarations (nothing was changed; "
            f"migrate them deliberately): {_differences(connection)}"
        )


def _refusal(url: str, revision: str | None) -> RegistryError:
    error = REGISTRY.refusal(f"{_describe(url)}", revision)
    kind = RegistryNewerThanCode if isinstance(error, migrations.NewerThanCode) else RegistryUpgradeRequired
    return kind(str(error))


def upgrade_registry(url: str | None = None) -> migrations.UpgradeResult:
    """Upgrade the registry database (``PROTIV_REGISTRY_URL`` or the data folder's SQLite file) to
    this code's newest revision in place, every row kept; idempotent."""
    url = url or default_registry_url()
    try:
        engine = sa.create_engine(url, future=True)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise RegistryError(f"registry URL is not usable ({type(exc).__name__})") from None
    database = f"registry {_describe(url)}"
    try:
        with engine.begin() as connection, migrations.postgres_lock(connection, "protiv_dagster.registry"):
            revision = REGISTRY.current(connection)
            if revision is not None and not REGISTRY.knows(revision):
                raise _refusal(url, revision)
            if revision is None:
                shape = _unversioned_shape(connection)
                before = f"unversioned ({shape})"
                if shape in (migrations.EMPTY, migrations.CURRENT_SHAPE):
                    _create_at_head(connection)
                    return migrations.UpgradeResult(database, before, REGISTRY.head)
                if shape != migrations.PREVIOUS_SHAPE:
                    _check_or_create(connection, url)  # raises the drift error
                REGISTRY.stamp(connection, migrations.PREVIOUS_RELEASE)
            else:
                before = revision
            REGISTRY.upgrade(connection)
            return migrations.UpgradeResult(database, before, REGISTRY.current(connection) or "")
    except sa.exc.SQLAlchemyError as exc:
        cause = migrations.database_cause(exc)
        raise RegistryError(f"upgrading {database} failed: {type(cause).__name__}: {cause}") from exc
    finally:
        engine.dispose()
