"""ProPay layer: the opportunities computed by the pure engine from the cleaned tables."""


import dagster as dg

from protiv_dagster import schemas
from protiv_dagster.assets.attendance import BY_COMPANY, attendance, jobs, workers
from protiv_dagster.assets.common import (
    column_schema,
    label_run,
    prepare_warehouse,
    reconcile,
    reconcile_spec,
    validate_and_store,
)
from protiv_dagster.automation.conditions import PROPAY_FOLLOWS_ATTENDANCE, TWO_HOUR_PROMISE
from protiv_dagster.partitions import company_partitions
from protiv_dagster.propay import compute_hours_budget
from protiv_dagster.registry import ConnectionRegistryResource
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.tables import ATTENDANCE, JOBS, PROPAY_OPPORTUNITIES, WORKERS


def summary_markdown(opportunities) -> str:
    """A short summary for the materialization page: ProPays by status, pool, largest savings."""
    if opportunities.empty:
        return "No ProPays: no job or milestone has an hours budget yet."
    by_status = opportunities["status"].value_counts().sort_index()
    top = opportunities.nlargest(5, "bonus_pool")[["name", "budget_hours", "actual_hours", "saved_amount", "bonus_pool"]]
    lines = [
        f"**{len(opportunities)} ProPays**, bonus pool **${opportunities['bonus_pool'].sum():,.2f}**, "
        f"overage ${opportunities['overage_amount'].sum():,.2f}",
        "",
        "| status | ProPays |",
        "|---|---|",
        *(f"| {status} | {count} |" for status, count in by_status.items()),
        "",
        "| largest pools | budget h | actual h | saved $ | pool $ |",
        "|---|---|---|---|---|",
        *(
            f"| {r.name} | {r.budget_hours:,.1f} | {r.actual_hours:,.1f} | {r.saved_amount:,.2f} | {r.bonus_pool:,.2f} |"
            for r in top.itertuples()
        ),
    ]
    return "\n".join(lines)


@dg.asset(
    partitions_def=company_partitions,
    group_name="propay",
    kinds={"python", "sql"},
    metadata={
        "dagster/column_schema": column_schema(PROPAY_OPPORTUNITIES),
        "dagster/table_name": "protiv.propay_opportunities",
    },
    deps=[dg.AssetDep(attendance, partition_mapping=BY_COMPANY), jobs, workers],
    check_specs=[reconcile_spec("propay_opportunities")],
    automation_condition=PROPAY_FOLLOWS_ATTENDANCE,
    freshness_policy=TWO_HOUR_PROMISE,
)
def propay_opportunities(
    context: dg.AssetExecutionContext, registry: ConnectionRegistryResource, warehouse: Warehouse
):
    """One row per ProPay of the company (a budgeted job, or each budgeted milestone of a recurring
    job): budget hours, actual worker-hours and labor cost, saved hours and $, bonus pool (the
    workers' share of the savings) split into role buckets, status, workers and work dates. Computed
    by the pure ProPay engine from jobs, workers and every week of attendance; the company's settings
    are read at each materialization."""
    company_id = context.partition_key
    prepare_warehouse(warehouse)
    connection = registry.get(company_id)
    label_run(context, company_id, connection.provider)
    where = {"company_id": company_id}
    computed = compute_hours_budget(
        warehouse.read_table(JOBS, where=where),
        warehouse.read_table(ATTENDANCE, where=where),
        warehouse.read_table(WORKERS, where=where),
        connection.settings,
        company_id,
    )
    valid, set_aside = validate_and_store(
        warehouse, PROPAY_OPPORTUNITIES, schemas.PropayOpportunity, "propay_id", computed, schemas.no_rejects(),
        company_id=company_id, asset="propay_opportunities", partition_key=company_id, partition=where,
    )
    yield dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(valid),
            "provider": connection.provider,
            "set_aside": set_aside,
            "bonus_pool_total": float(valid["bonus_pool"].sum()) if len(valid) else 0.0,
            "summary": dg.MetadataValue.md(summary_markdown(valid)),
        }
    )
    yield reconcile("propay_opportunities", len(computed), len(valid), set_aside)
