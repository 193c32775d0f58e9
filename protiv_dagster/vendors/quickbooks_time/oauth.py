"""QuickBooks Time's OAuth 2.0 authorization-code flow, the app's side: the URL an admin's browser
is sent to, and the exchange of the code the vendor hands back for the company's token pair.

Protocol (vendor documentation): ``GET <base>/authorize?response_type=code&client_id=..&redirect_uri=..
&state=..`` shows the admin a consent page and redirects to ``redirect_uri?code=..&state=..`` (or
``?error=access_denied&state=..``); ``POST <base>/grant`` (form) with ``grant_type=authorization_code``,
``client_id``, ``client_secret``, ``code`` and ``redirect_uri`` answers ``access_token``,
``refresh_token``, ``expires_in`` and ``company_id``. The ``redirect_uri`` must be one registered for
the app, and the same in both steps.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from protiv_dagster.vendors.http import VendorClient, require_keys
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeClient
from protiv_dagster.vendors.quickbooks_time.credentials import QuickBooksTimeCredentials


def authorize_url(base_url: str, client_id: str, redirect_uri: str, state: str) -> str:
    """Where the admin's browser goes to approve the app for their company."""
    query = urlencode({"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri, "state": state})
    return f"{base_url.rstrip('/')}/authorize?{query}"


class QuickBooksTimeAuthorization(VendorClient):
    """Exchanges an authorization code at ``/grant``: one request, never retried on a 4xx (a code
    works once), its code and the app's secret scrubbed from any error."""

    vendor = "QuickBooks Time"
    error_detail = QuickBooksTimeClient.error_detail

    def __init__(self, base_url: str, client_id: str, client_secret: str, **http_options: Any):
        super().__init__(base_url, **http_options)
        self.client_id, self.client_secret = client_id, client_secret
        self.register_secret(client_secret)
        self.register_identifier(client_id)

    def exchange_code(self, code: str, redirect_uri: str) -> QuickBooksTimeCredentials:
        """The company's credentials for ``code``: its token pair and the app's client id and secret
        (which the sync needs to refresh the pair when the access token expires)."""
        self.register_secret(code)
        response = self.request(
            "POST",
            "grant",
            form={
                "grant_type": "authorization_code",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "code": code,
                "redirect_uri": redirect_uri,
            },
            authenticated=False,
            expect_json=True,
        )
        body = self.decode_json(response, "grant")
        require_keys(self.vendor, body, ("access_token", "refresh_token"), "the /grant answer")
        self.register_secret(body["access_token"], body["refresh_token"])
        return QuickBooksTimeCredentials(
            access_token=body["access_token"],
            refresh_token=body["refresh_token"],
            client_id=self.client_id,
            client_secret=self.client_secret,
        )
