"""Reports layer: each company's ProPay report (``protiv_dagster/reports``), written as an HTML file
and shown on the asset's materialization in the Dagster UI."""

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg

from protiv_dagster.assets.common import label_run
from protiv_dagster.automation.conditions import REPORT_FOLLOWS_PROPAYS
from protiv_dagster.connections.registry import ConnectionRegistryResource
from protiv_dagster.partitions import company_partitions
from protiv_dagster.reports import CHARTS, CompanyReportData, chart_png, read_company, report_file_name, write_report
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.settings import data_dir
from protiv_dagster.tables import PROPAY_OPPORTUNITIES, PROPAY_WORKER_BONUSES

# 900 x 450 pixels per chart: the images are stored in the event log with every materialization.
METADATA_DPI = 100


def reports_folder() -> Path:
    """Where the asset and `protiv report` write reports: ``reports/`` in the data folder."""
    return data_dir() / "reports"


def charts_markdown(data: CompanyReportData) -> str:
    """The four charts as markdown images with inline PNGs, which the UI shows on the materialization."""
    import base64

    return "\n\n".join(
        f"![{chart.title}](data:image/png;base64,{base64.b64encode(chart_png(chart, data, dpi=METADATA_DPI)).decode()})"
        for chart in CHARTS
    )


def _current_as_of(registry: ConnectionRegistryResource, company_id: str) -> datetime | None:
    """When the company's data was last current, from the sync state; None when unknown."""
    from protiv_dagster.sync.state import SyncStateStore

    try:
        return SyncStateStore(registry.url or None).state(company_id).current_as_of
    except Exception:  # the "current as of" line is a courtesy: the report does not depend on it
        return None


@dg.asset(
    partitions_def=company_partitions,
    deps=[PROPAY_OPPORTUNITIES.name, PROPAY_WORKER_BONUSES.name],
    group_name="reports",
    kinds={"python", "html"},
    automation_condition=REPORT_FOLLOWS_PROPAYS,
)
def propay_report(
    context: dg.AssetExecutionContext, warehouse: Warehouse, registry: ConnectionRegistryResource
) -> dg.MaterializeResult:
    """The company's ProPay report for managers: budget against actual hours per completed ProPay,
    bonus per worker (final and provisional apart), hours gained per week and efficiency over time,
    read from the analysts' views. Written as one self-contained HTML file (`reports/<company>.html`
    in the data folder, the file `protiv report` writes too); the charts are shown on this
    materialization. Runs after every ProPay update of its company."""
    company_id = context.partition_key
    # Like every run of a company: its vendor on the run (queue limits) and on the materialization.
    provider = registry.get(company_id).provider
    label_run(context, company_id, provider)
    # The warehouse itself, not the analysts' copy: the copy is published after this company's
    # ProPay write as well, and may not hold it yet.
    data = read_company(warehouse.store, company_id, analysts_copy_first=False)
    path = write_report(
        data, reports_folder() / report_file_name(company_id), datetime.now(UTC), _current_as_of(registry, company_id)
    )
    summary = data.summary or {}
    return dg.MaterializeResult(
        metadata={
            "provider": provider,
            "report": dg.MetadataValue.path(str(path)),
            "propays": int(summary.get("propays", 0)),
            "completed_propays": int(summary.get("completed_propays", 0)),
            "final_bonuses": round(summary.get("final_paid_to_workers", 0.0), 2),
            "provisional_bonuses": round(summary.get("provisional_paid_to_workers", 0.0), 2),
            "hours_gained": round(summary.get("net_saved_hours", 0.0), 1),
            "charts": dg.MetadataValue.md(charts_markdown(data)),
        }
    )
