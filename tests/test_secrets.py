"""No credential or token leaks anywhere, on the production setup: a PostgreSQL-backed Dagster
instance, for each vendor, after a full sync and a failing one.

Searched: every table of the instance's PostgreSQL database (event log with asset metadata and
errors, runs with their run config, run tags, ...), every file under the instance's home (compute
logs), every warehouse table, the exception texts, the registry's stored rows, and the output of
``protiv connections``, ``protiv status`` and a failing ``protiv sync``, and what the integrations
service answers (statuses, a refused reconnect, its audit log). The secrets are every value
the harness lists (rotated OAuth tokens, BusyBusy's sha256 digest and session keys included) plus
the encryption key itself. tests/connections/test_registry.py covers encryption and key errors of the registry
API; here a sync without the key must fail with the same clear message.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets as secrets_module
import sqlite3
import traceback
import zlib
from contextlib import closing
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from rich.console import Console
from typer.testing import CliRunner

from protiv_dagster.cli import app
from protiv_dagster.settings import REGISTRY_URL_VARIABLE, SECRET_KEY_VARIABLE, WAREHOUSE_URL_VARIABLE
from protiv_dagster.sync.company import SyncFailed
from tests.assets.conftest import COMPANY, pipeline, provider, warehouse_backend  # noqa: F401
from tests.assets.test_pipeline import assert_no_secret_in_events
from tests.assets.vendors import PROVIDERS, leaked


@pytest.fixture
def instance_kind() -> str:
    return "postgres"


def cell_text(value: object) -> str:
    """A database cell as text; Dagster stores snapshots zlib-compressed."""
    if isinstance(value, (bytes, memoryview)):
        raw = bytes(value)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
        return raw.decode("utf-8", "replace")
    return str(value)


def instance_database_text(url: str) -> dict[str, str]:
    """Every row of every table of the instance's database, as text, by table."""
    texts: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'"
            )
        ]
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
        found += [f"{secret} in {place}" for secret in sorted(set(leaked(secrets, text) + leaked(secrets, squeezed)))]
    return found


@pytest.mark.parametrize("provider", PROVIDERS)
def test_no_secret_in_instance_logs_warehouse_errors_or_cli(
    pipeline, provider, dagster_database, tmp_path, monkeypatch
):
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
    monkeypatch.setattr("protiv_dagster.cli.output.console", Console(width=400))
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


def sqlite_databases_text(home: Path) -> dict[str, str]:
    """Every row of every table of every SQLite database under ``home`` (Dagster's default instance
    keeps runs, the event log and schedules in separate files), as text, compressed cells expanded."""
    texts: dict[str, str] = {}
    for path in home.rglob("*.db"):
        with closing(sqlite3.connect(path)) as conn:
            tables = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
            for table in tables:
                rows = conn.execute(f'select * from "{table}"').fetchall()
                texts[f"{path.relative_to(home)}:{table}"] = "\n".join(
                    " | ".join(cell_text(v) for v in row) for row in rows
                )
    return texts


def service_answers(pipeline, canaries: dict[str, str]) -> dict[str, str]:
    """What the integrations service answers over the pipeline's registry and instance, as the app
    calls it: every company's status (the stored errors, the sync history), a reconnect with canary
    credentials the vendor refuses, and the audit log the service writes."""
    from protiv_dagster.integrations.audit import AuditLog
    from protiv_dagster.integrations.auth import Actor
    from protiv_dagster.integrations.service import IntegrationService, ServiceSettings, VendorRefused
    from protiv_dagster.service.models import StatusOut

    harness = pipeline.harness
    service = IntegrationService(
        pipeline.defs, pipeline.instance, registry_url=pipeline.registry.url, settings=ServiceSettings()
    )
    operator = Actor("canary-operator", "operator")
    statuses = service.statuses(operator)
    assert [status.company_id for status in statuses] == [COMPANY]
    answers = {"service statuses": json.dumps([StatusOut.of(s).model_dump(mode="json") for s in statuses])}
    with pytest.raises(VendorRefused) as refused:
        service.connect(
            operator,
            COMPANY,
            harness.provider,
            canaries,
            base_url=harness.base_url,
            settings={"timezone": harness.data.timezone},
        )
    answers["service connect with canary credentials"] = "".join(traceback.format_exception(refused.value))
    entries = AuditLog(pipeline.registry.url).entries()
    assert [(e.action, e.outcome) for e in entries][:1] == [("connect", "refused")], entries
    answers["service audit log"] = json.dumps([e.__dict__ for e in entries], default=str)
    return answers


def canary_credentials(provider: str) -> dict[str, str]:
    """Fresh random values for every credential an admin gives the vendor, none valid: the secret
    ones are canaries; the others (BusyBusy's username: in the vendor's URLs, shown at the prompt)
    are plain wrong values."""
    from protiv_dagster.vendors.registry import VENDORS

    model = VENDORS[provider].credentials
    required, _ = model.given_by_admin()
    return {
        name: f"canary-{name}-{secrets_module.token_hex(8)}" if name in model.secret_fields() else f"nobody-{name}"
        for name in sorted(required)
    }


@pytest.mark.parametrize("instance_kind", ["sqlite", "postgres"])
@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_canary_credential_through_every_error_path_is_found_nowhere(
    request, tmp_path, monkeypatch, capfd, caplog, provider, instance_kind
):
    """The company's credentials (random canaries, plus every token and key the vendor issues along
    the way) go through every failing fault of the fault matrix, one sync each: outages, trickled and
    cut answers, a vendor echoing the credential in its error text, paging a vendor ignores or never
    ends, a week answered empty while its entries live, and at last a changed secret. Then the
    Dagster instance (SQLite files or the PostgreSQL database, every table with compressed cells
    expanded, and every file of its home), the warehouse, the registry, the exceptions, the log
    records and everything printed are searched: not one canary."""
    from tests.assets.test_fault_matrix import FAILED, FAULTS, failure_of, small_company

    caplog.set_level(logging.DEBUG)
    with small_company(request, provider, tmp_path, instance_kind) as pipeline:
        harness = pipeline.harness
        secrets: set[str] = set(harness.secrets())
        pipeline.sync()
        failing = [fault for fault in FAULTS if fault.outcome == FAILED]
        assert failing[-1].name == "secret_changed"
        errors = []
        for fault in failing:
            secrets |= set(harness.secrets())
            try:
                fault.inject(pipeline.emulator, harness)
                errors.append(failure_of(pipeline))
            finally:
                pipeline.emulator.faults.clear()
                pipeline.emulator.__dict__.pop("_answer_vendor", None)
            assert errors[-1] is not None, f"{fault.name} did not fail"
        secrets |= set(harness.secrets())
        secrets.add(os.environ[SECRET_KEY_VARIABLE])
        secrets = {s for s in secrets if s and len(s) >= 6}

        # The CLI over the same registry and instance: the stored last error, and a failing sync.
        monkeypatch.setenv(REGISTRY_URL_VARIABLE, pipeline.registry.url)
        monkeypatch.setenv(WAREHOUSE_URL_VARIABLE, pipeline.warehouse.url)
        if instance_kind == "sqlite":
            monkeypatch.setenv("DAGSTER_HOME", pipeline.instance.root_directory)
        monkeypatch.setattr("protiv_dagster.cli.output.console", Console(width=400))
        places: dict[str, str] = {"sync errors": "\n".join(errors)}
        for args in (["status", "--probe"], ["sync", COMPANY], ["connections"]):
            result = CliRunner().invoke(app, args)
            places["protiv " + " ".join(args)] = result.output + (
                "".join(traceback.format_exception(result.exception)) if result.exception else ""
            )

        canaries = canary_credentials(provider)
        secrets |= {value for value in canaries.values() if value.startswith("canary-")}
        places.update(service_answers(pipeline, canaries))

        home = Path(os.environ["DAGSTER_HOME"] if instance_kind == "postgres" else pipeline.instance.root_directory)
        if instance_kind == "postgres":
            database = instance_database_text(request.getfixturevalue("dagster_database"))
        else:
            database = sqlite_databases_text(home)
        assert any("STEP_FAILURE" in text for text in database.values())
        places.update({f"instance {name}": text for name, text in database.items()})
        places.update({f"instance file {name}": text for name, text in files_text(home).items()})
        places.update({f"warehouse table {name}": frame.to_csv() for name, frame in pipeline.tables().items()})
        places["registry file"] = Path(pipeline.registry.url.removeprefix("sqlite:///")).read_bytes().decode("latin-1")
        places["log records"] = "\n".join(
            record.getMessage() + "".join(traceback.format_exception(*record.exc_info))
            if record.exc_info
            else record.getMessage()
            for record in caplog.records
        )
        captured = capfd.readouterr()
        places["stdout"], places["stderr"] = captured.out, captured.err

        assert leaks(secrets, places) == []
        assert_no_secret_in_events(pipeline)
