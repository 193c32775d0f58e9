"""The QuickBooks Time emulator's OAuth 2.0 authorization code flow over real sockets: the consent page,
the form posted back, the redirect with the code, the code exchanged at /grant, and every refusal."""

from __future__ import annotations

import html
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from protiv_emulators.generator import CompanyData, generate_company
from protiv_emulators.quickbooks_time import OAuthClient, QuickBooksTimeEmulator

AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)
CLIENT_ID = "protiv-app"
SECRET = "app-secret-for-tests"
REDIRECT = "http://127.0.0.1:9/oauth/callback"
OTHER_REDIRECT = "http://localhost:9/other/callback"
TRICKY_STATE = "a b&c=d/e?f#g%h+i<script>\"'é"


@pytest.fixture(scope="module")
def first() -> CompanyData:
    return generate_company("oauth-first", seed=1, workers=6, days=7, as_of=AS_OF, timezone="America/Denver")


@pytest.fixture(scope="module")
def second() -> CompanyData:
    return generate_company("oauth-second", seed=2, workers=6, days=7, as_of=AS_OF, timezone="America/Chicago")


@pytest.fixture
def emulator(first: CompanyData) -> Iterator[QuickBooksTimeEmulator]:
    client = OAuthClient(CLIENT_ID, SECRET, (REDIRECT, OTHER_REDIRECT), name="Protiv <Payroll> & Co")
    with QuickBooksTimeEmulator(oauth_clients=[client]) as running:
        running.add_company(first, access_token="first-pair-token", client_secret="first-pair-secret")
        yield running


class Form(HTMLParser):
    """The consent page's form as a browser sees it: action, method, fields, select options, buttons."""

    def __init__(self, page: str):
        super().__init__()
        self.action, self.method = "", ""
        self.fields: dict[str, str] = {}
        self.options: list[tuple[str, bool]] = []  # (value, selected) of the select
        self.select_name = ""
        self.buttons: dict[str, tuple[str, str]] = {}  # label -> (name, value)
        self.scripts_or_links: list[str] = []
        self._button: dict[str, str] | None = None
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        if tag == "form":
            self.action, self.method = a["action"], a["method"].upper()
        elif tag == "input" and a.get("type") == "hidden":
            self.fields[a["name"]] = a["value"]
        elif tag == "select":
            self.select_name = a["name"]
        elif tag == "option":
            self.options.append((a["value"], "selected" in a))
        elif tag == "button":
            self._button = a
        elif tag in ("script", "link", "img", "iframe") or "src" in a:
            self.scripts_or_links.append(tag)

    def handle_data(self, data: str) -> None:
        if self._button is not None and data.strip():
            self.buttons[data.strip()] = (self._button["name"], self._button["value"])
            self._button = None

    def submit(self, page_url: str, button: str, **choices: str) -> requests.Response:
        """Post the form as a browser does when ``button`` is clicked; a select takes its selected option."""
        data = dict(self.fields)
        if self.select_name:
            selected = [value for value, chosen in self.options if chosen] or [self.options[0][0]]
            data[self.select_name] = selected[0]
        data.update(choices)
        name, value = self.buttons[button]
        data[name] = value
        assert self.method == "POST"
        return requests.post(urljoin(page_url, self.action), data=data, allow_redirects=False, timeout=10)


def authorize(emulator: QuickBooksTimeEmulator, **params: Any) -> requests.Response:
    query = {"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, **params}
    return requests.get(f"{emulator.base_url}/authorize", params=query, allow_redirects=False, timeout=10)


def sent_back(response: requests.Response, to: str = REDIRECT) -> dict[str, str]:
    """The query of the redirect back to the app (and that it is one, to ``to``)."""
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.split("?")[0] == to
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query, keep_blank_values=True).items()}


def code_for(emulator: QuickBooksTimeEmulator, **params: Any) -> str:
    return sent_back(authorize(emulator, approve="yes", **params))["code"]


def exchange(emulator: QuickBooksTimeEmulator, code: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "code": code,
        "redirect_uri": REDIRECT,
        **overrides,
    }
    return requests.post(f"{emulator.base_url}/grant", data=form, timeout=10)


def api_get(emulator: QuickBooksTimeEmulator, token: str, endpoint: str) -> requests.Response:
    return requests.get(f"{emulator.base_url}/{endpoint}", headers={"Authorization": f"Bearer {token}"}, timeout=10)


def refused(response: requests.Response, status: int, error: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "error_description"} and body["error"] == error
    return body["error_description"]


# -- the whole flow ----------------------------------------------------------------------------------
def test_the_browser_flow_from_consent_page_to_refreshed_tokens(emulator, first):
    page = authorize(emulator, state=TRICKY_STATE)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "Location" not in page.headers
    form = Form(page.text)
    assert form.scripts_or_links == [] and "<script>" not in page.text, "no script, nothing external"
    assert set(form.buttons) == {"Approve", "Deny"}
    assert "Protiv &lt;Payroll&gt; &amp; Co" in page.text and html.escape(first.name) in page.text
    assert form.fields["state"] == TRICKY_STATE and form.fields["company_id"] == first.company_id
    assert form.select_name == "", "one company: named, not chosen"

    back = sent_back(form.submit(page.url, "Approve"))
    assert back["state"] == TRICKY_STATE and set(back) == {"code", "state"}

    granted = exchange(emulator, back["code"])
    assert granted.status_code == 200, granted.text
    assert granted.headers["Cache-Control"] == "no-store"
    tokens = granted.json()
    company = emulator.company(first.company_id)
    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 864_000 and tokens["scope"] == ""
    assert tokens["user_id"] == str(company.owner_user_id) and tokens["company_id"] == company.vendor_company_id
    assert {"access_token", "refresh_token", "client_url"} <= set(tokens)

    users = api_get(emulator, tokens["access_token"], "users")
    assert users.status_code == 200
    assert {int(i) for i in users.json()["results"]["users"]} == {u["id"] for u in company.users(False)}
    assert api_get(emulator, "first-pair-token", "current_user").status_code == 200, "the first pair still works"

    refresh = {"grant_type": "refresh_token", "client_id": CLIENT_ID, "refresh_token": tokens["refresh_token"]}
    wrong = requests.post(f"{emulator.base_url}/grant", data={**refresh, "client_secret": "nope"}, timeout=10)
    refused(wrong, 401, "invalid_grant")
    renewed = requests.post(f"{emulator.base_url}/grant", data={**refresh, "client_secret": SECRET}, timeout=10)
    assert renewed.status_code == 200, renewed.text
    new = renewed.json()
    assert new["access_token"] != tokens["access_token"] and new["refresh_token"] != tokens["refresh_token"]
    assert api_get(emulator, tokens["access_token"], "users").status_code == 401, "the old token is gone"
    assert api_get(emulator, new["access_token"], "current_user").status_code == 200
    again = requests.post(f"{emulator.base_url}/grant", data={**refresh, "client_secret": SECRET}, timeout=10)
    refused(again, 401, "invalid_grant")

    logged = repr(emulator.request_log)
    for secret in (SECRET, back["code"], tokens["access_token"], tokens["refresh_token"], new["access_token"]):
        assert secret not in logged


def test_with_several_companies_the_approver_picks_one(emulator, first, second):
    second_token = emulator.add_company(second)
    page = authorize(emulator, state="s1")
    form = Form(page.text)
    assert form.select_name == "company_id"
    assert [value for value, _ in form.options] == [first.company_id, second.company_id]
    back = sent_back(form.submit(page.url, "Approve", company_id=second.company_id))
    tokens = exchange(emulator, back["code"]).json()
    company = emulator.company(second.company_id)
    assert tokens["company_id"] == company.vendor_company_id
    owner = api_get(emulator, tokens["access_token"], "current_user").json()["results"]["users"]
    assert list(owner) == [str(company.owner_user_id)]
    assert emulator.company(tokens["access_token"]) is emulator.company(second_token)

    preselected = Form(authorize(emulator, company_id=second.company_id).text)
    assert (second.company_id, True) in preselected.options
    assert authorize(emulator, approve="yes").status_code == 400, "approve=yes must name the company"
    chosen = code_for(emulator, company_id=first.company_id)
    assert exchange(emulator, chosen).json()["company_id"] == emulator.company(first.company_id).vendor_company_id


def test_approve_yes_is_the_api_tests_shortcut(emulator, first):
    back = sent_back(authorize(emulator, approve="yes", state="xyz"))
    assert back["state"] == "xyz"
    assert exchange(emulator, back["code"]).status_code == 200
    no_state = sent_back(authorize(emulator, approve="yes"))
    assert set(no_state) == {"code"}, "no state asked, none sent back"


def test_a_redirect_uri_keeps_its_own_query(emulator):
    own_query = "http://127.0.0.1:9/cb?tenant=acme"
    emulator.register_oauth_client("with-query", [own_query], client_secret="s")
    response = requests.get(
        emulator.authorize_url("with-query", own_query, state="t", approve="yes"), allow_redirects=False, timeout=10
    )
    assert response.headers["Location"].startswith(own_query + "&code=")
    back = parse_qs(urlsplit(response.headers["Location"]).query)
    assert back["tenant"] == ["acme"] and back["state"] == ["t"]


# -- denial and refusals at /authorize -----------------------------------------------------------------
def test_deny_sends_access_denied_back_with_the_state(emulator):
    page = authorize(emulator, state=TRICKY_STATE)
    assert sent_back(Form(page.text).submit(page.url, "Deny")) == {"error": "access_denied", "state": TRICKY_STATE}
    assert sent_back(authorize(emulator, approve="no", state="q")) == {"error": "access_denied", "state": "q"}


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "nobody"},
        {"client_id": ""},
        {"redirect_uri": "http://127.0.0.1:9/evil"},
        {"redirect_uri": REDIRECT + "/"},
        {"redirect_uri": ""},
        {"client_id": "nobody", "response_type": "token"},
    ],
)
def test_an_unknown_client_or_redirect_uri_gets_a_page_never_a_redirect(emulator, params):
    for response in (
        authorize(emulator, state="s", **params),
        authorize(emulator, state="s", approve="yes", **params),
        requests.post(
            f"{emulator.base_url}/authorize",
            data={"response_type": "code", "client_id": CLIENT_ID, "redirect_uri": REDIRECT, "state": "s"}
            | params
            | {"decision": "approve", "company_id": "oauth-first"},
            allow_redirects=False,
            timeout=10,
        ),
    ):
        assert response.status_code == 400 and "Location" not in response.headers
        assert response.headers["Content-Type"].startswith("text/html")
        assert "cannot be connected" in response.text


def test_the_error_page_escapes_what_it_echoes(emulator):
    response = authorize(emulator, client_id="<img src=x onerror=alert(1)>")
    assert response.status_code == 400 and "<img" not in response.text and "&lt;img" in response.text


def test_an_unsupported_response_type_is_sent_back(emulator):
    back = sent_back(authorize(emulator, response_type="token", state="r"))
    assert back == {"error": "unsupported_response_type", "state": "r"}
    assert sent_back(authorize(emulator, response_type="", state="r")) == {"error": "invalid_request", "state": "r"}


# -- refusals at /grant --------------------------------------------------------------------------------
def test_a_code_works_once(emulator):
    code = code_for(emulator)
    assert exchange(emulator, code).status_code == 200
    assert "used" in refused(exchange(emulator, code), 400, "invalid_grant")
    refused(exchange(emulator, "never-issued"), 400, "invalid_grant")


def test_a_wrong_secret_or_unknown_client_is_invalid_client(emulator):
    code = code_for(emulator)
    for overrides in ({"client_secret": "wrong"}, {"client_id": "nobody"}, {"client_secret": SECRET + "é"}):
        description = refused(exchange(emulator, code, **overrides), 401, "invalid_client")
        assert code not in description and SECRET not in description
    assert exchange(emulator, code).status_code == 200, "a refused exchange does not use the code up"


def test_the_redirect_uri_must_be_the_authorization_requests(emulator):
    code = code_for(emulator)
    assert "redirect_uri" in refused(exchange(emulator, code, redirect_uri=OTHER_REDIRECT), 400, "invalid_grant")
    refused(exchange(emulator, code, redirect_uri=""), 400, "invalid_request")
    assert exchange(emulator, code).status_code == 200


def test_a_code_issued_to_another_client_is_refused(emulator):
    other = emulator.register_oauth_client("other-app", [REDIRECT])
    code = code_for(emulator)
    stolen = exchange(emulator, code, client_id=other.client_id, client_secret=other.client_secret)
    assert "another client" in refused(stolen, 400, "invalid_grant")


def test_an_expired_code_is_refused(emulator):
    emulator.authorization_code_lifetime_seconds = 0.05
    code = code_for(emulator)
    time.sleep(0.1)
    assert "expired" in refused(exchange(emulator, code), 400, "invalid_grant")


def test_faults_apply_to_the_grant_and_the_code_survives_them(emulator):
    code = code_for(emulator)
    emulator.faults.server_error(status=503)
    assert exchange(emulator, code).status_code == 503
    tokens = exchange(emulator, code).json()
    emulator.expire_token("oauth-first")
    assert api_get(emulator, tokens["access_token"], "users").status_code == 401, "the company's tokens all expire"


def test_without_any_registered_client_the_code_grant_stays_unsupported(first):
    with QuickBooksTimeEmulator() as bare:
        bare.add_company(first)
        form = {"grant_type": "authorization_code", "client_id": "x", "client_secret": "y", "code": "z"}
        response = requests.post(f"{bare.base_url}/grant", data=form | {"redirect_uri": REDIRECT}, timeout=10)
        refused(response, 400, "unsupported_grant_type")
        assert authorize(bare).status_code == 400, "no client: a page, no redirect"


# -- registering clients -------------------------------------------------------------------------------
def test_a_client_is_registered_over_the_control_api(emulator):
    answer = requests.post(
        f"{emulator.control_url}/oauth_clients",
        json={"client_id": "from-http", "redirect_uris": ["http://127.0.0.1:9/cb"], "name": "Daemon"},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    registered = answer.json()
    assert registered["redirect_uris"] == ["http://127.0.0.1:9/cb"] and registered["client_secret"]
    assert emulator.oauth_client("from-http").client_secret == registered["client_secret"]
    bad = requests.post(
        f"{emulator.control_url}/oauth_clients", json={"client_id": "x", "redirect_uris": ["/relative"]}, timeout=10
    )
    assert bad.status_code == 400


@pytest.mark.parametrize("uris", [[], ["/cb"], ["ftp://h/cb"], ["http://h/cb#frag"]])
def test_bad_redirect_uris_are_refused(emulator, uris):
    with pytest.raises(ValueError):
        emulator.register_oauth_client("bad", uris)
