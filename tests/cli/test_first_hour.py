"""A newcomer's first commands after `protiv demo`, in a terminal 80 columns wide, with nothing in
the environment but what the README says: every command reads the .env the demo wrote, no Dagster
warning reaches the terminal, ids and URLs are shown whole, and a failed sync is one paragraph with
the next step, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from protiv_dagster.integrations.audit import AuditLog
from tests.cli.commands import free_port

pytestmark = pytest.mark.slow
COMPANY = "demo-landscaping"


def newcomer(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """`protiv ...` as typed in a fresh terminal: no PROTIV_ or DAGSTER_ variable, 80 columns."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
    env["COLUMNS"] = "80"
    return subprocess.run(
        [sys.executable, "-m", "protiv_dagster.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def after_demo(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("first_hour")
    demo = newcomer("demo", "--workers", "5", "--port", str(free_port()), cwd=folder)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert (folder / ".env").read_text().startswith("PROTIV_SECRET_KEY=")
    return folder


def test_status_reads_the_demo_key_from_env_and_shows_ids_whole_without_warnings(after_demo):
    status = newcomer("status", cwd=after_demo)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "Warning" not in status.stderr and "Traceback" not in status.stderr, status.stderr
    row = next(line for line in status.stdout.splitlines() if line.split()[:1] == [COMPANY])
    assert row.split()[1:4] == ["QuickBooks", "Time", "green"]
    assert max(len(line) for line in status.stdout.splitlines()) <= 80


def test_connections_show_each_base_url_whole(after_demo):
    listed = newcomer("connections", cwd=after_demo)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == f"{COMPANY} (QuickBooks Time)"
    assert lines[1].startswith("  base URL http://127.0.0.1:") and lines[1].endswith("/api/v1")
    assert lines[2].startswith("  attendance from ") and lines[3] == "  credentials access_token (encrypted)"


def test_a_sync_with_the_emulator_stopped_is_one_paragraph_with_the_next_step(after_demo):
    failed = newcomer("sync", COMPANY, cwd=after_demo)
    assert failed.returncode == 1
    output = failed.stdout
    assert "Traceback" not in output + failed.stderr and "Warning" not in failed.stderr
    lines = [line for line in output.splitlines() if line.strip() and "force sync" not in line]
    assert lines[0] == f"the vendor check before the sync of company '{COMPANY}' failed: ", output
    assert "connection refused" in output and "PROTIV_SECRET_KEY" not in output
    paragraph = " ".join(line.strip() for line in lines)
    assert "Vendor host: 127.0.0.1:" in paragraph and "is `protiv emulator` running" in paragraph
    assert len(lines) <= 8, output

    status = newcomer("status", cwd=after_demo)
    assert status.returncode == 1  # the failed force sync turned the company red, with its reason below
    assert any(
        line.startswith(f"{COMPANY}: QuickBooks Time: connection refused") for line in status.stdout.splitlines()
    )


def test_the_emulator_serves_every_demo_company_run_so_far_and_prints_how_to_connect(after_demo):
    aspire = newcomer("demo", "--vendor", "aspire", "--workers", "5", "--port", str(free_port()), cwd=after_demo)
    assert aspire.returncode == 0, aspire.stdout[-2000:] + aspire.stderr[-2000:]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
    env["COLUMNS"] = "200"
    served = subprocess.Popen(
        [sys.executable, "-m", "protiv_dagster.cli", "emulator"],
        cwd=after_demo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines = []
        while not lines or "Ctrl-C stops them." not in lines[-1]:
            line = served.stdout.readline()
            assert line, "".join(lines)
            lines.append(line)
        text = "".join(lines)
        assert f"QuickBooks Time emulator for {COMPANY} at http://127.0.0.1:" in text
        assert "Aspire emulator for demo-aspire-grounds at http://127.0.0.1:" in text
        assert "connect with access_token " in text and "connect with client_id " in text
        # Both demo companies answer their stored credentials: green on a probe, the QuickBooks Time one too.
        probed = newcomer("status", "--probe", cwd=after_demo)
        rows = {
            line.split()[0]: line
            for line in probed.stdout.splitlines()
            if line.split()[:1] in ([COMPANY], ["demo-aspire-grounds"])
        }
        assert "green" in rows[COMPANY] and "green" in rows["demo-aspire-grounds"], probed.stdout
    finally:
        served.terminate()
        try:
            served.wait(timeout=30)
        except subprocess.TimeoutExpired:
            served.kill()
            served.wait(timeout=10)
            raise AssertionError("protiv emulator did not stop on SIGTERM") from None


def test_connect_asks_the_vendor_and_says_green_or_red_with_the_reason(after_demo):
    from datetime import UTC, datetime

    from protiv_emulators.generator import generate_company
    from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

    emulator = QuickBooksTimeEmulator().start()
    try:
        token = emulator.add_company(generate_company("oak", seed=3, workers=5, days=7, as_of=datetime.now(UTC)))
        url = f"{emulator.base_url}"

        def connect(company: str, typed: str, *extra: str) -> subprocess.CompletedProcess:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("PROTIV_", "DAGSTER_"))}
            env["COLUMNS"] = "80"
            return subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "protiv_dagster.cli",
                    "connect",
                    company,
                    "--provider",
                    "quickbooks_time",
                    "--base-url",
                    url,
                    *extra,
                ],
                cwd=after_demo,
                env=env,
                input=typed + "\n",
                capture_output=True,
                text=True,
                timeout=120,
            )

        good = connect("oak", token)
        assert good.returncode == 0, good.stdout + good.stderr
        assert "green: QuickBooks Time accepted the credentials" in good.stdout and token not in good.stdout

        wrong = connect("elm", "not-the-token-" + "x" * 10)
        assert wrong.returncode == 1, wrong.stdout + wrong.stderr
        red = [line for line in wrong.stdout.splitlines() if line.startswith("red: ")]
        assert red and "QuickBooks Time" in red[0] and "not-the-token" not in wrong.stdout + wrong.stderr
        assert "(nothing was stored)" in " ".join(wrong.stdout.split()), wrong.stdout
        # As the integrations service's connect: the vendor is asked before anything is stored.
        listed = newcomer("connections", cwd=after_demo)
        assert "oak (QuickBooks Time)" in listed.stdout and "elm" not in listed.stdout, listed.stdout
        status = newcomer("status", cwd=after_demo)
        rows = {line.split()[0] for line in status.stdout.splitlines() if line.split()}
        assert "oak" in rows and "elm" not in rows, status.stdout
        audit = AuditLog(f"sqlite:///{after_demo / 'data' / 'registry.sqlite3'}")
        assert [(e.action, e.outcome) for e in audit.entries("elm")] == [("connect", "refused")]
        assert audit.entries("oak")[0].actor.startswith("cli:") and audit.entries("oak")[0].outcome == "done"

        asked = len(emulator.request_log)
        offline = connect("ash", "not-the-token-" + "y" * 10, "--no-check")
        assert offline.returncode == 0 and "Not checked with the vendor (--no-check)" in offline.stdout
        assert len(emulator.request_log) == asked  # nothing was sent to the vendor
    finally:
        emulator.stop()


def test_help_names_arguments_and_options_plainly_at_80_columns(tmp_path):
    """`--help` shows COMPANY_ID as a name, not typer's {COMPANY_ID} or `<str>`/`<bool>` tags, and
    wraps sentences at the terminal's width."""
    sync = newcomer("sync", "--help", cwd=tmp_path)
    assert sync.returncode == 0, sync.stderr
    lines = sync.stdout.splitlines()
    assert lines[0] == "Usage: python -m protiv_dagster.cli sync [OPTIONS] COMPANY_ID"
    assert lines[2] == "  Force sync one company now: workers and jobs, every week from its attendance"
    assert "  COMPANY_ID  Protiv company id.  [required]" in lines
    for command in (["connect"], ["status"], ["settings", "show"], ["demo"], ["analyst-role", "grant"]):
        shown = newcomer(*command, "--help", cwd=tmp_path)
        assert shown.returncode == 0, (command, shown.stderr)
        assert all(len(line) <= 80 for line in shown.stdout.splitlines()), command
        for tag in ("<str>", "<bool>", "<int>", "{", "}"):
            assert tag not in shown.stdout, (command, tag, shown.stdout)
        assert shown.stderr == "", (command, shown.stderr)


def test_connect_to_an_unreachable_vendor_is_red_in_seconds_without_retry_noise(tmp_path):
    """A refused connection is reported after three quick attempts (waits of 0.5 s and 1 s, where a
    sync's client rides out a minute), as one paragraph on stdout; the
    client's retry warnings stay off the terminal (``--verbose`` shows them)."""
    from cryptography.fernet import Fernet

    (tmp_path / ".env").write_text(f"PROTIV_SECRET_KEY={Fernet.generate_key().decode()}\nPROTIV_CREDENTIAL_T=abc\n")
    port = free_port(span=1)  # nothing listens there
    refused = newcomer(
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        f"http://127.0.0.1:{port}",
        "--credential-env",
        "access_token=PROTIV_CREDENTIAL_T",
        cwd=tmp_path,
    )
    assert refused.returncode == 1, refused.stdout + refused.stderr
    lines = refused.stdout.splitlines()
    assert lines[0] == "Asking QuickBooks Time whether it accepts the credentials..."
    assert lines[1] == "red: QuickBooks Time: connection refused (is the vendor's host reachable and the"
    assert "still failing after 3 attempts" in lines[2]
    assert "(nothing was stored)" in " ".join(refused.stdout.split())
    assert "acme" not in newcomer("connections", cwd=tmp_path).stdout
    assert refused.stderr == ""
