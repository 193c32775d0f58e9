"""No credential or token leaks anywhere, on the production setup: a PostgreSQL-backed Dagster
instance, for each vendor, after a full sync and a failing one.

Searched: every table of the instance's PostgreSQL database (event log with asset metadata and
errors, runs with their run config, run tags, ...), every file under the instance's home (compute
logs), every warehouse table, the exception texts, the registry's stored rows, and the output of
``protiv connections``, ``protiv status`` and a failing ``protiv sync``. The secrets are every value
the harness lists (rotated OAuth tokens, BusyBusy's sha256 digest and session keys included) plus
the encryption key itself. tests/test_registry.py covers encryption and key errors of the registry
API; here a sync without the key must fail with the same clear message.
"""

from __future__ import annotations

import traceback
import zlib
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from rich.console import Console
from typer.testing import CliRunner

from protiv_dagster.cli import app
from protiv_dagster.company_sync import SyncFailed
from protiv_dagster.settings import REGISTRY_URL_VARIABLE, SECRET_KEY_VARIABLE, WAREHOUSE_URL_VARIABLE
from tests.assets.conftest import COMPANY, pipeline, provider, warehouse_backend  # noqa: F401
from tests.assets.test_pipeline import assert_no_secret_in_events
from tests.assets.vendors import PROVIDERS


@pytest.fixture
def instance_kind() -> str:
    return "postgres"


def cell_text(value: object) -> str:
    """A database cell as text; Dagster stores snapshots zlib-compressed."""
    if isinstance(value, (bytes, memoryview)):
        raw = bytes(value)
        try:
            raw = zlib.decompress(raw)
        except zlib.error:
            pass
        return raw.decode("utf-8", "replace")
    return str(value)


def instance_database_text(url: str) -> dict[str, str]:
    """Every row of every table of the instance's database, as text, by table."""
    texts: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'"
        )]
        for table in tables:
            rows = conn.execute(sql.SQL("select * from {}").format(sql.Identifier(table))).fetchall()
            texts[table] = "\n".join(" | ".join(cell_text(v) for v in row) for row in rows)
    return texts


def files_text(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*") if p.is_file()}


def leaks(secrets: set[str], places: dict[str, str]) -> list[str]:
    """(secret prefix, place) for every secret found, also across line breaks a console inserted."""
    found = []
    for place, text in places.items():
        squeezed = "".join(text.split())
        for secret in secrets:
            if secret in text or secret in squeezed:
                found.append(f"{secret[:4]}... in {place}")
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_secret_in_instance_logs_warehouse_errors_or_cli(pipeline, provider, dagster_database, tmp_path, monkeypatch):
    harness = pipeline.harness
    secrets: set[str] = set(harness.secrets())
    pipeline.sync()
    secrets |= set(harness.secrets())  # session keys and refreshed tokens issued during the sync

    harness.change_secret()
    with pytest.raises(SyncFailed) as caught:
        pipeline.sync()
    secrets |= set(harness.secrets())
    key = __import__("os").environ[SECRET_KEY_VARIABLE]
    secrets.add(key)
    secrets = {s for s in secrets if s and len(s) >= 6}

    places: dict[str, str] = {
        "exception": "".join(traceback.format_exception(caught.value)) + repr(caught.value),
    }
    # The admin's CLI on the same registry, warehouse and instance.
    monkeypatch.setenv(REGISTRY_URL_VARIABLE, pipeline.registry.url)
    monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, pipeline.warehouse.url)
    # The CLI's console was sized when another test imported it: give it room for whole cells.
    monkeypatch.setattr("protiv_dagster.cli.console", Console(width=400))
    runner = CliRunner()
    for args in (["connections"], ["status"], ["sync", COMPANY]):
        result = runner.invoke(app, args)
        output = result.output + ("".join(traceback.format_exception(result.exception)) if result.exception else "")
        places["protiv " + " ".join(args)] = output
        if args[0] == "sync":
            assert result.exit_code == 1 and f"{harness.label}:" in result.output, output
    assert "encrypted" in places["protiv connections"] and COMPANY in places["protiv connections"]
    # Without the key a sync fails with the reason, not a crash.
    monkeypatch.delenv(SECRET_KEY_VARIABLE)
    no_key = runner.invoke(app, ["sync", COMPANY])
    places["protiv sync without key"] = no_key.output
    assert no_key.exit_code == 1 and f"{SECRET_KEY_VARIABLE} is not set" in no_key.output, no_key.output
    monkeypatch.setenv(SECRET_KEY_VARIABLE, key)
    secrets |= set(harness.secrets())

    database = instance_database_text(dagster_database)
    assert "event_logs" in database and "runs" in database and "run_tags" in database
    assert "ASSET_MATERIALIZATION" in database["event_logs"] and "STEP_FAILURE" in database["event_logs"]
    places.update({f"instance table {t}": text for t, text in database.items()})
    home = Path(__import__("os").environ["DAGSTER_HOME"])
    places.update({f"instance file {name}": text for name, text in files_text(home).items()})
    places.update({f"warehouse table {name}": frame.to_csv() for name, frame in pipeline.tables().items()})
    # At rest the registry holds ciphertext only, rotated tokens included.
    registry_file = Path(pipeline.registry.url.removeprefix("sqlite:///"))
    places["registry file"] = registry_file.read_bytes().decode("latin-1")

    assert leaks(secrets, places) == []
    assert_no_secret_in_events(pipeline)
