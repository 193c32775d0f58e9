"""The report's figures are the analysts' views' figures, for one company, money final and
provisional apart: read from a warehouse synced from an emulated vendor, on DuckDB (the warehouse
and its analysts' copy) and PostgreSQL."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from html import unescape

import pytest

from protiv_dagster.reports import read_company, render_html, summary_rows
from protiv_dagster.views import COMPANY_PROPAY_SUMMARY, PROPAY_SAVINGS, WORKER_BONUS_WAGES
from protiv_dagster.warehouse.publish import publish_for_analysts
from tests.assets.conftest import COMPANY


def _close(a: float, b: float) -> bool:
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)


@pytest.mark.parametrize("warehouse_backend", ["duckdb", "postgres"])
def test_the_report_shows_the_views_figures_final_and_provisional_apart(pipeline, warehouse_backend):
    pipeline.sync()
    store = pipeline.warehouse.store
    data = read_company(store, COMPANY)
    view = store.query(f"SELECT * FROM {{schema}}.{COMPANY_PROPAY_SUMMARY.name} WHERE company_id = ?", [COMPANY])
    assert data.summary is not None and len(view) == 1
    for figure in ("final_paid_to_workers", "provisional_paid_to_workers", "final_bonus_pool", "net_saved_hours"):
        assert _close(data.summary[figure], view[figure].iloc[0]), figure
    assert data.summary["completed_propays"] == view["completed_propays"].iloc[0] > 0

    # The summary table shows them, each in its own row: final and provisional never summed.
    html = render_html(data, datetime(2026, 11, 20, tzinfo=UTC))
    shown = {name: unescape(value) for name, value in re.findall(r'data-figure="(\w+)">([^<]*)<', html)}
    assert shown["final_paid_to_workers"] == f"${float(view['final_paid_to_workers'].iloc[0]):,.2f}"
    assert shown["provisional_paid_to_workers"] == f"${float(view['provisional_paid_to_workers'].iloc[0]):,.2f}"
    assert shown["net_saved_hours"] == f"{float(view['net_saved_hours'].iloc[0]):,.1f} h"
    assert shown["propays"] == str(int(view["propays"].iloc[0]))
    assert [name for name, *_ in summary_rows(data)] == list(shown)

    # The charts' rows: the completed ProPays the hour figures count, and each worker's bonuses.
    savings = store.query(f"SELECT * FROM {{schema}}.{PROPAY_SAVINGS.name} WHERE company_id = ?", [COMPANY])
    counted = savings[(savings["status"] == "completed") & ~savings["excluded"].astype(bool)]
    assert sorted(data.completed["propay_id"]) == sorted(counted.loc[counted["actual_hours"] > 0, "propay_id"])
    wages = store.query(f"SELECT * FROM {{schema}}.{WORKER_BONUS_WAGES.name} WHERE company_id = ?", [COMPANY])
    assert _close(data.workers["final_bonus"].sum(), wages["final_bonus"].astype(float).sum())
    assert _close(data.workers["provisional_bonus"].sum(), wages["provisional_bonus"].astype(float).sum())
    # A ProPay's bonuses add up to what it paid to workers; weeks add up to the hours gained.
    assert _close(data.workers["final_bonus"].sum(), data.summary["final_paid_to_workers"])
    assert _close(data.weeks["hours_gained"].sum(), data.summary["net_saved_hours"])

    # A company the warehouse has no ProPays of has no summary (the CLI refuses it).
    assert read_company(store, "nobody").summary is None


def test_on_duckdb_the_report_reads_the_analysts_copy(pipeline):
    pipeline.sync()
    store = pipeline.warehouse.store
    publish_for_analysts(store)
    data = read_company(store, COMPANY)
    assert data.source.startswith("the analysts' copy") and data.has_data
    assert data.summary == read_company(store, COMPANY, analysts_copy_first=False).summary
