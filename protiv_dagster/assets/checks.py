"""Each company's connection health, as a check on its ProPay partition (green or red, with why)."""



import warnings

import dagster as dg

from protiv_dagster.assets.propay import propay_opportunities
from protiv_dagster.automation import syncs
from protiv_dagster.automation.health import company_health
from protiv_dagster.partitions import company_partitions
from protiv_dagster.registry import ConnectionRegistryResource

CONNECTION_HEALTHY = "connection_healthy"


# Partitioned asset checks are a Dagster preview; the one check per company partition is what the UI
# shows as each company's green or red status, so we accept the preview and keep its warning quiet.
warnings.filterwarnings("ignore", category=dg.PreviewWarning, message=".*partitions_def on an AssetCheckSpec.*")


@dg.asset_check(
    asset=propay_opportunities,
    name=CONNECTION_HEALTHY,
    partitions_def=company_partitions,
    description=(
        "The company's vendor accepts its credentials, answers, and the ProPay data is current within "
        "the two-hour promise. The connection_status sensor reports it for every company as it changes; "
        "executing it here re-evaluates one company now."
    ),
)
def connection_healthy(context: dg.AssetCheckExecutionContext, registry: ConnectionRegistryResource):
    company_id = context.partition_key
    store = registry.sync_state()
    health = company_health(registry.get(company_id), store.state(company_id), store.pending_batches(company_id), syncs.utc_now())
    return dg.AssetCheckResult(
        passed=health.healthy,
        description=health.reason,
        metadata={"status": health.label, "reason": health.reason, **health.metadata},
    )
