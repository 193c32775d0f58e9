"""The Aspire client against the emulator over real HTTP: auth, refresh, paging, filters, retries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from protiv_dagster.vendors.aspire.client import (
    ASSUMED_TOKEN_LIFETIME,
    AspireClient,
    AspireTokens,
    AspireTuning,
    any_of,
    odata_filter,
    odata_string,
    token_expiry,
)
from protiv_dagster.vendors.http import VendorAuthError, VendorRequestError, VendorUnavailableError
from protiv_emulators.aspire import AspireEmulator
from protiv_emulators.generator import generate_company

FAST = {"initial_backoff_seconds": 0.01, "max_wait_seconds": 2.0}


@pytest.fixture(scope="module")
def company():
    return generate_company("acme", seed=5, workers=20, days=14)


@pytest.fixture()
def hosted(company):
    with AspireEmulator() as emulator:
        client_id, secret = emulator.add_company(company)
        yield emulator, client_id, secret


def make_client(hosted, **options) -> AspireClient:
    emulator, client_id, secret = hosted
    return AspireClient(emulator.base_url, client_id, secret, **{**FAST, **options})


# -- filters -------------------------------------------------------------------------------------------
def test_filter_builder_quotes_and_formats_literals():
    assert odata_string("O'Brien") == "'O''Brien'"
    assert (
        odata_filter(("LastName", "eq", "O'Brien"), None, ("Active", "eq", True))
        == "LastName eq 'O''Brien' and Active eq true"
    )
    assert odata_filter(("WorkTicketTimeDate", "ge", date(2024, 6, 1))) == "WorkTicketTimeDate ge 2024-06-01T00:00:00"
    aware = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
    assert (
        odata_filter(("LastModifiedDateTime", "ge", aware), timezone="America/Chicago")
        == "LastModifiedDateTime ge 2024-06-01T07:00:00"
    )
    assert odata_filter(("Hours", "gt", 1.5), "A eq 1 or B eq 2") == "Hours gt 1.5 and (A eq 1 or B eq 2)"
    assert any_of("ContactID", [1, 2]) == "(ContactID eq 1 or ContactID eq 2)"
    assert odata_filter() is None
    with pytest.raises(ValueError):
        odata_filter(("Name; drop", "eq", 1))
    with pytest.raises(ValueError):
        odata_filter(("Name", "like", 1))


# -- authentication --------------------------------------------------------------------------------
def test_authenticates_lazily_and_reads(hosted, company):
    client = make_client(hosted)
    employees = client.employees()
    assert sorted(e["ContactID"] for e in employees) == sorted(w.id for w in company.workers)
    assert client.authentication_count == 1
    assert hosted[0].request_log[0].path == "/Authorization"


def test_wrong_secret_is_a_clear_error_naming_aspire_never_the_secret(hosted):
    emulator, client_id, _ = hosted
    secret = "s3cr3t-value-that-must-not-leak"
    client = AspireClient(emulator.base_url, client_id, secret, **FAST)
    with pytest.raises(VendorAuthError) as caught:
        client.branches()
    message = str(caught.value)
    assert message.startswith("Aspire:") and "reconnect" in message
    assert secret not in message and secret not in repr(client)


def test_expired_token_is_refreshed_through_the_refresh_token(hosted, company):
    emulator = hosted[0]
    client = make_client(hosted)
    client.branches()
    emulator.expire_token(company.company_id)
    assert client.branches()
    paths = [r.path for r in emulator.request_log]
    assert paths.count("/Authorization/RefreshToken") == 1 and paths.count("/Authorization") == 1
    assert [r.status for r in emulator.request_log if r.path == "/Branches"] == [200, 401, 200]


def test_dead_refresh_token_falls_back_to_the_client_credentials(hosted, company):
    emulator = hosted[0]
    client = make_client(hosted)
    client.branches()
    emulator.company(company.company_id).refresh_token = "revoked"
    emulator.expire_token(company.company_id)
    assert client.branches()
    assert client.authentication_count == 2
    assert [r.status for r in emulator.request_log if r.path == "/Authorization/RefreshToken"] == [401]


def test_secret_changed_after_connecting_is_an_auth_error(hosted, company):
    emulator = hosted[0]
    client = make_client(hosted)
    client.branches()
    emulator.company(company.company_id).secret = "rotated-by-admin"
    emulator.company(company.company_id).refresh_token = "revoked"
    emulator.expire_token(company.company_id)
    with pytest.raises(VendorAuthError, match="^Aspire:"):
        client.branches()


def test_a_kept_token_is_used_without_a_token_request_and_new_ones_are_handed_out(hosted, company):
    emulator = hosted[0]
    issued: list[AspireTokens] = []
    first = make_client(hosted, on_new_tokens=issued.append)
    first.branches()
    assert len(issued) == 1 and issued[0].token == emulator.company(company.company_id).token
    # The emulator's token is a JWT whose exp claim says 24 hours.
    assert abs((issued[0].expires_at - datetime.now(UTC)) - timedelta(hours=24)) < timedelta(minutes=1)
    assert issued[0].token not in repr(issued[0]) and issued[0].refresh_token not in repr(issued[0])

    before = len(emulator.request_log)
    second = make_client(hosted, tokens=issued[0], on_new_tokens=issued.append)
    assert second.branches()
    assert [r.path for r in emulator.request_log[before:]] == ["/Branches"]
    assert second.token_request_count == 0 and len(issued) == 1

    # Renewed after a 401 through the refresh token: the new pair is handed out too.
    emulator.expire_token(company.company_id)
    assert second.branches()
    assert second.token_request_count == 1 and len(issued) == 2
    assert issued[1].token == emulator.company(company.company_id).token != issued[0].token


def test_a_kept_token_near_its_expiry_is_replaced_before_use_in_one_request(hosted):
    emulator = hosted[0]
    issued: list[AspireTokens] = []
    make_client(hosted, on_new_tokens=issued.append).branches()
    nearly = AspireTokens(issued[0].token, issued[0].refresh_token, datetime.now(UTC) + timedelta(minutes=5))
    before = len(emulator.request_log)
    client = make_client(hosted, tokens=nearly, on_new_tokens=issued.append)
    assert client.branches()
    assert [(r.path, r.status) for r in emulator.request_log[before:]] == [("/Authorization", 200), ("/Branches", 200)]
    assert len(issued) == 2


def test_token_expiry_reads_the_jwt_claim_or_assumes_the_documented_lifetime():
    import base64
    import json

    def jwt(claims) -> str:
        body = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        return f"eyJhbGciOiJIUzI1NiJ9.{body}.c2lnbmF0dXJl"

    now = datetime(2026, 11, 27, 12, tzinfo=UTC)
    assert token_expiry(jwt({"exp": 1_800_000_000}), now) == datetime.fromtimestamp(1_800_000_000, UTC)
    assert token_expiry(jwt({"sub": "no exp"}), now) == now + ASSUMED_TOKEN_LIFETIME
    assert token_expiry("opaque-token", now) == now + ASSUMED_TOKEN_LIFETIME
    assert token_expiry("a.!!!.c", now) == now + ASSUMED_TOKEN_LIFETIME


# -- paging -------------------------------------------------------------------------------------------
def test_pages_send_page_number_limit_and_a_stable_order(hosted, company):
    client = make_client(hosted, page_size=50)
    times = client.work_ticket_times(first_day=company.first_local_date, last_day=company.last_local_date)
    assert sorted(t["WorkTicketTimeID"] for t in times) == sorted(s.id for s in company.shifts if not s.is_drive)
    pages = [r for r in hosted[0].request_log if r.path == "/WorkTicketTimes"]
    assert len(pages) == len(times) // 50 + 1
    assert all(
        p.query["$limit"] == "50" and p.query["$pageNumber"] and p.query["$orderby"] == "WorkTicketTimeID"
        for p in pages
    )


@pytest.mark.parametrize("keyset", [True, False])
def test_records_inserted_and_deleted_between_pages(hosted, company, keyset):
    emulator = hosted[0]
    client = make_client(hosted, page_size=40, keyset=keyset)
    first_day, last_day = company.first_local_date, company.last_local_date
    before = sorted(s.id for s in company.shifts if not s.is_drive)
    pages = client.pages(
        "WorkTicketTimes",
        "WorkTicketTimeID",
        filter=odata_filter(
            ("WorkTicketTimeDate", "ge", first_day), ("WorkTicketTimeDate", "lt", last_day + timedelta(days=1))
        ),
    )
    seen = [r["WorkTicketTimeID"] for r in next(pages)]
    # Between two page requests another user deletes two rows already read and adds one.
    for deleted in seen[:2]:
        assert requests.post(f"{emulator.control_url}/work_ticket_times/{deleted}/delete").status_code == 200
    template = emulator.company(company.company_id).records("WorkTicketTimes")[-1]
    added = requests.post(
        f"{emulator.control_url}/work_ticket_times",
        json={
            "ContactID": template["ContactID"],
            "WorkTicketID": template["WorkTicketID"],
            "StartTime": f"{last_day}T06:00:00",
            "EndTime": f"{last_day}T06:30:00",
        },
    ).json()
    for page in pages:
        seen += [r["WorkTicketTimeID"] for r in page]
    expected = before + [added["WorkTicketTimeID"]]
    if keyset:
        assert seen == expected  # nothing skipped, nothing twice
    else:
        assert len(set(seen)) < len(expected)  # plain page numbers shift past two records


def test_many_pages_and_a_short_last_page(hosted, company):
    client = make_client(hosted, page_size=7)
    contacts = client.employees()
    assert len(contacts) == len(company.workers)
    assert sum(r.path == "/Contacts" for r in hosted[0].request_log) == len(contacts) // 7 + 1


# -- incremental pulls ----------------------------------------------------------------------------------
def test_modified_since_returns_only_changed_rows(hosted, company):
    emulator = hosted[0]
    client = make_client(hosted, timezone=company.timezone)
    assert client.work_ticket_times(modified_since=datetime.now(UTC) - timedelta(minutes=1)) == []
    target = client.work_ticket_times(
        first_day=company.last_local_date - timedelta(days=5), last_day=company.last_local_date
    )[0]
    cutoff = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    requests.post(
        f"{emulator.control_url}/work_ticket_times/{target['WorkTicketTimeID']}/edit", json={"BreakTime": 0.25}
    )
    changed = client.work_ticket_times(modified_since=cutoff)
    assert [t["WorkTicketTimeID"] for t in changed] == [target["WorkTicketTimeID"]]
    assert changed[0]["BreakTime"] == 0.25
    query = [r for r in emulator.request_log if r.path == "/WorkTicketTimes"][-1].query["$filter"]
    assert query.startswith("LastModifiedDateTime ge ") and "+" not in query and "Z" not in query
    assert client.employees(modified_since=datetime.now(UTC) + timedelta(days=1)) == []
    assert len(client.opportunities(modified_since=company.created_at - timedelta(days=1))) == sum(
        not j.is_drive for j in company.jobs
    )
    opportunity = client.work_tickets()[0]["OpportunityID"]
    assert {t["OpportunityID"] for t in client.work_tickets(opportunity_ids=[opportunity])} == {opportunity}


def test_clock_times_by_local_date_range(hosted, company):
    client = make_client(hosted)
    # A day the crews clocked in (weekends may have none, so not a fixed offset from today).
    days = sorted({s.local_date for s in company.shifts if s.local_date < company.last_local_date})
    day = days[len(days) // 2]
    clocks = client.clock_times(first_day=day, last_day=day)
    assert clocks and all(c["ClockStart"].startswith(day.isoformat()) for c in clocks)


# -- transient failures ----------------------------------------------------------------------------
def test_429_with_and_without_retry_after_and_5xx_recover(hosted):
    emulator = hosted[0]
    client = make_client(hosted)
    client.branches()
    emulator.faults.rate_limit(times=2, retry_after=0)
    assert client.branches()
    emulator.faults.rate_limit(times=2, retry_after=None)
    assert client.branches()
    emulator.faults.server_error(times=2, status=503)
    emulator.faults.drop_connection(times=1)
    assert client.branches()
    assert client.retry_count == 7
    statuses = [r.status for r in emulator.request_log]
    assert statuses.count(429) == 4 and statuses.count(503) == 2


def test_429_honours_retry_after(hosted):
    emulator = hosted[0]
    client = make_client(hosted)
    client.branches()
    emulator.faults.rate_limit(times=1, retry_after=1)
    started = datetime.now()
    client.branches()
    assert (datetime.now() - started).total_seconds() >= 0.9


def test_persistent_outage_names_aspire(hosted):
    emulator = hosted[0]
    client = make_client(hosted, max_attempts=3)
    client.branches()
    emulator.faults.server_error(times=3, status=500)
    with pytest.raises(VendorUnavailableError, match="^Aspire: HTTP 500 on Branches"):
        client.branches()


def test_a_refused_query_surfaces_the_vendor_message(hosted):
    client = make_client(hosted)
    with pytest.raises(VendorRequestError, match="Nope"):
        client.list("Contacts", "ContactID", filter="Nope eq 1")


def test_resource_holds_only_tuning(hosted):
    emulator, client_id, secret = hosted
    resource = AspireTuning(page_size=10, max_attempts=2)
    assert "secret" not in " ".join(AspireTuning.model_fields)
    client = resource.client(emulator.base_url, client_id, secret, timezone="America/Denver")
    assert client.page_size == 10 and client.max_attempts == 2 and client.timezone == "America/Denver"
    assert client.branches()[0]["BranchID"] == 1
    with pytest.raises(ValueError):
        AspireClient(emulator.base_url, client_id, secret, page_size=1001)


# -- change detection ----------------------------------------------------------------------------------
def test_work_ticket_time_changes_lists_the_window_or_the_modified_rows_with_keyset_paging(hosted, company):
    emulator = hosted[0]
    tenant = emulator.company(company.company_id)
    rows = tenant.records("WorkTicketTimes")
    days = sorted({r["WorkTicketTimeDate"][:10] for r in rows})
    first, last = date.fromisoformat(days[3]), date.fromisoformat(days[8])
    in_window = {
        r["WorkTicketTimeID"] for r in rows if first.isoformat() <= r["WorkTicketTimeDate"][:10] <= last.isoformat()
    }
    outside = next(r for r in rows if r["WorkTicketTimeID"] not in in_window and r["StartTime"] and r["EndTime"])
    newest = max(r["LastModifiedDateTime"] for r in rows)
    tenant.edit_work_ticket_time(outside["WorkTicketTimeID"], BreakTime=0.0)

    client = make_client(hosted, page_size=20)
    found = client.work_ticket_time_changes(days=[(first, last)], modified_after=datetime.fromisoformat(newest))
    assert {r["WorkTicketTimeID"] for r in found} == in_window | {outside["WorkTicketTimeID"]}
    assert set(found[0]) == {"WorkTicketTimeID", "WorkTicketTimeDate", "LastModifiedDateTime"}
    assert client.request_count == 1 + len(found) // 20 + 1  # token + pages until a short one

    # Two date ranges in one listing (the open weeks and a slice of older days), nothing modified.
    older = date.fromisoformat(days[0])
    both = client.work_ticket_time_changes(days=[(older, older), (first, last)], modified_after=None)
    on_older = {r["WorkTicketTimeID"] for r in rows if r["WorkTicketTimeDate"][:10] == days[0]}
    assert {r["WorkTicketTimeID"] for r in both} == in_window | on_older
    with pytest.raises(ValueError, match="ends before it starts"):
        client.work_ticket_time_changes(days=[(last, first)], modified_after=None)


def test_latest_modification_is_one_request(hosted, company):
    emulator = hosted[0]
    client = make_client(hosted)
    newest = max(r["LastModifiedDateTime"] for r in emulator.company(company.company_id).records("WorkTicketTimes"))
    assert client.latest_modification("WorkTicketTimes", "WorkTicketTimeID", "LastModifiedDateTime") == newest
    assert client.request_count == 2  # token + the query
    query = emulator.request_log[-1].query
    assert query["$limit"] == "1" and query["$orderby"].startswith("LastModifiedDateTime desc")
