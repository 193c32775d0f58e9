"""Tiny Clock's REST API: three unpaged listings behind an API key, on the shared HTTP base."""

from __future__ import annotations

from datetime import date
from typing import Any

from protiv_dagster.vendors.http import VendorClient, VendorPayloadError, http_options
from protiv_dagster.vendors.tuning import HttpTuning


class TinyClockClient(VendorClient):
    vendor = "Tiny Clock"

    def __init__(self, base_url: str, api_key: str, **options: Any):
        super().__init__(base_url, **options)
        self.api_key = api_key
        self.register_secret(api_key)

    def auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def _listing(self, path: str, key: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        body = self.get_json(path, params)
        if not isinstance(body, dict) or not isinstance(body.get(key), list):
            raise VendorPayloadError(self.vendor, f"/{path} lacks the list {key!r}")
        return body[key]

    def people(self) -> list[dict[str, Any]]:
        return self._listing("people", "people")

    def jobs(self) -> list[dict[str, Any]]:
        return self._listing("jobs", "jobs")

    def fields(self) -> list[dict[str, Any]]:
        """The custom fields jobs carry their budgets in."""
        return self._listing("fields", "fields")

    def entries(self, first_day: date, last_day: date) -> list[dict[str, Any]]:
        return self._listing("entries", "entries", {"first": first_day.isoformat(), "last": last_day.isoformat()})


class TinyClockTuning(HttpTuning):
    """Tiny Clock API client tuning: the shared HTTP tuning, nothing of its own."""

    def client(self, base_url: str, api_key: str) -> TinyClockClient:
        return TinyClockClient(base_url, api_key, **http_options(self))
