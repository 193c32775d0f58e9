"""The integrations service an app calls (``protiv serve``), and, for development and tests only,
the key pair and tokens that stand in for the app's (``protiv service keygen|token``)."""

from __future__ import annotations

from typing import Annotated

import typer

from protiv_dagster.cli.common import dagster_home
from protiv_dagster.cli.output import Command, literal, say, say_error

service_app = typer.Typer(
    help="FOR DEVELOPMENT AND TESTS ONLY: a key pair in the data folder that stands in for the Protiv app's, "
    "and tokens signed with it. In production the app signs the tokens and PROTIV_SERVICE_JWKS names its public keys.",
    no_args_is_help=True,
)


def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8000,
) -> None:
    """Start the integrations service (HTTP API, OpenAPI at /openapi.json) on this machine's registry,
    warehouse and Dagster instance: what Protiv's app calls to connect a company, show its status,
    force sync it and disconnect it. Every call needs a token the app signed (PROTIV_SERVICE_JWKS);
    stops on Ctrl-C or SIGTERM, letting a sync under way end first (up to 30 s)."""
    import uvicorn

    from protiv_dagster.definitions import defs
    from protiv_dagster.integrations.auth import AuthSettings, TokenVerifier
    from protiv_dagster.integrations.service import IntegrationService, ServiceSettings, service_instance
    from protiv_dagster.integrations.webhooks import Webhooks
    from protiv_dagster.service.app import create_app, quiet_access_log

    home = dagster_home()
    try:
        auth = AuthSettings.from_environment()
        webhooks = Webhooks.from_environment()
        settings = ServiceSettings.from_environment()
        service = IntegrationService(defs, service_instance(str(home)), settings=settings, webhooks=webhooks)
    except (ValueError, RuntimeError) as exc:  # RegistryError included: an older registry says to upgrade
        say_error(exc)
        raise typer.Exit(2) from None
    if not auth.jwks_path.exists():
        say(
            literal(f"No public keys at {auth.jwks_path}: every call will answer 401. "),
            "Set PROTIV_SERVICE_JWKS to the app's JWKS file (for development: `protiv service keygen`).",
            style="yellow",
        )
    say(literal(f"Protiv integrations service on http://{host}:{port} (OpenAPI: /openapi.json)"))
    say(literal(f"  tokens: issuer {auth.issuer}, audience {auth.audience}, keys {auth.jwks_path}"), style="dim")
    quiet_access_log()
    uvicorn.run(create_app(service, TokenVerifier(auth)), host=host, port=port, log_level="info")


@service_app.command("keygen", cls=Command)
def keygen(
    replace: Annotated[
        bool, typer.Option("--replace", metavar="", help="Make a new pair over an existing one.")
    ] = False,
) -> None:
    """FOR DEVELOPMENT AND TESTS ONLY: make an EC P-256 key pair in the data folder (service_keys/):
    the private key that `protiv service token` signs with, and the JWKS that `protiv serve` reads
    by default."""
    from protiv_dagster.integrations.auth import DevelopmentKeys

    keys = DevelopmentKeys()
    made = keys.create(replace=replace)
    say(literal(f"{'Made' if made else 'Kept'} the development key pair: {keys.jwks_path} (public), "))
    say(literal(f"{keys.private_key_path} (private, never for production)"), style="dim")


@service_app.command("token", cls=Command)
def token(
    role: Annotated[str, typer.Option(metavar="ROLE", help="admin (of --company) or operator.")],
    company: Annotated[str | None, typer.Option(metavar="COMPANY_ID", help="The admin's company.")] = None,
    subject: Annotated[str, typer.Option(metavar="NAME", help="Who the token is for (sub).")] = "dev-admin",
    minutes: Annotated[int, typer.Option(metavar="MINUTES", help="Lifetime, at most 15.")] = 10,
) -> None:
    """FOR DEVELOPMENT AND TESTS ONLY: print a token signed with the development key, as the Protiv
    app would give one of its admins: `curl -H "Authorization: Bearer $(protiv service token --role
    admin --company acme)" http://127.0.0.1:8000/companies/acme/integration`."""
    from protiv_dagster.integrations.auth import AuthSettings, DevelopmentKeys

    if role == "admin" and not company:
        say_error("an admin's token names their company: --company COMPANY_ID")
        raise typer.Exit(2)
    keys = DevelopmentKeys()
    if not keys.private_key_path.exists():
        say_error("no development key pair yet: run `protiv service keygen`")
        raise typer.Exit(2)
    settings = AuthSettings.from_environment()
    typer.echo(
        keys.token(
            subject,
            role,
            company,
            lifetime_seconds=min(minutes * 60, settings.max_lifetime_seconds),
            issuer=settings.issuer,
            audience=settings.audience,
        )
    )
