"""`protiv`: the command line of the data platform, one module per audience.

- ``demo``: the demo (the README's main command) and the vendor emulators it runs on;
- ``operations``: what operators run (force sync, status, the Dagster UI, upgrade);
- ``admin``: a company's integration (connect, disconnect, connections, settings, keygen);
- ``analysts``: the ProPay summary a sync prints, a company's report (``report``) and the analyst
  roles of the warehouse;
- ``service``: the integrations service an app calls (``serve``), and its development keys and tokens;
- ``output``: the console and how outside text is shown; ``common``: what several audiences share.

A command is a plain function of its audience's module, registered below in the order ``protiv
--help`` lists it. Dagster is imported inside the commands that need it, so ``protiv --help`` and
the admin commands start quickly.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from protiv_dagster.cli import admin, analysts, demo, operations, output, service

__all__ = ["app", "main"]

# A crash's traceback must not print local variables: they hold the credentials typed at connect.
# Plain help (click's): it rewraps docstrings at the terminal's width and names option values by
# their metavar (DATE, FILE), where rich help would print <str> and <bool> and keep source line breaks.
app = typer.Typer(
    help="Protiv ProPay data platform on Dagster.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
    rich_markup_mode=None,
)


@app.callback()
def _every_command(
    verbose: Annotated[
        bool, typer.Option("--verbose", metavar="", help="Show Dagster's beta and supersession warnings.")
    ] = False,
) -> None:
    """Before every command: read .env from the current folder (as the demo writes it and `dagster dev`
    reads it; variables already set win), and keep Dagster's beta and supersession warnings, meant for
    the code's authors, out of the admin's terminal unless --verbose."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    if not verbose:
        import logging
        import warnings

        # The vendor clients log each retry as a warning; without a handler Python prints it on
        # stderr. The admin reads the outcome in one paragraph; --verbose shows every retry.
        logging.getLogger("protiv_dagster").addHandler(logging.NullHandler())

        import dagster as dg

        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.filterwarnings("ignore", category=category)


app.command(cls=output.Command)(demo.demo)
app.command(cls=output.Command)(demo.emulator)
app.command(cls=output.Command)(operations.ui)
app.command(cls=output.Command)(admin.keygen)
app.command(cls=output.Command)(admin.connect)
app.command(cls=output.Command)(operations.sync)
app.command(cls=output.Command)(operations.status)
app.command(cls=output.Command)(analysts.report)
app.command(cls=output.Command)(operations.upgrade)
app.command(cls=output.Command)(admin.disconnect)
app.command(cls=output.Command)(admin.connections)
app.add_typer(admin.settings_app, name="settings")
app.add_typer(analysts.analyst_role, name="analyst-role")
app.command(cls=output.Command)(service.serve)
app.add_typer(service.service_app, name="service")


def main() -> None:
    """The `protiv` command: the app, with a last guard for the errors that name what is wrong and
    what to do (a registry or warehouse to upgrade, an unknown company, a bad setting). A command
    that does not catch one itself still prints that sentence instead of a traceback (--verbose
    keeps the traceback)."""
    try:
        app()
    except Exception as exc:
        # Imported only now: the warehouse brings DuckDB, pandas and psycopg, which `--help` need not load.
        from protiv_dagster.company_settings import SettingsError  # RegistryError included
        from protiv_dagster.warehouse.session import WarehouseError

        if not isinstance(exc, (SettingsError, WarehouseError)) or "--verbose" in sys.argv[1:]:
            raise
        output.say_error(exc)
        sys.exit(1)
