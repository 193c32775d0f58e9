"""The analysts' copy of the DuckDB warehouse as Dagster keeps it: published after every ProPay
update by the automation and at the end of every force sync, while an analyst's session stays open."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from protiv_dagster.analytics import analytics_schema
from protiv_dagster.assets.analysts import ANALYSTS_COPY
from protiv_dagster.assets.analytics import analytics_marts
from protiv_dagster.definitions import build_defs
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sync.company import force_sync
from protiv_dagster.warehouse.publish import publish_for_analysts
from protiv_dagster.warehouse.store import analysts_copy
from tests.assets.conftest import COMPANY
from tests.automation.conftest import partitions_read_once

ROOT = Path(__file__).resolve().parents[2]

# An analyst's notebook: the copy open read-only, queried every 0.2 s until told to stop.
ANALYST = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1], read_only=True)
    queries = 0
    print("open", flush=True)
    while not sys.stdin.readline().strip() == "stop":
        con.execute("SELECT count(*) FROM protiv.propay_opportunities JOIN protiv.attendance USING (company_id)")
        queries += 1
    print("queries", queries, flush=True)
    """
)


def copy_rows(path, table: str) -> int:
    """Rows of ``table`` (a warehouse table, or ``schema.view``) in the copy at ``path``."""
    name = table if "." in table else f"protiv.{table}"
    with duckdb.connect(str(path), read_only=True) as analyst:
        return analyst.execute(f"SELECT count(*) FROM {name}").fetchone()[0]  # type: ignore[index]


def test_an_analyst_session_stays_open_through_a_force_sync_and_the_copy_follows(pipeline):
    pipeline.sync()
    copy = publish_for_analysts(pipeline.warehouse.store).path
    assert copy == analysts_copy(pipeline.warehouse.store.duckdb_file())
    analyst = subprocess.Popen(
        [sys.executable, "-c", ANALYST, str(copy)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert analyst.stdin is not None and analyst.stdout is not None
    assert analyst.stdout.readline().strip() == "open"
    try:
        pipeline.harness.delete(pipeline.harness.editable_entries()["entry_id"].iloc[0])
        run_ids = force_sync(pipeline.defs, pipeline.instance, pipeline.registry.get(COMPANY), datetime.now(UTC))
        assert len(run_ids) == 3  # the sync did not wait for, nor fail on, the analyst's session
        for _ in range(5):  # the analyst goes on querying after the swap
            analyst.stdin.write("go\n")
        analyst.stdin.write("stop\n")
        analyst.stdin.flush()
        out, _ = analyst.communicate(timeout=60)
    finally:
        analyst.kill()
    assert analyst.returncode == 0 and out.startswith("queries ") and int(out.split()[1]) >= 5
    # The copy published at the end of the sync holds the warehouse as the sync left it.
    assert copy_rows(copy, "attendance") == len(pipeline.attendance())
    latest = pipeline.instance.get_latest_materialization_event(ANALYSTS_COPY)
    assert latest is not None and latest.asset_materialization is not None
    metadata = latest.asset_materialization.metadata
    assert metadata["published_by"].value == "force_sync" and metadata["path"].value == str(copy)


def test_the_automation_publishes_once_after_a_propay_update_and_the_marts_it_brings(pipeline):
    def evaluate(cursor):
        with partitions_read_once(pipeline.instance):
            return dg.evaluate_automation_conditions(defs=pipeline.defs, instance=pipeline.instance, cursor=cursor)

    def run(keys) -> None:
        job = pipeline.defs.resolve_implicit_global_asset_job_def()
        assert job.execute_in_process(instance=pipeline.instance, asset_selection=list(keys)).success

    before = evaluate(None)  # the sensor's last tick
    assert before.get_num_requested(ANALYSTS_COPY) == 0
    pipeline.sync()  # the benchmarks' bare sync: it publishes nothing itself
    # The ProPays updated: the marts are rebuilt first, and the copy waits for them.
    after = evaluate(before.cursor)
    marts = [key for key in analytics_marts.keys if after.get_num_requested(key)]
    assert sorted(marts) == sorted(analytics_marts.keys)
    assert after.get_num_requested(ANALYSTS_COPY) == 0
    run(marts)
    # Then one publication, with the ProPays and the marts in it.
    published = evaluate(after.cursor)
    assert published.get_num_requested(ANALYSTS_COPY) == 1
    assert not any(published.get_num_requested(key) for key in analytics_marts.keys)
    run([ANALYSTS_COPY])
    copy = analysts_copy(pipeline.warehouse.store.duckdb_file())
    assert copy_rows(copy, "propay_opportunities") == len(pipeline.warehouse.read_table("propay_opportunities"))
    assert copy_rows(copy, f"{analytics_schema(pipeline.warehouse.store.schema_name)}.propay_savings") == len(
        pipeline.warehouse.read_table("propay_opportunities")
    )
    again = evaluate(published.cursor)
    assert again.get_num_requested(ANALYSTS_COPY) == 0
    assert not any(again.get_num_requested(key) for key in analytics_marts.keys)


def test_a_postgresql_warehouse_has_no_analysts_copy():
    assert (
        not build_defs(warehouse=Warehouse(url="postgresql://analyst@127.0.0.1:5432/test"))
        .resolve_asset_graph()
        .has(ANALYSTS_COPY)
    )
    assert build_defs(warehouse=Warehouse(url="duckdb:///warehouse.duckdb")).resolve_asset_graph().has(ANALYSTS_COPY)


def analysts_queries() -> list[str]:
    """The SQL blocks of docs/analysts.md, in order."""
    return re.findall(r"```sql\n(.*?)```", (ROOT / "docs" / "analysts.md").read_text(), re.S)


@pytest.mark.parametrize("warehouse_backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_sample_query_of_the_analysts_page_runs(pipeline, warehouse_backend):
    pipeline.sync()
    queries = analysts_queries()
    assert len(queries) == 6
    answers = [pipeline.warehouse.query(query.replace("protiv.", "{schema}.")) for query in queries]
    # Completed ProPays under budget exist in the test company, and workers with bonuses.
    assert [len(answer) > 0 for answer in answers] == [True] * 6, [len(answer) for answer in answers]
    if warehouse_backend == "duckdb":  # the same answers from the analysts' copy
        copy = publish_for_analysts(pipeline.warehouse.store).path
        with duckdb.connect(str(copy), read_only=True) as analyst:
            for query, answer in zip(queries, answers, strict=True):
                assert len(analyst.execute(query).fetchall()) == len(answer)
