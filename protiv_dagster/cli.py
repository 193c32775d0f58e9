"""`protiv`: the demo (the README's main command), the admin's connection commands, and helpers.

Connecting, changing and removing a company's integration happens only here, on the admin's
machine, with the encryption key in the environment: nothing a Dagster UI user can launch writes
credentials. Secrets are read from a hidden prompt or an environment variable reference, never from
command-line arguments (which other users of the machine can see).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table as RichTable
from rich.text import Text

from protiv_dagster.company_settings import SettingsError, parse_settings
from protiv_dagster.connections.registry import (
    CREDENTIAL_FIELDS,
    PROVIDER_LABELS,
    PROVIDERS,
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
from protiv_dagster.settings import CREDENTIAL_VARIABLE_PREFIX, SECRET_KEY_VARIABLE, data_dir
from protiv_dagster.text import visible

# A crash's traceback must not print local variables: they hold the credentials typed at connect.
# Plain help (click's): it rewraps docstrings at the terminal's width and names option values by
# their metavar (DATE, FILE), where rich help would print <str> and <bool> and keep source line breaks.
app = typer.Typer(
    help="Protiv ProPay data platform on Dagster.", no_args_is_help=True, add_completion=False,
    pretty_exceptions_show_locals=False, rich_markup_mode=None,
)
console = Console()


@app.callback()
def _every_command(
    verbose: Annotated[bool, typer.Option("--verbose", metavar="", help="Show Dagster's beta and supersession warnings.")] = False,
) -> None:
    """Before every command: read .env from the current folder (as the demo writes it and `dagster dev`
    reads it; variables already set win), and keep Dagster's beta and supersession warnings, meant for
    the code's authors, out of the admin's terminal unless --verbose."""
    from dotenv import load_dotenv

    load_dotenv(Path.cwd() / ".env", override=False)
    if not verbose:
        import warnings

        import dagster as dg

        for category in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
            warnings.filterwarnings("ignore", category=category)


CompanyId = Annotated[str, typer.Argument(metavar="COMPANY_ID", help="Protiv company id.")]


def table(*headers: str, **options) -> RichTable:
    """A table whose cells fold instead of being cut: ids, URLs and reasons are read whole at 80 columns."""
    from rich import box

    # No vertical rules: at 80 columns every character goes to the values.
    shown = RichTable(*headers, **{"box": box.SIMPLE_HEAD, "pad_edge": False, **options})
    for column in shown.columns:
        column.overflow = "fold"
    return shown


def print_table(rows: RichTable, whole: tuple[int, ...] = (0,)) -> None:
    """Print ``rows`` with the ``whole`` columns (ids) never broken inside a value: the other
    columns give way first."""
    for index in whole:
        column = rows.columns[index]
        widest = max((len(str(cell)) for cell in column._cells), default=0)
        column.min_width = min(max(widest, len(str(column.header))), 40)
    console.print(rows)


# -- showing outside text -------------------------------------------------------------------------
# Everything shown that this module did not write itself (vendor error texts, exception messages,
# company ids, URLs, reasons kept in the sync state, settings, paths) goes through `literal`: rich
# would read "[/]" in it as markup and crash, or "[green]...[/green]" as this module's own output,
# and a terminal would obey an escape sequence or a carriage return in it.
def literal(value: object, style: str = "", *, cell: bool = False) -> Text:
    """Outside text, shown exactly as it is: no markup, no emoji codes, terminal controls visible."""
    return Text(visible(str(value), keep_line_breaks=not cell), style=style)


def say(*parts: str | Text, style: str = "") -> None:
    """Print one message: ``str`` parts are this module's own markup, ``Text`` parts (``literal``)
    are outside text."""
    console.print(
        Text.assemble(*(Text.from_markup(part) if isinstance(part, str) else part for part in parts), style=style)
    )


def say_error(error: object) -> None:
    say(literal(error), style="red")

DEMO_PORT = 8765
DEMO_SEED = 7
DEMO_WORKERS = 60
DEMO_OPTIONS_FILE = "demo.json"  # what the demo generated, so `protiv emulator` serves the same data


def _dagster_home() -> Path:
    """DAGSTER_HOME, defaulting to the data folder so the demo, `dagster dev` and tests agree."""
    home = Path(os.environ.get("DAGSTER_HOME") or data_dir() / "dagster_home").resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        # SQLite storage is Dagster's default; this file only turns telemetry off.
        config.write_text("telemetry:\n  enabled: false\n")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _local_secret_key() -> None:
    """For the local demo only: keep a generated key in .env (git-ignored), which `dagster dev` loads too."""
    if os.environ.get(SECRET_KEY_VARIABLE):
        return
    env_file = Path(".env")
    lines = env_file.read_text().splitlines() if env_file.exists() else []
    for line in lines:
        if line.startswith(f"{SECRET_KEY_VARIABLE}="):
            os.environ[SECRET_KEY_VARIABLE] = line.split("=", 1)[1].strip()
            return
    key = generate_secret_key()
    env_file.write_text("\n".join([*lines, f"{SECRET_KEY_VARIABLE}={key}", ""]))
    env_file.chmod(0o600)
    os.environ[SECRET_KEY_VARIABLE] = key
    console.print(f"[dim]Generated {SECRET_KEY_VARIABLE} for this laptop in .env (git-ignored).[/dim]")


def print_propay_summary(company_id: str) -> None:
    import pandas as pd

    from protiv_dagster.resources.warehouse import Warehouse

    warehouse = Warehouse()
    totals = warehouse.query(
        "select count(*) as propays, coalesce(sum(actual_hours), 0) as hours, "
        "sum(case when status = 'started' then 1 else 0 end) as started, "
        "coalesce(sum(case when pay_state = 'final' then bonus_pool end), 0) as final_pool, "
        "coalesce(sum(case when pay_state = 'provisional' then bonus_pool end), 0) as provisional_pool, "
        "sum(case when pay_state = 'none' then 1 else 0 end) as unpaid "
        "from {schema}.propay_opportunities where company_id = ?",
        [company_id],
    ).iloc[0]
    counts = warehouse.query(
        "select (select count(*) from {schema}.attendance where company_id = ?) as attendance, "
        "(select count(*) from {schema}.workers where company_id = ?) as workers, "
        "(select count(*) from {schema}.jobs where company_id = ?) as jobs, "
        "(select count(*) from {schema}.rejected_rows where company_id = ?) as set_aside",
        [company_id] * 4,
    ).iloc[0]
    top = warehouse.query(
        "select name, budget_hours, actual_hours, saved_amount, bonus_pool, pay_state "
        "from {schema}.propay_opportunities where company_id = ? order by bonus_pool desc, name limit 5",
        [company_id],
    )
    say(
        "\n", literal(company_id, "bold"), f": {int(counts.attendance)} attendance rows, {int(counts.workers)} workers, "
        f"{int(counts.jobs)} jobs and milestones, {int(counts.set_aside)} records set aside"
    )
    # Final (completed) and provisional (started) money are never added together (rules §9).
    console.print(
        f"[bold]{int(totals.propays)} ProPays[/bold] ({int(totals.started or 0)} started), "
        f"{float(totals.hours):,.1f} worker-hours; bonus pools final [bold green]${float(totals.final_pool):,.2f}"
        f"[/bold green], provisional ${float(totals.provisional_pool):,.2f}; {int(totals.unpaid or 0)} pay nothing "
        "(see jobs_without_propay and no_bonus_reason)"
    )

    def number(value: object, places: int) -> str:
        return "-" if value is None or pd.isna(value) else f"{float(value):,.{places}f}"

    top_table = table(title="Top jobs by bonus pool")
    for column in ("ProPay", "budget h", "actual h", "saved $", "pool $", "money"):
        top_table.add_column(column, overflow="fold", justify="left" if column in ("ProPay", "money") else "right")
    for row in top.itertuples():
        top_table.add_row(
            literal(row.name, cell=True), number(row.budget_hours, 1), number(row.actual_hours, 1),
            number(row.saved_amount, 2), number(row.bonus_pool, 2), literal(row.pay_state, cell=True),
        )
    console.print(top_table)


def _demo_options() -> dict[str, dict]:
    """Per vendor, the seed, crew size and first port of its last demo (an older file held one set)."""
    options_file = data_dir() / DEMO_OPTIONS_FILE
    if not options_file.exists():
        return {}
    stored = json.loads(options_file.read_text())
    if "demos" in stored:
        return stored["demos"]
    return {provider: {k: stored[k] for k in ("seed", "workers", "port")} for provider in stored.get("vendors", [])}


def _start_vendors(providers: list[str], *, port: int, seed: int, workers: int, reuse_credentials: bool) -> list:
    """Start each provider's demo emulator, on ``port``, ``port + 1``, ... in the order of PROVIDERS."""
    try:
        from protiv_emulators.demo import DEMO_COMPANIES, start_demo_vendor
    except ModuleNotFoundError:  # a production install: the emulators are a development package
        raise typer.BadParameter(
            "the vendor emulators are not installed here; install them with `pip install -e ./emulators` "
            "from the repository (make does this), or connect a real company with `protiv connect`"
        ) from None

    registry = ConnectionRegistry()
    started = []
    try:
        for provider in providers:
            credentials = registry.get(DEMO_COMPANIES[provider]).credentials() if reuse_credentials else None
            vendor_port = port + PROVIDERS.index(provider)
            try:
                started.append(
                    start_demo_vendor(provider, port=vendor_port, seed=seed, workers=workers, credentials=credentials)
                )
            except OSError as exc:
                raise typer.BadParameter(f"port {vendor_port} is busy ({exc.strerror}); pass --port") from None
    except BaseException:
        for vendor in started:
            vendor.stop()
        raise
    return started


def _providers(vendor: str) -> list[str]:
    if vendor == "all":
        return list(PROVIDERS)
    if vendor not in PROVIDERS:
        raise typer.BadParameter(f"unknown vendor {vendor!r}; one of: {', '.join(PROVIDERS)}, all")
    return [vendor]


def _sync_with_progress(connection, label: str) -> tuple[list[str], float]:
    """Run a company's sync through Dagster on the configured instance, with a progress bar, and
    record it in the sync state with the vendor's cursor (``company_sync.force_sync``): the daemon
    refreshes the company from there, and its data counts as current from the moment the sync
    started. The window ends at the company's own today (its time zone), not this machine's."""
    import dagster as dg

    from protiv_dagster.sync import runs as syncs
    from protiv_dagster.sync.runs import sync_window
    from protiv_dagster.sync.company import force_sync, plan_sync
    from protiv_dagster.definitions import defs

    now = syncs.utc_now()
    steps = plan_sync(connection.company_id, *sync_window(connection, now))
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(), TextColumn("{task.description}", markup=False), BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"), TimeElapsedColumn(), console=console,
    ) as progress:
        task = progress.add_task(label, total=len(steps))

        def on_step(step, state):
            if state == "started":
                progress.update(task, description=f"{label}: {step.label}")
            else:
                progress.advance(task)

        run_ids = force_sync(
            defs, dg.DagsterInstance.get(), connection, now, on_step,
            trigger="force_sync" if label == "force sync" else "initial_sync",
        )
    return run_ids, time.perf_counter() - started


@app.command()
def demo(
    vendor: Annotated[str, typer.Option(metavar="VENDOR", help=f"Demo company's vendor: {', '.join(PROVIDERS)} or all.")] = "quickbooks_time",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port of the first emulator; the others take the next ports.")] = DEMO_PORT,
    workers: Annotated[int, typer.Option(min=5, max=500, metavar="COUNT", help="Crew size of each demo company.")] = DEMO_WORKERS,
    seed: Annotated[int, typer.Option(metavar="NUMBER", help="Seed of the demo companies' data.")] = DEMO_SEED,
) -> None:
    """Start the emulator, connect a demo company, run its initial sync through Dagster, summarize."""
    from protiv_dagster.sync.company import SyncFailed

    providers = _providers(vendor)
    _local_secret_key()
    home = _dagster_home()
    today = date.today()
    vendors = _start_vendors(providers, port=port, seed=seed, workers=workers, reuse_credentials=False)
    # Per vendor, so that `protiv emulator` serves every demo company run so far, each with its data.
    demos = _demo_options()
    demos.update({provider: {"seed": seed, "workers": workers, "port": port} for provider in providers})
    (data_dir() / DEMO_OPTIONS_FILE).write_text(json.dumps({"demos": demos}, indent=2, sort_keys=True))
    try:
        for demo_vendor in vendors:
            connection = ConnectionRegistry().connect(
                demo_vendor.company_id, demo_vendor.provider, demo_vendor.base_url, demo_vendor.credentials,
                settings=demo_vendor.settings, today=today,
            )
            say(
                "Connected ", literal(connection.company_id, "bold"), f" to {demo_vendor.label} at ",
                literal(connection.base_url), f" ({workers} workers), pulling attendance from {connection.attendance_pull_date}",
            )
            run_ids, seconds = _sync_with_progress(connection, "initial sync")
            console.print(
                f"Initial sync: {len(run_ids)} Dagster runs in {seconds:.1f} s, "
                f"{demo_vendor.emulator.request_count} vendor requests"
            )
            print_propay_summary(connection.company_id)
    except (SyncFailed, RegistryError) as exc:
        say_error(exc)
        raise typer.Exit(1) from None
    finally:
        for demo_vendor in vendors:
            demo_vendor.stop()
    say(
        "\nRuns and materializations are in the Dagster instance at ", literal(home), ".\n"
        "Open the UI on the same instance and data with [bold]make ui[/bold] (",
        literal(f"DAGSTER_HOME={home} dagster dev -w workspace.yaml"), "); run [bold]make emulator[/bold] beside it "
        "to materialize the demo companies' partitions again (a force sync).",
    )


@app.command()
def emulator() -> None:
    """Serve the emulators of the last demo's companies until interrupted (for the UI's force sync)."""
    _local_secret_key()
    demos = _demo_options()
    if not demos:
        console.print("[red]No demo has run in this data folder yet: run `protiv demo` first.[/red]")
        raise typer.Exit(2)
    vendors = []
    try:
        for provider in PROVIDERS:  # every demo company run so far, each with the data it was made with
            if provider in demos:
                options = demos[provider]
                vendors += _start_vendors([provider], port=options["port"], seed=options["seed"],
                                          workers=options["workers"], reuse_credentials=True)
    except BaseException:
        for vendor in vendors:
            vendor.stop()
        raise
    for demo_vendor in vendors:
        say(literal(f"{demo_vendor.label} emulator for {demo_vendor.company_id} at {demo_vendor.base_url}"))
        # Emulator credentials, made on this machine for the demo: what `protiv connect` asks for.
        say(literal("  connect with " + ", ".join(f"{name} {value}" for name, value in demo_vendor.credentials.items())),
            style="dim")
    console.print("Ctrl-C stops them.")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for demo_vendor in vendors:
            demo_vendor.stop()


@app.command()
def ui() -> None:
    """Start `dagster dev` on workspace.yaml with the demo's instance and data."""
    _local_secret_key()
    _dagster_home()
    raise typer.Exit(subprocess.call([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml"]))


@app.command()
def keygen() -> None:
    """Print a new encryption key for PROTIV_SECRET_KEY (give it to admins and run workers only)."""
    typer.echo(generate_secret_key())


_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


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
        raise RegistryError(f"{option} is not valid JSON ({type(exc).__name__} at {getattr(exc, 'pos', '?')})") from None
    if not isinstance(loaded, dict):
        raise RegistryError(f"{option} must hold one JSON object of settings, e.g. {{\"timezone\": \"America/Denver\"}}")
    return loaded


def _credential_references(items: list[str], provider: str) -> dict[str, EnvReference]:
    """``--credential-env NAME=VARIABLE`` options, each a credential of the provider kept in an
    environment variable ``PROTIV_CREDENTIAL_...`` of the run workers."""
    required, optional = CREDENTIAL_FIELDS[provider]
    label = PROVIDER_LABELS[provider]
    references: dict[str, EnvReference] = {}
    for item in items:
        name, equals, variable = item.partition("=")
        if not equals or not name or not variable:
            raise RegistryError(f"--credential-env takes NAME=VARIABLE, e.g. access_token={CREDENTIAL_VARIABLE_PREFIX}ACME_TOKEN")
        if name not in required | optional:
            raise RegistryError(
                f"--credential-env: {label} has no credential {name!r}; its credentials: {', '.join(sorted(required | optional))}"
            )
        if name in references:
            raise RegistryError(f"--credential-env gives {name} twice")
        validate_credential_variable(variable, what=f"--credential-env {name}=...: that variable")
        references[name] = EnvReference(variable)
    return references


@app.command()
def connect(
    company_id: Annotated[str, typer.Argument(metavar="COMPANY_ID", help="Protiv company id.")],
    provider: Annotated[str, typer.Option(metavar="PROVIDER", help=f"One of: {', '.join(PROVIDERS)}.")],
    base_url: Annotated[str, typer.Option(metavar="URL", help="The vendor API base URL for this company (http or https, no user:password@, query or fragment).")],
    pull_date: Annotated[Optional[str], typer.Option(metavar="DATE", help="Attendance pull date YYYY-MM-DD, not after today (default: 14 days ago).")] = None,
    settings_file: Annotated[Optional[Path], typer.Option(metavar="FILE", help="JSON file with the company's ProPay settings.")] = None,
    credential_env: Annotated[
        Optional[list[str]],
        typer.Option(
            metavar="NAME=VARIABLE",
            help=f"NAME=VARIABLE: keep credential NAME in the run workers' environment variable VARIABLE "
            f"(named {CREDENTIAL_VARIABLE_PREFIX}...) instead of encrypted."
        ),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check/--no-check", help="Ask the vendor whether it accepts the credentials (skip offline).")
    ] = True,
) -> None:
    """Connect (or reconnect) a company's integration. Admin only: needs PROTIV_SECRET_KEY.

    Every option is checked before a secret is asked for. Credentials not given as environment
    references are asked for at a hidden prompt and stored encrypted. Then the vendor is asked
    whether it accepts them: green (the daemon starts the initial sync) or red with the vendor's
    reason (exit 1; fix and connect again)."""
    try:
        validate_company_id(company_id)
        validate_provider(provider)
        validate_base_url(base_url, field="--base-url")
        settings = _settings_option(settings_file)
        timezone = parse_settings(settings, company_id=company_id).timezone
        attendance_pull_date = _pull_date_option(pull_date, timezone) if pull_date is not None else None
        references = _credential_references(credential_env or [], provider)
        registry = ConnectionRegistry()
        required, _ = CREDENTIAL_FIELDS[provider]
        to_ask = sorted(required - set(references))
        if to_ask:
            require_secret_key()  # before anyone types a secret that could not be stored
        credentials: dict[str, str | EnvReference] = dict(references)
        for name in to_ask:
            typed = typed_credential(typer.prompt(f"{PROVIDER_LABELS[provider]} {name}", hide_input=True))
            credentials[name] = check_credential(provider, name, typed)
        connection = registry.connect(
            company_id, provider, base_url, credentials, attendance_pull_date=attendance_pull_date, settings=settings,
        )
    except SettingsError as exc:  # RegistryError included
        say_error(exc)
        raise typer.Exit(2) from None
    say(literal(
        f"Connected {connection.company_id} to {connection.provider_label} at {redacted_url(connection.base_url)}; "
        f"attendance from {connection.attendance_pull_date}; credentials: "
        + ", ".join(f"{n} ({'env ' + s['env'] if 'env' in s else 'encrypted'})" for n, s in connection.stored_credentials.items())
    ))
    if not check:
        say("Not checked with the vendor (--no-check): `protiv status --probe` checks it later.", style="dim")
        return
    error = _verify_connection(connection)
    if error is None:
        say(f"[green]green[/green]: {PROVIDER_LABELS[provider]} accepted the credentials; the daemon starts the "
            "initial sync (or run `protiv sync ", literal(company_id), " now).")
        return
    say("[red]red[/red]: ", literal(error))
    _sync_failure_hint(connection, error, after_sync=False)
    raise typer.Exit(1)


def _verify_connection(connection) -> str | None:
    """Ask the company's vendor what changed (as the refresh does): None when it answers, else why
    not, also recorded so `protiv status` shows the company red with that reason."""
    import dagster as dg

    from protiv_dagster.sync import runs as syncs
    from protiv_dagster.sync.refresh import check_companies
    from protiv_dagster.definitions import defs

    now = syncs.utc_now()
    with dg.build_resources({"registry": defs.resources["registry"], "vendors": defs.resources["vendors"]}) as built:
        [checked] = check_companies([connection], {}, built.registry, built.vendors, now)
        if checked.error is not None:
            built.registry.sync_state().record_check(connection.company_id, now, error=checked.error)
    return checked.error


def _sync_failure_hint(connection, message: str, *, after_sync: bool = True) -> None:
    """The next step after a failed sync: where the vendor is, and what to try."""
    from urllib.parse import urlsplit

    host = urlsplit(connection.base_url).netloc.rpartition("@")[2]
    local = host.split(":")[0] in ("127.0.0.1", "localhost", "::1", "[::1]")
    hints = [f"Vendor host: {host}."]
    if "connection refused" in message and local:
        hints.append("It is on this machine: is `protiv emulator` running (it serves the demo companies)?")
    elif "connection refused" in message or "timed out" in message:
        hints.append("Is the vendor reachable from here, and is the base URL right (`protiv connections`)?")
    if "credential" in message or "401" in message or "403" in message or "refused the credentials" in message:
        hints.append(f"An admin can reconnect the company: `protiv connect {connection.company_id} ...`.")
    if after_sync:
        hints.append("The run's events and error traces are in the Dagster UI (`make ui`).")
    say(literal(" ".join(hints)), style="dim")


@app.command()
def sync(company_id: CompanyId) -> None:
    """Force sync one company now: workers and jobs, every week from its attendance pull date to
    its own today (its time zone), then its ProPays; shows progress until the ProPay tables are
    current. Recorded as a sync with the vendor's cursor, as the daemon's are: the daemon goes on
    from there with its refreshes. Safe to repeat and safe while a scheduled sync runs (every
    partition write replaces the partition atomically)."""
    from protiv_dagster.sync.company import SyncFailed

    _dagster_home()
    connection = None
    try:
        connection = ConnectionRegistry().get(company_id)
        run_ids, seconds = _sync_with_progress(connection, "force sync")
    except (SyncFailed, RegistryError) as exc:
        say_error(exc)
        if connection is not None:
            _sync_failure_hint(connection, str(exc))
        raise typer.Exit(1) from None
    say("Force sync of ", literal(company_id), f": {len(run_ids)} Dagster runs in {seconds:.1f} s")
    print_propay_summary(company_id)


@app.command()
def status(
    probe: Annotated[bool, typer.Option(metavar="", help="Ask each vendor now whether it accepts the credentials and what changed.")] = False,
) -> None:
    """Each connected company's health: green when its vendor accepts the credentials, answers, and
    the data is current within the two-hour promise; red with the reason otherwise."""
    from protiv_dagster.sync import runs as syncs
    from protiv_dagster.sync.health import company_health
    from protiv_dagster.sync.state import SyncStateStore

    registry, store, now = ConnectionRegistry(), SyncStateStore(), syncs.utc_now()
    connected = registry.list()
    if probe:
        _probe(connected, store, now)
    # The reasons go under the table, one line each: in a column at 80 characters they would be cut
    # into a word per line.
    rows = table("company", "provider", "status", "as of (UTC)", "syncs")
    reasons: list[Text] = []
    for connection in connected:
        pending = store.pending_batches(connection.company_id)
        state = store.state(connection.company_id)
        health = company_health(connection, state, pending, now)
        colour = "green" if health.healthy else "red"
        rows.add_row(
            literal(connection.company_id, cell=True), connection.provider_label, Text(health.label, style=colour),
            state.current_as_of.strftime("%Y-%m-%d %H:%M") if state.current_as_of else "never", str(len(pending)),
        )
        if not health.healthy:
            reasons.append(Text.assemble(literal(connection.company_id, "bold"), ": ", literal(health.reason)))
    print_table(rows)
    for reason in reasons:
        console.print(reason, style="red")
    if reasons:
        raise typer.Exit(1)


def _probe(connections, store, now) -> None:
    """Ask each vendor what changed since the company's cursor: proves credentials and reachability."""
    from protiv_dagster.sync.refresh import check_companies
    from protiv_dagster.connections.registry import ConnectionRegistryResource
    from protiv_dagster.resources.vendors import VendorApis

    states = store.all_states()
    cursors = {c.company_id: states[c.company_id].cursor if c.company_id in states else None for c in connections}
    for result in check_companies(connections, cursors, ConnectionRegistryResource(), VendorApis(), now):
        company_id = result.connection.company_id
        if result.error is not None:
            store.record_check(company_id, now, error=result.error)
        elif result.changes.quiet and cursors[company_id] is not None:
            store.record_check(company_id, now)
        else:
            say(literal(f"{company_id}: changes waiting for the next refresh (or run `protiv sync {company_id}`)"))


settings_app = typer.Typer(
    help="A company's ProPay settings: show the ones in force, set a new version, list every version. "
    "Each version takes effect from a date; a ProPay is computed with the version in force when its work "
    "began, and names it (propay_opportunities.settings_version). The format: docs/settings.md.",
    no_args_is_help=True,
)
app.add_typer(settings_app, name="settings")


def _company_settings_versions(company_id: str):
    try:
        return ConnectionRegistry().get(company_id)
    except SettingsError as exc:  # RegistryError included
        say_error(exc)
        raise typer.Exit(2) from None


@settings_app.command("show")
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


@settings_app.command("set")
def settings_set(
    company_id: CompanyId,
    file: Annotated[Path, typer.Option(metavar="FILE", help="JSON file with the company's ProPay settings (the whole set).")],
    effective_from: Annotated[
        Optional[str], typer.Option(metavar="DATE", help="First day the new version applies to, YYYY-MM-DD (default: today, not earlier).")
    ] = None,
) -> None:
    """Record a new version of a company's ProPay settings (admin only), validated before anything is
    stored. ProPays whose work began before it keep their version; the next ProPay materialization
    applies it to the others (materialize the company's ProPay partition to apply it now)."""
    try:
        start = _date_option(effective_from, "--effective-from") if effective_from is not None else None
        connection = ConnectionRegistry().update_settings(company_id, _settings_option(file, "--file") or {}, effective_from=start)
    except SettingsError as exc:  # RegistryError included
        say_error(exc)
        raise typer.Exit(2) from None
    newest = connection.settings_versions[-1]
    say(literal(
        f"Settings of {company_id}: version {newest.version} recorded, in force from {newest.effective_from}: "
        f"{newest.settings.model_dump_json(exclude_defaults=True)}"
    ))


@settings_app.command("versions")
def settings_versions(company_id: CompanyId) -> None:
    """Every version of a company's settings: number, in force from, recorded at, and what differs
    from the defaults; a version superseded by a same-day correction is marked."""
    connection = _company_settings_versions(company_id)
    in_force = {stored.version for stored in connection.settings_in_force()}
    # One block per version: the settings are read whole, not folded into a narrow column.
    for stored in connection.settings_versions:
        start = stored.effective_from.isoformat() if stored.effective_from else "the start"
        note = "" if stored.version in in_force else " (superseded by a later version of the same date)"
        say(f"[bold]version {stored.version}[/bold], in force from {start}, recorded {stored.recorded_at:%Y-%m-%d %H:%M} UTC{note}")
        say("  differs from the defaults: ", literal(stored.settings.model_dump_json(exclude_defaults=True)))


def _date_option(text: str, option: str) -> date:
    if not _ISO_DATE.fullmatch(text):
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise RegistryError(f"{option} must be a date in the form YYYY-MM-DD (e.g. 2026-01-05), not {shown!r}")
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise RegistryError(f"{option} {text} is not a calendar date (YYYY-MM-DD)") from None


@app.command()
def disconnect(company_id: CompanyId) -> None:
    """Remove a company's connection (admin only). Its synced data stays in the warehouse."""
    try:
        ConnectionRegistry().disconnect(company_id)
    except RegistryError as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    say("Disconnected ", literal(company_id), "; its data stays in the warehouse.")


@app.command()
def connections() -> None:
    """List connected companies (never their credentials)."""
    # One block per company: a base URL and the credential list do not fit beside the rest at 80 columns.
    for c in ConnectionRegistry().list():
        say(literal(c.company_id, "bold"), f" ({c.provider_label})")
        # A connection made before base URLs were checked may carry a password in its URL.
        say("  base URL ", literal(redacted_url(c.base_url)))
        say(f"  attendance from {c.attendance_pull_date}, connected {c.connected_at:%Y-%m-%d %H:%M} UTC")
        say("  credentials ", literal(", ".join(
            f"{n} ({'from $' + s['env'] if 'env' in s else 'encrypted'})" for n, s in c.stored_credentials.items())))


analyst_role = typer.Typer(
    help="Analyst roles on a PostgreSQL warehouse: each reads its own companies' rows only (row-level security).",
    no_args_is_help=True,
)
app.add_typer(analyst_role, name="analyst-role")


def _analyst_warehouse():
    from protiv_dagster.resources.warehouse import Warehouse

    return Warehouse()


@analyst_role.command("grant")
def analyst_role_grant(
    role: Annotated[str, typer.Argument(metavar="ROLE", help="An existing PostgreSQL role (plain, not superuser or table owner).")],
    company_id: Annotated[str, typer.Argument(metavar="COMPANY_ID", help="The company whose rows the role may read.")],
) -> None:
    """Let ROLE read COMPANY_ID's rows of every warehouse table and view, and nothing else.

    The grant is bound to the role that has this name now (its OID): if the role is dropped and
    created again, the new role reads nothing until it is granted again.
    """
    from protiv_dagster.resources.warehouse import WarehouseError

    try:
        granted = _analyst_warehouse().grant_company_analyst(role, company_id)
    except (WarehouseError, ValueError) as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    console.print(
        f"{role} (OID {granted.role_oid}) reads the rows of company {company_id!r} "
        "(row-level security on every table and view).",
        markup=False,
    )
    if granted.replaced:
        console.print(
            f"Replaced a stale grant of {company_id!r} under the name {role} ({'; '.join(granted.replaced)}): "
            f"it belonged to an earlier role of that name. By granting again you bound the company to the "
            f"role {role} that exists now (OID {granted.role_oid}); make sure it is the person meant to read it.",
            markup=False, style="yellow",
        )
    if granted.stale_companies:
        console.print(
            f"{role} also has stale grants, which give no rows, of {', '.join(map(repr, granted.stale_companies))} "
            f"from an earlier role of that name: remove them with `protiv analyst-role revoke {role} <company>`, "
            "or grant them again to bind them to the role that exists now.",
            markup=False, style="yellow",
        )


@analyst_role.command("revoke")
def analyst_role_revoke(
    role: str,
    company_id: Annotated[Optional[str], typer.Argument(metavar="[COMPANY_ID]", help="The company to take away; all when omitted.")] = None,
) -> None:
    """Take a company (or all) away from ROLE; a role left with none loses its grants on the schema.

    Also removes stale grants left under the name ROLE by a role that was dropped (and maybe
    created again) outside this command, even when no role of that name exists any more.
    """
    from protiv_dagster.resources.warehouse import WarehouseError

    try:
        removed = _analyst_warehouse().revoke_company_analyst(role, company_id)
    except (WarehouseError, ValueError) as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    stale = int(removed["state"].str.startswith("stale").sum())
    note = f", {stale} of them stale (an earlier role of that name)" if stale else ""
    what = "companies" if company_id is None else repr(company_id)
    console.print(f"Revoked {role}'s {what}: {len(removed)} grant(s) removed{note}.", markup=False)


@analyst_role.command("list")
def analyst_role_list() -> None:
    """Each analyst grant: role, company, the role's OID it is bound to, and whether it is stale."""
    import pandas as pd

    from protiv_dagster.resources.warehouse import WarehouseError

    try:
        grants = _analyst_warehouse().company_analysts()
    except WarehouseError as exc:
        say_error(exc)
        raise typer.Exit(2) from None
    rows = table("role", "company", "role OID", "state")
    for row in grants.itertuples():
        oid = "" if pd.isna(row.role_oid) else str(row.role_oid)
        rows.add_row(
            literal(row.role_name, cell=True), literal(row.company_id, cell=True), oid, literal(row.state, cell=True),
            style="yellow" if row.state.startswith("stale") else None,
        )
    print_table(rows, whole=(0, 1))
    stale = sorted(set(grants.loc[grants["state"].str.startswith("stale"), "role_name"]))
    if stale:
        console.print(
            f"Stale grants (of {', '.join(stale)}) give no rows: their role was dropped, or dropped and created "
            "again (a new role with a new OID), outside `protiv analyst-role revoke`. Clean up with "
            "`protiv analyst-role revoke <role>` (or `revoke <role> <company>`); to let a re-created role read "
            "a company, grant it again explicitly with `protiv analyst-role grant <role> <company>`.",
            markup=False, style="yellow",
        )


if __name__ == "__main__":
    app()
