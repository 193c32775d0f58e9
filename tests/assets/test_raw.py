"""The raw layer's window of weeks (assets/raw.py): one vendor read split into weeks by work date,
written as one partition per week, and the guard against a vendor glitch that reads like an empty
week.

Over real HTTP the split is exercised on every vendor by the pipeline tests (a sync's weeks run as
one run) and the guard by the fault matrix (``empty_first_page``); these tests pin down the
decisions on a scripted source and a real DuckDB warehouse."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from protiv_dagster.assets.raw import RawWeeks, read_again_where_emptied
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import RAW_TIMESHEETS
from protiv_dagster.vendors.base import Source, day_of_text
from protiv_dagster.vendors.http import VendorPayloadError

WEEK_1, WEEK_2, WEEK_3 = date(2026, 11, 9), date(2026, 11, 16), date(2026, 11, 23)
LOG = logging.getLogger("test_raw")


class ScriptedSource(Source):
    """A source whose answers are given in turn, one dict of feeds per read, each read recorded."""

    provider = "aspire"
    live_feed = "WorkTicketTimes"
    feed_fields = {
        "WorkTicketTimes": ("WorkTicketTimeID", None),
        "ClockTimes": ("ClockTimeID", None),
        "Lookup": ("id", None),
    }
    weekly_feeds = frozenset({"WorkTicketTimes", "ClockTimes"})

    def __init__(self, *reads: dict[str, list[dict[str, Any]]], live: dict[str, date] | None = None) -> None:
        self.reads = list(reads)
        self.windows: list[tuple[date, date]] = []
        self.live = live or {}  # what the vendor answers when asked for entries by id
        self.asked_by_id: list[list[str]] = []

    def live_entries(self, entry_ids: list[str]) -> dict[str, date | None]:
        self.asked_by_id.append(entry_ids)
        return {entry_id: self.live[entry_id] for entry_id in entry_ids if entry_id in self.live}

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        self.windows.append((first_day, last_day))
        return self.reads[len(self.windows) - 1]

    def work_day(self, feed: str, record: Mapping[str, Any]) -> date | None:
        return day_of_text(record.get("day"))


def entry(entry_id: int, day: str) -> dict[str, Any]:
    return {"WorkTicketTimeID": entry_id, "day": day}


@pytest.fixture
def warehouse(tmp_path) -> Warehouse:
    store = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    store.ensure_tables([RAW_TIMESHEETS])
    return store


def stored(warehouse: Warehouse) -> dict[tuple[str, str], list[str]]:
    """Entry ids per (week, feed), in position order."""
    frame = warehouse.query(
        "SELECT week_start, feed, entry_id FROM {schema}.raw_timesheets ORDER BY week_start, feed, position"
    )
    result: dict[tuple[str, str], list[str]] = {}
    for week, feed, entry_id in zip(frame["week_start"], frame["feed"], frame["entry_id"]):
        result.setdefault((str(week)[:10], feed), []).append(entry_id)
    return result


def sync(
    warehouse: Warehouse, source: ScriptedSource, mondays: list[date], stored_live: dict[date, int | list[str]]
) -> tuple[list[date], list[list[date]]]:
    """(weeks read again, the weeks the warehouse was asked about) of one raw sync of ``mondays``;
    ``stored_live`` gives the live entries the warehouse holds per week (ids, or a count of them)."""
    asked: list[list[date]] = []

    def stored_live_ids(empty: list[date]) -> dict[date, list[str]]:
        asked.append(empty)
        held = {monday: stored_live.get(monday, []) for monday in empty}
        return {
            monday: [f"{monday}-{n}" for n in range(ids)] if isinstance(ids, int) else ids
            for monday, ids in held.items()
            if ids
        }

    weeks = RawWeeks("acme", mondays, source)
    try:
        weeks.read(mondays)
        again = read_again_where_emptied(weeks, stored_live_ids, LOG)
        warehouse.replace_partitions(weeks.writes())
    finally:
        weeks.close()
    return again, asked


def test_one_read_of_the_window_is_split_into_its_weeks_by_work_date(warehouse):
    source = ScriptedSource(
        {
            "WorkTicketTimes": [entry(1, "2026-11-10"), entry(2, "2026-11-24T07:00:00"), entry(3, "2026-11-16")],
            "ClockTimes": [{"ClockTimeID": 7, "day": "2026-11-22"}],
            "Lookup": [{"id": "branch-1"}],
        }
    )
    assert sync(warehouse, source, [WEEK_1, WEEK_2, WEEK_3], {})[0] == []
    assert source.windows == [(WEEK_1, WEEK_3 + timedelta(days=6))]  # asked once, for all three weeks
    assert stored(warehouse) == {
        ("2026-11-09", "Lookup"): ["branch-1"],  # a lookup feed goes to every week
        ("2026-11-09", "WorkTicketTimes"): ["1"],
        ("2026-11-16", "ClockTimes"): ["7"],
        ("2026-11-16", "Lookup"): ["branch-1"],
        ("2026-11-16", "WorkTicketTimes"): ["3"],
        ("2026-11-23", "Lookup"): ["branch-1"],
        ("2026-11-23", "WorkTicketTimes"): ["2"],
    }


def test_a_record_without_a_readable_date_or_outside_the_window_is_kept_in_the_first_week(warehouse):
    # Kept, not dropped: the attendance mapping sets it aside with its reason, and counts reconcile.
    source = ScriptedSource(
        {"WorkTicketTimes": [entry(1, "yesterday"), entry(2, "2026-12-01"), entry(3, "2026-11-17")], "ClockTimes": []}
    )
    sync(warehouse, source, [WEEK_1, WEEK_2], {})
    assert stored(warehouse) == {
        ("2026-11-09", "WorkTicketTimes"): ["1", "2"],
        ("2026-11-16", "WorkTicketTimes"): ["3"],
    }


def test_weeks_with_entries_are_read_once_and_the_store_is_not_asked(warehouse):
    source = ScriptedSource({"WorkTicketTimes": [entry(1, "2026-11-10"), entry(2, "2026-11-17")], "ClockTimes": []})
    assert sync(warehouse, source, [WEEK_1, WEEK_2], {WEEK_1: 5, WEEK_2: 5}) == ([], [])
    assert len(source.windows) == 1


def test_an_empty_answer_for_weeks_the_warehouse_holds_entries_of_is_read_again(warehouse, caplog):
    # The whole window came back empty (a glitch): the two weeks that hold entries are read again as
    # one window, the week that held none is not; the first answer for them is dropped whole.
    source = ScriptedSource(
        {"WorkTicketTimes": [], "ClockTimes": [{"ClockTimeID": 7, "day": "2026-11-18"}]},
        {
            "WorkTicketTimes": [entry(2, "2026-11-17"), entry(3, "2026-11-25")],
            "ClockTimes": [{"ClockTimeID": 8, "day": "2026-11-18"}],
        },
    )
    with caplog.at_level(logging.WARNING):
        again, asked = sync(warehouse, source, [WEEK_1, WEEK_2, WEEK_3], {WEEK_2: 3, WEEK_3: 4})
    assert again == [WEEK_2, WEEK_3]
    assert asked == [[WEEK_1, WEEK_2, WEEK_3]]
    assert source.windows == [(WEEK_1, WEEK_3 + timedelta(days=6)), (WEEK_2, WEEK_3 + timedelta(days=6))]
    assert stored(warehouse) == {
        ("2026-11-16", "ClockTimes"): ["8"],
        ("2026-11-16", "WorkTicketTimes"): ["2"],
        ("2026-11-23", "WorkTicketTimes"): ["3"],
    }
    assert "reading those 2 weeks again" in caplog.text


def test_a_week_that_really_emptied_reads_empty_twice_and_is_replaced(warehouse):
    warehouse.replace_partition(
        RAW_TIMESHEETS,
        raw_frame(WEEK_2, ["old-1", "old-2"]),
        {"company_id": "acme", "week_start": WEEK_2},
    )
    source = ScriptedSource(
        {"WorkTicketTimes": [entry(1, "2026-11-10")], "ClockTimes": []},
        {"WorkTicketTimes": [], "ClockTimes": []},
    )
    assert sync(warehouse, source, [WEEK_1, WEEK_2], {WEEK_2: 2})[0] == [WEEK_2]
    assert source.windows[1] == (WEEK_2, WEEK_2 + timedelta(days=6))  # the suspicious week alone
    assert stored(warehouse) == {("2026-11-09", "WorkTicketTimes"): ["1"]}  # the old entries are gone


def test_a_week_read_empty_twice_is_not_believed_while_the_vendor_still_lists_its_entries_by_id(warehouse):
    # A vendor whose listing of the week is empty every time, yet which still answers two of the
    # stored entries as live in that week when asked for them by id: the sync fails, nothing written.
    warehouse.replace_partition(
        RAW_TIMESHEETS, raw_frame(WEEK_2, ["old-1", "old-2", "old-3"]), {"company_id": "acme", "week_start": WEEK_2}
    )
    before = stored(warehouse)
    source = ScriptedSource(
        {"WorkTicketTimes": [entry(1, "2026-11-10")], "ClockTimes": []},
        {"WorkTicketTimes": [], "ClockTimes": []},
        # old-1 was deleted, old-2 still lives in the week, old-3 moved to the week before
        live={"old-2": date(2026, 11, 18), "old-3": date(2026, 11, 11)},
    )
    with pytest.raises(
        VendorPayloadError,
        match=r"Aspire: the WorkTicketTimes listing of 2026-11-16\.\.2026-11-22 came back "
        r"empty twice, yet 1 of the 3 entries stored for that week are still live there when asked by id",
    ):
        sync(warehouse, source, [WEEK_1, WEEK_2], {WEEK_2: ["old-1", "old-2", "old-3"]})
    assert source.asked_by_id == [["old-1", "old-2", "old-3"]]
    assert stored(warehouse) == before


def test_a_week_whose_entries_the_vendor_confirms_gone_by_id_is_replaced(warehouse):
    # Asked by id, the vendor holds none of the stored entries in that week any more (deleted, or
    # moved to another week): the empty week is believed and replaced.
    warehouse.replace_partition(
        RAW_TIMESHEETS, raw_frame(WEEK_2, ["old-1", "old-2"]), {"company_id": "acme", "week_start": WEEK_2}
    )
    source = ScriptedSource(
        {"WorkTicketTimes": [entry(1, "2026-11-10")], "ClockTimes": []},
        {"WorkTicketTimes": [], "ClockTimes": []},
        live={"old-2": date(2026, 11, 24)},
    )
    assert sync(warehouse, source, [WEEK_1, WEEK_2], {WEEK_2: ["old-1", "old-2"]})[0] == [WEEK_2]
    assert source.asked_by_id == [["old-1", "old-2"]]
    assert stored(warehouse) == {("2026-11-09", "WorkTicketTimes"): ["1"]}


def test_copies_of_one_id_in_two_weeks_all_go_to_the_week_of_the_first(warehouse):
    # The vendor listed entry 5 twice, dated in two weeks: both copies land in the first copy's week,
    # where attendance sets every copy aside as a repeated id (a lone copy elsewhere would be paid).
    source = ScriptedSource(
        {"WorkTicketTimes": [entry(5, "2026-11-10"), entry(6, "2026-11-17"), entry(5, "2026-11-18")], "ClockTimes": []}
    )
    sync(warehouse, source, [WEEK_1, WEEK_2], {})
    assert stored(warehouse) == {
        ("2026-11-09", "WorkTicketTimes"): ["5", "5"],
        ("2026-11-16", "WorkTicketTimes"): ["6"],
    }


def test_a_week_that_was_empty_and_still_is_costs_no_second_read(warehouse):
    source = ScriptedSource({"WorkTicketTimes": [entry(1, "2026-11-10")], "ClockTimes": []})
    assert sync(warehouse, source, [WEEK_1, WEEK_2], {}) == ([], [[WEEK_2]])
    assert len(source.windows) == 1


def raw_frame(monday: date, entry_ids: list[str]) -> pd.DataFrame:
    """Stored raw rows of the live feed (payloads do not matter here)."""
    return pd.DataFrame(
        {
            "company_id": "acme",
            "week_start": monday,
            "provider": "aspire",
            "feed": "WorkTicketTimes",
            "position": range(len(entry_ids)),
            "entry_id": entry_ids,
            "source_modified": None,
            "payload": "{}",
        }
    )
