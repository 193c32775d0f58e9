"""The sync state: a cursor moves only when a whole sync succeeded, and never backwards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from protiv_dagster.sync.state import FAILED, SUCCEEDED, SyncStateStore

T0 = datetime(2026, 11, 20, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return SyncStateStore(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
    url, schema = request.getfixturevalue("postgres_url"), request.getfixturevalue("postgres_schema")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    # The tables go to the schema named first on the search path: a clean slate per test.
    return SyncStateStore(
        url.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}"
    )


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
    store.finish_batch(
        failing.batch_id, succeeded=False, at=T0 + timedelta(hours=2, minutes=1), error="Aspire: HTTP 503"
    )
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
    assert store.state("acme").last_error is None and store.all_states()["acme"].current_as_of == T0 + timedelta(
        hours=4
    )


def test_quiet_checks_of_many_companies_are_recorded_together(store):
    store.record_check("acme", T0, error="QuickBooks Time: HTTP 503")
    store.record_check("globex", T0)
    store.record_quiet_checks(["acme", "globex", "initech"], T0 + timedelta(hours=2))
    states = store.all_states()
    assert {name: state.current_as_of for name, state in states.items()} == {
        "acme": T0 + timedelta(hours=2),
        "globex": T0 + timedelta(hours=2),
        "initech": T0 + timedelta(hours=2),
    }
    assert all(
        state.last_error is None and state.last_checked_at == T0 + timedelta(hours=2) for state in states.values()
    )
    store.record_quiet_checks([], T0 + timedelta(hours=4))  # nothing to record, nothing changes
    assert store.state("acme").current_as_of == T0 + timedelta(hours=2)


def test_a_failing_initial_sync_backs_off_doubling_until_one_succeeds(store):
    connected = T0 - timedelta(minutes=1)
    first = store.open_batch("acme", "initial_sync", "c1", ["2026-11-16"], True, T0, initial_sync_for=connected)
    store.finish_batch(
        first.batch_id, succeeded=False, at=T0 + timedelta(minutes=3), error="BusyBusy: failed to obtain lock"
    )
    state = store.state("acme")
    assert state.initial_sync_failed and state.failures == 1
    assert state.initial_sync_retry_at() == T0 + timedelta(minutes=30)  # from the attempt's start
    store.record_check("acme", T0 + timedelta(minutes=30), error="BusyBusy: HTTP 503", initial_sync_for=connected)
    assert store.state("acme").initial_sync_retry_at() == T0 + timedelta(minutes=90)
    for attempt in range(8):  # never more than 6 hours apart
        store.record_check(
            "acme", T0 + timedelta(days=attempt + 1), error="BusyBusy: HTTP 503", initial_sync_for=connected
        )
    state = store.state("acme")
    assert state.failures == 10 and state.initial_sync_retry_at() == T0 + timedelta(days=8, hours=6)

    again = store.open_batch(
        "acme", "initial_sync", "c2", ["2026-11-16"], True, T0 + timedelta(days=9), initial_sync_for=connected
    )
    store.finish_batch(again.batch_id, succeeded=True, at=T0 + timedelta(days=9, minutes=3))
    state = store.state("acme")
    assert state.cursor == "c2" and state.failures == 0 and not state.initial_sync_failed
    assert state.initial_sync_retry_at() is None
    assert [batch.status for batch in store.batches_of("acme")] == [FAILED, SUCCEEDED]


def test_the_initial_sync_of_another_connection_drops_the_old_cursor(store):
    old, new = T0 - timedelta(days=30), T0
    batch = store.open_batch("acme", "initial_sync", "c1", ["2026-11-16"], True, old, initial_sync_for=old)
    store.finish_batch(batch.batch_id, succeeded=True, at=old)
    store.open_batch("acme", "initial_sync", "c2", ["2026-11-16"], True, new, initial_sync_for=new)
    state = store.state("acme")
    # Until the reconnected company's initial sync succeeds, it is not synced (a failure is retried
    # as an initial sync, never refreshed from the old connection's cursor).
    assert state.cursor is None and state.initial_sync_for == new
    store.open_batch("acme", "refresh", "c3", ["2026-11-16"], False, new + timedelta(hours=2))
    assert store.state("acme").initial_sync_for == new


def test_a_registry_made_before_the_failures_column_is_upgraded_by_protiv_upgrade(tmp_path):
    import sqlalchemy as sa

    from protiv_dagster.connections.migrations import RegistryUpgradeRequired, upgrade_registry

    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE protiv_sync_state (company_id TEXT PRIMARY KEY, cursor TEXT, initial_sync_for TIMESTAMP,"
                " current_as_of TIMESTAMP, last_success_at TIMESTAMP, last_checked_at TIMESTAMP, last_error TEXT)"
            )
        )
        conn.execute(sa.text("INSERT INTO protiv_sync_state (company_id, cursor) VALUES ('acme', 'c1')"))
    with pytest.raises(RegistryUpgradeRequired, match="run `protiv upgrade`"):
        SyncStateStore(url)
    upgrade_registry(url)
    store = SyncStateStore(url)
    assert store.state("acme").cursor == "c1" and store.state("acme").failures == 0
    store.record_check("acme", T0, error="QuickBooks Time: HTTP 503")
    assert store.state("acme").failures == 1


def test_a_sync_planned_only_when_idle_is_refused_while_another_is_in_flight(store):
    from protiv_dagster.sync.state import SyncInFlight

    first = store.open_batch("acme", "refresh", "c1", ["2026-11-16"], False, T0, only_when_idle=True)
    with pytest.raises(SyncInFlight, match="'acme' already has a sync in flight") as refused:
        store.open_batch("acme", "app_force_sync", None, ["2026-11-16"], True, T0, only_when_idle=True)
    assert refused.value.batch is not None and refused.value.batch.batch_id == first.batch_id
    # Another company is not held up, and the company is free again once its sync has ended.
    store.open_batch("birch", "refresh", "c1", ["2026-11-16"], False, T0, only_when_idle=True)
    store.finish_batch(first.batch_id, succeeded=True, at=T0 + timedelta(minutes=1))
    again = store.open_batch("acme", "app_force_sync", None, ["2026-11-16"], True, T0, only_when_idle=True)
    assert [b.batch_id for b in store.pending_batches("acme")] == [again.batch_id]


def test_planners_racing_for_one_company_start_exactly_one_sync(store):
    """The daemon's sensors and the integrations service plan in different processes: each opens its
    own connections here, all released at once."""
    import threading

    from protiv_dagster.sync.state import SyncInFlight

    planners = 6
    stores = [SyncStateStore(store.url) for _ in range(planners)]  # one engine (and connection) each
    for other in stores:
        other.pending_batches("acme")  # connected before the start line
    start = threading.Barrier(planners)
    outcomes: list[str] = []

    def plan(planner: SyncStateStore) -> None:
        start.wait()
        try:
            planner.open_batch("acme", "initial_sync", None, ["2026-11-16"], True, T0, only_when_idle=True)
            outcomes.append("opened")
        except SyncInFlight:
            outcomes.append("refused")

    threads = [threading.Thread(target=plan, args=(planner,)) for planner in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(outcomes) == ["opened"] + ["refused"] * (planners - 1)
    assert len(store.pending_batches("acme")) == 1
