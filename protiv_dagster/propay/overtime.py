"""Weekly overtime (FLSA regular-rate) adjustment owed on ProPay bonuses.

A production bonus raises the regular rate of the weeks it was earned in, so overtime hours of those
weeks owe an extra half rate on it, per worker per workweek:

    ot_adjustment = bonus in the week / total hours worked in the week x 0.5 x overtime hours

- Hours worked in the week are all the worker's attendance, every job, drive time included and time
  before the launch date included: the law counts all hours worked, whatever ProPay counts.
- Overtime hours = hours over ``overtime_weekly_hours`` (40) in the workweek. With a daily threshold
  (``overtime_daily_hours``, e.g. 8) the hours over it each day are overtime too, and the weekly rule
  then counts only the remaining straight-time hours: daily OT + max(week - daily OT - weekly, 0).
- **Decision:** a ProPay bonus is allocated to weeks in proportion to the worker's counted hours on
  that ProPay in each week. The workweek starts on ``workweek_start`` (Monday by default).
- Each ProPay-worker adjustment is rounded half up to the cent; the weekly figures are rounded on
  their own, so a week may differ from the sum of its ProPays' rounded adjustments by a cent.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import WEEKDAYS, CompanySettings
from protiv_dagster.propay.money import half_up_cents

MICRO = 1_000_000  # hours are carried as integer micro-hours so sums are exact in any row order
EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def week_start(day: np.ndarray, settings: CompanySettings) -> np.ndarray:
    """First day of the workweek of each day (days since 1970-01-01)."""
    start = WEEKDAYS.index(settings.workweek_start)
    return day - (day + EPOCH_WEEKDAY - start) % 7


@dataclass(frozen=True)
class Overtime:
    pair_adjustment_cents: np.ndarray
    weeks: pd.DataFrame  # worker (code), week_start (days), hours_worked, overtime_hours, bonus_in_week, overtime_adjustment (cents)


def overtime_adjustments(
    all_worker: np.ndarray,
    all_day: np.ndarray,
    all_hours_micro: np.ndarray,
    counted_pair: np.ndarray,
    counted_day: np.ndarray,
    counted_hours_micro: np.ndarray,
    pair_worker: np.ndarray,
    pair_hours_micro: np.ndarray,
    pair_bonus_cents: np.ndarray,
    settings: CompanySettings,
) -> Overtime:
    """The adjustment per ProPay-worker pair, and per worker-week with a bonus."""
    empty_weeks = pd.DataFrame(
        {c: pd.Series(dtype=t) for c, t in (("worker", "int64"), ("week_start", "int64"), ("hours_worked", float),
                                             ("overtime_hours", float), ("bonus_in_week", float), ("overtime_adjustment", "int64"))}
    )
    adjustment = np.zeros(len(pair_worker), dtype=np.int64)
    with_bonus = pair_bonus_cents[counted_pair] > 0
    if not with_bonus.any():
        return Overtime(adjustment, empty_weeks)
    all_week = week_start(all_day, settings)
    first_week = int(all_week.min())
    span = int((all_week.max() - first_week) // 7) + 1
    worker_week_key = all_worker * span + (all_week - first_week) // 7
    worker_week_code, worker_weeks = pd.factorize(worker_week_key, sort=True)
    worker_weeks = np.asarray(worker_weeks)
    week_hours = np.bincount(worker_week_code, weights=all_hours_micro, minlength=len(worker_weeks)) / MICRO
    overtime_hours = np.zeros(len(worker_weeks))
    if settings.overtime_daily_hours is not None:
        first_day = int(all_day.min())
        days_span = int(all_day.max()) - first_day + 1
        day_code, worker_days = pd.factorize(all_worker * days_span + (all_day - first_day), sort=True)
        day_hours = np.bincount(day_code, weights=all_hours_micro) / MICRO
        worker_days = np.asarray(worker_days)
        day_worker, day = worker_days // days_span, worker_days % days_span + first_day
        day_ww = np.searchsorted(worker_weeks, day_worker * span + (week_start(day, settings) - first_week) // 7)
        overtime_hours = np.bincount(
            day_ww, weights=np.maximum(day_hours - settings.overtime_daily_hours, 0), minlength=len(worker_weeks)
        )
    overtime_hours = overtime_hours + np.maximum(week_hours - overtime_hours - settings.overtime_weekly_hours, 0)

    # The bonus of each pair, spread over its weeks by the pair's hours per week.
    pair = counted_pair[with_bonus]
    week_index = (week_start(counted_day[with_bonus], settings) - first_week) // 7
    pair_week_code, pair_weeks = pd.factorize(pair * span + week_index, sort=True)
    pair_weeks = np.asarray(pair_weeks)
    hours_in_week = np.bincount(pair_week_code, weights=counted_hours_micro[with_bonus])
    pw_pair, pw_week = pair_weeks // span, pair_weeks % span
    bonus_in_week = pair_bonus_cents[pw_pair] / 100 * np.divide(
        hours_in_week, pair_hours_micro[pw_pair], out=np.zeros_like(hours_in_week), where=pair_hours_micro[pw_pair] > 0
    )
    ww = np.searchsorted(worker_weeks, pair_worker[pw_pair] * span + pw_week)
    premium = np.divide(bonus_in_week, week_hours[ww], out=np.zeros_like(bonus_in_week), where=week_hours[ww] > 0)
    owed = premium * 0.5 * overtime_hours[ww]
    adjustment = half_up_cents(np.bincount(pw_pair, weights=owed, minlength=len(pair_worker)))

    week_bonus = np.bincount(ww, weights=bonus_in_week, minlength=len(worker_weeks))
    week_owed = np.bincount(ww, weights=owed, minlength=len(worker_weeks))
    has = np.unique(ww)
    weeks = pd.DataFrame(
        {
            "worker": worker_weeks[has] // span,
            "week_start": first_week + (worker_weeks[has] % span) * 7,
            "hours_worked": week_hours[has],
            "overtime_hours": overtime_hours[has],
            "bonus_in_week": week_bonus[has],
            "overtime_adjustment": half_up_cents(week_owed[has]),
        }
    )
    return Overtime(adjustment, weeks)
