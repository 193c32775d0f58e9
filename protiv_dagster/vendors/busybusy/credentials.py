"""How a BusyBusy connection authenticates: the username and password of a BusyBusy account, which
the REST login exchanges for the key the GraphQL API is read with."""

from __future__ import annotations

from protiv_dagster.vendors.spec import VendorCredentials, credential


class BusyBusyCredentials(VendorCredentials):
    username: str = credential("BusyBusy username", secret=False)
    # Hashed before it leaves, never sent in a header: a space inside it is part of the secret.
    password: str = credential("BusyBusy password", inner_spaces=True)
