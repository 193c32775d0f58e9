"""The shared HTTP base's read-ahead of listing pages (resources/http.py)."""

from __future__ import annotations

import threading
import time

import pytest

from protiv_dagster.resources.http import VendorUnavailableError, read_ahead


def test_pages_come_in_order_and_are_fetched_ahead_of_the_consumer():
    fetched: list[int] = []

    def pages():
        for number in range(5):
            fetched.append(number)
            yield number

    consumer = read_ahead(pages(), depth=2)
    assert next(consumer) == 0
    # While the consumer still holds page 0, the listing has gone on to the following pages.
    deadline = time.monotonic() + 5
    while len(fetched) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fetched[:3] == [0, 1, 2]
    assert list(consumer) == [1, 2, 3, 4]


def test_an_error_of_the_listing_reaches_the_consumer_after_the_pages_before_it():
    def pages():
        yield "page 1"
        raise VendorUnavailableError("QuickBooks Time", "answered HTTP 503", status=503)

    received = []
    with pytest.raises(VendorUnavailableError, match="HTTP 503"):
        for page in read_ahead(pages()):
            received.append(page)
    assert received == ["page 1"]


def test_a_consumer_that_stops_early_stops_the_listing():
    fetched: list[int] = []

    def pages():
        for number in range(1_000):
            fetched.append(number)
            yield number

    with pytest.raises(RuntimeError, match="spool full"):
        for page in read_ahead(pages(), depth=2):
            if page == 3:
                raise RuntimeError("spool full")
    time.sleep(0.3)
    assert len(fetched) <= 3 + 2 + 2  # the page in hand, the queue, one in flight: never the whole listing
    assert not [t for t in threading.enumerate() if t.name == "vendor-read-ahead"]
