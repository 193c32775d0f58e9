"""What commands of several audiences share: the COMPANY_ID argument, and this machine's Dagster
instance and encryption key as the demo, `protiv ui` and `protiv sync` find them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from protiv_dagster.cli import output
from protiv_dagster.connections.registry import generate_secret_key
from protiv_dagster.settings import SECRET_KEY_VARIABLE, data_dir

CompanyId = Annotated[str, typer.Argument(metavar="COMPANY_ID", help="Protiv company id.")]

# The dagster.yaml of this machine's instance, written once (dagster_home).
_SETTINGS_BEFORE_NO_CAPTURE = """\
telemetry:
  enabled: false
nux:
  enabled: false
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
"""
# No raw stdout/stderr files, as in the Kubernetes deployment (deploy/helm) and the integrations
# service: Dagster captures a step's output by swapping the whole process's file descriptors for
# `tail` processes, which costs about 0.17 s a run (bench/RESULTS.md) and left `tail` processes
# behind runs launched from the UI. The runs' structured events, errors included, are what the UI
# shows of them; a library's stray prints go to the terminal of the process that ran the step.
_NO_COMPUTE_LOG_CAPTURE = """\
compute_logs:
  module: dagster._core.storage.noop_compute_log_manager
  class: NoOpComputeLogManager
"""
_LAPTOP_SETTINGS = _SETTINGS_BEFORE_NO_CAPTURE + _NO_COMPUTE_LOG_CAPTURE
# Every run's events in one SQLite file, $DAGSTER_HOME/event_log.db (read from the variable, so a home
# moved elsewhere keeps working). Dagster's default SQLite storage makes a database file per run and
# stamps its schema as the run starts: about 0.2 s of every run, and a sync is three runs, which a
# small company's sync feels (bench/RESULTS.md, issue 20). The storage is Dagster's one-file storage
# through a single SQLAlchemy engine (protiv_dagster/laptop_storage.py), the same file and schema.
_ONE_EVENT_LOG = """\
event_log_storage:
  module: protiv_dagster.laptop_storage
  class: LaptopEventLogStorage
  config:
    base_dir:
      env: DAGSTER_HOME
"""
# The runs and the sensors' ticks in Dagster's own files for them (history/runs.db, schedules/
# schedules.db), through kept connections as the event log (protiv_dagster/laptop_storage.py).
_KEPT_CONNECTIONS = """\
run_storage:
  module: protiv_dagster.laptop_storage
  class: LaptopRunStorage
  config:
    base_dir:
      env: DAGSTER_HOME
schedule_storage:
  module: protiv_dagster.laptop_storage
  class: LaptopScheduleStorage
  config:
    base_dir:
      env: DAGSTER_HOME
"""
LAPTOP_INSTANCE = _LAPTOP_SETTINGS + _ONE_EVENT_LOG + _KEPT_CONNECTIONS
# The one-file storage as the versions before wrote it: Dagster's class, an engine per connection.
_DAGSTERS_ONE_EVENT_LOG = _ONE_EVENT_LOG.replace(
    "protiv_dagster.laptop_storage", "dagster._core.storage.event_log.sqlite.consolidated_sqlite_event_log"
).replace("LaptopEventLogStorage", "ConsolidatedSqliteEventLogStorage")
# What earlier versions wrote: nobody chose anything in it, so it is replaced by the above (keeping a
# home's per-run event files where it has some: the one-file storage would not show those runs' events).
EARLIER_LAPTOP_INSTANCE = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"
# What the versions before this one wrote (with compute-log capture, with Dagster's own one-file
# storage class, or with Dagster's run and schedule storages), and what replaces it.
_UPGRADED_LAPTOP_INSTANCES = {
    _SETTINGS_BEFORE_NO_CAPTURE: _LAPTOP_SETTINGS + _KEPT_CONNECTIONS,
    _LAPTOP_SETTINGS: _LAPTOP_SETTINGS + _KEPT_CONNECTIONS,
    _SETTINGS_BEFORE_NO_CAPTURE + _DAGSTERS_ONE_EVENT_LOG: LAPTOP_INSTANCE,
    _LAPTOP_SETTINGS + _DAGSTERS_ONE_EVENT_LOG: LAPTOP_INSTANCE,
    _LAPTOP_SETTINGS + _ONE_EVENT_LOG: LAPTOP_INSTANCE,
}


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to the data folder so the demo, `dagster dev` and tests agree."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    written = config.read_text() if config.exists() else None
    if written in _UPGRADED_LAPTOP_INSTANCES:
        config.write_text(_UPGRADED_LAPTOP_INSTANCES[written])
    elif written is None or written == EARLIER_LAPTOP_INSTANCE:
        # SQLite storage is Dagster's default; this file turns telemetry off, and the UI's "join the
        # community" pop-up, which covers the page on localhost until dismissed. A run launched in the
        # UI (a force sync) waits in the queue until the daemon next looks, every 5 s by default:
        # every second here, as deploy/dagster.yaml does every 2 s.
        per_run_events = (home / "history" / "runs").is_dir()
        config.write_text(_LAPTOP_SETTINGS + _KEPT_CONNECTIONS if per_run_events else LAPTOP_INSTANCE)
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def local_secret_key() -> None:
    """For the local demo only: keep a generated key in .env (git-ignored), which `dagster dev` loads too."""
    if os.environ.get(SECRET_KEY_VARIABLE):
        return
    env_file = Path(".env")
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    for line in lines:
        if line.startswith(f"{SECRET_KEY_VARIABLE}="):
            os.environ[SECRET_KEY_VARIABLE] = line.split("=", 1)[1].strip()
            return
    key = generate_secret_key()
    env_file.write_text("\n".join([*lines, f"{SECRET_KEY_VARIABLE}={key}", ""]))
    env_file.chmod(0o600)
    os.environ[SECRET_KEY_VARIABLE] = key
    output.console.print(f"[dim]Generated {SECRET_KEY_VARIABLE} for this laptop in .env (git-ignored).[/dim]")
