"""An Aspire External API emulator: a real HTTP server on loopback, rendering a generated company.

Pointing a client at ``emulator.base_url`` instead of ``https://cloud-api.youraspire.com`` must be
the only difference. Standard library only. Field names and JSON types follow Aspire's own OpenAPI
document (NSwag, "Aspire.ExternalApi"); only the fields listed below are served.

What is emulated (documented by the vendor)
-------------------------------------------
- ``POST /Authorization`` ``{"ClientId", "Secret"}`` -> ``{"Token", "RefreshToken"}``; the token is
  a JWT-shaped opaque string sent as ``Authorization: Bearer <Token>``.
  ``POST /Authorization/RefreshToken`` ``{"RefreshToken"}`` -> a new pair (the old pair stops working).
- Lists are bare JSON arrays. OData query options: ``$filter`` (eq ne gt ge lt le, and, or,
  parentheses; strings in single quotes with ``''`` for a quote; numbers, true/false, null;
  datetimes unquoted ISO 8601 such as ``2024-06-01`` or ``2024-06-01T07:00:00``), ``$select``,
  ``$orderby`` (one or more ``Field [asc|desc]``), ``$top``/``$skip`` and ``$pageNumber``/``$limit``
  (limit 1..1000). Property names are case-sensitive; an unknown one answers 400 naming it.
- Rate limit "for all API users combined": 60 requests per minute in the sandbox; optional here
  (``rate_limit_per_minute``), off by default; over it, 429.

What is inferred (change here if the real service disagrees)
------------------------------------------------------------
- Tokens live 24 hours (third-party reports); a bad or expired token answers 401. Bad client
  credentials on ``/Authorization`` answer 401 with a plain JSON message.
- Error bodies are undocumented: ``{"Message": "..."}`` with 400 (OData parse errors), 401, 404, 405, 429.
- ``$limit`` without ``$pageNumber`` means page 1; ``$pageNumber`` without ``$limit`` pages by 25
  (MindCloud's reading of the default); without both, and without ``$top``, every row is returned.
  ``$skip``/``$top`` are applied before ``$pageNumber``/``$limit``. Without ``$orderby`` rows come
  in id order; nulls sort first ascending. A DateTime literal with an offset (``...Z``) is turned
  into UTC and compared with the offset-less stored values as if they were UTC: send wall time.
- Every datetime is branch-local wall time without an offset (``BranchTimeZone`` travels with each
  time row), modification stamps included. ``Branch.TimeZone`` and ``BranchTimeZone`` hold Windows
  zone names ("Mountain Standard Time"), as a .NET service would; zones without a Windows name in
  ``WINDOWS_ZONES`` are served as their IANA name.

How generated companies are shown
---------------------------------
- One branch (``BranchID`` 1) in the company's zone; every employee and opportunity belongs to it.
- ``/Contacts``: every worker as ``ContactTypeName`` 'Employee' (``ContactID`` = worker id), plus a
  couple of 'Customer' contacts, so the employee filter matters. ``TerminationDate`` at midnight.
- ``/Opportunities``: every non-drive job (``OpportunityID`` = job id). ``OpportunityStatusName`` is
  'Won' (a sold job) whatever the work's state, which is ``JobStatusName`` (open -> 'In Progress',
  completed -> 'Complete', canceled -> 'Cancelled') and ``CompleteDate`` (set when completed). Recurring jobs are
  ``OpportunityType`` 'Contract' (Aspire's recurring maintenance contracts), the others
  'Work Order'. ``EstimatedLaborHours`` is the job's budget, or the sum of its milestones' budgets.
- ``CreatedDateTime`` of opportunities and tickets is the job's or milestone's creation (local wall time).
- ``/WorkTickets``: one per milestone (``WorkTicketID`` = milestone id; status Open/Scheduled ->
  open, Complete (with ``CompleteDate``), Cancelled; ``HoursEst`` = the milestone budget). A job without milestones gets ONE
  implicit work ticket (``WorkTicketID`` = 1,000,000,000 + job id, ``HoursEst`` = the job budget),
  because every Aspire time row needs a ticket. The drive job has no opportunity and no ticket.
  ``CrewLeaderContactID`` is the crew lead the milestone (or job) names; ``OpportunityServiceID``
  the service the ticket is an occurrence of (below).
- ``/OpportunityServices``: every ticket belongs to one service of its opportunity (Opportunity ->
  OpportunityServices -> WorkTickets). A job with line items (``CompanyData.task_lines``) has one
  service per line item (``OpportunityServiceID`` = the line item's id, ``DisplayName`` its name,
  ``ExtendedHours`` its budget, ``Occur`` its number of tickets, ``PerHours`` = ExtendedHours /
  Occur, ``LaborExtendedCost`` = ExtendedHours x ``LABOR_COST_PER_HOUR``), each of its milestones'
  tickets naming its line item's service. Any other opportunity has ONE service
  (``OpportunityServiceID`` = ``IMPLICIT_SERVICE_BASE`` + job id, ``DisplayName`` the service part of
  the job's name, ``ExtendedHours`` = ``EstimatedLaborHours``) that all its tickets name.
- ``/PayRates``: each worker's wage history (``PayRateID`` from ``PAY_RATE_BASE``, ``EffectiveDate``
  local midnight of the change, ``HourlyBasePay`` the hourly wage, a salary / 2,080;
  ``BurdenPercent`` 12.5 for every fourth worker by id, else 0).
- ``/WorkTicketTimes``: every non-drive shift (``WorkTicketTimeID`` = shift id) on its milestone's
  ticket or its job's implicit ticket. ``StartTime``/``EndTime`` local wall time; ``Hours`` = worked
  hours (breaks excluded, 6 decimals), ``BreakTime`` = unpaid break hours; ``EndTime`` null and
  ``Hours`` null while on the clock (Aspire fills it at clock-out; the client counts a running time
  up to the answer's ``Date``, which is the company's ``as_of``); manual shifts have null
  Start/EndTime and ``DistributedTime`` true (hours spread over tickets from the day's clock time).
  ``BaseHourlyRate`` is the worker's pay rate in force on the work date; ``CrewLeaderContactID`` the
  lead of the worker's crew (null for managers), who may differ from the ticket's.
- ``/ClockTimes``: each worker's clocked (non-manual) shifts, drive included, merged into blocks of
  back-to-back shifts; one ClockTime per block (``ClockEnd`` null while on the clock, ``BreakTime``
  = the block's break hours). A worker's distributed (manual) hours of a day lengthen their last
  ClockTime of that day by as much (or make one from 06:00 when they have none that day). Drive time
  is therefore clock time not allocated to any work ticket time: ``ClockEnd - ClockStart - BreakTime
  - sum(Hours of the block's ticket times) - the day's distributed Hours``.
- Deleted shifts simply disappear (Aspire has no deleted feed).

The control API (not the vendor's; no authentication; loopback clients only)
---------------------------------------------------------------------------
- ``GET  /_emulator/status`` -> ``{"request_count": n, "company_ids": [...]}``
- ``POST /_emulator/faults`` ``{"action": "rate_limit", "times": 2, "retry_after": 1}`` (``null``
  leaves the header out), ``server_error`` (``times``, ``status``), ``latency`` (``seconds``),
  ``drop_connection`` (``times``), ``read_timeout`` (``times``, ``seconds``), ``truncated_json``,
  ``invalid_json``, ``empty_page`` (``times``), ``between_pages`` (``after_pages``, ``control``: a
  control call ``{"path", "body"}`` run between pages), ``expire_token`` (``company_id``), ``clear``;
  the shared faults of ``protiv_emulators.server``. An empty page here is ``[]``: Aspire lists
  carry no "more" flag, so a client that pages until a short page stops there.
- ``POST /_emulator/work_ticket_times`` (add: ``ContactID``, ``WorkTicketID``, ``StartTime``,
  ``EndTime`` local wall time, optional ``BreakTime`` hours)
- ``POST /_emulator/work_ticket_times/<id>/edit`` (``StartTime``, ``EndTime``, ``BreakTime``,
  ``WorkTicketID``, ``ContactID``) and ``POST /_emulator/work_ticket_times/<id>/delete``
- ``POST /_emulator/distributed_times`` (add: ``ContactID``, ``WorkTicketID``, ``WorkTicketTimeDate``,
  ``Hours``; no start or end) and ``POST /_emulator/clock_times`` (add: ``ContactID``,
  ``ClockStart``, ``ClockEnd`` local wall time or null, optional ``BreakTime`` hours)
- ``POST /_emulator/opportunities/<id>/edit`` (``OpportunityType``, ``OpportunityStatusName``,
  ``JobStatusName``, ``CompleteDate``, ``EstimatedLaborHours``)
- ``POST /_emulator/work_tickets/<id>/edit`` (``HoursEst``, ``WorkTicketStatusName``, ``CompleteDate``,
  ``CrewLeaderContactID``): reference data that changes without any time row changing (a budget
  raised, a ticket completed)
- ``POST /_emulator/opportunity_services/<id>/edit`` (``ExtendedHours``, ``LaborExtendedCost``,
  ``DisplayName``): a service's estimate changed (its ``LastModifiedDateTime`` is stamped)
- ``POST /_emulator/pay_rates`` (add: ``ContactID``, ``EffectiveDate`` local date or date-time,
  ``HourlyBasePay``, optional ``BurdenPercent``) and ``POST /_emulator/pay_rates/<id>/delete``.
  Pay rates carry no modification stamp (their OpenAPI model has none).
Every mutation stamps ``LastModifiedDateTime`` with a strictly increasing time. Control calls are not
in ``request_log`` and faults never apply to them.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from typing import Any
from zoneinfo import ZoneInfo

from protiv_emulators.generator import (
    STATUS_CANCELED,
    STATUS_COMPLETED,
    CompanyData,
    Shift,
)
from protiv_emulators.server import Answer, Faults, LoggedRequest, Request, VendorEmulator

MAX_LIMIT = 1000
DEFAULT_PAGE_SIZE = 25
TOKEN_LIFETIME_SECONDS = 86_400
RATE_LIMIT_WINDOW_SECONDS = 60
BRANCH_ID = 1
IMPLICIT_TICKET_BASE = 1_000_000_000
IMPLICIT_SERVICE_BASE = 2_000_000_000
CLOCK_TIME_BASE = 700_000
PAY_RATE_BASE = 300_000
LABOR_COST_PER_HOUR = 32

# IANA -> Windows zone names (CLDR windowsZones), for the zones companies are generated in.
WINDOWS_ZONES = {
    "America/New_York": "Eastern Standard Time",
    "America/Chicago": "Central Standard Time",
    "America/Denver": "Mountain Standard Time",
    "America/Phoenix": "US Mountain Standard Time",
    "America/Los_Angeles": "Pacific Standard Time",
    "America/Anchorage": "Alaskan Standard Time",
    "Pacific/Honolulu": "Hawaiian Standard Time",
    "UTC": "UTC",
}
# A sold job is "Won" whatever its work's state; that state is JobStatusName (and CompleteDate).
JOB_STATUS = {"open": "In Progress", STATUS_COMPLETED: "Complete", STATUS_CANCELED: "Cancelled"}
TICKET_STATUS = {STATUS_COMPLETED: "Complete", STATUS_CANCELED: "Cancelled"}

# The fields served per endpoint, with their OpenAPI types: int, number, string, bool, datetime.
FIELDS: dict[str, dict[str, str]] = {
    "Contacts": {
        "ContactID": "int",
        "ContactTypeName": "string",
        "FirstName": "string",
        "LastName": "string",
        "Email": "string",
        "Active": "bool",
        "EmployeeNumber": "string",
        "BranchID": "int",
        "BranchName": "string",
        "CreatedDateTime": "datetime",
        "ModifiedDate": "datetime",
        "TerminationDate": "datetime",
    },
    "Branches": {
        "BranchID": "int",
        "BranchName": "string",
        "Active": "bool",
        "BranchCode": "string",
        "TimeZone": "string",
    },
    "Opportunities": {
        "OpportunityID": "int",
        "OpportunityNumber": "int",
        "OpportunityName": "string",
        "OpportunityStatusName": "string",
        "JobStatusName": "string",
        "CompleteDate": "datetime",
        "OpportunityType": "string",
        "InvoiceType": "string",
        "PropertyName": "string",
        "BranchID": "int",
        "BranchName": "string",
        "EstimatedLaborHours": "number",
        "CreatedDateTime": "datetime",
        "ModifiedDate": "datetime",
    },
    "WorkTickets": {
        "WorkTicketID": "int",
        "OpportunityID": "int",
        "OpportunityServiceID": "int",
        "WorkTicketNumber": "int",
        "WorkTicketStatusName": "string",
        "CompleteDate": "datetime",
        "HoursEst": "number",
        "CrewLeaderContactID": "int",
        "BranchID": "int",
        "BranchName": "string",
        "CreatedDateTime": "datetime",
        "LastModifiedDateTime": "datetime",
    },
    "OpportunityServices": {
        "OpportunityServiceID": "int",
        "OpportunityID": "int",
        "DisplayName": "string",
        "Occur": "int",
        "PerHours": "number",
        "ExtendedHours": "number",
        "LaborExtendedCost": "number",
        "BranchID": "int",
        "BranchName": "string",
        "CreatedDateTime": "datetime",
        "LastModifiedDateTime": "datetime",
    },
    "PayRates": {
        "PayRateID": "int",
        "ContactID": "int",
        "ContactName": "string",
        "EffectiveDate": "datetime",
        "HourlyBasePay": "number",
        "BurdenPercent": "number",
    },
    "WorkTicketTimes": {
        "WorkTicketTimeID": "int",
        "WorkTicketID": "int",
        "WorkTicketNumber": "int",
        "ContactID": "int",
        "ContactName": "string",
        "WorkTicketTimeDate": "datetime",
        "StartTime": "datetime",
        "EndTime": "datetime",
        "Hours": "number",
        "BreakTime": "number",
        "HasBreakTime": "bool",
        "DistributedTime": "bool",
        "BaseHourlyRate": "number",
        "CrewLeaderContactID": "int",
        "BranchID": "int",
        "BranchName": "string",
        "BranchTimeZone": "string",
        "CreatedDateTime": "datetime",
        "LastModifiedDateTime": "datetime",
    },
    "ClockTimes": {
        "ClockTimeID": "int",
        "ContactID": "int",
        "ContactName": "string",
        "ClockStart": "datetime",
        "ClockEnd": "datetime",
        "BreakTime": "number",
    },
}
ID_FIELD = {name: next(iter(fields)) for name, fields in FIELDS.items()}


class _ApiError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.body = {"Message": message}


def _wall(moment: datetime, zone: ZoneInfo) -> str:
    """Branch-local wall time without an offset, the way Aspire serves datetimes."""
    return moment.astimezone(zone).replace(tzinfo=None).isoformat(timespec="seconds")


def _midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def _parse_wall(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name} must be an ISO 8601 local date-time text")
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 local date-time, got {value!r}") from None
    if parsed.tzinfo is not None:
        raise ValueError(f"{name} is branch-local wall time: send it without an offset")
    return parsed


# -- OData ------------------------------------------------------------------------------------------
_TOKEN = re.compile(
    r"\s*(?:(?P<lparen>\()|(?P<rparen>\))|(?P<string>'(?:[^']|'')*')"
    r"|(?P<datetime>\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?)"
    r"|(?P<number>-?\d+(?:\.\d+)?)|(?P<word>[A-Za-z_][A-Za-z0-9_]*))"
)
_COMPARISONS = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "gt": lambda a, b: a is not None and b is not None and a > b,
    "ge": lambda a, b: a is not None and b is not None and a >= b,
    "lt": lambda a, b: a is not None and b is not None and a < b,
    "le": lambda a, b: a is not None and b is not None and a <= b,
}


def _tokenize(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise _ApiError(400, f"$filter: cannot parse at position {position}: {text[position : position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _FilterParser:
    """``expr := term ('or' term)*; term := factor ('and' factor)*; factor := '(' expr ')' | Prop op literal``."""

    def __init__(self, text: str, fields: Mapping[str, str]):
        self.tokens = _tokenize(text)
        self.fields = fields
        self.position = 0

    def parse(self) -> Callable[[dict[str, Any]], bool]:
        if not self.tokens:
            raise _ApiError(400, "$filter is empty")
        predicate = self._expr()
        if self.position != len(self.tokens):
            raise _ApiError(400, f"$filter: unexpected {self.tokens[self.position][1]!r}")
        return predicate

    def _peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> tuple[str, str]:
        token = self._peek()
        if token is None:
            raise _ApiError(400, "$filter ends too early")
        self.position += 1
        return token

    def _expr(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._term()]
        while self._peek() == ("word", "or"):
            self._take()
            parts.append(self._term())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def _term(self) -> Callable[[dict[str, Any]], bool]:
        parts = [self._factor()]
        while self._peek() == ("word", "and"):
            self._take()
            parts.append(self._factor())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def _factor(self) -> Callable[[dict[str, Any]], bool]:
        kind, value = self._take()
        if kind == "lparen":
            inner = self._expr()
            if self._take()[0] != "rparen":
                raise _ApiError(400, "$filter: missing ')'")
            return inner
        if kind != "word":
            raise _ApiError(400, f"$filter: expected a property name, got {value!r}")
        if value not in self.fields:
            raise _ApiError(400, f"$filter: could not find a property named '{value}'")
        name, kind_of_field = value, self.fields[value]
        op_kind, op = self._take()
        if op_kind != "word" or op not in _COMPARISONS:
            raise _ApiError(400, f"$filter: expected eq, ne, gt, ge, lt or le after {name}, got {op!r}")
        literal = self._literal(name, kind_of_field)
        compare = _COMPARISONS[op]
        return lambda r: compare(_comparable(r.get(name), kind_of_field), literal)

    def _literal(self, name: str, kind_of_field: str) -> Any:
        kind, value = self._take()
        if kind == "word" and value in ("true", "false", "null"):
            literal: Any = {"true": True, "false": False, "null": None}[value]
        elif kind == "string":
            literal = value[1:-1].replace("''", "'")
        elif kind == "number":
            literal = float(value)
        elif kind == "datetime":
            literal = value
        else:
            raise _ApiError(400, f"$filter: expected a literal after {name}, got {value!r}")
        if literal is None:
            return None
        expected = {"int": (float,), "number": (float,), "bool": (bool,), "string": (str,), "datetime": (str,)}[
            kind_of_field
        ]
        if kind_of_field == "datetime" and kind != "datetime":
            raise _ApiError(400, f"$filter: {name} is a DateTime: compare it with an unquoted ISO 8601 value")
        if kind_of_field == "string" and kind != "string":
            raise _ApiError(400, f"$filter: {name} is a string: quote the value in single quotes")
        if not isinstance(literal, expected):
            raise _ApiError(400, f"$filter: {value!r} is not a valid value for {name}")
        return _comparable(literal, kind_of_field)


def _comparable(value: Any, kind_of_field: str) -> Any:
    if value is None:
        return None
    if kind_of_field == "datetime":
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    if kind_of_field in ("int", "number"):
        return float(value)
    return value


def _apply_query(records: list[dict[str, Any]], endpoint: str, query: Mapping[str, str]) -> list[dict[str, Any]]:
    fields = FIELDS[endpoint]
    rows = records
    if query.get("$expand", "").strip():
        raise _ApiError(400, "$expand is not supported by this emulator")
    if query.get("$filter", "").strip():
        predicate = _FilterParser(query["$filter"], fields).parse()
        rows = [r for r in rows if predicate(r)]
    order_text = query.get("$orderby", "").strip() or ID_FIELD[endpoint]
    order: list[tuple[str, bool]] = []
    for part in order_text.split(","):
        words = part.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise _ApiError(400, f"$orderby: cannot parse {part.strip()!r}")
        if words[0] not in fields:
            raise _ApiError(400, f"$orderby: could not find a property named '{words[0]}'")
        order.append((words[0], len(words) == 2 and words[1] == "desc"))
    for name, descending in reversed(order + [(ID_FIELD[endpoint], False)]):
        kind = fields[name]
        present = [r for r in rows if r.get(name) is not None]
        missing = [r for r in rows if r.get(name) is None]
        present.sort(key=lambda r: _comparable(r[name], kind), reverse=descending)
        rows = missing + present if not descending else present + missing  # nulls sort first
    skip, top = _count(query, "$skip", 0), _count(query, "$top", None)
    rows = rows[skip:]
    if top is not None:
        rows = rows[:top]
    limit, page = _count(query, "$limit", None), _count(query, "$pageNumber", None)
    if limit is not None and not 1 <= limit <= MAX_LIMIT:
        raise _ApiError(400, f"$limit must be an integer from 1 to {MAX_LIMIT}")
    if page is not None and page < 1:
        raise _ApiError(400, "$pageNumber must be an integer from 1")
    if limit is not None or page is not None or top is None:
        size = limit if limit is not None else DEFAULT_PAGE_SIZE
        if limit is not None or page is not None:
            start = ((page or 1) - 1) * size
            rows = rows[start : start + size]
    select = query.get("$select", "").strip()
    if select:
        names = [n.strip() for n in select.split(",")]
        for name in names:
            if name not in fields:
                raise _ApiError(400, f"$select: could not find a property named '{name}'")
        rows = [{n: r.get(n) for n in names} for r in rows]
    return [dict(r) for r in rows]


def _count(query: Mapping[str, str], name: str, default: int | None) -> int | None:
    text = query.get(name, "").strip()
    if not text:
        return default
    if not text.isdigit():
        raise _ApiError(400, f"{name} must be a non-negative integer, got {text!r}")
    return int(text)


# -- one company's live state ------------------------------------------------------------------------
@dataclass
class _Span:
    """A clock time: consecutive shifts of one worker (``block``), lengthened by distributed time."""

    start: datetime
    end: datetime | None
    worker_id: int
    block: list[Shift]


class AspireCompany:
    """One tenant as the emulator serves it; built from a ``CompanyData`` and from then on the truth."""

    def __init__(self, data: CompanyData, *, client_id: str, secret: str):
        self.data = data
        self.company_id = data.company_id
        self.zone = ZoneInfo(data.timezone)
        self.zone_name = WINDOWS_ZONES.get(data.timezone, data.timezone)
        self.client_id = client_id
        self.secret = secret
        self.token = ""
        self.refresh_token = ""
        self.token_issued_at = 0.0
        self._lock = threading.RLock()
        self.branch_name = "Main"
        self._last_tick = data.as_of
        workers = {w.id: w for w in data.workers}
        self._contact_names = {w.id: f"{w.first_name} {w.last_name}" for w in data.workers}
        self.contacts = [self._contact(w) for w in data.workers] + self._customers()
        self.pay_rates: dict[int, dict[str, Any]] = {}
        for index, worker in enumerate(sorted(data.workers, key=lambda w: w.id)):
            for change in worker.wage_history or ():
                rate_id = PAY_RATE_BASE + len(self.pay_rates)
                self.pay_rates[rate_id] = {
                    "PayRateID": rate_id,
                    "ContactID": worker.id,
                    "ContactName": self._contact_names[worker.id],
                    "EffectiveDate": _midnight(change.effective_date),
                    "HourlyBasePay": float(change.hourly_wage),
                    "BurdenPercent": 12.5 if index % 4 == 0 else 0.0,
                }
        self.branches = [
            {
                "BranchID": BRANCH_ID,
                "BranchName": self.branch_name,
                "Active": True,
                "BranchCode": "MAIN",
                "TimeZone": self.zone_name,
            }
        ]
        self.opportunities: list[dict[str, Any]] = []
        self.tickets: dict[int, dict[str, Any]] = {}
        self.services: dict[int, dict[str, Any]] = {}
        self.implicit_ticket_of_job: dict[int, int] = {}
        number = 1000
        for job in data.jobs:
            if job.is_drive:
                continue
            milestones = data.milestones_of(job.id)
            budgets = [m.budget_hours for m in milestones if m.budget_hours is not None]
            estimate = job.budget_hours if not milestones else (round(sum(budgets), 2) if budgets else None)
            number += 1
            self.opportunities.append(
                {
                    "OpportunityID": job.id,
                    "OpportunityNumber": number,
                    "OpportunityName": job.name,
                    "OpportunityStatusName": "Won",
                    "JobStatusName": JOB_STATUS[job.status],
                    "CompleteDate": _wall(job.modified_at, self.zone) if job.status == STATUS_COMPLETED else None,
                    "OpportunityType": "Contract" if job.recurring else "Work Order",
                    "InvoiceType": "Fixed Payment" if job.recurring else "Fixed Price on Completion",
                    "PropertyName": job.customer[:100],
                    "BranchID": BRANCH_ID,
                    "BranchName": self.branch_name,
                    "EstimatedLaborHours": estimate,
                    "CreatedDateTime": _wall(job.created_at, self.zone),
                    "ModifiedDate": _wall(job.modified_at, self.zone),
                }
            )
            phases = [
                (m.id, m.status, m.budget_hours, m.created_at, m.modified_at, m.crew_lead_id, m.task_id)
                for m in milestones
            ]
            if not phases:
                ticket_id = IMPLICIT_TICKET_BASE + job.id
                self.implicit_ticket_of_job[job.id] = ticket_id
                phases = [
                    (ticket_id, job.status, job.budget_hours, job.created_at, job.modified_at, job.crew_lead_id, None)
                ]
            lines = data.task_lines_of(job.id)
            for line in lines:
                self._add_service(line.id, job, line.name, line.budget_hours, len(line.milestone_ids))
            if not lines:
                self._add_service(IMPLICIT_SERVICE_BASE + job.id, job, job.name.split(" – ")[0], estimate, len(phases))
            for sequence, (ticket_id, status, budget, created, modified, lead, task) in enumerate(phases, start=1):
                self.tickets[ticket_id] = {
                    "WorkTicketID": ticket_id,
                    "OpportunityID": job.id,
                    "OpportunityServiceID": task if task is not None and lines else IMPLICIT_SERVICE_BASE + job.id,
                    "WorkTicketNumber": number * 100 + sequence,
                    "WorkTicketStatusName": TICKET_STATUS.get(status, "Scheduled" if ticket_id % 2 else "Open"),
                    "CompleteDate": _wall(modified, self.zone) if status == STATUS_COMPLETED else None,
                    "HoursEst": budget,
                    "CrewLeaderContactID": lead,
                    "BranchID": BRANCH_ID,
                    "BranchName": self.branch_name,
                    "CreatedDateTime": _wall(created, self.zone),
                    "LastModifiedDateTime": _wall(modified, self.zone),
                }
        self.times: dict[int, dict[str, Any]] = {}
        for shift in sorted(data.shifts, key=lambda s: s.id):
            if not shift.is_drive:
                self.times[shift.id] = self._time_row(shift, workers[shift.worker_id].id)
        self.clock_times = self._clock_times(data.shifts)

    # -- rendering ------------------------------------------------------------------------------
    def _add_service(self, service_id: int, job: Any, name: str, hours: float | None, occurrences: int) -> None:
        self.services[service_id] = {
            "OpportunityServiceID": service_id,
            "OpportunityID": job.id,
            "DisplayName": name,
            "Occur": occurrences,
            "PerHours": round(hours / occurrences, 4) if hours is not None and occurrences else None,
            "ExtendedHours": hours,
            "LaborExtendedCost": round(hours * LABOR_COST_PER_HOUR, 2) if hours is not None else None,
            "BranchID": BRANCH_ID,
            "BranchName": self.branch_name,
            "CreatedDateTime": _wall(job.created_at, self.zone),
            "LastModifiedDateTime": _wall(job.created_at, self.zone),
        }

    def wage_on(self, contact_id: int, day: date) -> float | None:
        """The contact's pay rate in force on ``day``: the latest ``EffectiveDate`` on or before it."""
        in_force = [
            (rate["EffectiveDate"], rate["PayRateID"], rate["HourlyBasePay"])
            for rate in self.pay_rates.values()
            if rate["ContactID"] == contact_id and rate["EffectiveDate"][:10] <= day.isoformat()
        ]
        return max(in_force)[2] if in_force else None

    def _contact(self, worker: Any) -> dict[str, Any]:
        return {
            "ContactID": worker.id,
            "ContactTypeName": "Employee",
            "FirstName": worker.first_name,
            "LastName": worker.last_name,
            "Email": worker.email,
            "Active": worker.active,
            "EmployeeNumber": str(worker.employee_number),
            "BranchID": BRANCH_ID,
            "BranchName": self.branch_name,
            "CreatedDateTime": _wall(worker.created_at, self.zone),
            "ModifiedDate": _wall(worker.modified_at, self.zone),
            "TerminationDate": _midnight(worker.term_date) if worker.term_date else None,
        }

    def _customers(self) -> list[dict[str, Any]]:
        base = max(w.id for w in self.data.workers) + 1
        return [
            {
                "ContactID": base + i,
                "ContactTypeName": "Customer",
                "FirstName": first,
                "LastName": last,
                "Email": None,
                "Active": True,
                "EmployeeNumber": None,
                "BranchID": BRANCH_ID,
                "BranchName": self.branch_name,
                "CreatedDateTime": _wall(self.data.created_at, self.zone),
                "ModifiedDate": _wall(self.data.created_at, self.zone),
                "TerminationDate": None,
            }
            for i, (first, last) in enumerate((("Pat", "Miller"), ("Dana", "O'Connor")))
        ]

    def ticket_of(self, shift: Shift) -> int:
        return shift.milestone_id if shift.milestone_id is not None else self.implicit_ticket_of_job[shift.job_id]

    def _time_row(self, shift: Shift, contact_id: int) -> dict[str, Any]:
        break_seconds = sum((e - s).total_seconds() for s, e in shift.breaks)
        row = {
            "WorkTicketTimeID": shift.id,
            "WorkTicketID": self.ticket_of(shift),
            "ContactID": contact_id,
            "WorkTicketTimeDate": _midnight(shift.local_date),
            "StartTime": _wall(shift.start, self.zone) if shift.start else None,
            "EndTime": _wall(shift.end, self.zone) if shift.end else None,
            # A running time has no Hours yet (Aspire fills it at clock-out); a manual one is
            # distributed time: hours spread over tickets, inside the day's clock time.
            "Hours": None if shift.on_the_clock else round(shift.duration_seconds / 3600, 6),
            "BreakTime": round(break_seconds / 3600, 6),
            "DistributedTime": shift.start is None and shift.end is None,
            "BaseHourlyRate": self.wage_on(contact_id, shift.local_date),
            "CrewLeaderContactID": self.data.crew_lead_of(contact_id),
            "CreatedDateTime": _wall(shift.created_at, self.zone),
            "LastModifiedDateTime": _wall(shift.modified_at, self.zone),
        }
        return self._complete_time(row)

    def _complete_time(self, row: dict[str, Any]) -> dict[str, Any]:
        ticket = self.tickets[row["WorkTicketID"]]
        row.update(
            {
                "WorkTicketNumber": ticket["WorkTicketNumber"],
                "ContactName": self._contact_names.get(row["ContactID"]),
                "HasBreakTime": bool(row["BreakTime"]),
                "BranchID": BRANCH_ID,
                "BranchName": self.branch_name,
                "BranchTimeZone": self.zone_name,
            }
        )
        return {name: row.get(name) for name in FIELDS["WorkTicketTimes"]}

    def _clock_times(self, shifts: list[Shift]) -> list[dict[str, Any]]:
        timed = sorted((s for s in shifts if s.start is not None), key=lambda s: (s.worker_id, s.start))
        blocks: list[list[Shift]] = []
        for shift in timed:
            last = blocks[-1][-1] if blocks else None
            if (
                last is not None
                and last.worker_id == shift.worker_id
                and last.end is not None
                and last.end == shift.start
            ):
                blocks[-1].append(shift)
            else:
                blocks.append([shift])
        # Distributed (manual) time is clock time too: the crew stayed on the clock and the leader
        # spread those hours over tickets. It lengthens the worker's last clock time of that day, or
        # is a clock time of its own from 06:00 when the worker has no other that day.
        distributed: dict[tuple[int, date], float] = {}
        for shift in shifts:
            if shift.start is None and shift.end is None and not shift.is_drive:
                key = (shift.worker_id, shift.local_date)
                distributed[key] = distributed.get(key, 0) + shift.duration_seconds
        spans = [_Span(b[0].start, b[-1].end, b[0].worker_id, b) for b in blocks if b[0].start is not None]
        for (worker_id, day), seconds in sorted(distributed.items()):
            same_day = [
                span for span in spans if span.worker_id == worker_id and span.start.astimezone(self.zone).date() == day
            ]
            latest = max(same_day, key=lambda span: span.start, default=None)
            if latest is not None and latest.end is not None:
                latest.end = latest.end + timedelta(seconds=seconds)
            else:
                start = datetime.combine(day, datetime.min.time(), tzinfo=self.zone) + timedelta(hours=6)
                spans.append(
                    _Span(start.astimezone(UTC), start.astimezone(UTC) + timedelta(seconds=seconds), worker_id, [])
                )
        spans.sort(key=lambda span: (span.start, span.worker_id))
        rows = []
        for index, span in enumerate(spans):
            start, end, worker_id = span.start, span.end, span.worker_id
            breaks = sum((e - s).total_seconds() for shift in span.block for s, e in shift.breaks)
            rows.append(
                {
                    "ClockTimeID": CLOCK_TIME_BASE + index,
                    "ContactID": worker_id,
                    "ContactName": self._contact_names.get(worker_id),
                    "ClockStart": _wall(start, self.zone),
                    "ClockEnd": _wall(end, self.zone) if end else None,
                    "BreakTime": round(breaks / 3600, 6),
                }
            )
        return rows

    # -- reads ---------------------------------------------------------------------------------------
    def records(self, endpoint: str) -> list[dict[str, Any]]:
        with self._lock:
            source = {
                "Contacts": self.contacts,
                "Branches": self.branches,
                "Opportunities": self.opportunities,
                "WorkTickets": list(self.tickets.values()),
                "OpportunityServices": list(self.services.values()),
                "PayRates": list(self.pay_rates.values()),
                "WorkTicketTimes": list(self.times.values()),
                "ClockTimes": self.clock_times,
            }[endpoint]
            return [dict(r) for r in source]

    # -- mutations -----------------------------------------------------------------------------------
    def _tick(self) -> str:
        with self._lock:
            self._last_tick = max(self._last_tick + timedelta(seconds=1), datetime.now(UTC).replace(microsecond=0))
            return _wall(self._last_tick, self.zone)

    def _time_fields(self, row: dict[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
        unknown = set(changes) - {"StartTime", "EndTime", "BreakTime", "WorkTicketID", "ContactID"}
        if unknown:
            raise ValueError(f"cannot set {sorted(unknown)} on a work ticket time")
        row = dict(row, **changes)
        if int(row["WorkTicketID"]) not in self.tickets:
            raise KeyError(f"no work ticket {row['WorkTicketID']}")
        if not any(
            c["ContactID"] == int(row["ContactID"]) and c["ContactTypeName"] == "Employee" for c in self.contacts
        ):
            raise KeyError(f"no employee contact {row['ContactID']}")
        start, end = _parse_wall(row["StartTime"], "StartTime"), _parse_wall(row["EndTime"], "EndTime")
        break_hours = float(row.get("BreakTime") or 0)
        # Real elapsed time: the wall times are read in the branch zone (fold 0 for a repeated hour).
        elapsed = (
            end.replace(tzinfo=self.zone).astimezone(UTC) - start.replace(tzinfo=self.zone).astimezone(UTC)
        ).total_seconds() / 3600
        if elapsed - break_hours < 0:
            raise ValueError("EndTime must be after StartTime plus the break")
        row.update(
            {
                "WorkTicketID": int(row["WorkTicketID"]),
                "ContactID": int(row["ContactID"]),
                "StartTime": start.isoformat(timespec="seconds"),
                "EndTime": end.isoformat(timespec="seconds"),
                "WorkTicketTimeDate": _midnight(start.date()),
                "Hours": round(elapsed - break_hours, 6),
                "DistributedTime": False,
                "BreakTime": break_hours,
                "BaseHourlyRate": self.wage_on(int(row["ContactID"]), start.date()),
                "CrewLeaderContactID": self.data.crew_lead_of(int(row["ContactID"])),
            }
        )
        return row

    def add_distributed_time(
        self, ContactID: int, WorkTicketID: int, WorkTicketTimeDate: str, Hours: float
    ) -> dict[str, Any]:
        """Distributed time: ``Hours`` spread onto a ticket without a start or an end (it lies inside
        the employee's clock time of ``WorkTicketTimeDate``: add that with ``add_clock_time``)."""
        with self._lock:
            if int(WorkTicketID) not in self.tickets:
                raise KeyError(f"no work ticket {WorkTicketID}")
            if not any(c["ContactID"] == int(ContactID) and c["ContactTypeName"] == "Employee" for c in self.contacts):
                raise KeyError(f"no employee contact {ContactID}")
            if isinstance(Hours, bool) or not isinstance(Hours, (int, float)) or Hours < 0:
                raise ValueError("Hours must be a number of hours of at least 0")
            day = _parse_wall(
                WorkTicketTimeDate if "T" in str(WorkTicketTimeDate) else f"{WorkTicketTimeDate}T00:00:00",
                "WorkTicketTimeDate",
            ).date()
            now = self._tick()
            row: dict[str, Any] = {
                "WorkTicketTimeID": max([*self.times, 800_000_000]) + 1,
                "WorkTicketID": int(WorkTicketID),
                "ContactID": int(ContactID),
                "WorkTicketTimeDate": _midnight(day),
                "StartTime": None,
                "EndTime": None,
                "Hours": float(Hours),
                "BreakTime": 0.0,
                "DistributedTime": True,
                "BaseHourlyRate": self.wage_on(int(ContactID), day),
                "CrewLeaderContactID": self.data.crew_lead_of(int(ContactID)),
                "CreatedDateTime": now,
                "LastModifiedDateTime": now,
            }
            row = self._complete_time(row)
            self.times[row["WorkTicketTimeID"]] = row
            return dict(row)

    def add_clock_time(
        self, ContactID: int, ClockStart: str, ClockEnd: str | None, BreakTime: float = 0.0
    ) -> dict[str, Any]:
        """A clock time of an employee (local wall times; ``ClockEnd`` null while on the clock)."""
        with self._lock:
            start = _parse_wall(ClockStart, "ClockStart")
            end = _parse_wall(ClockEnd, "ClockEnd") if ClockEnd is not None else None
            if end is not None and end < start:
                raise ValueError("ClockEnd must not be before ClockStart")
            self._tick()
            row = {
                "ClockTimeID": max([c["ClockTimeID"] for c in self.clock_times] + [CLOCK_TIME_BASE - 1]) + 1,
                "ContactID": int(ContactID),
                "ContactName": self._contact_names.get(int(ContactID)),
                "ClockStart": start.isoformat(timespec="seconds"),
                "ClockEnd": end.isoformat(timespec="seconds") if end is not None else None,
                "BreakTime": float(BreakTime),
            }
            self.clock_times.append(row)
            return dict(row)

    def edit_opportunity(self, opportunity_id: int, **changes: Any) -> dict[str, Any]:
        """Reference data of an opportunity changed (its ``ModifiedDate`` is stamped)."""
        with self._lock:
            found = next((o for o in self.opportunities if o["OpportunityID"] == opportunity_id), None)
            if found is None:
                raise KeyError(f"no opportunity {opportunity_id}")
            unknown = set(changes) - {
                "OpportunityType",
                "OpportunityStatusName",
                "JobStatusName",
                "CompleteDate",
                "EstimatedLaborHours",
            }
            if unknown:
                raise ValueError(f"cannot set {sorted(unknown)} on an opportunity")
            found.update(changes)
            found["ModifiedDate"] = self._tick()
            return dict(found)

    def add_work_ticket_time(self, **fields: Any) -> dict[str, Any]:
        with self._lock:
            row = self._time_fields({"BreakTime": 0.0}, fields)
            now = self._tick()
            row["WorkTicketTimeID"] = max([*self.times, 800_000_000]) + 1
            row["CreatedDateTime"] = row["LastModifiedDateTime"] = now
            row = self._complete_time(row)
            self.times[row["WorkTicketTimeID"]] = row
            return dict(row)

    def edit_work_ticket_time(self, time_id: int, **changes: Any) -> dict[str, Any]:
        with self._lock:
            if time_id not in self.times:
                raise KeyError(f"no work ticket time {time_id}")
            row = self._time_fields(self.times[time_id], changes)
            row["LastModifiedDateTime"] = self._tick()
            self.times[time_id] = self._complete_time(row)
            return dict(self.times[time_id])

    def edit_work_ticket(self, ticket_id: int, **changes: Any) -> dict[str, Any]:
        with self._lock:
            if ticket_id not in self.tickets:
                raise KeyError(f"no work ticket {ticket_id}")
            unknown = set(changes) - {"HoursEst", "WorkTicketStatusName", "CompleteDate", "CrewLeaderContactID"}
            if unknown:
                raise ValueError(f"cannot set {sorted(unknown)} on a work ticket")
            if (
                "HoursEst" in changes
                and changes["HoursEst"] is not None
                and (isinstance(changes["HoursEst"], bool) or not isinstance(changes["HoursEst"], (int, float)))
            ):
                raise ValueError("HoursEst must be a number of hours or null")
            ticket = dict(self.tickets[ticket_id], **changes)
            ticket["LastModifiedDateTime"] = self._tick()
            self.tickets[ticket_id] = ticket
            return dict(ticket)

    def delete_work_ticket_time(self, time_id: int) -> dict[str, Any]:
        with self._lock:
            if time_id not in self.times:
                raise KeyError(f"no work ticket time {time_id}")
            self._tick()
            return self.times.pop(time_id)

    def edit_opportunity_service(self, service_id: int, **changes: Any) -> dict[str, Any]:
        with self._lock:
            if service_id not in self.services:
                raise KeyError(f"no opportunity service {service_id}")
            unknown = set(changes) - {"ExtendedHours", "LaborExtendedCost", "DisplayName"}
            if unknown:
                raise ValueError(f"cannot set {sorted(unknown)} on an opportunity service")
            for name in ("ExtendedHours", "LaborExtendedCost"):
                value = changes.get(name)
                if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                    raise ValueError(f"{name} must be a number or null")
            service = dict(self.services[service_id], **changes)
            service["LastModifiedDateTime"] = self._tick()
            self.services[service_id] = service
            return dict(service)

    def add_pay_rate(
        self, ContactID: int, EffectiveDate: str, HourlyBasePay: float, BurdenPercent: float = 0.0
    ) -> dict[str, Any]:
        """A new pay rate of an employee, effective at local midnight of ``EffectiveDate``."""
        with self._lock:
            contact = int(ContactID)
            if not any(c["ContactID"] == contact and c["ContactTypeName"] == "Employee" for c in self.contacts):
                raise KeyError(f"no employee contact {contact}")
            for name, value in (("HourlyBasePay", HourlyBasePay), ("BurdenPercent", BurdenPercent)):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{name} must be a number of at least 0")
            effective = _parse_wall(
                EffectiveDate if "T" in str(EffectiveDate) else f"{EffectiveDate}T00:00:00", "EffectiveDate"
            )
            self._tick()
            rate_id = max([*self.pay_rates, PAY_RATE_BASE - 1]) + 1
            self.pay_rates[rate_id] = {
                "PayRateID": rate_id,
                "ContactID": contact,
                "ContactName": self._contact_names.get(contact),
                "EffectiveDate": effective.isoformat(timespec="seconds"),
                "HourlyBasePay": float(HourlyBasePay),
                "BurdenPercent": float(BurdenPercent),
            }
            return dict(self.pay_rates[rate_id])

    def delete_pay_rate(self, rate_id: int) -> dict[str, Any]:
        with self._lock:
            if rate_id not in self.pay_rates:
                raise KeyError(f"no pay rate {rate_id}")
            self._tick()
            return self.pay_rates.pop(rate_id)


# -- faults ---------------------------------------------------------------------------------------------
class AspireFaults(Faults):
    """The shared fault switches (``protiv_emulators.server.Faults``); nothing Aspire-only."""


# -- the server --------------------------------------------------------------------------------------
def _jwt_like(company_id: str, lifetime: int) -> str:
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    now = int(time.time())
    claims = {
        "iss": "aspire-emulator",
        "tenant": company_id,
        "iat": now,
        "exp": now + lifetime,
        "jti": secrets.token_hex(8),
    }
    return f"{part({'alg': 'HS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


class AspireEmulator(VendorEmulator):
    """An Aspire External API on loopback hosting any number of tenants, each with its own API user."""

    thread_name = "aspire-emulator"
    faults_class = AspireFaults
    json_content_type = "application/json; charset=utf-8"

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_limit_per_minute: int | None = None,
        token_lifetime_seconds: int = TOKEN_LIFETIME_SECONDS,
    ):
        super().__init__(host, port)
        self.rate_limit_per_minute = rate_limit_per_minute
        self.token_lifetime_seconds = token_lifetime_seconds
        self._rate_window: tuple[float, int] = (0.0, 0)

    # -- addresses (start, stop, root_url and control_url come from the base classes) -------------
    @property
    def base_url(self) -> str:
        """What a client uses instead of https://cloud-api.youraspire.com."""
        return self.root_url

    # -- companies --------------------------------------------------------------------------------------
    def add_company(
        self, data: CompanyData, client_id: str | None = None, secret: str | None = None
    ) -> tuple[str, str]:
        """Host a generated company; returns its API user's (client id, secret), random unless given."""
        company = AspireCompany(
            data, client_id=client_id or f"aspire-{secrets.token_hex(6)}", secret=secret or secrets.token_urlsafe(24)
        )
        self._host(
            data.company_id,
            company,
            lambda other: other.client_id == company.client_id,
            "that client id already belongs to another company",
        )
        return company.client_id, company.secret

    def _tokens_of(self, company_id: str) -> list[str]:
        token = self.company(company_id).token
        return [token] if token else []

    # -- answering vendor requests (faults, latency and the log are VendorEmulator's) ---------------
    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"Message": message}

    def _empty_page(self, answer: Answer) -> Answer:
        """An empty array. Aspire lists carry no "more" flag, so a client paging until a short page
        stops here: the rest of the listing is not fetched, which is what the fault is for."""
        return Answer(200, [], page=True)

    def _answer_vendor(self, request: Request) -> Answer:
        method, path, query, headers, body = request.method, request.path, request.query, request.headers, request.body
        try:
            self._enforce_rate_limit()
            if path in ("/Authorization", "/Authorization/RefreshToken"):
                if method != "POST":
                    raise _ApiError(405, f"use POST for {path}")
                return Answer(200, self._authorize(path, body))
            endpoint = path.lstrip("/")
            if endpoint not in FIELDS:
                raise _ApiError(404, f"No HTTP resource was found that matches the request URI '{path}'")
            company = self._authenticate(headers)
            if method != "GET":
                raise _ApiError(405, f"the emulator serves only GET on {path}")
            # The Date header is the company's clock (``as_of``): running times count up to it.
            return Answer(
                200, _apply_query(company.records(endpoint), endpoint, query), page=True, clock=company.data.as_of
            )
        except _ApiError as error:
            return Answer(error.status, error.body)

    def _enforce_rate_limit(self) -> None:
        if self.rate_limit_per_minute is None:
            return
        now = time.monotonic()
        with self._lock:
            started, calls = self._rate_window
            if now - started >= RATE_LIMIT_WINDOW_SECONDS:
                started, calls = now, 0
            self._rate_window = (started, calls + 1)
        if calls + 1 > self.rate_limit_per_minute:
            raise _ApiError(429, "API rate limit exceeded")

    def _authorize(self, path: str, body: bytes) -> dict[str, str]:
        try:
            payload = json.loads(body or b"{}")
        except json.JSONDecodeError:
            raise _ApiError(400, "the body is not JSON") from None
        if not isinstance(payload, dict):
            raise _ApiError(400, "the body must be a JSON object")
        with self._lock:
            companies = list(self._companies.values())
        if path == "/Authorization":
            client_id, secret = payload.get("ClientId"), payload.get("Secret")
            if not isinstance(client_id, str) or not isinstance(secret, str):
                raise _ApiError(400, "ClientId and Secret are required")
            company = next(
                (c for c in companies if c.client_id == client_id and secrets.compare_digest(c.secret, secret)), None
            )
            if company is None:
                raise _ApiError(401, "Invalid ClientId or Secret")
        else:
            refresh = payload.get("RefreshToken")
            company = next(
                (
                    c
                    for c in companies
                    if isinstance(refresh, str) and c.refresh_token and secrets.compare_digest(c.refresh_token, refresh)
                ),
                None,
            )
            if company is None:
                raise _ApiError(401, "Invalid refresh token")
        with company._lock:
            company.token = _jwt_like(company.company_id, self.token_lifetime_seconds)
            company.refresh_token = secrets.token_urlsafe(32)
            company.token_issued_at = time.time()
            return {"Token": company.token, "RefreshToken": company.refresh_token}

    def _authenticate(self, headers: Message) -> AspireCompany:
        scheme, _, token = headers.get("Authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _ApiError(401, "Authorization has been denied for this request.")
        with self._lock:
            company = next(
                (c for c in self._companies.values() if c.token and secrets.compare_digest(c.token, token)), None
            )
        if company is None:
            raise _ApiError(401, "Authorization has been denied for this request.")
        if self.faults.is_expired(token) or time.time() - company.token_issued_at >= self.token_lifetime_seconds:
            raise _ApiError(401, "Authorization has been denied for this request: the token has expired.")
        return company

    # -- answering control requests (status, faults and the parsing are VendorEmulator's) ----------
    def _control_route(
        self, method: str, parts: list[str], payload: dict[str, Any], company_id: str | None
    ) -> Answer | None:
        if parts == ["work_ticket_times"] and method == "POST":
            return Answer(200, self._control_company(company_id).add_work_ticket_time(**payload))
        if len(parts) == 3 and parts[0] == "work_ticket_times" and method == "POST":
            time_id, action = int(parts[1]), parts[2]
            company = self._control_company(company_id, lambda c: time_id in c.times, f"work ticket time {time_id}")
            if action == "delete":
                return Answer(200, company.delete_work_ticket_time(time_id))
            if action == "edit":
                return Answer(200, company.edit_work_ticket_time(time_id, **payload))
        if len(parts) == 3 and parts[0] == "opportunity_services" and parts[2] == "edit" and method == "POST":
            service_id = int(parts[1])
            company = self._control_company(
                company_id, lambda c: service_id in c.services, f"opportunity service {service_id}"
            )
            return Answer(200, company.edit_opportunity_service(service_id, **payload))
        if parts == ["distributed_times"] and method == "POST":
            return Answer(200, self._control_company(company_id).add_distributed_time(**payload))
        if parts == ["clock_times"] and method == "POST":
            return Answer(200, self._control_company(company_id).add_clock_time(**payload))
        if len(parts) == 3 and parts[0] == "opportunities" and parts[2] == "edit" and method == "POST":
            opportunity_id = int(parts[1])
            company = self._control_company(
                company_id,
                lambda c: any(o["OpportunityID"] == opportunity_id for o in c.opportunities),
                f"opportunity {opportunity_id}",
            )
            return Answer(200, company.edit_opportunity(opportunity_id, **payload))
        if parts == ["pay_rates"] and method == "POST":
            return Answer(200, self._control_company(company_id).add_pay_rate(**payload))
        if len(parts) == 3 and parts[0] == "pay_rates" and parts[2] == "delete" and method == "POST":
            rate_id = int(parts[1])
            company = self._control_company(company_id, lambda c: rate_id in c.pay_rates, f"pay rate {rate_id}")
            return Answer(200, company.delete_pay_rate(rate_id))
        if len(parts) == 3 and parts[0] == "work_tickets" and parts[2] == "edit" and method == "POST":
            ticket_id = int(parts[1])
            company = self._control_company(company_id, lambda c: ticket_id in c.tickets, f"work ticket {ticket_id}")
            return Answer(200, company.edit_work_ticket(ticket_id, **payload))
        return None


__all__ = [
    "FIELDS",
    "IMPLICIT_SERVICE_BASE",
    "IMPLICIT_TICKET_BASE",
    "LABOR_COST_PER_HOUR",
    "PAY_RATE_BASE",
    "WINDOWS_ZONES",
    "AspireCompany",
    "AspireEmulator",
    "AspireFaults",
    "LoggedRequest",
]
