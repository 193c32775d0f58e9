"""Every worked example the help centre publishes (rules §5), through the public API
``compute_propays``, to the cent."""

from datetime import timedelta

import pandas as pd

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.propay import compute_propays
from tests.propay.builders import MONDAY, assigned, entry, frames, job, lines

SEVENTY_TWENTY_TEN = {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1}


def one(result):
    assert len(result.opportunities) == 1
    return result.opportunities.iloc[0]


def bonuses(result):
    return result.worker_bonuses.set_index("worker_id")["bonus"].to_dict()


def fence():
    # Two workers at $25/h, 30 h each (60 worker-hours, $1,500); budget 80 worker-hours.
    return frames(
        [job("F", "Fence install", budget=80)], [entry("w1", "F", 30), entry("w2", "F", 30)], {"w1": 25.0, "w2": 25.0}
    )


def test_fence_install_hours_budget():
    # Saved 20 h x $25 = $500; 50/50 -> $250; buckets 70/20/10 -> $175 / $50 / $25.
    row = one(compute_propays(*fence(), CompanySettings(worker_share=0.5, role_buckets=SEVENTY_TWENTY_TEN), "acme"))
    assert (row.actual_hours, row.labor_cost, row.blended_wage) == (60, 1500.00, 25.0)
    assert (row.saved_hours, row.saved_amount, row.bonus_pool) == (20, 500.00, 250.00)
    assert (row.crew_bucket, row.crew_lead_bucket, row.manager_bucket) == (175.00, 50.00, 25.00)
    assert (row.other_bucket, row.company_bucket, row.efficiency) == (0, 0, round(80 / 60, 6))
    assert (row.actual_seconds, row.budget_numerator, row.budget_denominator) == (216_000, 80, 1)
    assert (row.labor_cost_numerator, row.labor_cost_denominator, row.pay_state) == (1500, 1, "provisional")


def test_fence_install_with_a_lead_and_a_manager_assigned_by_the_source():
    # The two crew members share the crew bucket ($87.50 each); the lead and the manager the source
    # assigns to the job, without hours on it, get their buckets ($50, $25).
    result = compute_propays(
        *fence(),
        CompanySettings(role_buckets=SEVENTY_TWENTY_TEN),
        "acme",
        assignments=assigned(("F", "lead", "crew_lead"), ("F", "boss", "manager")),
    )
    assert bonuses(result) == {"boss": 25.00, "lead": 50.00, "w1": 87.50, "w2": 87.50}
    rows = result.worker_bonuses.set_index("worker_id")
    assert rows.loc["lead", "role_buckets_held"] == "crew_lead" and rows.loc["lead", "seconds"] == 0
    assert (rows.loc["w1", "crew_share"], rows.loc["w1", "role_bucket_share"]) == (87.50, 0)
    row = one(result)
    assert (row.paid_to_workers, row.kept_by_company, row.unclaimed_amount) == (250.00, 0, 0)


def test_fence_install_with_only_the_two_crew_members():
    # Nobody holds the lead and manager buckets: they go into the crew bucket, $125 each.
    result = compute_propays(*fence(), CompanySettings(role_buckets=SEVENTY_TWENTY_TEN), "acme")
    assert bonuses(result) == {"w1": 125.00, "w2": 125.00}
    assert one(result).unclaimed_amount == 75.00


def test_hvac_amount_budget():
    # Budget $5,000; four workers, wages summing to $90/h, 45 h each: actual $4,050, saved $950, pool $475.
    wages = {"w1": 20.0, "w2": 22.0, "w3": 23.0, "w4": 25.0}
    inputs = frames(
        [job("H", "HVAC", budget_type="amount", budget_amount=5000.0)], [entry(w, "H", 45) for w in wages], wages
    )
    row = one(compute_propays(*inputs, CompanySettings(role_buckets=SEVENTY_TWENTY_TEN), "acme"))
    assert (row.budget_type, row.budget_amount, row.labor_cost) == ("amount", 5000.00, 4050.00)
    assert (row.saved_amount, row.bonus_pool) == (950.00, 475.00)
    assert (row.crew_bucket, row.crew_lead_bucket, row.manager_bucket) == (332.50, 95.00, 47.50)


def test_hardwood_floor_rate_budget():
    # $2.50 per sq ft x 1,200 sq ft = $3,000; three workers, wages summing to $75/h, 35 h each: $2,625.
    wages = {"w1": 20.0, "w2": 25.0, "w3": 30.0}
    inputs = frames(
        [job("W", "Hardwood floor", budget_type="rate", rate=2.5, quantity=1200.0)],
        [entry(w, "W", 35) for w in wages],
        wages,
    )
    row = one(
        compute_propays(*inputs, CompanySettings(role_buckets={"crew": 0.8, "crew_lead": 0.1, "manager": 0.1}), "acme")
    )
    assert (row.budget_amount, row.labor_cost, row.saved_amount, row.bonus_pool) == (3000.00, 2625.00, 375.00, 187.50)
    assert (row.crew_bucket, row.crew_lead_bucket, row.manager_bucket) == (150.00, 18.75, 18.75)


def test_task_hours_net_one_hour():
    # Drywall 8 vs 6 (+2), paint 12 vs 14 (-2), trim 6 vs 5 (+1): the over-budget line is netted, +1 h.
    tasks = lines(("T", "drywall", 8.0), ("T", "paint", 12.0), ("T", "trim", 6.0))
    inputs = frames(
        [job("T", "Drywall, paint, trim", budget_type="task_hours")],
        [
            entry("w1", "T", 6, task_id="drywall"),
            entry("w1", "T", 14, task_id="paint"),
            entry("w1", "T", 5, task_id="trim"),
        ],
        {"w1": 20.0},
    )
    row = one(compute_propays(*inputs, CompanySettings(), "acme", task_lines=tasks))
    assert (row.budget_hours, row.actual_hours, row.saved_hours) == (26, 25, 1)
    assert (row.saved_amount, row.bonus_pool) == (20.00, 10.00)


def saved_exactly(dollars, worker_hours):
    """Jobs/attendance where a lone ProPay saves exactly ``dollars`` at $10/h with the given worker hours."""
    wages = {w: 10.0 for w in worker_hours}
    budget = sum(worker_hours.values()) + dollars / 10
    return frames([job("P", budget=budget)], [entry(w, "P", h) for w, h in worker_hours.items()], wages)


def test_distribution_by_hours():
    # Pool $500 over 100 crew hours = $5/h: 20 h $100, 30 h $150, 50 h $250.
    result = compute_propays(
        *saved_exactly(500, {"a": 20, "b": 30, "c": 50}), CompanySettings(worker_share=1.0), "acme"
    )
    assert one(result).bonus_pool == 500.00
    assert bonuses(result) == {"a": 100.00, "b": 150.00, "c": 250.00}


def test_distribution_equal():
    result = compute_propays(
        *saved_exactly(300, {"a": 10, "b": 20, "c": 30}),
        CompanySettings(worker_share=1.0, distribution_method="equal"),
        "acme",
    )
    assert bonuses(result) == {"a": 100.00, "b": 100.00, "c": 100.00}


def test_distribution_crew_lead_weighted():
    # $300 over 3.5 units (equal hours, the lead 1.5x): 85.714.. twice and 128.571..; the published
    # figures $85.71 / $85.71 / $128.57 add up to $299.99, so the largest-remainder rule gives the
    # left-over cent to the first of the two tied crew members (smaller worker id).
    settings = CompanySettings(
        worker_share=1.0, distribution_method="crew_lead_weighted", worker_roles={"c": "crew_lead"}
    )
    result = compute_propays(*saved_exactly(300, {"a": 10, "b": 10, "c": 10}), settings, "acme")
    paid = bonuses(result)
    assert paid == {"a": 85.72, "b": 85.71, "c": 128.57}
    assert round(sum(paid.values()), 2) == 300.00
    lead = result.worker_bonuses.set_index("worker_id").loc["c"]
    # The lead holds the (empty) lead bucket and shares the crew bucket at 1.5x.
    assert (lead.crew_share, lead.role_bucket_share, lead.role_buckets_held) == (128.57, 0, "crew_lead")


def test_overtime_adjustment():
    # $20/h worker, 50 h in the week (10 h overtime), bonus $200: $200 / 50 h = $4/h, half = $2/h, x 10 h = $20.00.
    week = [MONDAY + timedelta(days=d) for d in range(5)]
    inputs = frames(
        [job("P", budget=20), job("Other")],
        [entry("w1", "P", 2, day=d) for d in week] + [entry("w1", "Other", 8, day=d) for d in week],
        {"w1": 20.0},
    )
    result = compute_propays(*inputs, CompanySettings(worker_share=1.0), "acme")
    assert bonuses(result) == {"w1": 200.00}
    assert result.worker_bonuses["overtime_adjustment"].tolist() == [20.00]
    assert one(result).overtime_adjustment == 20.00
    week_row = result.overtime_weeks.iloc[0]
    assert (week_row.week_start, week_row.hours_worked, week_row.overtime_hours) == (MONDAY, 50, 10)
    assert (week_row.bonus_in_week, week_row.overtime_adjustment) == (200.00, 20.00)
    assert (week_row.seconds_worked, week_row.overtime_seconds, week_row.settings_version) == (180_000, 36_000, 1)
    assert isinstance(result.jobs_without_propay, pd.DataFrame)
