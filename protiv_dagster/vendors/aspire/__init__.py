"""Aspire: client, source, mapping and credentials of one vendor (see ``vendors/spec.py``)."""

from __future__ import annotations

from importlib import import_module

from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.aspire.credentials import AspireCredentials
from protiv_dagster.vendors.spec import VendorSpec


def _source(connection, tuning, registry):
    from protiv_dagster.vendors.aspire.source import AspireSource

    return AspireSource(connection, tuning, registry)


VENDOR = VendorSpec(
    provider="aspire",
    label="Aspire",
    credentials=AspireCredentials,
    tuning=AspireTuning,
    make_source=_source,
    mapping=lambda: import_module("protiv_dagster.vendors.aspire.mapping"),
)
