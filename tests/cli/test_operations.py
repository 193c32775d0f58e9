"""The operators' commands: a force sync with its progress and summary, and every company's status."""

from __future__ import annotations

import re

import pytest

from tests.cli.commands import protiv, summary

pytestmark = pytest.mark.slow


def test_force_sync_shows_progress_and_status_shows_each_company_green_or_red(tmp_path, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
    from protiv_emulators.generator import generate_company
    from tests.assets.vendors import host

    key = generate_secret_key()
    env = {"PROTIV_SECRET_KEY": key, "PROTIV_DATA_DIR": str(tmp_path / "data")}
    # As seen 30 minutes ago: nothing changed at the vendor since (a stamp of the last minutes would
    # rightly count as a change still settling).
    data = generate_company(
        "acme", seed=3, workers=6, days=7, as_of=datetime.now(UTC) - timedelta(minutes=30), timezone="America/Denver"
    )
    harness = host("quickbooks_time", data)
    try:
        monkeypatch.setenv("PROTIV_SECRET_KEY", key)  # for the registry written from this process
        (tmp_path / "data").mkdir()
        registry = ConnectionRegistry(f"sqlite:///{tmp_path / 'data' / 'registry.sqlite3'}")
        registry.connect(
            "acme", "quickbooks_time", harness.base_url, harness.credentials, settings={"timezone": data.timezone}
        )
        registry.connect("birch", "aspire", "http://127.0.0.1:9/", {"client_id": "c", "secret": "not-the-secret"})

        synced = protiv("sync", "acme", cwd=tmp_path, env_extra=env)
        assert synced.returncode == 0, synced.stdout[-3000:] + synced.stderr[-3000:]
        assert re.search(r"Force sync of acme: \d+ Dagster runs in [\d.]+ s", synced.stdout)
        assert re.search(r"\d+ ProPays", synced.stdout)
        again = protiv("sync", "acme", cwd=tmp_path, env_extra=env)  # safe to repeat
        assert again.returncode == 0 and summary(again.stdout) == summary(synced.stdout)

        status = protiv("status", "--probe", cwd=tmp_path, env_extra=env)
        assert status.returncode == 1  # one company is red
        # The force sync recorded the vendor's cursor, as a sync of the daemon does: nothing waits.
        assert "changes waiting" not in status.stdout, status.stdout
        lines = status.stdout.splitlines()
        rows = {line.split()[0]: line for line in lines if line.split() and line.split()[0] in ("acme", "birch")}
        assert "green" in rows["acme"] and "red" in rows["birch"] and "Aspire" in rows["birch"]
        assert any(line.startswith("birch: ") for line in lines)  # the red company's reason, whole, under the table
        assert not any(line.startswith("acme: ") for line in lines)
        assert "not-the-secret" not in status.stdout + status.stderr

        unknown = protiv("sync", "ghost", cwd=tmp_path, env_extra=env)
        assert unknown.returncode == 1 and "company 'ghost' has no connection" in unknown.stdout
    finally:
        harness.stop()


def test_status_prints_a_stored_vendor_error_literally(tmp_path, monkeypatch):
    from datetime import UTC, datetime

    from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
    from protiv_dagster.sync.state import SyncStateStore

    key = generate_secret_key()
    monkeypatch.setenv("PROTIV_SECRET_KEY", key)
    (tmp_path / "data").mkdir()
    url = f"sqlite:///{tmp_path / 'data' / 'registry.sqlite3'}"
    ConnectionRegistry(url).connect("acme", "quickbooks_time", "http://127.0.0.1:9", {"access_token": "t0ken"})
    vendor_text = "QuickBooks Time: [/] [green]3 Dagster runs, 0 problems[/green] [bold red]ALERT\x1b[2J\rdone"
    SyncStateStore(url).record_check("acme", datetime.now(UTC), error=vendor_text)

    status = protiv("status", cwd=tmp_path, env_extra={"PROTIV_SECRET_KEY": key, "COLUMNS": "400"})
    assert status.returncode == 1, status.stdout + status.stderr  # red, not a crash
    assert (
        "QuickBooks Time: [/] [green]3 Dagster runs, 0 problems[/green] [bold red]ALERT\\x1b[2J\\rdone" in status.stdout
    )
    assert "\x1b" not in status.stdout and "\r" not in status.stdout and "Traceback" not in status.stderr
