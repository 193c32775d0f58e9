"""The integrations service's initial sync and the daemon's sensors do not sync a company twice.

The service starts a new connection's initial sync itself (in its worker, without waiting for the
daemon) and records it in the sync state before its first run (phase ``in_process``). While it runs,
``new_connections`` starts no initial sync of the company, ``company_syncs`` leaves its runs alone
and the refresh skips it; once it has succeeded the company counts as synced (cursor kept), and a
sync whose process went away is ended after an hour of silence so the daemon syncs the company.
"""

from __future__ import annotations

from datetime import timedelta

from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.company import force_sync
from protiv_dagster.sync.runs import BATCH_TAG, IN_PROCESS_SILENT_AFTER, all_weeks
from protiv_dagster.sync.state import IN_PROCESS
from tests.assets.conftest import COMPANY
from tests.automation.conftest import NOW, Daemon


def open_in_process(daemon: Daemon, connection):
    return daemon.store().open_batch(
        COMPANY,
        "initial_sync",
        None,
        all_weeks(connection, NOW),
        True,
        NOW,
        initial_sync_for=connection.connected_at,
        phase=IN_PROCESS,
    )


def test_the_daemon_leaves_a_sync_the_service_runs_itself_to_it(pipeline, daemon: Daemon):
    connection = pipeline.registry.get(COMPANY)
    batch = open_in_process(daemon, connection)

    # While it is in flight: no second initial sync, nothing moved along, no refresh.
    assert daemon.tick_sensor("new_connections").run_requests == []
    assert daemon.tick_sensor("company_syncs").run_requests == []
    assert daemon.tick_schedule("refresh_every_two_hours").run_requests == []
    assert [b.batch_id for b in daemon.store().pending_batches(COMPANY)] == [batch.batch_id]

    # The service runs it (runs tagged with the batch) and closes it with the vendor's cursor.
    run_ids = force_sync(
        pipeline.defs,
        pipeline.instance,
        connection,
        NOW,
        trigger="initial_sync",
        tags={BATCH_TAG: batch.batch_id},
        refuse_in_flight=True,
        batch=batch,
    )
    assert len(run_ids) == 3 and daemon.failures == []
    closed = daemon.store().batch(batch.batch_id)
    state = daemon.store().state(COMPANY)
    assert closed.status == "succeeded" and closed.cursor is not None and closed.cursor == state.cursor
    assert state.initial_sync_for == connection.connected_at and state.current_as_of == NOW
    assert [b.trigger for b in daemon.store().batches_of(COMPANY)] == ["initial_sync"]

    # Synced: the daemon starts no initial sync afterwards either, and its refresh finds nothing.
    assert daemon.tick_sensor("new_connections").run_requests == []
    assert daemon.tick_schedule("refresh_every_two_hours").run_requests == []
    assert len(pipeline.instance.get_runs()) == 3


def test_a_sync_whose_process_went_away_is_ended_and_the_daemon_syncs_the_company(
    pipeline, daemon: Daemon, monkeypatch
):
    connection = pipeline.registry.get(COMPANY)
    batch = open_in_process(daemon, connection)
    assert daemon.tick_sensor("company_syncs").run_requests == []
    assert daemon.store().batch(batch.batch_id).status == "pending"

    later = NOW + IN_PROCESS_SILENT_AFTER + timedelta(minutes=1)
    monkeypatch.setattr(syncs, "utc_now", lambda: later)
    daemon.tick_sensor("company_syncs")
    ended = daemon.store().batch(batch.batch_id)
    assert ended.status == "failed" and "stopped before it ended" in (ended.error or "")

    # A failed initial sync: the daemon tries it again after its backoff, its own way.
    retry_at = daemon.store().state(COMPANY).initial_sync_retry_at()
    assert retry_at is not None
    monkeypatch.setattr(syncs, "utc_now", lambda: retry_at + timedelta(seconds=1))
    [request] = daemon.tick_sensor("new_connections").run_requests
    assert request.job_name == "sync_company_reference" and request.partition_key == COMPANY
