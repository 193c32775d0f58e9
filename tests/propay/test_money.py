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
