"""One resource for every vendor API: each company's source is picked by its connection's provider.

Assets take this single resource instead of one parameter per vendor. Its fields are the tuning of
each vendor registered in ``vendors/registry.py`` (page sizes, timeouts, retries), one field named by
the provider, so adding a vendor adds its field here without editing this file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import Field

from protiv_dagster.connections.registry import Connection, ConnectionRegistryResource, RegistryError
from protiv_dagster.vendors.base import Source
from protiv_dagster.vendors.registry import VENDORS


class _VendorApis(dg.ConfigurableResource):
    """Tuning of each vendor's API client (page sizes, timeouts, retries). Credentials and base URLs
    are not here: they come from each company's connection at run time."""

    step_retries: int = Field(
        default=2,
        ge=0,
        description="Times a sync step is retried when its vendor stays down past the client's retries.",
    )
    step_retry_seconds: float = Field(
        default=30.0, ge=0, description="Wait before the first step retry; doubles each time."
    )

    def tuning(self, provider: str) -> Any:
        """The client tuning of ``provider``: its field, or the vendor's defaults for a vendor
        registered after this class was made (the registry is read when the code location loads)."""
        configured = self.__dict__.get(provider)
        return configured if configured is not None else VENDORS[provider].tuning()

    def source_for(self, company_id: str, registry: ConnectionRegistryResource) -> Source:
        """The source that reads this company's vendor; a clear error for a provider not wired yet."""
        return self.source_of(registry.get(company_id), registry)

    def source_of(self, connection: Connection, registry: ConnectionRegistryResource) -> Source:
        """The source for a connection already read from the registry (a refresh lists them all once)."""
        spec = VENDORS.get(connection.provider)
        if spec is None:
            raise RegistryError(
                f"company {connection.company_id!r} is connected to {connection.provider_label}, "
                "which this code location cannot sync yet"
            )
        return spec.make_source(connection, self.tuning(connection.provider), registry)


# The class statement, written out for the vendors of the registry: Dagster reads each field's
# annotation to configure the nested resources.
if TYPE_CHECKING:  # the class without its per-vendor fields, which are read through tuning()
    VendorApis = _VendorApis
else:
    VendorApis = type(_VendorApis)(
        "VendorApis",
        (_VendorApis,),
        {
            "__module__": __name__,
            "__doc__": _VendorApis.__doc__,
            "__annotations__": {spec.provider: spec.tuning for spec in VENDORS.values()},
            **{
                spec.provider: Field(default_factory=spec.tuning, description=f"{spec.label} API client tuning.")
                for spec in VENDORS.values()
            },
        },
    )
