"""The report's charts as a manager sees them, in a real browser: the company's HTML report, and the
charts on the propay_report materialization in the Dagster UI.

One QuickBooks Time company is synced to the end of its ProPays (on an in-memory instance), and its
propay_report partition is materialized on a Dagster instance on SQLite files. The HTML report is served by a tiny local
server (the page reaches loopback only, tests/browser.py) and a real ``dagster-webserver`` serves the
UI on the same instance; Debian's headless Chromium opens both. The assertions are on the page's DOM
(every chart image decoded, with its size); screenshots are kept in the test's tmp_path for a person to
look at.
"""

from __future__ import annotations

import functools
import http.server
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from protiv_dagster.assets.reports import propay_report
from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.partitions import COMPANY_PARTITIONS_NAME
from protiv_dagster.reports import CHARTS, read_company
from protiv_dagster.settings import (
    DATA_DIR_VARIABLE,
    REFRESH_CRON_VARIABLE,
    REGISTRY_URL_VARIABLE,
    SECRET_KEY_VARIABLE,
    WAREHOUSE_URL_VARIABLE,
)
from protiv_dagster.sync.company import sync_company
from protiv_dagster.warehouse.store import WarehouseStore
from protiv_emulators.generator import generate_company
from tests.assets.conftest import AS_OF, PULL_DATE, SETTINGS, TODAY
from tests.assets.vendors import host
from tests.browser import chromium_path, headless_page
from tests.graphql import dagster_webserver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
COMPANY = "acme"
FIRST_PAGE_MS = 30_000  # the first page also waits for the webserver to load the asset graph


@pytest.fixture(scope="module")
def reported(tmp_path_factory):
    chromium_path()  # skips (or fails in CI) before any setup when there is no browser
    tmp = tmp_path_factory.mktemp("report_browser")
    home = tmp / "dagster_home"
    home.mkdir()
    # The laptop's instance, as `protiv ui` serves it: no compute-log capture, whose `tail` processes
    # would outlive the test.
    (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)
    env = {
        "DAGSTER_HOME": str(home),
        DATA_DIR_VARIABLE: str(tmp / "data"),
        REGISTRY_URL_VARIABLE: f"sqlite:///{tmp / 'registry.sqlite3'}",
        WAREHOUSE_URL_VARIABLE: str(tmp / "warehouse.duckdb"),
        SECRET_KEY_VARIABLE: generate_secret_key(),
    }
    data = generate_company(COMPANY, seed=11, workers=15, days=14, as_of=AS_OF, timezone="America/Denver")
    harness = host("quickbooks_time", data)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            patch.delenv(REFRESH_CRON_VARIABLE, raising=False)
            ConnectionRegistry(env[REGISTRY_URL_VARIABLE]).connect(
                COMPANY,
                harness.provider,
                harness.base_url,
                harness.credentials,
                attendance_pull_date=PULL_DATE,
                settings={**SETTINGS, "timezone": data.timezone},
            )
            defs = build_defs()

            def sync_and_report():
                # The sync's runs on an in-memory instance (quicker): the UI needs the report's alone.
                with dg.DagsterInstance.ephemeral() as syncing:
                    sync_company(defs, syncing, COMPANY, PULL_DATE, TODAY)
                with dg.DagsterInstance.get() as instance:
                    instance.add_dynamic_partitions(COMPANY_PARTITIONS_NAME, [COMPANY])
                    result = dg.materialize(
                        [propay_report],
                        partition_key=COMPANY,
                        instance=instance,
                        resources={name: defs.resources[name] for name in ("warehouse", "registry")},
                    )
                assert result.success
                [materialization] = result.asset_materializations_for_node("propay_report")
                return Path(materialization.metadata["report"].value)

            server_env = {**os.environ, **env}
            server_env.pop(REFRESH_CRON_VARIABLE, None)
            # The storage is created (and its schema stamped) here, before two processes open it: a
            # fresh SQLite storage opened by this process and the webserver at once can be stamped
            # twice, and neither opens it again ("more than one head").
            with dg.DagsterInstance.get():
                pass
            # The company syncs while the webserver starts (it reads the instance at each request).
            with ThreadPoolExecutor(1) as pool:
                report = pool.submit(sync_and_report)
                with dagster_webserver(ROOT / "workspace.yaml", server_env, tmp / "webserver.log") as server:
                    path = report.result()
                    summary = read_company(WarehouseStore(env[WAREHOUSE_URL_VARIABLE]), COMPANY).summary
                    assert summary is not None and summary["completed_propays"] > 0
                    yield SimpleNamespace(server=server, report=path, summary=summary)
    finally:
        harness.stop()


class _QuietFiles(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def report_url(reported):
    """The report file, served from its folder on loopback for as long as the test runs."""
    handler = functools.partial(_QuietFiles, directory=str(reported.report.parent))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/{reported.report.name}"
    finally:
        server.shutdown()
        server.server_close()


def decoded_images(page: Page, selector: str) -> list[dict]:
    """Each image matching ``selector``: decoded (naturalWidth > 0) and its size on the page."""
    return page.eval_on_selector_all(
        selector,
        """images => images.map(image => ({
            alt: image.alt, complete: image.complete, naturalWidth: image.naturalWidth,
            naturalHeight: image.naturalHeight, width: image.getBoundingClientRect().width,
            height: image.getBoundingClientRect().height}))""",
    )


def test_the_html_report_shows_the_summary_and_the_four_charts(reported, report_url, tmp_path):
    with headless_page(height=1000) as page:
        page.goto(report_url)
        expect(page.locator("h1")).to_have_text(f"ProPay report: {COMPANY}")
        final = page.locator('[data-figure="final_paid_to_workers"]')
        expect(final).to_have_text(f"${reported.summary['final_paid_to_workers']:,.2f}")
        expect(page.locator('[data-figure="provisional_paid_to_workers"]')).to_have_text(
            f"${reported.summary['provisional_paid_to_workers']:,.2f}"
        )
        expect(page.locator('[data-figure="net_saved_hours"]')).to_have_text(
            f"{reported.summary['net_saved_hours']:,.1f} h"
        )
        images = decoded_images(page, "img.chart")
        assert [image["alt"] for image in images] == [chart.title for chart in CHARTS]
        for image in images:
            assert image["complete"] and image["naturalWidth"] > 0 and image["width"] > 400, image
        page.screenshot(path=tmp_path / "report_top.png")
        page.screenshot(path=tmp_path / "report_full.png", full_page=True)
    assert (tmp_path / "report_full.png").stat().st_size > 50_000


def test_the_charts_show_on_the_materialization_in_the_dagster_ui(reported, tmp_path):
    with headless_page(height=1000) as page:
        page.goto(f"{reported.server.url}/assets/propay_report?partition={COMPANY}")
        # The latest materialization's metadata: the summary figures, and the charts behind a button.
        row = page.get_by_role("row").filter(has=page.get_by_text("final_bonuses", exact=True))
        expect(row).to_contain_text(f"{round(reported.summary['final_paid_to_workers'], 2):g}", timeout=FIRST_PAGE_MS)
        charts = page.get_by_role("row").filter(has=page.get_by_text("charts", exact=True))
        charts.get_by_text("[Show Markdown]").click()
        dialog = page.get_by_role("dialog")
        for chart in CHARTS:
            expect(dialog.get_by_role("img", name=chart.title)).to_be_visible()
        page.wait_for_function(
            "() => [...document.querySelectorAll('[role=dialog] img')].every(image => image.complete)"
        )
        images = decoded_images(page, "[role=dialog] img")
        assert [image["alt"] for image in images] == [chart.title for chart in CHARTS]
        for image in images:
            assert image["naturalWidth"] == 900 and image["naturalHeight"] == 450 and image["width"] > 300, image
        page.screenshot(path=tmp_path / "ui_charts.png")
    assert (tmp_path / "ui_charts.png").stat().st_size > 50_000
