"""Exact arithmetic for the engine: integer sums, exact rationals in numpy arrays, one rounding.

Every amount the engine pays is computed from whole seconds, integer wage units and the decimals the
settings and budgets were written as, with Python integers (numpy ``object`` arrays, which hold
arbitrary-precision ints and cost tens of nanoseconds an element), and rounded once:

- ``int_sum_by``: group sums of non-negative integers, exact (numpy's ``bincount`` sums floats, exact
  only below 2**53, so larger values are summed in 21-bit slices).
- ``Rational``: element-wise exact fractions (numerator and denominator arrays of Python ints).
- ``round_half_up``: a non-negative fraction to the nearest integer, halves up.
- ``rational_sum_by``: group sums of fractions with different denominators (pairwise merges,
  reduced by their gcd at each step).
- ``allocate_exact``: the largest-remainder rule on integer weights, ties to a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import exact

_SAFE = 2**53  # floats add integers exactly below this
_SLICE_BITS = 21


def objects(values) -> np.ndarray:
    """An array of Python ints (numpy object dtype) from integers of any dtype."""
    array = np.asarray(values)
    if array.dtype == object:
        return array
    return array.astype(np.int64).astype(object)


def fits_int64(values: np.ndarray) -> bool:
    if len(values) == 0 or values.dtype != object:
        return True
    return bool(max(values.max(), -values.min()) < 2**63)


def as_int64_or_objects(values: np.ndarray) -> np.ndarray:
    """int64 when every value fits, else the Python ints as they are (numpy object dtype)."""
    values = np.asarray(values)
    return values.astype(np.int64) if fits_int64(values) else values


def int_sum_by(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Per group 0..n-1 the exact sum of non-negative integers (int64; Python ints when a sum could
    pass int64)."""
    group = np.asarray(group, dtype=np.int64)
    values = np.asarray(values)
    if values.dtype == object:
        out = np.zeros(n, dtype=object)
        if len(values):
            order = np.argsort(group, kind="stable")
            g = group[order]
            starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
            out[g[starts]] = np.add.reduceat(values[order], starts)
        return out
    values = values.astype(np.int64)
    if len(values) == 0:
        return np.zeros(n, dtype=np.int64)
    if (values < 0).any():
        raise ValueError("int_sum_by sums non-negative integers")
    top = int(values.max())
    if top * len(values) < _SAFE:
        return np.bincount(group, weights=values, minlength=n).astype(np.int64)
    mask = (1 << _SLICE_BITS) - 1
    wide = top * len(values) >= 2**62
    total = np.zeros(n, dtype=object if wide else np.int64)
    shift, rest = 0, values
    while rest.any():
        part = np.bincount(group, weights=rest & mask, minlength=n).astype(np.int64)
        total = total + (objects(part) * (1 << shift) if wide else part << shift)
        rest, shift = rest >> _SLICE_BITS, shift + _SLICE_BITS
    return total


@dataclass(frozen=True)
class Rational:
    """Exact fractions element-wise: ``num / den`` with Python ints in object arrays, den > 0."""

    num: np.ndarray
    den: np.ndarray

    @classmethod
    def of(cls, num, den=1) -> Rational:
        num = objects(num)
        den = objects(np.broadcast_to(np.asarray(den), num.shape).copy() if np.ndim(den) == 0 else den)
        return cls(num, den)

    @classmethod
    def from_fractions(cls, values: np.ndarray) -> Rational:
        """From an object array of ``Fraction`` (None/NaN as 0; track unknowns separately)."""
        fracs = [v if isinstance(v, Fraction) else Fraction(0) for v in values]
        return cls(
            np.array([f.numerator for f in fracs] or [], dtype=object),
            np.array([f.denominator for f in fracs] or [], dtype=object),
        )

    # Results are not reduced (Python ints do not overflow); ``reduced`` when numbers must stay small.
    def __add__(self, other: Rational) -> Rational:
        return Rational(self.num * other.den + other.num * self.den, self.den * other.den)

    def __sub__(self, other: Rational) -> Rational:
        return Rational(self.num * other.den - other.num * self.den, self.den * other.den)

    def __mul__(self, other: Rational) -> Rational:
        return Rational(self.num * other.num, self.den * other.den)

    def scale(self, num, den=1) -> Rational:
        """Times the integers num / den (scalars or arrays, den > 0)."""
        return Rational(self.num * num, self.den * den)

    def divided(self, other: Rational, where: np.ndarray) -> Rational:
        """self / other where ``where`` (other non-zero there), 0 elsewhere."""
        where = np.asarray(where, dtype=bool)
        num = np.where(where, self.num * other.den, 0)
        den = np.where(where, self.den * other.num, 1)
        negative = (den < 0).astype(bool)
        num = np.where(negative, -num, num)
        den = np.where(negative, -den, den)
        return Rational(num.astype(object), den.astype(object))

    def positive_part(self) -> Rational:
        return Rational(np.where(self.num > 0, self.num, 0).astype(object), self.den)

    def negative_part(self) -> Rational:
        return Rational(np.where(self.num < 0, -self.num, 0).astype(object), self.den)

    def reduced(self) -> Rational:
        if len(self.num) == 0:
            return self
        g = np.gcd(self.num, self.den)
        g = np.where(g == 0, 1, g)
        return Rational((self.num // g).astype(object), (self.den // g).astype(object))

    def take(self, index) -> Rational:
        return Rational(self.num[index], self.den[index])

    def floats(self) -> np.ndarray:
        """Nearest floats (for display columns only)."""
        return np.array([n / d for n, d in zip(self.num.tolist(), self.den.tolist())], dtype=float)

    def __len__(self) -> int:
        return len(self.num)


def round_half_up(num, den) -> np.ndarray:
    """floor(num / den + 1/2) element-wise for non-negative fractions; int64 when it fits."""
    num, den = objects(num), objects(den)
    return as_int64_or_objects((2 * num + den) // (2 * den))


def rational_sum_by(group: np.ndarray, values: Rational, n: int) -> Rational:
    """Per group 0..n-1 the exact sum of the fractions in it (0 for an empty group): pairwise merges of
    neighbours in the same group, log2(largest group) rounds of vectorized Python-int arithmetic."""
    group = np.asarray(group, dtype=np.int64)
    order = np.argsort(group, kind="stable")
    g, num, den = group[order], values.num[order], values.den[order]
    if num.dtype != object and len(num):
        # The first round on int64 when no product can pass 2**62 (then Python ints): half the objects.
        top_num, top_den = int(np.abs(num).max()), int(den.max())
        if not (2 * top_num * top_den < 2**62 and top_den * top_den < 2**62):
            num, den = objects(num), objects(den)
    else:
        num, den = objects(num), objects(den)
    while len(g):
        same_next = np.r_[g[1:] == g[:-1], False]
        if not same_next.any():
            break
        starts = np.r_[True, ~same_next[:-1]]
        index = np.arange(len(g))
        rank = index - np.maximum.accumulate(np.where(starts, index, 0))
        even = rank % 2 == 0
        keep = np.flatnonzero(even)
        merge = np.flatnonzero(even & same_next)
        a_den, b_den = den[merge], den[merge + 1]
        merged_num = num[merge] * b_den + num[merge + 1] * a_den
        merged_den = a_den * b_den
        g, num, den = g[keep], num[keep], den[keep]
        if num.dtype != object:  # after an int64 round: Python ints from here on
            num, den = objects(num), objects(den)
            merged_num, merged_den = objects(merged_num), objects(merged_den)
        at = np.searchsorted(keep, merge)
        num[at], den[at] = merged_num, merged_den
    out_num = np.zeros(n, dtype=object)
    out_den = np.ones(n, dtype=object)
    out_num[g], out_den[g] = num, den
    return Rational(out_num, out_den)


def allocate_exact(group: np.ndarray, totals: np.ndarray, weights: np.ndarray, tie_key: np.ndarray) -> np.ndarray:
    """Split each group's total (integer cents) over its parts by integer weights, exactly.

    Largest-remainder rule: each part gets ``floor(total x weight / sum of weights)``; the cents left
    over go one each to the parts with the largest remainders, ties to the smaller ``tie_key``. A group
    whose weights are all zero must have a total of zero. Returns int64 parts.
    """
    group = np.asarray(group, dtype=np.int64)
    totals = np.asarray(totals)
    n = len(totals)
    weights = np.asarray(weights)
    if len(group) == 0:
        if (objects(totals) != 0).any():
            raise ValueError("cannot allocate a non-zero amount over zero weights")
        return np.zeros(0, dtype=np.int64)
    if (weights < 0).any():
        raise ValueError("allocation weights must not be negative")
    weight_sum = int_sum_by(group, weights, n)
    if ((objects(weight_sum) == 0) & (objects(totals) != 0)).any():
        raise ValueError("cannot allocate a non-zero amount over zero weights")
    big = (
        weights.dtype == object
        or totals.dtype == object
        or weight_sum.dtype == object
        or (int(np.max(np.abs(totals), initial=0)) * int(np.max(weights, initial=0)) >= 2**62)
    )
    if big:
        share = objects(totals)[group] * objects(weights)
        divisor = np.where(objects(weight_sum) == 0, 1, objects(weight_sum))[group]
        floored, remainder = share // divisor, share % divisor
        remainder = remainder.astype(np.int64) if fits_int64(remainder) else remainder.astype(float)
    else:
        share = totals.astype(np.int64)[group] * weights.astype(np.int64)
        divisor = np.maximum(weight_sum.astype(np.int64), 1)[group]
        floored, remainder = share // divisor, share % divisor
    floored = as_int64_or_objects(floored)
    leftover = objects(totals) - objects(int_sum_by(group, floored, n))
    order = np.lexsort((np.asarray(tie_key), -remainder, group))
    sorted_group = group[order]
    rank = np.arange(len(order)) - np.searchsorted(sorted_group, sorted_group, side="left")
    extra = np.zeros(len(group), dtype=np.int64)
    extra[order] = rank < leftover[sorted_group].astype(np.int64)
    return floored.astype(np.int64) + extra


NO_DAY = np.iinfo(np.int64).min  # a missing date


def epoch_days(values) -> np.ndarray:
    """Dates (date objects, strings or datetimes) as int64 days since 1970-01-01 (``NO_DAY`` where
    missing); converts each distinct day once."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values)
    if len(uniques) == 0:
        return np.full(len(codes), NO_DAY, dtype=np.int64)
    as_days = pd.to_datetime(pd.Index(uniques)).values.astype("datetime64[D]").astype(np.int64)
    return np.where(codes >= 0, as_days[np.maximum(codes, 0)], NO_DAY)


def fractions_of(values) -> np.ndarray:
    """Each value as the exact decimal it was written as (``Fraction``); None where missing.

    Works per distinct value, so a column of 100,000 budgets with a few hundred distinct values costs
    a few hundred conversions."""
    series = pd.Series(values, dtype=object) if not isinstance(values, pd.Series) else values.astype(object)
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    converted = np.array([_to_fraction(u) for u in uniques] + [None], dtype=object)
    return converted[np.where(codes < 0, len(uniques), codes)]


def _to_fraction(value) -> Fraction | None:
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return Fraction(int(value))
    if isinstance(value, (Fraction, Decimal, int)) and not isinstance(value, bool):
        return Fraction(value)
    if isinstance(value, (float, np.floating)):
        return exact(float(value))
    if isinstance(value, np.integer):
        return Fraction(int(value))
    try:
        return exact(str(value).strip())
    except (ValueError, ZeroDivisionError):
        return None
