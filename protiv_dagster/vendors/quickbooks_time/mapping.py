"""QuickBooks Time records -> the cleaned tables every vendor shares. Pure pandas: no HTTP, no SQL.

Field mapping (why in parentheses):

| cleaned column            | QuickBooks Time source                                                    |
|---------------------------|---------------------------------------------------------------------------|
| attendance.entry_id       | timesheet ``id``                                                          |
| attendance.worker_id      | timesheet ``user_id``                                                     |
| attendance.job_id         | the top-level jobcode: ``jobcode_id`` itself, or its ``parent_id`` when the jobcode is a child (a child jobcode is a milestone) |
| attendance.milestone_id   | ``jobcode_id`` when it is a child jobcode                                 |
| attendance.task_id        | null: QuickBooks Time has no line items (task lines) on jobcodes          |
| attendance.work_date      | ``date`` (the vendor's local work date)                                   |
| attendance.start_at/end_at| ``start``/``end`` (ISO 8601 with the user's offset) converted to UTC; ``""`` for manual sheets and for ``end`` while on the clock |
| attendance.hours          | ``duration`` / 3600 (the vendor's own count, up to the request for running sheets) |
| attendance.is_drive       | the job's name matches the company's drive job patterns                   |
| attendance.entry_type     | ``type`` (regular or manual)                                              |
| workers.worker_id         | user ``id``                                                               |
| workers.first/last_name   | ``first_name`` / ``last_name``                                            |
| workers.active            | ``active``                                                                |
| workers.hourly_wage       | ``pay_rate``; ``pay_interval=year`` is divided by 2,080 hours; $1,000,000/h or more does not fit the warehouse and is set aside |
| workers.hire/term_date    | ``hire_date``/``term_date``; ``0000-00-00`` means unset                    |
| jobs.job_id / level       | jobcode ``id``; a top-level jobcode (``parent_id`` 0) is a job, a child jobcode a milestone of its parent |
| jobs.name / short_code    | ``name`` / ``short_code``                                                 |
| jobs.is_drive             | the name matches the company's drive job patterns (settings.drive_job_patterns) |
| jobs.budget_hours         | the jobcode custom field named by the company setting ``budget_hours_field`` |
| jobs.status               | the custom field ``job_status_field`` (Open/Completed/Canceled); without it, active -> open, archived -> completed |
| jobs.recurring            | the custom field ``recurring_field`` (Yes/No) of the top-level jobcode     |
| jobs.budget_type          | the custom field ``budget_type_field`` ("Hours", "Amount", "Contract Price", "Rate", "Task Hours", "Task Amount", any case, spaces or underscores); empty -> null, which means the company's ``default_budget_type``. An unknown value is kept as written (lowercased) so the ProPay shows why it has no bonus |
| jobs.budget_amount        | the custom field ``budget_amount_field`` ($; "$5,000" and "5000" both read as 5000) |
| jobs.contract_price       | the custom field ``contract_price_field`` ($)                             |
| jobs.labor_budget_percent | the custom field ``labor_budget_percent_field`` (%, "35" or "35 %")       |
| jobs.rate / quantity      | the custom fields ``rate_field`` ($ per unit) / ``quantity_field`` (units) |
| jobs.service_type         | the custom field ``service_type_field`` (e.g. Warranty, for exclusions); a milestone without one takes its job's in the ProPay engine |
| jobs.property_id          | null: QuickBooks Time has no property (client site) on jobcodes           |
| jobs.created_date         | ``created`` (the jobcode's creation, ISO 8601, UTC in practice) as a date in the company's ``timezone`` setting; without the setting, the date ``created`` is written in |
| task_lines                | none: QuickBooks Time has no line items                                   |
| worker_wages              | none: QuickBooks Time keeps only today's ``pay_rate`` (workers.hourly_wage), no history |
| job_assignments           | none: QuickBooks Time assigns no crew lead or manager to a jobcode (the ProPay engine uses the company's worker_roles setting) |

Every record that cannot be mapped is returned in the set-aside frame with its reason and the record
as received, never dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

import pandas as pd

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.vendors.mapping import (
    HOURS_PER_YEAR,
    MAX_AMOUNT,
    MAX_RATE,
    MAX_WAGE,
    collect,
    column,
    dates,
    id_text,
    jobs_of_entries,
    local_dates,
    no_reasons,
    not_a_whole_number,
    numbers,
    records_frame,
    set_aside_frame,
    split,
    too_large,
    utc,
)

_STATUS_VALUES = {
    "open": "open",
    "completed": "completed",
    "complete": "completed",
    "canceled": "canceled",
    "cancelled": "canceled",
}
_YES = {"yes", "true", "1", "y"}


def _budget_type(value: Any) -> str | None:
    """A budget type as a person types it ("Contract Price", "task-hours") in the engine's spelling."""
    if not isinstance(value, str) or not value.strip():
        return None
    return "_".join(str(value).strip().casefold().replace("-", " ").replace("_", " ").split())


def _typed_number(value: Any) -> Any:
    """Free-form money and percentages ("$5,000", "35 %") without their decorations; the rest as is."""
    if isinstance(value, str):
        return value.replace("$", "").replace(",", "").replace("%", "").strip()
    return value


def users_to_workers(users: Iterable[Mapping[str, Any]], company_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = records_frame(users)
    reasons = no_reasons(frame)
    raw_id = column(frame, "id")
    worker_id = id_text(raw_id)
    reasons = collect(reasons, worker_id.isna(), "id is missing")
    reasons = collect(reasons, not_a_whole_number(raw_id, worker_id), "id is not a whole number")
    pay_rate, bad_rate = numbers(column(frame, "pay_rate"))
    reasons = collect(reasons, bad_rate, "pay_rate is not a number")
    interval = column(frame, "pay_interval").where(lambda s: s.isin(["hour", "year"]), None)
    hourly = pay_rate.where(interval != "year", pay_rate / HOURS_PER_YEAR).round(4)
    reasons = collect(
        reasons, too_large(hourly, MAX_WAGE), "pay_rate is beyond any hourly wage (at most $999,999.9999)"
    )
    hire, bad_hire = dates(column(frame, "hire_date"))
    term, bad_term = dates(column(frame, "term_date"))
    reasons = collect(reasons, bad_hire | bad_term, "hire_date or term_date is not a YYYY-MM-DD date")
    modified, bad_modified = utc(column(frame, "last_modified"))
    reasons = collect(reasons, bad_modified | modified.isna(), "last_modified is missing or not ISO 8601")
    active = column(frame, "active").map(lambda v: v if isinstance(v, bool) else None)
    reasons = collect(reasons, active.isna(), "active is missing or not a boolean")
    workers = pd.DataFrame(
        {
            "company_id": company_id,
            "worker_id": worker_id,
            "first_name": column(frame, "first_name"),
            "last_name": column(frame, "last_name"),
            "active": active,
            "hourly_wage": hourly,
            "pay_interval": interval,
            "hire_date": hire,
            "term_date": term,
            "source_modified_at": modified,
        },
        index=frame.index,
    )
    return split(workers, frame, worker_id, reasons)


def jobcodes_to_jobs(
    jobcodes: Iterable[Mapping[str, Any]],
    customfields: Iterable[Mapping[str, Any]],
    settings: CompanySettings,
    company_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = records_frame(jobcodes)
    field_ids = {str(f.get("name", "")).casefold(): str(f.get("id")) for f in customfields}
    reasons = no_reasons(frame)
    job_id = id_text(column(frame, "id"))
    reasons = collect(reasons, job_id.isna(), "id is missing")
    parent = id_text(column(frame, "parent_id"))
    values = column(frame, "customfields").map(lambda v: v if isinstance(v, dict) else {})

    def custom(setting_name: str) -> pd.Series:
        field_id = field_ids.get(setting_name.casefold())
        return values.map(lambda v: (v.get(field_id) if field_id else None) or None)

    budget, bad_budget = numbers(custom(settings.budget_hours_field))
    reasons = collect(reasons, bad_budget, f"custom field {settings.budget_hours_field!r} is not a number of hours")
    budget_type = custom(settings.budget_type_field).map(_budget_type)
    typed_numbers = {}
    for target, field, unit, limit in (
        ("budget_amount", settings.budget_amount_field, "$ amount", MAX_AMOUNT),
        ("contract_price", settings.contract_price_field, "$ amount", MAX_AMOUNT),
        ("labor_budget_percent", settings.labor_budget_percent_field, "percentage", None),
        ("rate", settings.rate_field, "$ rate", MAX_RATE),
        ("quantity", settings.quantity_field, "quantity", None),
    ):
        typed_numbers[target], bad = numbers(custom(field).map(_typed_number))
        reasons = collect(reasons, bad, f"custom field {field!r} is not a {unit}")
        if limit:
            reasons = collect(
                reasons, too_large(typed_numbers[target], limit), f"custom field {field!r} is beyond any {unit}"
            )
    service_type = custom(settings.service_type_field).map(lambda v: v.strip() or None if isinstance(v, str) else None)
    status_text = custom(settings.job_status_field)
    status = status_text.map(lambda v: _STATUS_VALUES.get(str(v).strip().casefold()) if v else None)
    reasons = collect(
        reasons,
        status_text.notna() & status.isna(),
        f"custom field {settings.job_status_field!r} is not Open, Completed or Canceled",
    )
    active = column(frame, "active").map(lambda v: bool(v) if isinstance(v, bool) else None)
    reasons = collect(reasons, active.isna(), "active is missing or not a boolean")
    status = status.where(status.notna(), active.map(lambda a: "open" if a else "completed"))
    recurring_own = custom(settings.recurring_field).map(lambda v: str(v).strip().casefold() in _YES if v else False)
    name = column(frame, "name").map(lambda v: v if isinstance(v, str) else None)
    reasons = collect(reasons, name.isna(), "name is missing")
    drive_own = name.map(lambda n: settings.is_drive_job(n) if isinstance(n, str) else False)
    # Milestones inherit their job's recurring and drive flags.
    by_id = pd.DataFrame({"recurring": recurring_own.values, "drive": drive_own.values}, index=job_id.values)
    by_id = by_id[~by_id.index.duplicated()]
    top = parent.isna()
    recurring = recurring_own.where(top, parent.map(by_id["recurring"]).fillna(False)).astype(bool)
    is_drive = drive_own.where(top, parent.map(by_id["drive"]).fillna(False)).astype(bool)
    modified, bad_modified = utc(column(frame, "last_modified"))
    reasons = collect(reasons, bad_modified | modified.isna(), "last_modified is missing or not ISO 8601")
    created, bad_created = utc(column(frame, "created"))
    reasons = collect(reasons, bad_created, "created is not ISO 8601")
    jobs = pd.DataFrame(
        {
            "company_id": company_id,
            "job_id": job_id,
            "parent_job_id": parent,
            "level": top.map({True: "job", False: "milestone"}),
            "name": name,
            "short_code": column(frame, "short_code").map(lambda v: v or None),
            "budget_hours": budget,
            "status": status,
            "recurring": recurring,
            "is_drive": is_drive,
            "active": active,
            "budget_type": budget_type,
            **typed_numbers,
            "service_type": service_type,
            "property_id": None,
            "created_date": local_dates(created, settings.timezone)
            if settings.timezone
            else _written_dates(column(frame, "created"), created),
            "source_modified_at": modified,
        },
        index=frame.index,
    )
    return split(jobs, frame, job_id, reasons)


def _written_dates(texts: pd.Series, parsed: pd.Series) -> pd.Series:
    """The date an ISO 8601 stamp is written in (its own offset's date), None where it did not parse."""
    return texts.map(lambda t: _date_part(t)).where(parsed.notna(), None).astype(object)


def _date_part(text: Any) -> Any:
    try:
        return date.fromisoformat(text.strip()[:10]) if isinstance(text, str) else None
    except ValueError:
        return None


def _booleans(values: pd.Series) -> pd.Series:
    """The JSON booleans of a column, None for anything else (a column of booleans as it is)."""
    return values if values.dtype == bool else values.map(lambda v: v if isinstance(v, bool) else None)


# The fields of a timesheet the attendance mapping reads.
_TIMESHEET_FIELDS = (
    "id",
    "user_id",
    "jobcode_id",
    "type",
    "start",
    "end",
    "on_the_clock",
    "date",
    "duration",
    "last_modified",
)


def timesheets_to_attendance(
    timesheets: Iterable[Mapping[str, Any]],
    deleted_ids: Iterable[str],
    jobs: pd.DataFrame,
    worker_ids: Iterable[str],
    company_id: str,
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """Map live timesheets to attendance rows.

    Returns (attendance candidates, set-aside rows, number removed because the deleted feed lists
    them). A timesheet that shows up in both feeds was deleted between the two calls: deleted wins.
    """
    frame = records_frame(timesheets, _TIMESHEET_FIELDS)
    if frame.empty:
        return (
            pd.DataFrame(columns=["company_id"]),
            set_aside_frame(frame, pd.Series(dtype=object), pd.Series(dtype=object)),
            0,
        )
    raw_id = column(frame, "id")
    entry_id = id_text(raw_id)
    deleted = entry_id.isin(set(deleted_ids))
    # Deleted timesheets are mapped with the rest (no copy of the records) and dropped by split().
    reasons = no_reasons(frame)
    reasons = collect(reasons, entry_id.isna(), "id is missing")
    reasons = collect(reasons, not_a_whole_number(raw_id, entry_id), "id is not a whole number")

    worker_id = id_text(column(frame, "user_id"))
    known_workers = set(worker_ids)
    no_worker = worker_id.isna()
    reasons = collect(reasons, no_worker, "user_id is missing")
    reasons = collect(reasons, ~no_worker & ~worker_id.isin(known_workers), "user_id is not a known worker")

    jobcode = id_text(column(frame, "jobcode_id"))
    job = jobs_of_entries(jobcode, jobs.set_index("job_id"))
    no_jobcode = jobcode.isna()
    reasons = collect(reasons, no_jobcode, "jobcode_id is missing")
    reasons = collect(reasons, ~no_jobcode & ~job["known"], "jobcode_id is not a known job or milestone")

    entry_type = column(frame, "type")
    reasons = collect(reasons, ~entry_type.isin(["regular", "manual"]), "type is not regular or manual")
    start, bad_start = utc(column(frame, "start"))
    end, bad_end = utc(column(frame, "end"))
    reasons = collect(reasons, bad_start, "start is not an ISO 8601 timestamp")
    reasons = collect(reasons, bad_end, "end is not an ISO 8601 timestamp")
    on_the_clock = _booleans(column(frame, "on_the_clock"))
    reasons = collect(reasons, on_the_clock.isna(), "on_the_clock is missing or not a boolean")
    regular = entry_type == "regular"
    reasons = collect(reasons, regular & start.isna() & ~bad_start, "a regular timesheet has no start")
    reasons = collect(
        reasons,
        regular & end.isna() & ~bad_end & (on_the_clock == False),  # noqa: E712 - elementwise, NA stays NA
        "a finished regular timesheet has no end",
    )
    work_date, bad_date = dates(column(frame, "date"))
    reasons = collect(reasons, bad_date | work_date.isna(), "date is missing or not YYYY-MM-DD")
    seconds, bad_duration = numbers(column(frame, "duration"))
    reasons = collect(reasons, bad_duration | seconds.isna(), "duration is missing or not a number")
    modified, bad_modified = utc(column(frame, "last_modified"))
    reasons = collect(reasons, bad_modified | modified.isna(), "last_modified is missing or not ISO 8601")

    attendance = pd.DataFrame(
        {
            "company_id": company_id,
            "entry_id": entry_id,
            "worker_id": worker_id,
            "job_id": job["job_id"],
            "milestone_id": job["milestone_id"],
            "task_id": None,
            "work_date": work_date,
            "start_at": start,
            "end_at": end,
            "hours": seconds / 3600.0,
            "is_drive": job["is_drive"],
            "on_the_clock": on_the_clock.fillna(False).astype(bool),
            "entry_type": entry_type,
            "source_modified_at": modified,
        },
        index=frame.index,
        copy=False,
    )
    return (*split(attendance, frame, entry_id, reasons, live=~deleted), int(deleted.sum()))
