"""The raw layer's guard against a vendor glitch that reads like an empty week (assets/raw.py).

Over real HTTP the guard is exercised on every vendor by the fault matrix (``empty_first_page``);
these tests pin down its decisions: when it reads again, and that a week which really emptied is
still replaced."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from protiv_dagster.assets.raw import week_pages

MONDAY, SUNDAY = date(2026, 11, 16), date(2026, 11, 22)
LOG = logging.getLogger("test_raw")


class ScriptedSource:
    """A source whose answers for the week are given in turn, one dict of feeds per read."""

    provider = "aspire"
    live_feed = "WorkTicketTimes"

    def __init__(self, *reads: dict[str, list[dict[str, Any]]]) -> None:
        self.reads = list(reads)
        self.read_count = 0

    def time_entry_feeds(self, first_day: date, last_day: date) -> dict[str, list[dict[str, Any]]]:
        assert (first_day, last_day) == (MONDAY, SUNDAY)
        answer = self.reads[self.read_count]
        self.read_count += 1
        return answer


ENTRY = {"WorkTicketTimeID": 1}
CLOCK = {"ClockTimeID": 7}


def test_a_week_with_entries_is_read_once_and_the_store_is_not_asked():
    source = ScriptedSource({"WorkTicketTimes": [ENTRY], "ClockTimes": [CLOCK]})
    asked = []
    pages = list(week_pages(source, MONDAY, SUNDAY, lambda: asked.append(1) or 5, LOG))
    assert pages == [("WorkTicketTimes", [ENTRY]), ("ClockTimes", [CLOCK])]
    assert source.read_count == 1 and asked == []


def test_an_empty_answer_for_a_week_the_warehouse_holds_entries_of_is_read_again(caplog):
    source = ScriptedSource({"WorkTicketTimes": [], "ClockTimes": []}, {"WorkTicketTimes": [ENTRY], "ClockTimes": [CLOCK]})
    with caplog.at_level(logging.WARNING):
        pages = list(week_pages(source, MONDAY, SUNDAY, lambda: 3, LOG))
    assert pages == [("WorkTicketTimes", [ENTRY]), ("ClockTimes", [CLOCK])]  # the first answer is dropped whole
    assert source.read_count == 2
    assert "reading the week again" in caplog.text


def test_a_week_that_really_emptied_reads_empty_twice_and_is_replaced():
    source = ScriptedSource({"WorkTicketTimes": [], "ClockTimes": [CLOCK]}, {"WorkTicketTimes": [], "ClockTimes": [CLOCK]})
    assert list(week_pages(source, MONDAY, SUNDAY, lambda: 3, LOG)) == [("WorkTicketTimes", []), ("ClockTimes", [CLOCK])]
    assert source.read_count == 2


def test_a_week_that_was_empty_and_still_is_costs_no_second_read():
    source = ScriptedSource({"WorkTicketTimes": [], "ClockTimes": []})
    assert list(week_pages(source, MONDAY, SUNDAY, lambda: 0, LOG)) == [("WorkTicketTimes", []), ("ClockTimes", [])]
    assert source.read_count == 1
