"""Money in cents: rounding and the largest-remainder split that makes parts add up to the whole.

These Decimal and float helpers are kept for small, one-off uses and for callers outside the engine;
the engine itself computes with integers and exact fractions (``exact``: ``allocate_exact``,
``round_half_up``), so no amount it pays depends on float rounding."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

CENT = Decimal("0.01")


def to_cents(amount: float | Decimal) -> Decimal:
    """Round half up to the cent; floats go through their shortest repr so 0.125 stays 0.125."""
    value = amount if isinstance(amount, Decimal) else Decimal(repr(float(amount)))
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[float | Decimal]) -> list[Decimal]:
    """Split ``total`` (in cents) by ``weights`` so the parts sum exactly to ``total``.

    Largest-remainder rule: every part gets its share floored to the cent, then the cents left over go
    one each to the parts with the largest remainders (ties to the earlier part, so the result is
    deterministic for a given order).
    """
    total = to_cents(total)
    shares = [Decimal(repr(float(w))) if not isinstance(w, Decimal) else w for w in weights]
    if any(w < 0 for w in shares):
        raise ValueError("allocation weights must not be negative")
    weight_sum = sum(shares, Decimal(0))
    if not shares or weight_sum == 0:
        if total != 0 and shares:
            raise ValueError("cannot allocate a non-zero amount over zero weights")
        return [Decimal("0.00")] * len(shares)
    exact = [total * w / weight_sum for w in shares]
    floored = [e.quantize(CENT, rounding=ROUND_FLOOR) for e in exact]
    leftover_cents = int((total - sum(floored, Decimal(0))) / CENT)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floored[i]), i))
    for i in order[:leftover_cents]:
        floored[i] += CENT
    return floored


# --- Vectorized money: integer cents in numpy arrays (float weights) -----------------------------------


def half_up_cents(dollars: np.ndarray | pd.Series) -> np.ndarray:
    """Dollars (floats) to int64 cents, rounding half away from zero like ``to_cents``.

    The product by 100 is first rounded to 6 decimals so float noise such as 1.005 * 100 =
    100.49999999999999 rounds as the decimal number it stands for (to 101 cents).
    """
    scaled = np.round(np.asarray(dollars, dtype=float) * 100, 6)
    return (np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)).astype(np.int64)


def allocate_cents_by_group(
    group: np.ndarray, totals: np.ndarray, weights: np.ndarray, tie_key: np.ndarray
) -> np.ndarray:
    """Split each group's total (int cents) over its parts by weight, so the parts add up exactly.

    ``group`` gives each part's group (0 .. len(totals) - 1), ``totals`` each group's cents,
    ``weights`` each part's non-negative weight, ``tie_key`` an integer that orders equal remainders.
    Largest-remainder rule, as ``allocate``: every part gets its share floored to the cent, then the
    cents left over go one each to the parts with the largest remainders, ties to the smaller
    ``tie_key``. A group whose weights are all zero must have a total of zero.
    """
    group = np.asarray(group, dtype=np.int64)
    totals = np.asarray(totals, dtype=np.int64)
    weights = np.asarray(weights, dtype=float)
    if (weights < 0).any():
        raise ValueError("allocation weights must not be negative")
    weight_sum = np.bincount(group, weights=weights, minlength=len(totals))
    if ((weight_sum <= 0) & (totals != 0)).any():
        raise ValueError("cannot allocate a non-zero amount over zero weights")
    if len(group) == 0:
        return np.zeros(0, dtype=np.int64)
    part_sum = weight_sum[group]
    exact = totals[group] * np.divide(weights, part_sum, out=np.zeros_like(weights), where=part_sum > 0)
    # Snap float noise (8749.9999999) to the integer it stands for before flooring.
    floored = np.floor(np.round(exact, 6))
    remainder = np.round(exact - floored, 9)
    leftover = totals - np.bincount(group, weights=floored, minlength=len(totals)).astype(np.int64)
    order = np.lexsort((np.asarray(tie_key), -remainder, group))
    sorted_group = group[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_group, sorted_group, side="left")
    extra = np.zeros(len(group), dtype=np.int64)
    extra[order] = rank < leftover[sorted_group]
    return floored.astype(np.int64) + extra
