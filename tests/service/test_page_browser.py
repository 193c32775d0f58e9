"""The integration page in Debian's headless Chromium (tests/browser.py), as a Protiv admin uses it:
log in with a token the app signed, search "busy", connect the BusyBusy demo company with its
username, password and a pull date, watch the badge go from Pending to the green Connected (the
service runs the initial sync itself: no daemon here), press the circular sync button, see the last
sync time move and the ProPay table hold the company's rows as the warehouse has them. A screenshot
of the page is kept in the test's tmp_path for a person to look at.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.browser import chromium_path, headless_page
from tests.service.conftest import Api

pytestmark = pytest.mark.slow

COMPANY = "page-busybusy"
# An initial sync or a force sync of the small generated company takes seconds; the page polls.
SYNC_MS = 90_000
GREEN_BACKGROUND = "rgb(223, 245, 228)"  # --green-bg of style.css


def test_an_admin_connects_busybusy_sees_it_turn_green_and_force_syncs_it(api: Api, tmp_path):
    chromium_path()  # skips (or fails in CI) before anything else when there is no browser
    harness = api.vendors["busybusy"]
    # As a deployment sets PROTIV_BUSYBUSY_BASE_URL: the page asks admins for credentials only.
    api.service.settings = replace(
        api.service.settings, base_urls={**api.service.settings.base_urls, "busybusy": harness.base_url}
    )
    pull_date = (date.today() - timedelta(days=10)).isoformat()
    with headless_page() as page:
        page.goto(f"{api.url}/page/")
        page.get_by_label("Token from the Protiv app").fill(api.token("admin", COMPANY, "dana"))
        page.get_by_role("button", name="Log in").click()
        expect(page.get_by_text("dana (admin)")).to_be_visible()

        page.get_by_role("searchbox", name="Search integrations").fill("busy")
        choices = page.locator("#integrations button")
        expect(choices).to_have_text(["BusyBusy"])
        choices.first.click()

        form = page.locator("#connect-form")
        expect(form.get_by_role("heading")).to_have_text("Connect BusyBusy")
        two_weeks_ago = (date.today() - timedelta(days=14)).isoformat()
        expect(form.get_by_label("Attendance pull date")).to_have_value(two_weeks_ago)
        expect(form.get_by_text("two weeks recommended")).to_be_visible()
        expect(form.locator('[data-credential="password"]')).to_have_attribute("type", "password")
        for name, value in harness.credentials.items():
            form.locator(f'[data-credential="{name}"]').fill(value)
        form.get_by_label("Attendance pull date").fill(pull_date)
        form.get_by_label("Time zone").fill("America/Denver")
        form.get_by_role("button", name="Connect").click()

        badge = page.get_by_role("status").and_(page.locator("#status-badge"))
        expect(badge).to_have_text("Pending")
        expect(badge).to_have_text("Connected", timeout=SYNC_MS)
        assert badge.evaluate("node => getComputedStyle(node).backgroundColor") == GREEN_BACKGROUND
        last_sync = page.locator("#last-sync")
        expect(last_sync).to_have_text(re.compile(r"^Last sync: (?!never)"))
        first_sync = last_sync.get_attribute("data-at")

        sync = page.get_by_role("button", name="Sync now")
        expect(page.get_by_role("button", name="Create ProPay")).to_be_disabled()
        sync.click()
        expect(last_sync).not_to_have_attribute("data-at", first_sync or "", timeout=SYNC_MS)
        expect(badge).to_have_text("Connected")

        stored = api.warehouse.read_table("propay_opportunities", where={"company_id": COMPANY})
        assert len(stored) > 0
        rows = page.locator("#propays tbody tr")
        expect(rows).to_have_count(len(stored))
        shown = {row.get_attribute("data-propay-id"): row.locator("td").all_inner_texts() for row in rows.all()}
        assert set(shown) == set(stored["propay_id"])
        for record in stored.itertuples():
            name, budget, actual, _, pay_state = shown[record.propay_id]
            assert (name, pay_state) == (record.name, record.pay_state)
            assert actual == f"{record.actual_hours:.2f}"
        shot = tmp_path / "integration_page.png"
        page.screenshot(path=shot, full_page=True)

    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 20_000, f"{shot} is no screenshot of a page"
