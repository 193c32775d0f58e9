"""Aspire records -> the cleaned tables every vendor shares. Pure pandas: no HTTP, no SQL.

Field mapping (why in parentheses):

| cleaned column             | Aspire source                                                              |
|----------------------------|----------------------------------------------------------------------------|
| workers.worker_id          | Contact ``ContactID`` (employees are Contacts with ``ContactTypeName`` 'Employee') |
| workers.first/last_name    | ``FirstName`` / ``LastName``                                               |
| workers.active             | ``Active``                                                                 |
| workers.hourly_wage        | the employee's pay rate in force today: of the ``/PayRates`` worker_wages keeps, the latest ``EffectiveDate`` on or before today (a future-dated rate is not yet in force). Fallback for an employee with none: ``BaseHourlyRate`` of their latest work ticket time (by ``WorkTicketTimeDate``, then id) with a usable rate (0 to under $1,000,000); null without either |
| workers.pay_interval       | ``hour`` when a wage was found (both are hourly), else null                |
| worker_wages               | one row per ``/PayRates`` record of a mapped employee (``ContactID``): effective_date = date of ``EffectiveDate`` (branch-local wall time), hourly_wage = ``HourlyBasePay``, pay_interval ``hour``, burden_percent = ``BurdenPercent``. Future-dated rates are kept (in force from their date). Two rates of one employee effective the same date are both set aside: which one is paid is unknown. Time rows' ``BaseHourlyRate`` gives no history rows (it is the workers.hourly_wage fallback only) |
| workers.hire_date          | null (the Contact has no hire date)                                        |
| workers.term_date          | date part of ``TerminationDate``                                           |
| jobs.job_id (job)          | Opportunity ``OpportunityID`` (an opportunity is a job)                    |
| jobs.job_id (milestone)    | ``WT-<WorkTicketID>``: work tickets are milestones; prefixed because ticket and opportunity ids are separate number spaces in Aspire |
| jobs.level                 | An opportunity with two or more work tickets has milestones; with ONE ticket the ticket is the job itself (every Aspire time row needs a ticket, so a job without phases still has one: no milestone row, its time lands on the job), except on a recurring opportunity: its one ticket is its milestone, so that (rules §9) a recurring job whose only work unit is one ticket gets one ProPay for that ticket (its time and crew leaders land on the milestone; a ticket is a milestone when its ``WT-`` row is in the jobs table) |
| jobs.name / short_code     | ``OpportunityName`` / ``OpportunityNumber``; milestone: "Work ticket #<WorkTicketNumber>" (ProPay names prefix the job) / ``WorkTicketNumber`` (a ticket has no name of its own) |
| jobs.budget_hours          | milestone: ``HoursEst``; job with one ticket: that ticket's ``HoursEst``, else ``EstimatedLaborHours``; job without tickets: ``EstimatedLaborHours``; job with milestones: null (the budget is on the milestones), except a recurring job with one ticket: ``EstimatedLaborHours``, which its milestone's ProPay takes when the ticket has no ``HoursEst`` |
| jobs.status                | ``OpportunityStatusName`` / ``WorkTicketStatusName`` (else ``WorkTicketStatus``): Won/Open/Scheduled/Pending Approval/In Progress -> open, Complete(d)/Closed -> completed, Cancelled/Canceled/Lost -> canceled; anything else is set aside. "Won" is a sale, not finished work, so the work's own state settles it: a job takes its opportunity's ``JobStatusName`` and ``CompleteDate`` and, when its one ticket is the job, that ticket's status and ``CompleteDate``; a milestone its ticket's status and ``CompleteDate``. Any of them canceled (Cancelled ticket, Lost opportunity, Cancelled job status) makes it canceled (a canceled ProPay pays nothing, so canceled wins); else any completed one or a ``CompleteDate`` makes it completed; else the status above. An unknown ``JobStatusName`` is ignored |
| jobs.recurring             | ``OpportunityType`` 'Contract' (Aspire's recurring maintenance contracts; 'Work Order' = one-off); milestones inherit it |
| jobs.active                | status is open                                                             |
| jobs.property_id           | ``PropertyID`` of the opportunity when Aspire sends it, else its ``PropertyName`` (the client site, for exclusion by property); milestones take their job's in the ProPay engine |
| jobs.service_type          | ``DivisionName`` of the opportunity when sent (Aspire's service lines, e.g. Maintenance, Enhancements; for exclusion by service type); null otherwise |
| jobs.budget_type and $ budget columns | null: the budget is ``EstimatedLaborHours``/``HoursEst`` hours, the company's ``default_budget_type`` applies (a $ labor budget is not read yet) |
| jobs.created_date          | date of the opportunity's ``CreatedDateTime`` (branch-local wall time, Aspire's only creation field of an opportunity); milestones: their ticket's ``CreatedDateTime``; the drive job: null |
| task_lines                 | ``/OpportunityServices`` (Opportunity -> services -> work tickets): job_id = ``OpportunityID``, task_id = ``OpportunityServiceID``, name = ``DisplayName``, budget_hours = ``ExtendedHours`` (the service's estimated hours over all its occurrences), budget_amount = ``LaborExtendedCost`` (its estimated labor $). A service of an opportunity that is not a mapped job is set aside |
| job_assignments            | crew_lead: ``CrewLeaderContactID`` of each work ticket, and of each work ticket time read by the jobs asset (the ``wage_lookback_days`` before today), on the ticket's job or milestone (see jobs.level); one row per job or milestone and lead. Aspire has no manager per ticket in this mapping. A ticket unknown or set aside is set aside with the row |
| jobs (drive job)           | one synthetic job ``DRIVE_JOB_ID`` named "Drive Time", ``is_drive`` true: Aspire has no drive job, drive/shop time is clock time not allocated to work tickets |
| attendance.entry_id        | ``WorkTicketTimeID``; drive rows ``ClockTime-<ClockTimeID>``               |
| attendance.worker_id       | ``ContactID``                                                              |
| attendance.job_id/milestone_id | the ticket's opportunity / ``WT-<WorkTicketID>`` (see jobs.level)     |
| attendance.task_id         | the ticket's ``OpportunityServiceID`` (the service is the line item); null on drive rows and for a ticket without one |
| attendance.work_date       | date part of ``WorkTicketTimeDate`` (branch-local); drive rows: local date of ``ClockStart`` |
| attendance.start_at/end_at | ``StartTime``/``EndTime``: branch-local wall time without offset, localised in the row's zone and converted to UTC; for a repeated (fall-back) hour the fold that makes end - start agree with ``Hours + BreakTime`` wins, so the real elapsed time is kept |
| attendance.hours           | ``Hours`` (the vendor's worked hours, breaks excluded); a running time (``StartTime`` set, ``EndTime`` null; Aspire leaves ``Hours`` null until clock-out): the time from ``StartTime`` up to the sync time (the vendor's clock, below) less ``BreakTime``; one that starts after the sync time is set aside. Drive rows: ``ClockEnd - ClockStart - BreakTime`` minus the ``Hours`` of the employee's ticket times that start inside the clock time, minus the employee's distributed time of that day (below) |
| attendance.on_the_clock    | ``StartTime`` set and ``EndTime`` null: a running time is an on-the-clock row, as with the other vendors |
| attendance.entry_type      | manual when ``StartTime`` and ``EndTime`` are both null, else regular      |
| attendance.source_modified_at | ``LastModifiedDateTime`` (local -> UTC); drive rows: ``ClockEnd`` (ClockTimes carry no modified stamp) |

Time zones: the row's ``BranchTimeZone`` (a Windows zone name such as "Central Standard Time", or an
IANA name), else the zone of its branch (``Branch.TimeZone``), else the company default; the
company setting ``timezone`` (when set) overrides them all. The same zone turns ``ModifiedDate`` and
``LastModifiedDateTime`` into UTC.

Running times count up to the vendor's clock: the source takes it from the HTTP ``Date`` header of
the WorkTicketTimes answer and stores it in the raw feeds (``vendorClock``), so a later re-mapping of
the same feeds gives the same hours.

Distributed time: a ticket time with ``Hours`` and neither ``StartTime`` nor ``EndTime`` is clock time
the crew leader spread over tickets by hours. It is ticket time (a ``manual`` row) AND lies inside
the day's clock time, so its hours are taken out of the unallocated remainder of the employee's clock
times that start on its work date (the latest clock time first, each down to zero at most), just like
timed rows: the day totals the clock time. Without clock time that day it stands alone.

Clock times still running (no ``ClockEnd``) give no drive row: the running ticket time carries the
time. A clock time whose ticket times cover it fully gives no row either; ``times_to_attendance``
returns how many, so fetched = loaded + set aside + fully allocated reconciles across both feeds.

Every record that cannot be mapped is returned in the set-aside frame with its reason and the record
as received, never dropped.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from protiv_dagster.vendors.mapping import (
    MAX_AMOUNT,
    MAX_WAGE,
    calendar_days,
    collect,
    column,
    id_of,
    id_text,
    in_range,
    is_text_column,
    no_reasons,
    not_a_whole_number,
    numbers,
    records_frame,
    set_aside_frame,
    split,
    stripped,
    too_large,
)

DRIVE_JOB_ID = "aspire-unallocated-clock-time"
DRIVE_JOB_NAME = "Drive Time"
MILESTONE_PREFIX = "WT-"
CLOCK_ENTRY_PREFIX = "ClockTime-"
_EPOCH = pd.Timestamp("2000-01-01", tz="UTC")
_FIRST_WALL_TIME = datetime(1677, 9, 23)  # datetime64[ns] holds 1677-09-21 to 2262-04-11
_LAST_WALL_TIME = datetime(2262, 4, 9)
_MIN_DRIVE_HOURS = 1 / 3600  # under a second of unallocated clock time is rounding, not drive time

# Windows zone names (what a .NET service stores) -> IANA (CLDR windowsZones, US and common zones).
WINDOWS_TO_IANA = {
    "Eastern Standard Time": "America/New_York",
    "Central Standard Time": "America/Chicago",
    "Mountain Standard Time": "America/Denver",
    "US Mountain Standard Time": "America/Phoenix",
    "Pacific Standard Time": "America/Los_Angeles",
    "Alaskan Standard Time": "America/Anchorage",
    "Hawaiian Standard Time": "Pacific/Honolulu",
    "Atlantic Standard Time": "America/Halifax",
    "Newfoundland Standard Time": "America/St_Johns",
    "US Eastern Standard Time": "America/Indianapolis",
    "Canada Central Standard Time": "America/Regina",
    "Central Standard Time (Mexico)": "America/Mexico_City",
    "GMT Standard Time": "Europe/London",
    "UTC": "UTC",
}

_STATUS = {
    "won": "open",
    "open": "open",
    "scheduled": "open",
    "pending approval": "open",
    "in progress": "open",
    "active": "open",
    "complete": "completed",
    "completed": "completed",
    "closed": "completed",
    "cancelled": "canceled",
    "canceled": "canceled",
    "lost": "canceled",
}


def iana_zone(name: Any) -> str | None:
    """An IANA zone for a Windows or IANA zone name; None when unknown."""
    if not isinstance(name, str) or not name.strip():
        return None
    name = name.strip()
    if name in WINDOWS_TO_IANA:
        return WINDOWS_TO_IANA[name]
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a file path
        return None
    return name


@dataclass
class Zones:
    """Which IANA zone a record's wall times are in: override > row > branch > default."""

    by_branch: dict[str, str] = field(default_factory=dict)
    default: str | None = None
    override: str | None = None

    def resolve(self, row_zone: Any = None, branch_id: Any = None) -> str | None:
        if self.override:
            return self.override
        branch = _id(branch_id)
        return iana_zone(row_zone) or (self.by_branch.get(branch) if branch is not None else None) or self.default


def branch_zones(branches: Iterable[Mapping[str, Any]], override: str | None = None) -> Zones:
    """Zones from ``/Branches``; the default is the zone of the first branch that names a known one."""
    by_branch: dict[str, str] = {}
    for branch in sorted(branches, key=lambda b: str(b.get("BranchID"))):
        zone = iana_zone(branch.get("TimeZone"))
        branch_id = _id(branch.get("BranchID"))
        if zone and branch_id:
            by_branch[branch_id] = zone
    return Zones(by_branch, next(iter(by_branch.values()), None), override)


def _id(value: Any) -> str | None:
    return id_of(value)


def _wall_time(value: Any) -> datetime | None:
    """One offset-less local date-time from ISO 8601 text; None when missing, blank or bad."""
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is not None:  # a value with an offset is taken at its word
        try:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        except OverflowError:  # year 1 or 9999 shifted past the calendar's ends
            return None
    # The cleaned tables hold datetime64[ns]: a year beyond it (a day's margin for the zone
    # conversion) is a bad value, set aside, not a crash of the whole mapping.
    return parsed if _FIRST_WALL_TIME <= parsed <= _LAST_WALL_TIME else None


def _wall_times(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Offset-less local date-times as datetime64[ns] (NaT when missing or bad); also which
    non-empty values failed."""
    if is_text_column(values):
        # A column of text: the plain "YYYY-MM-DDTHH:MM:SS" values Aspire sends are parsed at once;
        # the values that do not parse as they stand are told apart by ``_wall_times_of_text``.
        parsed = _in_wall_range(pd.to_datetime(values, format=_PLAIN_WALL_TIME, errors="coerce"))
        failed = parsed.isna()
        if failed.any():
            parsed[failed], failed[failed] = _wall_times_of_text(values[failed])
        return parsed, failed
    parsed = _as_wall_times([_wall_time(v) for v in values], values.index)
    present = values.map(lambda v: isinstance(v, str) and v.strip() != "")
    return parsed, present & parsed.isna()


_PLAIN_WALL_TIME = "%Y-%m-%dT%H:%M:%S"


def _wall_times_of_text(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """``_wall_times`` of a text column value by value: missing or blank text is no wall time (and
    not bad), padded text is stripped, other ISO 8601 shapes (an offset, fractions, a bare date)
    go through ``_wall_time``."""
    text = stripped(values)
    present = values.notna() & (text != "")
    parsed = _in_wall_range(pd.to_datetime(text.where(present), format=_PLAIN_WALL_TIME, errors="coerce"))
    others = present & parsed.isna()
    if others.any():
        parsed[others] = _as_wall_times([_wall_time(v) for v in values[others]], values.index[others])
    return parsed, present & parsed.isna()


def _in_wall_range(found: pd.Series) -> pd.Series:
    return in_range(found, _FIRST_WALL_TIME, _LAST_WALL_TIME).astype("datetime64[ns]")


def _as_wall_times(found: list[datetime | None], index: pd.Index) -> pd.Series:
    return pd.to_datetime(pd.Series(found, index=index, dtype=object)).astype("datetime64[ns]")


def _hours_between(start: pd.Timestamp | None, end: pd.Timestamp | None) -> float:
    """Hours from ``start`` to ``end``, both known (rows with a start, an end and a zone)."""
    assert start is not None and end is not None
    return (end - start).total_seconds() / 3600


def _to_utc(local: datetime | pd.Timestamp | None, zone: str | None, fold: int = 0) -> pd.Timestamp | None:
    if local is None or not isinstance(zone, str) or pd.isna(local):
        return None
    if isinstance(local, pd.Timestamp):  # a wall time of ``_wall_times``: whole microseconds
        local = local.to_pydatetime()
    return pd.Timestamp(local.replace(tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC))


def _localised(locals_: pd.Series, zones: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(rows with a wall time and a zone name, those wall times localised zone by zone at once in
    UTC): NaT where the zone's clock skips or repeats the time (daylight saving changes).

    ``locals_`` are datetime64[ns] wall times; ``zones`` IANA names or missing."""
    result = pd.Series(pd.NaT, index=locals_.index, dtype="datetime64[ns, UTC]")
    present = locals_.notna() & zones.notna()
    if not present.any():
        return present, result
    wall = locals_[present]
    zone_of = zones[present]
    for zone in zone_of.unique():
        in_zone = zone_of == zone
        localised = wall[in_zone].dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        result[localised.index] = localised.astype("datetime64[ns, UTC]")
    return present, result


def _utc_series(locals_: pd.Series, zones: pd.Series) -> pd.Series:
    """``_to_utc`` (fold 0) of every wall time in its row's zone, localised zone by zone at once;
    wall times a zone skips or repeats (daylight saving changes) go through ``_to_utc`` itself."""
    return _utc_and_clock_changes(locals_, zones)[0]


def _utc_and_clock_changes(locals_: pd.Series, zones: pd.Series) -> tuple[pd.Series, pd.Series]:
    """(``_utc_series``, which wall times fall where their zone's clock jumps). At a daylight
    saving change an hour comes twice or never: there fold 0 and fold 1 name different instants."""
    present, result = _localised(locals_, zones)
    changes = present & result.isna()
    if changes.any():
        result[changes] = _utc_frame_series(
            [_to_utc(v, z) for v, z in zip(locals_[changes], zones[changes])], locals_[changes].index
        )
    return result, changes


def _resolved_zones(zones: Zones, row_zones: pd.Series, branch_ids: pd.Series) -> pd.Series:
    """``zones.resolve`` of each row, worked out once per distinct (zone, branch) pair."""
    if row_zones.dtype != object and branch_ids.dtype != object:
        # Columns of text or numbers (what Aspire sends): the pairs are told apart by their codes.
        zone_codes, zone_names = pd.factorize(row_zones)
        branch_codes, branches = pd.factorize(branch_ids)
        # A code of -1 is a missing value: NaN (last in the lists), as the column itself gives it.
        zone_list, branch_list = [*zone_names.tolist(), float("nan")], [*branches.tolist(), float("nan")]
        pairs, row_pair = np.unique(
            (zone_codes.astype(np.int64) + 1) * len(branch_list) + branch_codes + 1, return_inverse=True
        )
        zone_of_pair = [
            zones.resolve(zone_list[pair // len(branch_list) - 1], branch_list[pair % len(branch_list) - 1])
            for pair in pairs.tolist()
        ]
        return pd.Series(np.array(zone_of_pair, dtype=object)[row_pair.ravel()], index=row_zones.index, dtype=object)
    resolved: dict[tuple[Any, ...], str | None] = {}
    result = []
    for row_zone, branch in zip(row_zones, branch_ids):
        key = (type(row_zone), row_zone, type(branch), branch)  # True and 1 are equal keys otherwise
        try:
            result.append(resolved[key])
        except KeyError:
            resolved[key] = zones.resolve(row_zone, branch)
            result.append(resolved[key])
        except TypeError:  # an unhashable value (a list or object where text was expected)
            result.append(zones.resolve(row_zone, branch))
    return pd.Series(result, index=row_zones.index, dtype=object)


def _utc_frame_series(values: list[Any], index: pd.Index) -> pd.Series:
    """UTC timestamps (None -> NaT) as a datetime64[ns, UTC] series on ``index``."""
    return pd.to_datetime(pd.Series(values, index=index, dtype=object), utc=True).astype("datetime64[ns, UTC]")


def _status(values: pd.Series) -> pd.Series:
    return values.map(lambda v: _STATUS.get(v.strip().casefold()) if isinstance(v, str) else None).astype(object)


def _ticket_status(tickets: pd.DataFrame) -> pd.Series:
    """``WorkTicketStatusName``, else the short ``WorkTicketStatus`` (both name the same status)."""
    return _status(column(tickets, "WorkTicketStatusName")).where(
        lambda found: found.notna(), _status(column(tickets, "WorkTicketStatus"))
    )


def _settled(status: pd.Series, *others: pd.Series, completed: pd.Series | None = None) -> pd.Series:
    """``status`` unless another source settles it: any canceled one cancels (canceled pays
    nothing: never overpay), else any completed one (or a ``completed`` flag, a CompleteDate)
    completes. Unknown statuses among ``others`` are ignored."""
    canceled = status.eq("canceled")
    done = pd.Series(False, index=status.index) if completed is None else completed.fillna(False).astype(bool)
    for other in others:
        canceled |= other.eq("canceled")
        done |= other.eq("completed")
    settled = status.where(~done | status.isna(), "completed")
    return settled.where(~canceled | status.isna(), "canceled").astype(object)


def _empty_aside() -> pd.DataFrame:
    frame = records_frame([])
    return set_aside_frame(frame, pd.Series(dtype=object), pd.Series(dtype=object))


# -- workers ------------------------------------------------------------------------------------------
def latest_wages(work_ticket_times: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """ContactID -> BaseHourlyRate of the latest time row that carries one."""
    latest: dict[str, tuple[str, float, float]] = {}
    for row in work_ticket_times:
        contact, rate = _id(row.get("ContactID")), row.get("BaseHourlyRate")
        if contact is None or isinstance(rate, bool) or not isinstance(rate, (int, float)):
            continue
        if not (0 <= rate < MAX_WAGE) or round(rate, 4) >= MAX_WAGE:  # also NaN, infinity, integers beyond float range
            continue
        time_id, _ = numbers(pd.Series([row.get("WorkTicketTimeID")], dtype=object))
        order = 0.0 if pd.isna(time_id.iloc[0]) else float(time_id.iloc[0])
        key = (str(row.get("WorkTicketTimeDate") or ""), order, float(rate))
        if contact not in latest or key[:2] > latest[contact][:2]:
            latest[contact] = key
    return {contact: key[2] for contact, key in latest.items()}


def pay_rates_to_wages(
    pay_rates: Iterable[Mapping[str, Any]], worker_ids: Iterable[str] | None, company_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The worker_wages rows of ``/PayRates`` (module docstring); ``worker_ids`` None takes every
    contact (for the wage in force, before the workers are known)."""
    frame = records_frame(pay_rates)
    reasons = no_reasons(frame)
    rate_id = id_text(column(frame, "PayRateID"))
    reasons = collect(reasons, rate_id.isna(), "PayRateID is missing")
    raw_contact = column(frame, "ContactID")
    worker_id = id_text(raw_contact)
    reasons = collect(reasons, worker_id.isna(), "ContactID is missing")
    reasons = collect(reasons, not_a_whole_number(raw_contact, worker_id), "ContactID is not a whole number")
    if worker_ids is not None:
        known = set(worker_ids)
        reasons = collect(
            reasons,
            worker_id.notna() & ~worker_id.isin(known),
            "ContactID is not a mapped employee (set aside, or not listed)",
        )
    effective_local, bad_effective = _wall_times(column(frame, "EffectiveDate"))
    reasons = collect(reasons, bad_effective | effective_local.isna(), "EffectiveDate is missing or not ISO 8601")
    pay, bad_pay = numbers(column(frame, "HourlyBasePay"))
    reasons = collect(reasons, bad_pay | pay.isna() | (pay < 0), "HourlyBasePay is missing or not a number of $")
    reasons = collect(
        reasons,
        pay.notna() & (pay.round(4) >= MAX_WAGE),
        "HourlyBasePay is beyond any hourly wage (at most $999,999.9999)",
    )
    burden, bad_burden = numbers(column(frame, "BurdenPercent"))
    reasons = collect(reasons, bad_burden | (burden < 0), "BurdenPercent is not a percentage")
    effective = calendar_days(effective_local)
    both = pd.DataFrame({"worker": worker_id, "day": effective})
    clash = both["worker"].notna() & both["day"].notna() & both.duplicated(["worker", "day"], keep=False)
    reasons = collect(
        reasons, clash, "another pay rate of the employee is effective the same date: which one is paid is unknown"
    )
    wages = pd.DataFrame(
        {
            "company_id": company_id,
            "worker_id": worker_id,
            "effective_date": effective,
            "hourly_wage": pay.round(4),
            "pay_interval": "hour",
            "burden_percent": burden,
        },
        index=frame.index,
    )
    return split(wages, frame, rate_id.where(rate_id.notna(), worker_id), reasons)


def wages_in_force(wages: pd.DataFrame, today: Any) -> dict[str, float]:
    """worker_id -> the hourly wage of the latest ``effective_date`` on or before ``today`` (worker_wages rows)."""
    if not len(wages):
        return {}
    current = wages[wages["effective_date"] <= today].sort_values(["worker_id", "effective_date"])
    return dict(zip(current["worker_id"], current["hourly_wage"].astype(float)))


def employees_to_workers(
    contacts: Iterable[Mapping[str, Any]], wages: Mapping[str, float], zones: Zones, company_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = records_frame(contacts)
    reasons = no_reasons(frame)
    raw_id = column(frame, "ContactID")
    worker_id = id_text(raw_id)
    reasons = collect(reasons, worker_id.isna(), "ContactID is missing")
    reasons = collect(reasons, not_a_whole_number(raw_id, worker_id), "ContactID is not a whole number")
    kind = column(frame, "ContactTypeName")
    reasons = collect(reasons, kind != "Employee", "ContactTypeName is not 'Employee'")
    active = column(frame, "Active").map(lambda v: v if isinstance(v, bool) else None)
    reasons = collect(reasons, active.isna(), "Active is missing or not a boolean")
    term_local, bad_term = _wall_times(column(frame, "TerminationDate"))
    reasons = collect(reasons, bad_term, "TerminationDate is not an ISO 8601 date-time")
    zone = column(frame, "BranchID").map(lambda b: zones.resolve(None, b))
    modified_local, bad_modified = _wall_times(column(frame, "ModifiedDate"))
    reasons = collect(reasons, bad_modified | modified_local.isna(), "ModifiedDate is missing or not ISO 8601")
    reasons = collect(reasons, zone.isna(), "no time zone: the branch has no known TimeZone and the company sets none")
    wage = worker_id.map(lambda w: wages.get(w) if w else None).astype(float)
    workers = pd.DataFrame(
        {
            "company_id": company_id,
            "worker_id": worker_id,
            "first_name": column(frame, "FirstName"),
            "last_name": column(frame, "LastName"),
            "active": active,
            "hourly_wage": wage.round(4),
            "pay_interval": wage.map(lambda w: None if pd.isna(w) else "hour").astype(object),
            "hire_date": None,
            "term_date": calendar_days(term_local),
            "source_modified_at": _utc_series(modified_local, zone),
        },
        index=frame.index,
    )
    return split(workers, frame, worker_id, reasons)


# -- jobs -----------------------------------------------------------------------------------------
def ticket_targets(work_tickets: Iterable[Mapping[str, Any]]) -> dict[str, tuple[str, str | None]]:
    """WorkTicketID -> (job id, milestone id or None): the rule of the module docstring."""
    by_opportunity: dict[str, list[str]] = defaultdict(list)
    for ticket in work_tickets:
        ticket_id, opportunity = _id(ticket.get("WorkTicketID")), _id(ticket.get("OpportunityID"))
        if ticket_id and opportunity:
            by_opportunity[opportunity].append(ticket_id)
    targets: dict[str, tuple[str, str | None]] = {}
    for opportunity, tickets in by_opportunity.items():
        for ticket_id in tickets:
            targets[ticket_id] = (opportunity, MILESTONE_PREFIX + ticket_id if len(tickets) > 1 else None)
    return targets


def milestone_target(
    target: tuple[str, str | None] | None, ticket_id: str, known_jobs: set[str] | None
) -> tuple[str, str | None] | None:
    """A ticket's (job, milestone) target, where the only ticket of a recurring opportunity is its
    milestone: ``ticket_targets`` knows tickets only, so a lone ticket whose ``WT-`` row is among
    ``known_jobs`` (the jobs table, which ``opportunities_to_jobs`` gives that row) lands on it."""
    if target is None or target[1] is not None or not known_jobs:
        return target
    milestone = MILESTONE_PREFIX + ticket_id
    return (target[0], milestone) if milestone in known_jobs else target


def ticket_services(work_tickets: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """WorkTicketID -> the ``OpportunityServiceID`` the ticket is an occurrence of (tickets naming one)."""
    services = {}
    for ticket in work_tickets:
        ticket_id, service = _id(ticket.get("WorkTicketID")), _id(ticket.get("OpportunityServiceID"))
        if ticket_id and service:
            services[ticket_id] = service
    return services


def services_to_task_lines(
    services: Iterable[Mapping[str, Any]], job_ids: Iterable[str], company_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The task_lines rows of ``/OpportunityServices`` of the opportunities among ``job_ids``."""
    frame = records_frame(services)
    reasons = no_reasons(frame)
    raw_id = column(frame, "OpportunityServiceID")
    task_id = id_text(raw_id)
    reasons = collect(reasons, task_id.isna(), "OpportunityServiceID is missing")
    reasons = collect(reasons, not_a_whole_number(raw_id, task_id), "OpportunityServiceID is not a whole number")
    job_id = id_text(column(frame, "OpportunityID"))
    reasons = collect(reasons, job_id.isna(), "OpportunityID is missing")
    reasons = collect(
        reasons,
        job_id.notna() & ~job_id.isin(set(job_ids)),
        "OpportunityID is not a mapped job (set aside, or not listed)",
    )
    hours, bad_hours = numbers(column(frame, "ExtendedHours"))
    reasons = collect(reasons, bad_hours | (hours < 0), "ExtendedHours is not a number of hours")
    amount, bad_amount = numbers(column(frame, "LaborExtendedCost"))
    reasons = collect(reasons, bad_amount | (amount < 0), "LaborExtendedCost is not a $ amount")
    reasons = collect(reasons, too_large(amount, MAX_AMOUNT), "LaborExtendedCost is beyond any $ amount")
    lines = pd.DataFrame(
        {
            "company_id": company_id,
            "job_id": job_id,
            "task_id": task_id,
            "name": column(frame, "DisplayName").map(_text),
            "budget_hours": hours,
            "budget_amount": amount.round(2),
        },
        index=frame.index,
    )
    return split(lines, frame, task_id, reasons)


def crew_leaders_to_assignments(
    work_tickets: Iterable[Mapping[str, Any]],
    ticket_times: Iterable[Mapping[str, Any]],
    job_ids: Iterable[str],
    company_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The job_assignments rows: each ``CrewLeaderContactID`` of a work ticket or of a work ticket time is
    a crew lead of the ticket's job or milestone (``ticket_targets``). A record is one (ticket, lead)
    pair, however many times the ticket and its times name it."""
    work_tickets = list(work_tickets)
    targets = ticket_targets(work_tickets)
    known = set(job_ids)
    pairs: dict[tuple[str | None, Any], dict[str, Any]] = {}
    for source, records in (("WorkTickets", work_tickets), ("WorkTicketTimes", ticket_times)):
        for record in records:
            lead = record.get("CrewLeaderContactID")
            if lead is None:
                continue
            key = (_id(record.get("WorkTicketID")), _json_key(lead))
            pairs.setdefault(key, {"WorkTicketID": record.get("WorkTicketID"), "CrewLeaderContactID": lead, "from": []})
            if source not in pairs[key]["from"]:
                pairs[key]["from"].append(source)
    frame = records_frame(list(pairs.values()))
    reasons = no_reasons(frame)
    ticket = id_text(column(frame, "WorkTicketID"))
    raw_lead = column(frame, "CrewLeaderContactID")
    lead = id_text(raw_lead)
    reasons = collect(reasons, ticket.isna(), "WorkTicketID is missing")
    reasons = collect(reasons, lead.isna() | not_a_whole_number(raw_lead, lead), "CrewLeaderContactID is not an id")
    target = ticket.map(lambda t: milestone_target(targets.get(t), t, known) if isinstance(t, str) else None)
    unit = target.map(lambda t: (t[1] or t[0]) if t else None)
    reasons = collect(reasons, ticket.notna() & target.isna(), "WorkTicketID is not a known work ticket")
    reasons = collect(
        reasons, unit.notna() & ~unit.isin(known), "the work ticket's job or milestone was set aside or is unknown"
    )
    rows = pd.DataFrame(
        {"company_id": company_id, "job_id": unit, "worker_id": lead, "role": "crew_lead"}, index=frame.index
    )
    # A job's or milestone's tickets are its own (one ticket is its job, each of several a milestone):
    # no two pairs land on the same row.
    return split(rows, frame, ticket, reasons)


def _json_key(value: Any) -> Any:
    """A hashable stand-in of a JSON value (lists and objects as their text)."""
    return value if isinstance(value, (str, int, float, bool)) or value is None else repr(value)


# Aspire budgets are hours; these Job columns stay null until a $ labor budget is read.
_NO_DOLLAR_BUDGET = {
    "budget_type": None,
    "budget_amount": float("nan"),
    "contract_price": float("nan"),
    "labor_budget_percent": float("nan"),
    "rate": float("nan"),
    "quantity": float("nan"),
}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def drive_job_frame(company_id: str, name: str = DRIVE_JOB_NAME) -> pd.DataFrame:
    """The one synthetic drive job that unallocated clock time is booked on."""
    return pd.DataFrame(
        {
            "company_id": [company_id],
            "job_id": [DRIVE_JOB_ID],
            "parent_job_id": [None],
            "level": ["job"],
            "name": [name],
            "short_code": [None],
            "budget_hours": [float("nan")],
            "status": ["open"],
            "recurring": [False],
            "is_drive": [True],
            "active": [True],
            **{name: [value] for name, value in _NO_DOLLAR_BUDGET.items()},
            "service_type": [None],
            "property_id": [None],
            "created_date": [None],
            "source_modified_at": pd.Series([_EPOCH]).astype("datetime64[ns, UTC]"),
        }
    )


def opportunities_to_jobs(
    opportunities: Iterable[Mapping[str, Any]],
    work_tickets: Iterable[Mapping[str, Any]],
    zones: Zones,
    company_id: str,
    *,
    drive_job_name: str = DRIVE_JOB_NAME,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    opportunities, work_tickets = list(opportunities), list(work_tickets)
    frame = records_frame(opportunities)
    reasons = no_reasons(frame)
    job_id = id_text(column(frame, "OpportunityID"))
    reasons = collect(reasons, job_id.isna(), "OpportunityID is missing")
    name = column(frame, "OpportunityName").map(lambda v: v if isinstance(v, str) and v.strip() else None)
    reasons = collect(reasons, name.isna(), "OpportunityName is missing")
    status_text = column(frame, "OpportunityStatusName")
    status = _status(status_text)
    reasons = collect(reasons, status.isna(), "OpportunityStatusName is not a known open, complete or canceled status")
    # "Won" is a sale, not a finished job: the work's state is JobStatusName and CompleteDate (and,
    # for a job that is one ticket, that ticket's status, below).
    complete_local, bad_complete = _wall_times(column(frame, "CompleteDate"))
    reasons = collect(reasons, bad_complete, "CompleteDate is not ISO 8601")
    status = _settled(status, _status(column(frame, "JobStatusName")), completed=complete_local.notna())
    recurring = column(frame, "OpportunityType").map(
        lambda v: isinstance(v, str) and v.strip().casefold() == "contract"
    )
    estimate, bad_estimate = numbers(column(frame, "EstimatedLaborHours"))
    reasons = collect(reasons, bad_estimate | (estimate < 0), "EstimatedLaborHours is not a number of hours")
    zone = column(frame, "BranchID").map(lambda b: zones.resolve(None, b))
    reasons = collect(reasons, zone.isna(), "no time zone: the branch has no known TimeZone and the company sets none")
    modified_local, bad_modified = _wall_times(column(frame, "ModifiedDate"))
    reasons = collect(reasons, bad_modified | modified_local.isna(), "ModifiedDate is missing or not ISO 8601")
    modified = _utc_series(modified_local, zone)
    created_local, bad_created = _wall_times(column(frame, "CreatedDateTime"))
    reasons = collect(reasons, bad_created, "CreatedDateTime is not ISO 8601")

    tickets = records_frame(work_tickets)
    t_reasons = no_reasons(tickets)
    ticket_id = id_text(column(tickets, "WorkTicketID"))
    t_reasons = collect(t_reasons, ticket_id.isna(), "WorkTicketID is missing")
    ticket_job = id_text(column(tickets, "OpportunityID"))
    good_jobs = set(job_id[reasons == ""].dropna())
    t_reasons = collect(t_reasons, ticket_job.isna(), "OpportunityID is missing")
    t_reasons = collect(
        t_reasons, ticket_job.notna() & ~ticket_job.isin(good_jobs), "OpportunityID is not a known opportunity"
    )
    per_job = ticket_job[ticket_id.notna()].value_counts()
    # A recurring opportunity's tickets are its milestones even when there is one (rules §9: its only
    # work unit gets the ProPay); a one-off opportunity's lone ticket is the job itself.
    recurring_jobs = set(job_id[recurring.astype(bool) & job_id.notna()])
    is_milestone = (ticket_job.map(per_job).fillna(0) > 1) | (ticket_job.isin(recurring_jobs) & ticket_id.notna())
    t_status = _ticket_status(tickets)
    t_reasons = collect(
        t_reasons, t_status.isna(), "WorkTicketStatusName is not a known open, complete or cancelled status"
    )
    t_complete_local, bad_t_complete = _wall_times(column(tickets, "CompleteDate"))
    t_reasons = collect(t_reasons, bad_t_complete, "CompleteDate is not ISO 8601")
    t_status = _settled(t_status, completed=t_complete_local.notna())
    hours_est, bad_est = numbers(column(tickets, "HoursEst"))
    t_reasons = collect(t_reasons, bad_est | (hours_est < 0), "HoursEst is not a number of hours")
    t_zone = column(tickets, "BranchID").map(lambda b: zones.resolve(None, b))
    t_reasons = collect(
        t_reasons, t_zone.isna(), "no time zone: the branch has no known TimeZone and the company sets none"
    )
    t_modified_local, bad_t_modified = _wall_times(column(tickets, "LastModifiedDateTime"))
    t_reasons = collect(
        t_reasons, bad_t_modified | t_modified_local.isna(), "LastModifiedDateTime is missing or not ISO 8601"
    )
    t_modified = _utc_series(t_modified_local, t_zone)
    t_created_local, bad_t_created = _wall_times(column(tickets, "CreatedDateTime"))
    t_reasons = collect(t_reasons, bad_t_created, "CreatedDateTime is not ISO 8601")

    # A job whose only ticket is the job itself takes that ticket's estimate and latest change.
    single = (~is_milestone) & (t_reasons == "")
    own_ticket = pd.DataFrame(
        {
            "job": ticket_job[single],
            "hours": hours_est[single],
            "modified": t_modified[single],
            "status": t_status[single],
        }
    ).drop_duplicates("job")
    own_hours = (
        job_id.map(own_ticket.set_index("job")["hours"])
        if len(own_ticket)
        else pd.Series(float("nan"), index=frame.index)
    )
    own_modified = (
        job_id.map(own_ticket.set_index("job")["modified"]) if len(own_ticket) else pd.Series(pd.NaT, index=frame.index)
    )
    # ... and that ticket's status: a Complete (or completed) ticket completes the job, a Cancelled one cancels it.
    own_status = (
        job_id.map(own_ticket.set_index("job")["status"]) if len(own_ticket) else pd.Series(None, index=frame.index)
    )
    status = _settled(status, own_status.astype(object))
    has_milestones = job_id.isin(set(ticket_job[is_milestone]))
    # A recurring job whose one ticket is its milestone keeps its estimate: the ProPay of that
    # milestone falls back on it when the ticket has no HoursEst (propay.units).
    lone = job_id.isin(set(ticket_job[is_milestone & ticket_job.map(per_job).eq(1)]))
    budget = own_hours.astype(float).where(own_hours.notna(), estimate).where(~has_milestones | lone, float("nan"))
    latest = pd.concat([modified, pd.to_datetime(own_modified, utc=True).astype("datetime64[ns, UTC]")], axis=1).max(
        axis=1
    )

    jobs = pd.DataFrame(
        {
            "company_id": company_id,
            "job_id": job_id,
            "parent_job_id": None,
            "level": "job",
            "name": name,
            "short_code": id_text(column(frame, "OpportunityNumber")),
            "budget_hours": budget,
            "status": status,
            "recurring": recurring.astype(bool),
            "is_drive": False,
            "active": status == "open",
            **_NO_DOLLAR_BUDGET,
            "service_type": column(frame, "DivisionName").map(_text),
            "property_id": id_text(column(frame, "PropertyID")).where(
                lambda ids: ids.notna(), column(frame, "PropertyName").map(_text)
            ),
            "created_date": calendar_days(created_local),
            "source_modified_at": latest.astype("datetime64[ns, UTC]"),
        },
        index=frame.index,
    )
    job_rows, job_aside = split(jobs, frame, job_id, reasons)

    # A duplicated opportunity id is set aside by the schema's uniqueness check; its tickets must not
    # pick one of the twins' flags (and a non-unique index cannot be mapped at all).
    unique_jobs = job_rows.drop_duplicates("job_id", keep=False)
    recurring_of = unique_jobs.set_index("job_id")["recurring"] if len(unique_jobs) else pd.Series(dtype=bool)
    number = id_text(column(tickets, "WorkTicketNumber"))
    milestones = pd.DataFrame(
        {
            "company_id": company_id,
            "job_id": MILESTONE_PREFIX + ticket_id.fillna(""),
            "parent_job_id": ticket_job,
            "level": "milestone",
            "name": [f"Work ticket #{n or t}" for n, t in zip(number, ticket_id)],
            "short_code": number,
            "budget_hours": hours_est,
            "status": t_status,
            "recurring": ticket_job.map(recurring_of).eq(True),  # no fillna(False) on floats: pandas 4 refuses it
            "is_drive": False,
            "active": t_status == "open",
            **_NO_DOLLAR_BUDGET,
            "service_type": None,
            "property_id": None,
            "created_date": calendar_days(t_created_local),
            "source_modified_at": t_modified,
        },
        index=tickets.index,
    )
    # An opportunity can still be set aside by the storability check in split(); its tickets follow it
    # rather than vanish as "merged" into a job that is not there.
    t_reasons = collect(
        t_reasons,
        (t_reasons == "") & ticket_job.notna() & ~ticket_job.isin(set(job_rows["job_id"])),
        "OpportunityID names an opportunity that was set aside",
    )
    # Tickets that are their job are not milestones, but a bad one is still set aside with its reason.
    keep = is_milestone | (t_reasons != "")
    ms_rows, ms_aside = split(milestones[keep], tickets[keep], ticket_id[keep], t_reasons[keep])
    rows = pd.concat([job_rows, ms_rows, drive_job_frame(company_id, drive_job_name)], ignore_index=True)
    return rows, pd.concat([job_aside, ms_aside], ignore_index=True)


# -- attendance ------------------------------------------------------------------------------------
def _ticket_targets_of(
    ticket: pd.Series, targets: Mapping[str, tuple[str, str | None]], known_jobs: set[str] | None = None
) -> tuple[pd.Series, pd.Series, pd.Series]:
    """(which rows name a known work ticket, its job id, its milestone id), looked up once per
    distinct ticket. The ids come as a column of the rows' ``targets`` values would: text with NaN
    where there is none (None only when no row has one). ``known_jobs``: see ``milestone_target``."""
    codes, tickets = pd.factorize(ticket)
    found = [milestone_target(targets.get(t), t, known_jobs) if t else None for t in tickets.tolist()] + [None]

    def take(values: list[Any]) -> pd.Series:
        return pd.Series(np.array(values, dtype=object)[codes], index=ticket.index).astype(object)

    return (
        pd.Series(np.array([t is not None for t in found])[codes], index=ticket.index),
        take([t[0] if t else None for t in found]),
        take([t[1] if t else None for t in found]),
    )


def _services_of(ticket: pd.Series, services: Mapping[str, str]) -> pd.Series:
    """The service of each row's ticket (None without one), looked up once per distinct ticket."""
    codes, tickets = pd.factorize(ticket)
    found = [services.get(t) for t in tickets.tolist()] + [None]  # code -1: no ticket
    return pd.Series(np.array(found, dtype=object)[codes], index=ticket.index, dtype=object)


def _zones_of_employees(worker_id: pd.Series, zones: Zones, contact_branches: Mapping[str, str]) -> pd.Series:
    """The zone of each row's employee (their branch's, else the company's), once per employee."""
    codes, workers = pd.factorize(worker_id)
    resolved = [zones.resolve(None, contact_branches.get(w) if w else None) for w in workers.tolist()]
    resolved.append(zones.resolve(None, None))  # code -1: no employee
    return pd.Series(np.array(resolved, dtype=object)[codes], index=worker_id.index, dtype=object)


# The fields of work ticket times and clock times the attendance mapping reads.
_TICKET_TIME_FIELDS = (
    "WorkTicketTimeID",
    "ContactID",
    "WorkTicketID",
    "BranchTimeZone",
    "BranchID",
    "StartTime",
    "EndTime",
    "Hours",
    "BreakTime",
    "WorkTicketTimeDate",
    "LastModifiedDateTime",
)
_CLOCK_TIME_FIELDS = ("ClockTimeID", "ContactID", "ClockStart", "ClockEnd", "BreakTime")


def times_to_attendance(
    work_ticket_times: Iterable[Mapping[str, Any]],
    clock_times: Iterable[Mapping[str, Any]],
    targets: Mapping[str, tuple[str, str | None]],
    jobs: pd.DataFrame,
    worker_ids: Iterable[str],
    zones: Zones,
    contact_branches: Mapping[str, str],
    company_id: str,
    services: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Work ticket times and drive rows from clock times; ``services`` (``ticket_services``) books
    each ticket's time to its opportunity service. ``now`` (aware; the vendor's clock at the sync,
    the current time when not given) is what a running ticket time's hours count up to.

    Returns (attendance candidates, set-aside rows, clock times that yield no row because work
    ticket times cover them fully or they are still running).
    """
    known_workers = set(worker_ids)
    known_jobs = set(jobs["job_id"]) if "job_id" in jobs else set()
    frame = records_frame(work_ticket_times, _TICKET_TIME_FIELDS)
    reasons = no_reasons(frame)
    raw_id = column(frame, "WorkTicketTimeID")
    entry_id = id_text(raw_id)
    reasons = collect(reasons, entry_id.isna(), "WorkTicketTimeID is missing")
    reasons = collect(reasons, not_a_whole_number(raw_id, entry_id), "WorkTicketTimeID is not a whole number")
    worker_id = id_text(column(frame, "ContactID"))
    no_worker = worker_id.isna()
    reasons = collect(reasons, no_worker, "ContactID is missing")
    reasons = collect(reasons, ~no_worker & ~worker_id.isin(known_workers), "ContactID is not a known employee")
    ticket = id_text(column(frame, "WorkTicketID"))
    has_target, job_id, milestone_id = _ticket_targets_of(ticket, targets, known_jobs)
    reasons = collect(reasons, ticket.isna(), "WorkTicketID is missing")
    reasons = collect(reasons, ticket.notna() & ~has_target, "WorkTicketID is not a known work ticket")
    reasons = collect(
        reasons,
        has_target & ~(job_id.isin(known_jobs) & (milestone_id.isna() | milestone_id.isin(known_jobs))),
        "the work ticket's job or milestone was set aside or is unknown",
    )
    zone = _resolved_zones(zones, column(frame, "BranchTimeZone"), column(frame, "BranchID"))
    reasons = collect(
        reasons, zone.isna(), "BranchTimeZone is not a known time zone and no branch or company zone applies"
    )
    start_local, bad_start = _wall_times(column(frame, "StartTime"))
    end_local, bad_end = _wall_times(column(frame, "EndTime"))
    reasons = collect(reasons, bad_start, "StartTime is not an ISO 8601 date-time")
    reasons = collect(reasons, bad_end, "EndTime is not an ISO 8601 date-time")
    reasons = collect(reasons, start_local.isna() & end_local.notna() & ~bad_start, "EndTime without StartTime")
    hours, bad_hours = numbers(column(frame, "Hours"))
    breaks, bad_breaks = numbers(column(frame, "BreakTime"))
    breaks = breaks.fillna(0.0)
    # A running time (a start, no end) has no Hours yet: it is counted up to the sync (below).
    running = start_local.notna() & end_local.isna() & ~bad_end
    reasons = collect(
        reasons, bad_hours | ((hours.isna() | (hours < 0)) & ~running), "Hours is missing or not a number of hours"
    )
    reasons = collect(reasons, bad_breaks | (breaks < 0), "BreakTime is not a number of hours")
    day_local, bad_day = _wall_times(column(frame, "WorkTicketTimeDate"))
    work_date = calendar_days(day_local).where(day_local.notna(), calendar_days(start_local)).astype(object)
    reasons = collect(reasons, bad_day | work_date.isna(), "WorkTicketTimeDate is missing or not ISO 8601")
    modified_local, bad_modified = _wall_times(column(frame, "LastModifiedDateTime"))
    reasons = collect(reasons, bad_modified | modified_local.isna(), "LastModifiedDateTime is missing or not ISO 8601")

    # Localised zone by zone; an end in a repeated wall hour is settled below, row by row.
    start_at = _utc_series(start_local, zone)
    end_at, end_at_clock_change = _utc_and_clock_changes(end_local, zone)
    repeated_end = end_local.notna() & zone.notna() & start_at.notna() & end_at_clock_change
    if repeated_end.any():
        ends = []
        for s, e, z, h, b in zip(
            start_local[repeated_end],
            end_local[repeated_end],
            zone[repeated_end],
            hours[repeated_end],
            breaks[repeated_end],
        ):
            start = _to_utc(s, z)
            # A repeated wall hour: keep the fold whose elapsed time matches Hours + BreakTime.
            options = [_to_utc(e, z, fold) for fold in (0, 1)]
            expected = (h + b) if not pd.isna(h) else None
            ends.append(
                min(options, key=lambda o: abs(_hours_between(start, o) - expected))
                if expected is not None
                else options[0]
            )
        end_at[repeated_end] = _utc_frame_series(ends, end_local[repeated_end].index)
    if running.any():
        clock = pd.Timestamp(now if now is not None else datetime.now(UTC)).tz_convert("UTC")
        reasons = collect(
            reasons, running & start_at.notna() & (start_at > clock), "a running ticket time starts after the sync time"
        )
        so_far = ((clock - start_at[running]).dt.total_seconds() / 3600 - breaks[running]).clip(lower=0).round(6)
        hours = hours.astype(float).where(~running, so_far)
    manual = start_local.isna() & end_local.isna()
    attendance = pd.DataFrame(
        {
            "company_id": company_id,
            "entry_id": entry_id,
            "worker_id": worker_id,
            "job_id": job_id,
            "milestone_id": milestone_id,
            "task_id": _services_of(ticket, services or {}),
            "work_date": work_date,
            "start_at": start_at,
            "end_at": end_at,
            "hours": hours,
            "is_drive": False,
            "on_the_clock": running,
            "entry_type": manual.map({True: "manual", False: "regular"}),
            "source_modified_at": _utc_series(modified_local, zone),
        },
        index=frame.index,
    )
    ticket_rows, ticket_aside = split(attendance, frame, entry_id, reasons)
    drive_rows, drive_aside, no_row = _clock_times_to_drive(
        clock_times, ticket_rows, known_workers, zones, contact_branches, company_id, DRIVE_JOB_ID in known_jobs
    )
    rows = (
        pd.concat([ticket_rows, drive_rows], ignore_index=True)
        if len(drive_rows)
        else ticket_rows.reset_index(drop=True)
    )
    return rows, pd.concat([ticket_aside, drive_aside], ignore_index=True), no_row


def _unallocated_hours(
    ticket_rows: pd.DataFrame, worker_id: pd.Series, start_at: pd.Series, end_at: pd.Series, breaks: pd.Series
) -> np.ndarray:
    """Per clock time: its hours (end - start - breaks) minus the hours of the same employee's
    ticket times that start inside it (start <= ticket start < end); NaN without a start, an end
    or an employee.

    Tickets are sorted by employee and start, and each clock time's tickets found by binary search
    on (employee, start) for all clock times at once. The hours found are added in the tickets' own
    order, as a plain sum over them would (floating-point sums depend on the order)."""
    clock_start = start_at.to_numpy(dtype="datetime64[ns]").astype("int64")
    clock_end = end_at.to_numpy(dtype="datetime64[ns]").astype("int64")
    usable = (start_at.notna() & end_at.notna() & worker_id.notna()).to_numpy()
    elapsed = (clock_end - clock_start).astype(float) / 1e9 / 3600
    allocated = np.zeros(len(worker_id))
    timed = ticket_rows[ticket_rows["start_at"].notna()] if len(ticket_rows) else ticket_rows
    clocks = np.flatnonzero(usable)
    if len(timed) and len(clocks):
        ticket_start = timed["start_at"].to_numpy(dtype="datetime64[ns]").astype("int64")
        ticket_hours = timed["hours"].astype(float).to_numpy()
        # One code per employee and one rank per instant, shared by tickets and clock times, make
        # (employee, start) a single sortable integer.
        employee, _ = pd.factorize(
            np.concatenate([timed["worker_id"].to_numpy(dtype=object), worker_id.to_numpy(dtype=object)[clocks]])
        )
        instants, rank = np.unique(
            np.concatenate([ticket_start, clock_start[clocks], clock_end[clocks]]), return_inverse=True
        )
        rank = rank.ravel()
        tickets = len(ticket_start)

        def key(codes: np.ndarray, ranks: np.ndarray) -> np.ndarray:
            return codes.astype(np.int64) * len(instants) + ranks

        ticket_key = key(employee[:tickets], rank[:tickets])
        order = np.argsort(ticket_key, kind="stable")  # ties keep the tickets' own order
        sorted_keys = ticket_key[order]
        first = np.searchsorted(
            sorted_keys, key(employee[tickets:], rank[tickets : tickets + len(clocks)]), side="left"
        )
        last = np.searchsorted(sorted_keys, key(employee[tickets:], rank[tickets + len(clocks) :]), side="left")
        found = np.maximum(last - first, 0)  # none for a clock time that ends before it starts
        if found.sum():
            # Each clock time's tickets, in the tickets' own order, one after the other.
            clock_of = np.repeat(clocks, found)
            within = np.arange(found.sum()) - np.repeat(np.cumsum(found) - found, found)
            ticket_of = order[np.repeat(first, found) + within]
            in_order = np.lexsort((ticket_of, clock_of))
            clock_of, ticket_of = clock_of[in_order], ticket_of[in_order]
            # The n-th ticket of every clock time is added in the n-th pass, so each sum runs from
            # 0.0 through its tickets in order, exactly as Python's sum() does.
            for nth in _nth_of_each_group(within):
                allocated[clock_of[nth]] += ticket_hours[ticket_of[nth]]
    result = elapsed - breaks.to_numpy(dtype=float) - allocated
    result[~usable] = np.nan
    return result


def _without_distributed_time(
    unallocated: pd.Series, ticket_rows: pd.DataFrame, worker_id: pd.Series, clock_day: pd.Series, start_at: pd.Series
) -> pd.Series:
    """The clock times' unallocated hours less the employee's distributed ticket hours of that day.

    A ticket time with ``Hours`` and neither ``StartTime`` nor ``EndTime`` is distributed time: clock
    time the crew leader spread over tickets by hours. It lies inside the day's clock time as much
    as a timed row, so it is taken out of the remainder of the employee's clock times that start on
    its work date, the latest clock time first (distributed time is entered at the day's end), each
    down to zero at most. Without clock time that day it stands alone."""
    if not len(ticket_rows) or not len(unallocated):
        return unallocated
    distributed = ticket_rows[
        ticket_rows["start_at"].isna() & ticket_rows["end_at"].isna() & ticket_rows["hours"].notna()
    ]
    if not len(distributed):
        return unallocated
    owed = distributed.groupby(["worker_id", "work_date"], sort=False)["hours"].sum()
    clocks = pd.DataFrame({"worker": worker_id, "day": clock_day, "start": start_at, "left": unallocated})
    clocks = clocks[clocks["worker"].notna() & clocks["day"].notna() & clocks["left"].notna()]
    clocks = clocks[pd.MultiIndex.from_frame(clocks[["worker", "day"]]).isin(owed.index)]
    result = unallocated.copy()
    for (worker, day), group in clocks.sort_values("start", ascending=False, kind="stable").groupby(
        ["worker", "day"], sort=False
    ):
        remaining = float(owed[cast(tuple[str, date], (worker, day))])
        for index, left in group["left"].items():
            if remaining <= 0:
                break
            taken = min(remaining, max(float(left), 0.0))
            # pandas-stubs: a label that .items() gives (Hashable) is a valid key to set.
            result[index] = left - taken  # type: ignore[call-overload]
            remaining -= taken
    return result


def _nth_of_each_group(within: np.ndarray) -> list[np.ndarray]:
    """For positions numbered 0, 1, ... within their group: the positions of the first members,
    then of the second members, and so on."""
    by_rank = np.argsort(within, kind="stable")
    sizes = np.bincount(within)
    return np.split(by_rank, np.cumsum(sizes)[:-1])


def _clock_times_to_drive(
    clock_times: Iterable[Mapping[str, Any]],
    ticket_rows: pd.DataFrame,
    known_workers: set[str],
    zones: Zones,
    contact_branches: Mapping[str, str],
    company_id: str,
    drive_job_known: bool,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    frame = records_frame(clock_times, _CLOCK_TIME_FIELDS)
    if frame.empty:
        return pd.DataFrame(), _empty_aside(), 0
    reasons = no_reasons(frame)
    clock_id = id_text(column(frame, "ClockTimeID"))
    reasons = collect(reasons, clock_id.isna(), "ClockTimeID is missing")
    worker_id = id_text(column(frame, "ContactID"))
    no_worker = worker_id.isna()
    reasons = collect(reasons, no_worker, "ContactID is missing")
    reasons = collect(reasons, ~no_worker & ~worker_id.isin(known_workers), "ContactID is not a known employee")
    reasons = collect(
        reasons, pd.Series(not drive_job_known, index=frame.index), "the drive job is missing from the jobs"
    )
    zone = _zones_of_employees(worker_id, zones, contact_branches)
    reasons = collect(reasons, zone.isna(), "no time zone for the employee's branch and the company sets none")
    start_local, bad_start = _wall_times(column(frame, "ClockStart"))
    end_local, bad_end = _wall_times(column(frame, "ClockEnd"))
    reasons = collect(reasons, bad_start | start_local.isna(), "ClockStart is missing or not ISO 8601")
    reasons = collect(reasons, bad_end, "ClockEnd is not an ISO 8601 date-time")
    breaks, bad_breaks = numbers(column(frame, "BreakTime"))
    reasons = collect(reasons, bad_breaks | (breaks < 0), "BreakTime is not a number of hours")
    breaks = breaks.fillna(0.0)
    start_at = _utc_series(start_local, zone)
    end_at = _utc_series(end_local, zone)
    reasons = collect(reasons, end_at.notna() & start_at.notna() & (end_at < start_at), "ClockEnd is before ClockStart")

    unallocated_hours = pd.Series(
        _unallocated_hours(ticket_rows, worker_id, start_at, end_at, breaks), index=frame.index, dtype=float
    )
    unallocated_hours = _without_distributed_time(
        unallocated_hours, ticket_rows, worker_id.where(reasons == ""), calendar_days(start_local), start_at
    )
    has_row = (reasons == "") & unallocated_hours.notna() & (unallocated_hours >= _MIN_DRIVE_HOURS)
    no_row = int(((reasons == "") & ~has_row).sum())
    drive = pd.DataFrame(
        {
            "company_id": company_id,
            "entry_id": CLOCK_ENTRY_PREFIX + clock_id.fillna(""),
            "worker_id": worker_id,
            "job_id": DRIVE_JOB_ID,
            "milestone_id": None,
            "task_id": None,
            "work_date": calendar_days(start_local),
            "start_at": start_at,
            "end_at": end_at,
            "hours": unallocated_hours.round(6),
            "is_drive": True,
            "on_the_clock": False,
            "entry_type": "regular",
            "source_modified_at": end_at,
        },
        index=frame.index,
    )
    keep = has_row | (reasons != "")
    rows, aside = split(drive[keep], frame[keep], clock_id[keep], reasons[keep])
    return rows, aside, no_row


__all__ = [
    "CLOCK_ENTRY_PREFIX",
    "crew_leaders_to_assignments",
    "pay_rates_to_wages",
    "services_to_task_lines",
    "ticket_services",
    "wages_in_force",
    "DRIVE_JOB_ID",
    "MILESTONE_PREFIX",
    "WINDOWS_TO_IANA",
    "Zones",
    "branch_zones",
    "drive_job_frame",
    "employees_to_workers",
    "iana_zone",
    "latest_wages",
    "opportunities_to_jobs",
    "ticket_targets",
    "times_to_attendance",
]
