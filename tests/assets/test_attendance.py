"""The attendance asset's path from raw rows to candidates: decoding and chunked mapping change nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from protiv_dagster import schemas
from protiv_dagster.assets.attendance import decode_feeds, map_raw_week, raw_week_in_chunks
from protiv_dagster.company_settings import CompanySettings
from protiv_emulators.generator import generate_company
from tests.assets.vendors import host
from tests.vendors.test_changes import make_source

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


def raw_rows(feeds: dict[str, list[dict]]) -> pd.DataFrame:
    """Raw rows as the raw layer stores and the attendance asset reads them back."""
    names = sorted(feeds)
    return pd.DataFrame(
        {
            "feed": [feed for feed in names for _ in feeds[feed]],
            "payload": [json.dumps(record, sort_keys=True) for feed in names for record in feeds[feed]],
        }
    ).astype("str")


def test_decoding_gives_what_the_standard_library_gives():
    records = [
        {"id": 12345678901234567890123, "duration": 1.5, "notes": "caf\u00e9 \U0001f69c"},
        {"id": 7, "duration": float("nan"), "user_id": -(2**70)},
        {"id": "x\ud800", "duration": float("inf"), "big": 18446744073709551615, "n": 1e300},
        {"id": 9, "nested": {"a": [1, 2.25, None, True]}, "dup": "kept"},
    ]
    raw = raw_rows({"timesheets": records, "timesheets_deleted": records[:1]})

    decoded = decode_feeds(raw)

    expected = {
        feed: [json.loads(p) for p in raw.loc[raw["feed"] == feed, "payload"]]
        for feed in ("timesheets", "timesheets_deleted")
    }
    assert json.dumps(decoded, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert type(decoded["timesheets"][0]["id"]) is int and decoded["timesheets"][0]["id"] == 12345678901234567890123
    assert decoded["timesheets"][2]["id"] == "x\ud800"


@pytest.mark.parametrize("provider", ["quickbooks_time", "busybusy"])
def test_mapping_in_chunks_keeps_exactly_the_rows_of_one_pass(provider):
    data = generate_company("acme", seed=3, workers=10, days=7, as_of=AS_OF, timezone="America/Denver")
    harness = host(provider, data)
    try:
        source = make_source(harness)
        # The reference mappings read the company's real settings (drive job patterns and the like).
        source.connection.settings = CompanySettings(timezone="America/Denver" if provider == "busybusy" else None)
        first_day, last_day = data.first_local_date, data.last_local_date
        feeds = source.time_entry_feeds(first_day, last_day)
        workers, _ = schemas.split_valid(source.workers().rows, schemas.Worker, "worker_id")
        jobs, _ = schemas.split_valid(source.jobs().rows, schemas.Job, "job_id")
    finally:
        harness.stop()
    live = feeds[source.live_feed]
    # Records that must be set aside or removed, spread over several chunks.
    broken = dict(live[0])
    broken.update({"id": "999000001"} if provider == "quickbooks_time" else {"id": "broken-1"})
    broken.update({"user_id": 0} if provider == "quickbooks_time" else {"memberId": None})
    live.insert(3, broken)
    outside = dict(live[5])
    if provider == "quickbooks_time":
        outside.update({"id": 999000002, "date": (first_day - timedelta(days=30)).isoformat()})
    else:
        outside.update({"id": "outside-1", "startTime": "2020-01-06T15:00:00Z", "endTime": "2020-01-06T16:00:00Z"})
    live.append(outside)
    raw = raw_rows(feeds)

    one_pass = map_raw_week(
        source, *raw_week_in_chunks(raw, source, len(raw)), jobs, workers["worker_id"], first_day, last_day
    )
    chunked = map_raw_week(source, *raw_week_in_chunks(raw, source, 7), jobs, workers["worker_id"], first_day, last_day)

    assert len(live) > 3 * 7
    pd.testing.assert_frame_equal(chunked[1], one_pass[1].reset_index(drop=True))
    # Set-aside text columns may come out as str or object depending on which chunk held them.
    pd.testing.assert_frame_equal(chunked[2], one_pass[2].reset_index(drop=True), check_dtype=False)
    assert len(chunked[2]) >= 2  # the broken record and the one outside the week
    for count in ("fetched_count", "removed_as_deleted", "without_row"):
        assert getattr(chunked[0], count) == getattr(one_pass[0], count)
    assert chunked[0].fetched_count == len(live)
    assert chunked[0].fetched_count == len(chunked[1]) + len(chunked[2]) + chunked[0].removed_as_deleted
