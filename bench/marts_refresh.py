"""Benchmark: the analysts' marts (issue 19) refreshed over a warehouse of many companies.

Seeded first, not timed: the ProPay tables (``propay_opportunities``, ``propay_worker_bonuses``) and
``workers`` of ``--companies`` companies (default 1,000). ``--templates`` distinct companies (default
30) are generated (``generate_company``: 5-60 workers, 14-120 days of work, the three vendors in
turn) and taken through the pipeline's own code without Dagster runs: each is hosted on its vendor's
emulator in this process (loopback, no latency) and read by the real source, mapped and validated by
the pandera models like the reference and attendance assets, stored in a scratch DuckDB warehouse
and read back, then run through the real ProPay engine, whose rows are validated as the ProPay asset
validates them. The settings are the demo's role buckets, with the generated crew leads and
managers named in ``worker_roles``. Each benchmarked warehouse gets the templates' rows through the
warehouse store (``replace_partitions``, one transaction per company, as the assets write), then one
SQL ``INSERT ... SELECT`` per table copies them to the other companies: company ``n`` holds template
``n % templates``'s rows, its vendor ids (ProPay, job, milestone, worker) suffixed with ``-n`` so no
two companies share an id. On PostgreSQL the tables are analyzed after the load, as autovacuum
would.

Timed per backend (``--backends``: the embedded default, a DuckDB file, and PostgreSQL in a schema of
its own, dropped at the end), ``--repeat`` rounds, median and min:

- the marts' refresh as the pipeline runs it: a Dagster materialization of the asset
  ``analytics_marts`` (``dbt build``: the six views and every dbt test, the marts' tests as asset
  checks) on a SQLite Dagster instance, with the CPU of this process and of dbt's;
- the same ``dbt build`` run alone (no Dagster), with dbt's own timings of the models and the tests
  (``run_results.json``), to tell where the refresh's time goes;
- on DuckDB, the analysts' copy published after it (a materialization of ``analysts_database``);
- an analyst's query of each mart (``SELECT *``, every row fetched) for one company (the one of the
  largest template) and for all companies: the marts are views, so this is what they cost at read
  time. On DuckDB the query reads the analysts' copy, as analysts do; on PostgreSQL the warehouse,
  as the pipeline's role (row-level security does not apply to it).

Exit status 1 when the build fails, any dbt test fails, or a mart's rows are not what the seeded
rows imply (one row per company in ``company_propay_summary``, one per ProPay in
``propay_savings``, and so on, computed from the templates with pandas). ``--record`` writes the
figures, the machine line and the command into bench/RESULTS.md.

    .venv/bin/python bench/marts_refresh.py [--companies 1000] [--templates 30] [--repeat 3]
        [--backends duckdb,postgres] [--postgres-url postgresql://postgres@127.0.0.1:5432/test] [--record]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import re
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fleet import fresh_environment  # noqa: E402
from machine import describe  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
SEED = 19
PROVIDERS = ("quickbooks_time", "aspire", "busybusy")
MARTS = (
    "company_propay_summary",
    "propay_savings",
    "propay_hours_gained",
    "company_revenue_per_hour",
    "propay_leaderboard",
    "worker_bonus_wages",
)
SEEDED = ("propay_opportunities", "propay_worker_bonuses", "workers")
# The columns a replica renames: vendor ids, unique within a company only.
ID_COLUMNS = {
    "propay_opportunities": ("propay_id", "job_id", "milestone_id"),
    "propay_worker_bonuses": ("propay_id", "worker_id"),
    "workers": ("worker_id",),
}
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# Dagster's console: errors only. The marts' runs warn that the sources' dbt tests (run by the same
# build) are recorded as observations, not checks, which is how the project wants them.
ERRORS_ONLY = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}
SECTION = "## The analysts' marts (issue 19): refresh over many companies"
BEGIN, END = "<!-- marts_refresh.py --record: begin -->", "<!-- marts_refresh.py --record: end -->"


def machine() -> str:
    return describe(("dagster", "dagster-dbt", "dbt-core", "dbt-duckdb", "dbt-postgres", "duckdb", "psycopg"))


def cpu() -> tuple[float, float]:
    """(this process, its finished children: the dbt processes) user + system CPU seconds so far."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def vm_hwm_mib(pid: int | str) -> float:
    """A process's peak resident set size (VmHWM) in MiB; 0 once it has gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


def vm_rss_mib() -> float:
    found = re.search(r"^VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text(), re.MULTILINE)
    return int(found.group(1)) / 1024 if found else 0.0


class Peaks:
    """Peak RSS during a block, of this process and of its dbt processes, and how long dbt ran.

    This process's high-water mark is reset at the start (``clear_refs``), so the seeding's peak
    does not hide the block's. A child's is sampled every 20 ms while it runs: its high-water mark
    only grows, so the last sample misses at most its last 20 ms. Only children running dbt count:
    a child caught between its fork and its exec shows this process's pages as its own (which is
    also why ``RUSAGE_CHILDREN`` would not do)."""

    def __enter__(self) -> Peaks:
        with contextlib.suppress(OSError):
            Path("/proc/self/clear_refs").write_text("5")
        self.start = vm_rss_mib()
        self.own = self.dbt = 0.0
        self.dbt_seconds: dict[str, float] = {}
        self._peak: dict[str, float] = {}
        self._lifetime: dict[str, tuple[str, float, float]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _dbt_children(self) -> dict[str, str]:
        """Pid -> dbt command ("build", "--version", ...) of each child running dbt."""
        pids = []
        for task in Path("/proc/self/task").iterdir():
            with contextlib.suppress(OSError):
                pids += (task / "children").read_text().split()
        running = {}
        for pid in pids:
            with contextlib.suppress(OSError):
                arguments = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
                if any(os.path.basename(argument) == "dbt" for argument in arguments[:2]):
                    rest = [a for a in arguments[2:] if a and a != "--no-use-color"]
                    running[pid] = rest[0] if rest else "dbt"
        return running

    def _sample(self) -> None:
        while not self._done.wait(0.02):
            now = time.perf_counter()
            for pid, command in self._dbt_children().items():
                self._peak[pid] = max(self._peak.get(pid, 0.0), vm_hwm_mib(pid))
                first = self._lifetime.get(pid, (command, now, now))[1]
                self._lifetime[pid] = (command, first, now)

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        self._thread.join()
        self.own = vm_hwm_mib("self")
        self.dbt = max(self._peak.values(), default=0.0)
        for command, first, last in self._lifetime.values():
            self.dbt_seconds[command] = self.dbt_seconds.get(command, 0.0) + last - first


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def company_id(number: int, width: int) -> str:
    return f"co-{number:0{width}d}"


# -- the templates ----------------------------------------------------------------------------------
@dataclass
class Template:
    number: int
    provider: str
    workers: int
    days: int
    rows: dict[str, Any]  # table name -> frame, company_id as generated
    seconds: float

    def expected(self) -> dict[str, int]:
        """Rows of each mart for one company holding this template's rows, by the marts' definitions
        (protiv_dagster/views.py) in pandas."""
        import pandas as pd

        propays, bonuses = self.rows["propay_opportunities"], self.rows["propay_worker_bonuses"]
        last = pd.to_datetime(propays["last_work_date"])
        counted = (
            (propays["status"] == "completed")
            & propays["exclusion_reason"].isna()
            & (propays["actual_seconds"].astype(float) > 0)
            & last.notna()
        )
        months = last.dt.to_period("M")
        weeks = (last - pd.to_timedelta(last.dt.day_of_week, unit="D")).dt.normalize()
        gained = counted & propays["saved_hours"].notna()
        revenue = counted & propays["budget_amount"].notna()
        paid = bonuses.merge(propays[["propay_id", "exclusion_reason"]], on="propay_id")
        boards = paid[paid["exclusion_reason"].isna()]
        return {
            "company_propay_summary": int(len(propays) > 0),
            "propay_savings": len(propays),
            "propay_hours_gained": weeks[gained].nunique() + months[gained].nunique(),
            "company_revenue_per_hour": months[revenue].nunique(),
            "propay_leaderboard": boards["worker_id"].nunique()
            + boards.loc[boards["role"] == "crew_lead", "worker_id"].nunique()
            + boards.loc[boards["role"] == "manager", "worker_id"].nunique(),
            "worker_bonus_wages": paid["worker_id"].nunique(),
        }


def sizes(count: int) -> list[tuple[str, int, int]]:
    """(provider, workers, days) of each template: crews of 5-60 workers, 2 weeks to 4 months of work."""
    rng = random.Random(SEED)
    return [(PROVIDERS[n % len(PROVIDERS)], rng.randint(5, 60), rng.randint(14, 120)) for n in range(count)]


def clean(name: str, table, model, record_id: str, rows, set_aside):
    """The rows the pandera model accepts; a generated company has nothing to set aside."""
    from protiv_dagster.assets.common import validated

    valid, set_aside = validated(table, model, record_id, rows, set_aside)
    if len(set_aside):
        raise SystemExit(f"seeding {name}: {len(set_aside)} {table.name} records set aside")
    return valid


def synced(name: str, source, data, scratch) -> None:
    """The reference and attendance assets' path for one company, into the scratch warehouse."""
    from protiv_dagster import schemas
    from protiv_dagster.assets.attendance import map_week
    from protiv_dagster.tables import ATTENDANCE, JOB_ASSIGNMENTS, JOBS, TASK_LINES, WORKER_WAGES, WORKERS
    from protiv_dagster.warehouse.spool import PartitionWrite

    def checked(table, model, record_id, mapped):
        return clean(name, table, model, record_id, mapped.rows, mapped.set_aside)

    where = {"company_id": name}
    # Each table beside the one it is read with, as the reference assets write them.
    staff = checked(WORKERS, schemas.Worker, "worker_id", source.workers())
    wages = checked(WORKER_WAGES, schemas.WorkerWage, "worker_id", source.worker_wages(staff["worker_id"]))
    jobs = checked(JOBS, schemas.Job, "job_id", source.jobs())
    lines = checked(TASK_LINES, schemas.TaskLine, "task_id", source.task_lines(jobs["job_id"]))
    assigned = checked(JOB_ASSIGNMENTS, schemas.JobAssignment, "worker_id", source.job_assignments(jobs["job_id"]))
    scratch.replace_partitions(
        [
            PartitionWrite(table, rows, where)
            for table, rows in (
                (WORKERS, staff),
                (WORKER_WAGES, wages),
                (JOBS, jobs),
                (TASK_LINES, lines),
                (JOB_ASSIGNMENTS, assigned),
            )
        ]
    )
    # The attendance asset's mapping over the whole window at once (one "week" spanning it), with
    # the jobs and workers as it reads them from the warehouse.
    with scratch.reading() as read:
        stored_jobs, stored_workers = read.read_table(JOBS, where=where), read.read_table(WORKERS, where=where)
    first, last = data.first_local_date, data.last_local_date
    feeds = source.time_entry_feeds(first, last)
    _, rows, set_aside = map_week(source, feeds, stored_jobs, stored_workers["worker_id"], first, last)
    scratch.replace_partition(
        ATTENDANCE, clean(name, ATTENDANCE, schemas.Attendance, "entry_id", rows, set_aside), where
    )


def propays(name: str, connection, data, scratch) -> dict[str, Any]:
    """The ProPay asset's path for one company: its inputs as it reads them, the engine, its
    validation; returns the stored rows of the seeded tables, typed as the warehouse gives them."""
    from protiv_dagster import schemas
    from protiv_dagster.propay import compute_propays
    from protiv_dagster.tables import (
        ATTENDANCE,
        JOB_ASSIGNMENTS,
        JOBS,
        PROPAY_OPPORTUNITIES,
        PROPAY_WORKER_BONUSES,
        TASK_LINES,
        WORKER_WAGES,
        WORKERS,
    )
    from protiv_dagster.warehouse.spool import PartitionWrite

    where = {"company_id": name}
    with scratch.reading() as read:
        inputs = {
            table.name: read.read_table(table, where=where)
            for table in (JOBS, ATTENDANCE, WORKERS, TASK_LINES, WORKER_WAGES, JOB_ASSIGNMENTS)
        }
    # A company tells Protiv who its crew leads and managers are: the generated ones, by name.
    names = {(w.first_name, w.last_name): w.role for w in data.workers if w.role != "crew"}
    roles = {
        row.worker_id: names[(row.first_name, row.last_name)]
        for row in inputs[WORKERS.name].itertuples()
        if (row.first_name, row.last_name) in names
    }
    result = compute_propays(
        inputs[JOBS.name],
        inputs[ATTENDANCE.name],
        inputs[WORKERS.name],
        connection.settings.model_copy(update={"worker_roles": roles}),
        name,
        task_lines=inputs[TASK_LINES.name],
        wages=inputs[WORKER_WAGES.name],
        assignments=inputs[JOB_ASSIGNMENTS.name],
        pull_date=connection.attendance_pull_date,
    )
    opportunities = clean(
        name, PROPAY_OPPORTUNITIES, schemas.PropayOpportunity, "propay_id", result.opportunities, schemas.no_rejects()
    )
    bonuses = result.worker_bonuses[result.worker_bonuses["propay_id"].isin(set(opportunities["propay_id"]))]
    bonuses = clean(name, PROPAY_WORKER_BONUSES, schemas.PropayWorkerBonus, "propay_id", bonuses, schemas.no_rejects())
    scratch.replace_partitions(
        [
            PartitionWrite(PROPAY_OPPORTUNITIES, opportunities, where),
            PartitionWrite(PROPAY_WORKER_BONUSES, bonuses, where),
        ]
    )
    with scratch.reading() as read:
        return {table: read.read_table(table, where=where) for table in SEEDED}


def make_templates(count: int, folder: Path, on_template: Callable[[Template], None]) -> list[Template]:
    """Each template through the pipeline's code (module docstring), in a scratch warehouse."""
    from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource
    from protiv_dagster.resources.vendors import VendorApis
    from protiv_dagster.warehouse.migrations import prepare
    from protiv_dagster.warehouse.store import WarehouseStore
    from protiv_emulators.demo import DEMO_SETTINGS, EMULATED
    from protiv_emulators.generator import generate_company

    scratch = WarehouseStore(str(folder / "templates.duckdb"))
    prepare(scratch)
    registry_url = f"sqlite:///{folder / 'templates-registry.sqlite'}"
    registry, resource_ = ConnectionRegistry(registry_url), ConnectionRegistryResource(url=registry_url)
    vendors = VendorApis()
    as_of = datetime.combine(date.today(), clock(0), tzinfo=UTC)
    templates = []
    for number, (provider, workers, days) in enumerate(sizes(count)):
        started = time.perf_counter()
        name = f"template-{number:02d}"
        data = generate_company(name, seed=number, workers=workers, days=days, as_of=as_of)
        emulator, base_url, credentials = EMULATED[provider](data, 0, {})
        try:
            registry.connect(
                name,
                provider,
                base_url,
                credentials,
                attendance_pull_date=data.first_local_date,
                settings={**DEMO_SETTINGS, "timezone": data.timezone},
                today=data.last_local_date,
            )
            connection = registry.get(name)
            synced(name, vendors.source_of(connection, resource_), data, scratch)
        finally:
            emulator.stop()
        rows = propays(name, connection, data, scratch)
        template = Template(number, provider, workers, days, rows, time.perf_counter() - started)
        templates.append(template)
        on_template(template)
    return templates


# -- a benchmarked warehouse --------------------------------------------------------------------------
def replica_value(table: str, column: str, width: int) -> str:
    """The SQL of a copied row's ``column``: company ``g.n``'s id, its own vendor ids, else the template's."""
    from protiv_dagster.warehouse.declarations import quote

    if column == "company_id":
        return f"'co-' || lpad(CAST(g.n AS TEXT), {width}, '0')"
    if column in ID_COLUMNS[table]:
        return f"t.{quote(column)} || '-' || CAST(g.n AS TEXT)"
    return f"t.{quote(column)}"


def seed(store, templates: list[Template], companies: int, width: int) -> dict[str, float]:
    """The templates' rows under the first company ids through the store, then copied in SQL to the
    others (module docstring); returns seconds per stage."""
    from protiv_dagster.tables import ALL_TABLES
    from protiv_dagster.warehouse.declarations import quote
    from protiv_dagster.warehouse.migrations import prepare
    from protiv_dagster.warehouse.spool import PartitionWrite

    spent, started = {}, time.perf_counter()
    prepare(store)
    tables = {table.name: table for table in ALL_TABLES}
    count = len(templates)
    for template in templates[:companies]:
        target = company_id(template.number, width)
        store.replace_partitions(
            [
                PartitionWrite(tables[name], template.rows[name].assign(company_id=target), {"company_id": target})
                for name in SEEDED
            ]
        )
    spent[f"{min(count, companies)} companies through the store"] = time.perf_counter() - started
    started = time.perf_counter()
    if companies > count:
        for name in SEEDED:
            columns = tables[name].column_names

            store.execute(
                f"INSERT INTO {{schema}}.{quote(name)} ({', '.join(quote(c) for c in columns)}) "
                f"SELECT {', '.join(replica_value(name, c, width) for c in columns)} FROM {{schema}}.{quote(name)} AS t "
                f"JOIN generate_series({count}, {companies - 1}) AS g(n) "
                f"ON t.company_id = 'co-' || lpad(CAST(g.n % {count} AS TEXT), {width}, '0')"
            )
        spent[f"{companies - count} companies copied in SQL"] = time.perf_counter() - started
    if store.backend == "postgres":
        started = time.perf_counter()
        for name in SEEDED:
            store.execute(f"ANALYZE {{schema}}.{quote(name)}")
        spent["ANALYZE"] = time.perf_counter() - started
    return spent


def seeded_rows(store) -> dict[str, int]:
    with store.reading() as read:
        return {name: int(read.query(f"SELECT count(*) AS n FROM {{schema}}.{name}")["n"].iloc[0]) for name in SEEDED}


@dataclass
class Round:
    load_before: str = ""
    marts: float = 0.0
    marts_cpu: tuple[float, float] = (0.0, 0.0)
    checks: int = 0
    failed_checks: list[str] = field(default_factory=list)
    built: int = 0
    dbt_wall: float = 0.0
    dbt_elapsed: float = 0.0
    dbt_models: float = 0.0
    dbt_tests: float = 0.0
    dbt_nodes: tuple[int, int] = (0, 0)
    dbt_cpu: float = 0.0
    marts_rss: tuple[float, float, float] = (0.0, 0.0, 0.0)  # MiB: this process at the start, its peak, dbt's
    marts_dbt: dict[str, float] = field(default_factory=dict)  # dbt command -> seconds inside the Dagster run
    dbt_rss: float = 0.0
    publish: float | None = None
    publication: float | None = None
    copy_mib: float | None = None
    queries: dict[str, tuple[float, float]] = field(default_factory=dict)  # mart -> (one, all) seconds
    rows: dict[str, tuple[int, int]] = field(default_factory=dict)  # mart -> (one, all) rows


def materialize(assets, instance, warehouse):
    """A run of ``assets`` on the benchmark's instance and warehouse, as the pipeline's runs go."""
    import dagster as dg

    return dg.materialize(
        [assets], instance=instance, resources={"warehouse": warehouse}, raise_on_error=False, run_config=ERRORS_ONLY
    )


def build_marts(instance, warehouse, run: Round, problems: list[str]) -> None:

    from protiv_dagster.assets.analytics import analytics_marts

    # dagster-dbt echoes dbt's log lines to stdout; a daemon's run writes them to its own log.
    echoed = io.StringIO()
    before, started = cpu(), time.perf_counter()
    with Peaks() as peaks, contextlib.redirect_stdout(echoed):
        result = materialize(analytics_marts, instance, warehouse)
    run.marts = time.perf_counter() - started
    run.marts_rss = (peaks.start, peaks.own, peaks.dbt)
    run.marts_dbt = peaks.dbt_seconds
    after = cpu()
    run.marts_cpu = (after[0] - before[0], after[1] - before[1])
    evaluations = result.get_asset_check_evaluations()
    run.checks = len(evaluations)
    run.failed_checks = [f"{e.asset_key.to_user_string()}: {e.check_name}" for e in evaluations if not e.passed]
    run.built = len(result.get_asset_materialization_events())
    if not result.success:
        problems.append(f"the marts' materialization failed (run {result.run_id}): {echoed.getvalue()[-2000:]}")
    if run.failed_checks:
        problems.append(f"dbt tests failed: {run.failed_checks}")
    specs = len(list(analytics_marts.check_specs))
    if run.built != len(MARTS) or run.checks != specs:
        problems.append(f"{run.built} marts built and {run.checks} checks ran, of {len(MARTS)} and {specs}")


def build_alone(store, folder: Path, run: Round, problems: list[str]) -> None:
    """``dbt build`` as dagster-dbt runs it, without Dagster: its wall and CPU, and dbt's own timings."""
    from protiv_dagster.analytics import PROJECT_DIR, dbt_environment

    target = Path(tempfile.mkdtemp(prefix="dbt-target-", dir=folder))
    dbt = Path(sys.executable).with_name("dbt")
    command = [str(dbt), "build", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)]
    command += ["--target-path", str(target), "--log-path", str(target), "--quiet"]
    before, started = cpu(), time.perf_counter()
    with Peaks() as peaks:
        done = subprocess.run(command, env={**os.environ, **dbt_environment(store)}, capture_output=True, text=True)
    run.dbt_wall = time.perf_counter() - started
    run.dbt_rss = peaks.dbt
    run.dbt_cpu = cpu()[1] - before[1]
    if done.returncode != 0:
        problems.append(f"dbt build alone failed: {(done.stdout + done.stderr)[-2000:]}")
        return
    results = json.loads((target / "run_results.json").read_text())
    run.dbt_elapsed = results["elapsed_time"]
    models = [r for r in results["results"] if r["unique_id"].startswith("model.")]
    tests = [r for r in results["results"] if r["unique_id"].startswith("test.")]
    run.dbt_models = sum(r["execution_time"] for r in models)
    run.dbt_tests = sum(r["execution_time"] for r in tests)
    run.dbt_nodes = (len(models), len(tests))
    failed = [r["unique_id"] for r in results["results"] if r["status"] not in ("success", "pass")]
    if failed:
        problems.append(f"dbt build alone: {failed}")


def publish(instance, warehouse, run: Round, problems: list[str]) -> Path | None:

    from protiv_dagster.assets.analysts import analysts_database

    started = time.perf_counter()
    result = materialize(analysts_database, instance, warehouse)
    run.publish = time.perf_counter() - started
    if not result.success:
        problems.append("the analysts' copy was not published")
        return None
    metadata = result.get_asset_materialization_events()[0].materialization.metadata
    seconds, size = metadata["seconds"].value, metadata["size_mib"].value
    if not isinstance(seconds, (int, float)) or not isinstance(size, (int, float)):
        problems.append(f"the analysts' copy's metadata: {metadata}")
        return None
    run.publication, run.copy_mib = float(seconds), float(size)
    return Path(str(metadata["path"].value))


@contextlib.contextmanager
def analyst_session(store, copy: Path | None) -> Iterator[Callable[[str, list], list]]:
    """An analyst's session: on DuckDB the analysts' copy, read-only; on PostgreSQL the warehouse."""
    if store.backend == "duckdb":
        import duckdb

        assert copy is not None
        with duckdb.connect(str(copy), read_only=True) as connection:
            yield lambda sql, params: connection.execute(sql, params).fetchall()
        return
    import psycopg

    with psycopg.connect(store._target().location or "", autocommit=True) as connection:
        yield lambda sql, params: connection.execute(sql.replace("?", "%s"), params).fetchall()


def query_marts(store, copy: Path | None, one: str, run: Round) -> None:
    from protiv_dagster.analytics import analytics_schema

    schema = analytics_schema(store.schema_name)
    with analyst_session(store, copy) as fetch:
        for mart in MARTS:
            started = time.perf_counter()
            mine = fetch(f'SELECT * FROM "{schema}".{mart} WHERE company_id = ?', [one])
            middle = time.perf_counter()
            every = fetch(f'SELECT * FROM "{schema}".{mart}', [])
            run.queries[mart] = (middle - started, time.perf_counter() - middle)
            run.rows[mart] = (len(mine), len(every))


@dataclass
class Backend:
    name: str
    seeding: dict[str, float]
    rows: dict[str, int]
    rounds: list[Round]
    load_after: str


def bench_backend(name, args, folder, instance, templates, width, problems) -> Backend:
    from protiv_dagster.resources.warehouse import Warehouse

    if name == "duckdb":
        warehouse = Warehouse(url=str(folder / "data" / "warehouse.duckdb"))
    else:
        warehouse = Warehouse(url=args.postgres_url, schema_name=f"bench_marts_{uuid.uuid4().hex[:8]}")
    store = warehouse.store
    print(f"\n=== {name}: {store.describe()} ===", flush=True)
    try:
        spent = seed(store, templates, args.companies, width)
        print("seeded (not timed): " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in spent.items()))
        rows = seeded_rows(store)
        print("rows: " + ", ".join(f"{table} {count:,}" for table, count in rows.items()), flush=True)
        largest = max(templates[: args.companies], key=lambda t: len(t.rows["propay_worker_bonuses"]))
        one = company_id(largest.number, width)
        expected_all = expected_rows(templates, args.companies)
        rounds = []
        for number in range(1, args.repeat + 1):
            run = Round(load_before=load())
            before = len(problems)
            build_marts(instance, warehouse, run, problems)
            build_alone(store, folder, run, problems)
            copy = publish(instance, warehouse, run, problems) if name == "duckdb" else None
            if name == "postgres" or copy is not None:
                query_marts(store, copy, one, run)
                for mart in MARTS:
                    wanted = (largest.expected()[mart], expected_all[mart])
                    if run.rows[mart] != wanted:
                        problems.append(f"{name} {mart}: rows (one company, all) {run.rows[mart]}, expected {wanted}")
            rounds.append(run)
            print(
                f"round {number} (load {run.load_before}): marts {run.marts:.2f} s ({run.built} views, {run.checks} "
                f"checks, {len(run.failed_checks)} failed), dbt alone {run.dbt_wall:.2f} s"
                + (f", analysts' copy {run.publish:.2f} s" if run.publish is not None else "")
                + ("" if len(problems) == before else f"; PROBLEMS: {problems[before:]}"),
                flush=True,
            )
        return Backend(name, spent, rows, rounds, load())
    finally:
        if name == "postgres":
            import psycopg

            with psycopg.connect(args.postgres_url, autocommit=True) as owner:
                owner.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}" CASCADE')
                owner.execute(f'DROP SCHEMA IF EXISTS "{store.schema_name}_analytics" CASCADE')


def expected_rows(templates: list[Template], companies: int) -> dict[str, int]:
    """Rows of each mart over every company: each template's, times the companies holding it."""
    counts = [t.expected() for t in templates]
    holders = [len(range(t.number, companies, len(templates))) for t in templates]
    return {mart: sum(c[mart] * h for c, h in zip(counts, holders)) for mart in MARTS}


# -- the report -------------------------------------------------------------------------------------
def spread(values: list[float], unit: str = "s", places: int = 2) -> str:
    """Median and min of the rounds."""
    if len(values) == 1:
        return f"{values[0]:.{places}f} {unit}"
    return f"{statistics.median(values):.{places}f} / {min(values):.{places}f} {unit}"


def report(backends: list[Backend], args, templates: list[Template], seeding: float) -> str:
    label = "median / min of " + f"{args.repeat} rounds" if args.repeat > 1 else "one round"
    used = templates[: args.companies]

    def extent(table: str) -> str:
        counts = [len(t.rows[table]) for t in used]
        return f"{min(counts):,}-{max(counts):,}"

    one = company_id(max(used, key=lambda t: len(t.rows["propay_worker_bonuses"])).number, width_of(args.companies))
    lines = [
        f"Seeded (not timed): {args.companies:,} companies from {len(used)} templates generated in {seeding:.0f} s ("
        + ", ".join(f"{sum(t.provider == p for t in used)} {p}" for p in PROVIDERS)
        + f"; {min(t.workers for t in used)}-{max(t.workers for t in used)} workers, "
        f"{min(t.days for t in used)}-{max(t.days for t in used)} days; per company {extent('propay_opportunities')} "
        f"ProPays, {extent('propay_worker_bonuses')} worker bonus rows, {extent('workers')} workers). Rows: "
        + ", ".join(f"{table} {count:,}" for table, count in backends[0].rows.items())
        + ".",
        "",
        f"| backend | marts refresh: Dagster run of `analytics_marts` ({label}) | CPU: this process + dbt "
        "| peak RSS: this process (at the start) / dbt | analysts' copy: Dagster run (the copy itself; size) "
        "| load average |",
        "|---|---|---|---|---|---|",
    ]
    for backend in backends:
        runs = backend.rounds
        last = runs[-1]
        copy = (
            f"{spread([r.publish for r in runs if r.publish is not None])} "
            f"({spread([r.publication for r in runs if r.publication is not None])}; {last.copy_mib:.0f} MiB)"
            if last.publish is not None
            else "none: analysts query PostgreSQL"
        )
        lines.append(
            f"| {backend.name} | **{spread([r.marts for r in runs])}** ({last.built} views, {last.checks} checks "
            f"passed) | {spread([r.marts_cpu[0] for r in runs])} + {spread([r.marts_cpu[1] for r in runs])} "
            f"| {max(r.marts_rss[1] for r in runs):,.0f} ({max(r.marts_rss[0] for r in runs):,.0f}) / "
            f"{max(r.marts_rss[2] for r in runs):,.0f} MiB | {copy} "
            f"| {runs[0].load_before} -> {backend.load_after} |"
        )
    lines += [
        "",
        f"Where the refresh's time goes ({label}): how long each dbt process ran inside the Dagster run, and "
        "the same `dbt build` run alone, without Dagster; dbt's own elapsed time excludes its start (imports, "
        "reading the project); models and tests are summed over nodes (PostgreSQL runs 4 threads, DuckDB 1).",
        "",
        "| backend | dbt inside the Dagster run | dbt build alone | dbt's elapsed | models | tests | dbt CPU "
        "| dbt peak RSS |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for backend in backends:
        runs = backend.rounds
        models, tests = runs[-1].dbt_nodes
        lines.append(
            f"| {backend.name} | "
            + " + ".join(
                f"`dbt {command}` {spread([r.marts_dbt.get(command, 0.0) for r in runs])}"
                for command in sorted(runs[-1].marts_dbt, key=lambda c: c != "build")
            )
            + f" | {spread([r.dbt_wall for r in runs])} "
            f"| {spread([r.dbt_elapsed for r in runs])} "
            f"| {spread([r.dbt_models for r in runs])} ({models}) | {spread([r.dbt_tests for r in runs])} ({tests}) "
            f"| {spread([r.dbt_cpu for r in runs])} | {max(r.dbt_rss for r in runs):,.0f} MiB |"
        )
    lines += [
        "",
        f"An analyst's `SELECT *` of each mart, every row fetched ({label}, ms), for one company ({one}, the "
        "largest template) and for all: on DuckDB from the analysts' copy, read-only; on PostgreSQL from the "
        "warehouse.",
        "",
        "| mart | rows: one company / all | "
        + " | ".join(f"{b.name}: one company | {b.name}: all" for b in backends)
        + " |",
        "|---|---|" + "---|---|" * len(backends),
    ]
    for mart in MARTS:
        counted = next((b.rounds[-1].rows[mart] for b in backends if mart in b.rounds[-1].rows), (0, 0))
        cells = []
        for backend in backends:
            timed = [r.queries[mart] for r in backend.rounds if mart in r.queries]
            cells += [
                spread([1000 * mine for mine, _ in timed], "ms", 1) if timed else "-",
                spread([1000 * every for _, every in timed], "ms", 1) if timed else "-",
            ]
        lines.append(f"| {mart} | {counted[0]:,} / {counted[1]:,} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Not counted: the PostgreSQL server's CPU and memory (its own processes).",
    ]
    return "\n".join(lines)


def width_of(companies: int) -> int:
    return max(4, len(str(companies - 1)))


def record(text: str) -> None:
    """Put ``text`` between the markers of this benchmark's section in RESULTS.md, replacing what was
    there (notes written below the markers stay); a new section goes first, the newest on top."""
    block = f"{BEGIN}\n{text}\n{END}"
    current = RESULTS.read_text()
    if BEGIN in current and END in current:
        pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.DOTALL)
        RESULTS.write_text(pattern.sub(lambda _: block, current, count=1))
        return
    title, _, rest = current.partition("\n\n")
    RESULTS.write_text(f"{title}\n\n{SECTION} ({date.today().isoformat()})\n\n{block}\n\n{rest}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--templates", type=int, default=30, help="distinct generated companies")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per backend")
    parser.add_argument("--backends", default="duckdb,postgres")
    parser.add_argument("--postgres-url", default=DEFAULT_POSTGRES_URL)
    parser.add_argument("--record", action="store_true", help="write the figures into bench/RESULTS.md")
    args = parser.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if not set(backends) <= {"duckdb", "postgres"} or not backends:
        parser.error("--backends: duckdb, postgres or both")
    if args.companies < 1 or args.templates < 1 or args.repeat < 1:
        parser.error("--companies, --templates and --repeat must be at least 1")

    import dagster as dg

    for category in (dg.BetaWarning, dg.PreviewWarning):
        warnings.filterwarnings("ignore", category=category)
    command = "bench/marts_refresh.py " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    machine_line = machine()
    print(f"machine: {machine_line}")
    print(f"command: {command}")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="protiv-bench-marts-") as name:
        folder = Path(name)
        fresh_environment(folder)
        started = time.perf_counter()
        count = min(args.templates, args.companies)
        print(f"templates ({count}, through the vendor sources, mapping, validation and the ProPay engine):")
        templates = make_templates(
            count,
            folder,
            lambda t: print(
                f"  {t.number:>2} {t.provider:<16}{t.workers:>3} workers {t.days:>4} days: "
                f"{len(t.rows['propay_opportunities']):>3} ProPays, {len(t.rows['propay_worker_bonuses']):>4} "
                f"bonus rows ({t.seconds:.1f} s)",
                flush=True,
            ),
        )
        seeding = time.perf_counter() - started
        width = width_of(args.companies)
        with dg.DagsterInstance.get() as instance:
            results = [bench_backend(b, args, folder, instance, templates, width, problems) for b in backends]
    text = report(results, args, templates, seeding)
    print("\n" + text)
    if args.record:
        record(
            f"**Machine:** {machine_line}.\n\n**Command:** `.venv/bin/python {command}` "
            f"({args.companies:,} companies, {args.repeat} rounds per backend).\n\n{text}"
        )
        print(f"\nrecorded in {RESULTS.relative_to(ROOT)}")
    if problems:
        print("\nPROBLEMS:\n  " + "\n  ".join(problems[:30]))
        raise SystemExit(1)
    print(
        "\nOK: every dbt test passed and every mart has the rows the seeded data implies "
        "(one company and all companies, every round)"
    )


if __name__ == "__main__":
    main()
