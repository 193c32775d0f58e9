"""Run a company's sync through Dagster: reference data, its weeks of attendance, then ProPays.

Every step is a real run of a job of the code location, recorded in the instance (so it shows in
the UI), with the company's dynamic partition added first. Used by the CLI and the benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from protiv_dagster.automation.syncs import run_failure_message
from protiv_dagster.partitions import company_partitions, company_week_range_tags, week_keys


@dataclass(frozen=True)
class SyncStep:
    job_name: str
    partition_key: str | None  # None for a run over a partition range (given by ``tags``)
    label: str
    tags: dict[str, str] = field(default_factory=dict)


# The run's events go to the instance (and the UI); the terminal only needs warnings and errors.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


class SyncFailed(RuntimeError):
    pass


def plan_sync(company_id: str, first_day: date, last_day: date) -> list[SyncStep]:
    """The runs that bring a company's tables up to date for ``first_day``..``last_day``: workers and
    jobs, every week in one run (one vendor query for the window), then ProPays."""
    weeks = week_keys(first_day, last_day)
    if not weeks:
        # A connection stored by an older version may hold a pull date after today (connect refuses
        # one now): nothing can be synced from it until an admin sets a pull date in the past.
        raise SyncFailed(
            f"company {company_id!r} has nothing to sync: its attendance pull date {first_day} is after {last_day}; "
            "an admin must reconnect it with a pull date that is not in the future"
        )
    return [
        SyncStep("sync_company_reference", company_id, "workers and jobs"),
        SyncStep(
            "sync_company_week", None,
            f"attendance, week of {weeks[0]}" if len(weeks) == 1 else f"attendance, {len(weeks)} weeks from {weeks[0]}",
            tags=company_week_range_tags(company_id, weeks[0], weeks[-1]),
        ),
        SyncStep("compute_propay", company_id, "ProPay opportunities"),
    ]


def sync_company(
    defs: dg.Definitions,
    instance: dg.DagsterInstance,
    company_id: str,
    first_day: date,
    last_day: date,
    on_step: Callable[[SyncStep, str], None] | None = None,
    trigger: str = "initial_sync",
) -> list[str]:
    """Run every step in order; returns the run ids. Stops at the first failed run with its error."""
    if not instance.has_dynamic_partition(company_partitions.name, company_id):
        instance.add_dynamic_partitions(company_partitions.name, [company_id])
    run_ids = []
    for step in plan_sync(company_id, first_day, last_day):
        if on_step:
            on_step(step, "started")
        result = defs.resolve_job_def(step.job_name).execute_in_process(
            instance=instance,
            partition_key=step.partition_key,
            raise_on_error=False,
            run_config=QUIET_CONSOLE,
            # The run adds its provider tag itself (assets/common.py), as UI-launched runs do.
            tags={"protiv/company": company_id, "protiv/trigger": trigger, **step.tags},
        )
        run_ids.append(result.run_id)
        if not result.success:
            message = run_failure_message(instance, result.run_id)
            raise SyncFailed(f"{step.label} failed for company {company_id!r} (run {result.run_id}): {message}")
        if on_step:
            on_step(step, "done")
    return run_ids
