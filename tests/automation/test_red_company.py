"""A red company looks red where engineers look, and syncing it is what turns it green again.

Through real Dagster runs on a persistent instance, ticked like the daemon does (``Daemon``), over
real HTTP to the QuickBooks Time emulator:

- the connection_status sensor's check_connection run materializes a green company's
  ``vendor_connection`` partition and fails a red one's, with the check result (red, the reason)
  recorded first and a failure that says the reason and the next step, retried by nobody;
- nothing downstream needs that partition: the UI's force sync (job ``force_sync``) of a red
  company opens a sync that the company_syncs sensor runs (workers and jobs, its due weeks only),
  the automation computes the ProPays, and the company turns green;
- a first vendor check that fails is said in the new_connections tick (who waits, why, until when)
  and retried with the backoff, while ``protiv status`` shows the next step;
- a company partition that never had a connection is deleted by new_connections; a disconnected
  company keeps its partition.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg
from typer.testing import CliRunner

from protiv_dagster.cli import app, output
from protiv_dagster.jobs import FORCE_SYNC_RUN_TAG
from protiv_dagster.partitions import RANGE_END_TAG, RANGE_START_TAG, company_partitions, company_week_key, week_keys
from protiv_dagster.settings import REGISTRY_URL_VARIABLE
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.runs import company_today
from tests.assets.conftest import COMPANY, PULL_DATE
from tests.assets.test_pipeline import assert_attendance_matches_vendor
from tests.automation.conftest import NOW, Daemon

CONNECTION = dg.AssetKey("vendor_connection")
HEALTH_CHECK = dg.AssetCheckKey(CONNECTION, "connection_healthy")


def partition_status(instance: dg.DagsterInstance, company_id: str = COMPANY):
    statuses = instance.get_status_by_partition(CONNECTION, [company_id], company_partitions)
    return statuses[company_id] if statuses else None


def latest_health(instance: dg.DagsterInstance, company_id: str = COMPANY):
    """The newest connection_healthy result of the company's partition."""
    history = instance.event_log_storage.get_asset_check_execution_history(HEALTH_CHECK, limit=20)  # newest first
    return next(record for record in history if record.partition == company_id)


def report_health(daemon: Daemon) -> dg.DagsterRun:
    """A connection_status tick that finds a change of colour, and the check_connection run it launched."""
    [request] = daemon.tick_sensor("connection_status").run_requests
    assert request.job_name == "check_connection" and request.partition_key == COMPANY
    before = {run.run_id for run in daemon.instance.get_runs()}
    daemon.launch([request])
    [run] = [run for run in daemon.instance.get_runs() if run.run_id not in before]
    return run


def status(pipeline, monkeypatch) -> tuple[int, str]:
    monkeypatch.setenv(REGISTRY_URL_VARIABLE, pipeline.registry.url)
    monkeypatch.setattr(output.console, "width", 400)  # one line per row and per reason
    result = CliRunner().invoke(app, ["status"])
    return result.exit_code, result.output


def test_a_red_company_reads_as_failed_and_a_ui_force_sync_turns_it_green(pipeline, daemon: Daemon, monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(syncs, "utc_now", lambda: clock["now"])
    daemon.launch(daemon.tick_sensor("new_connections").run_requests)
    daemon.settle()
    assert daemon.failures == []

    # Green: the health run materializes the company's partition.
    green = report_health(daemon)
    assert green.status == dg.DagsterRunStatus.SUCCESS
    assert partition_status(pipeline.instance) == dg.AssetPartitionStatus.MATERIALIZED

    # The vendor goes down; the refresh's check records why, and the company turns red.
    pipeline.emulator.faults.server_error(times=100_000, status=503)
    clock["now"] = NOW + timedelta(hours=2)
    assert daemon.tick_schedule("refresh_every_two_hours").run_requests == []
    red = report_health(daemon)
    assert red.status == dg.DagsterRunStatus.FAILURE
    assert red.tags["dagster/max_retries"] == "0"  # deploy/dagster.yaml's run retries stay off for it
    assert partition_status(pipeline.instance) == dg.AssetPartitionStatus.FAILED

    # The check result was recorded before the failure: red, with the vendor's reason.
    health = latest_health(pipeline.instance)
    evaluation = health.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    assert health.run_id == red.run_id and evaluation.passed is False
    assert "HTTP 503" in evaluation.description
    # The failure is the reason and the next step, once (no op retry), with no Python noise.
    [failure] = pipeline.instance.all_logs(red.run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
    error = failure.dagster_event.event_specific_data.error  # type: ignore[union-attr]
    user_failure = failure.dagster_event.event_specific_data.user_failure_data  # type: ignore[union-attr]
    assert user_failure.description.startswith(f"{COMPANY} is red: QuickBooks Time")
    assert "Next step: " in user_failure.description and f"`protiv sync {COMPANY}`" in user_failure.description
    assert "Traceback" not in user_failure.description and error.cls_name == "Failure"
    assert pipeline.instance.all_logs(red.run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY) == []
    code, shown = status(pipeline, monkeypatch)
    assert code == 1 and "  next step: make the vendor reachable" not in shown  # an HTTP 503 is no refusal
    assert "  next step: read the failed run in the Dagster UI" in shown

    # The vendor is back: the UI's force sync of the red company runs the sync in its own run.
    pipeline.emulator.faults.clear()
    clock["now"] = NOW + timedelta(hours=3)
    before = {run.run_id for run in pipeline.instance.get_runs()}
    failures = len(daemon.failures)  # the red health run's
    daemon.launch([dg.RunRequest(job_name="force_sync", partition_key=COMPANY)])
    assert daemon.failures[failures:] == [] and daemon.store().pending_batches(COMPANY) == []
    batch = daemon.store().batches_of(COMPANY)[-1]
    due_weeks = week_keys(PULL_DATE, company_today(pipeline.registry.get(COMPANY), clock["now"]))
    assert (batch.trigger, list(batch.weeks), batch.status) == ("ui_force_sync", due_weeks, "succeeded")
    new_runs = [run for run in pipeline.instance.get_runs() if run.run_id not in before]
    [force_run] = [run for run in new_runs if run.job_name == "force_sync"]
    sync_runs = sorted(
        (run.job_name, run.tags.get(RANGE_START_TAG), run.tags.get(RANGE_END_TAG))
        for run in new_runs
        if run.tags.get(FORCE_SYNC_RUN_TAG) == force_run.run_id
    )
    first, last = (str(company_week_key(COMPANY, week)) for week in (due_weeks[0], due_weeks[-1]))
    assert sync_runs == [
        ("compute_propay", None, None),
        ("sync_company_reference", None, None),
        ("sync_company_week", first, last),  # the due weeks, one run: never 100 weeks
    ]
    assert len(new_runs) == 4  # nothing else ran
    assert_attendance_matches_vendor(pipeline)
    state = daemon.store().state(COMPANY)
    assert state.current_as_of == clock["now"] and state.last_error is None and state.cursor is not None

    # Each count check is tied to the company it counted: by partition where the asset is by
    # company, by its metadata for attendance, whose runs cover a range of weeks.
    for key in ("workers", "jobs", "propay_opportunities", "propay_worker_bonuses"):
        check = dg.AssetCheckKey(dg.AssetKey(key), "counts_reconcile")
        history = pipeline.instance.event_log_storage.get_asset_check_execution_history(check, limit=10)
        assert history and {record.partition for record in history} == {COMPANY}, key
    [attendance_counts, *_] = pipeline.instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("attendance"), "counts_reconcile"), limit=10
    )
    evaluation = attendance_counts.event.dagster_event.event_specific_data  # type: ignore[union-attr]
    covered = f"{COMPANY} {due_weeks[0]}..{due_weeks[-1]}"
    assert evaluation.passed and evaluation.description == f"counts of {covered} (company, weeks)"
    assert evaluation.metadata["company"].value == COMPANY and evaluation.metadata["weeks"].value == covered

    # Green again, and its partition materialized again.
    assert report_health(daemon).status == dg.DagsterRunStatus.SUCCESS
    assert partition_status(pipeline.instance) == dg.AssetPartitionStatus.MATERIALIZED
    assert status(pipeline, monkeypatch)[0] == 0


def test_the_ui_force_sync_refuses_a_company_with_a_sync_in_flight_and_one_not_connected(pipeline, daemon: Daemon):
    daemon.launch(daemon.tick_sensor("new_connections").run_requests)  # the reference run: weeks still due
    pipeline.instance.add_dynamic_partitions(company_partitions.name, ["birch"])
    for company_id, reason in (
        (COMPANY, f"company '{COMPANY}' has a sync in flight (its initial sync since 2026-11-20 18:00 UTC, runs"),
        ("birch", "company 'birch' has no connection; an admin connects it with `protiv connect`"),
    ):
        before = len(daemon.failures)
        daemon.launch([dg.RunRequest(job_name="force_sync", partition_key=company_id)])
        [failure] = daemon.failures[before:]
        assert reason in failure and "Traceback" not in failure, failure
    assert [batch.trigger for batch in daemon.store().pending_batches()] == ["initial_sync"]


def test_a_failed_first_check_is_said_in_the_tick_and_retried_with_backoff(pipeline, daemon: Daemon, monkeypatch):
    clock = {"now": NOW}
    monkeypatch.setattr(syncs, "utc_now", lambda: clock["now"])
    pipeline.emulator.faults.server_error(times=100_000, status=503)

    first = daemon.tick_sensor("new_connections")
    assert first.run_requests == []
    assert pipeline.instance.has_dynamic_partition(company_partitions.name, COMPANY)  # a partition already
    assert first.skip_message.startswith(f"{COMPANY} waits for its initial sync (failed once: QuickBooks Time")
    assert first.skip_message.endswith("; next attempt at 2026-11-20 18:30:00 UTC")
    assert "HTTP 503" in first.skip_message
    code, shown = status(pipeline, monkeypatch)
    assert code == 1 and "initial sync failing (failed once; next attempt at 2026-11-20 18:30 UTC)" in shown
    assert "  next step: read the failed run in the Dagster UI" in shown and f"`protiv sync {COMPANY}`" in shown

    clock["now"] = NOW + timedelta(minutes=29)
    waiting = daemon.tick_sensor("new_connections")
    assert waiting.run_requests == [] and waiting.skip_message == first.skip_message

    clock["now"] = NOW + timedelta(minutes=30)  # attempt 2 fails too: the wait doubles
    second = daemon.tick_sensor("new_connections")
    assert "failed 2 times in a row" in second.skip_message
    assert second.skip_message.endswith("next attempt at 2026-11-20 19:30:00 UTC")

    pipeline.emulator.faults.clear()
    clock["now"] = NOW + timedelta(minutes=90)
    third = daemon.tick_sensor("new_connections")
    assert [r.job_name for r in third.run_requests] == ["sync_company_reference"]
    daemon.launch(third.run_requests)
    daemon.settle()
    assert daemon.failures == [] and daemon.store().state(COMPANY).cursor is not None
    assert daemon.tick_sensor("new_connections").skip_message == "no new connection"


def test_a_company_partition_without_a_connection_is_deleted_a_disconnected_one_stays(pipeline, daemon: Daemon):
    daemon.launch(daemon.tick_sensor("new_connections").run_requests)
    daemon.settle()
    # Added by hand, as the UI's partition picker would: never connected.
    pipeline.instance.add_dynamic_partitions(company_partitions.name, ["made-up"])
    tick = daemon.tick_sensor("new_connections")
    assert tick.skip_message.startswith("deleted company partitions without a connection: made-up")
    assert pipeline.instance.get_dynamic_partitions(company_partitions.name) == [COMPANY]

    pipeline.registry.disconnect(COMPANY)
    daemon.tick_sensor("new_connections")
    assert pipeline.instance.get_dynamic_partitions(company_partitions.name) == [COMPANY]


def test_nothing_downstream_needs_a_vendor_connection_that_succeeded(pipeline):
    """The sync jobs do not select vendor_connection and the automated assets do not depend on it, so
    neither a failed nor a missing partition of it holds anything back (the first test syncs a red
    company end to end)."""
    graph = pipeline.defs.resolve_asset_graph()
    for key in ("attendance", "propay_opportunities", "propay_worker_bonuses", "propay_overtime_weeks"):
        assert CONNECTION not in graph.get(dg.AssetKey(key)).parent_keys, key
    for job in ("sync_company_reference", "sync_company_week", "compute_propay", "force_sync"):
        layer = pipeline.defs.resolve_job_def(job).asset_layer
        assert CONNECTION not in (layer.executable_asset_keys if layer else set()), job
