from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protiv_dagster.propay.money import allocate, to_cents


def test_rounds_half_up_to_the_cent():
    assert to_cents(0.125) == Decimal("0.13")
    assert to_cents(87.504999) == Decimal("87.50")
    assert to_cents(Decimal("2.675")) == Decimal("2.68")


def test_crew_lead_weighted_example_settles_cents_by_largest_remainder():
    # $300 over 3.5 units: 85.714.. twice and 128.571.., one cent left over goes to the largest remainder.
    parts = allocate(Decimal("300"), [1, 1, 1.5])
    assert parts == [Decimal("85.72"), Decimal("85.71"), Decimal("128.57")]
    assert sum(parts) == Decimal("300.00")


def test_equal_split_and_zero_total():
    assert allocate(Decimal("300"), [1, 1, 1]) == [Decimal("100.00")] * 3
    assert allocate(Decimal("0"), [0, 0]) == [Decimal("0.00")] * 2


def test_refuses_negative_weights_and_amount_over_no_weight():
    with pytest.raises(ValueError, match="negative"):
        allocate(Decimal("1"), [1, -1])
    with pytest.raises(ValueError, match="zero weights"):
        allocate(Decimal("1"), [0, 0])


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(
    total=st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False),
    weights=st.lists(st.floats(min_value=0.001, max_value=1000), min_size=1, max_size=30),
)
def test_parts_always_sum_to_the_total_and_are_never_negative(total, weights):
    parts = allocate(total, weights)
    assert sum(parts) == to_cents(total)
    assert all(p >= 0 for p in parts)
    assert all(p == p.quantize(Decimal("0.01")) for p in parts)


# --- Vectorized cents ------------------------------------------------------------------------------
import numpy as np  # noqa: E402

from protiv_dagster.propay.money import allocate_cents_by_group, half_up_cents  # noqa: E402


def test_half_up_cents_matches_to_cents_on_tricky_floats():
    values = [0.125, 1.005, 2.675, 87.504999, -0.125, 0.0, 1234567.895]
    assert half_up_cents(np.array(values)).tolist() == [int(to_cents(v) * 100) for v in values]


def test_group_allocation_settles_the_crew_lead_example_and_keeps_groups_apart():
    parts = allocate_cents_by_group(
        np.array([0, 0, 0, 1, 1]), np.array([30000, 101]), np.array([1, 1, 1.5, 1, 1]), np.array([0, 1, 2, 0, 1])
    )
    assert parts.tolist() == [8572, 8571, 12857, 51, 50]


def test_group_allocation_breaks_ties_by_the_key_not_by_position():
    parts = allocate_cents_by_group(np.array([0, 0, 0]), np.array([100]), np.ones(3), np.array([2, 0, 1]))
    assert parts.tolist() == [33, 34, 33]


def test_group_allocation_refuses_negative_weights_and_money_without_weight():
    with pytest.raises(ValueError, match="negative"):
        allocate_cents_by_group(np.array([0, 0]), np.array([1]), np.array([1.0, -1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="zero weights"):
        allocate_cents_by_group(np.array([0]), np.array([1]), np.array([0.0]), np.array([0]))


@settings(deadline=None, max_examples=100)
@given(
    groups=st.lists(
        st.tuples(
            st.integers(min_value=0, max_value=10**9),
            st.lists(st.floats(min_value=0.001, max_value=1000), min_size=1, max_size=12),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_group_allocation_equals_the_scalar_rule(groups):
    group = np.concatenate([np.full(len(w), i) for i, (_, w) in enumerate(groups)])
    weights = np.concatenate([np.array(w) for _, w in groups])
    tie = np.concatenate([np.arange(len(w)) for _, w in groups])
    parts = allocate_cents_by_group(group, np.array([t for t, _ in groups]), weights, tie)
    for i, (total, w) in enumerate(groups):
        mine = parts[group == i]
        assert mine.sum() == total and (mine >= 0).all()
        # Same as the Decimal rule, except where float and Decimal disagree on a remainder tie.
        scalar = [int(p * 100) for p in allocate(Decimal(total) / 100, w)]
        assert np.abs(mine - np.array(scalar)).max() <= 1
