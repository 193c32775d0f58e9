"""Pandera models of every cleaned table, and the split of a frame into valid rows and rows set aside.

The models are the single description of each table: the warehouse DDL (column types, nullability,
comments) is derived from them in ``tables.py``. Ids are text for every vendor, because BusyBusy
uses UUIDs where QuickBooks Time and Aspire use integers.

Validation never drops a row silently: ``split_valid`` returns the rows that pass and, for every row
that does not, the reasons, so the asset can store them in ``rejected_rows`` and the counts
reconcile (fetched = loaded + set aside).
"""

from __future__ import annotations

import datetime
import json
from typing import Any, TypeGuard

import pandas as pd
import pandera.pandas as pa
from pandera.engines import pandas_engine
from pandera.typing import Series

SQL_TYPE = "sql_type"  # Field metadata key: the portable SQL type of the column

# The calendar days a date column can hold: pandera's Date coerces through datetime64[ns].
_FIRST_DAY = (pd.Timestamp.min + pd.Timedelta(days=1)).date()
_LAST_DAY = pd.Timestamp.max.date()


class Date(pandas_engine.Date):
    """pandera's ``Date`` (a column of ``datetime.date`` objects), checked on the whole column at once.

    pandera checks and coerces a date column value by value in Python, the largest share of
    validating a week of attendance. A column whose values are all ``datetime.date`` (the type
    itself, not ``datetime``) within the days datetime64[ns] holds is already what the check and
    the coercion demand: it passes and is kept as is. Any other column goes through pandera's
    own check and coercion, so a bad value fails exactly as before."""

    @staticmethod
    def _already_dates(values: Any, *, nulls: bool) -> TypeGuard[pd.Series]:
        if not isinstance(values, pd.Series) or values.dtype != object or not len(values):
            return False
        present = values.to_numpy()
        types = set(map(type, present))  # at C speed: one type object per value
        if nulls and type(None) in types:
            types.discard(type(None))
            present = present[values.notna().to_numpy()]
        return types == {datetime.date} and min(present) >= _FIRST_DAY and max(present) <= _LAST_DAY

    # The signature of pandera's Date.check, which narrows DataType.check's container to a Series.
    def check(self, pandera_dtype: Any, data_container: pd.Series | None = None) -> Any:  # type: ignore[override]
        if pandas_engine.DataType.check(self, pandera_dtype, data_container) and self._already_dates(
            data_container, nulls=True
        ):
            return pd.Series(True, index=data_container.index, name=data_container.name)
        return super().check(pandera_dtype, data_container)

    def coerce(self, data_container: Any) -> Any:
        # Coercion turns None into NaT (a not_nullable failure, or NaT kept): only all-date columns skip it.
        if self._already_dates(data_container, nulls=False):
            return data_container
        return super().coerce(data_container)


def _field(description: str, *, sql_type: str, nullable: bool = False, **checks: Any) -> Any:
    return pa.Field(description=description, nullable=nullable, metadata={SQL_TYPE: sql_type}, **checks)


def _unique(df: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Rows whose ``keys`` no other row repeats.

    A row whose every value is missing passes, as pandera's ``ignore_na`` makes a dataframe check
    do. The checks test for such rows themselves (``ignore_na=False``): pandera would look for
    missing values in every column of every row, where a row with its first key present cannot be
    one of them."""
    ids = df[keys[-1]]
    if not ids.hasnans:
        # The usual frame: its ids (the last key) are all distinct on their own, found by a set of
        # them at C speed, far cheaper than pandas' table of the key pairs. Else, the pairs.
        try:
            if len(set(ids.tolist())) == len(ids):
                return pd.Series(True, index=df.index)
        except TypeError:  # a value that cannot be hashed: pandas tells
            pass
    unique = ~df.duplicated(keys, keep=False)
    key_missing = df[keys[0]].isna()
    if key_missing.any():
        unique |= df[key_missing].isna().all(axis="columns").reindex(df.index, fill_value=False)
    return unique


class CompanyScoped(pa.DataFrameModel):
    company_id: Series[str] = _field("Protiv company the row belongs to.", sql_type="TEXT", str_length={"min_value": 1})

    class Config:
        strict = "filter"  # columns the model does not name are dropped, never written by accident
        coerce = True


class Attendance(CompanyScoped):
    """One worked time entry, identical in shape for every vendor."""

    entry_id: Series[str] = _field("The vendor's id of the time entry.", sql_type="TEXT", str_length={"min_value": 1})
    worker_id: Series[str] = _field(
        "Worker who clocked the time (workers.worker_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    job_id: Series[str] = _field(
        "Top-level job the time is on (jobs.job_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    milestone_id: Series[str] = _field("Milestone of the job, when the time is on one.", sql_type="TEXT", nullable=True)
    task_id: Series[str] = _field(
        "Line item of the job the time is booked to (task_lines.task_id): the BusyBusy entry's cost code, the "
        "opportunity service of the Aspire work ticket; null when the vendor names none (always for QuickBooks Time).",
        sql_type="TEXT",
        nullable=True,
    )
    work_date: Series[Date] = _field("Work date in the company's local time.", sql_type="DATE")
    start_at: Series[pd.DatetimeTZDtype("ns", "UTC")] = _field(  # type: ignore[valid-type]
        "Start in UTC; null for manual entries.", sql_type="TIMESTAMPTZ", nullable=True
    )
    end_at: Series[pd.DatetimeTZDtype("ns", "UTC")] = _field(  # type: ignore[valid-type]
        "End in UTC; null while on the clock and for manual entries.", sql_type="TIMESTAMPTZ", nullable=True
    )
    hours: Series[float] = _field("Worked hours (breaks excluded).", sql_type="DOUBLE PRECISION", ge=0, le=24)
    is_drive: Series[bool] = _field(
        "Time on a drive job: kept, excluded from ProPay actuals by default.", sql_type="BOOLEAN"
    )
    on_the_clock: Series[bool] = _field(
        "The entry is still running; hours are counted up to the sync.", sql_type="BOOLEAN"
    )
    entry_type: Series[str] = _field(
        "regular (clocked in and out) or manual (duration only).", sql_type="TEXT", isin=["regular", "manual"]
    )
    source_modified_at: Series[pd.DatetimeTZDtype("ns", "UTC")] = _field(  # type: ignore[valid-type]
        "When the vendor last changed the entry, UTC.", sql_type="TIMESTAMPTZ"
    )

    # A row with no start and no end passes already: pandera need not look for rows of missing values.
    @pa.dataframe_check(description="end is not before start", ignore_na=False)
    def end_after_start(cls, df: pd.DataFrame) -> pd.Series:
        return df["end_at"].isna() | df["start_at"].isna() | (df["end_at"] >= df["start_at"])

    @pa.dataframe_check(description="entry id is unique within the company", ignore_na=False)
    def unique_entry(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "entry_id"])


class Worker(CompanyScoped):
    """A person who can clock time, with the wage used for labor cost."""

    worker_id: Series[str] = _field("The vendor's id of the worker.", sql_type="TEXT", str_length={"min_value": 1})
    first_name: Series[str] = _field("First name.", sql_type="TEXT", nullable=True)
    last_name: Series[str] = _field("Last name.", sql_type="TEXT", nullable=True)
    active: Series[bool] = _field("Active in the vendor (false once terminated or archived).", sql_type="BOOLEAN")
    hourly_wage: Series[float] = _field(
        "Hourly wage in $; a yearly salary is divided by 2,080 hours.", sql_type="NUMERIC(10,4)", nullable=True, ge=0
    )
    pay_interval: Series[str] = _field("How the vendor states pay: hour or year.", sql_type="TEXT", nullable=True)
    hire_date: Series[Date] = _field("Hire date, when known.", sql_type="DATE", nullable=True)
    term_date: Series[Date] = _field("Termination date, when known.", sql_type="DATE", nullable=True)
    source_modified_at: Series[pd.DatetimeTZDtype("ns", "UTC")] = _field(  # type: ignore[valid-type]
        "When the vendor last changed the worker, UTC.", sql_type="TIMESTAMPTZ"
    )

    @pa.dataframe_check(description="worker id is unique within the company", ignore_na=False)
    def unique_worker(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "worker_id"])


class Job(CompanyScoped):
    """A job or one of its milestones, with its labor budget and status."""

    job_id: Series[str] = _field(
        "The vendor's id of the job or milestone.", sql_type="TEXT", str_length={"min_value": 1}
    )
    parent_job_id: Series[str] = _field("For a milestone, its job; null for a job.", sql_type="TEXT", nullable=True)
    level: Series[str] = _field(
        "job (top level) or milestone (child of a job).", sql_type="TEXT", isin=["job", "milestone"]
    )
    name: Series[str] = _field("Name in the vendor.", sql_type="TEXT")
    short_code: Series[str] = _field("Short code in the vendor.", sql_type="TEXT", nullable=True)
    budget_hours: Series[float] = _field(
        "Labor budget in worker-hours; null when the vendor has none.", sql_type="DOUBLE PRECISION", nullable=True, ge=0
    )
    status: Series[str] = _field(
        "open, completed or canceled, from the vendor.", sql_type="TEXT", isin=["open", "completed", "canceled"]
    )
    recurring: Series[bool] = _field("A recurring job gets one ProPay per milestone.", sql_type="BOOLEAN")
    is_drive: Series[bool] = _field("Time on this job is drive time.", sql_type="BOOLEAN")
    budget_type: Series[str] = _field(
        "How the vendor states the budget (hours, amount, contract_price, rate, task_hours, task_amount); "
        "null means the company's default_budget_type.",
        sql_type="TEXT",
        nullable=True,
    )
    budget_amount: Series[float] = _field(
        "Labor budget in $ for an amount budget; null when the vendor has none.",
        sql_type="NUMERIC(14,2)",
        nullable=True,
        ge=0,
    )
    contract_price: Series[float] = _field(
        "Contract price of the job in $, for a contract_price budget.", sql_type="NUMERIC(14,2)", nullable=True, ge=0
    )
    labor_budget_percent: Series[float] = _field(
        "Labor share of the contract price in % (35 = 35 %); null means the company's labor_budget_percent.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
        ge=0,
        le=100,
    )
    rate: Series[float] = _field(
        "Labor budget in $ per unit of work, for a rate budget (e.g. 2.50 per square foot).",
        sql_type="NUMERIC(14,4)",
        nullable=True,
        ge=0,
    )
    quantity: Series[float] = _field(
        "Units of work for a rate budget (e.g. 1,200 square feet).", sql_type="DOUBLE PRECISION", nullable=True, ge=0
    )
    service_type: Series[str] = _field(
        "Service type of the job in the vendor (used by exclusion rules).", sql_type="TEXT", nullable=True
    )
    property_id: Series[str] = _field(
        "The client site (property) the job is for (used by exclusion rules).", sql_type="TEXT", nullable=True
    )
    active: Series[bool] = _field("Active in the vendor.", sql_type="BOOLEAN")
    created_date: Series[Date] = _field(
        "Date the vendor created the job or milestone, in the company's local time; null when the vendor does not "
        "say. Work on a job created before the company's attendance pull date may never have been synced.",
        sql_type="DATE",
        nullable=True,
    )
    source_modified_at: Series[pd.DatetimeTZDtype("ns", "UTC")] = _field(  # type: ignore[valid-type]
        "When the vendor last changed the job, UTC.", sql_type="TIMESTAMPTZ"
    )

    @pa.dataframe_check(description="job id is unique within the company", ignore_na=False)
    def unique_job(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "job_id"])

    @pa.dataframe_check(description="a milestone names its job and a job has no parent")
    def parent_matches_level(cls, df: pd.DataFrame) -> pd.Series:
        return (df["level"] == "milestone") == df["parent_job_id"].notna()


class TaskLine(CompanyScoped):
    """A line item of a job's labor budget (a BusyBusy cost code budget, an Aspire opportunity service):
    the budget of the task_hours and task_amount budget types, held against the time booked to it."""

    job_id: Series[str] = _field(
        "Job or milestone the line item belongs to (jobs.job_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    task_id: Series[str] = _field(
        "The vendor's id of the line item (a BusyBusy cost code, an Aspire opportunity service); time booked to it "
        "carries the same attendance.task_id.",
        sql_type="TEXT",
        str_length={"min_value": 1},
    )
    name: Series[str] = _field(
        "Name of the line item in the vendor (cost code title, service name).", sql_type="TEXT", nullable=True
    )
    budget_hours: Series[float] = _field(
        "Budget of the line item in worker-hours; null when the vendor states none.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
        ge=0,
    )
    budget_amount: Series[float] = _field(
        "Labor budget of the line item in $; null when the vendor states none.",
        sql_type="NUMERIC(14,2)",
        nullable=True,
        ge=0,
    )

    @pa.dataframe_check(description="one line item per job and task", ignore_na=False)
    def unique_task_line(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "job_id", "task_id"])


class WorkerWage(CompanyScoped):
    """One wage of a worker's wage history: the hourly wage paid from effective_date until the worker's
    next effective_date. A worker without rows has only the wage of the workers table."""

    worker_id: Series[str] = _field("The worker (workers.worker_id).", sql_type="TEXT", str_length={"min_value": 1})
    effective_date: Series[Date] = _field(
        "First local work date paid at this wage; it stays in force until the worker's next effective_date "
        "(a date after the sync is a change already entered but not yet in force).",
        sql_type="DATE",
    )
    hourly_wage: Series[float] = _field(
        "Hourly wage in $ from effective_date on; a weekly, monthly or yearly wage is converted at 40 h a week, "
        "2,080 h a year.",
        sql_type="NUMERIC(10,4)",
        ge=0,
    )
    pay_interval: Series[str] = _field(
        "How the vendor states this wage: hour, week, month or year.", sql_type="TEXT", nullable=True
    )
    burden_percent: Series[float] = _field(
        "Burden on top of the wage in % as the vendor states it with this wage (BusyBusy overburden, Aspire "
        "BurdenPercent; 12.5 = 12.5 %); null when the vendor states none.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
        ge=0,
    )

    @pa.dataframe_check(description="one wage per worker and effective date", ignore_na=False)
    def unique_wage(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "worker_id", "effective_date"])


ASSIGNMENT_ROLES = ["crew_lead", "manager"]


class JobAssignment(CompanyScoped):
    """A person the vendor assigns to a job or milestone: its crew lead(s) or manager(s), who hold the
    ProPay's crew-lead and manager buckets."""

    job_id: Series[str] = _field(
        "Job or milestone the person is assigned to (jobs.job_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    worker_id: Series[str] = _field(
        "The person assigned (workers.worker_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    role: Series[str] = _field("crew_lead or manager of the job or milestone.", sql_type="TEXT", isin=ASSIGNMENT_ROLES)

    @pa.dataframe_check(description="one row per job, worker and role", ignore_na=False)
    def unique_assignment(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "job_id", "worker_id", "role"])


BUDGET_TYPES = ["hours", "amount", "contract_price", "rate", "task_hours", "task_amount"]
PROPAY_STATUSES = ["pending", "started", "completed", "canceled"]
PAY_STATES = ["final", "provisional", "none"]
WORKER_ROLES = ["crew", "crew_lead", "manager", "other"]


class PropayOpportunity(CompanyScoped):
    """One ProPay: a job or milestone with a labor budget, its actuals, savings, bonus pool and who got it."""

    propay_id: Series[str] = _field("The job or milestone id the ProPay is for.", sql_type="TEXT")
    job_id: Series[str] = _field("Top-level job of the ProPay (jobs.job_id).", sql_type="TEXT")
    milestone_id: Series[str] = _field(
        "Milestone of the job for a ProPay per milestone; null for a ProPay on a whole job.",
        sql_type="TEXT",
        nullable=True,
    )
    name: Series[str] = _field("Job name, followed by the milestone name for a ProPay per milestone.", sql_type="TEXT")
    budget_type: Series[str] = _field(
        "How the labor budget is stated: hours, amount, contract_price, rate, task_hours or task_amount.",
        sql_type="TEXT",
        isin=BUDGET_TYPES,
    )
    budget_hours: Series[float] = _field(
        "Budget in worker-hours after the company's budget modification; for a $ budget it is the budget $ "
        "divided by the blended wage, and null while no time is clocked.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
    )
    budget_amount: Series[float] = _field(
        "Labor budget in $ after the company's budget modification; for an hours budget it is the budget hours "
        "times the blended wage, and null while no time is clocked.",
        sql_type="NUMERIC(14,2)",
        nullable=True,
    )
    actual_hours: Series[float] = _field(
        "Worker-hours counted on the ProPay, in hours: drive time and time before the launch date are left out unless the company counts them.",
        sql_type="DOUBLE PRECISION",
        ge=0,
    )
    labor_cost: Series[float] = _field(
        "Actual labor cost in $, rounded once to the cent: the exact sum over entries of seconds / 3600 x the wage in "
        "force on the work date (burdened when budgets include burden); null when a worker has no wage (the ProPay is "
        "then excluded).",
        sql_type="NUMERIC(14,2)",
        nullable=True,
        ge=0,
    )
    blended_wage: Series[float] = _field(
        "The crew's blended wage in $ per hour: labor_cost divided by actual_hours; null with no hours.",
        sql_type="NUMERIC(10,4)",
        nullable=True,
        ge=0,
    )
    saved_hours: Series[float] = _field(
        "Hours saved: budget_hours minus actual_hours, negative when over budget; null without counted time (never the "
        "whole budget) or without an hours equivalent.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
    )
    saved_amount: Series[float] = _field(
        "Saved labor in $ (what the bonus pool is taken from), rounded once from the exact saving; 0 when over budget "
        "or without counted time; null when a wage is missing.",
        sql_type="NUMERIC(14,2)",
        nullable=True,
        ge=0,
    )
    overage_hours: Series[float] = _field(
        "Hours over budget: actual_hours minus budget_hours when positive, else 0; null when saved_hours is null.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
        ge=0,
    )
    overage_amount: Series[float] = _field(
        "Labor $ over budget; 0 when on or under budget; null when a wage is missing.",
        sql_type="NUMERIC(14,2)",
        nullable=True,
        ge=0,
    )
    efficiency: Series[float] = _field(
        "Budget divided by actual in the budget's own unit (1.0 = on budget, 1.1 = 10 % under); null with no actuals.",
        sql_type="DOUBLE PRECISION",
        nullable=True,
        ge=0,
    )
    pool_before_penalty: Series[float] = _field(
        "Workers' share of the exact saved labor in $, rounded half up to the cent; 0 when the ProPay pays nothing "
        "(excluded, disqualified, canceled, pending, no hours).",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    penalty_amount: Series[float] = _field(
        "Penalty in $ deducted from the pool, never more than the pool.", sql_type="NUMERIC(14,2)", ge=0
    )
    bonus_pool: Series[float] = _field(
        "Bonus pool in $: pool_before_penalty minus penalty_amount, split into the role buckets.",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    crew_bucket: Series[float] = _field("Part of the pool for the crew, in $.", sql_type="NUMERIC(14,2)", ge=0)
    crew_lead_bucket: Series[float] = _field("Part of the pool for crew leads, in $.", sql_type="NUMERIC(14,2)", ge=0)
    manager_bucket: Series[float] = _field("Part of the pool for managers, in $.", sql_type="NUMERIC(14,2)", ge=0)
    other_bucket: Series[float] = _field("Part of the pool for other roles, in $.", sql_type="NUMERIC(14,2)", ge=0)
    company_bucket: Series[float] = _field(
        "Part of the pool the company's role buckets keep for the company, in $.", sql_type="NUMERIC(14,2)", ge=0
    )
    unclaimed_amount: Series[float] = _field(
        "Role buckets in $ nobody holds (moved into the crew bucket) plus a crew bucket nobody can share (kept by the "
        "company).",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    paid_to_workers: Series[float] = _field(
        "Sum of the worker bonuses in $ (propay_worker_bonuses.bonus); paid_to_workers + kept_by_company = bonus_pool.",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    kept_by_company: Series[float] = _field(
        "Part of the pool in $ not paid to workers: the company bucket plus a crew bucket nobody can share.",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    overtime_adjustment: Series[float] = _field(
        "FLSA regular-rate overtime owed on this ProPay's bonuses in $, on top of them (sum over its workers).",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    disqualified: Series[bool] = _field(
        "The company disqualified the ProPay: it pays no bonus at all.", sql_type="BOOLEAN"
    )
    disqualification_reason: Series[str] = _field(
        "Why the ProPay was disqualified; null when it was not.", sql_type="TEXT", nullable=True
    )
    status: Series[str] = _field(
        "pending (no time yet), started, completed (ready for approval) or canceled, from the source.",
        sql_type="TEXT",
        isin=PROPAY_STATUSES,
    )
    worker_count: Series[int] = _field("Number of workers with counted time on the ProPay.", sql_type="BIGINT", ge=0)
    first_work_date: Series[Date] = _field(
        "First day with counted time; null with none.", sql_type="DATE", nullable=True
    )
    last_work_date: Series[Date] = _field("Last day with counted time; null with none.", sql_type="DATE", nullable=True)
    exclusion_reason: Series[str] = _field(
        "Why the ProPay pays nothing although it has a budget: an exclusion rule, began before the attendance pull "
        "date, work before the launch date, or a worker without a wage; null for an eligible ProPay.",
        sql_type="TEXT",
        nullable=True,
    )
    settings_version: Series[int] = _field(
        "The company's settings version the ProPay was computed with (propay_settings_versions.version): the one in "
        "force on its first work date, the latest while it has no time.",
        sql_type="BIGINT",
        ge=1,
    )
    pay_state: Series[str] = _field(
        "final (a completed ProPay that pays: the money will not change), provisional (a started ProPay that pays: "
        "its money may still change) or none (pays nothing; no_bonus_reason says why).",
        sql_type="TEXT",
        isin=PAY_STATES,
    )
    no_bonus_reason: Series[str] = _field(
        "Why the bonus pool is $0: excluded, disqualified, canceled, pending, no hours, over budget, on budget, no "
        "worker share, penalty or under a cent; null when it pays.",
        sql_type="TEXT",
        nullable=True,
    )
    began_before_pull_date: Series[bool] = _field(
        "The job or a milestone of it began before the company's attendance pull date (created before it, or time "
        "before it): excluded unless the company counts such jobs.",
        sql_type="BOOLEAN",
    )
    actual_seconds: Series[int] = _field(
        "Counted worker-seconds on the ProPay (actual_hours = actual_seconds / 3600 exactly).", sql_type="BIGINT", ge=0
    )
    budget_unit: Series[str] = _field(
        "Unit of the exact budget budget_numerator / budget_denominator: hours (hours and task_hours budgets) or dollars.",
        sql_type="TEXT",
        isin=["hours", "dollars"],
    )
    budget_numerator: Series[object] = _field(
        "Exact budget after the budget modification, in budget_unit: budget_numerator / budget_denominator.",
        sql_type="NUMERIC(38,0)",
    )
    budget_denominator: Series[object] = _field(
        "Denominator of the exact budget (see budget_numerator).", sql_type="NUMERIC(38,0)", gt=0
    )
    labor_cost_numerator: Series[object] = _field(
        "Exact labor cost in dollars: labor_cost_numerator / labor_cost_denominator (labor_cost is it rounded to the "
        "cent); null when a wage is missing.",
        sql_type="NUMERIC(38,0)",
        nullable=True,
    )
    labor_cost_denominator: Series[object] = _field(
        "Denominator of the exact labor cost (see labor_cost_numerator).", sql_type="NUMERIC(38,0)", nullable=True, gt=0
    )

    @pa.dataframe_check(description="ProPay id is unique within the company", ignore_na=False)
    def unique_propay(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "propay_id"])


class PropayWorkerBonus(CompanyScoped):
    """One worker's share of one ProPay: the hours and labor they put in and the bonus they earned."""

    propay_id: Series[str] = _field(
        "The ProPay (propay_opportunities.propay_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    worker_id: Series[str] = _field(
        "Worker with counted time on the ProPay (workers.worker_id).", sql_type="TEXT", str_length={"min_value": 1}
    )
    role: Series[str] = _field(
        "The worker's role in the company settings (the ProPay's settings version): crew, crew_lead, manager or other.",
        sql_type="TEXT",
        isin=WORKER_ROLES,
    )
    bucket: Series[str] = _field(
        "The role bucket the worker holds on this ProPay (crew_lead, manager or other: the first when several), else "
        "crew; everyone with counted time also shares the crew bucket.",
        sql_type="TEXT",
        isin=WORKER_ROLES,
    )
    hours: Series[float] = _field(
        "The worker's counted hours on the ProPay, in hours.", sql_type="DOUBLE PRECISION", ge=0
    )
    wage: Series[float] = _field(
        "Hourly wage used for labor cost in $ per hour (burdened when budgets include burden); with several wages over "
        "the ProPay's dates their average (labor_cost / hours); null without counted time or without a wage.",
        sql_type="NUMERIC(10,4)",
        nullable=True,
        ge=0,
    )
    weight: Series[float] = _field(
        "The worker's weight in the crew bucket under the distribution method (hours, labor $, lead-weighted hours, 1, "
        "or the manual %); 0 when they share none of it.",
        sql_type="DOUBLE PRECISION",
        ge=0,
    )
    labor_cost: Series[float] = _field(
        "The worker's exact labor cost in $, rounded to the cent; null when a wage is missing.",
        sql_type="NUMERIC(14,2)",
        nullable=True,
        ge=0,
    )
    bonus: Series[float] = _field(
        "The worker's ProPay bonus in $: crew_share + role_bucket_share; the bonuses of a ProPay sum to its paid_to_workers.",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    overtime_adjustment: Series[float] = _field(
        "Overtime owed on this bonus in $ (FLSA regular rate: bonus per hour worked in the week x 0.5 x overtime hours).",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    settings_version: Series[int] = _field(
        "The ProPay's settings version (propay_settings_versions.version).", sql_type="BIGINT", ge=1
    )
    seconds: Series[int] = _field(
        "The worker's counted seconds on the ProPay (hours = seconds / 3600 exactly); 0 for a lead or manager paid "
        "without time on it.",
        sql_type="BIGINT",
        ge=0,
    )
    wage_count: Series[int] = _field(
        "Number of different wages the worker had on the ProPay's work dates; with more than one, wage is their "
        "average (labor_cost / hours).",
        sql_type="BIGINT",
        ge=0,
    )
    labor_cost_numerator: Series[object] = _field(
        "The worker's exact labor cost in dollars: labor_cost_numerator / labor_cost_denominator; null when a wage is missing.",
        sql_type="NUMERIC(38,0)",
        nullable=True,
    )
    labor_cost_denominator: Series[object] = _field(
        "Denominator of the worker's exact labor cost.", sql_type="NUMERIC(38,0)", nullable=True, gt=0
    )
    crew_share: Series[float] = _field(
        "The worker's share of the crew bucket in $ (by the distribution method).", sql_type="NUMERIC(14,2)", ge=0
    )
    role_bucket_share: Series[float] = _field(
        "The worker's share in $ of the crew-lead, manager or other bucket they hold (split equally between holders).",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    role_buckets_held: Series[str] = _field(
        "The role buckets the worker holds on this ProPay (crew_lead, manager, other; comma-separated); null when none.",
        sql_type="TEXT",
        nullable=True,
    )

    @pa.dataframe_check(description="one row per ProPay and worker", ignore_na=False)
    def unique_worker_per_propay(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "propay_id", "worker_id"])


class PropayOvertimeWeek(CompanyScoped):
    """One worker's workweek that carries a ProPay bonus, with the overtime adjustment owed on it."""

    worker_id: Series[str] = _field("The worker (workers.worker_id).", sql_type="TEXT", str_length={"min_value": 1})
    week_start: Series[Date] = _field("First day of the workweek (the company's workweek_start).", sql_type="DATE")
    hours_worked: Series[float] = _field(
        "Every hour the worker worked in the week on any job, drive time included, in hours.",
        sql_type="DOUBLE PRECISION",
        ge=0,
    )
    overtime_hours: Series[float] = _field(
        "Overtime hours of the week under the company's weekly (and daily) thresholds.",
        sql_type="DOUBLE PRECISION",
        ge=0,
    )
    bonus_in_week: Series[float] = _field(
        "ProPay bonus in $ allocated to the week (in proportion to the worker's counted seconds on each ProPay per "
        "week; a lead or manager without time on it, the ProPay's), the exact sum rounded once.",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    overtime_adjustment: Series[float] = _field(
        "Overtime owed in $: bonus_in_week / hours_worked x 0.5 x overtime_hours, rounded to the cent.",
        sql_type="NUMERIC(14,2)",
        ge=0,
    )
    settings_version: Series[int] = _field(
        "Settings version in force on the week's first day (its overtime thresholds apply).", sql_type="BIGINT", ge=1
    )
    seconds_worked: Series[int] = _field(
        "Every second the worker worked in the week (hours_worked = seconds_worked / 3600).", sql_type="BIGINT", ge=0
    )
    overtime_seconds: Series[int] = _field(
        "Overtime seconds of the week (overtime_hours = overtime_seconds / 3600).", sql_type="BIGINT", ge=0
    )

    @pa.dataframe_check(description="one row per worker and week", ignore_na=False)
    def unique_week(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "worker_id", "week_start"])


class JobWithoutPropay(CompanyScoped):
    """A job or milestone that pays no ProPay of its own and is not counted in one, or an excluded ProPay,
    with the reason: where an analyst looks when a job they expected to pay has no bonus."""

    item_id: Series[str] = _field(
        "The jobs.job_id of what the row is about: the milestone's id for a milestone, else the job's.",
        sql_type="TEXT",
        str_length={"min_value": 1},
    )
    job_id: Series[str] = _field("The top-level job (jobs.job_id).", sql_type="TEXT", str_length={"min_value": 1})
    milestone_id: Series[str] = _field(
        "The milestone, for a row about a milestone; null for a row about a whole job.", sql_type="TEXT", nullable=True
    )
    name: Series[str] = _field("Name of the job or milestone in the vendor.", sql_type="TEXT", nullable=True)
    reason: Series[str] = _field(
        "Why it pays no ProPay: drive job, recurring job (its milestones are the ProPays), no budget, unknown budget "
        "type, milestones' budgets of different types, counted in a job that has no ProPay, or the exclusion reason "
        "of an excluded ProPay.",
        sql_type="TEXT",
        str_length={"min_value": 1},
    )

    @pa.dataframe_check(description="one row per job or milestone", ignore_na=False)
    def unique_item(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "item_id"])


class PropaySettingsVersion(CompanyScoped):
    """One version of a company's ProPay settings as the ProPays were computed with it: the settings an
    auditor needs to recompute a ProPay (its settings_version) from the warehouse alone."""

    version: Series[int] = _field(
        "Version number, 1 for the settings the company connected with.", sql_type="BIGINT", ge=1
    )
    effective_from: Series[Date] = _field(
        "First work date the version applies to: a ProPay takes the version in force on its first work date, an "
        "overtime week the one in force on its first day. Null for version 1 (in force from the start).",
        sql_type="DATE",
        nullable=True,
    )
    recorded_at: Series[pd.DatetimeTZDtype(tz="UTC")] = _field(  # type: ignore[valid-type]
        "When an admin recorded the version.", sql_type="TIMESTAMPTZ"
    )
    settings: Series[str] = _field(
        "The whole settings of the version as JSON, in the format of docs/settings.md (every field, defaults included).",
        sql_type="TEXT",
    )
    attendance_pull_date: Series[Date] = _field(
        "The company's attendance pull date when the ProPays were computed: no time before it is counted, and a job "
        "begun before it is excluded unless the version counts such jobs. The same on every version's row.",
        sql_type="DATE",
    )

    @pa.dataframe_check(description="one row per version", ignore_na=False)
    def unique_version(cls, df: pd.DataFrame) -> pd.Series:
        return _unique(df, ["company_id", "version"])


# pandera registers its pandas backends on a process's first validation, and with them imports its
# data synthesis strategies (about 110 modules where hypothesis is installed, as in a dev install).
# Registered here, beside the models, a run process pays that while it loads the definitions rather
# than inside the first step that validates a frame.
pa.DataFrameSchema.register_default_backends(pd.DataFrame)


def _record_text(row: pd.Series) -> str:
    return json.dumps({k: (None if pd.isna(v) else str(v)) for k, v in row.items()}, sort_keys=True)


def split_valid(
    frame: pd.DataFrame, model: type[pa.DataFrameModel], record_id: str
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Validate ``frame``; return (valid rows coerced to the model, rows set aside with their reasons).

    Set-aside rows carry ``record_id``, ``reason`` (every failed check, semicolon-separated) and
    ``record`` (the row as JSON text). A problem with the frame as a whole (a missing column) is a bug
    in the mapping, not bad data, and raises.
    """
    schema = model.to_schema()
    frame = frame.reset_index(drop=True)
    try:
        return schema.validate(frame, lazy=True), no_rejects()
    except pa.errors.SchemaErrors as exc:
        failures = exc.failure_cases
    row_failures = failures[failures["index"].notna()]
    if len(row_failures) < len(failures):
        frame_level = failures[failures["index"].isna()]
        raise ValueError(
            f"{model.__name__}: the frame itself is malformed: "
            + "; ".join(
                f"column {case!r} is missing" if check == "column_in_dataframe" else f"{column} {check}: {case}"
                for column, check, case in zip(frame_level["column"], frame_level["check"], frame_level["failure_case"])
            )
        )
    # A failed dataframe-level check is reported once per column of the row: name the check once.
    descriptions = {c.name: c.description for c in schema.checks if c.description}
    reasons = (
        row_failures.assign(
            index=row_failures["index"].astype(int),
            reason=[
                f"{column}: {check}"
                if context == "Column"
                else (f"{check} ({descriptions[check]})" if check in descriptions else str(check))
                for context, column, check in zip(
                    row_failures["schema_context"], row_failures["column"], row_failures["check"]
                )
            ],
        )
        .groupby("index")["reason"]
        .agg(lambda r: "; ".join(sorted(set(r))))
    )
    bad = frame.loc[reasons.index]
    rejected = pd.DataFrame(
        {
            "record_id": bad[record_id].astype("string").fillna(""),
            "reason": reasons.values,
            "record": bad.apply(_record_text, axis=1) if len(bad) else pd.Series(dtype=str),
        }
    )
    valid = schema.validate(frame.drop(index=reasons.index).reset_index(drop=True), lazy=True)
    return valid, rejected.reset_index(drop=True)


def no_rejects() -> pd.DataFrame:
    return pd.DataFrame(
        {"record_id": pd.Series(dtype=str), "reason": pd.Series(dtype=str), "record": pd.Series(dtype=str)}
    )
