"""ProPays with an hours budget: which jobs and milestones get one, and what each has saved.

Pure pandas over the cleaned tables (``jobs``, ``attendance``, ``workers``) and the company's
settings; no Dagster, HTTP or SQL here. Rules (see the project's ProPay rules brief):

- A non-recurring job gets one ProPay; a recurring job one per milestone. A milestone with its own
  budget gets its own ProPay even in a non-recurring job; time on a milestone without a ProPay
  counts towards its job's ProPay. Drive jobs never get one.
- Hours are worker-hours; a worker's labor cost is hours x that worker's wage; the blended wage is
  labor cost / hours. Drive time is left out unless the company includes it.
- saved $ = (budget h - actual h) x blended wage when under budget; over budget there is no bonus and
  the overage is reported. bonus pool = saved $ x worker share, then split into role buckets by the
  largest-remainder rule so the buckets add up to the pool to the cent.
- Status: canceled or completed from the source; otherwise started once a minute is clocked,
  pending before.
"""

from __future__ import annotations

import pandas as pd

from protiv_dagster.propay.money import allocate, to_cents
from protiv_dagster.company_settings import ROLE_BUCKETS, CompanySettings

OPPORTUNITY_COLUMNS = [
    "company_id", "propay_id", "job_id", "milestone_id", "name", "budget_type", "budget_hours",
    "actual_hours", "labor_cost", "blended_wage", "saved_hours", "saved_amount", "overage_amount",
    "bonus_pool", *(f"{role}_bucket" for role in ROLE_BUCKETS), "status", "worker_count",
    "first_work_date", "last_work_date",
]
ONE_MINUTE = 1 / 60


def select_opportunities(jobs: pd.DataFrame) -> pd.DataFrame:
    """The ProPay units of a company: columns propay_id, job_id, milestone_id, name, budget_hours, source_status."""
    work = jobs[~jobs["is_drive"]]
    top = work[work["level"] == "job"].set_index("job_id")
    milestones = work[work["level"] == "milestone"]
    milestones = milestones[milestones["parent_job_id"].isin(top.index)]
    budgeted = milestones[milestones["budget_hours"].notna()]
    per_milestone = pd.DataFrame(
        {
            "propay_id": budgeted["job_id"],
            "job_id": budgeted["parent_job_id"],
            "milestone_id": budgeted["job_id"],
            "name": budgeted["parent_job_id"].map(top["name"]) + " / " + budgeted["name"],
            "budget_hours": budgeted["budget_hours"],
            "source_status": budgeted["status"],
        }
    )
    per_job_rows = top[top["budget_hours"].notna() & ~top["recurring"]]
    per_job = pd.DataFrame(
        {
            "propay_id": per_job_rows.index,
            "job_id": per_job_rows.index,
            "milestone_id": None,
            "name": per_job_rows["name"].values,
            "budget_hours": per_job_rows["budget_hours"].values,
            "source_status": per_job_rows["status"].values,
        }
    )
    return pd.concat([per_milestone, per_job], ignore_index=True).sort_values("propay_id", ignore_index=True)


def assign_attendance(attendance: pd.DataFrame, opportunities: pd.DataFrame) -> pd.Series:
    """The propay_id each attendance row counts towards (NA when none)."""
    by_milestone = opportunities.dropna(subset=["milestone_id"]).set_index("milestone_id")["propay_id"]
    by_job = opportunities[opportunities["milestone_id"].isna()].set_index("job_id")["propay_id"]
    via_milestone = attendance["milestone_id"].map(by_milestone)
    return via_milestone.where(via_milestone.notna(), attendance["job_id"].map(by_job))


def compute_hours_budget(
    jobs: pd.DataFrame,
    attendance: pd.DataFrame,
    workers: pd.DataFrame,
    settings: CompanySettings,
    company_id: str,
) -> pd.DataFrame:
    """One row per ProPay with actuals, savings, pool and buckets (columns ``OPPORTUNITY_COLUMNS``)."""
    opportunities = select_opportunities(jobs)
    time = attendance if settings.include_drive_time else attendance[~attendance["is_drive"]]
    time = time.assign(propay_id=assign_attendance(time, opportunities)).dropna(subset=["propay_id"])
    wages = workers.set_index("worker_id")["hourly_wage"].astype(float)
    time = time.assign(labor_cost=time["hours"] * time["worker_id"].map(wages).fillna(0.0))
    actuals = time.groupby("propay_id").agg(
        actual_hours=("hours", "sum"),
        labor_cost=("labor_cost", "sum"),
        worker_count=("worker_id", "nunique"),
        first_work_date=("work_date", "min"),
        last_work_date=("work_date", "max"),
    )
    rows = []
    for unit in opportunities.itertuples(index=False):
        actual = actuals.loc[unit.propay_id] if unit.propay_id in actuals.index else None
        hours = float(actual.actual_hours) if actual is not None else 0.0
        cost = to_cents(actual.labor_cost) if actual is not None else to_cents(0)
        blended = float(cost) / hours if hours > 0 else None
        saved_hours = float(unit.budget_hours) - hours
        saved_amount = to_cents(max(saved_hours, 0.0) * blended) if blended is not None else to_cents(0)
        overage = to_cents(max(-saved_hours, 0.0) * blended) if blended is not None else to_cents(0)
        pool = to_cents(saved_amount * to_cents(settings.worker_share * 100) / 100)
        buckets = allocate(pool, [settings.role_buckets.get(role, 0.0) for role in ROLE_BUCKETS])
        if unit.source_status in ("canceled", "completed"):
            status = unit.source_status
        else:
            status = "started" if hours >= ONE_MINUTE else "pending"
        rows.append(
            {
                "company_id": company_id,
                "propay_id": unit.propay_id,
                "job_id": unit.job_id,
                "milestone_id": unit.milestone_id,
                "name": unit.name,
                "budget_type": "hours",
                "budget_hours": float(unit.budget_hours),
                "actual_hours": round(hours, 6),
                "labor_cost": float(cost),
                "blended_wage": round(blended, 4) if blended is not None else None,
                "saved_hours": round(saved_hours, 6),
                "saved_amount": float(saved_amount),
                "overage_amount": float(overage),
                "bonus_pool": float(pool),
                **{f"{role}_bucket": float(amount) for role, amount in zip(ROLE_BUCKETS, buckets)},
                "status": status,
                "worker_count": int(actual.worker_count) if actual is not None else 0,
                "first_work_date": actual.first_work_date if actual is not None else None,
                "last_work_date": actual.last_work_date if actual is not None else None,
            }
        )
    return pd.DataFrame(rows, columns=OPPORTUNITY_COLUMNS)
