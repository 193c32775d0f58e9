"""The tuning every vendor client shares, as Dagster config: timeouts, the request deadline,
retries and the page cap. A vendor's tuning (``<vendor>/client.py``) subclasses it and adds its
page size and anything of its own; ``VendorApis`` holds one per registered vendor."""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from protiv_dagster.vendors.http import DEFAULT_MAX_PAGES, MAX_PAGES_HELP, REQUEST_DEADLINE_HELP


class HttpTuning(dg.Config):
    connect_timeout_seconds: float = Field(default=5.0, gt=0)
    read_timeout_seconds: float = Field(default=60.0, gt=0)
    request_deadline_seconds: float = Field(default=120.0, gt=0, description=REQUEST_DEADLINE_HELP)
    max_attempts: int = Field(default=6, ge=1, description="Attempts per call on 429/5xx/timeouts.")
    max_wait_seconds: float = Field(default=60.0, gt=0, description="Longest single wait between attempts.")
    max_pages: int = Field(default=DEFAULT_MAX_PAGES, ge=1, description=MAX_PAGES_HELP)
