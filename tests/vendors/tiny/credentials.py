"""A Tiny Clock connection authenticates with one API key, sent as ``X-Api-Key``."""

from __future__ import annotations

from protiv_dagster.vendors.spec import VendorCredentials, credential


class TinyClockCredentials(VendorCredentials):
    api_key: str = credential("API key")
