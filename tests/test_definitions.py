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
        capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={"DAGSTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Validation successful for code location protiv_dagster" in result.stderr + result.stdout


def test_assets_partitions_and_jobs():
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    assert keys == {"raw_timesheets", "workers", "jobs", "attendance", "propay_opportunities"}
    attendance = graph.get(dg.AssetKey("attendance"))
    assert isinstance(attendance.partitions_def, dg.MultiPartitionsDefinition)
    assert {d.name for d in attendance.partitions_def.partitions_defs} == {"company", "week"}
    assert isinstance(graph.get(dg.AssetKey("propay_opportunities")).partitions_def, dg.DynamicPartitionsDefinition)
    for name in ("sync_company_reference", "sync_company_week", "compute_propay"):
        assert defs.resolve_job_def(name)
    # Descriptions are the docstrings the data engineer reads in the lineage graph.
    assert "ISO week" in (attendance.description or "")
    assert dg.AssetCheckKey(dg.AssetKey("attendance"), "counts_reconcile") in graph.asset_check_keys
