"""A company is never stranded by one error in its first sync.

Found in production: BusyBusy answered one page of a new company's initial sync with a GraphQL
``errors`` array ("failed to obtain lock"); the run failed, the company had no cursor and no data,
and every later refresh skipped it (the refresh only checks companies that synced once). Now a
transient GraphQL error is retried like an HTTP 5xx, and an initial sync that fails anyway is planned
again with a doubling backoff until it succeeds, while ``protiv status`` shows it failing and why.
Everything goes over real HTTP to the BusyBusy emulator and through Dagster runs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from typer.testing import CliRunner

from protiv_dagster.cli import app, output
from protiv_dagster.settings import REGISTRY_URL_VARIABLE
from protiv_dagster.sync import runs as syncs
from tests.assets.conftest import COMPANY
from tests.assets.test_pipeline import assert_attendance_matches_vendor
from tests.automation.conftest import NOW, Daemon

LOCK = "failed to obtain lock"

pytestmark = pytest.mark.parametrize("provider", ["busybusy"])


def status(pipeline, monkeypatch) -> tuple[int, str, str]:
    """``protiv status`` on the pipeline's registry, as the admin runs it: its exit code, the
    company's row and the whole output with its white space folded (the reason may be shown in the
    row or below the table)."""
    monkeypatch.setenv(REGISTRY_URL_VARIABLE, pipeline.registry.url)
    monkeypatch.setattr(output.console, "width", 400)  # one line per row
    result = CliRunner().invoke(app, ["status"])
    row = next(line for line in result.output.splitlines() if COMPANY in line)
    return result.exit_code, row, " ".join(result.output.split())


def test_a_lock_error_on_one_page_is_retried_and_the_initial_sync_succeeds(pipeline, daemon: Daemon, provider):
    data = daemon.tick_sensor("new_connections")
    pipeline.emulator.faults.graphql_error(times=2, message=LOCK)  # on the runs' first pages
    daemon.launch(data.run_requests)
    daemon.settle()
    assert daemon.failures == []
    assert pipeline.emulator.faults.next_graphql_error() is None  # both were answered, and retried
    assert_attendance_matches_vendor(pipeline)
    state = daemon.store().state(COMPANY)
    assert state.cursor is not None and state.last_error is None and state.failures == 0


def test_a_validation_error_is_not_retried(pipeline, daemon: Daemon, provider):
    data = daemon.tick_sensor("new_connections")
    pipeline.emulator.faults.graphql_error(times=1, message="Cannot query field 'members' on type 'Query'.")
    daemon.launch(data.run_requests)
    daemon.settle()
    # Once only: asked again, the page would have come back fine and nothing would have failed.
    assert len(daemon.failures) == 1 and "Cannot query field" in daemon.failures[0]
    assert "still failing" not in daemon.failures[0]


def test_a_failed_initial_sync_is_retried_with_backoff_until_it_succeeds(
    pipeline, daemon: Daemon, provider, monkeypatch
):
    clock = {"now": NOW}
    monkeypatch.setattr(syncs, "utc_now", lambda: clock["now"])
    faults = pipeline.emulator.faults

    data = daemon.tick_sensor("new_connections")
    faults.graphql_error(times=100_000, message=LOCK)  # the vendor stays locked beyond every retry
    daemon.launch(data.run_requests)
    daemon.settle()
    assert daemon.failures and LOCK in daemon.failures[0]
    state = daemon.store().state(COMPANY)
    assert state.cursor is None and LOCK in state.last_error and state.failures == 1

    # Meanwhile: red, failing, with the vendor's reason and the next attempt.
    code, row, shown = status(pipeline, monkeypatch)
    assert code == 1 and "red" in row
    assert "initial sync failing (failed once; next attempt at 2026-11-20 18:30 UTC)" in shown and LOCK in shown

    # The refresh skips a company that never synced; the initial sync waits for its backoff.
    assert daemon.tick_schedule("refresh_every_two_hours").run_requests == []
    clock["now"] = NOW + timedelta(minutes=29)
    assert daemon.tick_sensor("new_connections").run_requests == []

    # Attempt 2, at 30 minutes: its check fails too; the wait doubles.
    clock["now"] = NOW + timedelta(minutes=30)
    assert daemon.tick_sensor("new_connections").run_requests == []
    state = daemon.store().state(COMPANY)
    assert state.failures == 2 and LOCK in state.last_error
    assert state.initial_sync_retry_at() == NOW + timedelta(minutes=90)
    assert "failed 2 times in a row; next attempt at 2026-11-20 19:30 UTC" in status(pipeline, monkeypatch)[2]
    clock["now"] = NOW + timedelta(minutes=89)
    assert daemon.tick_sensor("new_connections").run_requests == []

    # Attempt 3, once the vendor is back: the initial sync runs and succeeds.
    faults.clear()
    clock["now"] = NOW + timedelta(minutes=90)
    data = daemon.tick_sensor("new_connections")
    assert [r.job_name for r in data.run_requests] == ["sync_company_reference"]
    failures_before = len(daemon.failures)
    daemon.launch(data.run_requests)
    daemon.settle()
    assert daemon.failures[failures_before:] == []
    assert_attendance_matches_vendor(pipeline)
    state = daemon.store().state(COMPANY)
    assert state.cursor is not None and state.last_error is None and state.failures == 0
    code, row, _ = status(pipeline, monkeypatch)
    assert code == 0 and "green" in row
    # Synced: from now on the refresh checks it, and the initial sync is never asked again.
    assert daemon.tick_sensor("new_connections").run_requests == []
