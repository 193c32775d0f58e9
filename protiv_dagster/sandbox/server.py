"""The lifecycle every emulator shares: a ThreadingHTTPServer on loopback in a daemon thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LoopbackEmulator:
    """Start, stop and address an emulator's HTTP server; use it as a context manager too.

    Subclasses set ``server_class`` (a ThreadingHTTPServer whose ``emulator`` attribute points back),
    ``handler_class`` and ``thread_name``, and call ``__init__`` with host and port.
    """

    server_class: type[ThreadingHTTPServer]
    handler_class: type[BaseHTTPRequestHandler]
    thread_name = "emulator"

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.host = host
        self.port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        server = self.server_class((self.host, self.port), self.handler_class)
        server.emulator = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        # A short poll interval lets stop() return at once instead of after half a second.
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"{self.thread_name}-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def root_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return f"http://{self.host}:{self.port}"
