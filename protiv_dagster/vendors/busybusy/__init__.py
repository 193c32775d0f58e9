"""BusyBusy: client, source, mapping and credentials of one vendor (see ``vendors/spec.py``)."""

from __future__ import annotations

from importlib import import_module

from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.busybusy.credentials import BusyBusyCredentials
from protiv_dagster.vendors.spec import VendorSpec


def _source(connection, tuning, registry):
    from protiv_dagster.vendors.busybusy.source import BusyBusySource

    return BusyBusySource(connection, tuning, registry)


VENDOR = VendorSpec(
    provider="busybusy",
    label="BusyBusy",
    credentials=BusyBusyCredentials,
    tuning=BusyBusyTuning,
    make_source=_source,
    mapping=lambda: import_module("protiv_dagster.vendors.busybusy.mapping"),
)
