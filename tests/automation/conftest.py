"""Tick the sensors, the schedule and the automation like the daemon does, against a real instance.

``Daemon`` evaluates a sensor or schedule tick with the code location's resources, applies what the
tick asks for (new and deleted partitions, asset check results), and launches the requested runs in
process on the same instance, skipping run keys it already launched (as the daemon does). It never decides
anything itself: every run it starts was requested by the code under test.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.company import QUIET_CONSOLE
from protiv_dagster.sync.runs import run_failure_message
from protiv_dagster.sync.state import SyncStateStore
from tests.assets.conftest import (  # noqa: F401 (fixtures)
    pipeline,
    provider,
    warehouse_backend,
)

NOW = datetime(2026, 11, 20, 18, tzinfo=UTC)  # a Friday afternoon, just after the generated data
CONNECTED_AT = NOW - timedelta(hours=1)

# The analysts' layer (the dbt marts, each company's report, the analysts' copy) follows every ProPay
# update: a dbt build and a report run each time, some ten seconds of a test's run. The tests about
# the sync pipeline follow the rest only; a test about the layer asks for everything with
# ``@pytest.mark.analysts_layer`` (or ``Daemon(pipeline, follows=EVERYTHING)``).
ANALYSTS_LAYER = dg.AssetSelection.groups("analytics", "reports", "analysts")
SYNC_PIPELINE = dg.AssetSelection.all() - ANALYSTS_LAYER
EVERYTHING = dg.AssetSelection.all()


@contextmanager
def partitions_read_once(instance: dg.DagsterInstance) -> Iterator[None]:
    """Within the block, each dynamic partitions definition's keys are read from storage once.

    ``dg.evaluate_automation_conditions`` (Dagster's testing API) reads the company partitions anew
    for every condition node it writes into its cursor, some 300 reads an evaluation and a third of
    a daemon-driven test's time; dagster-daemon reads them once per evaluation, through its instance
    queryer. Nothing adds or deletes a partition during one evaluation."""
    read = instance.get_dynamic_partitions
    keys: dict[str, list[str]] = {}

    def read_once(partitions_def_name: str) -> list[str]:
        if partitions_def_name not in keys:
            keys[partitions_def_name] = list(read(partitions_def_name))
        return keys[partitions_def_name]

    instance.get_dynamic_partitions = read_once  # type: ignore[method-assign]
    try:
        yield
    finally:
        del instance.get_dynamic_partitions


class Daemon:
    def __init__(self, pipeline, follows: dg.AssetSelection = SYNC_PIPELINE):
        self.defs = pipeline.defs
        self.instance = pipeline.instance
        self.follows = follows  # what the automation is evaluated for (the daemon's: everything)
        self.resources = dict(pipeline.defs.resources)
        self.cursors: dict[str, str | None] = {}
        self.launched_keys: set[str] = set()
        self.automation_cursor = None
        self.launched: list[dg.RunRequest] = []
        self.failures: list[str] = []  # root causes of failed runs, for assertions and messages

    def tick_sensor(self, name: str):
        sensor = self.defs.get_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            cursor=self.cursors.get(name),
            resources=self.resources,
            definitions=self.defs,
        ) as context:
            data = sensor.evaluate_tick(context)
        self.cursors[name] = data.cursor
        for request in data.dynamic_partitions_requests or []:
            if isinstance(request, dg.DeleteDynamicPartitionsRequest):
                for key in request.partition_keys:
                    self.instance.delete_dynamic_partition(request.partitions_def_name, key)
            else:
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        for event in data.asset_events or []:
            self.instance.report_runless_asset_event(event)
        return data

    def tick_schedule(self, name: str):
        schedule = self.defs.get_schedule_def(name)
        with dg.build_schedule_context(
            instance=self.instance,
            instance_ref=self.instance.get_ref(),
            resources=self.resources,
            scheduled_execution_time=syncs.utc_now(),
            repository_def=self.defs.get_repository_def(),
        ) as context:
            return schedule.evaluate_tick(context)

    def launch(self, requests) -> list[dg.RunRequest]:
        """Run each request not launched before (by run key), in process; returns those launched."""
        started = []
        for request in requests:
            if request.run_key and request.run_key in self.launched_keys:
                continue
            if request.run_key:
                self.launched_keys.add(request.run_key)
            job = self.defs.resolve_job_def(request.job_name)
            result = job.execute_in_process(
                instance=self.instance,
                partition_key=request.partition_key,
                tags={**request.tags, **({"dagster/run_key": request.run_key} if request.run_key else {})},
                run_config=QUIET_CONSOLE,
                raise_on_error=False,
            )
            if not result.success:
                self.failures.append(run_failure_message(self.instance, result.run_id))
            started.append(request)
        self.launched += started
        return started

    def follow_upstream(self) -> list[dg.AssetKey | str]:
        """One evaluation of the declarative automation; launches what it requests."""
        with partitions_read_once(self.instance):
            result = dg.evaluate_automation_conditions(
                defs=self.defs, instance=self.instance, asset_selection=self.follows, cursor=self.automation_cursor
            )
        self.automation_cursor = result.cursor
        requested = []
        # The daemon launches one run per partition with every asset requested for it (a multi-asset
        # such as the ProPay tables runs whole).
        # An asset without partitions (the analysts' copy) runs on its own, after the partitioned ones.
        by_partition: dict[str, list[dg.AssetKey]] = {}
        for key in self.defs.resolve_asset_graph().get_all_asset_keys():
            for partition in result.get_requested_partitions(key):
                by_partition.setdefault("" if partition is None else str(partition), []).append(key)
        for partition, keys in sorted(by_partition.items(), key=lambda item: (item[0] == "", item[0])):
            job = self.defs.resolve_implicit_job_def_def_for_assets(keys)
            run = job.execute_in_process(
                instance=self.instance,
                partition_key=partition or None,
                asset_selection=keys,
                raise_on_error=False,
                run_config=QUIET_CONSOLE,
            )
            if not run.success:
                self.failures.append(run_failure_message(self.instance, run.run_id))
            requested += [(key.to_user_string(), partition or None) for key in keys]
        return requested

    def settle(self, rounds: int = 6) -> list[tuple[str, str]]:
        """Tick company_syncs and the automation until nothing more happens; returns the automation's runs."""
        followed = []
        for _ in range(rounds):
            data = self.tick_sensor("company_syncs")
            launched = self.launch(data.run_requests)
            automated = self.follow_upstream()
            followed += automated
            if not launched and not automated and not self.store().pending_batches():
                break
        return followed

    def store(self) -> SyncStateStore:
        # The registry is a code-configured resource (no run config): build it to reach the object.
        with dg.build_resources({"registry": self.resources["registry"]}) as built:
            return built.registry.sync_state()


@pytest.fixture
def instance_kind() -> str:  # noqa: F811 - the daemon's sensors need a persistent instance
    return "sqlite"


@pytest.fixture
def daemon(request, pipeline, monkeypatch) -> Daemon:
    monkeypatch.setattr(syncs, "utc_now", lambda: NOW)
    # The daemon's clock is NOW: the companies were connected an hour before it, not at the real
    # time the fixture connected them (a status compares the connection's times with the checks').
    with pipeline.registry.engine.begin() as conn:
        conn.execute(pipeline.registry.table.update().values(connected_at=CONNECTED_AT, updated_at=CONNECTED_AT))
    daemon = Daemon(pipeline, EVERYTHING if request.node.get_closest_marker("analysts_layer") else SYNC_PIPELINE)
    daemon.follow_upstream()  # the daemon evaluates the automation from the start, before any data
    return daemon
