"""What a data engineer sees in the Dagster UI, read through dagster-webserver's GraphQL API.

One company (acme, QuickBooks Time) is connected and synced the daemon's way (``Daemon`` of
tests/automation/conftest.py ticks new_connections, company_syncs and the automation, launching the
runs they request), and a second one (birch, Aspire) is connected with credentials its vendor refuses.
``connection_status`` then reports both companies' health. A real ``dagster-webserver`` started on
workspace.yaml, with the same DAGSTER_HOME, registry and warehouse, must show the assets with their
company partitions, the schedule and sensors running, each company's health check with its reason,
and each company's provider on its materializations and runs.

What the UI does not show yet is marked xfail (strict, so fixing it makes the marker go).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.partitions import company_week_partitions
from protiv_dagster.settings import (
    DATA_DIR_VARIABLE,
    REFRESH_CRON_VARIABLE,
    REGISTRY_URL_VARIABLE,
    SECRET_KEY_VARIABLE,
    WAREHOUSE_URL_VARIABLE,
)
from protiv_dagster.sync import runs as syncs
from protiv_emulators.generator import generate_company
from tests.assets.conftest import AS_OF, PULL_DATE, SETTINGS
from tests.assets.vendors import host
from tests.automation.conftest import EVERYTHING, Daemon
from tests.graphql import dagster_webserver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 20, 18, tzinfo=UTC)  # the automation's clock: just after the generated data
WEEKS = ["2026-11-02", "2026-11-09", "2026-11-16"]  # the pull date (Nov 6) to today (Nov 20)
SYNCED, REFUSED = "acme", "birch"
PROVIDERS = {SYNCED: "quickbooks_time", REFUSED: "aspire"}
CONNECTION = dg.AssetKey("vendor_connection")
CHECK = "connection_healthy"


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    """The synced instance and a webserver on it, with the definitions, the runs and the refused secrets."""
    tmp = tmp_path_factory.mktemp("webserver")
    home = tmp / "dagster_home"
    home.mkdir()
    # The laptop's instance as `protiv ui` writes it (no usage statistics leave the machine; its
    # storages keep their SQLite connections): the webserver reads what this process wrote.
    (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)
    env = {
        "DAGSTER_HOME": str(home),
        DATA_DIR_VARIABLE: str(tmp / "data"),
        REGISTRY_URL_VARIABLE: f"sqlite:///{tmp / 'registry.sqlite3'}",
        WAREHOUSE_URL_VARIABLE: str(tmp / "warehouse.duckdb"),
        SECRET_KEY_VARIABLE: generate_secret_key(),
    }
    harnesses = []
    with pytest.MonkeyPatch.context() as patch:
        for name, value in env.items():
            patch.setenv(name, value)
        patch.delenv(REFRESH_CRON_VARIABLE, raising=False)
        patch.setattr(syncs, "utc_now", lambda: NOW)
        try:
            registry = ConnectionRegistry(env[REGISTRY_URL_VARIABLE])
            for company_id, seed, workers in ((SYNCED, 11, 15), (REFUSED, 12, 5)):
                data = generate_company(
                    company_id, seed=seed, workers=workers, days=14, as_of=AS_OF, timezone="America/Denver"
                )
                harness = host(PROVIDERS[company_id], data)
                harnesses.append(harness)
                credentials = harness.credentials if company_id == SYNCED else harness.wrong_credentials()
                if company_id == REFUSED:
                    refused_secrets = [value for value in credentials.values() if value]
                registry.connect(
                    company_id,
                    harness.provider,
                    harness.base_url,
                    credentials,
                    attendance_pull_date=PULL_DATE,
                    settings={**SETTINGS, "timezone": data.timezone},
                )
            defs = build_defs()  # the code location's own resources, reading the environment above
            with dg.DagsterInstance.get() as instance:
                # Everything the daemon follows: the analysts' layer too (each company's report).
                daemon = Daemon(SimpleNamespace(defs=defs, instance=instance), follows=EVERYTHING)
                daemon.follow_upstream()  # the daemon evaluates the automation from the start
                daemon.launch(daemon.tick_sensor("new_connections").run_requests)
                daemon.settle()
                assert daemon.failures == []
                daemon.launch(daemon.tick_sensor("connection_status").run_requests)
                expected_runs = {run.run_id: run for run in instance.get_runs()}
            assert {r.job_name for r in daemon.launched} == {
                "sync_company_reference",
                "sync_company_week",
                "check_connection",
            }
        finally:
            for harness in harnesses:
                harness.stop()  # the webserver never calls a vendor

    server_env = {**os.environ, **env}
    server_env.pop(REFRESH_CRON_VARIABLE, None)
    with dagster_webserver(ROOT / "workspace.yaml", server_env, tmp / "webserver.log") as server:
        yield SimpleNamespace(server=server, defs=defs, runs=expected_runs, refused_secrets=refused_secrets)


def test_the_code_location_loads(ui):
    data = ui.server.query(
        "{ workspaceOrError { ... on Workspace { locationEntries { name"
        " locationOrLoadError { __typename ... on PythonError { message } } } } } }"
    )
    entries = data["workspaceOrError"]["locationEntries"]
    assert [(e["name"], e["locationOrLoadError"]["__typename"]) for e in entries] == [
        ("protiv_dagster", "RepositoryLocation")
    ], entries


ASSETS = """
{ assetNodes { assetKey { path } partitionKeysByDimension { name partitionKeys } } }
"""


def test_every_asset_shows_its_company_partitions(ui):
    nodes = {tuple(n["assetKey"]["path"]): n for n in ui.server.query(ASSETS)["assetNodes"]}
    defined = {tuple(key.path) for key in ui.defs.resolve_asset_graph().get_all_asset_keys()}
    assert {("raw_timesheets",), ("attendance",), ("workers",), ("jobs",), ("propay_opportunities",)} <= defined
    assert set(nodes) == defined

    for key, node in sorted(nodes.items()):
        dimensions = {d["name"]: d["partitionKeys"] for d in node["partitionKeysByDimension"]}
        partitions_def = ui.defs.resolve_assets_def(dg.AssetKey(list(key))).partitions_def
        if partitions_def is None:  # no company's: the analysts' copy, the dbt marts (every company's rows)
            assert key == ("analysts_database",) or key[0] == "analytics", key
            assert dimensions == {}, key
            continue
        if partitions_def == company_week_partitions:
            assert set(dimensions) == {"company", "week"}, key
            assert set(WEEKS) <= set(dimensions["week"]), key
        else:
            assert set(dimensions) == {"default"}, key  # the company dimension alone
            dimensions = {"company": dimensions["default"]}
        # Every connected company is a partition, also one whose vendor refused its credentials.
        assert sorted(dimensions["company"]) == [SYNCED, REFUSED], key


MATERIALIZATIONS = """
query ($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { ... on Asset {
    assetMaterializations { partition runId
      metadataEntries { label ... on TextMetadataEntry { text } } } } }
}
"""


def materializations(ui, key: str) -> list[dict]:
    asset = ui.server.query(MATERIALIZATIONS, {"key": {"path": [key]}})["assetOrError"]
    return asset["assetMaterializations"]


def company_of(partition: str) -> str:
    return partition.split("|")[0]  # Dagster orders a multi-partition key's dimensions by name: company|week


def test_the_latest_materialization_of_each_company_partition_names_its_provider(ui):
    graph = ui.defs.resolve_asset_graph()
    for asset_key in sorted(graph.materializable_asset_keys, key=lambda k: k.to_user_string()):
        if ui.defs.resolve_assets_def(asset_key).partitions_def is None:  # no company's: the analysts' copy, marts
            continue
        key = asset_key.to_user_string()
        events = materializations(ui, key)
        if ui.defs.resolve_assets_def(key).partitions_def == company_week_partitions:
            expected = {f"{SYNCED}|{week}" for week in WEEKS}
        else:
            expected = {SYNCED}
        assert {e["partition"] for e in events if company_of(e["partition"]) == SYNCED} == expected, key
        latest = {}
        for event in events:  # newest first
            latest.setdefault(event["partition"], event)
        for partition, event in latest.items():
            metadata = {m["label"]: m.get("text") for m in event["metadataEntries"]}
            assert metadata.get("provider") == PROVIDERS[company_of(partition)], (key, partition, metadata)
            assert event["runId"] in ui.runs, (key, partition)


OBSERVATIONS = """
query ($key: AssetKeyInput!) {
  assetOrError(assetKey: $key) { ... on Asset {
    assetObservations { partition metadataEntries { label ... on TextMetadataEntry { text } } } } }
}
"""


def test_each_company_vendor_connection_is_observed_with_its_provider(ui):
    events = ui.server.query(OBSERVATIONS, {"key": {"path": CONNECTION.path}})["assetOrError"]["assetObservations"]
    latest = {}
    for event in events:  # newest first
        latest.setdefault(event["partition"], {m["label"]: m.get("text") for m in event["metadataEntries"]})
    assert {company: metadata["provider"] for company, metadata in latest.items()} == PROVIDERS
    assert {company: metadata["status"] for company, metadata in latest.items()} == {SYNCED: "green", REFUSED: "red"}


def test_nothing_of_the_refused_company_is_loaded_from_its_vendor(ui):
    for key in ("raw_timesheets", "workers", "jobs", "attendance"):
        assert [e["partition"] for e in materializations(ui, key) if company_of(e["partition"]) == REFUSED] == [], key


RUNS = """
query ($tags: [ExecutionTag!]) {
  runsOrError(filter: {tags: $tags}) { ... on Runs {
    results { runId jobName status tags { key value } } } }
}
"""


def runs_tagged(ui, **tags: str) -> list[dict]:
    filters = [{"key": f"protiv/{key}", "value": value} for key, value in tags.items()]
    return ui.server.query(RUNS, {"tags": filters})["runsOrError"]["results"]


def test_every_run_carries_its_company_and_provider_tags(ui):
    runs = runs_tagged(ui)
    assert {r["runId"] for r in runs} == set(ui.runs)
    by_company: dict[str, set[str]] = {}
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        if "protiv/company" not in tags:
            # Only the automation's publication of the analysts' copy belongs to no company.
            assert run["jobName"] == "__ASSET_JOB" and run["status"] == "SUCCESS", run
            continue
        company_id = tags["protiv/company"]
        # Every run succeeded but the refused company's health run, which fails to show it red.
        refused_health = run["jobName"] == "check_connection" and company_id == REFUSED
        assert run["status"] == ("FAILURE" if refused_health else "SUCCESS"), run
        if run["jobName"] == "check_connection":
            # The health check calls no vendor: no provider tag, so it never takes a vendor's run slot.
            assert "protiv/provider" not in tags, tags
            continue
        assert tags["protiv/provider"] == PROVIDERS[company_id], (run["jobName"], tags)
        by_company.setdefault(company_id, set()).add(run["runId"])
    # The daemon's sync runs, the ProPay run the automation launched (tagged by the run itself) and
    # the health check run.
    assert {r["jobName"] for r in runs_tagged(ui, company=SYNCED)} == {
        "sync_company_reference",
        "sync_company_week",
        "__ASSET_JOB",
        "check_connection",
    }
    # The Runs page filters by provider: exactly each company's runs.
    for company_id, provider in PROVIDERS.items():
        assert {r["runId"] for r in runs_tagged(ui, provider=provider)} == by_company.get(company_id, set())


AUTOMATION = """
{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
    schedules { name cronSchedule executionTimezone scheduleState { status } }
    sensors { name sensorType sensorState { status } } } } } }
"""


def test_the_schedule_and_sensors_are_running_by_default(ui):
    [repository] = ui.server.query(AUTOMATION)["repositoriesOrError"]["nodes"]
    assert repository["location"]["name"] == "protiv_dagster"
    schedules = {
        s["name"]: (s["cronSchedule"], s["executionTimezone"], s["scheduleState"]["status"])
        for s in repository["schedules"]
    }
    assert schedules == {"refresh_every_two_hours": ("0 */2 * * *", "UTC", "RUNNING")}
    sensors = {s["name"]: (s["sensorType"], s["sensorState"]["status"]) for s in repository["sensors"]}
    assert sensors == {
        "new_connections": ("STANDARD", "RUNNING"),
        "company_syncs": ("STANDARD", "RUNNING"),
        "connection_status": ("STANDARD", "RUNNING"),
        "follow_upstream_changes": ("AUTO_MATERIALIZE", "RUNNING"),  # an automation condition sensor
    }


HEALTH = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetChecksOrError { ... on AssetChecks { checks { name partitionKeysByDimension { name partitionKeys } } } } } }
  assetCheckExecutions(assetKey: $key, checkName: "connection_healthy", limit: 10) {
    partition status runId
    evaluation { success partition description metadataEntries { label ... on TextMetadataEntry { text } } } }
}
"""


def test_each_company_has_its_connection_health_with_the_reason(ui):
    data = ui.server.query(HEALTH, {"key": {"path": CONNECTION.path}})
    checks = {c["name"]: c for c in data["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    assert [(d["name"], sorted(d["partitionKeys"])) for d in checks[CHECK]["partitionKeysByDimension"]] == [
        ("default", [SYNCED, REFUSED])
    ]

    executions = data["assetCheckExecutions"]  # newest first
    latest = {}
    for execution in executions:
        latest.setdefault(execution["partition"], execution)
    assert set(latest) == {SYNCED, REFUSED}  # one result per company partition
    for company_id, execution in latest.items():
        evaluation = execution["evaluation"]
        metadata = {m["label"]: m.get("text") for m in evaluation["metadataEntries"]}
        # Evaluated by a check_connection run the connection_status sensor launched.
        assert ui.runs[execution["runId"]].job_name == "check_connection", execution
        assert evaluation["partition"] == company_id
        assert evaluation["description"] == metadata["reason"], metadata
        assert metadata["provider"] == PROVIDERS[company_id], metadata  # the id, as on every materialization
        assert metadata["status"] == ("green" if company_id == SYNCED else "red"), metadata

    synced = latest[SYNCED]
    assert (synced["status"], synced["evaluation"]["success"]) == ("SUCCEEDED", True)
    assert synced["evaluation"]["description"] == "current as of 0 min ago"

    refused = latest[REFUSED]
    assert (refused["status"], refused["evaluation"]["success"]) == ("FAILED", False)
    reason = refused["evaluation"]["description"]
    # Its initial sync never ran: the reason says so and when the next attempt is, then the vendor's words.
    assert reason.startswith("initial sync failing (failed once; next attempt at "), reason
    assert "Aspire: credentials rejected" in reason and "HTTP 401" in reason, reason
    assert reason.endswith("an admin must reconnect this company"), reason
    assert not any(secret in reason for secret in ui.refused_secrets), reason


CHECK_STATUS = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    assetChecksOrError { ... on AssetChecks { checks { name
      partitionStatuses { ... on AssetCheckDefaultPartitionStatuses { succeededPartitions failedPartitions } } } } } } }
}
"""


def test_the_check_shows_each_company_green_or_red_on_its_partition(ui):
    data = ui.server.query(CHECK_STATUS, {"key": {"path": CONNECTION.path}})
    checks = {c["name"]: c for c in data["assetNodeOrError"]["assetChecksOrError"]["checks"]}
    assert checks[CHECK]["partitionStatuses"] == {"succeededPartitions": [SYNCED], "failedPartitions": [REFUSED]}


PARTITIONS = """
query ($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) { ... on AssetNode {
    partitionStats { numMaterialized numFailed numMaterializing numPartitions }
    assetPartitionStatuses { ... on DefaultPartitionStatuses { materializedPartitions failedPartitions } } } }
}
"""


def test_a_red_company_partition_reads_as_failed_in_the_partitions_and_the_catalog(ui):
    """The partition bar and the catalog's counts: the refused company red (failed), the synced one green."""
    node = ui.server.query(PARTITIONS, {"key": {"path": CONNECTION.path}})["assetNodeOrError"]
    assert node["assetPartitionStatuses"] == {"materializedPartitions": [SYNCED], "failedPartitions": [REFUSED]}
    assert node["partitionStats"] == {"numMaterialized": 1, "numFailed": 1, "numMaterializing": 0, "numPartitions": 2}


FAILURE = """
query ($runId: ID!) {
  logsForRun(runId: $runId) { ... on EventConnection { events { __typename
    ... on ExecutionStepFailureEvent { failureMetadata { description } error { message } } } } }
}
"""


def test_the_failed_health_run_says_the_reason_and_the_next_step(ui):
    [run] = [r for r in runs_tagged(ui, company=REFUSED) if r["jobName"] == "check_connection"]
    events = ui.server.query(FAILURE, {"runId": run["runId"]})["logsForRun"]["events"]
    [failure] = [e for e in events if e["__typename"] == "ExecutionStepFailureEvent"]  # once: no op retries
    description = failure["failureMetadata"]["description"]
    assert description.startswith(f"{REFUSED} is red: initial sync failing (failed once; next attempt at ")
    assert f"Next step: an admin reconnects it with valid credentials (`protiv connect {REFUSED} ...`)" in description
    assert not any(secret in description for secret in ui.refused_secrets)
    assert {t["key"]: t["value"] for t in run["tags"]}.get("dagster/max_retries") == "0"
