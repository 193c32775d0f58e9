"""BusyBusy: client, source, mapping and credentials of one vendor (see ``vendors/spec.py``)."""

from __future__ import annotations

from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.busybusy.credentials import BusyBusyCredentials
from protiv_dagster.vendors.spec import VendorSpec

VENDOR = VendorSpec(
    provider="busybusy",
    label="BusyBusy",
    credentials=BusyBusyCredentials,
    tuning=BusyBusyTuning,
    source="protiv_dagster.vendors.busybusy.source:BusyBusySource",
    mapping="protiv_dagster.vendors.busybusy.mapping",
)
