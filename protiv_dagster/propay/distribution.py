"""From a ProPay's bonus pool to role buckets, and from the buckets to people (rules §4 and §9).

- The pool is split over the company's role buckets (crew, crew_lead, manager, other, company) by
  the largest-remainder rule on the bucket shares read as the decimals they were written as, so the
  buckets add up to the pool to the cent (ties to the earlier bucket in that order). The company
  bucket is never paid out.
- **Role buckets add up; they don't replace.** Everyone with counted time on the ProPay shares the
  crew bucket, leads and managers included. The crew-lead bucket goes to the ProPay's crew lead(s),
  the manager bucket to its manager(s), split equally between several (largest remainder, ties to the
  smaller worker id). A lead who also worked gets a crew share and the lead bucket.
- Who holds a role bucket (``role_holders``): the people the source assigns to the ProPay's job or
  milestones in that role (``assignments``); **Decision:** for a ProPay per milestone of a recurring
  job without an assignment of its own, the job's assignees; otherwise the workers whose role
  setting (``worker_roles``) is that role and who have counted time on the ProPay. **Decision:** the
  "other" bucket has no assignments: its holders are the workers whose role setting is "other" and
  who have counted time on the ProPay.
- A role bucket nobody holds goes into the crew bucket (``unclaimed_amount`` reports it).
- The crew bucket is shared by the distribution method, each worker's weight being: ``hours``: their
  counted seconds; ``wage``: their exact labor cost (seconds x the wage in force each day);
  ``crew_lead_weighted``: seconds x ``lead_multiplier`` for the ProPay's crew lead(s), seconds for
  the others; ``equal``: 1; ``manual``: their percentage from ``manual_distribution`` (a worker
  without one gets no crew share). A worker whose weight is 0 shares nothing. Largest remainder to
  the cent, ties to the smaller worker id. When nobody can share the crew bucket (manual
  percentages for none of the workers present), the company keeps it.
- Reported per ProPay: ``paid_to_workers`` (the worker bonuses) and ``kept_by_company`` (the company
  bucket plus a crew bucket nobody could share); paid + kept = pool, to the cent.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from protiv_dagster.company_settings import ROLE_BUCKETS, CompanySettings, exact
from protiv_dagster.propay.exact import allocate_exact

CREW, CREW_LEAD, MANAGER, OTHER, COMPANY = range(5)
HELD_ROLES = (CREW_LEAD, MANAGER, OTHER)


def _common_integers(values: list[Fraction]) -> list[int]:
    """Fractions as integers with the same ratios (times the least common denominator)."""
    from math import lcm

    scale = 1
    for value in values:
        scale = lcm(scale, value.denominator)
    return [int(value * scale) for value in values]


def bucket_weights(settings: CompanySettings) -> np.ndarray:
    """The company's bucket shares as integers in ``ROLE_BUCKETS`` order, exactly proportional to them."""
    return np.array(
        _common_integers([exact(settings.role_buckets.get(role, 0.0)) for role in ROLE_BUCKETS]), dtype=np.int64
    )


def split_into_role_buckets(pool_cents: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per ProPay (rows) the cents of each role bucket (columns in ``ROLE_BUCKETS`` order); ``weights``
    is one row of integer shares per ProPay."""
    n, k = weights.shape
    parts = allocate_exact(
        np.repeat(np.arange(n), k), np.asarray(pool_cents, dtype=np.int64), weights.ravel(), np.tile(np.arange(k), n)
    )
    return parts.reshape(n, k)


@dataclass(frozen=True)
class RoleBuckets:
    """``holder_cents``: per holder row, the cents of the bucket they hold; ``unheld_cents``: per
    ProPay the lead, manager and other buckets nobody holds (they go into the crew bucket)."""

    holder_cents: np.ndarray
    unheld_cents: np.ndarray


def pay_role_buckets(
    buckets: np.ndarray, holder_unit: np.ndarray, holder_worker: np.ndarray, holder_role: np.ndarray
) -> RoleBuckets:
    """Split each held role bucket equally between its holders (largest remainder, ties to the smaller worker code)."""
    n = len(buckets)
    held = np.zeros((n, len(ROLE_BUCKETS)), dtype=bool)
    held[holder_unit, holder_role] = True
    totals = np.where(held, buckets, 0).ravel()
    cents = allocate_exact(
        holder_unit * len(ROLE_BUCKETS) + holder_role, totals, np.ones(len(holder_unit), dtype=np.int64), holder_worker
    )
    unheld = np.where(held[:, HELD_ROLES], 0, buckets[:, HELD_ROLES]).sum(axis=1)
    return RoleBuckets(holder_cents=cents, unheld_cents=unheld)


@dataclass(frozen=True)
class CrewShares:
    """``pair_cents``: per worker on a ProPay, their crew share; ``unclaimed_cents``: per ProPay the
    crew bucket nobody could share (kept by the company)."""

    pair_cents: np.ndarray
    unclaimed_cents: np.ndarray


def share_crew_bucket(
    crew_cents: np.ndarray, pair_unit: np.ndarray, pair_worker: np.ndarray, weight: np.ndarray
) -> CrewShares:
    """Split each ProPay's crew bucket (``crew_cents``) over its workers by integer ``weight``."""
    n = len(crew_cents)
    eligible = weight > 0
    anyone = np.bincount(pair_unit[eligible], minlength=n) > 0
    cents = np.zeros(len(pair_unit), dtype=np.int64)
    cents[eligible] = allocate_exact(
        pair_unit[eligible], np.where(anyone, crew_cents, 0), weight[eligible], pair_worker[eligible]
    )
    return CrewShares(pair_cents=cents, unclaimed_cents=np.where(anyone, 0, crew_cents))


def method_weights(
    settings: CompanySettings,
    pair_seconds: np.ndarray,
    pair_wage_cost: np.ndarray,
    pair_is_lead: np.ndarray,
    pair_worker_ids: np.ndarray,
) -> np.ndarray:
    """Each worker's integer weight in the crew bucket under ``settings.distribution_method``
    (``pair_wage_cost`` is the exact labor cost in any fixed unit)."""
    method = settings.distribution_method
    seconds = np.asarray(pair_seconds, dtype=np.int64)
    if method == "hours":
        weight = seconds
    elif method == "wage":
        weight = np.asarray(pair_wage_cost)
    elif method == "crew_lead_weighted":
        multiplier = exact(settings.lead_multiplier)
        weight = seconds * np.where(pair_is_lead, multiplier.numerator, multiplier.denominator)
    elif method == "equal":
        weight = np.ones(len(seconds), dtype=np.int64)
    else:  # manual
        percents = {worker: exact(p) for worker, p in settings.manual_distribution.items()}
        scaled = dict(zip(percents, _common_integers(list(percents.values()))))
        weight = np.array([scaled.get(w, 0) for w in pair_worker_ids], dtype=np.int64)
    return np.where(seconds > 0, weight, 0)
