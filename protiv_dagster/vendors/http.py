"""The HTTP base every vendor client shares: one session, timeouts, retries, errors that name the vendor.

A vendor module adds only what is truly its own (authentication, endpoints, paging shape); the rules
for transient failures live here once:

- 429 and 5xx answers, connection resets and read timeouts are retried with tenacity. A
  ``Retry-After`` header is honoured (capped by ``max_wait_seconds`` so a hostile or buggy value can
  not park a run for hours); without one the wait grows exponentially with jitter.
- 401 triggers at most one credential refresh (``VendorClient.refresh_credentials``) before it
  becomes a ``VendorAuthError``.
- Other 4xx answers are not retried: they are ``VendorRequestError`` with the vendor's own message.
- A 2xx answer to a call that expects JSON whose body is not JSON (cut off mid-transfer, or a proxy's
  HTML page) is retried like a 5xx; when every attempt gets one, it is a ``VendorPayloadError``.
  A vendor whose 2xx body can itself report a transient failure (BusyBusy's GraphQL ``errors``: a
  lock, a timeout, an internal error) says so in ``VendorClient.transient_error_in``; such an
  answer is retried like a 5xx too, and is a ``VendorUnavailableError`` once the retries are spent.
- A connection dropped mid-answer (``ChunkedEncodingError``, ``IncompleteRead``) is retried like a
  reset. Every request has a total deadline (``request_deadline_seconds``) besides the per-read
  timeout: a vendor trickling its answer a byte at a time is cut off when the deadline passes (its
  socket is shut from a timer) and the request counts as a transient failure.
- Listings are kept honest by ``ListingGuard``: a page repeating ids of earlier pages (a vendor that
  ignores the page parameter) or a listing longer than ``max_pages`` fails the call with the vendor,
  endpoint and page named, before anything is stored.

Secrets never reach an exception, a log line or metadata: messages are built from the status, the
path and the vendor's error text, every registered secret is scrubbed from that text (also in its
escaped, URL-encoded and JSON-encoded forms), and every exception that leaves ``request`` is one of
the ``VendorError`` classes, scrubbed, whatever raised it (the HTTP library refusing a header before
anything was sent included). Text a vendor sent is kept literal: control, zero-width and
bidirectional characters are escaped (``literal``), so it cannot forge log lines or rewrite a
terminal.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote, quote_plus

import requests
import urllib3
from requests.adapters import HTTPAdapter
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from protiv_dagster.text import visible

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFAULT_MAX_PAGES = 10_000
MIN_SCRUBBED_IDENTIFIER = 6
_NOT_DECODED = object()


def literal(text: object) -> str:
    """``text`` from outside (a vendor's error, a payload value) as it can be shown, logged or
    stored safely: every control, zero-width or bidirectional character is written as its escape
    (``\\r``, ``\\n``, ``\\x1b``, ``\\u202e``), everything else is kept."""
    return visible(str(text), keep_line_breaks=False)


class VendorError(RuntimeError):
    """A vendor call failed; the message names the vendor, never contains a credential, and shows
    the vendor's own text literally (``literal``)."""

    def __init__(self, vendor: str, message: str, status: int | None = None):
        self.vendor = vendor
        self.status = status
        super().__init__(literal(f"{vendor}: {message}"))


class VendorAuthError(VendorError):
    """The vendor rejected the credentials (401/403): the company must be reconnected by an admin."""


class VendorRequestError(VendorError):
    """The vendor refused the request itself (400, 404, 417, ...): a bug or a bad setting, not a blip."""


class VendorUnavailableError(VendorError):
    """Transient failures (429, 5xx, timeouts, resets) outlasted every retry."""


class VendorPayloadError(VendorError):
    """The vendor answered 200 with a body that is not the documented shape."""


class _TransientFailure(Exception):
    """Internal: a retryable failure, carrying how long the vendor asked us to wait."""

    def __init__(self, description: str, retry_after: float | None = None, final: type[VendorError] | None = None):
        super().__init__(description)
        self.description = description
        self.retry_after = retry_after
        self.final = final or VendorUnavailableError  # what it becomes once the retries are spent


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        # The HTTP-date form is legal but no vendor of ours sends it; fall back to backoff.
        return None


# -- the total deadline of a request ----------------------------------------------------------------
# The deadline of the request this thread is making (None between requests); the connections below
# hand it their socket when they start reading an answer.
_current = threading.local()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in this socket with end-of-file


class _Deadline:
    """Cuts a request off when it outlives ``seconds`` in all: a timer shuts the sockets the request
    reads from, so a vendor trickling its answer a byte at a time (each read well inside the read
    timeout) cannot hold a run for longer than the deadline."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        _current.deadline = self
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        _current.deadline = None

    def attach(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if not self.expired:
                self._sockets.append(sock)
                return
        _shut(sock)  # the deadline passed while connecting or sending

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            _shut(sock)


class _WatchedHTTPConnection(urllib3.connection.HTTPConnection):
    def getresponse(self, *args: Any, **kwargs: Any) -> Any:
        deadline = getattr(_current, "deadline", None)
        if deadline is not None:
            deadline.attach(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPSConnection(urllib3.connection.HTTPSConnection):
    getresponse = _WatchedHTTPConnection.getresponse


class _WatchedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class _DeadlineAdapter(HTTPAdapter):
    """requests' adapter whose connections report their sockets to the current ``_Deadline``."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = dict(_WATCHED_POOLS)

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = dict(_WATCHED_POOLS)
        return manager


# The request could not be made at all; asking again gives the same answer. (requests' exceptions
# are OSErrors too: these are told apart first.)
_NOT_SENDABLE: tuple[type[BaseException], ...] = (
    requests.exceptions.InvalidHeader,
    requests.exceptions.InvalidURL,
    requests.exceptions.InvalidSchema,
    requests.exceptions.MissingSchema,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidJSONError,
    requests.exceptions.TooManyRedirects,
)
# The answer was cut off or the connection failed mid-way: asking again may well work.
_TRANSIENT_EXCEPTIONS: tuple[type[BaseException], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


def _transport_failure(exc: BaseException) -> str:
    """What went wrong on the wire, in words (the library's class names mean nothing to an admin)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return "no connection within the connect timeout"
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return "no answer within the read timeout"
    if isinstance(
        exc, (requests.exceptions.ChunkedEncodingError, http.client.IncompleteRead, urllib3.exceptions.ProtocolError)
    ):
        return "the connection dropped in the middle of the answer"
    if isinstance(exc, requests.exceptions.ContentDecodingError):
        return "the answer could not be decompressed"
    if isinstance(exc, requests.exceptions.SSLError):
        return "the TLS handshake failed"
    text = str(exc).lower()
    if "refused" in text:
        return "connection refused (is the vendor's host reachable and the port right?)"
    if "name or service not known" in text or "nodename nor servname" in text or "name resolution" in text:
        return "the vendor's host name does not resolve"
    if "reset" in text or "aborted" in text or "remote end closed" in text or "remotedisconnected" in text:
        return "the connection was closed without an answer"
    return "the connection failed"


def secret_forms(value: str) -> set[str]:
    """The ways ``value`` can appear in an error text: as it is, stripped, escaped (a header's repr,
    or ``literal``), URL- and form-encoded, JSON-encoded."""
    forms = {
        value,
        value.strip(),
        value.encode("unicode_escape").decode("ascii"),
        literal(value),
        quote(value, safe=""),
        quote_plus(value),
        json.dumps(value)[1:-1],
    }
    return {form for form in forms if form}


# -- listings -------------------------------------------------------------------------------------
class ListingGuard:
    """Keeps one paged listing honest. Every page is shown to ``page``: a page repeating ids of an
    earlier page (a vendor that ignores the page parameter hands out the same records again, which
    would pass for a complete listing and then for duplicates) and a listing going on past
    ``max_pages`` (a vendor answering "more" forever) raise a ``VendorPayloadError`` naming the
    vendor, the endpoint and the page, before anything of the listing is stored. Records without an
    id are left to the mapping, which sets them aside with their reason."""

    def __init__(self, vendor: str, endpoint: str, max_pages: int = DEFAULT_MAX_PAGES):
        self.vendor, self.endpoint, self.max_pages = vendor, endpoint, max_pages
        self.pages = 0
        self._seen: set[Any] = set()

    def page(self, ids: Iterable[Any]) -> None:
        self.pages += 1
        if self.pages > self.max_pages:
            raise VendorPayloadError(
                self.vendor,
                f"/{self.endpoint} still had more after {self.max_pages:,} pages (the page cap, max_pages): the "
                "listing does not end; nothing of it was stored",
            )
        present = [value for value in ids if value is not None and value != ""]
        try:
            this_page = {_id_key(value) for value in present}
        except TypeError:  # an id that is a list or an object: the mapping sets its record aside
            this_page = {_id_key(value) for value in present if not isinstance(value, (list, dict))}
        repeated = this_page & self._seen
        if repeated:
            sample = ", ".join(sorted(map(str, repeated))[:3])
            raise VendorPayloadError(
                self.vendor,
                f"/{self.endpoint} page {self.pages} repeats {len(repeated):,} record(s) of earlier pages (ids "
                f"{sample}{', ...' if len(repeated) > 3 else ''}): the vendor is not paging as documented; nothing "
                "of the listing was stored",
            )
        self._seen |= this_page


def _id_key(value: Any) -> Any:
    # 17 and "17" are one record to every vendor; True is not the id 1.
    return ("bool", value) if isinstance(value, bool) else str(value)


class VendorClient:
    """A requests session bound to one vendor base URL, with retries, timeouts and scrubbed errors.

    Subclasses set ``vendor`` and override ``auth_headers`` and, when the vendor can renew a token,
    ``refresh_credentials``.
    """

    vendor = "vendor"

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_seconds: float = 5.0,
        read_timeout_seconds: float = 60.0,
        request_deadline_seconds: float = 120.0,
        max_attempts: int = 6,
        max_wait_seconds: float = 60.0,
        initial_backoff_seconds: float = 0.5,
        max_pages: int = DEFAULT_MAX_PAGES,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.vendor}: base URL must start with http:// or https://")
        if not request_deadline_seconds > 0 or max_pages < 1:
            raise ValueError(f"{self.vendor}: the request deadline and the page cap must be positive")
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout_seconds, read_timeout_seconds)
        self.request_deadline_seconds = request_deadline_seconds
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self.initial_backoff_seconds = initial_backoff_seconds
        self.max_pages = max_pages
        self.session = requests.Session()
        adapter = _DeadlineAdapter()
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers["User-Agent"] = "protiv-dagster/0.1"
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.request_count = 0
        self.retry_count = 0
        # The vendor's clock: the HTTP Date of the last answer (UTC). QuickBooks Time's change check
        # tells settled stamps by it; a running Aspire ticket time or BusyBusy entry counts up to it.
        self.server_time: datetime | None = None

    # -- for subclasses -----------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        return {}

    def refresh_credentials(self) -> bool:
        """Renew credentials after a 401; return True when a retry with new credentials makes sense."""
        return False

    def transient_error_in(self, body: Any) -> str | None:
        """A 2xx JSON answer that reports a transient failure in its body (BusyBusy's GraphQL
        ``errors`` such as a lock or a timeout): its description, so the call is retried like a 5xx;
        None for an answer to take as it is."""
        return None

    def register_secret(self, *values: str | None) -> None:
        """Remember values that must be scrubbed from any error text (in every form they may take)."""
        for value in values:
            if value:
                self._secrets |= secret_forms(str(value))

    def register_identifier(self, *values: str | None) -> None:
        """Remember a credential that identifies rather than proves (a client id, a username): scrubbed
        like a secret, unless so short that scrubbing it would garble ordinary words of a message."""
        self.register_secret(*(value for value in values if value and len(value) >= MIN_SCRUBBED_IDENTIFIER))

    def listing(self, endpoint: str) -> ListingGuard:
        """A guard for one paged listing of ``endpoint`` (see ``ListingGuard``)."""
        return ListingGuard(self.vendor, endpoint, self.max_pages)

    # -- the one request path ------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        # Longest first: a secret that contains another is replaced whole.
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text

    def _wait(self, state: RetryCallState) -> float:
        failure = state.outcome.exception() if state.outcome else None
        backoff = wait_exponential_jitter(
            multiplier=self.initial_backoff_seconds, max=self.max_wait_seconds, jitter=self.initial_backoff_seconds
        )(state)
        if isinstance(failure, _TransientFailure) and failure.retry_after is not None:
            return min(failure.retry_after, self.max_wait_seconds)
        return backoff

    def _before_sleep(self, state: RetryCallState) -> None:
        self.retry_count += 1
        failure = state.outcome.exception() if state.outcome else None
        log.warning(
            "%s: transient failure (%s), retry %d of %d",
            self.vendor,
            getattr(failure, "description", "unknown"),
            state.attempt_number,
            self.max_attempts - 1,
        )

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        form: Mapping[str, str] | None = None,
        authenticated: bool = True,
        expect_json: bool = False,
    ) -> requests.Response:
        """One logical call: retried on transient failures, refreshed once on 401, raised clearly otherwise.

        With ``expect_json`` a 2xx answer whose body is not JSON counts as a transient failure.
        Whatever goes wrong, what leaves is a ``VendorError`` without a credential in it."""
        try:
            refreshed = False
            while True:
                response = self._request_with_retries(method, path, params, json_body, form, authenticated, expect_json)
                if response.status_code == 401 and authenticated and not refreshed and self.refresh_credentials():
                    refreshed = True
                    continue
                self._raise_for_status(response, path)
                self._note_server_time(response)
                return response
        except VendorError as error:
            # Raised here or by a nested client (a login, a token renewal): scrubbed with this
            # client's secrets too.
            error.args = (self.scrub(str(error)),)
            raise
        except Exception as exc:  # noqa: BLE001 - anything else becomes a scrubbed VendorError
            raise VendorRequestError(
                self.vendor, f"the request to {path} failed ({type(exc).__name__}: {self.scrub(str(exc))})"
            ) from None

    def _note_server_time(self, response: requests.Response) -> None:
        date_header = response.headers.get("Date")
        if date_header:
            # A malformed Date only costs the vendor clock; the machine's stands in.
            with contextlib.suppress(TypeError, ValueError):
                self.server_time = parsedate_to_datetime(date_header).astimezone(UTC)

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return self.decode_json(self.request("GET", path, params=params, expect_json=True), path)

    def decode_json(self, response: requests.Response, path: str) -> Any:
        body = getattr(response, "_protiv_body", _NOT_DECODED)
        if body is not _NOT_DECODED:
            return body
        try:
            return response.json()
        except (ValueError, json.JSONDecodeError) as exc:
            raise VendorPayloadError(
                self.vendor, f"{path} answered {response.status_code} with a body that is not JSON ({exc})"
            ) from None

    def _send(self, method: str, path: str, **options: Any) -> requests.Response:
        """One HTTP exchange within the request deadline; transient failures raise ``_TransientFailure``."""
        with _Deadline(self.request_deadline_seconds) as deadline:
            try:
                return self.session.request(
                    method, f"{self.base_url}/{path.lstrip('/')}", timeout=self.timeout, **options
                )
            except _NOT_SENDABLE as exc:
                # Refused before anything was sent (a header the HTTP library rejects, a bad URL):
                # not transient, and the library's message may quote the header value.
                raise VendorRequestError(
                    self.vendor,
                    f"the request to {path} could not be sent ({type(exc).__name__}: {self.scrub(str(exc))})",
                ) from None
            except _TRANSIENT_EXCEPTIONS as exc:
                if deadline.expired:
                    raise _TransientFailure(
                        f"no complete answer from {path} within the {self.request_deadline_seconds:g} s request deadline"
                    ) from None
                raise _TransientFailure(f"{_transport_failure(exc)} on {path}") from None

    def _request_with_retries(
        self, method, path, params, json_body, form, authenticated, expect_json=False
    ) -> requests.Response:
        @retry(
            retry=retry_if_exception_type(_TransientFailure),
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            before_sleep=self._before_sleep,
            reraise=True,
        )
        def attempt() -> requests.Response:
            headers = self.auth_headers() if authenticated else {}
            with self._lock:
                self.request_count += 1
            response = self._send(method, path, params=params, json=json_body, data=form, headers=headers)
            if response.status_code in TRANSIENT_STATUSES:
                raise _TransientFailure(
                    f"HTTP {response.status_code} on {path}",
                    _parse_retry_after(response.headers.get("Retry-After")),
                )
            if expect_json and 200 <= response.status_code < 300:
                try:
                    # Decoded once here and kept: decode_json hands this body out instead of
                    # parsing the page a second time.
                    response._protiv_body = response.json()  # type: ignore[attr-defined]
                except (ValueError, json.JSONDecodeError):
                    # A body cut off in transit or a proxy's HTML page: the vendor's answer never
                    # arrived, so ask again rather than fail the run (or, worse, read it as empty).
                    raise _TransientFailure(
                        f"{path} answered {response.status_code} with a body that is not JSON", final=VendorPayloadError
                    ) from None
                transient = self.transient_error_in(response._protiv_body)  # type: ignore[attr-defined]
                if transient is not None:
                    raise _TransientFailure(self.scrub(transient))
            return response

        try:
            return attempt()
        except _TransientFailure as failure:
            raise failure.final(
                self.vendor, f"{failure.description}, still failing after {self.max_attempts} attempts"
            ) from None

    def _raise_for_status(self, response: requests.Response, path: str) -> None:
        status = response.status_code
        if status < 400:
            return
        # Scrubbed whole, then shortened: a credential cut in half by the shortening would no longer
        # be recognised.
        detail = _shortened(self.scrub(self.error_detail(response)))
        if status in (401, 403):
            raise VendorAuthError(
                self.vendor,
                f"credentials rejected on {path} (HTTP {status}: {detail}); an admin must reconnect this company",
                status,
            )
        raise VendorRequestError(self.vendor, f"{path} refused the request (HTTP {status}: {detail})", status)

    def error_detail(self, response: requests.Response) -> str:
        """The vendor's own error text, whole (it is scrubbed, then shortened); subclasses know their
        error body shape."""
        return response.text.strip() or response.reason or "no message"


def _shortened(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + " ..."


REQUEST_DEADLINE_HELP = (
    "Longest a single request may take in all, answer included (a vendor trickling its answer is cut "
    "off and retried); the read timeout bounds each read only."
)
MAX_PAGES_HELP = "Most pages one listing may take; a listing still going on after them fails the sync."
HTTP_OPTIONS = (
    "connect_timeout_seconds",
    "read_timeout_seconds",
    "request_deadline_seconds",
    "max_attempts",
    "max_wait_seconds",
    "max_pages",
)


def http_options(resource: Any) -> dict[str, Any]:
    """The shared HTTP tuning of a vendor resource, as ``VendorClient`` keyword arguments."""
    return {name: getattr(resource, name) for name in HTTP_OPTIONS}


def require_keys(vendor: str, record: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Raise a VendorPayloadError naming the first documented key that a payload lacks."""
    for key in keys:
        if key not in record:
            raise VendorPayloadError(vendor, f"{where} lacks the documented key {key!r}")
