"""The analysts' marts (dbt, schema ``analytics``) built through Dagster on a synced warehouse, DuckDB
and PostgreSQL: every model built, every dbt test passed as an asset check, each mart equal to its
view of ``protiv_dagster/views.py``, and row-level security through a mart on PostgreSQL."""

from __future__ import annotations

import importlib.metadata
import shutil
import subprocess
import sys
import uuid
from decimal import Decimal

import dagster as dg
import duckdb
import pandas as pd
import psycopg
import pytest

from protiv_dagster import analytics
from protiv_dagster.analytics import analytics_schema
from protiv_dagster.analytics.schema_files import DISPLAY, DISPLAY_PLACES
from protiv_dagster.assets import analytics as analytics_assets
from protiv_dagster.assets.analytics import analytics_marts
from protiv_dagster.assets.propay import propay_tables
from protiv_dagster.definitions import defs
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import ALL_TABLES
from protiv_dagster.views import ALL_VIEWS
from protiv_dagster.warehouse.publish import publish_for_analysts

MARTS = {dg.AssetKey(["analytics", view.name]) for view in ALL_VIEWS}


def build_marts(pipeline) -> dg.ExecuteInProcessResult:
    """``dbt build`` through Dagster: the marts and every check of the dbt assets."""
    result = dg.materialize(
        [analytics_marts],
        instance=pipeline.instance,
        resources={"warehouse": pipeline.warehouse},
        raise_on_error=False,
    )
    return result


def mart(pipeline, name: str) -> pd.DataFrame:
    schema = analytics_schema(pipeline.warehouse.schema_name)
    return pipeline.warehouse.query(f'SELECT * FROM "{schema}".{name}')


def _sorted(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.astype(object).where(frame.notna(), None)
    return frame.sort_values(list(frame.columns), key=lambda c: c.astype(str)).reset_index(drop=True)


def test_the_marts_follow_the_propay_tables_in_the_lineage():
    graph = defs.resolve_asset_graph()
    propays = set(propay_tables.keys) | {dg.AssetKey("workers")}
    for key in MARTS:
        node = graph.get(key)
        assert node.parent_keys and node.parent_keys <= propays, (key, node.parent_keys)
        assert node.group_name == "analytics" and node.automation_condition is not None
    assert graph.get(dg.AssetKey(["analytics", "propay_savings"])).parent_keys == {dg.AssetKey("propay_opportunities")}


def test_no_company_sync_job_runs_dbt():
    """A company's sync writes its partitions only; dbt tests every company's rows, in the marts' build.
    (Source tests as asset checks would put the dbt step into the jobs writing the ProPay tables.)"""
    for job in defs.resolve_all_job_defs():
        if job.partitions_def is not None:
            assert analytics_marts.node_def.name not in {node.name for node in job.graph.nodes}, job.name


@pytest.mark.parametrize("warehouse_backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_dbt_builds_every_mart_passes_every_test_and_equals_its_view(pipeline, warehouse_backend):
    pipeline.sync()
    result = build_marts(pipeline)
    assert result.success
    built = {event.asset_key for event in result.get_asset_materialization_events()}
    assert built == MARTS
    checks = result.get_asset_check_evaluations()
    failed = [(check.asset_key.to_user_string(), check.check_name) for check in checks if not check.passed]
    assert not failed
    # Every test of the marts ran as a check; the sources' tests ran in the same build (a failing
    # one fails it), not as checks: they would run in every sync job that writes a ProPay table
    # (TRANSLATOR in protiv_dagster/assets/analytics.py).
    assert {check.asset_key for check in checks} == MARTS
    assert len(checks) == len(analytics_marts.check_specs) >= 20
    for view in ALL_VIEWS:
        expected = pipeline.warehouse.query(f"SELECT * FROM {{schema}}.{view.name}")
        actual = mart(pipeline, view.name)
        exact = [column.name for column in view.columns]
        displayed = [f"{name}_display" for name in DISPLAY[view.name]]
        assert list(actual.columns) == sorted(exact + displayed, key=list(actual.columns).index)
        assert [c for c in actual.columns if c not in displayed] == exact
        assert len(actual) > 0, view.name
        pd.testing.assert_frame_equal(_sorted(actual[exact]), _sorted(expected), check_dtype=False)
        for name, kind in DISPLAY[view.name].items():
            scale = 100 if kind == "ratio" else 1
            for exact_value, shown in zip(actual[name], actual[f"{name}_display"], strict=True):
                if pd.isna(exact_value):
                    assert pd.isna(shown)
                    continue
                places = DISPLAY_PLACES[kind]
                assert isinstance(shown, Decimal) and shown == round(shown, places)
                assert abs(float(shown) - exact_value * scale) <= 0.5 * 10**-places + 1e-9, (view.name, name)
    if warehouse_backend == "duckdb":
        # DuckDB views store the names they read: without the catalog name they read in the copy too.
        copy = publish_for_analysts(pipeline.warehouse.store).path
        with duckdb.connect(str(copy), read_only=True) as analyst:
            for view in ALL_VIEWS:
                rows = analyst.execute(f"SELECT count(*) FROM analytics.{view.name}").fetchone()
                assert rows is not None and rows[0] == len(mart(pipeline, view.name))


@pytest.mark.postgres
@pytest.mark.parametrize("warehouse_backend", ["postgres"])
def test_an_analyst_of_one_company_sees_its_rows_only_through_a_mart(pipeline, warehouse_backend, postgres_url):
    pipeline.sync()
    store = pipeline.warehouse.store
    schema = store.schema_name
    # A second company's rows, written beside the synced one's by the pipeline's role.
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        columns = [
            row[0]
            for row in owner.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s "
                "AND table_name = 'propay_opportunities' ORDER BY ordinal_position",
                [schema],
            )
        ]
        selected = ", ".join("'other'" if c == "company_id" else f'"{c}"' for c in columns)
        owner.execute(
            f'INSERT INTO "{schema}".propay_opportunities SELECT {selected} FROM "{schema}".propay_opportunities'
        )
    assert build_marts(pipeline).success
    role = f"analyst_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as owner:
        owner.execute(f"CREATE ROLE {role} LOGIN")
    try:
        pipeline.warehouse.grant_company_analyst(role, "acme")
        every = mart(pipeline, "company_propay_summary")
        assert sorted(every["company_id"]) == ["acme", "other"]
        marts = analytics_schema(schema)
        with psycopg.connect(postgres_url, autocommit=True) as analyst:
            analyst.execute(f"SET ROLE {role}")
            seen = analyst.execute(f'SELECT DISTINCT company_id FROM "{marts}".propay_savings').fetchall()
            summary = analyst.execute(f'SELECT company_id FROM "{marts}".company_propay_summary').fetchall()
        assert seen == [("acme",)] and summary == [("acme",)]
        # Rebuilt marts (new views) keep the analyst's access and its limits.
        assert build_marts(pipeline).success
        with psycopg.connect(postgres_url, autocommit=True) as analyst:
            analyst.execute(f"SET ROLE {role}")
            again = analyst.execute(f'SELECT DISTINCT company_id FROM "{marts}".propay_savings').fetchall()
        assert again == [("acme",)]
    finally:
        pipeline.warehouse.revoke_company_analyst(role)
        with psycopg.connect(postgres_url, autocommit=True) as owner:
            owner.execute(f"DROP OWNED BY {role}")
            owner.execute(f"DROP ROLE {role}")


HOLD_THE_FILE = "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(120)"


def test_a_build_waits_for_a_locked_duckdb_file_like_every_write(tmp_path, monkeypatch):
    """Another process holds the file until the build, having found it locked, waits: the build runs
    again and builds every mart."""
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables(ALL_TABLES)  # empty tables: the marts build on them all the same
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_THE_FILE, str(warehouse.store.duckdb_file())], stdout=subprocess.PIPE, text=True
    )
    waits: list[float] = []

    def release_then_wait(seconds: float) -> None:
        waits.append(seconds)
        holder.kill()
        holder.wait()

    monkeypatch.setattr(analytics_assets, "wait_for_the_file", release_then_wait)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with dg.DagsterInstance.ephemeral() as instance:
            result = dg.materialize(
                [analytics_marts], instance=instance, resources={"warehouse": warehouse}, raise_on_error=False
            )
    finally:
        holder.kill()
        holder.wait()
    assert waits == [analytics_assets.LOCKED_FIRST_WAIT_SECONDS]  # found locked once, then built
    assert result.success
    assert {event.asset_key for event in result.get_asset_materialization_events()} == MARTS


HOW_DBT_PARSED = ("dbt parsed", "dbt started", "dbt left")  # analytics.how_dbt_parsed


def test_a_build_starts_from_the_last_build_s_parsed_project(tmp_path, monkeypatch):
    """dbt parses the project in full on the first build of a warehouse only; the next starts from the
    parse the first kept (dbt checks it against the project, the profile and the environment)."""
    monkeypatch.setattr(analytics, "LAST_BUILD_PARSE", tmp_path / "last_build_partial_parse.msgpack")
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables(ALL_TABLES)
    said = []
    with dg.DagsterInstance.ephemeral() as instance:
        for _ in range(2):
            result = dg.materialize([analytics_marts], instance=instance, resources={"warehouse": warehouse})
            assert result.success
            messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
            said.append([message for message in messages if message.startswith(HOW_DBT_PARSED)])
    assert [message.startswith("dbt parsed the whole project") for message in said[0]] == [True]
    assert said[1] == ["dbt started from the last build's parsed project"]
    assert not list(analytics.TARGET_DIR.glob(f"{analytics_marts.node_def.name}-{result.run_id[:8]}-*"))


def source_tests(warehouse: Warehouse, table: str) -> dict[str, dict]:
    """``dbt test`` of the tests declared on the source ``table`` (not the marts' tests that read it),
    outside Dagster: each test's result by its name."""
    dbt, env = analytics_assets.dbt_cli(warehouse)
    selection = ["--select", f"source:protiv.{table}", "--exclude", "path:models/marts"]
    with analytics_assets.environment(env):
        invocation = dbt.cli(["test", *selection], raise_on_error=False).wait()
    try:
        results = invocation.get_artifact("run_results.json")["results"]
    finally:
        shutil.rmtree(invocation.target_path, ignore_errors=True)
    return {result["unique_id"].split(".")[2]: result for result in results}


def test_a_bonus_on_a_propay_of_another_company_fails_the_reference_test(pipeline):
    """Ids are unique only within a company: a bonus row of company `other` whose propay_id exists in
    `acme` only would pass a reference checked on the id alone, and fails relationships_within_company."""
    pipeline.sync()
    reference = (
        "source_relationships_within_company_protiv_propay_worker_bonuses_propay_id__propay_id__source_protiv_"
        "propay_opportunities_"
    )
    before = source_tests(pipeline.warehouse, "propay_worker_bonuses")
    assert before[reference]["status"] == "pass" and all(result["status"] == "pass" for result in before.values())
    pipeline.warehouse.execute(
        "INSERT INTO {schema}.propay_worker_bonuses SELECT * REPLACE ('other' AS company_id) "
        "FROM {schema}.propay_worker_bonuses WHERE company_id = 'acme' ORDER BY propay_id, worker_id LIMIT 1"
    )
    found = pipeline.warehouse.query(
        "SELECT p.company_id FROM {schema}.propay_worker_bonuses b "
        "JOIN {schema}.propay_opportunities p ON p.propay_id = b.propay_id WHERE b.company_id = 'other'"
    )
    assert list(found["company_id"]) == ["acme"]  # the id alone is there: dbt's relationships would pass
    after = source_tests(pipeline.warehouse, "propay_worker_bonuses")
    assert after[reference]["status"] == "fail" and after[reference]["failures"] == 1
    assert [name for name, result in after.items() if result["status"] != "pass"] == [reference]


def test_a_build_starts_no_dbt_process_to_learn_the_version(tmp_path, monkeypatch):
    """dagster-dbt would start ``dbt --version`` before every build (a second dbt process); the
    installed package says the version without a process."""
    import dagster_dbt.core.resource

    def no_process(*args, **kwargs):
        raise AssertionError(f"a process was started to learn dbt's version: {args}")

    monkeypatch.setattr(dagster_dbt.core.resource, "check_output", no_process)
    dbt, _ = analytics_assets.dbt_cli(Warehouse(url=str(tmp_path / "warehouse.duckdb")))
    assert str(dbt._cli_version) == importlib.metadata.version("dbt-core")


def test_a_build_whose_events_cannot_be_read_stops_its_dbt_process(tmp_path, monkeypatch):
    """A failure while reading dbt's events (or a cancelled run) ends the dbt process: left running it
    would hold the DuckDB file, and every later build and sync would find it locked."""
    warehouse = Warehouse(url=str(tmp_path / "warehouse.duckdb"))
    warehouse.ensure_tables(ALL_TABLES)
    started = []
    real_cli = analytics_assets.InstalledDbt.cli

    def cli(self, *args, **kwargs):
        invocation = real_cli(self, *args, **kwargs)
        started.append(invocation.process)

        def broken_stream():
            raise RuntimeError("an event dagster-dbt cannot map")
            yield  # a generator, like the real stream

        monkeypatch.setattr(invocation, "stream", broken_stream)
        return invocation

    monkeypatch.setattr(analytics_assets.InstalledDbt, "cli", cli)
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [analytics_marts], instance=instance, resources={"warehouse": warehouse}, raise_on_error=False
        )
    assert not result.success
    [process] = started
    assert process.poll() is not None, "the dbt process was left running"
    # The file is free: the pipeline writes it at once.
    warehouse.ensure_tables(ALL_TABLES)
