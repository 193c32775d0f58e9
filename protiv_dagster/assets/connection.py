"""Each company's vendor connection and its health: green or red, with why.

``vendor_connection`` stands for the company's time-tracking system (QuickBooks Time, Aspire or
BusyBusy). The raw and reference assets read from it, so the lineage graph starts there. A
materialization of a company's partition is an evaluation of that connection's health, made from
the sync state (no vendor call): the connection_status sensor launches one whenever a company turns
green or red, and its ``connection_healthy`` check is the company's status in the UI.
"""

import warnings

import dagster as dg

from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.partitions import company_partitions
from protiv_dagster.sync import runs as syncs
from protiv_dagster.sync.health import company_health

CONNECTION_HEALTHY = "connection_healthy"

# Partitioned asset checks are a Dagster preview; one result per company partition is what the UI
# shows as each company's green or red status, so we accept the preview and keep its warning quiet.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")


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
    provider, green or red, the reason, and how current the company's data is. Launched by the
    connection_status sensor when the health changes; materialize a partition to re-evaluate now."""
    company_id = context.partition_key
    store = registry.sync_state()
    connection = registry.get(company_id)
    health = company_health(connection, store.state(company_id), store.pending_batches(company_id), syncs.utc_now())
    metadata = {"status": health.label, "reason": health.reason, **health.metadata, "provider": connection.provider}
    yield dg.MaterializeResult(metadata=metadata)
    yield dg.AssetCheckResult(
        check_name=CONNECTION_HEALTHY, passed=health.healthy, description=health.reason, metadata=metadata
    )
