"""Aspire: client, source, mapping and credentials of one vendor (see ``vendors/spec.py``)."""

from __future__ import annotations

from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.aspire.credentials import AspireCredentials
from protiv_dagster.vendors.spec import VendorSpec

VENDOR = VendorSpec(
    provider="aspire",
    label="Aspire",
    credentials=AspireCredentials,
    tuning=AspireTuning,
    source="protiv_dagster.vendors.aspire.source:AspireSource",
    mapping="protiv_dagster.vendors.aspire.mapping",
)
