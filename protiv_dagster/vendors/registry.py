"""The vendors this code location syncs: one line per vendor package. Adding a vendor is a folder
under ``vendors/`` (see ``vendors/spec.py``) and a line here; everything else reads this table."""

from __future__ import annotations

from protiv_dagster.vendors import aspire, busybusy, quickbooks_time
from protiv_dagster.vendors.spec import VendorSpec

VENDORS: dict[str, VendorSpec] = {
    spec.provider: spec
    for spec in (
        quickbooks_time.VENDOR,
        aspire.VENDOR,
        busybusy.VENDOR,
    )
}


class UnknownVendorError(ValueError):
    """A provider that no vendor package registers."""


def vendor(provider: str) -> VendorSpec:
    """The spec of ``provider``; a clear error naming the known ones otherwise."""
    try:
        return VENDORS[provider]
    except KeyError:
        raise UnknownVendorError(f"unknown provider {provider!r}; known providers: {', '.join(VENDORS)}") from None


def providers() -> tuple[str, ...]:
    return tuple(VENDORS)


def label(provider: str) -> str:
    """The vendor's name as people write it; the provider id itself for one no longer registered."""
    spec = VENDORS.get(provider)
    return spec.label if spec else provider
