"""Aspire External API: the client and the Dagster resource that builds it.

Protocol facts (Aspire's OpenAPI document and guide, see the project's vendor notes):
- ``POST /Authorization`` with ``{"ClientId", "Secret"}`` answers ``{"Token", "RefreshToken"}``;
  calls carry ``Authorization: Bearer <Token>``. ``POST /Authorization/RefreshToken`` with
  ``{"RefreshToken"}`` renews the pair. On a 401 the client refreshes once; when the refresh token is
  refused too it authenticates again with the client id and secret.
- Lists are bare JSON arrays, OData query options. Paging: ``$pageNumber`` (from 1) and ``$limit``
  (up to 1000), always both, always with a stable ``$orderby`` on the entity id, until a page is
  shorter than ``$limit``; by default as keyset paging (``<id> gt <last id>``, see ``pages``). An
  empty page after a full one is read once more before it is taken as the end of the listing.
- Incremental reads filter ``LastModifiedDateTime ge <ts>`` (work tickets, work ticket times) or
  ``ModifiedDate ge <ts>`` (contacts, opportunities). ClockTimes carry no modified stamp: re-read a
  date window. There is no feed of deleted rows.
- Rate limit for all API users of a tenant: 60/min (sandbox), 1,200/min (production); 429 over it.
  The shared base retries 429/5xx and honours ``Retry-After`` when present.

Uncertain points, kept configurable: Aspire datetimes carry no offset and are most likely
branch-local wall time. The client sends datetimes the same way: a naive datetime as given, an
aware one converted to ``timezone`` (the branch's IANA zone, when the client knows it) or else UTC,
then written without an offset. ``ge`` is inclusive, so an incremental pull may see a record twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
from pydantic import Field

from protiv_dagster.resources.http import VendorAuthError, VendorClient, VendorPayloadError, require_keys

MAX_PAGE_SIZE = 1000

EMPLOYEE_FILTER = "ContactTypeName eq 'Employee'"


# -- OData literals and filters --------------------------------------------------------------------
def odata_string(value: str) -> str:
    """A quoted OData string literal: single quotes, an embedded quote doubled."""
    return "'" + str(value).replace("'", "''") + "'"


def odata_datetime(value: date | datetime, timezone: str | None = None) -> str:
    """An unquoted OData DateTime literal in Aspire's offset-less wall time (see the module docstring)."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(ZoneInfo(timezone) if timezone else UTC).replace(tzinfo=None)
        return value.replace(microsecond=0).isoformat(timespec="seconds")
    return f"{value.isoformat()}T00:00:00"


def odata_literal(value: Any, timezone: str | None = None) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (date, datetime)):
        return odata_datetime(value, timezone)
    return odata_string(str(value))


_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")


def odata_filter(*conditions: tuple[str, str, Any] | str | None, timezone: str | None = None) -> str | None:
    """``and`` of conditions: ``(field, operator, value)`` tuples (values quoted safely) or ready text.

    ``None`` conditions are skipped; with none left, no filter (``None``).
    """
    parts = []
    for condition in conditions:
        if condition is None:
            continue
        if isinstance(condition, str):
            parts.append(f"({condition})" if " or " in condition else condition)
            continue
        name, operator, value = condition
        if not name.isidentifier():
            raise ValueError(f"Aspire: {name!r} is not a property name")
        if operator not in _OPERATORS:
            raise ValueError(f"Aspire: OData operator must be one of {_OPERATORS}, got {operator!r}")
        parts.append(f"{name} {operator} {odata_literal(value, timezone)}")
    return " and ".join(parts) or None


def any_of(name: str, values: Sequence[Any]) -> str:
    """``(name eq a or name eq b ...)`` for a short list of values."""
    if not values:
        raise ValueError("Aspire: any_of needs at least one value")
    return "(" + " or ".join(f"{name} eq {odata_literal(v)}" for v in values) + ")"


class AspireClient(VendorClient):
    """Talks to one Aspire tenant through one API user (client id + secret)."""

    vendor = "Aspire"

    def __init__(
        self,
        base_url: str,
        client_id: str,
        secret: str,
        *,
        page_size: int = MAX_PAGE_SIZE,
        timezone: str | None = None,
        keyset: bool = True,
        **http_options: Any,
    ):
        super().__init__(base_url, **http_options)
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"Aspire page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        if not client_id or not secret:
            raise ValueError("Aspire needs a client id and a secret")
        self.page_size = page_size
        self.timezone = timezone
        self.keyset = keyset
        self._client_id = client_id
        self._secret = secret
        self._token: str | None = None
        self._refresh_token: str | None = None
        self.authentication_count = 0
        self.register_secret(secret)

    def __repr__(self) -> str:
        return f"AspireClient({self.base_url!r}, client_id={self._client_id!r}, secret=***)"

    # -- authentication ----------------------------------------------------------------------------
    def authenticate(self) -> None:
        """Exchange the client id and secret for a token pair (a clear VendorAuthError when refused)."""
        body = self.decode_json(
            self.request(
                "POST", "Authorization", json_body={"ClientId": self._client_id, "Secret": self._secret},
                authenticated=False, expect_json=True,
            ),
            "Authorization",
        )
        self._store_tokens(body, "Authorization")
        self.authentication_count += 1

    def _store_tokens(self, body: Any, where: str) -> None:
        if not isinstance(body, dict):
            raise VendorPayloadError(self.vendor, f"the /{where} answer is not a JSON object")
        require_keys(self.vendor, body, ("Token", "RefreshToken"), f"the /{where} answer")
        if not isinstance(body["Token"], str) or not body["Token"]:
            raise VendorPayloadError(self.vendor, f"the /{where} answer has no Token")
        self._token, self._refresh_token = body["Token"], body.get("RefreshToken") or None
        self.register_secret(self._token, self._refresh_token)

    def auth_headers(self) -> dict[str, str]:
        if self._token is None:
            self.authenticate()
        return {"Authorization": f"Bearer {self._token}"}

    def refresh_credentials(self) -> bool:
        """After a 401: renew through the refresh token, else authenticate again with the secret."""
        if self._refresh_token:
            try:
                body = self.decode_json(
                    self.request(
                        "POST", "Authorization/RefreshToken", json_body={"RefreshToken": self._refresh_token},
                        authenticated=False, expect_json=True,
                    ),
                    "Authorization/RefreshToken",
                )
                self._store_tokens(body, "Authorization/RefreshToken")
                return True
            except VendorAuthError:
                pass  # the refresh token is dead too: fall back to the client credentials
        self._token = None
        self.authenticate()
        return True

    def error_detail(self, response) -> str:
        try:
            body = response.json()
        except ValueError:
            return super().error_detail(response)
        if isinstance(body, dict):
            for key in ("Message", "message", "error_description", "error", "title"):
                if isinstance(body.get(key), str):
                    return body[key][:300]
        return super().error_detail(response)

    # -- paging ---------------------------------------------------------------------------------------
    def pages(
        self, endpoint: str, id_field: str, *, filter: str | None = None, select: Sequence[str] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of a list endpoint, in id order, until a page is shorter than ``$limit``.

        Each request sends ``$pageNumber`` and ``$limit`` with ``$orderby=<id>``. With ``keyset``
        paging (the default) the next page is page 1 of ``<id> gt <last id seen>``: a record
        deleted or inserted behind the cursor between two requests cannot shift a record past it,
        which plain page numbers would. ``keyset=False`` walks ``$pageNumber`` 1, 2, 3, ...
        """
        if select and id_field not in select:
            select = [id_field, *select]
        query: dict[str, Any] = {"$orderby": id_field, "$limit": self.page_size}
        if select:
            query["$select"] = ",".join(select)
        page_number, last_id = 1, None
        while True:
            conditions = [filter, (id_field, "gt", last_id) if last_id is not None else None]
            combined = odata_filter(*conditions)
            query.pop("$filter", None)
            if combined:
                query["$filter"] = combined
            query["$pageNumber"] = 1 if self.keyset else page_number
            body = self.get_json(endpoint, query)
            if body == [] and page_number > 1:
                # A bare array has no "more" flag or count: an empty page after a full one ends the
                # listing, or is a glitch that would silently drop every record after it. Asking
                # once more tells them apart (the listing ends on an exact page boundary rarely).
                body = self.get_json(endpoint, query)
            if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
                raise VendorPayloadError(self.vendor, f"/{endpoint} page {page_number} is not a JSON array of objects")
            for record in body:
                if id_field not in record:
                    raise VendorPayloadError(self.vendor, f"/{endpoint} returned a record without {id_field}")
            yield body
            if len(body) < self.page_size:
                return
            if self.keyset:
                last_id = body[-1][id_field]
            page_number += 1

    def list(
        self, endpoint: str, id_field: str, *, filter: str | None = None, select: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """All records, de-duplicated by id (the last copy read wins)."""
        seen: dict[Any, dict[str, Any]] = {}
        for page in self.pages(endpoint, id_field, filter=filter, select=select):
            for record in page:
                seen[record[id_field]] = record
        return list(seen.values())

    def _since(self, name: str, modified_since: datetime | None) -> tuple[str, str, Any] | None:
        return (name, "ge", modified_since) if modified_since is not None else None

    def _filter(self, *conditions: Any) -> str | None:
        return odata_filter(*conditions, timezone=self.timezone)

    # -- endpoints ------------------------------------------------------------------------------------
    def employees(self, *, modified_since: datetime | None = None) -> list[dict[str, Any]]:
        """Contacts of type Employee, active or not (time of people who left still counts)."""
        return self.list("Contacts", "ContactID", filter=self._filter(EMPLOYEE_FILTER, self._since("ModifiedDate", modified_since)))

    def branches(self) -> list[dict[str, Any]]:
        return self.list("Branches", "BranchID")

    def opportunities(self, *, modified_since: datetime | None = None) -> list[dict[str, Any]]:
        return self.list("Opportunities", "OpportunityID", filter=self._filter(self._since("ModifiedDate", modified_since)))

    def work_tickets(
        self, *, modified_since: datetime | None = None, opportunity_ids: Sequence[int] | None = None
    ) -> list[dict[str, Any]]:
        return self.list(
            "WorkTickets",
            "WorkTicketID",
            filter=self._filter(
                self._since("LastModifiedDateTime", modified_since),
                any_of("OpportunityID", opportunity_ids) if opportunity_ids else None,
            ),
        )

    def work_ticket_times(
        self,
        *,
        first_day: date | None = None,
        last_day: date | None = None,
        modified_since: datetime | None = None,
        contact_ids: Sequence[int] | None = None,
        select: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Work ticket times by work date (inclusive local dates) and/or modification time."""
        if first_day is None and last_day is None and modified_since is None:
            raise ValueError("Aspire work ticket times need a date range or modified_since")
        return self.list(
            "WorkTicketTimes",
            "WorkTicketTimeID",
            filter=self._filter(
                ("WorkTicketTimeDate", "ge", first_day) if first_day else None,
                ("WorkTicketTimeDate", "lt", last_day + timedelta(days=1)) if last_day else None,
                self._since("LastModifiedDateTime", modified_since),
                any_of("ContactID", contact_ids) if contact_ids else None,
            ),
            select=select,
        )

    def work_ticket_time_changes(
        self, *, first_day: date, last_day: date, modified_after: datetime | None
    ) -> list[dict[str, Any]]:
        """Id, work date and modification stamp of every work ticket time dated ``first_day``..
        ``last_day`` OR modified after ``modified_after`` (wherever it is dated now), in one paged
        listing: the live ids of the window (deletions show as missing ids) and the changes since
        the last check (an entry moved out of the window included) come from the same requests."""
        window = self._filter(
            ("WorkTicketTimeDate", "ge", first_day), ("WorkTicketTimeDate", "lt", last_day + timedelta(days=1))
        )
        condition = f"({window})"
        if modified_after is not None:
            condition += f" or LastModifiedDateTime gt {odata_datetime(modified_after, self.timezone)}"
        return self.list(
            "WorkTicketTimes",
            "WorkTicketTimeID",
            filter=condition,
            select=["WorkTicketTimeID", "WorkTicketTimeDate", "LastModifiedDateTime"],
        )

    def modified_after(
        self, endpoint: str, id_field: str, stamp_field: str, after: datetime, *, filter: str | None = None
    ) -> list[dict[str, Any]]:
        """Id and stamp of the records of ``endpoint`` whose ``stamp_field`` is after ``after``."""
        return self.list(
            endpoint,
            id_field,
            filter=self._filter(filter, (stamp_field, "gt", after)),
            select=[id_field, stamp_field],
        )

    def latest_modification(self, endpoint: str, id_field: str, stamp_field: str) -> str | None:
        """The newest ``stamp_field`` of ``endpoint`` (one request), ``None`` for an empty list."""
        body = self.get_json(
            endpoint,
            {
                "$orderby": f"{stamp_field} desc,{id_field} desc",
                "$select": f"{id_field},{stamp_field}",
                "$limit": 1,
                "$pageNumber": 1,
            },
        )
        if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
            raise VendorPayloadError(self.vendor, f"/{endpoint} is not a JSON array of objects")
        return body[0].get(stamp_field) if body else None

    def clock_times(self, *, first_day: date, last_day: date) -> list[dict[str, Any]]:
        """Clock times that start on the local dates ``first_day``..``last_day`` (no modified stamp exists)."""
        return self.list(
            "ClockTimes",
            "ClockTimeID",
            filter=self._filter(("ClockStart", "ge", first_day), ("ClockStart", "lt", last_day + timedelta(days=1))),
        )


class AspireResource(dg.ConfigurableResource):
    """Aspire External API. Holds only tuning; the base URL and the API user's client id and secret
    come from the company's connection at run time, so no secret ever travels in run config."""

    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Records per page ($limit, max 1000).")
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    max_attempts: int = Field(default=6, ge=1, description="Attempts per call on 429/5xx/timeouts.")
    max_wait_seconds: float = Field(default=60.0, gt=0, description="Longest single wait between attempts.")
    keyset_paging: bool = Field(default=True, description="Page as '<id> gt <last id>' (robust to concurrent edits).")
    wage_lookback_days: int = Field(default=120, ge=1, description="Days of work ticket times read for BaseHourlyRate.")
    reference_check_every: int = Field(
        default=12,
        ge=1,
        description="Change detection reads employees, opportunities and work tickets (3 extra requests) "
        "whenever time changed, else on every Nth check (12 = daily with a 2-hour refresh).",
    )

    def client(self, base_url: str, client_id: str, secret: str, timezone: str | None = None) -> AspireClient:
        return AspireClient(
            base_url,
            client_id,
            secret,
            page_size=self.page_size,
            timezone=timezone,
            keyset=self.keyset_paging,
            connect_timeout_seconds=self.connect_timeout_seconds,
            read_timeout_seconds=self.read_timeout_seconds,
            max_attempts=self.max_attempts,
            max_wait_seconds=self.max_wait_seconds,
        )


__all__ = ["AspireClient", "AspireResource", "VendorAuthError", "any_of", "odata_datetime", "odata_filter", "odata_string"]
