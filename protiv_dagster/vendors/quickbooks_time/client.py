"""QuickBooks Time (formerly TSheets) REST API v1: the client and the Dagster resource that builds it.

Protocol facts (vendor documentation, see the project's vendor notes):
- ``Authorization: Bearer <access token>``; an expired token answers 401 and is renewed once through
  ``POST /grant`` with ``grant_type=refresh_token`` when the connection holds a refresh token and the
  app's client id and secret. The rotated tokens are handed to ``on_token_refresh`` so the registry
  can store them (encrypted) for the next run.
- Answers put records under ``results.<name>`` as an object keyed by id; list answers carry ``more``;
  paging is ``page`` (from 1) and ``limit`` (1..200). A page without records whose ``more`` is true
  is read again (its records would otherwise be skipped) and fails the call if it stays empty.
- ``/timesheets`` requires one of ``ids``, ``start_date``, ``modified_since``, ``modified_before`` and
  leaves running sheets out unless ``on_the_clock=both``: we always ask for both, so an entry still
  on the clock is visible as such.
- ``/timesheets_deleted`` lists deletions (kept 180 days); ``modified_since`` there means deleted since.
- Rate limit 300 calls per 5 minutes per token; 429 carries no documented Retry-After, so the shared
  base backs off exponentially unless the header is present.

Uncertain points, kept configurable: whether ``modified_since`` is inclusive (we treat it as
inclusive, so an incremental pull may see one record twice; writes are idempotent replaces).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from pydantic import Field

from protiv_dagster.vendors.http import (
    VendorAuthError,
    VendorClient,
    VendorPayloadError,
    http_options,
    require_keys,
)
from protiv_dagster.vendors.quickbooks_time.credentials import QuickBooksTimeCredentials
from protiv_dagster.vendors.tuning import HttpTuning

MAX_PAGE_SIZE = 200
EMPTY_PAGE_REREADS = 2  # times an empty page that announces more is read again before the sync fails


@dataclass
class Page:
    """One page of a list answer: the records in id order, and the supplemental objects if asked."""

    records: list[dict[str, Any]]
    supplemental: dict[str, dict[str, Any]] = field(default_factory=dict)


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("QuickBooks Time timestamps must be timezone-aware")
    return value.isoformat(timespec="seconds")


def _id_order(record: dict[str, Any]) -> tuple[int, int, str]:
    """Numeric ids in numeric order, then anything else (null, text) by its text."""
    value = record.get("id")
    if isinstance(value, int) and not isinstance(value, bool):
        return (0, value, "")
    text = str(value)
    return (0, int(text), "") if text.isascii() and text.isdigit() else (1, 0, text)


class QuickBooksTimeClient(VendorClient):
    """Talks to one company's QuickBooks Time account."""

    vendor = "QuickBooks Time"

    def __init__(
        self,
        base_url: str,
        credentials: QuickBooksTimeCredentials,
        *,
        page_size: int = MAX_PAGE_SIZE,
        on_token_refresh: Callable[[QuickBooksTimeCredentials], None] | None = None,
        **http_options: Any,
    ):
        super().__init__(base_url, **http_options)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"QuickBooks Time page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self.page_size = page_size
        self.credentials = credentials
        self.on_token_refresh = on_token_refresh
        self.register_secret(credentials.access_token, credentials.refresh_token, credentials.client_secret)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credentials.access_token}"}

    def refresh_credentials(self) -> bool:
        creds = self.credentials
        if not (creds.refresh_token and creds.client_id and creds.client_secret):
            return False
        response = self.request(
            "POST",
            "grant",
            form={
                "grant_type": "refresh_token",
                "client_id": creds.client_id,
                "client_secret": creds.client_secret,
                "refresh_token": creds.refresh_token,
            },
            authenticated=False,
            expect_json=True,
        )
        body = self.decode_json(response, "grant")
        require_keys(self.vendor, body, ("access_token", "refresh_token"), "the /grant answer")
        self.credentials = QuickBooksTimeCredentials(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            client_id=creds.client_id,
            client_secret=creds.client_secret,
        )
        self.register_secret(self.credentials.access_token, self.credentials.refresh_token)
        if self.on_token_refresh:
            self.on_token_refresh(self.credentials)
        return True

    def error_detail(self, response) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_detail(response)
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            return str(error.get("message") or error)
        if isinstance(error, str):  # the OAuth endpoint's shape: {"error": "...", "error_description": "..."}
            return f"{error}: {body.get('error_description', '')}".strip(": ")
        return super().error_detail(response)

    # -- paging ---------------------------------------------------------------------------------
    def pages(self, endpoint: str, params: Mapping[str, Any], *, supplemental: bool = False) -> Iterator[Page]:
        """Every page of a list endpoint, following ``more`` from page 1."""
        query = {k: v for k, v in params.items() if v is not None}
        query["limit"] = self.page_size
        query["supplemental_data"] = "yes" if supplemental else "no"
        page_number, rereads = 1, 0
        guard = self.listing(endpoint)
        while True:
            query["page"] = page_number
            body = self.get_json(endpoint, query)
            records = self._records(body, endpoint)
            more = body.get("more") if isinstance(body, dict) else None
            if not isinstance(more, bool):
                raise VendorPayloadError(self.vendor, f"/{endpoint} page {page_number} has no boolean 'more'")
            if not records and more:
                # No records yet more to come: the page's own records went missing between counting
                # and rendering. Going on to the next page would skip them silently, so read it again.
                if rereads >= EMPTY_PAGE_REREADS:
                    raise VendorPayloadError(
                        self.vendor,
                        f"/{endpoint} page {page_number} came back empty {rereads + 1} times while saying more "
                        "records follow; refusing to skip its records",
                    )
                rereads += 1
                continue
            guard.page(record.get("id") for record in records)
            yield Page(records, (body.get("supplemental_data") or {}) if supplemental else {})
            if not more:
                return
            page_number, rereads = page_number + 1, 0

    def _records(self, body: Any, endpoint: str) -> list[dict[str, Any]]:
        results = body.get("results") if isinstance(body, dict) else None
        if not isinstance(results, dict) or endpoint not in results:
            raise VendorPayloadError(self.vendor, f"/{endpoint} answered without results.{endpoint}")
        keyed = results[endpoint]
        if keyed in ([], {}):  # an empty result set is serialised as [] by some PHP endpoints
            return []
        if not isinstance(keyed, dict):
            raise VendorPayloadError(self.vendor, f"/{endpoint} results.{endpoint} is not an object keyed by id")
        records = list(keyed.values())
        if not all(isinstance(r, dict) for r in records):
            raise VendorPayloadError(self.vendor, f"/{endpoint} returned a record that is not an object")
        # A record without a usable id is kept: the mapping sets it aside with its reason, and one
        # bad record never fails the sync.
        return sorted(records, key=_id_order)

    def _all(self, endpoint: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return [record for page in self.pages(endpoint, params) for record in page.records]

    # -- endpoints --------------------------------------------------------------------------------
    def current_user(self) -> dict[str, Any]:
        """The user the token belongs to; the cheapest call that proves the credentials work."""
        body = self.get_json("current_user")
        users = self._records(body, "users")
        if len(users) != 1:
            raise VendorPayloadError(self.vendor, "/current_user did not return exactly one user")
        return users[0]

    def users(self, *, modified_since: datetime | None = None) -> list[dict[str, Any]]:
        """Every user, active or not: time entries of people who left still count."""
        return self._all(
            "users",
            {"active": "both", "modified_since": _iso(modified_since) if modified_since else None},
        )

    def jobcodes(self, *, modified_since: datetime | None = None) -> list[dict[str, Any]]:
        """Every regular jobcode (top level = job, child = milestone) with its custom field values."""
        return self._all(
            "jobcodes",
            {
                "active": "both",
                "type": "regular",
                "customfields": "true",
                "modified_since": _iso(modified_since) if modified_since else None,
            },
        )

    def customfields(self, applies_to: str = "jobcode") -> list[dict[str, Any]]:
        return self._all("customfields", {"applies_to": applies_to, "active": "both"})

    def timesheet_pages(
        self,
        *,
        start_date: date | None = None,
        end_date: date | None = None,
        modified_since: datetime | None = None,
        ids: list[int] | None = None,
        supplemental: bool = False,
    ) -> Iterator[Page]:
        """Timesheets by work date range and/or modification time, running sheets included."""
        if not (start_date or modified_since or ids):
            raise ValueError("QuickBooks Time /timesheets needs start_date, modified_since or ids")
        return self.pages(
            "timesheets",
            {
                "start_date": start_date.isoformat() if start_date else None,
                "end_date": end_date.isoformat() if end_date else None,
                "modified_since": _iso(modified_since) if modified_since else None,
                "ids": ",".join(map(str, ids)) if ids else None,
                "on_the_clock": "both",
            },
            supplemental=supplemental,
        )

    def timesheets(self, **filters: Any) -> list[dict[str, Any]]:
        return [record for page in self.timesheet_pages(**filters) for record in page.records]

    def deleted_timesheets(
        self,
        *,
        start_date: date | None = None,
        end_date: date | None = None,
        modified_since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Timesheets deleted in the account, by work date range and/or deletion time."""
        return [
            record
            for page in self.deleted_timesheet_pages(
                start_date=start_date, end_date=end_date, modified_since=modified_since
            )
            for record in page.records
        ]

    def deleted_timesheet_pages(
        self,
        *,
        start_date: date | None = None,
        end_date: date | None = None,
        modified_since: datetime | None = None,
    ) -> Iterator[Page]:
        """The pages of ``deleted_timesheets``, one request each, as they arrive."""
        if (start_date is None) != (end_date is None):
            raise ValueError("QuickBooks Time /timesheets_deleted takes start_date and end_date together")
        if not (start_date or modified_since):
            raise ValueError("QuickBooks Time /timesheets_deleted needs a date range or modified_since")
        return self.pages(
            "timesheets_deleted",
            {
                "start_date": start_date.isoformat() if start_date else None,
                "end_date": end_date.isoformat() if end_date else None,
                "modified_since": _iso(modified_since) if modified_since else None,
            },
        )

    def last_modified_timestamps(
        self, endpoints: tuple[str, ...] = ("timesheets", "timesheets_deleted", "users", "jobcodes")
    ) -> dict[str, datetime]:
        """When each endpoint's data last changed: one call that tells whether a sync has work to do.

        ``server_time`` holds the vendor's clock of this answer afterwards."""
        body = self.get_json("last_modified_timestamps", {"endpoints": ",".join(endpoints)})
        try:
            stamps = body["results"]["last_modified_timestamps"]
            return {name: datetime.fromisoformat(value) for name, value in stamps.items()}
        except (KeyError, TypeError, ValueError) as exc:
            raise VendorPayloadError(self.vendor, f"/last_modified_timestamps is malformed ({exc})") from None


class QuickBooksTimeTuning(HttpTuning):
    """QuickBooks Time REST API v1. Holds only tuning; the base URL and credentials come from the
    company's connection at run time, so no secret ever travels in run config."""

    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Records per page (max 200).")

    def client(
        self,
        base_url: str,
        credentials: QuickBooksTimeCredentials,
        on_token_refresh: Callable[[QuickBooksTimeCredentials], None] | None = None,
    ) -> QuickBooksTimeClient:
        return QuickBooksTimeClient(
            base_url,
            credentials,
            page_size=self.page_size,
            on_token_refresh=on_token_refresh,
            **http_options(self),
        )


__all__ = [
    "QuickBooksTimeClient",
    "QuickBooksTimeCredentials",
    "QuickBooksTimeTuning",
    "VendorAuthError",
]
