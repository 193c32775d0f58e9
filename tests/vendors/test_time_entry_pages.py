"""Sources hand out a week's time entries page by page with exactly the records of the whole feeds."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta

import pytest

from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.generator import generate_company
from tests.assets.vendors import PROVIDERS, host
from tests.vendors.test_changes import FAST, _Registry, make_source

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=9, workers=12, days=14, as_of=AS_OF, timezone="America/Denver")


@pytest.mark.parametrize("provider", PROVIDERS)
def test_pages_hold_exactly_the_records_of_the_feeds(provider, company_data):
    harness = host(provider, company_data)
    try:
        source = make_source(harness)
        if provider == "quickbooks_time":  # small pages, so the week spans many requests
            from protiv_dagster.vendors.quickbooks_time.source import QuickBooksTimeSource

            source = QuickBooksTimeSource(source.connection, QuickBooksTimeTuning(**FAST, page_size=7), _Registry())
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
