"""The BusyBusy client over real HTTP against the emulator: login, re-login, paging, filters, faults."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, date, datetime, timedelta

import pytest

from protiv_dagster.vendors.busybusy.client import (
    CHANGE_ROOTS,
    QUERIES,
    BusyBusyClient,
    BusyBusyTuning,
    graphql_url_for,
    local_day_window,
    query_text,
)
from protiv_dagster.vendors.http import (
    VendorAuthError,
    VendorRequestError,
    VendorUnavailableError,
)
from protiv_emulators.busybusy import COST_CODES, TASK_COST_CODES, BusyBusyEmulator
from protiv_emulators.generator import generate_company

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
FIRST_DAY, LAST_DAY = date(2026, 11, 7), date(2026, 11, 20)
ZONE = "America/Denver"
USERNAME, PASSWORD = "boss@acme.example", "correct horse battery"


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=3, workers=30, days=14, as_of=AS_OF, timezone=ZONE)


@pytest.fixture
def emulator(company_data):
    with BusyBusyEmulator() as emulator:
        emulator.add_company(company_data, username=USERNAME, password=PASSWORD)
        yield emulator


def make_client(emulator, password=PASSWORD, page_size=500, **options) -> BusyBusyClient:
    options.setdefault("initial_backoff_seconds", 0.01)
    options.setdefault("max_wait_seconds", 0.2)
    return BusyBusyClient(emulator.rest_url, USERNAME, password, page_size=page_size, **options)


def window_truth(emulator) -> list[str]:
    start, end = local_day_window(FIRST_DAY, LAST_DAY, ZONE)
    lo, hi = start.strftime("%Y-%m-%dT%H:%M:%SZ"), end.strftime("%Y-%m-%dT%H:%M:%SZ")
    return sorted(e["id"] for e in emulator.company("acme").records("timeEntries") if lo <= e["startTime"] < hi)


def assert_secret_free(message: str, client: BusyBusyClient | None = None) -> None:
    assert "BusyBusy" in message
    assert PASSWORD not in message and "new password!" not in message
    assert hashlib.sha256(PASSWORD.encode()).hexdigest() not in message
    if client is not None and client.key:
        assert client.key not in message


def test_url_layout():
    assert graphql_url_for("https://api.busybusy.io") == "https://graphql.busybusy.io/"
    assert graphql_url_for("http://127.0.0.1:8080/rest") == "http://127.0.0.1:8080/graphql"
    with pytest.raises(ValueError, match="graphql_url"):
        graphql_url_for("https://example.com/api")
    client = BusyBusyTuning(graphql_url="https://gql.example/").client("https://example.com/api", "u", "p")
    assert client.base_url == "https://gql.example"


def test_login_then_reads(emulator):
    client = make_client(emulator)
    members = client.members()
    assert client.key and len(members) == 30
    assert all(m["wageHistories"] for m in members)
    assert emulator.request_log[0].path == "/rest/member"
    assert client.request_count == emulator.request_count == 2  # one login, one page


def test_wrong_password_is_a_clear_auth_error(emulator):
    client = make_client(emulator, password="wrong password")
    with pytest.raises(VendorAuthError) as caught:
        client.members()
    assert_secret_free(str(caught.value))
    assert "wrong password" not in str(caught.value)
    assert emulator.request_count == 1  # a refused login is not retried


def test_changed_password_relogs_once_then_fails_clearly(emulator):
    client = make_client(emulator)
    client.cost_codes()
    old_key = client.key
    emulator.change_password("acme", "new password!")
    with pytest.raises(VendorAuthError) as caught:
        client.cost_codes()
    message = str(caught.value)
    assert_secret_free(message, client)
    assert old_key not in message
    assert "password" in message and "reconnect" in message
    # 401 on the old key, then one login attempt that is refused: no loop.
    assert [r.status for r in emulator.request_log][-2:] == [401, 401]
    assert sum(1 for r in emulator.request_log if r.path == "/rest/member") == 2


def test_a_dead_key_is_renewed_by_logging_in_again(emulator):
    client = make_client(emulator)
    client.cost_codes()
    client.key = "a-key-that-died"
    assert len(client.cost_codes()) == len(COST_CODES) + len(TASK_COST_CODES)
    assert client.key != "a-key-that-died"
    assert [r.status for r in emulator.request_log] == [200, 200, 401, 200, 200]


def test_cursor_paging_across_many_pages_equals_ground_truth(emulator):
    client = make_client(emulator, page_size=50)
    start, end = local_day_window(FIRST_DAY, LAST_DAY, ZONE)
    got = client.time_entries(start_from=start, start_before=end)
    truth = window_truth(emulator)
    assert len(truth) > 500
    assert sorted(e["id"] for e in got) == truth and len(got) == len(truth)
    graphql_calls = [r for r in emulator.request_log if r.path == "/graphql"]
    assert len(graphql_calls) == len(truth) // 50 + 1
    assert all(r.operation == "timeEntries" for r in graphql_calls)


def test_paging_with_entries_inserted_and_deleted_between_pages(emulator, company_data):
    company = emulator.company("acme")
    client = make_client(emulator, page_size=40)
    start, end = local_day_window(FIRST_DAY, LAST_DAY, ZONE)
    before = set(window_truth(emulator))
    pages = client.pages("timeEntries", {"startTime": {"greaterThanOrEqual": start.isoformat()}})
    seen = [e["id"] for e in next(pages)]
    shift = company_data.shifts[10]
    added = [
        company.add_time_entry(
            company.member_id(shift.worker_id),
            company.project_id(shift.job_id),
            AS_OF - timedelta(days=2, minutes=10 * i),
            AS_OF - timedelta(days=2, minutes=10 * i - 5),
        )["id"]
        for i in range(6)
    ]
    victim = sorted(before - set(seen))[0]
    company.delete_time_entry(victim)
    for page in pages:
        seen += [e["id"] for e in page]
    assert len(seen) == len(set(seen))
    assert before <= set(seen)  # nothing that existed is skipped; a soft-deleted entry is still listed
    after_cursor = [a for a in added if a > seen[39]]
    assert set(after_cursor) <= set(seen)  # new entries after the cursor are picked up


def test_incremental_by_updated_on_and_soft_deletes(emulator):
    client = make_client(emulator)
    start, end = local_day_window(FIRST_DAY, LAST_DAY, ZONE)
    every = client.time_entries(start_from=start, start_before=end)
    mark = max(datetime.fromisoformat(e["updatedOn"].replace("Z", "+00:00")) for e in every) + timedelta(seconds=1)
    assert client.time_entries(updated_since=mark) == []
    company = emulator.company("acme")
    live = [e for e in every if e["deletedOn"] is None and e["endTime"]]
    company.edit_time_entry(live[0]["id"], description="moved")
    company.delete_time_entry(live[1]["id"])
    changed = {e["id"]: e for e in client.time_entries(updated_since=mark)}
    assert set(changed) == {live[0]["id"], live[1]["id"]}
    assert changed[live[1]["id"]]["deletedOn"] and changed[live[0]["id"]]["deletedOn"] is None
    deleted = client.time_entries(start_from=start, start_before=end, deleted=True)
    assert live[1]["id"] in {e["id"] for e in deleted} and all(e["deletedOn"] for e in deleted)
    not_deleted = client.time_entries(start_from=start, start_before=end, deleted=False)
    assert len(deleted) + len(not_deleted) == len(every)
    assert {e["id"] for e in client.time_entries(ids=[live[0]["id"]])} == {live[0]["id"]}
    with pytest.raises(ValueError):
        client.time_entries()


def test_graphql_errors_are_errors_not_empty_data(emulator):
    client = make_client(emulator)
    emulator.faults.graphql_error(times=1, message="Cannot query field 'timeEntries' on type 'Query'.")
    with pytest.raises(VendorRequestError) as caught:
        client.time_entries(updated_since=AS_OF)
    assert "timeEntries" in str(caught.value) and "BusyBusy" in str(caught.value)
    with pytest.raises(VendorRequestError, match="noSuchField"):
        client.execute("{ members { id noSuchField } }")
    with pytest.raises(VendorRequestError, match="ISO 8601"):
        client.all("timeEntries", {"updatedOn": {"greaterThanOrEqual": "last tuesday"}})


def test_rate_limits_and_server_errors_are_retried(emulator):
    client = make_client(emulator)
    emulator.faults.rate_limit(times=2, retry_after=0)
    emulator.faults.server_error(times=2, status=503)
    emulator.faults.drop_connection(times=1)
    assert len(client.projects()) > 0  # the login went through the faults
    assert client.retry_count == 5
    emulator.faults.rate_limit(times=1, retry_after=0)
    emulator.faults.server_error(times=1, status=500)
    assert len(client.cost_codes()) == len(COST_CODES) + len(TASK_COST_CODES)  # and so does a GraphQL query
    assert client.retry_count == 7
    assert [r.status for r in emulator.request_log][-3:] == [429, 500, 200]


def test_persistent_outage_is_unavailable(emulator):
    client = make_client(emulator, max_attempts=3)
    emulator.faults.server_error(times=10, status=502)
    with pytest.raises(VendorUnavailableError, match="BusyBusy"):
        client.cost_codes()


def test_a_window_in_the_middle_asks_only_at_least_and_stops_paging_at_its_end(emulator):
    # No "less than" is documented: the client asks startTime >= the window's start, sorted by start,
    # and stops at the first page that passes the window's end (not reading the weeks after it).
    client = make_client(emulator, page_size=50)
    start, end = local_day_window(date(2026, 11, 9), date(2026, 11, 15), ZONE)
    got = client.time_entries(start_from=start, start_before=end)
    lo, hi = (moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in (start, end))
    every = emulator.company("acme").records("timeEntries")
    truth = sorted(e["id"] for e in every if lo <= e["startTime"] < hi)
    later = sum(e["startTime"] >= hi for e in every)
    assert len(truth) > 100 and later > 100
    assert sorted(e["id"] for e in got) == truth
    graphql_calls = [r for r in emulator.request_log if r.path == "/graphql"]
    assert len(graphql_calls) == len(truth) // 50 + 1  # the page that crosses the end is the last read


def test_budgets_read_latest_only(emulator):
    client = make_client(emulator)
    company = emulator.company("acme")
    latest = {b["id"] for b in company.records("budgetHours") if b["isLatest"]}
    assert len(latest) < len(company.records("budgetHours"))  # the emulator keeps a superseded version
    hours = client.budget_hours()
    assert {h["id"] for h in hours} == latest
    # One latest row per project and cost code: the project's own (no cost code) and its cost codes'.
    assert len({(h["projectId"], h["costCodeId"]) for h in hours}) == len(hours)
    assert any(h["costCodeId"] for h in hours) and any(not h["costCodeId"] for h in hours)
    assert {c["id"] for c in client.budget_costs()} == {
        b["id"] for b in company.records("budgetCosts") if b["isLatest"]
    }


# The fields BusyBusy's own or its integrators' client code names (the project's vendor notes): the
# queries select nothing else. Not named anywhere: Project.rootProjectId, BudgetCost.createdOn, the
# budgets' isLatest as a field (it is a filter), a wage history's id.
NAMED_FIELDS = {
    "members": {
        "id",
        "cursor",
        "firstName",
        "lastName",
        "username",
        "email",
        "phone",
        "memberNumber",
        "createdOn",
        "updatedOn",
        "archivedOn",
        "deletedOn",
        "wageHistories",
        "wage",
        "wageRate",
        "overburden",
        "effectiveRate",
        "changeDate",
    },
    "projects": {
        "id",
        "cursor",
        "title",
        "archivedOn",
        "depth",
        "createdOn",
        "updatedOn",
        "parentProjectId",
        "projectInfo",
        "projectId",
        "number",
        "customer",
    },
    "costCodes": {"id", "cursor", "costCode", "title", "unitTitle", "createdOn", "updatedOn", "archivedOn"},
    "budgetHours": {
        "id",
        "cursor",
        "projectId",
        "memberId",
        "budgetSeconds",
        "costCodeId",
        "equipmentId",
        "createdOn",
        "equipmentBudgetSeconds",
    },
    "budgetCosts": {
        "id",
        "cursor",
        "projectId",
        "memberId",
        "costBudget",
        "costCodeId",
        "equipmentId",
        "equipmentCostBudget",
    },
    "timeEntries": {
        "id",
        "cursor",
        "memberId",
        "projectId",
        "costCodeId",
        "equipmentId",
        "startTime",
        "endTime",
        "breaks",
        "actionType",
        "description",
        "createdOn",
        "updatedOn",
        "deletedOn",
        "submittedOn",
    },
}


def _selected(selection: str) -> set[str]:
    return set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", selection))


def test_the_queries_select_only_fields_a_source_names():
    for root, (_, selection) in QUERIES.items():
        assert _selected(selection) <= NAMED_FIELDS[root], (root, _selected(selection) - NAMED_FIELDS[root])
    for root, spec in CHANGE_ROOTS.items():
        assert _selected(spec.selection) <= NAMED_FIELDS[root], root
    assert "rootProjectId" not in QUERIES["projects"][1] and "createdOn" not in QUERIES["budgetCosts"][1]
    assert all("isLatest" not in selection for _, selection in QUERIES.values())


def test_query_texts_name_only_the_schema_fields(emulator):
    client = make_client(emulator)
    for root in ("members", "projects", "costCodes", "budgetHours", "budgetCosts", "timeEntries"):
        data = client.execute(query_text(root), {"filter": None, "first": 1, "after": None})
        assert isinstance(data[root], list)


def test_changed_after_reads_every_root_in_one_request_and_pages_only_full_roots(emulator):
    client = make_client(emulator, page_size=50)
    company = emulator.company("acme")
    changes = client.changed_after({root: "1970-01-01T00:00:00Z" for root in ("timeEntries", "members", "projects")})
    entries = company.records("timeEntries")
    assert len(entries) > 100 and len(company.records("members")) < 50
    assert sorted(e["id"] for e in changes["timeEntries"]) == sorted(e["id"] for e in entries)
    assert len(changes["members"]) == len(company.records("members"))
    assert len(changes["projects"]) == len(company.records("projects"))
    # Login, one request for every root, then one per further page of the time entries only.
    assert client.request_count == 1 + len(entries) // 50 + 1


def test_changed_after_is_inclusive_and_sees_soft_deletes(emulator):
    # At or after the mark: greaterThanOrEqual is the only range operator the vendor notes name (the
    # source's ChangeLog drops the records stamped exactly at the mark, which it already reported).
    client = make_client(emulator)
    company = emulator.company("acme")
    newest = max(e["updatedOn"] for e in company.records("timeEntries"))
    at_mark = {e["id"] for e in company.records("timeEntries") if e["updatedOn"] == newest}
    assert {e["id"] for e in client.changed_after({"timeEntries": newest})["timeEntries"]} == at_mark
    victim = next(e for e in company.records("timeEntries") if e["deletedOn"] is None)
    company.delete_time_entry(victim["id"])
    found = [e for e in client.changed_after({"timeEntries": newest})["timeEntries"] if e["id"] not in at_mark]
    assert [(e["id"], e["deletedOn"] is not None) for e in found] == [(victim["id"], True)]


def test_newest_stamps_is_one_request(emulator):
    client = make_client(emulator)
    stamps, listed = client.newest_stamps()
    company = emulator.company("acme")
    assert stamps["timeEntries"] == max(e["updatedOn"] for e in company.records("timeEntries"))
    assert stamps["budgetHours"] == max(b["createdOn"] for b in company.records("budgetHours"))
    # The cost budgets name no stamp: their latest records are listed in the same request.
    assert "budgetCosts" not in stamps
    assert {b["id"] for b in listed["budgetCosts"]} == {
        b["id"] for b in company.records("budgetCosts") if b["isLatest"]
    }
    assert client.request_count == 2  # login + one GraphQL request


def test_changed_after_asks_again_when_a_page_after_a_full_one_comes_back_empty(emulator):
    # A glitchy empty page would otherwise end the root and drop every change after it for good.
    client = make_client(emulator, page_size=50)
    entries = emulator.company("acme").records("timeEntries")
    emulator.faults.between_pages(lambda: emulator.faults.empty_page(1), after_pages=1)
    changes = client.changed_after({"timeEntries": "1970-01-01T00:00:00Z"})
    assert sorted(e["id"] for e in changes["timeEntries"]) == sorted(e["id"] for e in entries)
    # Login, the pages of the listing, and the one page asked again.
    assert client.request_count == 1 + len(entries) // 50 + 1 + 1
