"""The fault switches every emulator shares (``protiv_emulators.server``): the ``Faults`` queue on
its own, then each fault over real HTTP against all three emulators, switched from Python and from
the ``/_emulator`` control API."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
import requests

from protiv_emulators.aspire import AspireEmulator
from protiv_emulators.busybusy import BusyBusyEmulator
from protiv_emulators.generator import CompanyData, generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator
from protiv_emulators.server import Faults

PAGE = 5  # records per page: small, so the generated company has many pages


# -- the queue on its own ---------------------------------------------------------------------------
def test_one_shot_faults_queue_in_the_order_they_are_switched_on():
    faults = Faults()
    faults.rate_limit(times=2, retry_after=None)
    faults.read_timeout(seconds=0.5)
    faults.truncated_json()
    faults.invalid_json()
    faults.server_error(status=504)
    faults.drop_connection()
    kinds = [faults.next_one_shot() for _ in range(8)]
    assert kinds == [
        ("rate_limit", {"retry_after": None}),
        ("rate_limit", {"retry_after": None}),
        ("read_timeout", {"seconds": 0.5}),
        ("truncated_json", {}),
        ("invalid_json", {}),
        ("server_error", {"status": 504}),
        ("drop_connection", {}),
        None,
    ]


@pytest.mark.parametrize(
    "switch",
    [
        lambda f: f.rate_limit(times=0),
        lambda f: f.server_error(status=418),
        lambda f: f.read_timeout(seconds=0),
        lambda f: f.truncated_json(times=0),
        lambda f: f.invalid_json(times=-1),
        lambda f: f.empty_page(times=0),
        lambda f: f.between_pages(lambda: None, after_pages=0),
        lambda f: f.between_pages("not callable"),
        lambda f: f.latency(-1),
    ],
)
def test_bad_switches_are_refused(switch):
    with pytest.raises(ValueError):
        switch(Faults())


def test_empty_pages_and_page_hooks_count_listing_pages():
    faults = Faults()
    faults.empty_page(times=2)
    assert [faults.take_empty_page() for _ in range(3)] == [True, True, False]
    ran: list[str] = []
    faults.between_pages(lambda: ran.append("second"), after_pages=2)
    faults.between_pages(lambda: ran.append("first"))
    for _ in range(4):
        for callback in faults.page_served():
            callback()
    assert ran == ["first", "second"]  # each once, after its own count of pages


def test_clear_switches_everything_off_and_wakes_a_stalled_request():
    faults = Faults()
    faults.rate_limit()
    faults.empty_page()
    faults.between_pages(lambda: None)
    faults.latency(5)
    faults.expire_token("t")
    stalled = threading.Thread(target=faults.stall, args=(30,))
    started = time.monotonic()
    stalled.start()
    time.sleep(0.05)
    faults.clear()
    stalled.join(timeout=5)
    assert not stalled.is_alive() and time.monotonic() - started < 5
    assert faults.next_one_shot() is None and not faults.take_empty_page() and faults.page_served() == []
    assert faults.latency_seconds == 0 and not faults.is_expired("t")


# -- one adapter per vendor: a paged listing of time records, a non-listing request, deletions -------
class Vendor:
    """What the shared-fault tests need of one emulator; ``page(n)`` walks one listing from page 1."""

    name: str
    emulator: Any
    company_id = "acme"

    def page(self, number: int) -> requests.Response:
        raise NotImplementedError

    def ids(self, response: requests.Response) -> list[Any]:
        raise NotImplementedError

    def assert_empty_page(self, response: requests.Response) -> None:
        raise NotImplementedError

    def other(self) -> requests.Response:
        """A vendor request that is not a listing page."""
        raise NotImplementedError

    def delete(self, record_id: Any) -> None:
        raise NotImplementedError

    def delete_call(self, record_id: Any) -> dict[str, Any]:
        """The control API call that deletes the record."""
        raise NotImplementedError

    def control(self, body: dict[str, Any]) -> requests.Response:
        return requests.post(self.emulator.control_url + "/faults", json=body, timeout=5)


class QuickBooksTime(Vendor):
    name = "quickbooks_time"

    def __init__(self, data: CompanyData):
        self.emulator = QuickBooksTimeEmulator().start()
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + self.emulator.add_company(data)

    def page(self, number, timeout=5):
        params = {"start_date": "2000-01-01", "limit": PAGE, "page": number}
        return self.session.get(self.emulator.base_url + "/timesheets", params=params, timeout=timeout)

    def ids(self, response):
        return [int(i) for i in response.json()["results"]["timesheets"]]

    def assert_empty_page(self, response):
        # Protocol-plausible: "more" stays true so a client goes on to the next page.
        assert response.json() == {"results": {"timesheets": {}}, "more": True, "supplemental_data": {}}

    def other(self):
        return self.session.get(self.emulator.base_url + "/current_user", timeout=5)

    def delete(self, record_id):
        self.emulator.company(self.company_id).delete_timesheet(record_id)

    def delete_call(self, record_id):
        return {"path": f"/timesheets/{record_id}/delete", "body": {}}


class Aspire(Vendor):
    name = "aspire"

    def __init__(self, data: CompanyData):
        self.emulator = AspireEmulator().start()
        client_id, secret = self.emulator.add_company(data)
        answer = requests.post(
            self.emulator.base_url + "/Authorization", json={"ClientId": client_id, "Secret": secret}, timeout=5
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = "Bearer " + answer.json()["Token"]

    def page(self, number, timeout=5):
        params = {"$orderby": "WorkTicketTimeID", "$pageNumber": number, "$limit": PAGE}
        return self.session.get(self.emulator.base_url + "/WorkTicketTimes", params=params, timeout=timeout)

    def ids(self, response):
        return [row["WorkTicketTimeID"] for row in response.json()]

    def assert_empty_page(self, response):
        assert response.json() == []

    def other(self):
        return self.session.get(self.emulator.base_url + "/NotAnEndpoint", timeout=5)

    def delete(self, record_id):
        self.emulator.company(self.company_id).delete_work_ticket_time(record_id)

    def delete_call(self, record_id):
        return {"path": f"/work_ticket_times/{record_id}/delete", "body": {}}


class BusyBusy(Vendor):
    name = "busybusy"
    QUERY = (
        "query($a: String) { timeEntries(filter: {deletedOn: {isNull: true}}, first: "
        + str(PAGE)
        + ", after: $a) { id cursor } }"
    )

    def __init__(self, data: CompanyData):
        self.emulator = BusyBusyEmulator().start()
        username, password = self.emulator.add_company(data, username="boss@acme.example", password="pw")
        import base64
        import hashlib

        digest = hashlib.sha256(password.encode()).hexdigest()
        login = requests.get(
            self.emulator.rest_url + "/member",
            params={"username": username, "_version": "3.2"},
            headers={"Authorization": "Basic " + base64.b64encode(f"{username}:{digest}".encode()).decode()},
            timeout=5,
        )
        self.session = requests.Session()
        self.session.headers["key-authorization"] = login.json()["public_key"]
        self.cursors: dict[int, str | None] = {1: None}  # page number -> the cursor that asks for it

    def page(self, number, timeout=5):
        response = self.session.post(
            self.emulator.graphql_url,
            json={"query": self.QUERY, "variables": {"a": self.cursors[number]}},
            timeout=timeout,
        )
        try:
            entries = response.json()["data"]["timeEntries"]
        except (ValueError, KeyError, TypeError):
            return response
        if entries:
            self.cursors[number + 1] = entries[-1]["cursor"]
        return response

    def ids(self, response):
        return [entry["id"] for entry in response.json()["data"]["timeEntries"]]

    def assert_empty_page(self, response):
        # Plain lists carry no pageInfo, so an empty page is an empty list (no next cursor).
        assert response.json() == {"data": {"timeEntries": []}}

    def other(self):
        return self.session.post(
            self.emulator.graphql_url, json={"query": "{ __schema { queryType { name } } }"}, timeout=5
        )

    def delete(self, record_id):
        self.emulator.company(self.company_id).delete_time_entry(record_id)

    def delete_call(self, record_id):
        return {"path": f"/timeEntries/{record_id}/delete", "body": {}}


@pytest.fixture(scope="module")
def company_data():
    return generate_company("acme", seed=11, workers=6, days=7)


@pytest.fixture(params=[QuickBooksTime, Aspire, BusyBusy], ids=lambda cls: cls.name)
def vendor(request, company_data):
    vendor = request.param(company_data)
    yield vendor
    vendor.emulator.faults.clear()  # wakes any request still stalled by read_timeout
    vendor.emulator.stop()


def statuses(vendor: Vendor) -> list[int]:
    return [entry.status for entry in vendor.emulator.request_log]


# -- each shared fault against every emulator -------------------------------------------------------
@pytest.mark.parametrize("switch", ["python", "control"])
def test_read_timeout_outlasts_a_short_client_timeout_once(vendor, switch):
    if switch == "python":
        vendor.emulator.faults.read_timeout(times=1, seconds=3)
    else:
        assert vendor.control({"action": "read_timeout", "times": 1, "seconds": 3}).json()["ok"]
    started = time.monotonic()
    with pytest.raises(requests.ReadTimeout):
        vendor.page(1, timeout=0.3)
    assert time.monotonic() - started < 2
    started = time.monotonic()
    assert vendor.page(1, timeout=2).status_code == 200  # one-shot: the next request is answered at once
    assert time.monotonic() - started < 1


def test_latency_delays_every_request_and_read_timeout_only_one(vendor):
    vendor.emulator.faults.latency(0.2)
    vendor.emulator.faults.read_timeout(seconds=0.4)
    timings = []
    for _ in range(2):
        started = time.monotonic()
        assert vendor.page(1).status_code == 200
        timings.append(time.monotonic() - started)
    assert timings[0] >= 0.6 and 0.2 <= timings[1] < 0.55


@pytest.mark.parametrize("switch", ["python", "control"])
def test_truncated_json_answers_200_with_half_the_real_body(vendor, switch):
    full = vendor.page(1)
    if switch == "python":
        vendor.emulator.faults.truncated_json(times=1)
    else:
        assert vendor.control({"action": "truncated_json"}).status_code == 200
    cut = vendor.page(1)
    assert cut.status_code == 200 and cut.headers["Content-Type"].startswith("application/json")
    assert cut.content == full.content[: len(full.content) // 2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(cut.content)
    assert vendor.page(1).content == full.content


@pytest.mark.parametrize("switch", ["python", "control"])
def test_invalid_json_answers_200_with_an_html_page(vendor, switch):
    if switch == "python":
        vendor.emulator.faults.invalid_json(times=1)
    else:
        assert vendor.control({"action": "invalid_json", "times": 1}).status_code == 200
    page = vendor.page(1)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert page.text.startswith("<!DOCTYPE html>")
    with pytest.raises(ValueError):
        page.json()
    assert vendor.page(1).json()  # one-shot
    assert statuses(vendor)[-2:] == [200, 200]


@pytest.mark.parametrize("switch", ["python", "control"])
def test_empty_page_empties_the_next_listing_page_in_the_vendors_shape(vendor, switch):
    first = vendor.ids(vendor.page(1))
    assert len(first) == PAGE
    if switch == "python":
        vendor.emulator.faults.empty_page(times=1)
    else:
        assert vendor.control({"action": "empty_page", "times": 1}).status_code == 200
    assert vendor.other().status_code in (200, 404)  # a request that is not a listing page leaves it queued
    emptied = vendor.page(2)
    assert emptied.status_code == 200
    vendor.assert_empty_page(emptied)
    assert vendor.ids(vendor.page(1)) == first  # it was one page only


@pytest.mark.parametrize("switch", ["python", "control"])
def test_between_pages_changes_the_data_after_the_nth_page(vendor, switch):
    second = vendor.ids(vendor.page(2)) if vendor.name != "busybusy" else None
    if second is None:  # keyset paging: page 2 is asked with page 1's last cursor
        vendor.page(1)
        second = vendor.ids(vendor.page(2))
    target = second[0]
    ran: list[int] = []
    if switch == "python":

        def callback() -> None:
            ran.append(vendor.emulator.request_count)
            vendor.delete(target)

        vendor.emulator.faults.between_pages(callback, after_pages=1)
    else:
        answer = vendor.control({"action": "between_pages", "after_pages": 1, "control": vendor.delete_call(target)})
        assert answer.status_code == 200, answer.text
    before = vendor.emulator.request_count
    assert target not in vendor.ids(vendor.page(1))
    assert target not in vendor.ids(vendor.page(2))  # deleted once page 1 had been served
    if switch == "python":
        assert ran == [before]  # ran while page 1 was answered, before it was logged
    assert vendor.ids(vendor.page(2)) == vendor.ids(vendor.page(2))


def test_a_failing_between_pages_callback_answers_500_naming_it(vendor):
    def callback() -> None:
        raise RuntimeError("the test's callback broke")

    vendor.emulator.faults.between_pages(callback)
    answer = vendor.page(1)
    assert answer.status_code == 500 and "the test's callback broke" in answer.text
    assert vendor.page(1).status_code == 200
    bad = vendor.control({"action": "between_pages", "control": {"path": "/nope", "body": {}}})
    assert bad.status_code == 200
    assert vendor.page(1).status_code == 500
    assert vendor.control({"action": "between_pages"}).status_code == 400


def test_expire_token_from_the_control_api_answers_401(vendor):
    assert vendor.page(1).status_code == 200
    assert vendor.control({"action": "expire_token", "company_id": vendor.company_id}).status_code == 200
    assert vendor.page(1).status_code == 401
    vendor.control({"action": "clear"})
    assert vendor.page(1).status_code == 200


def test_faults_never_touch_the_control_api(vendor):
    faults = vendor.emulator.faults
    faults.read_timeout(seconds=3)
    faults.invalid_json()
    faults.truncated_json()
    faults.empty_page()
    status = requests.get(vendor.emulator.control_url + "/status", timeout=1)
    assert status.status_code == 200 and status.json()["company_ids"] == ["acme"]
    assert vendor.control({"action": "rate_limit", "times": 1, "retry_after": None}).json() == {
        "ok": True,
        "action": "rate_limit",
    }
    assert faults.next_one_shot() == ("read_timeout", {"seconds": 3.0})  # still queued, in order
    assert faults.take_empty_page()


@pytest.mark.parametrize(
    "body",
    [
        {"action": "read_timeout", "seconds": -1},
        {"action": "truncated_json", "times": 0},
        {"action": "empty_page", "times": "many"},
        {"action": "invalid_json", "colour": "red"},
        {"action": "explode"},
    ],
)
def test_the_control_api_refuses_bad_fault_switches(vendor, body):
    assert vendor.control(body).status_code == 400


def test_rate_limit_server_error_and_drop_are_logged_alike(vendor):
    faults = vendor.emulator.faults
    faults.rate_limit(retry_after=3)
    faults.server_error(status=504)
    faults.drop_connection()
    limited = vendor.page(1)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "3"
    assert vendor.page(1).status_code == 504
    with pytest.raises(requests.ConnectionError):
        vendor.page(1)
    assert vendor.page(1).status_code == 200
    assert statuses(vendor)[-4:] == [429, 504, 0, 200]
