"""The ProPay engine: from jobs, attendance, workers and a company's settings to every ProPay's
savings and bonus pool, each worker's bonus, and the overtime adjustment owed on it.

Pure pandas/numpy, vectorized (group sums over integer codes, no loop per ProPay or per row), no
Dagster, HTTP or SQL. The rules live in the modules they belong to: ``units`` (which jobs are
ProPays, budgets, exclusions), ``distribution`` (buckets and workers), ``overtime``. Here:

- Hours are worker-hours. Counted time: attendance on the ProPay's job or milestone, drive time left
  out unless ``include_drive_time``, time before ``launch_date`` left out (a ProPay whose work is all
  before the launch date is excluded with that reason).
- Labor cost = hours x wage, the wage burdened (x (1 + burden_percent)) only when
  ``budgets_include_burden``; a worker with no wage costs $0. Blended wage = labor cost / hours.
- Savings by budget type (budgets scaled by ``budget_modification_percent``):
  ``hours`` and ``task_hours``: saved $ = (budget h - actual h) x blended wage;
  ``amount``, ``contract_price`` (price x labor %), ``rate`` (rate x quantity), ``task_amount``:
  saved $ = budget $ - labor $. Task types are netted: saved = sum over lines of (budget - actual),
  which is total budget - total actual, time on no budgeted line counting as a line with no budget.
  Over budget: no bonus; the overage (hours and $) is reported. The other unit (hours for a $
  budget, $ for an hours budget) is derived at the blended wage, null when no time is clocked.
- Efficiency = budget / actual (1.0 = on budget, 1.1 = 10 % under), in the budget's own unit.
- bonus pool = saved $ x worker_share, the share taken to the basis point and the result rounded half
  up to the cent; then the ProPay's penalty is deducted (never below 0); a disqualification, an
  exclusion, voids it. The engine computes the bonus of every status; approving it is the app's job.
- Status: canceled or completed from the source; otherwise started once a minute is counted, else
  pending.

Money is carried as int64 cents (and costs as int64 micro-dollars, hours as int64 micro-hours, so
sums are exact and do not depend on row order); the output frames show dollars as floats that are
exactly the cents / 100.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import ROLE_BUCKETS, WORKER_ROLES, CompanySettings
from protiv_dagster.propay.distribution import distribute, split_into_role_buckets
from protiv_dagster.propay.money import half_up_cents
from protiv_dagster.propay.overtime import MICRO, overtime_adjustments
from protiv_dagster.propay.units import HOURS_TYPES, scaled_budgets, select_opportunities

ONE_MINUTE_MICRO = MICRO / 60

OPPORTUNITY_OUTPUT_COLUMNS = [
    "company_id", "propay_id", "job_id", "milestone_id", "name", "budget_type", "budget_hours", "budget_amount",
    "actual_hours", "labor_cost", "blended_wage", "saved_hours", "saved_amount", "overage_hours", "overage_amount",
    "efficiency", "pool_before_penalty", "penalty_amount", "bonus_pool",
    *(f"{role}_bucket" for role in ROLE_BUCKETS),
    "unclaimed_amount", "paid_to_workers", "kept_by_company", "overtime_adjustment",
    "disqualified", "disqualification_reason", "status", "worker_count", "first_work_date", "last_work_date",
    "exclusion_reason",
]
WORKER_BONUS_COLUMNS = [
    "company_id", "propay_id", "worker_id", "role", "bucket", "hours", "wage", "labor_cost", "weight", "bonus",
    "overtime_adjustment",
]
OVERTIME_WEEK_COLUMNS = [
    "company_id", "worker_id", "week_start", "hours_worked", "overtime_hours", "bonus_in_week", "overtime_adjustment",
]


@dataclass(frozen=True)
class PropayResult:
    """``opportunities``: one row per ProPay (``OPPORTUNITY_OUTPUT_COLUMNS``); ``worker_bonuses``: one
    row per ProPay and worker with time on it (``WORKER_BONUS_COLUMNS``); ``overtime_weeks``: one row
    per worker and workweek that carries a bonus (``OVERTIME_WEEK_COLUMNS``)."""

    opportunities: pd.DataFrame
    worker_bonuses: pd.DataFrame
    overtime_weeks: pd.DataFrame


def _days(values: pd.Series) -> np.ndarray:
    """Dates (date objects, strings or datetimes) as int64 days since 1970-01-01; converts each distinct day once."""
    codes, uniques = pd.factorize(values)
    if len(uniques) == 0:
        return np.zeros(len(values), dtype=np.int64)
    as_days = pd.to_datetime(pd.Index(uniques)).values.astype("datetime64[D]").astype(np.int64)
    return as_days[codes]


def _cents(micro_dollars: np.ndarray) -> np.ndarray:
    """Non-negative micro-dollars to cents, half up, in integers."""
    return (np.asarray(micro_dollars, dtype=np.int64) + 5_000) // 10_000


def _dollars(cents: np.ndarray) -> np.ndarray:
    return np.asarray(cents, dtype=np.int64) / 100


def compute_propays(
    jobs: pd.DataFrame,
    attendance: pd.DataFrame,
    workers: pd.DataFrame,
    settings: CompanySettings,
    company_id: str,
    task_budgets: pd.DataFrame | None = None,
) -> PropayResult:
    """Every ProPay of one company with its savings, pool and buckets, each worker's bonus, and overtime.

    ``jobs``, ``attendance`` and ``workers`` are the cleaned tables (``schemas.Job``, ``Attendance``,
    ``Worker``). Jobs may carry the optional columns ``budget_type``, ``budget_amount``,
    ``contract_price``, ``labor_budget_percent`` (%), ``rate``, ``quantity``, ``service_type`` and
    ``property_id``. ``task_budgets`` holds task lines: ``propay_id``, ``task``, ``budget_hours``
    and/or ``budget_amount``.
    """
    units = select_opportunities(jobs, settings, task_budgets)
    n = len(units)

    # --- Time entries as integer codes -----------------------------------------------------------
    worker_code, worker_ids = pd.factorize(attendance["worker_id"].astype(str), sort=True)
    worker_ids = np.asarray(worker_ids, dtype=object)
    base_wage = (
        workers.assign(worker_id=workers["worker_id"].astype(str)).drop_duplicates("worker_id")
        .set_index("worker_id")["hourly_wage"].astype(float).reindex(worker_ids).fillna(0.0).to_numpy()
    )
    burden = 1 + settings.burden_percent / 100 if settings.budgets_include_burden else 1.0
    wage = base_wage * burden
    hours_micro = np.round(attendance["hours"].to_numpy(dtype=float) * MICRO).astype(np.int64)
    cost_micro = np.round(attendance["hours"].to_numpy(dtype=float) * wage[worker_code] * MICRO).astype(np.int64)
    day = _days(attendance["work_date"])
    is_drive = attendance["is_drive"].to_numpy(dtype=bool)
    milestone_units = units[units["milestone_id"].notna()]
    job_units = units[units["milestone_id"].isna()]
    via_milestone = pd.Index(milestone_units.index.to_numpy()).take(
        pd.Index(milestone_units["milestone_id"].astype(str)).get_indexer(attendance["milestone_id"]), allow_fill=True, fill_value=-1
    ).to_numpy()
    via_job = pd.Index(job_units.index.to_numpy()).take(
        pd.Index(job_units["job_id"].astype(str)).get_indexer(attendance["job_id"]), allow_fill=True, fill_value=-1
    ).to_numpy()
    unit_code = np.where(via_milestone >= 0, via_milestone, via_job).astype(np.int64)

    on_propay = (unit_code >= 0) & (settings.include_drive_time | ~is_drive)
    if settings.launch_date is not None:
        launch = np.datetime64(settings.launch_date, "D").astype(np.int64)
        before_launch = day < launch
    else:
        before_launch = np.zeros(len(day), dtype=bool)
    counted = on_propay & ~before_launch
    exclusion_reason = units["exclusion_reason"]
    if settings.launch_date is not None:
        worked_before = np.bincount(unit_code[on_propay & before_launch], minlength=n) > 0
        worked_after = np.bincount(unit_code[counted], minlength=n) > 0
        exclusion_reason = exclusion_reason.mask(
            exclusion_reason.isna() & worked_before & ~worked_after,
            f"all work is before the launch date {settings.launch_date.isoformat()}",
        )

    # --- Per ProPay and worker, then per ProPay ------------------------------------------------------
    n_workers = max(len(worker_ids), 1)
    counted_unit, counted_worker = unit_code[counted], worker_code[counted]
    pair_code, pair_keys = pd.factorize(counted_unit * n_workers + counted_worker, sort=True)
    pair_keys = np.asarray(pair_keys, dtype=np.int64)
    pair_unit, pair_worker = pair_keys // n_workers, pair_keys % n_workers
    pair_hours_micro = np.bincount(pair_code, weights=hours_micro[counted], minlength=len(pair_keys))
    pair_cost_micro = np.bincount(pair_code, weights=cost_micro[counted], minlength=len(pair_keys))
    hours_micro_actual = np.bincount(pair_unit, weights=pair_hours_micro, minlength=n)
    hours_actual = hours_micro_actual / MICRO
    labor_cents = _cents(np.bincount(pair_unit, weights=pair_cost_micro, minlength=n))
    worker_count = np.bincount(pair_unit, minlength=n)
    dates = pd.Series(day[counted]).groupby(counted_unit).agg(["min", "max"]).reindex(range(n))

    # --- Savings by budget type -------------------------------------------------------------------
    budget_hours, budget_cents = scaled_budgets(units, settings)
    with np.errstate(divide="ignore", invalid="ignore"):
        blended = np.where(hours_actual > 0, _dollars(labor_cents) / hours_actual, np.nan)
        hours_type = units["budget_type"].isin(HOURS_TYPES).to_numpy()
        amount_type = budget_cents >= 0
        known_wage = ~np.isnan(blended)
        saved_hours_h = budget_hours - hours_actual
        saved_cents_h = np.where(known_wage, half_up_cents(np.maximum(saved_hours_h, 0) * np.nan_to_num(blended)), 0)
        overage_cents_h = np.where(known_wage, half_up_cents(np.maximum(-saved_hours_h, 0) * np.nan_to_num(blended)), 0)
        budget_hours_a = np.where(known_wage & (blended > 0), _dollars(budget_cents) / blended, np.nan)
        saved_cents = np.select([hours_type, amount_type], [saved_cents_h, np.maximum(budget_cents - labor_cents, 0)], 0)
        overage_cents = np.select([hours_type, amount_type], [overage_cents_h, np.maximum(labor_cents - budget_cents, 0)], 0)
        budget_hours_out = np.select([hours_type, amount_type], [budget_hours, budget_hours_a], np.nan)
        budget_amount_out = np.select(
            [hours_type & known_wage, amount_type], [half_up_cents(np.nan_to_num(budget_hours) * np.nan_to_num(blended)), budget_cents], -1
        )
        saved_hours = budget_hours_out - hours_actual
        efficiency = np.select(
            [hours_type & (hours_actual > 0), amount_type & (labor_cents > 0)],
            [budget_hours / hours_actual, budget_cents / np.maximum(labor_cents, 1)],
            np.nan,
        )

    # --- Pool, penalty, disqualification, buckets --------------------------------------------------
    share_basis_points = int(np.floor(round(settings.worker_share * 10_000, 6)))
    gross_pool = (saved_cents * share_basis_points * 2 + 10_000) // 20_000
    propay_ids = units["propay_id"]
    disqualification = propay_ids.map(settings.disqualifications)
    disqualified = disqualification.notna().to_numpy()
    eligible = exclusion_reason.isna().to_numpy()
    pays = eligible & ~disqualified
    penalty_cents = half_up_cents(propay_ids.map(settings.penalties).fillna(0.0).to_numpy(dtype=float))
    penalty_applied = np.where(pays, np.minimum(penalty_cents, gross_pool), 0)
    pool = np.where(pays, gross_pool - penalty_applied, 0)
    buckets = split_into_role_buckets(pool, settings)

    # --- Workers -------------------------------------------------------------------------------------
    roles = pd.Series(worker_ids, dtype=object).map(settings.worker_roles).astype(object)
    roles = roles.where(roles.notna(), "crew")
    worker_role = roles.map({r: i for i, r in enumerate(WORKER_ROLES)}).to_numpy(dtype=np.int64)
    manual_percent = pd.Series(worker_ids).map(settings.manual_distribution).to_numpy(dtype=float)
    pair_hours = pair_hours_micro / MICRO
    pair_labor_cents = _cents(pair_cost_micro)
    shared = distribute(
        buckets, pair_unit, pair_worker, pair_hours, pair_labor_cents / 100, worker_role, manual_percent, settings
    )
    overtime = overtime_adjustments(
        worker_code, day, hours_micro,
        pair_code, day[counted], hours_micro[counted],
        pair_worker, pair_hours_micro, shared.bonus_cents, settings,
    )
    paid = np.bincount(pair_unit, weights=shared.bonus_cents, minlength=n).astype(np.int64)
    overtime_per_propay = np.bincount(pair_unit, weights=overtime.pair_adjustment_cents, minlength=n).astype(np.int64)

    status = np.where(
        units["source_status"].isin(["canceled", "completed"]),
        units["source_status"],
        np.where(hours_micro_actual >= ONE_MINUTE_MICRO - 0.5, "started", "pending"),
    )
    opportunities = pd.DataFrame(
        {
            "company_id": company_id,
            "propay_id": propay_ids.to_numpy(),
            "job_id": units["job_id"].to_numpy(),
            "milestone_id": units["milestone_id"].to_numpy(),
            "name": units["name"].to_numpy(),
            "budget_type": units["budget_type"].to_numpy(),
            "budget_hours": np.round(budget_hours_out, 6),
            "budget_amount": np.where(budget_amount_out >= 0, _dollars(budget_amount_out), np.nan),
            "actual_hours": np.round(hours_actual, 6),
            "labor_cost": _dollars(labor_cents),
            "blended_wage": np.round(blended, 4),
            "saved_hours": np.round(saved_hours, 6),
            "saved_amount": _dollars(saved_cents),
            "overage_hours": np.round(np.maximum(-saved_hours, 0), 6),
            "overage_amount": _dollars(overage_cents),
            "efficiency": np.round(efficiency, 6),
            "pool_before_penalty": _dollars(np.where(pays, gross_pool, 0)),
            "penalty_amount": _dollars(penalty_applied),
            "bonus_pool": _dollars(pool),
            **{f"{role}_bucket": _dollars(buckets[:, i]) for i, role in enumerate(ROLE_BUCKETS)},
            "unclaimed_amount": _dollars(shared.unclaimed_cents),
            "paid_to_workers": _dollars(paid),
            "kept_by_company": _dollars(shared.kept_by_company_cents),
            "overtime_adjustment": _dollars(overtime_per_propay),
            "disqualified": disqualified,
            "disqualification_reason": disqualification.to_numpy(dtype=object),
            "status": status,
            "worker_count": worker_count.astype(np.int64),
            "first_work_date": _dates(dates["min"]),
            "last_work_date": _dates(dates["max"]),
            "exclusion_reason": exclusion_reason.to_numpy(dtype=object),
        },
        columns=OPPORTUNITY_OUTPUT_COLUMNS,
    )
    worker_bonuses = pd.DataFrame(
        {
            "company_id": company_id,
            "propay_id": propay_ids.to_numpy()[pair_unit],
            "worker_id": worker_ids[pair_worker],
            "role": roles.to_numpy()[pair_worker],
            "bucket": np.asarray(WORKER_ROLES, dtype=object)[shared.bucket],
            "hours": np.round(pair_hours, 6),
            "wage": np.round(wage[pair_worker], 4),
            "labor_cost": _dollars(pair_labor_cents),
            "weight": shared.weight,
            "bonus": _dollars(shared.bonus_cents),
            "overtime_adjustment": _dollars(overtime.pair_adjustment_cents),
        },
        columns=WORKER_BONUS_COLUMNS,
    )
    weeks = overtime.weeks
    overtime_weeks = pd.DataFrame(
        {
            "company_id": company_id,
            "worker_id": worker_ids[weeks["worker"].to_numpy(dtype=np.int64)],
            "week_start": _dates(weeks["week_start"]),
            "hours_worked": np.round(weeks["hours_worked"].to_numpy(dtype=float), 6),
            "overtime_hours": np.round(weeks["overtime_hours"].to_numpy(dtype=float), 6),
            "bonus_in_week": _dollars(half_up_cents(weeks["bonus_in_week"].to_numpy(dtype=float))),
            "overtime_adjustment": _dollars(weeks["overtime_adjustment"].to_numpy(dtype=np.int64)),
        },
        columns=OVERTIME_WEEK_COLUMNS,
    )
    return PropayResult(opportunities, worker_bonuses, overtime_weeks)


def _dates(days: pd.Series) -> np.ndarray:
    """Days since 1970-01-01 (NaN for none) as ``datetime.date`` objects or None, the cleaned tables' type."""
    values = pd.to_datetime(pd.Series(days, dtype="float64"), unit="D")
    return np.where(values.isna(), None, values.dt.date.astype(object)).astype(object)
