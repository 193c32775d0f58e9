"""What every vendor emulator shares: the loopback server lifecycle, fault switches, the request log,
the HTTP handler plumbing and the ``/_emulator`` control API's common part.

An emulator subclasses ``VendorEmulator`` and supplies only its vendor's parts: which paths are the
vendor's (``_is_vendor_path``), how it answers them (``_answer_vendor``), its error body shape
(``_error_body``), its own control endpoints (``_control_route``), the tokens a company holds
(``_tokens_of``) and, for paged listings, what an empty page looks like (``_empty_page``).

Faults (``emulator.faults``, a ``Faults``) apply to vendor requests only, never to the control API.
One-shot faults queue in the order they are switched on; each takes the next vendor request:

- ``rate_limit(times, retry_after)``: 429 in the vendor's error shape, ``Retry-After`` unless None;
- ``server_error(times, status)``: 500, 502, 503 or 504 in the vendor's error shape;
- ``drop_connection(times)``: no answer at all, the connection is closed (logged with status 0);
- ``read_timeout(times, seconds)``: the server waits ``seconds``, then answers normally, so a client
  with a shorter read timeout gives up first (latency, by contrast, delays every request);
- ``truncated_json(times)``: 200 with the first half of the real answer's JSON (invalid JSON);
- ``invalid_json(times)``: 200 with an HTML page (``text/html``), as a proxy or portal would send;
  the vendor never sees the request;
- ``trickle(times, seconds_per_byte)``: the real answer, its body sent one byte at a time with
  ``seconds_per_byte`` between bytes (each read well inside a read timeout, the whole far beyond);
- ``cut_body(times, chunked)``: the real answer's first half, then the connection closes: with a
  ``Content-Length`` promising the whole (``IncompleteRead``), or as an unfinished chunked body;
- ``client_error(times, status, message)``: a 4xx in the vendor's error shape with ``message``;
  ``{auth}`` in it is replaced by the request's credential header, or its body when it has none (a
  vendor echoing the credentials back).

Besides the queue: ``latency(seconds)`` delays every vendor request until cleared;
``expire_token(token)`` makes one token answer 401 until it is rotated; ``empty_page(times)`` makes
the next ``times`` pages of paged listings come back empty (in each vendor's own empty-page shape,
whatever request comes between); ``between_pages(callback, after_pages)`` runs ``callback()`` once
after that many more listing pages have been rendered, before the last of them is sent, so the
client's next page sees the change. ``clear()`` switches everything off and releases stalled requests.
"""

from __future__ import annotations

import ipaddress
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.message import Message
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, urlsplit

CONTROL_PREFIX = "/_emulator"
# The headers each vendor's credentials travel in (bearer and Basic, BusyBusy's session key).
CREDENTIAL_HEADERS = ("Authorization", "key-authorization")
SERVER_ERROR_STATUSES = (500, 502, 503, 504)
INVALID_JSON_BODY = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable</title></head>\n"
    b"<body><h1>Service Temporarily Unavailable</h1><p>The server is down for maintenance. "
    b"Please try again later.</p></body></html>\n"
)


# -- faults -----------------------------------------------------------------------------------------
class Faults:
    """Switchable failures for every vendor request of one emulator (thread-safe); see the module doc."""

    # The actions the control API may switch, by method name; subclasses add their own.
    control_actions: tuple[str, ...] = (
        "rate_limit",
        "server_error",
        "drop_connection",
        "read_timeout",
        "truncated_json",
        "invalid_json",
        "trickle",
        "cut_body",
        "client_error",
        "empty_page",
        "latency",
    )

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: deque[tuple[str, dict[str, Any]]] = deque()
        self._latency_seconds = 0.0
        self._expired_tokens: set[str] = set()
        self._empty_pages = 0
        self._page_hooks: list[list[Any]] = []  # [pages still to serve, callback]
        # Set (and replaced) by clear(): every stalled request wakes up at once instead of holding
        # a server thread for the rest of its read_timeout.
        self._wake = threading.Event()

    # -- one-shot faults, in one queue ------------------------------------------------------------------
    def rate_limit(self, times: int = 1, retry_after: int | None = 1) -> None:
        """The next ``times`` requests answer 429; with ``retry_after=None`` the header is left out."""
        self._queue("rate_limit", times, retry_after=retry_after)

    def server_error(self, times: int = 1, status: int = 503) -> None:
        if status not in SERVER_ERROR_STATUSES:
            raise ValueError(f"status must be 500, 502, 503 or 504, got {status}")
        self._queue("server_error", times, status=status)

    def drop_connection(self, times: int = 1) -> None:
        """The next ``times`` requests get no answer at all: the connection is closed."""
        self._queue("drop_connection", times)

    def read_timeout(self, times: int = 1, seconds: float = 5.0) -> None:
        """The next ``times`` requests are answered only after ``seconds`` of silence."""
        if not seconds > 0:
            raise ValueError("seconds must be positive")
        self._queue("read_timeout", times, seconds=float(seconds))

    def truncated_json(self, times: int = 1) -> None:
        """The next ``times`` requests answer 200 with the first half of their JSON body."""
        self._queue("truncated_json", times)

    def invalid_json(self, times: int = 1) -> None:
        """The next ``times`` requests answer 200 with an HTML page instead of JSON."""
        self._queue("invalid_json", times)

    def trickle(self, times: int = 1, seconds_per_byte: float = 1.0) -> None:
        """The next ``times`` answers send their body one byte every ``seconds_per_byte``."""
        if not seconds_per_byte > 0:
            raise ValueError("seconds_per_byte must be positive")
        self._queue("trickle", times, seconds_per_byte=float(seconds_per_byte))

    def cut_body(self, times: int = 1, chunked: bool = False) -> None:
        """The next ``times`` answers stop after half their body and close the connection."""
        self._queue("cut_body", times, chunked=bool(chunked))

    def client_error(self, times: int = 1, status: int = 400, message: str = "Bad Request") -> None:
        """The next ``times`` requests answer ``status`` (4xx) with ``message`` in the vendor's error shape."""
        if not 400 <= status < 500:
            raise ValueError(f"status must be a 4xx, got {status}")
        self._queue("client_error", times, status=status, message=str(message))

    def _queue(self, kind: str, times: int, **options: Any) -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._pending.extend((kind, options) for _ in range(times))

    def next_one_shot(self) -> tuple[str, dict[str, Any]] | None:
        with self._lock:
            return self._pending.popleft() if self._pending else None

    # -- listing faults ---------------------------------------------------------------------------------
    def empty_page(self, times: int = 1) -> None:
        """The next ``times`` pages of paged listings come back empty (see the emulator for the shape)."""
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._empty_pages += times

    def between_pages(self, callback: Callable[[], Any], after_pages: int = 1) -> None:
        """Run ``callback()`` once, after the ``after_pages``-th listing page from now is rendered.

        It runs on the server thread before that page is sent, so the client's next request already
        sees what it changed. An exception in it answers that page with a 500 naming it.
        """
        if not callable(callback):
            raise ValueError("callback must be callable")
        if after_pages < 1:
            raise ValueError("after_pages must be at least 1")
        with self._lock:
            self._page_hooks.append([after_pages, callback])

    def take_empty_page(self) -> bool:
        """Whether the listing page being answered now must be empty (and count it off)."""
        with self._lock:
            if not self._empty_pages:
                return False
            self._empty_pages -= 1
            return True

    def page_served(self) -> list[Callable[[], Any]]:
        """Count one listing page; the callbacks now due, each handed out once."""
        with self._lock:
            for hook in self._page_hooks:
                hook[0] -= 1
            due = [callback for remaining, callback in self._page_hooks if remaining <= 0]
            self._page_hooks = [hook for hook in self._page_hooks if hook[0] > 0]
        return due

    # -- lasting faults ---------------------------------------------------------------------------------
    def latency(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("latency cannot be negative")
        with self._lock:
            self._latency_seconds = float(seconds)

    @property
    def latency_seconds(self) -> float:
        with self._lock:
            return self._latency_seconds

    def expire_token(self, token: str) -> None:
        with self._lock:
            self._expired_tokens.add(token)

    def is_expired(self, token: str) -> bool:
        with self._lock:
            return token in self._expired_tokens

    def forget_token(self, token: str) -> None:
        with self._lock:
            self._expired_tokens.discard(token)

    def clear(self) -> None:
        """Every fault off; requests stalled by latency or read_timeout are answered at once."""
        with self._lock:
            self._pending.clear()
            self._latency_seconds = 0.0
            self._expired_tokens.clear()
            self._empty_pages = 0
            self._page_hooks.clear()
            wake, self._wake = self._wake, threading.Event()
        wake.set()

    def stall(self, seconds: float) -> None:
        """Wait ``seconds``, or less if ``clear()`` is called meanwhile."""
        if seconds > 0:
            with self._lock:
                wake = self._wake
            wake.wait(seconds)


# -- requests, answers and the log ------------------------------------------------------------------
class LoggedRequest(NamedTuple):
    """One vendor request as the emulator saw it; ``status`` 0 means the connection was dropped."""

    method: str
    path: str
    query: dict[str, str]
    status: int


@dataclass
class Request:
    """One HTTP request, parsed. ``label`` is what the vendor layer says it was (for the log)."""

    method: str
    path: str
    query: dict[str, str]
    # As http.server parses them: looked up by name whatever its case, as HTTP has it.
    headers: Message
    body: bytes
    label: str = ""


@dataclass
class Answer:
    """What to send: JSON ``body`` (or ``raw`` bytes as ``content_type``), or nothing if ``drop``.

    ``page`` marks a page of a paged listing (empty_page and between_pages act on those);
    ``clock`` sets the Date header (an emulator with a frozen clock), real time otherwise;
    ``seconds_per_byte`` trickles the body; ``cut`` ("length" or "chunked") sends half of it and
    closes the connection.
    """

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    raw: bytes | None = None
    content_type: str | None = None
    page: bool = False
    clock: datetime | None = None
    seconds_per_byte: float = 0.0
    cut: str | None = None


class RequestLog:
    """A thread-safe, append-only list of logged vendor requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[Any] = []

    def append(self, entry: Any) -> None:
        with self._lock:
            self._entries.append(entry)

    def entries(self) -> list[Any]:
        with self._lock:
            return list(self._entries)

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)


# -- the emulator base classes ----------------------------------------------------------------------
class LoopbackEmulator:
    """Start, stop and address an emulator's HTTP server; use it as a context manager too.

    Subclasses set ``server_class`` (a ThreadingHTTPServer whose ``emulator`` attribute points back),
    ``handler_class`` and ``thread_name``, and call ``__init__`` with host and port.
    """

    server_class: type[ThreadingHTTPServer]
    handler_class: type[BaseHTTPRequestHandler]
    thread_name = "emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = self.server_class((self.host, self.port), self.handler_class)
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        # A short poll interval lets stop() return at once instead of after half a second.
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.thread_name}-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return f"http://{self.host}:{self.port}"


class VendorEmulator(LoopbackEmulator):
    """A LoopbackEmulator with faults, a request log and the control API's common endpoints.

    Subclasses implement the ``_answer_vendor``, ``_error_body``, ``_empty_page`` and ``_tokens_of``
    hooks and may override the others; ``faults_class`` picks their fault switches. Hosted companies
    live in ``_companies`` (by company id), guarded by ``_lock``.
    """

    faults_class: type[Faults] = Faults
    json_content_type = "application/json"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.faults = self.faults_class()
        self._log = RequestLog()
        self._lock = threading.Lock()
        self._companies: dict[str, Any] = {}

    # -- companies --------------------------------------------------------------------------------------
    def _host(self, company_id: str, company: Any, clashes: Callable[[Any], bool], clash: str) -> None:
        """Add a company unless its id is hosted or ``clashes(other)`` holds for another (``clash`` says why)."""
        with self._lock:
            if company_id in self._companies:
                raise ValueError(f"company {company_id!r} is already hosted")
            if any(clashes(other) for other in self._companies.values()):
                raise ValueError(clash)
            self._companies[company_id] = company

    def company(self, company_id: str) -> Any:
        with self._lock:
            try:
                return self._companies[company_id]
            except KeyError:
                raise KeyError(f"no hosted company {company_id!r}") from None

    @property
    def company_ids(self) -> list[str]:
        with self._lock:
            return list(self._companies)

    def _hosted(self) -> list[Any]:
        with self._lock:
            return list(self._companies.values())

    def _control_company(
        self, company_id: str | None, holds: Callable[[Any], bool] | None = None, what: str = ""
    ) -> Any:
        """The company a control call means: the one named, else the one holding the record (``holds``),
        else the only one hosted."""
        if company_id:
            return self.company(company_id)
        companies = self._hosted()
        if holds is not None:
            companies = [c for c in companies if holds(c)]
            if not companies:
                raise KeyError(f"no hosted company has {what}")
        if len(companies) != 1:
            raise ValueError("several companies qualify: give company_id")
        return companies[0]

    @property
    def control_url(self) -> str:
        return self.root_url + CONTROL_PREFIX

    # -- observation ------------------------------------------------------------------------------------
    @property
    def request_log(self) -> list[Any]:
        """Every vendor request so far, in arrival order (a copy); control calls are not in it."""
        return self._log.entries()

    @property
    def request_count(self) -> int:
        return len(self._log)

    def expire_token(self, company_id: str) -> None:
        """Every token the company now holds answers 401 until it is renewed."""
        for token in self._tokens_of(company_id):
            self.faults.expire_token(token)

    # -- vendor hooks -----------------------------------------------------------------------------------
    def _is_vendor_path(self, path: str) -> bool:
        """Whether a (non-control) path is the vendor's: faulted and logged; others answer 404."""
        return True

    def _answer_vendor(self, request: Request) -> Answer:
        raise NotImplementedError

    def _error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError

    def _control_error_body(self, status: int, message: str) -> Any:
        return self._error_body(status, message)

    def _empty_page(self, answer: Answer) -> Answer:
        """The vendor's plausible empty page in place of a listing page ``answer``."""
        raise NotImplementedError

    def _log_entry(self, request: Request, answer: Answer) -> Any:
        return LoggedRequest(request.method, request.path, request.query, answer.status)

    def _tokens_of(self, company_id: str) -> list[str]:
        raise NotImplementedError

    def _control_route(
        self, method: str, parts: list[str], payload: dict[str, Any], company_id: str | None
    ) -> Answer | None:
        """The vendor's own control endpoints; None when nothing matches (404)."""
        return None

    # -- answering vendor requests ----------------------------------------------------------------------
    def _serve_vendor(self, request: Request) -> Answer:
        """A vendor request through the faults, answered and logged."""
        if not self._is_vendor_path(request.path):
            return Answer(404, self._error_body(404, f"Not Found: {request.path}"))
        try:
            answer = self._faulted(request)
        except Exception as exc:  # an emulator bug must show as a 500 with its cause, not as a hung client
            answer = Answer(500, self._error_body(500, f"emulator error: {type(exc).__name__}: {exc}"))
        self._log.append(self._log_entry(request, answer))
        return answer

    def _faulted(self, request: Request) -> Answer:
        self.faults.stall(self.faults.latency_seconds)
        kind, options = self.faults.next_one_shot() or ("", {})
        if kind == "drop_connection":
            return Answer(0, drop=True)
        if kind == "rate_limit":
            retry_after = options.get("retry_after")
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            return Answer(429, self._error_body(429, HTTPStatus(429).phrase), headers)
        if kind == "server_error":
            return Answer(options["status"], self._error_body(options["status"], HTTPStatus(options["status"]).phrase))
        if kind == "invalid_json":
            return Answer(200, raw=INVALID_JSON_BODY, content_type="text/html; charset=utf-8")
        if kind == "client_error":
            credential = next(
                (request.headers.get(name) for name in CREDENTIAL_HEADERS if request.headers.get(name)),
                request.body.decode("utf-8", "replace"),  # no header: the credentials travel in the body
            )
            message = options["message"].replace("{auth}", credential)
            return Answer(options["status"], self._error_body(options["status"], message))
        if kind == "read_timeout":
            self.faults.stall(options["seconds"])
        answer = self._answer_vendor(request)
        if answer.page and answer.status == 200:
            if self.faults.take_empty_page():
                answer = self._empty_page(answer)
            for callback in self.faults.page_served():
                callback()
        if kind == "truncated_json":
            text = self._encode(answer)
            answer = Answer(200, raw=text[: len(text) // 2], clock=answer.clock)
        if kind == "trickle":
            answer.seconds_per_byte = options["seconds_per_byte"]
        if kind == "cut_body":
            answer.cut = "chunked" if options["chunked"] else "length"
        return answer

    def _encode(self, answer: Answer) -> bytes:
        return answer.raw if answer.raw is not None else json.dumps(answer.body).encode("utf-8")

    # -- answering control requests ---------------------------------------------------------------------
    def _serve_control(self, request: Request, client_host: str) -> Answer:
        if not ipaddress.ip_address(client_host).is_loopback:
            return Answer(403, self._control_error_body(403, "the control API answers loopback clients only"))
        return self._answer_control(request.method, request.path[len(CONTROL_PREFIX) :], request.query, request.body)

    def _answer_control(self, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
        def error(status: int, message: str) -> Answer:
            return Answer(status, self._control_error_body(status, message))

        try:
            payload = json.loads(body) if body.strip() else {}
        except json.JSONDecodeError as exc:
            return error(400, f"the body is not JSON: {exc}")
        if not isinstance(payload, dict):
            return error(400, "the body must be a JSON object")
        company_id = payload.pop("company_id", None) or query.get("company_id")
        parts = [p for p in path.split("/") if p]
        try:
            if parts == ["status"] and method == "GET":
                return Answer(200, {"request_count": self.request_count, "company_ids": self.company_ids})
            if parts == ["faults"] and method == "POST":
                return Answer(200, self._switch_fault(payload, company_id))
            answer = self._control_route(method, parts, payload, company_id)
            if answer is not None:
                return answer
            return error(404, f"no control endpoint {method} {CONTROL_PREFIX}{path}")
        except KeyError as exc:
            return error(404, str(exc.args[0] if exc.args else exc))
        except (TypeError, ValueError) as exc:
            return error(400, str(exc))

    def _switch_fault(self, payload: dict[str, Any], company_id: str | None) -> dict[str, Any]:
        action = payload.pop("action", None)
        if action == "expire_token":
            if payload.get("token") is not None:
                self.faults.expire_token(str(payload["token"]))
            elif company_id:
                self.expire_token(company_id)
            else:
                raise ValueError("expire_token needs company_id (or token)")
        elif action == "between_pages":
            self.faults.between_pages(self._control_callback(payload.pop("control", None)), **payload)
        elif action == "clear":
            self.faults.clear()
        elif action in self.faults.control_actions:
            getattr(self.faults, action)(**payload)
        else:
            known = (*self.faults.control_actions, "expire_token", "between_pages", "clear")
            raise ValueError(f"action must be one of {', '.join(known)}")
        return {"ok": True, "action": action}

    def _control_callback(self, call: Any) -> Callable[[], None]:
        """``between_pages`` over HTTP: the callback is a control call, ``{"path", "body", "method"}``."""
        if not isinstance(call, dict) or not isinstance(call.get("path"), str):
            raise ValueError('between_pages needs control: {"path": "/...", "body": {...}} (a control API call)')
        method = str(call.get("method", "POST")).upper()
        path = call["path"].removeprefix(CONTROL_PREFIX)
        body = json.dumps(call.get("body") or {}).encode("utf-8")

        def run() -> None:
            answer = self._answer_control(method, path, {}, body)
            if answer.status != 200:
                raise RuntimeError(
                    f"between_pages control call {method} {path} answered {answer.status}: {answer.body}"
                )

        return run


# -- the HTTP plumbing ------------------------------------------------------------------------------
class EmulatorServer(ThreadingHTTPServer):
    allow_reuse_address = True  # a fixed port (the demo's) can be bound again right after a restart
    # socketserver listens with a backlog of 5: dozens of clients connecting at once (a refresh checks
    # 16 companies per vendor side by side) saw connect timeouts no vendor's servers would cause.
    request_queue_size = 128
    daemon_threads = True
    emulator: VendorEmulator


class EmulatorHandler(BaseHTTPRequestHandler):
    """Parses each request, hands it to the emulator (vendor or control) and sends the answer."""

    protocol_version = "HTTP/1.1"  # keep-alive, as a requests Session expects
    # Headers and body go out in separate writes; without TCP_NODELAY every keep-alive answer
    # waits ~40 ms for the client's delayed ACK.
    disable_nagle_algorithm = True
    server: EmulatorServer
    _clock: datetime | None = None

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request log is ``emulator.request_log``, which never holds a credential."""

    def date_time_string(self, timestamp: float | None = None) -> str:
        """The Date header: the answer's clock when it has one, real time otherwise."""
        if self._clock is not None and timestamp is None:
            return format_datetime(self._clock.astimezone(UTC), usegmt=True)
        return super().date_time_string(timestamp)

    def _handle(self) -> None:
        emulator = self.server.emulator
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=split.path.rstrip("/") or "/",
            query={name: values[0] for name, values in parse_qs(split.query, keep_blank_values=True).items()},
            headers=self.headers,
            body=self.rfile.read(length) if length else b"",
        )
        try:
            if request.path == CONTROL_PREFIX or request.path.startswith(CONTROL_PREFIX + "/"):
                answer = emulator._serve_control(request, self.client_address[0])
            else:
                answer = emulator._serve_vendor(request)
        except Exception as exc:  # an emulator bug must show as a 500 with its cause, not as a hung client
            answer = Answer(500, emulator._error_body(500, f"emulator error: {type(exc).__name__}: {exc}"))
        self._send(answer, emulator)

    def _send(self, answer: Answer, emulator: VendorEmulator) -> None:
        if answer.drop:
            self.close_connection = True
            return
        payload = emulator._encode(answer)
        self._clock = answer.clock
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type or emulator.json_content_type)
            if answer.cut == "chunked":
                self.send_header("Transfer-Encoding", "chunked")
            else:
                self.send_header("Content-Length", str(len(payload)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if answer.cut is not None:
                half = payload[: len(payload) // 2]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(half), half) if answer.cut == "chunked" else half)
                self.wfile.flush()
                self.close_connection = True  # and never the rest: the client sees the answer cut off
            elif answer.seconds_per_byte:
                for index in range(len(payload)):
                    self.wfile.write(payload[index : index + 1])
                    self.wfile.flush()
                    emulator.faults.stall(answer.seconds_per_byte)
            else:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (a read_timeout or trickle fault does that on purpose).
            self.close_connection = True
        finally:
            self._clock = None


VendorEmulator.server_class = EmulatorServer
VendorEmulator.handler_class = EmulatorHandler
