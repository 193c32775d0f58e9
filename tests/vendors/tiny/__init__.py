"""Tiny Clock: a fourth vendor that exists only in the tests, to show what adding a vendor takes.

This folder is the whole vendor (client and tuning, credentials, source, mapping) plus the server
that plays it; registering it is one line, ``VENDORS["tiny_clock"] = VENDOR``, which the test does
with ``monkeypatch`` instead of editing ``protiv_dagster/vendors/registry.py``.
"""

from __future__ import annotations

from protiv_dagster.vendors.spec import VendorSpec
from tests.vendors.tiny.client import TinyClockTuning
from tests.vendors.tiny.credentials import TinyClockCredentials

VENDOR = VendorSpec(
    provider="tiny_clock",
    label="Tiny Clock",
    credentials=TinyClockCredentials,
    tuning=TinyClockTuning,
    source="tests.vendors.tiny.source:TinyClockSource",
    mapping="tests.vendors.tiny.mapping",
)
