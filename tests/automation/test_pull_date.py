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
import pytest

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
