"""Sources hand out a week's time entries page by page with exactly the records of the whole feeds,
and read ahead of the caller without a request more."""

from __future__ import annotations

import contextlib
import json
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from protiv_dagster.partitions import week_start
from protiv_dagster.vendors import base
from protiv_dagster.vendors.base import pages_by_week, read_ahead
from protiv_dagster.vendors.http import VendorUnavailableError
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.generator import generate_company
from tests.assets.vendors import PROVIDERS, host
from tests.vendors.test_changes import FAST, _Registry, make_source

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=9, workers=12, days=14, as_of=AS_OF, timezone="America/Denver")


def paged_source(provider, harness):
    """A new source of the hosted company; QuickBooks Time's with 7-record pages, so a week spans
    many requests."""
    source = make_source(harness)
    if provider == "quickbooks_time":
        from protiv_dagster.vendors.quickbooks_time.source import QuickBooksTimeSource

        source = QuickBooksTimeSource(source.connection, QuickBooksTimeTuning(**FAST, page_size=7), _Registry())
    return source


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pages_hold_exactly_the_records_of_the_feeds(provider, company_data):
    harness = host(provider, company_data)
    try:
        source = paged_source(provider, harness)
        last_day = company_data.last_local_date
        first_day = last_day - timedelta(days=6)
        paged: dict[str, list[dict]] = defaultdict(list)
        page_count = 0
        for feed, records in source.time_entry_pages(first_day, last_day):
            paged[feed].extend(records)
            page_count += 1
        whole = source.time_entry_feeds(first_day, last_day)
    finally:
        harness.stop()

    if provider == "busybusy":  # the vendor clock is read at the time of the call
        for feeds in (paged, whole):
            feeds.pop("vendorClock")
    assert dict(paged) == whole
    assert sum(len(records) for records in whole.values()) > 0
    if provider == "quickbooks_time":
        assert page_count > len(whole["timesheets"]) // 7


@pytest.mark.parametrize("provider", PROVIDERS)
def test_weeks_read_ahead_hold_the_records_of_the_feeds_with_the_same_requests(provider, company_data):
    """Over real HTTP: the pages split by week, read ahead of the caller, are the records of the whole
    feeds, asked for with exactly the requests of a listing read one page at a time."""
    last_day = company_data.last_local_date
    mondays = [week_start(last_day) - timedelta(days=7), week_start(last_day)]
    harness = host(provider, company_data)
    try:
        one_at_a_time, read_ahead_source = paged_source(provider, harness), paged_source(provider, harness)
        listed = list(one_at_a_time.time_entry_pages(mondays[0], mondays[-1] + timedelta(days=6)))
        by_week = list(pages_by_week(read_ahead_source, mondays))
    finally:
        harness.stop()

    def weekly_records(pages) -> dict[str, list[str]]:
        """Per weekly feed (the lookups go to every week), its records in a comparable order."""
        kept: dict[str, list[str]] = defaultdict(list)
        for feed, page in pages:
            if feed in read_ahead_source.weekly_feeds:
                kept[feed].extend(json.dumps(record, sort_keys=True) for record in page)
        return {feed: sorted(texts) for feed, texts in kept.items()}

    assert weekly_records((feed, page) for _, feed, page in by_week) == weekly_records(listed)
    assert sum(len(page) for _, feed, page in by_week if feed == read_ahead_source.live_feed) > 0
    assert read_ahead_source.request_count == one_at_a_time.request_count
    if provider == "quickbooks_time":
        assert read_ahead_source.request_count > 3


def test_read_ahead_asks_for_the_next_page_while_the_caller_holds_one():
    asked = [threading.Event() for _ in range(3)]

    def listing():
        for number, event in enumerate(asked):
            event.set()
            yield number

    pages = read_ahead(listing())
    assert next(pages) == 0
    # A listing read one page at a time would not ask for page 1 before the caller asks for it.
    assert asked[1].wait(timeout=10)
    assert list(pages) == [1, 2]


def test_read_ahead_raises_the_listing_failure_after_the_pages_before_it():
    failure = VendorUnavailableError("QuickBooks Time", "HTTP 503 on timesheets, still failing after 6 attempts")

    def listing():
        yield "page 1"
        yield "page 2"
        raise failure

    received = []
    with pytest.raises(VendorUnavailableError) as raised:
        for page in read_ahead(listing()):
            received.append(page)
    assert received == ["page 1", "page 2"]
    assert raised.value is failure
    assert not [t for t in threading.enumerate() if t.name == "vendor-read-ahead"]


def test_read_ahead_stops_and_closes_the_listing_when_the_caller_stops():
    asked: list[int] = []
    closed = threading.Event()

    def endless_listing():
        try:
            number = 0
            while True:
                asked.append(number)
                yield number
                number += 1
        finally:
            closed.set()

    with pytest.raises(OSError, match="disk full"):
        for page in read_ahead(endless_listing()):
            if page == 3:
                raise OSError("disk full while spooling the week")
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "vendor-read-ahead"]
    assert len(asked) <= 4 + 2  # the pages taken and at most two ahead


def test_a_caller_that_stops_is_not_held_by_a_slow_request_under_way(monkeypatch):
    """A run terminated while the vendor takes its time over the next page ends without waiting for
    that answer (beyond a bound); the thread drops the answer and closes the listing when it comes."""
    monkeypatch.setattr(base, "READ_AHEAD_STOP_SECONDS", 0.2)
    answer, closed, stopped = threading.Event(), threading.Event(), threading.Event()

    def slow_listing():
        try:
            yield "page 1"
            answer.wait(timeout=30)  # the vendor's slow answer to the request for page 2
            yield "page 2"
        finally:
            closed.set()

    def caller():
        with contextlib.suppress(RuntimeError):
            for _ in read_ahead(slow_listing()):
                raise RuntimeError("run terminated")
        stopped.set()

    worker = threading.Thread(target=caller)
    worker.start()
    assert stopped.wait(timeout=10), "the caller waited for the slow answer"
    assert not closed.is_set()  # the request is still under way
    answer.set()
    assert closed.wait(timeout=10)
    worker.join(timeout=10)
    for thread in threading.enumerate():
        if thread.name == "vendor-read-ahead":
            thread.join(timeout=10)
    assert not [t for t in threading.enumerate() if t.name == "vendor-read-ahead"]
