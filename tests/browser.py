"""A headless Chromium page for tests that look at the UI as a person does.

The browser is Debian's ``chromium`` package (``make test`` installs it when missing); Playwright only
drives it (``executable_path``): nothing here runs ``playwright install`` or downloads a browser.
Without the package a browser test skips and says how to install it, except in CI (``CI=true``),
where that fails. The page reaches loopback only: its requests to any other host are aborted, and no
host name but localhost resolves.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, Route, expect, sync_playwright

DEBIAN_CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "apt-get install chromium (as root), or run `make test` as root"
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}
ARGS = [
    # No host name but localhost resolves, for the page or for Chromium's own background requests.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--no-proxy-server",
    # Software rendering at a scale factor of 1: there is no GPU, and a screenshot is the viewport's size.
    "--force-device-scale-factor=1",
    "--disable-gpu",
]


def chromium_path() -> str:
    """Debian's chromium launcher; skips the test when it is missing, or fails it in CI."""
    if DEBIAN_CHROMIUM.exists():
        return str(DEBIAN_CHROMIUM)
    found = shutil.which("chromium")
    if found:
        return found
    reason = f"Debian's chromium is not installed (no {DEBIAN_CHROMIUM}): {INSTALL}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI must run the browser tests", pytrace=False)
    pytest.skip(reason)


def _loopback_only(route: Route) -> None:
    if urlsplit(route.request.url).hostname in LOOPBACK_HOSTS or route.request.url.startswith(("data:", "blob:")):
        route.continue_()
    else:
        route.abort("blockedbyclient")


@contextmanager
def headless_page(width: int = 1440, height: int = 900, timeout_ms: float = 15_000) -> Iterator[Page]:
    """A page of a fresh headless Chromium, closed on the way out. Waits (Playwright's auto-waiting of
    actions and of ``expect``) give up after ``timeout_ms`` unless a call says otherwise."""
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": width, "height": height}, service_workers="block")
            context.route("**/*", _loopback_only)
            context.set_default_timeout(timeout_ms)
            expect.set_options(timeout=timeout_ms)
            yield context.new_page()
        finally:
            browser.close()
