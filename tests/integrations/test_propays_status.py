"""When a company's ProPays were written as the integration page reads them (``propays_as_of``), and
whether they are still to come after its last sync (``with_propays``): the page keeps polling while
they are, and must stop when they never will."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from protiv_dagster.definitions import build_defs
from protiv_dagster.integrations.propays import propays_as_of
from protiv_dagster.integrations.service import (
    PROPAYS_CATCH_UP,
    IntegrationStatus,
    SyncSummary,
    with_propays,
)
from protiv_dagster.resources.warehouse import Warehouse

REQUESTED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
FINISHED = REQUESTED + timedelta(seconds=40)


def status_after(sync_status: str, finished_at: datetime | None = FINISHED) -> IntegrationStatus:
    sync = SyncSummary("s1", "acme", sync_status, "refresh", REQUESTED, "automation", finished_at=finished_at)
    return IntegrationStatus("acme", "busybusy", "BusyBusy", "connected", "synced", syncs=[sync])


@pytest.mark.parametrize(
    ("sync_status", "as_of", "now", "updating"),
    [
        # The daemon's sync ended; its ProPays are computed and published a tick later.
        ("succeeded", REQUESTED - timedelta(hours=2), FINISHED + timedelta(seconds=5), True),
        ("succeeded", None, FINISHED + timedelta(seconds=5), True),
        # Published after the sync was asked for (the service's syncs publish before they finish).
        ("succeeded", REQUESTED + timedelta(seconds=30), FINISHED + timedelta(seconds=5), False),
        ("succeeded", FINISHED + timedelta(seconds=20), FINISHED + timedelta(seconds=25), False),
        # No computation follows a sync that changed nothing the engine reads: stop asking.
        ("succeeded", REQUESTED - timedelta(hours=2), FINISHED + PROPAYS_CATCH_UP, False),
        # A failed or unfinished sync brings no ProPays.
        ("failed", REQUESTED - timedelta(hours=2), FINISHED + timedelta(seconds=5), False),
        ("running", REQUESTED - timedelta(hours=2), FINISHED, False),
    ],
)
def test_propays_are_updating_only_after_a_recent_succeeded_sync_they_are_older_than(sync_status, as_of, now, updating):
    finished_at = None if sync_status == "running" else FINISHED
    shown = with_propays(status_after(sync_status, finished_at), as_of, now)
    assert (shown.propays_as_of, shown.propays_updating) == (as_of, updating)


def test_a_company_never_synced_has_no_propays_to_wait_for():
    never = IntegrationStatus("acme", "busybusy", "BusyBusy", "pending", "never synced")
    assert with_propays(never, None, FINISHED).propays_updating is False


def materialize(instance: dg.DagsterInstance, key: str, partition: str | None = None) -> datetime:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))
    [record] = instance.fetch_materializations(dg.AssetKey(key), limit=1).records
    return datetime.fromtimestamp(record.timestamp, UTC)


def test_on_postgresql_the_propays_are_as_of_the_companys_last_propay_computation():
    # Nothing is published on PostgreSQL: the page reads the company's rows themselves. (The
    # definitions open no connection: no server is needed.)
    defs = build_defs(warehouse=Warehouse(url="postgresql://postgres@127.0.0.1:5432/test"))
    with dg.DagsterInstance.ephemeral() as instance:
        assert propays_as_of(defs, instance, "acme") is None
        computed = materialize(instance, "propay_opportunities", "acme")
        materialize(instance, "propay_opportunities", "other")
        assert propays_as_of(defs, instance, "acme") == computed


def test_on_duckdb_the_propays_are_as_of_the_analysts_copys_last_publication(tmp_path):
    defs = build_defs(warehouse=Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}"))
    with dg.DagsterInstance.ephemeral() as instance:
        # Before the first publication the page reads the warehouse itself.
        computed = materialize(instance, "propay_opportunities", "acme")
        assert propays_as_of(defs, instance, "acme") == computed
        published = materialize(instance, "analysts_database")
        assert propays_as_of(defs, instance, "acme") == published > computed
