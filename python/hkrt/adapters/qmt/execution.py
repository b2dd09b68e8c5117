"""XtQuantOrderBroker: orders to a QMT / miniQMT account through ``xtquant.xttrader`` (docs/broker-qmt.md).

xtquant's native trading client is Windows-only, so this broker runs where QMT runs.  Importing
this module works anywhere (xtquant is imported lazily); creating a broker without a working
``xtquant.xttrader`` raises :class:`QmtTradingUnavailableError`, an ``ImportError`` saying what to do.

Units: ``num`` is shares (QMT's ``order_volume`` is 股 for stocks), prices are yuan per share.

Order lifecycle (docs/broker-qmt.md, "Order lifecycle reports"): once :meth:`XtQuantOrderBroker.attach`-ed to
a bus, xttrader's pushes of this broker's orders become ``ExecutionReport`` events: ``on_stock_order``'s
``order_status`` (48 未报 … 57 废单) accepted / cancelled / rejected, each ``on_stock_trade`` a fill (its
``traded_id``), ``on_order_error`` of a placed order rejected.  The client order id travels in
``order_remark`` (when it fits QMT's 24 characters) and comes back in every push.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from types import ModuleType, SimpleNamespace
from typing import TYPE_CHECKING, Any

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.adapters.poller import Poller
from hkrt.adapters.qmt.config import QmtTradingConfig
from hkrt.adapters.qmt.mapping import qmt_code, split_qmt_code
from hkrt.adapters.reports import QMT_ORDER_STATES, REJECTED, OrderHint, OrderReporter
from hkrt.broker.asset import AssetInfo, BrokerPosition, _now_china
from hkrt.core.china_time import utc_ms_to_local_datetime

__all__ = [
    "PRICE_TYPES",
    "QmtTradingConnectionError",
    "QmtTradingUnavailableError",
    "XtQuantOrderBroker",
    "load_xttrader",
    "make_execution_client",
]

if TYPE_CHECKING:
    from hkrt.bus import EventBus

log = logging.getLogger("hkrt.broker.qmt")

# xtconstant (xtquant 250807.1.2); kept here so a broker over an injected trader needs no xtquant.
STOCK_BUY, STOCK_SELL = 23, 24
SECURITY_ACCOUNT = 2
ORDER_JUNK = 57
_ACCEPTED = {49, 50, 51, 52, 53, 54, 55, 56}  # 待报 … 已成: the order reached the counter (57 废单 did not)
PRICE_TYPES: dict[str, int] = {
    "LATEST_PRICE": 5,
    "FIX_PRICE": 11,
    "MARKET_BEST": 18,
    "MARKET_CANCEL": 19,
    "MARKET_CANCEL_ALL": 20,
    "MARKET_CANCEL_1": 21,
    "MARKET_CANCEL_5": 22,
    "MARKET_CONVERT_1": 23,
    "MARKET_CONVERT_5": 24,
    "MARKET_SH_CONVERT_5_CANCEL": 42,
    "MARKET_SH_CONVERT_5_LIMIT": 43,
    "MARKET_PEER_PRICE_FIRST": 44,
    "MARKET_MINE_PRICE_FIRST": 45,
    "MARKET_SZ_INSTBUSI_RESTCANCEL": 46,
    "MARKET_SZ_CONVERT_5_CANCEL": 47,
    "MARKET_SZ_FULL_OR_CANCEL": 48,
}
# order_remark: the wheel's bundled xttrader.md names no limit; QMT's online documentation is reported to keep
# 24 characters (a Chinese one counting 3) and drop the rest.  A longer client id is not sent there (the broker
# remembers it by order id instead, so only reports after a restart lack it).
REMARK_LIMIT = 24
_SIDES = {STOCK_BUY: "buy", STOCK_SELL: "sell"}
_SH_ONLY = {42, 43}
_SZ_ONLY = {46, 47, 48}
FIX_PRICE = PRICE_TYPES["FIX_PRICE"]


class QmtTradingUnavailableError(ImportError):
    """``xtquant.xttrader`` cannot be imported here (no xtquant, or its Windows-only native part)."""


class QmtTradingConnectionError(ConnectionError):
    """The trader could not connect to QMT, or could not subscribe the account."""


def _unavailable_message(cause: BaseException) -> str:
    return (
        f"QMT trading needs xtquant.xttrader, which cannot be used here ({type(cause).__name__}: {cause}). "
        "xtquant's native modules (xtpythonclient, datacenter) are Windows-only: the PyPI wheel ships only "
        "win_amd64 .pyd files, so on Linux or macOS `import xtquant.xttrader` fails even when "
        "`pip install xtquant` succeeds. Run the strategy on Windows next to a running QMT / miniQMT, "
        "logged in with 极简模式 / independent trading ticked (`pip install xtquant` there), and pass the "
        "client's userdata_mini folder as `path`. To trade from Linux, run easytrader's server next to the "
        "broker's Windows trading client and use EasyTraderOrderBroker (`hkrt run --broker easytrader`, "
        "docs/broker-easytrader.md). See docs/broker-qmt.md."
    )


def load_xttrader() -> ModuleType:
    """Import ``xtquant.xttrader``, or raise :class:`QmtTradingUnavailableError` saying why it cannot work here."""
    try:
        from xtquant import xttrader
    except Exception as exc:  # ImportError on Linux; a DLL load failure may be another exception on Windows
        raise QmtTradingUnavailableError(_unavailable_message(exc)) from exc
    return xttrader


def _price_type(value: int | str) -> int:
    if isinstance(value, str):
        key = value.strip().upper()
        if key not in PRICE_TYPES:
            raise ValueError(f"unknown price type {value!r}; valid: {', '.join(PRICE_TYPES)}")
        return PRICE_TYPES[key]
    if value not in PRICE_TYPES.values():
        raise ValueError(f"unknown price type {value!r}; valid: {sorted(PRICE_TYPES.values())}")
    return int(value)


def _price_types(spec: int | str | Mapping[str, int | str]) -> dict[str, int]:
    """One price type for every market, or {market: type} (missing markets: FIX_PRICE)."""
    if isinstance(spec, Mapping):
        out = {m: FIX_PRICE for m in ("SH", "SZ", "BJ")}
        for market, value in spec.items():
            m = market.strip().upper()
            if m not in out:
                raise ValueError(f"price_type market must be SH, SZ or BJ, not {market!r}")
            out[m] = _price_type(value)
    else:
        out = dict.fromkeys(("SH", "SZ", "BJ"), _price_type(spec))
    for market, t in out.items():
        if (t in _SH_ONLY and market != "SH") or (t in _SZ_ONLY and market != "SZ"):
            name = next(k for k, v in PRICE_TYPES.items() if v == t)
            raise ValueError(f"price type {name} is for {'SH' if t in _SH_ONLY else 'SZ'} only, not {market}")
    return out


class _Callback:
    """The xttrader callback: counts and logs every push, and keeps what the order hooks wait for.

    Runs on xttrader's executor thread, where an exception would vanish into an unobserved Future:
    so nothing here raises."""

    _NAMES = (
        "on_connected", "on_account_status", "on_stock_asset", "on_stock_position",
        "on_cancel_order_stock_async_response", "on_order_stock_async_response", "on_smt_appointment_async_response",
        "on_bank_transfer_async_response", "on_ctp_internal_transfer_async_response",
        "on_smart_algo_order_async_response", "on_operate_smart_task_async_response",
    )  # fmt: skip

    def __init__(self, broker: XtQuantOrderBroker) -> None:
        self._broker = broker
        for name in self._NAMES:
            setattr(self, name, self._counter(name))

    def _counter(self, name: str) -> Any:
        def count(*args: Any) -> None:
            self._broker._event(name)
            log.debug("QMT %s", name, extra={"broker": self._broker.name})

        return count

    def _push(self, name: str, update: Callable[[XtQuantOrderBroker], object]) -> None:
        """Count the push, apply ``update`` under the broker's lock and wake the order hooks waiting on it."""
        b = self._broker
        b._event(name)
        try:
            with b._cond:
                update(b)
                b._cond.notify_all()
        except Exception:  # a malformed push must not vanish silently in the executor
            log.exception("QMT %s", name, extra={"broker": b.name})

    def on_disconnected(self) -> None:
        self._push("on_disconnected", lambda b: setattr(b, "_connected", False))
        log.warning("QMT trading disconnected; orders fail until reconnect()", extra={"broker": self._broker.name})

    def on_stock_order(self, order: Any) -> None:
        def update(b: XtQuantOrderBroker) -> None:  # inside _push: a malformed order is logged, not lost
            status, msg = int(order.order_status), str(order.status_msg or "")
            b._order_status[int(order.order_id)] = (status, msg)
            b._report_state(order, QMT_ORDER_STATES.get(status), int(order.traded_volume), msg or str(status))

        self._push("on_stock_order", update)

    def on_stock_trade(self, trade: Any) -> None:
        self._push("on_stock_trade", lambda b: b._report_trade(trade))

    def on_order_error(self, error: Any) -> None:
        def update(b: XtQuantOrderBroker) -> None:
            b._order_errors.append(error)
            if int(error.order_id) > 0:  # a placed order the counter refused (-1: order_stock answered -1)
                b._report_state(error, REJECTED, None, f"[{error.error_id}] {error.error_msg}")

        self._push("on_order_error", update)
        log.warning("QMT order error: [%s] %s", getattr(error, "error_id", "?"), getattr(error, "error_msg", "?"),
                    extra={"broker": self._broker.name, "order_id": getattr(error, "order_id", None)})  # fmt: skip

    def on_cancel_error(self, error: Any) -> None:
        self._push("on_cancel_error", lambda b: b._cancel_errors.__setitem__(int(error.order_id), error))
        log.warning("QMT cancel error: %s", getattr(error, "error_msg", "?"),
                    extra={"broker": self._broker.name, "order_id": getattr(error, "order_id", None)})  # fmt: skip


class XtQuantOrderBroker(OrderBrokerBase):
    """Sends orders to a QMT stock account: ``order_stock``, ``cancel_order_stock``, asset queries.

    ``path``: the client's ``userdata_mini`` folder; ``session_id``: an int unique among the
    strategies connected to that client at once; ``account_id`` / ``account_type``: the account
    (``"STOCK"``, ``"CREDIT"``, …).  ``price_type``: ``"FIX_PRICE"`` (limit at the order price, the
    default), another xtconstant name or value, or ``{"SH": ..., "SZ": ...}``; for any type but
    FIX_PRICE, price 0 is sent as xtquant's documentation asks.

    ``confirm_timeout``: seconds to wait after ``order_stock`` for QMT's verdict on the order
    (``on_order_error`` or a 废单 → Rejected; a reported order → Sent); 0 does not wait.

    ``trader``: an ``XtQuantTrader`` (or compatible) object to use instead of creating one; the
    broker registers its own callback on it.  ``connect=False`` skips start/connect/subscribe
    (the caller did them).
    """

    def __init__(
        self,
        path: str = "",
        session_id: int | None = None,
        account_id: str = "",
        *,
        account_type: str = "STOCK",
        price_type: int | str | Mapping[str, int | str] = "FIX_PRICE",
        strategy_name: str = "hkrt",
        confirm_timeout: float = 1.0,
        request_timeout_ms: int | None = None,
        trader: Any = None,
        connect: bool = True,
        name: str = "XtQuantOrderBroker",
    ) -> None:
        super().__init__(name)
        if not account_id or not isinstance(account_id, str):
            raise ValueError("account_id: the QMT fund account, as a str")
        if confirm_timeout < 0:
            raise ValueError("confirm_timeout must be >= 0")
        self._price_types = _price_types(price_type)
        self._strategy_name = strategy_name
        self._confirm_timeout = float(confirm_timeout)
        self._cond = threading.Condition()
        self._order_status: dict[int, tuple[int, str]] = {}
        self._order_errors: list[Any] = []
        self._cancel_errors: dict[int, Any] = {}
        self._events: Counter[str] = Counter()
        self._targets: dict[tuple[str, str], tuple[float, float]] = {}  # (market, code) -> stoploss, goal
        # Pushes can overtake order_stock's answer: events of an order id not tracked yet wait 5 s for it.
        self._reporter = OrderReporter(name, early_grace=5.0)
        # Held and early reports are released by time, also when no push comes: a second's flush.
        self._flusher = Poller(f"{name} reports", self._reporter.flush, interval=1.0)
        self._last_good: AssetInfo | None = None
        self._stale = False
        self._connected = False
        self._account = self._make_account(account_id, account_type, trader is not None)
        if trader is None:
            if not path:
                raise ValueError("path: the QMT client's userdata_mini folder")
            xttrader = load_xttrader()
            # QMT refuses a second connection with a session id already in use: default to one per run
            session_id = int(time.time() * 1000) % 2_000_000_000 if session_id is None else int(session_id)
            trader = xttrader.XtQuantTrader(path, session_id)
        self._path, self._session_id = path, session_id
        self._trader = trader
        trader.register_callback(_Callback(self))
        if request_timeout_ms is not None:
            trader.set_timeout(int(request_timeout_ms))
        if connect:
            trader.start()
            self.reconnect()
        else:
            self._connected = True

    @staticmethod
    def _make_account(account_id: str, account_type: str, injected: bool) -> Any:
        try:
            from xtquant.xttype import StockAccount
        except Exception:
            if not injected:
                raise
            # an injected trader without xtquant (a test double): the two fields order_stock reads
            types = {"STOCK": SECURITY_ACCOUNT, "CREDIT": 3}
            return SimpleNamespace(
                account_id=account_id, account_type=types.get(account_type.upper(), SECURITY_ACCOUNT)
            )
        return StockAccount(account_id, account_type)  # raises for an unknown account type

    # ------------------------------------------------------------------ lifecycle
    def reconnect(self) -> None:
        """connect() and subscribe(account) again (xttrader never reconnects by itself)."""
        where = f"QMT at {self._path!r} (session {self._session_id})"
        result = self._trader.connect()
        if result != 0:
            raise QmtTradingConnectionError(
                f"cannot connect to {where}: connect() returned {result}. Is QMT / miniQMT running and logged in, "
                "with 极简模式 / independent trading ticked; is the path its userdata_mini folder; is the "
                "session id not used by another running strategy?"
            )
        sub = self._trader.subscribe(self._account)
        if sub != 0:
            raise QmtTradingConnectionError(
                f"connected to {where} but subscribe(account {self._account.account_id}) returned {sub}: "
                "is the account logged in on that client, and its type right?"
            )
        with self._cond:
            self._connected = True
        log.info("QMT trading connected", extra={"broker": self.name, "account": self._account.account_id})

    def close(self) -> None:
        """Stop the trader (its threads and connection) and the reports."""
        self.detach()
        with self._cond:
            self._connected = False
        self._trader.stop()

    def __enter__(self) -> XtQuantOrderBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ inspection
    @property
    def trader(self) -> Any:
        return self._trader

    @property
    def account(self) -> Any:
        return self._account

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def events(self) -> dict[str, int]:
        """Callbacks received, by name (on_stock_order, on_order_error, on_disconnected, …)."""
        with self._cond:
            return dict(self._events)

    @property
    def asset_stale(self) -> bool:
        """True when the last get_asset_info() failed and answered the previous snapshot."""
        return self._stale

    def _event(self, name: str) -> None:
        with self._cond:
            self._events[name] += 1

    # ------------------------------------------------------------------ orders
    def _order(
        self, side: int, market: str, code: str, price: float, num: float, remark: str, client_order_id: str = ""
    ) -> OrderResult:
        try:
            stock_code = qmt_code(f"{market}{code}")
        except (ValueError, TypeError):
            return OrderResult(OrderStatus.Rejected, error=f"not an A-share code: {market}{code}")
        if float(num) != int(num):
            return OrderResult(OrderStatus.Rejected, error=f"QMT orders whole shares, not {num:g}")
        if not self._connected:
            # a synchronous xttrader call after a disconnect waits for an answer that never comes
            return OrderResult(OrderStatus.Failed, error="QMT trading is disconnected: call reconnect()")
        price_type = self._price_types[market.upper()]
        with self._cond:
            errors_before = len(self._order_errors)
        order_id = self._trader.order_stock(
            self._account, stock_code, side, int(num), price_type,
            float(price) if price_type == FIX_PRICE else 0.0, self._strategy_name, remark,
        )  # fmt: skip
        order_id = int(order_id)
        if order_id > 0:
            self._reporter.track(str(order_id), client_order_id, f"{market.upper()}{code}", _SIDES[side])
        if order_id <= 0:
            error = self._wait(lambda: self._error_for(-1, errors_before))
            why = f"[{error.error_id}] {error.error_msg}" if error is not None else "no reason given (see QMT's log)"
            return OrderResult(
                OrderStatus.Rejected, error=f"QMT refused the {stock_code} order (order id {order_id}): {why}"
            )
        verdict = self._wait(lambda: self._error_for(order_id, 0) or self._order_status.get(order_id))
        if verdict is None:
            log.debug("no QMT verdict yet", extra={"broker": self.name, "order_id": order_id})
        elif isinstance(verdict, tuple):
            status, msg = verdict
            if status == ORDER_JUNK:
                return OrderResult(OrderStatus.Rejected, order_id=str(order_id), error=f"QMT junked order: {msg}")
        else:
            why = f"[{verdict.error_id}] {verdict.error_msg}"
            return OrderResult(OrderStatus.Rejected, order_id=str(order_id), error=f"QMT rejected the order: {why}")
        return OrderResult(OrderStatus.Sent, order_id=str(order_id))

    def _error_for(self, order_id: int, start: int) -> Any:
        for error in self._order_errors[start:]:
            if int(error.order_id) == order_id:
                return error
        return None

    def _wait(self, found: Any) -> Any:
        """found() under the lock, re-evaluated on each callback until truthy or confirm_timeout."""
        deadline = time.monotonic() + self._confirm_timeout
        with self._cond:
            while True:
                value = found()
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value or None
                self._cond.wait(left)

    def _buy(self, request: OrderRequest) -> OrderResult:
        r = request
        result = self._order(STOCK_BUY, r.market, r.code, r.price, r.num, _remark(r), r.client_order_id)
        if result.ok:
            self._targets[(r.market.upper(), r.code)] = (r.stoploss, r.goal_price)
        return result

    def _sell(self, request: OrderRequest) -> OrderResult:
        r = request
        return self._order(STOCK_SELL, r.market, r.code, r.price, r.num, _remark(r), r.client_order_id)

    def _cancel(self, order_id: str) -> OrderResult:
        try:
            oid = int(order_id)
        except ValueError:
            return OrderResult(OrderStatus.Rejected, order_id=order_id, error=f"not a QMT order id: {order_id!r}")
        if not self._connected:
            return OrderResult(OrderStatus.Failed, order_id=order_id, error="QMT trading is disconnected")
        result = self._trader.cancel_order_stock(self._account, oid)
        if result != 0:
            error = self._wait(lambda: self._cancel_errors.get(oid))
            why = f": {error.error_msg}" if error is not None else ""
            return OrderResult(OrderStatus.Rejected, order_id=order_id, error=f"QMT refused to cancel {oid}{why}")
        return OrderResult(OrderStatus.Sent, order_id=order_id)

    # ------------------------------------------------------------------ order lifecycle reports
    def adopt_order(self, broker_order_id: str, client_order_id: str, symbol: str, side: str) -> None:
        """Report the lifecycle of an order sent today by an earlier run (``hkrt trader`` restarted)."""
        self._reporter.track(str(broker_order_id), client_order_id, symbol, side)

    def attach(self, bus: EventBus) -> None:
        """Publish the lifecycle of this broker's orders onto ``bus`` as ``ExecutionReport`` events, from
        xttrader's pushes (on its callback thread), until :meth:`detach`."""
        self._reporter.broker = self.name
        self._reporter.attach(bus.publish)
        self._flusher.start()

    def detach(self) -> None:
        self._flusher.stop(timeout=5.0)
        self._reporter.detach()

    @property
    def report_stats(self) -> dict[str, int]:
        """Counters of the lifecycle reports: reports, fills, duplicate_trades, foreign_orders (pushes of
        orders this broker did not send), unknown_states, finals_held, finals_forced, …"""
        return dict(self._reporter.stats)

    def _ours(self, push: Any) -> tuple[bool, OrderHint | None]:
        """Whether a push is of this broker's orders (not another strategy's, nor a hand-typed one), and
        the hint that lets an order of an earlier run be reported: its remark (the client id) and code."""
        if self._reporter.knows(str(int(push.order_id))):
            return True, None
        if str(getattr(push, "strategy_name", "") or "") != self._strategy_name:
            return False, None
        remark = str(getattr(push, "order_remark", "") or "")
        code = str(getattr(push, "stock_code", "") or "")
        market, six = split_qmt_code(code) if code else ("", "")
        return True, OrderHint(remark, f"{market}{six}", _SIDES.get(int(getattr(push, "order_type", 0) or 0), ""))

    def _report_state(self, push: Any, state: str | None, filled: int | None, reason: str) -> None:
        ours, hint = self._ours(push)
        if ours:
            self._reporter.order_state(str(int(push.order_id)), state, filled=filled, reason=reason, hint=hint)
        self._reporter.flush()

    def _report_trade(self, trade: Any) -> None:
        ours, hint = self._ours(trade)
        if ours:
            when = utc_ms_to_local_datetime(int(trade.traded_time) * 1000) if trade.traded_time else None
            self._reporter.trade(str(int(trade.order_id)), str(trade.traded_id), int(trade.traded_volume),
                                 float(trade.traded_price), when=when, hint=hint)  # fmt: skip
        self._reporter.flush()

    # ------------------------------------------------------------------ asset
    def query_asset(self) -> AssetInfo:
        """Cash and positions from QMT now; raises on a failed query (no fallback)."""
        asset = self._trader.query_stock_asset(self._account)
        if asset is None:
            raise RuntimeError("query_stock_asset returned None (QMT's answer to a failed query)")
        # xtquant: None is "failed or empty"; the asset query just worked, so read it as empty
        positions = self._trader.query_stock_positions(self._account) or []
        out = []
        for p in positions:
            if not p.volume:
                continue  # sold out today: QMT lists it with volume 0
            market, code = split_qmt_code(p.stock_code)
            stoploss, goal = self._targets.get((market, code), (0.0, 0.0))
            cost = float(p.avg_price) if p.avg_price else float(p.open_price)
            out.append(BrokerPosition(market, code, float(p.volume), stoploss, goal, cost))
        return AssetInfo(cash=float(asset.cash), positions=out, datetime=_now_china())

    def _get_asset_info(self) -> str:
        try:
            info = self.query_asset()
        except Exception as exc:
            self._event("asset_query_failed")
            if self._last_good is None:
                raise RuntimeError(f"no asset info from QMT yet: {type(exc).__name__}: {exc}") from exc
            self._stale = True
            log.warning(
                "QMT asset query failed; answering the last good snapshot",
                extra={"broker": self.name, "error": f"{type(exc).__name__}: {exc}",
                       "snapshot": self._last_good.datetime.isoformat() if self._last_good.datetime else None},
            )  # fmt: skip
            data = self._last_good.to_dict()
            data["stale"] = True  # AssetInfo.parse ignores it; the snapshot's datetime says how old it is
            return json.dumps(data, ensure_ascii=False)
        self._last_good, self._stale = info, False
        return info.to_json()


def _remark(request: OrderRequest) -> str:
    """What goes in order_remark: the client order id when there is one and it fits QMT's limit (every push
    of the order echoes it), else the request's remark."""
    cid = request.client_order_id
    return cid if cid and len(cid.encode()) <= REMARK_LIMIT else request.remark


def make_execution_client(config: QmtTradingConfig) -> XtQuantOrderBroker:
    """An xttrader session on the config's account (``hkrt run --broker qmt``); needs QMT running."""
    return XtQuantOrderBroker(
        config.path,
        config.session_id,
        config.account,
        account_type=config.account_type,
        price_type=config.price_type,
        strategy_name=config.strategy_name,
    )
