"""The dbt project around dbt: its generated YAML and marts' SQL are current, its manifest is parsed
only when the project changed, and its dbt process gets the warehouse's connection from the environment."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import threading
import time

import pytest
import yaml

from protiv_dagster import analytics
from protiv_dagster.analytics import schema_files
from protiv_dagster.views import ALL_VIEWS, PROPAY_SAVINGS
from protiv_dagster.warehouse.store import WarehouseStore


def test_the_generated_yaml_and_marts_sql_are_current():
    rendered = schema_files.rendered()
    assert {schema_files.mart_path(view) for view in ALL_VIEWS} <= set(rendered)
    for path, text in rendered.items():
        assert (schema_files.PROJECT_DIR / path).read_text(encoding="utf-8") == text, (
            f"{path} is stale: run `.venv/bin/python -m protiv_dagster.data_dictionary`"
        )


def test_a_mart_computes_its_view_s_sql_over_the_staging_models():
    for view in ALL_VIEWS:
        sql = schema_files.mart_sql(view)
        assert sql.startswith("-- The view protiv.") and "python -m protiv_dagster.data_dictionary" in sql
        assert "{schema}" not in sql
        exact = view.select.strip()
        for table in schema_files.STAGED:
            exact = exact.replace(f"{{schema}}.{table}", f"{{{{ ref('stg_{table}') }}}}")
        # The view's SQL line for line (indented inside the CTE `exact`).
        body = sql.split("WITH exact AS (\n", 1)[1].rsplit("\n)\nSELECT\n", 1)[0]
        assert [line.strip() for line in body.splitlines()] == [line.strip() for line in exact.splitlines()]
    for table in schema_files.STAGED:  # every table a mart may read has its staging model
        assert (schema_files.PROJECT_DIR / "models" / "staging" / f"stg_{table}.sql").is_file()


def test_a_view_reading_a_table_without_a_staging_model_is_refused():
    jobs = dataclasses.replace(
        PROPAY_SAVINGS, select=PROPAY_SAVINGS.select.replace("{schema}.propay_opportunities", "{schema}.jobs")
    )
    with pytest.raises(ValueError, match="reads jobs, which has no staging model"):
        schema_files.mart_sql(jobs)
    jinja = dataclasses.replace(PROPAY_SAVINGS, select=PROPAY_SAVINGS.select.replace("name,", "'{{ x }}' AS name,"))
    with pytest.raises(ValueError, match="dbt would read them as Jinja"):
        schema_files.mart_sql(jinja)


def test_every_mart_and_column_is_described_once_with_its_presentation_columns():
    marts = {model["name"]: model for model in schema_files.marts_file()["models"]}
    assert set(marts) == {view.name for view in ALL_VIEWS}
    for view in ALL_VIEWS:
        model = marts[view.name]
        assert model["description"] == view.description
        described = {column["name"]: column["description"] for column in model["columns"]}
        for column in view.columns:
            assert described[column.name] == column.description
        for name in schema_files.DISPLAY[view.name]:
            assert f"{name}_display" in described
            assert [c for c in view.columns if c.name == name][0].sql_type == "DOUBLE PRECISION"
        # The SQL has a presentation column wherever the YAML declares one, and only there.
        sql = (schema_files.PROJECT_DIR / "models" / "marts" / f"{view.name}.sql").read_text()
        assert sql.count("{{ display(") == len(schema_files.DISPLAY[view.name])
    # pay_state's accepted values are tested on the mart and on the source.
    tests = yaml.safe_dump(schema_files.marts_file()) + yaml.safe_dump(schema_files.sources_file())
    assert tests.count("- provisional") == 2


def test_a_fresh_manifest_is_not_parsed_again(monkeypatch):
    analytics.ensure_manifest()

    def no_parse(*args, **kwargs):
        raise AssertionError("dbt parse ran although the manifest is fresh")

    monkeypatch.setattr(subprocess, "run", no_parse)
    started = time.monotonic()
    for _ in range(10):
        assert analytics.ensure_manifest() == analytics.MANIFEST
    assert (time.monotonic() - started) / 10 < 0.05


def test_the_manifest_is_stale_when_a_project_file_changes(tmp_path, monkeypatch):
    project = tmp_path / "analytics"
    shutil.copytree(analytics.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs", "__pycache__"))
    monkeypatch.setattr(analytics, "PROJECT_DIR", project)
    fresh = analytics.project_hash()
    assert fresh == analytics.project_hash()
    model = project / "models" / "marts" / "propay_savings.sql"
    model.write_text(model.read_text() + "\n")
    assert analytics.project_hash() != fresh
    (project / "notes.txt").write_text("not parsed by dbt")  # outside the project's folders: no change
    model.write_text(model.read_text()[:-1])
    assert analytics.project_hash() == fresh


def test_dbt_reads_the_warehouse_from_its_environment_and_the_password_only_there(tmp_path):
    duck = analytics.dbt_environment(WarehouseStore(str(tmp_path / "w.duckdb")))
    assert duck["PROTIV_DBT_TARGET"] == "duckdb" and duck["PROTIV_DBT_DUCKDB_PATH"] == str(tmp_path / "w.duckdb")
    assert duck["PROTIV_ANALYTICS_SCHEMA"] == "analytics"
    env = analytics.dbt_environment(
        WarehouseStore("postgresql://pipeline:s%40cret@db.internal:6543/warehouse?sslmode=require", "tenant_a")
    )
    assert env == {
        "PROTIV_WAREHOUSE_SCHEMA": "tenant_a",
        "PROTIV_ANALYTICS_SCHEMA": "tenant_a_analytics",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
        "PROTIV_DBT_TARGET": "postgres",
        "PROTIV_DBT_HOST": "db.internal",
        "PROTIV_DBT_PORT": "6543",
        "PROTIV_DBT_USER": "pipeline",
        "PROTIV_DBT_PASSWORD": "s@cret",
        "PROTIV_DBT_DBNAME": "warehouse",
        "PROTIV_DBT_SSLMODE": "require",
    }
    profiles = (analytics.PROJECT_DIR / "profiles.yml").read_text()
    assert "PROTIV_DBT_PASSWORD" in profiles and "s@cret" not in profiles


@pytest.mark.parametrize("schema", ["protiv", "test_0123"])
def test_the_marts_schema_is_exactly_analytics_for_the_default_warehouse(schema):
    assert analytics.analytics_schema(schema) == ("analytics" if schema == "protiv" else "test_0123_analytics")


def test_builds_share_the_last_parse_whole_while_they_run_at_once(tmp_path, monkeypatch):
    """Builds keep their parsed project and copy the last one at the same time: every copy is one
    build's file, whole, never a mix or a part (renamed into place, never written in place)."""
    monkeypatch.setattr(analytics, "TARGET_DIR", tmp_path / "target")
    monkeypatch.setattr(analytics, "LAST_BUILD_PARSE", tmp_path / "target" / "last_build_partial_parse.msgpack")
    parses = [bytes([n]) * 3_000_000 for n in (1, 2, 3)]  # larger than one write
    finished = [tmp_path / f"finished_{n}" for n in range(len(parses))]
    for folder, parse in zip(finished, parses, strict=True):
        folder.mkdir()
        (folder / analytics.PARTIAL_PARSE_FILE).write_bytes(parse)
    (tmp_path / "target").mkdir()
    analytics.keep_the_parse(finished[0])
    stop = threading.Event()

    def keep_parses() -> None:
        while not stop.is_set():
            for folder in finished:
                analytics.keep_the_parse(folder)

    keepers = [threading.Thread(target=keep_parses) for _ in range(2)]
    for keeper in keepers:
        keeper.start()
    try:
        for _ in range(60):
            target = analytics.build_target("build")
            assert (target / analytics.PARTIAL_PARSE_FILE).read_bytes() in parses
            shutil.rmtree(target)
    finally:
        stop.set()
        for keeper in keepers:
            keeper.join()
    # Nothing left beside the last parse but the folders of builds.
    assert sorted(path.name for path in (tmp_path / "target").iterdir()) == ["last_build_partial_parse.msgpack"]


def test_dbt_s_log_says_how_it_parsed(tmp_path):
    log = tmp_path / "dbt.log"
    assert analytics.how_dbt_parsed(tmp_path) == "dbt left no log"
    unable = {
        "info": {"name": "UnableToPartialParse", "msg": "Unable to do partial parsing because profile has changed"}
    }
    log.write_text("not json\n" + json.dumps(unable) + "\n")
    assert analytics.how_dbt_parsed(tmp_path) == (
        "dbt parsed the whole project (Unable to do partial parsing because profile has changed)"
    )
    skipped = {"info": {"name": "PartialParsingSkipParsing", "msg": "no changes found, skipping parsing"}}
    log.write_text(json.dumps(skipped) + "\n")
    assert analytics.how_dbt_parsed(tmp_path) == "dbt started from the last build's parsed project"
