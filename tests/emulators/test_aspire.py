"""The Aspire emulator over real HTTP: auth, OData semantics, faults, control API, and the contract.

When the shared vendor material is present beside the repository, every served record is checked
against Aspire's own OpenAPI schemas (field names, JSON types, nullability, max lengths).
"""

from __future__ import annotations

import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from protiv_emulators.aspire import FIELDS, IMPLICIT_SERVICE_BASE, IMPLICIT_TICKET_BASE, AspireEmulator
from protiv_emulators.generator import generate_company

SPEC = (
    Path(__file__).resolve().parents[2].parent
    / "shared"
    / "vendor_specs"
    / "aspire"
    / "aspire_external_api_swagger.json"
)
SCHEMA_SUFFIX = {
    "Contacts": "Contacts.ODataModel.Contact",
    "Branches": "Branches.ODataModel.Branch",
    "Opportunities": "Opportunities.ODataModel.Opportunity",
    "WorkTickets": "WorkTickets.ODataModel.WorkTicket",
    "WorkTicketTimes": "WorkTicketTimes.ODataModel.WorkTicketTime",
    "ClockTimes": "ClockTimes.ODataModel.ClockTime",
    "OpportunityServices": "OpportunityServices.ODataModel.OpportunityService",
    "PayRates": "PayRates.ODataModel.PayRate",
}


@pytest.fixture(scope="module")
def company():
    return generate_company("acme", seed=3, workers=20, days=14)


@pytest.fixture(scope="module")
def hosted(company):
    with AspireEmulator() as emulator:
        client_id, secret = emulator.add_company(company)
        yield emulator, client_id, secret


@pytest.fixture()
def api(hosted):
    emulator, client_id, secret = hosted
    emulator.faults.clear()
    token = requests.post(f"{emulator.base_url}/Authorization", json={"ClientId": client_id, "Secret": secret}).json()[
        "Token"
    ]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"

    def get(endpoint: str, **params: Any) -> requests.Response:
        return session.get(f"{emulator.base_url}/{endpoint}", params={f"${k}": v for k, v in params.items()})

    return get


# -- authentication --------------------------------------------------------------------------------
def test_authorization_gives_a_jwt_shaped_token_and_refresh_rotates_it(hosted):
    emulator, client_id, secret = hosted
    first = requests.post(f"{emulator.base_url}/Authorization", json={"ClientId": client_id, "Secret": secret})
    assert first.status_code == 200 and set(first.json()) == {"Token", "RefreshToken"}
    token = first.json()["Token"]
    assert token.count(".") == 2 and secret not in token
    assert (
        requests.get(f"{emulator.base_url}/Branches", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    renewed = requests.post(
        f"{emulator.base_url}/Authorization/RefreshToken", json={"RefreshToken": first.json()["RefreshToken"]}
    )
    assert renewed.status_code == 200
    assert (
        requests.get(f"{emulator.base_url}/Branches", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    )
    new = renewed.json()["Token"]
    assert requests.get(f"{emulator.base_url}/Branches", headers={"Authorization": f"Bearer {new}"}).status_code == 200
    again = requests.post(
        f"{emulator.base_url}/Authorization/RefreshToken", json={"RefreshToken": first.json()["RefreshToken"]}
    )
    assert again.status_code == 401


def test_bad_credentials_and_tokens_are_401(hosted):
    emulator, client_id, _ = hosted
    answer = requests.post(f"{emulator.base_url}/Authorization", json={"ClientId": client_id, "Secret": "wrong"})
    assert answer.status_code == 401 and "wrong" not in answer.text
    assert requests.post(f"{emulator.base_url}/Authorization", json={"ClientId": client_id}).status_code == 400
    assert requests.get(f"{emulator.base_url}/Contacts").status_code == 401
    assert requests.get(f"{emulator.base_url}/Contacts", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert requests.get(f"{emulator.base_url}/Nowhere", headers={"Authorization": "Bearer nope"}).status_code == 404


def test_expired_tokens_answer_401(company):
    with AspireEmulator(token_lifetime_seconds=1) as emulator:
        client_id, secret = emulator.add_company(company)
        token = requests.post(
            f"{emulator.base_url}/Authorization", json={"ClientId": client_id, "Secret": secret}
        ).json()["Token"]
        headers = {"Authorization": f"Bearer {token}"}
        assert requests.get(f"{emulator.base_url}/Branches", headers=headers).status_code == 200
        emulator.expire_token(company.company_id)
        assert requests.get(f"{emulator.base_url}/Branches", headers=headers).status_code == 401


# -- what is served ---------------------------------------------------------------------------------
def test_lists_are_bare_arrays_rendered_from_the_company(api, company):
    contacts = api("Contacts").json()
    assert isinstance(contacts, list)
    employees = [c for c in contacts if c["ContactTypeName"] == "Employee"]
    assert sorted(c["ContactID"] for c in employees) == sorted(w.id for w in company.workers)
    assert len(contacts) > len(employees)  # customers too: the employee filter matters
    opportunities = api("Opportunities").json()
    assert sorted(o["OpportunityID"] for o in opportunities) == sorted(j.id for j in company.jobs if not j.is_drive)
    tickets = api("WorkTickets").json()
    milestone_ids = {m.id for m in company.milestones}
    implicit = {IMPLICIT_TICKET_BASE + j.id for j in company.jobs if not j.is_drive and not company.milestones_of(j.id)}
    assert {t["WorkTicketID"] for t in tickets} == milestone_ids | implicit
    times = api("WorkTicketTimes").json()
    assert sorted(t["WorkTicketTimeID"] for t in times) == sorted(s.id for s in company.shifts if not s.is_drive)
    deleted = {s.id for s in company.deleted_shifts}
    assert not deleted & {t["WorkTicketTimeID"] for t in times}
    branch = api("Branches").json()[0]
    assert branch["TimeZone"] and all(t["BranchTimeZone"] == branch["TimeZone"] for t in times)


def test_clock_times_cover_every_clocked_shift_and_drive_is_unallocated_clock_time(api, company):
    clocks = api("ClockTimes").json()
    times = api("WorkTicketTimes").json()
    clock_hours = 0.0
    for clock in clocks:
        if clock["ClockEnd"]:
            elapsed = (
                datetime.fromisoformat(clock["ClockEnd"]) - datetime.fromisoformat(clock["ClockStart"])
            ).total_seconds() / 3600
            clock_hours += elapsed - clock["BreakTime"]
    timed = [t for t in times if t["StartTime"] and t["EndTime"]]
    distributed = [t for t in times if not t["StartTime"] and not t["EndTime"]]
    assert (
        distributed and all(t["DistributedTime"] for t in distributed) and not any(t["DistributedTime"] for t in timed)
    )
    drive = sum(s.duration_seconds for s in company.shifts if s.is_drive) / 3600
    # Wall-time differences equal real time unless a DST change falls inside a block; distributed
    # hours are clock time spread over tickets, inside the day's clock time.
    expected = sum(t["Hours"] for t in timed) + sum(t["Hours"] for t in distributed) + drive
    assert clock_hours == pytest.approx(expected, abs=0.01 * len(clocks) + 1.01)


# -- OData -----------------------------------------------------------------------------------------
def test_filter_operators_logic_and_literals(api):
    times = api("WorkTicketTimes").json()
    some = times[len(times) // 2]
    cid = some["ContactID"]
    assert {t["WorkTicketTimeID"] for t in api("WorkTicketTimes", filter=f"ContactID eq {cid}").json()} == {
        t["WorkTicketTimeID"] for t in times if t["ContactID"] == cid
    }
    assert len(api("WorkTicketTimes", filter=f"ContactID ne {cid}").json()) == sum(t["ContactID"] != cid for t in times)
    hours = some["Hours"]
    for op, check in {"gt": float.__gt__, "ge": float.__ge__, "lt": float.__lt__, "le": float.__le__}.items():
        got = api("WorkTicketTimes", filter=f"Hours {op} {hours}").json()
        assert len(got) == sum(t["Hours"] is not None and check(float(t["Hours"]), float(hours)) for t in times), op
    day = some["WorkTicketTimeDate"][:10]
    on_day = api(
        "WorkTicketTimes", filter=f"WorkTicketTimeDate ge {day} and WorkTicketTimeDate lt {day}T23:59:59"
    ).json()
    assert {t["WorkTicketTimeID"] for t in on_day} == {
        t["WorkTicketTimeID"] for t in times if t["WorkTicketTimeDate"][:10] == day
    }
    other = times[0]["ContactID"]
    grouped = api(
        "WorkTicketTimes", filter=f"(ContactID eq {cid} or ContactID eq {other}) and HasBreakTime eq true"
    ).json()
    assert {t["WorkTicketTimeID"] for t in grouped} == {
        t["WorkTicketTimeID"] for t in times if t["ContactID"] in (cid, other) and t["HasBreakTime"]
    }
    manual = api("WorkTicketTimes", filter="StartTime eq null").json()
    assert manual and all(t["StartTime"] is None for t in manual)


def test_strings_are_quoted_with_doubled_quotes_and_case_sensitive(api):
    customers = api("Contacts", filter="LastName eq 'O''Connor'").json()
    assert [c["ContactTypeName"] for c in customers] == ["Customer"]
    assert api("Contacts", filter="ContactTypeName eq 'employee'").json() == []
    employees = api("Contacts", filter="ContactTypeName eq 'Employee' and Active eq true").json()
    assert employees and all(c["Active"] for c in employees)


@pytest.mark.parametrize(
    "params, named",
    [
        ({"filter": "contactid eq 1"}, "contactid"),
        ({"filter": "Nope eq 'x'"}, "Nope"),
        ({"select": "ContactID,Shoe"}, "Shoe"),
        ({"orderby": "Height desc"}, "Height"),
        ({"filter": "ContactID eq"}, "$filter"),
        ({"filter": "(ContactID eq 1"}, "$filter"),
        ({"filter": "ContactID eq 'one'"}, "$filter"),
        ({"filter": "LastName eq Smith"}, "$filter"),
        ({"filter": "ModifiedDate ge '2024-01-01'"}, "DateTime"),
        ({"filter": "ContactID like 1"}, "$filter"),
        ({"limit": "1001"}, "$limit"),
        ({"pageNumber": "0", "limit": "5"}, "$pageNumber"),
    ],
)
def test_bad_queries_answer_400_naming_the_problem(api, params, named):
    answer = api("Contacts", **params)
    assert answer.status_code == 400
    assert named in answer.json()["Message"]


def test_select_orderby_top_skip(api):
    rows = api("Contacts", select="ContactID,LastName,FirstName", orderby="LastName asc,FirstName desc").json()
    assert all(set(r) == {"ContactID", "LastName", "FirstName"} for r in rows)
    keys = [(r["LastName"], r["FirstName"]) for r in rows]
    assert keys == sorted(keys, key=lambda k: (k[0], [-ord(c) for c in k[1]]))
    ids = [r["ContactID"] for r in api("Contacts", orderby="ContactID desc").json()]
    assert ids == sorted(ids, reverse=True)
    assert [r["ContactID"] for r in api("Contacts", orderby="ContactID desc", skip="2", top="3").json()] == ids[2:5]


def test_page_number_and_limit_walk_every_record_once(api):
    everything = [t["WorkTicketTimeID"] for t in api("WorkTicketTimes").json()]
    seen, page = [], 1
    while True:
        rows = api("WorkTicketTimes", orderby="WorkTicketTimeID", pageNumber=str(page), limit="37").json()
        seen += [r["WorkTicketTimeID"] for r in rows]
        if len(rows) < 37:
            break
        page += 1
    assert seen == sorted(everything)
    assert len(api("WorkTicketTimes", pageNumber="1").json()) == 25  # the inferred default page size


# -- faults and the control API --------------------------------------------------------------------
def test_faults_rate_limit_server_error_latency_drop(hosted, api):
    emulator = hosted[0]
    emulator.faults.rate_limit(times=1, retry_after=7)
    answer = api("Branches")
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "7"
    emulator.faults.rate_limit(times=1, retry_after=None)
    assert "Retry-After" not in api("Branches").headers
    emulator.faults.server_error(times=1, status=502)
    assert api("Branches").status_code == 502
    emulator.faults.drop_connection()
    with pytest.raises(requests.ConnectionError):
        api("Branches")
    emulator.faults.latency(0.2)
    started = time.monotonic()
    assert api("Branches").status_code == 200
    assert time.monotonic() - started >= 0.2
    emulator.faults.clear()
    assert api("Branches").status_code == 200
    assert emulator.request_log[-1].path == "/Branches"


def test_sandbox_rate_limit_per_minute(company):
    with AspireEmulator(rate_limit_per_minute=3) as emulator:
        client_id, secret = emulator.add_company(company)
        token = requests.post(
            f"{emulator.base_url}/Authorization", json={"ClientId": client_id, "Secret": secret}
        ).json()["Token"]
        statuses = [
            requests.get(f"{emulator.base_url}/Branches", headers={"Authorization": f"Bearer {token}"}).status_code
            for _ in range(3)
        ]
        assert statuses == [200, 200, 429]


def test_control_api_adds_edits_and_deletes_work_ticket_times(hosted, api, company):
    emulator = hosted[0]
    control = emulator.control_url
    times = api("WorkTicketTimes").json()
    target = next(t for t in times if t["StartTime"] and t["EndTime"])
    before = target["LastModifiedDateTime"]
    edited = requests.post(
        f"{control}/work_ticket_times/{target['WorkTicketTimeID']}/edit",
        json={"EndTime": target["EndTime"][:11] + "23:00:00"},
    ).json()
    assert edited["EndTime"].endswith("23:00:00") and edited["Hours"] > target["Hours"]
    assert edited["LastModifiedDateTime"] > before
    changed = api("WorkTicketTimes", filter=f"LastModifiedDateTime gt {edited['LastModifiedDateTime'][:19]}").json()
    assert changed == []
    changed = api("WorkTicketTimes", filter=f"LastModifiedDateTime ge {edited['LastModifiedDateTime'][:19]}").json()
    assert [t["WorkTicketTimeID"] for t in changed] == [target["WorkTicketTimeID"]]
    added = requests.post(
        f"{control}/work_ticket_times",
        json={
            "ContactID": target["ContactID"],
            "WorkTicketID": target["WorkTicketID"],
            "StartTime": "2030-01-02T08:00:00",
            "EndTime": "2030-01-02T12:30:00",
            "BreakTime": 0.5,
        },
    ).json()
    assert added["Hours"] == pytest.approx(4.0) and added["WorkTicketTimeDate"] == "2030-01-02T00:00:00"
    assert api("WorkTicketTimes", filter=f"WorkTicketTimeID eq {added['WorkTicketTimeID']}").json()[0][
        "Hours"
    ] == pytest.approx(4.0)
    assert requests.post(f"{control}/work_ticket_times/{added['WorkTicketTimeID']}/delete").status_code == 200
    assert api("WorkTicketTimes", filter=f"WorkTicketTimeID eq {added['WorkTicketTimeID']}").json() == []
    assert requests.post(f"{control}/work_ticket_times/1/delete").status_code == 404
    assert requests.post(f"{control}/work_ticket_times", json={"ContactID": 1}).status_code in (400, 404)
    assert requests.post(f"{control}/faults", json={"action": "rate_limit", "times": 1, "retry_after": 0}).json()["ok"]
    assert api("Branches").status_code == 429
    requests.post(f"{control}/faults", json={"action": "expire_token", "company_id": company.company_id})
    assert api("Branches").status_code == 401  # the token this test holds has expired
    status = requests.get(f"{control}/status").json()
    assert status["company_ids"] == [company.company_id] and status["request_count"] == emulator.request_count


def test_control_api_edits_a_work_ticket_stamping_it(hosted, api):
    control = hosted[0].control_url
    ticket = api("WorkTickets").json()[0]
    edited = requests.post(f"{control}/work_tickets/{ticket['WorkTicketID']}/edit", json={"HoursEst": 99.5}).json()
    assert edited["HoursEst"] == 99.5 and edited["LastModifiedDateTime"] > ticket["LastModifiedDateTime"]
    changed = api("WorkTickets", filter=f"LastModifiedDateTime ge {edited['LastModifiedDateTime']}").json()
    assert [(t["WorkTicketID"], t["HoursEst"]) for t in changed] == [(ticket["WorkTicketID"], 99.5)]
    refused = requests.post(f"{control}/work_tickets/{ticket['WorkTicketID']}/edit", json={"OpportunityID": 1})
    assert refused.status_code == 400 and "OpportunityID" in refused.text
    assert (
        requests.post(f"{control}/work_tickets/{ticket['WorkTicketID']}/edit", json={"HoursEst": "many"}).status_code
        == 400
    )
    assert requests.post(f"{control}/work_tickets/1/edit", json={"HoursEst": 1}).status_code == 404


def test_every_ticket_is_an_occurrence_of_a_service_with_a_crew_leader(api, company):
    services = {s["OpportunityServiceID"]: s for s in api("OpportunityServices").json()}
    tickets = api("WorkTickets").json()
    assert company.task_lines
    for ticket in tickets:
        service = services[ticket["OpportunityServiceID"]]
        assert service["OpportunityID"] == ticket["OpportunityID"]
        unit = (
            ticket["WorkTicketID"]
            if ticket["WorkTicketID"] < IMPLICIT_TICKET_BASE
            else ticket["WorkTicketID"] - IMPLICIT_TICKET_BASE
        )
        record = (
            company.milestone_by_id(unit)
            if ticket["WorkTicketID"] in {m.id for m in company.milestones}
            else company.job_by_id(unit)
        )
        assert ticket["CrewLeaderContactID"] == record.crew_lead_id is not None
    for line in company.task_lines:
        service = services[line.id]
        assert (service["OpportunityID"], service["DisplayName"], service["ExtendedHours"]) == (
            line.job_id,
            line.name,
            line.budget_hours,
        )
        assert service["Occur"] == len(line.milestone_ids)
        assert {t["WorkTicketID"] for t in tickets if t["OpportunityServiceID"] == line.id} == set(line.milestone_ids)
    lined = {line.job_id for line in company.task_lines}
    for job in company.jobs:
        if not job.is_drive and job.id not in lined:
            assert services[IMPLICIT_SERVICE_BASE + job.id]["OpportunityID"] == job.id
    # A time row names the lead of the worker's crew; a manager's none.
    times = api("WorkTicketTimes").json()
    assert all(t["CrewLeaderContactID"] == company.crew_lead_of(t["ContactID"]) for t in times)
    managers = {w.id for w in company.workers if w.role == "manager"}
    assert any(t["ContactID"] in managers and t["CrewLeaderContactID"] is None for t in times)


def test_pay_rates_are_the_wage_histories_and_time_rows_carry_the_rate_of_their_date(api, company):
    rates = api("PayRates").json()
    assert sorted((r["ContactID"], r["EffectiveDate"], r["HourlyBasePay"]) for r in rates) == sorted(
        (w.id, f"{c.effective_date.isoformat()}T00:00:00", float(c.hourly_wage))
        for w in company.workers
        for c in w.wage_history
    )
    raised = {w.id: w for w in company.workers if len(w.wage_history) == 2}
    times = [t for t in api("WorkTicketTimes").json() if t["ContactID"] in raised]
    assert times
    for row in times:
        day = datetime.fromisoformat(row["WorkTicketTimeDate"]).date()
        assert row["BaseHourlyRate"] == float(raised[row["ContactID"]].wage_on(day))
    # Time before a raise carries the old rate, time after it the new one.
    assert any(row["BaseHourlyRate"] != float(raised[row["ContactID"]].hourly_wage) for row in times)
    assert any(row["BaseHourlyRate"] == float(raised[row["ContactID"]].hourly_wage) for row in times)


def test_control_api_adds_and_deletes_pay_rates_and_edits_a_service(hosted, api, company):
    control = hosted[0].control_url
    worker = company.workers[0]
    added = requests.post(
        f"{control}/pay_rates", json={"ContactID": worker.id, "EffectiveDate": "2026-12-01", "HourlyBasePay": 36.0}
    ).json()
    assert added["EffectiveDate"] == "2026-12-01T00:00:00" and added["BurdenPercent"] == 0.0
    listed = api("PayRates", filter=f"ContactID eq {worker.id}").json()
    assert added in listed and len(listed) == len(worker.wage_history) + 1
    assert requests.post(f"{control}/pay_rates/{added['PayRateID']}/delete").status_code == 200
    assert added not in api("PayRates", filter=f"ContactID eq {worker.id}").json()
    assert (
        requests.post(
            f"{control}/pay_rates", json={"ContactID": 1, "EffectiveDate": "2026-12-01", "HourlyBasePay": 1}
        ).status_code
        == 404
    )
    assert (
        requests.post(
            f"{control}/pay_rates", json={"ContactID": worker.id, "EffectiveDate": "2026-12-01", "HourlyBasePay": "x"}
        ).status_code
        == 400
    )
    service = api("OpportunityServices", filter=f"OpportunityServiceID ge {IMPLICIT_SERVICE_BASE}").json()[0]
    edited = requests.post(
        f"{control}/opportunity_services/{service['OpportunityServiceID']}/edit", json={"ExtendedHours": 12.5}
    ).json()
    assert edited["ExtendedHours"] == 12.5 and edited["LastModifiedDateTime"] > service["LastModifiedDateTime"]
    assert (
        requests.post(
            f"{control}/opportunity_services/{service['OpportunityServiceID']}/edit", json={"Occur": 3}
        ).status_code
        == 400
    )


# -- the contract ----------------------------------------------------------------------------------
def _check_type(value: Any, prop: dict[str, Any], where: str) -> None:
    if value is None:
        assert prop.get("nullable"), f"{where} is null but not nullable"
        return
    kind = prop.get("type")
    if kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31, where
    elif kind == "number":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
    elif kind == "boolean":
        assert isinstance(value, bool), where
    elif kind == "string":
        assert isinstance(value, str), where
        if prop.get("format") == "date-time":
            datetime.fromisoformat(value)
        if "maxLength" in prop:
            assert len(value) <= prop["maxLength"], where
    else:
        raise AssertionError(f"{where}: unexpected schema type {kind}")


@pytest.mark.skipif(not SPEC.exists(), reason="Aspire's OpenAPI document is not beside the repository")
def test_answers_match_the_openapi_schemas(api):
    spec = json.loads(SPEC.read_text())
    schemas = spec["components"]["schemas"]
    for endpoint, suffix in SCHEMA_SUFFIX.items():
        schema_name = next(name for name in schemas if name.endswith(suffix))
        properties = schemas[schema_name]["properties"]
        assert f"/{endpoint}" in spec["paths"]
        assert set(FIELDS[endpoint]) <= set(properties), set(FIELDS[endpoint]) - set(properties)
        records = api(endpoint).json()
        assert records, endpoint
        for record in records:
            assert set(record) == set(FIELDS[endpoint])
            for name, value in record.items():
                _check_type(value, properties[name], f"{endpoint}.{name}")
    auth = schemas[next(n for n in schemas if n.endswith("ApiAuthenticationResult"))]["properties"]
    assert set(auth) == {"Token", "RefreshToken"}
