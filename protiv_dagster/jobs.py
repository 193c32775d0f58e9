"""The jobs of a company sync; runs launched by the CLI, the sensors and the schedule use them."""

from __future__ import annotations

import time

import dagster as dg

from protiv_dagster.assets.attendance import attendance, jobs, workers
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.assets.propay import propay_tables
from protiv_dagster.assets.raw import raw_timesheets
from protiv_dagster.connections.registry import ConnectionRegistryResource, RegistryError
from protiv_dagster.partitions import company_partitions
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.company import UI_FORCE_SYNC, SyncFailed, SyncStep, force_sync

# A failed run here is a verdict (a red company, a refused force sync): Dagster's run retries
# (deploy/dagster.yaml) would only repeat it.
NO_RUN_RETRIES = {"dagster/max_retries": "0"}
# On each run of a UI force sync: the id of the force_sync run that ran it.
FORCE_SYNC_RUN_TAG = "protiv/force_sync_run"

# The three steps of a company sync, in order: reference data, its weeks of attendance, ProPays.
sync_company_reference = dg.define_asset_job(
    "sync_company_reference",
    selection=[workers, jobs],
    description="Workers and jobs of one company from its vendor.",
)
sync_company_week = dg.define_asset_job(
    "sync_company_week",
    selection=[raw_timesheets, attendance],
    description="One company's time entries of one ISO week, or of consecutive weeks in one run (one "
    "vendor query for all of them): raw, then cleaned attendance.",
)
compute_propay = dg.define_asset_job(
    "compute_propay",
    selection=[propay_tables],
    description="One company's ProPays, worker bonuses and overtime weeks from its cleaned tables.",
)
check_connection = dg.define_asset_job(
    "check_connection",
    selection=[vendor_connection],
    description="Records one company's connection health and its connection_healthy check (launched by the "
    "connection_status sensor): a green company's vendor_connection partition is materialized, a red one's run "
    "fails with the reason, so the partition reads as failed.",
    tags=NO_RUN_RETRIES,
)


@dg.op(name="run_force_sync")
def run_force_sync(
    context, registry: ConnectionRegistryResource, vendors: VendorApis, warehouse: Warehouse
) -> list[str]:
    """Syncs the company of this run's partition as `protiv sync` does, the same code in this run's
    process: its runs follow at once, with no sensor tick between them."""
    # The code location's jobs on this run's own resources (imported here: definitions imports this module).
    from protiv_dagster.definitions import build_defs

    defs = build_defs(registry=registry, vendors=vendors, warehouse=warehouse)
    company_id = context.partition_key

    def progress(step: SyncStep, state: str) -> None:
        if state == "started":
            context.log.info("%s: %s", company_id, step.label)

    started = time.monotonic()
    try:
        run_ids = force_sync(
            defs,
            context.instance,
            registry.get(company_id),
            syncs.utc_now(),
            on_step=progress,
            trigger=UI_FORCE_SYNC,
            tags={FORCE_SYNC_RUN_TAG: context.run_id},
            refuse_in_flight=True,
        )
    except (SyncFailed, RegistryError) as exc:
        # The reason is the whole story; a traceback would only bury it.
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    seconds = time.monotonic() - started
    context.log.info("force sync of %s: %d runs in %.1f s (%s)", company_id, len(run_ids), seconds, ", ".join(run_ids))
    context.add_output_metadata({"runs": dg.MetadataValue.json(run_ids), "seconds": round(seconds, 1)})
    return run_ids


@dg.job(
    name="force_sync",
    partitions_def=company_partitions,
    tags=NO_RUN_RETRIES,
)
def force_sync_job():
    """The UI's force sync of one company: pick its partition and launch. It runs what `protiv sync`
    runs, in this run: the vendor's cursor is read, then a run of workers and jobs, one run of every
    week from the company's attendance pull date to its own today (never the 100 weeks a
    "Materialize" of the assets would backfill) and a run of its ProPays, each tagged
    protiv/force_sync_run with this run's id; once they have succeeded the sync is recorded with the
    cursor, so "current as of", `protiv status` and the connection_healthy check move. A company
    that is not connected, or whose sync the automation has under way, is refused with the reason."""
    run_force_sync()
