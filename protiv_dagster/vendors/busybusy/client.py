"""BusyBusy: the REST login, the GraphQL client and the Dagster resource that builds it.

Protocol (the project's decision for BusyBusy, see the vendor notes; BusyBusy publishes no reference):
- Login: ``GET {rest}/member?username=<u>&_version=3.2`` with
  ``Authorization: Basic base64(username + ":" + sha256hex(password))``; the answer's ``public_key``
  is the session key. Keys do not expire but die on a password change (401): the client logs in once
  more on a 401; if that login is refused too, a ``VendorAuthError`` says the username or password no
  longer works. Neither the password, its digest nor the key ever reaches an error text.
- Data: ``POST {graphql}`` with ``{"query", "variables"}`` and the header ``key-authorization: <key>``.
  Root lists take ``(filter, first, after, sort)``, return plain lists with a ``cursor`` per item;
  the client pages with ``first`` = ``page_size`` (500) and ``after`` = the last cursor until a page
  comes back short; an empty page after a full one is read once more before it ends the listing. Errors arrive as HTTP 200 with ``errors[].message``: they raise
  ``VendorRequestError`` (never read as empty data); a missing or malformed ``data`` raises
  ``VendorPayloadError``. 429/5xx/timeouts are retried by the shared ``VendorClient`` base, and so
  are answers whose every error is transient (``transient_graphql_errors``: a lock, a deadlock, a
  timeout, an internal or unavailable server, by message or ``extensions.code``); a validation,
  authorization or input error is not retried, as asking again would get the same answer.

URL layout (one base URL per connection): the connection stores the REST base
(``https://api.busybusy.io``). The GraphQL URL is the resource's ``graphql_url`` when set, else
derived by ``graphql_url_for``: ``https://api.<host>`` -> ``https://graphql.<host>/`` (BusyBusy's
production naming), and a base ending in ``/rest`` -> the same root + ``/graphql`` (the emulator, which
serves both on one host). Any other base needs ``graphql_url``.

Names: the queries select only fields that BusyBusy's own or its integrators' client code names (the
project's vendor notes), and filter only with the operators named there: ``equal``, ``contains``
(an IN list), ``isNull`` and ``greaterThanOrEqual``. There is no "less than" and no strict "greater
than": a start-time window [start, end) asks for ``startTime >= start`` sorted by ``startTime`` and
stops paging at the first page that ends at or after ``end`` (the sorted tail past it is dropped);
change detection asks for stamps ``>=`` the mark (``ChangeLog`` drops what it already saw). Nothing
undocumented is selected either: the root project of a sub-project is found by walking
``parentProjectId`` (the mapping), not by a root-project field. Every name that is inferred (the
``timeEntries`` root, the filter and sort type names, the operator names, ``isLatest`` as a filter,
sorting by a field) lives in the block "inferred names" below and in ``QUERIES``/``CHANGE_ROOTS``
built from it, nowhere else, so that a real introspection corrects them in one place.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from pydantic import Field

from protiv_dagster.vendors.http import (
    VendorAuthError,
    VendorClient,
    VendorPayloadError,
    VendorRequestError,
    http_options,
)
from protiv_dagster.vendors.tuning import HttpTuning

VENDOR = "BusyBusy"
MAX_PAGE_SIZE = 500
REST_VERSION = "3.2"

# -- inferred names (correct them here after a real introspection) ---------------------------------
# Not confirmed by any source: BusyBusy publishes no schema. Every inferred name the client sends is
# in this block (and in QUERIES/CHANGE_ROOTS below, built from it); nothing else may be undocumented.
TIME_ENTRIES = "timeEntries"  # the root, by analogy with the confirmed ones
AT_LEAST = "greaterThanOrEqual"  # the one range operator (the vendor notes); no lessThan/greaterThan
EQUAL, IN, IS_NULL = "equal", "contains", "isNull"  # seen in integrators' code
LATEST_ONLY = {"isLatest": {EQUAL: True}}  # the budgets' filter (named by integrators as a filter only)
BY_START = [{"startTime": "asc"}]  # sorting entries by a field, as integrators sort other roots
NOT_DELETED = {"deletedOn": {IS_NULL: True}}
DELETED = {"deletedOn": {IS_NULL: False}}
# Filter and sort types follow the <Type>Filter / [<Type>Sort!] pattern of the confirmed roots.
FILTER_TYPES = {
    "members": "MemberFilter",
    "projects": "ProjectFilter",
    "costCodes": "CostCodeFilter",
    "budgetHours": "BudgetHoursFilter",
    "budgetCosts": "BudgetCostFilter",
    TIME_ENTRIES: "TimeEntryFilter",
}
SORT_TYPES = {
    "members": "MemberSort",
    "projects": "ProjectSort",
    "budgetHours": "BudgetHoursSort",
    "budgetCosts": "BudgetCostSort",
    TIME_ENTRIES: "TimeEntrySort",
}

# -- the selections: named fields only ----------------------------------------------------------------
_WAGES = "wageHistories { wage wageRate overburden effectiveRate changeDate createdOn updatedOn deletedOn }"
# Every query text in one place. Each takes $filter, $first, $after.
QUERIES: dict[str, tuple[str, str]] = {
    # root -> (filter type, selection)
    "members": (
        FILTER_TYPES["members"],
        f"id cursor firstName lastName username email memberNumber archivedOn createdOn updatedOn deletedOn {_WAGES}",
    ),
    "projects": (
        FILTER_TYPES["projects"],
        "id cursor title parentProjectId depth archivedOn createdOn updatedOn projectInfo { projectId number customer }",
    ),
    "costCodes": (FILTER_TYPES["costCodes"], "id cursor costCode title archivedOn createdOn updatedOn"),
    "budgetHours": (
        FILTER_TYPES["budgetHours"],
        "id cursor projectId memberId costCodeId equipmentId budgetSeconds createdOn",
    ),
    "budgetCosts": (FILTER_TYPES["budgetCosts"], "id cursor projectId memberId costCodeId equipmentId costBudget"),
    TIME_ENTRIES: (
        FILTER_TYPES[TIME_ENTRIES],
        "id cursor memberId projectId costCodeId equipmentId startTime endTime breaks { id startTime endTime } actionType description createdOn updatedOn deletedOn submittedOn",
    ),
}


@dataclass(frozen=True)
class ChangeRoot:
    """How change detection reads a root: the records whose ``stamp`` is newer than the last check,
    or, for a root that names no stamp, its whole ``listing`` (the source compares its ids)."""

    root: str
    selection: str
    stamp: str | None
    listing: dict[str, Any] | None = None

    @property
    def filter_type(self) -> str:
        return FILTER_TYPES[self.root]


# Change detection, per root. Time entries are soft-deleted (deletedOn and updatedOn stamped), so
# updatedOn catches edits, moves and deletions. A wage change is taken to stamp its member's
# updatedOn (inferred: wage histories have no root of their own). Budget hours are versioned (a new
# record per change), so createdOn is their stamp. Budget costs name no stamp: their latest records'
# ids are listed whole (a new version is a new id). Cost codes are left out: each time sync re-reads
# them anyway (a renamed cost code's line item keeps its old name until the next reference sync).
CHANGE_ROOTS: dict[str, ChangeRoot] = {
    TIME_ENTRIES: ChangeRoot(TIME_ENTRIES, "id cursor startTime updatedOn deletedOn", "updatedOn"),
    "members": ChangeRoot("members", "id cursor updatedOn", "updatedOn"),
    "projects": ChangeRoot("projects", "id cursor updatedOn", "updatedOn"),
    "budgetHours": ChangeRoot("budgetHours", "id cursor createdOn", "createdOn"),
    "budgetCosts": ChangeRoot("budgetCosts", "id cursor", None, LATEST_ONLY),
}


def query_text(root: str, *, sorted_: bool = False) -> str:
    """The query of one root list: variables ``filter``, ``first``, ``after`` (and ``sort`` when ``sorted_``)."""
    filter_type, selection = QUERIES[root]
    declarations = f"$filter: {filter_type}, $first: Int, $after: String"
    arguments = "filter: $filter, first: $first, after: $after"
    if sorted_:
        declarations += f", $sort: [{SORT_TYPES[root]}!]"
        arguments += ", sort: $sort"
    return f"query {root[0].upper()}{root[1:]}({declarations}) {{ {root}({arguments}) {{ {selection} }} }}"


def multi_root_query(roots: list[str], *, sorted_: bool = False) -> str:
    """One GraphQL query reading several change roots at once; variables ``f_<root>`` (filter),
    ``n_<root>`` (first), ``a_<root>`` (after) and, with ``sorted_``, ``s_<root>`` (sort)."""
    declarations, fields = [], []
    for root in roots:
        spec = CHANGE_ROOTS[root]
        declarations += [f"$f_{root}: {spec.filter_type}", f"$n_{root}: Int", f"$a_{root}: String"]
        arguments = f"filter: $f_{root}, first: $n_{root}, after: $a_{root}"
        if sorted_:
            declarations.append(f"$s_{root}: [{SORT_TYPES[root]}!]")
            arguments += f", sort: $s_{root}"
        fields.append(f"{root}({arguments}) {{ {spec.selection} }}")
    return f"query Changes({', '.join(declarations)}) {{ {' '.join(fields)} }}"


def iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("BusyBusy timestamps must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def since(field_name: str, moment: datetime) -> dict[str, Any]:
    return {field_name: {AT_LEAST: iso(moment)}}


def _instant(value: Any) -> datetime | None:
    """An ISO 8601 timestamp with its offset (or Z) as an aware datetime; None when unreadable."""
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00")) if isinstance(value, str) else None
    except ValueError:
        return None
    return moment if moment is not None and moment.tzinfo is not None else None


def local_day_window(first_day: date, last_day: date, timezone: str) -> tuple[datetime, datetime]:
    """[local midnight of first_day, local midnight after last_day) in UTC: the start-time window
    of the entries whose local work date is in the range."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(first_day, datetime.min.time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), tzinfo=zone).astimezone(UTC)
    return start, end


# GraphQL errors that say the server could not answer this time, not that the query is wrong: by the
# error's ``extensions.code`` where the server gives one, else by its message.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "INTERNAL_SERVER_ERROR",
        "INTERNAL_ERROR",
        "SERVICE_UNAVAILABLE",
        "TIMEOUT",
        "GATEWAY_TIMEOUT",
        "DEADLINE_EXCEEDED",
        "TOO_MANY_REQUESTS",
        "RATE_LIMITED",
        "LOCKED",
        "UNAVAILABLE",
    }
)
PERMANENT_ERROR_CODES = frozenset(
    {
        "GRAPHQL_VALIDATION_FAILED",
        "GRAPHQL_PARSE_FAILED",
        "BAD_USER_INPUT",
        "BAD_REQUEST",
        "UNAUTHENTICATED",
        "FORBIDDEN",
        "PERSISTED_QUERY_NOT_FOUND",
        "PERSISTED_QUERY_NOT_SUPPORTED",
        "NOT_FOUND",
    }
)
_TRANSIENT_MESSAGE = re.compile(
    r"\b(?:(?:dead)?lock(?:ed)?|lock wait|time[ds]? ?out|timeout|internal (?:server )?error|temporar(?:y|ily)"
    r"|(?:service )?unavailable|try again|overloaded|too many requests|rate limit(?:ed)?|connection (?:reset|refused|lost))\b",
    re.IGNORECASE,
)

# What graphql-core and servers say of a wrong query or a refused caller: never transient, whatever
# else the message says (a field named "locked" is not a lock).
_PERMANENT_MESSAGE = re.compile(
    r"cannot query field|is not defined|unknown (?:argument|type|field|operation)|got invalid value|expected (?:type|value)"
    r"|syntax error|selection|not authori[sz]ed|unauthori[sz]ed|unauthenticated|forbidden|permission|invalid",
    re.IGNORECASE,
)


def transient_graphql_errors(body: Any) -> list[str] | None:
    """The messages of a GraphQL answer's ``errors`` when every one of them is transient (a lock, a
    deadlock, a timeout, an internal or unavailable server: asking again may succeed); None when it
    has no errors or any of them is permanent (validation, parse, input, authorization: asking again
    gets the same answer)."""
    errors = body.get("errors") if isinstance(body, dict) else None
    if not errors:
        return None
    messages = []
    for error in errors if isinstance(errors, list) else [errors]:
        message = str(error.get("message", "")) if isinstance(error, dict) else str(error)
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = str(extensions.get("code", "")).upper() if isinstance(extensions, dict) else ""
        if code in PERMANENT_ERROR_CODES:
            return None
        if _PERMANENT_MESSAGE.search(message) or (
            code not in TRANSIENT_ERROR_CODES and not _TRANSIENT_MESSAGE.search(message)
        ):
            return None
        messages.append(message or code)
    return messages


def graphql_url_for(rest_base: str) -> str:
    """The GraphQL URL that goes with a REST base (see the module docstring)."""
    parts = urlsplit(rest_base.rstrip("/"))
    if parts.path.endswith("/rest"):
        return urlunsplit((parts.scheme, parts.netloc, parts.path[: -len("/rest")] + "/graphql", "", ""))
    if parts.netloc.startswith("api.") and parts.path in ("", "/"):
        return urlunsplit((parts.scheme, "graphql." + parts.netloc[len("api.") :], "/", "", ""))
    raise ValueError(
        f"{VENDOR}: cannot derive the GraphQL URL from the REST base {rest_base!r}; set the resource's graphql_url"
    )


class _RestLogin(VendorClient):
    """The legacy REST host, used for the login only (same retries and scrubbing as everything else)."""

    vendor = VENDOR
    basic_authorization = ""

    def auth_headers(self) -> dict[str, str]:
        # The login is the only call here; a 401 on it is final (refresh_credentials stays False).
        return {"Authorization": self.basic_authorization}

    def error_detail(self, response) -> str:
        try:
            body = response.json()
            errors = body.get("debug", {}).get("errors") or body.get("code")
            if errors:
                return "; ".join(map(str, errors))
        except (ValueError, AttributeError):
            pass
        return super().error_detail(response)


class BusyBusyClient(VendorClient):
    """Talks to one company's BusyBusy organization as the connected member."""

    vendor = VENDOR

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        graphql_url: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        **http_options: Any,
    ):
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"{VENDOR} page size must be 1..{MAX_PAGE_SIZE}, got {page_size}")
        self._rest = _RestLogin(base_url, **http_options)
        self._graphql_requests = 0
        self._graphql_retries = 0
        super().__init__(graphql_url or graphql_url_for(base_url), **http_options)
        self.page_size = page_size
        self.username = username
        self._password = password
        self._digest = hashlib.sha256(password.encode("utf-8")).hexdigest()
        basic = base64.b64encode(f"{username}:{self._digest}".encode()).decode()
        self._rest.basic_authorization = f"Basic {basic}"
        self.key: str | None = None
        for client in (self, self._rest):
            client.register_secret(password, self._digest, basic)
            client.register_identifier(username)

    def __repr__(self) -> str:
        return f"BusyBusyClient({self.base_url!r}, username=***)"

    # request_count and retry_count cover both hosts (the base class assigns them in __init__).
    @property
    def request_count(self) -> int:
        return self._graphql_requests + self._rest.request_count

    @request_count.setter
    def request_count(self, value: int) -> None:
        # The base class does ``self.request_count += 1``: keep only this host's share here.
        self._graphql_requests = value - self._rest.request_count

    @property
    def retry_count(self) -> int:
        return self._graphql_retries + self._rest.retry_count

    @retry_count.setter
    def retry_count(self, value: int) -> None:
        self._graphql_retries = value - self._rest.retry_count

    # -- authentication ---------------------------------------------------------------------------
    def login(self) -> str:
        """Log in through the REST API and keep the session key."""
        try:
            response = self._rest.request(
                "GET", "member", params={"username": self.username, "_version": REST_VERSION}, expect_json=True
            )
        except VendorAuthError as exc:
            raise VendorAuthError(
                self.vendor,
                f"login refused (HTTP {exc.status}): the username or password is wrong or was "
                "changed; an admin must reconnect this company",
                exc.status,
            ) from None
        body = self._rest.decode_json(response, "member")
        key = body.get("public_key") if isinstance(body, dict) else None
        if not isinstance(key, str) or not key:
            raise VendorPayloadError(self.vendor, "the login answer (/member) has no public_key")
        self.key = key
        for client in (self, self._rest):
            client.register_secret(key)
        return key

    def auth_headers(self) -> dict[str, str]:
        if self.key is None:
            self.login()
        return {"key-authorization": self.key or ""}

    def refresh_credentials(self) -> bool:
        """A 401 on GraphQL: the key died (password change, revoked session). Log in once more."""
        try:
            self.login()
        except VendorAuthError:
            raise VendorAuthError(
                self.vendor,
                "the session key was rejected and logging in again failed: the username or "
                "password no longer works (changed password?); an admin must reconnect this company",
                401,
            ) from None
        return True

    def transient_error_in(self, body: Any) -> str | None:
        """An answer whose ``errors`` are all transient is retried like a 5xx (``transient_graphql_errors``)."""
        messages = transient_graphql_errors(body)
        return None if messages is None else f"GraphQL error ({'; '.join(messages)[:300]})"

    def error_detail(self, response) -> str:
        try:
            body = response.json()
            messages = [str(e.get("message")) for e in body.get("errors", []) if isinstance(e, dict)]
            if messages:
                return "; ".join(messages)
        except (ValueError, AttributeError):
            pass
        return super().error_detail(response)

    # -- GraphQL ----------------------------------------------------------------------------------
    def execute(self, query: str, variables: dict[str, Any] | None = None, *, what: str = "query") -> dict[str, Any]:
        """One GraphQL call; ``errors`` in the answer raise, whatever ``data`` holds."""
        response = self.request("POST", "", json_body={"query": query, "variables": variables or {}}, expect_json=True)
        body = self.decode_json(response, "graphql")
        if not isinstance(body, dict):
            raise VendorPayloadError(self.vendor, f"the GraphQL answer to {what} is not a JSON object")
        errors = body.get("errors")
        if errors:
            messages = "; ".join(
                str(e.get("message", e)) if isinstance(e, dict) else str(e)
                for e in (errors if isinstance(errors, list) else [errors])
            )
            raise VendorRequestError(
                self.vendor, f"GraphQL {what} failed: {self.scrub(messages)[:500]}", response.status_code
            )
        data = body.get("data")
        if not isinstance(data, dict):
            raise VendorPayloadError(self.vendor, f"the GraphQL answer to {what} has no data object")
        return data

    def pages(
        self, root: str, filter_: dict[str, Any] | None = None, sort: list[dict[str, str]] | None = None
    ) -> Iterator[list[dict[str, Any]]]:
        """Every page of a root list: ``first`` = page size, ``after`` = the last cursor, until short."""
        query = query_text(root, sorted_=sort is not None)
        after: str | None = None
        page_number = 1
        guard = self.listing(root)

        def variables() -> dict[str, Any]:
            given: dict[str, Any] = {"filter": filter_, "first": self.page_size, "after": after}
            return given if sort is None else {**given, "sort": sort}

        while True:
            data = self.execute(query, variables(), what=f"{root} page {page_number}")
            records = data.get(root)
            if records == [] and after is not None:
                # A plain list cannot say whether more follow: an empty page after a full one ends
                # the listing, or is a glitch that would silently drop every record after it.
                # Asking once more tells them apart (a listing rarely ends on a page boundary).
                data = self.execute(query, variables(), what=f"{root} page {page_number}")
                records = data.get(root)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise VendorPayloadError(self.vendor, f"{root} page {page_number} is not a list of records")
            # A record without a usable id is kept for the mapping to set aside with its reason.
            guard.page(record.get("id") for record in records)
            yield records
            if len(records) < self.page_size:
                return
            after = records[-1].get("cursor")
            if not isinstance(after, str) or not after:
                raise VendorPayloadError(
                    self.vendor, f"{root} page {page_number} is full but its last record has no cursor"
                )
            page_number += 1

    def all(self, root: str, filter_: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Every record of a root list. A record repeated on another page fails the listing
        (``ListingGuard``); copies of an id within one page are all kept, so the mapping sets every
        copy aside alike."""
        return [record for records in self.pages(root, filter_) for record in records]

    # -- reads ------------------------------------------------------------------------------------
    def members(self, *, updated_since: datetime | None = None) -> list[dict[str, Any]]:
        """Every member, archived or not, with all wage histories (deleted ones too: mapping drops them)."""
        return self.all("members", since("updatedOn", updated_since) if updated_since else None)

    def projects(self, *, updated_since: datetime | None = None) -> list[dict[str, Any]]:
        return self.all("projects", since("updatedOn", updated_since) if updated_since else None)

    def cost_codes(self) -> list[dict[str, Any]]:
        return self.all("costCodes")

    def budget_hours(self) -> list[dict[str, Any]]:
        return self.all("budgetHours", LATEST_ONLY)

    def budget_costs(self) -> list[dict[str, Any]]:
        return self.all("budgetCosts", LATEST_ONLY)

    def time_entries(
        self,
        *,
        start_from: datetime | None = None,
        start_before: datetime | None = None,
        updated_since: datetime | None = None,
        deleted: bool | None = None,
        ids: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Time entries by start-time window [start_from, start_before), by ``updatedOn`` (incremental;
        inclusive, so a record may come twice across runs), by ids, and/or by deletion state
        (``deleted=None`` returns live and soft-deleted entries alike).

        The vendor is asked for ``startTime >= start_from`` only (no "less than" is documented):
        with ``start_before``, the entries come sorted by ``startTime``, paging stops at the first
        page whose last entry starts at or after ``start_before``, and that sorted tail is left out."""
        filter_: dict[str, Any] = {}
        if start_from is not None:
            filter_.update(since("startTime", start_from))
        if updated_since is not None:
            filter_.update(since("updatedOn", updated_since))
        if ids is not None:
            filter_["id"] = {IN: list(ids)}
        if deleted is not None:
            filter_.update(DELETED if deleted else NOT_DELETED)
        if not filter_ and start_before is None:
            raise ValueError(f"{VENDOR} time entries need a start window, updated_since, ids or a deletion state")
        if start_before is None:
            return self.all(TIME_ENTRIES, filter_)
        found: list[dict[str, Any]] = []
        for records in self.pages(TIME_ENTRIES, filter_ or None, BY_START):
            found += records
            if records and self._starts_at_or_after(records[-1], start_before):
                break  # sorted by start: every later page starts later still
        # The sorted tail from the end on belongs to later weeks. Anything else is kept, an entry
        # out of order past the end too (an unreadable start as well): the mapping sets such
        # records aside with their reason instead of this listing hiding them.
        while found and self._starts_at_or_after(found[-1], start_before):
            found.pop()
        return found

    @staticmethod
    def _starts_at_or_after(record: dict[str, Any], moment: datetime) -> bool:
        start = _instant(record.get("startTime"))
        return start is not None and start >= moment

    # -- change detection -------------------------------------------------------------------------
    def changed_after(self, after: dict[str, str | None]) -> dict[str, list[dict[str, Any]]]:
        """Per root of ``after`` (root -> ISO UTC stamp), the records whose stamp (``updatedOn``, or
        ``createdOn`` for budget hours) is at or after it, soft-deleted time entries included; a root
        without a stamp (``CHANGE_ROOTS``) is listed whole, whatever ``after`` says. All roots travel
        in ONE request; only a root whose page came back full is paged on, in further requests."""
        found: dict[str, list[dict[str, Any]]] = {root: [] for root in after}
        cursors: dict[str, str | None] = {root: None for root in after}
        guards = {root: self.listing(f"{root} changes") for root in after}
        pending = list(after)
        reread: set[str] = set()
        while pending:
            variables: dict[str, Any] = {}
            for root in pending:
                spec = CHANGE_ROOTS[root]
                # At or after the mark (no strict operator is documented): the ChangeLog drops the
                # records stamped exactly at it, which an earlier check already reported.
                variables[f"f_{root}"] = {spec.stamp: {AT_LEAST: after[root]}} if spec.stamp else spec.listing
                variables[f"n_{root}"] = self.page_size
                variables[f"a_{root}"] = cursors[root]
            data = self.execute(multi_root_query(pending), variables, what="changes")
            still = []
            for root in pending:
                records = data.get(root)
                if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                    raise VendorPayloadError(self.vendor, f"{root} changes are not a list of records")
                if records == [] and cursors[root] is not None and root not in reread:
                    # As in pages(): an empty page after a full one is asked once more, or a glitch
                    # would end the root early and its later changes would never be synced.
                    reread.add(root)
                    still.append(root)
                    continue
                guards[root].page(record.get("id") for record in records)
                found[root].extend(records)
                if len(records) == self.page_size:
                    cursors[root] = records[-1].get("cursor")
                    if not isinstance(cursors[root], str) or not cursors[root]:
                        raise VendorPayloadError(
                            self.vendor, f"{root} changes: a full page whose last record has no cursor"
                        )
                    still.append(root)
            pending = still
        return found

    def newest_stamps(self) -> tuple[dict[str, str | None], dict[str, list[dict[str, Any]]]]:
        """The newest stamp of every change root with a stamp (``None`` for an empty root), and the
        listing of every root without one: one request, more only when such a listing fills a page."""
        roots = list(CHANGE_ROOTS)
        variables: dict[str, Any] = {}
        for root in roots:
            spec = CHANGE_ROOTS[root]
            variables[f"f_{root}"] = None if spec.stamp else spec.listing
            variables[f"n_{root}"] = 1 if spec.stamp else self.page_size
            variables[f"a_{root}"] = None
            variables[f"s_{root}"] = [{spec.stamp: "desc"}] if spec.stamp else None
        data = self.execute(multi_root_query(roots, sorted_=True), variables, what="newest stamps")
        newest: dict[str, str | None] = {}
        listed: dict[str, list[dict[str, Any]]] = {}
        for root in roots:
            spec, records = CHANGE_ROOTS[root], data.get(root)
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise VendorPayloadError(self.vendor, f"{root} is not a list of records")
            if spec.stamp:
                newest[root] = records[0].get(spec.stamp) if records else None
            elif len(records) == self.page_size:  # more than a page: the listing is read again, paged
                listed[root] = self.changed_after({root: None})[root]
            else:
                listed[root] = records
        return newest, listed


class BusyBusyTuning(HttpTuning):
    """BusyBusy REST login + GraphQL API. Holds only tuning; the REST base URL and the username and
    password come from the company's connection at run time, so no secret travels in run config."""

    graphql_url: str | None = Field(
        default=None,
        description="GraphQL endpoint; by default derived from the connection's REST base "
        "(https://api.busybusy.io -> https://graphql.busybusy.io/, <root>/rest -> <root>/graphql).",
    )
    page_size: int = Field(
        default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE, description="Records per GraphQL page (first)."
    )

    def client(self, base_url: str, username: str, password: str) -> BusyBusyClient:
        return BusyBusyClient(
            base_url,
            username,
            password,
            graphql_url=self.graphql_url,
            page_size=self.page_size,
            **http_options(self),
        )


__all__ = [
    "CHANGE_ROOTS",
    "QUERIES",
    "TIME_ENTRIES",
    "BusyBusyClient",
    "BusyBusyTuning",
    "VendorAuthError",
    "graphql_url_for",
    "local_day_window",
    "query_text",
]
