"""BusyBusy GraphQL records -> the cleaned tables every vendor shares. Pure pandas: no HTTP, no SQL.

Field mapping (why in parentheses):

| cleaned column             | BusyBusy source                                                          |
|----------------------------|--------------------------------------------------------------------------|
| attendance.entry_id        | timeEntries ``id`` (a UUID)                                              |
| attendance.worker_id       | ``memberId``                                                             |
| attendance.job_id          | the top-level project of ``projectId``, found by walking ``parentProjectId`` (no root-project field is documented): time on any descendant, down to depth 7, belongs to its top-level project |
| attendance.milestone_id    | the ancestor of ``projectId`` at the company's milestone depth (settings.busybusy_milestone_depth, 2 by default), or ``projectId`` itself at that depth: time on a depth-3..7 project counts to its depth-2 ancestor. Null for time on the top-level project or on a sub-project above the milestone depth (its job's time). The week's raw feeds carry the projects' ``id``/``parentProjectId``/``depth`` (feed ``projects``) for this |
| attendance.task_id         | ``costCodeId``: the entry's cost code is its line item (task_lines.task_id); null without one |
| attendance.work_date       | the local date of ``startTime`` in the company zone (settings.timezone): BusyBusy sends UTC only |
| attendance.start_at/end_at | ``startTime``/``endTime`` (UTC); ``endTime`` is null while running        |
| attendance.hours           | (``endTime`` or the vendor clock) - ``startTime`` - the ``breaks`` (each break clipped to the entry; a break still open ends at the vendor clock). UTC instants, so a DST change counts real elapsed time |
| attendance.on_the_clock    | ``endTime`` is null                                                       |
| attendance.is_drive        | the project is a drive job (settings.drive_job_patterns on the top project's title) OR the entry's cost code title matches those patterns |
| attendance.entry_type      | ``actionType`` 30 (manual, inferred) -> manual; anything else -> regular  |
| (removed_as_deleted)       | ``deletedOn`` set: a soft delete; removed and counted                     |
| workers.worker_id          | member ``id`` (a UUID)                                                   |
| workers.first/last_name    | ``firstName`` / ``lastName``                                             |
| workers.hourly_wage        | the current wage history (latest ``changeDate`` not after the clock, ``deletedOn`` null): ``wage`` per ``wageRate`` 10 hour, 20 week (/40), 30 month (x12/2080), 40 year (/2080); $1,000,000/h or more is set aside |
| workers.active/term_date   | ``archivedOn`` null / its local date; BusyBusy has no hire date (null)   |
| jobs.job_id / name         | project ``id`` / ``title``                                               |
| jobs.level/parent_job_id   | ``depth`` 1: job; ``depth`` = the milestone depth: milestone, its parent_job_id the top-level project. Sub-projects at other depths (up to 7) have no row of their own and are not set aside: their time counts to an ancestor (counted as without_row); their own budgets are not read (a cost-code budget on one is set aside by task_lines). A project whose ``parentProjectId`` chain names an unlisted project, loops, runs past 7 levels or disagrees with its ``depth`` is set aside, and so is the time on it |
| jobs.short_code            | ``projectInfo.number``                                                   |
| jobs.budget_hours          | the project's own latest ``budgetHours`` row (``isLatest``; no ``costCodeId``, ``memberId`` or ``equipmentId``): ``budgetSeconds`` / 3600. A row with a cost code is that cost code's budget (a task line), never added to the project's; member and equipment budgets are not labor budgets of the job and are not read. Several latest rows of one kind (a vendor inconsistency): the smallest counts, so a ProPay never pays on the larger |
| jobs.budget_cost (extra)   | the project's own latest ``budgetCosts`` row's ``costBudget``, by the same rule ($1e12 or more is set aside: the warehouse holds less); carried on the mapped rows, not stored (see jobs.budget_amount) |
| jobs.budget_amount         | ``budget_cost`` when the company's ``default_budget_type`` is ``amount`` (the cost budget is then the labor budget in $); else null, so an hours company's ProPays keep their hours budget |
| jobs.budget_type           | null: BusyBusy has no budget type, the company's ``default_budget_type`` applies |
| jobs.contract_price/labor_budget_percent/rate/quantity | null: BusyBusy projects carry none of them |
| jobs.service_type/property_id | null: BusyBusy projects have no service type or client site field     |
| jobs.status/active         | ``archivedOn`` set -> completed / inactive, else open (BusyBusy has no canceled state) |
| jobs.recurring             | always false: BusyBusy has no such flag                                  |
| jobs.created_date          | ``createdOn`` of the project as a local date (settings.timezone; UTC without it) |
| task_lines.job_id/task_id  | ``budgetHours``/``budgetCosts`` rows with a ``costCodeId`` (and no ``memberId``/``equipmentId``): ``projectId`` (a job or a sub-project) / ``costCodeId``. One line per project and cost code; a row of a project that is not a mapped job or milestone is set aside |
| task_lines.name            | the cost code's ``title`` (else its ``costCode``); null for a cost code not in ``costCodes`` |
| task_lines.budget_hours    | that row's ``budgetSeconds`` / 3600 (the smallest of several latest rows); null with only a cost row |
| task_lines.budget_amount   | the ``budgetCosts`` row's ``costBudget`` for the same project and cost code; null without one |
| worker_wages               | one row per live wage history of a mapped member (``deletedOn`` set: removed and counted): effective_date = the local date of ``changeDate`` in the company zone (a ``changeDate`` without an offset, such as a bare date, is local time, not UTC); hourly_wage = ``wage`` per ``wageRate`` as for workers.hourly_wage; pay_interval from ``wageRate``; burden_percent = ``overburden``. Several live histories effective the same local date: the latest ``changeDate`` is the wage of that day (the others count as superseded); two with the very same ``changeDate`` are both set aside |
| job_assignments            | none: BusyBusy assigns no crew lead or manager to a project (the ProPay engine uses the company's worker_roles setting) |

Wages by date: ``members_to_wages`` gives the worker_wages rows and ``wages_on`` looks up the wage in
force on each work date (the latest effective_date on or before it), so labor is costed with the wage
of the day, not today's (rules §9): the ProPay engine prices each entry's seconds at the wage in force
on its local work date, so a raise effective on the 15th costs the 14th's hours (even those after
17:00 in Denver, already the 15th in UTC) at the old wage.

What the client asks (``resources/busybusy.py``): only fields the vendor notes name and only the
operators ``equal``, ``contains``, ``isNull`` and ``greaterThanOrEqual``. A week's entries are those
with ``startTime`` at or after its local Monday's midnight, read sorted by ``startTime`` until the
first one at or after the next Monday's (no "less than" exists); change checks ask for stamps at or
after the mark. Inferred names (the ``timeEntries`` root, filter and sort types, operators, the
budgets' ``isLatest`` filter) are in one block of that module.

Running entries: BusyBusy has no duration field. Hours of a running entry are counted up to the
vendor's clock, which the source takes from the HTTP ``Date`` header of the timeEntries answer and
stores in the feeds (``vendorClock``), so a later re-mapping of the same raw feeds gives the same hours.

Every record that cannot be mapped is returned in the set-aside frame with its reason and the record
as received, never dropped.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeGuard, cast

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.vendors.mapping import (
    HOURS_PER_YEAR,
    MAX_AMOUNT,
    MAX_WAGE,
    collect,
    column,
    id_of,
    id_text,
    jobs_of_entries,
    local_dates,
    no_reasons,
    per_distinct,
    records_frame,
    set_aside_frame,
    split,
    too_large,
    utc,
)

MANUAL_ACTION_TYPE = 30  # inferred, as in the emulator's ACTION_TYPES
# wageRate code -> (pay_interval, factor to an hourly wage); inferred codes
WAGE_RATES: dict[int, tuple[str, float]] = {
    10: ("hour", 1.0),
    20: ("week", 1 / 40),
    30: ("month", 12 / HOURS_PER_YEAR),
    40: ("year", 1 / HOURS_PER_YEAR),
}


_local_date = local_dates


def _timestamp(value: Any) -> pd.Timestamp | None:
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        moment = pd.Timestamp(value)
    except (ValueError, OverflowError, TypeError):
        return None
    if moment is pd.NaT:  # type: ignore[comparison-overlap]  # pd.Timestamp() is NaT for a missing value
        return None
    return moment.tz_localize("UTC") if moment.tzinfo is None else moment.tz_convert("UTC")


_Wage = tuple[pd.Timestamp, float, str, float | None]  # (changeDate, hourly wage, pay interval, overburden %)


def _number(value: Any) -> TypeGuard[int | float]:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and value == value  # NaN is no number


def _change_moment(value: Any, timezone: str) -> pd.Timestamp | None:
    """A wage history's ``changeDate`` as a UTC instant. BusyBusy stamps UTC (``...Z``); a value
    without an offset (a bare date, or wall time) is the company's local time, never UTC: read as
    UTC, a raise effective on the 15th would start in the evening of the 14th west of Greenwich."""
    moment = _timestamp(value)
    if moment is None or not isinstance(value, str):
        return moment
    try:
        given = pd.Timestamp(value)
    except (ValueError, OverflowError, TypeError):
        return None
    if given.tzinfo is not None:
        return moment
    try:
        return given.tz_localize(timezone, ambiguous=True, nonexistent="shift_forward").tz_convert("UTC")
    except (ValueError, OverflowError, TypeError):
        return None


def _wage_of(item: Any, timezone: str = "UTC") -> _Wage | str | None:
    """One wage history record: None when deleted, else its wage or the reason it cannot be read."""
    if not isinstance(item, dict):
        return "a wage history is not an object"
    if item.get("deletedOn"):
        return None
    changed = _change_moment(item.get("changeDate"), timezone)
    wage, rate, overburden = item.get("wage"), item.get("wageRate"), item.get("overburden")
    if changed is None:
        return "a wage history's changeDate is missing or not ISO 8601"
    if not _number(wage) or not 0 <= wage < 1e9:
        return "a wage history's wage is not a number"
    if rate not in WAGE_RATES:
        return f"a wage history's wageRate {rate!r} is not one of {sorted(WAGE_RATES)}"
    if overburden is not None and (not _number(overburden) or overburden < 0):
        return "a wage history's overburden is not a percentage"
    interval, factor = WAGE_RATES[rate]
    return changed, float(wage) * factor, interval, None if overburden is None else float(overburden)


def _live_wages(member: Mapping[str, Any], timezone: str = "UTC") -> tuple[list[_Wage], str | None]:
    """The live wage histories of a member, oldest first, or the reason one of them cannot be read."""
    histories = member.get("wageHistories")
    if histories is None:
        return [], None
    if not isinstance(histories, list):
        return [], "wageHistories is not a list"
    wages = []
    for item in histories:
        wage = _wage_of(item, timezone)
        if isinstance(wage, str):
            return [], wage
        if wage is not None:
            wages.append(wage)
    return sorted(wages, key=lambda w: w[0]), None


def members_to_workers(
    members: Iterable[Mapping[str, Any]], company_id: str, timezone: str, now: datetime | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Workers with the wage effective at ``now`` (default: the real clock)."""
    clock = pd.Timestamp(now or datetime.now(UTC))
    frame = records_frame(members)
    reasons = no_reasons(frame)
    worker_id = id_text(column(frame, "id"))
    reasons = collect(reasons, worker_id.isna(), "id is missing")
    wages = [_live_wages(raw, timezone) for raw in frame["_raw"]]
    wage_reason = pd.Series([w[1] or "" for w in wages], index=frame.index, dtype=object)
    for message in sorted(set(wage_reason) - {""}):
        reasons = collect(reasons, wage_reason == message, message)

    def current(live: list[_Wage]) -> tuple[float | None, str | None]:
        """The wage of the latest change not after the clock (the first one if all are later)."""
        effective = [w for w in live if w[0] <= clock] or live[:1]
        return (round(effective[-1][1], 4), effective[-1][2]) if effective else (None, None)

    picked = [current(w[0]) for w in wages]
    hourly = pd.Series([p[0] for p in picked], index=frame.index, dtype=float)
    reasons = collect(
        reasons, too_large(hourly, MAX_WAGE), "the current wage is beyond any hourly wage (at most $999,999.9999)"
    )
    archived, bad_archived = utc(column(frame, "archivedOn"))
    reasons = collect(reasons, bad_archived, "archivedOn is not ISO 8601")
    deleted, bad_deleted = utc(column(frame, "deletedOn"))
    reasons = collect(reasons, bad_deleted, "deletedOn is not ISO 8601")
    modified, bad_modified = utc(column(frame, "updatedOn"))
    reasons = collect(reasons, bad_modified | modified.isna(), "updatedOn is missing or not ISO 8601")
    workers = pd.DataFrame(
        {
            "company_id": company_id,
            "worker_id": worker_id,
            "first_name": column(frame, "firstName"),
            "last_name": column(frame, "lastName"),
            "active": archived.isna() & deleted.isna(),
            "hourly_wage": hourly,
            "pay_interval": pd.Series([p[1] for p in picked], index=frame.index, dtype=object),
            "hire_date": None,
            "term_date": _local_date(archived, timezone),
            "source_modified_at": modified,
        },
        index=frame.index,
    )
    return split(workers, frame, worker_id, reasons)


_WAGE_COLUMNS = ["company_id", "worker_id", "effective_date", "hourly_wage", "pay_interval", "burden_percent"]


def members_to_wages(
    members: Iterable[Mapping[str, Any]], worker_ids: Iterable[str], company_id: str, timezone: str
) -> tuple[pd.DataFrame, pd.DataFrame, int, int]:
    """The worker_wages rows: one per live wage history of a member among ``worker_ids`` (module docstring).

    Returns (rows, set-aside records with their reasons, histories removed as deleted, live histories
    superseded by a later change the same local day): every wage history read is counted once."""
    known = set(worker_ids)
    records: list[dict[str, Any]] = []
    ids: list[str | None] = []
    reasons: list[str] = []
    rows: list[dict[str, Any]] = []
    deleted = 0
    for member in members:
        member_id = id_of(member.get("id")) if isinstance(member, Mapping) else None
        histories = member.get("wageHistories") if isinstance(member, Mapping) else None
        if histories is None:
            continue
        if not isinstance(histories, list):
            records.append({"memberId": member_id, "wageHistories": histories})
            ids.append(member_id)
            reasons.append("wageHistories is not a list")
            continue
        for item in histories:
            wage = _wage_of(item, timezone)
            if wage is None:
                deleted += 1
                continue
            problems = []
            if member_id is None:
                problems.append("the member's id is missing")
            elif member_id not in known:
                problems.append("the member is not a mapped worker (set aside, or not listed)")
            if isinstance(wage, str):
                problems.append(wage)
            elif wage[1] >= MAX_WAGE or round(wage[1], 4) >= MAX_WAGE:
                problems.append("the wage is beyond any hourly wage (at most $999,999.9999)")
            if problems or isinstance(wage, str):  # a str wage is always among the problems
                records.append({"memberId": member_id, "wageHistory": item})
                ids.append(member_id)
                reasons.append("; ".join(problems))
                continue
            changed, hourly, interval, overburden = wage
            rows.append(
                {
                    "company_id": company_id,
                    "worker_id": member_id,
                    "changed": changed,
                    "effective_date": changed.tz_convert(timezone).date(),
                    "hourly_wage": round(hourly, 4),
                    "pay_interval": interval,
                    "burden_percent": overburden,
                    "_raw": {"memberId": member_id, "wageHistory": item},
                }
            )
    frame = pd.DataFrame(rows, columns=[*_WAGE_COLUMNS, "changed", "_raw"])
    superseded = 0
    if len(frame):
        frame = frame.sort_values(["worker_id", "effective_date", "changed"], kind="stable", ignore_index=True)
        latest = frame.groupby(["worker_id", "effective_date"])["changed"].transform("max")
        tied = frame.duplicated(["worker_id", "changed"], keep=False)
        for raw, member_id in zip(frame.loc[tied, "_raw"], frame.loc[tied, "worker_id"]):
            records.append(raw)
            ids.append(member_id)
            reasons.append(
                "another live wage history of the member changes at the same moment: which one is paid is unknown"
            )
        in_force = (frame["changed"] == latest) & ~tied
        superseded = int((~in_force & ~tied).sum())
        frame = frame[in_force]
    aside = set_aside_frame(records_frame(records), pd.Series(ids, dtype=object), pd.Series(reasons, dtype=object))
    return frame[_WAGE_COLUMNS].reset_index(drop=True), aside, deleted, superseded


def wages_on(histories: pd.DataFrame, worker_ids: pd.Series, work_dates: pd.Series) -> pd.Series:
    """The hourly wage in force on each (worker, work date) by the worker_wages rows ``histories``: the
    latest effective_date on or before the date; before the first one, the first wage."""
    result = pd.Series([float("nan")] * len(worker_ids), index=worker_ids.index, dtype=float)
    by_worker = {w: g for w, g in histories.groupby("worker_id")}
    for index, (worker, day) in enumerate(zip(worker_ids, work_dates)):
        group = by_worker.get(worker)
        if group is None:
            continue
        earlier = group[group["effective_date"] <= day]
        chosen = earlier.iloc[-1] if len(earlier) else group.iloc[0]
        result.iloc[index] = chosen["hourly_wage"]
    return result


_PROJECT = "project"  # the key of a project's own budget rows (no cost code) in _latest_budgets


def _latest_budgets(
    records: Iterable[Mapping[str, Any]], value_key: str
) -> tuple[dict[tuple[str, str], float], set[tuple[str, str]]]:
    """The latest budget per (project, cost code or ``_PROJECT``) of budget rows, and the keys whose
    value is not a number. Rows marked ``isLatest`` false are old versions; member and equipment
    budgets are no labor budget of a job or line item. Several rows of one key: the smallest."""
    values: dict[tuple[str, str], float] = {}
    bad: set[tuple[str, str]] = set()
    for record in records:
        project = id_of(record.get("projectId"))
        if project is None or record.get("isLatest") is False:
            continue
        if id_of(record.get("memberId")) or id_of(record.get("equipmentId")):
            continue
        key = (project, id_of(record.get("costCodeId")) or _PROJECT)
        value = record.get(value_key)
        if not _number(value) or not 0 <= value < math.inf:
            bad.add(key)
            continue
        values[key] = min(values.get(key, float(value)), float(value))
    return values, bad


MAX_DEPTH = 7  # BusyBusy nests projects up to 7 levels (depth 1 = top level)


def _depth_of(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def project_tree(projects: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, ...] | str]:
    """Per project id, its chain of ancestors from itself up to its top-level project (walking
    ``parentProjectId``), or the reason the chain cannot be followed. The chain's length is the
    project's depth; a ``depth`` field that disagrees with it is a reason too."""
    listed: dict[str, Mapping[str, Any]] = {}
    for record in projects:
        project_id = id_of(record.get("id")) if isinstance(record, Mapping) else None
        if project_id is not None:
            listed.setdefault(project_id, record)
    tree: dict[str, tuple[str, ...] | str] = {}
    for project_id, record in listed.items():
        chain, current = [project_id], record
        reason = None
        while (parent := id_of(current.get("parentProjectId"))) is not None:
            if parent in chain:
                reason = "parentProjectId makes a cycle"
                break
            if parent not in listed:
                reason = "parentProjectId (its own or an ancestor's) names no listed project"
                break
            chain.append(parent)
            current = listed[parent]
            if len(chain) > MAX_DEPTH:
                reason = f"more than {MAX_DEPTH} levels of parentProjectId"
                break
        depth = _depth_of(record.get("depth"))
        if reason is None and depth is not None and depth != len(chain):
            reason = f"depth {depth} disagrees with its parentProjectId chain ({len(chain)} levels)"
        tree[project_id] = reason or tuple(chain)
    return tree


def project_units(projects: Iterable[Mapping[str, Any]], milestone_depth: int = 2) -> dict[str, str]:
    """Where the time of each sub-project that is no job or milestone row goes: a project deeper
    than ``milestone_depth`` -> its ancestor at that depth (the milestone); a sub-project above it
    (depth 2..milestone_depth-1) -> its top-level project (the job). Projects whose chain cannot be
    followed are left out (their time is set aside as on an unknown project)."""
    units: dict[str, str] = {}
    for project_id, chain in project_tree(projects).items():
        if isinstance(chain, str) or len(chain) in (1, milestone_depth):
            continue
        units[project_id] = chain[-1] if len(chain) < milestone_depth else chain[len(chain) - milestone_depth]
    return units


def projects_to_jobs(
    projects: Iterable[Mapping[str, Any]],
    budget_hours: Iterable[Mapping[str, Any]],
    budget_costs: Iterable[Mapping[str, Any]],
    settings: CompanySettings,
    company_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """The jobs rows: top-level projects are jobs, sub-projects at the company's milestone depth
    (``settings.busybusy_milestone_depth``, 2 by default) milestones of their top-level project.

    Returns (rows, set-aside records, sub-projects at any other depth): those yield no row by
    design, their time counts to an ancestor (``project_units``)."""
    projects = list(projects)
    milestone_depth = settings.busybusy_milestone_depth
    tree = project_tree(projects)
    frame = records_frame(projects)
    reasons = no_reasons(frame)
    job_id = id_text(column(frame, "id"))
    reasons = collect(reasons, job_id.isna(), "id is missing")
    # As floats (NaN: none): an integer too large for a float is just beyond any depth.
    depth = (
        column(frame, "depth")
        .map(lambda v: math.nan if _depth_of(v) is None else float(v) if abs(v) < 2**53 else math.inf)
        .astype(float)
    )
    reasons = collect(reasons, depth.isna(), "depth is missing or not an integer")
    reasons = collect(reasons, depth.notna() & ~depth.between(1, MAX_DEPTH), f"depth is not 1..{MAX_DEPTH}")
    parent = id_text(column(frame, "parentProjectId"))
    reasons = collect(reasons, (depth >= 2) & parent.isna(), "a sub-project (depth 2 or more) has no parentProjectId")
    reasons = collect(reasons, (depth == 1) & parent.notna(), "a depth-1 project has a parentProjectId")
    chain = job_id.map(lambda j: tree.get(j) if isinstance(j, str) else None)
    broken = chain.map(lambda c: c if isinstance(c, str) else "")
    checked = depth.between(1, MAX_DEPTH) & ~((depth >= 2) & parent.isna()) & ~((depth == 1) & parent.notna())
    for message in sorted(set(broken[checked]) - {""}):
        reasons = collect(reasons, checked & (broken == message), message)
    # The job of a milestone is its top-level project (the end of its chain), whatever the depth.
    root = chain.map(lambda c: c[-1] if isinstance(c, tuple) else None)
    folded = (reasons == "") & job_id.notna() & depth.notna() & (depth != 1) & (depth != milestone_depth)
    title = column(frame, "title").map(lambda v: v if isinstance(v, str) and v.strip() else None)
    reasons = collect(reasons, title.isna(), "title is missing")
    seconds, bad_seconds = _latest_budgets(budget_hours, "budgetSeconds")
    costs, bad_costs = _latest_budgets(budget_costs, "costBudget")
    reasons = collect(
        reasons,
        job_id.isin({p for p, c in bad_seconds if c == _PROJECT}),
        "a budgetHours budgetSeconds is not a number of seconds",
    )
    reasons = collect(
        reasons, job_id.isin({p for p, c in bad_costs if c == _PROJECT}), "a budgetCosts costBudget is not a $ amount"
    )
    created, bad_created = utc(column(frame, "createdOn"))
    reasons = collect(reasons, bad_created, "createdOn is not ISO 8601")
    archived, bad_archived = utc(column(frame, "archivedOn"))
    reasons = collect(reasons, bad_archived, "archivedOn is not ISO 8601")
    modified, bad_modified = utc(column(frame, "updatedOn"))
    reasons = collect(reasons, bad_modified | modified.isna(), "updatedOn is missing or not ISO 8601")
    info = column(frame, "projectInfo").map(lambda v: v if isinstance(v, dict) else {})
    drive_own = title.map(lambda t: settings.is_drive_job(t) if isinstance(t, str) else False)
    drive_by_id = dict(zip(job_id, drive_own))
    top = parent.isna()
    parent = root.where(~top, None)
    is_drive = drive_own.where(top, parent.map(lambda p: drive_by_id.get(p, False))).astype(bool)
    budget_cost = job_id.map(lambda j: costs.get((j, _PROJECT))).astype(float)
    reasons = collect(
        reasons, too_large(budget_cost, MAX_AMOUNT), "the budgetCosts costBudget total is beyond any $ amount"
    )
    jobs = pd.DataFrame(
        {
            "company_id": company_id,
            "job_id": job_id,
            "parent_job_id": parent.where(~top, None),
            "level": top.map({True: "job", False: "milestone"}),
            "name": title,
            "short_code": info.map(lambda i: i.get("number") or None),
            "budget_hours": job_id.map(
                lambda j: seconds[(j, _PROJECT)] / 3600 if (j, _PROJECT) in seconds else None
            ).astype(float),
            "budget_cost": budget_cost,
            "budget_type": None,
            "budget_amount": budget_cost if settings.default_budget_type == "amount" else float("nan"),
            "contract_price": float("nan"),
            "labor_budget_percent": float("nan"),
            "rate": float("nan"),
            "quantity": float("nan"),
            "service_type": None,
            "property_id": None,
            "status": archived.isna().map({True: "open", False: "completed"}),
            "recurring": False,
            "is_drive": is_drive,
            "active": archived.isna(),
            "created_date": _local_date(created, settings.timezone or "UTC"),
            "source_modified_at": modified,
        },
        index=frame.index,
    )
    keep = ~folded
    rows, aside = split(jobs[keep], frame[keep], job_id[keep], reasons[keep])
    return rows, aside, int(folded.sum())


def budgets_to_task_lines(
    budget_hours: Iterable[Mapping[str, Any]],
    budget_costs: Iterable[Mapping[str, Any]],
    cost_codes: Iterable[Mapping[str, Any]],
    job_ids: Iterable[str],
    company_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The task_lines rows: the latest cost-code budgets (hours and $) of each project among
    ``job_ids`` (module docstring). A record is one (project, cost code) with its budget rows."""
    budget_hours, budget_costs = list(budget_hours), list(budget_costs)
    seconds, bad_seconds = _latest_budgets(budget_hours, "budgetSeconds")
    costs, bad_costs = _latest_budgets(budget_costs, "costBudget")
    keys = sorted({k for k in [*seconds, *bad_seconds, *costs, *bad_costs] if k[1] != _PROJECT})
    names = {
        code_id: (c.get("title") if isinstance(c.get("title"), str) and c["title"].strip() else c.get("costCode"))
        for c in cost_codes
        if (code_id := id_of(c.get("id")))
    }
    known = set(job_ids)
    rows_of: dict[tuple[str, str], dict[str, list[Mapping[str, Any]]]] = {
        key: {"budgetHours": [], "budgetCosts": []} for key in keys
    }
    for name, records in (("budgetHours", budget_hours), ("budgetCosts", budget_costs)):
        for record in records:
            project_id, code_id = id_of(record.get("projectId")), id_of(record.get("costCodeId"))
            if project_id is not None and code_id is not None and (project_id, code_id) in rows_of:
                rows_of[(project_id, code_id)][name].append(record)
    raw = [{"projectId": project, "costCodeId": code, **rows_of[(project, code)]} for project, code in keys]
    frame = records_frame(raw)
    reasons = no_reasons(frame)
    project = pd.Series([k[0] for k in keys], index=frame.index, dtype=object)
    reasons = collect(
        reasons, ~project.isin(known), "projectId is not a mapped job or milestone (set aside, or not listed)"
    )
    reasons = collect(
        reasons,
        pd.Series([k in bad_seconds for k in keys], index=frame.index, dtype=bool),
        "a budgetHours budgetSeconds is not a number of seconds",
    )
    reasons = collect(
        reasons,
        pd.Series([k in bad_costs for k in keys], index=frame.index, dtype=bool),
        "a budgetCosts costBudget is not a $ amount",
    )
    amount = pd.Series([costs.get(k) for k in keys], index=frame.index, dtype=float)
    reasons = collect(reasons, too_large(amount, MAX_AMOUNT), "the costBudget is beyond any $ amount")
    lines = pd.DataFrame(
        {
            "company_id": company_id,
            "job_id": project,
            "task_id": pd.Series([k[1] for k in keys], index=frame.index, dtype=object),
            "name": pd.Series([names.get(k[1]) for k in keys], index=frame.index, dtype=object),
            "budget_hours": pd.Series(
                [seconds[k] / 3600 if k in seconds else None for k in keys], index=frame.index, dtype=float
            ),
            "budget_amount": amount,
        },
        index=frame.index,
    )
    return split(lines, frame, pd.Series([f"{p}/{c}" for p, c in keys], index=frame.index, dtype=object), reasons)


def _break_seconds(breaks: Any, start: pd.Timestamp, end: pd.Timestamp) -> float | None:
    """Seconds of breaks inside [start, end]; None when the breaks are malformed."""
    if breaks is None:
        return 0.0
    if not isinstance(breaks, list):
        return None
    total = 0.0
    for item in breaks:
        if not isinstance(item, dict):
            return None
        b_start = _timestamp(item.get("startTime"))
        b_end = _timestamp(item.get("endTime")) if item.get("endTime") else end
        if b_start is None or b_end is None or b_end < b_start:
            return None
        try:
            total += max(0.0, min(b_end, end).timestamp() - max(b_start, start).timestamp())
        except (OverflowError, ValueError):
            return None
    return total


def _entry_types(action: pd.Series) -> pd.Series:
    """manual for ``actionType`` 30, else regular (compared at once in a column of numbers)."""
    if isinstance(action.dtype, np.dtype) and action.dtype.kind in "iuf":
        return pd.Series(np.where(action.to_numpy() == MANUAL_ACTION_TYPE, "manual", "regular"), index=action.index)
    return action.map(lambda a: "manual" if a == MANUAL_ACTION_TYPE else "regular")


_NANOS_PER_SECOND = 1_000_000_000


def _breaks_of_entries(listed: list[Any], start: pd.Series, until: pd.Series) -> pd.Series:
    """``_break_seconds`` of every entry (NaN where malformed; 0 for an entry without both times or
    without breaks), the breaks of all entries worked out at once.

    Breaks in the usual shape (a list of objects whose startTime, and endTime when given, are ISO
    8601 texts of whole seconds, like every other stamp BusyBusy sends) are parsed column-wise and
    clipped to their entry with integer nanoseconds: whole seconds are exact as floats, so the sums
    are the ones ``_break_seconds`` gives. An entry with a break in any other shape (text pandas
    cannot read as ISO 8601, fractions of a second, not a list of objects) goes through
    ``_break_seconds`` itself."""
    seconds = np.zeros(len(listed))
    timed = (start.notna() & until.notna()).to_numpy()
    start_ns, until_ns = _nanoseconds(start), _nanoseconds(until)
    # The breaks of entries in the usual shape, flattened (entry, start text, end text or None);
    # any other entry is worked out by _break_seconds.
    entries: list[int] = []
    break_starts, break_ends, one_by_one = [], [], []
    for position in _listing_breaks(listed).tolist():
        if not timed[position]:
            continue
        value = listed[position]
        if type(value) is list:
            listed_before = len(entries)
            for item in value:
                if type(item) is not dict:
                    break
                break_start, break_end = item.get("startTime"), item.get("endTime")
                if type(break_start) is not str or not (type(break_end) is str or not break_end):
                    break
                entries.append(position)
                break_starts.append(break_start)
                break_ends.append(break_end or None)  # none given: the break runs to the entry's end
            else:
                continue
            del entries[listed_before:], break_starts[listed_before:], break_ends[listed_before:]
        one_by_one.append(position)
    if entries:
        entry = np.asarray(entries)
        break_start = _nanoseconds(utc(pd.Series(break_starts, dtype="str"))[0])
        given = np.asarray([end is not None for end in break_ends])
        break_end = np.where(given, _nanoseconds(utc(pd.Series(break_ends, dtype="str"))[0]), until_ns[entry])
        readable = (break_start != _NAT) & (break_end != _NAT)
        whole = (
            (break_start % _NANOS_PER_SECOND == 0)
            & (break_end % _NANOS_PER_SECOND == 0)
            & (start_ns[entry] % _NANOS_PER_SECOND == 0)
            & (until_ns[entry] % _NANOS_PER_SECOND == 0)
        )
        # An entry with any break unread or not in whole seconds is worked out by _break_seconds.
        by_hand = np.zeros(len(listed), dtype=bool)
        np.logical_or.at(by_hand, entry, ~(readable & whole))
        one_by_one.extend(np.unique(entry[by_hand[entry]]).tolist())
        fast = ~by_hand[entry]
        entry, break_start, break_end = entry[fast], break_start[fast], break_end[fast]
        inside = np.maximum(0, np.minimum(break_end, until_ns[entry]) - np.maximum(break_start, start_ns[entry]))
        seconds += np.bincount(entry, weights=(inside // _NANOS_PER_SECOND).astype(float), minlength=len(listed))
        malformed = np.zeros(len(listed), dtype=bool)
        np.logical_or.at(malformed, entry, break_end < break_start)
        seconds[malformed] = np.nan
    for position in one_by_one:
        # Only timed entries (start and end known) are worked out one by one.
        found = _break_seconds(
            listed[position], cast(pd.Timestamp, start.iat[position]), cast(pd.Timestamp, until.iat[position])
        )
        seconds[position] = np.nan if found is None else found
    return pd.Series(seconds, index=start.index, dtype=float)


def _listing_breaks(listed: list[Any]) -> np.ndarray:
    """Positions of the entries that list breaks: any value but None and [] (something else is
    read, and found malformed, by ``_break_seconds``). Most entries have none: when the only falsy
    values are None and [], the truthy ones are the answer, told apart at C speed."""
    truthy = np.fromiter(map(bool, listed), dtype=bool, count=len(listed))
    if len(listed) - int(truthy.sum()) == listed.count(None) + listed.count([]):
        return np.flatnonzero(truthy)
    return np.asarray(
        [position for position, value in enumerate(listed) if value is not None and value != []], dtype=np.intp
    )


_NAT = np.iinfo(np.int64).min  # NaT as int64 nanoseconds


def _nanoseconds(moments: pd.Series) -> np.ndarray:
    """UTC datetime64[ns] values as int64 nanoseconds since the epoch (NaT -> ``_NAT``)."""
    return moments.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype("int64")


def _epoch_seconds(moments: pd.Series) -> pd.Series:
    """Seconds since the epoch as floats (NaN for NaT): differences of far-apart instants cannot
    overflow the way nanosecond timedeltas do."""
    nanos = moments.dt.tz_convert(None).to_numpy().astype("datetime64[ns]").astype("int64")
    return pd.Series(nanos / 1e9, index=moments.index).where(moments.notna())


def _jobs_of_projects(projects: pd.Series, jobs_by_id: pd.DataFrame, units: Mapping[str, str]) -> dict[str, pd.Series]:
    """The ``project`` ids as text, and their entries' jobs (``jobs_of_entries``): a sub-project
    without a row of its own counts as the job or milestone ``units`` names for it."""
    ids = id_text(projects)
    unit = ids.map(lambda i: units.get(i, i) if isinstance(i, str) else i) if units else ids
    return {"project": ids, **jobs_of_entries(unit, jobs_by_id)}


def _known_ids(values: pd.Series, known: set[str]) -> dict[str, pd.Series]:
    """The ids of ``values`` as text, which are missing, and which are among ``known``."""
    ids = id_text(values)
    return {"id": ids, "missing": ids.isna(), "known": ids.isin(known)}


# The fields of a time entry the attendance mapping reads.
_ENTRY_FIELDS = (
    "id",
    "memberId",
    "projectId",
    "costCodeId",
    "startTime",
    "endTime",
    "breaks",
    "actionType",
    "updatedOn",
    "deletedOn",
)


def time_entries_to_attendance(
    entries: Iterable[Mapping[str, Any]],
    jobs: pd.DataFrame,
    worker_ids: Iterable[str],
    company_id: str,
    timezone: str,
    now: datetime,
    drive_cost_code_ids: Iterable[str] = (),
    project_units: Mapping[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Map time entries to attendance rows.

    Returns (attendance candidates, set-aside rows, number removed as soft-deleted). ``now`` is the
    vendor clock that running entries count up to; ``drive_cost_code_ids`` are the cost codes whose
    time is drive time; ``project_units`` (``project_units()``) says which job or milestone the time
    on a sub-project without a row of its own counts to.
    """
    units = dict(project_units or {})
    frame = records_frame(entries, _ENTRY_FIELDS)
    if frame.empty:
        return (
            pd.DataFrame(columns=["company_id"]),
            set_aside_frame(frame, pd.Series(dtype=object), pd.Series(dtype=object)),
            0,
        )
    clock = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now).tz_localize("UTC")
    deleted_on, bad_deleted = utc(column(frame, "deletedOn"))
    deleted = deleted_on.notna()
    # Deleted entries are mapped with the rest (no copy of the records) and dropped by split().
    reasons = no_reasons(frame)
    reasons = collect(reasons, bad_deleted, "deletedOn is not ISO 8601")
    entry_id = id_text(column(frame, "id"))
    reasons = collect(reasons, entry_id.isna(), "id is missing")

    # Members, projects and cost codes are a few hundred UUIDs over all entries: each is read once.
    known_workers = set(worker_ids)
    worker = per_distinct(column(frame, "memberId"), lambda members: _known_ids(members, known_workers))
    worker_id = worker["id"]
    reasons = collect(reasons, worker["missing"], "memberId is missing")
    reasons = collect(reasons, ~worker["missing"] & ~worker["known"], "memberId is not a known worker")

    jobs_by_id = jobs.set_index("job_id") if len(jobs) else pd.DataFrame(columns=["parent_job_id", "is_drive"])
    job = per_distinct(column(frame, "projectId"), lambda projects: _jobs_of_projects(projects, jobs_by_id, units))
    no_project = job["project"].isna()
    reasons = collect(reasons, no_project, "projectId is missing")
    reasons = collect(reasons, ~no_project & ~job["known"], "projectId is not a known job or milestone")
    drive_codes = set(drive_cost_code_ids)
    cost_code = per_distinct(column(frame, "costCodeId"), lambda codes: _known_ids(codes, drive_codes))
    is_drive = job["is_drive"] | cost_code["known"]

    start, bad_start = utc(column(frame, "startTime"))
    end, bad_end = utc(column(frame, "endTime"))
    reasons = collect(reasons, bad_start | start.isna(), "startTime is missing or not ISO 8601")
    reasons = collect(reasons, bad_end, "endTime is not ISO 8601")
    running = end.isna() & ~bad_end
    reasons = collect(
        reasons, running & start.notna() & (start > clock), "a running entry starts after the vendor clock"
    )
    until = end.where(~running, clock)
    breaks = column(frame, "breaks")
    # A column of lists is kept as the records hold it; one pandas read as numbers or text holds NaN for None.
    listed = breaks.tolist() if breaks.dtype == object else [raw.get("breaks") for raw in frame["_raw"]]
    break_seconds = _breaks_of_entries(listed, start, until)
    reasons = collect(
        reasons,
        break_seconds.isna(),
        "breaks are malformed (a break without a valid startTime, or ending before it starts)",
    )
    worked = _epoch_seconds(until) - _epoch_seconds(start) - break_seconds.fillna(0).astype(float)
    reasons = collect(reasons, worked.notna() & (worked < 0), "endTime is before startTime, or breaks exceed the entry")
    action = column(frame, "actionType")
    modified, bad_modified = utc(column(frame, "updatedOn"))
    reasons = collect(reasons, bad_modified | modified.isna(), "updatedOn is missing or not ISO 8601")

    attendance = pd.DataFrame(
        {
            "company_id": company_id,
            "entry_id": entry_id,
            "worker_id": worker_id,
            "job_id": job["job_id"],
            "milestone_id": job["milestone_id"],
            "task_id": cost_code["id"],
            "work_date": _local_date(start, timezone),
            "start_at": start,
            "end_at": end,
            "hours": worked / 3600.0,
            "is_drive": is_drive.astype(bool),
            "on_the_clock": running.astype(bool),
            "entry_type": _entry_types(action),
            "source_modified_at": modified,
        },
        index=frame.index,
        copy=False,
    )
    return (*split(attendance, frame, entry_id, reasons, live=~deleted), int(deleted.sum()))


def drive_cost_code_ids(cost_codes: Iterable[Mapping[str, Any]], settings: CompanySettings) -> set[str]:
    """Cost codes whose title (or code) matches the company's drive patterns."""
    return {
        str(c["id"])
        for c in cost_codes
        if c.get("id")
        and any(isinstance(t, str) and settings.is_drive_job(t) for t in (c.get("title"), c.get("costCode")))
    }
