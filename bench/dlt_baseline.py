"""Peer baseline: the QuickBooks Time initial sync written with dlt's REST API source, into DuckDB.

What a data engineer would otherwise reach for instead of our Dagster pipeline: ``dlt.sources.rest_api``
configured for QuickBooks Time's protocol (bearer token, ``page``/``limit`` paging until ``more`` is
false, records under ``results.<entity>`` as an object keyed by id) pulling the same records our initial
sync pulls (users, regular jobcodes with their custom field values, jobcode custom fields, timesheets
and deleted timesheets of the synced weeks) and loading them into a DuckDB file. dlt does no cleaning
and computes no ProPay: it lands the payloads as typed tables (nested objects flattened into columns,
lists into child tables).

dlt is not a project dependency (its requirements would fight the pinned Dagster family), so it lives in
its own virtualenv, ``bench/.venv-dlt``, built from nothing on first use with the pinned versions below:

    .venv/bin/python bench/dlt_baseline.py --ensure-venv     # build or rebuild it, print its python

The load itself runs inside that virtualenv (``bench/peer_baseline.py`` drives it against the emulator);
the access token comes from the environment, never the command line:

    QBT_ACCESS_TOKEN=... bench/.venv-dlt/bin/python bench/dlt_baseline.py \\
        --base-url http://127.0.0.1:PORT/api/v1 --first-day 2026-11-09 --last-day 2026-11-29 --workdir DIR

It prints one JSON object: seconds per dlt step, rows per table, and the dlt and duckdb versions.
This module imports only the standard library at the top, so the project's Python can import
``ensure_venv`` without dlt installed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

# Pinned so that a re-run months later measures the same dlt; duckdb is the project's own version so
# that both contenders write with the same engine.
DLT_REQUIREMENTS = ("dlt[duckdb]==1.31.0", "duckdb==2.0.1")
VENV = Path(__file__).resolve().parent / ".venv-dlt"
TOKEN_VARIABLE = "QBT_ACCESS_TOKEN"
DATASET = "quickbooks_time"
PAGE = 200  # QuickBooks Time's largest page
ENTITIES = ("users", "jobcodes", "customfields", "timesheets", "timesheets_deleted")


# -- the virtualenv (runs under the project's Python) -----------------------------------------------------
def venv_python() -> Path:
    return VENV / "bin" / "python"


def ensure_venv(quiet: bool = False) -> Path:
    """The dlt virtualenv's python; (re)built from nothing when missing or built for other pins."""
    marker = VENV / ".requirements"
    wanted = "\n".join(DLT_REQUIREMENTS) + "\n"
    if venv_python().exists() and marker.exists() and marker.read_text() == wanted:
        return venv_python()
    if not quiet:
        print(f"building {VENV.name} with {', '.join(DLT_REQUIREMENTS)} (once; 15-70 s)", file=sys.stderr)
    shutil.rmtree(VENV, ignore_errors=True)
    pip = [str(venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    for command in ([sys.executable, "-m", "venv", str(VENV)], [*pip, "--upgrade", "pip"], [*pip, *DLT_REQUIREMENTS]):
        done = subprocess.run(command, capture_output=True, text=True)  # pip's chatter only when it fails
        if done.returncode != 0:
            raise SystemExit(f"building {VENV.name} failed at `{' '.join(command[1:])}`:\n{done.stdout}{done.stderr}")
    marker.write_text(wanted)
    return venv_python()


def cpu_seconds() -> float:
    """User + system CPU of this process (DuckDB's and dlt's threads included) and of any it waited for."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


# -- the source (runs inside the dlt virtualenv) -----------------------------------------------------------
def quickbooks_time_config(base_url: str, token: str, first_day: date, last_day: date) -> dict:
    """The ``rest_api`` configuration: one resource per endpoint, the filters our sync uses.

    - Paging: ``page`` from 1 and ``limit`` 200, stop when ``more`` is false (or a page is empty).
    - ``results.<entity>`` is an object keyed by id, so the selector takes its values (``.*``).
    - ``supplemental_data=no``: users and jobcodes are loaded as their own resources.
    - ``active=both`` everywhere and ``on_the_clock=both``: people who left, finished jobs and
      running sheets are part of the history, as in our sync.
    - Reference lists are replaced whole; sheets are merged on id so a re-run of the window is
      idempotent (the choice for a repeatable window load).
    """
    window = {"start_date": first_day.isoformat(), "end_date": last_day.isoformat()}

    def endpoint_resource(entity: str, params: dict, write_disposition: str = "replace") -> dict:
        return {
            "name": entity,
            "primary_key": "id",
            "write_disposition": write_disposition,
            "endpoint": {"path": entity, "data_selector": f"results.{entity}.*", "params": params},
        }

    return {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "bearer", "token": token},
            "paginator": {
                "type": "page_number",
                "base_page": 1,
                "page_param": "page",
                "total_path": None,
                "has_more_path": "more",
            },
        },
        "resource_defaults": {"endpoint": {"params": {"limit": PAGE, "supplemental_data": "no"}}},
        "resources": [
            endpoint_resource("users", {"active": "both"}),
            endpoint_resource("jobcodes", {"active": "both", "type": "regular", "customfields": "true"}),
            endpoint_resource("customfields", {"active": "both", "applies_to": "jobcode"}),
            endpoint_resource("timesheets", {**window, "on_the_clock": "both"}, "merge"),
            endpoint_resource("timesheets_deleted", dict(window), "merge"),
        ],
    }


def load(base_url: str, token: str, first_day: date, last_day: date, workdir: Path) -> dict:
    """Run the dlt pipeline into ``workdir/warehouse.duckdb``; timings, rows and versions."""
    # No telemetry (nothing but loopback may be reached) and no state in the user's home.
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["DLT_DATA_DIR"] = str(workdir / "dlt_data")
    started = time.perf_counter()
    from importlib.metadata import version

    import dlt
    import duckdb
    from dlt.sources.rest_api import rest_api_source

    imported = time.perf_counter()
    database = workdir / "warehouse.duckdb"  # not named like the dataset: DuckDB would find the name ambiguous
    pipeline = dlt.pipeline(
        pipeline_name="quickbooks_time_initial_sync",
        pipelines_dir=str(workdir / "pipelines"),
        destination=dlt.destinations.duckdb(str(database)),
        dataset_name=DATASET,
    )
    cpu_started, run_started = cpu_seconds(), time.perf_counter()
    pipeline.run(rest_api_source(quickbooks_time_config(base_url, token, first_day, last_day), name=DATASET))
    run_wall, run_cpu = time.perf_counter() - run_started, cpu_seconds() - cpu_started
    steps = {
        step.step: (step.finished_at - step.started_at).total_seconds()
        for step in pipeline.last_trace.steps
        if step.step in ("extract", "normalize", "load")
    }
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = [
            row[0]
            for row in connection.execute(
                "select table_name from information_schema.tables where table_schema = ? and table_name not like '_dlt%' "
                "order by table_name",
                [DATASET],
            ).fetchall()
        ]
        rows = {t: connection.execute(f'select count(*) from {DATASET}."{t}"').fetchone()[0] for t in tables}
    return {
        "wall": run_wall,
        "cpu": run_cpu,
        "import_seconds": imported - started,
        "steps": steps,
        "rows": rows,
        "versions": {p: version(p) for p in ("dlt", "duckdb", "requests")},
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ensure-venv", action="store_true", help="build the dlt virtualenv if needed and exit")
    parser.add_argument("--base-url", help="QuickBooks Time API base URL (the emulator's)")
    parser.add_argument("--first-day", type=date.fromisoformat, help="first work date of the window")
    parser.add_argument("--last-day", type=date.fromisoformat, help="last work date of the window")
    parser.add_argument("--workdir", type=Path, help="folder for the DuckDB file and dlt's pipeline state")
    args = parser.parse_args()
    if args.ensure_venv:
        print(ensure_venv())
        return
    missing = [n for n in ("base_url", "first_day", "last_day", "workdir") if getattr(args, n) is None]
    if missing or not os.environ.get(TOKEN_VARIABLE):
        parser.error(
            f"needs --base-url, --first-day, --last-day, --workdir and {TOKEN_VARIABLE} in the environment"
            + (f" (missing: {', '.join(missing)})" if missing else "")
        )
    args.workdir.mkdir(parents=True, exist_ok=True)
    result = load(args.base_url, os.environ[TOKEN_VARIABLE], args.first_day, args.last_day, args.workdir)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
