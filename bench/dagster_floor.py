"""Benchmark: what Dagster alone costs an initial sync, with assets that do no work.

Issue 20 compares a small company's initial sync with dlt's. Ours is three Dagster runs on the
laptop's instance (protiv_dagster/cli/common.py): workers and jobs by company, the weeks of attendance
by company-week in one run over a partition range, then the ProPay tables by company. This script runs
the same three runs, on the same partitions definitions and instance, with assets whose bodies return
at once, in three shapes:

- ``bare``: one asset a run, no asset checks: the least a sync of three runs can cost;
- ``ours``: the asset and check counts of our jobs (2 assets and 5 checks; raw and cleaned attendance,
  one check; 5 ProPay tables and a check each), so as many events as a real sync stores;
- ``one run``: the same materializations and check results (the assets' partitions: the company's,
  and each week's for raw and cleaned attendance) logged by a single op of a single run, a company
  partition of an op job: what a sync as one run would cost Dagster, the design issue 20 weighs
  against its three partitionings (bench/RESULTS.md).

The difference between ``ours`` and a real sync (bench/initial_sync.py) is our own work: vendor
requests, mapping, validation, warehouse transactions.

    .venv/bin/python bench/dagster_floor.py [--rounds 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
from machine import describe

from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.partitions import (
    COMPANY_PARTITIONS_NAME,
    company_partitions,
    company_week_partitions,
    company_week_range_tags,
    week_keys,
)
from protiv_dagster.sync.company import QUIET_CONSOLE

DAYS = 14


def passing_checks(asset: str, count: int) -> list[dg.AssetCheckSpec]:
    return [dg.AssetCheckSpec(f"check_{n}", asset=asset) for n in range(count)]


def no_work(specs: list[dg.AssetSpec], checks: list[dg.AssetCheckSpec], partitions, name: str):
    """A multi-asset materializing ``specs`` and passing ``checks`` without doing anything."""

    @dg.multi_asset(name=name, specs=specs, check_specs=checks, partitions_def=partitions, can_subset=False)
    def _assets():
        for spec in specs:
            yield dg.MaterializeResult(asset_key=spec.key)
        for check in checks:
            yield dg.AssetCheckResult(asset_key=check.asset_key, check_name=check.name, passed=True)

    return _assets


def shapes() -> dict[str, dg.Definitions]:
    """Each shape's three jobs: reference, weeks, ProPays."""
    defs = {}
    for shape in ("bare", "ours"):
        ours = shape == "ours"
        reference = [dg.AssetSpec(f"{shape}_workers"), *([dg.AssetSpec(f"{shape}_jobs")] if ours else [])]
        weeks = [dg.AssetSpec(f"{shape}_raw_timesheets"), *([dg.AssetSpec(f"{shape}_attendance")] if ours else [])]
        propays = [dg.AssetSpec(f"{shape}_propay_{n}") for n in range(5 if ours else 1)]
        steps = {
            "reference": no_work(
                reference,
                passing_checks(f"{shape}_workers", 3) + passing_checks(f"{shape}_jobs", 2) if ours else [],
                company_partitions,
                f"{shape}_reference",
            ),
            "weeks": no_work(
                weeks,
                passing_checks(f"{shape}_attendance", 1) if ours else [],
                company_week_partitions,
                f"{shape}_weeks",
            ),
            "propays": no_work(
                propays,
                [check for spec in propays for check in passing_checks(spec.key.path[0], 1)] if ours else [],
                company_partitions,
                f"{shape}_propays",
            ),
        }
        defs[shape] = dg.Definitions(
            assets=list(steps.values()),
            jobs=[dg.define_asset_job(step, selection=[asset]) for step, asset in steps.items()],
        )
    defs["one run"] = one_run()
    return defs


def one_run() -> dg.Definitions:
    """The ``ours`` shape's materializations and check results, logged by one op in one run."""
    company_assets = ["one_workers", "one_jobs", *(f"one_propay_{n}" for n in range(5))]
    week_assets = ["one_raw_timesheets", "one_attendance"]
    checks = {"one_workers": 3, "one_jobs": 2, "one_attendance": 1, **{f"one_propay_{n}": 1 for n in range(5)}}

    @dg.op(name="one_sync")
    def one_sync(context) -> None:
        company = context.partition_key
        today = date.today()
        weeks = week_keys(today - timedelta(days=DAYS), today)
        for key in company_assets:
            context.log_event(dg.AssetMaterialization(key, partition=company))
        for key in week_assets:
            for week in weeks:
                context.log_event(dg.AssetMaterialization(key, partition=f"{company}|{week}"))
        for key, count in checks.items():
            for n in range(count):
                context.log_event(
                    dg.AssetCheckEvaluation(asset_key=dg.AssetKey(key), check_name=f"check_{n}", passed=True)
                )

    @dg.job(name="one_sync", partitions_def=company_partitions)
    def one_sync_job() -> None:
        one_sync()

    return dg.Definitions(jobs=[one_sync_job])


def sync(defs: dg.Definitions, instance: dg.DagsterInstance, company: str) -> list[str]:
    """The three runs of an initial sync over the last 14 days, as protiv_dagster.sync.company runs them
    (its console quiet too); the ``one run`` shape's single run instead."""
    today = date.today()
    weeks = week_keys(today - timedelta(days=DAYS), today)
    instance.add_dynamic_partitions(COMPANY_PARTITIONS_NAME, [company])
    if "one_sync" in {job.name for job in defs.jobs or []}:
        result = defs.resolve_job_def("one_sync").execute_in_process(
            instance=instance, partition_key=company, run_config=QUIET_CONSOLE
        )
        return [result.run_id]
    runs = [
        defs.resolve_job_def("reference").execute_in_process(
            instance=instance, partition_key=company, run_config=QUIET_CONSOLE
        ),
        defs.resolve_job_def("weeks").execute_in_process(
            instance=instance, tags=company_week_range_tags(company, weeks[0], weeks[-1]), run_config=QUIET_CONSOLE
        ),
        defs.resolve_job_def("propays").execute_in_process(
            instance=instance, partition_key=company, run_config=QUIET_CONSOLE
        ),
    ]
    return [run.run_id for run in runs]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="syncs per shape; the first (warm-up) is not counted")
    args = parser.parse_args()
    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    print(f"machine: {describe()}")
    for shape, defs in shapes().items():
        with tempfile.TemporaryDirectory(prefix="protiv-floor-") as folder:
            home = Path(folder)
            (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)
            os.environ["DAGSTER_HOME"] = str(home)
            with dg.DagsterInstance.get() as instance:
                walls, events = [], []
                for number in range(args.rounds):
                    started = time.perf_counter()
                    run_ids = sync(defs, instance, f"company-{number}")
                    walls.append(time.perf_counter() - started)
                    events = [len(instance.all_logs(run_id)) for run_id in run_ids]
        counted = walls[1:] or walls
        runs = "one run" if len(events) == 1 else "three runs"
        print(
            f"{shape:>7}: {runs} {statistics.median(counted):.3f} s median wall over {len(counted)} syncs "
            f"(min {min(counted):.3f}, max {max(counted):.3f}); events per run {events}, {sum(events)} in all"
        )


if __name__ == "__main__":
    main()
