"""The connection registry on SQLite and PostgreSQL: encryption, env references, clear errors."""

from datetime import date

import psycopg
import pytest
import sqlalchemy as sa

from protiv_dagster.connections.registry import (
    ConnectionRegistry,
    EnvReference,
    MissingSecretKeyError,
    RegistryError,
    UnknownCompanyError,
    generate_secret_key,
)
from protiv_dagster.settings import SECRET_KEY_VARIABLE

TOKEN = "S3cr3t-token-value-that-must-never-show"


@pytest.fixture(params=["sqlite", "postgres"])
def registry(request, tmp_path, monkeypatch):
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    if request.param == "sqlite":
        yield ConnectionRegistry(f"sqlite:///{tmp_path / 'registry.sqlite3'}")
        return
    url = request.getfixturevalue("postgres_url")
    schema = request.getfixturevalue("postgres_schema")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}"')
    # The registry's tables go to the schema named first on the search path.
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1) + f"?options=-csearch_path%3D{schema}"
    yield ConnectionRegistry(sa_url)


def stored_text(registry) -> str:
    with registry.engine.connect() as conn:
        rows = conn.execute(sa.select(registry.table)).all()
    return repr(rows)


def test_connect_encrypts_credentials_and_reads_them_back(registry):
    connection = registry.connect(
        "acme", "quickbooks_time", "http://127.0.0.1:9/api/v1", {"access_token": TOKEN}, today=date(2026, 11, 27)
    )
    assert connection.attendance_pull_date == date(2026, 11, 13)  # 14 days by default
    assert connection.credentials() == {"access_token": TOKEN}
    assert TOKEN not in stored_text(registry)
    assert TOKEN not in repr(connection)


def test_credentials_by_environment_reference(registry, monkeypatch):
    registry.connect(
        "acme",
        "aspire",
        "https://x.example",
        {"client_id": "id-1", "secret": EnvReference("PROTIV_CREDENTIAL_ACME_ASPIRE_SECRET")},
    )
    assert "PROTIV_CREDENTIAL_ACME_ASPIRE_SECRET" in stored_text(registry)
    with pytest.raises(RegistryError, match="PROTIV_CREDENTIAL_ACME_ASPIRE_SECRET which is not set"):
        registry.get("acme").credentials()
    monkeypatch.setenv("PROTIV_CREDENTIAL_ACME_ASPIRE_SECRET", "from-env")
    assert registry.get("acme").credentials()["secret"] == "from-env"


def test_unknown_company_and_provider_are_clear_errors(registry):
    with pytest.raises(UnknownCompanyError, match="company 'nobody' has no connection"):
        registry.get("nobody")
    with pytest.raises(RegistryError, match="unknown provider 'jobber'"):
        registry.connect("acme", "jobber", "https://x.example", {})


def test_missing_credentials_and_bad_settings_are_named(registry):
    with pytest.raises(RegistryError, match="missing password"):
        registry.connect("acme", "busybusy", "https://x.example", {"username": "u"})
    with pytest.raises(RegistryError, match="worker_share"):
        registry.connect(
            "acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN}, settings={"worker_share": 3}
        )
    with pytest.raises(RegistryError, match="unexpected_setting"):
        registry.connect(
            "acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN}, settings={"unexpected_setting": 1}
        )


def test_failed_connect_keeps_the_previous_connection(registry):
    registry.connect("acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN})
    with pytest.raises(RegistryError):
        registry.connect(
            "acme",
            "quickbooks_time",
            "https://x.example",
            {"access_token": TOKEN},
            settings={"timezone": "Mars/Olympus"},
        )
    assert registry.get("acme").credentials() == {"access_token": TOKEN}


def test_missing_or_changed_key_is_a_clear_error(registry, monkeypatch):
    registry.connect("acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN})
    monkeypatch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
    with pytest.raises(RegistryError, match="cannot be decrypted") as raised:
        registry.get("acme").credentials()
    assert TOKEN not in str(raised.value)
    monkeypatch.delenv(SECRET_KEY_VARIABLE)
    with pytest.raises(MissingSecretKeyError, match="PROTIV_SECRET_KEY is not set"):
        registry.connect("beta", "quickbooks_time", "https://x.example", {"access_token": TOKEN})


def test_rotated_tokens_are_stored_encrypted_and_reconnect_keeps_connected_at(registry):
    first = registry.connect(
        "acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN, "refresh_token": "r1"}
    )
    registry.rotate_credentials("acme", {"access_token": "new-token", "refresh_token": "r2"})
    assert registry.get("acme").credentials() == {"access_token": "new-token", "refresh_token": "r2"}
    assert "new-token" not in stored_text(registry)
    again = registry.connect("acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN})
    assert again.connected_at == first.connected_at


def test_aspire_tokens_are_kept_encrypted_and_only_issued_tokens_can_be_written_back(registry):
    registry.connect("acme", "aspire", "https://x.example", {"client_id": "id-1", "secret": "the-api-secret"})
    issued_for = registry.get("acme")
    assert registry.rotate_credentials(
        "acme",
        {"token": TOKEN, "refresh_token": "refresh-value", "token_expires_at": "2026-11-28T12:00:00+00:00"},
        issued_for=issued_for,
    )
    assert registry.get("acme").credentials() == {
        "client_id": "id-1",
        "secret": "the-api-secret",
        "token": TOKEN,
        "refresh_token": "refresh-value",
        "token_expires_at": "2026-11-28T12:00:00+00:00",
    }
    assert TOKEN not in stored_text(registry) and "refresh-value" not in stored_text(registry)
    # The code location may write back what the vendor issued, never the admin's own credentials.
    with pytest.raises(
        RegistryError, match=r"cannot be rotated: secret \(rotatable: refresh_token, token, token_expires_at\)"
    ):
        registry.rotate_credentials("acme", {"secret": "taken-over"})
    with pytest.raises(RegistryError, match="BusyBusy .* cannot be rotated: password"):
        registry.connect("bee", "busybusy", "https://x.example", {"username": "u", "password": "p"})
        registry.rotate_credentials("bee", {"password": "p2"})
    assert registry.get("acme").credentials()["secret"] == "the-api-secret"


def test_a_token_issued_before_a_reconnect_is_dropped_not_mixed_into_the_new_connection(registry):
    registry.connect("acme", "aspire", "https://x.example", {"client_id": "id-1", "secret": "old-secret"})
    before_reconnect = registry.get("acme")
    registry.connect("acme", "aspire", "https://other.example", {"client_id": "id-2", "secret": "new-secret"})
    assert not registry.rotate_credentials("acme", {"token": TOKEN}, issued_for=before_reconnect)
    assert "token" not in registry.get("acme").credentials()
    # Same base URL, same API user re-entered: still another connection (the admin's credentials were
    # written again), so a token of the old one is not kept either.
    again = registry.get("acme")
    registry.connect("acme", "aspire", "https://other.example", {"client_id": "id-2", "secret": "new-secret"})
    assert not registry.rotate_credentials("acme", {"token": TOKEN}, issued_for=again)
    assert registry.rotate_credentials("acme", {"token": TOKEN}, issued_for=registry.get("acme"))
    assert registry.get("acme").credentials()["token"] == TOKEN


def test_company_ids_are_plain_strings_but_not_partition_breakers(registry):
    hostile = "x'; drop table attendance; --"
    registry.connect(hostile, "quickbooks_time", "https://x.example", {"access_token": TOKEN})
    assert registry.get(hostile).company_id == hostile
    with pytest.raises(RegistryError, match="without"):
        registry.connect("a|b", "quickbooks_time", "https://x.example", {"access_token": TOKEN})


def test_disconnect(registry):
    registry.connect("acme", "quickbooks_time", "https://x.example", {"access_token": TOKEN})
    registry.disconnect("acme")
    assert registry.list() == []
    with pytest.raises(UnknownCompanyError):
        registry.disconnect("acme")


def test_the_code_location_keeps_one_registry_per_url_and_reads_fresh_rows(tmp_path, monkeypatch):
    from protiv_dagster.connections.registry import ConnectionRegistryResource, EnvReference

    url = f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    first, second = ConnectionRegistryResource(url=url), ConnectionRegistryResource(url=url)
    assert first._registry() is second._registry() and first.sync_state() is second.sync_state()
    assert first.list() == []
    ConnectionRegistry(url).connect(
        "acme",
        "busybusy",
        "http://127.0.0.1:9",
        {
            "username": EnvReference("PROTIV_CREDENTIAL_BB_USER"),
            "password": EnvReference("PROTIV_CREDENTIAL_BB_PASSWORD"),
        },
    )
    assert [c.company_id for c in second.list()] == ["acme"]  # the admin's write is seen at once
    for number in range(10):  # other URLs (a test session's): older pools are closed, still usable
        ConnectionRegistryResource(url=f"sqlite:///{tmp_path / f'other-{number}.sqlite3'}").list()
    assert [c.company_id for c in first.list()] == ["acme"]


# -- settings versions -------------------------------------------------------------------------------
URL = "https://rest.tsheets.com/api/v1"


def test_settings_are_versioned_from_a_date_and_never_rewritten(registry):
    first = registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN}, settings={"worker_share": 0.5})
    assert [(v.version, v.effective_from) for v in first.settings_versions] == [(1, None)]
    later = registry.update_settings(
        "acme", {"worker_share": 0.6}, effective_from=date(2026, 12, 14), today=date(2026, 12, 2)
    )
    assert [(v.version, v.effective_from, v.settings.worker_share) for v in later.settings_versions] == [
        (1, None, 0.5),
        (2, date(2026, 12, 14), 0.6),
    ]
    assert later.settings.worker_share == 0.6  # the newest version is the company's current settings
    # Not before today (ProPays under way keep their settings), not before the newest version.
    with pytest.raises(RegistryError, match=r"cannot take effect from 2026-12-01, before today \(2026-12-02\)"):
        registry.update_settings(
            "acme", {"worker_share": 0.7}, effective_from=date(2026, 12, 1), today=date(2026, 12, 2)
        )
    with pytest.raises(RegistryError, match=r"before version 2 \(in force from 2026-12-14\)"):
        registry.update_settings(
            "acme", {"worker_share": 0.7}, effective_from=date(2026, 12, 10), today=date(2026, 12, 2)
        )
    # A same-day correction supersedes the version it corrects; both stay recorded.
    fixed = registry.update_settings(
        "acme", {"worker_share": 0.65}, effective_from=date(2026, 12, 14), today=date(2026, 12, 2)
    )
    assert [v.version for v in fixed.settings_versions] == [1, 2, 3]
    assert [(v.version, v.settings.worker_share) for v in fixed.settings_in_force()] == [(1, 0.5), (3, 0.65)]
    # Invalid settings store nothing.
    with pytest.raises(RegistryError, match="worker_share"):
        registry.update_settings(
            "acme", {"worker_share": 7}, effective_from=date(2026, 12, 20), today=date(2026, 12, 2)
        )
    assert [v.version for v in registry.get("acme").settings_versions] == [1, 2, 3]


def test_a_reconnect_with_other_settings_records_a_version_from_today(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN}, settings={"worker_share": 0.5})
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN}, settings={"worker_share": 0.5})
    assert [v.version for v in registry.get("acme").settings_versions] == [1]  # same settings: nothing new
    registry.connect(
        "acme", "quickbooks_time", URL, {"access_token": TOKEN}, settings={"worker_share": 0.4}, today=date(2026, 12, 2)
    )
    assert [(v.version, v.effective_from) for v in registry.get("acme").settings_versions] == [
        (1, None),
        (2, date(2026, 12, 2)),
    ]
    assert [c.settings.worker_share for c in registry.list()] == [0.4]


def test_a_connection_of_a_registry_without_versions_reads_as_version_one(registry):
    registry.connect("acme", "quickbooks_time", URL, {"access_token": TOKEN}, settings={"worker_share": 0.5})
    with registry.engine.begin() as conn:  # as a registry written before versions were kept
        conn.execute(registry.versions.delete())
    connection = registry.get("acme")
    assert [(v.version, v.effective_from, v.settings.worker_share) for v in connection.settings_versions] == [
        (1, None, 0.5)
    ]
    updated = registry.update_settings(
        "acme", {"worker_share": 0.6}, effective_from=date(2026, 12, 9), today=date(2026, 12, 2)
    )
    assert [(v.version, v.settings.worker_share) for v in updated.settings_versions] == [(1, 0.5), (2, 0.6)]
