"""QuickBooks Time: client, source, mapping and credentials of one vendor (see ``vendors/spec.py``)."""

from __future__ import annotations

from importlib import import_module

from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_dagster.vendors.quickbooks_time.credentials import QuickBooksTimeCredentials
from protiv_dagster.vendors.spec import VendorSpec


def _source(connection, tuning, registry):
    from protiv_dagster.vendors.quickbooks_time.source import QuickBooksTimeSource

    return QuickBooksTimeSource(connection, tuning, registry)


VENDOR = VendorSpec(
    provider="quickbooks_time",
    label="QuickBooks Time",
    credentials=QuickBooksTimeCredentials,
    tuning=QuickBooksTimeTuning,
    make_source=_source,
    mapping=lambda: import_module("protiv_dagster.vendors.quickbooks_time.mapping"),
)
