"""The connection registry: which company connected which time-tracking system, how, and with what.

One row per company: provider, base URL, attendance pull date, company settings and credentials.
Credentials are stored either encrypted with Fernet (the key comes from ``PROTIV_SECRET_KEY``, which
only admins and the run workers hold) or as a reference to an environment variable; never in clear
text. Writing a connection is the admin path (the ``protiv connect`` command); the Dagster code
location only reads connections, and writes back nothing but the tokens a vendor issued to it
(the credentials model's ``written_by_vendor`` fields: QuickBooks Time's rotated OAuth pair, Aspire's access token kept between
change checks), encrypted like the rest.

Storage is any SQLAlchemy URL: SQLite under the data folder by default, PostgreSQL in production
(``PROTIV_REGISTRY_URL=postgresql+psycopg://...``).
"""

from __future__ import annotations

import functools
import ipaddress
import json
import os
import re
import threading
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import dagster as dg
import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from pydantic import Field

from protiv_dagster.company_settings import CompanySettings, SettingsError, parse_settings
from protiv_dagster.settings import (
    CREDENTIAL_VARIABLE_PREFIX,
    REGISTRY_URL_VARIABLE,
    SECRET_KEY_VARIABLE,
    data_dir,
)
from protiv_dagster.vendors.registry import VENDORS, vendor
from protiv_dagster.vendors.registry import label as vendor_label

DEFAULT_PULL_DAYS = 14
# A pull date before this is a typo (a year of 0202 or 1026), not a history anyone has to sync.
EARLIEST_PULL_DATE = date(2000, 1, 1)
COMPANY_ID_MAX_LENGTH = 100
BASE_URL_MAX_LENGTH = 2048
# Dagster multi-partition keys and partition ranges use these as separators.
_PARTITION_SEPARATORS = frozenset("|,[]")
# Control, invisible formatting (zero-width, bidirectional), surrogate, private-use and unassigned
# characters, and line or paragraph separators: a company id with one of them looks like another
# id (``acme`` and ``acme\u200b``) or rewrites the terminal and logs it is shown in.
_REFUSED_IN_COMPANY_ID = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Invisible although not "Cf" (fillers, grapheme joiner, variation selectors): lookalike ids too.
_INVISIBLE_LETTERS = re.compile(
    "[\u034f\u115f\u1160\u17b4\u17b5\u180b-\u180f\u3164\ufe00-\ufe0f\uffa0\U000e0100-\U000e01ef]"
)
# In a credential these break the HTTP header it is sent in (where the HTTP library then quotes the
# whole header, secret included, in its error) or make it silently differ from what was issued.
_REFUSED_IN_CREDENTIAL = frozenset({"Cc", "Cf", "Cs", "Zs", "Zl", "Zp"})
_CREDENTIAL_VARIABLE = re.compile(re.escape(CREDENTIAL_VARIABLE_PREFIX) + r"[A-Za-z0-9_]+")
_CHARACTER_NAMES = {
    "\r": "a carriage return",
    "\n": "a line feed",
    "\t": "a tab",
    "\x00": "a NUL character",
    " ": "a space",
    "\x1b": "an escape character (U+001B)",
    "\x7f": "a delete character (U+007F)",
    "\x85": "a next-line character (U+0085)",
    "\xa0": "a no-break space (U+00A0)",
    "\u2028": "a line separator (U+2028)",
    "\u2029": "a paragraph separator (U+2029)",
    "\u200b": "a zero-width space (U+200B)",
    "\ufeff": "a byte-order mark (U+FEFF)",
}
_CATEGORY_NAMES = {
    "Cc": "control character",
    "Cf": "invisible formatting character",
    "Cs": "surrogate",
    "Co": "private-use character",
    "Cn": "unassigned character",
    "Zs": "space character",
    "Zl": "line separator",
    "Zp": "paragraph separator",
}


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


# Stored settings as read: every sensor tick lists every connection, and validating 20,000 settings
# (each company's and its versions') took 3-4 s of CPU per listing at 10,000 companies. The parsed
# settings are immutable (frozen models), so the same stored text always gives an equal value; a
# change of settings is new text. Sized for 10,000 companies with a few versions each.
@functools.lru_cache(maxsize=65_536)
def _stored_settings(text: str, company_id: str) -> CompanySettings:
    return _settings(json.loads(text), company_id)


def describe_character(character: str) -> str:
    """A character named for an error message, e.g. "a carriage return" or "the invisible
    formatting character U+202E (right-to-left override)"."""
    if character in _CHARACTER_NAMES:
        return _CHARACTER_NAMES[character]
    category = unicodedata.category(character)
    name = unicodedata.name(character, "")
    kind = "invisible character" if _INVISIBLE_LETTERS.match(character) else _CATEGORY_NAMES.get(category, "character")
    return f"the {kind} U+{ord(character):04X}" + (f" ({name.lower()})" if name else "")


def _shown(text: str, limit: int = COMPANY_ID_MAX_LENGTH + 10) -> str:
    """A value that is not secret (a company id, a variable name) quoted for a message: repr makes
    invisible characters visible; a huge value is cut."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


COMPANY_ID_RULE = (
    f"a company id is at most {COMPANY_ID_MAX_LENGTH} characters in Unicode NFC form, without '|', ',', '[', ']', "
    "control, invisible formatting (zero-width, bidirectional), private-use or unassigned characters, "
    "and without whitespace other than single spaces between words"
)


def company_id_problem(company_id: object) -> str | None:
    """What makes ``company_id`` unusable as a company id (it becomes a Dagster partition key, a CLI
    argument and a label in the UI), or None."""
    if not isinstance(company_id, str) or not company_id:
        return "is empty"
    if len(company_id) > COMPANY_ID_MAX_LENGTH:
        return f"is {len(company_id)} characters long"
    if unicodedata.normalize("NFC", company_id) != company_id:
        # Otherwise "café" typed on two keyboards would be two companies that look the same.
        return "is not in Unicode NFC form (an accent is written as a separate combining character); type it again"
    if company_id[0] == " " or company_id[-1] == " ":
        return "starts or ends with a space"
    if "  " in company_id:
        return "has two spaces in a row"
    for position, character in enumerate(company_id, start=1):
        if character in _PARTITION_SEPARATORS:
            return f"contains {character!r} (position {position}), which Dagster partition keys reserve"
        if character == " ":
            continue
        category = unicodedata.category(character)
        if (
            category in _REFUSED_IN_COMPANY_ID
            or category == "Zs"
            or character.isspace()
            or _INVISIBLE_LETTERS.match(character)
        ):
            return f"contains {describe_character(character)} (position {position})"
    return None


def validate_company_id(company_id: str) -> str:
    problem = company_id_problem(company_id)
    if problem:
        shown = _shown(company_id) if isinstance(company_id, str) else type(company_id).__name__
        raise RegistryError(f"company id {shown} {problem}: {COMPANY_ID_RULE}")
    return company_id


def validate_provider(provider: str) -> str:
    if provider not in VENDORS:
        shown = _shown(provider) if isinstance(provider, str) else type(provider).__name__
        raise RegistryError(f"unknown provider {shown}; known providers: {', '.join(VENDORS)}")
    return provider


# host, or [IPv6 address], then an optional :port; user info (user:password@) is refused before.
_NETLOC = re.compile(r"(?:\[(?P<ipv6>[^\[\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>.*))?")
_HOST = re.compile(r"[\w-]+(?:\.[\w-]+)*\.?")


def validate_base_url(base_url: object, *, field: str = "base URL") -> str:
    """``base_url`` without a trailing slash, or a RegistryError naming ``field`` and the rule. The
    URL is never quoted back: a URL pasted with a password or a token in it must not reach logs."""
    if not isinstance(base_url, str) or not base_url:
        raise RegistryError(f"{field} is empty: give the vendor API's http:// or https:// URL")
    if len(base_url) > BASE_URL_MAX_LENGTH:
        raise RegistryError(
            f"{field} is {len(base_url):,} characters long; at most {BASE_URL_MAX_LENGTH:,} are accepted"
        )
    for position, character in enumerate(base_url, start=1):
        if character.isspace() or unicodedata.category(character) in _REFUSED_IN_CREDENTIAL | {"Co", "Cn"}:
            raise RegistryError(
                f"{field} contains {describe_character(character)} (position {position}): "
                "a URL has no whitespace or control characters"
            )
    try:
        parts = urlsplit(base_url)
    except ValueError:  # unbalanced IPv6 brackets, or brackets around something not an address
        raise RegistryError(f"{field} cannot be parsed as a URL (check the [ ] around an IPv6 address)") from None
    if parts.scheme not in ("http", "https"):
        raise RegistryError(f"{field} must start with http:// or https://")
    if "@" in parts.netloc:
        raise RegistryError(
            f"{field} must not carry credentials (user:password@): give them at the prompt or with --credential-env"
        )
    if "?" in base_url or "#" in base_url:
        raise RegistryError(
            f"{field} must not have a query (?...) or fragment (#...): a token in it would be stored and shown in clear"
        )
    netloc = _NETLOC.fullmatch(parts.netloc)
    if netloc is None or not (netloc["ipv6"] or netloc["host"]):
        raise RegistryError(f"{field} must name a host (https://host[:port]/path; an IPv6 address in [ ])")
    if netloc["ipv6"] is not None:
        try:
            ipaddress.IPv6Address(netloc["ipv6"])
        except ValueError:
            raise RegistryError(f"{field} has something in [ ] that is not an IPv6 address") from None
    elif not _HOST.fullmatch(netloc["host"]):
        raise RegistryError(f"{field} has a host name with characters other than letters, digits, '-' and '.'")
    port = netloc["port"]
    if port is not None and not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        shown = (
            f"port {int(port)}"
            if port.isascii() and port.isdigit() and len(port) <= 12
            else "a port that is not a number"
        )
        raise RegistryError(f"{field} has {shown if port else 'an empty port'}; a port is a number from 1 to 65535")
    return base_url.rstrip("/")


def redacted_url(url: str) -> str:
    """``url`` for display: any user info, query or fragment (which a connection made before they
    were refused may hold) replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(unparseable URL)"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    return (
        f"{parts.scheme}://{netloc}{parts.path}"
        + ("?***" if parts.query or "?" in url else "")
        + ("#***" if parts.fragment or "#" in url else "")
    )


def latest_pull_date(timezone: str | None = None, today: date | None = None) -> date:
    """The latest attendance pull date a sync can plan from: ``today`` when given, otherwise the
    earlier of this machine's date and the company's local date (``protiv sync`` plans up to the
    first, the sensors up to the second)."""
    if today is not None:
        return today
    return min(date.today(), datetime.now(ZoneInfo(timezone or "UTC")).date())


def validate_pull_date(pull_date: object, latest: date, *, field: str = "attendance pull date") -> date:
    """``pull_date`` if a sync can start there: from ``EARLIEST_PULL_DATE`` to ``latest`` (today)."""
    if not isinstance(pull_date, date) or isinstance(pull_date, datetime):
        raise RegistryError(f"{field} must be a calendar date (YYYY-MM-DD)")
    if pull_date > latest:
        raise RegistryError(
            f"{field} {pull_date.isoformat()} is after today ({latest.isoformat()}): attendance is pulled from a past "
            "day up to today"
        )
    if pull_date < EARLIEST_PULL_DATE:
        raise RegistryError(
            f"{field} {pull_date.isoformat()} is before {EARLIEST_PULL_DATE.isoformat()}, the earliest accepted: "
            "check the year"
        )
    return pull_date


def credential_problem(name: str, value: object, *, inner_spaces: bool = False) -> str | None:
    """What makes ``value`` unusable as credential ``name``, or None. Never contains the value:
    only the kind of character and its position (counted from 1). ``inner_spaces``: a space inside
    the value is part of it (a password, hashed before it leaves and never sent in a header); in a
    token, id or user name any whitespace is a paste accident."""
    if not isinstance(value, str):
        return "is not text"
    if not value:
        return "is empty"
    for position, character in enumerate(value, start=1):
        if character == " " and inner_spaces:
            if position == 1:
                return "starts with a space"
            if position == len(value):
                return f"ends with a space (position {position})"
            continue
        if character.isspace() or unicodedata.category(character) in _REFUSED_IN_CREDENTIAL:
            return f"contains {describe_character(character)} (position {position})"
    return None


def provider_credential_problem(provider: str, name: str, value: object) -> str | None:
    """``credential_problem`` under the rules of ``provider``'s credentials model."""
    spec = VENDORS.get(provider)
    return credential_problem(name, value, inner_spaces=spec is not None and spec.credentials.keeps_inner_spaces(name))


def check_credential(provider: str, name: str, value: object) -> str:
    """``value`` as an admin gave credential ``name`` (typed, pasted or passed to ``connect``), or a
    RegistryError naming the field and the character that makes it unusable, never the value."""
    problem = provider_credential_problem(provider, name, value)
    if problem:
        remedy = "paste it again without it" if isinstance(value, str) and value else "give it"
        raise RegistryError(f"{vendor_label(provider)} {name} {problem}: {remedy}")
    key = os.environ.get(SECRET_KEY_VARIABLE)
    if key and value == key:
        raise RegistryError(
            f"{vendor_label(provider)} {name} is the encryption key ({SECRET_KEY_VARIABLE}), "
            "which is never sent to a vendor"
        )
    return value  # type: ignore[return-value]


def typed_credential(line: str) -> str:
    """A credential as typed or pasted at the prompt, without the one line ending that ended it.

    The prompt reader drops the ``\\n``; when the line ended with ``\\r\\n`` (a paste from a
    Windows file, a piped file) its ``\\r`` is still there and is dropped too. Anything more (a
    second line ending, spaces, tabs) is left for ``check_credential`` to refuse."""
    if line.endswith("\r\n"):
        return line[:-2]
    if line.endswith(("\n", "\r")):
        return line[:-1]
    return line


CREDENTIAL_VARIABLE_RULE = (
    f"only environment variables named {CREDENTIAL_VARIABLE_PREFIX}<NAME> (letters, digits, underscores) are read "
    "as credentials, so that no other variable of the run workers (the encryption key, database URLs) can be sent "
    "to a vendor"
)


def credential_variable_problem(variable: object) -> str | None:
    """Why environment variable ``variable`` may not hold a credential, or None."""
    if not isinstance(variable, str) or not _CREDENTIAL_VARIABLE.fullmatch(variable):
        return CREDENTIAL_VARIABLE_RULE
    if variable == SECRET_KEY_VARIABLE:  # cannot match the prefix today; stays true if either changes
        return f"{SECRET_KEY_VARIABLE} is the encryption key and never a credential"
    return None


def validate_credential_variable(variable: object, *, what: str = "the environment variable") -> str:
    """``variable`` if it may hold a credential. A refused name is not quoted back: an admin who
    typed a token where the variable's name goes would see it in the error."""
    problem = credential_variable_problem(variable)
    if problem:
        raise RegistryError(f"{what} cannot hold a credential: {problem}")
    return variable  # type: ignore[return-value]


def require_secret_key() -> None:
    """A clear MissingSecretKeyError now (before an admin types a secret) if the key is missing or malformed."""
    _fernet()


@dataclass(frozen=True)
class EnvReference:
    """A credential kept in an environment variable of the run workers; the registry stores the name."""

    variable: str


def _fernet() -> Fernet:
    key = os.environ.get(SECRET_KEY_VARIABLE)
    if not key:
        raise MissingSecretKeyError(
            f"{SECRET_KEY_VARIABLE} is not set: stored credentials are encrypted with the key they were connected "
            f"with. Use that key: `protiv` reads it from .env in the folder you run it from (where `protiv demo` wrote "
            f"it), or export it. Only a new installation without connections generates one, with `protiv keygen` "
            f"(a new key cannot read credentials stored under the old one)."
        )
    try:
        return Fernet(key.encode())
    except ValueError:
        raise MissingSecretKeyError(
            f"{SECRET_KEY_VARIABLE} is not a valid key (32 url-safe base64-encoded bytes): use the key the credentials "
            f"were connected with (a new installation generates one with `protiv keygen`)"
        ) from None


def generate_secret_key() -> str:
    return Fernet.generate_key().decode()


@dataclass(frozen=True)
class StoredSettingsVersion:
    """One version of a company's ProPay settings as the registry keeps it: in force from
    ``effective_from`` (None: from the start) until the next version's date. Versions are never
    changed or removed; a version recorded for the same date as an earlier one supersedes it."""

    version: int
    effective_from: date | None
    settings: CompanySettings
    recorded_at: datetime


@dataclass(frozen=True)
class Connection:
    """A company's integration. ``stored_credentials`` holds ciphertexts or variable names only.
    ``settings`` are the company's current ProPay settings (its newest version); ``settings_versions``
    all of them, oldest first."""

    company_id: str
    provider: str
    base_url: str
    attendance_pull_date: date
    settings: CompanySettings
    stored_credentials: Mapping[str, Mapping[str, str]]
    connected_at: datetime
    updated_at: datetime
    settings_versions: tuple[StoredSettingsVersion, ...] = ()

    def settings_in_force(self) -> list[StoredSettingsVersion]:
        """The versions that apply to some date, oldest first: of several recorded for the same date,
        the last one (a same-day correction supersedes what it corrects)."""
        latest: dict[date | None, StoredSettingsVersion] = {}
        for stored in self.settings_versions:
            latest[stored.effective_from] = stored
        return sorted(latest.values(), key=lambda v: (v.effective_from or date.min, v.version))

    @property
    def provider_label(self) -> str:
        return vendor_label(self.provider)

    def credentials(self) -> dict[str, str]:
        """The clear-text credentials, resolved now, for the vendor client only; never log them.

        Each is checked as at connect: a value that would break the HTTP header it is sent in (a
        trailing newline in an environment variable, say) is a clear error naming the credential and
        where it comes from, never the value."""
        resolved: dict[str, str] = {}
        for name, stored in self.stored_credentials.items():
            whose = f"credential {name!r} of company {self.company_id!r}"
            if "env" in stored:
                variable = stored["env"]
                # A registry written before the rule may refer to any variable, the key included.
                refused = credential_variable_problem(variable)
                if refused:
                    raise RegistryError(
                        f"{whose} refers to an environment variable that may not hold a credential ({refused}); "
                        f"an admin must reconnect the company with --credential-env {name}={CREDENTIAL_VARIABLE_PREFIX}..."
                    )
                value = os.environ.get(variable)
                if not value:
                    raise RegistryError(
                        f"{whose} refers to environment variable {variable} which is not set in this process"
                    )
                problem = provider_credential_problem(self.provider, name, value)
                if problem:
                    raise RegistryError(
                        f"{whose}: environment variable {variable} {problem}; set it to the credential alone "
                        "(a trailing newline often comes from a file or `echo`)"
                    )
                if value == os.environ.get(SECRET_KEY_VARIABLE):
                    raise RegistryError(
                        f"{whose}: environment variable {variable} holds the encryption key ({SECRET_KEY_VARIABLE}), "
                        "which is never sent to a vendor"
                    )
                resolved[name] = value
            else:
                try:
                    value = _fernet().decrypt(stored["fernet"].encode()).decode()
                except InvalidToken:
                    raise RegistryError(
                        f"{whose} cannot be decrypted with the "
                        f"current {SECRET_KEY_VARIABLE} (was the key changed?); an admin must reconnect"
                    ) from None
                problem = provider_credential_problem(self.provider, name, value)
                if problem:  # stored before connect checked credentials
                    raise RegistryError(f"{whose} {problem}; an admin must reconnect the company")
                resolved[name] = value
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


def _settings_versions_table(metadata: sa.MetaData) -> sa.Table:
    return sa.Table(
        "protiv_settings_versions",
        metadata,
        sa.Column("company_id", sa.Text, primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("effective_from", sa.Date, nullable=True),
        sa.Column("settings", sa.Text, nullable=False),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
    )


def default_registry_url() -> str:
    return os.environ.get(REGISTRY_URL_VARIABLE) or f"sqlite:///{data_dir() / 'registry.sqlite3'}"


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back naive; they were written in UTC.
    return value if value.tzinfo else value.replace(tzinfo=UTC)


# Named once here: inside ConnectionRegistry, ``list`` is its method.
SettingsVersions = list[StoredSettingsVersion]


class ConnectionRegistry:
    """Reads and writes connections in the registry database."""

    def __init__(self, url: str | None = None):
        self.url = url or default_registry_url()
        try:
            self.engine = sa.create_engine(self.url, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise RegistryError(f"registry URL is not usable ({type(exc).__name__})") from None
        metadata = sa.MetaData()
        self.table = _metadata_table(metadata)
        self.versions = _settings_versions_table(metadata)
        # Created at the newest schema revision on a new database; an older one is refused with
        # "run protiv upgrade" (see connections/migrations).
        from protiv_dagster.connections.migrations import prepare_registry

        prepare_registry(self.engine, self.url)

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
        """Create or replace a company's connection (admin only). Reconnecting keeps connected_at.

        Refuses, with the field and the rule, what could only fail later: an unusable company id,
        base URL or pull date (after ``today``, default the earlier of this machine's and the
        company's date; or before ``EARLIEST_PULL_DATE``), a credential with whitespace or control
        characters, an environment reference to a variable not named ``PROTIV_CREDENTIAL_...``."""
        candidate = self.prepare(
            company_id,
            provider,
            base_url,
            credentials,
            attendance_pull_date=attendance_pull_date,
            settings=settings,
            today=today,
        )
        return self.save(candidate, settings_given=settings is not None, today=today)

    def prepare(
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
        """The connection ``connect`` would store, validated as it validates and its credentials
        encrypted, but not stored: the integrations service asks the vendor with it first and saves
        it (``save``) only when the vendor accepts it."""
        validate_company_id(company_id)
        validate_provider(provider)
        base_url = validate_base_url(base_url)
        parsed_settings = _settings(settings, company_id)
        if attendance_pull_date is not None:
            validate_pull_date(attendance_pull_date, latest_pull_date(parsed_settings.timezone, today))
        required, optional = vendor(provider).credentials.given_by_admin()
        missing = required - set(credentials)
        unknown = set(credentials) - required - optional
        if missing or unknown:
            raise RegistryError(
                f"{vendor_label(provider)} credentials for company {company_id!r}: "
                + "; ".join(
                    part
                    for part in (
                        f"missing {', '.join(sorted(missing))}" if missing else "",
                        f"unknown {', '.join(sorted(unknown))}" if unknown else "",
                    )
                    if part
                )
            )
        for name, value in credentials.items():
            if isinstance(value, EnvReference):
                validate_credential_variable(
                    value.variable, what=f"the environment variable given for {vendor_label(provider)} {name}"
                )
            else:
                check_credential(provider, name, value)
        stored = {name: self._store(value) for name, value in credentials.items()}
        pull_date = attendance_pull_date or latest_pull_date(parsed_settings.timezone, today) - timedelta(
            days=DEFAULT_PULL_DAYS
        )
        now = datetime.now(UTC)
        return Connection(
            company_id=company_id,
            provider=provider,
            base_url=base_url,
            attendance_pull_date=pull_date,
            settings=parsed_settings,
            stored_credentials=stored,
            connected_at=now,
            updated_at=now,
        )

    def save(
        self,
        connection: Connection,
        *,
        settings_given: bool = True,
        today: date | None = None,
        vendor_issued: Mapping[str, str] | None = None,
    ) -> Connection:
        """Store a connection made by ``prepare`` (replacing the company's; a reconnect keeps
        connected_at). ``vendor_issued``: tokens the vendor issued while it was checked (its
        credentials model's ``written_by_vendor`` fields), stored encrypted with it.
        ``settings_given``: the admin gave settings, recorded as a new version when they differ."""
        company_id, parsed_settings = connection.company_id, connection.settings
        vendor_issued = vendor_issued or {}
        allowed = vendor(connection.provider).credentials.written_by_vendor()
        unknown = sorted(set(vendor_issued) - allowed)
        if unknown:
            raise RegistryError(f"{connection.provider_label} does not issue {', '.join(unknown)}")
        stored = {
            **connection.stored_credentials,
            **{name: self._store(value) for name, value in vendor_issued.items() if value},
        }
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            existing = conn.execute(
                sa.select(self.table.c.connected_at).where(self.table.c.company_id == company_id)
            ).scalar_one_or_none()
            row = {
                "company_id": company_id,
                "provider": connection.provider,
                "base_url": connection.base_url,
                "attendance_pull_date": connection.attendance_pull_date,
                "settings": parsed_settings.model_dump_json(),
                "credentials": json.dumps(stored, sort_keys=True),
                "connected_at": _aware(existing) if existing else now,
                "updated_at": now,
            }
            conn.execute(self.table.delete().where(self.table.c.company_id == company_id))
            conn.execute(self.table.insert().values(**row))
            # The first connect records version 1, in force from the start. A reconnect with other
            # settings records them as a new version from today: the ProPays already under way keep
            # the settings they began with.
            versions = self._versions(conn, company_id)
            if not versions:
                self._record_version(conn, company_id, 1, None, parsed_settings, now)
            elif settings_given and versions[-1].settings != parsed_settings:
                today_there = latest_pull_date(parsed_settings.timezone, today)
                self._record_version(conn, company_id, versions[-1].version + 1, today_there, parsed_settings, now)
        return self.get(company_id)

    def change_pull_date(self, company_id: str, pull_date: date, *, today: date | None = None) -> Connection:
        """Move a company's attendance pull date (admin only), validated as at connect; credentials,
        settings and connected_at are kept, so the daemon does not start a new initial sync. Weeks
        the new date adds are synced by the next force sync; rows before a later date stay."""
        connection = self.get(company_id)
        validate_pull_date(pull_date, latest_pull_date(connection.settings.timezone, today))
        with self.engine.begin() as conn:
            conn.execute(
                self.table.update()
                .where(self.table.c.company_id == company_id)
                .values(attendance_pull_date=pull_date, updated_at=datetime.now(UTC))
            )
        return self.get(company_id)

    def update_settings(
        self,
        company_id: str,
        settings: Mapping[str, object],
        *,
        effective_from: date | None = None,
        today: date | None = None,
    ) -> Connection:
        """Record a new version of a company's ProPay settings (admin only), validated first, in force
        from ``effective_from`` (default: today, the company's date); credentials are kept.

        A version never rewrites ProPays already under way: each ProPay is computed with the version
        in force when its work began, so ``effective_from`` may not be before today, nor before the
        newest version's date (history is only ever added to). A version for the same date as the
        newest one supersedes it (a same-day correction); both stay listed. The next materialization
        of the company's ProPays uses it."""
        validate_company_id(company_id)
        parsed = _settings(settings, company_id)
        connection = self.get(company_id)  # an unknown company is a clear error, not a silent no-op
        today_there = latest_pull_date(parsed.timezone or connection.settings.timezone, today)
        effective_from = today_there if effective_from is None else effective_from
        if not isinstance(effective_from, date) or isinstance(effective_from, datetime):
            raise RegistryError("the date settings take effect from must be a calendar date (YYYY-MM-DD)")
        if effective_from < today_there:
            raise RegistryError(
                f"settings of company {company_id!r} cannot take effect from {effective_from.isoformat()}, before today "
                f"({today_there.isoformat()}): ProPays already under way keep the settings they began with"
            )
        now = datetime.now(UTC)
        with self.engine.begin() as conn:
            versions = self._versions(conn, company_id)
            if not versions:  # a connection made before versions were kept: its settings are version 1
                self._record_version(conn, company_id, 1, None, connection.settings, connection.connected_at)
                versions = list(connection.settings_versions)
            newest = versions[-1]
            if newest.effective_from is not None and effective_from < newest.effective_from:
                raise RegistryError(
                    f"settings of company {company_id!r} cannot take effect from {effective_from.isoformat()}, before "
                    f"version {newest.version} (in force from {newest.effective_from.isoformat()})"
                )
            self._record_version(conn, company_id, newest.version + 1, effective_from, parsed, now)
            conn.execute(
                self.table.update()
                .where(self.table.c.company_id == company_id)
                .values(settings=parsed.model_dump_json(), updated_at=now)
            )
        return self.get(company_id)

    def _record_version(
        self,
        conn: sa.Connection,
        company_id: str,
        version: int,
        effective_from: date | None,
        settings: CompanySettings,
        recorded_at: datetime,
    ) -> None:
        conn.execute(
            self.versions.insert().values(
                company_id=company_id,
                version=version,
                effective_from=effective_from,
                settings=settings.model_dump_json(),
                recorded_at=recorded_at,
            )
        )

    def _versions(self, conn: sa.Connection, company_id: str) -> list[StoredSettingsVersion]:
        rows = (
            conn.execute(
                sa.select(self.versions)
                .where(self.versions.c.company_id == company_id)
                .order_by(self.versions.c.version)
            )
            .mappings()
            .all()
        )
        return [
            StoredSettingsVersion(
                version=int(row["version"]),
                effective_from=row["effective_from"],
                settings=_stored_settings(str(row["settings"]), company_id),
                recorded_at=_aware(row["recorded_at"]),
            )
            for row in rows
        ]

    def disconnect(self, company_id: str) -> None:
        """Remove a connection (admin only); the company's synced data stays in the warehouse.

        The id must match exactly; one that today's rules refuse is still removed if a connection
        made before them has it (that is how an admin gets rid of it), and when none has it the
        error says what is wrong with it (an invisible character typed by mistake, say)."""
        if not isinstance(company_id, str):
            raise RegistryError(f"company id must be text, not {type(company_id).__name__}")
        with self.engine.begin() as conn:
            # The settings versions stay: the company's ProPays in the warehouse name them.
            deleted = conn.execute(self.table.delete().where(self.table.c.company_id == company_id)).rowcount
        if not deleted:
            problem = company_id_problem(company_id)
            raise UnknownCompanyError(
                f"no connection for company {_shown(company_id)}"
                + (f"; that id {problem}: {COMPANY_ID_RULE}" if problem else "")
            )

    @staticmethod
    def _store(value: str | EnvReference) -> dict[str, str]:
        if isinstance(value, EnvReference):
            return {"env": validate_credential_variable(value.variable)}
        if not isinstance(value, str) or not value:
            raise RegistryError("an empty credential cannot be stored")
        return {"fernet": _fernet().encrypt(value.encode()).decode()}

    # -- read path (the code location) ---------------------------------------------------------
    def get(self, company_id: str) -> Connection:
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(self.table).where(self.table.c.company_id == company_id)).mappings().first()
            versions = self._versions(conn, company_id) if row is not None else []
        if row is None:
            raise UnknownCompanyError(
                f"company {company_id!r} has no connection; an admin connects it with `protiv connect`"
            )
        return self._connection(row, versions)

    def list(self) -> list[Connection]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(self.table).order_by(self.table.c.company_id)).mappings().all()
            versions: dict[str, SettingsVersions] = {}
            for row in conn.execute(
                sa.select(self.versions).order_by(self.versions.c.company_id, self.versions.c.version)
            ).mappings():
                versions.setdefault(str(row["company_id"]), []).append(
                    StoredSettingsVersion(
                        version=int(row["version"]),
                        effective_from=row["effective_from"],
                        settings=_stored_settings(str(row["settings"]), str(row["company_id"])),
                        recorded_at=_aware(row["recorded_at"]),
                    )
                )
        return [self._connection(row, versions.get(str(row["company_id"]), [])) for row in rows]

    def rotate_credentials(
        self, company_id: str, values: Mapping[str, str], issued_for: Connection | None = None
    ) -> bool:
        """Store tokens a vendor issued (its credentials model's ``written_by_vendor`` fields), encrypted; other
        credentials are kept. With ``issued_for`` (the connection the tokens were obtained with) they
        are stored only while the company is still connected the same way (same base URL, same
        admin credentials): a token of an API user an admin replaced meanwhile is dropped, never
        mixed into the new connection. Returns whether they were stored."""
        connection = self.get(company_id)
        allowed = vendor(connection.provider).credentials.written_by_vendor()
        unknown = sorted(set(values) - allowed)
        if unknown:
            raise RegistryError(
                f"{connection.provider_label} credentials of company {company_id!r} cannot be rotated: "
                f"{', '.join(unknown)} (rotatable: {', '.join(sorted(allowed)) or 'none'})"
            )
        for name, value in values.items():
            # A token the vendor issued is sent in a header next time: refuse it now, by name, rather
            # than have the HTTP library quote it in an error later.
            problem = provider_credential_problem(connection.provider, name, value) if value else None
            if problem:
                raise RegistryError(
                    f"{connection.provider_label} issued a new {name} for company {company_id!r} that {problem}; "
                    "it was not stored"
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

    def _connection(self, row: sa.RowMapping, versions: SettingsVersions) -> Connection:
        company_id = str(row["company_id"])
        provider = str(row["provider"])
        if provider not in VENDORS:
            raise RegistryError(
                f"company {company_id!r} is connected to unknown provider {provider!r}; known: {', '.join(VENDORS)}"
            )
        settings = _stored_settings(str(row["settings"]), company_id)
        connected_at = _aware(row["connected_at"])
        return Connection(
            company_id=company_id,
            provider=provider,
            base_url=str(row["base_url"]),
            attendance_pull_date=row["attendance_pull_date"],
            settings=settings,
            stored_credentials=json.loads(str(row["credentials"])),
            connected_at=connected_at,
            updated_at=_aware(row["updated_at"]),
            # A connection made before versions were kept: its settings are version 1, from the start.
            settings_versions=tuple(versions) or (StoredSettingsVersion(1, None, settings, connected_at),),
        )


class _WithEngine(Protocol):
    """What OnePerUrl keeps per URL: anything holding a SQLAlchemy engine."""

    engine: sa.Engine


class OnePerUrl:
    """One object holding an engine and its connection pool per registry URL and process.

    Sensors, the schedule and assets ask for the registry and the sync state many times per tick (a
    refresh of 1,000 companies would otherwise open 1,000 engines and check the tables each time); rows are
    still read fresh on every call, only the engine is kept. A deployment uses one URL; a test
    session opens many, so past ``limit`` URLs the oldest pool is closed."""

    def __init__(self, factory, limit: int = 8) -> None:
        self._factory, self._limit = factory, limit
        self._open: dict[str, _WithEngine] = {}
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
    a vendor issued (``written_by_vendor``) but cannot create, change or remove a connection: that
    is the admin CLI's job."""

    url: str = Field(
        default="",
        description="SQLAlchemy URL of the registry; empty = PROTIV_REGISTRY_URL or SQLite in the data folder.",
    )

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
        from protiv_dagster.sync.state import shared_store

        return shared_store(self.url or None)
