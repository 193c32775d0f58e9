"""Signed webhooks to the app: a company's integration status changed, or a sync finished, so the
app can refresh its ProPay list without polling.

The operator configures one receiver (``PROTIV_WEBHOOK_URL``) and its secret
(``PROTIV_WEBHOOK_SECRET``). Each event is a JSON object ``{"id", "type", "created_at", "data"}``
POSTed with the header ``X-Protiv-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw
body>">`` under the secret. A receiver recomputes it over the raw body, compares in constant time and
refuses a ``t`` more than a few minutes old (replays); ``id`` lets it drop a retried delivery it has
already handled.

Events are sent from one background thread, in order, each with a connect and read timeout and a
few retries with backoff on connection errors, 429 and 5xx (urllib3 ``Retry``); one that still fails
is logged (type, URL host, status: never the body's secret-free data nor the secret) and dropped, so
a receiver that is down never slows an admin's call. Bodies never hold a credential.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import queue
import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

log = logging.getLogger(__name__)

URL_VARIABLE = "PROTIV_WEBHOOK_URL"
SECRET_VARIABLE = "PROTIV_WEBHOOK_SECRET"
SIGNATURE_HEADER = "X-Protiv-Signature"
STATUS_CHANGED, SYNC_FINISHED = "company.status_changed", "sync.finished"
# A receiver should refuse signatures older than this (documented for receivers; ours in tests).
SIGNATURE_TOLERANCE_SECONDS = 300


def sign(secret: str, body: bytes, at: int | None = None) -> str:
    """The ``X-Protiv-Signature`` value of ``body`` sent at ``at`` (unix seconds)."""
    timestamp = int(time.time()) if at is None else at
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: str, body: bytes, header: str, now: float | None = None) -> bool:
    """What a receiver does: the signature matches the raw body, and is recent."""
    parts = dict(part.split("=", 1) for part in header.split(",") if "=" in part)
    timestamp = parts.get("t", "")
    if not timestamp.isdigit():
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > SIGNATURE_TOLERANCE_SECONDS:
        return False
    expected = sign(secret, body, int(timestamp)).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


class Webhooks:
    """Queues events and delivers them from a background thread; without a URL it drops them."""

    def __init__(
        self,
        url: str | None,
        secret: str | None,
        *,
        attempts: int = 4,
        backoff_seconds: float = 0.5,
        timeout: tuple[float, float] = (3.0, 10.0),
    ):
        if url and not secret:
            raise ValueError(f"{URL_VARIABLE} is set without {SECRET_VARIABLE}: webhooks are always signed")
        self.url, self._secret, self.timeout = url or None, secret or "", timeout
        self.session = requests.Session()
        retry = Retry(
            total=attempts - 1,
            backoff_factor=backoff_seconds,
            status_forcelist=(429, 500, 502, 503, 504),
            allowed_methods=frozenset({"POST"}),
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._queue: queue.Queue[bytes | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self.delivered = 0

    @classmethod
    def from_environment(cls) -> Webhooks:
        return cls(os.environ.get(URL_VARIABLE), os.environ.get(SECRET_VARIABLE))

    def start(self) -> None:
        if self.url and self._thread is None:
            self._thread = threading.Thread(target=self._deliver_all, name="protiv-webhooks", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Deliver what is queued (within ``timeout``), then stop."""
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)
            self._thread = None

    def send(self, event_type: str, data: Mapping[str, Any]) -> dict[str, Any] | None:
        """Queue an event; returns it (None when no receiver is configured)."""
        if not self.url:
            return None
        event = {
            "id": uuid.uuid4().hex,
            "type": event_type,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "data": dict(data),
        }
        self._queue.put(json.dumps(event, sort_keys=True, default=str).encode())
        self.start()
        return event

    def _deliver_all(self) -> None:
        while True:
            body = self._queue.get()
            if body is None:
                return
            self._deliver(body)

    def _deliver(self, body: bytes) -> None:
        assert self.url is not None
        host = urlsplit(self.url).netloc.rpartition("@")[2]
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body)}
        try:
            response = self.session.post(self.url, data=body, headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            log.warning("webhook to %s not delivered: %s", host, type(exc).__name__)
            return
        if response.status_code >= 300:
            log.warning("webhook to %s not delivered: HTTP %s", host, response.status_code)
            return
        self.delivered += 1
