"""A sync whose run failed and is re-executed by Dagster's run retries (a run whose worker died, failed
by run monitoring) waits for the retry and completes with it; a failure that will not be retried ends
the sync, and so does a retry that never comes. Runs on a real instance with run retries on, as
deploy/dagster.yaml has them; tests/test_daemon_e2e.py kills real run workers under the daemon.
An initial sync that failed anyway is planned again by the automation after a while."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._core.test_utils import create_run_for_test

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.sync.health import company_health
from protiv_dagster.sync.refresh import RETRY_FAILED_INITIAL_SYNC_AFTER, plan_initial_syncs
from protiv_dagster.sync.runs import BATCH_TAG, PHASE_TAG, phase_outcome
from protiv_dagster.sync.state import PENDING, SyncBatch
from protiv_emulators.generator import generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

BATCH = SyncBatch(
    batch_id="b1",
    company_id="acme",
    trigger="initial_sync",
    cursor=None,
    weeks=("2026-11-16",),
    with_reference=True,
    phase="reference",
    status=PENDING,
    requested_at=datetime.now(UTC),
)
TAGS = {BATCH_TAG: "b1", PHASE_TAG: "reference", "dagster/partition": "acme", "protiv/company": "acme"}


@contextmanager
def instance_with(run_retries: bool):
    overrides = {"run_retries": {"enabled": run_retries, "max_retries": 2, "retry_on_asset_or_op_failure": False}}
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


@pytest.fixture
def instance():
    with instance_with(run_retries=True) as instance:
        yield instance


def worker_died(instance: dg.DagsterInstance, **tags) -> dg.DagsterRun:
    """A run failed the way run monitoring fails a run whose worker died."""
    run = create_run_for_test(
        instance, job_name="sync_company_reference", tags={**TAGS, **tags}, status=dg.DagsterRunStatus.STARTED
    )
    instance.report_run_failed(run, "Detected run worker status FAILED: 'the run worker process is gone'")
    return instance.get_run_by_id(run.run_id)


def later(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)


def test_a_failed_run_that_run_retries_will_retry_keeps_the_sync_waiting_then_its_retry_decides(instance):
    failed = worker_died(instance)
    assert failed.tags["dagster/will_retry"] == "true"
    assert phase_outcome(instance, BATCH, later(0)).state == "waiting"
    # The retry, as the run-retry daemon creates it: the parent's tags, its own run id.
    retry = create_run_for_test(
        instance,
        job_name="sync_company_reference",
        status=dg.DagsterRunStatus.STARTING,
        tags={
            **TAGS,
            "dagster/parent_run_id": failed.run_id,
            "dagster/root_run_id": failed.run_id,
            "dagster/retry_number": "1",
        },
    )
    assert phase_outcome(instance, BATCH, later(0)).state == "waiting"
    instance.report_dagster_event(
        dg.DagsterEvent(dg.DagsterEventType.RUN_SUCCESS.value, job_name="sync_company_reference"), retry.run_id
    )
    # Judged by the retry, hours later too: the killed run no longer counts.
    assert phase_outcome(instance, BATCH, later(0)).state == "done"
    assert phase_outcome(instance, BATCH, later(180)).state == "done"


def test_a_failure_read_before_dagster_decided_on_a_retry_is_waited_for_a_while(instance):
    # Dagster stores the failure, then tags whether it will retry: a sensor may read in between.
    create_run_for_test(instance, job_name="sync_company_reference", tags=TAGS, status=dg.DagsterRunStatus.FAILURE)
    assert phase_outcome(instance, BATCH, later(1)).state == "waiting"
    assert phase_outcome(instance, BATCH, later(6)).state == "failed"


def test_a_retry_that_never_comes_ends_the_sync(instance):
    worker_died(instance)
    assert phase_outcome(instance, BATCH, later(30)).state == "waiting"
    outcome = phase_outcome(instance, BATCH, later(61))
    assert outcome.state == "failed" and "the run worker process is gone" in outcome.error


def test_a_failure_that_will_not_be_retried_ends_the_sync_at_once(instance):
    worker_died(instance, **{"dagster/max_retries": "0"})
    outcome = phase_outcome(instance, BATCH, later(0))
    assert outcome.state == "failed" and "the run worker process is gone" in outcome.error
    with instance_with(run_retries=False) as without:
        failed = worker_died(without)
        assert "dagster/will_retry" not in failed.tags
        assert phase_outcome(without, BATCH, later(0)).state == "failed"


def test_a_failed_initial_sync_is_planned_again_after_a_while_and_never_twice_at_once(tmp_path, monkeypatch):
    """Without a cursor the refresh never checks a company, so an initial sync that failed for good
    (retries exhausted, or a retry Dagster could not create while the code server was down) would
    leave the company unsynced forever."""
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    now = datetime(2026, 11, 20, 18, tzinfo=UTC)
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    emulator = QuickBooksTimeEmulator().start()
    try:
        data = generate_company("acme", seed=3, workers=5, days=7, as_of=now, timezone="America/Denver")
        ConnectionRegistry(url).connect(
            "acme",
            "quickbooks_time",
            emulator.base_url,
            {"access_token": emulator.add_company(data)},
            attendance_pull_date=now.date() - timedelta(days=6),
            settings={"timezone": data.timezone},
        )
        registry, vendors = ConnectionRegistryResource(url=url), VendorApis()
        store = registry.sync_state()
        _, [first] = plan_initial_syncs(registry, vendors, store, now)
        assert plan_initial_syncs(registry, vendors, store, now + timedelta(hours=2))[1] == []  # in flight
        store.finish_batch(first.batch_id, succeeded=False, at=now + timedelta(minutes=5), error="run 1 failed: gone")
        [connection] = registry.list()
        assert not company_health(connection, store.state("acme"), [], now + timedelta(minutes=5)).healthy
        assert plan_initial_syncs(registry, vendors, store, now + timedelta(minutes=20))[1] == []
        later_on = now + RETRY_FAILED_INITIAL_SYNC_AFTER
        _, [again] = plan_initial_syncs(registry, vendors, store, later_on)
        assert (again.trigger, again.with_reference, again.weeks) == ("initial_sync", True, first.weeks)
        assert plan_initial_syncs(registry, vendors, store, later_on + timedelta(hours=1))[1] == []  # in flight
        store.finish_batch(again.batch_id, succeeded=True, at=later_on + timedelta(minutes=5))
        assert company_health(connection, store.state("acme"), [], later_on + timedelta(minutes=5)).healthy
        # Synced: from now on the refresh checks it, never the initial sync.
        assert plan_initial_syncs(registry, vendors, store, later_on + timedelta(hours=3))[1] == []
    finally:
        emulator.stop()
