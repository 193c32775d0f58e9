"""Benchmark: the pure ProPay engine on a synthetic company of 100,000 ProPays and 5,000,000 time entries.

No Dagster, no warehouse: the frames are generated in memory with the cleaned tables' columns and
dtypes (ids as text, work dates as ``datetime.date``), then ``compute_propays`` runs once. Prints the
wall time of the engine alone, the peak memory traced during it (tracemalloc: numpy and pandas
buffers) and the process's peak RSS.

    .venv/bin/python bench/propay_engine.py [--propays 100000] [--entries 5000000] [--workers 10000]
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from datetime import date

import numpy as np
import pandas as pd

from protiv_dagster.company_settings import CompanySettings
from protiv_dagster.propay import compute_propays

SEED = 7
BUDGET_TYPES = ("hours", "amount", "contract_price", "rate")


def generate(propays: int, entries: int, workers: int, rng: np.random.Generator):
    """Jobs (a quarter recurring with 4 milestones each), workers with wages, and time entries over a year."""
    recurring_jobs = propays // 4 // 4
    plain_jobs = propays - recurring_jobs * 4
    job_ids = np.array([f"J{i}" for i in range(plain_jobs + recurring_jobs)], dtype=object)
    budget_type = rng.choice(BUDGET_TYPES, size=len(job_ids))
    top = pd.DataFrame(
        {
            "job_id": job_ids,
            "parent_job_id": None,
            "level": "job",
            "name": [f"Job {i}" for i in range(len(job_ids))],
            "budget_hours": rng.integers(10, 400, len(job_ids)).astype(float),
            "budget_amount": rng.integers(500, 20_000, len(job_ids)).astype(float),
            "contract_price": rng.integers(2_000, 60_000, len(job_ids)).astype(float),
            "labor_budget_percent": 35.0,
            "rate": 2.5,
            "quantity": rng.integers(200, 4_000, len(job_ids)).astype(float),
            "budget_type": budget_type,
            "service_type": rng.choice(["Install", "Maintenance", "Warranty"], size=len(job_ids), p=[0.6, 0.38, 0.02]),
            "status": rng.choice(["open", "completed", "canceled"], size=len(job_ids), p=[0.6, 0.35, 0.05]),
            "recurring": np.arange(len(job_ids)) >= plain_jobs,
            "is_drive": False,
            "active": True,
        }
    )
    parents = np.repeat(job_ids[plain_jobs:], 4)
    milestones = pd.DataFrame(
        {
            "job_id": [f"{p}-M{k}" for p, k in zip(parents, np.tile(np.arange(4), recurring_jobs))],
            "parent_job_id": parents,
            "level": "milestone",
            "name": [f"Visit {k}" for k in np.tile(np.arange(4), recurring_jobs)],
            "budget_hours": rng.integers(4, 40, len(parents)).astype(float),
            "budget_type": "hours",
            "status": "open",
            "recurring": False,
            "is_drive": False,
            "active": True,
        }
    )
    drive = pd.DataFrame(
        [
            {
                "job_id": "DRIVE",
                "parent_job_id": None,
                "level": "job",
                "name": "Drive Time",
                "status": "open",
                "recurring": False,
                "is_drive": True,
                "active": True,
            }
        ]
    )
    jobs = pd.concat([top, milestones, drive], ignore_index=True)

    worker_ids = np.array([f"W{i}" for i in range(workers)], dtype=object)
    worker_table = pd.DataFrame({"worker_id": worker_ids, "hourly_wage": np.round(rng.uniform(16, 45, workers), 2)})

    # Each ProPay gets a crew of a few workers; entries land on ProPays, some on drive time.
    unit_job = np.concatenate([job_ids[:plain_jobs], parents])
    unit_milestone = np.concatenate(
        [np.full(plain_jobs, None, dtype=object), milestones["job_id"].to_numpy(dtype=object)]
    )
    pick = rng.integers(0, len(unit_job), entries)
    drive_rows = rng.random(entries) < 0.05
    days = pd.date_range("2026-01-01", periods=365, freq="D").date
    attendance = pd.DataFrame(
        {
            "entry_id": np.arange(entries).astype(str),
            "worker_id": worker_ids[(pick * 7 + rng.integers(0, 5, entries)) % workers],
            "job_id": np.where(drive_rows, "DRIVE", unit_job[pick]),
            "milestone_id": np.where(drive_rows, None, unit_milestone[pick]),
            "work_date": days[(pick % 300) + rng.integers(0, 60, entries)],
            "hours": np.round(rng.uniform(0.25, 9, entries) * 4) / 4,
            "is_drive": drive_rows,
        }
    )
    return jobs, attendance, worker_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--propays", type=int, default=100_000)
    parser.add_argument("--entries", type=int, default=5_000_000)
    parser.add_argument("--workers", type=int, default=10_000)
    args = parser.parse_args()
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()
    jobs, attendance, workers = generate(args.propays, args.entries, args.workers, rng)
    print(
        f"generated {len(jobs):,} jobs, {len(attendance):,} entries, {len(workers):,} workers "
        f"in {time.perf_counter() - started:.1f} s"
    )
    settings = CompanySettings(
        worker_share=0.5,
        role_buckets={"crew": 0.7, "crew_lead": 0.2, "manager": 0.1},
        distribution_method="crew_lead_weighted",
        worker_roles={f"W{i}": "crew_lead" for i in range(0, args.workers, 5)}
        | {f"W{i}": "manager" for i in range(1, args.workers, 50)},
        launch_date=date(2026, 1, 15),
        exclusions={"service_types": ["Warranty"], "name_patterns": ["Job 1*9"]},
        budgets_include_burden=True,
        burden_percent=18,
        overtime_daily_hours=None,
    )
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    tracemalloc.start()
    started = time.perf_counter()
    result = compute_propays(jobs, attendance, workers, settings, "bench-company")
    wall = time.perf_counter() - started
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # tracemalloc slows allocation-heavy code; time a second, untraced run too.
    started = time.perf_counter()
    compute_propays(jobs, attendance, workers, settings, "bench-company")
    wall_untraced = time.perf_counter() - started
    rss_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    opportunities = result.opportunities
    print(
        f"ProPays: {len(opportunities):,} ({opportunities['exclusion_reason'].notna().sum():,} excluded, "
        f"{(opportunities['bonus_pool'] > 0).sum():,} with a pool); worker rows: {len(result.worker_bonuses):,}; "
        f"overtime weeks: {len(result.overtime_weeks):,}"
    )
    print(f"jobs without a ProPay (rows with the reason): {len(result.jobs_without_propay):,}")
    print(
        f"bonus pool ${opportunities['bonus_pool'].sum():,.2f}, paid ${result.worker_bonuses['bonus'].sum():,.2f}, "
        f"overtime adjustment ${result.worker_bonuses['overtime_adjustment'].sum():,.2f}"
    )
    print(f"engine wall time: {wall:.2f} s with tracemalloc, {wall_untraced:.2f} s without")
    print(f"peak traced memory during the engine: {traced_peak / 2**20:,.0f} MiB")
    print(f"peak RSS of the process: {rss_peak:,.0f} MiB (after generating the input: {rss_before:,.0f} MiB)")


if __name__ == "__main__":
    main()
