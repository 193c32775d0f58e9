"""What operators run: force a company's sync, see every company's health, open the Dagster UI,
upgrade the databases to this version's schema."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from protiv_dagster.cli import output
from protiv_dagster.cli.analysts import print_propay_summary
from protiv_dagster.cli.common import CompanyId, dagster_home, local_secret_key
from protiv_dagster.cli.output import literal, print_table, say, say_error, table
from protiv_dagster.connections.registry import ConnectionRegistry, RegistryError


def sync_with_progress(connection, label: str) -> tuple[list[str], float]:
    """Run a company's sync through Dagster on the configured instance, with a progress bar, and
    record it in the sync state with the vendor's cursor (``company_sync.force_sync``): the daemon
    refreshes the company from there, and its data counts as current from the moment the sync
    started. The window ends at the company's own today (its time zone), not this machine's."""
    import dagster as dg

    from protiv_dagster.definitions import defs
    from protiv_dagster.integrations import audit
    from protiv_dagster.integrations.service import record_from_cli
    from protiv_dagster.sync import runs as syncs
    from protiv_dagster.sync.company import force_sync, plan_sync
    from protiv_dagster.sync.runs import sync_window

    now = syncs.utc_now()
    steps = plan_sync(connection.company_id, *sync_window(connection, now))
    started = time.perf_counter()
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} runs"),
        TimeElapsedColumn(),
        console=output.console,
    ) as progress:
        task = progress.add_task(label, total=len(steps))

        def on_step(step, state):
            if state == "started":
                progress.update(task, description=f"{label}: {step.label}")
            else:
                progress.advance(task)

        trigger = "force_sync" if label == "force sync" else "initial_sync"
        record_from_cli(connection.company_id, audit.FORCE_SYNC, audit.DONE, f"sync {trigger} (CLI)")
        run_ids = force_sync(defs, dg.DagsterInstance.get(), connection, now, on_step, trigger=trigger)
    return run_ids, time.perf_counter() - started


def sync_failure_hint(company_id: str, base_url: str, message: str, *, after_sync: bool = True) -> None:
    """The next step after a failed sync or connect: where the vendor is, and what to try."""
    from urllib.parse import urlsplit

    host = urlsplit(base_url).netloc.rpartition("@")[2]
    local = host.split(":")[0] in ("127.0.0.1", "localhost", "::1", "[::1]")
    hints = [f"Vendor host: {host}."]
    if "connection refused" in message and local:
        hints.append("It is on this machine: is `protiv emulator` running (it serves the demo companies)?")
    elif "connection refused" in message or "timed out" in message:
        hints.append("Is the vendor reachable from here, and is the base URL right (`protiv connections`)?")
    if "credential" in message or "401" in message or "403" in message or "refused the credentials" in message:
        hints.append(f"An admin can reconnect the company: `protiv connect {company_id} ...`.")
    if after_sync:
        hints.append("The run's events and error traces are in the Dagster UI (`make ui`).")
    say(literal(" ".join(hints)), style="dim")


def ui() -> None:
    """Start `dagster dev` on workspace.yaml with the demo's instance and data."""
    local_secret_key()
    dagster_home()
    raise typer.Exit(subprocess.call([sys.executable, "-m", "dagster", "dev", "-w", "workspace.yaml"]))


def sync(company_id: CompanyId) -> None:
    """Force sync one company now: workers and jobs, every week from its attendance pull date to
    its own today (its time zone), then its ProPays; shows progress until the ProPay tables are
    current. Recorded as a sync with the vendor's cursor, as the daemon's are: the daemon goes on
    from there with its refreshes. Safe to repeat and safe while a scheduled sync runs (every
    partition write replaces the partition atomically)."""
    from protiv_dagster.sync.company import SyncFailed
    from protiv_dagster.warehouse.migrations import check as check_warehouse
    from protiv_dagster.warehouse.session import WarehouseError
    from protiv_dagster.warehouse.store import WarehouseStore

    dagster_home()
    connection = None
    try:
        connection = ConnectionRegistry().get(company_id)
        check_warehouse(WarehouseStore())  # an older warehouse: "run protiv upgrade" now, not in the first run
        run_ids, seconds = sync_with_progress(connection, "force sync")
    except (SyncFailed, RegistryError, WarehouseError) as exc:
        say_error(exc)
        if connection is not None:
            sync_failure_hint(connection.company_id, connection.base_url, str(exc))
        raise typer.Exit(1) from None
    say("Force sync of ", literal(company_id), f": {len(run_ids)} Dagster runs in {seconds:.1f} s")
    print_propay_summary(company_id)


# The service's statuses as the terminal shows them: the words and colours of the app's badge.
STATUS_LABELS = {"connected": ("green", "green"), "pending": ("pending", "yellow"), "failed": ("red", "red")}


def status(
    probe: Annotated[
        bool, typer.Option(metavar="", help="Ask each vendor now whether it accepts the credentials and what changed.")
    ] = False,
) -> None:
    """Each connected company's integration status, as the integrations service answers it: green
    (connected: the last sync succeeded and the data is current within the two-hour promise),
    pending (its initial sync under way or not started yet) or red (failed), with the reason and
    the next step. Exit 1 when a company is red."""
    from protiv_dagster.integrations.service import CONNECTED, FAILED, company_statuses
    from protiv_dagster.sync import runs as syncs
    from protiv_dagster.sync.health import next_step
    from protiv_dagster.sync.state import SyncStateStore

    try:
        registry, store = ConnectionRegistry(), SyncStateStore()
    except RegistryError as exc:  # an older registry: "run protiv upgrade"
        say_error(exc)
        raise typer.Exit(1) from None
    connected = registry.list()
    if probe:
        _probe(connected, store, syncs.utc_now())
    statuses = company_statuses(connected, store, syncs.utc_now())
    # The reasons go under the table, one line each: in a column at 80 characters they would be cut
    # into a word per line.
    rows = table("company", "provider", "status", "as of (UTC)", "syncs")
    notes: list[tuple[Text, Text, str]] = []
    for status in statuses:
        label, colour = STATUS_LABELS[status.status]
        rows.add_row(
            literal(status.company_id, cell=True),
            status.provider_label,
            Text(label, style=colour),
            status.current_as_of.strftime("%Y-%m-%d %H:%M") if status.current_as_of else "never",
            str(sum(1 for sync in status.syncs if sync.status in ("queued", "running"))),
        )
        if status.status != CONNECTED:
            reason = Text.assemble(literal(status.company_id, "bold"), ": ", literal(status.reason))
            step = Text.assemble("  next step: ", literal(next_step(status.company_id, status.reason)))
            notes.append((reason, step, colour))
    print_table(rows)
    for reason, step, colour in notes:
        output.console.print(reason, style=colour)
        output.console.print(step, style="dim")
    if any(status.status == FAILED for status in statuses):
        raise typer.Exit(1)


def _probe(connections, store, now) -> None:
    """Ask each vendor what changed since the company's cursor: proves credentials and reachability."""
    from protiv_dagster.connections.registry import ConnectionRegistryResource
    from protiv_dagster.resources.vendors import VendorApis
    from protiv_dagster.sync.refresh import check_companies

    states = store.all_states()
    cursors = {c.company_id: states[c.company_id].cursor if c.company_id in states else None for c in connections}
    for result in check_companies(connections, cursors, ConnectionRegistryResource(), VendorApis(), now):
        company_id = result.connection.company_id
        if result.error is not None:
            store.record_check(company_id, now, error=result.error)
        elif result.known_changes.quiet and cursors[company_id] is not None:
            store.record_check(company_id, now)
        else:
            say(literal(f"{company_id}: changes waiting for the next refresh (or run `protiv sync {company_id}`)"))


def upgrade() -> None:
    """Upgrade the registry (with the sync state) and the warehouse to this version's schema, in
    place, keeping every row: those of PROTIV_REGISTRY_URL and PROTIV_WAREHOUSE_URL, else the data
    folder's. Prints each one's revision before and after; running it again changes nothing. Stop
    the Dagster daemon and UI first: a DuckDB warehouse takes one process at a time."""
    from protiv_dagster.connections.migrations import upgrade_registry
    from protiv_dagster.migrations import SchemaVersionError
    from protiv_dagster.warehouse.migrations import upgrade_warehouse
    from protiv_dagster.warehouse.session import WarehouseError

    for what, step in (("registry", upgrade_registry), ("warehouse", upgrade_warehouse)):
        try:
            result = step()
        except (SchemaVersionError, RegistryError, WarehouseError, ValueError) as exc:
            say_error(f"The {what} upgrade failed: {exc}")
            raise typer.Exit(1) from None
        if result.changed:
            say(literal(result.database), f": upgraded, {result.before} -> {result.after}")
        else:
            say(literal(result.database), f": up to date (revision {result.after})")
