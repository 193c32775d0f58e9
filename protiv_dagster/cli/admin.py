"""What admins do about a company's integration: connect, reconnect and disconnect it, list the
connections, manage its ProPay settings, and make the encryption key.

Connecting, changing and removing a company's integration happens only here, on the admin's
machine, with the encryption key in the environment: nothing a Dagster UI user can launch writes
credentials. Secrets are read from a hidden prompt or an environment variable reference, never from
command-line arguments (which other users of the machine can see).
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from protiv_dagster.cli.common import CompanyId
from protiv_dagster.cli.operations import sync_failure_hint
from protiv_dagster.cli.output import Command, literal, say, say_error
from protiv_dagster.company_settings import SettingsError, parse_settings
from protiv_dagster.connections.registry import (
    ConnectionRegistry,
    EnvReference,
    RegistryError,
    check_credential,
    generate_secret_key,
    latest_pull_date,
    redacted_url,
    require_secret_key,
    typed_credential,
    validate_base_url,
    validate_company_id,
    validate_credential_variable,
    validate_provider,
    validate_pull_date,
)
from protiv_dagster.settings import CREDENTIAL_VARIABLE_PREFIX
from protiv_dagster.vendors.registry import VENDORS
from protiv_dagster.vendors.registry import label as vendor_label
from protiv_dagster.vendors.registry import vendor as vendor_spec

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


def keygen() -> None:
    """Print a new encryption key for PROTIV_SECRET_KEY (give it to admins and run workers only)."""
    typer.echo(generate_secret_key())


# -- connect ----------------------------------------------------------------------------------------


def _date_option(text: str, option: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise RegistryError(f"{option} must be a date in the form YYYY-MM-DD (e.g. 2026-01-05), not {shown!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RegistryError(f"{option} {text} is not a calendar date (YYYY-MM-DD)") from None


def _pull_date_option(text: str, timezone: str | None) -> date:
    """``--pull-date`` as a date a sync can start from, or a RegistryError naming the option."""
    return validate_pull_date(_date_option(text, "--pull-date"), latest_pull_date(timezone), field="--pull-date")


def _settings_option(settings_file: Path | None, option: str = "--settings-file") -> dict | None:
    """The company settings in a JSON file, or a RegistryError naming ``option``."""
    if settings_file is None:
        return None
    try:
        loaded = json.loads(settings_file.read_text())
    except OSError as exc:
        raise RegistryError(f"{option} cannot be read ({exc.strerror or type(exc).__name__})") from None
    except ValueError as exc:  # invalid JSON or text encoding; the position helps, the content is not quoted
        raise RegistryError(
            f"{option} is not valid JSON ({type(exc).__name__} at {getattr(exc, 'pos', '?')})"
        ) from None
    if not isinstance(loaded, dict):
        raise RegistryError(f'{option} must hold one JSON object of settings, e.g. {{"timezone": "America/Denver"}}')
    return loaded


def _credential_references(items: list[str], provider: str) -> dict[str, EnvReference]:
    """``--credential-env NAME=VARIABLE`` options, each a credential of the provider kept in an
    environment variable ``PROTIV_CREDENTIAL_...`` of the run workers."""
    required, optional = vendor_spec(provider).credentials.given_by_admin()
    label = vendor_label(provider)
    references: dict[str, EnvReference] = {}
    for item in items:
        name, equals, variable = item.partition("=")
        if not equals or not name or not variable:
            raise RegistryError(
                f"--credential-env takes NAME=VARIABLE, e.g. access_token={CREDENTIAL_VARIABLE_PREFIX}ACME_TOKEN"
            )
        if name not in required | optional:
            raise RegistryError(
                f"--credential-env: {label} has no credential {name!r}; its credentials: {', '.join(sorted(required | optional))}"
            )
        if name in references:
            raise RegistryError(f"--credential-env gives {name} twice")
        validate_credential_variable(variable, what=f"--credential-env {name}=...: that variable")
        references[name] = EnvReference(variable)
    return references


def connect(
    company_id: Annotated[str, typer.Argument(metavar="COMPANY_ID", help="Protiv company id.")],
    provider: Annotated[str, typer.Option(metavar="PROVIDER", help=f"One of: {', '.join(VENDORS)}.")],
    base_url: Annotated[
        str,
        typer.Option(
            metavar="URL",
            help="The vendor API base URL for this company (http or https, no user:password@, query or fragment).",
        ),
    ],
    pull_date: Annotated[
        str | None,
        typer.Option(metavar="DATE", help="Attendance pull date YYYY-MM-DD, not after today (default: 14 days ago)."),
    ] = None,
    settings_file: Annotated[
        Path | None, typer.Option(metavar="FILE", help="JSON file with the company's ProPay settings.")
    ] = None,
    credential_env: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME=VARIABLE",
            help=f"NAME=VARIABLE: keep credential NAME in the run workers' environment variable VARIABLE "
            f"(named {CREDENTIAL_VARIABLE_PREFIX}...) instead of encrypted.",
        ),
    ] = None,
    check: Annotated[
        bool,
        typer.Option("--check/--no-check", help="Ask the vendor whether it accepts the credentials (skip offline)."),
    ] = True,
) -> None:
    """Connect (or reconnect) a company's integration. Admin only: needs PROTIV_SECRET_KEY.

    Every option is checked before a secret is asked for. Credentials not given as environment
    references are asked for at a hidden prompt and stored encrypted. Then the vendor is asked
    whether it accepts them: green (the daemon starts the initial sync) or red with the vendor's
    reason (exit 1; nothing is stored: fix and connect again). The same path as the integrations
    service's connect, and recorded in its audit log."""
    from protiv_dagster.integrations.auth import cli_actor
    from protiv_dagster.integrations.service import InvalidInput, NotConfigured, VendorDown, VendorRefused

    try:
        validate_company_id(company_id)
        validate_provider(provider)
        validate_base_url(base_url, field="--base-url")
        settings = _settings_option(settings_file)
        timezone = parse_settings(settings, company_id=company_id).timezone
        attendance_pull_date = _pull_date_option(pull_date, timezone) if pull_date is not None else None
        references = _credential_references(credential_env or [], provider)
        registry = ConnectionRegistry()
        model = vendor_spec(provider).credentials
        required, _ = model.given_by_admin()
        to_ask = sorted(required - set(references))
        if to_ask:
            require_secret_key()  # before anyone types a secret that could not be stored
        credentials: dict[str, str | EnvReference] = dict(references)
        for name in to_ask:
            typed = typed_credential(
                typer.prompt(f"{vendor_label(provider)} {name}", hide_input=name in model.secret_fields())
            )
            credentials[name] = check_credential(provider, name, typed)
        if check:
            say(f"Asking {vendor_label(provider)} whether it accepts the credentials...", style="dim")
        _service().connect(
            cli_actor(),
            company_id,
            provider,
            credentials,
            base_url=base_url,
            attendance_pull_date=attendance_pull_date,
            settings=settings,
            check=check,
            via="CLI",
        )
    except SettingsError as exc:  # RegistryError included
        say_error(exc)
        raise typer.Exit(2) from None
    except InvalidInput as exc:  # what the options' own checks above leave to the service
        for problem in exc.problems:
            say_error(f"{problem.field}: {problem.message}")
        raise typer.Exit(2) from None
    except NotConfigured as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    except (VendorRefused, VendorDown) as exc:
        reason = exc.status.reason if isinstance(exc, VendorDown) else f"{exc} (nothing was stored)"
        say("[red]red[/red]: ", literal(reason))
        sync_failure_hint(company_id, base_url, str(exc), after_sync=False)
        raise typer.Exit(1) from None
    connection = registry.get(company_id)
    say(
        literal(
            f"Connected {connection.company_id} to {connection.provider_label} at {redacted_url(connection.base_url)}; "
            f"attendance from {connection.attendance_pull_date}; credentials: "
            + ", ".join(
                f"{n} ({'env ' + s['env'] if 'env' in s else 'encrypted'})"
                for n, s in connection.stored_credentials.items()
            )
        )
    )
    if not check:
        say("Not checked with the vendor (--no-check): `protiv status --probe` checks it later.", style="dim")
        return
    say(
        f"[green]green[/green]: {vendor_label(provider)} accepted the credentials; the daemon starts the "
        "initial sync (or run `protiv sync ",
        literal(company_id),
        "` now).",
    )


def _service():
    """The integrations service's code, without its sync worker: ``protiv connect`` takes the same
    path as the app's connect (fields checked, the vendor asked before anything is stored, the
    audit log written); the daemon's sensor starts the initial sync."""
    from protiv_dagster.definitions import defs
    from protiv_dagster.integrations.service import IntegrationService, ServiceSettings

    return IntegrationService(defs, None, settings=ServiceSettings())


def disconnect(company_id: CompanyId) -> None:
    """Remove a company's connection (admin only). Its synced data stays in the warehouse."""
    from protiv_dagster.integrations import audit
    from protiv_dagster.integrations.service import record_from_cli

    try:
        ConnectionRegistry().disconnect(company_id)
    except RegistryError as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    record_from_cli(company_id, audit.DISCONNECT, audit.DONE, "data kept in the warehouse (CLI)")
    say("Disconnected ", literal(company_id), "; its data stays in the warehouse.")


def connections() -> None:
    """List connected companies (never their credentials)."""
    # One block per company: a base URL and the credential list do not fit beside the rest at 80 columns.
    for c in ConnectionRegistry().list():
        say(literal(c.company_id, "bold"), f" ({c.provider_label})")
        # A connection made before base URLs were checked may carry a password in its URL.
        say("  base URL ", literal(redacted_url(c.base_url)))
        say(f"  attendance from {c.attendance_pull_date}, connected {c.connected_at:%Y-%m-%d %H:%M} UTC")
        say(
            "  credentials ",
            literal(
                ", ".join(
                    f"{n} ({'from $' + s['env'] if 'env' in s else 'encrypted'})"
                    for n, s in c.stored_credentials.items()
                )
            ),
        )


# -- settings ---------------------------------------------------------------------------------------

settings_app = typer.Typer(
    help="A company's ProPay settings: show the ones in force, set a new version, list every version. "
    "Each version takes effect from a date; a ProPay is computed with the version in force when its work "
    "began, and names it (propay_opportunities.settings_version). The format: docs/settings.md.",
    no_args_is_help=True,
)


def _company_settings_versions(company_id: str):
    try:
        return ConnectionRegistry().get(company_id)
    except SettingsError as exc:  # RegistryError included
        say_error(exc)
        raise typer.Exit(2) from None


@settings_app.command("show", cls=Command)
def settings_show(
    company_id: CompanyId,
    all_fields: Annotated[bool, typer.Option("--all", metavar="", help="Every setting, defaults included.")] = False,
) -> None:
    """The settings in force now (the newest version), as JSON: what differs from the defaults, or
    every setting with --all. Save it, edit it, and `protiv settings set` it."""
    connection = _company_settings_versions(company_id)
    newest = connection.settings_in_force()[-1]
    since = newest.effective_from.isoformat() if newest.effective_from else "the start"
    say(literal(f"{company_id}: settings version {newest.version}, in force from {since}"), style="dim")
    typer.echo(newest.settings.model_dump_json(indent=2, exclude_defaults=not all_fields))


@settings_app.command("set", cls=Command)
def settings_set(
    company_id: CompanyId,
    file: Annotated[
        Path, typer.Option(metavar="FILE", help="JSON file with the company's ProPay settings (the whole set).")
    ],
    effective_from: Annotated[
        str | None,
        typer.Option(
            metavar="DATE", help="First day the new version applies to, YYYY-MM-DD (default: today, not earlier)."
        ),
    ] = None,
) -> None:
    """Record a new version of a company's ProPay settings (admin only), validated before anything is
    stored. ProPays whose work began before it keep their version; the next ProPay materialization
    applies it to the others (materialize the company's ProPay partition to apply it now)."""
    try:
        start = _date_option(effective_from, "--effective-from") if effective_from is not None else None
        connection = ConnectionRegistry().update_settings(
            company_id, _settings_option(file, "--file") or {}, effective_from=start
        )
    except SettingsError as exc:  # RegistryError included
        say_error(exc)
        raise typer.Exit(2) from None
    newest = connection.settings_versions[-1]
    say(
        literal(
            f"Settings of {company_id}: version {newest.version} recorded, in force from {newest.effective_from}: "
            f"{newest.settings.model_dump_json(exclude_defaults=True)}"
        )
    )


@settings_app.command("versions", cls=Command)
def settings_versions(company_id: CompanyId) -> None:
    """Every version of a company's settings: number, in force from, recorded at, and what differs
    from the defaults; a version superseded by a same-day correction is marked."""
    connection = _company_settings_versions(company_id)
    in_force = {stored.version for stored in connection.settings_in_force()}
    # One block per version: the settings are read whole, not folded into a narrow column.
    for stored in connection.settings_versions:
        start = stored.effective_from.isoformat() if stored.effective_from else "the start"
        note = "" if stored.version in in_force else " (superseded by a later version of the same date)"
        say(
            f"[bold]version {stored.version}[/bold], in force from {start}, recorded {stored.recorded_at:%Y-%m-%d %H:%M} UTC{note}"
        )
        say("  differs from the defaults: ", literal(stored.settings.model_dump_json(exclude_defaults=True)))
