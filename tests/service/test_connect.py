"""Connecting through the service: credentials verified with the vendor before anything is stored,
QuickBooks Time through the whole OAuth redirect, the field named on bad input, and an outage that
answers the failed status instead of a 500."""

from __future__ import annotations

import json
from datetime import date, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import sqlalchemy as sa

from protiv_dagster.integrations.audit import AuditLog
from tests.assets.vendors import leaked
from tests.service.conftest import Api

pytestmark = pytest.mark.slow


def registry_rows(api: Api) -> list[dict]:
    with api.registry.engine.connect() as conn:
        return [dict(row) for row in conn.execute(sa.select(api.registry.table)).mappings()]


def audit_of(api: Api, company_id: str) -> list[tuple[str, str, str, str]]:
    return [(e.actor, e.role, e.action, e.outcome) for e in reversed(AuditLog(api.registry.url).entries(company_id))]


@pytest.mark.parametrize("provider", ["busybusy", "aspire"])
def test_a_company_connects_with_its_credentials_and_is_pending(api: Api, provider):
    company = f"{provider}-connects"
    answer = api.connect(company, provider, attendance_pull_date=(date.today() - timedelta(days=14)).isoformat())
    assert answer.status_code == 201, answer.text
    status = answer.json()
    assert (status["company_id"], status["provider"], status["status"]) == (company, provider, "pending")
    assert status["next_refresh_at"] is not None and status["action"] is None
    stored = api.registry.get(company)
    assert stored.credentials() == api.vendors[provider].credentials | stored.credentials()  # admin's fields kept
    assert all("fernet" in value for value in stored.stored_credentials.values())
    assert audit_of(api, company) == [("alice", "admin", "connect", "done")]
    assert api.call("GET", f"/companies/{company}/integration", api.as_admin(company)).json()["status"] == "pending"
    # The app hears of it: a webhook, signed.
    api.receiver.wait_for(lambda e: e["type"] == "company.status_changed" and e["data"]["company_id"] == company)


@pytest.mark.parametrize("provider", ["busybusy", "aspire"])
def test_wrong_credentials_answer_the_vendors_reason_and_are_stored_nowhere(api: Api, provider):
    company = f"{provider}-wrong"
    harness = api.vendors[provider]
    wrong = harness.wrong_credentials()
    before = registry_rows(api)
    logged = len(api.logs.lines)
    answer = api.call(
        "PUT",
        f"/companies/{company}/integration",
        api.as_admin(company),
        json={
            "provider": provider,
            "base_url": harness.base_url,
            "credentials": wrong,
            "settings": {"timezone": "America/Denver"},
        },
    )
    assert answer.status_code == 422, answer.text
    [problem] = answer.json()["detail"]
    assert problem["field"] == "credentials" and "refused the credentials" in problem["message"]
    assert harness.label in problem["message"] and "401" in problem["message"]
    assert registry_rows(api) == before
    assert api.call("GET", f"/companies/{company}/integration", api.as_admin(company)).status_code == 404
    secrets = [value for value in wrong.values() if value != harness.credentials.get("username")]
    # Tokens the emulator has not issued yet are empty: nothing to look for.
    secrets = [secret for secret in [*secrets, *harness.secrets()] if secret]
    assert not leaked(secrets, answer.text)
    assert not leaked(secrets, "\n".join(api.logs.lines[logged:]))
    assert not leaked(secrets, json.dumps([e.__dict__ for e in AuditLog(api.registry.url).entries()], default=str))
    assert audit_of(api, company) == [("alice", "admin", "connect", "refused")]


def test_bad_input_answers_4xx_naming_the_field(api: Api):
    company = "bad-input"
    headers = api.as_admin(company)
    harness = api.vendors["busybusy"]
    put = lambda body: api.call("PUT", f"/companies/{company}/integration", headers, json=body)  # noqa: E731
    unknown = put({"provider": "gusto", "credentials": {}})
    assert unknown.status_code == 404 and unknown.json()["detail"][0]["field"] == "provider"
    future = (date.today() + timedelta(days=3)).isoformat()
    fields = {
        "future pull date": ({"attendance_pull_date": future}, "attendance_pull_date"),
        "not a date": ({"attendance_pull_date": "2026-02-30"}, "attendance_pull_date"),
        "missing password": ({"credentials": {"username": harness.credentials["username"]}}, "credentials.password"),
        "password with a newline": (
            {"credentials": {**harness.credentials, "password": "x\ny"}},
            "credentials.password",
        ),
        "unknown credential": ({"credentials": {**harness.credentials, "token": "t"}}, "credentials.token"),
        "url with a password": ({"base_url": "http://u:p@127.0.0.1:9/"}, "base_url"),
        "no provider": ({"provider": None}, "provider"),
        "no time zone for BusyBusy": ({"settings": None}, "settings.timezone"),
    }
    for what, (change, field) in fields.items():
        body = {
            "provider": "busybusy",
            "base_url": harness.base_url,
            "credentials": harness.credentials,
            "settings": {"timezone": "America/Denver"},
            **change,
        }
        body = {k: v for k, v in body.items() if v is not None}
        answer = put(body)
        assert answer.status_code == 422, (what, answer.text)
        assert field in [p["field"] for p in answer.json()["detail"]], (what, answer.json())
        assert "x\ny" not in answer.text and "u:p@" not in answer.text
    assert put({"provider": "quickbooks_time"}).json()["detail"][0]["field"] == "provider"  # OAuth, not PUT
    assert api.call("GET", f"/companies/{company}/integration", headers).status_code == 404


def test_a_vendor_outage_answers_the_failed_status_never_a_500_and_stores_nothing(api: Api):
    company = "vendor-down"
    closed = api.connect(company, "aspire", base_url="http://127.0.0.1:9")
    assert closed.status_code == 502, closed.text
    assert closed.json()["status"]["status"] == "failed" and closed.json()["status"]["action"] == "vendor_down"
    assert "the vendor is down" in closed.json()["status"]["action_message"]
    aspire = api.vendors["aspire"].emulator
    aspire.faults.server_error(times=50, status=503)
    try:
        answer = api.connect(company, "aspire")
    finally:
        aspire.faults.clear()
    assert answer.status_code == 502, answer.text
    status = answer.json()["status"]
    assert (status["status"], status["action"]) == ("failed", "vendor_down") and "503" in status["reason"]
    assert api.call("GET", f"/companies/{company}/integration", api.as_admin(company)).status_code == 404
    assert [outcome for *_, outcome in audit_of(api, company)] == ["failed", "failed"]


def test_quickbooks_time_connects_through_the_whole_oauth_redirect(api: Api):
    qbt = api.vendors["quickbooks_time"]
    if not hasattr(qbt.emulator, "register_oauth_client"):
        pytest.skip("the QuickBooks Time emulator has no authorization code flow yet")
    company = "qbt-oauth"
    pull_date = (date.today() - timedelta(days=10)).isoformat()
    start = api.call(
        "GET",
        f"/integrations/quickbooks_time/authorize?company_id={company}&attendance_pull_date={pull_date}",
        api.as_admin(company, "bob"),
        allow_redirects=False,
    )
    assert start.status_code == 302, start.text
    authorize = urlsplit(start.headers["Location"])
    query = parse_qs(authorize.query)
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == qbt.base_url + "/authorize"
    assert query["response_type"] == ["code"] and query["redirect_uri"] == [f"{api.url}/oauth/quickbooks_time/callback"]
    state = query["state"][0]
    # The admin approves at the vendor (the emulator's test shortcut), which sends the browser back.
    approved = requests.get(start.headers["Location"] + "&approve=yes", allow_redirects=False, timeout=30)
    assert approved.status_code == 302, approved.text
    callback = approved.headers["Location"]
    assert callback.startswith(f"{api.url}/oauth/quickbooks_time/callback?")
    done = requests.get(callback, timeout=60)
    assert done.status_code == 200, done.text
    assert done.json()["outcome"] == "connected" and done.json()["status"]["status"] == "pending"
    connection = api.registry.get(company)
    assert connection.provider == "quickbooks_time" and connection.attendance_pull_date.isoformat() == pull_date
    credentials = connection.credentials()
    assert set(credentials) == {"access_token", "refresh_token", "client_id", "client_secret"}
    assert all("fernet" in value for value in connection.stored_credentials.values())
    assert not leaked([credentials["access_token"], credentials["refresh_token"]], done.text)
    assert ("bob", "admin", "connect", "done") in audit_of(api, company)
    assert ("bob", "admin", "oauth_start", "done") in audit_of(api, company)
    # The state works once.
    again = requests.get(callback, timeout=30)
    assert again.status_code == 400 and again.json()["detail"][0]["field"] == "state"
    assert len(state) >= 40


def approved_callback(api: Api, company: str, subject: str, approve: str = "yes") -> str:
    """The callback URL the vendor sends the admin's browser to, after the admin of ``company``
    started the authorization and answered at the vendor (the emulator's shortcut)."""
    start = api.call(
        "GET",
        f"/integrations/quickbooks_time/authorize?company_id={company}",
        api.as_admin(company, subject),
        allow_redirects=False,
    )
    assert start.status_code == 302, start.text
    answered = requests.get(f"{start.headers['Location']}&approve={approve}", allow_redirects=False, timeout=30)
    assert answered.status_code == 302, answered.text
    assert answered.headers["Location"].startswith(f"{api.url}/oauth/quickbooks_time/callback?")
    return answered.headers["Location"]


BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


def test_the_oauth_callback_sends_a_browser_to_the_page_with_the_outcome_and_an_api_client_json(api: Api):
    if not hasattr(api.vendors["quickbooks_time"].emulator, "register_oauth_client"):
        pytest.skip("the QuickBooks Time emulator has no authorization code flow yet")
    assert api.service.settings.oauth_return_url is None  # no app page configured: the service's own

    def to_page(answer: requests.Response) -> dict[str, str]:
        assert answer.status_code == 303, answer.text
        location = urlsplit(answer.headers["Location"])
        assert (location.scheme, location.netloc, location.path) == ("", "", "/page/")
        assert answer.headers["Cache-Control"] == "no-store" and "Accept" in answer.headers["Vary"]
        query = parse_qs(location.query, keep_blank_values=True)
        assert set(query) == {"company_id", "outcome", "reason"}, query
        return {name: values[0] for name, values in query.items()}

    # A browser (its navigation's Accept) that approved: to the page, connected; nothing secret in the URL.
    company = "qbt-oauth-browser"
    callback = approved_callback(api, company, "cleo")
    done = requests.get(callback, headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False, timeout=60)
    back = to_page(done)
    assert (back["company_id"], back["outcome"]) == (company, "connected") and back["reason"]
    assert api.registry.get(company).provider == "quickbooks_time"
    code = parse_qs(urlsplit(callback).query)["code"][0]
    assert code not in done.headers["Location"] and code not in done.text
    # Followed, the page itself is served (the outcome is read by its script).
    page = requests.get(callback.split("/oauth/")[0] + done.headers["Location"], timeout=30)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    # The state used again, from a browser: the page says why, not raw JSON.
    again = to_page(requests.get(callback, headers={"Accept": BROWSER_ACCEPT}, allow_redirects=False, timeout=30))
    assert (again["company_id"], again["outcome"]) == ("", "failed") and again["reason"].startswith("state: ")

    # A browser whose admin denied: to the page, failed, with the reason.
    denied = "qbt-oauth-browser-denied"
    refused = requests.get(
        approved_callback(api, denied, "cleo", approve="no"),
        headers={"Accept": "text/html"},
        allow_redirects=False,
        timeout=60,
    )
    back = to_page(refused)
    assert (back["company_id"], back["outcome"]) == (denied, "failed") and "did not approve" in back["reason"]

    # An API client (JSON, or no Accept at all) still gets the outcome as JSON.
    for accept, company in (("application/json", "qbt-oauth-json"), (None, "qbt-oauth-no-accept")):
        answer = requests.get(
            approved_callback(api, company, "cleo"), headers={"Accept": accept}, allow_redirects=False, timeout=60
        )
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json", (accept, answer.text)
        assert answer.json()["outcome"] == "connected" and answer.json()["company_id"] == company
        assert answer.json()["status"]["status"] == "pending"
        assert "Accept" in answer.headers["Vary"]
