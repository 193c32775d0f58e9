"""The UI's force sync and the company partition picker, driven through dagster-webserver's GraphQL API.

One company (acme, QuickBooks Time, its emulator running) is connected and synced the daemon's way.
A real ``dagster-webserver`` on workspace.yaml and the same DAGSTER_HOME then does what a data
engineer does in the UI: launches job ``force_sync`` for the company's partition (the webserver runs
it in a subprocess, as it would in production), and adds a company partition by hand in the
partition picker. The daemon's part (``Daemon``: the sensor ticks and the runs they request) runs in
this process on the same instance. Real clock: the due weeks are the pull date's to today's.
"""

from __future__ import annotations

import os
import re
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.jobs import FORCE_SYNC_RUN_TAG
from protiv_dagster.partitions import COMPANY_PARTITIONS_NAME, RANGE_END_TAG, RANGE_START_TAG, company_week_key
from protiv_dagster.settings import (
    DATA_DIR_VARIABLE,
    REFRESH_CRON_VARIABLE,
    REGISTRY_URL_VARIABLE,
    SECRET_KEY_VARIABLE,
    WAREHOUSE_URL_VARIABLE,
)
from protiv_dagster.sync.company import force_sync
from protiv_dagster.sync.runs import all_weeks, run_failure_message
from protiv_emulators.generator import generate_company
from tests.assets.conftest import AS_OF, PULL_DATE, SETTINGS
from tests.assets.vendors import host
from tests.automation.conftest import Daemon
from tests.graphql import dagster_webserver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
COMPANY = "acme"
LOCATION = "protiv_dagster"


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("webserver_force_sync")
    home = tmp / "dagster_home"
    home.mkdir()
    # The laptop's instance (nothing leaves the machine, storages on kept SQLite connections), except
    # that a run launched in the UI starts at once: no daemon here takes it from the queue (the
    # daemon's part is ticked in this process).
    queued = "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: QueuedRunCoordinator\n"
    assert queued in LAPTOP_INSTANCE
    (home / "dagster.yaml").write_text(
        re.sub(r"run_coordinator:\n(  .*\n)+", "", LAPTOP_INSTANCE)
        + "run_coordinator:\n  module: dagster.core.run_coordinator\n  class: DefaultRunCoordinator\n"
    )
    env = {
        "DAGSTER_HOME": str(home),
        DATA_DIR_VARIABLE: str(tmp / "data"),
        REGISTRY_URL_VARIABLE: f"sqlite:///{tmp / 'registry.sqlite3'}",
        WAREHOUSE_URL_VARIABLE: str(tmp / "warehouse.duckdb"),
        SECRET_KEY_VARIABLE: generate_secret_key(),
    }
    data = generate_company(COMPANY, seed=11, workers=15, days=14, as_of=AS_OF, timezone="America/Denver")
    harness = host("quickbooks_time", data)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            patch.delenv(REFRESH_CRON_VARIABLE, raising=False)
            registry = ConnectionRegistry(env[REGISTRY_URL_VARIABLE])
            registry.connect(
                COMPANY,
                harness.provider,
                harness.base_url,
                harness.credentials,
                attendance_pull_date=PULL_DATE,
                settings={**SETTINGS, "timezone": data.timezone},
            )
            defs = build_defs()
            with dg.DagsterInstance.get() as instance:
                daemon = Daemon(SimpleNamespace(defs=defs, instance=instance))
                daemon.follow_upstream()
                daemon.launch(daemon.tick_sensor("new_connections").run_requests)
                daemon.settle()
                assert daemon.failures == []
                server_env = {**os.environ, **env}
                server_env.pop(REFRESH_CRON_VARIABLE, None)
                with dagster_webserver(ROOT / "workspace.yaml", server_env, tmp / "webserver.log") as server:
                    yield SimpleNamespace(server=server, daemon=daemon, instance=instance, registry=registry, defs=defs)
    finally:
        harness.stop()


REPOSITORY = "{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }"

LAUNCH = """
mutation ($params: ExecutionParams!) {
  launchRun(executionParams: $params) { __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } } }
}
"""

RUN = "query ($runId: ID!) { runOrError(runId: $runId) { ... on Run { status jobName tags { key value } } } }"


def repository_selector(ui) -> dict:
    [repository] = ui.server.query(REPOSITORY)["repositoriesOrError"]["nodes"]
    return {"repositoryLocationName": LOCATION, "repositoryName": repository["name"]}


def launch_in_ui(ui, job_name: str, partition: str) -> str:
    """Launch a job's partition as the launchpad does; returns the run id once the run has ended."""
    params = {
        "selector": {**repository_selector(ui), "jobName": job_name},
        "runConfigData": {},
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
        "mode": "default",
    }
    launched = ui.server.query(LAUNCH, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    run_id = launched["run"]["runId"]
    deadline = time.monotonic() + 120
    while (status := ui.server.query(RUN, {"runId": run_id})["runOrError"]["status"]) not in (
        "SUCCESS",
        "FAILURE",
        "CANCELED",
    ):
        assert time.monotonic() < deadline, f"run {run_id} still {status}"
        time.sleep(0.5)
    return run_id


def test_the_ui_force_sync_runs_only_the_companys_due_weeks_and_records_the_sync(ui):
    connection = ui.registry.get(COMPANY)
    before = {run.run_id for run in ui.instance.get_runs()}
    started = time.perf_counter()
    run_id = launch_in_ui(ui, "force_sync", COMPANY)
    ui_seconds = time.perf_counter() - started
    assert ui.instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
    # Nothing waits for a sensor: when the force_sync run has ended, so has the sync, and it is recorded.
    assert ui.daemon.store().pending_batches(COMPANY) == []
    [batch] = [b for b in ui.daemon.store().batches_of(COMPANY) if b.trigger == "ui_force_sync"]
    due = all_weeks(connection, datetime.now(UTC))
    assert list(batch.weeks) == due and batch.status == "succeeded"
    assert len(due) < 10  # the pull date's week to this week, never the 100 weeks of the partition set
    state = ui.daemon.store().state(COMPANY)
    assert state.current_as_of == batch.requested_at and state.last_error is None and state.cursor is not None

    new_runs = [run for run in ui.instance.get_runs() if run.run_id not in before]
    ran = sorted((run.job_name, run.tags.get(RANGE_START_TAG)) for run in new_runs if run.run_id != run_id)
    assert ran == [
        ("compute_propay", None),
        ("sync_company_reference", None),
        ("sync_company_week", str(company_week_key(COMPANY, due[0]))),
    ]
    assert all(run.tags[FORCE_SYNC_RUN_TAG] == run_id for run in new_runs if run.run_id != run_id)
    [week_run] = [run for run in new_runs if run.job_name == "sync_company_week"]
    assert week_run.tags[RANGE_END_TAG] == str(company_week_key(COMPANY, due[-1]))
    assert all(run.status == dg.DagsterRunStatus.SUCCESS for run in new_runs)

    # A second force sync while the automation has a sync of the company under way is refused with it.
    store = ui.daemon.store()
    pending = store.open_batch(COMPANY, "refresh", None, due[-1:], False, datetime.now(UTC))
    refused = launch_in_ui(ui, "force_sync", COMPANY)
    assert ui.instance.get_run_by_id(refused).status == dg.DagsterRunStatus.FAILURE
    assert "has a sync in flight (its refresh since" in run_failure_message(ui.instance, refused)
    store.finish_batch(pending.batch_id, succeeded=True, at=datetime.now(UTC))

    # The CLI's force sync of the same company, for comparison: the same weeks in three runs.
    started = time.perf_counter()
    run_ids = force_sync(ui.defs, ui.instance, connection, datetime.now(UTC))
    cli_seconds = time.perf_counter() - started
    assert len(run_ids) == 3
    record = ui.instance.get_run_record_by_id(run_id)
    assert record is not None and record.start_time is not None and record.end_time is not None
    launch = record.start_time - record.create_timestamp.timestamp()
    print(f"\nforce_sync run: {launch:.1f} s from launch to start, then {record.end_time - record.start_time:.1f} s")
    print(f"\nUI force sync: 1 + {len(ran)} runs in {ui_seconds:.1f} s; protiv sync's runs: 3 in {cli_seconds:.1f} s")


ADD_PARTITION = """
mutation ($selector: RepositorySelector!, $name: String!, $key: String!) {
  addDynamicPartition(repositorySelector: $selector, partitionsDefName: $name, partitionKey: $key) { __typename }
}
"""

COMPANIES = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode { partitionKeysByDimension { partitionKeys } } }
}
"""


def companies_in_ui(ui) -> list[str]:
    node = ui.server.query(COMPANIES, {"key": {"path": ["vendor_connection"]}})["assetNodeOrError"]
    return node["partitionKeysByDimension"][0]["partitionKeys"]


def test_a_company_added_in_the_partition_picker_is_gone_after_the_next_sensor_tick(ui):
    added = ui.server.query(
        ADD_PARTITION, {"selector": repository_selector(ui), "name": COMPANY_PARTITIONS_NAME, "key": "made-up"}
    )
    assert added["addDynamicPartition"]["__typename"] == "AddDynamicPartitionSuccess"
    assert sorted(companies_in_ui(ui)) == [COMPANY, "made-up"]
    tick = ui.daemon.tick_sensor("new_connections")
    assert tick.skip_message.startswith("deleted company partitions without a connection: made-up")
    assert companies_in_ui(ui) == [COMPANY]
