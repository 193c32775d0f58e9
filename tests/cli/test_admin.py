"""The admin commands: keygen, connect (hidden secrets, pasted line endings), connections,
disconnect, and a company's settings versions."""

from __future__ import annotations

import re

import pytest

from tests.cli.commands import protiv

pytestmark = pytest.mark.slow


def test_connect_asks_for_secrets_hidden_and_lists_without_them(tmp_path):
    key = protiv("keygen", cwd=tmp_path).stdout.strip()
    env = {"PROTIV_SECRET_KEY": key}
    done = protiv(
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        "https://rest.tsheets.com/api/v1",
        "--no-check",
        cwd=tmp_path,
        env_extra=env,
        stdin="tok-very-secret-123\n",
    )
    assert done.returncode == 0, done.stderr
    assert "access_token (encrypted)" in done.stdout and "tok-very-secret-123" not in done.stdout + done.stderr
    listed = protiv("connections", cwd=tmp_path, env_extra=env)
    assert "acme" in listed.stdout and "QuickBooks Time" in listed.stdout and "tok-very" not in listed.stdout
    assert b"tok-very-secret-123" not in (tmp_path / "data" / "registry.sqlite3").read_bytes()

    wrong = protiv("connect", "acme", "--provider", "jobber", "--base-url", "https://x", cwd=tmp_path, env_extra=env)
    assert wrong.returncode == 2 and "unknown provider 'jobber'" in wrong.stdout
    no_key = protiv(
        "connect", "beta", "--provider", "quickbooks_time", "--base-url", "https://x", cwd=tmp_path, stdin="t\n"
    )
    assert no_key.returncode == 2 and "PROTIV_SECRET_KEY is not set" in no_key.stdout
    gone = protiv("disconnect", "acme", cwd=tmp_path, env_extra=env)
    assert gone.returncode == 0 and "stays in the warehouse" in gone.stdout


def test_a_pasted_line_ending_is_dropped_and_anything_more_is_refused_by_name(tmp_path, monkeypatch):
    # Through the real hidden prompt (getpass): it drops the "\n", the CLI the "\r" of a "\r\n".
    from protiv_dagster.connections.registry import ConnectionRegistry

    key = protiv("keygen", cwd=tmp_path).stdout.strip()
    env = {"PROTIV_SECRET_KEY": key}
    args = (
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        "https://rest.tsheets.com/api/v1",
        "--no-check",
    )
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


def test_settings_show_set_and_list_their_versions(tmp_path):
    key = protiv("keygen", cwd=tmp_path).stdout.strip()
    env = {"PROTIV_SECRET_KEY": key}
    connected = protiv(
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        "https://rest.tsheets.com/api/v1",
        "--no-check",
        cwd=tmp_path,
        env_extra=env,
        stdin="tok-very-secret-123\n",
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
    done = protiv(
        "settings", "set", "acme", "--file", str(new), "--effective-from", "2099-01-04", cwd=tmp_path, env_extra=env
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.startswith("Settings of acme: version 2 recorded, in force from 2099-01-04: ")
    listed = protiv("settings", "versions", "acme", cwd=tmp_path, env_extra=env)
    lines = listed.stdout.splitlines()
    rows = [i for i, line in enumerate(lines) if re.match(r"version [12], ", line)]
    assert len(rows) == 2 and "the start" in lines[rows[0]] and "in force from 2099-01-04" in lines[rows[1]]
    assert '"worker_share":0.6' in "".join(lines[rows[1] + 1 :])

    past = protiv(
        "settings", "set", "acme", "--file", str(new), "--effective-from", "2001-01-01", cwd=tmp_path, env_extra=env
    )
    assert past.returncode == 2 and "cannot take effect from 2001-01-01, before today" in past.stdout
    bad_date = protiv(
        "settings", "set", "acme", "--file", str(new), "--effective-from", "next week", cwd=tmp_path, env_extra=env
    )
    assert bad_date.returncode == 2
    assert "--effective-from must be a date in the form YYYY-MM-DD" in bad_date.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"worker_share": 2}')
    refused = protiv("settings", "set", "acme", "--file", str(bad), cwd=tmp_path, env_extra=env)
    assert refused.returncode == 2 and "worker_share" in refused.stdout
    assert protiv("settings", "versions", "acme", cwd=tmp_path, env_extra=env).stdout.count("version 2, ") == 1
