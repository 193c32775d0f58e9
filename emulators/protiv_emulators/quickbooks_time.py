"""A QuickBooks Time (formerly TSheets) REST API v1 emulator: a real HTTP server on loopback.

The vendor cannot be reached from the sandbox, so this server speaks its protocol for generated
companies (``protiv_emulators.generator``). Pointing a client at ``emulator.base_url`` instead
of ``https://rest.tsheets.com/api/v1`` must be the only difference. Standard library only.

What is emulated (documented by the vendor)
-------------------------------------------
- ``Authorization: Bearer <access token>``; a missing, unknown or expired token gets 401
  ``{"error": {"code": 401, "message": ...}}``. Tokens never appear in any answer body or log.
- ``POST /grant`` (form-urlencoded) with ``grant_type=refresh_token``, ``client_id``,
  ``client_secret`` and ``refresh_token``: new access and refresh tokens, the old pair stops working.
  A wrong client or refresh token gets 401 ``{"error": "invalid_grant", "error_description": ...}``.
  ``grant_type=authorization_code`` gets 400 ``unsupported_grant_type``: the browser consent step is
  not emulated; companies are connected with the tokens ``add_company`` returns.
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
  (``emulator.faults``) apply to every ``/api/v1`` request, ``/grant`` included.

What is inferred (not documented; change here if the real service disagrees)
--------------------------------------------------------------------------
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

Each answers with the record as the vendor API now serves it. Control calls are not counted in
``request_log``, and faults never apply to them.
"""

from __future__ import annotations

import copy
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import Message
from typing import Any
from urllib.parse import parse_qs
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
                end_at = _as_datetime(end, "end").astimezone(UTC) if end not in (None, "") else None
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
    ):
        super().__init__(host, port)
        self.rate_limit_per_5_minutes = rate_limit_per_5_minutes
        self.access_token_lifetime_seconds = access_token_lifetime_seconds
        self._rate_windows: dict[str, _RateWindow] = {}

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
        """A hosted company's live state, by its current access token or its company id."""
        with self._lock:
            if token_or_company_id in self._companies:
                return self._companies[token_or_company_id]
            for company in self._companies.values():
                if secrets.compare_digest(company.access_token, token_or_company_id):
                    return company
        raise KeyError("no hosted company has that company id or access token")

    def _tokens_of(self, company_id: str) -> list[str]:
        return [self.company(company_id).access_token]

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
                return Answer(200, self._grant(body))
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
        with self._lock:
            company = next((c for c in self._companies.values() if secrets.compare_digest(c.access_token, token)), None)
        if company is None:
            raise _ApiError(401, "Unauthorized: the access token is not valid")
        if self.faults.is_expired(token) or company.token_expired_naturally():
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
            raise _ApiError(
                400,
                "unsupported",
                {
                    "error": "unsupported_grant_type",
                    "error_description": "the emulator does not run the browser consent step; "
                    "use the tokens given when the company was added, and grant_type=refresh_token",
                },
            )
        if grant_type != "refresh_token":
            raise _ApiError(
                400,
                "unsupported",
                {
                    "error": "unsupported_grant_type",
                    "error_description": "grant_type must be refresh_token",
                },
            )
        missing = [name for name in ("client_id", "client_secret", "refresh_token") if not form.get(name)]
        if missing:
            raise _ApiError(
                400,
                "invalid request",
                {
                    "error": "invalid_request",
                    "error_description": f"missing {', '.join(missing)}",
                },
            )
        with self._lock:
            company = next(
                (c for c in self._companies.values() if secrets.compare_digest(c.refresh_token, form["refresh_token"])),
                None,
            )
        valid_client = (
            company is not None
            and company.client_id == form["client_id"]
            and secrets.compare_digest(company.client_secret, form["client_secret"])
        )
        if company is None or not valid_client:
            raise _ApiError(
                401,
                "invalid grant",
                {
                    "error": "invalid_grant",
                    "error_description": "the refresh token, client id or client secret is not valid",
                },
            )
        old_token = company.access_token
        access_token, refresh_token = company.rotate_tokens()
        self.faults.forget_token(old_token)
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

    # -- answering control requests (status, faults and the parsing are VendorEmulator's) ----------
    def _control_route(
        self, method: str, parts: list[str], payload: dict[str, Any], company_id: str | None
    ) -> Answer | None:
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
    "QuickBooksTimeCompany",
    "QuickBooksTimeEmulator",
    "QuickBooksTimeFaults",
]
