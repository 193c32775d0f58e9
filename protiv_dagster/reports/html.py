"""A company's report as one self-contained HTML file: the summary, the four charts as inline PNGs
(``data:`` URLs), inline CSS, no script and no link to anything outside the file. It opens the same
in a mail attachment, offline, years later.

Every string from outside (company id, ProPay and worker names inside the charts are pixels; the
rest is text here) goes through ``html.escape``.
"""

from __future__ import annotations

import base64
import math
import os
import re
from datetime import datetime
from html import escape
from pathlib import Path

from protiv_dagster.reports.charts import CHARTS, chart_png
from protiv_dagster.reports.data import CompanyReportData

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1F2933; margin: 0;
       background: #F5F7FA; line-height: 1.45; }
main { max-width: 960px; margin: 0 auto; padding: 24px; background: #fff; }
h1 { font-size: 1.6rem; margin: 0 0 4px; }
h2 { font-size: 1.15rem; margin: 28px 0 8px; }
.meta { color: #5F6B76; margin: 0 0 16px; }
table.summary { border-collapse: collapse; margin: 8px 0 4px; }
table.summary th { text-align: left; font-weight: normal; padding: 6px 24px 6px 0; color: #3E4C59; }
table.summary td { text-align: right; padding: 6px 0; font-variant-numeric: tabular-nums; font-weight: 600; }
table.summary tr + tr th, table.summary tr + tr td { border-top: 1px solid #E4E7EB; }
.provisional { color: #8A5A00; }
figure { margin: 0; }
figure img { width: 100%; max-width: 900px; height: auto; display: block; }
figcaption { color: #3E4C59; font-size: 0.95rem; max-width: 880px; }
footer { color: #5F6B76; font-size: 0.85rem; margin-top: 32px; }
"""


def _money(value: float) -> str:
    return f"${value:,.2f}"


def _hours(value: float) -> str:
    return f"{value:,.1f} h"


def summary_rows(data: CompanyReportData) -> list[tuple[str, str, str, str]]:
    """(figure name, label, shown value, CSS class) of the summary table; none without data."""
    s = data.summary
    if s is None:
        return []
    efficiency = "–" if math.isnan(s["efficiency"]) else f"{100 * s['efficiency']:.0f} %"
    return [
        ("propays", "ProPays", f"{int(s['propays']):,}", ""),
        (
            "completed_propays",
            "Completed ProPays (counted in the hour figures)",
            f"{int(s['completed_propays']):,}",
            "",
        ),
        ("started_propays", "ProPays under way", f"{int(s['started_propays']):,}", ""),
        (
            "final_paid_to_workers",
            "Final bonuses paid to workers (completed ProPays)",
            _money(s["final_paid_to_workers"]),
            "",
        ),
        (
            "provisional_paid_to_workers",
            "Provisional bonuses (ProPays under way, may change)",
            _money(s["provisional_paid_to_workers"]),
            "provisional",
        ),
        ("net_saved_hours", "Hours gained (budget minus actual, completed ProPays)", _hours(s["net_saved_hours"]), ""),
        ("efficiency", "Efficiency (budget hours / actual hours)", efficiency, ""),
    ]


def render_html(
    data: CompanyReportData, generated_at: datetime, current_as_of: datetime | None = None, dpi: int = 150
) -> str:
    """The report of ``data`` as one HTML document."""
    company = escape(data.company_id)
    as_of = (
        f"data current as of {current_as_of:%Y-%m-%d %H:%M} UTC"
        if current_as_of is not None
        else "data as of the latest sync"
    )
    rows = summary_rows(data)
    if rows:
        summary = (
            '<table class="summary">'
            + "".join(
                f'<tr class="{css}"><th scope="row">{escape(label)}</th>'
                f'<td data-figure="{name}">{escape(value)}</td></tr>'
                for name, label, value, css in rows
            )
            + "</table>"
            '<p class="meta">Final money will not change; provisional money may, until its ProPay is completed. '
            "The two are never added together.</p>"
        )
    else:
        summary = (
            '<p class="empty">No ProPays computed for this company yet: the report fills in after its first sync.</p>'
        )
    figures = []
    for chart in CHARTS:
        png = base64.b64encode(chart_png(chart, data, dpi=dpi, titled=False)).decode("ascii")
        figures.append(
            f'<section id="{chart.key}"><h2>{escape(chart.title)}</h2><figure>'
            f'<img class="chart" width="900" height="450" alt="{escape(chart.title)}" src="data:image/png;base64,{png}">'
            f"<figcaption><strong>How to read this:</strong> {escape(chart.how_to_read)}</figcaption>"
            "</figure></section>"
        )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>ProPay report: {company}</title><style>{CSS}</style></head><body><main>"
        f'<h1>ProPay report: <span class="company">{company}</span></h1>'
        f'<p class="meta">Generated {generated_at:%Y-%m-%d %H:%M} UTC; {escape(as_of)}.</p>'
        f"<h2>Summary</h2>{summary}{''.join(figures)}"
        f"<footer>Figures from the analysts' views of the Protiv warehouse ({escape(data.source)}). "
        "Hours count completed ProPays that no rule excludes and that have counted time.</footer>"
        "</main></body></html>\n"
    )


def report_file_name(company_id: str) -> str:
    """A file name for the company's report: its id, with anything a file system might read as a
    path (or choke on) replaced."""
    return (re.sub(r"[^A-Za-z0-9._-]", "_", company_id).lstrip(".") or "company") + ".html"


def write_report(
    data: CompanyReportData, path: Path, generated_at: datetime, current_as_of: datetime | None = None
) -> Path:
    """Write the report of ``data`` to ``path`` (its folder created), replacing it in one rename so a
    reader never opens half a file; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    staging.write_text(render_html(data, generated_at, current_as_of), encoding="utf-8")
    staging.replace(path)
    return path
