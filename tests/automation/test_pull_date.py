"""The pull date is the pull date: nothing before it is synced, even in its own week (rules §9).

Before, a pull date in mid-week brought in the earlier days of that week: the raw and attendance
partitions are ISO weeks, and the vendor was asked from the week's Monday. Now the vendor is asked
from the pull date, the raw partition of the pull date's week holds only its days from the pull date
on, and the attendance asset keeps nothing dated before it; entries before it are neither set aside
nor counted as deleted. Every vendor, over real HTTP, through the daemon's sensors, schedule and
automation (``Daemon`` in conftest.py).
"""

from __future__ import annotations

import json
from datetime import date

import dagster as dg
import pandas as pd
import pytest

from protiv_dagster.partitions import company_week_range_tags, week_partitions
from protiv_dagster.tables import RAW_TIMESHEETS
from tests.assets.conftest import COMPANY
from tests.assets.test_pipeline import assert_attendance_matches_vendor
from tests.assets.vendors import PROVIDERS
from tests.automation.conftest import Daemon
from tests.automation.test_automation import initial_sync

PULL_DATE = date(2026, 11, 11)  # a Wednesday
PULL_WEEK = "2026-11-09"


def week_metadata(pipeline, asset: str, week: str) -> dict:
    """The metadata of the latest materialization of one company week."""
    key = str(dg.MultiPartitionKey({"company": COMPANY, "week": week}))
    records = pipeline.instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[key]), limit=1, ascending=False
    ).records
    return {name: value.value for name, value in records[0].asset_materialization.metadata.items()}


def assert_nothing_before_the_pull_date(pipeline, early_ids: set[str]) -> dict:
    """Returns the metadata of the pull date week's latest attendance materialization."""
    loaded = assert_attendance_matches_vendor(pipeline)  # every entry from the pull date on, and only those
    assert min(pipeline.attendance()["work_date"]) >= PULL_DATE
    assert not early_ids & set(loaded.index)
    raw = pipeline.warehouse.read_table("raw_timesheets", where={"company_id": COMPANY})
    assert {str(week)[:10] for week in raw["week_start"]} == {PULL_WEEK, "2026-11-16"}
    assert not early_ids & set(raw["entry_id"].dropna().astype(str))
    # Nor any other record dated before it, live or deleted, in any time-entry feed.
    with dg.build_resources(
        {"registry": pipeline.defs.resources["registry"], "vendors": pipeline.defs.resources["vendors"]}
    ) as built:
        source = built.vendors.source_for(COMPANY, built.registry)
    days = [
        source.work_day(feed, json.loads(payload))
        for feed, payload in zip(raw["feed"], raw["payload"])
        if feed in source.weekly_feeds
    ]
    assert days and min(day for day in days if day is not None) >= PULL_DATE
    assert pipeline.warehouse.read_table("rejected_rows").empty
    metadata = week_metadata(pipeline, "attendance", PULL_WEEK)
    assert (metadata["set_aside"], metadata["before_pull_date"]) == (0, 0)
    return metadata


@pytest.mark.parametrize("provider", PROVIDERS)
def test_nothing_before_a_mid_week_pull_date_is_synced_or_reported(pipeline, daemon: Daemon, provider):
    connection = pipeline.registry.get(COMPANY)
    pipeline.registry.connect(
        COMPANY,
        connection.provider,
        connection.base_url,
        pipeline.harness.credentials,
        attendance_pull_date=PULL_DATE,
        settings=connection.settings.model_dump(),
    )
    truth = pipeline.harness.entries()
    early = truth[(truth["work_date"] >= PULL_WEEK) & (truth["work_date"] < PULL_DATE.isoformat())]
    assert len(early) >= 2  # the Monday and Tuesday of the pull date's week have work at the vendor
    early_ids = set(early["entry_id"])

    initial_sync(daemon)
    assert daemon.failures == []
    synced = assert_nothing_before_the_pull_date(pipeline, early_ids)

    # A deletion and an edit at the vendor before the pull date: the refresh re-syncs the pull
    # date's week (its check starts on the Monday), and still nothing of them, not even a deletion.
    editable = pipeline.harness.editable_entries()
    edited = editable[editable["entry_id"].isin(early_ids)]["entry_id"].iloc[0]
    pipeline.harness.shorten(edited, hours=1)
    pipeline.harness.delete(next(entry_id for entry_id in early["entry_id"] if entry_id != edited))
    daemon.launch(daemon.tick_schedule("refresh_every_two_hours").run_requests)
    daemon.settle()
    assert daemon.failures == []
    resynced = assert_nothing_before_the_pull_date(pipeline, early_ids)
    assert resynced["removed_as_deleted"] == synced["removed_as_deleted"]


def raw_weeks(pipeline) -> set[str]:
    raw = pipeline.warehouse.read_table(RAW_TIMESHEETS, where={"company_id": COMPANY})
    return {str(week)[:10] for week in raw["week_start"]}


def test_a_materialize_of_every_week_clears_the_weeks_before_the_pull_date_without_asking_the_vendor(
    pipeline, daemon: Daemon
):
    """The UI's "Materialize" of one company's weeks selects all of them (since 2025-01-06): the
    weeks ending before the pull date are emptied in one transaction (an old row there goes) and the
    vendor is asked for the due weeks only, in one window, as a sync would."""
    initial_sync(daemon)
    assert daemon.failures == []
    attendance = pipeline.attendance().sort_values("entry_id").reset_index(drop=True)
    synced_weeks = raw_weeks(pipeline)
    stale_week = "2026-06-01"  # stored under an earlier pull date
    stale = pipeline.warehouse.read_table(RAW_TIMESHEETS, where={"company_id": COMPANY}).head(1)
    pipeline.warehouse.replace_partition(
        RAW_TIMESHEETS,
        stale.assign(week_start=date.fromisoformat(stale_week)),
        {"company_id": COMPANY, "week_start": date.fromisoformat(stale_week)},
    )
    # Half a year of them keeps the test short; the UI's selection starts in 2025, which changes nothing.
    weeks = week_partitions.get_partition_keys()
    weeks = weeks[weeks.index(stale_week) :]
    requests = pipeline.harness.emulator.request_count
    result = pipeline.defs.resolve_job_def("sync_company_week").execute_in_process(
        instance=pipeline.instance,
        tags=company_week_range_tags(COMPANY, weeks[0], weeks[-1]),
        raise_on_error=False,
    )
    assert result.success
    asked = pipeline.harness.emulator.request_count - requests
    assert stale_week not in synced_weeks and raw_weeks(pipeline) == synced_weeks  # the stale row is gone
    after = pipeline.attendance().sort_values("entry_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(after, attendance)
    assert week_metadata(pipeline, "raw_timesheets", stale_week) == {
        "dagster/row_count": 0,
        "provider": "quickbooks_time",
        "before_pull_date": True,
    }
    assert week_metadata(pipeline, "attendance", stale_week)["before_pull_date"] is True
    # The due weeks' window: as many requests as the initial sync's week run made, not one per week.
    assert 0 < asked <= 6, asked
