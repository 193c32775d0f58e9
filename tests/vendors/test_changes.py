"""Change detection (``Source.changes_since``) on all three vendors, over real HTTP to the emulators.

Every check builds a fresh source, as the two-hour refresh does, so a login or token request is
counted in ``Changes.requests``. As in the refresh, an Aspire source keeps its token in a real
registry (SQLite) between checks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.partitions import week_start
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.base import Changes, decode_cursor, weeks_between
from protiv_dagster.vendors.busybusy.client import BusyBusyTuning, iso
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.generator import generate_company
from tests.assets.vendors import PROVIDERS, VendorHarness, host

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
ZONE = "America/Denver"
FAST = {"max_attempts": 3, "max_wait_seconds": 0.2}


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=5, workers=8, days=28, as_of=AS_OF, timezone=ZONE)


@pytest.fixture(params=PROVIDERS)
def harness(request, company_data, tmp_path, monkeypatch):
    hosted = host(request.param, company_data)
    if request.param == "aspire":
        keep_tokens(hosted, tmp_path, monkeypatch)
    yield hosted
    hosted.stop()


@pytest.fixture
def aspire(company_data, tmp_path, monkeypatch):
    hosted = host("aspire", company_data)
    keep_tokens(hosted, tmp_path, monkeypatch)
    yield hosted
    hosted.stop()


def keep_tokens(harness: VendorHarness, folder, monkeypatch) -> None:
    """Connect the Aspire harness's company in a real registry, where its sources keep the token."""
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    url = f"sqlite:///{folder / 'registry.sqlite3'}"
    ConnectionRegistry(url).connect(harness.company_id, "aspire", harness.base_url, harness.credentials)
    harness.registry = ConnectionRegistryResource(url=url)


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
        from protiv_dagster.vendors.quickbooks_time.source import QuickBooksTimeSource

        return QuickBooksTimeSource(connection, QuickBooksTimeTuning(**FAST), _Registry())
    if harness.provider == "aspire":
        from protiv_dagster.vendors.aspire.source import AspireSource

        registry = getattr(harness, "registry", None)
        if registry is not None:
            connection = registry.get(harness.company_id)
        return AspireSource(connection, AspireTuning(**FAST, **resource_options), registry)
    from protiv_dagster.vendors.busybusy.source import BusyBusySource

    return BusyBusySource(connection, BusyBusyTuning(**FAST))


def check(harness, cursor, window, resource_options=None, **options) -> Changes:
    before = len(harness.emulator.request_log)
    changes = make_source(harness, **(resource_options or {})).changes_since(cursor, *window, **options)
    assert changes.requests == len(harness.emulator.request_log) - before  # what the vendor saw
    return changes


def served(harness, since: int) -> list[str]:
    """The paths of the vendor requests the emulator served after the first ``since``."""
    return [entry.path for entry in harness.emulator.request_log[since:]]


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
        return str(
            vendor.add_work_ticket_time(
                ContactID=template["ContactID"],
                WorkTicketID=template["WorkTicketID"],
                StartTime=start.strftime(wall),
                EndTime=end.strftime(wall),
            )["WorkTicketTimeID"]
        )
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
    # One request for the vendor's newest stamps (+ login/token; Aspire lists the window, asks the
    # newest stamp of its five stamped endpoints one by one and lists the pay rates).
    assert changes.requests <= {"quickbooks_time": 1, "aspire": 8, "busybusy": 2}[harness.provider]


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


def test_an_aspire_quiet_check_reuses_the_kept_token_and_asks_one_reference_endpoint_in_turn(aspire, window):
    cursor = check(aspire, None, window).cursor
    paths = []
    for _ in range(6):
        before = len(aspire.emulator.request_log)
        changes = check(aspire, cursor, window)
        assert changes.quiet and changes.requests == 2
        paths.append(served(aspire, before))
        cursor = changes.cursor
    # No token request: the one from the first check is still good.
    assert paths == [
        ["/WorkTicketTimes", "/Contacts"],
        ["/WorkTicketTimes", "/Opportunities"],
        ["/WorkTicketTimes", "/WorkTickets"],
        ["/WorkTicketTimes", "/OpportunityServices"],
        ["/WorkTicketTimes", "/PayRates"],
        ["/WorkTicketTimes", "/Contacts"],
    ]


def test_an_aspire_reference_only_change_shows_within_three_quiet_checks(aspire, window):
    cursor = check(aspire, None, window).cursor
    cursor = check(aspire, cursor, window, check_reference=True).cursor  # settles the first reference marks
    ticket = aspire.vendor.records("WorkTickets")[0]
    aspire.vendor.edit_work_ticket(ticket["WorkTicketID"], HoursEst=(ticket["HoursEst"] or 0) + 40)
    seen = []
    for _ in range(3):
        changes = check(aspire, cursor, window)
        assert changes.requests <= 2 and not changes.weeks and not changes.entry_ids
        seen.append(changes.reference_changed)
        if changes.reference_changed:
            break
        cursor = changes.cursor
    assert seen[-1], seen
    # Reported once: the checks after it (from its cursor) see nothing new.
    for _ in range(3):
        changes = check(aspire, changes.cursor, window)
        assert changes.quiet, changes


@pytest.mark.parametrize("change", ["a new pay rate", "an edited pay rate", "a service's estimate"])
def test_an_aspire_pay_rate_or_service_change_shows_within_five_quiet_checks_once(aspire, window, change):
    cursor = check(aspire, None, window).cursor
    cursor = check(aspire, cursor, window, check_reference=True).cursor  # settles the first reference marks
    vendor = aspire.vendor
    if change == "a new pay rate":
        vendor.add_pay_rate(
            ContactID=vendor.records("PayRates")[0]["ContactID"], EffectiveDate="2026-11-18", HourlyBasePay=41.5
        )
    elif change == "an edited pay rate":
        # Pay rates carry no modification stamp: an edit in place is seen by the digest of the listing.
        vendor.pay_rates[next(iter(vendor.pay_rates))]["HourlyBasePay"] += 1.0
    else:
        service = vendor.records("OpportunityServices")[0]
        vendor.edit_opportunity_service(
            service["OpportunityServiceID"], ExtendedHours=(service["ExtendedHours"] or 0) + 10
        )
    seen = []
    for _ in range(5):
        changes = check(aspire, cursor, window)
        assert changes.requests <= 2 and not changes.weeks and not changes.entry_ids
        seen.append(changes.reference_changed)
        cursor = changes.cursor
        if changes.reference_changed:
            break
    assert seen[-1], seen
    for _ in range(5):  # reported once: a whole rotation after it sees nothing new
        changes = check(aspire, changes.cursor, window)
        assert changes.quiet, changes


def test_busybusy_budget_and_wage_changes_are_reference_changes(window, company_data):
    harness = host("busybusy", company_data)
    try:
        vendor = harness.vendor
        cursor = check(harness, None, window).cursor
        project = vendor.project_id(company_data.jobs[1].id)
        code = vendor.cost_code_id("01-100")
        for change in (
            lambda: vendor.set_budget(project, costCodeId=code, hours=20.0),  # a new cost code budget: a task line
            lambda: vendor.set_budget(project, cost=640.0),  # a cost budget only: no stamp, seen by its listing
            lambda: vendor.add_wage_change(vendor.member_id(company_data.workers[0].id), 36.0, "2026-11-15T07:00:00Z"),
        ):
            quiet = check(harness, cursor, window)
            assert quiet.quiet, quiet
            change()
            changes = check(harness, quiet.cursor, window)
            assert changes.reference_changed and not changes.weeks and not changes.entry_ids
            assert changes.requests == 2
            cursor = changes.cursor
        assert check(harness, cursor, window).quiet
    finally:
        harness.stop()


def test_an_aspire_deletion_in_an_old_week_shows_within_one_rotation_at_one_page_a_check(aspire, window):
    # 254 time rows in the window: a page of 200 holds the two open weeks (85 rows) and about a
    # week of older days, so the older weeks take several checks to list.
    small_pages = {"page_size": 200}
    first = check(aspire, None, window, small_pages)
    assert first.listed_weeks == weeks_between(*window)  # the first check lists the whole window
    window_first = week_start(window[0])
    checks, cursor, marks = [], first.cursor, []
    while True:  # one rotation: until the slice of older days starts from the beginning again
        before = len(aspire.emulator.request_log)
        changes = check(aspire, cursor, window, small_pages)
        assert changes.quiet and changes.requests <= 2
        assert served(aspire, before).count("/WorkTicketTimes") == 1  # one listing page
        checks.append(changes)
        cursor = changes.cursor
        marks.append(date.fromisoformat(decode_cursor("aspire", cursor)["scan"]))
        if marks[-1] == window_first:
            break
    rotation = len(checks)
    assert rotation >= 2
    # The open weeks are listed at every check, whole.
    open_weeks = {week_start(window[1]), week_start(window[1]) - timedelta(days=7)}
    assert all(open_weeks <= c.listed_weeks for c in checks)

    # An entry deleted on a day the first slice of this rotation has just passed: only the next
    # rotation lists that day again (the worst case).
    cursor = check(aspire, cursor, window, small_pages).cursor
    passed = date.fromisoformat(decode_cursor("aspire", cursor)["scan"]) - timedelta(days=1)
    entries = aspire.entries()
    victim = entries[
        (entries["work_date"] >= window_first.isoformat()) & (entries["work_date"] <= passed.isoformat())
    ].iloc[-1]
    aspire.delete(victim.entry_id)
    found_after = None
    for number in range(1, rotation + 1):
        before = len(aspire.emulator.request_log)
        changes = check(aspire, cursor, window, small_pages)
        assert served(aspire, before).count("/WorkTicketTimes") == 1
        if changes.weeks:
            found_after = number
            break
        assert changes.quiet and changes.requests <= 2
        cursor = changes.cursor
    assert found_after is not None and found_after > 1, "found at once: the deleted day was not behind the slice"
    assert changes.weeks == {week_start(date.fromisoformat(victim.work_date))}


def test_an_aspire_deletion_in_the_open_weeks_shows_at_the_next_check_on_small_pages(aspire, window):
    small_pages = {"page_size": 200}
    cursor = check(aspire, None, window, small_pages).cursor
    cursor = check(aspire, cursor, window, small_pages).cursor
    entry_id, day = entry_on(aspire, week_start(window[1]) - timedelta(days=7))
    aspire.delete(entry_id)
    changes = check(aspire, cursor, window, small_pages)
    assert changes.weeks == {week_start(day)} and entry_id not in changes.live_entry_ids


def test_a_cursor_of_another_vendor_counts_as_never_synced(harness, window):
    changes = check(harness, '{"provider":"someone-else","v":1}', window)
    assert changes.weeks == weeks_between(*window) and changes.reference_changed
