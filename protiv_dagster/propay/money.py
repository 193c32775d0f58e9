"""Money in cents: rounding and the largest-remainder split that makes parts add up to the whole."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

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
    weights = [Decimal(repr(float(w))) if not isinstance(w, Decimal) else w for w in weights]
    if any(w < 0 for w in weights):
        raise ValueError("allocation weights must not be negative")
    weight_sum = sum(weights, Decimal(0))
    if not weights or weight_sum == 0:
        if total != 0 and weights:
            raise ValueError("cannot allocate a non-zero amount over zero weights")
        return [Decimal("0.00")] * len(weights)
    exact = [total * w / weight_sum for w in weights]
    floored = [e.quantize(CENT, rounding=ROUND_FLOOR) for e in exact]
    leftover_cents = int((total - sum(floored, Decimal(0))) / CENT)
    order = sorted(range(len(exact)), key=lambda i: (-(exact[i] - floored[i]), i))
    for i in order[:leftover_cents]:
        floored[i] += CENT
    return floored
