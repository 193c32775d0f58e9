"""Change detection (``Source.changes_since``) on all three vendors, over real HTTP to the emulators.

Every check builds a fresh source, as the two-hour refresh does, so a login or token request is
counted in ``Changes.requests``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from protiv_dagster.partitions import week_start
from protiv_dagster.resources.aspire import AspireResource
from protiv_dagster.resources.busybusy import BusyBusyResource, iso
from protiv_dagster.resources.quickbooks_time import QuickBooksTimeResource
from protiv_dagster.sandbox.generator import generate_company
from protiv_dagster.sources import Changes, weeks_between
from tests.assets.vendors import PROVIDERS, VendorHarness, host

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
ZONE = "America/Denver"
FAST = {"max_attempts": 3, "max_wait_seconds": 0.2}


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=5, workers=8, days=28, as_of=AS_OF, timezone=ZONE)


@pytest.fixture(params=PROVIDERS)
def harness(request, company_data):
    hosted = host(request.param, company_data)
    yield hosted
    hosted.stop()


@pytest.fixture
def window(company_data):
    last_day = company_data.last_local_date  # Thursday 2026-11-19 in Denver
    return last_day - timedelta(days=27), last_day


class _Registry:
    def rotate_credentials(self, company_id, values):  # the QuickBooks Time source stores new tokens here
        pass


def make_source(harness: VendorHarness, **resource_options):
    connection = SimpleNamespace(
        company_id=harness.company_id,
        provider=harness.provider,
        base_url=harness.base_url,
        credentials=lambda: dict(harness.credentials),
        settings=SimpleNamespace(timezone=ZONE if harness.provider == "busybusy" else None, drive_job_patterns=()),
    )
    if harness.provider == "quickbooks_time":
        from protiv_dagster.sources.quickbooks_time import QuickBooksTimeSource

        return QuickBooksTimeSource(connection, QuickBooksTimeResource(**FAST), _Registry())
    if harness.provider == "aspire":
        from protiv_dagster.sources.aspire import AspireSource

        return AspireSource(connection, AspireResource(**FAST, **resource_options))
    from protiv_dagster.sources.busybusy import BusyBusySource

    return BusyBusySource(connection, BusyBusyResource(**FAST))


def check(harness, cursor, window, **options) -> Changes:
    before = len(harness.emulator.request_log)
    changes = make_source(harness).changes_since(cursor, *window, **options)
    assert changes.requests == len(harness.emulator.request_log) - before  # what the vendor saw
    return changes


def entry_on(harness, wanted_week: date) -> tuple[str, date]:
    """A closed, clocked entry of ``wanted_week`` (safe to shorten or move)."""
    frame = harness.editable_entries()
    for row in frame.itertuples():
        day = date.fromisoformat(row.work_date)
        if week_start(day) == wanted_week and day.weekday() < 4:
            return str(row.entry_id), day
    raise AssertionError(f"no editable entry in the week of {wanted_week}")


def add_entry(harness, day: date) -> str:
    """A new two-hour entry on ``day`` (local 06:00-08:00) for a worker and job already in use."""
    vendor = harness.vendor
    start = datetime(day.year, day.month, day.day, 6, tzinfo=harness.zone)
    end = start + timedelta(hours=2)
    if harness.provider == "quickbooks_time":
        template = next(s for s in vendor.timesheets() if s["type"] == "regular")
        return str(vendor.add_timesheet(template["user_id"], template["jobcode_id"], start=start, end=end)["id"])
    if harness.provider == "aspire":
        template = vendor.records("WorkTicketTimes")[0]
        wall = "%Y-%m-%dT%H:%M:%S"
        return str(vendor.add_work_ticket_time(
            ContactID=template["ContactID"], WorkTicketID=template["WorkTicketID"],
            StartTime=start.strftime(wall), EndTime=end.strftime(wall),
        )["WorkTicketTimeID"])
    template = next(e for e in vendor.records("timeEntries") if e["deletedOn"] is None)
    return vendor.add_time_entry(template["memberId"], template["projectId"], iso(start), iso(end))["id"]


def change_a_worker(harness) -> None:
    vendor = harness.vendor
    if harness.provider == "quickbooks_time":
        user = vendor.users()[0]
        vendor.edit_user(user["id"], last_name=user["last_name"] + "-Smith")
    elif harness.provider == "aspire":
        # The Aspire emulator has no contact edit: change the served record the way a save would.
        contact = next(c for c in vendor.contacts if c["ContactTypeName"] == "Employee")
        contact["LastName"] += "-Smith"
        contact["ModifiedDate"] = vendor._tick()
    else:
        # The BusyBusy emulator has no member edit either.
        member = next(iter(vendor._members.values()))
        member["lastName"] = (member["lastName"] or "") + "-Smith"
        member["updatedOn"] = iso(vendor._tick())


def three_weeks_back(window) -> date:
    return week_start(window[1]) - timedelta(days=21)


# -- the tests --------------------------------------------------------------------------------------
def test_never_synced_reports_every_week_and_the_reference_data(harness, window):
    changes = check(harness, None, window)
    assert changes.weeks == weeks_between(*window)
    assert len(changes.weeks) == 5  # 28 days ending on a Thursday span five ISO weeks
    assert changes.reference_changed
    assert changes.entry_ids == frozenset()
    # One request for the vendor's newest stamps (+ login/token; Aspire also lists the window).
    assert changes.requests <= {"quickbooks_time": 1, "aspire": 3, "busybusy": 2}[harness.provider]


def test_a_quiet_company_costs_at_most_two_requests_and_reports_nothing(harness, window):
    cursor = check(harness, None, window).cursor
    for _ in range(2):
        changes = check(harness, cursor, window)
        assert changes.quiet, changes
        assert changes.requests <= 2
        cursor = changes.cursor
    expected = {"quickbooks_time": 1, "aspire": 2, "busybusy": 2}[harness.provider]
    assert changes.requests == expected


def test_an_edit_three_weeks_back_reports_exactly_that_week_and_entry(harness, window):
    cursor = check(harness, None, window).cursor
    week = three_weeks_back(window)
    entry_id, _ = entry_on(harness, week)
    harness.shorten(entry_id, 1.0)
    changes = check(harness, cursor, window)
    assert changes.weeks == {week}
    assert changes.entry_ids == {entry_id}


def test_a_deletion_reports_its_week_and_entry(harness, window):
    cursor = check(harness, None, window).cursor
    week = three_weeks_back(window) + timedelta(days=7)
    entry_id, _ = entry_on(harness, week)
    harness.delete(entry_id)
    changes = check(harness, cursor, window)
    assert changes.weeks == {week}
    if harness.provider == "aspire":
        # No deleted feed: the week comes from the cursor's per-week digest, the id from comparing
        # the caller's stored ids with the live ones.
        assert entry_id not in changes.live_entry_ids
        assert changes.entry_ids == frozenset()
    else:
        assert changes.entry_ids == {entry_id}
        assert changes.live_entry_ids is None


def test_a_move_across_weeks_reports_the_new_week_and_the_entry(harness, window):
    cursor = check(harness, None, window).cursor
    old_week = three_weeks_back(window)
    entry_id, _ = entry_on(harness, old_week)
    harness.move(entry_id, days=7)
    changes = check(harness, cursor, window)
    assert old_week + timedelta(days=7) in changes.weeks
    assert entry_id in changes.entry_ids  # the caller finds the old week from its stored copy
    if harness.provider == "aspire":
        assert changes.weeks == {old_week, old_week + timedelta(days=7)}  # the digest shows the old one
    else:
        assert changes.weeks == {old_week + timedelta(days=7)}


def test_a_change_before_the_window_is_ignored_but_its_id_is_reported(harness, window):
    cursor = check(harness, None, window).cursor
    entry_id, day = entry_on(harness, three_weeks_back(window))
    narrower = (day + timedelta(days=7), window[1])
    harness.shorten(entry_id, 1.0)
    changes = check(harness, cursor, narrower)
    assert changes.weeks == frozenset()
    assert entry_id in changes.entry_ids  # its stored week may still be inside the caller's window


def test_a_new_entry_in_the_current_week_reports_the_current_week(harness, window):
    cursor = check(harness, None, window).cursor
    new_id = add_entry(harness, window[1])
    changes = check(harness, cursor, window)
    assert changes.weeks == {week_start(window[1])}
    assert changes.entry_ids == {new_id}


def test_a_worker_change_sets_reference_changed(harness, window):
    options = {"check_reference": True} if harness.provider == "aspire" else {}
    cursor = check(harness, None, window).cursor
    cursor = check(harness, cursor, window, **options).cursor  # settles the first reference mark
    assert not check(harness, cursor, window, **options).reference_changed
    change_a_worker(harness)
    changes = check(harness, cursor, window, **options)
    assert changes.reference_changed
    assert changes.weeks == frozenset()


def test_a_job_change_sets_reference_changed_on_quickbooks_time(window, company_data):
    harness = host("quickbooks_time", company_data)
    try:
        cursor = check(harness, None, window).cursor
        jobcode = harness.vendor.jobcodes()[1]
        harness.vendor.edit_jobcode(jobcode["id"], budget_hours=99)
        changes = check(harness, cursor, window)
        assert changes.reference_changed and not changes.weeks
        assert changes.requests == 1
    finally:
        harness.stop()


def test_a_change_right_after_a_check_is_reported_by_the_next_check_once(harness, window):
    cursor = check(harness, None, window).cursor
    first_id, _ = entry_on(harness, three_weeks_back(window))
    harness.shorten(first_id, 0.5)
    first = check(harness, cursor, window)
    assert first_id in first.entry_ids
    # Same second as the check's answer, as far as the vendor's stamps go.
    second_id = add_entry(harness, window[1] - timedelta(days=1))
    second = check(harness, first.cursor, window)
    assert second.entry_ids == {second_id}  # the first change is not reported again
    assert second.weeks == {week_start(window[1] - timedelta(days=1))}
    third = check(harness, second.cursor, window)
    assert not third.weeks and not third.entry_ids


def test_an_old_cursor_re_reports_rather_than_skips(harness, window):
    cursor = check(harness, None, window).cursor
    entry_id, _ = entry_on(harness, three_weeks_back(window))
    harness.shorten(entry_id, 0.5)
    assert entry_id in check(harness, cursor, window).entry_ids
    # The sync after that check failed, so its cursor was never stored: the old one still reports.
    assert entry_id in check(harness, cursor, window).entry_ids


def test_an_aspire_reference_check_runs_on_every_nth_quiet_check(company_data, window):
    harness = host("aspire", company_data)
    try:
        cursor = check(harness, None, window).cursor
        counts = []
        for _ in range(3):
            source = make_source(harness, reference_check_every=3)
            changes = source.changes_since(cursor, *window)
            counts.append(changes.requests)
            cursor = changes.cursor
        assert counts == [2, 2, 5]  # token + listing; the third adds contacts, opportunities, tickets
    finally:
        harness.stop()


def test_a_cursor_of_another_vendor_counts_as_never_synced(harness, window):
    changes = check(harness, '{"provider":"someone-else","v":1}', window)
    assert changes.weeks == weeks_between(*window) and changes.reference_changed
