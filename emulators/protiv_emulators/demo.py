"""Demo companies on the emulators: one per provider, generated from the same seed, ready to connect.

The CLI's `demo` and `emulator` commands use this; the emulators restart with the credentials the
registry holds, so a connection made by one `protiv demo` keeps working under `protiv emulator`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from protiv_emulators.generator import CompanyData, generate_company

VENDOR_LABELS = {"quickbooks_time": "QuickBooks Time", "aspire": "Aspire", "busybusy": "BusyBusy"}
DEMO_COMPANIES = {
    "quickbooks_time": "demo-landscaping",
    "aspire": "demo-aspire-grounds",
    "busybusy": "demo-busybusy-builders",
}
DEMO_SETTINGS: dict[str, Any] = {"role_buckets": {"crew": 0.7, "crew_lead": 0.2, "manager": 0.1}}


@dataclass
class DemoVendor:
    """A running emulator hosting one demo company, and what connecting to it takes."""

    provider: str
    company_id: str
    emulator: Any
    base_url: str
    credentials: dict[str, str]
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return VENDOR_LABELS[self.provider]

    def stop(self) -> None:
        self.emulator.stop()


def _quickbooks_time(data: CompanyData, port: int, known: Mapping[str, str]) -> tuple[Any, str, dict[str, str]]:
    from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator

    emulator = QuickBooksTimeEmulator(port=port)
    token = emulator.add_company(data, access_token=known.get("access_token") or secrets.token_urlsafe(24))
    emulator.start()
    return emulator, emulator.base_url, {"access_token": token}


def _aspire(data: CompanyData, port: int, known: Mapping[str, str]) -> tuple[Any, str, dict[str, str]]:
    from protiv_emulators.aspire import AspireEmulator

    emulator = AspireEmulator(port=port)
    client_id, secret = emulator.add_company(data, client_id=known.get("client_id"), secret=known.get("secret"))
    emulator.start()
    return emulator, emulator.base_url, {"client_id": client_id, "secret": secret}


def _busybusy(data: CompanyData, port: int, known: Mapping[str, str]) -> tuple[Any, str, dict[str, str]]:
    from protiv_emulators.busybusy import BusyBusyEmulator

    emulator = BusyBusyEmulator(port=port)
    username, password = emulator.add_company(data, username=known.get("username"), password=known.get("password"))
    emulator.start()
    return emulator, emulator.rest_url, {"username": username, "password": password}


# Per vendor: host a generated company on a new emulator at a port, reusing known credentials;
# returns the running emulator, the base URL an admin connects to, and the credentials.
EMULATED: dict[str, Callable[[CompanyData, int, Mapping[str, str]], tuple[Any, str, dict[str, str]]]] = {
    "quickbooks_time": _quickbooks_time,
    "aspire": _aspire,
    "busybusy": _busybusy,
}


def start_demo_vendor(
    provider: str, *, port: int, seed: int, workers: int, credentials: Mapping[str, str] | None = None
) -> DemoVendor:
    """Start ``provider``'s emulator on ``port`` with its demo company; reuse ``credentials`` if given."""
    if provider not in EMULATED:
        raise ValueError(f"no demo emulator for provider {provider!r}")
    company_id = DEMO_COMPANIES[provider]
    data = generate_company(company_id, seed=seed, workers=workers)
    emulator, base_url, connect_with = EMULATED[provider](data, port, dict(credentials or {}))
    return DemoVendor(
        provider, company_id, emulator, base_url, connect_with, {**DEMO_SETTINGS, "timezone": data.timezone}
    )
