"""The demo (the README's main command) and the emulators it runs on: vendor emulators serving
seeded demo companies on this machine, connected, synced through Dagster and summarized.

The emulators are a development package (`protiv_emulators`, installed by make, absent from the
image): imported only when a command needs them, with an error saying how to install them.
"""

from __future__ import annotations

import io
import json
import signal
import time
from contextlib import redirect_stdout
from datetime import date
from typing import Annotated

import typer

from protiv_dagster.cli import output
from protiv_dagster.cli.analysts import print_propay_summary
from protiv_dagster.cli.common import dagster_home, local_secret_key
from protiv_dagster.cli.operations import sync_with_progress
from protiv_dagster.cli.output import literal, say, say_error
from protiv_dagster.connections.registry import ConnectionRegistry, RegistryError
from protiv_dagster.settings import data_dir
from protiv_dagster.vendors.registry import VENDORS

DEMO_PORT = 8765
DEMO_SEED = 7
DEMO_WORKERS = 60
DEMO_OPTIONS_FILE = "demo.json"  # what the demo generated, so `protiv emulator` serves the same data


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
    """Start each provider's demo emulator, on ``port``, ``port + 1``, ... in the order of VENDORS."""
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
            vendor_port = port + list(VENDORS).index(provider)
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
        return list(VENDORS)
    if vendor not in VENDORS:
        raise typer.BadParameter(f"unknown vendor {vendor!r}; one of: {', '.join(VENDORS)}, all")
    return [vendor]


def demo(
    vendor: Annotated[
        str, typer.Option(metavar="VENDOR", help=f"Demo company's vendor: {', '.join(VENDORS)} or all.")
    ] = "quickbooks_time",
    port: Annotated[
        int, typer.Option(metavar="PORT", help="Port of the first emulator; the others take the next ports.")
    ] = DEMO_PORT,
    workers: Annotated[
        int, typer.Option(min=5, max=500, metavar="COUNT", help="Crew size of each demo company.")
    ] = DEMO_WORKERS,
    seed: Annotated[int, typer.Option(metavar="NUMBER", help="Seed of the demo companies' data.")] = DEMO_SEED,
) -> None:
    """Start the emulator, connect a demo company, run its initial sync through Dagster, summarize."""
    from protiv_dagster.sync.company import SyncFailed

    providers = _providers(vendor)
    local_secret_key()
    home = dagster_home()
    today = date.today()
    vendors = _start_vendors(providers, port=port, seed=seed, workers=workers, reuse_credentials=False)
    # Per vendor, so that `protiv emulator` serves every demo company run so far, each with its data.
    demos = _demo_options()
    demos.update({provider: {"seed": seed, "workers": workers, "port": port} for provider in providers})
    (data_dir() / DEMO_OPTIONS_FILE).write_text(json.dumps({"demos": demos}, indent=2, sort_keys=True))
    try:
        for demo_vendor in vendors:
            connection = ConnectionRegistry().connect(
                demo_vendor.company_id,
                demo_vendor.provider,
                demo_vendor.base_url,
                demo_vendor.credentials,
                settings=demo_vendor.settings,
                today=today,
            )
            say(
                "Connected ",
                literal(connection.company_id, "bold"),
                f" to {demo_vendor.label} at ",
                literal(connection.base_url),
                f" ({workers} workers), pulling attendance from {connection.attendance_pull_date}",
            )
            run_ids, seconds = sync_with_progress(connection, "initial sync")
            output.console.print(
                f"Initial sync: {len(run_ids)} Dagster runs in {seconds:.1f} s, "
                f"{demo_vendor.emulator.request_count} vendor requests"
            )
            print_propay_summary(connection.company_id)
        build_analysts_marts()
    except (SyncFailed, RegistryError) as exc:
        say_error(exc)
        raise typer.Exit(1) from None
    finally:
        for demo_vendor in vendors:
            demo_vendor.stop()
    from protiv_dagster.warehouse.store import WarehouseStore, analysts_copy

    say(
        "\nRuns and materializations are in the Dagster instance at ",
        literal(home),
        ".\nOpen the UI on the same instance and data with [bold]make ui[/bold] (",
        literal(f"DAGSTER_HOME={home} dagster dev -w workspace.yaml"),
        "); run [bold]make emulator[/bold] beside it "
        "to materialize the demo companies' partitions again (a force sync).\nAnalysts open ",
        literal(str(analysts_copy(WarehouseStore().duckdb_file()))),
        " read-only (docs/analysts.md has sample queries); never the warehouse file itself, which syncs write.",
    )


def build_analysts_marts() -> None:
    """The analysts' marts (dbt) on the demo's warehouse, published in their copy."""
    import dagster as dg

    from protiv_dagster.analytics import analytics_schema
    from protiv_dagster.definitions import defs
    from protiv_dagster.sync.company import build_marts
    from protiv_dagster.warehouse.store import WarehouseStore

    started = time.perf_counter()
    # dbt's own log lines (dagster-dbt writes them to stdout) are in the run's events; here they would
    # bury the summary.
    with output.console.status("Building the analysts' marts (dbt build)..."), redirect_stdout(io.StringIO()):
        result = build_marts(defs, dg.DagsterInstance.get(), "demo")
    checks = result.get_asset_check_evaluations()
    passed = sum(1 for check in checks if check.passed)
    schema = analytics_schema(WarehouseStore().schema_name)
    output.console.print(
        f"Analysts' marts: {len(result.get_asset_materialization_events())} views in schema {schema}, "
        f"{passed} of {len(checks)} dbt tests passed, in {time.perf_counter() - started:.1f} s",
        markup=False,  # the schema's name comes from the environment
    )


def emulator() -> None:
    """Serve the emulators of the last demo's companies until interrupted (for the UI's force sync)."""
    local_secret_key()
    demos = _demo_options()
    if not demos:
        output.console.print("[red]No demo has run in this data folder yet: run `protiv demo` first.[/red]")
        raise typer.Exit(2)
    vendors = []
    try:
        for provider in VENDORS:  # every demo company run so far, each with the data it was made with
            if provider in demos:
                options = demos[provider]
                vendors += _start_vendors(
                    [provider],
                    port=options["port"],
                    seed=options["seed"],
                    workers=options["workers"],
                    reuse_credentials=True,
                )
    except BaseException:
        for vendor in vendors:
            vendor.stop()
        raise
    for demo_vendor in vendors:
        say(literal(f"{demo_vendor.label} emulator for {demo_vendor.company_id} at {demo_vendor.base_url}"))
        # Emulator credentials, made on this machine for the demo: what `protiv connect` asks for.
        say(
            literal(
                "  connect with " + ", ".join(f"{name} {value}" for name, value in demo_vendor.credentials.items())
            ),
            style="dim",
        )
    output.console.print("Ctrl-C stops them.")

    def stop_on_terminate(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    # `kill`, `docker stop` and a test's terminate() stop them as Ctrl-C does, even when the shell
    # that started the command made it ignore SIGTERM.
    signal.signal(signal.SIGTERM, stop_on_terminate)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        for demo_vendor in vendors:
            demo_vendor.stop()
