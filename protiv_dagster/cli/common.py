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
LAPTOP_INSTANCE = """\
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
# What earlier versions wrote: nobody chose anything in it, so it is replaced by the above.
EARLIER_LAPTOP_INSTANCE = "telemetry:\n  enabled: false\nnux:\n  enabled: false\n"


def dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to the data folder so the demo, `dagster dev` and tests agree."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text() == EARLIER_LAPTOP_INSTANCE:
        # SQLite storage is Dagster's default; this file turns telemetry off, and the UI's "join the
        # community" pop-up, which covers the page on localhost until dismissed. A run launched in the
        # UI (a force sync) waits in the queue until the daemon next looks, every 5 s by default:
        # every second here, as deploy/dagster.yaml does every 2 s.
        config.write_text(LAPTOP_INSTANCE)
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
