"""Emulators of the vendor APIs Protiv syncs from (QuickBooks Time, Aspire, BusyBusy), the company
generator that fills them, and the fault switches they share.

A development and demo package, installed beside ``protiv_dagster`` by ``make`` (``pip install -e
./emulators``) and never in the production image: the product reads real vendors only. Each
emulator serves the vendor's documented protocol over real HTTP on loopback, so the clients are
tested against a server, not against patched libraries.
"""
