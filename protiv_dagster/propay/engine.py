"""The ProPay engine: from jobs, attendance, workers and a company's settings to every ProPay's
savings and bonus pool, each worker's bonus, the overtime adjustment owed on it, and why a job has
no ProPay. The ProPay rules (§1-§9 of the rules brief, its "Decisions, round 2" included) as
implemented, here and in ``units`` (which jobs are ProPays, budgets, exclusion rules), ``wages``,
``distribution`` (buckets and people) and ``overtime``.

Pure pandas/numpy with Python integers where a number can pass 64 bits; no Dagster, HTTP or SQL.
Time entries are aggregated with numpy in integer seconds and integer wage units (exact); the money
of each ProPay and each worker is then computed with exact fractions and rounded once.

- **Settings versions.** ``settings`` is a ``CompanySettings`` (one version, always in force) or a
  ``SettingsHistory``. A ProPay is computed with the version in force on the day its work began: its
  first work date, from any time on its job or milestones on or after the pull date (drive time
  included, so the version never depends on a setting of its own); a ProPay without time yet uses the
  latest version. Every row names its version (``settings_version``). **Decision:** manual
  exclusions, disqualifications and penalties are an admin's decisions about one ProPay, taken while
  or after it runs, so they are read from the newest version whatever version prices the ProPay
  (a version never starts before the day it is recorded: read from the version in force, a ProPay
  already under way could never be disqualified).
- **Counted time**: attendance on the ProPay's job or milestones (``units``), from whole seconds
  (``round(hours x 3600)`` per entry, summed as integers); drive time left out unless
  ``include_drive_time``; nothing before the attendance ``pull_date``.
- **Launch date**: a ProPay with any time before the version's ``launch_date`` (drive time
  included) is excluded, reason "work before the launch date ...": its later hours alone would
  overpay.
- **Pull date**: a ProPay whose job or a milestone of it was created in the source before the pull
  date (``created_date``; null = unknown, not excluded on that ground), or that has time before it,
  may have work that was never synced: excluded, reason "began before the attendance pull date",
  unless the version's ``count_jobs_before_pull_date`` counts it; either way
  ``began_before_pull_date`` is true.
- **Exclusion reason**: the first that applies, in this order: an exclusion rule (``units``), the
  pull date, the launch date, a missing wage. An excluded ProPay keeps its row (and one in
  ``jobs_without_propay``) and pays nothing.
- **Labor cost** = sum over entries of seconds / 3600 x the wage in force on the work date
  (``wages``), x (1 + burden_percent / 100) when ``budgets_include_burden``. A counted entry without
  a wage makes the labor cost unknown: the ProPay is excluded, the reason naming the worker(s), and
  its labor and savings columns are null. Blended wage = labor cost / actual hours.
- **Savings** (budgets x ``budget_modification_percent`` / 100, exact): ``hours`` and ``task_hours``:
  saved $ = (budget h - actual h) x blended wage; ``amount``, ``contract_price``, ``rate``,
  ``task_amount``: saved $ = budget $ - labor $. Task types net their lines: the sum over lines of
  (budget - actual), time on no budgeted line counting as a line with no budget, which is the
  total budget of the lines minus the total actual (so the lines' budgets are all the netted total
  needs; an entry's ``task_id`` does not change it). Over budget: no bonus, the overage reported.
- **No hours, no bonus**: a ProPay without counted time pays nothing; its saved hours are null (not
  the whole budget) and its saved $ 0, ``no_bonus_reason`` says why. Status: ``canceled`` or
  ``completed`` from the source; otherwise ``started`` once a minute is counted, else ``pending``.
  Canceled and pending pay nothing; started pays a provisional bonus, completed a final one
  (``pay_state``).
- **Pool** = max(saved $, 0) x worker_share, rounded half up to the cent once, from the exact saved $;
  then the ProPay's penalty (rounded to the cent) is deducted, never below 0; a disqualification or
  an exclusion voids it. Buckets and worker shares: ``distribution``.
- Efficiency = budget / actual in the budget's own unit (1.0 = on budget, 1.1 = 10 % under).

Every money output is dollars as a float that is exactly its cents / 100; the exact inputs are kept
beside them (``actual_seconds``, ``budget_numerator``/``budget_denominator``,
``labor_cost_numerator``/``labor_cost_denominator``, per worker ``seconds`` and labor cost) so a
paycheck can be recomputed from the tables and the settings versions alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import ROLE_BUCKETS, CompanySettings, SettingsHistory, exact
from protiv_dagster.propay.distribution import (
    COMPANY,
    CREW,
    CREW_LEAD,
    MANAGER,
    OTHER,
    bucket_weights,
    method_weights,
    pay_role_buckets,
    share_crew_bucket,
    split_into_role_buckets,
)
from protiv_dagster.propay.exact import (
    NO_DAY,
    Rational,
    epoch_days,
    fits_int64,
    int_sum_by,
    objects,
    round_half_up,
)
from protiv_dagster.propay.overtime import overtime_adjustments, version_index
from protiv_dagster.propay.units import HOURS_TYPES, build_candidates, candidate_budgets, exclusion_reasons
from protiv_dagster.propay.wages import entry_wages

ONE_MINUTE = 60  # seconds: a ProPay is started once a minute is counted
SECONDS_PER_HOUR = 3600

OPPORTUNITY_OUTPUT_COLUMNS = [
    "company_id",
    "propay_id",
    "job_id",
    "milestone_id",
    "name",
    "budget_type",
    "budget_hours",
    "budget_amount",
    "actual_hours",
    "labor_cost",
    "blended_wage",
    "saved_hours",
    "saved_amount",
    "overage_hours",
    "overage_amount",
    "efficiency",
    "pool_before_penalty",
    "penalty_amount",
    "bonus_pool",
    *(f"{role}_bucket" for role in ROLE_BUCKETS),
    "unclaimed_amount",
    "paid_to_workers",
    "kept_by_company",
    "overtime_adjustment",
    "disqualified",
    "disqualification_reason",
    "status",
    "worker_count",
    "first_work_date",
    "last_work_date",
    "exclusion_reason",
    # Added for "ProPay money you can audit to the cent":
    "settings_version",
    "pay_state",
    "no_bonus_reason",
    "began_before_pull_date",
    "actual_seconds",
    "budget_unit",
    "budget_numerator",
    "budget_denominator",
    "labor_cost_numerator",
    "labor_cost_denominator",
]
WORKER_BONUS_COLUMNS = [
    "company_id",
    "propay_id",
    "worker_id",
    "role",
    "bucket",
    "hours",
    "wage",
    "labor_cost",
    "weight",
    "bonus",
    "overtime_adjustment",
    # Added:
    "settings_version",
    "seconds",
    "wage_count",
    "labor_cost_numerator",
    "labor_cost_denominator",
    "crew_share",
    "role_bucket_share",
    "role_buckets_held",
]
OVERTIME_WEEK_COLUMNS = [
    "company_id",
    "worker_id",
    "week_start",
    "hours_worked",
    "overtime_hours",
    "bonus_in_week",
    "overtime_adjustment",
    # Added:
    "settings_version",
    "seconds_worked",
    "overtime_seconds",
]
JOBS_WITHOUT_PROPAY_COLUMNS = ["company_id", "job_id", "milestone_id", "name", "reason"]

# Descriptions of the columns added for rules §9 and of the existing columns whose meaning changed
# (for the warehouse's column comments; the other columns keep theirs).
COLUMN_DESCRIPTIONS = {
    "opportunities": {
        "budget_hours": "Budget in worker-hours after the company's budget modification; for a $ budget it is the budget $ divided by the blended wage, and null without counted time or without a known labor cost.",
        "labor_cost": "Actual labor cost in $, rounded to the cent: the sum over entries of seconds / 3600 x the wage in force on the work date (burdened when budgets include burden); null when a worker has no wage (the ProPay is then excluded).",
        "saved_hours": "Hours saved: budget_hours minus actual_hours, negative when over budget; null without counted time (not the whole budget) or without an hours equivalent.",
        "saved_amount": "Saved labor in $ (what the bonus pool is taken from), rounded once from the exact saving; 0 when over budget or without counted time; null when a wage is missing.",
        "overage_amount": "Labor $ over budget; 0 when on or under budget; null when a wage is missing.",
        "pool_before_penalty": "Workers' share of the exact saved labor in $, rounded half up to the cent; 0 when the ProPay pays nothing (excluded, disqualified, canceled, pending, no hours).",
        "unclaimed_amount": "Role buckets in $ nobody holds (moved into the crew bucket) plus a crew bucket nobody can share (kept by the company).",
        "kept_by_company": "Part of the pool in $ not paid to workers: the company bucket plus a crew bucket nobody can share.",
        "exclusion_reason": "Why the ProPay pays nothing although it has a budget: an exclusion rule, began before the attendance pull date, work before the launch date, or a worker without a wage; null for an eligible ProPay.",
        "settings_version": "Number of the company's settings version the ProPay was computed with: the one in force on its first work date (the latest while it has no time).",
        "pay_state": "final (a completed ProPay that pays), provisional (a started ProPay that pays: may still change) or none (pays nothing).",
        "no_bonus_reason": "Why the bonus pool is $0: excluded, disqualified, canceled, pending, no hours, over budget, on budget, no worker share, penalty, under a cent; null when it pays.",
        "began_before_pull_date": "The job or a milestone of it began before the company's attendance pull date (created before it, or time before it): excluded unless the company counts such jobs.",
        "actual_seconds": "Counted worker-seconds on the ProPay (actual_hours = actual_seconds / 3600 exactly).",
        "budget_unit": "Unit of budget_numerator / budget_denominator: hours (hours and task_hours budgets) or dollars.",
        "budget_numerator": "Exact budget after the budget modification, in budget_unit: budget_numerator / budget_denominator.",
        "budget_denominator": "Denominator of the exact budget (see budget_numerator).",
        "labor_cost_numerator": "Exact labor cost in dollars: labor_cost_numerator / labor_cost_denominator (labor_cost is it rounded to the cent); null when a wage is missing.",
        "labor_cost_denominator": "Denominator of the exact labor cost (see labor_cost_numerator).",
    },
    "worker_bonuses": {
        "role": "The worker's role in the company settings (the ProPay's settings version): crew, crew_lead, manager or other.",
        "bucket": "The role bucket the worker holds on this ProPay (crew_lead, manager or other: the first when several), else crew; everyone with counted time also shares the crew bucket.",
        "wage": "Hourly wage used for labor cost in $ per hour (burdened when budgets include burden); with several wages over the ProPay's dates their average (labor_cost / hours); null without counted time or without a wage.",
        "labor_cost": "The worker's exact labor cost in $, rounded to the cent; null when a wage is missing.",
        "weight": "The worker's weight in the crew bucket under the distribution method (hours, labor $, lead-weighted hours, 1, or the manual %); 0 when they share none of it.",
        "bonus": "The worker's ProPay bonus in $: crew_share + role_bucket_share; the bonuses of a ProPay sum to its paid_to_workers.",
        "settings_version": "The ProPay's settings version.",
        "seconds": "The worker's counted seconds on the ProPay (hours = seconds / 3600 exactly); 0 for a lead or manager paid without time on it.",
        "wage_count": "Number of different wages the worker had on the ProPay's work dates; with more than one, wage is their average (labor cost / hours).",
        "labor_cost_numerator": "The worker's exact labor cost in dollars: numerator / labor_cost_denominator; null when a wage is missing.",
        "labor_cost_denominator": "Denominator of the worker's exact labor cost.",
        "crew_share": "The worker's share of the crew bucket in $ (by the distribution method).",
        "role_bucket_share": "The worker's share in $ of the crew-lead, manager or other bucket they hold (split equally between holders).",
        "role_buckets_held": "The role buckets the worker holds on this ProPay (crew_lead, manager, other; comma-separated), null when none.",
    },
    "overtime_weeks": {
        "bonus_in_week": "ProPay bonus in $ allocated to the week (in proportion to the worker's counted seconds on each ProPay per week; a lead or manager without time on it, the ProPay's), the exact sum rounded once.",
        "settings_version": "Settings version in force on the week's first day (its thresholds apply).",
        "seconds_worked": "Every second the worker worked in the week (hours_worked = seconds_worked / 3600).",
        "overtime_seconds": "Overtime seconds of the week (overtime_hours = overtime_seconds / 3600).",
    },
    "jobs_without_propay": {
        "job_id": "The top-level job (jobs.job_id).",
        "milestone_id": "The milestone, for a row about a milestone; null for a row about a whole job.",
        "name": "Name of the job or milestone in the vendor.",
        "reason": "Why it pays no ProPay: drive job, recurring job (its milestones are the ProPays), no budget, unknown budget type, milestones' budgets of different types, counted in a job that has no ProPay, or the exclusion reason of an excluded ProPay.",
    },
}


@dataclass(frozen=True)
class PropayResult:
    """``opportunities``: one row per ProPay (``OPPORTUNITY_OUTPUT_COLUMNS``), excluded ones included
    with the reason; ``worker_bonuses``: one row per ProPay and worker with counted time on it or
    holding one of its role buckets (``WORKER_BONUS_COLUMNS``); ``overtime_weeks``: one row per worker
    and workweek that carries a bonus (``OVERTIME_WEEK_COLUMNS``); ``jobs_without_propay``: one row
    per job or milestone that pays no ProPay of its own and is not counted in one, and per excluded
    ProPay, with the reason (``JOBS_WITHOUT_PROPAY_COLUMNS``)."""

    opportunities: pd.DataFrame
    worker_bonuses: pd.DataFrame
    overtime_weeks: pd.DataFrame
    jobs_without_propay: pd.DataFrame = None  # type: ignore[assignment]


def _cents_half_up(dollars: Fraction) -> int:
    return (2 * dollars.numerator * 100 + dollars.denominator) // (2 * dollars.denominator)


def _dollars(cents) -> np.ndarray:
    return np.asarray(cents, dtype=np.int64) / 100


def _dates(days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 (NO_DAY for none) as ``datetime.date`` objects or None."""
    days = np.asarray(days, dtype=np.int64)
    out = np.full(len(days), None, dtype=object)
    known = days != NO_DAY
    out[known] = days[known].astype("datetime64[D]").astype(object)
    return out


def _int_column(values: np.ndarray, known: np.ndarray | None = None):
    """Python ints as a nullable Int64 column (null where not ``known``); a column of Python ints when
    one is too large for 64 bits."""
    values = np.asarray(values, dtype=object)
    known = np.ones(len(values), dtype=bool) if known is None else np.asarray(known, dtype=bool)
    if not fits_int64(values[known]):
        return np.where(known, values, None)  # type: ignore[call-overload]  # numpy's stubs reject None
    return pd.arrays.IntegerArray(np.where(known, values, 0).astype(np.int64), ~known)


def _task_lines(task_lines: pd.DataFrame | None, task_budgets: pd.DataFrame | None) -> pd.DataFrame | None:
    if task_lines is None and task_budgets is not None:  # the earlier argument: propay_id, task
        task_lines = task_budgets.rename(columns={"propay_id": "job_id", "task": "task_id"})
    if task_lines is None:
        return None
    missing = {c: None for c in ("budget_hours", "budget_amount") if c not in task_lines.columns}
    return task_lines.assign(**missing) if missing else task_lines


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, -1 where missing; the distinct values as text): each distinct id is handled once."""
    codes, uniques = pd.factorize(values)
    return codes, np.array([str(u) for u in uniques], dtype=object)


def _target(attendance: pd.DataFrame, candidates) -> np.ndarray:
    """The candidate code each entry counts to: its milestone's when the milestone is known, else its job's; -1 for none."""
    milestone_code, milestones = _codes(attendance["milestone_id"])
    job_code, job_ids = _codes(attendance["job_id"])
    by_milestone = np.append(candidates.milestone_target.reindex(milestones).to_numpy(), np.nan)
    by_job = np.append(candidates.job_target.reindex(job_ids).to_numpy(), np.nan)
    via_milestone = by_milestone[milestone_code]  # code -1 picks the appended NaN
    via_job = by_job[job_code]
    target = np.where(~np.isnan(via_milestone), via_milestone, np.where(np.isnan(via_job), -1, via_job))
    return target.astype(np.int64)


def compute_propays(
    jobs: pd.DataFrame,
    attendance: pd.DataFrame,
    workers: pd.DataFrame,
    settings: CompanySettings | SettingsHistory,
    company_id: str,
    *,
    task_lines: pd.DataFrame | None = None,
    wages: pd.DataFrame | None = None,
    assignments: pd.DataFrame | None = None,
    pull_date=None,
    task_budgets: pd.DataFrame | None = None,
) -> PropayResult:
    """Every ProPay of one company with its savings, pool and buckets, each worker's bonus, overtime,
    and the jobs without a ProPay.

    ``jobs``, ``attendance`` and ``workers`` are the cleaned tables (``schemas.Job``, ``Attendance``,
    ``Worker``); jobs may carry ``budget_type``, ``budget_amount``, ``contract_price``,
    ``labor_budget_percent`` (%), ``rate``, ``quantity``, ``service_type``, ``property_id`` and
    ``created_date``; attendance may carry ``task_id``. ``task_lines``: job_id (job or milestone),
    task_id, name, budget_hours, budget_amount. ``wages``: worker_id, effective_date, hourly_wage.
    ``assignments``: job_id (job or milestone), worker_id, role (crew_lead or manager).
    ``pull_date``: the company's attendance pull date. ``task_budgets`` is the earlier name of
    ``task_lines`` (propay_id, task, budget_hours, budget_amount).
    """
    history = SettingsHistory.of(settings)
    versions = history.versions
    # Manual exclusions, disqualifications and penalties are an admin's decisions about one ProPay,
    # taken while or after it runs: the newest version holds them, whichever version prices the ProPay.
    decisions = history.latest.settings

    def with_latest_decisions(version_settings: CompanySettings) -> CompanySettings:
        manual = decisions.exclusions.manual
        return version_settings.model_copy(
            update={"exclusions": version_settings.exclusions.model_copy(update={"manual": manual})}
        )

    n_versions = len(versions)
    task_lines = _task_lines(task_lines, task_budgets)
    candidates = build_candidates(jobs)
    table = candidates.table
    n = len(table)

    # --- Time entries as integer codes ----------------------------------------------------------------
    assigned = assignments if assignments is not None and len(assignments) else None
    entry_worker_code, entry_worker_ids = _codes(attendance["worker_id"].astype(str))
    extra_ids = assigned["worker_id"].astype(str).tolist() if assigned is not None else []
    worker_ids = np.array(sorted(set(entry_worker_ids.tolist()) | set(extra_ids)), dtype=object)  # codes in id order
    worker_index = pd.Index(worker_ids)
    worker_code = worker_index.get_indexer(entry_worker_ids).astype(np.int64)[entry_worker_code]
    n_workers = max(len(worker_ids), 1)
    seconds = np.rint(attendance["hours"].to_numpy(dtype=float) * SECONDS_PER_HOUR).astype(np.int64)
    day = epoch_days(attendance["work_date"])
    is_drive = attendance["is_drive"].to_numpy(dtype=bool)
    target = _target(attendance, candidates) if n else np.full(len(attendance), -1, dtype=np.int64)
    pull_day = int(np.datetime64(pull_date, "D").astype(np.int64)) if pull_date is not None else None
    synced = day >= pull_day if pull_day is not None else np.ones(len(day), dtype=bool)
    on_candidate = (target >= 0) & (seconds > 0)
    safe_target = np.maximum(target, 0)

    # --- Settings version of each candidate: in force on the first day of work ---------------------------
    began = on_candidate & synced
    first_day = np.full(n, NO_DAY, dtype=np.int64)
    if began.any():
        firsts = pd.Series(day[began]).groupby(target[began]).min()
        first_day[firsts.index.to_numpy()] = firsts.to_numpy()
    version = np.where(first_day != NO_DAY, version_index(history, first_day), n_versions - 1)
    version_number = np.array([v.version for v in versions], dtype=np.int64)[version]

    budget_type = np.full(n, None, dtype=object)
    budget = np.full(n, None, dtype=object)
    no_propay_reason = np.full(n, None, dtype=object)
    rule_reason = np.full(n, None, dtype=object)
    for v, stored in enumerate(versions):
        subset = np.flatnonzero(version == v)
        if not len(subset):
            continue
        found = candidate_budgets(candidates, stored.settings, task_lines, subset)
        budget_type[subset], budget[subset], no_propay_reason[subset] = (
            found.budget_type[subset],
            found.budget[subset],
            found.reason[subset],
        )
        rule_reason[subset] = exclusion_reasons(candidates, with_latest_decisions(stored.settings), subset)[subset]
    is_propay = np.array([b is not None for b in budget], dtype=bool) & np.array(
        [r is None for r in no_propay_reason], dtype=bool
    )

    include_drive = np.array([v.settings.include_drive_time for v in versions], dtype=bool)
    counted = on_candidate & synced & is_propay[safe_target] & (include_drive[version[safe_target]] | ~is_drive)

    # --- Launch and pull dates -----------------------------------------------------------------------------
    launch = np.array(
        [
            np.datetime64(v.settings.launch_date, "D").astype(np.int64) if v.settings.launch_date else NO_DAY
            for v in versions
        ],
        dtype=np.int64,
    )
    before_launch_rows = on_candidate & synced & (day < launch[version[safe_target]])
    before_launch = np.bincount(target[before_launch_rows], minlength=n) > 0
    began_before_pull = np.zeros(n, dtype=bool)
    if pull_day is not None:
        created = epoch_days(candidates.members["created_date"])
        early = (created != NO_DAY) & (created < pull_day)
        began_before_pull[candidates.members["candidate"].to_numpy()[early]] = True
        began_before_pull |= np.bincount(target[on_candidate & ~synced], minlength=n) > 0
    count_early = np.array([v.settings.count_jobs_before_pull_date for v in versions], dtype=bool)

    # --- Wages and the per ProPay-worker sums ------------------------------------------------------------
    c_worker, c_day, c_seconds, c_unit = worker_code[counted], day[counted], seconds[counted], target[counted]
    del (
        target,
        safe_target,
        on_candidate,
        synced,
        began,
        counted,
        before_launch_rows,
        is_drive,
    )  # memory: 5M-entry companies
    entry = entry_wages(c_worker, c_day, worker_ids, workers, wages)
    pair_key_of_entry = c_unit * n_workers + c_worker
    pair_code, pair_keys = pd.factorize(pair_key_of_entry, sort=True)
    pair_keys = np.asarray(pair_keys, dtype=np.int64)
    n_pairs = len(pair_keys)
    pair_unit, pair_worker = pair_keys // n_workers, pair_keys % n_workers
    pair_seconds = int_sum_by(pair_code, c_seconds, n_pairs)
    pair_cost = int_sum_by(pair_code, c_seconds * entry.units, n_pairs)  # seconds x wage units, unburdened
    pair_missing = np.bincount(pair_code[~entry.known], minlength=n_pairs) > 0
    if wages is not None and len(wages) and entry.known.any():
        # Distinct wages per pair: distinct (pair, wage units) among the entries with a wage.
        stride = int(entry.units.max()) + 1
        distinct = pd.unique(pair_code[entry.known].astype(np.int64) * stride + entry.units[entry.known])
        pair_wage_count = np.bincount(np.asarray(distinct, dtype=np.int64) // stride, minlength=n_pairs)
    else:  # one wage per worker: today's
        pair_wage_count = (~pair_missing).astype(np.int64)
    wage_scale = entry.scale
    del entry

    actual_seconds = int_sum_by(pair_unit, pair_seconds, n)
    cost_units = int_sum_by(pair_unit, pair_cost, n)
    worker_count = np.bincount(pair_unit, minlength=n).astype(np.int64)
    first_counted = np.full(n, NO_DAY, dtype=np.int64)
    last_counted = np.full(n, NO_DAY, dtype=np.int64)
    if len(c_unit):
        spans = pd.Series(c_day).groupby(c_unit).agg(["min", "max"])
        first_counted[spans.index.to_numpy()] = spans["min"].to_numpy()
        last_counted[spans.index.to_numpy()] = spans["max"].to_numpy()
    missing_wage = np.bincount(pair_unit[pair_missing], minlength=n) > 0
    missing_text = np.full(n, None, dtype=object)
    if pair_missing.any():
        lacking = pd.Series(worker_ids[pair_worker[pair_missing]]).groupby(pair_unit[pair_missing]).agg(list)
        for unit, ids in lacking.items():
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            missing_text[cast(int, unit)] = f"no wage for worker{'s' if len(ids) > 1 else ''} {shown}"

    # --- Exclusion reason: rules, pull date, launch date, missing wage (first wins) ---------------------
    exclusion = rule_reason.copy()
    pull_excluded = is_propay & began_before_pull & ~count_early[version] & (exclusion == None)  # noqa: E711
    exclusion[pull_excluded] = "began before the attendance pull date"
    launch_text = np.array(
        [
            f"work before the launch date {v.settings.launch_date.isoformat()}" if v.settings.launch_date else None
            for v in versions
        ],
        dtype=object,
    )
    launch_excluded = is_propay & before_launch & (exclusion == None)  # noqa: E711
    exclusion[launch_excluded] = launch_text[version[launch_excluded]]
    wage_excluded = is_propay & missing_wage & (exclusion == None)  # noqa: E711
    exclusion[wage_excluded] = missing_text[wage_excluded]
    eligible = is_propay & (exclusion == None)  # noqa: E711

    # --- Exact budget, labor cost and savings ---------------------------------------------------------------
    modification = [exact(v.settings.budget_modification_percent) / 100 for v in versions]
    burden = [
        1 + exact(v.settings.burden_percent) / 100 if v.settings.budgets_include_burden else Fraction(1)
        for v in versions
    ]
    share = [exact(v.settings.worker_share) for v in versions]
    budget_q = (
        Rational.from_fractions(budget)
        .scale(
            np.array([m.numerator for m in modification], dtype=object)[version],
            np.array([m.denominator for m in modification], dtype=object)[version],
        )
        .reduced()
    )
    labor_factor = Rational.from_fractions(
        np.array([b / (SECONDS_PER_HOUR * wage_scale) for b in burden], dtype=object)
    ).take(version)
    labor = (Rational(objects(cost_units), np.ones(n, dtype=object)) * labor_factor).reduced()  # dollars, exact
    known_labor = ~missing_wage
    hours_type = np.isin(budget_type.astype(str), HOURS_TYPES)
    has_time = actual_seconds > 0
    seconds_q = Rational(objects(actual_seconds), np.ones(n, dtype=object))
    actual_hours_q = seconds_q.scale(1, SECONDS_PER_HOUR)
    # hours: (budget h - actual h) x labor / actual h; amounts: budget $ - labor $.
    saved_hours_q = budget_q - actual_hours_q
    saved_h = (saved_hours_q * labor).divided(actual_hours_q, has_time)
    saved_a = budget_q - labor
    saved = Rational(np.where(hours_type, saved_h.num, saved_a.num), np.where(hours_type, saved_h.den, saved_a.den))
    measurable = is_propay & has_time & known_labor
    saved = Rational(
        np.where(measurable, saved.num, 0).astype(object), np.where(measurable, saved.den, 1).astype(object)
    )

    # --- Status, pool, penalty, disqualification ---------------------------------------------------------------
    source_status = table["source_status"].astype(object).to_numpy()
    status = np.where(
        np.isin(source_status, ["canceled", "completed"]),
        source_status,
        np.where(actual_seconds >= ONE_MINUTE, "started", "pending"),
    ).astype(object)
    propay_ids = table["propay_id"].to_numpy(dtype=object)
    disqualification = np.array([decisions.disqualifications.get(pid) for pid in propay_ids], dtype=object)
    disqualified = np.array([d is not None for d in disqualification], dtype=bool)
    pays = eligible & ~disqualified & np.isin(status, ["started", "completed"]) & measurable
    share_q = Rational.from_fractions(np.array(share, dtype=object)).take(version)
    gross_q = saved.positive_part() * share_q
    gross = np.where(pays, round_half_up(gross_q.num * 100, gross_q.den), 0).astype(np.int64)
    penalty = np.array(
        [_cents_half_up(exact(decisions.penalties[pid])) if pid in decisions.penalties else 0 for pid in propay_ids],
        dtype=np.int64,
    )
    penalty_applied = np.where(pays, np.minimum(penalty, gross), 0)
    pool = gross - penalty_applied

    weights = (
        np.stack([bucket_weights(v.settings) for v in versions])[version]
        if n
        else np.zeros((0, len(ROLE_BUCKETS)), dtype=np.int64)
    )
    buckets = split_into_role_buckets(pool, weights)

    # --- Who holds the lead, manager and other buckets ------------------------------------------------------------
    worker_role_code = np.zeros((n_versions, len(worker_ids)), dtype=np.int64)
    role_names = {"crew": CREW, "crew_lead": CREW_LEAD, "manager": MANAGER, "other": OTHER}
    for v, stored in enumerate(versions):
        roles = stored.settings.worker_roles
        if roles:
            worker_role_code[v] = pd.Series(worker_ids).map(roles).map(role_names).fillna(CREW).to_numpy(dtype=np.int64)
    pair_role = worker_role_code[version[pair_unit], pair_worker] if n_pairs else np.zeros(0, dtype=np.int64)
    holders = _role_holders(
        candidates, assigned, worker_index, is_propay, pair_unit, pair_worker, pair_role, pair_seconds
    )
    role_paid = pay_role_buckets(
        buckets, holders["unit"].to_numpy(), holders["worker"].to_numpy(), holders["role"].to_numpy()
    )

    # --- The crew bucket, by the distribution method ----------------------------------------------------------------
    leads = holders[holders["role"] == CREW_LEAD]
    lead_pairs = pd.Index(pair_keys).get_indexer(leads["unit"].to_numpy() * n_workers + leads["worker"].to_numpy())
    pair_is_lead = np.zeros(n_pairs, dtype=bool)
    pair_is_lead[lead_pairs[lead_pairs >= 0]] = True
    pair_version = version[pair_unit]
    weight = np.zeros(n_pairs, dtype=object)
    for v, stored in enumerate(versions):
        mine = pair_version == v
        if mine.any():
            weight[mine] = objects(
                method_weights(
                    stored.settings,
                    pair_seconds[mine],
                    pair_cost[mine],
                    pair_is_lead[mine],
                    worker_ids[pair_worker[mine]],
                )
            )
    weight = weight.astype(np.int64) if n_pairs else np.zeros(0, dtype=np.int64)
    crew_total = buckets[:, CREW] + role_paid.unheld_cents
    crew = share_crew_bucket(crew_total, pair_unit, pair_worker, weight)

    # --- Worker rows: counted pairs plus role holders without time ------------------------------------------------------
    pairs = pd.DataFrame(
        {
            "unit": pair_unit,
            "worker": pair_worker,
            "seconds": pair_seconds,
            "cost": objects(pair_cost),
            "missing": pair_missing,
            "wage_count": pair_wage_count,
            "weight": weight,
            "crew_cents": crew.pair_cents,
        }
    )
    held_sum = _held_per_worker(holders, role_paid.holder_cents, n_workers)
    rows = pairs.merge(held_sum, on=["unit", "worker"], how="outer")
    rows = rows.sort_values(["unit", "worker"], ignore_index=True)
    for column, fill in (
        ("seconds", 0),
        ("wage_count", 0),
        ("weight", 0),
        ("crew_cents", 0),
        ("role_cents", 0),
        ("first_role", CREW),
    ):
        rows[column] = rows[column].fillna(fill).astype(np.int64)
    rows["missing"] = rows["missing"].fillna(False).astype(bool)
    rows["cost"] = rows["cost"].map(lambda c: 0 if c is None or (isinstance(c, float) and np.isnan(c)) else int(c))
    row_unit = rows["unit"].to_numpy(dtype=np.int64)
    row_worker = rows["worker"].to_numpy(dtype=np.int64)
    row_seconds = rows["seconds"].to_numpy(dtype=np.int64)
    row_bonus = rows["crew_cents"].to_numpy(dtype=np.int64) + rows["role_cents"].to_numpy(dtype=np.int64)
    paid = int_sum_by(row_unit, row_bonus, n).astype(np.int64)
    row_labor = Rational(rows["cost"].to_numpy(dtype=object), np.ones(len(rows), dtype=object)) * labor_factor.take(
        row_unit
    )
    row_labor = row_labor.reduced()

    # --- Overtime --------------------------------------------------------------------------------------------------
    # A pair's bonus is spread over its own counted seconds; a holder without time over the ProPay's.
    row_of_pair = pd.Index(row_unit * n_workers + row_worker).get_indexer(pair_key_of_entry)
    del pair_key_of_entry, pair_code
    own = row_bonus[row_of_pair] > 0 if len(c_unit) else np.zeros(0, dtype=bool)
    holder_rows = np.flatnonzero((row_seconds == 0) & (row_bonus > 0))
    alloc = [(row_of_pair[own], c_worker[own], c_day[own], c_seconds[own], row_seconds[row_of_pair[own]])]
    if len(holder_rows):
        counted_by_unit = pd.DataFrame({"unit": c_unit, "i": np.arange(len(c_unit))})
        expanded = pd.DataFrame({"row": holder_rows, "unit": row_unit[holder_rows]}).merge(counted_by_unit, on="unit")
        i = expanded["i"].to_numpy(dtype=np.int64)
        r = expanded["row"].to_numpy(dtype=np.int64)
        alloc.append((r, row_worker[r], c_day[i], c_seconds[i], actual_seconds[row_unit[r]]))
    alloc_pair, alloc_worker, alloc_day, alloc_seconds, alloc_basis_seconds = (
        np.concatenate([a[k] for a in alloc]).astype(np.int64) for k in range(5)
    )
    del alloc, row_of_pair, own
    all_rows = seconds > 0
    if not all_rows.all():
        worker_code, day, seconds = worker_code[all_rows], day[all_rows], seconds[all_rows]
    overtime = overtime_adjustments(
        history,
        worker_code,
        day,
        seconds,
        alloc_pair,
        alloc_worker,
        alloc_day,
        alloc_seconds,
        alloc_basis_seconds,
        row_bonus,
    )
    overtime_per_propay = np.bincount(row_unit, weights=overtime.pair_adjustment_cents, minlength=n).astype(np.int64)

    # --- Outputs --------------------------------------------------------------------------------------------------
    opportunities = _opportunities(
        company_id,
        table,
        version_number,
        budget_type,
        budget_q,
        hours_type,
        actual_seconds,
        labor,
        known_labor,
        saved,
        measurable,
        gross,
        penalty_applied,
        pool,
        buckets,
        role_paid.unheld_cents,
        crew.unclaimed_cents,
        paid,
        overtime_per_propay,
        disqualified,
        disqualification,
        status,
        worker_count,
        first_counted,
        last_counted,
        exclusion,
        pays,
        began_before_pull,
        is_propay,
    )
    role_text = np.array([r if isinstance(r, str) else None for r in rows["roles"].tolist()], dtype=object)
    row_known = ~rows["missing"].to_numpy(dtype=bool)
    wage_display = Rational(row_labor.num, row_labor.den).divided(
        Rational(objects(row_seconds), np.full(len(rows), SECONDS_PER_HOUR, dtype=object)), row_seconds > 0
    )
    settings_role = worker_role_code[version[row_unit], row_worker] if len(rows) else np.zeros(0, dtype=np.int64)
    role_labels = np.array(["crew", "crew_lead", "manager", "other"], dtype=object)
    worker_bonuses = pd.DataFrame(
        {
            "company_id": company_id,
            "propay_id": propay_ids[row_unit],
            "worker_id": worker_ids[row_worker],
            "role": role_labels[settings_role],
            "bucket": role_labels[rows["first_role"].to_numpy(dtype=np.int64)],
            "hours": np.round(row_seconds / SECONDS_PER_HOUR, 6),
            "wage": np.where(row_known & (row_seconds > 0), np.round(wage_display.floats(), 4), np.nan),
            "labor_cost": np.where(
                row_known, _dollars(round_half_up(row_labor.num * 100, row_labor.den).astype(np.int64)), np.nan
            ),
            "weight": _display_weight(
                rows["weight"].to_numpy(dtype=np.int64),
                versions,
                version[row_unit],
                row_seconds,
                row_labor,
                row_known,
                worker_ids[row_worker],
            ),
            "bonus": _dollars(row_bonus),
            "overtime_adjustment": _dollars(overtime.pair_adjustment_cents),
            "settings_version": version_number[row_unit],
            "seconds": row_seconds,
            "wage_count": rows["wage_count"].to_numpy(dtype=np.int64),
            "labor_cost_numerator": _int_column(row_labor.num, row_known),
            "labor_cost_denominator": _int_column(row_labor.den, row_known),
            "crew_share": _dollars(rows["crew_cents"].to_numpy(dtype=np.int64)),
            "role_bucket_share": _dollars(rows["role_cents"].to_numpy(dtype=np.int64)),
            "role_buckets_held": role_text,
        },
        columns=WORKER_BONUS_COLUMNS,
    )
    weeks = overtime.weeks
    overtime_weeks = pd.DataFrame(
        {
            "company_id": company_id,
            "worker_id": worker_ids[weeks["worker"].to_numpy(dtype=np.int64)],
            "week_start": _dates(weeks["week_start"].to_numpy(dtype=np.int64)),
            "hours_worked": np.round(weeks["seconds_worked"].to_numpy(dtype=np.int64) / SECONDS_PER_HOUR, 6),
            "overtime_hours": np.round(weeks["overtime_seconds"].to_numpy(dtype=np.int64) / SECONDS_PER_HOUR, 6),
            "bonus_in_week": _dollars(weeks["bonus_in_week"]),
            "overtime_adjustment": _dollars(weeks["overtime_adjustment"]),
            "settings_version": weeks["settings_version"].to_numpy(dtype=np.int64),
            "seconds_worked": weeks["seconds_worked"].to_numpy(dtype=np.int64),
            "overtime_seconds": weeks["overtime_seconds"].to_numpy(dtype=np.int64),
        },
        columns=OVERTIME_WEEK_COLUMNS,
    )
    without = _jobs_without_propay(company_id, candidates, is_propay, no_propay_reason, exclusion)
    return PropayResult(opportunities, worker_bonuses, overtime_weeks, without)


def _held_per_worker(holders: pd.DataFrame, cents: np.ndarray, n_workers: int) -> pd.DataFrame:
    """Per (unit, worker) holding role buckets: their role cents, the roles held as text, the first role."""
    key = holders["unit"].to_numpy(dtype=np.int64) * n_workers + holders["worker"].to_numpy(dtype=np.int64)
    code, keys = pd.factorize(key, sort=True)
    keys = np.asarray(keys, dtype=np.int64)
    role = holders["role"].to_numpy(dtype=np.int64)
    mask = np.bincount(code, weights=np.left_shift(1, role), minlength=len(keys)).astype(np.int64)
    labels = {
        m: ",".join(ROLE_BUCKETS[i] for i in range(len(ROLE_BUCKETS)) if m >> i & 1) for m in np.unique(mask).tolist()
    }
    first = np.full(len(keys), len(ROLE_BUCKETS), dtype=np.int64)
    np.minimum.at(first, code, role)
    return pd.DataFrame(
        {
            "unit": keys // n_workers,
            "worker": keys % n_workers,
            "role_cents": int_sum_by(code, np.asarray(cents, dtype=np.int64), len(keys)),
            "roles": pd.Series(mask).map(labels).to_numpy(dtype=object),
            "first_role": first,
        }
    )


def _role_holders(
    candidates, assigned, worker_index, is_propay, pair_unit, pair_worker, pair_role, pair_seconds
) -> pd.DataFrame:
    """(unit, worker, role) of every role-bucket holder: the source's assignees of the ProPay (for a
    ProPay per milestone of a recurring job without its own, the job's), else the workers with that
    role setting and counted time; "other" only by role setting."""
    frames = []
    if assigned is not None:
        roles = assigned["role"].astype(str).str.strip().str.lower().map({"crew_lead": CREW_LEAD, "manager": MANAGER})
        ids = assigned["job_id"].astype(str)
        worker = worker_index.get_indexer(assigned["worker_id"].astype(str))
        ok = roles.notna().to_numpy() & (worker >= 0)
        unit = candidates.milestone_target.reindex(ids.to_numpy()).to_numpy()
        unit = np.where(np.isnan(unit), candidates.job_target.reindex(ids.to_numpy()).to_numpy(), unit)
        unit = np.where(np.isnan(unit), -1, unit).astype(np.int64)
        direct = ok & (unit >= 0)
        frames.append(
            pd.DataFrame(
                {"unit": unit[direct], "worker": worker[direct], "role": roles[direct].astype(np.int64), "source": 0}
            )
        )
        parents = pd.DataFrame(
            {"parent": candidates.recurring_parent, "unit": np.arange(len(candidates.recurring_parent))}
        )
        parents = parents[parents["parent"].notna()]
        if len(parents):
            by_parent = pd.DataFrame(
                {"parent": ids.to_numpy()[ok], "worker": worker[ok], "role": roles[ok].astype(np.int64)}
            )
            frames.append(parents.merge(by_parent, on="parent")[["unit", "worker", "role"]].assign(source=1))
    fallback = (pair_seconds > 0) & np.isin(pair_role, [CREW_LEAD, MANAGER, OTHER])
    frames.append(
        pd.DataFrame(
            {"unit": pair_unit[fallback], "worker": pair_worker[fallback], "role": pair_role[fallback], "source": 2}
        )
    )
    everyone = pd.concat(frames, ignore_index=True)
    everyone = everyone[is_propay[everyone["unit"].to_numpy(dtype=np.int64)]] if len(everyone) else everyone
    if everyone.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64") for c in ("unit", "worker", "role")})
    # "other" has no assignments; a role with assignees ignores the role settings.
    best = everyone.groupby(["unit", "role"])["source"].transform("min")
    chosen = everyone[everyone["source"] == best].drop_duplicates(["unit", "worker", "role"])
    return chosen.sort_values(["unit", "role", "worker"], ignore_index=True)[["unit", "worker", "role"]].astype(
        np.int64
    )


def _display_weight(weight, versions, row_version, row_seconds, row_labor, row_known, row_worker_ids) -> np.ndarray:
    """The crew weight in the unit analysts know: hours, labor $ (wage), lead-weighted hours, 1, or the
    worker's manual %; 0 for a worker who shares nothing."""
    out = np.zeros(len(weight), dtype=float)
    hours = row_seconds / SECONDS_PER_HOUR
    for v, stored in enumerate(versions):
        mine = (row_version == v) & (weight > 0)
        if not mine.any():
            continue
        method = stored.settings.distribution_method
        if method == "hours":
            out[mine] = hours[mine]
        elif method == "wage":
            out[mine] = np.where(row_known[mine], row_labor.take(mine).floats(), 0.0)
        elif method == "crew_lead_weighted":
            out[mine] = weight[mine] / exact(stored.settings.lead_multiplier).denominator / SECONDS_PER_HOUR
        elif method == "equal":
            out[mine] = 1.0
        else:
            out[mine] = [stored.settings.manual_distribution[w] for w in row_worker_ids[mine]]
    return np.round(out, 6)


def _opportunities(
    company_id,
    table,
    version_number,
    budget_type,
    budget_q,
    hours_type,
    actual_seconds,
    labor,
    known_labor,
    saved,
    measurable,
    gross,
    penalty_applied,
    pool,
    buckets,
    unheld,
    unclaimed_crew,
    paid,
    overtime_per_propay,
    disqualified,
    disqualification,
    status,
    worker_count,
    first_counted,
    last_counted,
    exclusion,
    pays,
    began_before_pull,
    is_propay,
) -> pd.DataFrame:
    n = len(table)
    has_time = actual_seconds > 0
    priced = has_time & known_labor  # a blended wage exists
    labor_cents = round_half_up(labor.num * 100, labor.den).astype(np.int64)
    actual_hours = actual_seconds / SECONDS_PER_HOUR
    budget_value = budget_q.floats()
    labor_value = labor.floats()
    with np.errstate(divide="ignore", invalid="ignore"):
        blended = np.where(priced, labor_value / np.where(has_time, actual_hours, 1), np.nan)
        # The other unit at the blended wage (exact, then shown): $ for an hours budget, hours for a $ budget.
        budget_amount_h = budget_q * labor
        budget_amount_h = budget_amount_h.divided(
            Rational(objects(actual_seconds), np.full(n, SECONDS_PER_HOUR, dtype=object)), has_time
        )
        budget_hours_a = (
            budget_q * Rational(objects(actual_seconds), np.full(n, SECONDS_PER_HOUR, dtype=object))
        ).divided(labor, labor.num != 0)
        budget_hours_out = np.where(
            hours_type, budget_value, np.where(priced & (labor.num != 0), budget_hours_a.floats(), np.nan)
        )
        budget_amount_out = np.where(
            hours_type,
            np.where(
                priced, _dollars(round_half_up(budget_amount_h.num * 100, budget_amount_h.den).astype(np.int64)), np.nan
            ),
            _dollars(round_half_up(budget_q.num * 100, budget_q.den).astype(np.int64)),
        )
        saved_hours = np.where(has_time, budget_hours_out - actual_hours, np.nan)
        efficiency = np.where(
            hours_type,
            np.where(has_time, budget_value / actual_hours, np.nan),
            np.where(priced & (labor.num != 0), budget_value / labor_value, np.nan),
        )
    saved_cents = round_half_up(saved.positive_part().num * 100, saved.den).astype(np.int64)
    overage_cents = round_half_up(saved.negative_part().num * 100, saved.den).astype(np.int64)
    money_known = known_labor
    reason = _no_bonus_reasons(
        exclusion, disqualified, status, has_time, saved, measurable, gross, pool, penalty_applied
    )
    pay_state = np.where(pool > 0, np.where(status == "completed", "final", "provisional"), "none").astype(object)
    budget_unit = np.where(hours_type, "hours", "dollars").astype(object)
    frame = pd.DataFrame(
        {
            "company_id": company_id,
            "propay_id": table["propay_id"].to_numpy(dtype=object),
            "job_id": table["job_id"].to_numpy(dtype=object),
            "milestone_id": table["milestone_id"].to_numpy(dtype=object),
            "name": table["name"].to_numpy(dtype=object),
            "budget_type": budget_type,
            "budget_hours": np.round(budget_hours_out.astype(float), 6),
            "budget_amount": budget_amount_out.astype(float),
            "actual_hours": np.round(actual_hours, 6),
            "labor_cost": np.where(money_known, _dollars(labor_cents), np.nan),
            "blended_wage": np.round(blended.astype(float), 4),
            "saved_hours": np.round(saved_hours.astype(float), 6),
            "saved_amount": np.where(money_known, _dollars(saved_cents), np.nan),
            "overage_hours": np.round(
                np.where(np.isnan(saved_hours.astype(float)), np.nan, np.maximum(-saved_hours.astype(float), 0)), 6
            ),
            "overage_amount": np.where(money_known, _dollars(overage_cents), np.nan),
            "efficiency": np.round(efficiency.astype(float), 6),
            "pool_before_penalty": _dollars(gross),
            "penalty_amount": _dollars(penalty_applied),
            "bonus_pool": _dollars(pool),
            **{f"{role}_bucket": _dollars(buckets[:, i]) for i, role in enumerate(ROLE_BUCKETS)},
            "unclaimed_amount": _dollars(unheld + unclaimed_crew),
            "paid_to_workers": _dollars(paid),
            "kept_by_company": _dollars(buckets[:, COMPANY] + unclaimed_crew),
            "overtime_adjustment": _dollars(overtime_per_propay),
            "disqualified": disqualified,
            "disqualification_reason": disqualification,
            "status": status,
            "worker_count": worker_count,
            "first_work_date": _dates(first_counted),
            "last_work_date": _dates(last_counted),
            "exclusion_reason": exclusion,
            "settings_version": version_number,
            "pay_state": pay_state,
            "no_bonus_reason": reason,
            "began_before_pull_date": began_before_pull,
            "actual_seconds": actual_seconds.astype(np.int64),
            "budget_unit": budget_unit,
            "budget_numerator": _int_column(budget_q.num),
            "budget_denominator": _int_column(budget_q.den),
            "labor_cost_numerator": _int_column(labor.num, money_known),
            "labor_cost_denominator": _int_column(labor.den, money_known),
        },
        columns=OPPORTUNITY_OUTPUT_COLUMNS,
    )
    return frame[is_propay].reset_index(drop=True)


def _no_bonus_reasons(
    exclusion, disqualified, status, has_time, saved, measurable, gross, pool, penalty_applied
) -> np.ndarray:
    """Why the pool is $0, first that applies; None when it pays."""
    zero = pool == 0
    saved_sign = (
        np.array([(num > 0) - (num < 0) for num in saved.num], dtype=np.int64)
        if len(saved)
        else np.zeros(0, dtype=np.int64)
    )
    conditions = [
        exclusion != None,  # noqa: E711
        disqualified,
        status == "canceled",
        status == "pending",
        ~has_time,
        measurable & (saved_sign < 0),
        measurable & (saved_sign == 0),
        gross == 0,
        penalty_applied > 0,
    ]
    labels = [
        "excluded",
        "disqualified",
        "canceled",
        "pending",
        "no hours",
        "over budget",
        "on budget",
        "under a cent",
        "penalty",
    ]
    # numpy's stubs reject None, which makes an object array.
    reason = np.select([zero & c for c in conditions], labels, default=None).astype(object)  # type: ignore[call-overload]
    reason[~zero] = None
    return reason


def _jobs_without_propay(company_id, candidates, is_propay, no_propay_reason, exclusion) -> pd.DataFrame:
    """Jobs and milestones in no candidate, candidates that are no ProPay (and the rows counted in
    them), and excluded ProPays, each with the reason."""
    table = candidates.table
    members = candidates.members
    frames = [candidates.unplaced.assign(company_id=company_id)]
    not_propay = ~is_propay
    member_cand = members["candidate"].to_numpy()
    unit_rows = members[members["is_unit"].to_numpy() & not_propay[member_cand]]
    c = unit_rows["candidate"].to_numpy()
    frames.append(
        pd.DataFrame(
            {
                "company_id": company_id,
                "job_id": table["job_id"].to_numpy(dtype=object)[c],
                "milestone_id": table["milestone_id"].to_numpy(dtype=object)[c],
                "name": unit_rows["name"].to_numpy(dtype=object),
                "reason": no_propay_reason[c],
            }
        )
    )
    others = members[~members["is_unit"].to_numpy() & not_propay[member_cand]]
    c = others["candidate"].to_numpy()
    unit_label = np.where(
        table["milestone_id"].isna(),
        "job " + table["job_id"].astype(str),
        "milestone " + table["milestone_id"].astype(str),
    ).astype(object)
    frames.append(
        pd.DataFrame(
            {
                "company_id": company_id,
                "job_id": table["job_id"].to_numpy(dtype=object)[c],
                "milestone_id": np.where(
                    others["is_milestone"].to_numpy(dtype=bool), others["member_id"].to_numpy(dtype=object), None
                ),
                "name": others["name"].to_numpy(dtype=object),
                "reason": [
                    "counted in " + str(u) + ", which has no ProPay: " + str(r)
                    for u, r in zip(unit_label[c], no_propay_reason[c])
                ],
            }
        )
    )
    excluded = np.flatnonzero(is_propay & (exclusion != None))  # noqa: E711
    frames.append(
        pd.DataFrame(
            {
                "company_id": company_id,
                "job_id": table["job_id"].to_numpy(dtype=object)[excluded],
                "milestone_id": table["milestone_id"].to_numpy(dtype=object)[excluded],
                "name": table["name"].to_numpy(dtype=object)[excluded],
                "reason": exclusion[excluded],
            }
        )
    )
    out = (
        pd.concat([f for f in frames if len(f)], ignore_index=True)
        if any(len(f) for f in frames)
        else pd.DataFrame(columns=JOBS_WITHOUT_PROPAY_COLUMNS)
    )
    out = out[JOBS_WITHOUT_PROPAY_COLUMNS]
    order = np.lexsort((out["milestone_id"].fillna("").astype(str).to_numpy(), out["job_id"].astype(str).to_numpy()))
    return out.iloc[order].reset_index(drop=True)
