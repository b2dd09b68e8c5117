"""The fan-out: each WebSocket client has its own bounded queue of messages (docs/dashboard.md, "Protocol").

Runs on the server's event loop.  :meth:`Hub.publish` may be called from any thread (the bus's callback
thread): it hands the message to the loop.  A client whose queue is full (a slow browser, a stalled network)
loses what was queued — counted in ``stats["dropped"]`` and ``stats["resyncs"]`` — and gets a fresh snapshot
next instead, so it never shows a state with a hole in it and never holds more than ``queue_size`` messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from hkrt.core.logs import log_limited

log = logging.getLogger("hkrt.dashboard")

RESYNC: dict[str, Any] = {"type": "resync"}  # the marker a sender turns into a fresh snapshot


class Client:
    __slots__ = ("queue",)

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=size)


class Hub:
    def __init__(self, queue_size: int = 1000, max_clients: int = 16) -> None:
        self.queue_size = queue_size
        self.max_clients = max_clients
        self.clients: set[Client] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"clients": 0, "connections": 0, "refused_busy": 0, "unauthorized": 0, "sent": 0,
                      "dropped": 0, "resyncs": 0, "halts": 0}  # fmt: skip

    def publish(self, message: dict[str, Any]) -> None:
        """From any thread: queue ``message`` for every client (nothing when none is connected)."""
        loop = self.loop
        if loop is None or not self.clients:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed: the server is stopping
            loop.call_soon_threadsafe(self.fanout, message)

    def fanout(self, message: dict[str, Any]) -> None:
        for client in list(self.clients):
            try:
                client.queue.put_nowait(message)
            except asyncio.QueueFull:
                self._resync(client)

    def _resync(self, client: Client) -> None:
        lost = 1  # the message that did not fit
        while not client.queue.empty():
            client.queue.get_nowait()
            lost += 1
        client.queue.put_nowait(RESYNC)
        self.stats["dropped"] += lost
        self.stats["resyncs"] += 1
        log_limited(log, logging.WARNING, "dashboard.slow_client", f"dashboard: a client fell {lost} messages "
                    "behind; it gets a fresh snapshot", extra={"dropped": lost})  # fmt: skip

    def join(self, snapshot: Callable[[], dict[str, Any]]) -> tuple[Client, dict[str, Any]] | None:
        """On the loop: register a client and take its starting snapshot in the same step (so every delta
        numbered after the snapshot reaches its queue).  None when ``max_clients`` are connected."""
        if len(self.clients) >= self.max_clients:
            self.stats["refused_busy"] += 1
            return None
        self.loop = asyncio.get_running_loop()
        client = Client(self.queue_size)
        self.clients.add(client)
        self.stats["connections"] += 1
        self.stats["clients"] = len(self.clients)
        return client, snapshot()

    def leave(self, client: Client) -> None:
        self.clients.discard(client)
        self.stats["clients"] = len(self.clients)
