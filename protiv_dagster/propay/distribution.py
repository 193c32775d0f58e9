"""From a ProPay's bonus pool to role buckets, and from each bucket to the workers in it.

Rules (decisions of this project where the help centre is silent are marked **Decision**):

- The pool is split over the company's role buckets (crew, crew_lead, manager, other, company) by
  the largest-remainder rule, so the buckets add up to the pool to the cent (ties to the earlier
  bucket in that order). The company bucket is never paid out.
- Only workers with time on the ProPay are eligible. A worker's role comes from the company's
  ``worker_roles`` (default crew). **Decision:** each worker is paid from exactly one bucket, the one
  of their role; a crew lead is paid from the crew bucket when the company gives the crew-lead bucket
  no share (a lead is part of the crew; this is how the published crew-lead-weighted example pays
  the lead from the crew's $300).
- Within a bucket the distribution method sets each worker's weight: ``hours`` = hours; ``wage`` =
  hours x wage (the labor cost); ``crew_lead_weighted`` = hours x lead_multiplier for a crew lead,
  hours for the others; ``equal`` = 1; ``manual`` = the worker's percentage from
  ``manual_distribution``, rescaled over the workers present (no percentage = no share). A worker
  whose weight is 0 is not eligible.
- **Decision, empty bucket:** a worker bucket with nobody eligible goes whole to the first bucket,
  in the order crew, crew_lead, manager, other, that has someone eligible; when no worker at all is
  eligible (e.g. an amount budget with no time yet) the company keeps it. Reported per ProPay:
  ``unclaimed_amount`` (the buckets nobody could claim, wherever they went), ``paid_to_workers``
  and ``kept_by_company`` (company bucket plus what nobody could claim); paid + kept = pool.
- Cents: every bucket is split by the largest-remainder rule, ties to the smaller worker id, so the
  worker bonuses of a bucket add up exactly to it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from protiv_dagster.company_settings import ROLE_BUCKETS, WORKER_ROLES, CompanySettings
from protiv_dagster.propay.money import allocate_cents_by_group

CREW, CREW_LEAD, MANAGER, OTHER = range(4)
COMPANY = 4


def split_into_role_buckets(pool_cents: np.ndarray, settings: CompanySettings) -> np.ndarray:
    """Per ProPay (rows) the cents of each role bucket (columns in ``ROLE_BUCKETS`` order)."""
    n = len(pool_cents)
    shares = np.array([settings.role_buckets.get(role, 0.0) for role in ROLE_BUCKETS], dtype=float)
    parts = allocate_cents_by_group(
        np.repeat(np.arange(n), len(shares)), pool_cents, np.tile(shares, n), np.tile(np.arange(len(shares)), n)
    )
    return parts.reshape(n, len(shares))


@dataclass(frozen=True)
class Distribution:
    """Per worker-on-ProPay pair: bucket paid from, weight, bonus cents; per ProPay: moved and kept cents."""

    bucket: np.ndarray
    weight: np.ndarray
    bonus_cents: np.ndarray
    unclaimed_cents: np.ndarray
    kept_by_company_cents: np.ndarray


def distribute(
    buckets: np.ndarray,
    pair_propay: np.ndarray,
    pair_worker: np.ndarray,
    pair_hours: np.ndarray,
    pair_labor_cost: np.ndarray,
    worker_role: np.ndarray,
    worker_manual_percent: np.ndarray,
    settings: CompanySettings,
) -> Distribution:
    """Share each ProPay's worker buckets among its workers (all arrays are per pair unless named per worker).

    ``buckets`` is the output of ``split_into_role_buckets``; ``pair_worker`` indexes ``worker_role``
    (index into ``WORKER_ROLES``) and ``worker_manual_percent`` (NaN when none), and orders ties.
    """
    n = len(buckets)
    role = worker_role[pair_worker]
    lead_has_own_bucket = settings.role_buckets.get("crew_lead", 0.0) > 0
    bucket = np.where((role == CREW_LEAD) & ~lead_has_own_bucket, CREW, role)
    method = settings.distribution_method
    if method == "hours":
        weight = pair_hours.astype(float)
    elif method == "wage":
        weight = pair_labor_cost.astype(float)
    elif method == "crew_lead_weighted":
        weight = pair_hours * np.where(role == CREW_LEAD, settings.lead_multiplier, 1.0)
    elif method == "equal":
        weight = np.ones(len(pair_propay))
    else:  # manual
        weight = np.nan_to_num(worker_manual_percent[pair_worker], nan=0.0)
    eligible = (pair_hours > 0) & (weight > 0)

    claimed = np.zeros((n, len(WORKER_ROLES)), dtype=bool)
    claimed[pair_propay[eligible], bucket[eligible]] = True
    worker_buckets = buckets[:, : len(WORKER_ROLES)]
    unclaimed = np.where(claimed, 0, worker_buckets).sum(axis=1)
    anyone = claimed.any(axis=1)
    receiver = np.argmax(claimed, axis=1)  # first claimed bucket in crew, crew_lead, manager, other order
    effective = np.where(claimed, worker_buckets, 0)
    effective[np.arange(n), receiver] += np.where(anyone, unclaimed, 0)
    kept = buckets[:, COMPANY] + np.where(anyone, 0, unclaimed)

    bonus = np.zeros(len(pair_propay), dtype=np.int64)
    bonus[eligible] = allocate_cents_by_group(
        pair_propay[eligible] * len(WORKER_ROLES) + bucket[eligible],
        effective.ravel(),
        weight[eligible],
        pair_worker[eligible],
    )
    return Distribution(
        bucket=bucket,
        weight=np.where(eligible, weight, 0.0),
        bonus_cents=bonus,
        unclaimed_cents=unclaimed,
        kept_by_company_cents=kept,
    )
