"""The README's main command end to end, run as a user runs it, twice."""

from __future__ import annotations

import re

import dagster as dg
import duckdb
import pytest
from pandas.testing import assert_frame_equal

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import ALL_TABLES
from tests.cli.commands import free_port, protiv, summary

pytestmark = pytest.mark.slow


def test_demo_runs_the_initial_sync_through_dagster_and_is_safe_to_repeat(tmp_path, monkeypatch):
    port = str(free_port())
    first = protiv("demo", "--port", port, "--workers", "12", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Initial sync: 3 Dagster runs" in first.stdout
    assert re.search(
        r"\d+ ProPays \(\d+ started\), [\d,.]+ worker-hours; bonus pools final \$[\d,.]+, provisional \$[\d,.]+; \d+ pay nothing",
        first.stdout,
    )
    assert "make ui" in first.stdout and "dagster dev -w workspace.yaml" in first.stdout
    warehouse = Warehouse(url=str(tmp_path / "data" / "warehouse.duckdb"))
    tables = {t.name: warehouse.read_table(t) for t in ALL_TABLES}
    assert len(tables["propay_opportunities"]) > 0 and tables["rejected_rows"].empty
    # The summary is the company's row of the view company_propay_summary: the figures of its ProPays.
    propays = tables["propay_opportunities"]
    pools = {
        state: float(propays.loc[propays["pay_state"] == state, "bonus_pool"].sum())
        for state in ("final", "provisional")
    }
    assert (
        f"{len(propays)} ProPays ({int((propays['status'] == 'started').sum())} started), "
        f"{float(propays['actual_hours'].sum()):,.1f} worker-hours; bonus pools final ${pools['final']:,.2f}, "
        f"provisional ${pools['provisional']:,.2f}; {int((propays['pay_state'] == 'none').sum())} pay nothing"
    ) in first.stdout

    # The analysts' marts were built at the end and published in the analysts' copy with the tables.
    marts = re.search(r"Analysts' marts: 6 views in schema analytics, (\d+) of (\d+) dbt tests passed", first.stdout)
    assert marts and marts[1] == marts[2] and int(marts[1]) > 0, first.stdout[-2000:]
    with duckdb.connect(str(tmp_path / "data" / "warehouse.analysts.duckdb"), read_only=True) as analyst:
        [(savings,)] = analyst.execute("SELECT count(*) FROM analytics.propay_savings").fetchall()
    assert savings == len(propays)

    second = protiv("demo", "--port", port, "--workers", "12", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second.stdout) == summary(first.stdout)
    for table in ALL_TABLES:
        assert_frame_equal(tables[table.name], warehouse.read_table(table), obj=table.name)

    # The runs are real runs of the code location's jobs, stored in the SQLite instance the UI opens.
    home = tmp_path / "data" / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        # Two demos: reference, weeks and ProPays of the company, then the marts' build.
        assert len(runs) == 8 and all(run.is_success for run in runs)
        syncs = [run for run in runs if run.tags.get("protiv/trigger") != "demo"]
        assert {run.job_name for run in syncs} == {"sync_company_reference", "sync_company_week", "compute_propay"}
        builds = [run for run in runs if run.tags.get("protiv/trigger") == "demo"]
        assert len(builds) == 2 and all(key.path[0] == "analytics" for run in builds for key in run.asset_selection)
    # The generated key lives only in the git-ignored .env; the registry holds ciphertext.
    key = (tmp_path / ".env").read_text().split("PROTIV_SECRET_KEY=")[1].strip()
    assert key not in (tmp_path / "data" / "registry.sqlite3").read_bytes().decode("latin-1")
