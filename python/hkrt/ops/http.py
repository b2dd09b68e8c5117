"""A small bounded HTTP server for ``/metrics`` and ``/health`` (docs/metrics.md, "Safety").

Bounds: at most ``max_connections`` requests are served at once (one thread each; more are answered
503 at once and closed); each socket read or write waits at most ``io_seconds``; a request still open
after ``request_seconds`` is cut (the serving loop checks four times a second), so a client sending a byte at
a time cannot hold a thread; the request line and headers are bounded by ``http.server`` (64 KiB a line,
100 headers); bodies are never read (GET only; one request per connection, HTTP/1.0).  With a token,
a request without ``Authorization: Bearer <token>`` gets 401.  Requests are logged at DEBUG, never
their headers.
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import threading
import time
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from socketserver import ThreadingMixIn
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from hkrt.ops.access import Bind, authorized

log = logging.getLogger("hkrt.ops")

MAX_CONNECTIONS = 8
IO_SECONDS = 5.0
REQUEST_SECONDS = 10.0


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes


Route = Callable[[], Response]
_BUSY = b"HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


class _Handler(BaseHTTPRequestHandler):
    server: BoundedHTTPServer
    server_version = "hkrt"
    sys_version = ""
    timeout = IO_SECONDS  # each socket read and write (StreamRequestHandler sets it on the connection)

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.io_seconds)

    def do_GET(self) -> None:
        server = self.server
        path = urlsplit(self.path).path.rstrip("/") or "/"
        route = server.routes.get(path)
        if not authorized(self.headers.get("Authorization"), server.token):
            server.count("unauthorized")
            self._send(Response(401, "text/plain; charset=utf-8", b"a bearer token is required\n"),
                       {"WWW-Authenticate": 'Bearer realm="hkrt"'})  # fmt: skip
            return
        if route is None:
            server.count("not_found")
            self._send(Response(404, "text/plain; charset=utf-8", b"not found: try /metrics or /health\n"))
            return
        try:
            response = route()
        except Exception:
            server.count("errors")
            log.exception("metrics: %s failed", path, extra={"path": path})
            response = Response(500, "text/plain; charset=utf-8", b"internal error (logged)\n")
        server.count("served")
        self._send(response)

    def _send(self, response: Response, headers: Mapping[str, str] | None = None) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("metrics request: " + format, *args, extra={"client": self.client_address[0]})


class BoundedHTTPServer(ThreadingMixIn, HTTPServer):
    """``routes``: path -> a function answering it; serves from its own thread once :meth:`start` is called."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(
        self,
        bind: Bind,
        routes: Mapping[str, Route],
        *,
        token: str | None = None,
        max_connections: int = MAX_CONNECTIONS,
        io_seconds: float = IO_SECONDS,
        request_seconds: float = REQUEST_SECONDS,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in bind.host else socket.AF_INET
        self.routes = dict(routes)
        self.token = token
        self.io_seconds = io_seconds
        self.request_seconds = request_seconds
        self.stats: dict[str, int] = dict.fromkeys(("served", "unauthorized", "not_found", "errors", "busy", "cut"), 0)
        self._slots = threading.BoundedSemaphore(max_connections)
        self._open: dict[Any, float] = {}  # connection -> monotonic time it was accepted
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((bind.host, bind.port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def open_connections(self) -> int:
        """Connections being served now (each holds one of the ``max_connections`` slots)."""
        with self._lock:
            return len(self._open)

    def count(self, what: str) -> None:
        with self._lock:
            self.stats[what] += 1

    def start(self) -> BoundedHTTPServer:
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.25},
                                        name="hkrt-metrics-http", daemon=True)  # fmt: skip
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5.0)
            self._thread = None
        self.server_close()

    # ------------------------------------------------------------ bounds
    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.count("busy")
            with contextlib.suppress(OSError):
                request.sendall(_BUSY)
            self.shutdown_request(request)
            return
        with self._lock:
            self._open[request] = time.monotonic()
        try:
            super().process_request(request, client_address)
        except Exception:  # the thread did not start: give the slot back
            self._done(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._done(request)

    def _done(self, request: Any) -> None:
        with self._lock:
            known = self._open.pop(request, None) is not None
        if known:
            self._slots.release()

    def service_actions(self) -> None:
        """Cut requests open longer than ``request_seconds`` (called by the serving loop)."""
        now = time.monotonic()
        with self._lock:
            late = [r for r, since in self._open.items() if now - since > self.request_seconds]
            for request in late:
                self._open[request] = math.inf  # cut once
        for request in late:
            self.count("cut")
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_RDWR)  # the handler's read or write fails: its thread ends
