"""A fake of xtquant's native ``xtpythonclient`` module, so the real ``xtquant.xttrader`` runs on Linux.

``xtquant/xttrader.py`` (the PyPI wheel's pure-Python layer) starts with
``from . import xtpythonclient``, a Windows-only ``.pyd``.  This module puts a pure-Python
stand-in under ``sys.modules['xtquant.xtpythonclient']`` and imports the **unmodified**
``xtquant.xttrader`` over it, so everything above the native boundary is xtquant's own code:
the seq -> Future bookkeeping of the synchronous calls, the single-worker executor that runs
every push, the reordering of ``on_order_error`` against the order response, and the wrapping of
responses into ``XtOrderResponse`` / ``XtCancelOrderResponse``.

What the fake native client (``XtQuantAsyncClient(path_bytes, "xtquant", session)``) does, as
``xttrader.py`` expects of the real one (xtquant 250807.1.2):

* ``bindOn<Name>Callback(fn)`` for every callback xttrader binds (kept by name; any name accepted).
* ``init()``, ``start()`` (starts the "native" thread that delivers every answer and push),
  ``stop()``, ``connect()`` -> 0 or -1, ``nextSeq()``, ``setTimeout(ms)`` (recorded only).
* ``<request>WithSeq(seq, req)`` returns at once; the answer comes later on the native thread:
  ``subscribe`` -> ``SubscribeResp(seq, 0 | -1)``; ``queryStockAsset`` -> ``(seq, [XtAsset])``
  (``[]`` when the query fails: xttrader then returns None); ``queryStockPositions`` /
  ``queryStockOrders`` / ``queryStockTrades`` -> ``(seq, list)``; ``orderStock`` ->
  ``OrderStockResp(seq, resp)`` with ``m_nOrderID`` (> 0, or -1 with ``m_strErrorMsg``);
  ``cancelOrderStock`` -> ``CancelOrderStockResp(seq, resp)`` with ``m_nCancelResult`` 0 / -1.
* Pushes: ``StockOrder`` (XtOrder), ``StockTrade``, ``StockAsset``, ``StockPosition``,
  ``OrderError`` (XtOrderError with the order's ``seq``, which xttrader reads), ``CancelError``,
  ``Disconnected``.

The account (:class:`FakeQmtAccount`): cash and positions.  An accepted order freezes its cash
(buy) or shares (sell) and is pushed as waiting (``ORDER_WAIT_REPORTING`` 49), then reported
(``ORDER_REPORTED`` 50); with ``auto_fill`` it fills at once at its limit price (``FIX_PRICE``) or the
code's ``last_prices`` entry (any other price type): a trade push, ``ORDER_SUCCEEDED``, then asset and
position pushes.  ``fill(order_id, volume, price)`` trades part of a pending order (``ORDER_PART_SUCC``
55; the trade push comes before the order push, or after it with ``order_push_first``); a cancel is
pushed as ``ORDER_REPORTED_CANCEL`` 51 / ``ORDER_PARTSUCC_CANCEL`` 52, then ``ORDER_CANCELED`` 54 /
``ORDER_PART_CANCEL`` 53; ``junk(order_id, msg)`` is the exchange refusing a reported order
(``ORDER_JUNK`` 57 with its ``status_msg``, no ``on_order_error``).  No fees.  T+1: bought shares
are not sellable (``can_use_volume``) until :meth:`FakeQmtAccount.new_day`.  A buy without the
cash or a sell without sellable shares gets an order id, then ``on_order_error`` and an
``ORDER_JUNK`` order, as a counter's rejection does; an order the client itself cannot place
(unknown account, zero volume, not connected, ``refuse_orders``) is answered with order id -1.
``error_before_response`` delivers the rejection before the order response, the race xttrader's
queuing code exists for.

Use::

    account = FakeQmtAccount("1000000365", cash=100_000)
    with installed(account) as xttrader:      # the real xtquant.xttrader over the fake
        trader = xttrader.XtQuantTrader(r"D:\\qmt\\userdata_mini", 123456)

The seam is internal to xtquant and undocumented; it is written against xtquant 250807.1.2.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import queue
import sys
import threading
import time
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fake_xtquant import import_xtquant_quietly

__all__ = ["FakeQmtAccount", "FakeQmtOrder", "install", "installed", "positions_of", "uninstall"]

# xtconstant values (checked against the wheel by the tests)
STOCK_BUY, STOCK_SELL = 23, 24
FIX_PRICE = 11
SECURITY_ACCOUNT = 2
ORDER_REPORTED, ORDER_CANCELED, ORDER_PART_CANCEL, ORDER_PART_SUCC, ORDER_SUCCEEDED, ORDER_JUNK = 50, 54, 53, 55, 56, 57
ORDER_WAIT_REPORTING, ORDER_REPORTED_CANCEL, ORDER_PARTSUCC_CANCEL = 49, 51, 52
_CANCELABLE = {48, 49, 50, ORDER_PART_SUCC}


@dataclass
class _Holding:
    volume: int
    can_use_volume: int
    avg_price: float
    last_price: float
    yesterday_volume: int = 0
    frozen_volume: int = 0


@dataclass
class FakeQmtOrder:
    order_id: int
    stock_code: str
    order_type: int
    volume: int
    price_type: int
    price: float  # as sent
    fill_price: float  # the limit price, or the last price for other price types
    status: int
    strategy_name: str
    remark: str
    sysid: str
    traded_volume: int = 0
    status_msg: str = ""


@dataclass
class FakeQmtAccount:
    """The counter behind the fake client: one stock account, its cash, positions and orders."""

    account_id: str = "1000000365"
    cash: float = 100_000.0
    positions: dict[str, tuple[int, float]] = field(default_factory=dict)  # code -> (shares, avg price), sellable
    last_prices: dict[str, float] = field(default_factory=dict)
    auto_fill: bool = True
    error_before_response: bool = True
    accept_connections: bool = True
    fail_asset_query: bool = False
    fail_position_query: bool = False
    refuse_orders: str | None = None  # answer every order with -1 and this text
    order_push_first: bool = False  # a fill's order push before its trade push (default: the trade first)

    def __post_init__(self) -> None:
        self.lock = threading.RLock()
        self.frozen_cash = 0.0
        self.holdings: dict[str, _Holding] = {
            code: _Holding(int(n), int(n), float(p), float(p), yesterday_volume=int(n))
            for code, (n, p) in self.positions.items()
        }
        self.orders: dict[int, FakeQmtOrder] = {}
        self.trades: list[Any] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []  # (native call, request fields) in order
        self.clients: list[Any] = []
        self.timeouts: list[int] = []
        self._ids = itertools.count(1_082_130_433)  # QMT's ids are large ints
        self._trade_ids = itertools.count(1)

    # ------------------------------------------------------------------ test controls
    def new_day(self) -> None:
        """Settle T+1: every share held becomes sellable."""
        with self.lock:
            for h in self.holdings.values():
                h.can_use_volume = h.volume - h.frozen_volume
                h.yesterday_volume = h.volume

    def disconnect(self) -> None:
        """QMT goes away: every connected client gets ``on_disconnected``."""
        for client in list(self.clients):
            if client._connected:
                client._connected = False
                client._emit([("Disconnected", ())])

    # ------------------------------------------------------------------ native objects
    def asset(self) -> Any:
        from xtquant.xttype import XtAsset

        value = sum(h.volume * h.last_price for h in self.holdings.values())
        total = self.cash + self.frozen_cash + value
        return XtAsset(self.account_id, self.cash, self.frozen_cash, value, total, self.cash)

    def position(self, code: str) -> Any:
        from xtquant.xttype import XtPosition

        h = self.holdings[code]
        rate = (h.last_price / h.avg_price - 1.0) if h.avg_price else 0.0
        return XtPosition(
            self.account_id, code, h.volume, h.can_use_volume, h.avg_price, h.volume * h.last_price,
            h.frozen_volume, 0, h.yesterday_volume, h.avg_price, 48, h.last_price, rate, "A000000001", code,
        )  # fmt: skip

    def _xt_order(self, o: FakeQmtOrder) -> Any:
        from xtquant.xttype import XtOrder

        return XtOrder(
            self.account_id, o.stock_code, o.order_id, o.sysid, int(time.time()), o.order_type, o.volume,
            o.price_type, o.price, o.traded_volume, o.fill_price if o.traded_volume else 0.0, o.status,
            o.status_msg, o.strategy_name, o.remark, 48, 48 if o.order_type == STOCK_BUY else 49, "A000000001",
            o.stock_code,
        )  # fmt: skip

    # ------------------------------------------------------------------ requests (return the events)
    def order(self, seq: int, req: Any, connected: bool) -> list[tuple[str, tuple[Any, ...]]]:
        from xtquant.xttype import XtOrderError

        fields = {k: getattr(req, k) for k in vars(req)}
        with self.lock:
            self.requests.append(("orderStockWithSeq", fields))
            refusal = self._refusal(req, connected)
            if refusal:
                resp = _Resp(m_strAccountID=req.m_strAccountID, m_nOrderID=-1, m_strStrategyName=req.m_strStrategyName,
                             m_strOrderRemark=req.m_strOrderRemark, m_strErrorMsg=refusal)  # fmt: skip
                err = XtOrderError(req.m_strAccountID, -1, -1, refusal, req.m_strStrategyName, req.m_strOrderRemark)
                err.seq = seq
                return [("OrderStockResp", (seq, resp)), ("OrderError", (err,))]
            code, volume = req.m_strStockCode, int(req.m_nOrderVolume)
            fill_price = float(req.m_dPrice) if req.m_nPriceType == FIX_PRICE else self.last_prices.get(code, 0.0)
            o = FakeQmtOrder(
                next(self._ids), code, req.m_nOrderType, volume, req.m_nPriceType, float(req.m_dPrice), fill_price,
                ORDER_REPORTED, req.m_strStrategyName, req.m_strOrderRemark, str(len(self.orders) + 1),
            )  # fmt: skip
            self.orders[o.order_id] = o
            resp = _Resp(m_strAccountID=self.account_id, m_nOrderID=o.order_id, m_strStrategyName=o.strategy_name,
                         m_strOrderRemark=o.remark, m_strErrorMsg="")  # fmt: skip
            why = self._counter_check(o)
            if why is not None:
                o.status, o.status_msg = ORDER_JUNK, why[1]
                err = XtOrderError(self.account_id, o.order_id, why[0], why[1], o.strategy_name, o.remark)
                err.seq = seq
                first = [("OrderError", (err,)), ("OrderStockResp", (seq, resp))]
                if not self.error_before_response:
                    first.reverse()
                return [*first, ("StockOrder", (self._xt_order(o),))]
            self._freeze(o)
            o.status = ORDER_WAIT_REPORTING
            events = [("OrderStockResp", (seq, resp)), ("StockOrder", (self._xt_order(o),))]
            o.status = ORDER_REPORTED
            events.append(("StockOrder", (self._xt_order(o),)))
            if self.auto_fill:
                events += self._fill(o)
            return events

    def _refusal(self, req: Any, connected: bool) -> str:
        if not connected:
            return "not connected to the trading server"
        if self.refuse_orders:
            return self.refuse_orders
        if req.m_strAccountID != self.account_id:
            return f"account {req.m_strAccountID} is not logged in"
        if req.m_nOrderType not in (STOCK_BUY, STOCK_SELL):
            return f"order type {req.m_nOrderType} is not a stock buy/sell"
        if int(req.m_nOrderVolume) <= 0:
            return "order volume must be > 0"
        if req.m_nPriceType == FIX_PRICE and not req.m_dPrice > 0:
            return "a FIX_PRICE order needs a price > 0"
        if req.m_nPriceType != FIX_PRICE and req.m_strStockCode not in self.last_prices:
            return f"no latest price for {req.m_strStockCode}"
        return ""

    def _counter_check(self, o: FakeQmtOrder) -> tuple[int, str] | None:
        if o.order_type == STOCK_BUY:
            need = o.fill_price * o.volume
            if need > self.cash + 1e-6:
                return -61, f"可用资金不足 (available cash {self.cash:.2f}, needed {need:.2f})"
            return None
        held = self.holdings.get(o.stock_code)
        usable = held.can_use_volume if held else 0
        if o.volume > usable:
            return -62, f"可用股份不足 (sellable {usable}, ordered {o.volume})"
        return None

    def _freeze(self, o: FakeQmtOrder) -> None:
        if o.order_type == STOCK_BUY:
            amount = o.fill_price * o.volume
            self.cash -= amount
            self.frozen_cash += amount
        else:
            h = self.holdings[o.stock_code]
            h.can_use_volume -= o.volume
            h.frozen_volume += o.volume

    def _fill(
        self, o: FakeQmtOrder, volume: int | None = None, price: float | None = None
    ) -> list[tuple[str, tuple[Any, ...]]]:
        from xtquant.xttype import XtTrade

        n = o.volume - o.traded_volume if volume is None else int(volume)
        px = o.fill_price if price is None else float(price)
        if not 0 < n <= o.volume - o.traded_volume:
            raise ValueError(f"cannot trade {n} of order {o.order_id} ({o.traded_volume} of {o.volume} traded)")
        amount = px * n
        h = self.holdings.get(o.stock_code)
        if o.order_type == STOCK_BUY:
            self.frozen_cash -= o.fill_price * n  # what this part froze
            self.cash += o.fill_price * n - amount
            if h is None:
                h = self.holdings[o.stock_code] = _Holding(0, 0, 0.0, px)
            h.avg_price = (h.avg_price * h.volume + amount) / (h.volume + n)
            h.volume += n  # not sellable before new_day(): T+1
        else:
            assert h is not None
            self.cash += amount
            h.volume -= n
            h.frozen_volume -= n
        h.last_price = px
        o.traded_volume += n
        o.status = ORDER_SUCCEEDED if o.traded_volume == o.volume else ORDER_PART_SUCC
        trade = XtTrade(
            self.account_id, o.stock_code, o.order_type, str(next(self._trade_ids)), int(time.time()), px,
            n, amount, o.order_id, o.sysid, o.strategy_name, o.remark, 48,
            48 if o.order_type == STOCK_BUY else 49, 0.0, "A000000001", o.stock_code,
        )  # fmt: skip
        self.trades.append(trade)
        pushes = [("StockTrade", (trade,)), ("StockOrder", (self._xt_order(o),))]
        if self.order_push_first:
            pushes.reverse()
        events = [*pushes, ("StockAsset", (self.asset(),)), ("StockPosition", (self.position(o.stock_code),))]
        if h.volume == 0 and h.frozen_volume == 0:
            del self.holdings[o.stock_code]
        return events

    def fill(self, order_id: int, volume: int | None = None, price: float | None = None) -> None:
        """Trade ``volume`` shares (default: the rest) of a pending (``auto_fill=False``) order at ``price``
        (default: its fill price) now; its pushes go to every client."""
        with self.lock:
            events = self._fill(self.orders[order_id], volume, price)
        self._push(events)

    def junk(self, order_id: int, msg: str = "[证券交易所]价格超出涨跌幅限制") -> None:
        """The exchange refuses a reported order: ``ORDER_JUNK`` with ``msg``, what it froze released."""
        with self.lock:
            o = self.orders[order_id]
            self._release(o)
            o.status, o.status_msg = ORDER_JUNK, msg
            events = [("StockOrder", (self._xt_order(o),))]
        self._push(events)

    def push_again(self, order_id: int) -> None:
        """Push an order's state and its trades again, as QMT does after a reconnect."""
        with self.lock:
            o = self.orders[order_id]
            events = [("StockTrade", (t,)) for t in self.trades if t.order_id == order_id]
            events.append(("StockOrder", (self._xt_order(o),)))
        self._push(events)

    def _push(self, events: list[tuple[str, tuple[Any, ...]]]) -> None:
        for client in self.clients:
            client._emit(events)

    def _release(self, o: FakeQmtOrder) -> None:
        rest = o.volume - o.traded_volume
        if o.order_type == STOCK_BUY:
            amount = o.fill_price * rest
            self.frozen_cash -= amount
            self.cash += amount
        else:
            h = self.holdings[o.stock_code]
            h.frozen_volume -= rest
            h.can_use_volume += rest

    def cancel(self, seq: int, req: Any) -> list[tuple[str, tuple[Any, ...]]]:
        from xtquant.xttype import XtCancelError

        with self.lock:
            self.requests.append(("cancelOrderStockWithSeq", {k: getattr(req, k) for k in vars(req)}))
            o = self.orders.get(int(getattr(req, "m_nOrderID", -1)))
            if o is None or o.status not in _CANCELABLE:
                why = "no such order" if o is None else f"order status {o.status} cannot be canceled"
                order_id = int(getattr(req, "m_nOrderID", -1))
                resp = _Resp(m_strAccountID=self.account_id, m_nCancelResult=-1, m_nOrderID=order_id,
                             m_strOrderSysID="", m_strErrorMsg=why)  # fmt: skip
                err = XtCancelError(self.account_id, order_id, 0, "", -1, why)
                return [("CancelOrderStockResp", (seq, resp)), ("CancelError", (err,))]
            self._release(o)
            o.status = ORDER_PARTSUCC_CANCEL if o.traded_volume else ORDER_REPORTED_CANCEL
            pending = self._xt_order(o)
            o.status = ORDER_PART_CANCEL if o.traded_volume else ORDER_CANCELED
            resp = _Resp(m_strAccountID=self.account_id, m_nCancelResult=0, m_nOrderID=o.order_id,
                         m_strOrderSysID="", m_strErrorMsg="")  # fmt: skip
            return [
                ("CancelOrderStockResp", (seq, resp)),
                ("StockOrder", (pending,)),
                ("StockOrder", (self._xt_order(o),)),
            ]

    def query(self, name: str, seq: int, req: Any) -> list[tuple[str, tuple[Any, ...]]]:
        with self.lock:
            self.requests.append((name, {k: getattr(req, k) for k in vars(req)}))
            known = getattr(req, "m_strAccountID", self.account_id) == self.account_id
            if name == "queryStockAssetWithSeq":
                answer = [] if self.fail_asset_query or not known else [self.asset()]
                return [("QueryStockAsset", (seq, answer))]
            if name == "queryStockPositionsWithSeq":
                answer = [] if self.fail_position_query or not known else [self.position(c) for c in self.holdings]
                return [("QueryStockPositions", (seq, answer))]
            if name == "queryStockOrdersWithSeq":
                return [("QueryStockOrders", (seq, [self._xt_order(o) for o in self.orders.values()]))]
            if name == "queryStockTradesWithSeq":
                return [("QueryStockTrades", (seq, list(self.trades)))]
            if name in ("subscribeWithSeq", "unsubscribeWithSeq"):
                resp = "SubscribeResp" if name == "subscribeWithSeq" else "UnsubscribeResp"
                return [(resp, (seq, 0 if known else -1))]
            raise NotImplementedError(f"the fake xtpythonclient does not model {name}")


class _Resp(types.SimpleNamespace):
    """A native response struct (``m_*`` fields)."""


class _Req(types.SimpleNamespace):
    """A native request struct: xttrader sets ``m_*`` fields on it."""


# ---------------------------------------------------------------------- the fake native module
def _make_module(account: FakeQmtAccount) -> types.ModuleType:
    module = types.ModuleType("xtquant.xtpythonclient", "hkrt's fake of xtquant's native trading client")
    module.__file__ = __file__
    module._account = account  # type: ignore[attr-defined]

    class XtQuantAsyncClient:
        def __init__(self, path: bytes, name: str, session: int) -> None:
            if not isinstance(path, bytes):
                raise TypeError("path must be bytes (xttrader encodes it as gb18030)")
            self.path, self.name, self.session = path, name, session
            self._callbacks: dict[str, Callable[..., Any]] = {}
            self._seq = itertools.count(1)
            self._queue: queue.Queue[list[tuple[str, tuple[Any, ...]]] | None] = queue.Queue()
            self._thread: threading.Thread | None = None
            self._connected = False

        def __getattr__(self, attr: str) -> Any:
            if attr.startswith("bindOn") and attr.endswith("Callback"):
                key = attr[len("bindOn") : -len("Callback")]
                return lambda fn: self._callbacks.__setitem__(key, fn)
            if attr.endswith("WithSeq"):
                return lambda seq, req: self._emit(account.query(attr, seq, req))
            raise AttributeError(attr)

        def _emit(self, events: list[tuple[str, tuple[Any, ...]]]) -> None:
            self._queue.put(events)

        def _run(self) -> None:  # the native network thread: answers and pushes, in order
            while (events := self._queue.get()) is not None:
                for name, args in events:
                    fn = self._callbacks.get(name)
                    if fn is not None:
                        fn(*args)

        def init(self) -> int:
            return 0

        def start(self) -> int:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fake-xtpythonclient", daemon=True)
                self._thread.start()
                account.clients.append(self)
            return 0

        def stop(self) -> None:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(5)
                self._thread = None
            with contextlib.suppress(ValueError):
                account.clients.remove(self)

        def connect(self) -> int:
            if not account.accept_connections:
                return -1
            self._connected = True
            return 0

        def nextSeq(self) -> int:
            return next(self._seq)

        def setTimeout(self, timeout: int) -> None:
            account.timeouts.append(timeout)

        def orderStockWithSeq(self, seq: int, req: Any) -> None:
            self._emit(account.order(seq, req, self._connected))

        def cancelOrderStockWithSeq(self, seq: int, req: Any) -> None:
            self._emit(account.cancel(seq, req))

    def __getattr__(name: str) -> Any:  # SubscribeReq, OrderStockReq, QueryStockAssetReq, ...
        if name.endswith("Req"):
            return type(name, (_Req,), {})
        raise AttributeError(name)

    module.XtQuantAsyncClient = XtQuantAsyncClient  # type: ignore[attr-defined]
    module.__getattr__ = __getattr__  # type: ignore[attr-defined]
    return module


def _drop_modules() -> None:
    package = sys.modules.get("xtquant")
    for name in ("xtquant.xtpythonclient", "xtquant.xttrader"):
        sys.modules.pop(name, None)
        if package is not None:
            with contextlib.suppress(AttributeError):
                delattr(package, name.rpartition(".")[2])


def install(account: FakeQmtAccount | None = None) -> types.ModuleType:
    """Put a fake native ``xtpythonclient`` for ``account`` under ``xtquant``; return the real ``xtquant.xttrader``.

    Needs the xtquant wheel.  A fresh ``xtquant.xttrader`` is imported on each call."""
    account = account if account is not None else FakeQmtAccount()
    package = import_xtquant_quietly()
    _drop_modules()
    module = _make_module(account)
    sys.modules["xtquant.xtpythonclient"] = module
    package.xtpythonclient = module  # type: ignore[attr-defined]
    return importlib.import_module("xtquant.xttrader")


def uninstall() -> None:
    """Remove the fake native module and the ``xtquant.xttrader`` imported over it."""
    _drop_modules()


@contextlib.contextmanager
def installed(account: FakeQmtAccount | None = None) -> Iterator[types.ModuleType]:
    """``with installed(account) as xttrader: ...``; stops every client and uninstalls on exit."""
    account = account if account is not None else FakeQmtAccount()
    xttrader = install(account)
    try:
        yield xttrader
    finally:
        for client in list(account.clients):
            client.stop()
        uninstall()


def positions_of(account: FakeQmtAccount) -> Mapping[str, tuple[int, int, float]]:
    """code -> (volume, sellable volume, avg price): the account's holdings for assertions."""
    with account.lock:
        return {c: (h.volume, h.can_use_volume, h.avg_price) for c, h in account.holdings.items()}
