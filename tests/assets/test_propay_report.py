"""The propay_report asset: after a sync, a company's report is written and its charts are shown on
the materialization (markdown with inline PNGs), with the summary figures beside them."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import dagster as dg

from protiv_dagster.assets.reports import propay_report
from protiv_dagster.reports import CHARTS, read_company
from tests.assets.conftest import COMPANY

IMAGE = re.compile(r"!\[([^\]]+)\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)")


def materialize_report(pipeline, company_id: str = COMPANY) -> dg.AssetMaterialization:
    result = dg.materialize(
        [propay_report],
        partition_key=company_id,
        instance=pipeline.instance,
        resources={name: pipeline.defs.resources[name] for name in ("warehouse", "registry")},
    )
    assert result.success
    [materialization] = result.asset_materializations_for_node("propay_report")
    return materialization


def test_the_report_asset_writes_the_file_and_shows_the_charts(pipeline, data_dir):
    pipeline.sync()
    materialization = materialize_report(pipeline)
    metadata = materialization.metadata
    assert materialization.partition == COMPANY and metadata["provider"].value == "quickbooks_time"

    report = Path(metadata["report"].value)
    assert report == Path(data_dir) / "reports" / f"{COMPANY}.html" and report.stat().st_size > 50_000
    assert f'ProPay report: <span class="company">{COMPANY}</span>' in report.read_text()

    charts = metadata["charts"]
    assert isinstance(charts, dg.MarkdownMetadataValue)
    images = IMAGE.findall(charts.value)
    assert [title for title, _ in images] == [chart.title for chart in CHARTS]
    for _, encoded in images:
        png = base64.b64decode(encoded)
        # 900 x 450 pixels (the PNG header's width and height): modest, since the event log keeps it.
        assert png.startswith(b"\x89PNG") and png[16:24] == (900).to_bytes(4, "big") + (450).to_bytes(4, "big")
    assert len(charts.value) < 400_000

    summary = read_company(pipeline.warehouse.store, COMPANY, analysts_copy_first=False).summary
    assert summary is not None
    assert metadata["final_bonuses"].value == round(summary["final_paid_to_workers"], 2) > 0
    assert metadata["provisional_bonuses"].value == round(summary["provisional_paid_to_workers"], 2)
    assert metadata["completed_propays"].value == summary["completed_propays"] > 0


def test_the_report_follows_its_company_s_propays_in_the_code_location(pipeline):
    graph = pipeline.defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("propay_report"))
    assert node.group_name == "reports" and node.automation_condition is not None
    assert {"propay_opportunities", "propay_worker_bonuses"} <= {key.to_user_string() for key in node.parent_keys}
    assert node.partitions_def == graph.get(dg.AssetKey("propay_opportunities")).partitions_def
