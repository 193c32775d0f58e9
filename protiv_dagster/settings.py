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


def data_dir() -> Path:
    """The project's data folder (DuckDB warehouse, registry, Dagster home); created on first use."""
    path = Path(os.environ.get(DATA_DIR_VARIABLE) or "data").resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_duckdb_path() -> Path:
    return data_dir() / "warehouse.duckdb"
