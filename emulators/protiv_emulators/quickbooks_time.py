"""A QuickBooks Time (formerly TSheets) REST API v1 emulator: a real HTTP server on loopback.

The vendor cannot be reached from the sandbox, so this server speaks its protocol for generated
companies (``protiv_emulators.generator``). Pointing a client at ``emulator.base_url`` instead
of ``https://rest.tsheets.com/api/v1`` must be the only difference. Standard library only.

What is emulated (documented by the vendor)
-------------------------------------------
- ``Authorization: Bearer <access token>``; a missing, unknown or expired token gets 401
  ``{"error": {"code": 401, "message": ...}}``. Tokens never appear in any answer body or log.
- The OAuth 2.0 authorization code flow, for the apps registered on the emulator (``OAuthClient``;
  ``register_oauth_client(client_id, redirect_uris, client_secret=None, name="")``, the constructor's
  ``oauth_clients`` or ``POST /_emulator/oauth_clients``):

  - ``GET /authorize?response_type=code&client_id=..&redirect_uri=..&state=..`` shows the admin's
    browser a consent page (plain HTML, no script, no external resource): the company that approves
    (a ``<select name="company_id">`` when several are hosted, named when one is) and the buttons
    ``Approve`` and ``Deny`` of a form that POSTs back to ``/authorize`` (fields ``response_type``,
    ``client_id``, ``redirect_uri``, ``state``, ``company_id`` and ``decision=approve|deny``).
    Approval redirects (302, ``Location``) to ``<redirect_uri>?code=<code>&state=<state>``, denial to
    ``<redirect_uri>?error=access_denied&state=<state>``; ``state`` is echoed unchanged whenever the
    request has one, and the redirect URI's own query is kept. A missing or unknown ``client_id``, or a
    ``redirect_uri`` not registered for that client (compared exactly), answers a 400 page and redirects
    nowhere; ``response_type`` other than ``code`` redirects with ``error=unsupported_response_type``
    (``error=invalid_request`` when it is missing).
  - ``POST /grant`` (form-urlencoded) with ``grant_type=authorization_code``, ``client_id``,
    ``client_secret``, ``code`` and ``redirect_uri``: 200 ``access_token``, ``expires_in``,
    ``token_type`` ``bearer``, ``scope``, ``refresh_token``, ``user_id`` (the approving company's
    owner), ``company_id`` and ``client_url``. A missing field gets 400 ``invalid_request``; an unknown
    client or a wrong secret 401 ``invalid_client``; an unknown, used or expired code, a code issued
    to another client or a ``redirect_uri`` other than the authorization request's 400
    ``invalid_grant``, all as ``{"error": ..., "error_description": ...}``. The tokens serve the
    approving company on every endpoint, beside its other tokens (each approval adds a pair).

- ``POST /grant`` (form-urlencoded) with ``grant_type=refresh_token``, ``client_id``,
  ``client_secret`` and ``refresh_token``: new access and refresh tokens, the old pair stops working.
  A wrong client or refresh token gets 401 ``{"error": "invalid_grant", "error_description": ...}``.
  The client is the company's own (``add_company``'s ``client_id`` and ``client_secret``) for the
  pair ``add_company`` made, the registered OAuth client for a pair the code flow issued. Token
  answers carry ``Cache-Control: no-store``.
- List answers ``{"results": {"<name>": {"<id>": {...}}}, "more": bool, "supplemental_data": {...}}``,
  records in ascending id order, ``page`` from 1, ``limit`` 1..200 (default 200);
  ``supplemental_data=no`` leaves the supplemental object out.
- ``GET /current_user``, ``/users``, ``/jobcodes``, ``/customfields``, ``/timesheets``,
  ``/timesheets_deleted`` and ``/last_modified_timestamps`` with the filters and defaults the vendor
  documents: ``active=yes`` for users, jobcodes and custom fields; ``type=regular`` and
  ``parent_ids=-1`` for jobcodes; ``applies_to=timesheet`` for custom fields; ``on_the_clock=no`` for
  timesheets (running sheets are left out unless asked); ``jobcode_ids`` includes child jobcodes; one
  of ``ids``, ``start_date``, ``modified_since``, ``modified_before`` is required on ``/timesheets``,
  and ``start_date`` + ``end_date`` go together on ``/timesheets_deleted``.
- Error statuses: 401, 404 (unknown path), 405 (wrong method; the write endpoints are not
  emulated), 417 (missing or malformed parameter, naming it), 429, 5xx on demand. Switched-on faults
  (``emulator.faults``) apply to every ``/api/v1`` request, ``/grant`` and ``/authorize`` included,
  and every one of them is in ``request_log`` (path and query only: never a body or a header).

What is inferred (not documented; change here if the real service disagrees)
--------------------------------------------------------------------------
- The real consent step signs the admin in first; here the browser is trusted to be the owner of
  whichever hosted company it picks. An authorization code lives 10 minutes
  (``authorization_code_lifetime_seconds``) and works once; a failed exchange (wrong secret or
  ``redirect_uri``) does not use it up, and reusing a code does not revoke the tokens it gave.
- While no OAuth client is registered, ``grant_type=authorization_code`` answers 400
  ``unsupported_grant_type`` (the emulator cannot have issued a code), as before the flow was emulated.
- ``modified_since`` / ``modified_before`` are inclusive (``>=`` / ``<=``).
- An out-of-range ``limit`` answers 417 ``limit must be an integer from 1 to 200``.
- A timestamp without an offset is read as UTC; a trailing ``Z`` is accepted.
- The real rate limit (300 calls per 5 minutes per token, optional here) answers 429 *without*
  ``Retry-After`` until the window ends: the vendor documents no such header.
- Deleting a timesheet moves both the ``timesheets`` and ``timesheets_deleted`` stamps of
  ``/last_modified_timestamps``.
- ``supplemental_data`` of timesheets holds the referenced users and jobcodes plus the parents of
  those jobcodes.
- ``tz_str``: tsET, tsCT, tsMT and tsPT are seen in vendor examples (tsMT with both -6 and -7, so it
  names the zone, not the offset); tsAZ for America/Phoenix is a guess; other zones give ``""``.
  Clients should read the offset in ``start`` (or ``tz``), never ``tz_str``.
- Unpaid breaks: a generated shift with a lunch break is one timesheet whose ``duration`` already
  excludes the break, so ``end - start`` can exceed ``duration``. (The real service would record the
  break as a separate sheet on a break jobcode, which the default ``type=regular`` filter hides.)

How generated companies are shown
---------------------------------
- Users: every worker; the first manager is the account owner (``/current_user``, admin
  permissions, ``created_by_user_id`` of manual sheets). ``pay_rate`` is the hourly wage, or the
  annual salary when ``pay_interval`` is ``year``. ``term_date`` is ``"0000-00-00"`` when unset.
- Jobcodes: top level (``parent_id`` 0) = jobs, children = milestones. The drive job is the top-level
  jobcode named ``Drive Time`` (short code ``DRIVE``). ``active`` is false for completed or canceled
  jobs and milestones.
- Jobcode custom fields (find them by name through ``GET /customfields?applies_to=jobcode``; their
  ids differ per company): ``Budget Hours`` (free-form, e.g. ``"42.5"``, ``""`` without a budget),
  ``Job Status`` (managed-list ``Open`` / ``Completed`` / ``Canceled``) and ``Recurring``
  (managed-list ``Yes`` / ``No``, top-level jobcodes only). Values appear under ``customfields`` of
  each jobcode when ``customfields=true`` is asked.
- Timesheets: ``jobcode_id`` is the milestone when the shift has one, else the job. ``start``/``end``
  carry the company's local offset at that instant; ``end`` is ``""`` while on the clock and both are
  ``""`` for manual sheets. The clock is frozen at the company's ``as_of``: a running sheet's
  ``duration`` counts up to it.

Emulator conveniences (not the vendor's)
----------------------------------------
- ``GET /authorize?...&approve=yes`` skips the consent page and approves at once (for the only hosted
  company, or the one named by ``company_id``); ``approve=no`` denies. For API tests; a browser gets
  the page.
- ``emulator.authorize_url(client_id, redirect_uri, state)`` builds the URL an app sends the browser to.

The control API (not the vendor's; no authentication; loopback clients only)
---------------------------------------------------------------------------
Everything the Python API can change is also reachable over HTTP, so another process (a Dagster
daemon in a test) can change the data. Bodies and answers are JSON; ``company_id`` (in the body or
the query) is needed only when the server hosts several companies and the id does not tell which.

- ``GET  /_emulator/status`` -> ``{"request_count": n, "company_ids": [...]}``
- ``POST /_emulator/faults`` with ``{"action": "rate_limit", "times": 2, "retry_after": 1}``,
  ``{"action": "server_error", "times": 3, "status": 503}``, ``{"action": "latency", "seconds": 0.05}``,
  ``{"action": "drop_connection", "times": 1}``, ``{"action": "read_timeout", "times": 1, "seconds": 5}``,
  ``{"action": "truncated_json", "times": 1}``, ``{"action": "invalid_json", "times": 1}``,
  ``{"action": "empty_page", "times": 1}``, ``{"action": "between_pages", "after_pages": 1,
  "control": {"path": "/timesheets/<id>/delete", "body": {}}}`` (that control call runs between
  pages), ``{"action": "expire_token", "company_id": "..."}`` or ``{"action": "clear"}``; the faults
  are the shared ones of ``protiv_emulators.server``. An empty page here is
  ``{"results": {"<name>": {}}, "more": true, "supplemental_data": {}}``: the client goes on to the
  next page and the records of the emptied page are skipped.
- ``POST /_emulator/timesheets`` (add: ``user_id``, ``jobcode_id`` and ``start``/``end`` or
  ``date``/``duration``, optional ``notes``)
- ``POST /_emulator/timesheets/<id>/edit`` (``start``, ``end``, ``duration``, ``date``, ``jobcode_id``,
  ``user_id``, ``notes``) and ``POST /_emulator/timesheets/<id>/delete``
- ``POST /_emulator/users/<id>/edit`` and ``POST /_emulator/jobcodes/<id>/edit`` (any served field;
  for jobcodes also ``budget_hours``, ``status`` and ``recurring``)
- ``POST /_emulator/oauth_clients`` with ``{"client_id": ..., "redirect_uris": [...], "client_secret": ...,
  "name": ...}`` (secret and name optional) registers an OAuth client, or replaces the one with that id;
  it answers with the client, secret included.

Each answers with the record as the vendor API now serves it. Control calls are not counted in
``request_log``, and faults never apply to them.
"""

from __future__ import annotations

import copy
import html
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from protiv_emulators.generator import (
    PAY_SALARIED,
    ROLE_MANAGER,
    STATUS_CANCELED,
    STATUS_COMPLETED,
    STATUS_OPEN,
    CompanyData,
    Shift,
    Worker,
)
from protiv_emulators.server import Answer, Faults, LoggedRequest, Request, VendorEmulator

API_PREFIX = "/api/v1"
MAX_LIMIT = 200
ACCESS_TOKEN_LIFETIME_SECONDS = 864_000  # the vendor's example grant answer: 10 days
AUTHORIZATION_CODE_LIFETIME_SECONDS = 600  # inferred: RFC 6749 recommends at most 10 minutes
RATE_LIMIT_WINDOW_SECONDS = 300
ZERO_DATE = "0000-00-00"

TZ_STR_BY_ZONE = {
    "America/New_York": "tsET",
    "America/Chicago": "tsCT",
    "America/Denver": "tsMT",
    "America/Phoenix": "tsAZ",  # inferred, see the module docstring
    "America/Los_Angeles": "tsPT",
}
BUDGET_HOURS_FIELD = "Budget Hours"
JOB_STATUS_FIELD = "Job Status"
RECURRING_FIELD = "Recurring"
JOB_STATUS_VALUES = {STATUS_OPEN: "Open", STATUS_COMPLETED: "Completed", STATUS_CANCELED: "Canceled"}
LAST_MODIFIED_ENDPOINTS = ("current_user", "customfields", "jobcodes", "timesheets", "timesheets_deleted", "users")


# -- small formatting and parsing helpers ------------------------------------------------------------
def _utc_text(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _hours_text(hours: float | None) -> str:
    """Budget hours the way a person types them in a free-form field: "42.5", "40", "12.25"."""
    if hours is None:
        return ""
    return f"{hours:.2f}".rstrip("0").rstrip(".")


def _same(secret: str, given: str) -> bool:
    """A constant-time comparison that also takes non-ASCII text (``compare_digest`` refuses it)."""
    return secrets.compare_digest(secret.encode("utf-8"), given.encode("utf-8"))


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _as_datetime(value: datetime | str, name: str) -> datetime:
    """An aware datetime from a datetime or ISO 8601 text (naive means UTC)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be an ISO 8601 timestamp, got {value!r}") from None
    if not isinstance(value, datetime):
        raise ValueError(f"{name} must be a datetime, got {value!r}")
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _as_date(value: date | str, name: str) -> date:
    if isinstance(value, datetime):
        raise ValueError(f"{name} must be a date, not a datetime")
    if isinstance(value, str):
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a YYYY-MM-DD date, got {value!r}") from None
    if not isinstance(value, date):
        raise ValueError(f"{name} must be a date, got {value!r}")
    return value


class _ApiError(Exception):
    """An error answer in the vendor's shape."""

    def __init__(self, status: int, message: str, body: dict[str, Any] | None = None):
        super().__init__(message)
        self.status = status
        self.body = body if body is not None else {"error": {"code": status, "message": message}}


def _invalid(name: str, expected: str) -> _ApiError:
    return _ApiError(417, f"{name} must be {expected}")


class _Query:
    """The query string of one request, with parsers that answer 417 naming the bad parameter."""

    def __init__(self, raw: Mapping[str, str]):
        self.raw = raw

    def text(self, name: str) -> str | None:
        value = self.raw.get(name, "").strip()
        return value or None  # an empty parameter is treated as absent

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = (self.text(name) or default).lower()
        if value not in allowed:
            raise _invalid(name, " or ".join(allowed))
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.text(name)
        if value is None:
            return default
        if value.lower() in ("true", "yes", "1"):
            return True
        if value.lower() in ("false", "no", "0"):
            return False
        raise _invalid(name, "true or false")

    def ids(self, name: str) -> set[int] | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return {int(part) for part in value.split(",") if part.strip()}
        except ValueError:
            raise _invalid(name, "a comma-separated list of integer ids") from None

    def date(self, name: str) -> date | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            raise _invalid(name, "a YYYY-MM-DD date") from None

    def timestamp(self, name: str) -> datetime | None:
        value = self.text(name)
        if value is None:
            return None
        try:
            return _as_datetime(value, name)
        except ValueError:
            hint = " (was a '+' in the offset sent unencoded instead of %2B?)" if " " in value else ""
            raise _invalid(name, f"an ISO 8601 timestamp{hint}") from None

    def paging(self) -> tuple[int, int]:
        page_text, limit_text = self.text("page") or "1", self.text("limit") or str(MAX_LIMIT)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
            raise _ApiError(417, f"limit must be an integer from 1 to {MAX_LIMIT}")
        if not page_text.isdigit() or int(page_text) < 1:
            raise _ApiError(417, "page must be an integer from 1")
        return int(page_text), int(limit_text)

    def modified_window(self) -> tuple[datetime | None, datetime | None]:
        return self.timestamp("modified_since"), self.timestamp("modified_before")


def _within(moment: datetime, since: datetime | None, before: datetime | None) -> bool:
    return (since is None or moment >= since) and (before is None or moment <= before)


def _active_matches(active: bool, wanted: str) -> bool:
    return wanted == "both" or active == (wanted == "yes")


# -- one company's live state ------------------------------------------------------------------------
@dataclass
class _Timesheet:
    """A timesheet as the vendor stores it; rendered to the API shape on every read."""

    id: int
    user_id: int
    jobcode_id: int
    local_date: date
    start: datetime | None
    end: datetime | None
    duration: int
    unpaid_break_seconds: int
    manual: bool
    notes: str
    created: datetime
    last_modified: datetime
    created_by_user_id: int

    @property
    def on_the_clock(self) -> bool:
        return not self.manual and self.start is not None and self.end is None


@dataclass
class _OAuthGrant:
    """A token pair an OAuth client got through the authorization code flow (beside the company's first
    pair, the one ``add_company`` made): it lives until its refresh token is used."""

    client_id: str
    access_token: str
    refresh_token: str
    issued_at: float


class QuickBooksTimeCompany:
    """One company's account as the emulator serves it: users, jobcodes, custom fields, timesheets.

    Built from a generated ``CompanyData``; from then on this state is the truth. The mutation
    methods (thread-safe) stamp what they touch with a strictly increasing ``now``, and the read
    methods return exactly what the API serves.
    """

    def __init__(
        self,
        data: CompanyData,
        *,
        access_token: str,
        refresh_token: str,
        client_id: str,
        client_secret: str,
        token_lifetime_seconds: int,
    ):
        self.data = data
        self.company_id = data.company_id
        self.zone = ZoneInfo(data.timezone)
        self.frozen_now = data.as_of
        self.client_id = client_id
        self.client_secret = client_secret
        self.token_lifetime_seconds = token_lifetime_seconds
        self._lock = threading.RLock()
        self._access_token = access_token
        self._refresh_token = refresh_token
        self._token_issued_at = time.time()
        self._oauth_grants: list[_OAuthGrant] = []
        # Vendor-side ids and names that a real account would have; drawn from the company, stable.
        rng = random.Random(f"{data.company_id}|{data.seed}|quickbooks_time")
        self.vendor_company_id = str(rng.randint(100_000, 999_999))
        self.client_url = re.sub(r"[^a-z0-9]", "", data.name.lower())[:30]
        field_base = rng.randint(100_000, 900_000)
        self.budget_hours_field_id = field_base
        self.job_status_field_id = field_base + 2
        self.recurring_field_id = field_base + 3
        managers = [w for w in data.workers if w.role == ROLE_MANAGER and w.active]
        self.owner_user_id = min(managers, key=lambda w: w.employee_number).id

        self._users = {w.id: self._user_record(w) for w in data.workers}
        self._customfields = self._customfield_records()
        self._jobcodes = self._jobcode_records()
        self._timesheets = {s.id: self._timesheet_state(s) for s in sorted(data.shifts, key=lambda s: s.id)}
        self._deleted = {
            s.id: self._timesheet_state(s, last_modified=s.deleted_at)
            for s in sorted(data.deleted_shifts, key=lambda s: s.id)
        }
        self._parents_with_children = {j["parent_id"] for j in self._jobcodes.values()}

        def latest(records: Iterable[Any]) -> datetime:
            return max(
                (
                    r.last_modified if isinstance(r, _Timesheet) else datetime.fromisoformat(r["last_modified"])
                    for r in records
                ),
                default=data.created_at,
            )

        self._endpoint_modified = {
            "timesheets": latest(self._timesheets.values()),
            "timesheets_deleted": latest(self._deleted.values()),
            "users": latest(self._users.values()),
            "jobcodes": latest(self._jobcodes.values()),
            "customfields": latest(self._customfields.values()),
        }
        self._last_tick = max(self._endpoint_modified.values())

    # -- building the vendor records ----------------------------------------------------------
    def _user_record(self, worker: Worker) -> dict[str, Any]:
        salaried = worker.pay_interval == PAY_SALARIED
        is_owner = worker.id == self.owner_user_id
        is_manager = worker.role == ROLE_MANAGER
        return {
            "id": worker.id,
            "first_name": worker.first_name,
            "last_name": worker.last_name,
            "display_name": "",
            "group_id": 0,
            "active": worker.active,
            "employee_number": worker.employee_number,
            "salaried": salaried,
            "exempt": salaried,
            "username": worker.email.split("@")[0],
            "email": worker.email,
            "email_verified": False,
            "payroll_id": str(worker.employee_number),
            "hire_date": worker.hire_date.isoformat(),
            "term_date": worker.term_date.isoformat() if worker.term_date else ZERO_DATE,
            "last_modified": _utc_text(worker.modified_at),
            "last_active": "",
            "created": _utc_text(worker.created_at),
            "client_url": self.client_url,
            "company_name": self.data.name,
            "profile_image_url": "",
            "mobile_number": "",
            "pto_balances": {},
            "submitted_to": ZERO_DATE,
            "approved_to": ZERO_DATE,
            "manager_of_group_ids": [],
            "require_password_change": False,
            # A salaried worker has an annual salary (generator.Worker).
            "pay_rate": float(
                worker.annual_salary if salaried and worker.annual_salary is not None else worker.hourly_wage
            ),
            "pay_interval": worker.pay_interval,
            "permissions": {
                "admin": is_owner,
                "mobile": True,
                "status_box": is_manager,
                "reports": is_manager,
                "manage_timesheets": is_manager,
                "manage_authorization": is_owner,
                "manage_users": is_manager,
                "manage_my_timesheets": True,
                "manage_jobcodes": is_manager,
                "pin_login": False,
                "approve_timesheets": is_manager,
                "manage_schedules": is_manager,
                "external_access": False,
                "manage_my_schedule": True,
                "manage_company_schedules": is_manager,
                "view_company_schedules": is_manager,
                "view_group_schedules": is_manager,
                "manage_no_schedules": False,
                "view_my_schedules": True,
                "time_tracking": True,
            },
            "customfields": "",
        }

    def _customfield_records(self) -> dict[int, dict[str, Any]]:
        created = _utc_text(self.data.created_at)

        def record(field_id: int, name: str, short_code: str, kind: str) -> dict[str, Any]:
            return {
                "id": field_id,
                "active": True,
                "global": True,
                "required": False,
                "applies_to": "jobcode",
                "type": kind,
                "short_code": short_code,
                "regex_filter": "",
                "name": name,
                "last_modified": created,
                "created": created,
                "ui_preference": "drop_down" if kind == "managed-list" else "text_box_with_suggest",
                "show_to_all": True,
                "required_customfields": [],
            }

        return {
            self.budget_hours_field_id: record(self.budget_hours_field_id, BUDGET_HOURS_FIELD, "BH", "free-form"),
            self.job_status_field_id: record(self.job_status_field_id, JOB_STATUS_FIELD, "JS", "managed-list"),
            self.recurring_field_id: record(self.recurring_field_id, RECURRING_FIELD, "RC", "managed-list"),
        }

    def _jobcode_records(self) -> dict[int, dict[str, Any]]:
        def record(jobcode_id, parent_id, name, short_code, status, budget, created, modified, recurring):
            values = {
                str(self.budget_hours_field_id): _hours_text(budget),
                str(self.job_status_field_id): JOB_STATUS_VALUES[status],
            }
            if recurring is not None:
                values[str(self.recurring_field_id)] = "Yes" if recurring else "No"
            return {
                "id": jobcode_id,
                "parent_id": parent_id,
                "assigned_to_all": True,
                "billable": False,
                "active": status == STATUS_OPEN,
                "type": "regular",
                "has_children": False,  # recomputed when served
                "billable_rate": 0,
                "short_code": short_code,
                "name": name,
                "last_modified": _utc_text(modified),
                "created": _utc_text(created),
                "filtered_customfielditems": "",
                "required_customfields": [],
                "locations": [],
                "connect_with_quickbooks": False,
                "customfields": values,
            }

        records: dict[int, dict[str, Any]] = {}
        for job in self.data.jobs:
            records[job.id] = record(
                job.id,
                0,
                job.name,
                job.short_code,
                job.status,
                job.budget_hours,
                job.created_at,
                job.modified_at,
                job.recurring,
            )
        for milestone in self.data.milestones:
            records[milestone.id] = record(
                milestone.id,
                milestone.job_id,
                milestone.name,
                "",
                milestone.status,
                milestone.budget_hours,
                milestone.created_at,
                milestone.modified_at,
                None,
            )
        return dict(sorted(records.items()))

    def _timesheet_state(self, shift: Shift, last_modified: datetime | None = None) -> _Timesheet:
        worked = shift.duration_seconds
        breaks = sum(int((end - start).total_seconds()) for start, end in shift.breaks)
        return _Timesheet(
            id=shift.id,
            user_id=shift.worker_id,
            jobcode_id=shift.milestone_id or shift.job_id,
            local_date=shift.local_date,
            start=shift.start,
            end=shift.end,
            duration=worked,
            unpaid_break_seconds=breaks,
            manual=shift.manual,
            notes=shift.notes,
            created=shift.created_at,
            last_modified=last_modified or shift.modified_at,
            # Manual sheets are typed in by the office; clocked ones by the worker's own device.
            created_by_user_id=self.owner_user_id if shift.manual else shift.worker_id,
        )

    # -- rendering -------------------------------------------------------------------------------
    def _render_timesheet(self, sheet: _Timesheet, *, deleted: bool = False) -> dict[str, Any]:
        day = sheet.local_date  # a manual sheet has no start: its offset is the one at noon of its date
        anchor = sheet.start or datetime(day.year, day.month, day.day, 12, tzinfo=self.zone)
        offset = anchor.astimezone(self.zone).utcoffset() or timedelta(0)
        running = sheet.on_the_clock and not deleted
        duration = sheet.duration
        if running:
            assert sheet.start is not None, "a timesheet on the clock has a start"
            duration = max(0, int((self.frozen_now - sheet.start).total_seconds()))
        return {
            "id": sheet.id,
            "user_id": sheet.user_id,
            "jobcode_id": sheet.jobcode_id,
            "start": sheet.start.astimezone(self.zone).isoformat(timespec="seconds") if sheet.start else "",
            "end": sheet.end.astimezone(self.zone).isoformat(timespec="seconds") if sheet.end else "",
            "duration": duration,
            "date": sheet.local_date.isoformat(),
            "tz": int(offset.total_seconds() // 3600),
            "tz_str": TZ_STR_BY_ZONE.get(self.data.timezone, ""),
            "type": "manual" if sheet.manual else "regular",
            "location": "",
            "on_the_clock": running,
            "locked": 0,
            "notes": sheet.notes,
            "customfields": "",
            "attached_files": [],
            "last_modified": _utc_text(sheet.last_modified),
            "created": _utc_text(sheet.created),
            "created_by_user_id": sheet.created_by_user_id,
        }

    def _render_jobcode(self, record: dict[str, Any], *, with_customfields: bool) -> dict[str, Any]:
        rendered = copy.deepcopy(record)
        rendered["has_children"] = record["id"] in self._parents_with_children
        if not with_customfields:
            del rendered["customfields"]
        return rendered

    # -- reads: exactly what the API serves ----------------------------------------------------------
    def timesheets(self, include_on_the_clock: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._render_timesheet(t)
                for t in self._timesheets.values()
                if include_on_the_clock or not t.on_the_clock
            ]

    def deleted_timesheets(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self._render_timesheet(t, deleted=True) for t in self._deleted.values()]

    def users(self, include_inactive: bool = True) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(u) for _, u in sorted(self._users.items()) if include_inactive or u["active"]]

    def jobcodes(self, include_inactive: bool = True, customfields: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            return [
                self._render_jobcode(j, with_customfields=customfields)
                for j in self._jobcodes.values()
                if include_inactive or j["active"]
            ]

    def customfields(self) -> list[dict[str, Any]]:
        with self._lock:
            return [copy.deepcopy(f) for _, f in sorted(self._customfields.items())]

    def last_modified_timestamps(self) -> dict[str, str]:
        with self._lock:
            stamps = dict(self._endpoint_modified)
            stamps["current_user"] = datetime.fromisoformat(self._users[self.owner_user_id]["last_modified"])
        return {name: _utc_text(stamps[name]) for name in LAST_MODIFIED_ENDPOINTS}

    # -- tokens ------------------------------------------------------------------------------------
    @property
    def access_token(self) -> str:
        return self._access_token

    @property
    def refresh_token(self) -> str:
        return self._refresh_token

    def token_expired_naturally(self) -> bool:
        return time.time() > self._token_issued_at + self.token_lifetime_seconds

    def rotate_tokens(self) -> tuple[str, str]:
        with self._lock:
            self._access_token = secrets.token_urlsafe(32)
            self._refresh_token = secrets.token_urlsafe(32)
            self._token_issued_at = time.time()
            return self._access_token, self._refresh_token

    # The pairs OAuth clients got through the authorization code flow, each beside the first pair.
    def issue_oauth_grant(self, client_id: str) -> tuple[str, str]:
        """A new access and refresh token for ``client_id``, this company having approved it."""
        with self._lock:
            grant = _OAuthGrant(client_id, secrets.token_urlsafe(32), secrets.token_urlsafe(32), time.time())
            self._oauth_grants.append(grant)
            return grant.access_token, grant.refresh_token

    @property
    def oauth_access_tokens(self) -> list[str]:
        with self._lock:
            return [grant.access_token for grant in self._oauth_grants]

    def access_token_status(self, token: str) -> Literal["valid", "expired"] | None:
        """Whether ``token`` is one of this company's access tokens (the first pair's or an OAuth
        grant's) and still within its lifetime; None when it is none of them."""
        with self._lock:
            if _same(self._access_token, token):
                return "expired" if self.token_expired_naturally() else "valid"
            for grant in self._oauth_grants:
                if _same(grant.access_token, token):
                    expired = time.time() > grant.issued_at + self.token_lifetime_seconds
                    return "expired" if expired else "valid"
        return None

    def oauth_client_of_refresh_token(self, refresh_token: str) -> str | None:
        """The client id an OAuth grant with this refresh token was issued to; None if none was."""
        with self._lock:
            return next((g.client_id for g in self._oauth_grants if _same(g.refresh_token, refresh_token)), None)

    def rotate_oauth_grant(self, refresh_token: str) -> tuple[str, str, str] | None:
        """New tokens for the OAuth grant holding ``refresh_token``: (old access, new access, new refresh);
        None when no grant holds it (any more: two refreshes raced and the other one won)."""
        with self._lock:
            grant = next((g for g in self._oauth_grants if _same(g.refresh_token, refresh_token)), None)
            if grant is None:
                return None
            old = grant.access_token
            grant.access_token, grant.refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
            grant.issued_at = time.time()
            return old, grant.access_token, grant.refresh_token

    # -- mutations -----------------------------------------------------------------------------------
    def _tick(self) -> datetime:
        """A strictly increasing 'now': real time, but always after everything already stamped."""
        self._last_tick = max(_now(), self._last_tick + timedelta(seconds=1))
        return self._last_tick

    def _sheet(self, timesheet_id: int) -> _Timesheet:
        try:
            return self._timesheets[int(timesheet_id)]
        except KeyError:
            raise KeyError(f"company {self.company_id!r} has no timesheet {timesheet_id}") from None

    def _check_refs(self, user_id: int | None = None, jobcode_id: int | None = None) -> None:
        if user_id is not None and user_id not in self._users:
            raise ValueError(f"company {self.company_id!r} has no user {user_id}")
        if jobcode_id is not None and jobcode_id not in self._jobcodes:
            raise ValueError(f"company {self.company_id!r} has no jobcode {jobcode_id}")

    def has_record(self, kind: str, record_id: int) -> bool:
        stores: dict[str, Mapping[int, object]] = {
            "timesheets": self._timesheets,
            "users": self._users,
            "jobcodes": self._jobcodes,
        }
        return record_id in stores[kind]

    def edit_timesheet(self, timesheet_id: int, **changes: Any) -> dict[str, Any]:
        """Change a live timesheet like a manager would: ``start``, ``end``, ``duration``, ``date``
        (manual sheets), ``jobcode_id``, ``user_id``, ``notes``. Setting ``end`` on the running sheet
        clocks it out. The unpaid break inside a regular sheet is kept. Nothing changes unless every
        change is valid."""
        allowed = {"start", "end", "duration", "date", "jobcode_id", "user_id", "notes"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot edit {sorted(unknown)} of a timesheet; editable: {sorted(allowed)}")
        with self._lock:
            sheet = self._sheet(timesheet_id)
            user_id = int(changes.get("user_id", sheet.user_id))
            jobcode_id = int(changes.get("jobcode_id", sheet.jobcode_id))
            self._check_refs(user_id, jobcode_id)
            start, end, local_date, duration = sheet.start, sheet.end, sheet.local_date, sheet.duration
            if sheet.manual:
                if "start" in changes or "end" in changes:
                    raise ValueError("a manual timesheet has no start or end; change its date or duration")
                if "duration" in changes:
                    duration = self._positive_seconds(changes["duration"])
                if "date" in changes:
                    local_date = _as_date(changes["date"], "date")
            else:
                assert start is not None, "a regular timesheet has a start"
                if "date" in changes:
                    raise ValueError("the date of a regular timesheet follows its start; change start instead")
                if "end" in changes and changes["end"] in (None, ""):
                    raise ValueError("a timesheet cannot be put back on the clock")
                if "start" in changes:
                    start = _as_datetime(changes["start"], "start").astimezone(UTC)
                if "end" in changes:
                    end = _as_datetime(changes["end"], "end").astimezone(UTC)
                if "duration" in changes:
                    if end is None:
                        raise ValueError("a timesheet on the clock has no duration to set; set its end")
                    end = start + timedelta(
                        seconds=self._positive_seconds(changes["duration"]) + sheet.unpaid_break_seconds
                    )
                if end is not None and end <= start:
                    raise ValueError("end must be after start")
                local_date = start.astimezone(self.zone).date()
                if end is not None:
                    duration = int((end - start).total_seconds()) - sheet.unpaid_break_seconds
            sheet.user_id, sheet.jobcode_id = user_id, jobcode_id
            sheet.start, sheet.end, sheet.local_date, sheet.duration = start, end, local_date, duration
            if "notes" in changes:
                sheet.notes = str(changes["notes"])
            sheet.last_modified = self._endpoint_modified["timesheets"] = self._tick()
            return self._render_timesheet(sheet)

    @staticmethod
    def _positive_seconds(value: Any) -> int:
        seconds = int(value)
        if seconds <= 0:
            raise ValueError(f"duration must be a positive number of seconds, got {value!r}")
        return seconds

    def delete_timesheet(self, timesheet_id: int) -> dict[str, Any]:
        """Delete a live timesheet: it moves to /timesheets_deleted, stamped with the deletion time."""
        with self._lock:
            sheet = self._sheet(timesheet_id)
            del self._timesheets[sheet.id]
            moment = self._tick()
            sheet.last_modified = moment
            self._deleted[sheet.id] = sheet
            self._deleted = dict(sorted(self._deleted.items()))
            self._endpoint_modified["timesheets"] = self._endpoint_modified["timesheets_deleted"] = moment
            return self._render_timesheet(sheet, deleted=True)

    def add_timesheet(
        self,
        user_id: int,
        jobcode_id: int,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        date: date | str | None = None,
        duration: int | None = None,
        notes: str = "",
    ) -> dict[str, Any]:
        """Add a timesheet: regular with ``start`` (and ``end``, or none to leave it on the clock), or
        manual with ``date`` and ``duration``. A user can have only one sheet on the clock."""
        with self._lock:
            user_id, jobcode_id = int(user_id), int(jobcode_id)
            self._check_refs(user_id, jobcode_id)
            moment = self._tick()
            if start is not None:
                if date is not None or duration is not None:
                    raise ValueError("a regular timesheet takes start and end; date and duration follow from them")
                start_at = _as_datetime(start, "start").astimezone(UTC)
                end_at = _as_datetime(end, "end").astimezone(UTC) if end is not None and end != "" else None
                if end_at is not None and end_at <= start_at:
                    raise ValueError("end must be after start")
                if end_at is None and any(t.on_the_clock and t.user_id == user_id for t in self._timesheets.values()):
                    raise ValueError(f"user {user_id} is already on the clock")
                sheet = _Timesheet(
                    id=0,
                    user_id=user_id,
                    jobcode_id=jobcode_id,
                    local_date=start_at.astimezone(self.zone).date(),
                    start=start_at,
                    end=end_at,
                    duration=int((end_at - start_at).total_seconds()) if end_at else 0,
                    unpaid_break_seconds=0,
                    manual=False,
                    notes=notes,
                    created=moment,
                    last_modified=moment,
                    created_by_user_id=user_id,
                )
            else:
                if date is None or duration is None:
                    raise ValueError("a manual timesheet needs date and duration (or give start for a regular one)")
                sheet = _Timesheet(
                    id=0,
                    user_id=user_id,
                    jobcode_id=jobcode_id,
                    local_date=_as_date(date, "date"),
                    start=None,
                    end=None,
                    duration=self._positive_seconds(duration),
                    unpaid_break_seconds=0,
                    manual=True,
                    notes=notes,
                    created=moment,
                    last_modified=moment,
                    created_by_user_id=self.owner_user_id,
                )
            sheet.id = max([*self._timesheets, *self._deleted]) + 1
            self._timesheets[sheet.id] = sheet
            self._endpoint_modified["timesheets"] = moment
            return self._render_timesheet(sheet)

    def edit_user(self, user_id: int, **changes: Any) -> dict[str, Any]:
        """Change served fields of a user (e.g. ``pay_rate``, ``active``, ``term_date``, ``last_name``)."""
        with self._lock:
            user = self._users.get(int(user_id))
            if user is None:
                raise KeyError(f"company {self.company_id!r} has no user {user_id}")
            unknown = set(changes) - (set(user) - {"id", "last_modified", "created"})
            if unknown:
                raise ValueError(f"cannot edit {sorted(unknown)} of a user")
            user.update(copy.deepcopy(changes))
            moment = self._tick()
            user["last_modified"] = _utc_text(moment)
            self._endpoint_modified["users"] = moment
            return copy.deepcopy(user)

    def edit_jobcode(self, jobcode_id: int, **changes: Any) -> dict[str, Any]:
        """Change served fields of a jobcode (``name``, ``short_code``, ``active``, ...) and its custom
        field values through ``budget_hours`` (hours or None), ``status`` (open|completed|canceled,
        which also sets ``active`` unless given) and ``recurring`` (bool, top-level jobcodes)."""
        with self._lock:
            record = self._jobcodes.get(int(jobcode_id))
            if record is None:
                raise KeyError(f"company {self.company_id!r} has no jobcode {jobcode_id}")
            changes = dict(changes)
            values = record["customfields"]
            if "budget_hours" in changes:
                budget = changes.pop("budget_hours")
                values[str(self.budget_hours_field_id)] = _hours_text(None if budget in (None, "") else float(budget))
            if "status" in changes:
                status = str(changes.pop("status")).lower()
                if status not in JOB_STATUS_VALUES:
                    raise ValueError(f"status must be one of {sorted(JOB_STATUS_VALUES)}, got {status!r}")
                values[str(self.job_status_field_id)] = JOB_STATUS_VALUES[status]
                changes.setdefault("active", status == STATUS_OPEN)
            if "recurring" in changes:
                if record["parent_id"] != 0:
                    raise ValueError("only top-level jobcodes carry the Recurring field")
                values[str(self.recurring_field_id)] = "Yes" if changes.pop("recurring") else "No"
            unknown = set(changes) - (set(record) - {"id", "last_modified", "created", "customfields", "has_children"})
            if unknown:
                raise ValueError(f"cannot edit {sorted(unknown)} of a jobcode")
            record.update(copy.deepcopy(changes))
            self._parents_with_children = {j["parent_id"] for j in self._jobcodes.values()}
            moment = self._tick()
            record["last_modified"] = _utc_text(moment)
            self._endpoint_modified["jobcodes"] = moment
            return self._render_jobcode(record, with_customfields=True)

    # -- serving the vendor endpoints --------------------------------------------------------------------
    def _descendants(self, jobcode_ids: set[int]) -> set[int]:
        """The jobcodes named and every jobcode below them."""
        found = set(jobcode_ids)
        frontier = set(jobcode_ids)
        while frontier:
            frontier = {j["id"] for j in self._jobcodes.values() if j["parent_id"] in frontier} - found
            found |= frontier
        return found

    def _supplemental_for_sheets(self, sheets: Iterable[_Timesheet]) -> dict[str, Any]:
        user_ids, jobcode_ids = set(), set()
        for sheet in sheets:
            user_ids.add(sheet.user_id)
            jobcode_id = sheet.jobcode_id
            while jobcode_id in self._jobcodes and jobcode_id not in jobcode_ids:
                jobcode_ids.add(jobcode_id)
                jobcode_id = self._jobcodes[jobcode_id]["parent_id"]
        return {
            "users": {str(i): copy.deepcopy(self._users[i]) for i in sorted(user_ids) if i in self._users},
            "jobcodes": {
                str(i): self._render_jobcode(self._jobcodes[i], with_customfields=False) for i in sorted(jobcode_ids)
            },
        }

    def _sheet_filter(self, query: _Query) -> Callable[[_Timesheet], bool]:
        """The filters /timesheets and /timesheets_deleted share."""
        ids, user_ids = query.ids("ids"), query.ids("user_ids")
        jobcode_ids = query.ids("jobcode_ids")
        jobcodes = self._descendants(jobcode_ids) if jobcode_ids is not None else None
        start_date, end_date = query.date("start_date"), query.date("end_date")
        since, before = query.modified_window()

        def keep(sheet: _Timesheet) -> bool:
            return (
                (ids is None or sheet.id in ids)
                and (user_ids is None or sheet.user_id in user_ids)
                and (jobcodes is None or sheet.jobcode_id in jobcodes)
                and (start_date is None or sheet.local_date >= start_date)
                and (end_date is None or sheet.local_date <= end_date)
                and _within(sheet.last_modified, since, before)
            )

        return keep

    def _serve(self, endpoint: str, query: _Query) -> dict[str, Any]:
        with self._lock:
            return getattr(self, f"_serve_{endpoint}")(query)

    def _page(
        self,
        name: str,
        records: list[Any],
        query: _Query,
        render: Callable[[Any], dict[str, Any]],
        supplemental: Callable[[list[Any]], dict[str, Any]] = lambda _: {},
    ) -> dict[str, Any]:
        page, limit = query.paging()
        with_supplemental = query.choice("supplemental_data", ("yes", "no"), "yes") == "yes"
        records = sorted(records, key=lambda r: r.id if isinstance(r, _Timesheet) else r["id"])
        chosen = records[(page - 1) * limit : page * limit]
        body: dict[str, Any] = {
            "results": {name: {str(rendered["id"]): rendered for rendered in map(render, chosen)}},
            "more": page * limit < len(records),
        }
        if with_supplemental:
            body["supplemental_data"] = supplemental(chosen)
        return body

    def _serve_current_user(self, query: _Query) -> dict[str, Any]:
        owner = copy.deepcopy(self._users[self.owner_user_id])
        return {"results": {"users": {str(owner["id"]): owner}}, "more": False, "supplemental_data": {}}

    def _serve_users(self, query: _Query) -> dict[str, Any]:
        ids = query.ids("ids")
        active = query.choice("active", ("yes", "no", "both"), "yes")
        since, before = query.modified_window()
        chosen = [
            u
            for u in self._users.values()
            if (ids is None or u["id"] in ids)
            and _active_matches(u["active"], active)
            and _within(datetime.fromisoformat(u["last_modified"]), since, before)
        ]
        return self._page("users", chosen, query, copy.deepcopy)

    def _serve_jobcodes(self, query: _Query) -> dict[str, Any]:
        ids = query.ids("ids")
        parent_text = query.text("parent_ids") or "-1"
        parents = None if parent_text.strip() == "-1" else query.ids("parent_ids")
        kind = query.choice("type", ("regular", "pto", "paid_break", "unpaid_break", "all"), "regular")
        active = query.choice("active", ("yes", "no", "both"), "yes")
        with_customfields = query.flag("customfields", False)
        since, before = query.modified_window()
        chosen = [
            j
            for j in self._jobcodes.values()
            if (ids is None or j["id"] in ids)
            and (parents is None or j["parent_id"] in parents)
            and kind in ("all", j["type"])
            and _active_matches(j["active"], active)
            and _within(datetime.fromisoformat(j["last_modified"]), since, before)
        ]

        def supplemental(_page_records: list[dict[str, Any]]) -> dict[str, Any]:
            # The custom field definitions the values refer to, whatever the page holds.
            if not with_customfields:
                return {}
            return {"customfields": {str(f["id"]): copy.deepcopy(f) for f in self._customfields.values()}}

        return self._page(
            "jobcodes",
            chosen,
            query,
            lambda j: self._render_jobcode(j, with_customfields=with_customfields),
            supplemental,
        )

    def _serve_customfields(self, query: _Query) -> dict[str, Any]:
        ids = query.ids("ids")
        applies_to = query.choice("applies_to", ("timesheet", "user", "jobcode", "all"), "timesheet")
        active = query.choice("active", ("yes", "no", "both"), "yes")
        since, before = query.modified_window()
        chosen = [
            f
            for f in self._customfields.values()
            if (ids is None or f["id"] in ids)
            and applies_to in ("all", f["applies_to"])
            and _active_matches(f["active"], active)
            and _within(datetime.fromisoformat(f["last_modified"]), since, before)
        ]
        return self._page("customfields", chosen, query, copy.deepcopy)

    def _serve_timesheets(self, query: _Query) -> dict[str, Any]:
        if not any(query.text(name) for name in ("ids", "start_date", "modified_since", "modified_before")):
            raise _ApiError(417, "One of ids, start_date, modified_since or modified_before must be supplied")
        on_the_clock = query.choice("on_the_clock", ("yes", "no", "both"), "no")
        keep = self._sheet_filter(query)
        chosen = [
            t
            for t in self._timesheets.values()
            if keep(t) and (on_the_clock == "both" or t.on_the_clock == (on_the_clock == "yes"))
        ]
        return self._page("timesheets", chosen, query, self._render_timesheet, self._supplemental_for_sheets)

    def _serve_timesheets_deleted(self, query: _Query) -> dict[str, Any]:
        has_start, has_end = query.text("start_date") is not None, query.text("end_date") is not None
        if has_start != has_end:
            raise _ApiError(417, "start_date and end_date must be supplied together")
        if not (has_start or any(query.text(n) for n in ("ids", "modified_since", "modified_before"))):
            raise _ApiError(
                417, "One of ids, start_date and end_date, modified_since or modified_before must be supplied"
            )
        keep = self._sheet_filter(query)
        chosen = [t for t in self._deleted.values() if keep(t)]
        return self._page(
            "timesheets_deleted",
            chosen,
            query,
            lambda t: self._render_timesheet(t, deleted=True),
            self._supplemental_for_sheets,
        )

    def _serve_last_modified_timestamps(self, query: _Query) -> dict[str, Any]:
        stamps = self.last_modified_timestamps()
        wanted_text = query.text("endpoints")
        wanted = (
            [w.strip() for w in wanted_text.split(",") if w.strip()] if wanted_text else list(LAST_MODIFIED_ENDPOINTS)
        )
        unknown = [w for w in wanted if w not in stamps]
        if unknown:
            raise _ApiError(417, f"endpoints has unknown names {unknown}; known: {', '.join(LAST_MODIFIED_ENDPOINTS)}")
        return {"results": {"last_modified_timestamps": {name: stamps[name] for name in wanted}}}


# -- faults ---------------------------------------------------------------------------------------------
class QuickBooksTimeFaults(Faults):
    """The shared fault switches (``protiv_emulators.server.Faults``); nothing QBT-only."""


# -- the server --------------------------------------------------------------------------------------
@dataclass
class _RateWindow:
    started: float
    calls: int = 0


@dataclass(frozen=True)
class OAuthClient:
    """An app registered with the vendor for the authorization code flow.

    ``redirect_uris`` are compared exactly (scheme, host, port, path and query) with the one an
    authorization request names; ``name`` is what the consent page calls the app.
    """

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...]
    name: str = ""


@dataclass
class _AuthorizationCode:
    client_id: str
    redirect_uri: str
    company_id: str
    expires_at: float  # time.monotonic()
    used: bool = False


def _check_redirect_uri(uri: str) -> str:
    if not isinstance(uri, str):
        raise ValueError(f"a redirect URI must be text, got {uri!r}")
    split = urlsplit(uri)
    if split.scheme not in ("http", "https") or not split.netloc:
        raise ValueError(f"a redirect URI must be an absolute http(s) URL, got {uri!r}")
    if split.fragment or uri.endswith("#"):
        raise ValueError(f"a redirect URI cannot have a fragment, got {uri!r}")
    return uri


def _with_query(uri: str, params: Mapping[str, str]) -> str:
    """``uri`` with ``params`` added to its query (a registered URI may carry a query of its own)."""
    split = urlsplit(uri)
    added = urlencode(params)
    return urlunsplit(split._replace(query=f"{split.query}&{added}" if split.query else added))


_PAGE_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:36em;margin:3em auto;padding:0 1em;color:#222}"
    "h1{font-size:1.4em}button{margin:1em 1em 0 0;padding:.5em 1.5em;font-size:1em}"
    "select{font-size:1em;margin-left:.5em}small{color:#666}"
)


def _html_page(title: str, body: str) -> bytes:
    """A plain page: no script, no external resource. ``body`` is HTML already escaped by the caller."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{_PAGE_STYLE}</style>\n</head>\n<body>\n{body}\n"
        "<p><small>QuickBooks Time emulator (Protiv development): this page stands in for the vendor's "
        "sign-in and consent screen.</small></p>\n</body>\n</html>\n"
    ).encode()


_PAGED_ENDPOINTS = ("users", "jobcodes", "customfields", "timesheets", "timesheets_deleted")
_VENDOR_GET_ENDPOINTS = ("current_user", *_PAGED_ENDPOINTS, "last_modified_timestamps")


class QuickBooksTimeEmulator(VendorEmulator):
    """A QuickBooks Time API on loopback hosting any number of companies, each behind its own token.

    Nothing listens until ``start()`` (or ``with QuickBooksTimeEmulator() as emulator:``).
    """

    thread_name = "qbt-emulator"
    faults_class = QuickBooksTimeFaults

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        rate_limit_per_5_minutes: int | None = None,
        access_token_lifetime_seconds: int = ACCESS_TOKEN_LIFETIME_SECONDS,
        oauth_clients: Iterable[OAuthClient] = (),
        authorization_code_lifetime_seconds: float = AUTHORIZATION_CODE_LIFETIME_SECONDS,
    ):
        super().__init__(host, port)
        self.rate_limit_per_5_minutes = rate_limit_per_5_minutes
        self.access_token_lifetime_seconds = access_token_lifetime_seconds
        # Read when a code is issued: a test may shorten it on a running emulator.
        self.authorization_code_lifetime_seconds = authorization_code_lifetime_seconds
        self._rate_windows: dict[str, _RateWindow] = {}
        self._oauth_clients: dict[str, OAuthClient] = {}
        self._codes: dict[str, _AuthorizationCode] = {}
        for client in oauth_clients:
            self.register_oauth_client(
                client.client_id, client.redirect_uris, client_secret=client.client_secret, name=client.name
            )

    # -- addresses (start, stop, root_url and control_url come from the base classes) -------------
    @property
    def base_url(self) -> str:
        """What a client uses instead of https://rest.tsheets.com/api/v1."""
        return self.root_url + API_PREFIX

    # -- companies --------------------------------------------------------------------------------------
    def add_company(
        self,
        data: CompanyData,
        access_token: str | None = None,
        refresh_token: str | None = None,
        client_id: str = "protiv-demo",
        client_secret: str | None = None,
    ) -> str:
        """Host a generated company; returns its access token (a new random one unless given).

        The refresh token and client secret (random unless given) are on ``company(...)`` for
        tests of the ``/grant`` refresh flow.
        """
        company = QuickBooksTimeCompany(
            data,
            access_token=access_token or secrets.token_urlsafe(32),
            refresh_token=refresh_token or secrets.token_urlsafe(32),
            client_id=client_id,
            client_secret=client_secret or secrets.token_urlsafe(24),
            token_lifetime_seconds=self.access_token_lifetime_seconds,
        )
        self._host(
            data.company_id,
            company,
            lambda other: other.access_token == company.access_token,
            "that access token already belongs to another company",
        )
        return company.access_token

    def company(self, token_or_company_id: str) -> QuickBooksTimeCompany:
        """A hosted company's live state, by its company id or one of its current access tokens
        (the first pair's or one an OAuth client got)."""
        with self._lock:
            if token_or_company_id in self._companies:
                return self._companies[token_or_company_id]
        for company in self._hosted():
            if company.access_token_status(token_or_company_id) is not None:
                return company
        raise KeyError("no hosted company has that company id or access token")

    def _tokens_of(self, company_id: str) -> list[str]:
        company = self.company(company_id)
        return [company.access_token, *company.oauth_access_tokens]

    # -- OAuth clients (the authorization code flow) ----------------------------------------------
    def register_oauth_client(
        self,
        client_id: str,
        redirect_uris: Iterable[str] | str,
        *,
        client_secret: str | None = None,
        name: str = "",
    ) -> OAuthClient:
        """Register an app for the authorization code flow (or replace the one with that client id).

        ``redirect_uris`` are the absolute http(s) URLs the app may be sent back to (one URL as text
        is taken as a list of one); the secret is random unless given. Returns the client, secret
        included.
        """
        if not isinstance(client_id, str) or not client_id.strip():
            raise ValueError("client_id must be non-empty text")
        uris = tuple(
            _check_redirect_uri(u) for u in ([redirect_uris] if isinstance(redirect_uris, str) else redirect_uris)
        )
        if not uris:
            raise ValueError("an OAuth client needs at least one redirect URI")
        if client_secret is not None and (not isinstance(client_secret, str) or not client_secret):
            raise ValueError("client_secret must be non-empty text")
        client = OAuthClient(client_id, client_secret or secrets.token_urlsafe(24), uris, str(name or ""))
        with self._lock:
            self._oauth_clients[client_id] = client
        return client

    def oauth_client(self, client_id: str) -> OAuthClient:
        with self._lock:
            try:
                return self._oauth_clients[client_id]
            except KeyError:
                raise KeyError(f"no OAuth client {client_id!r} is registered") from None

    def authorize_url(self, client_id: str, redirect_uri: str, state: str | None = None, **extra: str) -> str:
        """Where an app sends the admin's browser: ``<base_url>/authorize?response_type=code&...``."""
        params = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri}
        if state is not None:
            params["state"] = state
        return f"{self.base_url}/authorize?{urlencode({**params, **extra})}"

    # -- answering vendor requests (faults, latency and the log are VendorEmulator's) ---------------
    def _is_vendor_path(self, path: str) -> bool:
        return path.startswith(API_PREFIX + "/")

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": {"code": status, "message": message}}

    def _empty_page(self, answer: Answer) -> Answer:
        """No records, ``more`` true and empty supplemental data: the client goes on to the next page.

        The page's own records are skipped (page numbers keep their offsets), as when the vendor
        leaves out records between counting and rendering a page.
        """
        body = answer.body
        empty: dict[str, Any] = {"results": {name: {} for name in body["results"]}, "more": True}
        if "supplemental_data" in body:
            empty["supplemental_data"] = {}
        return Answer(200, empty, page=True)

    def _answer_vendor(self, request: Request) -> Answer:
        method, endpoint, query, headers, body = (
            request.method,
            request.path[len(API_PREFIX) + 1 :],
            request.query,
            request.headers,
            request.body,
        )
        try:
            if endpoint == "grant":
                if method != "POST":
                    raise _ApiError(405, "Method Not Allowed: use POST for /grant")
                return Answer(200, self._grant(body), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
            if endpoint == "authorize":
                if method not in ("GET", "POST"):
                    raise _ApiError(405, "Method Not Allowed: use GET (or POST the consent form) for /authorize")
                return self._authorize(request)
            if endpoint not in _VENDOR_GET_ENDPOINTS:
                raise _ApiError(404, f"Not Found: /{endpoint} is not an endpoint of this API")
            company, token = self._authenticate(headers)
            self._enforce_rate_limit(token)
            if method != "GET":
                raise _ApiError(405, f"Method Not Allowed: the emulator serves only GET on /{endpoint}")
            return Answer(200, company._serve(endpoint, _Query(query)), page=endpoint in _PAGED_ENDPOINTS)
        except _ApiError as error:
            return Answer(error.status, error.body)

    def _authenticate(self, headers: Message) -> tuple[QuickBooksTimeCompany, str]:
        authorization = headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _ApiError(401, "Unauthorized: send 'Authorization: Bearer <access token>'")
        company, status = None, None
        for hosted in self._hosted():
            status = hosted.access_token_status(token)
            if status is not None:
                company = hosted
                break
        if company is None:
            raise _ApiError(401, "Unauthorized: the access token is not valid")
        if self.faults.is_expired(token) or status == "expired":
            raise _ApiError(401, "Unauthorized: the access token has expired; refresh it through /grant")
        return company, token

    def _enforce_rate_limit(self, token: str) -> None:
        if self.rate_limit_per_5_minutes is None:
            return
        now = time.monotonic()
        with self._lock:
            window = self._rate_windows.get(token)
            if window is None or now - window.started >= RATE_LIMIT_WINDOW_SECONDS:
                window = self._rate_windows[token] = _RateWindow(now)
            window.calls += 1
            over = window.calls > self.rate_limit_per_5_minutes
        if over:
            raise _ApiError(429, "Too Many Requests")

    def _grant(self, body: bytes) -> dict[str, Any]:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        grant_type = form.get("grant_type", "")
        if grant_type == "authorization_code":
            return self._grant_authorization_code(form)
        if grant_type != "refresh_token":
            raise _ApiError(
                400,
                "unsupported",
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be authorization_code or refresh_token",
                },
            )
        self._require(form, "client_id", "client_secret", "refresh_token")
        refresh = form["refresh_token"]
        company = next((c for c in self._hosted() if _same(c.refresh_token, refresh)), None)
        if company is not None:
            if company.client_id != form["client_id"] or not _same(company.client_secret, form["client_secret"]):
                raise self._invalid_refresh()
            old_token = company.access_token
            access_token, refresh_token = company.rotate_tokens()
        else:
            # A pair an OAuth client got through the authorization code flow: that client's credentials.
            holder = next(
                (c for c in self._hosted() if c.oauth_client_of_refresh_token(refresh) == form["client_id"]), None
            )
            rotated = holder.rotate_oauth_grant(refresh) if holder and self._client_secret_matches(form) else None
            if holder is None or rotated is None:
                raise self._invalid_refresh()
            company = holder
            old_token, access_token, refresh_token = rotated
        self.faults.forget_token(old_token)
        return self._token_answer(company, access_token, refresh_token)

    def _grant_authorization_code(self, form: Mapping[str, str]) -> dict[str, Any]:
        with self._lock:
            any_client = bool(self._oauth_clients)
        if not any_client:
            # As before the flow was emulated: an emulator without an OAuth client has no use for it.
            raise _ApiError(
                400,
                "unsupported",
                {
                    "error": "unsupported_grant_type",
                    "error_description": "no OAuth client is registered on this emulator, so it cannot issue "
                    "authorization codes (register one: register_oauth_client or POST /_emulator/oauth_clients)",
                },
            )
        self._require(form, "client_id", "client_secret", "code", "redirect_uri")
        if not self._client_secret_matches(form):
            raise _ApiError(
                401,
                "invalid client",
                {"error": "invalid_client", "error_description": "the client id or client secret is not valid"},
            )
        now = time.monotonic()
        with self._lock:
            pending = self._codes.get(form["code"])
            if pending is None:
                problem = "the authorization code is not valid"
            elif pending.used:
                problem = "the authorization code has already been used"
            elif now >= pending.expires_at:
                problem = "the authorization code has expired"
            elif pending.client_id != form["client_id"]:
                problem = "the authorization code was issued to another client"
            elif pending.redirect_uri != form["redirect_uri"]:
                problem = "redirect_uri differs from the one of the authorization request"
            else:
                problem = ""
                pending.used = True  # single use; kept until it expires so a reuse is told as such
        if problem:
            raise _ApiError(400, "invalid grant", {"error": "invalid_grant", "error_description": problem})
        assert pending is not None
        company = self.company(pending.company_id)
        access_token, refresh_token = company.issue_oauth_grant(pending.client_id)
        return self._token_answer(company, access_token, refresh_token)

    @staticmethod
    def _require(form: Mapping[str, str], *names: str) -> None:
        missing = [name for name in names if not form.get(name)]
        if missing:
            raise _ApiError(
                400,
                "invalid request",
                {"error": "invalid_request", "error_description": f"missing {', '.join(missing)}"},
            )

    def _client_secret_matches(self, form: Mapping[str, str]) -> bool:
        with self._lock:
            client = self._oauth_clients.get(form["client_id"])
        return client is not None and _same(client.client_secret, form["client_secret"])

    @staticmethod
    def _invalid_refresh() -> _ApiError:
        return _ApiError(
            401,
            "invalid grant",
            {
                "error": "invalid_grant",
                "error_description": "the refresh token, client id or client secret is not valid",
            },
        )

    @staticmethod
    def _token_answer(company: QuickBooksTimeCompany, access_token: str, refresh_token: str) -> dict[str, Any]:
        return {
            "access_token": access_token,
            "expires_in": company.token_lifetime_seconds,
            "token_type": "bearer",
            "scope": "",
            "refresh_token": refresh_token,
            "user_id": str(company.owner_user_id),
            "company_id": company.vendor_company_id,
            "client_url": company.client_url,
        }

    # -- the authorization endpoint: the admin's browser, the consent page, the redirect back ------
    def _authorize(self, request: Request) -> Answer:
        params = dict(request.query)
        if request.method == "POST":  # the consent form, posted back
            posted = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
            params.update({name: values[0] for name, values in posted.items()})
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        with self._lock:
            client = self._oauth_clients.get(client_id)
        # Without a known client and one of its redirect URIs nobody may be sent anywhere: a page says why.
        if not client_id:
            return self._error_page(400, "The request names no client_id.")
        if client is None:
            return self._error_page(400, f"No app with client_id {client_id!r} is registered.")
        if not redirect_uri:
            return self._error_page(400, "The request names no redirect_uri.")
        if redirect_uri not in client.redirect_uris:
            return self._error_page(
                400, f"The redirect_uri {redirect_uri!r} is not registered for the app {client.name or client_id!r}."
            )
        state = params.get("state")  # echoed exactly when the request has one

        def back(**answer: str) -> Answer:
            return self._redirect(_with_query(redirect_uri, answer if state is None else {**answer, "state": state}))

        if not params.get("response_type"):
            return back(error="invalid_request")
        if params["response_type"] != "code":
            return back(error="unsupported_response_type")
        companies: list[QuickBooksTimeCompany] = self._hosted()
        if not companies:
            return self._error_page(503, "The emulator hosts no company, so nobody can approve the app.")
        if request.method == "POST":
            decision = params.get("decision", "")
            if decision not in ("approve", "deny"):
                return self._error_page(400, "Answer with the Approve or the Deny button.")
        else:
            approve = params.get("approve")  # the emulator's shortcut, no page: approve=yes or approve=no
            if approve is None:
                return self._consent_page(client, params, companies)
            if approve.lower() not in ("yes", "no"):
                return self._error_page(400, "approve must be yes or no.")
            decision = "approve" if approve.lower() == "yes" else "deny"
        if decision == "deny":
            return back(error="access_denied")
        company_id = params.get("company_id", "")
        if not company_id and len(companies) > 1:
            return self._error_page(400, "Several companies are hosted: choose one (company_id).")
        company = next((c for c in companies if c.company_id == company_id), None) if company_id else companies[0]
        if company is None:
            return self._error_page(400, f"The emulator hosts no company {company_id!r}.")
        return back(code=self._issue_code(client.client_id, redirect_uri, company.company_id))

    def _issue_code(self, client_id: str, redirect_uri: str, company_id: str) -> str:
        code = secrets.token_urlsafe(24)
        now = time.monotonic()
        with self._lock:
            for stale in [c for c, pending in self._codes.items() if pending.expires_at <= now]:
                del self._codes[stale]
            self._codes[code] = _AuthorizationCode(
                client_id, redirect_uri, company_id, now + self.authorization_code_lifetime_seconds
            )
        return code

    def _consent_page(
        self, client: OAuthClient, params: Mapping[str, str], companies: list[QuickBooksTimeCompany]
    ) -> Answer:
        def e(text: str) -> str:
            return html.escape(text, quote=True)

        hidden = "".join(
            f'<input type="hidden" name="{name}" value="{e(params[name])}">\n'
            for name in ("response_type", "client_id", "redirect_uri", "state")
            if name in params
        )
        wanted = params.get("company_id", "")
        if len(companies) == 1:
            only = companies[0]
            chooser = (
                f"<p>Company: <strong>{e(only.data.name)}</strong> ({e(only.company_id)})</p>\n"
                f'<input type="hidden" name="company_id" value="{e(only.company_id)}">\n'
            )
        else:
            options = "".join(
                f'<option value="{e(c.company_id)}"{" selected" if c.company_id == wanted else ""}>'
                f"{e(c.data.name)} ({e(c.company_id)})</option>\n"
                for c in companies
            )
            chooser = f'<p><label for="company_id">Company</label>\n<select id="company_id" name="company_id">\n{options}</select></p>\n'
        app = e(client.name or client.client_id)
        body = (
            "<h1>QuickBooks Time</h1>\n"
            f"<p><strong>{app}</strong> (client id <code>{e(client.client_id)}</code>) asks to connect to your "
            "QuickBooks Time account: it will be able to read your company's users, jobcodes, custom fields and "
            "timesheets.</p>\n"
            f'<form method="post" action="{API_PREFIX}/authorize">\n{hidden}{chooser}'
            f"<p>Either answer sends you back to <code>{e(params['redirect_uri'])}</code>.</p>\n"
            '<button type="submit" name="decision" value="approve">Approve</button>\n'
            '<button type="submit" name="decision" value="deny">Deny</button>\n'
            "</form>"
        )
        return Answer(
            200,
            raw=_html_page(f"Connect {client.name or client.client_id} to QuickBooks Time", body),
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Frame-Options": "DENY"},
        )

    @staticmethod
    def _error_page(status: int, message: str) -> Answer:
        body = f"<h1>QuickBooks Time: the app cannot be connected</h1>\n<p>{html.escape(message)}</p>"
        return Answer(
            status,
            raw=_html_page("Authorization error", body),
            content_type="text/html; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    @staticmethod
    def _redirect(location: str) -> Answer:
        link = html.escape(location, quote=True)
        return Answer(
            302,
            raw=f'<!DOCTYPE html>\n<p>Redirecting to <a href="{link}">{link}</a></p>\n'.encode(),
            content_type="text/html; charset=utf-8",
            headers={"Location": location, "Cache-Control": "no-store"},
        )

    # -- answering control requests (status, faults and the parsing are VendorEmulator's) ----------
    def _control_route(
        self, method: str, parts: list[str], payload: dict[str, Any], company_id: str | None
    ) -> Answer | None:
        if parts == ["oauth_clients"] and method == "POST":
            client = self.register_oauth_client(**payload)
            return Answer(200, {**asdict(client), "redirect_uris": list(client.redirect_uris)})
        if parts == ["timesheets"] and method == "POST":
            company = self._control_company(company_id)
            return Answer(200, company.add_timesheet(**payload))
        if len(parts) == 3 and parts[0] in ("timesheets", "users", "jobcodes") and method == "POST":
            kind, record_id, action = parts[0], int(parts[1]), parts[2]
            company = self._control_company(company_id, lambda c: c.has_record(kind, record_id), f"{kind} {record_id}")
            if kind == "timesheets" and action == "delete":
                return Answer(200, company.delete_timesheet(record_id))
            if action == "edit":
                edit = {
                    "timesheets": company.edit_timesheet,
                    "users": company.edit_user,
                    "jobcodes": company.edit_jobcode,
                }[kind]
                return Answer(200, edit(record_id, **payload))
        return None


__all__ = [
    "BUDGET_HOURS_FIELD",
    "JOB_STATUS_FIELD",
    "RECURRING_FIELD",
    "TZ_STR_BY_ZONE",
    "LoggedRequest",
    "OAuthClient",
    "QuickBooksTimeCompany",
    "QuickBooksTimeEmulator",
    "QuickBooksTimeFaults",
]
