"""A strategy's dashboard stream served to another process: the node's dashboard (docs/dashboard.md, "A node's
dashboard").

:class:`RelayServer` runs in the strategy's process (``hkrt run --dashboard-relay ADDRESS``): the strategy's
:class:`~hkrt.dashboard.state.DashboardState`, a bounded ring of its numbered changes, and an nng reply socket
at ``ADDRESS`` (ipc, owner-only) that a reader (:mod:`hkrt.dashboard.mirror`) polls.  One request, one reply,
JSON both ways::

    request  {"v": 1, "epoch": E | null, "after": N | null, "watch": [[symbol, ktype], ...]}
    reply    {"v": 1, "epoch": E, "seq": S, "deltas": [...]}           the changes numbered after N, in order
             {"v": 1, "epoch": E, "seq": S, "snapshot": {...}, "lost": L}   the whole state instead

A snapshot answers a reader's first ask (``after`` null), an ``epoch`` that is not this process's (the
strategy restarted: its numbers started again), and an ``after`` older than the ring keeps (the reader fell
more than ``ring_size`` changes behind: ``lost`` of them are counted here and by the reader, and it goes on
from the snapshot).  ``watch`` names the series the reader's browsers show, whose forming bar the state then
reads (at most ``MAX_WATCH``).

Why a polled reply socket rather than a publisher: the reader's position is known at the source, so a reader
that lagged is told exactly what it lost and a short gap costs only the missing changes, never a full
snapshot; nothing is lost in transit unseen; the strategy keeps no per-reader state and never waits on one
(the ring is filled on the callback thread, the socket served by a thread of its own); and the reader's
restart needs nothing from the strategy's side.  The cost is the reader's poll period (0.1 s) of latency.

Bounds: the ring holds ``ring_size`` changes (the oldest leave; a reader behind them gets a snapshot); a reply
carries at most ``MAX_DELTAS_PER_REPLY`` changes (the rest at the next ask); a request over
``MAX_REQUEST_BYTES`` is refused.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import secrets
import threading
from typing import TYPE_CHECKING, Any

from hkrt.core.logs import log_limited
from hkrt.dashboard.state import DashboardState, Message
from hkrt.feed.reply_loop import serve_replies

if TYPE_CHECKING:
    import pynng

    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.dashboard")

VERSION = 1
MAX_DELTAS_PER_REPLY = 2000
MAX_WATCH = 32
MAX_REQUEST_BYTES = 64 * 1024
MAX_REPLY_BYTES = 256 << 20  # a snapshot at the state's default bounds is far smaller; a reader accepts this much


def encode(message: dict[str, Any]) -> bytes:
    from hkrt.dashboard.wire import dumps

    return dumps(message).encode("utf-8")


class RelayServer:
    """Serve ``strategy``'s dashboard stream at ``address`` until :meth:`stop` (see the module docstring)."""

    def __init__(self, strategy: Strategy, address: str, *, ring_size: int = 10_000, **bounds: Any) -> None:
        self.address = address
        self.state = DashboardState(strategy, **bounds)
        self.epoch = secrets.token_hex(8)  # this process's numbering: a restarted strategy has another
        self._ring: collections.deque[Message] = collections.deque(maxlen=ring_size)
        self._ring_lock = threading.Lock()
        self._watched: set[tuple[str, str]] = set()
        self.stats = {"requests": 0, "snapshots": 0, "lagged": 0, "lost": 0, "bad_requests": 0}
        self._stop = threading.Event()
        self._socket: pynng.Rep0 | None = None
        self._thread: threading.Thread | None = None
        self.state.listener = self._keep

    def _keep(self, message: Message) -> None:
        """Under the state's lock, in number order: into the ring (a deque drops the oldest itself)."""
        with self._ring_lock:
            self._ring.append(message)

    def start(self) -> RelayServer:
        import pynng

        sock = pynng.Rep0(recv_timeout=200, send_timeout=1000)
        sock.recv_max_size = MAX_REQUEST_BYTES
        try:
            sock.listen(self.address)
        except pynng.NNGException:
            sock.close()
            self.state.close()
            raise
        if self.address.startswith("ipc://") and os.name == "posix":
            os.chmod(self.address[len("ipc://") :], 0o600)  # the owner's alone, wherever the path is
        self._socket = sock
        self._thread = threading.Thread(target=self._serve, name="hkrt-dashboard-relay", daemon=True)
        self._thread.start()
        log.info("dashboard relay at %s", self.address, extra={"strategy": self.state.strategy.name})
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        if self._socket is not None:
            self._socket.close()
        self.state.close()

    def __enter__(self) -> RelayServer:
        return self.start() if self._socket is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --------------------------------------------------------------- serving
    def _serve(self) -> None:
        assert self._socket is not None
        serve_replies(self._socket, self._stop, self._reply)

    def _reply(self, data: bytes) -> bytes:
        """The encoded answer to one request; a bad or failing request is an error reply, never an exception."""
        try:
            return encode(self.answer(json.loads(data.decode("utf-8"))))
        except (ValueError, TypeError, KeyError) as err:
            self.stats["bad_requests"] += 1
            log_limited(log, logging.WARNING, "dashboard.relay.bad", f"dashboard relay: a bad request: {err}",
                        {"bad_requests": self.stats["bad_requests"]})  # fmt: skip
            return encode({"v": VERSION, "error": f"bad request: {err}"})
        except Exception as err:  # a defect costs this request, never the relay
            log.exception("dashboard relay: a request failed")
            return encode({"v": VERSION, "error": f"{type(err).__name__}: {err}"})

    def answer(self, request: Any) -> dict[str, Any]:
        """The reply to one request (a dict; see the module docstring).  Raises ValueError on a bad one."""
        if not isinstance(request, dict) or request.get("v") != VERSION:
            raise ValueError(f"not a version {VERSION} request")
        self.stats["requests"] += 1
        self._set_watched(request.get("watch") or [])
        after = request.get("after")
        if after is not None and (isinstance(after, bool) or not isinstance(after, int)):
            raise ValueError(f"after must be a whole number, not {after!r}")
        if after is not None and request.get("epoch") == self.epoch:
            with self._ring_lock:
                newest = self._ring[-1]["seq"] if self._ring else self.state.seq
                oldest = self._ring[0]["seq"] if self._ring else newest + 1
                if after >= newest or after >= oldest - 1:  # nothing new, or all of it still in the ring
                    start = len(self._ring) - (newest - after) if after < newest else len(self._ring)
                    deltas = [self._ring[i] for i in range(start, min(len(self._ring), start + MAX_DELTAS_PER_REPLY))]
                    return {"v": VERSION, "epoch": self.epoch, "seq": newest, "deltas": deltas}
            lost = oldest - 1 - after
            self.stats["lagged"] += 1
            self.stats["lost"] += lost
            log_limited(log, logging.WARNING, "dashboard.relay.lag", f"dashboard relay: a reader fell {lost} "
                        "changes behind the ring; it gets a snapshot", {"lost": lost})  # fmt: skip
        else:
            lost = 0
        snapshot = self.state.snapshot()
        self.stats["snapshots"] += 1
        return {"v": VERSION, "epoch": self.epoch, "seq": snapshot["seq"], "snapshot": snapshot, "lost": lost}

    def _set_watched(self, wanted: Any) -> None:
        if not isinstance(wanted, list):
            raise ValueError("watch must be a list of [symbol, ktype]")
        now: set[tuple[str, str]] = set()
        for item in wanted[:MAX_WATCH]:
            if isinstance(item, (list, tuple)) and len(item) == 2:
                now.add((str(item[0]), str(item[1])))
        for gone in self._watched - now:
            self.state.watch(gone, None)
        for new in now - self._watched:
            if self.state.watch(None, new) is None:
                now.discard(new)  # not a series of this strategy
        self._watched = now
