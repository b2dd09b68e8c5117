"""A fake of xtquant's native ``datacenter`` module, so the real ``xtquant.xtdata`` runs on Linux.

The PyPI wheel of xtquant ships its Python layer (``xtdata.py``, ``xtconn.py``,
``xtdatacenter.py``, the ``xtbson`` codec) but its native core only as Windows ``.pyd`` files,
so ``import xtquant.xtdata`` fails on Linux at ``from . import datacenter``.  This module puts a
pure-Python stand-in for that native module into ``sys.modules['xtquant.datacenter']`` and then
imports the **unmodified** ``xtquant.xtdata``.  Everything above the native boundary is xtquant's
own code: the connection scan in ``xtconn``, ``get_full_tick``'s JSON parsing, the subscription
callback wrapper that decodes BSON ``bytes`` and swallows callback exceptions, and
``unsubscribe_quote``.  (See the research note ``xtquant_easytrader.md`` §3 and §7.5.)

What the fake native module does, as the real one is documented and observed to do:

* ``IPythonApiClient.get_full_tick(code_list)`` answers a **JSON string** ``{code: tick}`` for
  the known codes among ``code_list``; a market code (``"SH"``) stands for all of its codes and
  unknown codes are left out of the answer.
* ``IPythonApiClient.subscribe_whole_quote(code_list, param_bson, callback)`` returns a
  sequence number > 0 (or -1 on failure); later (from the pusher thread, or from ``push()``) it
  calls ``callback(bytes)`` with the BSON encoding (plain ``bytes``, as xtdata's wrapper decodes only
  ``type(datas) == bytes``) of ``{code: tick}``: first the current snapshot of every
  subscribed code, afterwards only the codes whose tick changed.
* ``unsubscribe_quote(seq)`` ends a subscription and returns ``None``.

The test controls the market (:meth:`FakeMiniQmt.set_ticks`) and the delivery: :meth:`push`
delivers pending ticks synchronously, :meth:`start_pushing` runs a pusher thread like the
native one.  Faults: :meth:`pause` / :meth:`resume` (the feed goes silent), :meth:`drop_subscriptions`
(a quote-server switch after which existing subscriptions silently stop, while new ones work),
:meth:`disconnect` (xtdata reconnects on its next call), ``fail_subscribe`` (subscribe answers -1)
and ``accept_connections = False`` (QMT not running).

Use::

    server = FakeMiniQmt({"600000.SH": make_tick(...)})
    xtdata = install(server)          # the real xtquant.xtdata over the fake native module
    ...
    uninstall()

The seam is internal to xtquant and undocumented; it is written against xtquant 250807.1.2.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib
import json
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from hkrt.core.china_time import CHINA_TZ

__all__ = [
    "FakeMiniQmt",
    "china_ms",
    "import_xtquant_quietly",
    "install",
    "installed",
    "make_tick",
    "uninstall",
]

_MARKETS = ("SH", "SZ", "BJ")
# Modules that hold a reference to the (fake) native module once imported: dropped on (un)install.
_DEPENDENT_MODULES = ("xtquant.xtdata", "xtquant.xtdatacenter", "xtquant.xtconn")
_CHINA = CHINA_TZ


def china_ms(when: dt.datetime) -> int:
    """The UTC epoch milliseconds of a naive China local time, as xtquant's ``time`` field carries it."""
    return int(when.replace(tzinfo=_CHINA).timestamp() * 1000)


def make_tick(
    when: dt.datetime,
    last_price: float,
    *,
    volume: int,
    pvolume: int | None = None,
    amount: float | None = None,
    open: float | None = None,
    high: float | None = None,
    low: float | None = None,
    last_close: float | None = None,
    bid_price: Iterable[float] | None = None,
    ask_price: Iterable[float] | None = None,
    bid_vol: Iterable[int] | None = None,
    ask_vol: Iterable[int] | None = None,
    stock_status: int = 3,
    timetag: bool = False,
) -> dict[str, Any]:
    """A tick dict with the field set of xtquant's whole-quote push (docstring sample of 2024-12-02).

    ``when`` is naive China local time; ``volume`` is in lots as xtquant sends it, ``pvolume``
    defaults to ``volume * 100`` (shares, the stock case) and ``amount`` (yuan) to
    ``pvolume * last_price``.  ``timetag=True`` adds the ``'YYYYMMDD HH:MM:SS'`` string that
    ``get_full_tick`` answers also carry.
    """
    pvolume = volume * 100 if pvolume is None else pvolume
    amount = round(pvolume * last_price, 2) if amount is None else amount
    last_close = last_price if last_close is None else last_close
    tick: dict[str, Any] = {
        "time": china_ms(when),
        "lastPrice": last_price,
        "open": last_price if open is None else open,
        "high": last_price if high is None else high,
        "low": last_price if low is None else low,
        "lastClose": last_close,
        "amount": float(amount),
        "volume": int(volume),
        "pvolume": int(pvolume),
        "stockStatus": stock_status,
        "openInt": 13,
        "transactionNum": 0,
        "lastSettlementPrice": last_close,
        "settlementPrice": 0.0,
        "pe": 0.0,
        "askPrice": [float(p) for p in ask_price] if ask_price is not None else [0.0] * 5,
        "bidPrice": [float(p) for p in bid_price] if bid_price is not None else [0.0] * 5,
        "askVol": [int(v) for v in ask_vol] if ask_vol is not None else [0] * 5,
        "bidVol": [int(v) for v in bid_vol] if bid_vol is not None else [0] * 5,
        "volRatio": 0.0,
        "speed1Min": 0.0,
        "speed5Min": 0.0,
    }
    if timetag:
        tick["timetag"] = when.strftime("%Y%m%d %H:%M:%S")
    return tick


@dataclass
class _Subscription:
    seq: int
    code_list: list[str]
    callback: Callable[[bytes], Any] | None
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    alive: bool = True  # False: silently dead (a quote-server switch), never pushed again

    def covers(self, code: str) -> bool:
        return code in self.code_list or code.rpartition(".")[2] in self.code_list


class FakeMiniQmt:
    """The market and the behaviour of miniQMT as seen through xtquant's native ``datacenter``.

    Thread-safe: the test thread changes the market while a pusher thread delivers it.
    """

    def __init__(self, ticks: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self._lock = threading.RLock()
        self._ticks: dict[str, dict[str, Any]] = {}
        self._subs: dict[int, _Subscription] = {}
        self._next_seq = 1
        self._paused = False
        self._pusher: threading.Thread | None = None
        self._stop_pusher = threading.Event()
        self.connected = True  # what the native client's is_connected() answers
        self.accept_connections = True  # False: connect() fails, as with QMT not running
        self.fail_subscribe = False  # True: subscribe_whole_quote answers -1
        # What the native layer was asked, for assertions.
        self.addresses: list[str] = []  # addresses connect() was pointed at
        self.full_tick_requests: list[list[str]] = []
        self.subscribe_requests: list[list[str]] = []
        self.unsubscribed: list[int] = []
        self.pushes = 0  # callbacks delivered
        if ticks:
            self.set_ticks(ticks)

    # ------------------------------------------------------------------ the market
    def set_ticks(self, ticks: Mapping[str, Mapping[str, Any]]) -> None:
        """Set (or change) the current tick of some codes; live subscriptions get them on the next push."""
        with self._lock:
            for code, tick in ticks.items():
                snapshot = dict(tick)
                self._ticks[code] = snapshot
                for sub in self._subs.values():
                    if sub.covers(code):
                        sub.pending[code] = snapshot

    def ticks(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return dict(self._ticks)

    def _expand(self, code_list: Iterable[str]) -> list[str]:
        out: list[str] = []
        for code in code_list:
            if code in _MARKETS:
                out.extend(c for c in self._ticks if c.endswith("." + code))
            elif code in self._ticks:
                out.append(code)
        return list(dict.fromkeys(out))

    # ------------------------------------------------------------------ delivery
    def push(self) -> int:
        """Deliver every live subscription's pending ticks now, in this thread; returns the callbacks made."""
        from xtquant.xtbson import BSON  # the codec xtdata decodes with

        with self._lock:
            if self._paused or not self.connected:
                return 0
            batches = []
            for sub in self._subs.values():
                if sub.alive and sub.pending and sub.callback is not None:
                    batches.append((sub.callback, sub.pending))
                    sub.pending = {}
        for callback, payload in batches:  # outside the lock, as a native thread would
            callback(bytes(BSON.encode(payload)))
        with self._lock:
            self.pushes += len(batches)
        return len(batches)

    def start_pushing(self, interval: float = 0.01) -> None:
        """Push every ``interval`` seconds from a background thread, like the native quote thread."""
        if self._pusher is not None:
            return
        self._stop_pusher.clear()

        def run() -> None:
            while not self._stop_pusher.wait(interval):
                self.push()

        self._pusher = threading.Thread(target=run, name="fake-xtquant-push", daemon=True)
        self._pusher.start()

    def stop_pushing(self) -> None:
        if self._pusher is None:
            return
        self._stop_pusher.set()
        self._pusher.join(5)
        self._pusher = None

    def pause(self) -> None:
        """The feed goes silent: nothing is pushed (changes pile up) until :meth:`resume`."""
        with self._lock:
            self._paused = True

    def resume(self) -> None:
        with self._lock:
            self._paused = False

    def drop_subscriptions(self) -> None:
        """A quote-server switch: existing subscriptions stay registered but never push again."""
        with self._lock:
            for sub in self._subs.values():
                sub.alive = False

    def disconnect(self) -> None:
        """The connection to miniQMT is lost: ``is_connected()`` is False and nothing is pushed."""
        with self._lock:
            self.connected = False

    # ------------------------------------------------------------------ inspection
    def live_subscriptions(self) -> dict[int, list[str]]:
        """Registered, not unsubscribed subscriptions (alive or silently dead): seq -> code_list."""
        with self._lock:
            return {seq: list(sub.code_list) for seq, sub in self._subs.items()}

    # ------------------------------------------------------------------ native entry points
    def _full_tick(self, code_list: list[str]) -> str:
        with self._lock:
            self.full_tick_requests.append(list(code_list))
            return json.dumps({code: self._ticks[code] for code in self._expand(code_list)})

    def _subscribe_whole(self, code_list: list[str], callback: Callable[[bytes], Any] | None) -> int:
        with self._lock:
            self.subscribe_requests.append(list(code_list))
            if self.fail_subscribe or not self.connected:
                return -1
            seq = self._next_seq
            self._next_seq += 1
            sub = _Subscription(seq, list(code_list), callback)
            # "订阅后会首先返回当前最新的全推数据": the current snapshot is pushed first.
            sub.pending = {code: self._ticks[code] for code in self._expand(code_list)}
            self._subs[seq] = sub
            return seq

    def _unsubscribe(self, seq: int) -> None:
        with self._lock:
            self.unsubscribed.append(seq)
            self._subs.pop(seq, None)


# ---------------------------------------------------------------------- the fake native module
def _make_datacenter_module(server: FakeMiniQmt) -> types.ModuleType:
    from xtquant.xtbson import BSON

    module = types.ModuleType("xtquant.datacenter", "hkrt's fake of xtquant's native datacenter module")
    module.__file__ = __file__
    module._server = server  # type: ignore[attr-defined]
    created_arrays: list[Callable[..., Any]] = []

    class IPythonApiClient:
        """The native client xtconn creates per connection attempt."""

        def __init__(self) -> None:
            self._server = server
            self._addr = ""
            self._connected = False
            self._callbacks: dict[str, Any] = {}

        def init(self) -> int:
            return 0

        def load_config(self, file: str, section: str) -> int:
            return 0

        def set_config_addr(self, addr: str) -> None:
            self._addr = addr

        def registerCommonControlCallback(self, name: str, callback: Any) -> None:
            self._callbacks[name] = callback

        def connect(self) -> tuple[int, str]:
            self._server.addresses.append(self._addr)
            if not self._server.accept_connections:
                return -1, "connection refused"
            self._server.connected = True
            self._connected = True
            return 0, ""

        def is_connected(self) -> bool:
            return self._connected and self._server.connected

        def shutdown(self) -> None:
            self._connected = False

        def get_data_dir(self) -> str:
            return ""

        def get_app_dir(self) -> str:
            return "/nonexistent/fake-miniqmt"

        def get_server_tag(self) -> bytes:
            return bytes(BSON.encode({"tag": "hkrt fake miniQMT", "version": "0"}))

        def get_peer_addr(self) -> str:
            return self._addr

        def commonControl(self, func: str, param: bytes) -> bytes:
            BSON.decode(param)  # the real one takes BSON too
            answers: dict[str, dict[str, Any]] = {"getapiversion": {"downloadversion": 0}}
            return bytes(BSON.encode(answers.get(func, {})))

        def get_full_tick(self, code_list: list[str]) -> str:
            return self._server._full_tick(list(code_list))

        def subscribe_whole_quote(self, code_list: list[str], param: bytes, callback: Any) -> int:
            if not isinstance(code_list, list) or not isinstance(BSON.decode(param), dict):
                return -1
            return self._server._subscribe_whole(code_list, callback)

        def subscribe_quote(self, meta: bytes, region: bytes, param: bytes, callback: Any) -> int:
            return -1  # per-code subscriptions are not modelled (hkrt uses the whole-quote push)

        def unsubscribe_quote(self, seq: int) -> None:
            self._server._unsubscribe(seq)

    def rpc_init(config_dir: str) -> int:
        return 0

    def get_local_server_port() -> int:
        return 0

    def register_create_nparray(func: Callable[..., Any]) -> None:
        created_arrays.append(func)

    module.IPythonApiClient = IPythonApiClient  # type: ignore[attr-defined]
    module.rpc_init = rpc_init  # type: ignore[attr-defined]
    module.get_local_server_port = get_local_server_port  # type: ignore[attr-defined]
    module.register_create_nparray = register_create_nparray  # type: ignore[attr-defined]
    return module


def import_xtquant_quietly() -> types.ModuleType:
    """``import xtquant`` without its update check (an HTTP request to pypi.org with a 10 s timeout)."""
    if "xtquant" in sys.modules and sys.modules["xtquant"] is not None:
        return sys.modules["xtquant"]
    saved = sys.modules.get("requests", None)
    had = "requests" in sys.modules
    sys.modules["requests"] = None  # type: ignore[assignment]  # makes the check's `import requests` fail
    try:
        return importlib.import_module("xtquant")
    finally:
        if had:
            sys.modules["requests"] = saved  # type: ignore[assignment]
        else:
            del sys.modules["requests"]


def _drop_modules() -> None:
    package = sys.modules.get("xtquant")
    for name in ("xtquant.datacenter", *_DEPENDENT_MODULES):
        sys.modules.pop(name, None)
        if package is not None:
            with contextlib.suppress(AttributeError):
                delattr(package, name.rpartition(".")[2])


def install(server: FakeMiniQmt | None = None) -> types.ModuleType:
    """Put a fake native ``datacenter`` for ``server`` under ``xtquant`` and return the real ``xtquant.xtdata``.

    Needs the xtquant wheel installed (``pip install xtquant``).  A fresh ``xtquant.xtdata`` is
    imported on each call, so no connection or subscription outlives the previous server.
    """
    server = server if server is not None else FakeMiniQmt()
    package = import_xtquant_quietly()
    _drop_modules()
    module = _make_datacenter_module(server)
    sys.modules["xtquant.datacenter"] = module
    package.datacenter = module  # type: ignore[attr-defined]
    xtdata = importlib.import_module("xtquant.xtdata")
    xtdata.enable_hello = False
    return xtdata


def uninstall() -> None:
    """Remove the fake native module and the xtquant modules imported over it."""
    _drop_modules()


@contextlib.contextmanager
def installed(server: FakeMiniQmt | None = None) -> Iterator[tuple[FakeMiniQmt, types.ModuleType]]:
    """``with installed(server) as (server, xtdata): ...``; stops the pusher and uninstalls on exit."""
    server = server if server is not None else FakeMiniQmt()
    xtdata = install(server)
    try:
        yield server, xtdata
    finally:
        server.stop_pushing()
        uninstall()
