"""The QuickBooks Time emulator over real sockets: protocol, filters, paging, mutations, faults, control API."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import requests

from protiv_emulators.generator import CompanyData, generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeCompany, QuickBooksTimeEmulator

AS_OF = datetime(2026, 11, 20, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def company_data() -> CompanyData:
    return generate_company("qbt-test", seed=3, workers=12, days=14, as_of=AS_OF, timezone="America/Denver")


@pytest.fixture
def emulator(company_data: CompanyData) -> Iterator[QuickBooksTimeEmulator]:
    with QuickBooksTimeEmulator() as running:
        running.add_company(
            company_data,
            access_token="token-for-tests",
            refresh_token="refresh-for-tests",
            client_secret="secret-for-tests",
        )
        yield running


@pytest.fixture
def company(emulator: QuickBooksTimeEmulator, company_data: CompanyData) -> QuickBooksTimeCompany:
    return emulator.company(company_data.company_id)


@pytest.fixture
def api(company: QuickBooksTimeCompany) -> Iterator[requests.Session]:
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {company.access_token}"
        yield session


def get(api: requests.Session, emulator: QuickBooksTimeEmulator, endpoint: str, **params: Any) -> requests.Response:
    return api.get(f"{emulator.base_url}/{endpoint}", params=params, timeout=10)


def all_pages(api, emulator, endpoint: str, **params: Any) -> tuple[list[dict], list[dict]]:
    """Every record over every page, and the raw page bodies."""
    records, bodies, page = [], [], 1
    while True:
        response = get(api, emulator, endpoint, page=page, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        bodies.append(body)
        records.extend(body["results"][endpoint].values())
        if not body["more"]:
            return records, bodies
        page += 1


def control(emulator: QuickBooksTimeEmulator, path: str, payload: dict | None = None) -> requests.Response:
    return requests.post(f"{emulator.control_url}/{path}", json=payload or {}, timeout=10)


# -- authentication ------------------------------------------------------------------------------
@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token", "Basic dXNlcjpwYXNz", "Bearer "])
def test_a_missing_or_unknown_token_gets_401(emulator, company, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = requests.get(f"{emulator.base_url}/current_user", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == 401
    assert "wrong-token" not in response.text and company.access_token not in response.text


def test_no_answer_or_log_entry_ever_contains_the_token(api, emulator, company):
    for endpoint, params in [("current_user", {}), ("users", {}), ("timesheets", {"start_date": "2026-11-01"})]:
        assert company.access_token not in get(api, emulator, endpoint, **params).text
    assert company.access_token not in repr(emulator.request_log)


def test_current_user_is_the_account_owner(api, emulator, company, company_data):
    users = get(api, emulator, "current_user").json()["results"]["users"]
    assert list(users) == [str(company.owner_user_id)]
    owner = users[str(company.owner_user_id)]
    assert owner["permissions"]["admin"] is True
    assert company_data.worker_by_id(owner["id"]).role == "manager"


# -- paging ------------------------------------------------------------------------------------
def test_paging_with_limit_7_reproduces_the_ground_truth_exactly(api, emulator, company, company_data):
    records, bodies = all_pages(
        api, emulator, "timesheets", start_date=company_data.first_local_date.isoformat(), limit=7
    )
    truth = company.timesheets(include_on_the_clock=False)
    assert len(bodies) > 10
    assert [r["id"] for r in records] == sorted({r["id"] for r in records}), "ascending, no duplicates"
    assert records == truth
    assert all(len(body["results"]["timesheets"]) == 7 and body["more"] for body in bodies[:-1])
    assert 1 <= len(bodies[-1]["results"]["timesheets"]) <= 7 and bodies[-1]["more"] is False
    beyond = get(api, emulator, "timesheets", start_date="2000-01-01", limit=7, page=len(bodies) + 1).json()
    assert beyond["results"]["timesheets"] == {} and beyond["more"] is False


def test_more_is_false_when_the_page_ends_exactly_at_the_last_record(api, emulator, company):
    users = company.users(include_inactive=False)
    body = get(api, emulator, "users", limit=len(users)).json()
    assert len(body["results"]["users"]) == len(users) and body["more"] is False
    body = get(api, emulator, "users", limit=len(users) - 1).json()
    assert body["more"] is True


def test_results_are_keyed_by_id_strings_in_ascending_order(api, emulator):
    body = get(api, emulator, "jobcodes", limit=50).json()
    keys = list(body["results"]["jobcodes"])
    assert keys == [str(k) for k in sorted(map(int, keys))]
    assert all(str(record["id"]) == key for key, record in body["results"]["jobcodes"].items())


# -- timesheet filters -------------------------------------------------------------------------
def test_on_the_clock_sheets_are_left_out_unless_asked(api, emulator, company, company_data):
    running = company_data.on_the_clock_shift
    day = running.local_date.isoformat()
    default = get(api, emulator, "timesheets", start_date=day).json()["results"]["timesheets"]
    assert str(running.id) not in default
    both = get(api, emulator, "timesheets", start_date=day, on_the_clock="both").json()["results"]["timesheets"]
    assert set(both) == set(default) | {str(running.id)}
    only = get(api, emulator, "timesheets", start_date=day, on_the_clock="yes").json()["results"]["timesheets"]
    sheet = only[str(running.id)]
    assert list(only) == [str(running.id)]
    assert sheet["on_the_clock"] is True and sheet["end"] == ""
    assert sheet["duration"] == int((company_data.as_of - running.start).total_seconds())


def test_date_filters_are_inclusive_on_the_local_date(api, emulator, company):
    truth = company.timesheets(include_on_the_clock=False)
    day = truth[len(truth) // 2]["date"]
    one_day = get(api, emulator, "timesheets", start_date=day, end_date=day).json()["results"]["timesheets"]
    assert sorted(map(int, one_day)) == [t["id"] for t in truth if t["date"] == day]
    later = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
    two_days, _ = all_pages(api, emulator, "timesheets", start_date=day, end_date=later)
    assert [t["id"] for t in two_days] == [t["id"] for t in truth if day <= t["date"] <= later]


def test_jobcode_ids_include_the_child_jobcodes(api, emulator, company, company_data):
    job = next(
        j
        for j in company_data.jobs
        if company_data.milestones_of(j.id) and any(s.job_id == j.id for s in company_data.shifts)
    )
    children = {m.id for m in company_data.milestones_of(job.id)}
    found, _ = all_pages(api, emulator, "timesheets", start_date="2000-01-01", jobcode_ids=str(job.id))
    expected = [
        t["id"] for t in company.timesheets(include_on_the_clock=False) if t["jobcode_id"] in children | {job.id}
    ]
    assert found and [t["id"] for t in found] == expected
    assert {t["jobcode_id"] for t in found} <= children


def test_user_ids_and_ids_filters(api, emulator, company):
    truth = company.timesheets(include_on_the_clock=False)
    user_id = truth[0]["user_id"]
    found, _ = all_pages(api, emulator, "timesheets", start_date="2000-01-01", user_ids=str(user_id))
    assert [t["id"] for t in found] == [t["id"] for t in truth if t["user_id"] == user_id]
    wanted = [truth[1]["id"], truth[5]["id"]]
    body = get(api, emulator, "timesheets", ids=",".join(map(str, wanted))).json()
    assert sorted(map(int, body["results"]["timesheets"])) == wanted


def test_timesheets_show_local_offsets_manual_sheets_and_breaks(api, emulator, company, company_data):
    found, _ = all_pages(api, emulator, "timesheets", start_date="2000-01-01", on_the_clock="both")
    by_id = {t["id"]: t for t in found}
    assert all(t["tz_str"] == "tsMT" for t in found)
    regular = next(t for t in found if t["type"] == "regular" and not t["on_the_clock"])
    start = datetime.fromisoformat(regular["start"])
    assert start.utcoffset() == timedelta(hours=regular["tz"]) == timedelta(hours=-7)
    assert regular["last_modified"].endswith("+00:00")
    manual = next(s for s in company_data.shifts if s.manual)
    assert by_id[manual.id]["type"] == "manual"
    assert by_id[manual.id]["start"] == by_id[manual.id]["end"] == ""
    assert by_id[manual.id]["duration"] == manual.duration_seconds
    assert by_id[manual.id]["created_by_user_id"] == company.owner_user_id
    with_break = next(s for s in company_data.shifts if s.breaks)
    sheet = by_id[with_break.id]
    span = datetime.fromisoformat(sheet["end"]) - datetime.fromisoformat(sheet["start"])
    assert sheet["duration"] == with_break.duration_seconds < span.total_seconds()
    drive = next(s for s in company_data.shifts if s.is_drive)
    assert by_id[drive.id]["jobcode_id"] == company_data.drive_job.id


def test_supplemental_data_holds_the_referenced_users_and_jobcodes_unless_refused(api, emulator):
    body = get(api, emulator, "timesheets", start_date="2000-01-01", limit=20).json()
    sheets = body["results"]["timesheets"].values()
    supplemental = body["supplemental_data"]
    assert {str(t["user_id"]) for t in sheets} == set(supplemental["users"])
    assert {str(t["jobcode_id"]) for t in sheets} <= set(supplemental["jobcodes"])
    for jobcode in supplemental["jobcodes"].values():
        assert jobcode["parent_id"] == 0 or str(jobcode["parent_id"]) in supplemental["jobcodes"]
    refused = get(api, emulator, "timesheets", start_date="2000-01-01", limit=20, supplemental_data="no").json()
    assert "supplemental_data" not in refused
    assert refused["results"] == body["results"]


# -- changes after the fact ------------------------------------------------------------------------
def test_modified_since_after_an_edit_returns_only_the_edited_sheet(api, emulator, company):
    target = company.timesheets(include_on_the_clock=False)[3]
    edited = company.edit_timesheet(target["id"], duration=target["duration"] - 900, notes="Fixed by the office")
    assert edited["duration"] == target["duration"] - 900
    since = edited["last_modified"]
    body = get(api, emulator, "timesheets", modified_since=since).json()
    assert list(body["results"]["timesheets"]) == [str(target["id"])], "modified_since is inclusive"
    assert body["results"]["timesheets"][str(target["id"])] == edited
    later = (datetime.fromisoformat(since) + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    assert get(api, emulator, "timesheets", modified_since=later).json()["results"]["timesheets"] == {}


def test_modified_before_is_inclusive(api, emulator, company):
    first = min(company.timesheets(include_on_the_clock=False), key=lambda t: t["last_modified"])
    body = get(api, emulator, "timesheets", modified_before=first["last_modified"]).json()
    assert str(first["id"]) in body["results"]["timesheets"]


def test_a_deleted_sheet_moves_to_timesheets_deleted(api, emulator, company, company_data):
    target = company.timesheets(include_on_the_clock=False)[10]
    before = {t["id"] for t in company.deleted_timesheets()}
    deleted = company.delete_timesheet(target["id"])
    assert get(api, emulator, "timesheets", ids=str(target["id"])).json()["results"]["timesheets"] == {}
    found = get(api, emulator, "timesheets_deleted", modified_since=deleted["last_modified"]).json()
    assert list(found["results"]["timesheets_deleted"]) == [str(target["id"])]
    assert {t["id"] for t in company.deleted_timesheets()} == before | {target["id"]}
    # The generated deletions are there too, found by their work dates.
    window = all_pages(
        api,
        emulator,
        "timesheets_deleted",
        start_date=company_data.first_local_date.isoformat(),
        end_date=company_data.last_local_date.isoformat(),
        limit=2,
    )[0]
    assert {t["id"] for t in window} == before | {target["id"]}


def test_last_modified_timestamps_advance_after_each_kind_of_change(api, emulator, company, company_data):
    def stamps() -> dict[str, datetime]:
        body = get(api, emulator, "last_modified_timestamps").json()["results"]["last_modified_timestamps"]
        return {name: datetime.fromisoformat(value) for name, value in body.items()}

    initial = stamps()
    assert set(initial) == {"timesheets", "timesheets_deleted", "users", "jobcodes", "customfields", "current_user"}
    sheet = company.timesheets(include_on_the_clock=False)[0]
    company.edit_timesheet(sheet["id"], notes="changed")
    after_edit = stamps()
    assert after_edit["timesheets"] > initial["timesheets"]
    company.delete_timesheet(sheet["id"])
    after_delete = stamps()
    assert after_delete["timesheets_deleted"] > initial["timesheets_deleted"]
    assert after_delete["timesheets"] > after_edit["timesheets"]
    company.edit_user(company_data.workers[0].id, pay_rate=30.5)
    company.edit_jobcode(company_data.jobs[1].id, status="completed")
    final = stamps()
    assert final["users"] > initial["users"] and final["jobcodes"] > initial["jobcodes"]
    chosen = get(api, emulator, "last_modified_timestamps", endpoints="timesheets,users").json()
    assert list(chosen["results"]["last_modified_timestamps"]) == ["timesheets", "users"]


def test_added_sheets_get_new_ids_and_can_run(api, emulator, company, company_data):
    worker = next(w for w in company_data.workers if w.active and w.id != company_data.on_the_clock_shift.worker_id)
    job = company_data.jobs[2]
    start = AS_OF - timedelta(hours=2)
    running = company.add_timesheet(worker.id, job.id, start=start)
    assert running["on_the_clock"] is True and running["id"] > max(s.id for s in company_data.shifts)
    with pytest.raises(ValueError, match="already on the clock"):
        company.add_timesheet(worker.id, job.id, start=start + timedelta(minutes=5))
    manual = company.add_timesheet(worker.id, job.id, date="2026-11-18", duration=3600)
    assert manual["type"] == "manual" and manual["start"] == ""
    closed = company.edit_timesheet(running["id"], end=AS_OF - timedelta(minutes=30))
    assert closed["on_the_clock"] is False and closed["duration"] == 5400


# -- users, jobcodes, custom fields -----------------------------------------------------------------
def test_users_filter_active_and_show_pay(api, emulator, company_data):
    default, _ = all_pages(api, emulator, "users")
    everyone, _ = all_pages(api, emulator, "users", active="both")
    inactive, _ = all_pages(api, emulator, "users", active="no")
    assert {u["id"] for u in default} == {w.id for w in company_data.workers if w.active}
    assert len(everyone) == len(company_data.workers) == len(default) + len(inactive)
    for user in everyone:
        worker = company_data.worker_by_id(user["id"])
        assert user["pay_interval"] == worker.pay_interval
        expected = worker.annual_salary if worker.pay_interval == "year" else worker.hourly_wage
        assert user["pay_rate"] == float(expected)
        assert user["term_date"] == (worker.term_date.isoformat() if worker.term_date else "0000-00-00")
        assert user["last_modified"].endswith("+00:00")


def test_jobcodes_show_jobs_milestones_status_and_budgets(api, emulator, company, company_data):
    fields = get(api, emulator, "customfields", applies_to="jobcode").json()["results"]["customfields"]
    field_id = {f["name"]: key for key, f in fields.items()}
    assert set(field_id) == {"Budget Hours", "Job Status", "Recurring"}
    assert get(api, emulator, "customfields").json()["results"]["customfields"] == {}, "default applies_to=timesheet"

    everything, _ = all_pages(api, emulator, "jobcodes", active="both", customfields="true")
    by_id = {j["id"]: j for j in everything}
    assert len(everything) == len(company_data.jobs) + len(company_data.milestones)
    for job in company_data.jobs:
        record = by_id[job.id]
        assert record["parent_id"] == 0 and record["name"] == job.name
        assert record["active"] == (job.status == "open")
        assert record["customfields"][field_id["Job Status"]] == job.status.capitalize()
        assert record["customfields"][field_id["Recurring"]] == ("Yes" if job.recurring else "No")
        budget = record["customfields"][field_id["Budget Hours"]]
        assert (float(budget) if budget else None) == job.budget_hours
        assert record["has_children"] == bool(company_data.milestones_of(job.id))
    for milestone in company_data.milestones:
        record = by_id[milestone.id]
        assert record["parent_id"] == milestone.job_id
        assert field_id["Recurring"] not in record["customfields"]
        budget = record["customfields"][field_id["Budget Hours"]]
        assert (float(budget) if budget else None) == milestone.budget_hours
    assert by_id[company_data.drive_job.id]["name"] == "Drive Time"

    top, _ = all_pages(api, emulator, "jobcodes", parent_ids="0", active="both")
    assert {j["id"] for j in top} == {j.id for j in company_data.jobs}
    assert "customfields" not in top[0]
    default, _ = all_pages(api, emulator, "jobcodes")
    assert all(j["active"] for j in default)
    assert get(api, emulator, "jobcodes", type="pto").json()["results"]["jobcodes"] == {}
    assert everything == company.jobcodes(include_inactive=True, customfields=True)


def test_editing_a_jobcode_status_changes_active_and_the_custom_field(api, emulator, company, company_data):
    job = next(j for j in company_data.jobs if j.status == "open" and not j.is_drive)
    edited = company.edit_jobcode(job.id, status="completed", budget_hours=12.5)
    assert edited["active"] is False
    assert edited["customfields"][str(company.job_status_field_id)] == "Completed"
    assert edited["customfields"][str(company.budget_hours_field_id)] == "12.5"
    changed = get(api, emulator, "jobcodes", modified_since=edited["last_modified"], active="both").json()
    assert list(changed["results"]["jobcodes"]) == [str(job.id)]


# -- errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("endpoint", "params", "named"),
    [
        ("timesheets", {}, "ids, start_date, modified_since or modified_before"),
        ("timesheets", {"start_date": "2026-11-01", "limit": "0"}, "limit must be an integer from 1 to 200"),
        ("timesheets", {"start_date": "2026-11-01", "limit": "201"}, "limit must be an integer from 1 to 200"),
        ("users", {"limit": "ten"}, "limit must be an integer from 1 to 200"),
        ("users", {"page": "0"}, "page"),
        ("timesheets", {"start_date": "2026-13-01"}, "start_date"),
        ("timesheets", {"modified_since": "yesterday"}, "modified_since"),
        ("timesheets", {"modified_since": "2026-11-01T00:00:00 00:00"}, "%2B"),
        ("timesheets", {"start_date": "2026-11-01", "on_the_clock": "maybe"}, "on_the_clock"),
        ("timesheets", {"ids": "1,two"}, "ids"),
        ("timesheets_deleted", {}, "must be supplied"),
        ("timesheets_deleted", {"start_date": "2026-11-01"}, "start_date and end_date"),
        ("jobcodes", {"customfields": "perhaps"}, "customfields"),
        ("last_modified_timestamps", {"endpoints": "timesheets,nope"}, "nope"),
    ],
)
def test_missing_or_malformed_parameters_get_417_naming_them(api, emulator, endpoint, params, named):
    response = get(api, emulator, endpoint, **params)
    assert response.status_code == 417
    assert response.json()["error"]["code"] == 417
    assert named in response.json()["error"]["message"]


def test_unknown_paths_get_404_and_wrong_methods_405(api, emulator):
    missing = get(api, emulator, "invoices")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == 404
    wrong = api.post(f"{emulator.base_url}/timesheets", json={"data": []}, timeout=10)
    assert wrong.status_code == 405 and wrong.json()["error"]["code"] == 405
    assert requests.get(f"{emulator.root_url}/elsewhere", timeout=10).status_code == 404


# -- faults --------------------------------------------------------------------------------------
def test_rate_limit_answers_429_with_and_without_retry_after(api, emulator):
    emulator.faults.rate_limit(times=1, retry_after=2)
    emulator.faults.rate_limit(times=1, retry_after=None)
    first, second, third = (get(api, emulator, "current_user") for _ in range(3))
    assert first.status_code == 429 and first.headers["Retry-After"] == "2"
    assert first.json() == {"error": {"code": 429, "message": "Too Many Requests"}}
    assert second.status_code == 429 and "Retry-After" not in second.headers
    assert third.status_code == 200


def test_server_errors_then_recovery(api, emulator):
    emulator.faults.server_error(times=3, status=503)
    statuses = [get(api, emulator, "current_user").status_code for _ in range(4)]
    assert statuses == [503, 503, 503, 200]
    emulator.faults.server_error(times=1, status=502)
    assert get(api, emulator, "current_user").status_code == 502
    with pytest.raises(ValueError):
        emulator.faults.server_error(status=418)
    assert [entry.status for entry in emulator.request_log] == [503, 503, 503, 200, 502]
    assert emulator.request_count == 5


def test_latency_slows_every_vendor_request_until_cleared(api, emulator):
    emulator.faults.latency(seconds=0.3)
    started = time.perf_counter()
    assert get(api, emulator, "current_user").status_code == 200
    assert time.perf_counter() - started >= 0.3
    emulator.faults.clear()
    started = time.perf_counter()
    get(api, emulator, "current_user")
    assert time.perf_counter() - started < 0.3


def test_a_dropped_connection_gives_no_answer(api, emulator):
    emulator.faults.drop_connection(times=1)
    with pytest.raises(requests.ConnectionError):
        get(api, emulator, "current_user")
    assert get(api, emulator, "current_user").status_code == 200
    assert emulator.request_log[0].status == 0


def test_the_optional_real_rate_limit(company_data):
    with QuickBooksTimeEmulator(rate_limit_per_5_minutes=3) as limited:
        token = limited.add_company(company_data)
        headers = {"Authorization": f"Bearer {token}"}
        statuses = [
            requests.get(f"{limited.base_url}/current_user", headers=headers, timeout=10).status_code for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]


def test_an_expired_token_is_renewed_through_grant(api, emulator, company):
    old_access, old_refresh = company.access_token, company.refresh_token
    emulator.faults.expire_token(old_access)
    expired = get(api, emulator, "current_user")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]

    grant_url = f"{emulator.base_url}/grant"
    form = {
        "grant_type": "refresh_token",
        "client_id": "protiv-demo",
        "client_secret": "secret-for-tests",
        "refresh_token": old_refresh,
    }
    wrong = requests.post(grant_url, data={**form, "client_secret": "nope"}, timeout=10)
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_grant"
    assert "secret-for-tests" not in wrong.text and old_refresh not in wrong.text

    granted = requests.post(grant_url, data=form, timeout=10)
    assert granted.status_code == 200
    body = granted.json()
    assert set(body) == {
        "access_token",
        "expires_in",
        "token_type",
        "scope",
        "refresh_token",
        "user_id",
        "company_id",
        "client_url",
    }
    assert body["expires_in"] == 864000 and body["token_type"] == "bearer"
    assert body["user_id"] == str(company.owner_user_id)
    assert body["access_token"] != old_access and body["refresh_token"] != old_refresh

    assert get(api, emulator, "current_user").status_code == 401, "the old token is gone"
    api.headers["Authorization"] = f"Bearer {body['access_token']}"
    assert get(api, emulator, "current_user").status_code == 200
    reused = requests.post(grant_url, data=form, timeout=10)
    assert reused.status_code == 401, "the old refresh token is gone too"
    code_flow = requests.post(grant_url, data={"grant_type": "authorization_code", "code": "x"}, timeout=10)
    assert code_flow.status_code == 400 and code_flow.json()["error"] == "unsupported_grant_type"


def test_tokens_expire_on_their_own(company_data):
    with QuickBooksTimeEmulator(access_token_lifetime_seconds=0) as short_lived:
        token = short_lived.add_company(company_data)
        time.sleep(0.01)
        response = requests.get(
            f"{short_lived.base_url}/current_user", headers={"Authorization": f"Bearer {token}"}, timeout=10
        )
        assert response.status_code == 401


# -- the control API ---------------------------------------------------------------------------------
def test_the_control_api_changes_data_from_another_process(api, emulator, company, company_data):
    sheet = company.timesheets(include_on_the_clock=False)[4]
    edited = control(emulator, f"timesheets/{sheet['id']}/edit", {"notes": "via HTTP", "duration": 3600})
    assert edited.status_code == 200, edited.text
    assert edited.json()["notes"] == "via HTTP" and edited.json()["duration"] == 3600
    served = get(api, emulator, "timesheets", ids=str(sheet["id"])).json()["results"]["timesheets"]
    assert served[str(sheet["id"])] == edited.json()

    deleted = control(emulator, f"timesheets/{sheet['id']}/delete")
    assert deleted.status_code == 200
    assert sheet["id"] in {t["id"] for t in company.deleted_timesheets()}

    worker = company_data.workers[0]
    added = control(
        emulator,
        "timesheets",
        {
            "user_id": worker.id,
            "jobcode_id": company_data.jobs[1].id,
            "start": "2026-11-19T08:00:00-07:00",
            "end": "2026-11-19T12:00:00-07:00",
        },
    )
    assert added.status_code == 200 and added.json()["duration"] == 4 * 3600
    user = control(emulator, f"users/{worker.id}/edit", {"last_name": "Changed"})
    assert user.json()["last_name"] == "Changed"
    jobcode = control(emulator, f"jobcodes/{company_data.jobs[1].id}/edit", {"status": "canceled"})
    assert jobcode.json()["active"] is False

    assert control(emulator, "timesheets/1/edit", {"notes": "x"}).status_code == 404
    assert control(emulator, f"timesheets/{added.json()['id']}/edit", {"colour": "red"}).status_code == 400
    bad_json = requests.post(f"{emulator.control_url}/faults", data="{not json", timeout=10)
    assert bad_json.status_code == 400
    assert emulator.request_count == 1, "control calls are not vendor requests"


def test_the_control_api_switches_faults(api, emulator, company):
    assert control(emulator, "faults", {"action": "rate_limit", "times": 1, "retry_after": 1}).status_code == 200
    assert get(api, emulator, "current_user").status_code == 429
    control(emulator, "faults", {"action": "server_error", "times": 1, "status": 500})
    assert get(api, emulator, "current_user").status_code == 500
    control(emulator, "faults", {"action": "expire_token", "company_id": company.company_id})
    assert get(api, emulator, "current_user").status_code == 401
    control(emulator, "faults", {"action": "clear"})
    assert get(api, emulator, "current_user").status_code == 200
    assert control(emulator, "faults", {"action": "explode"}).status_code == 400
    status = requests.get(f"{emulator.control_url}/status", timeout=10).json()
    assert status == {"request_count": 4, "company_ids": [company.company_id]}


# -- hosting -------------------------------------------------------------------------------------
def test_one_server_hosts_many_companies_each_behind_its_own_token(company_data):
    other = generate_company("other-co", seed=9, workers=6, days=7, as_of=AS_OF)
    with QuickBooksTimeEmulator() as emulator:
        first, second = emulator.add_company(company_data), emulator.add_company(other)
        for token, data in ((first, company_data), (second, other)):
            users = requests.get(
                f"{emulator.base_url}/users",
                params={"active": "both"},
                headers={"Authorization": f"Bearer {token}"},
                timeout=10,
            ).json()
            assert {int(i) for i in users["results"]["users"]} == {w.id for w in data.workers}
        assert emulator.company(second).company_id == "other-co"
        with pytest.raises(ValueError, match="already hosted"):
            emulator.add_company(other)
        sheet_id = other.shifts[0].id
        edited = control(emulator, f"timesheets/{sheet_id}/edit", {"notes": "found by id"})
        assert edited.status_code == 200 and edited.json()["notes"] == "found by id"


def test_a_fixed_port_can_be_bound_again_right_after_a_stop(company_data):
    with QuickBooksTimeEmulator() as first:
        first.add_company(company_data)
        port = first.port
        requests.get(f"{first.base_url}/current_user", timeout=10)
    with QuickBooksTimeEmulator(port=port) as second:
        assert second.base_url == f"http://127.0.0.1:{port}/api/v1"
        assert requests.get(f"{second.base_url}/current_user", timeout=10).status_code == 401
