"""The node's dashboard's copy of each strategy's state, kept from the strategy's relay (docs/dashboard.md, "A
node's dashboard").

:class:`StrategyMirror` holds what a :class:`~hkrt.dashboard.state.DashboardState` holds, built from the relay's
snapshot and numbered changes (:mod:`hkrt.dashboard.relay`), with the same bounds (bars per series, series,
done orders, trades, equity points): it answers the browsers' snapshots and hands each change it applies to
its ``listener`` (the web server's fan-out) with the strategy's own number, so a browser sees one strategy's
stream exactly as a single strategy's dashboard sends it.  When the mirror starts again from a snapshot (the
first one, a strategy restarted, a reader that fell behind the relay's ring) its listener gets
:data:`~hkrt.dashboard.hub.RESYNC`: every browser of that strategy gets a fresh snapshot.

:class:`RelayReader` polls each strategy's relay from a thread of its own (every ``poll`` seconds, at once again
while changes come), on a REQ socket per relay with timeouts: a strategy that is down or restarting is shown as not
connected and asked again, never waited on.  Losses are counted in each mirror's ``stats`` (``lost``:
changes the relay no longer had; ``gaps``: a reply that did not follow on, answered by a snapshot) with a
rate-limited WARNING.
"""

from __future__ import annotations

import collections
import json
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from hkrt.core.logs import log_limited
from hkrt.dashboard.hub import RESYNC
from hkrt.dashboard.picture import Picture
from hkrt.dashboard.relay import MAX_REPLY_BYTES, VERSION
from hkrt.dashboard.state import DEFAULT_KTYPES, Message

log = logging.getLogger("hkrt.dashboard")

MAX_WATCHED = 32  # series a mirror asks forming bars for (the relay takes as many)


class StrategyMirror(Picture):
    """One strategy's state as its relay last said (see the module docstring); ``bounds`` as
    :class:`~hkrt.dashboard.picture.Picture`'s."""

    def __init__(self, name: str, **bounds: Any) -> None:
        super().__init__(**bounds)
        self.name = name
        self._bounds = bounds
        self.listener: Callable[[Message], None] | None = None
        self._lock = threading.Lock()
        self.seq = 0
        self.epoch: str | None = None  # the relay's numbering this mirror follows; None before a snapshot
        self.connected = False
        self.stats.update(deltas=0, snapshots=0, lost=0, gaps=0, errors=0)
        self._watched: collections.Counter[tuple[str, str]] = collections.Counter()
        self._reset({})

    def _reset(self, data: Mapping[str, Any]) -> None:
        Picture.__init__(self, **self._bounds, stats=self.stats)
        self._info = {"strategy": data.get("strategy", self.name), "symbols": list(data.get("symbols", [])),
                      "ktypes": list(data.get("ktypes", DEFAULT_KTYPES))}  # fmt: skip
        for s in data.get("bars", []):
            for bar in s["bars"]:
                self.put_bar((s["symbol"], s["ktype"]), bar)
        self._forming.update({(f["symbol"], f["ktype"]): f["bar"] for f in data.get("forming", [])})
        self._indicator_panes.update(data.get("indicators", {}))
        for row in data.get("orders", []):
            self.put_order(row)
        self._trades.extend(data.get("trades", []))
        self._equity.extend(data.get("equity", []))
        self._plain = {k: data.get(k, default) for k, default in (("positions", []), ("account", {}),
                       ("risk", {"state": "?", "reason": ""}), ("health", {"status": "?", "reasons": []}),
                       ("feed", {"market_time": None, "cycles": 0, "gaps": 0, "last_event": ""}))}  # fmt: skip

    # ----------------------------------------------------------- from the relay
    def apply_snapshot(self, epoch: str, snapshot: Message, lost: int = 0) -> None:
        """Start again from the relay's whole state (numbered ``snapshot["seq"]`` in ``epoch``)."""
        with self._lock:
            self._reset(snapshot.get("data") or {})
            self.seq, self.epoch = int(snapshot["seq"]), epoch
            self.stats["snapshots"] += 1
            self.stats["lost"] += lost
            if self.listener is not None:
                self.listener(RESYNC)

    def apply_deltas(self, epoch: str, deltas: list[Message]) -> bool:
        """Apply the relay's changes in order; False (nothing applied past the hole) when they do not follow on
        from :attr:`seq` in :attr:`epoch`: the caller asks for a snapshot."""
        with self._lock:
            if epoch != self.epoch:
                return False
            for delta in deltas:
                seq = int(delta["seq"])
                if seq <= self.seq:
                    continue
                if seq != self.seq + 1:
                    self.stats["gaps"] += 1
                    return False
                self._apply(delta["kind"], delta["data"])
                self.seq = seq
                self.stats["deltas"] += 1
                if self.listener is not None:
                    self.listener(delta)
            return True

    def _apply(self, kind: str, data: Any) -> None:
        if kind in ("bar", "forming"):
            key = (data["symbol"], data["ktype"])
            if kind == "forming":
                self._forming[key] = data["bar"]
            else:
                self.put_bar(key, data["bar"])
        elif kind == "indicators":
            self._indicator_panes.update(data)
        elif kind == "order":
            self.put_order(data)
        elif kind == "trade":
            self._trades.append(data)
        elif kind == "equity":
            self._equity.append(data)
        elif kind in self._plain:
            self._plain[kind] = data

    # ------------------------------------------------------------ to browsers
    def snapshot(self) -> Message:
        """The whole state in a single strategy's dashboard's snapshot shape, with the number it was taken at."""
        with self._lock:
            return {
                "type": "snapshot",
                "seq": self.seq,
                "data": {
                    **self._info,
                    **self.picture(),
                    **self._plain,
                },
            }

    @property
    def risk_state(self) -> str:
        return str(self._plain["risk"].get("state", "?"))

    def watch(self, old: tuple[str, str] | None, new: tuple[str, str] | None) -> tuple[str, str] | None:
        """A browser shows series ``new`` instead of ``old`` (as :meth:`DashboardState.watch`): the relay is
        asked for the forming bar of the series shown."""
        with self._lock:
            if new is not None and (new[0] not in self._info["symbols"] or new[1] not in self._info["ktypes"]
                                    or (new not in self._watched and len(self._watched) >= MAX_WATCHED)):  # fmt: skip
                return old  # not a series of this strategy (as far as its last snapshot says), or too many
            if old is not None:
                self._watched[old] -= 1
                if self._watched[old] <= 0:
                    del self._watched[old]
            if new is not None:
                self._watched[new] += 1
        return new

    def watched(self) -> list[list[str]]:
        with self._lock:
            return [list(k) for k in self._watched]


class RelayReader:
    """Polls the relays ``{name: address}`` into ``mirrors``, a thread per relay (a strategy that is down costs
    its own thread's timeouts, never another's updates), until :meth:`stop`."""

    def __init__(self, mirrors: Mapping[str, StrategyMirror], addresses: Mapping[str, str], *, poll: float = 0.1,
                 timeout: float = 2.0) -> None:  # fmt: skip
        self.mirrors = dict(mirrors)
        self.addresses = dict(addresses)
        self.poll = poll
        self.timeout = timeout
        self._sockets: dict[str, Any] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, args=(name,), name=f"hkrt-dashboard-reader-{name}",
                                          daemon=True) for name in self.mirrors]  # fmt: skip

    def start(self) -> RelayReader:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for sock in list(self._sockets.values()):  # an ask waiting for its answer ends (Closed) at once
            sock.close()
        for thread in self._threads:
            thread.join(self.timeout + 5.0)
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()

    def _socket(self, name: str) -> Any:
        import pynng

        sock = self._sockets.get(name)
        if sock is None:
            ms = int(self.timeout * 1000)
            sock = pynng.Req0(recv_timeout=ms, send_timeout=ms, resend_time=0)
            sock.recv_max_size = MAX_REPLY_BYTES
            sock.dial(self.addresses[name], block=False)  # a relay not up yet: nng redials by itself
            self._sockets[name] = sock
        return sock

    def _run(self, name: str) -> None:
        mirror = self.mirrors[name]
        while not self._stop.is_set():
            try:
                busy = self.read(name, mirror)
            except Exception:  # a defect costs this poll, never the reader
                busy = False
                mirror.stats["errors"] += 1
                log_limited(log, logging.WARNING, ("dashboard.reader", name),
                            f"dashboard: reading strategy {name}'s relay failed", exc_info=True)  # fmt: skip
            if not busy:
                self._stop.wait(self.poll)

    def read(self, name: str, mirror: StrategyMirror) -> bool:
        """One ask of ``name``'s relay applied to ``mirror``; True when changes came (ask again at once)."""
        import pynng

        after = mirror.seq if mirror.epoch is not None else None
        request = {"v": VERSION, "epoch": mirror.epoch, "after": after, "watch": mirror.watched()}
        sock = self._socket(name)
        try:
            sock.send(json.dumps(request).encode("utf-8"))
            reply = json.loads(sock.recv().decode("utf-8"))
        except pynng.NNGException as err:
            if self._stop.is_set():
                return False
            if mirror.connected:
                log.warning("dashboard: strategy %s's relay does not answer (%s)", name, err, extra={"strategy": name})
            mirror.connected = False
            if isinstance(err, pynng.Timeout):  # a fresh socket: a late answer must not pass for the next one
                self._sockets.pop(name).close()
            return False
        if not isinstance(reply, dict) or "error" in reply or "epoch" not in reply:
            mirror.stats["errors"] += 1
            log_limited(log, logging.WARNING, ("dashboard.reply", name), f"dashboard: strategy {name}'s relay "
                        f"answered {str(reply)[:200]}")  # fmt: skip
            return False
        if not mirror.connected:
            log.info("dashboard: following strategy %s", name, extra={"strategy": name})
        mirror.connected = True
        if "snapshot" in reply:
            lost = int(reply.get("lost") or 0)
            if lost:
                log_limited(log, logging.WARNING, ("dashboard.lost", name), f"dashboard: {lost} changes of strategy "
                            f"{name} were lost (the relay's ring had moved on): started again from a snapshot",
                            {"strategy": name, "lost": lost})  # fmt: skip
            mirror.apply_snapshot(reply["epoch"], reply["snapshot"], lost)
            return True
        deltas = reply.get("deltas") or []
        if not mirror.apply_deltas(reply["epoch"], deltas):
            log_limited(log, logging.WARNING, ("dashboard.gap", name), f"dashboard: strategy {name}'s changes did "
                        "not follow on: asking for a snapshot", {"strategy": name})  # fmt: skip
            mirror.epoch = None  # the next ask is for a snapshot
            return True
        return bool(deltas)
