"""Every call is authenticated with the app's signed token; an admin reaches their own company only,
an operator every company, and nobody else connects, force syncs or disconnects."""

from __future__ import annotations

import time

import pytest

from protiv_dagster.integrations.auth import DevelopmentKeys
from tests.service.conftest import Api

pytestmark = pytest.mark.slow


def test_the_openapi_document_lists_every_path_and_there_is_no_cdn_docs_page(api: Api):
    document = api.call("GET", "/openapi.json").json()
    assert set(document["paths"]) >= {
        "/integrations",
        "/integrations/{provider}",
        "/companies",
        "/companies/{company_id}/integration",
        "/companies/{company_id}/syncs",
        "/companies/{company_id}/syncs/{sync_id}",
        "/integrations/{provider}/authorize",
        "/oauth/quickbooks_time/callback",
    }
    assert set(document["paths"]["/companies/{company_id}/integration"]) == {"get", "put", "patch", "delete"}
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert api.call("GET", "/docs").status_code == 404


def test_integrations_are_listed_with_their_fields_and_searchable_by_name(api: Api):
    headers = api.as_admin("acme")
    listed = api.call("GET", "/integrations", headers).json()
    assert [i["provider"] for i in listed] == ["quickbooks_time", "aspire", "busybusy"]
    busybusy = next(i for i in listed if i["provider"] == "busybusy")
    assert busybusy["connects_with"] == "credentials"
    assert [(f["name"], f["secret"], f["required"]) for f in busybusy["fields"]] == [
        ("username", False, True),
        ("password", True, True),
    ]
    assert next(i for i in listed if i["provider"] == "quickbooks_time")["connects_with"] == "oauth"
    assert [i["label"] for i in api.call("GET", "/integrations?search=busy", headers).json()] == ["BusyBusy"]
    assert [i["label"] for i in api.call("GET", "/integrations?search=TIME", headers).json()] == ["QuickBooks Time"]
    assert api.call("GET", "/integrations?search=nothing", headers).json() == []
    unknown = api.call("GET", "/integrations/gusto", headers)
    assert unknown.status_code == 404 and unknown.json()["detail"][0]["field"] == "provider"
    assert "gusto" in unknown.json()["detail"][0]["message"]


def _tokens(api: Api, tmp_path) -> dict[str, str]:
    stranger = DevelopmentKeys(tmp_path / "stranger")
    stranger.create()
    now = time.time()
    return {
        "none": "",
        "garbage": "Bearer not-a-jwt",
        "basic": "Basic YWxpY2U6c2VjcmV0",
        "expired": "Bearer " + api.token("admin", "acme", issued_at=now - 3600, lifetime_seconds=600),
        "wrong audience": "Bearer " + api.token("admin", "acme", audience="another-service"),
        "wrong issuer": "Bearer " + api.token("admin", "acme", issuer="someone-else"),
        "lives too long": "Bearer " + api.token("admin", "acme", lifetime_seconds=24 * 3600),
        "another key": "Bearer " + stranger.token("alice", "admin", "acme"),
    }


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/integrations"),
        ("GET", "/companies/acme/integration"),
        ("PUT", "/companies/acme/integration"),
        ("POST", "/companies/acme/syncs"),
        ("DELETE", "/companies/acme/integration"),
        ("GET", "/integrations/quickbooks_time/authorize?company_id=acme"),
    ],
)
def test_no_valid_token_is_401_with_www_authenticate(api: Api, tmp_path, method, path):
    for what, authorization in _tokens(api, tmp_path).items():
        headers = {"Authorization": authorization} if authorization else {}
        answer = api.call(method, path, headers, json={"provider": "busybusy"}, allow_redirects=False)
        assert answer.status_code == 401, (what, answer.text)
        assert answer.headers["WWW-Authenticate"].startswith("Bearer "), what
        assert answer.json()["detail"][0]["field"] == "authorization"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/companies/acme/integration"),
        ("PUT", "/companies/acme/integration"),
        ("PATCH", "/companies/acme/integration"),
        ("POST", "/companies/acme/syncs"),
        ("GET", "/companies/acme/syncs/abc"),
        ("DELETE", "/companies/acme/integration"),
        ("GET", "/integrations/quickbooks_time/authorize?company_id=acme"),
    ],
)
def test_an_admin_of_another_company_or_another_role_is_403(api: Api, method, path):
    body = {"provider": "busybusy", "credentials": {}, "attendance_pull_date": "2026-01-05"}
    for headers in (
        api.as_admin("other-company"),
        {"Authorization": "Bearer " + api.token("viewer", "acme")},
        {"Authorization": "Bearer " + api.token("analyst", None)},
    ):
        answer = api.call(method, path, headers, json=body, allow_redirects=False)
        assert answer.status_code == 403, (headers, answer.text)
    assert (
        api.call("GET", "/integrations", {"Authorization": "Bearer " + api.token("viewer", "acme")}).status_code == 403
    )
    # An admin's list of companies holds their own only; an operator's every one (none connected here yet).
    assert all(
        s["company_id"] == "other-company" for s in api.call("GET", "/companies", api.as_admin("other-company")).json()
    )
