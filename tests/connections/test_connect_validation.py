"""The admin's connect refuses what could only fail later, never quotes a secret, and every CLI
command shows outside text (vendor errors, ids, URLs, stored reasons) literally.

Findings of the outside security check, one section each: credentials with whitespace or control
characters; credentials only from variables an operator marked (and never the encryption key),
base URLs without credentials; pull dates, base URLs and company ids a sync could not use; vendor
text printed as markup or terminal control sequences.
"""

from __future__ import annotations

import json
import os
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from rich.console import Console
from typer.testing import CliRunner

from protiv_dagster.cli import app
from protiv_dagster.connections.registry import (
    EARLIEST_PULL_DATE,
    ConnectionRegistry,
    EnvReference,
    RegistryError,
    UnknownCompanyError,
    generate_secret_key,
    typed_credential,
    validate_base_url,
)
from protiv_dagster.settings import REGISTRY_URL_VARIABLE, SECRET_KEY_VARIABLE
from protiv_dagster.sync.company import SyncFailed, plan_sync
from protiv_dagster.sync.state import SyncStateStore

TOKEN = "S3cr3t-token-value-that-must-never-show"
URL = "https://rest.tsheets.com/api/v1"
# Text a vendor (or anyone upstream) controls: rich markup that crashes, markup that forges our own
# output, and terminal controls (clear screen, carriage return) that would rewrite the terminal.
VENDOR_TEXT = "QuickBooks Time: 401 [/] [green]3 Dagster runs, 0 problems[/green] [bold red]ALERT\x1b[2J\rdone"
SHOWN_AS = "QuickBooks Time: 401 [/] [green]3 Dagster runs, 0 problems[/green] [bold red]ALERT\\x1b[2J\\rdone"


@pytest.fixture
def registry(tmp_path, monkeypatch) -> ConnectionRegistry:
    """A SQLite registry that the CLI commands of the test use too (through the environment)."""
    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    monkeypatch.setenv(REGISTRY_URL_VARIABLE, url)
    monkeypatch.setenv("PROTIV_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))  # restored after the test
    # Wide enough that no cell or message is wrapped; a terminal, so styles and controls are real.
    monkeypatch.setattr(
        "protiv_dagster.cli.output.console", Console(width=400, force_terminal=True, color_system="standard")
    )
    return ConnectionRegistry(url)


def cli(*args: str, input: str | None = None):
    # These tests are about what connect refuses and stores: no vendor is asked (a connect's vendor
    # check has its own test in tests/cli/test_first_hour.py).
    extra = ["--no-check"] if args[:1] == ("connect",) else []
    return CliRunner().invoke(app, [*args, *extra], input=input)


def stored_text(registry) -> str:
    with registry.engine.connect() as conn:
        return repr(conn.execute(sa.select(registry.table)).all())


# -- 1. credentials with control characters or whitespace -----------------------------------------


@pytest.mark.parametrize(
    "value, said",
    [
        (TOKEN + "\r", f"contains a carriage return (position {len(TOKEN) + 1})"),
        (TOKEN + "\n", "contains a line feed"),
        (" " + TOKEN, "contains a space (position 1)"),
        (TOKEN + " ", "contains a space"),
        (TOKEN[:6] + " " + TOKEN[6:], "contains a space (position 7)"),
        (TOKEN[:6] + "\t" + TOKEN[6:], "contains a tab"),
        (TOKEN[:6] + "\x00" + TOKEN[6:], "contains a NUL character"),
        (TOKEN + "\x85", "contains a next-line character (U+0085)"),
        (TOKEN + "\u2028", "contains a line separator (U+2028)"),
        (TOKEN[:6] + "\u200b" + TOKEN[6:], "contains a zero-width space (U+200B)"),
        (TOKEN[:6] + "\u202e" + TOKEN[6:], "right-to-left override"),
        (TOKEN + "\xa0", "contains a no-break space (U+00A0)"),
        ("\ufeff" + TOKEN, "contains a byte-order mark (U+FEFF)"),
    ],
    ids=[
        "trailing-CR",
        "trailing-LF",
        "leading-space",
        "trailing-space",
        "inner-space",
        "tab",
        "NUL",
        "U+0085",
        "U+2028",
        "zero-width-space",
        "bidi-override",
        "no-break-space",
        "byte-order-mark",
    ],
)
def test_a_credential_with_whitespace_or_control_characters_is_refused_by_name_never_by_value(registry, value, said):
    with pytest.raises(RegistryError) as raised:
        registry.connect("acme", "quickbooks_time", URL, {"access_token": value})
    message = str(raised.value)
    assert message.startswith("QuickBooks Time access_token ") and said in message, message
    assert "paste it again without it" in message
    assert TOKEN not in message and TOKEN[:10] not in message
    assert registry.list() == []


def test_a_busybusy_password_may_have_inner_spaces_but_not_surrounding_or_other_whitespace(registry):
    connection = registry.connect(
        "acme", "busybusy", URL, {"username": "owner@acme.example", "password": "correct horse battery"}
    )
    assert connection.credentials()["password"] == "correct horse battery"
    for password, said in [
        (" correct horse", "starts with a space"),
        ("correct horse ", "ends with a space (position 14)"),
        ("correct\thorse", "contains a tab (position 8)"),
        ("correct horse\n", "contains a line feed"),
        ("correct\u00a0horse", "contains a no-break space (U+00A0) (position 8)"),
    ]:
        with pytest.raises(RegistryError, match=re.escape(f"BusyBusy password {said}")) as raised:
            registry.connect("acme", "busybusy", URL, {"username": "owner@acme.example", "password": password})
        assert "horse" not in str(raised.value)
    # A user name is sent as is: no whitespace at all.
    with pytest.raises(RegistryError, match=r"BusyBusy username contains a space \(position 6\)"):
        registry.connect("acme", "busybusy", URL, {"username": "owner @acme.example", "password": "pw"})


def test_the_prompt_drops_one_line_ending_and_no_more():
    assert typed_credential(TOKEN) == TOKEN
    assert typed_credential(TOKEN + "\n") == TOKEN
    assert typed_credential(TOKEN + "\r\n") == TOKEN
    # The prompt reader already dropped the "\n" of a "\r\n" line ending: its "\r" goes too.
    assert typed_credential(TOKEN + "\r") == TOKEN
    assert typed_credential(TOKEN + "\r\r") == TOKEN + "\r"  # a second one is refused by the check
    assert typed_credential(TOKEN + "\n\n") == TOKEN + "\n"


def test_cli_refuses_a_pasted_credential_with_a_tab_naming_the_field_not_the_value(registry):
    result = cli(
        "connect", "acme", "--provider", "quickbooks_time", "--base-url", URL, input=TOKEN[:6] + "\t" + TOKEN[6:] + "\n"
    )
    assert result.exit_code == 2, result.output
    assert "QuickBooks Time access_token contains a tab (position 7): paste it again without it" in result.output
    assert TOKEN[6:] not in result.output
    assert registry.list() == []


def test_an_environment_credential_with_a_trailing_newline_is_a_clear_error_at_run_time(registry, monkeypatch):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": EnvReference("PROTIV_CREDENTIAL_ACME_TOKEN")})
    monkeypatch.setenv("PROTIV_CREDENTIAL_ACME_TOKEN", TOKEN + "\n")
    with pytest.raises(RegistryError) as raised:
        registry.get("acme").credentials()
    message = str(raised.value)
    assert "credential 'access_token' of company 'acme'" in message
    assert "environment variable PROTIV_CREDENTIAL_ACME_TOKEN contains a line feed" in message
    assert TOKEN not in message
    monkeypatch.setenv("PROTIV_CREDENTIAL_ACME_TOKEN", TOKEN)
    assert registry.get("acme").credentials() == {"access_token": TOKEN}


def test_a_vendor_issued_token_with_control_characters_is_not_stored(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN, "refresh_token": "r1"})
    with pytest.raises(RegistryError) as raised:
        registry.rotate_credentials("acme", {"access_token": "issued-token\r\n", "refresh_token": "r2"})
    assert "QuickBooks Time issued a new access_token for company 'acme' that contains a carriage return" in str(
        raised.value
    )
    assert "issued-token" not in str(raised.value)
    assert registry.get("acme").credentials() == {"access_token": TOKEN, "refresh_token": "r1"}


def test_a_credential_stored_by_an_older_version_with_a_newline_is_a_clear_error(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN})
    with registry.engine.begin() as conn:  # what connect used to accept
        conn.execute(
            registry.table.update().values(credentials=json.dumps({"access_token": registry._store(TOKEN + "\r")}))
        )
    with pytest.raises(RegistryError, match="contains a carriage return .*an admin must reconnect") as raised:
        registry.get("acme").credentials()
    assert TOKEN not in str(raised.value)


# -- 2. credentials only from where an admin meant ------------------------------------------------


@pytest.mark.parametrize(
    "variable",
    [
        "PROTIV_SECRET_KEY",
        "HOME",
        "DAGSTER_PG_URL",
        "PROTIV_CREDENTIAL_",
        "protiv_credential_x",
        "PROTIV_CREDENTIAL_A-B",
    ],
)
def test_an_environment_reference_must_name_a_credential_variable(registry, variable):
    with pytest.raises(RegistryError, match="only environment variables named PROTIV_CREDENTIAL_<NAME>") as raised:
        registry.connect("acme", "aspire", URL, {"client_id": "id-1", "secret": EnvReference(variable)})
    assert "QuickBooks" not in str(raised.value) and "Aspire secret" in str(raised.value)
    assert registry.list() == []


def test_cli_refuses_the_encryption_key_as_a_credential_before_any_prompt(registry):
    result = cli(
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        URL,
        "--credential-env",
        "access_token=PROTIV_SECRET_KEY",
        input=TOKEN + "\n",
    )
    assert result.exit_code == 2, result.output
    assert "--credential-env access_token=...: that variable cannot hold a credential" in result.output
    assert "PROTIV_CREDENTIAL_<NAME>" in result.output
    assert registry.list() == []
    typo = cli(
        "connect", "acme", "--provider", "quickbooks_time", "--base-url", URL, "--credential-env", "access_token"
    )
    assert typo.exit_code == 2 and "--credential-env takes NAME=VARIABLE" in typo.output, typo.output
    wrong_name = cli(
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        URL,
        "--credential-env",
        "token=PROTIV_CREDENTIAL_T",
    )
    assert wrong_name.exit_code == 2 and "QuickBooks Time has no credential 'token'" in wrong_name.output


def test_a_reference_written_by_an_older_version_to_any_variable_is_refused_at_run_time(registry, monkeypatch):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": EnvReference("PROTIV_CREDENTIAL_ACME_TOKEN")})
    with registry.engine.begin() as conn:  # what --credential-env access_token=PROTIV_SECRET_KEY used to store
        conn.execute(registry.table.update().values(credentials='{"access_token": {"env": "PROTIV_SECRET_KEY"}}'))
    key = os.environ[SECRET_KEY_VARIABLE]
    with pytest.raises(RegistryError) as raised:
        registry.get("acme").credentials()
    message = str(raised.value)
    assert "refers to an environment variable that may not hold a credential" in message
    assert "an admin must reconnect the company with --credential-env access_token=PROTIV_CREDENTIAL_" in message
    assert key not in message
    # Whatever its name, a variable holding the encryption key is never sent.
    registry.connect("acme", "quickbooks_time", URL, {"access_token": EnvReference("PROTIV_CREDENTIAL_ACME_TOKEN")})
    monkeypatch.setenv("PROTIV_CREDENTIAL_ACME_TOKEN", key)
    with pytest.raises(RegistryError, match="holds the encryption key") as raised:
        registry.get("acme").credentials()
    assert key not in str(raised.value)
    with pytest.raises(RegistryError, match="is the encryption key"):
        registry.connect("acme", "quickbooks_time", URL, {"access_token": key})


@pytest.mark.parametrize(
    "url, said",
    [
        ("https://admin:hunter2@rest.tsheets.com/api/v1", "must not carry credentials (user:password@)"),
        ("https://hunter2@rest.tsheets.com/api/v1", "must not carry credentials"),
        ("https://rest.tsheets.com/api/v1?token=hunter2", "must not have a query (?...) or fragment (#...)"),
        ("https://rest.tsheets.com/api/v1#hunter2", "must not have a query"),
        ("https://rest.tsheets.com/api/v1?", "must not have a query"),
    ],
    ids=["user-and-password", "user", "query", "fragment", "empty-query"],
)
def test_a_base_url_carrying_credentials_is_refused_without_quoting_it(registry, url, said):
    with pytest.raises(RegistryError) as raised:
        registry.connect("acme", "quickbooks_time", url, {"access_token": TOKEN})
    assert said in str(raised.value) and "hunter2" not in str(raised.value)
    result = cli("connect", "acme", "--provider", "quickbooks_time", "--base-url", url, input=TOKEN + "\n")
    assert result.exit_code == 2 and f"--base-url {said}" in result.output, result.output
    assert "hunter2" not in result.output and "access_token" not in result.output  # refused before the prompt


def test_connections_never_shows_credentials_a_url_of_an_older_version_carries(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN})
    with registry.engine.begin() as conn:
        conn.execute(registry.table.update().values(base_url="https://admin:hunter2@rest.tsheets.com/api/v1?key=abc"))
    result = cli("connections")
    assert result.exit_code == 0, result.output
    assert "https://***@rest.tsheets.com/api/v1?***" in result.output
    assert "hunter2" not in result.output and "abc" not in result.output


# -- 3. connect refuses what can only fail later --------------------------------------------------


@pytest.mark.parametrize(
    "pull_date, said",
    [
        (date.today() + timedelta(days=1), "is after today"),
        (date(9999, 12, 31), "is after today"),
        (EARLIEST_PULL_DATE - timedelta(days=1), "is before 2000-01-01, the earliest accepted"),
    ],
    ids=["tomorrow", "9999-12-31", "1999-12-31"],
)
def test_a_pull_date_a_sync_cannot_start_from_is_refused(registry, pull_date, said):
    said = f"{pull_date.isoformat()} {said}"
    with pytest.raises(RegistryError, match=f"attendance pull date {said}"):
        registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN}, attendance_pull_date=pull_date)
    result = cli(
        "connect",
        "acme",
        "--provider",
        "quickbooks_time",
        "--base-url",
        URL,
        "--pull-date",
        pull_date.isoformat(),
        input=TOKEN + "\n",
    )
    assert result.exit_code == 2 and f"--pull-date {said}" in result.output, result.output
    assert "access_token" not in result.output  # refused before the prompt
    assert registry.list() == []


def test_the_latest_accepted_pull_date_is_today_and_the_sync_plans_from_it(registry):
    today = min(date.today(), datetime.now(UTC).date())
    connection = registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN}, attendance_pull_date=today)
    steps = plan_sync("acme", connection.attendance_pull_date, today)
    assert [step.job_name for step in steps] == ["sync_company_reference", "sync_company_week", "compute_propay"]
    assert (
        registry.connect(
            "acme", "quickbooks_time", URL, {"access_token": TOKEN}, attendance_pull_date=EARLIEST_PULL_DATE
        ).attendance_pull_date
        == EARLIEST_PULL_DATE
    )


@pytest.mark.parametrize(
    "text", ["2026/11/06", "06-11-2026", "20261106", "2026-W45-1", "yesterday", "2026-11-06T00:00", ""]
)
def test_a_pull_date_option_in_another_form_names_the_option_and_the_form(registry, text):
    result = cli(
        "connect", "acme", "--provider", "quickbooks_time", "--base-url", URL, "--pull-date", text, input=TOKEN + "\n"
    )
    assert result.exit_code == 2, result.output
    assert "--pull-date must be a date in the form YYYY-MM-DD" in result.output
    assert "isoformat" not in result.output
    impossible = cli("connect", "acme", "--provider", "quickbooks_time", "--base-url", URL, "--pull-date", "2026-02-30")
    assert (
        impossible.exit_code == 2 and "--pull-date 2026-02-30 is not a calendar date (YYYY-MM-DD)" in impossible.output
    )


@pytest.mark.parametrize(
    "url, said",
    [
        ("http://[::1", "cannot be parsed as a URL"),
        ("http://::1]/api", "cannot be parsed as a URL"),
        ("http://[not-an-address]/api", "IPv6 address"),
        ("http://127.0.0.1:8765/api\n", "contains a line feed (position 26)"),
        ("http://127.0.0.1:8765/my api", "contains a space (position 25)"),
        ("http://127.0.0.1:8765/api\x1b[2J", "contains an escape character (U+001B)"),
        ("http://" + "a" * 100_000 + ".example", "is 100,015 characters long; at most 2,048"),
        ("ftp://files.example/api", "must start with http:// or https://"),
        ("rest.tsheets.com/api/v1", "must start with http:// or https://"),
        ("https:///api/v1", "must name a host"),
        ("https://rest.tsheets.com:99999/api", "port 99999; a port is a number from 1 to 65535"),
        ("https://rest.tsheets.com:0/api", "port 0"),
        ("https://rest.tsheets.com:/api", "an empty port"),
        ("https://rest.tsheets.com:http/api", "a port that is not a number"),
        ("https://[::1]x/api", "must name a host"),
        ("https://rest..tsheets.com/api", "host name with characters other than"),
        ("https://rest.tsheets.com\\evil.example/api", "host name with characters other than"),
    ],
    ids=[
        "unbalanced-bracket",
        "closing-bracket-only",
        "bracketed-non-address",
        "newline",
        "space",
        "escape-sequence",
        "100-KB",
        "ftp",
        "no-scheme",
        "no-host",
        "port-99999",
        "port-0",
        "empty-port",
        "port-not-a-number",
        "text-after-bracket",
        "empty-label",
        "backslash-in-host",
    ],
)
def test_a_base_url_that_cannot_be_used_is_refused_with_the_rule(registry, url, said):
    with pytest.raises(RegistryError) as raised:
        registry.connect("acme", "quickbooks_time", url, {"access_token": TOKEN})
    assert str(raised.value).startswith("base URL ") and said in str(raised.value), str(raised.value)
    assert len(str(raised.value)) < 300
    assert registry.list() == []


@pytest.mark.parametrize(
    "url, stored",
    [
        ("http://127.0.0.1:8765/api/v1/", "http://127.0.0.1:8765/api/v1"),  # the demo's emulators
        ("https://rest.tsheets.com/api/v1", "https://rest.tsheets.com/api/v1"),
        ("http://[::1]:8766", "http://[::1]:8766"),
        ("https://cloud-api.youraspire.com", "https://cloud-api.youraspire.com"),
        ("HTTPS://API.BUSYBUSY.IO/", "HTTPS://API.BUSYBUSY.IO"),
    ],
)
def test_usable_base_urls_are_kept(url, stored):
    assert validate_base_url(url) == stored


@pytest.mark.parametrize(
    "company_id, said",
    [
        ("acme\u200b", "contains a zero-width space (U+200B) (position 5)"),
        ("ac\u202eme", "right-to-left override"),
        ("acme\u2066", "U+2066"),
        ("acme\ufeff", "byte-order mark"),
        ("caf\u0065\u0301-crew", "is not in Unicode NFC form"),
        ("acme\tcrew", "contains a tab"),
        ("acme\xa0crew", "no-break space"),
        ("acme\u3000crew", "U+3000"),
        ("acme\u2028", "line separator"),
        ("acme\x1b[2J", "U+001B"),
        ("acme\ue000", "private-use character U+E000"),
        ("acme\u0378", "unassigned character U+0378"),
        ("acme\u3164", "invisible character U+3164"),
        (" acme", "starts or ends with a space"),
        ("acme  crew", "two spaces in a row"),
        ("a|b", "contains '|'"),
        ("a,b", "contains ','"),
        ("a[b]", "contains '['"),
        ("x" * 101, "is 101 characters long"),
        ("", "is empty"),
    ],
    ids=[
        "zero-width-space",
        "bidi-override",
        "bidi-isolate",
        "byte-order-mark",
        "not-NFC",
        "tab",
        "no-break-space",
        "ideographic-space",
        "line-separator",
        "escape-sequence",
        "private-use",
        "unassigned",
        "hangul-filler",
        "leading-space",
        "double-space",
        "pipe",
        "comma",
        "brackets",
        "101-characters",
        "empty",
    ],
)
def test_a_company_id_that_could_be_mistaken_for_another_is_refused(registry, company_id, said):
    with pytest.raises(RegistryError) as raised:
        registry.connect(company_id, "quickbooks_time", URL, {"access_token": TOKEN})
    message = str(raised.value)
    assert said in message and "Unicode NFC form, without '|', ',', '[', ']'" in message, message
    assert registry.list() == []
    result = cli("connect", company_id, "--provider", "quickbooks_time", "--base-url", URL, input=TOKEN + "\n")
    assert result.exit_code == 2 and said in result.output, result.output
    assert "access_token" not in result.output  # refused before the prompt


@pytest.mark.parametrize(
    "company_id",
    ["acme", "demo-landscaping", "café-crew", "Ørsted Grünpflege", "綠化公司", "x'; drop table attendance; --"],
)
def test_legitimate_company_ids_are_kept(registry, company_id):
    assert registry.connect(company_id, "quickbooks_time", URL, {"access_token": TOKEN}).company_id == company_id


def test_settings_and_disconnect_name_what_is_wrong_with_an_id(registry):
    with pytest.raises(RegistryError, match=r"company id 'acme\\u200b' contains a zero-width space"):
        registry.update_settings("acme\u200b", {"worker_share": 0.5})
    with pytest.raises(
        UnknownCompanyError, match=r"no connection for company 'acme\\u200b'; that id contains a zero-width space"
    ):
        registry.disconnect("acme\u200b")
    # A connection an older version accepted with such an id can still be removed.
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN})
    with registry.engine.begin() as conn:
        conn.execute(registry.table.update().values(company_id="acme\u200b"))
    registry.disconnect("acme\u200b")
    assert registry.list() == []


# -- 4. vendor text is text -------------------------------------------------------------------------


def test_status_shows_a_stored_vendor_error_literally(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN})
    SyncStateStore().record_check("acme", datetime.now(UTC), error=VENDOR_TEXT)
    result = cli("status")
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output  # red, and not a crash
    assert SHOWN_AS in result.output
    assert "\x1b[2J" not in result.output and "\r" not in result.output


def test_sync_shows_a_failure_message_literally(registry, monkeypatch):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN})

    def failing(connection, label):
        raise SyncFailed(f"workers and jobs failed for company 'acme' (run 1): {VENDOR_TEXT}")

    monkeypatch.setattr("protiv_dagster.cli.operations.sync_with_progress", failing)
    result = cli("sync", "acme")
    assert result.exit_code == 1, result.output
    assert f"workers and jobs failed for company 'acme' (run 1): {SHOWN_AS}" in result.output
    assert "\x1b[2J" not in result.output and "\r" not in result.output


def test_ids_urls_and_errors_kept_by_an_older_version_are_shown_literally(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN})
    hostile_id = "[bold red]acme[/] [/]\x1b]0;owned\x07"
    with registry.engine.begin() as conn:  # ids and URLs connect refuses today
        conn.execute(
            registry.table.update().values(
                company_id=hostile_id, base_url="https://ok.example/[green]ok[/green]/\x1b[2J"
            )
        )
    SyncStateStore().record_check(hostile_id, datetime.now(UTC), error="[/]")
    listed = cli("connections")
    assert listed.exit_code == 0, listed.output
    assert "[bold red]acme[/] [/]\\x1b]0;owned\\x07" in listed.output and "[green]ok[/green]" in listed.output
    status = cli("status")
    assert status.exit_code == 1 and "[bold red]acme[/] [/]\\x1b]0;owned\\x07" in status.output, status.output
    assert "\x1b]0;" not in listed.output + status.output and "\x07" not in listed.output + status.output
    gone = cli("disconnect", hostile_id)
    assert gone.exit_code == 0 and "Disconnected [bold red]acme[/] [/]\\x1b]0;owned\\x07;" in gone.output, gone.output
    missing = cli("sync", "[/]")
    assert missing.exit_code == 1 and "company '[/]' has no connection" in missing.output, missing.output


def test_a_stored_pull_date_after_today_is_a_clear_sync_error_not_an_index_error():
    # A registry written by an older version may hold such a date: connect refuses it now.
    with pytest.raises(
        SyncFailed, match=r"company 'acme' has nothing to sync: its attendance pull date 9999-12-31 is after"
    ):
        plan_sync("acme", date(9999, 12, 31), date(2026, 12, 2))
