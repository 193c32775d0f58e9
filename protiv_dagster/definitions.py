"""The one Definitions object of the protiv_dagster code location.

Resources hold no secrets: the warehouse and registry locations come from the environment
(``PROTIV_WAREHOUSE_URL``, ``PROTIV_REGISTRY_URL``; both default to files in the data folder) and
each company's vendor credentials are read from the registry at run time.
"""

from __future__ import annotations

import dagster as dg

from protiv_dagster.assets.analysts import analysts_database
from protiv_dagster.assets.analytics import analytics_marts
from protiv_dagster.assets.attendance import attendance, jobs, workers
from protiv_dagster.assets.connection import vendor_connection
from protiv_dagster.assets.propay import propay_tables
from protiv_dagster.assets.raw import raw_timesheets
from protiv_dagster.assets.reports import propay_report
from protiv_dagster.automation.schedules import refresh_every_two_hours
from protiv_dagster.automation.sensors import company_syncs, connection_status, new_connections
from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.jobs import (
    check_connection,
    compute_propay,
    force_sync_job,
    sync_company_reference,
    sync_company_week,
)
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse

follow_upstream_changes = dg.AutomationConditionSensorDefinition(
    "follow_upstream_changes",
    # The analysts' layer by its groups: the analysts' copy exists only on a DuckDB warehouse, and the
    # layer not at all without analysts (build_defs). Left out, Dagster would give them a default
    # automation sensor of their own, stopped, and they would never run.
    target=dg.AssetSelection.assets(attendance, propay_tables)
    | dg.AssetSelection.groups("reports", "analysts", "analytics"),
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Evaluated every 30 seconds: each company-week's attendance follows its raw week, and each "
    "company's ProPay tables follow every attendance update, whenever it lands, once its workers and jobs are in "
    "(automation/conditions.py); each company's report follows its ProPay updates; the analysts' marts (dbt) follow every ProPay update; on a DuckDB warehouse, the analysts' copy follows every ProPay update and the marts. Also after a sync launched by hand (force_sync, protiv sync, a Materialize). "
    "It does not look at vendor_connection: a red company's tables still follow its syncs.",
)


# Where data is read and written is set in code and the environment only. A ConfigurableResource
# takes run config from anyone who can open the launchpad, so these two are handed to Dagster as
# resources without a config schema: a run that tries to point the warehouse or the registry
# elsewhere fails config validation before it starts. The vendor clients' tuning stays configurable.
CODE_CONFIGURED = ("registry", "warehouse")


def code_configured(resource: dg.ConfigurableResource) -> dg.ResourceDefinition:
    """`resource` exactly as constructed, with no run config a UI user could override."""
    # An empty config shape, not None: None would accept any config at all.
    return dg.ResourceDefinition(lambda _: resource, config_schema={}, description=type(resource).__doc__)


def _on_duckdb(warehouse: Warehouse) -> bool:
    try:
        return warehouse.backend == "duckdb"
    except ValueError:
        return False  # an unusable warehouse URL: its runs fail with the reason, the location still loads


def build_defs(
    analysts_layer: bool = True, **resources: dg.ConfigurableResource | dg.ResourceDefinition
) -> dg.Definitions:
    """The code location's definitions; tests and benchmarks pass other resources by name.

    ``analysts_layer=False`` leaves out what serves analysts (the dbt marts, each company's report,
    the analysts' copy): the sync pipeline alone, as the daemon tests about runs deploy it."""
    resources = {
        "registry": ConnectionRegistryResource(),
        "vendors": VendorApis(),
        "warehouse": Warehouse(),
        **resources,
    }
    warehouse = resources["warehouse"]
    # The analysts' copy exists for a DuckDB warehouse only (PostgreSQL serves analysts directly):
    # on PostgreSQL it would be a run after every ProPay run doing nothing.
    analysts = [analysts_database] if isinstance(warehouse, Warehouse) and _on_duckdb(warehouse) else []
    layer = [propay_report, analytics_marts, *analysts] if analysts_layer else []
    for key in CODE_CONFIGURED:
        resource = resources[key]
        if isinstance(resource, dg.ConfigurableResource):
            resources[key] = code_configured(resource)
    return dg.Definitions(
        assets=[
            vendor_connection,
            raw_timesheets,
            workers,
            jobs,
            attendance,
            propay_tables,
            *layer,
        ],
        jobs=[sync_company_reference, sync_company_week, compute_propay, check_connection, force_sync_job],
        schedules=[refresh_every_two_hours],
        sensors=[new_connections, company_syncs, connection_status, follow_upstream_changes],
        resources=resources,
        # Runs here are API-bound and short: one process per run beats one process per step.
        executor=dg.in_process_executor,
    )


defs = build_defs()
