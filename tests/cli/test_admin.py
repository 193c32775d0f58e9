"""The README's main command end to end, run as a user runs it, twice; and the admin commands."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from pandas.testing import assert_frame_equal

from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import ALL_TABLES

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def protiv(*args: str, cwd: Path, env_extra: dict | None = None, stdin: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
    env.update({"COLUMNS": "200", **(env_extra or {})})
    return subprocess.run(
        [sys.executable, "-m", "protiv_dagster.cli", *args],
        cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=300,
    )


def summary(output: str) -> list[str]:
    return [line for line in output.splitlines() if re.search(r"ProPays|attendance rows|│", line)]


def test_demo_runs_the_initial_sync_through_dagster_and_is_safe_to_repeat(tmp_path, monkeypatch):
    port = str(free_port())
    first = protiv("demo", "--port", port, "--workers", "12", cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "Initial sync: 3 Dagster runs" in first.stdout
    assert re.search(r"\d+ ProPays \(\d+ started\), [\d,.]+ worker-hours; bonus pools final \$[\d,.]+, provisional \$[\d,.]+; \d+ pay nothing", first.stdout)
    assert "make ui" in first.stdout and "dagster dev -w workspace.yaml" in first.stdout
    warehouse = Warehouse(url=str(tmp_path / "data" / "warehouse.duckdb"))
    tables = {t.name: warehouse.read_table(t) for t in ALL_TABLES}
    assert len(tables["propay_opportunities"]) > 0 and tables["rejected_rows"].empty

    second = protiv("demo", "--port", port, "--workers", "12", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert summary(second.stdout) == summary(first.stdout)
    for table in ALL_TABLES:
        assert_frame_equal(tables[table.name], warehouse.read_table(table), obj=table.name)

    # The runs are real runs of the code location's jobs, stored in the SQLite instance the UI opens.
    home = tmp_path / "data" / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) == 6 and all(run.is_success for run in runs)  # two companies: reference, weeks, ProPays
        assert {run.job_name for run in runs} == {"sync_company_reference", "sync_company_week", "compute_propay"}
    # The generated key lives only in the git-ignored .env; the registry holds ciphertext.
    key = (tmp_path / ".env").read_text().split("PROTIV_SECRET_KEY=")[1].strip()
    assert key not in (tmp_path / "data" / "registry.sqlite3").read_bytes().decode("latin-1")


def test_connect_asks_for_secrets_hidden_and_lists_without_them(tmp_path):
    key = protiv("keygen", cwd=tmp_path).stdout.strip()
    env = {"PROTIV_SECRET_KEY": key}
    done = protiv(
        "connect", "acme", "--provider", "quickbooks_time", "--base-url", "https://rest.tsheets.com/api/v1", "--no-check",
        cwd=tmp_path, env_extra=env, stdin="tok-very-secret-123\n",
    )
    assert done.returncode == 0, done.stderr
    assert "access_token (encrypted)" in done.stdout and "tok-very-secret-123" not in done.stdout + done.stderr
    listed = protiv("connections", cwd=tmp_path, env_extra=env)
    assert "acme" in listed.stdout and "QuickBooks Time" in listed.stdout and "tok-very" not in listed.stdout
    assert b"tok-very-secret-123" not in (tmp_path / "data" / "registry.sqlite3").read_bytes()

    wrong = protiv("connect", "acme", "--provider", "jobber", "--base-url", "https://x", cwd=tmp_path, env_extra=env)
    assert wrong.returncode == 2 and "unknown provider 'jobber'" in wrong.stdout
    no_key = protiv("connect", "beta", "--provider", "quickbooks_time", "--base-url", "https://x", cwd=tmp_path, stdin="t\n")
    assert no_key.returncode == 2 and "PROTIV_SECRET_KEY is not set" in no_key.stdout
    gone = protiv("disconnect", "acme", cwd=tmp_path, env_extra=env)
    assert gone.returncode == 0 and "stays in the warehouse" in gone.stdout


def test_force_sync_shows_progress_and_status_shows_each_company_green_or_red(tmp_path, monkeypatch):
    from datetime import UTC, datetime, timedelta

    from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
    from protiv_emulators.generator import generate_company
    from tests.assets.vendors import host

    key = generate_secret_key()
    env = {"PROTIV_SECRET_KEY": key, "PROTIV_DATA_DIR": str(tmp_path / "data")}
    # As seen 30 minutes ago: nothing changed at the vendor since (a stamp of the last minutes would
    # rightly count as a change still settling).
    data = generate_company("acme", seed=3, workers=6, days=7, as_of=datetime.now(UTC) - timedelta(minutes=30), timezone="America/Denver")
    harness = host("quickbooks_time", data)
    try:
        monkeypatch.setenv("PROTIV_SECRET_KEY", key)  # for the registry written from this process
        (tmp_path / "data").mkdir()
        registry = ConnectionRegistry(f"sqlite:///{tmp_path / 'data' / 'registry.sqlite3'}")
        registry.connect("acme", "quickbooks_time", harness.base_url, harness.credentials, settings={"timezone": data.timezone})
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


def test_a_pasted_line_ending_is_dropped_and_anything_more_is_refused_by_name(tmp_path, monkeypatch):
    # Through the real hidden prompt (getpass): it drops the "\n", the CLI the "\r" of a "\r\n".
    from protiv_dagster.connections.registry import ConnectionRegistry

    key = protiv("keygen", cwd=tmp_path).stdout.strip()
    env = {"PROTIV_SECRET_KEY": key}
    args = ("connect", "acme", "--provider", "quickbooks_time", "--base-url", "https://rest.tsheets.com/api/v1", "--no-check")
    done = protiv(*args, cwd=tmp_path, env_extra=env, stdin="tok-very-secret-123\r\n")
    assert done.returncode == 0, done.stdout + done.stderr
    monkeypatch.setenv("PROTIV_SECRET_KEY", key)
    registry = ConnectionRegistry(f"sqlite:///{tmp_path / 'data' / 'registry.sqlite3'}")
    assert registry.get("acme").credentials() == {"access_token": "tok-very-secret-123"}

    refused = protiv(*args, cwd=tmp_path, env_extra=env, stdin="tok-very-secret-456\r\r\n")
    assert refused.returncode == 2
    assert (
        "QuickBooks Time access_token contains a carriage return (position 20): paste it again without it"
        in refused.stdout
    )
    assert "tok-very" not in refused.stdout + refused.stderr
    assert registry.get("acme").credentials() == {"access_token": "tok-very-secret-123"}  # kept


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
    assert "QuickBooks Time: [/] [green]3 Dagster runs, 0 problems[/green] [bold red]ALERT\\x1b[2J\\rdone" in status.stdout
    assert "\x1b" not in status.stdout and "\r" not in status.stdout and "Traceback" not in status.stderr


def test_settings_show_set_and_list_their_versions(tmp_path):
    key = protiv("keygen", cwd=tmp_path).stdout.strip()
    env = {"PROTIV_SECRET_KEY": key}
    connected = protiv(
        "connect", "acme", "--provider", "quickbooks_time", "--base-url", "https://rest.tsheets.com/api/v1", "--no-check",
        cwd=tmp_path, env_extra=env, stdin="tok-very-secret-123\n",
    )
    assert connected.returncode == 0, connected.stdout + connected.stderr
    shown = protiv("settings", "show", "acme", cwd=tmp_path, env_extra=env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert shown.stdout.splitlines()[0] == "acme: settings version 1, in force from the start"
    assert shown.stdout.splitlines()[1:] == ["{}"]  # nothing differs from the defaults
    every = protiv("settings", "show", "acme", "--all", cwd=tmp_path, env_extra=env)
    assert '"worker_share": 0.5' in every.stdout and '"distribution_method": "hours"' in every.stdout

    new = tmp_path / "settings.json"
    new.write_text('{"worker_share": 0.6, "role_buckets": {"crew": 0.8, "crew_lead": 0.2}}')
    done = protiv("settings", "set", "acme", "--file", str(new), "--effective-from", "2099-01-04", cwd=tmp_path, env_extra=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Settings of acme: version 2 recorded, in force from 2099-01-04: ")
    listed = protiv("settings", "versions", "acme", cwd=tmp_path, env_extra=env)
    lines = listed.stdout.splitlines()
    rows = [i for i, line in enumerate(lines) if re.match(r"version [12], ", line)]
    assert len(rows) == 2 and "the start" in lines[rows[0]] and "in force from 2099-01-04" in lines[rows[1]]
    assert '"worker_share":0.6' in "".join(lines[rows[1] + 1:])

    past = protiv("settings", "set", "acme", "--file", str(new), "--effective-from", "2001-01-01", cwd=tmp_path, env_extra=env)
    assert past.returncode == 2 and "cannot take effect from 2001-01-01, before today" in past.stdout
    bad_date = protiv("settings", "set", "acme", "--file", str(new), "--effective-from", "next week", cwd=tmp_path, env_extra=env)
    assert bad_date.returncode == 2
    assert "--effective-from must be a date in the form YYYY-MM-DD" in bad_date.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"worker_share": 2}')
    refused = protiv("settings", "set", "acme", "--file", str(bad), cwd=tmp_path, env_extra=env)
    assert refused.returncode == 2 and "worker_share" in refused.stdout
    assert protiv("settings", "versions", "acme", cwd=tmp_path, env_extra=env).stdout.count("version 2, ") == 1
