"""How an Aspire connection authenticates: the API client id and secret an admin creates in Aspire,
exchanged at ``/Authorization`` for a bearer token that the code location keeps (encrypted, with its
refresh token and expiry) between checks instead of asking for one each time."""

from __future__ import annotations

from protiv_dagster.vendors.spec import VENDOR, VendorCredentials, credential


class AspireCredentials(VendorCredentials):
    client_id: str = credential("API client id", secret=False)
    secret: str = credential("API client secret")
    token: str | None = credential("access token Aspire issued", required=False, given_by=VENDOR)
    refresh_token: str | None = credential("refresh token Aspire issued", required=False, given_by=VENDOR)
    token_expires_at: str | None = credential(
        "expiry of the access token (ISO 8601)", secret=False, required=False, given_by=VENDOR
    )
