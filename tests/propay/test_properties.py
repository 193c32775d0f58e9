"""Properties of the engine on random companies: cents add up, nothing is negative, the pool never
exceeds the workers' share of the savings, input order does not matter, wages scale labor cost.
(The comparison with a second, plain implementation and the §9 invariants: ``test_reference``.)"""

from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from protiv_dagster.company_settings import ROLE_BUCKETS, WORKER_ROLES, CompanySettings, exact
from protiv_dagster.propay import compute_propays
from tests.propay.builders import entry, job

WORKERS = [f"w{i}" for i in range(6)]
START = date(2026, 11, 2)


@st.composite
def companies(draw):
    """Up to 4 ProPays (hours or amount budgets) and up to 40 time entries in quarter hours, wages in
    multiples of 4 cents (so every entry's cost is whole cents and doubling is exact)."""
    propays = draw(st.integers(min_value=1, max_value=4))
    jobs = []
    for i in range(propays):
        if draw(st.booleans()):
            jobs.append(job(f"P{i}", budget=draw(st.integers(0, 200)) / 2))
        else:
            jobs.append(job(f"P{i}", budget_type="amount", budget_amount=draw(st.integers(0, 500_000)) / 100))
    jobs.append(job("OTHER"))
    entries = [
        entry(
            draw(st.sampled_from(WORKERS)),
            draw(st.sampled_from([j["job_id"] for j in jobs])),
            draw(st.integers(1, 48)) / 4,
            day=START + timedelta(days=draw(st.integers(0, 20))),
            drive=draw(st.booleans()) and draw(st.booleans()),
        )
        for _ in range(draw(st.integers(0, 40)))
    ]
    wages = {w: draw(st.integers(250, 1500)) * 4 / 100 for w in WORKERS}
    shares = draw(st.lists(st.integers(0, 10), min_size=5, max_size=5).filter(lambda s: sum(s[:4]) > 0))
    company = CompanySettings(
        worker_share=draw(st.integers(0, 10_000)) / 10_000,
        role_buckets={role: share / sum(shares) for role, share in zip(ROLE_BUCKETS, shares) if share},
        distribution_method=draw(st.sampled_from(["hours", "wage", "crew_lead_weighted", "equal", "manual"])),
        worker_roles={w: draw(st.sampled_from(WORKER_ROLES)) for w in WORKERS},
        manual_distribution={w: draw(st.integers(1, 100)) for w in WORKERS[:4]},
        include_drive_time=draw(st.booleans()),
        penalties={"P0": draw(st.integers(0, 10_000)) / 100},
    )
    attendance = pd.DataFrame(
        entries, columns=["worker_id", "job_id", "milestone_id", "hours", "work_date", "is_drive"]
    )
    workers = pd.DataFrame({"worker_id": list(wages), "hourly_wage": list(wages.values())})
    return pd.DataFrame(jobs), attendance, workers, company


def cents(value) -> Decimal:
    return Decimal(repr(float(value))).quantize(Decimal("0.01"))


@settings(deadline=None, max_examples=60)  # each example runs the engine; keep the suite quick
@given(companies())
def test_worker_bonuses_add_up_to_their_buckets_and_the_pool(company):
    """Rules §9 changed the bucket rule this checks: everyone with hours shares the crew bucket (with
    the role buckets nobody holds), and each held role bucket is split between its holders."""
    jobs, attendance, workers, company_settings = company
    result = compute_propays(jobs, attendance, workers, company_settings, "acme")
    bonuses = result.worker_bonuses
    assert (bonuses["bonus"] >= 0).all() and (bonuses["overtime_adjustment"] >= 0).all()
    for row in result.opportunities.itertuples():
        mine = bonuses[bonuses["propay_id"] == row.propay_id]
        buckets = {role: cents(getattr(row, f"{role}_bucket")) for role in ROLE_BUCKETS}
        assert sum(buckets.values()) == cents(row.bonus_pool)
        held = {
            role: mine["role_buckets_held"].fillna("").str.split(",").map(lambda r, role=role: role in r)
            for role in ("crew_lead", "manager", "other")
        }
        unheld = sum((buckets[role] for role, holders in held.items() if not holders.any()), Decimal(0))
        role_paid = sum((cents(v) for v in mine["role_bucket_share"]), Decimal(0))
        assert role_paid == sum((buckets[role] for role, holders in held.items() if holders.any()), Decimal(0))
        crew_paid = sum((cents(v) for v in mine["crew_share"]), Decimal(0))
        assert crew_paid + cents(row.kept_by_company) - buckets["company"] == buckets["crew"] + unheld
        assert cents(row.paid_to_workers) + cents(row.kept_by_company) == cents(row.bonus_pool)
        assert (mine.loc[mine["hours"] <= 0, "crew_share"] == 0).all()


@settings(deadline=None, max_examples=60)  # each example runs the engine; keep the suite quick
@given(companies())
def test_the_pool_never_exceeds_the_workers_share_of_the_savings(company):
    """Rules §9: the pool is the exact saved $ x the exact worker share, rounded once (the share is no
    longer cut to basis points), so it never exceeds that product by more than the half cent of rounding."""
    jobs, attendance, workers, company_settings = company
    for row in compute_propays(jobs, attendance, workers, company_settings, "acme").opportunities.itertuples():
        assert row.saved_amount >= 0 and row.overage_amount >= 0
        assert row.saved_amount == 0 or row.overage_amount == 0
        if row.bonus_pool == 0:
            continue
        budget = Fraction(int(row.budget_numerator), int(row.budget_denominator))
        labor = Fraction(int(row.labor_cost_numerator), int(row.labor_cost_denominator))
        hours = Fraction(int(row.actual_seconds), 3600)
        saved = (budget - hours) * labor / hours if row.budget_unit == "hours" else budget - labor
        assert Fraction(cents(row.bonus_pool)) <= max(saved, 0) * exact(company_settings.worker_share) + Fraction(
            1, 200
        )


@settings(deadline=None, max_examples=30)  # each example runs the engine twice; keep the suite quick
@given(companies(), st.randoms(use_true_random=False))
def test_permuting_input_rows_changes_nothing(company, random):
    jobs, attendance, workers, company_settings = company
    shuffle = lambda frame: frame.sample(frac=1, random_state=random.randint(0, 2**31)).reset_index(drop=True)  # noqa: E731
    base = compute_propays(jobs, attendance, workers, company_settings, "acme")
    other = compute_propays(shuffle(jobs), shuffle(attendance), shuffle(workers), company_settings, "acme")
    pd.testing.assert_frame_equal(other.opportunities, base.opportunities)
    pd.testing.assert_frame_equal(other.worker_bonuses, base.worker_bonuses)
    pd.testing.assert_frame_equal(other.overtime_weeks, base.overtime_weeks)


@settings(deadline=None, max_examples=30)  # each example runs the engine twice; keep the suite quick
@given(companies())
def test_doubling_every_wage_doubles_an_amount_budgets_labor_cost(company):
    jobs, attendance, workers, company_settings = company
    base = compute_propays(jobs, attendance, workers, company_settings, "acme").opportunities
    doubled = compute_propays(
        jobs, attendance, workers.assign(hourly_wage=workers["hourly_wage"] * 2), company_settings, "acme"
    ).opportunities
    amount = base["budget_type"] == "amount"
    assert (doubled.loc[amount, "labor_cost"].map(cents) == base.loc[amount, "labor_cost"].map(cents) * 2).all()
    assert (doubled["actual_hours"] == base["actual_hours"]).all()
