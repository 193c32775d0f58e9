"""The sync state: a cursor moves only when a whole sync succeeded, and never backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from protiv_dagster.sync_state import FAILED, SUCCEEDED, SyncStateStore

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return SyncStateStore(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    # The tables go to the schema named first on the search path: a clean slate per test.
    return SyncStateStore(url.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}")


def test_a_new_company_has_an_empty_state(store):
    state = store.state("acme")
    assert state.cursor is None and state.current_as_of is None and state.last_error is None


def test_the_cursor_moves_only_when_the_sync_succeeds(store):
    batch = store.open_batch("acme", "initial_sync", "c1", ["2026-11-16", "2026-11-09"], True, T0, initial_sync_for=T0)
    assert batch.phase == "reference" and batch.weeks == ("2026-11-09", "2026-11-16")
    assert store.state("acme").cursor is None and store.state("acme").initial_sync_for == T0
    assert [b.batch_id for b in store.pending_batches()] == [batch.batch_id]

    store.set_phase(batch.batch_id, "weeks")
    assert store.batch(batch.batch_id).phase == "weeks"
    store.finish_batch(batch.batch_id, succeeded=True, at=T0 + timedelta(minutes=2))
    state = store.state("acme")
    assert state.cursor == "c1" and state.current_as_of == T0 and state.last_success_at == T0 + timedelta(minutes=2)
    assert store.batch(batch.batch_id).status == SUCCEEDED and not store.pending_batches()

    failing = store.open_batch("acme", "refresh", "c2", ["2026-11-16"], False, T0 + timedelta(hours=2))
    store.finish_batch(failing.batch_id, succeeded=False, at=T0 + timedelta(hours=2, minutes=1), error="Aspire: HTTP 503")
    state = store.state("acme")
    assert state.cursor == "c1" and state.last_error == "Aspire: HTTP 503"
    assert store.batch(failing.batch_id).status == FAILED


def test_an_older_sync_finishing_last_does_not_move_the_cursor_back(store):
    older = store.open_batch("acme", "refresh", "c1", ["2026-11-16"], False, T0)
    newer = store.open_batch("acme", "refresh", "c2", ["2026-11-16"], False, T0 + timedelta(minutes=5))
    store.finish_batch(newer.batch_id, succeeded=True, at=T0 + timedelta(minutes=6))
    store.finish_batch(older.batch_id, succeeded=True, at=T0 + timedelta(minutes=7))
    state = store.state("acme")
    assert state.cursor == "c2" and state.current_as_of == T0 + timedelta(minutes=5)


def test_a_quiet_check_makes_the_data_current_and_a_failed_one_records_why(store):
    store.record_check("acme", T0)
    assert store.state("acme").current_as_of == T0
    store.record_check("acme", T0 + timedelta(hours=2), error="BusyBusy: login refused")
    state = store.state("acme")
    assert state.current_as_of == T0 and state.last_error == "BusyBusy: login refused"
    store.record_check("acme", T0 + timedelta(hours=4))
    assert store.state("acme").last_error is None and store.all_states()["acme"].current_as_of == T0 + timedelta(hours=4)


def test_quiet_checks_of_many_companies_are_recorded_together(store):
    store.record_check("acme", T0, error="QuickBooks Time: HTTP 503")
    store.record_check("globex", T0)
    store.record_quiet_checks(["acme", "globex", "initech"], T0 + timedelta(hours=2))
    states = store.all_states()
    assert {name: state.current_as_of for name, state in states.items()} == {
        "acme": T0 + timedelta(hours=2), "globex": T0 + timedelta(hours=2), "initech": T0 + timedelta(hours=2),
    }
    assert all(state.last_error is None and state.last_checked_at == T0 + timedelta(hours=2) for state in states.values())
    store.record_quiet_checks([], T0 + timedelta(hours=4))  # nothing to record, nothing changes
    assert store.state("acme").current_as_of == T0 + timedelta(hours=2)
