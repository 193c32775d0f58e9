"""The dbt project of the analysts' layer (this folder: ``dbt_project.yml``, ``models/``, ``macros/``):
where it is, the environment its dbt process runs with, and its manifest.

The marts live in the schema ``analytics`` beside the warehouse schema ``protiv``; a warehouse in
another schema (a test's, a second deployment in the same database) gets ``<schema>_analytics``, so
two never share marts.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from filelock import FileLock

from protiv_dagster.warehouse.store import WarehouseStore

PROJECT_DIR = Path(__file__).resolve().parent
TARGET_DIR = PROJECT_DIR / "target"
MANIFEST = TARGET_DIR / "manifest.json"
# dbt's parsed project, which a command in the same target folder starts from (partial parsing).
PARTIAL_PARSE_FILE = "partial_parse.msgpack"
# The project as the last dbt build parsed it, for the next build to start from (build_target).
LAST_BUILD_PARSE = TARGET_DIR / "last_build_partial_parse.msgpack"
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


def build_target(name: str) -> Path:
    """A new target folder for one dbt build, holding the project as the last build parsed it.

    Each build gets a target folder of its own (its artifacts, read by dagster-dbt), so dbt would
    parse the whole project every time. ``target/partial_parse.msgpack`` of ``ensure_manifest`` does
    not help: dbt refuses a parse made with another target, profile or environment, and a build runs
    with its warehouse's. So each build starts from the last build's parse, which dbt checks the same
    way: it parses in full when the warehouse, its environment or a project file changed.
    """
    target = TARGET_DIR / f"{name}-{uuid.uuid4().hex[:8]}"
    target.mkdir(parents=True)
    # None yet on the first build of this deployment (or since the target folder was cleaned):
    # dbt parses in full.
    with contextlib.suppress(FileNotFoundError):
        shutil.copyfile(LAST_BUILD_PARSE, target / PARTIAL_PARSE_FILE)
    return target


def keep_the_parse(target: Path) -> None:
    """Keeps the parsed project of a build that ran to its end, for the next build. It is written
    beside and renamed over the last one: a build copying it at that moment reads the old file or
    the new one, whole, never a mix of two builds'."""
    parsed = target / PARTIAL_PARSE_FILE
    if not parsed.is_file():
        return
    staged = LAST_BUILD_PARSE.with_name(f"{LAST_BUILD_PARSE.name}.{uuid.uuid4().hex}")
    try:
        shutil.copyfile(parsed, staged)
        os.replace(staged, LAST_BUILD_PARSE)
    finally:
        staged.unlink(missing_ok=True)


def how_dbt_parsed(target: Path) -> str:
    """What dbt's log in ``target`` says about its parse: from the last build's, or in full and why."""
    reasons = []
    try:
        lines = (target / "dbt.log").read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return "dbt left no log"
    for line in lines:
        try:
            info = json.loads(line)["info"]
        except (ValueError, KeyError, TypeError):
            continue
        if info.get("name") in ("PartialParsingSkipParsing", "PartialParsingEnabled"):
            return "dbt started from the last build's parsed project"
        if info.get("name") == "UnableToPartialParse":
            reasons.append(info.get("msg", ""))
    return "dbt parsed the whole project" + (f" ({'; '.join(reasons)})" if reasons else "")
