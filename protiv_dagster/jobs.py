"""The jobs of a company sync; runs launched by the CLI, the sensors and the schedule use them."""

from __future__ import annotations

import dagster as dg

from protiv_dagster.assets.attendance import attendance, jobs, workers
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.assets.propay import propay_tables
from protiv_dagster.assets.raw import raw_timesheets
from protiv_dagster.connections.registry import ConnectionRegistryResource, RegistryError
from protiv_dagster.partitions import company_partitions
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.refresh import ForceSyncRefused, plan_force_sync

# A failed run here is a verdict (a red company, a refused force sync): Dagster's run retries
# (deploy/dagster.yaml) would only repeat it.
NO_RUN_RETRIES = {"dagster/max_retries": "0"}

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


@dg.op(name="request_force_sync")
def request_force_sync(context, registry: ConnectionRegistryResource, vendors: VendorApis):
    """Reads the company's vendor cursor and opens its force sync in the sync state; the
    company_syncs sensor then launches its runs."""
    company_id = context.partition_key
    try:
        connection = registry.get(company_id)
        batch = plan_force_sync(connection, registry, vendors, registry.sync_state(), syncs.utc_now())
    except (ForceSyncRefused, RegistryError) as exc:
        # The reason is the whole story; a traceback would only bury it.
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    first, last = batch.weeks[0], batch.weeks[-1]
    context.log.info(
        "force sync %s of %s opened: workers and jobs, then %d weeks (%s..%s); the company_syncs sensor launches "
        "the runs (tagged protiv/batch=%s) within 15 s and ProPays follow by automation",
        batch.batch_id,
        company_id,
        len(batch.weeks),
        first,
        last,
        batch.batch_id,
    )
    context.add_output_metadata(
        {"batch": batch.batch_id, "weeks": len(batch.weeks), "first_week": first, "last_week": last}
    )
    return batch.batch_id


@dg.job(
    name="force_sync",
    partitions_def=company_partitions,
    tags=NO_RUN_RETRIES,
)
def force_sync():
    """The UI's force sync of one company: pick its partition and launch. It syncs what `protiv sync`
    does, the same way the automation syncs: workers and jobs, then every week from the company's
    attendance pull date to its own today (never the 100 weeks a "Materialize" of the assets would
    backfill), then its ProPays. This run only reads the vendor's cursor and opens the sync; the
    company_syncs sensor launches its runs (tagged protiv/batch) and, when they have all succeeded,
    records the cursor and "current as of", so `protiv status` and the connection_healthy check turn
    green. A company that is not connected, or has a sync in flight, is refused with the reason."""
    request_force_sync()
