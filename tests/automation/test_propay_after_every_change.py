"""Every attendance change is followed by a ProPay recompute, whatever the timing.

Dagster's ``eager`` counts a ProPay materialization as having handled every attendance update seen
in the same evaluation interval, in whatever order they happened. So when a ProPay run ended in the
same interval as a later week run (a refresh's, or a second refresh batch's), the ProPays stayed
computed from the attendance before it: a ProPay kept hours of an entry deleted at the vendor. The
ticks below force exactly that interleaving; ``Daemon`` (conftest.py) launches only what the code
under test requests.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd
import pytest

from tests.assets.conftest import COMPANY
from tests.assets.test_pipeline import assert_attendance_matches_vendor
from tests.assets.vendors import PROVIDERS
from tests.automation.conftest import Daemon
from tests.automation.test_automation import initial_sync, propay_by_entry, propay_of

PROPAYS = ("propay_opportunities", COMPANY)


def propay_table(pipeline) -> pd.DataFrame:
    return pipeline.warehouse.read_table("propay_opportunities").set_index("propay_id").sort_index()


def assert_propays_are_current(pipeline) -> None:
    """The stored ProPays equal a fresh computation from the stored attendance."""
    automated = propay_table(pipeline)
    job = pipeline.defs.resolve_job_def("compute_propay")
    assert job.execute_in_process(instance=pipeline.instance, partition_key=COMPANY, raise_on_error=False).success
    pd.testing.assert_frame_equal(
        automated.drop(columns=["computed_at"], errors="ignore"),
        propay_table(pipeline).drop(columns=["computed_at"], errors="ignore"),
    )


def refresh_batch(daemon: Daemon) -> list[dg.RunRequest]:
    """A refresh tick and its sync to the end (workers and jobs first when the check asks for them),
    without any evaluation of the automation; returns the week runs launched."""
    launched = daemon.launch(daemon.tick_schedule("refresh_every_two_hours").run_requests)
    for _ in range(3):
        launched += daemon.launch(daemon.tick_sensor("company_syncs").run_requests)
    assert not daemon.store().pending_batches()
    return [request for request in launched if request.job_name == "sync_company_week"]


def two_entries_in_propays(pipeline) -> tuple:
    entries = pipeline.harness.editable_entries()
    propays = propay_by_entry(pipeline)
    counted = [row for row in entries.itertuples() if propays[row.entry_id] is not None]
    return counted[0], counted[-1]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_second_refresh_batch_after_a_propay_run_in_the_same_interval_is_followed(pipeline, daemon: Daemon, provider):
    initial_sync(daemon)
    edited, deleted = two_entries_in_propays(pipeline)
    deleted_propay = propay_of(pipeline, deleted.entry_id)
    pipeline.harness.shorten(edited.entry_id, hours=1)
    assert refresh_batch(daemon)  # the first batch: its week runs, its cursor
    # Evaluation N asks for the ProPays; their run ends before the next evaluation.
    assert PROPAYS in daemon.follow_upstream()
    hours_before = float(propay_table(pipeline).loc[deleted_propay, "actual_hours"])

    # A second batch's week run lands in the same interval, after the ProPay run.
    pipeline.harness.delete(deleted.entry_id)
    assert refresh_batch(daemon)

    # Evaluation N+1 sees the ProPay materialization and the later attendance update together.
    assert PROPAYS in daemon.follow_upstream()
    assert daemon.failures == []
    assert deleted.entry_id not in set(assert_attendance_matches_vendor(pipeline).index)
    assert float(propay_table(pipeline).loc[deleted_propay, "actual_hours"]) == pytest.approx(
        hours_before - deleted.hours, abs=1e-6
    )
    assert_propays_are_current(pipeline)
    daemon.settle()
    assert daemon.failures == []


def test_attendance_materialized_after_the_propays_within_one_evaluation_window_requests_them_again(pipeline, daemon):
    """The bare interleaving: materialize the ProPays, then a week of attendance, and only then let
    the automation evaluate."""
    initial_sync(daemon)
    assert PROPAYS not in daemon.follow_upstream()  # settled: nothing to follow
    _, deleted = two_entries_in_propays(pipeline)
    pipeline.harness.delete(deleted.entry_id)

    compute = pipeline.defs.resolve_job_def("compute_propay")
    assert compute.execute_in_process(instance=pipeline.instance, partition_key=COMPANY).success
    monday = pd.Timestamp(deleted.work_date) - pd.Timedelta(days=pd.Timestamp(deleted.work_date).weekday())
    week = str(dg.MultiPartitionKey({"company": COMPANY, "week": monday.date().isoformat()}))
    for key in ("raw_timesheets", "attendance"):  # the week as a data engineer re-syncs it by hand
        job = pipeline.defs.resolve_implicit_job_def_def_for_assets([dg.AssetKey(key)])
        assert job.execute_in_process(
            instance=pipeline.instance, partition_key=week, asset_selection=[dg.AssetKey(key)]
        ).success

    followed = daemon.follow_upstream()
    assert PROPAYS in followed
    assert daemon.failures == []
    assert_propays_are_current(pipeline)
    assert PROPAYS not in daemon.follow_upstream()  # once, not again and again
