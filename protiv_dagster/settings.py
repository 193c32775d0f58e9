"""Where the project keeps its local state, and the environment variables that move it.

Every location can be overridden by one environment variable, so a laptop, CI and production differ
only in their environment, never in code.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_VARIABLE = "PROTIV_DATA_DIR"
WAREHOUSE_URL_VARIABLE = "PROTIV_WAREHOUSE_URL"
REGISTRY_URL_VARIABLE = "PROTIV_REGISTRY_URL"
SECRET_KEY_VARIABLE = "PROTIV_SECRET_KEY"
# Only environment variables named with this prefix may hold a credential (`protiv connect
# --credential-env NAME=PROTIV_CREDENTIAL_...`): an operator marks what may be sent to a vendor, so
# no other variable of the run workers (the encryption key, database URLs) ever can be.
CREDENTIAL_VARIABLE_PREFIX = "PROTIV_CREDENTIAL_"
# The refresh's cron; the promise is every two hours. Read when the code location loads.
REFRESH_CRON_VARIABLE = "PROTIV_REFRESH_CRON"
DEFAULT_REFRESH_CRON = "0 */2 * * *"


# How many of the schedule's ticks one round of change checks is spread over. 1: every company at
# every tick. At thousands of companies one tick asking every vendor takes minutes; with a cron of
# every 10 minutes and a spread of 12, each tick asks the twelfth of the companies asked longest ago,
# so every company is still checked every two hours and a tick's work stays the same size.
REFRESH_SPREAD_VARIABLE = "PROTIV_REFRESH_SPREAD"
MOST_REFRESH_SPREAD = 1440  # a tick a minute for a day


class SettingError(ValueError):
    """An environment variable holds a value the project cannot use; the message names it."""


def refresh_cron() -> str:
    return os.environ.get(REFRESH_CRON_VARIABLE) or DEFAULT_REFRESH_CRON


def refresh_spread() -> int:
    """The refresh schedule's ticks one round of change checks is spread over (1 when unset)."""
    text = (os.environ.get(REFRESH_SPREAD_VARIABLE) or "1").strip()
    try:
        spread = int(text)
    except ValueError:
        spread = 0
    if not 1 <= spread <= MOST_REFRESH_SPREAD:
        raise SettingError(
            f"{REFRESH_SPREAD_VARIABLE} must be a whole number of refresh ticks from 1 to {MOST_REFRESH_SPREAD} "
            f"(got {text!r}); 1 checks every company at every tick"
        )
    return spread


def data_dir() -> Path:
    """The project's data folder (DuckDB warehouse, registry, Dagster home); created on first use."""
    path = Path(os.environ.get(DATA_DIR_VARIABLE) or "data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_duckdb_path() -> Path:
    return data_dir() / "warehouse.duckdb"
