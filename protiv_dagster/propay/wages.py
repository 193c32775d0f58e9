"""The wage of each time entry: the one in force on its work date.

- With a wage history (``wages``: worker_id, effective_date, hourly_wage) the wage in force on a day
  is the row with the latest effective_date on or before it (a future-dated row is not yet in
  force). A worker with no row on or before the day falls back to ``workers.hourly_wage`` (today's
  wage, all QuickBooks Time has). No wage at all: the wage is missing, and the ProPay's labor cost is
  unknown (rules §9: it is excluded, never costed at $0).
- A history row without a wage or without a date is ignored. **Decision:** two rows for one worker and day, or a
  worker listed twice in ``workers``, take the higher wage (the labor cost is never understated, so
  the savings are never overstated), whatever the row order.
- Wages are exact: each is read as the decimal it was written as and carried as an integer number of
  wage units (1 / ``scale`` dollars an hour, ``scale`` the least common multiple of their
  denominators: 100 for wages in cents, 10,000 for the warehouse's four decimals). **Decision:** a
  wage with more than six decimals is rounded to the micro-dollar (no source has one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from protiv_dagster.propay.exact import NO_DAY, epoch_days, fractions_of

MAX_SCALE = 1_000_000


@dataclass(frozen=True)
class EntryWages:
    """Per entry: ``units`` (int64 wage units, 0 when missing) and ``known``; ``scale`` units per dollar."""

    units: np.ndarray
    known: np.ndarray
    scale: int


def _scale(fractions: list) -> int:
    scale = 1
    for value in fractions:
        scale = math.lcm(scale, value.denominator)
        if scale > MAX_SCALE:
            return MAX_SCALE
    return scale


def _units(fractions: np.ndarray, scale: int) -> np.ndarray:
    return np.array([-1 if f is None else (2 * f * scale + 1) // 2 for f in fractions], dtype=np.int64)


def entry_wages(
    worker: np.ndarray,
    day: np.ndarray,
    worker_ids: np.ndarray,
    workers: pd.DataFrame,
    wages: pd.DataFrame | None,
) -> EntryWages:
    """The wage of each entry (``worker`` codes into ``worker_ids``, ``day`` as days since 1970-01-01)."""
    index = pd.Index(worker_ids)
    current = pd.Series(fractions_of(workers["hourly_wage"]) if len(workers) else [], dtype=object)
    current_ids = workers["worker_id"].astype(str).to_numpy() if len(workers) else np.array([], dtype=object)
    history = None
    if wages is not None and len(wages):
        values = fractions_of(wages["hourly_wage"])
        keep = np.array([v is not None for v in values], dtype=bool)
        codes = index.get_indexer(wages["worker_id"].astype(str))
        effective = epoch_days(wages["effective_date"])
        keep &= (codes >= 0) & (effective != NO_DAY)
        history = pd.DataFrame({"worker": codes[keep], "day": effective[keep], "wage": values[keep]})
    distinct = [f for f in current.tolist() if f is not None]
    if history is not None:
        distinct += history["wage"].tolist()
    scale = _scale(list(set(distinct)))

    per_worker = np.full(len(worker_ids), -1, dtype=np.int64)
    if len(current_ids):
        units = _units(current.to_numpy(dtype=object), scale)
        codes = index.get_indexer(current_ids)
        ok = codes >= 0
        np.maximum.at(per_worker, codes[ok], units[ok])
    result = per_worker[worker] if len(worker) else np.zeros(0, dtype=np.int64)

    if history is not None and len(history) and len(worker):
        h_units = _units(history["wage"].to_numpy(dtype=object), scale)
        h_worker = history["worker"].to_numpy(dtype=np.int64)
        h_day = history["day"].to_numpy(dtype=np.int64)
        base = min(int(h_day.min()), int(day.min()))
        span = max(int(h_day.max()), int(day.max())) - base + 1
        order = np.lexsort((h_units, h_day, h_worker))  # the highest wage of a day last
        keys = h_worker[order] * span + (h_day[order] - base)
        row_keys = worker.astype(np.int64) * span + (day.astype(np.int64) - base)
        found = np.searchsorted(keys, row_keys, side="right") - 1
        valid = found >= 0
        valid[valid] = h_worker[order][found[valid]] == worker[valid]
        result = np.where(valid, h_units[order][np.maximum(found, 0)], result)
    known = result >= 0
    return EntryWages(units=np.where(known, result, 0).astype(np.int64), known=known, scale=scale)
