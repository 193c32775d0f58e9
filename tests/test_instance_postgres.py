"""deploy/dagster.yaml: a Dagster instance on PostgreSQL (dagster-postgres) that stores real runs.

The URL names the psycopg2 driver (postgresql+psycopg2://): with SQLAlchemy 2.1 a bare postgresql://
URL selects psycopg 3, and dagster-postgres's event log then fails on "NOTIFY run_events, $1"
(psycopg 3 binds parameters on the server, where NOTIFY takes none).
"""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from protiv_dagster.sync.company import sync_company
from tests.assets.conftest import (  # noqa: F401 (fixtures)
    COMPANY,
    PULL_DATE,
    TODAY,
    instance_kind,
    pipeline,
    provider,
    warehouse_backend,
)

pytestmark = pytest.mark.postgres


@pytest.mark.parametrize("instance_kind", ["postgres"])
def test_deploy_dagster_yaml_stores_runs_and_events_in_postgres(pipeline, dagster_database):
    instance = pipeline.instance
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    run_ids = sync_company(pipeline.defs, instance, COMPANY, PULL_DATE, TODAY)
    assert all(instance.get_run_by_id(r).is_success for r in run_ids)
    assert instance.get_latest_materialization_event(dg.AssetKey("propay_opportunities")) is not None
    with psycopg.connect(dagster_database) as conn:
        stored_runs = conn.execute("select count(*) from runs where status = 'SUCCESS'").fetchone()[0]
        materializations = conn.execute(
            "select count(*) from event_logs where dagster_event_type = 'ASSET_MATERIALIZATION'"
        ).fetchone()[0]
        partitions = conn.execute(
            "select partition from dynamic_partitions where partitions_def_name = 'company'"
        ).fetchall()
    assert stored_runs == len(run_ids) == 3  # reference data, the three weeks in one run, ProPays
    assert materializations == 2 + 3 * 2 + 5  # workers, jobs; raw + attendance per week; the five ProPay tables
    assert partitions == [(COMPANY,)]
