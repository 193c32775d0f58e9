"""A snapshot of what the code location defines: asset keys with their partitions, groups, kinds,
dependencies and checks (with their partitions); jobs with their assets and run retries; sensors; schedules; resources. A change to any of
them shows up here as a diff to review (a refactoring must leave it alone); when the change is
meant, rewrite the snapshot with ``PROTIV_UPDATE_SNAPSHOT=1 .venv/bin/pytest tests/test_definitions_snapshot.py``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import dagster as dg

from protiv_dagster.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "definitions.json"


def _partitions(partitions_def: dg.PartitionsDefinition | None) -> Any:
    if partitions_def is None:
        return None
    if isinstance(partitions_def, dg.MultiPartitionsDefinition):
        return {d.name: _partitions(d.partitions_def) for d in partitions_def.partitions_defs}
    if isinstance(partitions_def, dg.DynamicPartitionsDefinition):
        return f"dynamic:{partitions_def.name}"
    if isinstance(partitions_def, dg.TimeWindowPartitionsDefinition):
        return f"time:{partitions_def.cron_schedule} from {partitions_def.start.date().isoformat()} {partitions_def.timezone}"
    return type(partitions_def).__name__


def definitions_snapshot(definitions: dg.Definitions) -> dict[str, Any]:
    graph = definitions.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "partitions": _partitions(node.partitions_def),
            "depends_on": sorted(parent.to_user_string() for parent in node.parent_keys),
            # Each check with its partitions: a partitioned check ties each result to its company.
            "checks": {
                spec.name: _partitions(spec.partitions_def)
                for spec in definitions.resolve_assets_def(key).check_specs
                if spec.asset_key == key
            },
            "automation_condition": node.automation_condition is not None,
            "has_description": bool(node.description),
        }
    jobs = {}
    for job in sorted(definitions.resolve_all_job_defs(), key=lambda j: j.name):
        if job.name.startswith("__"):
            continue
        selected = job.asset_layer.executable_asset_keys if job.asset_layer else set()
        jobs[job.name] = {
            "assets": sorted(k.to_user_string() for k in selected),
            "partitions": _partitions(job.partitions_def),
            "has_description": bool(job.description),
            "run_retries": job.tags.get("dagster/max_retries", "instance default"),
        }
    sensors = {
        sensor.name: {
            "type": type(sensor).__name__,
            "interval_seconds": sensor.minimum_interval_seconds,
            "default_status": sensor.default_status.value,
            "has_description": bool(sensor.description),
        }
        for sensor in sorted(definitions.sensors or [], key=lambda s: s.name)
    }
    schedules = {
        schedule.name: {
            "job": schedule.job_name,
            "cron": str(schedule.cron_schedule),
            "default_status": schedule.default_status.value,
            "has_description": bool(schedule.description),
        }
        for schedule in sorted(definitions.schedules or [], key=lambda s: s.name)
    }
    return {
        "assets": assets,
        "jobs": jobs,
        "sensors": sensors,
        "schedules": schedules,
        "resources": sorted(definitions.resources or {}),
    }


def test_the_definitions_match_the_snapshot():
    current = definitions_snapshot(defs)
    text = json.dumps(current, indent=2, sort_keys=True) + "\n"
    if os.environ.get("PROTIV_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with PROTIV_UPDATE_SNAPSHOT=1 to write {SNAPSHOT.name}"
    assert json.loads(SNAPSHOT.read_text(encoding="utf-8")) == current
