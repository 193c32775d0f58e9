"""The code location loads: through `dagster definitions validate`, and as Python objects."""

import subprocess
import sys
from pathlib import Path

import dagster as dg

from protiv_dagster.definitions import defs

ROOT = Path(__file__).resolve().parents[1]


def test_dagster_definitions_validate_accepts_the_workspace(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location protiv_dagster" in result.stderr + result.stdout


def test_assets_partitions_and_jobs():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {
        "vendor_connection",
        "raw_timesheets",
        "workers",
        "jobs",
        "attendance",
        "propay_opportunities",
        "propay_worker_bonuses",
        "propay_overtime_weeks",
        "jobs_without_propay",
        "propay_settings_versions",
        "analysts_database",  # the default warehouse is a DuckDB file
        "propay_report",  # each company's report, after its ProPays
        # The analysts' marts (dbt views in the schema analytics), after the ProPay tables.
        *(f"analytics/{view}" for view in ("propay_savings", "company_propay_summary", "propay_hours_gained")),
        *(f"analytics/{view}" for view in ("company_revenue_per_hour", "worker_bonus_wages", "propay_leaderboard")),
    }
    assert (
        graph.get(dg.AssetKey("vendor_connection")).partitions_def == graph.get(dg.AssetKey("workers")).partitions_def
    )
    attendance = graph.get(dg.AssetKey("attendance"))
    assert isinstance(attendance.partitions_def, dg.MultiPartitionsDefinition)
    assert {d.name for d in attendance.partitions_def.partitions_defs} == {"company", "week"}
    assert isinstance(graph.get(dg.AssetKey("propay_opportunities")).partitions_def, dg.DynamicPartitionsDefinition)
    for name in ("sync_company_reference", "sync_company_week", "compute_propay"):
        assert defs.resolve_job_def(name)
    # Descriptions are the docstrings the data engineer reads in the lineage graph.
    assert "ISO week" in (attendance.description or "")
    assert dg.AssetCheckKey(dg.AssetKey("attendance"), "counts_reconcile") in graph.asset_check_keys
    assert dg.AssetCheckKey(dg.AssetKey("vendor_connection"), "connection_healthy") in graph.asset_check_keys


def test_automation_is_on_by_default():
    assert {s.name for s in defs.sensors} == {
        "new_connections",
        "company_syncs",
        "connection_status",
        "follow_upstream_changes",
    }
    assert all(s.default_status == dg.DefaultSensorStatus.RUNNING for s in defs.sensors)
    [schedule] = defs.schedules
    assert (schedule.name, schedule.cron_schedule) == ("refresh_every_two_hours", "0 */2 * * *")
    graph = defs.resolve_asset_graph()
    for key in ("attendance", "propay_opportunities"):
        assert graph.get(dg.AssetKey(key)).automation_condition is not None, key
    # The other ProPay tables have no condition of their own: they are one run with propay_opportunities,
    # which Dagster requests whole whenever it requests one of them (assets/propay.py).
    together = {k.to_user_string() for k in graph.get(dg.AssetKey("propay_opportunities")).execution_set_entity_keys}
    assert {
        "propay_opportunities",
        "propay_worker_bonuses",
        "propay_overtime_weeks",
        "jobs_without_propay",
        "propay_settings_versions",
    } <= together


def test_every_asset_the_automation_keeps_fresh_says_how():
    """A table the UI shows without an automation condition, though the automation updates it, says
    in its description which asset's condition brings it along: the data engineer reading the
    catalog would otherwise take it for a table nobody refreshes."""
    graph = defs.resolve_asset_graph()
    checked = set()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        if node.automation_condition is not None:
            continue
        carriers = [
            other.to_user_string()
            for other in node.execution_set_entity_keys
            if other in graph.get_all_asset_keys() and graph.get(other).automation_condition is not None
        ]
        if carriers:
            assert any(carrier in (node.description or "") for carrier in carriers), (key, carriers)
            checked.add(key.to_user_string())
    # Not vacuous: the ProPay tables brought along by propay_opportunities were among those checked.
    assert {
        "propay_worker_bonuses",
        "propay_overtime_weeks",
        "jobs_without_propay",
        "propay_settings_versions",
    } <= checked
