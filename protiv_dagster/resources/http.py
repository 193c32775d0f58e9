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

Secrets never reach an exception, a log line or metadata: messages are built from the status, the
path and the vendor's error text, and every registered secret is scrubbed from that text.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import requests
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
_NOT_DECODED = object()


class VendorError(RuntimeError):
    """A vendor call failed; the message names the vendor and never contains a credential."""

    def __init__(self, vendor: str, message: str, status: int | None = None):
        self.vendor = vendor
        self.status = status
        super().__init__(f"{vendor}: {message}")


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
        max_attempts: int = 6,
        max_wait_seconds: float = 60.0,
        initial_backoff_seconds: float = 0.5,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{self.vendor}: base URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.timeout = (connect_timeout_seconds, read_timeout_seconds)
        self.max_attempts = max_attempts
        self.max_wait_seconds = max_wait_seconds
        self.initial_backoff_seconds = initial_backoff_seconds
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "protiv-dagster/0.1"
        self._secrets: set[str] = set()
        self._lock = threading.Lock()
        self.request_count = 0
        self.retry_count = 0

    # -- for subclasses -----------------------------------------------------------------------
    def auth_headers(self) -> dict[str, str]:
        return {}

    def refresh_credentials(self) -> bool:
        """Renew credentials after a 401; return True when a retry with new credentials makes sense."""
        return False

    def register_secret(self, *values: str | None) -> None:
        """Remember values that must be scrubbed from any error text."""
        self._secrets.update(v for v in values if v)

    # -- the one request path ------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        for secret in self._secrets:
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
            getattr(failure, "description", failure),
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

        With ``expect_json`` a 2xx answer whose body is not JSON counts as a transient failure."""
        refreshed = False
        while True:
            response = self._request_with_retries(method, path, params, json_body, form, authenticated, expect_json)
            if response.status_code == 401 and authenticated and not refreshed and self.refresh_credentials():
                refreshed = True
                continue
            self._raise_for_status(response, path)
            return response

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

    def _request_with_retries(self, method, path, params, json_body, form, authenticated, expect_json=False) -> requests.Response:
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
            try:
                response = self.session.request(
                    method,
                    f"{self.base_url}/{path.lstrip('/')}",
                    params=params,
                    json=json_body,
                    data=form,
                    headers=headers,
                    timeout=self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _TransientFailure(f"{type(exc).__name__} on {path}") from None
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
        detail = self.scrub(self.error_detail(response))
        if status in (401, 403):
            raise VendorAuthError(
                self.vendor,
                f"credentials rejected on {path} (HTTP {status}: {detail}); an admin must reconnect this company",
                status,
            )
        raise VendorRequestError(self.vendor, f"{path} refused the request (HTTP {status}: {detail})", status)

    def error_detail(self, response: requests.Response) -> str:
        """The vendor's own error text, shortened; subclasses know their error body shape."""
        return response.text[:300].strip() or response.reason or "no message"


def require_keys(vendor: str, record: Mapping[str, Any], keys: Iterable[str], where: str) -> None:
    """Raise a VendorPayloadError naming the first documented key that a payload lacks."""
    for key in keys:
        if key not in record:
            raise VendorPayloadError(vendor, f"{where} lacks the documented key {key!r}")
