"""The report file: self-contained (nothing fetched from anywhere), outside text escaped, an empty
company readable, and the library free of Dagster."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pandas as pd

from protiv_dagster.reports import CHARTS, CompanyReportData, chart_png, render_html, report_file_name, write_report
from tests.test_product_boundaries import loaded_modules

HOSTILE = "<img src=x onerror=alert(1)>"
NOW = datetime(2026, 11, 20, 18, tzinfo=UTC)


def company(company_id: str = "acme", propay_name: str = "Mowing", completed: int = 3) -> CompanyReportData:
    weeks = pd.DataFrame(
        {
            "period": "week",
            "period_start": pd.to_datetime(["2026-11-02", "2026-11-09", "2026-11-16"]),
            "completed_propays": [1, 1, 1],
            "budget_hours": [40.0, 30.0, 20.0],
            "actual_hours": [30.0, 35.0, 10.0],
            "hours_gained": [10.0, -5.0, 10.0],
        }
    )
    return CompanyReportData(
        company_id=company_id,
        summary={
            "propays": 5,
            "started_propays": 2,
            "completed_propays": completed,
            "final_propays": completed,
            "provisional_propays": 2,
            "final_bonus_pool": 300.0,
            "final_paid_to_workers": 270.5,
            "provisional_bonus_pool": 80.0,
            "provisional_paid_to_workers": 72.25,
            "net_saved_hours": 15.0,
            "efficiency": 90 / 75,
        },
        completed=pd.DataFrame(
            {
                "propay_id": [f"p{i}" for i in range(completed)],
                "name": [f"{propay_name} {i} costs $5 and $x^2$" for i in range(completed)],
                "budget_hours": [40.0, 30.0, 20.0][:completed],
                "actual_hours": [30.0, 35.0, 10.0][:completed],
            }
        ),
        workers=pd.DataFrame(
            {
                "worker_id": ["w1", "w2"],
                "first_name": [propay_name, None],
                "last_name": ["Diaz", None],
                "final_bonus": [200.5, 70.0],
                "provisional_bonus": [0.0, 72.25],
            }
        ),
        weeks=weeks.iloc[:completed],
        months=weeks.iloc[:0],
        source="a test",
    )


def test_the_report_is_one_self_contained_file(tmp_path):
    path = write_report(company(), tmp_path / "reports" / "acme.html", NOW)
    html = path.read_text()
    assert html.startswith("<!DOCTYPE html>")
    # Nothing is fetched: no script, no stylesheet link, every src and href a data: URL or a fragment.
    assert "<script" not in html.lower() and "<link" not in html.lower()
    targets = re.findall(r"""\b(?:src|href)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.IGNORECASE)
    assert len(targets) == len(CHARTS) and all(target.startswith("data:image/png;base64,") for target in targets)
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"https?:|//[\w.-]+|url\(|@import", text, flags=re.IGNORECASE), "something fetched"
    assert "Provisional bonuses (ProPays under way, may change)" in html and "$72.25" in html and "$270.50" in html
    assert html.count("How to read this:") == len(CHARTS)
    assert not list(tmp_path.glob("reports/.*")), "the staging file was left behind"


def test_a_hostile_company_id_and_propay_name_are_shown_as_text():
    html = render_html(company(company_id=f'{HOSTILE}"&', propay_name=HOSTILE), NOW)
    assert HOSTILE not in html and "onerror=alert(1)>" not in html
    assert "&lt;img src=x onerror=alert(1)&gt;&quot;&amp;" in html
    assert len(re.findall(r"<img\b", html)) == len(CHARTS)  # the charts' images, and no other
    assert report_file_name(f"../{HOSTILE}") == "__img_src_x_onerror_alert_1__.html"
    assert report_file_name("..") == "company.html"


def test_every_chart_draws_for_a_company_with_and_without_completed_propays():
    for data in (company(), company(completed=0)):
        for chart in CHARTS:
            png = chart_png(chart, data)
            assert png.startswith(b"\x89PNG") and 5_000 < len(png) < 150_000, (chart.key, len(png))
    html = render_html(company(completed=0), NOW)
    assert "No ProPays computed" not in html  # the summary is there; the charts say what is missing


def test_a_company_without_propays_reads_as_such():
    empty = pd.DataFrame()
    html = render_html(CompanyReportData("acme", None, empty, empty, empty, empty, "a test"), NOW)
    assert "No ProPays computed for this company yet" in html and 'data-figure="' not in html


def test_the_report_library_loads_without_dagster():
    loaded = loaded_modules("protiv_dagster.reports")
    assert "protiv_dagster" in loaded and "pandas" in loaded
    # matplotlib waits for the first chart: the code location imports this library in every run worker.
    assert "matplotlib" not in loaded
    assert "dagster" not in loaded
