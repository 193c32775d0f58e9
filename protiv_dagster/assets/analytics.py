"""The analysts' marts: the dbt project ``protiv_dagster/analytics`` as Dagster assets.

Each mart is a view in the schema ``analytics`` over the ProPay tables, downstream of them in the
lineage graph (the dbt sources name the assets that write their tables) and rebuilt after they
update. The dbt tests are the marts' asset checks.
"""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import Any

import dagster as dg
from dagster import AssetExecutionContext
from packaging.version import Version

from protiv_dagster.analytics import (
    PROJECT_DIR,
    build_target,
    dbt_environment,
    ensure_manifest,
    how_dbt_parsed,
    keep_the_parse,
)
from protiv_dagster.assets.dbt_library import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    dbt_assets,
)
from protiv_dagster.automation.conditions import ANALYTICS_GROUP, MARTS_FOLLOW_PROPAYS
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.warehouse import gate

GROUP = ANALYTICS_GROUP
# What dbt-duckdb prints when another process holds the warehouse file.
_DUCKDB_LOCKED = re.compile(r"Could not set lock on file|Conflicting lock is held", re.IGNORECASE)
# How many times a dbt build that found the DuckDB file locked is run again, and the first wait.
LOCKED_ATTEMPTS = 6
LOCKED_FIRST_WAIT_SECONDS = 1.0


class AnalyticsTranslator(DagsterDbtTranslator):
    """Group ``analytics``, rebuilt after every ProPay update of any company (the marts are not
    partitioned), not once per company partition (``MARTS_FOLLOW_PROPAYS``)."""

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return GROUP

    def get_automation_condition(self, dbt_resource_props: Mapping[str, Any]) -> dg.AutomationCondition | None:
        return MARTS_FOLLOW_PROPAYS


# The dbt tests on the ProPay tables (sources) run in every build and fail it, but are not asset
# checks: with enable_source_tests_as_checks, dagster-dbt 0.29 attaches them to propay_opportunities,
# propay_worker_bonuses and workers, and Dagster runs an asset's checks wherever the asset runs, so
# every company's compute_propay and sync_company_reference run would carry this dbt step testing
# every company's rows. A test over two sources (relationships_within_company) would not be one.
TRANSLATOR = AnalyticsTranslator(DagsterDbtTranslatorSettings())


class InstalledDbt(DbtCliResource):
    """dbt-core as installed beside this code. dagster-dbt learns the dbt version by starting
    ``dbt --version`` once per resource, a second dbt process of some 2.5 s before each build (every
    run builds its resource anew); the installed package's metadata says the same at once."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(importlib.metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: Sequence[str]) -> Any:
        """No dbt adapter in this process. dagster-dbt opens one beside the dbt process only to fetch
        column metadata and row counts (``fetch_column_metadata``, ``fetch_row_counts``), which the
        marts do not ask for; building it loaded all of dbt-core here (``dbt_library``) and read the
        profile, password included, a second time."""
        return None


def dbt_cli(warehouse: Warehouse) -> tuple[DbtCliResource, dict[str, str]]:
    """dbt on ``warehouse`` and the environment its process needs (``dbt_environment``)."""
    env = dbt_environment(warehouse.store)
    resource = InstalledDbt(
        project_dir=str(PROJECT_DIR),
        profiles_dir=str(PROJECT_DIR),
        target=env["PROTIV_DBT_TARGET"],
        dbt_executable=str(Path(sys.executable).with_name("dbt")),
    )
    return resource, env


@contextmanager
def environment(variables: Mapping[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment for the block only. dagster-dbt hands its own
    environment to the dbt process (and reads the profile in process), so the warehouse's
    connection details, password included, are there while dbt runs and gone afterwards."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def wait_for_the_file(seconds: float) -> None:
    time.sleep(seconds)


def stop_dbt(process: subprocess.Popen, grace_seconds: float = 10.0) -> None:
    """End a dbt process this build started: SIGTERM (dbt closes its connections), then SIGKILL."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_seconds)


@dbt_assets(manifest=ensure_manifest(), dagster_dbt_translator=TRANSLATOR, name="analytics_marts")
def analytics_marts(context: AssetExecutionContext, warehouse: Warehouse) -> Iterator[Any]:
    """The analysts' marts (schema ``analytics``): ``dbt build`` of the selected models and their
    tests, which report as asset checks.

    A DuckDB warehouse takes one writing process, and the views are written into the warehouse file
    itself: like every warehouse write (``WarehouseStore._open_duckdb``, "stayed locked"), a build
    that finds the file held by another process waits and runs again, a bounded number of times."""
    dbt, env = dbt_cli(warehouse)
    wait = LOCKED_FIRST_WAIT_SECONDS
    for attempt in range(1, LOCKED_ATTEMPTS + 1):
        # Started from the last build's parsed project: a full parse is a third of a build.
        target = build_target(f"{context.op_execution_context.op.name}-{context.run.run_id[:8]}")
        invocation = None
        try:
            # The dbt process opens the DuckDB file: this project's other processes stay out meanwhile
            # (warehouse/gate.py says why DuckDB's own lock is not enough).
            with environment(env), warehouse.store.gated():
                invocation = dbt.cli(["build"], context=context, raise_on_error=False, target_path=target)
                events = list(invocation.stream())
            context.log.info(how_dbt_parsed(target))
            keep_the_parse(target)
        except BaseException:
            # Reading dbt's events failed, or the run was cancelled: a dbt process left running would
            # go on holding the DuckDB file (every later build and sync would find it locked).
            if invocation is not None:
                stop_dbt(invocation.process)
            raise
        finally:
            # Each build has a target folder of its own (2 MB of artifacts): what matters is in
            # Dagster's events by now, and a folder per run would fill the disk.
            shutil.rmtree(target, ignore_errors=True)
        if invocation.is_successful():
            yield from events
            return
        locked = any(_DUCKDB_LOCKED.search(message) for message in invocation._error_messages)
        if not (locked and attempt < LOCKED_ATTEMPTS):
            yield from events  # what did build, then the failure with dbt's messages
            error = invocation.get_error()
            raise error if error else dg.Failure("dbt build failed")
        context.log.info(f"The DuckDB warehouse is locked by another process; dbt runs again in {wait:g} s")
        gate.say_waiting(warehouse.store.duckdb_file())  # a run keeping the file open lets it go
        wait_for_the_file(wait)
        wait = min(wait * 2, 8.0)
