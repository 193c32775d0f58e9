"""The hours-budget rule on the published worked example, to the cent, plus the selection rules."""

from datetime import date

import pandas as pd
import pytest

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.propay.hours_budget import compute_hours_budget, select_opportunities
from protiv_dagster.propay.money import allocate, to_cents


def job(job_id, name, *, parent=None, budget=None, status="open", recurring=False, drive=False):
    return {
        "job_id": job_id,
        "parent_job_id": parent,
        "level": "milestone" if parent else "job",
        "name": name,
        "budget_hours": budget,
        "status": status,
        "recurring": recurring,
        "is_drive": drive,
    }


def entry(worker, job_id, hours, *, milestone=None, day=date(2026, 11, 2), drive=False):
    return {
        "worker_id": worker,
        "job_id": job_id,
        "milestone_id": milestone,
        "hours": hours,
        "work_date": day,
        "is_drive": drive,
    }


def frames(jobs, entries, wages):
    return (
        pd.DataFrame(jobs),
        pd.DataFrame(entries),
        pd.DataFrame({"worker_id": list(wages), "hourly_wage": list(wages.values())}),
    )


def test_fence_install_published_example_to_the_cent():
    # Two workers at $25/h, 30 h each; budget 80 worker-hours; 50/50 split; buckets 70/20/10.
    jobs, attendance, workers = frames(
        [job("F", "Fence install", budget=80)],
        [entry("w1", "F", 30), entry("w2", "F", 30)],
        {"w1": 25.0, "w2": 25.0},
    )
    settings = CompanySettings(worker_share=0.5, role_buckets={"crew": 0.7, "crew_lead": 0.2, "manager": 0.1})
    row = compute_hours_budget(jobs, attendance, workers, settings, "acme").iloc[0]
    assert row.actual_hours == 60
    assert row.labor_cost == 1500.00
    assert row.blended_wage == 25.0
    assert row.saved_hours == 20
    assert row.saved_amount == 500.00
    assert row.bonus_pool == 250.00
    assert (row.crew_bucket, row.crew_lead_bucket, row.manager_bucket) == (175.00, 50.00, 25.00)
    assert row.other_bucket == 0 and row.company_bucket == 0
    # The crew bucket split by hours: $87.50 each.
    assert allocate(to_cents(row.crew_bucket), [30, 30]) == [to_cents(87.5), to_cents(87.5)]
    assert row.status == "started" and row.worker_count == 2


def test_over_budget_pays_nothing_and_reports_the_overage():
    jobs, attendance, workers = frames(
        [job("F", "Fence", budget=50)], [entry("w1", "F", 30), entry("w2", "F", 30)], {"w1": 20.0, "w2": 30.0}
    )
    row = compute_hours_budget(jobs, attendance, workers, CompanySettings(), "acme").iloc[0]
    assert row.saved_hours == -10
    assert row.saved_amount == 0 and row.bonus_pool == 0
    assert row.overage_amount == 250.00  # 10 h x blended $25


def test_drive_time_is_left_out_unless_the_company_includes_it():
    jobs, attendance, workers = frames(
        [job("F", "Fence", budget=10)], [entry("w1", "F", 4), entry("w1", "F", 2, drive=True)], {"w1": 20.0}
    )
    left_out = compute_hours_budget(jobs, attendance, workers, CompanySettings(), "acme").iloc[0]
    included = compute_hours_budget(jobs, attendance, workers, CompanySettings(include_drive_time=True), "acme").iloc[0]
    assert (left_out.actual_hours, included.actual_hours) == (4, 6)


def test_one_propay_per_milestone_of_a_recurring_job_and_one_per_plain_job():
    jobs = pd.DataFrame(
        [
            job("R", "Mowing HOA", budget=100, recurring=True),
            job("R1", "Week 1", parent="R", budget=10),
            job("R2", "Week 2", parent="R", budget=12, status="completed"),
            job("J", "Patio", budget=40),
            job("J1", "Pour", parent="J"),
            job("D", "Drive Time", drive=True),
            job("N", "No budget"),
        ]
    )
    units = select_opportunities(jobs)
    assert list(units["propay_id"]) == ["J", "R1", "R2"]
    attendance = pd.DataFrame(
        [entry("w1", "J", 5, milestone="J1"), entry("w1", "R", 3, milestone="R2"), entry("w1", "N", 8)]
    )
    result = compute_hours_budget(
        jobs, attendance, pd.DataFrame({"worker_id": ["w1"], "hourly_wage": [20.0]}), CompanySettings(), "acme"
    ).set_index("propay_id")
    assert result.loc["J", "actual_hours"] == 5  # time on a milestone without its own ProPay counts for the job
    assert result.loc["R1", "status"] == "pending"
    assert result.loc["R2", "status"] == "completed"
    assert result.loc["R1", "name"] == "Mowing HOA / Week 1"


def test_settings_refuse_buckets_that_do_not_sum_to_100_percent():
    with pytest.raises(ValueError, match="sum to 100 %"):
        CompanySettings(role_buckets={"crew": 0.7, "manager": 0.2})
