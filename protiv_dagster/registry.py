"""The connection registry: which company connected which time-tracking system, how, and with what.

One row per company: provider, base URL, attendance pull date, company settings and credentials.
Credentials are stored either encrypted with Fernet (the key comes from ``PROTIV_SECRET_KEY``, which
only admins and the run workers hold) or as a reference to an environment variable; never in clear
text. Writing a connection is the admin path (the ``protiv connect`` command); the Dagster code
location only reads connections, and writes back nothing but the tokens a vendor issued to it
(``ROTATED_CREDENTIALS``: QuickBooks Time's rotated OAuth pair, Aspire's access token kept between
change checks), encrypted like the rest.

Storage is any SQLAlchemy URL: SQLite under the data folder by default, PostgreSQL in production
(``PROTIV_REGISTRY_URL=postgresql+psycopg://...``).
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

import dagster as dg
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field

from protiv_dagster.company_settings import CompanySettings, SettingsError, parse_settings

from protiv_dagster.settings import REGISTRY_URL_VARIABLE, SECRET_KEY_VARIABLE, data_dir

Provider = Literal["quickbooks_time", "aspire", "busybusy"]
PROVIDERS: tuple[str, ...] = ("quickbooks_time", "aspire", "busybusy")
PROVIDER_LABELS = {"quickbooks_time": "QuickBooks Time", "aspire": "Aspire", "busybusy": "BusyBusy"}

# Which credential names each provider needs (required) or may hold (optional).
CREDENTIAL_FIELDS: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "quickbooks_time": (frozenset({"access_token"}), frozenset({"refresh_token", "client_id", "client_secret"})),
    "aspire": (frozenset({"client_id", "secret"}), frozenset()),
    "busybusy": (frozenset({"username", "password"}), frozenset()),
}
# The credentials the code location may write back, per provider: tokens the vendor issued, never
# the admin's own (client id, secret, password).
ROTATED_CREDENTIALS: dict[str, frozenset[str]] = {
    "quickbooks_time": frozenset({"access_token", "refresh_token"}),
    "aspire": frozenset({"token", "refresh_token", "token_expires_at"}),
    "busybusy": frozenset(),
}
DEFAULT_PULL_DAYS = 14
# Dagster multi-partition keys may not contain these; control characters would break logs and UI.
_FORBIDDEN_IN_COMPANY_ID = re.compile(r"[|,\[\]\x00-\x1f\x7f]")


class RegistryError(SettingsError):
    """A connection cannot be read or written; the message says what to fix."""


class UnknownCompanyError(RegistryError):
    pass


class MissingSecretKeyError(RegistryError):
    pass


def _settings(raw: Mapping[str, object] | None, company_id: str) -> CompanySettings:
    try:
        return parse_settings(raw, company_id=company_id)
    except SettingsError as exc:
        raise RegistryError(str(exc)) from None


def validate_company_id(company_id: str) -> str:
    if not isinstance(company_id, str) or not company_id or company_id != company_id.strip():
        raise RegistryError(f"company id {company_id!r} must be a non-empty string without surrounding spaces")
    if len(company_id) > 100 or _FORBIDDEN_IN_COMPANY_ID.search(company_id):
        raise RegistryError(
            f"company id {company_id!r} must be at most 100 characters without '|', ',', '[', ']' or control characters"
        )
    return company_id


def validate_provider(provider: str) -> str:
    if provider not in PROVIDERS:
        raise RegistryError(f"unknown provider {provider!r}; known providers: {', '.join(PROVIDERS)}")
    return provider


@dataclass(frozen=True)
class EnvReference:
    """A credential kept in an environment variable of the run workers; the registry stores the name."""

    variable: str


def _fernet() -> Fernet:
    key = os.environ.get(SECRET_KEY_VARIABLE)
    if not key:
        raise MissingSecretKeyError(
            f"{SECRET_KEY_VARIABLE} is not set: credentials are encrypted with it. "
            "Generate one with `protiv keygen` and give it to the admin and the run workers."
        )
    try:
        return Fernet(key.encode())
    except ValueError:
        raise MissingSecretKeyError(
            f"{SECRET_KEY_VARIABLE} is not a valid key (32 url-safe base64-encoded bytes); generate one with `protiv keygen`"
        ) from None


def generate_secret_key() -> str:
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class Connection:
    """A company's integration. ``stored_credentials`` holds ciphertexts or variable names only."""

    company_id: str
    provider: str
    base_url: str
    attendance_pull_date: date
    settings: CompanySettings
    stored_credentials: Mapping[str, Mapping[str, str]]
    connected_at: datetime
    updated_at: datetime

    @property
    def provider_label(self) -> str:
        return PROVIDER_LABELS[self.provider]

    def credentials(self) -> dict[str, str]:
        """The clear-text credentials, resolved now, for the vendor client only; never log them."""
        resolved: dict[str, str] = {}
        for name, stored in self.stored_credentials.items():
            if "env" in stored:
                value = os.environ.get(stored["env"])
                if not value:
                    raise RegistryError(
                        f"credential {name!r} of company {self.company_id!r} refers to environment variable "
                        f"{stored['env']} which is not set in this process"
                    )
                resolved[name] = value
            else:
                try:
                    resolved[name] = _fernet().decrypt(stored["fernet"].encode()).decode()
                except InvalidToken:
                    raise RegistryError(
                        f"credential {name!r} of company {self.company_id!r} cannot be decrypted with the "
                        f"current {SECRET_KEY_VARIABLE} (was the key changed?); an admin must reconnect"
                    ) from None
        return resolved


def _metadata_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "protiv_connections",
        metadata,
        sa.Column("company_id", sa.Text, primary_key=True),
        sa.Column("provider", sa.Text, nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("attendance_pull_date", sa.Date, nullable=False),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("credentials", sa.Text, nullable=False),
        sa.Column("connected_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def default_registry_url() -> str:
    return os.environ.get(REGISTRY_URL_VARIABLE) or f"sqlite:///{data_dir() / 'registry.sqlite3'}"


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class ConnectionRegistry:
    """Reads and writes connections in the registry database."""

    def __init__(self, url: str | None = None):
        self.url = url or default_registry_url()
        try:
            self.engine = sa.create_engine(self.url, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise RegistryError(f"registry URL is not usable ({type(exc).__name__})") from None
        self.table = _metadata_table(sa.MetaData())
        self.table.metadata.create_all(self.engine)

    # -- admin path -------------------------------------------------------------------------------
    def connect(
        self,
        company_id: str,
        provider: str,
        base_url: str,
        credentials: Mapping[str, str | EnvReference],
        *,
        attendance_pull_date: date | None = None,
        settings: Mapping[str, object] | None = None,
        today: date | None = None,
    ) -> Connection:
        """Create or replace a company's connection (admin only). Reconnecting keeps connected_at."""
        validate_company_id(company_id)
        validate_provider(provider)
        if not base_url.startswith(("http://", "https://")):
            raise RegistryError(f"base URL for company {company_id!r} must start with http:// or https://")
        parsed_settings = _settings(settings, company_id)
        required, optional = CREDENTIAL_FIELDS[provider]
        missing = required - set(credentials)
        unknown = set(credentials) - required - optional
        if missing or unknown:
            raise RegistryError(
                f"{PROVIDER_LABELS[provider]} credentials for company {company_id!r}: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(sorted(missing))}" if missing else "",
                        f"unknown {', '.join(sorted(unknown))}" if unknown else "",
                    )
                    if part
                )
            )
        stored = {name: self._store(value) for name, value in credentials.items()}
        pull_date = attendance_pull_date or (today or date.today()) - timedelta(days=DEFAULT_PULL_DAYS)
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(self.table.c.connected_at).where(self.table.c.company_id == company_id)
            ).scalar_one_or_none()
            row = {
                "company_id": company_id,
                "provider": provider,
                "base_url": base_url.rstrip("/"),
                "attendance_pull_date": pull_date,
                "settings": parsed_settings.model_dump_json(),
                "credentials": json.dumps(stored, sort_keys=True),
                "connected_at": _aware(existing) if existing else now,
                "updated_at": now,
            }
            conn.execute(self.table.delete().where(self.table.c.company_id == company_id))
            conn.execute(self.table.insert().values(**row))
        return self.get(company_id)

    def update_settings(self, company_id: str, settings: Mapping[str, object]) -> Connection:
        """Replace a company's ProPay settings (admin only), validated first; credentials are kept.
        The next materialization of the company's ProPays uses them."""
        parsed = _settings(settings, company_id)
        self.get(company_id)  # an unknown company is a clear error, not a silent no-op
        with self.engine.begin() as conn:
            conn.execute(
                self.table.update()
                .where(self.table.c.company_id == company_id)
                .values(settings=parsed.model_dump_json(), updated_at=datetime.now(UTC))
            )
        return self.get(company_id)

    def disconnect(self, company_id: str) -> None:
        """Remove a connection (admin only); the company's synced data stays in the warehouse."""
        with self.engine.begin() as conn:
            deleted = conn.execute(self.table.delete().where(self.table.c.company_id == company_id)).rowcount
        if not deleted:
            raise UnknownCompanyError(f"no connection for company {company_id!r}")

    @staticmethod
    def _store(value: str | EnvReference) -> dict[str, str]:
        if isinstance(value, EnvReference):
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value.variable):
                raise RegistryError(f"{value.variable!r} is not a valid environment variable name")
            return {"env": value.variable}
        if not value:
            raise RegistryError("an empty credential cannot be stored")
        return {"fernet": _fernet().encrypt(value.encode()).decode()}

    # -- read path (the code location) ---------------------------------------------------------
    def get(self, company_id: str) -> Connection:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.company_id == company_id)).mappings().first()
        if row is None:
            raise UnknownCompanyError(
                f"company {company_id!r} has no connection; an admin connects it with `protiv connect`"
            )
        return self._connection(row)

    def list(self) -> list[Connection]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.table).order_by(self.table.c.company_id)).mappings().all()
        return [self._connection(row) for row in rows]

    def rotate_credentials(
        self, company_id: str, values: Mapping[str, str], issued_for: Connection | None = None
    ) -> bool:
        """Store tokens a vendor issued (``ROTATED_CREDENTIALS`` of the provider), encrypted; other
        credentials are kept. With ``issued_for`` (the connection the tokens were obtained with) they
        are stored only while the company is still connected the same way (same base URL, same
        admin credentials): a token of an API user an admin replaced meanwhile is dropped, never
        mixed into the new connection. Returns whether they were stored."""
        connection = self.get(company_id)
        allowed = ROTATED_CREDENTIALS[connection.provider]
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise RegistryError(
                f"{connection.provider_label} credentials of company {company_id!r} cannot be rotated: "
                f"{', '.join(unknown)} (rotatable: {', '.join(sorted(allowed)) or 'none'})"
            )

        def admin_part(credentials: Mapping[str, object]) -> dict[str, object]:
            return {name: value for name, value in credentials.items() if name not in allowed}

        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(self.table.c.credentials, self.table.c.base_url).where(self.table.c.company_id == company_id)
            ).first()
            if row is None:
                raise UnknownCompanyError(f"no connection for company {company_id!r}")
            current, base_url = str(row[0]), str(row[1])
            stored = json.loads(current)
            if issued_for is not None and (
                base_url != issued_for.base_url or admin_part(stored) != admin_part(issued_for.stored_credentials)
            ):
                return False
            stored.update({name: self._store(value) for name, value in values.items() if value})
            # Over the row as read: a reconnect committed in between wins.
            written = conn.execute(
                self.table.update()
                .where(self.table.c.company_id == company_id, self.table.c.credentials == current)
                .values(credentials=json.dumps(stored, sort_keys=True), updated_at=datetime.now(UTC))
            ).rowcount
        return bool(written)

    def _connection(self, row: Mapping[str, object]) -> Connection:
        company_id = str(row["company_id"])
        provider = str(row["provider"])
        if provider not in PROVIDERS:
            raise RegistryError(
                f"company {company_id!r} is connected to unknown provider {provider!r}; known: {', '.join(PROVIDERS)}"
            )
        return Connection(
            company_id=company_id,
            provider=provider,
            base_url=str(row["base_url"]),
            attendance_pull_date=row["attendance_pull_date"],  # type: ignore[arg-type]
            settings=_settings(json.loads(str(row["settings"])), company_id),
            stored_credentials=json.loads(str(row["credentials"])),
            connected_at=_aware(row["connected_at"]),  # type: ignore[arg-type]
            updated_at=_aware(row["updated_at"]),  # type: ignore[arg-type]
        )


class OnePerUrl:
    """One object holding an engine and its connection pool per registry URL and process.

    Sensors, the schedule and assets ask for the registry and the sync state many times per tick (a
    refresh of 1,000 companies used to open 1,000 engines and check the tables each time); rows are
    still read fresh on every call, only the engine is kept. A deployment uses one URL; a test
    session opens many, so past ``limit`` URLs the oldest pool is closed."""

    def __init__(self, factory, limit: int = 8) -> None:
        self._factory, self._limit = factory, limit
        self._open: dict[str, object] = {}
        self._lock = threading.Lock()

    def get(self, url: str | None):
        resolved = url or default_registry_url()
        with self._lock:
            held = self._open.get(resolved)
            if held is None:
                held = self._open[resolved] = self._factory(resolved)
                if len(self._open) > self._limit:
                    self._open.pop(next(iter(self._open))).engine.dispose()
            return held


_registries = OnePerUrl(ConnectionRegistry)


class ConnectionRegistryResource(dg.ConfigurableResource):
    """Read access to the connection registry for assets, sensors and checks. It can store the tokens
    a vendor issued (``ROTATED_CREDENTIALS``) but cannot create, change or remove a connection: that
    is the admin CLI's job."""

    url: str = Field(default="", description="SQLAlchemy URL of the registry; empty = PROTIV_REGISTRY_URL or SQLite in the data folder.")

    def _registry(self) -> ConnectionRegistry:
        return _registries.get(self.url or None)

    def get(self, company_id: str) -> Connection:
        return self._registry().get(company_id)

    def list(self) -> list[Connection]:
        return self._registry().list()

    def rotate_credentials(
        self, company_id: str, values: Mapping[str, str], issued_for: Connection | None = None
    ) -> bool:
        return self._registry().rotate_credentials(company_id, values, issued_for)

    def sync_state(self):
        """The companies' sync state, kept beside the connections (see ``sync_state.py``)."""
        from protiv_dagster.sync_state import shared_store

        return shared_store(self.url or None)
