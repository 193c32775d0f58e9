"""The integration page in Debian's headless Chromium (tests/browser.py), as a Protiv admin uses it:
log in with a token the app signed, search "busy", connect the BusyBusy demo company with its
username, password and a pull date, watch the badge go from Pending to the green Connected (the
service runs the initial sync itself: no daemon here), press the circular sync button, see the last
sync time move and the ProPay table hold the company's rows as the warehouse has them. A screenshot
of the page is kept in the test's tmp_path for a person to look at.

QuickBooks Time through the whole OAuth redirect: the page sends the browser to the vendor's
(emulator's) consent page; Approve brings it back to the page, which says so, takes the outcome off
the address bar and shows the status turning green; Deny brings it back saying why. An operator
opens companies with the picker (no dialog); an admin has none.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, timedelta

import pytest
from playwright.sync_api import Dialog, expect

from protiv_dagster.sync.company import publish_analysts_copy
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


def log_in(page, api: Api, token: str, who: str) -> None:
    page.get_by_label("Token from the Protiv app").fill(token)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_text(who)).to_be_visible()


def start_quickbooks_time_oauth(page, api: Api, company: str, subject: str) -> None:
    """An admin of ``company`` logs in on the page and presses Connect with QuickBooks Time: the
    browser is at the emulator's consent page."""
    if not hasattr(api.vendors["quickbooks_time"].emulator, "register_oauth_client"):
        pytest.skip("the QuickBooks Time emulator has no authorization code flow yet")
    page.goto(f"{api.url}/page/")
    log_in(page, api, api.token("admin", company, subject), f"{subject} (admin)")
    page.get_by_role("searchbox", name="Search integrations").fill("quickbooks")
    choices = page.locator("#integrations button")
    expect(choices).to_have_text(["QuickBooks Time"])
    choices.first.click()
    page.get_by_role("button", name="Connect with QuickBooks Time").click()
    # The vendor's (emulator's) consent page, on its own origin.
    expect(page).to_have_url(re.compile(r"^" + re.escape(api.vendors["quickbooks_time"].base_url) + r"/authorize\?"))


def test_an_admin_connects_quickbooks_time_through_the_oauth_redirect_and_sees_it_on_return(api: Api, tmp_path):
    chromium_path()
    company = "page-qbt-oauth"
    with headless_page() as page:
        start_quickbooks_time_oauth(page, api, company, "quinn")
        page.get_by_role("button", name="Approve").click()

        # Back on the service's own page (not its JSON), the outcome said in words.
        notice = page.get_by_role("status").filter(has_text="QuickBooks Time is connected")
        expect(notice).to_have_text("QuickBooks Time is connected: the initial sync is under way")
        expect(page).to_have_url(f"{api.url}/page/")  # the query is off the address bar
        assert "outcome=" not in page.url and "reason=" not in page.url
        expect(page.locator("#company-name")).to_have_text(company)
        expect(page.locator("#status-vendor")).to_have_text("QuickBooks Time")
        badge = page.get_by_role("status").and_(page.locator("#status-badge"))
        expect(badge).to_have_text("Connected", timeout=SYNC_MS)
        assert badge.evaluate("node => getComputedStyle(node).backgroundColor") == GREEN_BACKGROUND
        assert api.registry.get(company).provider == "quickbooks_time"
        stored = api.warehouse.read_table("propay_opportunities", where={"company_id": company})
        assert len(stored) > 0
        expect(page.locator("#propays tbody tr")).to_have_count(len(stored))
        shot = tmp_path / "oauth_return.png"
        page.screenshot(path=shot, full_page=True)

        # A reload does not say it again; the status stays.
        page.reload()
        expect(badge).to_have_text("Connected")
        expect(page.locator("#notice")).to_be_hidden()
        expect(page.get_by_text("QuickBooks Time is connected")).to_have_count(0)

    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_an_admin_who_denies_at_quickbooks_time_sees_why_and_the_query_cannot_inject_or_switch(api: Api):
    chromium_path()
    company = "page-qbt-denied"
    with headless_page() as page:
        start_quickbooks_time_oauth(page, api, company, "rory")
        page.get_by_role("button", name="Deny").click()

        alert = page.get_by_role("alert").filter(has_text="QuickBooks Time was not connected")
        expect(alert).to_have_text(
            "QuickBooks Time was not connected: the QuickBooks Time admin did not approve the connection"
        )
        expect(page).to_have_url(f"{api.url}/page/")
        # Nothing was stored: the page offers to connect again.
        expect(page.get_by_role("heading", name="Connect an integration")).to_be_visible()
        expect(page.locator("#status-panel")).to_be_hidden()
        assert api.call("GET", f"/companies/{company}/integration", api.as_admin(company)).status_code == 404

        # The query is outside text: shown as text, never as markup; its company id never replaces
        # the admin's own.
        page.goto(f"{api.url}/page/?company_id=someone-else&outcome=failed&reason=<b id=injected>bold</b>")
        expect(page.get_by_role("alert").filter(has_text="was not connected")).to_have_text(
            "QuickBooks Time was not connected: <b id=injected>bold</b>"
        )
        expect(page.locator("#company-name")).to_have_text(company)
        expect(page.locator("#injected")).to_have_count(0)
        expect(page.get_by_role("combobox", name="Company")).to_have_count(0)  # an admin has no picker


def test_an_operator_picks_a_company_without_a_dialog_and_an_admin_has_no_picker(api: Api, tmp_path):
    chromium_path()
    connected, bare = "page-operator-busybusy", "page-operator-none"
    assert api.connect(connected, "busybusy").status_code == 201
    with headless_page() as page:
        dialogs: list[str] = []

        def dismissed(dialog: Dialog) -> None:
            dialogs.append(f"{dialog.type}: {dialog.message}")
            dialog.dismiss()

        page.on("dialog", dismissed)
        page.goto(f"{api.url}/page/")
        log_in(page, api, api.token("operator", None, "olga"), "olga (operator)")

        picker = page.get_by_role("combobox", name="Company")
        expect(picker).to_be_visible()
        expect(page.locator("#company-view")).to_be_hidden()
        expect(page.locator(f'#company-options option[value="{connected}"]')).to_have_count(1)
        picker.fill(connected)
        page.get_by_role("button", name="Open").click()
        expect(page.locator("#company-name")).to_have_text(connected)
        expect(page.locator("#status-vendor")).to_have_text("BusyBusy")
        badge = page.locator("#status-badge")
        expect(badge).to_have_text(re.compile(r"^(Pending|Connected)$"))

        # Another company, without an integration: its status goes, the chooser comes.
        picker.fill(bare)
        page.get_by_role("button", name="Open").click()
        expect(page.locator("#company-name")).to_have_text(bare)
        expect(page.locator("#status-panel")).to_be_hidden()
        expect(page.get_by_role("heading", name="Connect an integration")).to_be_visible()
        expect(page.locator("#propays tbody tr")).to_have_count(0)

        # Back to the first: its status again.
        picker.fill(connected)
        picker.press("Enter")
        expect(page.locator("#status-vendor")).to_have_text("BusyBusy")
        expect(badge).to_have_text(re.compile(r"^(Pending|Connected)$"))
        assert dialogs == [], f"the page raised dialogs: {dialogs}"
        page.screenshot(path=tmp_path / "operator_picker.png", full_page=True)

        # An admin logs in on the same page: no picker, their own company.
        page.get_by_role("button", name="Log out").click()
        log_in(page, api, api.token("admin", connected, "abe"), "abe (admin)")
        expect(page.locator("#company-name")).to_have_text(connected)
        expect(page.locator("#status-vendor")).to_have_text("BusyBusy")
        expect(page.locator("#company-picker")).to_be_hidden()
        expect(page.get_by_role("combobox", name="Company")).to_have_count(0)
        assert dialogs == []


def test_the_page_shows_the_propays_a_daemons_sync_brings_once_they_are_computed(api: Api):
    """The daemon records a refresh before the automation computes its ProPays and publishes the
    analysts' copy: the page, which read the ProPays again when the last sync time moved, read
    those of before the sync and then stopped asking. It keeps asking while the status says the
    sync's ProPays are still to come, shows them when they are published, then asks every 30 s."""
    chromium_path()
    company = "page-daemon-propays"
    connected = api.connect(company, "busybusy")
    [initial] = connected.json()["syncs"]
    assert api.wait_for_sync(company, initial["sync_id"])["status"] == "succeeded"
    stored = api.warehouse.read_table("propay_opportunities", where={"company_id": company})
    assert len(stored) >= 2
    # The page is open while the daemon refreshes the company (it polls a sync under way).
    refresh = api.open_daemon_sync(company)
    with headless_page() as page:
        page.goto(f"{api.url}/page/")
        log_in(page, api, api.token("admin", company, "dora"), "dora (admin)")
        rows = page.locator("#propays tbody tr")
        expect(rows).to_have_count(len(stored))
        expect(page.locator("#sync-now")).to_have_attribute("aria-busy", "true")
        last_sync = page.locator("#last-sync")
        before = last_sync.get_attribute("data-at")

        # Its runs done, the refresh is recorded; a tick later the engine's run changes the
        # company's ProPays (here one fewer) and the copy is published.
        api.finish_daemon_sync(refresh)
        expect(last_sync).not_to_have_attribute("data-at", before or "", timeout=SYNC_MS)
        expect(rows).to_have_count(len(stored))
        panel = page.locator("#status-panel")
        expect(panel).to_have_attribute("data-poll-ms", "1500")  # asking again shortly, not idle
        gone = stored["propay_id"].iloc[0]
        store = api.warehouse.store
        store.execute(
            store.with_schema("DELETE FROM {schema}.propay_opportunities WHERE company_id = ? AND propay_id = ?"),
            [company, gone],
        )
        publish_analysts_copy(api.service.defs, api.instance, "automation")
        expect(rows).to_have_count(len(stored) - 1, timeout=SYNC_MS)
        expect(page.locator(f'#propays tbody tr[data-propay-id="{gone}"]')).to_have_count(0)
        expect(page.locator("#sync-now")).to_have_attribute("aria-busy", "false")
        # Idle, it still asks now and then: the daemon's next refresh shows without a reload.
        expect(panel).to_have_attribute("data-poll-ms", "30000", timeout=SYNC_MS)
