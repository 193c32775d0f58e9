"""The one Definitions object of the protiv_dagster code location.

Resources hold no secrets: the warehouse and registry locations come from the environment
(``PROTIV_WAREHOUSE_URL``, ``PROTIV_REGISTRY_URL``; both default to files in the data folder) and
each company's vendor credentials are read from the registry at run time.
"""

from __future__ import annotations

import dagster as dg

from protiv_dagster.assets.attendance import attendance, jobs, workers
from protiv_dagster.assets.propay import propay_opportunities
from protiv_dagster.assets.raw import raw_timesheets
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse

# The three steps of a company sync, in order: reference data, each week of attendance, ProPays.
sync_company_reference = dg.define_asset_job(
    "sync_company_reference",
    selection=[workers, jobs],
    description="Workers and jobs of one company from its vendor.",
)
sync_company_week = dg.define_asset_job(
    "sync_company_week",
    selection=[raw_timesheets, attendance],
    description="One company's time entries of one ISO week: raw, then cleaned attendance.",
)
compute_propay = dg.define_asset_job(
    "compute_propay",
    selection=[propay_opportunities],
    description="One company's ProPay opportunities from its cleaned tables.",
)


def build_defs(**resources: dg.ConfigurableResource) -> dg.Definitions:
    """The code location's definitions; tests and benchmarks pass other resources by name."""
    return dg.Definitions(
        assets=[raw_timesheets, workers, jobs, attendance, propay_opportunities],
        jobs=[sync_company_reference, sync_company_week, compute_propay],
        resources={
            "registry": ConnectionRegistryResource(),
            "vendors": VendorApis(),
            "warehouse": Warehouse(),
            **resources,
        },
        # Runs here are API-bound and short: one process per run beats one process per step.
        executor=dg.in_process_executor,
    )


defs = build_defs()
