"""Weekly overtime (FLSA regular-rate) adjustment owed on ProPay bonuses.

A production bonus raises the regular rate of the weeks it was earned in, so overtime hours of those
weeks owe an extra half rate on it, per worker per workweek:

    ot_adjustment = bonus in the week / total hours worked in the week x 0.5 x overtime hours

- Hours worked in the week are all the worker's attendance, every job, drive time included and time
  before the launch date included: the law counts all hours worked, whatever ProPay counts.
- Overtime hours = hours over ``overtime_weekly_hours`` (40) in the workweek. With a daily threshold
  (``overtime_daily_hours``, e.g. 8) the hours over it each day are overtime too, and the weekly rule
  then counts only the remaining straight-time hours: daily OT + max(week - daily OT - weekly, 0)
  (5 days of 10 h at 8 h a day: 10 h of overtime, not 20).
- Settings versions: a day belongs to the workweek that starts on the ``workweek_start`` of the
  version in force that day; the week's thresholds are those of the version in force on the week's
  first day (``settings_version`` of the week).
- **Decision:** a worker's bonus on a ProPay is allocated to workweeks in proportion to their counted
  seconds on it in each week; a worker paid without time on the ProPay (a crew lead or manager the
  source assigns) in proportion to the ProPay's counted seconds in each week.
- Exact: the bonus in a week is the exact sum of those parts; each stored amount is rounded half up
  to the cent once, from exact values: a week's bonus and adjustment (``overtime_weeks``), and each
  ProPay-worker adjustment (the exact sum over its weeks of its part of the week's adjustment). So a
  week may differ by a cent from the sum of its ProPays' rounded adjustments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import WEEKDAYS, SettingsHistory, exact
from protiv_dagster.propay.exact import Rational, int_sum_by, objects, rational_sum_by, round_half_up

EPOCH_WEEKDAY = 3  # 1970-01-01 was a Thursday (Monday = 0)


def version_index(history: SettingsHistory, day: np.ndarray) -> np.ndarray:
    """Per day (days since 1970-01-01) the index of the version in force."""
    starts = np.array(
        [np.datetime64(v.effective_from, "D").astype(np.int64) for v in history.versions[1:] if v.effective_from],
        dtype=np.int64,
    )
    return np.searchsorted(starts, np.asarray(day, dtype=np.int64), side="right")


def week_start(day: np.ndarray, history: SettingsHistory) -> np.ndarray:
    """First day of the workweek of each day, under the version in force that day."""
    day = np.asarray(day, dtype=np.int64)
    starts = np.array([WEEKDAYS.index(v.settings.workweek_start) for v in history.versions], dtype=np.int64)
    start = starts[version_index(history, day)]
    return day - (day + EPOCH_WEEKDAY - start) % 7


@dataclass(frozen=True)
class Overtime:
    pair_adjustment_cents: np.ndarray
    weeks: pd.DataFrame  # worker (code), week_start (days), settings_version, seconds_worked, overtime_seconds, bonus_in_week (cents), overtime_adjustment (cents)


def _threshold_seconds(hours: float | None) -> int:
    return -1 if hours is None else int(exact(hours) * 3600)


DENSE_CELLS = 50_000_000  # worker x day cells summed with one bincount; beyond, hashed


def _seconds_per_worker_day(worker, day, seconds, base: int, span: int):
    """(worker, day, seconds) per worker and day with time: integer sums."""
    key = worker.astype(np.int64) * span + (day - base)
    cells = (int(worker.max()) + 1) * span if len(worker) else 0
    if cells <= DENSE_CELLS:
        dense = int_sum_by(key, seconds, cells)
        found = np.flatnonzero(dense)
        return found // span, found % span + base, dense[found]
    code, keys = pd.factorize(key)
    keys = np.asarray(keys, dtype=np.int64)
    return keys // span, keys % span + base, int_sum_by(code, seconds, len(keys))


def overtime_adjustments(
    history: SettingsHistory,
    all_worker: np.ndarray,
    all_day: np.ndarray,
    all_seconds: np.ndarray,
    alloc_pair: np.ndarray,
    alloc_worker: np.ndarray,
    alloc_day: np.ndarray,
    alloc_seconds: np.ndarray,
    alloc_basis_seconds: np.ndarray,
    pair_bonus_cents: np.ndarray,
) -> Overtime:
    """The adjustment per ProPay-worker pair, and per worker-week that carries a bonus.

    ``all_*``: every attendance row with time (worker code, day, seconds). ``alloc_*``: the rows a
    pair's bonus is allocated over: the pair, the worker, the day, the seconds of the row and the
    pair's total of such seconds (``alloc_basis_seconds``); ``pair_bonus_cents`` per pair.
    """
    n_pairs = len(pair_bonus_cents)
    empty = pd.DataFrame(
        {
            c: pd.Series(dtype="int64")
            for c in (
                "worker",
                "week_start",
                "settings_version",
                "seconds_worked",
                "overtime_seconds",
                "bonus_in_week",
                "overtime_adjustment",
            )
        }
    )
    bonus = np.asarray(pair_bonus_cents, dtype=np.int64)
    use = bonus[alloc_pair] > 0
    if not use.any():
        return Overtime(np.zeros(n_pairs, dtype=np.int64), empty)
    alloc_pair, alloc_worker, alloc_day = alloc_pair[use], alloc_worker[use], alloc_day[use]
    alloc_seconds, alloc_basis_seconds = alloc_seconds[use], alloc_basis_seconds[use]

    alloc_week = week_start(alloc_day, history)
    # One allocation row per pair and week: its seconds that week (integer sums).
    week_span = int(alloc_week.max() - alloc_week.min()) + 1
    key_code, keys = pd.factorize(alloc_pair.astype(np.int64) * week_span + (alloc_week - alloc_week.min()))
    first_row = np.zeros(len(keys), dtype=np.int64)
    first_row[key_code[::-1]] = np.arange(len(key_code))[::-1]
    alloc_seconds = int_sum_by(key_code, alloc_seconds, len(keys))
    alloc_pair, alloc_worker = alloc_pair[first_row], alloc_worker[first_row]
    alloc_week, alloc_basis_seconds = alloc_week[first_row], alloc_basis_seconds[first_row]

    # The worker-weeks that carry a bonus, and every second worked in them (per worker and day first).
    base = int(min(all_day.min(), alloc_week.min())) - 6  # a week starts at most 6 days before its days
    span = int(max(all_day.max(), alloc_week.max())) - base + 1
    alloc_key = alloc_worker.astype(np.int64) * span + (alloc_week - base)
    alloc_ww, week_keys = pd.factorize(alloc_key)
    week_keys = np.asarray(week_keys, dtype=np.int64)
    n_weeks = len(week_keys)
    day_worker, day, day_seconds = _seconds_per_worker_day(all_worker, all_day, all_seconds, base, span)
    day_key = day_worker * span + (week_start(day, history) - base)
    day_ww = pd.Index(week_keys).get_indexer(day_key)
    carries = day_ww >= 0
    day_ww, day_seconds = day_ww[carries], day_seconds[carries]
    week_first_day = week_keys % span + base
    week_version = version_index(history, week_first_day)
    worked = int_sum_by(day_ww, day_seconds, n_weeks)

    weekly = np.array([_threshold_seconds(v.settings.overtime_weekly_hours) for v in history.versions], dtype=np.int64)
    daily = np.array([_threshold_seconds(v.settings.overtime_daily_hours) for v in history.versions], dtype=np.int64)
    threshold = daily[week_version[day_ww]]
    over = np.where(threshold >= 0, np.maximum(day_seconds - threshold, 0), 0)
    daily_overtime = int_sum_by(day_ww, over, n_weeks)
    overtime = daily_overtime + np.maximum(worked - daily_overtime - weekly[week_version], 0)
    del day_worker, day, day_seconds, day_key, day_ww, carries, threshold, over

    # The bonus parts: pair bonus x row seconds / pair basis seconds (exact), per worker-week and per pair.
    part_bonus = bonus[alloc_pair]
    if int(part_bonus.max()) * int(alloc_seconds.max()) >= 2**62:
        part_bonus = objects(part_bonus)
    parts = Rational(part_bonus * alloc_seconds, alloc_basis_seconds)
    week_bonus = rational_sum_by(alloc_ww, parts, n_weeks)
    has = np.flatnonzero(week_bonus.num > 0)
    factor_num = objects(np.where(worked > 0, overtime, 0))
    factor_den = objects(2 * np.maximum(worked, 1))
    week_owed = week_bonus.take(has).scale(factor_num[has], factor_den[has])
    with_overtime = (overtime[alloc_ww] > 0) & (worked[alloc_ww] > 0)
    owed_parts = parts.take(with_overtime).scale(
        factor_num[alloc_ww[with_overtime]], factor_den[alloc_ww[with_overtime]]
    )
    pair_owed = rational_sum_by(alloc_pair[with_overtime], owed_parts, n_pairs)

    order = np.argsort(week_keys[has], kind="stable")  # by worker, then week
    has = has[order]
    weeks = pd.DataFrame(
        {
            "worker": week_keys[has] // span,
            "week_start": week_first_day[has],
            "settings_version": np.array([v.version for v in history.versions], dtype=np.int64)[week_version[has]],
            "seconds_worked": worked[has],
            "overtime_seconds": overtime[has],
            "bonus_in_week": round_half_up(week_bonus.num[has], week_bonus.den[has]).astype(np.int64),
            "overtime_adjustment": round_half_up(week_owed.num, week_owed.den).astype(np.int64)[order],
        }
    )
    return Overtime(round_half_up(pair_owed.num, pair_owed.den).astype(np.int64), weeks)
