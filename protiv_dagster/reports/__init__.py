"""Per-company ProPay reports a manager looks at rather than reads: four charts (budget against actual
hours per ProPay, bonus per worker, hours gained per week, efficiency over time) and a summary, as one
self-contained HTML file.

Pure library code: no Dagster, no HTTP. ``data`` reads the figures from the analysts' views,
``charts`` draws them with matplotlib (Agg), ``html`` writes the file. The ``propay_report`` asset
and ``protiv report`` call them.
"""

from __future__ import annotations

from protiv_dagster.reports.charts import CHARTS, Chart, chart_png
from protiv_dagster.reports.data import CompanyReportData, read_company
from protiv_dagster.reports.html import render_html, report_file_name, summary_rows, write_report

__all__ = [
    "CHARTS",
    "Chart",
    "CompanyReportData",
    "chart_png",
    "read_company",
    "render_html",
    "report_file_name",
    "summary_rows",
    "write_report",
]
