"""The BusyBusy emulator over real HTTP: login, the GraphQL schema, filters, cursors, errors, faults."""

from __future__ import annotations

import base64
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
import requests

from protiv_emulators.busybusy import MAX_PAGE_SIZE, ROOTS, BusyBusyEmulator
from protiv_emulators.generator import generate_company

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
ENTRY_FIELDS = "id cursor memberId projectId startTime endTime deletedOn updatedOn breaks { startTime endTime }"


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=5, workers=20, days=14, as_of=AS_OF, timezone="America/Chicago")


@pytest.fixture
def emulator(company_data):
    with BusyBusyEmulator() as emulator:
        emulator.add_company(company_data, username="boss@acme.example", password="s3cret-pass")
        yield emulator


def basic(username: str, password: str) -> str:
    digest = hashlib.sha256(password.encode()).hexdigest()
    return "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()


def login(emulator, username="boss@acme.example", password="s3cret-pass") -> requests.Response:
    return requests.get(
        emulator.rest_url + "/member",
        params={"username": username, "_version": "3.2"},
        headers={"Authorization": basic(username, password)},
        timeout=5,
    )


@pytest.fixture
def key(emulator):
    return login(emulator).json()["public_key"]


def gql(emulator, key, query, variables=None) -> requests.Response:
    return requests.post(
        emulator.graphql_url,
        json={"query": query, "variables": variables or {}},
        headers={"key-authorization": key},
        timeout=10,
    )


def entries(emulator, key, filter_=None, first=None, after=None, sort=None):
    query = (
        "query($f: TimeEntryFilter, $n: Int, $a: String, $s: [TimeEntrySort!]) "
        f"{{ timeEntries(filter: $f, first: $n, after: $a, sort: $s) {{ {ENTRY_FIELDS} }} }}"
    )
    response = gql(emulator, key, query, {"f": filter_, "n": first, "a": after, "s": sort})
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    return body["data"]["timeEntries"]


def test_login_gives_a_session_key_and_a_wrong_password_is_401(emulator):
    response = login(emulator)
    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True and body["public_key"]
    assert body["data"][0]["username"] == "boss@acme.example"
    wrong = login(emulator, password="nope")
    assert wrong.status_code == 401 and wrong.json()["success"] is False
    assert "s3cret" not in wrong.text
    unknown = login(emulator, username="who@else.example")
    assert unknown.status_code == 401


def test_introspection_lists_the_roots_and_their_arguments(emulator, key):
    body = gql(emulator, key, "{ __schema { queryType { fields { name args { name } } } } }").json()
    fields = {f["name"]: [a["name"] for a in f["args"]] for f in body["data"]["__schema"]["queryType"]["fields"]}
    assert set(ROOTS) <= set(fields)
    for root in ROOTS:
        assert fields[root] == ["filter", "first", "after", "sort"]
    wage = gql(emulator, key, '{ __type(name: "WageHistory") { fields { name } } }').json()
    names = {f["name"] for f in wage["data"]["__type"]["fields"]}
    assert {"wage", "wageRate", "overburden", "effectiveRate", "changeDate", "deletedOn"} <= names


def test_cursor_paging_returns_every_entry_once_in_order(emulator, key, company_data):
    everything = entries(emulator, key)
    assert len(everything) == len(company_data.shifts) + len(company_data.deleted_shifts)
    seen, after, pages = [], None, 0
    while True:
        page = entries(emulator, key, first=100, after=after)
        pages += 1
        seen += page
        if len(page) < 100:
            break
        after = page[-1]["cursor"]
    assert [e["id"] for e in seen] == [e["id"] for e in everything] == sorted(e["id"] for e in everything)
    assert pages == len(everything) // 100 + 1


def test_paging_is_stable_under_inserts_and_deletes_between_pages(emulator, key, company_data):
    company = emulator.company("acme")
    before = {e["id"] for e in entries(emulator, key, {"deletedOn": {"isNull": True}})}
    first_page = entries(emulator, key, {"deletedOn": {"isNull": True}}, first=50)
    shift = company_data.shifts[0]
    for hour in range(5):  # new entries land anywhere in id order
        start = AS_OF - timedelta(days=3, hours=hour)
        company.add_time_entry(
            company.member_id(shift.worker_id), company.project_id(shift.job_id), start, start + timedelta(minutes=30)
        )
    later = sorted(before)[-1]
    company.delete_time_entry(later)
    rest, after = [], first_page[-1]["cursor"]
    while True:
        page = entries(emulator, key, {"deletedOn": {"isNull": True}}, first=50, after=after)
        rest += page
        if len(page) < 50:
            break
        after = page[-1]["cursor"]
    got = [e["id"] for e in first_page + rest]
    assert len(got) == len(set(got))  # nothing twice
    assert before - {later} <= set(got)  # nothing that existed was skipped
    assert later not in got


def test_filters(emulator, key, company_data):
    since = AS_OF - timedelta(days=3)
    recent = entries(emulator, key, {"startTime": {"greaterThanOrEqual": since.isoformat()}})
    assert recent and all(e["startTime"] >= "2026-11-17T00:00:00Z" for e in recent)
    deleted = entries(emulator, key, {"deletedOn": {"isNull": False}})
    assert len(deleted) == len(company_data.deleted_shifts) and all(e["deletedOn"] for e in deleted)
    running = entries(emulator, key, {"endTime": {"isNull": True}})
    assert len(running) == 1
    picked = [e["id"] for e in recent[:3]]
    assert {e["id"] for e in entries(emulator, key, {"id": {"contains": picked}})} == set(picked)
    member = recent[0]["memberId"]
    assert all(e["memberId"] == member for e in entries(emulator, key, {"memberId": {"equal": member}}))
    by_start = entries(
        emulator, key, {"startTime": {"greaterThanOrEqual": "2026-11-18T00:00:00Z"}}, sort=[{"startTime": "desc"}]
    )
    assert [e["startTime"] for e in by_start] == sorted((e["startTime"] for e in by_start), reverse=True)
    body = gql(emulator, key, "{ projects(filter: {depth: {equal: 2}}) { id depth parentProjectId } }").json()
    assert body["data"]["projects"] and all(p["depth"] == 2 and p["parentProjectId"] for p in body["data"]["projects"])
    latest = gql(emulator, key, "{ budgetHours(filter: {isLatest: {equal: true}}) { projectId } }").json()["data"][
        "budgetHours"
    ]
    every = gql(emulator, key, "{ budgetHours { projectId } }").json()["data"]["budgetHours"]
    assert len(every) == len(latest) + 1


def test_updated_on_moves_on_edits_and_soft_deletes(emulator, key):
    company = emulator.company("acme")
    newest = max(e["updatedOn"] for e in entries(emulator, key))
    assert {e["updatedOn"] for e in entries(emulator, key, {"updatedOn": {"greaterThanOrEqual": newest}})} == {newest}
    live = entries(emulator, key, {"deletedOn": {"isNull": True}, "endTime": {"isNull": False}}, first=2)
    edited = requests.post(
        f"{emulator.control_url}/timeEntries/{live[0]['id']}/edit",
        json={"endTime": live[0]["endTime"], "description": "fixed"},
        timeout=5,
    )
    assert edited.status_code == 200, edited.text
    deleted = requests.post(f"{emulator.control_url}/timeEntries/{live[1]['id']}/delete", timeout=5).json()
    assert deleted["deletedOn"]
    changed = [
        e for e in entries(emulator, key, {"updatedOn": {"greaterThanOrEqual": newest}}) if e["updatedOn"] > newest
    ]
    assert {e["id"] for e in changed} == {live[0]["id"], live[1]["id"]}
    assert company.records("timeEntries")  # the Python view agrees with the served one


def test_errors_come_as_200_with_messages(emulator, key):
    cases = {
        "{ members { id noSuchField } }": "noSuchField",
        '{ members(filter: {updatedOn: {after: "x"}}) { id } }': "after",
        '{ timeEntries(filter: {startTime: {greaterThanOrEqual: "yesterday"}}) { id } }': "ISO 8601",
        '{ members(after: "not-a-cursor") { id } }': "cursor",
        f"{{ members(first: {MAX_PAGE_SIZE + 1}) {{ id }} }}": "first",
    }
    for query, fragment in cases.items():
        response = gql(emulator, key, query)
        assert response.status_code == 200
        body = response.json()
        assert body["data"] is None or "errors" in body
        assert any(fragment in e["message"] for e in body["errors"]), body


def test_bad_key_and_changed_password_are_401(emulator, key):
    assert gql(emulator, "wrong-key", "{ members { id } }").status_code == 401
    assert requests.post(emulator.graphql_url, json={"query": "{ members { id } }"}, timeout=5).status_code == 401
    assert gql(emulator, key, "{ members { id } }").status_code == 200
    emulator.change_password("acme", "new-pass")
    assert gql(emulator, key, "{ members { id } }").status_code == 401
    assert login(emulator).status_code == 401
    assert login(emulator, password="new-pass").status_code == 200


def test_faults_and_request_log(emulator, key):
    emulator.faults.rate_limit(times=1, retry_after=2)
    response = gql(emulator, key, "{ costCodes { id } }")
    assert response.status_code == 429 and response.headers["Retry-After"] == "2"
    emulator.faults.server_error(times=1, status=502)
    assert gql(emulator, key, "{ costCodes { id } }").status_code == 502
    emulator.faults.graphql_error(times=1, message="lock timeout")
    body = gql(emulator, key, "{ costCodes { id } }").json()
    assert body == {"errors": [{"message": "lock timeout"}], "data": None}
    emulator.faults.drop_connection(times=1)
    with pytest.raises(requests.ConnectionError):
        gql(emulator, key, "{ costCodes { id } }")
    assert gql(emulator, key, "{ costCodes { id } }").status_code == 200
    statuses = [r.status for r in emulator.request_log]
    assert statuses[-5:] == [429, 502, 200, 0, 200]
    assert emulator.request_log[-1].operation == "costCodes"
    control = requests.post(emulator.control_url + "/faults", json={"action": "server_error", "times": 1}, timeout=5)
    assert control.status_code == 200
    assert login(emulator).status_code == 503  # faults apply to the REST login too
    requests.post(emulator.control_url + "/faults", json={"action": "clear"}, timeout=5)
    assert requests.get(emulator.control_url + "/status", timeout=5).json()["company_ids"] == ["acme"]


def test_members_carry_wage_histories_with_a_raise_in_the_window(emulator, key, company_data):
    members = gql(emulator, key, "{ members { id wageHistories { wage wageRate changeDate deletedOn } } }").json()[
        "data"
    ]["members"]
    assert len(members) == len(company_data.workers)
    window_start = "2026-11-07"
    raised = [m for m in members if sum(1 for w in m["wageHistories"] if not w["deletedOn"]) == 2]
    assert raised and all(
        any(w["changeDate"] > window_start for w in m["wageHistories"] if not w["deletedOn"]) for m in raised
    )
    assert any(w["deletedOn"] for m in members for w in m["wageHistories"])


def test_graphql_date_header_is_the_frozen_clock(emulator, key):
    response = gql(emulator, key, "{ costCodes { id } }")
    assert response.headers["Date"] == "Fri, 20 Nov 2026 00:00:00 GMT"


def test_latency_delays_requests_until_cleared(emulator, key):
    import time

    emulator.faults.latency(0.2)
    started = time.monotonic()
    assert gql(emulator, key, "{ costCodes { id } }").status_code == 200
    assert time.monotonic() - started >= 0.2
    emulator.faults.clear()
    started = time.monotonic()
    gql(emulator, key, "{ costCodes { id } }")
    assert time.monotonic() - started < 0.2


def test_control_api_adds_entries_and_checks_references(emulator, key, company_data):
    company = emulator.company("acme")
    shift = company_data.shifts[0]
    body = {
        "memberId": company.member_id(shift.worker_id),
        "projectId": company.project_id(shift.job_id),
        "startTime": "2026-11-19T15:00:00Z",
        "endTime": "2026-11-19T23:00:00Z",
        "breaks": [{"startTime": "2026-11-19T19:00:00Z", "endTime": "2026-11-19T19:30:00Z"}],
    }
    added = requests.post(emulator.control_url + "/timeEntries", json=body, timeout=5)
    assert added.status_code == 200, added.text
    entry = added.json()
    assert entry["breaks"][0]["startTime"] == "2026-11-19T19:00:00Z" and entry["deletedOn"] is None
    assert [e["id"] for e in entries(emulator, key, {"id": {"equal": entry["id"]}})] == [entry["id"]]
    bad = requests.post(emulator.control_url + "/timeEntries", json={**body, "projectId": "nope"}, timeout=5)
    assert bad.status_code == 400 and "no project" in bad.json()["error"]
    missing = requests.post(emulator.control_url + "/timeEntries/not-an-id/delete", timeout=5)
    assert missing.status_code == 404


def test_line_items_are_cost_code_budgets_of_their_job_and_their_time_carries_the_cost_code(
    emulator, key, company_data
):
    company = emulator.company(company_data.company_id)
    codes = {c["id"]: c for c in gql(emulator, key, "{ costCodes { id costCode title } }").json()["data"]["costCodes"]}
    hours = gql(
        emulator, key, "{ budgetHours(filter: {isLatest: {equal: true}}) { projectId costCodeId budgetSeconds } }"
    ).json()["data"]["budgetHours"]
    costs = gql(
        emulator, key, "{ budgetCosts(filter: {isLatest: {equal: true}}) { projectId costCodeId costBudget } }"
    ).json()["data"]["budgetCosts"]
    assert company_data.task_lines
    for line in company_data.task_lines:
        key_ = (company.project_id(line.job_id), company.task_cost_code_id(line.id))
        assert codes[key_[1]]["title"] == line.name
        assert [h["budgetSeconds"] for h in hours if (h["projectId"], h["costCodeId"]) == key_] == [
            round(line.budget_hours * 3600)
        ]
        assert len([c for c in costs if (c["projectId"], c["costCodeId"]) == key_]) == 1
    entries = {e["id"]: e for e in company.records("timeEntries")}
    for shift in company_data.shifts:
        if shift.task_id is not None:
            assert entries[company.entry_id(shift.id)]["costCodeId"] == company.task_cost_code_id(shift.task_id)


def test_control_api_adds_a_wage_change_and_a_new_budget_version(emulator, key, company_data):
    company = emulator.company(company_data.company_id)
    control = emulator.control_url
    member = company.member_id(company_data.workers[0].id)
    before = next(m for m in company.records("members") if m["id"] == member)
    answer = requests.post(
        f"{control}/members/{member}/wages", json={"wage": 36.0, "changeDate": "2026-11-15T07:00:00Z"}
    )
    assert answer.status_code == 200
    after = next(
        m
        for m in gql(
            emulator, key, "{ members { id updatedOn wageHistories { wage wageRate changeDate deletedOn } } }"
        ).json()["data"]["members"]
        if m["id"] == member
    )
    assert after["updatedOn"] > before["updatedOn"]
    assert after["wageHistories"][-1] == {
        "wage": 36.0,
        "wageRate": 10,
        "changeDate": "2026-11-15T07:00:00Z",
        "deletedOn": None,
    }
    assert (
        requests.post(
            f"{control}/members/{member}/wages", json={"wage": -1, "changeDate": "2026-11-15T07:00:00Z"}
        ).status_code
        == 400
    )
    project = company.project_id(company_data.jobs[1].id)
    code = company.cost_code_id("01-100")
    first = requests.post(f"{control}/budgets", json={"projectId": project, "costCodeId": code, "hours": 20}).json()
    second = requests.post(
        f"{control}/budgets", json={"projectId": project, "costCodeId": code, "hours": 25, "cost": 800}
    ).json()
    latest = gql(
        emulator,
        key,
        "{ budgetHours(filter: {isLatest: {equal: true}}) { id projectId costCodeId budgetSeconds createdOn } }",
    ).json()["data"]["budgetHours"]
    mine = [h for h in latest if (h["projectId"], h["costCodeId"]) == (project, code)]
    assert [h["id"] for h in mine] == [second["hours"]["id"]] and mine[0]["budgetSeconds"] == 25 * 3600
    assert first["hours"]["id"] not in {h["id"] for h in latest}
    assert requests.post(f"{control}/budgets", json={"projectId": project}).status_code == 400


@pytest.mark.parametrize(
    "query",
    [
        "{ projects { id rootProjectId } }",  # no source names a root-project field: walk parentProjectId
        "{ budgetCosts { projectId createdOn } }",  # cost budgets name no stamp
        "{ budgetHours { projectId isLatest } }",  # isLatest is a filter, not a field
        "{ members { id wageHistories { id } } }",  # wage histories have no id of their own
    ],
)
def test_a_query_selecting_an_undocumented_field_fails(emulator, key, query):
    response = gql(emulator, key, query)
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None and "Cannot query field" in body["errors"][0]["message"]


@pytest.mark.parametrize("operator", ["lessThan", "greaterThan", "lessThanOrEqual", "notEqual", "doesNotContain"])
def test_a_filter_with_an_undocumented_operator_fails(emulator, key, operator):
    query = "query($f: TimeEntryFilter) { timeEntries(filter: $f, first: 1) { id } }"
    value = ["x"] if operator == "doesNotContain" else "2026-11-19T00:00:00Z"
    body = gql(emulator, key, query, {"f": {"startTime": {operator: value}}}).json()
    assert body["data"] is None and f"'{operator}' is not defined" in body["errors"][0]["message"]


def test_projects_nest_down_to_depth_7(emulator, key):
    company = emulator.company("acme")
    parent = requests.post(f"{emulator.control_url}/projects", json={"title": "Deck"}, timeout=5).json()
    for depth in range(2, 8):
        parent = requests.post(
            f"{emulator.control_url}/projects",
            json={"title": f"Level {depth}", "parentProjectId": parent["id"]},
            timeout=5,
        ).json()
        assert parent["depth"] == depth
    too_deep = requests.post(
        f"{emulator.control_url}/projects", json={"title": "8", "parentProjectId": parent["id"]}, timeout=5
    )
    assert too_deep.status_code == 400 and "7 levels" in too_deep.text
    served = gql(emulator, key, "{ projects(filter: {depth: {equal: 7}}) { id parentProjectId depth } }").json()
    assert served["data"]["projects"] == [
        {"id": parent["id"], "parentProjectId": company.records("projects")[-1]["parentProjectId"], "depth": 7}
    ]
