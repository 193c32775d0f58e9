"""The Tiny Clock server of the tests: a company's people, jobs, custom fields and entries, served
on loopback behind an API key. Its data is a generated company as QuickBooks Time's emulator lists
it (Tiny Clock speaks those record shapes)."""

from __future__ import annotations

import json
import secrets
import threading
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeClient
from protiv_dagster.vendors.quickbooks_time.credentials import QuickBooksTimeCredentials
from protiv_emulators.generator import CompanyData
from protiv_emulators.quickbooks_time import QuickBooksTimeEmulator


class TinyClockServer:
    def __init__(self, data: CompanyData):
        emulator = QuickBooksTimeEmulator(port=0)
        token = emulator.add_company(data)
        emulator.start()
        try:
            qbt = QuickBooksTimeClient(emulator.base_url, QuickBooksTimeCredentials(access_token=token))
            self.listings: dict[str, list[dict[str, Any]]] = {
                "people": qbt.users(),
                "jobs": qbt.jobcodes(),
                "fields": qbt.customfields("jobcode"),
                "entries": qbt.timesheets(start_date=date(2000, 1, 1), end_date=date(2100, 1, 1)),
            }
        finally:
            emulator.stop()
        self.api_key = secrets.token_urlsafe(16)
        self.requests: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                url = urlsplit(self.path)
                name = url.path.strip("/")
                server.requests.append(name)
                if self.headers.get("X-Api-Key") != server.api_key:
                    return self._answer(401, {"error": "invalid API key"})
                if name not in server.listings:
                    return self._answer(404, {"error": f"no such listing {name!r}"})
                records = server.listings[name]
                if name == "entries":
                    query = parse_qs(url.query)
                    first, last = query["first"][0], query["last"][0]
                    records = [r for r in records if first <= r["date"] <= last]
                self._answer(200, {name: records})

            def _answer(self, status: int, body: dict[str, Any]) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        threading.Thread(target=self._http.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
