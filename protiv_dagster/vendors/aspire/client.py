"""Aspire External API: the client and the Dagster resource that builds it.

Protocol facts (Aspire's OpenAPI document and guide, see the project's vendor notes):
- ``POST /Authorization`` with ``{"ClientId", "Secret"}`` answers ``{"Token", "RefreshToken"}``;
  calls carry ``Authorization: Bearer <Token>``. ``POST /Authorization/RefreshToken`` with
  ``{"RefreshToken"}`` renews the pair. On a 401 the client refreshes once; when the refresh token is
  refused too it authenticates again with the client id and secret.
- The token is a JWT living about 24 hours. A client can start from a pair obtained earlier
  (``AspireTokens``, kept encrypted in the registry by the source) and hands every new pair to
  ``on_new_tokens``, so a refresh check every two hours asks for a token about once a day instead of
  every time. The expiry is the token's own ``exp`` claim; when that cannot be read, the token is
  assumed to live ``ASSUMED_TOKEN_LIFETIME``. A stored token within ``TOKEN_RENEWAL_MARGIN`` of its
  expiry is not used: the client authenticates with the client id and secret at its first call (one
  request, where trying the stored refresh token first could cost two).
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

import base64
import binascii
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import Field

from protiv_dagster.vendors.http import (
    VendorAuthError,
    VendorClient,
    VendorPayloadError,
    http_options,
    require_keys,
)
from protiv_dagster.vendors.tuning import HttpTuning

MAX_PAGE_SIZE = 1000

EMPLOYEE_FILTER = "ContactTypeName eq 'Employee'"
# Aspire tokens live about 24 hours (vendor notes); the assumed lifetime of one whose expiry cannot
# be read from the token itself stays below that.
ASSUMED_TOKEN_LIFETIME = timedelta(hours=23)
# A stored token this close to its expiry is renewed before use rather than risked mid-sync (clock
# skew between the vendor and us is covered too).
TOKEN_RENEWAL_MARGIN = timedelta(minutes=10)


@dataclass(frozen=True, repr=False)
class AspireTokens:
    """An Aspire token pair and when the access token expires (aware UTC). Secrets: never log them;
    the repr shows the expiry only."""

    token: str
    refresh_token: str | None
    expires_at: datetime

    def __repr__(self) -> str:
        return f"AspireTokens(token=***, refresh_token=***, expires_at={self.expires_at.isoformat()})"

    def usable(self, now: datetime | None = None) -> bool:
        """Still worth sending: not within ``TOKEN_RENEWAL_MARGIN`` of its expiry."""
        return (now or datetime.now(UTC)) < self.expires_at - TOKEN_RENEWAL_MARGIN


def token_expiry(token: str, received_at: datetime) -> datetime:
    """When ``token`` expires: its JWT ``exp`` claim, else ``received_at + ASSUMED_TOKEN_LIFETIME``.
    The claim is read without verifying the signature: it only decides when to ask for a new token,
    and a token refused earlier than that is renewed on its 401 anyway."""
    parts = token.split(".")
    if len(parts) == 3:
        try:
            claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
            return datetime.fromtimestamp(float(claims["exp"]), UTC)
        except (ValueError, TypeError, KeyError, binascii.Error, OverflowError):
            pass
    return received_at + ASSUMED_TOKEN_LIFETIME


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


def _last_id(page: list[dict[str, Any]], id_field: str) -> Any:
    """The greatest id of a page (the keyset to continue from). Aspire's ids are numbers: a record
    whose id is not one (null, text) is left to the mapping to set aside and is not paged on from."""
    numbers = [
        value
        for value in (record.get(id_field) for record in page)
        if isinstance(value, int) and not isinstance(value, bool)
    ]
    return max(numbers) if numbers else None


# Named once here: inside AspireClient, ``list`` is its method.
Records = list[dict[str, Any]]


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
        tokens: AspireTokens | None = None,
        on_new_tokens: Callable[[AspireTokens], None] | None = None,
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
        self._on_new_tokens = on_new_tokens
        self.authentication_count = 0
        self.token_request_count = 0  # /Authorization and /Authorization/RefreshToken requests
        self.register_secret(secret)
        self.register_identifier(client_id)
        if tokens is not None and tokens.usable():
            self._token, self._refresh_token = tokens.token, tokens.refresh_token
            self.register_secret(tokens.token, tokens.refresh_token)

    def __repr__(self) -> str:
        return f"AspireClient({self.base_url!r}, client_id=***, secret=***)"

    # -- authentication ----------------------------------------------------------------------------
    def authenticate(self) -> None:
        """Exchange the client id and secret for a token pair (a clear VendorAuthError when refused)."""
        self.token_request_count += 1
        body = self.decode_json(
            self.request(
                "POST",
                "Authorization",
                json_body={"ClientId": self._client_id, "Secret": self._secret},
                authenticated=False,
                expect_json=True,
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
        if self._on_new_tokens is not None:
            self._on_new_tokens(
                AspireTokens(self._token, self._refresh_token, token_expiry(self._token, datetime.now(UTC)))
            )

    def auth_headers(self) -> dict[str, str]:
        if self._token is None:
            self.authenticate()
        return {"Authorization": f"Bearer {self._token}"}

    def refresh_credentials(self) -> bool:
        """After a 401: renew through the refresh token, else authenticate again with the secret."""
        if self._refresh_token:
            self.token_request_count += 1
            try:
                body = self.decode_json(
                    self.request(
                        "POST",
                        "Authorization/RefreshToken",
                        json_body={"RefreshToken": self._refresh_token},
                        authenticated=False,
                        expect_json=True,
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
                    return body[key]
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
        guard = self.listing(endpoint)
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
            # A record without a usable id is kept for the mapping to set aside with its reason.
            guard.page(record.get(id_field) for record in body)
            yield body
            if len(body) < self.page_size:
                return
            if self.keyset:
                last_id = _last_id(body, id_field)
                if last_id is None:
                    raise VendorPayloadError(
                        self.vendor, f"/{endpoint} page {page_number} is full but holds no {id_field} to page on from"
                    )
            page_number += 1

    def list(
        self, endpoint: str, id_field: str, *, filter: str | None = None, select: Sequence[str] | None = None
    ) -> list[dict[str, Any]]:
        """All records. A record repeated on another page fails the listing (``ListingGuard``); copies
        of an id within one page are all kept, so the mapping sets every copy aside alike."""
        return [record for page in self.pages(endpoint, id_field, filter=filter, select=select) for record in page]

    def _since(self, name: str, modified_since: datetime | None) -> tuple[str, str, Any] | None:
        return (name, "ge", modified_since) if modified_since is not None else None

    def _filter(self, *conditions: Any) -> str | None:
        return odata_filter(*conditions, timezone=self.timezone)

    # -- endpoints ------------------------------------------------------------------------------------
    def employees(self, *, modified_since: datetime | None = None) -> Records:
        """Contacts of type Employee, active or not (time of people who left still counts)."""
        return self.list(
            "Contacts", "ContactID", filter=self._filter(EMPLOYEE_FILTER, self._since("ModifiedDate", modified_since))
        )

    def branches(self) -> Records:
        return self.list("Branches", "BranchID")

    def opportunities(self, *, modified_since: datetime | None = None) -> Records:
        return self.list(
            "Opportunities", "OpportunityID", filter=self._filter(self._since("ModifiedDate", modified_since))
        )

    def work_tickets(
        self, *, modified_since: datetime | None = None, opportunity_ids: Sequence[int] | None = None
    ) -> Records:
        return self.list(
            "WorkTickets",
            "WorkTicketID",
            filter=self._filter(
                self._since("LastModifiedDateTime", modified_since),
                any_of("OpportunityID", opportunity_ids) if opportunity_ids else None,
            ),
        )

    def opportunity_services(self) -> Records:
        """Every opportunity service (an opportunity's line items; its work tickets name them)."""
        return self.list(
            "OpportunityServices",
            "OpportunityServiceID",
            select=["OpportunityServiceID", "OpportunityID", "DisplayName", "ExtendedHours", "LaborExtendedCost"],
        )

    def pay_rates(self) -> Records:
        """Every pay rate of every employee: their wage histories."""
        return self.list(
            "PayRates",
            "PayRateID",
            select=["PayRateID", "ContactID", "EffectiveDate", "HourlyBasePay", "BurdenPercent"],
        )

    def crew_leader_times(self, *, first_day: date, last_day: date) -> Records:
        """Id, ticket and crew leader of the work ticket times dated ``first_day``..``last_day`` that name one."""
        return self.list(
            "WorkTicketTimes",
            "WorkTicketTimeID",
            filter=self._filter(
                ("WorkTicketTimeDate", "ge", first_day),
                ("WorkTicketTimeDate", "lt", last_day + timedelta(days=1)),
                ("CrewLeaderContactID", "ne", None),
            ),
            select=["WorkTicketTimeID", "WorkTicketID", "CrewLeaderContactID"],
        )

    def work_ticket_times(
        self,
        *,
        first_day: date | None = None,
        last_day: date | None = None,
        modified_since: datetime | None = None,
        contact_ids: Sequence[int] | None = None,
        select: Sequence[str] | None = None,
    ) -> Records:
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
        self, *, days: Sequence[tuple[date, date]], modified_after: datetime | None
    ) -> Records:
        """Id, work date and modification stamp of every work ticket time dated in one of the
        inclusive ``days`` ranges OR modified after ``modified_after`` (wherever it is dated now), in
        one paged listing: the live ids of those days (deletions show as missing ids) and the changes
        since the last check (an entry moved out of them included) come from the same requests."""
        if not days and modified_after is None:
            raise ValueError("Aspire work ticket time changes need a date range or modified_after")
        conditions = []
        for first_day, last_day in days:
            if last_day < first_day:
                raise ValueError(f"Aspire: date range {first_day}..{last_day} ends before it starts")
            window = self._filter(
                ("WorkTicketTimeDate", "ge", first_day), ("WorkTicketTimeDate", "lt", last_day + timedelta(days=1))
            )
            conditions.append(f"({window})")
        if modified_after is not None:
            conditions.append(f"LastModifiedDateTime gt {odata_datetime(modified_after, self.timezone)}")
        condition = " or ".join(conditions)
        return self.list(
            "WorkTicketTimes",
            "WorkTicketTimeID",
            filter=condition,
            select=["WorkTicketTimeID", "WorkTicketTimeDate", "LastModifiedDateTime"],
        )

    def modified_after(
        self, endpoint: str, id_field: str, stamp_field: str, after: datetime, *, filter: str | None = None
    ) -> Records:
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

    def clock_times(self, *, first_day: date, last_day: date) -> Records:
        """Clock times that start on the local dates ``first_day``..``last_day`` (no modified stamp exists)."""
        return self.list(
            "ClockTimes",
            "ClockTimeID",
            filter=self._filter(("ClockStart", "ge", first_day), ("ClockStart", "lt", last_day + timedelta(days=1))),
        )


class AspireTuning(HttpTuning):
    """Aspire External API. Holds only tuning; the base URL and the API user's client id and secret
    come from the company's connection at run time, so no secret ever travels in run config."""

    page_size: int = Field(
        default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Records per page ($limit, max 1000)."
    )
    keyset_paging: bool = Field(default=True, description="Page as '<id> gt <last id>' (robust to concurrent edits).")
    wage_lookback_days: int = Field(
        default=120,
        ge=1,
        description="Days of work ticket times read for the crew leaders of the work tickets and, for employees "
        "without a pay rate, their BaseHourlyRate.",
    )
    open_weeks: int = Field(
        default=2,
        ge=1,
        description="Change detection lists the ids of the current week and the weeks before it, this "
        "many in all, at every check (a deletion there shows at the next check); older weeks are listed "
        "a slice per check in rotation (see sources/aspire.py).",
    )

    def client(
        self,
        base_url: str,
        client_id: str,
        secret: str,
        timezone: str | None = None,
        *,
        tokens: AspireTokens | None = None,
        on_new_tokens: Callable[[AspireTokens], None] | None = None,
    ) -> AspireClient:
        return AspireClient(
            base_url,
            client_id,
            secret,
            page_size=self.page_size,
            timezone=timezone,
            keyset=self.keyset_paging,
            tokens=tokens,
            on_new_tokens=on_new_tokens,
            **http_options(self),
        )


__all__ = [
    "AspireClient",
    "AspireTuning",
    "AspireTokens",
    "VendorAuthError",
    "token_expiry",
    "any_of",
    "odata_datetime",
    "odata_filter",
    "odata_string",
]
