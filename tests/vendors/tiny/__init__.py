"""Tiny Clock: a fourth vendor that exists only in the tests, to show what adding a vendor takes.

This folder is the whole vendor (client and tuning, credentials, source, mapping) plus the server
that plays it; registering it is one line, ``VENDORS["tiny_clock"] = VENDOR``, which the test does
with ``monkeypatch`` instead of editing ``protiv_dagster/vendors/registry.py``.
"""

from __future__ import annotations

from importlib import import_module

from protiv_dagster.vendors.spec import VendorSpec
from tests.vendors.tiny.client import TinyClockTuning
from tests.vendors.tiny.credentials import TinyClockCredentials


def _source(connection, tuning, registry):
    from tests.vendors.tiny.source import TinyClockSource

    return TinyClockSource(connection, tuning, registry)


VENDOR = VendorSpec(
    provider="tiny_clock",
    label="Tiny Clock",
    credentials=TinyClockCredentials,
    tuning=TinyClockTuning,
    make_source=_source,
    mapping=lambda: import_module("tests.vendors.tiny.mapping"),
)
