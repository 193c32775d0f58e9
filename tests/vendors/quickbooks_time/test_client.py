"""The QuickBooks Time client over real HTTP against the emulator: paging, filters, faults, auth."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from protiv_dagster.vendors.http import (
    VendorAuthError,
    VendorRequestError,
    VendorUnavailableError,
)
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeClient, QuickBooksTimeCredentials
from protiv_emulators.generator import generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
FIRST_DAY, LAST_DAY = date(2026, 11, 7), date(2026, 11, 20)


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=3, workers=30, days=14, as_of=AS_OF, timezone="America/Denver")


@pytest.fixture
def emulator(company_data):
    with QuickBooksTimeEmulator() as emulator:
        emulator.add_company(company_data, access_token="token-acme-0123456789", client_secret="client-secret-xyz")
        yield emulator


def make_client(emulator, token="token-acme-0123456789", page_size=25, **options) -> QuickBooksTimeClient:
    options.setdefault("initial_backoff_seconds", 0.01)
    options.setdefault("max_wait_seconds", 0.2)
    return QuickBooksTimeClient(
        emulator.base_url, QuickBooksTimeCredentials(access_token=token), page_size=page_size, **options
    )


def ids(records):
    return [int(r["id"]) for r in records]


def truth_in_window(emulator):
    return sorted(
        int(s["id"])
        for s in emulator.company("acme").timesheets()
        if FIRST_DAY.isoformat() <= s["date"] <= LAST_DAY.isoformat()
    )


def test_paging_across_many_pages_equals_ground_truth(emulator):
    client = make_client(emulator, page_size=25)
    got = ids(client.timesheets(start_date=FIRST_DAY, end_date=LAST_DAY))
    truth = truth_in_window(emulator)
    assert len(truth) > 200  # many pages at 25 per page
    assert got == truth  # same records, in order, no duplicates
    pages = -(-len(truth) // 25)
    assert client.request_count == pages


def test_running_sheet_is_included_as_on_the_clock(emulator):
    sheets = make_client(emulator, page_size=200).timesheets(start_date=FIRST_DAY, end_date=LAST_DAY)
    running = [s for s in sheets if s["on_the_clock"]]
    assert len(running) == 1 and running[0]["end"] == ""


def test_users_and_jobcode_tree(emulator, company_data):
    client = make_client(emulator)
    users = client.users()
    assert sorted(ids(users)) == sorted(w.id for w in company_data.workers)  # inactive ones too
    jobcodes = client.jobcodes()
    by_id = {j["id"]: j for j in jobcodes}
    children = [j for j in jobcodes if j["parent_id"] != 0]
    assert children and all(by_id[c["parent_id"]]["parent_id"] == 0 for c in children)
    fields = {f["name"]: str(f["id"]) for f in client.customfields("jobcode")}
    assert {"Budget Hours", "Job Status", "Recurring"} <= set(fields)
    assert any(j["customfields"].get(fields["Budget Hours"]) for j in jobcodes)
    assert client.current_user()["id"] in by_id.keys() | {u["id"] for u in users}


def test_supplemental_data_on_request(emulator):
    page = next(make_client(emulator).timesheet_pages(start_date=FIRST_DAY, end_date=LAST_DAY, supplemental=True))
    assert {"users", "jobcodes"} <= set(page.supplemental)
    user_ids = {str(r["user_id"]) for r in page.records}
    assert user_ids <= set(page.supplemental["users"])


def test_incremental_pull_by_modified_since_and_deletions(emulator):
    client = make_client(emulator)
    before = client.last_modified_timestamps()
    company = emulator.company("acme")
    sheet = next(s for s in company.timesheets() if s["type"] == "regular" and s["end"] and s["duration"] > 7200)
    since = datetime.now(UTC).replace(microsecond=0)
    end = datetime.fromisoformat(sheet["end"]) - timedelta(minutes=30)
    company.edit_timesheet(int(sheet["id"]), end=end.isoformat())
    victim = next(s for s in company.timesheets() if s["id"] != sheet["id"] and s["type"] == "regular" and s["end"])
    company.delete_timesheet(int(victim["id"]))

    changed = client.timesheets(modified_since=since)
    assert ids(changed) == [int(sheet["id"])]
    assert changed[0]["duration"] == sheet["duration"] - 1800
    deleted = client.deleted_timesheets(modified_since=since)
    assert ids(deleted) == [int(victim["id"])]
    assert int(victim["id"]) not in ids(client.timesheets(start_date=FIRST_DAY, end_date=LAST_DAY))
    after = client.last_modified_timestamps()
    assert after["timesheets"] > before["timesheets"]
    assert after["timesheets_deleted"] >= since


def test_rate_limit_with_and_without_retry_after_loses_nothing(emulator):
    emulator.faults.rate_limit(times=2, retry_after=0)
    client = make_client(emulator)
    assert ids(client.timesheets(start_date=FIRST_DAY, end_date=LAST_DAY)) == truth_in_window(emulator)
    emulator.faults.rate_limit(times=2, retry_after=None)
    client = make_client(emulator)
    assert ids(client.timesheets(start_date=FIRST_DAY, end_date=LAST_DAY)) == truth_in_window(emulator)
    assert client.retry_count == 2
    statuses = [entry.status for entry in emulator.request_log]
    assert statuses.count(429) == 4


def test_server_errors_recover_then_exhaust_with_a_clear_error(emulator):
    emulator.faults.server_error(times=3, status=503)
    client = make_client(emulator)
    assert ids(client.timesheets(start_date=FIRST_DAY, end_date=LAST_DAY)) == truth_in_window(emulator)
    emulator.faults.server_error(times=50, status=500)
    with pytest.raises(
        VendorUnavailableError, match=r"QuickBooks Time: HTTP 500 on users, still failing after 3 attempts"
    ):
        make_client(emulator, max_attempts=3).users()


def test_read_timeout_is_retried_then_reported(emulator):
    emulator.faults.latency(0.3)
    with pytest.raises(VendorUnavailableError, match="no answer within the read timeout on current_user"):
        make_client(emulator, read_timeout_seconds=0.05, max_attempts=2).current_user()
    emulator.faults.clear()
    assert make_client(emulator, read_timeout_seconds=5).current_user()["id"]


def test_wrong_token_is_a_clear_error_without_the_token(emulator):
    with pytest.raises(VendorAuthError) as raised:
        make_client(emulator, token="wrong-token-abcdef").users()
    message = str(raised.value)
    assert "QuickBooks Time" in message and "401" in message and "reconnect" in message
    assert "wrong-token-abcdef" not in message


def test_expired_token_is_refreshed_once_and_the_new_tokens_handed_back(emulator):
    company = emulator.company("acme")
    rotated = []
    client = QuickBooksTimeClient(
        emulator.base_url,
        QuickBooksTimeCredentials(
            access_token="token-acme-0123456789",
            refresh_token=company.refresh_token,
            client_id="protiv-demo",
            client_secret="client-secret-xyz",
        ),
        on_token_refresh=rotated.append,
    )
    emulator.faults.expire_token("token-acme-0123456789")
    assert client.users()
    assert len(rotated) == 1 and rotated[0].access_token != "token-acme-0123456789"
    # Without refresh credentials an expired token is an auth error, not a retry loop.
    emulator.faults.expire_token(rotated[0].access_token)
    with pytest.raises(VendorAuthError):
        make_client(emulator, token=rotated[0].access_token).users()


def test_missing_filter_is_a_request_error_with_the_vendor_message(emulator):
    client = make_client(emulator)
    with pytest.raises(VendorRequestError, match="417"):
        client.get_json("timesheets", {"limit": 10})
    with pytest.raises(ValueError, match="needs start_date"):
        client.timesheets()


def test_last_modified_timestamps_keeps_the_vendor_clock(emulator):
    client = make_client(emulator)
    stamps = client.last_modified_timestamps(("timesheets", "users", "customfields"))
    assert set(stamps) == {"timesheets", "users", "customfields"}
    assert client.request_count == 1
    assert client.server_time is not None and abs((client.server_time - datetime.now(UTC)).total_seconds()) < 60
