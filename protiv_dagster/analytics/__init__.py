"""The dbt project of the analysts' layer (this folder: ``dbt_project.yml``, ``models/``, ``macros/``):
where it is, the environment its dbt process runs with, and its manifest.

The marts live in the schema ``analytics`` beside the warehouse schema ``protiv``; a warehouse in
another schema (a test's, a second deployment in the same database) gets ``<schema>_analytics``, so
two never share marts.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

from filelock import FileLock

from protiv_dagster.warehouse.store import WarehouseStore

PROJECT_DIR = Path(__file__).resolve().parent
TARGET_DIR = PROJECT_DIR / "target"
MANIFEST = TARGET_DIR / "manifest.json"
# The hash of the project files the manifest was parsed from, written beside it.
_MANIFEST_HASH = TARGET_DIR / "manifest.sha256"
_PROJECT_FILES = ("dbt_project.yml", "profiles.yml", "models", "macros", "tests")
DEFAULT_WAREHOUSE_SCHEMA = "protiv"
DEFAULT_ANALYTICS_SCHEMA = "analytics"


def analytics_schema(warehouse_schema: str) -> str:
    """The schema of the marts of a warehouse whose tables are in ``warehouse_schema``."""
    if warehouse_schema == DEFAULT_WAREHOUSE_SCHEMA:
        return DEFAULT_ANALYTICS_SCHEMA
    return f"{warehouse_schema}_{DEFAULT_ANALYTICS_SCHEMA}"


def dbt_environment(store: WarehouseStore) -> dict[str, str]:
    """The variables profiles.yml and dbt_project.yml read, for the dbt process only: the warehouse
    as ``store`` names it. On PostgreSQL the password goes in ``PROTIV_DBT_PASSWORD`` (never on a
    command line, in a file or in Dagster's config)."""
    env = {
        "PROTIV_WAREHOUSE_SCHEMA": store.schema_name,
        "PROTIV_ANALYTICS_SCHEMA": analytics_schema(store.schema_name),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    if store.backend == "duckdb":
        return {**env, "PROTIV_DBT_TARGET": "duckdb", "PROTIV_DBT_DUCKDB_PATH": str(store.duckdb_file())}
    location = urlsplit(store._target().location or "")
    query = dict(part.split("=", 1) for part in location.query.split("&") if "=" in part)
    return {
        **env,
        "PROTIV_DBT_TARGET": "postgres",
        "PROTIV_DBT_HOST": location.hostname or "127.0.0.1",
        "PROTIV_DBT_PORT": str(location.port or 5432),
        "PROTIV_DBT_USER": unquote(location.username or ""),
        "PROTIV_DBT_PASSWORD": unquote(location.password or ""),
        "PROTIV_DBT_DBNAME": unquote(location.path.lstrip("/")) or "postgres",
        "PROTIV_DBT_SSLMODE": query.get("sslmode", "prefer"),
    }


def project_hash() -> str:
    """A hash of every file dbt parses: the manifest is stale when it changes."""
    digest = hashlib.sha256()
    for name in _PROJECT_FILES:
        root = PROJECT_DIR / name
        paths = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
        for path in paths:
            digest.update(str(path.relative_to(PROJECT_DIR)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def _fresh(expected: str) -> bool:
    try:
        return MANIFEST.is_file() and _MANIFEST_HASH.read_text(encoding="utf-8") == expected
    except FileNotFoundError:
        return False


def ensure_manifest() -> Path:
    """target/manifest.json, parsed again (``dbt parse``, a few seconds) only when missing or stale.

    Dagster reads the manifest whenever the definitions load. It is never committed (it holds the
    machine's absolute paths): ``make`` parses it at install, the Docker image at build, and
    otherwise the first load does. A file lock keeps processes loading the definitions at once
    (pytest's workers, the webserver and the daemon) from parsing together; when the hash matches,
    this costs one hash of a few small files.
    """
    expected = project_hash()
    if _fresh(expected):
        return MANIFEST
    TARGET_DIR.mkdir(exist_ok=True)
    with FileLock(str(TARGET_DIR / "parse.lock"), timeout=300):
        if _fresh(expected):  # another process parsed it while this one waited
            return MANIFEST
        # Parsing reads no database, but profiles.yml must render: its defaults suffice.
        env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "PROTIV_DBT_TARGET": "duckdb"}
        dbt = Path(sys.executable).with_name("dbt")
        result = subprocess.run(
            [str(dbt), "parse", "--quiet", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR)],
            cwd=PROJECT_DIR,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"dbt parse of {PROJECT_DIR} failed:\n{result.stdout}\n{result.stderr}")
        _MANIFEST_HASH.write_text(expected, encoding="utf-8")
    return MANIFEST
