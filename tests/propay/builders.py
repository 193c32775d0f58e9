"""Small builders for the engine's input frames, shaped like the cleaned tables."""

from __future__ import annotations

from datetime import date

import pandas as pd

MONDAY = date(2026, 11, 2)


def job(job_id, name=None, *, parent=None, budget=None, status="open", recurring=False, drive=False, **extra):
    return {
        "job_id": job_id,
        "parent_job_id": parent,
        "level": "milestone" if parent else "job",
        "name": name or job_id,
        "budget_hours": budget,
        "status": status,
        "recurring": recurring,
        "is_drive": drive,
        **extra,
    }


def entry(worker, job_id, hours, *, milestone=None, day=MONDAY, drive=False, **extra):
    return {
        "worker_id": worker,
        "job_id": job_id,
        "milestone_id": milestone,
        "hours": hours,
        "work_date": day,
        "is_drive": drive,
        **extra,
    }


def frames(jobs, entries, wages):
    attendance = (
        pd.DataFrame(entries)
        if entries
        else pd.DataFrame(
            {
                c: pd.Series(dtype=t)
                for c, t in (
                    ("worker_id", object),
                    ("job_id", object),
                    ("milestone_id", object),
                    ("hours", float),
                    ("work_date", object),
                    ("is_drive", bool),
                )
            }
        )
    )
    return (
        pd.DataFrame(jobs),
        attendance,
        pd.DataFrame({"worker_id": list(wages), "hourly_wage": list(wages.values())}),
    )


def lines(*rows, amounts=False):
    """Task lines (job_id, task_id, budget): budget hours, or budget $ with ``amounts``."""
    column = "budget_amount" if amounts else "budget_hours"
    return pd.DataFrame(
        [{"job_id": j, "task_id": t, "name": t, column: b} for j, t, b in rows],
        columns=["job_id", "task_id", "name", column],
    )


def assigned(*rows):
    """Assignments (job or milestone id, worker id, role)."""
    return pd.DataFrame(rows, columns=["job_id", "worker_id", "role"])


def wage_history(*rows):
    """Wage history (worker id, effective date, hourly wage)."""
    return pd.DataFrame(rows, columns=["worker_id", "effective_date", "hourly_wage"])
