"""The integration page's cookie session, at the HTTP level: the page is served with its security
headers and nothing from the network; a login with the app's token opens an HttpOnly, SameSite=Strict
session; a cookie-authenticated unsafe call without the session's CSRF token, with a wrong one or
from another site is 403 and changes nothing, with it it works; bearer calls are as before (the
cookie is not looked at when an Authorization header is sent)."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import requests

from protiv_dagster.integrations.audit import AuditLog
from protiv_dagster.service.page import CSRF_HEADER, PAGE_FILES, SESSION_COOKIE
from tests.service.conftest import Api

COMPANY = "page-csrf"


def log_in(api: Api, company_id: str = COMPANY, **headers: str) -> tuple[str, str]:
    answer = api.call("POST", "/session", headers, json={"token": api.token("admin", company_id, "pat")})
    assert answer.status_code == 201, answer.text
    return answer.cookies[SESSION_COOKIE], answer.json()["csrf_token"]


def test_the_page_is_served_with_its_security_headers_and_loads_nothing_from_the_network(api: Api):
    assert api.call("GET", "/", allow_redirects=False).headers["Location"] == "/page/"
    for name in PAGE_FILES:
        answer = api.call("GET", f"/page/{'' if name == 'index.html' else name}")
        assert answer.status_code == 200 and answer.headers["Content-Type"].startswith(PAGE_FILES[name])
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in policy and "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert answer.headers["X-Frame-Options"] == "DENY" and answer.headers["Referrer-Policy"] == "no-referrer"
        text = resources.files("protiv_dagster.service").joinpath("page", name).read_text()
        assert answer.text == text and not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I), name
    page = api.call("GET", "/page/").text
    assert re.findall(r"<script[^>]*>", page) == ['<script src="/page/app.js" defer>']  # no inline script
    assert api.call("GET", "/page/secrets.txt").status_code == 404


def test_a_login_opens_an_httponly_strict_session_and_refuses_bad_tokens_and_other_sites(api: Api):
    answer = api.call("POST", "/session", json={"token": api.token("admin", COMPANY, "pat")})
    assert answer.status_code == 201
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    assert "Path=/" in cookie and "Secure" not in cookie  # plain http on loopback
    body = answer.json()
    assert (body["subject"], body["role"], body["company_id"]) == ("pat", "admin", COMPANY) and body["csrf_token"]
    assert api.token("admin", COMPANY, "pat") not in answer.text

    assert api.call("POST", "/session", json={"token": "garbage"}).status_code == 401
    expired = api.token("admin", COMPANY, issued_at=0)
    assert api.call("POST", "/session", json={"token": expired}).status_code == 401
    viewer = api.token("viewer", COMPANY)
    assert api.call("POST", "/session", json={"token": viewer}).status_code == 403
    token = api.token("admin", COMPANY)
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}):
        refused = api.call("POST", "/session", headers, json={"token": token})
        assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies

    session = api.call("GET", "/session", cookies={SESSION_COOKIE: answer.cookies[SESSION_COOKIE]})
    assert session.status_code == 200 and session.json()["csrf_token"] == body["csrf_token"]
    assert api.call("GET", "/session", cookies={SESSION_COOKIE: "forged"}).status_code == 401


@pytest.mark.slow
def test_a_cookie_call_needs_the_csrf_token_from_the_same_site_and_bearer_calls_are_unaffected(api: Api):
    session, csrf = log_in(api)
    cookies = {SESSION_COOKIE: session}
    harness = api.vendors["busybusy"]
    payload = {
        "provider": "busybusy",
        "base_url": harness.base_url,
        "credentials": harness.credentials,
        "settings": {"timezone": "America/Denver"},
    }
    path = f"/companies/{COMPANY}/integration"
    # Reads need no CSRF token; the company scope holds for the session as for the token.
    assert api.call("GET", "/integrations", cookies=cookies).status_code == 200
    assert api.call("GET", path, cookies=cookies).status_code == 404
    assert api.call("GET", "/companies/another/integration", cookies=cookies).status_code == 403
    assert api.call("GET", "/companies/another/propays", cookies=cookies).status_code == 403

    refusals = [
        {},
        {CSRF_HEADER: "wrong"},
        {CSRF_HEADER: csrf, "Origin": "https://evil.example"},
        {CSRF_HEADER: csrf, "Sec-Fetch-Site": "cross-site"},
        {CSRF_HEADER: csrf, "Sec-Fetch-Site": "same-site"},
    ]
    for headers in refusals:
        answer = api.call("PUT", path, headers, cookies=cookies, json=payload)
        assert answer.status_code == 403, (headers, answer.text)
        assert api.call("POST", f"{path[: -len('/integration')]}/syncs", headers, cookies=cookies).status_code == 403
    assert COMPANY not in {c.company_id for c in api.registry.list()}
    assert AuditLog(api.registry.url).entries(COMPANY) == []
    # The OAuth redirect from the page carries the token in its query.
    authorize = f"/integrations/quickbooks_time/authorize?company_id={COMPANY}"
    assert api.call("GET", authorize, cookies=cookies, allow_redirects=False).status_code == 403
    assert api.call("GET", f"{authorize}&csrf_token={csrf}", cookies=cookies, allow_redirects=False).status_code == 302

    same_site = {CSRF_HEADER: csrf, "Origin": api.url, "Sec-Fetch-Site": "same-origin"}
    connected = api.call("PUT", path, same_site, cookies=cookies, json=payload)
    assert connected.status_code == 201, connected.text
    assert AuditLog(api.registry.url).entries(COMPANY)[0].actor == "pat"

    # An Authorization header is verified as ever: the cookie neither helps a bad token nor
    # changes who a good one is.
    assert api.call("GET", path, {"Authorization": "Bearer garbage"}, cookies=cookies).status_code == 401
    other = api.as_admin("page-csrf-other")
    assert api.call("GET", path, other, cookies=cookies).status_code == 403
    assert api.call("GET", path, api.as_admin(COMPANY)).status_code == 200

    # Logout needs the token too, and ends the session.
    assert api.call("DELETE", "/session", cookies=cookies).status_code == 403
    assert api.call("DELETE", "/session", {CSRF_HEADER: csrf}, cookies=cookies).status_code == 204
    assert api.call("GET", path, cookies=cookies).status_code == 401


def test_behind_a_tls_proxy_the_public_origin_is_the_pages_and_the_cookie_is_secure(api: Api):
    """A proxy ends TLS and forwards to the service over http under its own Host: the browser's
    Origin is then PROTIV_SERVICE_PUBLIC_URL's, never the URL the service was asked on."""
    import socket
    import threading
    import time

    import uvicorn

    from protiv_dagster.integrations.auth import AuthSettings, TokenVerifier
    from protiv_dagster.integrations.service import IntegrationService, ServiceSettings
    from protiv_dagster.service.app import create_app

    public = "https://integrations.example.com"
    behind = IntegrationService(api.service.defs, None, registry_url=api.registry.url, settings=ServiceSettings(public))
    verifier = TokenVerifier(AuthSettings(api.keys.jwks_path, "protiv-app", "protiv-integrations", 900))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # log_config=None: uvicorn's default reconfigures logging with dictConfig, which closes every
    # handler of the process under logging's module lock; a Dagster run of the other service's sync
    # thread, inside its handler's lock and asking for the module lock, deadlocked with it (CI hung).
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(behind, verifier, manage_lifecycle=False), host="127.0.0.1", port=port, log_config=None
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not server.started:
            assert time.monotonic() < deadline and thread.is_alive(), "the service did not start"
            time.sleep(0.05)
        proxied = {"Host": "protiv-integrations.internal", "Sec-Fetch-Site": "same-origin"}
        token = {"token": api.token("admin", COMPANY, "pat")}
        url = f"http://127.0.0.1:{port}/session"
        answer = requests.post(url, headers={**proxied, "Origin": public}, json=token, timeout=30)
        assert answer.status_code == 201, answer.text
        assert "Secure" in answer.headers["Set-Cookie"] and "HttpOnly" in answer.headers["Set-Cookie"]
        for origin in ("https://evil.example", "http://integrations.example.com"):
            refused = requests.post(url, headers={**proxied, "Origin": origin}, json=token, timeout=30)
            assert refused.status_code == 403 and SESSION_COOKIE not in refused.cookies, origin
    finally:
        server.should_exit = True
        thread.join(30)
