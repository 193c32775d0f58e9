"""One resource for every vendor API: each company's source is picked by its connection's provider.

Assets take this single resource instead of one parameter per vendor, so adding a vendor changes
this file and ``sources/``, not every asset signature.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from protiv_dagster.connections.registry import Connection, ConnectionRegistryResource, RegistryError
from protiv_dagster.vendors.aspire.client import AspireResource
from protiv_dagster.vendors.busybusy.client import BusyBusyResource
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeResource
from protiv_dagster.vendors.base import Source


class VendorApis(dg.ConfigurableResource):
    """Tuning of each vendor's API client (page sizes, timeouts, retries). Credentials and base URLs
    are not here: they come from each company's connection at run time."""

    quickbooks_time: QuickBooksTimeResource = Field(default_factory=QuickBooksTimeResource)
    aspire: AspireResource = Field(default_factory=AspireResource)
    busybusy: BusyBusyResource = Field(default_factory=BusyBusyResource)
    step_retries: int = Field(
        default=2, ge=0, description="Times a sync step is retried when its vendor stays down past the client's retries."
    )
    step_retry_seconds: float = Field(
        default=30.0, ge=0, description="Wait before the first step retry; doubles each time."
    )

    def source_for(self, company_id: str, registry: ConnectionRegistryResource) -> Source:
        """The source that reads this company's vendor; a clear error for a provider not wired yet."""
        return self.source_of(registry.get(company_id), registry)

    def source_of(self, connection: Connection, registry: ConnectionRegistryResource) -> Source:
        """The source for a connection already read from the registry (a refresh lists them all once)."""
        company_id = connection.company_id
        if connection.provider == "quickbooks_time":
            from protiv_dagster.vendors.quickbooks_time.source import QuickBooksTimeSource

            return QuickBooksTimeSource(connection, self.quickbooks_time, registry)
        if connection.provider == "aspire":
            from protiv_dagster.vendors.aspire.source import AspireSource

            return AspireSource(connection, self.aspire, registry)  # keeps its token between checks
        if connection.provider == "busybusy":
            from protiv_dagster.vendors.busybusy.source import BusyBusySource

            return BusyBusySource(connection, self.busybusy)
        raise RegistryError(
            f"company {company_id!r} is connected to {connection.provider_label}, "
            "which this code location cannot sync yet"
        )
