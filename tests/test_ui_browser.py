"""What a data engineer sees in the Dagster UI, in a real browser: a red company reads as failed.

Two companies on one QuickBooks Time emulator: acme, connected with its credentials and synced the
daemon's way, and birch, connected with credentials the vendor refuses (HTTP 401), so its initial
sync fails at the first vendor call. The connection_status sensor's check_connection runs then
materialize acme's ``vendor_connection`` partition and fail birch's (``Daemon`` ticks the sensors and
runs what they request in this process, on the instance the webserver reads). A real
``dagster-webserver`` serves the UI and Debian's headless Chromium (tests/browser.py) opens the
asset's partitions: birch reads as failed (red) with the vendor's refusal one click away, acme as
materialized (green). The assertions are on the page's DOM; a screenshot of the page is kept in the
test's tmp_path for a person to look at.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest
from playwright.sync_api import Page, expect

from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.connections.registry import ConnectionRegistry, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.partitions import company_partitions
from protiv_dagster.settings import (
    DATA_DIR_VARIABLE,
    REFRESH_CRON_VARIABLE,
    REGISTRY_URL_VARIABLE,
    SECRET_KEY_VARIABLE,
    WAREHOUSE_URL_VARIABLE,
)
from protiv_emulators.generator import generate_company
from tests.assets.conftest import AS_OF, PULL_DATE, SETTINGS
from tests.assets.vendors import host
from tests.automation.conftest import Daemon
from tests.browser import chromium_path, headless_page
from tests.graphql import dagster_webserver

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
GREEN, RED = "acme", "birch"
CONNECTION = dg.AssetKey("vendor_connection")
# The first page also waits for the webserver to load the code location's asset graph.
FIRST_PAGE_MS = 30_000


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    chromium_path()  # skips (or fails in CI) before any setup when there is no browser
    tmp = tmp_path_factory.mktemp("ui_browser")
    home = tmp / "dagster_home"
    home.mkdir()
    # The laptop's instance as `protiv ui` writes it: nothing leaves the machine, no "Join the Dagster
    # community" dialog covers the page (the UI shows it on loopback addresses until someone
    # dismisses it), and the storages keep their SQLite connections.
    (home / "dagster.yaml").write_text(LAPTOP_INSTANCE)
    env = {
        "DAGSTER_HOME": str(home),
        DATA_DIR_VARIABLE: str(tmp / "data"),
        REGISTRY_URL_VARIABLE: f"sqlite:///{tmp / 'registry.sqlite3'}",
        WAREHOUSE_URL_VARIABLE: str(tmp / "warehouse.duckdb"),
        SECRET_KEY_VARIABLE: generate_secret_key(),
    }
    # A small company and a week of time entries: the sync only has to make acme green.
    data = generate_company(GREEN, seed=11, workers=5, days=7, as_of=AS_OF, timezone="America/Denver")
    harness = host("quickbooks_time", data)
    try:
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            patch.delenv(REFRESH_CRON_VARIABLE, raising=False)
            registry = ConnectionRegistry(env[REGISTRY_URL_VARIABLE])
            settings = {**SETTINGS, "timezone": data.timezone}
            for company_id, credentials in ((GREEN, harness.credentials), (RED, harness.wrong_credentials())):
                registry.connect(
                    company_id,
                    harness.provider,
                    harness.base_url,
                    credentials,
                    attendance_pull_date=PULL_DATE,
                    settings=settings,
                )
            defs = build_defs()
            with dg.DagsterInstance.get() as instance:
                daemon = Daemon(SimpleNamespace(defs=defs, instance=instance))
                daemon.launch(daemon.tick_sensor("new_connections").run_requests)  # birch's first check is refused
                # company_syncs runs acme's initial sync to its end; the automation's ProPays are left
                # out (the connection's health does not look at them) to keep the test short.
                for _ in range(6):
                    if not daemon.launch(daemon.tick_sensor("company_syncs").run_requests):
                        break
                assert daemon.failures == [] and daemon.store().pending_batches() == []
                daemon.launch(daemon.tick_sensor("connection_status").run_requests)
                [failure] = daemon.failures
                assert failure.startswith(f"{RED} is red: initial sync failing") and "HTTP 401" in failure, failure
                statuses = instance.get_status_by_partition(CONNECTION, [GREEN, RED], company_partitions)
                assert statuses == {GREEN: dg.AssetPartitionStatus.MATERIALIZED, RED: dg.AssetPartitionStatus.FAILED}
                [red_run] = instance.get_runs(
                    dg.RunsFilter(job_name="check_connection", statuses=[dg.DagsterRunStatus.FAILURE])
                )
                server_env = {**os.environ, **env}
                server_env.pop(REFRESH_CRON_VARIABLE, None)
                with dagster_webserver(ROOT / "workspace.yaml", server_env, tmp / "webserver.log") as server:
                    yield SimpleNamespace(server=server, red_run_id=red_run.run_id)
    finally:
        harness.stop()


def status_dot(page: Page, company_id: str):
    """The coloured dot after a company's name in the partitions list (its style names the colour)."""
    return page.locator(f'[data-tooltip="{company_id}"] + div')


def test_a_red_company_reads_as_failed_in_the_partitions_of_vendor_connection(ui, tmp_path):
    with headless_page() as page:
        page.goto(f"{ui.server.url}/assets/vendor_connection?view=partitions")
        # The status filters above the list count the partitions in each state.
        expect(page.get_by_text("Failed (1)", exact=True)).to_be_visible(timeout=FIRST_PAGE_MS)
        expect(page.get_by_text("Materialized (1)", exact=True)).to_be_visible()
        expect(page.get_by_text("Missing (0)", exact=True)).to_be_visible()
        expect(status_dot(page, RED)).to_have_attribute("style", re.compile(r"background: var\(--color-accent-red\)"))
        expect(status_dot(page, GREEN)).to_have_attribute(
            "style", re.compile(r"background: var\(--color-accent-green\)")
        )

        # The red company's partition: its check_connection run failed and materialized nothing.
        page.locator(f'[data-tooltip="{RED}"]').click()
        expect(page).to_have_url(re.compile(rf"[?&]partition={RED}(&|$)"))
        expect(page.get_by_text(f"Run {ui.red_run_id[:8]} failed, and did not materialize this asset.")).to_be_visible()
        shot = tmp_path / "vendor_connection_partitions.png"
        page.screenshot(path=shot)

        # Its logs say why, in the vendor's words, and what to do.
        page.get_by_role("button", name="View logs").click()
        logs = page.get_by_role("dialog")
        reason = logs.get_by_text(re.compile(rf"{RED} is red: .*credentials rejected .*\(HTTP 401")).first
        expect(reason).to_be_visible()
        expect(reason).to_contain_text(
            f"Next step: an admin reconnects it with valid credentials (`protiv connect {RED}"
        )

    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, f"{shot} is no screenshot of a page"
