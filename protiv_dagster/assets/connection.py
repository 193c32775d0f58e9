"""Each company's vendor connection and its health: green or red, with why.

``vendor_connection`` stands for the company's time-tracking system (QuickBooks Time, Aspire or
BusyBusy). The raw and reference assets read from it, so the lineage graph starts there. A run of a
company's partition is an evaluation of that connection's health, made from the sync state (no
vendor call): the connection_status sensor launches one whenever a company turns green or red, and
its ``connection_healthy`` check is the company's status in the UI. A green company's partition is
materialized; a red one's run records the red check and then fails with the reason, so the partition
reads as failed in the partition views and the catalog, where engineers look first.

Nothing depends on this asset having succeeded: the sync jobs do not select it and the automation
conditions of attendance and ProPays do not look at it (their upstreams are raw weeks, workers and
jobs), so a red company is still synced by ``protiv sync``, the UI's force sync and the sensors,
and the next green evaluation materializes its partition again.
"""

import dagster as dg

from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.partitions import company_partitions
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.health import company_health, next_step

CONNECTION_HEALTHY = "connection_healthy"


@dg.asset(
    partitions_def=company_partitions,
    group_name="raw",
    kinds={"api"},
    check_specs=[
        dg.AssetCheckSpec(
            CONNECTION_HEALTHY,
            asset="vendor_connection",
            partitions_def=company_partitions,  # one status per company, not one for the asset
            description=(
                "Green when the company's vendor accepts its credentials, answers, and its ProPay data is "
                "current within the two-hour promise; red with the reason otherwise."
            ),
        )
    ],
)
def vendor_connection(context: dg.AssetExecutionContext, registry: ConnectionRegistryResource):
    """A company's connection to its time-tracking vendor (QuickBooks Time, Aspire or BusyBusy), made
    by an admin with `protiv connect`. Each materialization records the connection's health: the
    provider, green or red, the reason, and how current the company's data is. A green company's
    partition is materialized; a red company's run fails with the reason and the next step, so its
    partition reads as failed. Launched by the connection_status sensor when the health changes;
    materialize a partition to re-evaluate now (a force sync, job force_sync, is what turns a red
    company green)."""
    company_id = context.partition_key
    store = registry.sync_state()
    connection = registry.get(company_id)
    health = company_health(connection, store.state(company_id), store.pending_batches(company_id), syncs.utc_now())
    metadata = {"status": health.label, "reason": health.reason, **health.metadata, "provider": connection.provider}
    if health.healthy:
        yield dg.MaterializeResult(metadata=metadata)
    # The check result before the failure below: a red run must still record the status and reason.
    yield dg.AssetCheckResult(
        check_name=CONNECTION_HEALTHY, passed=health.healthy, description=health.reason, metadata=metadata
    )
    if not health.healthy:
        # A failed step, not an error: the description is what the UI shows, with no traceback worth
        # reading, and retrying cannot change the verdict (it is read from the sync state).
        raise dg.Failure(
            description=f"{company_id} is red: {health.reason.rstrip('.')}. Next step: {next_step(company_id, health.reason)}",
            metadata=metadata,
            allow_retries=False,
        )
