"""How a QuickBooks Time connection authenticates: an OAuth 2.0 bearer token, refreshed with the
refresh token and the app's client id and secret when the vendor answers 401."""

from __future__ import annotations

from protiv_dagster.vendors.spec import ADMIN_THEN_VENDOR, VendorCredentials, credential


class QuickBooksTimeCredentials(VendorCredentials):
    access_token: str = credential("OAuth access token", given_by=ADMIN_THEN_VENDOR)
    refresh_token: str | None = credential("OAuth refresh token", required=False, given_by=ADMIN_THEN_VENDOR)
    client_id: str | None = credential("OAuth app client id (to refresh the token)", secret=False, required=False)
    client_secret: str | None = credential("OAuth app client secret (to refresh the token)", required=False)
