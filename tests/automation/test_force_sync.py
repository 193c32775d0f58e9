"""``protiv sync`` is a real sync: it records the vendor's cursor as the daemon's syncs do.

Before, a force sync left the company without a cursor: the daemon then ran the whole initial sync
again, and ``protiv status --probe`` right after a successful force sync said "changes waiting".
``force_sync`` is what the CLI runs (with its progress bar around it); these tests call it with the
pipeline's definitions, over real HTTP to each vendor's emulator, and tick the daemon's sensors and
schedule afterwards.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import pytest
from typer.testing import CliRunner

from protiv_dagster.cli import app, output
from protiv_dagster.partitions import RANGE_END_TAG
from protiv_dagster.settings import REGISTRY_URL_VARIABLE
from protiv_dagster.sync.company import force_sync
from protiv_dagster.sync.state import SyncStateStore
from protiv_dagster.warehouse.store import analysts_copy
from tests.assets.conftest import COMPANY
from tests.assets.test_pipeline import assert_attendance_matches_vendor
from tests.assets.vendors import PROVIDERS
from tests.automation.conftest import EVERYTHING, NOW, Daemon


# The analysts' layer after a force sync is the same for every vendor: followed on one of them.
@pytest.mark.parametrize(
    "provider",
    [
        pytest.param(provider, marks=[pytest.mark.analysts_layer] if provider == "quickbooks_time" else [])
        for provider in PROVIDERS
    ],
)
def test_a_force_sync_records_the_cursor_so_the_daemon_only_refreshes(pipeline, daemon: Daemon, provider, monkeypatch):
    connection = pipeline.registry.get(COMPANY)
    run_ids = force_sync(pipeline.defs, pipeline.instance, connection, NOW)
    assert len(run_ids) == 3
    assert_attendance_matches_vendor(pipeline)
    state = daemon.store().state(COMPANY)
    assert state.cursor is not None and state.initial_sync_for == connection.connected_at
    assert state.current_as_of == NOW and state.last_error is None
    [batch] = daemon.store().batches_of(COMPANY)
    assert (batch.trigger, batch.status, batch.cursor) == ("force_sync", "succeeded", state.cursor)

    # The daemon does not sync the company all over again, and its next refresh finds nothing.
    runs = {run.run_id for run in pipeline.instance.get_runs()}
    assert daemon.tick_sensor("new_connections").run_requests == []
    assert daemon.tick_schedule("refresh_every_two_hours").run_requests == []
    # The automation computes the ProPays once more (it cannot tell whether a run it did not ask
    # for read the attendance before or after the week run: conditions.py), rebuilds the marts and
    # publishes the analysts' copy once after them, and nothing else.
    layer = daemon.follows is EVERYTHING
    assert all(
        (key.startswith(("propay_", "jobs_without_propay")) and partition == COMPANY)
        or (layer and (key == "analysts_database" or key.startswith("analytics/")) and partition is None)
        for key, partition in daemon.settle()
    )
    new_runs = [run for run in pipeline.instance.get_runs() if run.run_id not in runs]
    # The company's report follows its ProPays once, after the automation's ProPay run (it waits
    # while one is requested or running).
    reports = [
        run for run in new_runs if {key.to_user_string() for key in run.asset_selection or ()} == {"propay_report"}
    ]
    assert len(reports) == (1 if layer else 0)
    # The ProPays once more; with the analysts' layer, the marts after the force sync's ProPays and
    # again after the automation's (they wait for nothing: at fleet scale some company's ProPays are
    # nearly always requested), then the copy once, after both.
    groups = [sorted({key.path[0] for key in run.asset_selection or ()})[:2] for run in new_runs]
    assert len(new_runs) - len(reports) == (4 if layer else 1) and daemon.failures == [], groups
    assert groups.count(["analysts_database"]) == (1 if layer else 0), groups
    assert daemon.settle() == []

    # And the admin's probe agrees: nothing waiting, green.
    monkeypatch.setenv(REGISTRY_URL_VARIABLE, pipeline.registry.url)
    monkeypatch.setattr(output.console, "width", 400)
    probed = CliRunner().invoke(app, ["status", "--probe"])
    assert "changes waiting" not in probed.output
    assert probed.exit_code == 0, probed.output
    assert "green" in next(line for line in probed.output.splitlines() if COMPANY in line)


def test_a_failed_force_sync_is_recorded_with_its_reason_and_leaves_the_cursor(pipeline, daemon: Daemon):
    connection = pipeline.registry.get(COMPANY)
    force_sync(pipeline.defs, pipeline.instance, connection, NOW)
    cursor = daemon.store().state(COMPANY).cursor
    pipeline.emulator.faults.server_error(times=10_000, status=503)
    with pytest.raises(Exception, match="HTTP 503"):
        force_sync(pipeline.defs, pipeline.instance, connection, NOW + timedelta(hours=1))
    state = daemon.store().state(COMPANY)
    assert state.cursor == cursor and "HTTP 503" in state.last_error


@pytest.mark.parametrize(
    ("now", "last_week"),
    [
        # Sunday 20:00 in Denver, already Monday in UTC (and on a machine in UTC): no week of Monday yet.
        (datetime(2026, 11, 23, 3, tzinfo=UTC), "2026-11-16"),
        # Monday 01:00 in Denver: its week has begun.
        (datetime(2026, 11, 23, 8, tzinfo=UTC), "2026-11-23"),
    ],
)
def test_the_force_sync_window_ends_at_the_companys_local_today(pipeline, daemon: Daemon, now, last_week):
    assert pipeline.registry.get(COMPANY).settings.timezone == "America/Denver"
    run_ids = force_sync(pipeline.defs, pipeline.instance, pipeline.registry.get(COMPANY), now)
    week_run = pipeline.instance.get_run_by_id(run_ids[1])
    assert week_run.job_name == "sync_company_week"
    assert week_run.tags[RANGE_END_TAG].split("|")[-1] == last_week


def test_a_sync_is_recorded_as_finished_once_the_analysts_copy_holds_its_propays(pipeline, monkeypatch):
    """The integration page reads a company's ProPays from the analysts' copy as soon as its last
    sync time moves (service/page/app.js, refreshPropays). A sync recorded as finished before the
    copy was published let the page show the copy of before the sync: a connected company without
    ProPays until the page was reloaded (seen in the browser test of the OAuth connect, under load)."""
    copy = analysts_copy(pipeline.warehouse.store.duckdb_file())
    in_the_copy_when_finished: list[int] = []
    finish_batch = SyncStateStore.finish_batch

    def observed(self, batch_id, **kwargs):
        if kwargs["succeeded"]:
            rows = 0  # no copy yet: nothing for the page to show
            if copy.exists():
                with duckdb.connect(str(copy), read_only=True) as analyst:
                    [(rows,)] = analyst.execute(
                        "SELECT count(*) FROM protiv.propay_opportunities WHERE company_id = ?", [COMPANY]
                    ).fetchall()
            in_the_copy_when_finished.append(rows)
        return finish_batch(self, batch_id, **kwargs)

    monkeypatch.setattr(SyncStateStore, "finish_batch", observed)
    force_sync(pipeline.defs, pipeline.instance, pipeline.registry.get(COMPANY), NOW)
    computed = len(pipeline.warehouse.read_table("propay_opportunities", where={"company_id": COMPANY}))
    assert computed > 0
    assert in_the_copy_when_finished == [computed]
