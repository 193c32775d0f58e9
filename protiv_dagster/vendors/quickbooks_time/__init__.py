"""QuickBooks Time: client, source, mapping and credentials of one vendor (see ``vendors/spec.py``)."""

from __future__ import annotations

from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_dagster.vendors.quickbooks_time.credentials import QuickBooksTimeCredentials
from protiv_dagster.vendors.spec import VendorSpec

VENDOR = VendorSpec(
    provider="quickbooks_time",
    label="QuickBooks Time",
    credentials=QuickBooksTimeCredentials,
    tuning=QuickBooksTimeTuning,
    source="protiv_dagster.vendors.quickbooks_time.source:QuickBooksTimeSource",
    mapping="protiv_dagster.vendors.quickbooks_time.mapping",
)
