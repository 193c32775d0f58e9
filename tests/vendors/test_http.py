"""The shared vendor HTTP base (protiv_dagster/vendors/http.py) over real sockets: the total deadline per request,
answers cut off mid-body, paging guards, and credentials scrubbed from every error that leaves the
vendor layer, on all three vendors and every auth shape (bearer, Basic, key header, OAuth grant
and token bodies), including errors raised before anything is sent."""

from __future__ import annotations

import socket
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import pytest

from protiv_dagster.vendors.aspire.client import AspireClient
from protiv_dagster.vendors.busybusy.client import BusyBusyClient
from protiv_dagster.vendors.http import (
    ListingGuard,
    VendorAuthError,
    VendorClient,
    VendorError,
    VendorPayloadError,
    VendorRequestError,
    VendorUnavailableError,
    literal,
    secret_forms,
)
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeClient, QuickBooksTimeCredentials
from protiv_emulators.aspire import AspireEmulator
from protiv_emulators.busybusy import BusyBusyEmulator
from protiv_emulators.generator import generate_company
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator
from protiv_emulators.server import Answer

AS_OF = datetime(2026, 11, 20, tzinfo=UTC)
FAST = {"initial_backoff_seconds": 0.01, "max_wait_seconds": 0.05, "max_attempts": 2}
CANARY = "canary-7f3a9c21e5b04d88"
HOSTILE = "[/] [green]0 problems[/green]\nINFO forged\x1b[2J you sent: {auth}"


@pytest.fixture(scope="module")
def company():
    return generate_company("acme", seed=3, workers=8, days=7, as_of=AS_OF, timezone="America/Denver")


@pytest.fixture
def qbt(company):
    with QuickBooksTimeEmulator() as emulator:
        emulator.add_company(company, access_token=CANARY + "-access", client_secret=CANARY + "-client-secret")
        yield emulator


def qbt_client(emulator, token=CANARY + "-access", **options) -> QuickBooksTimeClient:
    company = emulator.company("acme")
    credentials = QuickBooksTimeCredentials(
        access_token=token,
        refresh_token=company.refresh_token,
        client_id=company.client_id,
        client_secret=company.client_secret,
    )
    return QuickBooksTimeClient(emulator.base_url, credentials, **{**FAST, **options})


def everything_said(error: BaseException) -> str:
    """Every text an exception can put in a log: its message, repr, and formatted traceback chain."""
    return "\n".join([str(error), repr(error), *traceback.format_exception(error)])


def assert_no_canary(error: BaseException) -> None:
    said = everything_said(error)
    for form in secret_forms(CANARY):
        assert form not in said, f"the canary ({form!r}) is in the error:\n{said}"


# -- deadlines and answers cut off ---------------------------------------------------------------------
def test_an_answer_trickled_past_the_deadline_is_cut_off_and_retried(qbt):
    qbt.faults.trickle(times=1, seconds_per_byte=0.05)  # each read well inside the 2 s read timeout
    client = qbt_client(qbt, read_timeout_seconds=2.0, request_deadline_seconds=1.0)
    started = time.monotonic()
    assert client.current_user()["id"]
    assert time.monotonic() - started < 4.0
    assert client.retry_count == 1


def test_a_trickle_that_never_ends_fails_naming_vendor_endpoint_and_deadline(qbt):
    qbt.faults.trickle(times=10, seconds_per_byte=0.05)
    client = qbt_client(qbt, read_timeout_seconds=2.0, request_deadline_seconds=0.8)
    started = time.monotonic()
    with pytest.raises(VendorUnavailableError) as raised:
        client.current_user()
    assert time.monotonic() - started < 3.0  # two attempts of 0.8 s, not minutes
    assert str(raised.value) == (
        "QuickBooks Time: no complete answer from current_user within the 0.8 s request deadline, "
        "still failing after 2 attempts"
    )
    qbt.faults.clear()


@contextmanager
def header_trickler() -> Iterator[str]:
    """A server that answers with a status line and headers one byte every 0.1 s, forever."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.recv(65536)
            try:
                for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 10_000:
                    if stop.wait(0.1):
                        break
                    conn.sendall(bytes([byte]))
            except OSError:
                pass
            finally:
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def test_headers_trickled_past_the_deadline_are_cut_off_too():
    with header_trickler() as url:
        client = VendorClient(url, read_timeout_seconds=2.0, request_deadline_seconds=0.6, **FAST)
        started = time.monotonic()
        with pytest.raises(VendorUnavailableError, match="within the 0.6 s request deadline"):
            client.request("GET", "slow")
        assert time.monotonic() - started < 3.0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_an_answer_cut_mid_body_is_retried_like_a_reset(qbt, chunked):
    qbt.faults.cut_body(times=1, chunked=chunked)
    client = qbt_client(qbt)
    assert client.current_user()["id"]
    assert client.retry_count == 1


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_answers_always_cut_fail_in_words_naming_vendor_and_endpoint(qbt, chunked):
    qbt.faults.cut_body(times=10, chunked=chunked)
    with pytest.raises(VendorUnavailableError) as raised:
        qbt_client(qbt).current_user()
    assert str(raised.value) == (
        "QuickBooks Time: the connection dropped in the middle of the answer on current_user, still failing after 2 attempts"
    )
    qbt.faults.clear()


def test_a_refused_connection_says_so_in_words():
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
    with pytest.raises(VendorUnavailableError, match=r"connection refused \(is the vendor's host reachable"):
        VendorClient(f"http://127.0.0.1:{port}", **FAST).request("GET", "anything")


# -- listings ----------------------------------------------------------------------------------------
def test_a_page_repeating_earlier_ids_fails_the_listing_naming_endpoint_and_page():
    guard = ListingGuard("Aspire", "WorkTicketTimes", max_pages=100)
    guard.page([1, 2, 3])
    guard.page([4, None, ""])  # records without an id are the mapping's to set aside
    with pytest.raises(VendorPayloadError) as raised:
        guard.page(["3", 5])  # the id 3 again, as text: the same record
    assert str(raised.value) == (
        "Aspire: /WorkTicketTimes page 3 repeats 1 record(s) of earlier pages (ids 3): the vendor is not paging "
        "as documented; nothing of the listing was stored"
    )


def test_a_listing_past_the_page_cap_fails():
    guard = ListingGuard("BusyBusy", "timeEntries", max_pages=2)
    guard.page(["a"])
    guard.page(["b"])
    with pytest.raises(VendorPayloadError, match=r"BusyBusy: /timeEntries still had more after 2 pages \(the page cap"):
        guard.page(["c"])


def test_a_vendor_ignoring_the_page_parameter_fails_the_listing_over_http(qbt):
    answer_vendor = qbt._answer_vendor

    def first_page_always(request):
        request.query["page"] = "1"
        return answer_vendor(request)

    qbt._answer_vendor = first_page_always
    client = qbt_client(qbt, page_size=5)
    with pytest.raises(VendorPayloadError, match=r"/users page 2 repeats 5 record\(s\) of earlier pages"):
        client.users()


# -- vendor text is text -------------------------------------------------------------------------------
def test_literal_escapes_what_could_forge_a_line_or_rewrite_a_terminal():
    assert literal("ok [green]x[/green]") == "ok [green]x[/green]"  # markup is the CLI's to escape
    assert literal("a\nb\r\x1b[2J\u202egnp.exe\u200b\x85") == "a\\nb\\r\\x1b[2J\\u202egnp.exe\\u200b\\x85"
    assert literal("café 綠化") == "café 綠化"


def test_a_vendor_error_text_is_kept_literal_and_its_echoed_credential_scrubbed(qbt):
    qbt.faults.client_error(times=1, status=400, message=HOSTILE)
    with pytest.raises(VendorRequestError) as raised:
        qbt_client(qbt).users()
    message = str(raised.value)
    assert message == (
        "QuickBooks Time: users refused the request (HTTP 400: [/] [green]0 problems[/green]\\nINFO forged"
        "\\x1b[2J you sent: Bearer ***)"
    )
    assert_no_canary(raised.value)


# -- no credential in any error, on every vendor and auth shape ----------------------------------------
def test_qbt_bearer_token_with_a_line_ending_never_reaches_an_error(qbt):
    # requests refuses the header before anything is sent; its message quotes the header value.
    with pytest.raises(VendorRequestError) as raised:
        qbt_client(qbt, token=CANARY + "\r").users()
    assert str(raised.value).startswith("QuickBooks Time: the request to users could not be sent (InvalidHeader: ")
    assert_no_canary(raised.value)


def test_qbt_oauth_grant_body_echoed_back_is_scrubbed(qbt):
    # The token is refused (401), the client renews it at /grant with its refresh token and client
    # secret in a form body, and the vendor echoes that body back in its 400.
    qbt.expire_token("acme")
    answer_vendor = qbt._answer_vendor

    def echo_the_grant_body(request):
        if request.path.endswith("/grant"):
            return Answer(400, qbt._error_body(400, "bad grant: " + request.body.decode()))
        return answer_vendor(request)

    qbt._answer_vendor = echo_the_grant_body
    client = qbt_client(qbt)
    with pytest.raises(VendorError) as raised:
        client.users()
    assert_no_canary(raised.value)
    for secret in (client.credentials.refresh_token, client.credentials.client_secret):
        assert secret not in everything_said(raised.value)


@pytest.fixture
def aspire(company):
    with AspireEmulator() as emulator:
        client_id, _ = emulator.add_company(company, client_id=CANARY + "-client", secret=CANARY + "-secret")
        yield emulator, client_id


def test_aspire_client_credentials_echoed_back_in_the_token_request_are_scrubbed(aspire):
    emulator, client_id = aspire
    emulator.faults.client_error(times=1, status=400, message="bad body {auth}")
    with pytest.raises(VendorRequestError) as raised:
        AspireClient(emulator.base_url, client_id, CANARY + "-secret", **FAST).employees()
    assert "Aspire: Authorization refused the request (HTTP 400: bad body " in str(raised.value)
    assert_no_canary(raised.value)


def test_aspire_issued_token_with_a_line_ending_never_reaches_an_error(aspire):
    emulator, client_id = aspire
    answer_vendor = emulator._answer_vendor

    def token_with_a_line_ending(request):
        answer = answer_vendor(request)
        if request.path == "/Authorization" and answer.status == 200:
            answer.body = {**answer.body, "Token": CANARY + "-token\r"}
        return answer

    emulator._answer_vendor = token_with_a_line_ending
    with pytest.raises(VendorRequestError) as raised:
        AspireClient(emulator.base_url, client_id, CANARY + "-secret", **FAST).employees()
    assert_no_canary(raised.value)


@pytest.fixture
def busybusy(company):
    with BusyBusyEmulator() as emulator:
        emulator.add_company(company, username=CANARY + "@acme.example", password=CANARY + " pass")
        yield emulator


def test_busybusy_basic_login_echoed_back_is_scrubbed(busybusy):
    busybusy.faults.client_error(times=1, status=401, message="who is {auth}?")
    client = BusyBusyClient(busybusy.rest_url, CANARY + "@acme.example", CANARY + " pass", **FAST)
    with pytest.raises(VendorAuthError) as raised:
        client.members()
    assert str(raised.value).startswith("BusyBusy: login refused (HTTP 401)")
    assert_no_canary(raised.value)


def test_busybusy_session_key_with_a_line_ending_never_reaches_an_error(busybusy):
    answer_vendor = busybusy._answer_vendor

    def key_with_a_line_ending(request):
        answer = answer_vendor(request)
        if request.path.endswith("/member") and answer.status == 200:
            answer.body = {**answer.body, "public_key": CANARY + "-key\n"}
        return answer

    busybusy._answer_vendor = key_with_a_line_ending
    client = BusyBusyClient(busybusy.rest_url, CANARY + "@acme.example", CANARY + " pass", **FAST)
    with pytest.raises(VendorRequestError) as raised:
        client.members()
    assert_no_canary(raised.value)


def test_busybusy_key_header_echoed_back_in_a_graphql_error_is_scrubbed(busybusy):
    client = BusyBusyClient(busybusy.rest_url, CANARY + "@acme.example", CANARY + " pass", **FAST)
    client.login()
    busybusy.faults.client_error(times=1, status=400, message="bad key {auth}")
    with pytest.raises(VendorRequestError) as raised:
        client.members()
    assert client.key and client.key not in everything_said(raised.value)
    assert_no_canary(raised.value)


def test_an_unexpected_exception_inside_the_client_leaves_as_a_scrubbed_vendor_error(qbt):
    client = qbt_client(qbt)

    def broken_auth_headers() -> dict[str, str]:
        raise RuntimeError(f"could not build the header from {CANARY}-access")

    client.auth_headers = broken_auth_headers  # type: ignore[method-assign]
    with pytest.raises(VendorRequestError) as raised:
        client.users()
    assert (
        str(raised.value)
        == "QuickBooks Time: the request to users failed (RuntimeError: could not build the header from ***)"
    )
    assert raised.value.__cause__ is None and raised.value.__suppress_context__
    assert_no_canary(raised.value)
