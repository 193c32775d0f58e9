"""The integrations service as an app reaches it: a real uvicorn server on a loopback port, over a
real SQLite registry, DuckDB warehouse and Dagster instance (SQLite, in a temporary DAGSTER_HOME),
with the three vendors' emulators and an HTTP receiver for its webhooks.

One server per test module (module scope; each test uses companies of its own, so the tests of a
module may run in any order and on either xdist worker). Tokens are signed with a development key
pair, as the Protiv app would sign them with its own.
"""

from __future__ import annotations

import json
import logging
import secrets
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import requests
import uvicorn

from protiv_dagster.cli.common import LAPTOP_INSTANCE
from protiv_dagster.connections.registry import ConnectionRegistry, ConnectionRegistryResource, generate_secret_key
from protiv_dagster.definitions import build_defs
from protiv_dagster.integrations.auth import AuthSettings, DevelopmentKeys, TokenVerifier
from protiv_dagster.integrations.service import IntegrationService, ServiceSettings, service_instance
from protiv_dagster.integrations.webhooks import SIGNATURE_HEADER, Webhooks, verify
from protiv_dagster.resources.vendors import VendorApis
from protiv_dagster.resources.warehouse import Warehouse
from protiv_dagster.service.app import create_app, quiet_access_log
from protiv_dagster.settings import SECRET_KEY_VARIABLE
from protiv_dagster.vendors.aspire.client import AspireTuning
from protiv_dagster.vendors.busybusy.client import BusyBusyTuning
from protiv_dagster.vendors.quickbooks_time.client import QuickBooksTimeTuning
from protiv_emulators.generator import generate_company
from tests.assets.vendors import VendorHarness, host

FAST_RETRIES = {"max_attempts": 3, "max_wait_seconds": 0.2}
OAUTH_CLIENT_ID = "protiv-integrations-test"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Receiver:
    """The app's webhook endpoint: keeps every delivery, answers 204."""

    secret: str
    deliveries: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/protiv"

    def start(self) -> Receiver:
        deliveries = self.deliveries

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                deliveries.append(({k: v for k, v in self.headers.items()}, body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def events(self, *, verified: bool = True) -> list[dict[str, Any]]:
        """The events received, each signature checked as a receiver must."""
        found = []
        for headers, body in list(self.deliveries):
            signature = next(v for k, v in headers.items() if k.lower() == SIGNATURE_HEADER.lower())
            assert not verified or verify(self.secret, body, signature), "a webhook with a bad signature"
            found.append(json.loads(body))
        return found

    def wait_for(self, predicate, timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.events():
                if predicate(event):
                    return event
            time.sleep(0.1)
        raise AssertionError(f"no such webhook; received: {[e['type'] + ' ' + str(e['data']) for e in self.events()]}")


class LogCapture(logging.Handler):
    """Every log record of the process while the server runs (the server runs in this process)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage() + (self.format(record) if record.exc_info else ""))
        except Exception:  # noqa: BLE001
            self.lines.append(str(record.msg))


@dataclass
class Api:
    url: str
    keys: DevelopmentKeys
    service: IntegrationService
    registry: ConnectionRegistry
    warehouse: Warehouse
    instance: dg.DagsterInstance
    vendors: dict[str, VendorHarness]
    receiver: Receiver
    logs: LogCapture

    def token(self, role: str = "admin", company_id: str | None = None, subject: str = "alice", **options: Any) -> str:
        return self.keys.token(subject, role, company_id, **options)

    def as_admin(self, company_id: str, subject: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token('admin', company_id, subject)}"}

    def as_operator(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token('operator', None, 'ops')}"}

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **options: Any) -> requests.Response:
        return requests.request(method, self.url + path, headers=headers, timeout=60, **options)

    def connect(self, company_id: str, provider: str, **body: Any) -> requests.Response:
        harness = self.vendors[provider]
        payload = {
            "provider": provider,
            "base_url": harness.base_url,
            "credentials": harness.credentials,
            "settings": {"timezone": "America/Denver"},
            **body,
        }
        return self.call("PUT", f"/companies/{company_id}/integration", self.as_admin(company_id), json=payload)

    def open_daemon_sync(self, company_id: str) -> str:
        """A refresh as the daemon's company_syncs records it before its runs; its id."""
        return self.service.store.open_batch(company_id, "refresh", None, [], True, datetime.now(UTC)).batch_id

    def finish_daemon_sync(self, batch_id: str) -> None:
        """Its runs done, company_syncs records it as finished; the automation computes its ProPays
        and publishes the analysts' copy after this."""
        self.service.store.finish_batch(batch_id, succeeded=True, at=datetime.now(UTC))

    def wait_for_sync(self, company_id: str, sync_id: str, timeout: float = 120.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            answer = self.call("GET", f"/companies/{company_id}/syncs/{sync_id}", self.as_admin(company_id))
            assert answer.status_code == 200, answer.text
            if answer.json()["status"] in ("succeeded", "failed"):
                return answer.json()
            time.sleep(0.25)
        raise AssertionError(f"sync {sync_id} of {company_id} did not end in {timeout} s\n{service_threads()}")


def service_threads() -> str:
    """Where the service's threads are (the sync worker, the status watcher, webhooks): for a sync
    that does not end, the line it waits on."""
    frames = sys._current_frames()
    stacks = []
    for thread in threading.enumerate():
        if thread.name.startswith("protiv-") and thread.ident in frames:
            stacks.append(f"thread {thread.name}:\n" + "".join(traceback.format_stack(frames[thread.ident])[-25:]))
    return "\n".join(stacks) or "no service thread is alive"


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[Api]:
    folder: Path = tmp_path_factory.mktemp("service")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(SECRET_KEY_VARIABLE, generate_secret_key())
        patch.setenv("PROTIV_DATA_DIR", str(folder / "data"))
        registry_url = f"sqlite:///{folder / 'registry.sqlite3'}"
        patch.setenv("PROTIV_REGISTRY_URL", registry_url)
        now = datetime.now(UTC)
        vendors = {
            provider: host(
                provider,
                generate_company(
                    f"{provider}-account", seed=7, workers=5, days=14, as_of=now, timezone="America/Denver"
                ),
            )
            for provider in ("busybusy", "aspire", "quickbooks_time")
        }
        port = free_port()
        public_url = f"http://127.0.0.1:{port}"
        oauth_secret = secrets.token_urlsafe(24)
        qbt = vendors["quickbooks_time"].emulator
        if hasattr(qbt, "register_oauth_client"):
            qbt.register_oauth_client(
                OAUTH_CLIENT_ID, [f"{public_url}/oauth/quickbooks_time/callback"], client_secret=oauth_secret
            )
        receiver = Receiver(secrets.token_hex(16)).start()
        keys = DevelopmentKeys(folder / "keys")
        keys.create()
        (folder / "dagster_home").mkdir()
        warehouse = Warehouse(url=str(folder / "warehouse.duckdb"))
        defs = build_defs(
            warehouse=warehouse,
            registry=ConnectionRegistryResource(url=registry_url),
            vendors=VendorApis(
                quickbooks_time=QuickBooksTimeTuning(**FAST_RETRIES),
                aspire=AspireTuning(**FAST_RETRIES),
                busybusy=BusyBusyTuning(**FAST_RETRIES),
                step_retries=0,
                step_retry_seconds=0.05,
            ),
        )
        logs = LogCapture()
        logging.getLogger().addHandler(logs)
        previous_level = logging.getLogger().level
        logging.getLogger().setLevel(logging.DEBUG)
        # The laptop's instance (every run's events in one file), as `protiv serve` builds it: without
        # compute-log capture (service_instance).
        (folder / "dagster_home" / "dagster.yaml").write_text(LAPTOP_INSTANCE)
        patch.setenv("DAGSTER_HOME", str(folder / "dagster_home"))
        with service_instance(str(folder / "dagster_home")) as instance:
            service = IntegrationService(
                defs,
                instance,
                registry_url=registry_url,
                settings=ServiceSettings(
                    public_url=public_url,
                    base_urls={"quickbooks_time": vendors["quickbooks_time"].base_url},
                    oauth_client_id=OAUTH_CLIENT_ID,
                    oauth_client_secret=oauth_secret,
                    status_check_seconds=1.0,
                ),
                webhooks=Webhooks(receiver.url, receiver.secret, backoff_seconds=0.05),
            )
            verifier = TokenVerifier(AuthSettings(keys.jwks_path, "protiv-app", "protiv-integrations", 900))
            quiet_access_log()
            server = uvicorn.Server(
                # log_config=None: uvicorn would otherwise reconfigure logging for the whole process
                # (dictConfig closes every handler under logging's module lock: a deadlock with a Dagster run
                # logging from another thread, tests/service/test_page_session.py).
                uvicorn.Config(
                    create_app(service, verifier), host="127.0.0.1", port=port, log_level="info", log_config=None
                )
            )
            thread = threading.Thread(target=server.run, daemon=True)
            thread.start()
            deadline = time.monotonic() + 30
            while not server.started:
                assert time.monotonic() < deadline and thread.is_alive(), "the service did not start"
                time.sleep(0.05)
            try:
                yield Api(
                    public_url,
                    keys,
                    service,
                    ConnectionRegistry(registry_url),
                    warehouse,
                    instance,
                    vendors,
                    receiver,
                    logs,
                )
            finally:
                # Every sync the module's tests started ends here: one left running would go on in this
                # worker process under the next module's environment (another secret key, another
                # registry), and fail there or hold up that module's syncs.
                idle = service.wait_until_idle(180)
                server.should_exit = True
                thread.join(60)
                assert idle, f"a sync of the service was still running at the end of the module\n{service_threads()}"
                logging.getLogger().removeHandler(logs)
                logging.getLogger().setLevel(previous_level)
                assert receiver.server is not None
                receiver.server.shutdown()
                for harness in vendors.values():
                    harness.stop()
