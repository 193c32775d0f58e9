"""The engine's exact arithmetic: integer group sums past 2**53, fractions, one rounding, and the
largest-remainder rule on integer weights, checked against ``fractions.Fraction``."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protiv_dagster.propay.exact import (
    NO_DAY,
    Rational,
    allocate_exact,
    epoch_days,
    fractions_of,
    int_sum_by,
    objects,
    rational_sum_by,
    round_half_up,
)
from tests.propay.reference import largest_remainder


def test_int_sums_stay_exact_past_the_float_limit():
    values = np.array([2**60, 1, 2**60, 3, 7], dtype=np.int64)
    assert int_sum_by(np.array([0, 0, 1, 1, 2]), values, 3).tolist() == [2**60 + 1, 2**60 + 3, 7]
    big = int_sum_by(np.zeros(4, dtype=np.int64), np.full(4, 2**62, dtype=np.int64), 1)
    assert int(big[0]) == 2**64  # past int64: Python ints
    assert int_sum_by(np.array([1, 1]), objects([10**30, 1]), 2).tolist() == [0, 10**30 + 1]


def test_round_half_up_is_exact_at_the_half():
    num = objects([1, 3, 5, 7, 2 * 10**30 + 1])
    den = objects([2, 2, 10, 10, 2])
    assert [int(v) for v in round_half_up(num, den)] == [1, 2, 1, 1, 10**30 + 1]


@settings(deadline=None, max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 6), st.integers(0, 10**12), st.integers(1, 10**7)), min_size=1, max_size=60))
def test_group_fraction_sums_equal_fractions(rows):
    group = np.array([g for g, _, _ in rows])
    got = rational_sum_by(group, Rational(objects([n for _, n, _ in rows]), objects([d for _, _, d in rows])), 7)
    for g in range(7):
        assert Fraction(int(got.num[g]), int(got.den[g])) == sum(
            (Fraction(n, d) for k, n, d in rows if k == g), Fraction(0)
        )


@settings(deadline=None, max_examples=150)
@given(
    st.lists(
        st.tuples(st.integers(0, 10**9), st.lists(st.integers(0, 10**15), min_size=1, max_size=8)),
        min_size=1,
        max_size=6,
    )
)
def test_allocation_equals_the_fraction_rule_and_adds_up(groups):
    groups = [(total if sum(w) else 0, w) for total, w in groups]
    group = np.concatenate([np.full(len(w), i) for i, (_, w) in enumerate(groups)])
    weights = np.concatenate([np.array(w, dtype=np.int64) for _, w in groups])
    tie = np.concatenate([np.arange(len(w)) for _, w in groups])
    parts = allocate_exact(group, np.array([t for t, _ in groups], dtype=np.int64), weights, tie)
    for i, (total, w) in enumerate(groups):
        mine = parts[group == i]
        assert mine.sum() == total and (mine >= 0).all()
        expected = largest_remainder(total, dict(enumerate(w)))
        assert mine.tolist() == [expected[k] for k in range(len(w))]


def test_allocation_breaks_ties_by_the_key_and_refuses_money_without_weight():
    assert allocate_exact(
        np.zeros(3, dtype=np.int64), np.array([100]), np.ones(3, dtype=np.int64), np.array([2, 0, 1])
    ).tolist() == [33, 34, 33]
    with pytest.raises(ValueError, match="zero weights"):
        allocate_exact(
            np.zeros(1, dtype=np.int64), np.array([1]), np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
        )


def test_numbers_as_written_dates_as_days():
    values = fractions_of([0.1, "2.50", Decimal("18.5"), 7, None, float("nan"), 25.0])
    assert list(values) == [Fraction(1, 10), Fraction(5, 2), Fraction(37, 2), Fraction(7), None, None, Fraction(25)]
    days = epoch_days([date(1970, 1, 2), "2026-11-02", None])
    assert days.tolist() == [1, (date(2026, 11, 2) - date(1970, 1, 1)).days, NO_DAY]
