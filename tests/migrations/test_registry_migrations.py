"""The registry (connections, settings versions, sync state) of the previous release upgrades in place.

Old registries are built from the previous release's DDL (fixtures/registry_5a7857a.*.sql), with
rows; ``protiv upgrade``'s library call upgrades them; the schema then equals what today's code
creates fresh and every row is still there.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa

from protiv_dagster.connections.migrations import (
    REGISTRY,
    RegistryNewerThanCode,
    RegistryUpgradeRequired,
    upgrade_registry,
)
from protiv_dagster.connections.registry import ConnectionRegistry, RegistryError, generate_secret_key
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.state import SyncStateStore

from .conftest import statements

CONNECTED = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
UPDATED = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
SETTINGS = {"timezone": "America/Denver", "include_drive_time": True}


@pytest.fixture(params=["sqlite", "postgres"])
def registry_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    return request.getfixturevalue("postgres_database")


def backend(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


def build_previous_release(url: str) -> None:
    """A registry as the previous release left it: its tables, two connections and their sync state."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements(f"registry_5a7857a.{backend(url)}.sql"):
            conn.exec_driver_sql(statement)
        connections = sa.table(
            "protiv_connections",
            *(
                sa.column(name)
                for name in (
                    "company_id",
                    "provider",
                    "base_url",
                    "attendance_pull_date",
                    "settings",
                    "credentials",
                    "connected_at",
                    "updated_at",
                )
            ),
        )
        for company_id, provider in (("acme", "quickbooks_time"), ("café crew", "busybusy")):
            conn.execute(
                connections.insert().values(
                    company_id=company_id,
                    provider=provider,
                    base_url="http://127.0.0.1:9/api",
                    attendance_pull_date=date(2026, 11, 6),
                    settings=json.dumps(SETTINGS),
                    credentials=json.dumps({"access_token": {"env": "PROTIV_CREDENTIAL_ACME"}}),
                    connected_at=CONNECTED,
                    updated_at=UPDATED,
                )
            )
        conn.execute(
            sa.text(
                "INSERT INTO protiv_sync_state (company_id, cursor, initial_sync_for, current_as_of, last_success_at, "
                "last_checked_at, last_error) VALUES ('acme', 'cursor-7', :connected, :updated, :updated, :updated, "
                "'QuickBooks Time: HTTP 503')"
            ),
            {"connected": CONNECTED, "updated": UPDATED},
        )
        conn.execute(
            sa.text(
                "INSERT INTO protiv_sync_batches (batch_id, company_id, trigger, cursor, weeks, with_reference, phase, "
                "status, requested_at, finished_at, error) VALUES ('b1', 'acme', 'initial_sync', 'cursor-7', "
                "'[\"2026-W46\", \"2026-W47\"]', true, 'done', 'succeeded', :connected, :updated, NULL)"
            ),
            {"connected": CONNECTED, "updated": UPDATED},
        )
    engine.dispose()


def schema_of(url: str) -> dict:
    """Tables, columns (type, nullability, default), primary keys and indexes, as the database says."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        return {
            table: {
                "columns": {
                    column["name"]: (
                        type(column["type"]).__name__,
                        column["nullable"],
                        str(column.get("default") or "").strip("'"),
                    )
                    for column in inspector.get_columns(table)
                },
                "primary_key": inspector.get_pk_constraint(table)["constrained_columns"],
                "indexes": sorted(
                    (index["name"], tuple(index["column_names"])) for index in inspector.get_indexes(table)
                ),
            }
            for table in sorted(inspector.get_table_names())
        }
    finally:
        engine.dispose()


def fresh_schema(url: str) -> dict:
    """What today's code creates on an empty database of the same backend."""
    ConnectionRegistry(url).engine.dispose()
    SyncStateStore(url).engine.dispose()
    return schema_of(url)


def test_a_previous_release_registry_is_refused_at_startup_then_upgraded_with_every_row(
    registry_url,
    tmp_path,
    monkeypatch,
    request,
):
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    build_previous_release(registry_url)

    for opening in (ConnectionRegistry, SyncStateStore):
        with pytest.raises(RegistryUpgradeRequired) as refused:
            opening(registry_url)
        message = str(refused.value)
        assert "run `protiv upgrade`" in message and "previous release" in message
        assert "hunter2-secret" not in message and ("***@" in message or "sqlite" in message)

    result = upgrade_registry(registry_url)
    assert (result.before, result.after) == ("unversioned (previous release's shape)", REGISTRY.head)
    again = upgrade_registry(registry_url)
    assert (again.before, again.after) == (REGISTRY.head, REGISTRY.head) and not again.changed

    if backend(registry_url) == "sqlite":
        fresh_url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"
    else:
        fresh_url = request.getfixturevalue("postgres_database")
    assert schema_of(registry_url) == fresh_schema(fresh_url)

    registry, store = ConnectionRegistry(registry_url), SyncStateStore(registry_url)
    acme = registry.get("acme")
    assert (acme.provider, acme.base_url, acme.attendance_pull_date) == (
        "quickbooks_time",
        "http://127.0.0.1:9/api",
        date(2026, 11, 6),
    )
    assert (acme.connected_at, acme.updated_at) == (CONNECTED, UPDATED)
    assert acme.stored_credentials == {"access_token": {"env": "PROTIV_CREDENTIAL_ACME"}}
    assert acme.settings.timezone == "America/Denver"
    # Backfill: every connection's settings are its version 1, from the start, recorded when it connected.
    for connection in registry.list():
        assert [(v.version, v.effective_from, v.recorded_at) for v in connection.settings_versions] == [
            (1, None, CONNECTED)
        ]
        assert connection.settings_versions[0].settings == connection.settings
    assert [c.company_id for c in registry.list()] == ["acme", "café crew"]
    state = store.state("acme")
    assert (state.cursor, state.initial_sync_for, state.current_as_of, state.last_error, state.failures) == (
        "cursor-7",
        CONNECTED,
        UPDATED,
        "QuickBooks Time: HTTP 503",
        0,
    )
    [batch] = store.batches_of("acme")
    assert (batch.batch_id, batch.weeks, batch.with_reference, batch.status, batch.finished_at) == (
        "b1",
        ("2026-W46", "2026-W47"),
        True,
        "succeeded",
        UPDATED,
    )
    # And the upgraded registry works: a new settings version follows the backfilled one.
    registry.update_settings("acme", {**SETTINGS, "include_drive_time": False}, effective_from=date(2030, 1, 1))
    assert [v.version for v in registry.get("acme").settings_versions] == [1, 2]


def test_a_new_registry_is_created_at_the_newest_revision(registry_url):
    ConnectionRegistry(registry_url)
    engine = sa.create_engine(registry_url)
    with engine.connect() as conn:
        assert REGISTRY.current(conn) == REGISTRY.head
    engine.dispose()
    result = upgrade_registry(registry_url)
    assert result.before == result.after == REGISTRY.head


def test_an_unversioned_registry_of_todays_shape_is_stamped(registry_url):
    from protiv_dagster.connections.migrations import registry_metadata

    engine = sa.create_engine(registry_url)
    registry_metadata().create_all(engine)
    ConnectionRegistry(registry_url)  # no refusal: a registry made by today's code before revisions were kept
    with engine.connect() as conn:
        assert REGISTRY.current(conn) == REGISTRY.head
    engine.dispose()


def test_a_newer_or_hand_edited_registry_says_so(tmp_path):
    newer = f"sqlite:///{tmp_path / 'newer.sqlite3'}"
    ConnectionRegistry(newer)
    engine = sa.create_engine(newer)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE protiv_registry_version SET version_num = '0099'")
    engine.dispose()
    with pytest.raises(
        RegistryNewerThanCode, match="schema revision 0099, which this version of protiv_dagster does not know"
    ):
        ConnectionRegistry(newer)
    with pytest.raises(RegistryNewerThanCode):
        upgrade_registry(newer)

    edited = f"sqlite:///{tmp_path / 'edited.sqlite3'}"
    engine = sa.create_engine(edited)
    with engine.begin() as conn:
        for statement in statements("registry_5a7857a.sqlite.sql"):
            conn.exec_driver_sql(statement)
        conn.exec_driver_sql("ALTER TABLE protiv_connections ADD COLUMN nickname TEXT")
    engine.dispose()
    for attempt in (ConnectionRegistry, upgrade_registry):
        with pytest.raises(
            RegistryError, match=r"differ from their declarations.*protiv_connections has extra columns \['nickname'\]"
        ):
            attempt(edited)
