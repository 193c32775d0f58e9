"""A BusyBusy emulator: the REST login and the GraphQL API on one loopback HTTP server.

BusyBusy publishes no API reference, so this server follows the project's decision (vendor notes,
BusyBusy section) and serves generated companies (``protiv_emulators.generator``) in that
shape. Pointing a client at ``emulator.rest_url`` / ``emulator.graphql_url`` instead of
``https://api.busybusy.io`` / ``https://graphql.busybusy.io/`` must be the only difference.

URL layout: one host, the legacy REST API under ``/rest`` and GraphQL at ``/graphql``
(``protiv_dagster/vendors/busybusy/client.py`` derives the GraphQL URL from a REST base ending in ``/rest`` the same way).

What is emulated (seen in BusyBusy's own or third-party client code)
--------------------------------------------------------------------
- Login: ``GET /rest/member?username=<u>&_version=3.2`` with
  ``Authorization: Basic base64(username + ":" + sha256hex(password))`` answers the legacy envelope
  ``{"success": true, "code": [], "data": [<member>], "public_key": <session key>, ...}``. A wrong
  username or password answers 401 ``{"success": false, "code": [401], "debug": {"errors": [...]}}``.
  Session keys never expire on their own; ``change_password`` kills every key of the company (401
  afterwards), and the ``expire_token`` fault one key.
- GraphQL: ``POST /graphql`` with JSON ``{query, variables, operationName}`` and the header
  ``key-authorization: <key>`` (no "Bearer"). A missing or dead key is HTTP 401. Everything else,
  including unknown fields, bad filters and bad cursors, is HTTP 200 with ``errors[].message`` and
  ``data`` null: the schema is real (graphql-core SDL below), so validation errors are the genuine ones
  and introspection (``__schema``) works.
- Root lists ``(filter, first, after, sort)`` return plain lists whose items carry ``cursor``; paging is
  keyset paging on (sort values, id), so records inserted or deleted between pages never make a page
  skip or repeat a record that existed before.
- Timestamps are ISO 8601 UTC text ``YYYY-MM-DDTHH:MM:SSZ``; ids are UUIDs.

What is inferred (not confirmed; all of it is in ``SDL`` and the constants below)
--------------------------------------------------------------------------------
- The ``timeEntries`` root, its filter/sort type names and fields, and the filter operator names,
  which are only the ones the vendor notes name: ``equal``, ``contains`` (an IN list), ``isNull`` and
  ``greaterThanOrEqual``. A ``lessThan`` or strict ``greaterThan`` is a validation error, as is any
  field no source names (a root-project field, a cost budget's ``createdOn``, ``isLatest`` as a
  field): the record stores may hold more than the schema serves. Real introspection decides.
- ``first`` is capped at ``MAX_PAGE_SIZE`` (500); without ``first`` a root returns every match.
  The default order is ``id`` ascending; ``sort`` is a list of single-key objects (``asc``/``desc``).
- ``wageRate`` codes (``WAGE_RATE_CODES``) and ``actionType`` codes (``ACTION_TYPES``).
- The HTTP ``Date`` header of a GraphQL answer is the company's (frozen) clock, which a client uses to
  count a running entry's hours. Real servers send their own time there.

How generated companies are shown
---------------------------------
- Members: every worker; ``archivedOn`` is set for inactive workers (17:00 local on the term date,
  or on the last modification). ``wageHistories`` is the worker's wage history (the generator's
  ``wage_history``: the hire-date wage and, for some, a raise a few days ago), each record effective
  (``changeDate``) at local midnight of its date: ``wage`` per hour (``wageRate`` 10) or per year for
  salaried staff (``wageRate`` 40). Every seventh worker (from the second) also has a *deleted*
  wrong record of $99.99, which is no wage.
- Projects: jobs are top-level projects (``depth`` 1, ``parentProjectId`` null), milestones are
  sub-projects (``depth`` 2). Completed and canceled ones have ``archivedOn``. ``projectInfo.number``
  is the job's short code. The drive job is the top-level project titled ``Drive Time``.
- Cost codes: ``COST_CODES`` plus one per line-item name of the generator (``TASK_COST_CODES``, the
  organization-wide list of ``generator.TASK_NAMES``).
- Drive convention: drive shifts are on the ``Drive Time`` project AND carry the cost code ``Drive``
  (``DRIVE_COST_CODE``); work shifts carry ``Labor``; manual entries carry none. A shift on a
  milestone booked to a line item (``Shift.task_id``) carries that line item's cost code instead,
  manual or not.
- Budgets: ``budgetHours`` (``budgetSeconds`` = hours x 3600, ``costCodeId`` null, ``isLatest`` true)
  for every job or milestone with a budget, plus one superseded (``isLatest`` false) record on the
  first budgeted project; ``budgetCosts`` at ``COST_PER_BUDGET_HOUR`` $ per budgeted hour. Each
  line item of a job is a budget row of the job's project WITH the line item's ``costCodeId``
  (hours and cost alike): a cost code's budget, not part of the project's own.
- Time entries: every shift, the deleted duplicates with ``deletedOn`` set. Manual shifts become
  entries from 07:00 local on their date lasting their duration (``actionType`` manual). The running
  shift has ``endTime`` null. A lunch break is a ``breaks`` item. ``submittedOn`` is set for entries
  that ended more than two days before the frozen clock.

The control API (not the vendor's; no authentication; loopback clients only)
---------------------------------------------------------------------------
- ``GET  /_emulator/status`` -> ``{"request_count": n, "company_ids": [...]}``
- ``POST /_emulator/faults`` ``{"action": "rate_limit"|"server_error"|"latency"|"drop_connection"|
  "read_timeout"|"truncated_json"|"invalid_json"|"empty_page"|"between_pages"|"expire_token"|
  "graphql_error"|"clear", ...}`` (same options as ``BusyBusyFaults``, the shared faults of
  ``protiv_emulators.server`` plus ``graphql_error``; ``between_pages`` takes ``after_pages``
  and ``control``, a control call ``{"path", "body"}`` to run between pages; ``expire_token`` with
  ``company_id`` kills the company's session keys). An empty page here is ``{"data": {"<root>": []}}``
  for every root asked: the lists are plain (no ``pageInfo``), so no next cursor can ride along and
  a client paging until a short page stops there.
- ``POST /_emulator/password`` ``{"company_id": ..., "password": ...}``
- ``POST /_emulator/timeEntries`` (add: ``memberId``, ``projectId``, ``startTime``, optional
  ``endTime``, ``costCodeId``, ``breaks`` [{startTime, endTime}], ``description``)
- ``POST /_emulator/timeEntries/<id>/edit`` (``startTime``, ``endTime``, ``projectId``,
  ``costCodeId``, ``memberId``, ``description``, ``breaks``) and ``POST /_emulator/timeEntries/<id>/delete``
  (soft delete: ``deletedOn`` and ``updatedOn`` are stamped).
- ``POST /_emulator/members/<id>/wages`` (``wage``, ``changeDate``, optional ``wageRate``, default 10
  hourly, and ``overburden``): a new wage history record; the member's ``updatedOn`` is stamped.
- ``POST /_emulator/projects`` (``title``, optional ``parentProjectId`` and ``number``): a new
  project, top level or a sub-project one level below its parent, down to depth 7 (``depth`` 3..7
  sub-projects are what the generator never makes: time on them belongs to the top-level project
  and counts to the milestone-level ancestor).
- ``POST /_emulator/budgets`` (``projectId``, optional ``costCodeId``, ``hours``, ``cost``): a new
  version of the project's own budget, or of a cost code's budget on it: the record it supersedes
  keeps ``isLatest`` false, the new one is stamped ``createdOn`` now.

Each answers with the entry as GraphQL now serves it (without ``cursor``). Control calls are not in
``request_log``, and faults never apply to them.
"""

from __future__ import annotations

import base64
import copy
import functools
import hashlib
import json
import secrets
import threading
import uuid
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from email.message import Message
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from graphql import GraphQLError, build_schema, graphql_sync

from protiv_emulators.generator import (
    HOURS_PER_WORK_YEAR,
    PAY_SALARIED,
    ROLE_MANAGER,
    STATUS_OPEN,
    TASK_NAMES,
    CompanyData,
    Shift,
    WageChange,
    Worker,
)
from protiv_emulators.server import Answer, Faults, Request, VendorEmulator

REST_PREFIX = "/rest"
GRAPHQL_PATH = "/graphql"
REST_VERSION = "3.2"
MAX_PAGE_SIZE = 500  # inferred: the integrators use 500
MAX_PROJECT_DEPTH = 7  # BusyBusy nests projects up to 7 levels (depth 1 = top level)
WAGE_RATE_CODES = {"hour": 10, "week": 20, "month": 30, "year": 40}  # inferred
ACTION_TYPES = {"clock": 10, "manual": 30}  # inferred
COST_PER_BUDGET_HOUR = 32
DRIVE_PROJECT_TITLE = "Drive Time"
DRIVE_COST_CODE = "Drive"
COST_CODES = (("01-100", "Labor"), ("02-200", "Equipment operation"), ("99-900", DRIVE_COST_CODE))
TASK_COST_CODES = tuple((f"20-{100 * (index + 1)}", name) for index, name in enumerate(TASK_NAMES))

# The schema, in one place. Types hold only the fields BusyBusy's own or its integrators' client code
# names (the project's vendor notes), so a query selecting anything else (a root-project field, a
# cost budget's createdOn, the budgets' isLatest as a field, a wage history's id) fails here as it
# would at BusyBusy. Inferred, as the client's "inferred names" block: the timeEntries root, the
# filter and sort types and their fields, and the operators, which are only those the notes name
# (equal, contains as an IN list, isNull, greaterThanOrEqual): no lessThan or strict greaterThan.
SDL = """
enum SortOrder { asc desc }

input IdFilter { equal: ID contains: [ID!] isNull: Boolean }
input StringFilter { equal: String contains: [String!] isNull: Boolean }
input IntFilter { equal: Int contains: [Int!] greaterThanOrEqual: Int isNull: Boolean }
input TimestampFilter { equal: String greaterThanOrEqual: String isNull: Boolean }
input BooleanFilter { equal: Boolean }

type WageHistory {
  wage: Float! wageRate: Int! overburden: Float! effectiveRate: Float!
  changeDate: String! createdOn: String! updatedOn: String! deletedOn: String
}
type Member {
  id: ID! cursor: String! firstName: String lastName: String username: String! email: String phone: String
  memberNumber: String archivedOn: String createdOn: String! updatedOn: String! deletedOn: String
  wageHistories: [WageHistory!]!
}
input MemberFilter {
  id: IdFilter username: StringFilter memberNumber: StringFilter archivedOn: TimestampFilter
  createdOn: TimestampFilter updatedOn: TimestampFilter deletedOn: TimestampFilter
}
input MemberSort { id: SortOrder firstName: SortOrder lastName: SortOrder createdOn: SortOrder updatedOn: SortOrder }

type ProjectInfo { projectId: ID! number: String customer: String }
type Project {
  id: ID! cursor: String! title: String! parentProjectId: ID depth: Int!
  archivedOn: String createdOn: String! updatedOn: String! projectInfo: ProjectInfo
}
input ProjectFilter {
  id: IdFilter parentProjectId: IdFilter depth: IntFilter title: StringFilter
  archivedOn: TimestampFilter createdOn: TimestampFilter updatedOn: TimestampFilter
}
input ProjectSort { id: SortOrder title: SortOrder depth: SortOrder createdOn: SortOrder updatedOn: SortOrder }

type CostCode { id: ID! cursor: String! costCode: String! title: String unitTitle: String archivedOn: String createdOn: String! updatedOn: String! }
input CostCodeFilter { id: IdFilter costCode: StringFilter archivedOn: TimestampFilter updatedOn: TimestampFilter }
input CostCodeSort { id: SortOrder costCode: SortOrder title: SortOrder }

type BudgetHours {
  id: ID! cursor: String! projectId: ID! memberId: ID costCodeId: ID equipmentId: ID budgetSeconds: Int!
  equipmentBudgetSeconds: Int createdOn: String!
}
input BudgetHoursFilter { id: IdFilter projectId: IdFilter costCodeId: IdFilter isLatest: BooleanFilter createdOn: TimestampFilter }
input BudgetHoursSort { id: SortOrder createdOn: SortOrder }

type BudgetCost {
  id: ID! cursor: String! projectId: ID! memberId: ID costCodeId: ID equipmentId: ID costBudget: Float!
  equipmentCostBudget: Float
}
input BudgetCostFilter { id: IdFilter projectId: IdFilter costCodeId: IdFilter isLatest: BooleanFilter }
input BudgetCostSort { id: SortOrder }

type TimeEntryBreak { id: ID! startTime: String! endTime: String }
type TimeEntry {
  id: ID! cursor: String! memberId: ID! projectId: ID costCodeId: ID equipmentId: ID
  startTime: String! endTime: String breaks: [TimeEntryBreak!]! actionType: Int! description: String
  createdOn: String! updatedOn: String! deletedOn: String submittedOn: String
}
input TimeEntryFilter {
  id: IdFilter memberId: IdFilter projectId: IdFilter costCodeId: IdFilter startTime: TimestampFilter
  endTime: TimestampFilter createdOn: TimestampFilter updatedOn: TimestampFilter deletedOn: TimestampFilter
  submittedOn: TimestampFilter
}
input TimeEntrySort { id: SortOrder startTime: SortOrder createdOn: SortOrder updatedOn: SortOrder }

type Query {
  members(filter: MemberFilter, first: Int, after: String, sort: [MemberSort!]): [Member!]!
  projects(filter: ProjectFilter, first: Int, after: String, sort: [ProjectSort!]): [Project!]!
  costCodes(filter: CostCodeFilter, first: Int, after: String, sort: [CostCodeSort!]): [CostCode!]!
  budgetHours(filter: BudgetHoursFilter, first: Int, after: String, sort: [BudgetHoursSort!]): [BudgetHours!]!
  budgetCosts(filter: BudgetCostFilter, first: Int, after: String, sort: [BudgetCostSort!]): [BudgetCost!]!
  timeEntries(filter: TimeEntryFilter, first: Int, after: String, sort: [TimeEntrySort!]): [TimeEntry!]!
}
"""
ROOTS = ("members", "projects", "costCodes", "budgetHours", "budgetCosts", "timeEntries")
_TIMESTAMP_FIELDS = frozenset(
    {"archivedOn", "createdOn", "updatedOn", "deletedOn", "startTime", "endTime", "submittedOn"}
)


# -- helpers ----------------------------------------------------------------------------------------
def iso(moment: datetime | None) -> str | None:
    """BusyBusy's timestamp text: UTC, seconds, trailing Z."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: Any, name: str) -> datetime:
    if isinstance(value, datetime):
        moment = value
    else:
        try:
            moment = datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"{name} must be an ISO 8601 timestamp, got {value!r}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).replace(microsecond=0)


def password_digest(password: str) -> str:
    return hashlib.sha256(password.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class _HttpError(Exception):
    def __init__(self, status: int, body: dict[str, Any]):
        super().__init__(str(body))
        self.status = status
        self.body = body


# -- filters, sorting and cursors -------------------------------------------------------------------
def _comparable(field_name: str, value: Any) -> Any:
    if value is None or field_name not in _TIMESTAMP_FIELDS:
        return value
    try:
        return iso(_parse_time(value, field_name))
    except ValueError as exc:
        raise GraphQLError(f"filter {field_name}: {exc}") from None


def _matches(record: Mapping[str, Any], filter_: Mapping[str, Any] | None) -> bool:
    for field_name, operators in (filter_ or {}).items():
        value = record.get(field_name)
        for operator, wanted in (operators or {}).items():
            if wanted is None and operator != "isNull":
                continue
            if operator == "isNull":
                ok = (value is None) == bool(wanted)
            elif operator == "contains":
                ok = value in {_comparable(field_name, w) for w in wanted}
            else:
                target = _comparable(field_name, wanted)
                if operator == "equal":
                    ok = value == target
                elif value is None:
                    ok = False
                else:
                    ok = {"greaterThanOrEqual": value >= target}[operator]
            if not ok:
                return False
    return True


def _sort_spec(sort: list[Mapping[str, Any]] | None) -> list[tuple[str, str]]:
    spec: list[tuple[str, str]] = []
    for item in sort or []:
        given = [(k, v) for k, v in item.items() if v is not None]
        if len(given) != 1:
            raise GraphQLError("each sort item must name exactly one field")
        spec.append(given[0])
    if not any(name == "id" for name, _ in spec):
        spec.append(("id", "asc"))
    return spec


def _compare(a: list[Any], b: list[Any], spec: list[tuple[str, str]]) -> int:
    for (_, direction), x, y in zip(spec, a, b):
        if x == y:
            continue
        if x is None or y is None:  # nulls first ascending
            result = -1 if x is None else 1
        else:
            result = -1 if x < y else 1
        return result if direction == "asc" else -result
    return 0


def _encode_cursor(key: list[Any], spec: list[tuple[str, str]]) -> str:
    raw = json.dumps({"s": spec, "k": key}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str, spec: list[tuple[str, str]]) -> list[Any]:
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if [tuple(s) for s in raw["s"]] != spec:
            raise ValueError
        return list(raw["k"])
    except (ValueError, KeyError, TypeError):
        raise GraphQLError("after is not a cursor of this list and sort") from None


def page(records: list[dict[str, Any]], filter_: Any, first: Any, after: Any, sort: Any) -> list[dict[str, Any]]:
    """One page of a root list: filter, sort (id last as tiebreaker), keyset ``after``, ``first``."""
    if first is not None and not 1 <= first <= MAX_PAGE_SIZE:
        raise GraphQLError(f"first must be between 1 and {MAX_PAGE_SIZE}")
    spec = _sort_spec(sort)
    keyed = [([r.get(name) for name, _ in spec], r) for r in records if _matches(r, filter_)]
    directions = {direction for _, direction in spec}
    if len(directions) == 1:  # the common case: one direction, a plain key (nulls first ascending)
        keyed.sort(key=lambda item: [(v is not None, v) for v in item[0]], reverse=directions == {"desc"})
    else:

        def by_spec(a: tuple[list[Any], Any], b: tuple[list[Any], Any]) -> int:
            return _compare(a[0], b[0], spec)

        keyed.sort(key=functools.cmp_to_key(by_spec))
    if after:
        cursor_key = _decode_cursor(after, spec)
        keyed = [item for item in keyed if _compare(item[0], cursor_key, spec) > 0]
    if first is not None:
        keyed = keyed[:first]
    return [{**record, "cursor": _encode_cursor(key, spec)} for key, record in keyed]


# -- one company ------------------------------------------------------------------------------------
@dataclass
class _Entry:
    id: str
    member_id: str
    project_id: str | None
    cost_code_id: str | None
    start: datetime
    end: datetime | None
    breaks: list[tuple[str, datetime, datetime | None]]
    action_type: int
    description: str
    created: datetime
    updated: datetime
    deleted: datetime | None = None
    submitted: datetime | None = None


class BusyBusyCompany:
    """One company's BusyBusy organization as the emulator serves it; mutations are thread-safe and
    stamp ``updatedOn`` with a strictly increasing real 'now'. Ids are UUIDs derived from the
    company and the generator's ids: ``member_id``, ``project_id`` and ``entry_id`` translate."""

    def __init__(self, data: CompanyData, username: str, password: str):
        self.data = data
        self.company_id = data.company_id
        self.zone = ZoneInfo(data.timezone)
        self.frozen_now = data.as_of
        self.username = username
        self._digest = password_digest(password)
        self._keys: set[str] = set()
        self._lock = threading.RLock()
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"busybusy-emulator/{data.company_id}/{data.seed}")
        self._members = {w.id: self._member_record(w) for w in data.workers}
        owner = min((w for w in data.workers if w.role == ROLE_MANAGER and w.active), key=lambda w: w.employee_number)
        self.owner_member_id = self.member_id(owner.id)
        self._members[owner.id]["username"] = username
        self._cost_codes: dict[str, dict[str, Any]] = {
            code: {
                "id": self._uuid("costcode", code),
                "costCode": code,
                "title": title,
                "archivedOn": None,
                "createdOn": iso(data.created_at),
                "updatedOn": iso(data.created_at),
            }
            for code, title in (*COST_CODES, *TASK_COST_CODES)
        }
        self._task_codes = {
            task.id: self._cost_codes[dict((t, c) for c, t in TASK_COST_CODES)[task.name]]["id"]
            for task in data.task_lines
        }
        self._projects = self._project_records()
        self._budget_hours, self._budget_costs = self._budget_records()
        everything = sorted([*data.shifts, *data.deleted_shifts], key=lambda s: s.id)
        self._entries = {e.id: e for e in (self._entry_state(s) for s in everything)}
        self._last_tick = max(e.updated for e in self._entries.values())

    # -- ids --------------------------------------------------------------------------------------
    def _uuid(self, kind: str, key: Any) -> str:
        return str(uuid.uuid5(self._namespace, f"{kind}/{key}"))

    def member_id(self, worker_id: int) -> str:
        return self._uuid("member", worker_id)

    def project_id(self, job_or_milestone_id: int) -> str:
        return self._uuid("project", job_or_milestone_id)

    def entry_id(self, shift_id: int) -> str:
        return self._uuid("entry", shift_id)

    @property
    def drive_cost_code_id(self) -> str:
        return self._cost_codes["99-900"]["id"]

    def cost_code_id(self, code: str) -> str:
        """The id of a cost code by its code ("01-100")."""
        return self._cost_codes[code]["id"]

    def task_cost_code_id(self, task_id: int) -> str:
        """The cost code of a generated line item (``TaskLine.id``)."""
        return self._task_codes[task_id]

    # -- building records -------------------------------------------------------------------------
    def _local_midnight(self, day) -> datetime:
        return datetime.combine(day, datetime.min.time(), tzinfo=self.zone).astimezone(UTC)

    def _member_record(self, worker: Worker) -> dict[str, Any]:
        data = self.data
        archived = None
        if not worker.active:
            day = worker.term_date
            archived = (
                (datetime.combine(day, datetime.min.time(), tzinfo=self.zone) + timedelta(hours=17))
                if day
                else worker.modified_at
            )
        member_id = self.member_id(worker.id)
        salaried = worker.pay_interval == PAY_SALARIED
        hired = self._local_midnight(worker.hire_date)
        index = sorted(w.id for w in data.workers).index(worker.id)

        def wage(
            record_key: str, amount: Decimal, changed: datetime, deleted: datetime | None = None
        ) -> dict[str, Any]:
            overburden = 12.5 if index % 4 == 0 else 0.0
            hourly = float(amount) / 2080 if salaried else float(amount)
            return {
                "id": self._uuid("wage", f"{worker.id}/{record_key}"),
                "memberId": member_id,
                "wage": float(amount),
                "wageRate": WAGE_RATE_CODES["year" if salaried else "hour"],
                "overburden": overburden,
                "effectiveRate": round(hourly * (1 + overburden / 100), 4),
                "changeDate": iso(changed),
                "createdOn": iso(min(changed, data.as_of)),
                "updatedOn": iso(deleted or min(changed, data.as_of)),
                "deletedOn": iso(deleted),
            }

        changes = worker.wage_history or (WageChange(worker.hire_date, worker.hourly_wage),)
        histories = [
            wage(
                "start" if position == 0 else f"change-{position}",
                change.hourly_wage * HOURS_PER_WORK_YEAR if salaried else change.hourly_wage,
                hired if position == 0 else self._local_midnight(change.effective_date),
            )
            for position, change in enumerate(changes)
        ]
        if index % 7 == 1:
            start = self._local_midnight(data.first_local_date)
            histories.append(wage("mistake", Decimal("99.99"), start, deleted=start + timedelta(hours=9)))
        return {
            "id": member_id,
            "firstName": worker.first_name,
            "lastName": worker.last_name,
            "username": f"{worker.first_name[0]}{worker.last_name}{worker.employee_number}".lower().replace("'", ""),
            "email": worker.email,
            "memberNumber": str(worker.employee_number),
            "archivedOn": iso(archived),
            "createdOn": iso(worker.created_at),
            "updatedOn": iso(worker.modified_at),
            "deletedOn": None,
            "wageHistories": histories,
        }

    def _project_records(self) -> dict[str, dict[str, Any]]:
        records: dict[str, dict[str, Any]] = {}
        for job in self.data.jobs:
            job_uuid = self.project_id(job.id)
            records[job_uuid] = {
                "id": job_uuid,
                "title": job.name,
                "parentProjectId": None,
                "depth": 1,
                "archivedOn": None if job.status == STATUS_OPEN else iso(job.modified_at),
                "createdOn": iso(job.created_at),
                "updatedOn": iso(job.modified_at),
                "projectInfo": {
                    "projectId": job_uuid,
                    "number": "DRIVE" if job.is_drive else job.short_code,
                    "customer": job.customer or None,
                },
            }
            for milestone in self.data.milestones_of(job.id):
                mid = self.project_id(milestone.id)
                records[mid] = {
                    "id": mid,
                    "title": milestone.name,
                    "parentProjectId": job_uuid,
                    "depth": 2,
                    "archivedOn": None if milestone.status == STATUS_OPEN else iso(milestone.modified_at),
                    "createdOn": iso(milestone.created_at),
                    "updatedOn": iso(milestone.modified_at),
                    "projectInfo": {"projectId": mid, "number": None, "customer": job.customer or None},
                }
        return records

    def _budget_records(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        hours, costs = [], []
        budgeted = [(j.id, j.budget_hours, j.created_at) for j in self.data.jobs if j.budget_hours is not None]
        budgeted += [(m.id, m.budget_hours, m.created_at) for m in self.data.milestones if m.budget_hours is not None]
        for index, (plan_id, budget, created) in enumerate(sorted(budgeted)):
            common: dict[str, Any] = {
                "projectId": self.project_id(plan_id),
                "memberId": None,
                "costCodeId": None,
                "equipmentId": None,
            }
            if index == 0:  # a superseded budget: clients must read isLatest only
                hours.append(
                    {
                        **common,
                        "id": self._uuid("budgethours-old", plan_id),
                        "budgetSeconds": int(round(budget * 3600)) + 36_000,
                        "equipmentBudgetSeconds": None,
                        "isLatest": False,
                        "createdOn": iso(created),
                    }
                )
            hours.append(
                {
                    **common,
                    "id": self._uuid("budgethours", plan_id),
                    "budgetSeconds": int(round(budget * 3600)),
                    "equipmentBudgetSeconds": None,
                    "isLatest": True,
                    "createdOn": iso(created + timedelta(hours=1)),
                }
            )
            costs.append(
                {
                    **common,
                    "id": self._uuid("budgetcost", plan_id),
                    "costBudget": round(budget * COST_PER_BUDGET_HOUR, 2),
                    "equipmentCostBudget": None,
                    "isLatest": True,
                    "createdOn": iso(created + timedelta(hours=1)),
                }
            )
        for task in self.data.task_lines:
            created = self.data.job_by_id(task.job_id).created_at + timedelta(hours=1)
            common = {
                "projectId": self.project_id(task.job_id),
                "memberId": None,
                "costCodeId": self._task_codes[task.id],
                "equipmentId": None,
                "isLatest": True,
                "createdOn": iso(created),
            }
            hours.append(
                {
                    **common,
                    "id": self._uuid("budgethours-task", task.id),
                    "budgetSeconds": int(round(task.budget_hours * 3600)),
                    "equipmentBudgetSeconds": None,
                }
            )
            costs.append(
                {
                    **common,
                    "id": self._uuid("budgetcost-task", task.id),
                    "costBudget": round(task.budget_hours * COST_PER_BUDGET_HOUR, 2),
                    "equipmentCostBudget": None,
                }
            )
        return hours, costs

    def _entry_state(self, shift: Shift) -> _Entry:
        project = self.project_id(shift.milestone_id if shift.milestone_id is not None else shift.job_id)
        if shift.manual:
            start = (
                datetime.combine(shift.local_date, datetime.min.time(), tzinfo=self.zone)
                .replace(hour=7)
                .astimezone(UTC)
            )
            end: datetime | None = start + timedelta(seconds=shift.duration_seconds)
            cost_code = None
        else:
            assert shift.start is not None, "a clocked shift has a start"
            start, end = shift.start, shift.end
            cost_code = self._cost_codes["99-900" if shift.is_drive else "01-100"]["id"]
        if shift.task_id is not None:
            cost_code = self._task_codes[shift.task_id]
        breaks: list[tuple[str, datetime, datetime | None]] = [
            (self._uuid("break", f"{shift.id}/{i}"), s, e) for i, (s, e) in enumerate(shift.breaks)
        ]
        submitted = end + timedelta(hours=2) if end is not None and end < self.frozen_now - timedelta(days=2) else None
        return _Entry(
            id=self.entry_id(shift.id),
            member_id=self.member_id(shift.worker_id),
            project_id=project,
            cost_code_id=cost_code,
            start=start,
            end=end,
            breaks=breaks,
            action_type=ACTION_TYPES["manual" if shift.manual else "clock"],
            description=shift.notes or "",
            created=shift.created_at,
            updated=shift.deleted_at or shift.modified_at,
            deleted=shift.deleted_at,
            submitted=submitted,
        )

    @staticmethod
    def render_entry(entry: _Entry) -> dict[str, Any]:
        return {
            "id": entry.id,
            "memberId": entry.member_id,
            "projectId": entry.project_id,
            "costCodeId": entry.cost_code_id,
            "equipmentId": None,
            "startTime": iso(entry.start),
            "endTime": iso(entry.end),
            "breaks": [{"id": b, "startTime": iso(s), "endTime": iso(e)} for b, s, e in entry.breaks],
            "actionType": entry.action_type,
            "description": entry.description or None,
            "createdOn": iso(entry.created),
            "updatedOn": iso(entry.updated),
            "deletedOn": iso(entry.deleted),
            "submittedOn": iso(entry.submitted),
        }

    # -- reads (exactly what GraphQL serves, without cursors) ------------------------------------------
    def records(self, root: str) -> list[dict[str, Any]]:
        with self._lock:
            if root == "timeEntries":
                return [self.render_entry(e) for e in self._entries.values()]
            store = {
                "members": list(self._members.values()),
                "projects": list(self._projects.values()),
                "costCodes": list(self._cost_codes.values()),
                "budgetHours": self._budget_hours,
                "budgetCosts": self._budget_costs,
            }[root]
            return copy.deepcopy(store)

    # -- sessions ---------------------------------------------------------------------------------------
    def login(self, username: str, digest: str) -> str | None:
        with self._lock:
            if username != self.username or not secrets.compare_digest(digest, self._digest):
                return None
            key = secrets.token_urlsafe(32)
            self._keys.add(key)
            return key

    def has_key(self, key: str) -> bool:
        with self._lock:
            return any(secrets.compare_digest(key, k) for k in self._keys)

    def live_keys(self) -> list[str]:
        with self._lock:
            return list(self._keys)

    def change_password(self, new_password: str) -> None:
        with self._lock:
            self._digest = password_digest(new_password)
            self._keys.clear()

    def owner_record(self) -> dict[str, Any]:
        member = next(m for m in self._members.values() if m["id"] == self.owner_member_id)
        return {
            "id": member["id"],
            "username": member["username"],
            "first_name": member["firstName"],
            "last_name": member["lastName"],
            "member_number": member["memberNumber"],
        }

    # -- mutations ----------------------------------------------------------------------------------------
    def _tick(self) -> datetime:
        self._last_tick = max(_now(), self._last_tick + timedelta(seconds=1))
        return self._last_tick

    def _entry(self, entry_id: str) -> _Entry:
        try:
            return self._entries[str(entry_id)]
        except KeyError:
            raise KeyError(f"company {self.company_id!r} has no time entry {entry_id}") from None

    def has_entry(self, entry_id: str) -> bool:
        return str(entry_id) in self._entries

    def _check_refs(self, member_id: str | None, project_id: str | None, cost_code_id: str | None) -> None:
        if member_id is not None and member_id not in {m["id"] for m in self._members.values()}:
            raise ValueError(f"company {self.company_id!r} has no member {member_id}")
        if project_id is not None and project_id not in self._projects:
            raise ValueError(f"company {self.company_id!r} has no project {project_id}")
        if cost_code_id is not None and cost_code_id not in {c["id"] for c in self._cost_codes.values()}:
            raise ValueError(f"company {self.company_id!r} has no cost code {cost_code_id}")

    def _breaks(self, breaks: Any, entry_id: str) -> list[tuple[str, datetime, datetime | None]]:
        parsed = []
        for index, item in enumerate(breaks or []):
            start = _parse_time(item["startTime"], "break startTime")
            end = _parse_time(item["endTime"], "break endTime") if item.get("endTime") else None
            if end is not None and end <= start:
                raise ValueError("a break must end after it starts")
            parsed.append((item.get("id") or self._uuid("break", f"{entry_id}/{index}/{start}"), start, end))
        return parsed

    def add_time_entry(
        self,
        memberId: str,
        projectId: str,
        startTime: Any,
        endTime: Any = None,
        costCodeId: str | None = None,
        breaks: Any = None,
        description: str = "",
    ) -> dict[str, Any]:
        """Add an entry; without ``endTime`` it runs (one running entry per member)."""
        with self._lock:
            self._check_refs(memberId, projectId, costCodeId)
            start = _parse_time(startTime, "startTime")
            end = _parse_time(endTime, "endTime") if endTime else None
            if end is not None and end <= start:
                raise ValueError("endTime must be after startTime")
            if end is None and any(
                e.end is None and e.deleted is None and e.member_id == memberId for e in self._entries.values()
            ):
                raise ValueError(f"member {memberId} already has a running entry")
            moment = self._tick()
            entry_id = str(uuid.uuid4())
            entry = _Entry(
                entry_id,
                memberId,
                projectId,
                costCodeId,
                start,
                end,
                self._breaks(breaks, entry_id),
                ACTION_TYPES["clock"],
                description,
                moment,
                moment,
            )
            self._entries[entry_id] = entry
            return self.render_entry(entry)

    def edit_time_entry(self, entry_id: str, **changes: Any) -> dict[str, Any]:
        """Edit like a manager: ``startTime``, ``endTime`` (setting it clocks a running entry out),
        ``projectId``, ``costCodeId``, ``memberId``, ``description``, ``breaks``."""
        allowed = {"startTime", "endTime", "projectId", "costCodeId", "memberId", "description", "breaks"}
        unknown = set(changes) - allowed
        if unknown:
            raise ValueError(f"cannot edit {sorted(unknown)} of a time entry; editable: {sorted(allowed)}")
        with self._lock:
            entry = self._entry(entry_id)
            if entry.deleted is not None:
                raise ValueError("a deleted time entry cannot be edited")
            member = changes.get("memberId", entry.member_id)
            project = changes.get("projectId", entry.project_id)
            cost_code = changes.get("costCodeId", entry.cost_code_id)
            self._check_refs(member, project, cost_code)
            start = _parse_time(changes["startTime"], "startTime") if "startTime" in changes else entry.start
            if "endTime" in changes and not changes["endTime"]:
                raise ValueError("a time entry cannot be put back on the clock")
            end = _parse_time(changes["endTime"], "endTime") if "endTime" in changes else entry.end
            if end is not None and end <= start:
                raise ValueError("endTime must be after startTime")
            breaks = self._breaks(changes["breaks"], entry.id) if "breaks" in changes else entry.breaks
            entry.member_id, entry.project_id, entry.cost_code_id = member, project, cost_code
            entry.start, entry.end, entry.breaks = start, end, breaks
            if "description" in changes:
                entry.description = str(changes["description"])
            entry.updated = self._tick()
            return self.render_entry(entry)

    def delete_time_entry(self, entry_id: str) -> dict[str, Any]:
        """Soft delete: the entry stays readable with ``deletedOn`` (and ``updatedOn``) stamped."""
        with self._lock:
            entry = self._entry(entry_id)
            if entry.deleted is None:
                entry.deleted = entry.updated = self._tick()
            return self.render_entry(entry)

    def has_member(self, member_id: str) -> bool:
        return any(m["id"] == member_id for m in self._members.values())

    def add_wage_change(
        self,
        member_id: str,
        wage: float,
        changeDate: Any,
        wageRate: int = WAGE_RATE_CODES["hour"],
        overburden: float = 0.0,
    ) -> dict[str, Any]:
        """An office change of a member's wage: a new wage history record effective ``changeDate``
        (the member's ``updatedOn`` is stamped, as an edit of the member). Returns the member."""
        hours_per_unit = {
            WAGE_RATE_CODES["hour"]: 1,
            WAGE_RATE_CODES["week"]: 40,
            WAGE_RATE_CODES["month"]: 2080 / 12,
            WAGE_RATE_CODES["year"]: 2080,
        }
        if wageRate not in hours_per_unit:
            raise ValueError(f"wageRate must be one of {sorted(hours_per_unit)}")
        for name, value in (("wage", wage), ("overburden", overburden)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{name} must be a number of $ (or %) of at least 0")
        with self._lock:
            member = next((m for m in self._members.values() if m["id"] == member_id), None)
            if member is None:
                raise KeyError(f"company {self.company_id!r} has no member {member_id}")
            changed = _parse_time(changeDate, "changeDate")
            now = iso(self._tick())
            member["wageHistories"].append(
                {
                    "id": str(uuid.uuid4()),
                    "memberId": member_id,
                    "wage": float(wage),
                    "wageRate": wageRate,
                    "overburden": float(overburden),
                    "effectiveRate": round(wage / hours_per_unit[wageRate] * (1 + overburden / 100), 4),
                    "changeDate": iso(changed),
                    "createdOn": now,
                    "updatedOn": now,
                    "deletedOn": None,
                }
            )
            member["updatedOn"] = now
            return copy.deepcopy(member)

    def add_project(self, title: str, parentProjectId: str | None = None, number: str | None = None) -> dict[str, Any]:
        """A new project: top level without ``parentProjectId``, else a sub-project one level below
        its parent (BusyBusy nests projects up to ``MAX_PROJECT_DEPTH`` levels). Returns the project."""
        if not isinstance(title, str) or not title.strip():
            raise ValueError("title must be a non-empty text")
        with self._lock:
            parent = None
            if parentProjectId is not None:
                parent = self._projects.get(parentProjectId)
                if parent is None:
                    raise ValueError(f"company {self.company_id!r} has no project {parentProjectId}")
                if parent["depth"] >= MAX_PROJECT_DEPTH:
                    raise ValueError(f"projects nest at most {MAX_PROJECT_DEPTH} levels")
            now = iso(self._tick())
            project_id = str(uuid.uuid4())
            self._projects[project_id] = {
                "id": project_id,
                "title": title,
                "parentProjectId": parentProjectId,
                "depth": 1 if parent is None else parent["depth"] + 1,
                "archivedOn": None,
                "createdOn": now,
                "updatedOn": now,
                "projectInfo": {
                    "projectId": project_id,
                    "number": number,
                    "customer": None if parent is None else parent["projectInfo"]["customer"],
                },
            }
            return copy.deepcopy(self._projects[project_id])

    def set_budget(
        self, projectId: str, costCodeId: str | None = None, hours: float | None = None, cost: float | None = None
    ) -> dict[str, Any]:
        """A new version of a project's own budget (no ``costCodeId``) or of a cost code's budget on
        it: the latest record of the same kind stops being latest. Returns ``{"hours": ..., "cost": ...}``
        with the records added."""
        if hours is None and cost is None:
            raise ValueError("give hours, cost or both")
        for name, value in (("hours", hours), ("cost", cost)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                raise ValueError(f"{name} must be a number of at least 0")
        with self._lock:
            self._check_refs(None, projectId, costCodeId)
            now = iso(self._tick())
            added: dict[str, Any] = {}
            for kind, store, field_name, value in (
                ("hours", self._budget_hours, "budgetSeconds", None if hours is None else int(round(hours * 3600))),
                ("cost", self._budget_costs, "costBudget", None if cost is None else round(float(cost), 2)),
            ):
                if value is None:
                    continue
                for row in store:
                    if (row["projectId"], row["costCodeId"], row["memberId"], row["equipmentId"]) == (
                        projectId,
                        costCodeId,
                        None,
                        None,
                    ):
                        row["isLatest"] = False
                record = {
                    "id": str(uuid.uuid4()),
                    "projectId": projectId,
                    "memberId": None,
                    "costCodeId": costCodeId,
                    "equipmentId": None,
                    field_name: value,
                    f"equipment{'BudgetSeconds' if kind == 'hours' else 'CostBudget'}": None,
                    "isLatest": True,
                    "createdOn": now,
                }
                store.append(record)
                added[kind] = dict(record)
            return added


# -- faults ---------------------------------------------------------------------------------------------
class BusyBusyFaults(Faults):
    """The shared fault switches (``protiv_emulators.server.Faults``) plus ``graphql_error``:
    HTTP 200 with ``errors`` and no data, for GraphQL requests only, in its own queue."""

    control_actions = (*Faults.control_actions, "graphql_error")

    def __init__(self) -> None:
        super().__init__()
        self._graphql_errors: deque[str] = deque()

    def graphql_error(self, times: int = 1, message: str = "Internal server error") -> None:
        if times < 1:
            raise ValueError("times must be at least 1")
        with self._lock:
            self._graphql_errors.extend([str(message)] * times)

    def next_graphql_error(self) -> str | None:
        with self._lock:
            return self._graphql_errors.popleft() if self._graphql_errors else None

    def clear(self) -> None:
        with self._lock:
            self._graphql_errors.clear()
        super().clear()


# -- the server --------------------------------------------------------------------------------------
class LoggedRequest(NamedTuple):
    """One vendor request; ``status`` 0 means the connection was dropped. ``operation`` is the
    GraphQL root fields asked (comma-separated) or the REST resource."""

    method: str
    path: str
    operation: str
    status: int


def _build_schema():
    schema = build_schema(SDL)
    assert schema.query_type is not None, "SDL declares a Query type"
    for root in ROOTS:

        def resolve(_source, info, filter=None, first=None, after=None, sort=None, _root=root):  # noqa: A002
            company: BusyBusyCompany = info.context["company"]
            return page(company.records(_root), filter, first, after, sort)

        schema.query_type.fields[root].resolve = resolve
    return schema


class BusyBusyEmulator(VendorEmulator):
    """BusyBusy's REST login and GraphQL API on loopback, hosting any number of companies.

    Nothing listens until ``start()`` (or ``with BusyBusyEmulator() as emulator:``).
    """

    thread_name = "busybusy-emulator"
    faults_class = BusyBusyFaults
    faults: BusyBusyFaults

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        super().__init__(host, port)
        self.schema = _build_schema()

    # -- addresses (start, stop, root_url and control_url come from the base classes) -------------
    @property
    def rest_url(self) -> str:
        """What a client uses instead of https://api.busybusy.io."""
        return self.root_url + REST_PREFIX

    @property
    def graphql_url(self) -> str:
        """What a client uses instead of https://graphql.busybusy.io/."""
        return self.root_url + GRAPHQL_PATH

    # -- companies ----------------------------------------------------------------------------------
    def add_company(
        self, data: CompanyData, username: str | None = None, password: str | None = None
    ) -> tuple[str, str]:
        """Host a generated company; returns the (username, password) that logs in as its owner."""
        username = username or f"owner@{data.company_id}.example"
        password = password or secrets.token_urlsafe(16)
        company = BusyBusyCompany(data, username, password)
        self._host(
            data.company_id,
            company,
            lambda other: other.username == username,
            "that username already belongs to another company",
        )
        return username, password

    def change_password(self, company_id: str, new_password: str) -> None:
        """The owner changed the password: every session key of the company dies (401)."""
        self.company(company_id).change_password(new_password)

    def _tokens_of(self, company_id: str) -> list[str]:
        return self.company(company_id).live_keys()

    # -- vendor requests (faults, latency and the log are VendorEmulator's) -------------------------
    def _is_vendor_path(self, path: str) -> bool:
        return path == GRAPHQL_PATH or path.startswith(REST_PREFIX + "/")

    def _error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"errors": [{"message": message}]}

    def _control_error_body(self, status: int, message: str) -> dict[str, Any]:
        return {"error": message}

    def _log_entry(self, request: Request, answer: Answer) -> LoggedRequest:
        # REST requests are known by their resource even when a fault answered them; GraphQL ones
        # by the roots asked, which only a request that got as far as the schema has.
        operation = (
            request.path[len(REST_PREFIX) + 1 :] if request.path.startswith(REST_PREFIX + "/") else request.label
        )
        return LoggedRequest(request.method, request.path, operation, answer.status)

    def _empty_page(self, answer: Answer) -> Answer:
        """Every root asked answers an empty list.

        BusyBusy's root lists are plain lists with a cursor per item (no connection type with
        ``pageInfo``), so an empty list cannot carry a next cursor: a client paging until a short
        page stops here, and the records after the last cursor it holds are not fetched.
        """
        return Answer(200, {"data": {name: [] for name in answer.body["data"]}}, page=True, clock=answer.clock)

    def _answer_vendor(self, request: Request) -> Answer:
        if request.path == GRAPHQL_PATH:
            answer, request.label = self._answer_graphql(request.method, request.headers, request.body)
            return answer
        return self._answer_rest(request.method, request.path[len(REST_PREFIX) + 1 :], request.query, request.headers)

    def _answer_rest(self, method: str, resource: str, query: dict[str, str], headers: Message) -> Answer:
        if resource != "member":
            return Answer(404, {"success": False, "code": [404], "debug": {"errors": [f"/{resource} is not emulated"]}})
        if method != "GET":
            return Answer(
                405, {"success": False, "code": [405], "debug": {"errors": ["only GET /member (login) is emulated"]}}
            )
        if query.get("_version") != REST_VERSION:
            return Answer(
                400, {"success": False, "code": [400], "debug": {"errors": [f"_version must be {REST_VERSION}"]}}
            )
        scheme, _, encoded = headers.get("Authorization", "").partition(" ")
        try:
            username, _, digest = base64.b64decode(encoded.strip(), validate=True).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            username, digest = "", ""
        denied = Answer(401, {"success": False, "code": [401], "debug": {"errors": ["invalid username or password"]}})
        if scheme.lower() != "basic" or not username or username != query.get("username"):
            return denied
        with self._lock:
            company = next((c for c in self._companies.values() if c.username == username), None)
        key = company.login(username, digest) if company else None
        if company is None or key is None:
            return denied
        return Answer(
            200,
            {
                "success": True,
                "code": [],
                "data": [company.owner_record()],
                "total_rows": 1,
                "returned_rows": 1,
                "next": None,
                "prev": None,
                "public_key": key,
                "supported": 200,
            },
        )

    def _answer_graphql(self, method: str, headers: Message, body: bytes) -> tuple[Answer, str]:
        if method != "POST":
            return Answer(405, {"errors": [{"message": "use POST for GraphQL"}]}), ""
        key = (headers.get("key-authorization") or "").strip()
        with self._lock:
            company = next((c for c in self._companies.values() if key and c.has_key(key)), None)
        if company is None or self.faults.is_expired(key):
            return Answer(
                401, {"errors": [{"message": "Unauthorized: the key-authorization header is missing or not valid"}]}
            ), ""
        try:
            request = json.loads(body)
            if not isinstance(request, dict) or not isinstance(request.get("query"), str):
                raise ValueError("the body must be a JSON object with a query string")
        except ValueError as exc:
            return Answer(400, {"errors": [{"message": f"bad request: {exc}"}]}), ""
        operation = ",".join(root for root in ROOTS if root in request["query"])
        message = self.faults.next_graphql_error()
        if message is not None:
            return Answer(200, {"errors": [{"message": message}], "data": None}, clock=company.frozen_now), operation
        variables = request.get("variables")
        result = graphql_sync(
            self.schema,
            request["query"],
            variable_values=variables if isinstance(variables, dict) else None,
            operation_name=request.get("operationName"),
            context_value={"company": company},
        )
        payload: dict[str, Any] = {"data": result.data}
        if result.errors:
            payload = {
                "errors": [{"message": e.message, **({"path": e.path} if e.path else {})} for e in result.errors],
                "data": result.data,
            }
        listing = bool(operation) and not result.errors and isinstance(result.data, dict)
        return Answer(200, payload, clock=company.frozen_now, page=listing), operation

    # -- control requests (status, faults and the parsing are VendorEmulator's) ---------------------
    def _control_route(
        self, method: str, parts: list[str], payload: dict[str, Any], company_id: str | None
    ) -> Answer | None:
        if parts == ["password"] and method == "POST":
            self._control_company(company_id).change_password(str(payload["password"]))
            return Answer(200, {"ok": True})
        if parts == ["timeEntries"] and method == "POST":
            return Answer(200, self._control_company(company_id).add_time_entry(**payload))
        if len(parts) == 3 and parts[0] == "members" and parts[2] == "wages" and method == "POST":
            company = self._control_company(company_id, lambda c: c.has_member(parts[1]), f"member {parts[1]}")
            return Answer(200, company.add_wage_change(parts[1], **payload))
        if parts == ["projects"] and method == "POST":
            return Answer(200, self._control_company(company_id).add_project(**payload))
        if parts == ["budgets"] and method == "POST":
            return Answer(200, self._control_company(company_id).set_budget(**payload))
        if len(parts) == 3 and parts[0] == "timeEntries" and method == "POST" and parts[2] in ("edit", "delete"):
            company = self._control_company(company_id, lambda c: c.has_entry(parts[1]), f"time entry {parts[1]}")
            if parts[2] == "delete":
                return Answer(200, company.delete_time_entry(parts[1]))
            return Answer(200, company.edit_time_entry(parts[1], **payload))
        return None


__all__ = [
    "ACTION_TYPES",
    "COST_CODES",
    "DRIVE_COST_CODE",
    "DRIVE_PROJECT_TITLE",
    "MAX_PAGE_SIZE",
    "MAX_PROJECT_DEPTH",
    "ROOTS",
    "SDL",
    "TASK_COST_CODES",
    "WAGE_RATE_CODES",
    "BusyBusyCompany",
    "BusyBusyEmulator",
    "BusyBusyFaults",
    "LoggedRequest",
    "iso",
    "password_digest",
]
