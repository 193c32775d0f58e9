"""Each company's vendor connection, as a source asset with its health check.

``vendor_connection`` stands for the company's time-tracking system (QuickBooks Time, Aspire or
BusyBusy): nothing materializes it; the raw and reference assets read from it, so the lineage graph
starts there. Its ``connection_healthy`` check is each company's green or red status, and its
observations carry the provider, both reported by the connection_status sensor.
"""

import warnings

import dagster as dg

from protiv_dagster.automation import syncs
from protiv_dagster.automation.health import company_health
from protiv_dagster.partitions import company_partitions
from protiv_dagster.registry import ConnectionRegistryResource

CONNECTION_HEALTHY = "connection_healthy"

vendor_connection = dg.AssetSpec(
    "vendor_connection",
    partitions_def=company_partitions,
    group_name="raw",
    kinds={"api"},
    description=(
        "A company's connection to its time-tracking vendor (QuickBooks Time, Aspire or BusyBusy), "
        "made by an admin with `protiv connect`. Observed by the connection_status sensor: the provider "
        "and the health of each company's connection."
    ),
)

# Partitioned asset checks are a Dagster preview; the one check per company partition is what the UI
# shows as each company's green or red status, so we accept the preview and keep its warning quiet.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")


@dg.asset_check(
    asset=vendor_connection.key,
    name=CONNECTION_HEALTHY,
    partitions_def=company_partitions,
    description=(
        "The company's vendor accepts its credentials, answers, and its ProPay data is current within "
        "the two-hour promise. The connection_status sensor reports it for every company as it changes; "
        "executing it here re-evaluates one company now."
    ),
)
def connection_healthy(context: dg.AssetCheckExecutionContext, registry: ConnectionRegistryResource):
    company_id = context.partition_key
    store = registry.sync_state()
    health = company_health(
        registry.get(company_id), store.state(company_id), store.pending_batches(company_id), syncs.utc_now()
    )
    return dg.AssetCheckResult(
        passed=health.healthy,
        description=health.reason,
        metadata={"status": health.label, "reason": health.reason, **health.metadata},
    )
