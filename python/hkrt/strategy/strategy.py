"""hkrt.Strategy: bars, spots and timers in; lot-rounded orders out to one or more brokers.

A strategy is a script that builds a ``Strategy``, registers callbacks with its decorators and
places orders from them.  The same script runs live (subscribed to a spot server) and on a
simulated or replayed day, with the same orders, because everything it sees — bars, spots, the
clock its timers follow, the datetime of its orders — comes from the feed's market time.

All callbacks (bars, spots, cycles, timers, start, stop) run on one thread, the callback thread
of the event bus the strategy is attached to (its agent's, :mod:`hkrt.bus`), one at a time:
strategy code needs no locks.  The strategy is a bus component like any other: its decorators
note subscriptions, :meth:`Strategy.attach` makes them on a bus.  See docs/strategy.md.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from hkrt._hkrt import OrderBrokerBase, Spot, normalize_symbol
from hkrt.agent.spot_agent import SpotAgent
from hkrt.broker.wrap import crtOB
from hkrt.bus import BarClosed, CycleEnded, EventBus, MarketFilter, SignalEvent, SpotBatch, Subscription
from hkrt.bus.bus import handler_name
from hkrt.core.calendar import CalendarCoverageError, TradingCalendar
from hkrt.core.china_time import MARKET_CLOSE
from hkrt.core.china_time import china_now as _china_now
from hkrt.core.ktype import KType
from hkrt.core.logs import log_limited
from hkrt.hooks import Bar, CycleInfo
from hkrt.strategy import pretrade
from hkrt.strategy.book import Position
from hkrt.strategy.ledger import Ledger
from hkrt.strategy.ledger_book import LedgeredBook
from hkrt.strategy.order import Order
from hkrt.strategy.order_manager import EMULATED_TYPES, Emulator, OrderManager
from hkrt.strategy.reconcile import Reconciliation
from hkrt.strategy.timers import TimerSet, parse_interval, parse_time

log = logging.getLogger("hkrt.strategy")
ledger_log = logging.getLogger("hkrt.strategy.ledger")

F = TypeVar("F", bound=Callable[..., Any])
DAY_CLOSE = MARKET_CLOSE  # the day's last bar is labelled with the last session's close
WALL_CLOCK_AFTER = 10.0  # seconds of feed silence before a live run's timers follow the wall clock

# strategy.orders: one row per order (docs/orders.md)
ORDER_COLUMNS = [
    "client_order_id", "created", "updated", "symbol", "side", "order_type", "time_in_force", "price", "stop_price",
    "shares", "requested", "filled_shares", "average_price", "fees", "status", "reason", "broker", "broker_order_id",
    "emulated", "parent_id", "remark",
]  # fmt: skip
# strategy.trades: one row per fill
MAX_EQUITY_SAMPLES = 200_000
TRADE_COLUMNS = ["datetime", "symbol", "side", "price", "shares", "amount", "fees", "client_order_id", "trade_id",
                 "broker"]  # fmt: skip
# strategy.broker_orders: one row per order and broker that received it
BROKER_ORDER_COLUMNS = ["client_order_id", "created", "symbol", "side", "shares", "broker", "primary", "result",
                        "broker_order_id", "error", "report", "filled_shares"]  # fmt: skip

# What ``Strategy.order`` returned before orders had a lifecycle: the same object now (``ok``, ``shares``,
# ``requested``, ``price``, ``error``, ``results``, ``datetime`` keep their meaning).
OrderTicket = Order


@dataclass(frozen=True)
class _Wanted:
    """A subscription a decorator asked for, made on every bus the strategy is attached to."""

    event_type: type
    handler: Callable[[Any], Any]
    filter: Callable[[Any], bool] | None
    name: str


class Strategy:
    """A trading strategy on live or simulated spots.

    Args:
        codes: the symbols the strategy trades and whose bars and spots it receives (any of
            the three spellings: ``"SH600000"``, ``"600000.SH"``, ``"sh600000"``).
        ktypes: periods of the bars it receives (KType or names in any case).
        brokers: where orders go (``OrderBrokerBase`` instances, or objects ``crtOB`` can wrap).
            The first is the primary broker: the strategy's book follows its fills.  With
            none, a paper ``TestOrderBroker`` holding ``cash`` is used.
        address: the spot server to subscribe to (default: this user's ipc feed).
        tcp: dial TCP instead (a port, ``host:port`` or True for 127.0.0.1:9200).
        cash: the book's starting cash in yuan.
        calendar: exchange calendar (China by default) for timers and bars.
        bar_close_delay: market seconds after a bar's end before it is declared complete.
        name: the strategy's name (in its client order ids, logs and events).
        fees: the fee model of fills whose broker does not say what it charged (``hkrt.core.fees.FeeModel``,
            or a function ``fees(symbol, side, price, shares, day, commission_so_far) -> yuan``); None: the
            A-share default ``FeeModel()`` (0.025 % commission, 5 yuan minimum, stamp tax on sells, transfer
            fee); ``0``: no fees.
        state_dir: where the order emulator journals the stop, trailing-stop and bracket orders it holds,
            so they survive a restart (``hkrt run`` gives a live run ``~/.hkrt/state/<name>``); None: kept
            in memory only.
        risk: the risk engine's limits (``hkrt.strategy.risk.RiskConfig``, a dict of them, or a TOML
            file with a ``[risk]`` table); None: the defaults (docs/risk.md).  Every order passes the
            engine on its way to a broker.
        deadman: the dead-man switch (``hkrt.strategy.deadman.DeadManSwitch``, a dict of its options, or
            True for its defaults): while the strategy runs, when its callback thread or its feed stops
            for the configured time, every working order is cancelled and an alert raised
            (docs/kill-switch.md).  None: no dead-man switch.
    """

    def __init__(
        self,
        codes: Iterable[str],
        ktypes: Iterable[KType | str] = ("MIN",),
        brokers: Sequence[Any] | None = None,
        address: str | None = None,
        *,
        tcp: bool | int | str | None = None,
        cash: float = 1_000_000.0,
        calendar: TradingCalendar | None = None,
        bar_close_delay: float = 3.0,
        name: str = "strategy",
        fees: Any = None,
        state_dir: str | os.PathLike[str] | None = None,
        risk: Any = None,
        deadman: Any = None,
    ) -> None:
        self.codes = tuple(dict.fromkeys(normalize_symbol(c) for c in codes))
        if not self.codes:
            raise ValueError("codes is empty: name the symbols the strategy trades")
        self.ktypes = tuple(dict.fromkeys(KType.parse(k) for k in ktypes))
        if not self.ktypes:
            raise ValueError("ktypes is empty: name at least one period")
        self.address = address
        self.tcp = tcp
        self.name = name
        self.calendar = calendar if calendar is not None else TradingCalendar.china()
        self.bar_close_delay = bar_close_delay
        self.brokers: list[OrderBrokerBase] = []
        self.set_brokers(brokers or [], cash=cash)
        # the book and its double-entry ledger, posted in the same call on every fill (docs/ledger.md)
        self.book: LedgeredBook = LedgeredBook(float(cash), fee_model=self._fee_model_of)
        # the orders and their lifecycle; the book follows the primary broker's fills (docs/orders.md)
        if fees is None:
            from hkrt.core.fees import FeeModel

            fees = FeeModel()
        elif isinstance(fees, (int, float)) and fees == 0:
            fees = None
        self._fees = fees  # what prices the fills a broker reports without fees (the ledger itemizes by it)
        self.order_manager = OrderManager(self.brokers, self.book, strategy=name, fees=fees,
                                          clock=lambda: self.now, last_price=self.last_price)  # fmt: skip
        self.order_manager.listeners.append(self._order_news)
        # the one place an order may be refused on its way to a broker, and the trading state (docs/risk.md)
        from hkrt.strategy.risk import RiskConfig, RiskEngine

        self.risk = RiskEngine(RiskConfig.load(risk), account=self, name=name)
        self.order_manager.risk = self.risk
        self._order_funcs: list[Callable[[Order], Any]] = []
        self._trade_funcs: list[Callable[[Order, Any], Any]] = []
        self.timers = TimerSet(self.calendar)
        self.agent: SpotAgent | None = None
        self.bus: EventBus | None = None  # the bus the strategy is attached to (its agent's while it runs)
        self.live = False
        self._wanted: list[_Wanted] = []  # the decorators' subscriptions, in order
        self._subscriptions: list[Subscription] = []  # made on self.bus
        self._tail: list[Subscription] = []  # the strategy's own, kept after the decorators' (see attach)
        self.bus_listeners: list[Callable[[EventBus | None], Any]] = []  # told attach(bus) / detach() (None), last
        self._start_funcs: list[Callable[[], Any]] = []
        self._stop_funcs: list[Callable[[], Any]] = []
        self._prices: dict[str, float] = {}
        # the feed's word on each symbol for the pre-trade checks: the day and batch of its latest
        # spot with a trade (the batch is decoded for its previous close and name only when an
        # order needs them), and the latest day of any spot
        self._traded: dict[str, tuple[dt.date, SpotBatch]] = {}
        self._references: dict[str, tuple[dt.date, float | None, str]] = {}
        self._spot_day: dt.date | None = None
        self._clock: dt.datetime | None = None  # the data's market time
        self._timer_now: dt.datetime | None = None  # the wall time of a timer the wall clock fired
        self.running_timer: str | None = None  # the name of the timer running on the callback thread now
        self._last_data = time.monotonic()  # when the data clock last moved (monotonic s)
        self._stop = threading.Event()
        # The run is ending without its feed's end (the market clock passed `until`, or the feed
        # broke off): no further market data reaches the callbacks.  stop() does the same.
        self._halted = False
        self._until: dt.time | None = None
        self._callback_thread: int | None = None
        # hkrt.indicators.LiveIndicators, made fresh by each attach(): the indicator() values
        self.live_indicators: Any = None
        # live runs compare the book with the primary broker's account (docs/orders.md, "Reconciliation")
        self.reconcile_interval = 300.0  # seconds of wall time
        # the equity curve for performance(): (market time, portfolio value, cash), one sample per market
        # minute at most, the newest MAX_EQUITY_SAMPLES kept (~800 trading days of minutes)
        self._equity: collections.deque[tuple[dt.datetime, float, float]] = collections.deque(maxlen=MAX_EQUITY_SAMPLES)
        self.reconciliations: collections.deque[Reconciliation] = collections.deque(maxlen=100)
        # stop, stop-limit, trailing-stop and bracket orders: held here and fired from the spots (the
        # A-share venues take only limit and market orders), journalled under state_dir when given
        from hkrt.strategy.emulator import OrderEmulator

        journal = os.path.join(os.fspath(state_dir), "emulator.jsonl") if state_dir is not None else None
        self.set_emulator(OrderEmulator(self.order_manager, journal=journal, calendar=self.calendar))
        # kill switch and dead-man switch (docs/kill-switch.md): with a state dir, a running strategy
        # takes `hkrt halt / resume / status` through files in <state_dir>/control/
        self.state_dir: str | os.PathLike[str] | None = state_dir
        self.control: Any = None  # the ControlChannel while the strategy runs with a state dir
        from hkrt.strategy.deadman import DeadManSwitch

        self.deadman: DeadManSwitch | None = DeadManSwitch.make(deadman)

    # ------------------------------------------------------------ brokers
    def set_brokers(self, brokers: Sequence[Any], *, cash: float | None = None) -> None:
        """Replace the brokers (``hkrt run --broker`` does this).  Empty: a ``PaperBroker`` holding ``cash``
        (orders matched against the spots, with fees, T+1 and price limits: docs/paper-broker.md)."""
        from hkrt.adapters.paper.execution import PaperBroker

        wrapped = [crtOB(b, getattr(b, "name", f"broker{i}")) for i, b in enumerate(brokers)]
        if not wrapped:
            start = cash if cash is not None else (self.book.cash if hasattr(self, "book") else 0.0)
            wrapped = [PaperBroker(start)]
        names = [b.name for b in wrapped]
        if len(set(names)) < len(names):
            log.warning("brokers share a name: their reports cannot be told apart (give each its own name)",
                        extra={"brokers": names})  # fmt: skip
        bus = getattr(self, "bus", None)
        if bus is not None:  # attached: the old brokers stop reporting here, the new ones start
            self._detach_brokers()
        self.brokers = wrapped
        if hasattr(self, "order_manager"):
            self.order_manager.brokers = wrapped
        if bus is not None:
            self._attach_brokers(bus)

    def set_emulator(self, emulator: Emulator) -> None:
        """Hold stop, stop-limit, trailing-stop and bracket orders in ``emulator`` (an ``OrderEmulator``
        made over ``strategy.order_manager``); the orders it restores from its journal are taken in."""
        self.order_manager.emulator = emulator
        for order in emulator.restore():
            self.order_manager.adopt(order)
        if self.bus is not None:
            emulator.attach(self.bus)

    # ---------------------------------------------------------- decorators
    def on_bar(
        self,
        func: F | None = None,
        *,
        ktypes: Iterable[KType | str] | None = None,
        symbols: Iterable[str] | None = None,
    ) -> Any:
        """Call ``func(symbol, ktype, bar)`` for each completed bar of the strategy's codes and
        ktypes (or the given subsets).  Use as ``@strategy.on_bar`` or ``@strategy.on_bar(ktypes=["MIN5"])``."""

        def register(f: F) -> F:
            kt = self.ktypes if ktypes is None else tuple(KType.parse(k) for k in ktypes)
            unknown = [k.value for k in kt if k not in self.ktypes]
            if unknown:
                raise ValueError(f"on_bar ktypes {unknown} are not among the strategy's ktypes {self._ktype_names}")
            syms = tuple(normalize_symbol(s) for s in symbols or ()) or self.codes
            self._want(BarClosed, self._bar_caller(f), MarketFilter(syms, kt), f)
            return f

        return register(func) if func is not None else register

    def on_spot(self, func: F) -> F:
        """Call ``func(spot)`` for every spot of the strategy's codes (``hkrt.Spot``)."""
        self._want(Spot, self._spot_caller(func), MarketFilter(self.codes), func)
        return func

    def on_cycle(self, func: F) -> F:
        """Call ``func(info)`` once per publisher cycle (``hkrt.CycleInfo``), after its bars."""
        self._want(CycleEnded, self._cycle_caller(func), None, func)
        return func

    def on_start(self, func: F) -> F:
        """Call ``func()`` on the callback thread before the first market data."""
        self._start_funcs.append(func)
        return func

    def on_stop(self, func: F) -> F:
        """Call ``func()`` on the callback thread after the last market data."""
        self._stop_funcs.append(func)
        return func

    def on_order(self, func: F) -> F:
        """Call ``func(order)`` on every status change of the strategy's orders (submitted, accepted,
        partially_filled, filled, cancelled, rejected, expired), on the callback thread.  ``order`` is a
        copy of the Order as that change left it; ``strategy.get_order(order.client_order_id)`` is the
        live one."""
        self._order_funcs.append(func)
        return func

    def on_trade(self, func: F) -> F:
        """Call ``func(order, trade)`` for every fill of the strategy's orders (``trade`` a
        ``hkrt.bus.TradeEvent``: shares, price, amount, fees), on the callback thread; ``order`` is a
        copy of the Order right after that fill."""
        self._trade_funcs.append(func)
        return func

    def run_daily(self, func: Any = None, interval: dt.timedelta | float | str = "1min") -> Any:
        """Call ``func()`` every ``interval`` from each session's open until before its close on
        trading days (with 30min: 09:30, 10:00, 10:30, 11:00, 13:00, …, 14:30).  Also a decorator:
        ``@strategy.run_daily(interval="5min")``."""
        if func is None or not callable(func):
            step = parse_interval(interval if func is None else func)
            return lambda f: self._add_timer(f, interval=step)
        return self._add_timer(func, interval=parse_interval(interval))

    def run_daily_at(self, func: Any = None, time: dt.time | str | None = None) -> Any:
        """Call ``func()`` once each trading day when the market clock reaches ``time`` (``"14:50"``).
        Also a decorator: ``@strategy.run_daily_at("14:50")``."""
        if func is None or not callable(func):
            at = parse_time(time if func is None else func)  # type: ignore[arg-type]
            return lambda f: self._add_timer(f, at=at)
        if time is None:
            raise TypeError("run_daily_at(func, time): the time of day is missing")
        return self._add_timer(func, at=parse_time(time))

    def _add_timer(self, func: F, **when: Any) -> F:
        self.timers.add(func, **when)
        return func

    # --------------------------------------------------------------- state
    @property
    def now(self) -> dt.datetime | None:
        """The market clock: the latest market time in the data seen (None before any data);
        inside a timer that a live run's wall clock fired, that wall time.  Orders are dated by it."""
        return self._timer_now or self._clock

    @property
    def cash(self) -> float:
        return self.book.cash

    @property
    def positions(self) -> dict[str, Position]:
        """symbol -> Position (shares, cost_price, bought_today, sellable), copies."""
        return {s: Position(p.symbol, p.shares, p.cost_price, p.bought_today) for s, p in self.book.positions.items()}

    def position(self, symbol: str) -> int:
        """Shares of ``symbol`` held (0 if none)."""
        return self.book.held(normalize_symbol(symbol))

    def kdata(self, symbol: str, ktype: KType | str, start: Any = None, end: Any = None) -> pd.DataFrame:
        """The agent's bars of a symbol (the last one may still be forming)."""
        if self.agent is None:
            raise RuntimeError("the strategy is not running: there is no K-data yet")
        return self.agent.kdata(symbol, ktype, start, end)

    def indicator(self, symbol: str, ktype: KType | str, name: str, *, forming: bool = False, **params: Any) -> Any:
        """The latest value of the live indicator ``name(**params)`` (TA-Lib's names and
        parameters, or a variant such as "KDJ_CN": docs/indicators.md) on ``symbol``'s ``ktype``
        bars: a float, or a dict keyed by the output names for several outputs.  It is the value on
        the last bar closed in the event order, equal to ``hkrt.indicator(name, kdata)`` over the
        bars up to it; created and warmed up from the agent's bars (stored history included) on
        the first call, then updated as bars close.  ``forming=True``: the value if the agent's
        bars after that one (the forming bar last) closed now."""
        if self.live_indicators is None:
            raise RuntimeError("the strategy is not running: there are no live indicators yet")
        return self.live_indicators.value(symbol, ktype, name, forming=forming, **params)

    def last_price(self, symbol: str) -> float | None:
        """The latest price of ``symbol`` in the data the strategy's callbacks have seen so far
        (None before any).  It follows the event order, not the agent's current state, which
        may already be a few messages ahead: a replay gives the same prices as the live day."""
        return self._prices.get(normalize_symbol(symbol))

    def portfolio_value(self) -> float:
        """Cash plus positions at their latest prices, yuan."""
        prices = {s: p for s in self.book.positions if (p := self.last_price(s)) is not None}
        return self.book.cash + self.book.market_value(prices)

    def holdings(self) -> dict[str, int]:
        """symbol -> shares held, of the symbols held (the risk engine's view of the positions)."""
        return {s: p.shares for s, p in self.book.positions.items() if p.shares > 0}

    def day_quote(self, symbol: str) -> pretrade.Quote | None:
        """What the feed said of ``symbol`` today (previous close, name: the day's price limits); None
        before any data."""
        when = self.now
        return self._quote(normalize_symbol(symbol), when) if when is not None else None

    def broker_asset(self, index: int = 0) -> Any:
        """The broker's own asset report (``hkrt.AssetInfo``), e.g. to compare with the book."""
        from hkrt.broker.asset import AssetInfo

        return AssetInfo.parse(self.brokers[index].get_asset_info())

    def sync_from_broker(self, index: int = 0) -> None:
        """Take cash and positions from the broker's asset report (a live run's starting point); the ledger
        re-opens with them (the cash, and each position at shares × the broker's cost price)."""
        asset = self.broker_asset(index)
        positions = {
            f"{p.market}{p.code}": Position(f"{p.market}{p.code}", int(p.number), p.cost_price)
            for p in asset.positions
            if p.number > 0
        }
        self.book.open(asset.cash, positions, when=self.now)

    # ------------------------------------------------------------- the ledger
    @property
    def ledger(self) -> Ledger:
        """The double-entry ledger of the strategy's money (``hkrt.strategy.ledger.Ledger``, docs/ledger.md):
        opened with the starting cash and positions, every fill of the primary broker posted as the book
        counts it (same call, same numbers), kept across days."""
        return self.book.ledger

    def set_cash(self, amount: float) -> None:
        """Start from ``amount`` yuan: the book's cash and initial cash, and the ledger re-opened with it (and
        the positions the book holds, at their cost).  ``hkrt run --cash`` does this.  Assigning
        ``strategy.book.cash`` still works before the first fill (the ledger follows the book then); after
        it, only this re-opens the ledger, and a direct assignment is reported as a difference (ERROR)."""
        if not (isinstance(amount, (int, float)) and math.isfinite(amount)):
            raise ValueError(f"cash must be a finite number of yuan, not {amount!r}")
        self.book.open(float(amount), when=self.now)

    def _fee_model_of(self, broker: str) -> Any:
        """The FeeModel that priced the fills of ``broker``: its own (the paper broker's) for the fees it
        reports, else the strategy's (None: not a FeeModel, the fees stay one total)."""
        from hkrt.core.fees import FeeModel

        for b in self.brokers:
            own = getattr(b, "fee_model", None)
            if b.name == broker and isinstance(own, FeeModel):
                return own
        return self._fees if isinstance(self._fees, FeeModel) else None

    def check_ledger(self) -> list[str]:
        """The ledger's own check and its cash, shares and fees against the book's, to the fen: each
        difference one ERROR line (``hkrt.strategy.ledger``) and one item of the list returned ([]: they
        agree).  Run at the end of every run."""
        found = self.book.differences(self.now)
        for line in found:
            ledger_log.error("ledger and book: %s", line, extra={"strategy": self.name})
        return found

    def ledger_report(self, index: int = 0) -> Reconciliation | None:
        """The ledger's cash and shares against broker ``index``'s own asset report (``Ledger.reconcile``;
        each difference a WARNING); None when that broker reports no account (a mail broker)."""
        from hkrt.broker.asset import AssetInfo

        broker = self.brokers[index]
        try:
            asset = AssetInfo.parse(broker.get_asset_info())
        except ValueError as err:
            log.info("broker %s reports no account: the ledger is not reconciled (%s)", broker.name, err)
            return None
        return self.ledger.reconcile(asset)

    # -------------------------------------------------------------- orders
    def order(
        self,
        symbol: str,
        shares: float | None = None,
        price: float | None = None,
        *,
        num: float | None = None,
        order_type: str = "market",
        tif: str = "day",
        stop_price: float | None = None,
        trail: float | None = None,
        take_profit: float | None = None,
        stop_loss: float | None = None,
        client_order_id: str | None = None,
        remark: str = "",
        stoploss: float = 0.0,
        goal_price: float = 0.0,
    ) -> Order:
        """Buy ``shares`` of ``symbol`` (sell if negative); returns the :class:`~hkrt.strategy.order.Order`,
        whose status then moves with its broker's reports (docs/orders.md).

        ``order_type``: "market" (``price``, default the latest price, is the reference the request
        carries), "limit" (at ``price``), or the emulated "stop" (a market order once the price reaches
        ``stop_price``), "stop_limit" (a limit at ``price`` then) and "trailing_stop" (``trail`` yuan
        behind the best price since placing).  ``take_profit`` / ``stop_loss`` make a bracket: sell legs
        placed as the buy fills, one cancelling the other.  ``tif``: "day", "ioc" or "fok".

        The quantity is rounded down to what the exchange accepts (100-share lots; STAR at least
        200 then single shares; Beijing at least 100 then single shares), a buy to what the cash
        pays for (less what today's open buys reserve, fees included), a sell to the shares sellable
        today (T+1) less today's open sells.  An order that fails a pre-trade check (a duplicate
        ``client_order_id``, a suspended symbol, no price, a price off the tick or outside the day's
        limits, nothing left after rounding) is returned ``rejected`` with its ``reason`` and never
        sent.  It never raises for a trading reason; a bad symbol or argument is a ValueError.
        ``stoploss``, ``goal_price`` and ``remark`` are passed to the brokers as they are (hikyuu);
        ``num`` is the former name of ``shares``.
        """
        if (shares is None) == (num is None):
            raise TypeError("order() takes the quantity once: shares (or its former name num)")
        shares = shares if shares is not None else num
        assert shares is not None
        sym = normalize_symbol(symbol)
        _check_order_arguments(shares, price, order_type, tif, stop_price, trail, take_profit, stop_loss)
        side = "buy" if shares > 0 else "sell"
        if side == "sell" and (take_profit is not None or stop_loss is not None):
            raise ValueError("take_profit / stop_loss protect a buy: a bracket's legs are sells")
        when = self.now or _china_now()
        manager = self.order_manager
        order = Order(
            client_order_id=client_order_id or manager.new_client_id(when.date()), symbol=sym, side=side, shares=0,
            order_type=order_type, time_in_force=tif, price=price if order_type in ("limit", "stop_limit") else None,
            stop_price=stop_price, trail=trail, take_profit=take_profit, stop_loss=stop_loss,
            broker=self.brokers[0].name if self.brokers else "", requested=abs(float(shares)), created=when,
            remark=remark,
        )  # fmt: skip
        sized, why = self._pretrade(order, price, when)
        if why:
            return manager.refuse(order, why)
        order.shares = sized
        return manager.submit(order, stoploss=stoploss, goal_price=goal_price)

    def signal(self, symbol: str, action: str, confidence: float = 1.0, reason: str = "") -> SignalEvent:
        """Publish this strategy's opinion instead of an order: a ``hkrt.bus.SignalEvent`` -- ``action``
        ("buy", "sell" or "flat") on ``symbol`` with ``confidence`` in 0..1 -- dated by the market clock, on
        the bus the strategy is attached to, where a ``SignalAggregator`` combines the signals of several
        strategies into one account's orders (docs/signals.md).  Returns the event.  A bad symbol, action or
        confidence is a ValueError; RuntimeError when the strategy is attached to no bus."""
        from hkrt.strategy.signals import make_signal

        event = make_signal(self.name, symbol, action, confidence, reason, self.now)
        if self.bus is None:
            raise RuntimeError(f"strategy {self.name!r} is attached to no bus: its signal would reach no one")
        self.bus.publish(event)
        return event

    def _pretrade(self, order: Order, price: float | None, when: dt.datetime) -> tuple[int, str]:
        """(shares, "") for an order that passes the pre-trade checks (hkrt.strategy.pretrade), else (0, why)."""
        sym, manager = order.symbol, self.order_manager
        if manager.is_known(order.client_order_id):
            return 0, f"duplicate client order id {order.client_order_id}: never sent"
        quote = self._quote(sym, when)
        if why := pretrade.suspended(sym, quote, when):
            return 0, why
        kind = order.order_type
        if kind in ("limit", "stop_limit"):
            reference = order.price
        elif kind == "stop":
            reference = order.stop_price
        else:  # market (the price given, else the latest), trailing_stop (the latest)
            reference = price if kind == "market" and price is not None else self.last_price(sym)
        if reference is None or not math.isfinite(reference) or reference <= 0:
            return 0, f"no valid price for {sym}: {reference}"
        why = (
            pretrade.off_tick(sym, order.price, "limit price")
            or pretrade.off_tick(sym, order.stop_price, "stop price")
            or pretrade.outside_limits(sym, order.price, quote)
        )
        if why:
            return 0, why
        order.request_price = float(reference)
        day = when.date()
        if order.side == "buy":
            return pretrade.size_buy(
                sym, order.requested, reference, self.book.cash, manager.reserved_cash(day),
                lambda n: manager.estimate_fees(sym, "buy", reference, n, day),
            )  # fmt: skip
        self.book.roll_to(day)
        held = self.book.held(sym)
        # an emulated sell (a stop) goes out when it triggers, maybe a later day: today's T+1 does not
        # bind it (the broker checks what is sellable when it arrives)
        sellable = held if order.order_type in EMULATED_TYPES else self.book.sellable(sym)
        return pretrade.size_sell(sym, order.requested, held, sellable, manager.reserved_shares(sym, day))

    def _quote(self, sym: str, when: dt.datetime) -> pretrade.Quote:
        """What the feed said of ``sym`` on the day of ``when``: for the suspension and limit checks."""
        day = when.date()
        traded = self._traded.get(sym)
        if traded is None or traded[0] != day:
            return pretrade.Quote(spots_today=self._spot_day == day, traded_today=False)
        known = self._references.get(sym)
        if known is None or known[0] != day:
            spot = next((s for s in traded[1].spots if s.symbol == sym), None)
            prev = float(spot.yesterday_close) if spot is not None and spot.yesterday_close > 0 else None
            known = (day, prev, spot.name if spot is not None else "")
            self._references[sym] = known
        return pretrade.Quote(spots_today=True, traded_today=True, prev_close=known[1], name=known[2])

    def order_value(self, symbol: str, value: float, price: float | None = None, **kwargs: Any) -> Order:
        """Buy for ``value`` yuan (sell if negative), rounded down to valid lots."""
        sym = normalize_symbol(symbol)
        px = price if price is not None else self.last_price(sym)
        if px is None or px <= 0:
            return self._refused(sym, "buy" if value > 0 else "sell", f"no valid price for {sym}", kwargs)
        return self.order(sym, value / px, px, **kwargs)

    def order_target(self, symbol: str, shares: float, price: float | None = None, **kwargs: Any) -> Order | None:
        """Buy or sell so the holding becomes ``shares`` (None when it already is)."""
        sym = normalize_symbol(symbol)
        delta = shares - self.book.held(sym)
        return self.order(sym, delta, price, **kwargs) if abs(delta) >= 1 else None

    def order_target_value(self, symbol: str, value: float, price: float | None = None, **kwargs: Any) -> Order | None:
        """Buy or sell so the holding is worth about ``value`` yuan at ``price``."""
        sym = normalize_symbol(symbol)
        px = price if price is not None else self.last_price(sym)
        if px is None or px <= 0:
            return self._refused(sym, "buy" if value > 0 else "sell", f"no valid price for {sym}", kwargs)
        return self.order_target(sym, value / px, px, **kwargs)

    def _refused(self, sym: str, side: str, why: str, kwargs: dict[str, Any]) -> Order:
        when = self.now or _china_now()
        cid = kwargs.get("client_order_id") or self.order_manager.new_client_id(when.date())
        order = Order(cid, sym, side, 0, order_type=kwargs.get("order_type", "market"),
                      time_in_force=kwargs.get("tif", "day"), created=when,
                      remark=kwargs.get("remark", ""))  # fmt: skip
        return self.order_manager.refuse(order, why)

    def cancel(self, order: Order) -> bool:
        """Ask for the rest of ``order`` to be cancelled (its status moves to ``cancelled`` when the
        broker says so; an emulated order not yet sent at once).  False when it is final already or the
        broker refused the cancel."""
        return self.order_manager.cancel(order)

    def get_order(self, client_order_id: str) -> Order | None:
        """The live Order with this client id (None if unknown)."""
        return self.order_manager.get(client_order_id)

    def open_orders(self, symbol: str | None = None, side: str | None = None) -> list[Order]:
        """The orders still working (at a broker or held by the emulator), of ``symbol`` / ``side`` if given."""
        return self.order_manager.open_orders(normalize_symbol(symbol) if symbol is not None else None, side)

    # ------------------------------------------------------- trading state
    @property
    def trading_state(self) -> str:
        """ACTIVE, REDUCING (only orders that reduce a position go out) or HALTED (none do)."""
        return self.risk.state

    def halt(self, reason: str) -> list[Order]:
        """The kill switch: refuse every new order until :meth:`resume`, and ask for every working order
        (at a broker or held by the emulator) to be cancelled.  Returns the orders asked to cancel.
        Safe from any thread; ``hkrt halt`` does this to a running strategy."""
        if not reason or not reason.strip():
            raise ValueError("halt() needs a reason: it is logged and shown until trading resumes")
        bus = self.bus
        if bus is not None and bus.running and threading.get_ident() != self._callback_thread:
            # another thread (a watchdog, a notebook cell): never wait on a callback queue a stuck
            # callback may have filled (hkrt.strategy.kill_switch)
            from hkrt.strategy.kill_switch import stop_trading

            outcome = stop_trading(self, reason)
            return outcome.asked + outcome.pending
        self.risk.halt(reason)
        cancelled = self.order_manager.cancel_all(f"cancelled by the kill switch: {reason}")
        log.warning("trading halted: %s; %d working orders asked to cancel", reason, len(cancelled),
                    extra={"strategy": self.name, "reason": reason, "cancelled": len(cancelled)})  # fmt: skip
        return cancelled

    def resume(self, reason: str = "resumed") -> bool:
        """Back to ACTIVE after :meth:`halt` or a breached limit; True when the state changed."""
        return self.risk.resume(reason)

    # ------------------------------------------------------- reconciliation
    def reconcile(self, index: int = 0) -> Reconciliation | None:
        """Compare the book with broker ``index``'s own positions and cash (each difference a WARNING);
        None when that broker reports no account (mail).  A live run does this at start, every
        ``reconcile_interval`` seconds and at the stop; the results are kept in ``reconciliations``."""
        from hkrt.strategy.reconcile import reconcile_broker

        book = {s: p.shares for s, p in self.book.positions.items()}
        result = reconcile_broker(self.brokers[index], book, self.book.cash)
        if result is not None:
            self.reconciliations.append(result)
        return result

    def _reconcile_quietly(self) -> None:
        try:
            self.reconcile()
        except Exception:  # a broker's asset query must never stop the run
            log.exception("reconciliation with the broker failed; the run goes on")

    def _order_news(self, kind: str, order: Order, event: Any) -> None:
        """The manager's listener: hand a change to ``on_order`` / a fill to ``on_trade`` callbacks, on
        the callback thread (inline when the strategy is not attached to a running bus)."""
        funcs: list[Callable[..., Any]] = list(self._order_funcs if kind == "order" else self._trade_funcs)
        if not funcs:
            return
        args = (order,) if kind == "order" else (order, event)

        def call() -> None:
            for f in funcs:
                self._safe(f, *args)

        bus = self.bus
        if bus is not None and bus.running and bus.post(call):
            return
        call()

    # ------------------------------------------------------------- records
    @property
    def orders(self) -> pd.DataFrame:
        """One row per order (refused ones included), oldest first: its lifecycle columns (ORDER_COLUMNS).
        ``price`` is the limit, or for a market order the reference price its request carried."""
        rows = []
        for o in self.order_manager.orders:
            price = o.price if o.price is not None else (o.request_price or None)
            rows.append((o.client_order_id, o.created, o.updated, o.symbol, o.side, o.order_type,
                         o.time_in_force, price, o.stop_price, o.shares, o.requested, o.filled_shares,
                         o.average_price, o.fees, o.status, o.reason, o.broker, o.broker_order_id, o.emulated,
                         o.parent_id, o.remark))  # fmt: skip
        return pd.DataFrame(rows, columns=ORDER_COLUMNS)

    @property
    def broker_orders(self) -> pd.DataFrame:
        """One row per order and broker that received it (mirrors included): the broker's answer to the
        send (``result``: Sent, Filled, Rejected, Skipped, Failed), its order id, error, latest report
        and the shares its reports filled."""
        rows = [
            (o.client_order_id, o.created, o.symbol, o.side, o.shares, leg.broker, leg.primary, leg.result,
             leg.broker_order_id, leg.error, leg.report, leg.filled_shares)
            for o, leg in self.order_manager.broker_legs
        ]  # fmt: skip
        return pd.DataFrame(rows, columns=BROKER_ORDER_COLUMNS)

    @property
    def trades(self) -> pd.DataFrame:
        """The book's fills: datetime, symbol, side, price, shares, amount and fees (yuan), client_order_id,
        trade_id, broker."""
        return pd.DataFrame([vars(t) for t in self.book.trades], columns=TRADE_COLUMNS)

    @property
    def equity(self) -> pd.DataFrame:
        """The equity curve: ``equity`` (cash + positions at the latest prices) and ``cash``, yuan, indexed
        by market time, one sample per market minute the feed delivered (the first cycle of each)."""
        frame = pd.DataFrame(list(self._equity), columns=["datetime", "equity", "cash"])
        return frame.set_index("datetime")

    def performance(self) -> Any:
        """Return, drawdown, Sharpe, Sortino, turnover, round trips and fees of the run so far
        (:func:`hkrt.strategy.performance.performance` over :attr:`equity` and :attr:`trades`; docs/performance.md).
        ValueError before the first sample."""
        from hkrt.strategy.performance import performance

        curve = self.equity
        if curve.empty:
            raise ValueError("no equity recorded yet: the strategy has not run over any market data")
        return performance(curve["equity"], self.trades, cash=curve["cash"])

    def summary(self) -> dict[str, Any]:
        """Orders, trades, fees, cash, market value and P&L (yuan) at the latest prices."""
        value = self.portfolio_value()
        statuses: dict[str, int] = {}
        for o in self.order_manager.orders:
            statuses[o.status] = statuses.get(o.status, 0) + 1
        return {
            "orders": self.order_manager.stats["orders"],
            "order_statuses": statuses,
            "trades": self.book.trade_count,
            "fees": self.book.fees,
            "initial_cash": self.book.initial_cash,
            "cash": self.book.cash,
            "market_value": value - self.book.cash,
            "portfolio_value": value,
            "pnl": value - self.book.initial_cash,
            "positions": {s: p.shares for s, p in self.book.positions.items()},
        }

    # -------------------------------------------------------------- running
    def stop(self) -> None:
        """Ask a running strategy to stop (safe from any thread and from callbacks)."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(
        self,
        address: str | None = None,
        *,
        tcp: bool | int | str | None = None,
        live: bool = True,
        until: dt.time | str | None = None,
        feed_done: Callable[[SpotAgent], bool] | None = None,
        handle_signals: bool = True,
        agent_options: dict[str, Any] | None = None,
        redis: Mapping[str, Any] | None = None,
    ) -> Strategy:
        """Subscribe to the spot feed and run until Ctrl-C, SIGTERM, :meth:`stop`, the market
        clock reaching ``until`` (a time of day), or ``feed_done(agent)`` returning True.

        ``live=True`` (a real market): each broker's ``broker_last_datetime`` is set to the
        China wall clock at start, so no order dated earlier can reach it, and the timers also
        follow the wall clock when the feed is silent.  ``live=False`` (a simulated or replayed
        day): only the feed's market time counts.

        Only ``feed_done`` returning True means the feed *ended*: the strategy then gets the
        day's last bars (the agent closes the market day on the feed's end-of-day marker, or
        here if the feed ended without one) and its timers run to the close.  Stopping for any
        other reason ends delivery at once: no bar, spot, cycle or timer after it reaches the
        callbacks (one already queued is dropped), so nothing is invented after the stop.
        With ``until``, the first cycle at or after that market time is the last delivered.

        ``redis``: read the feed from a Redis stream instead of dialling ``address``: the keyword
        arguments of :meth:`SpotAgent.start_redis` (``url``, ``group``, and optionally ``consumer``,
        ``stream``, ``retransmit_from``; docs/scale-out-redis.md).
        """
        if self.agent is not None and self.agent.running:
            raise RuntimeError("the strategy is already running")
        if live:  # a live run on a day the holiday table cannot vouch for fails now, in one line
            self.calendar.ensure_covered(_china_now().date())
        self.live = live
        self._stop.clear()
        self._halted = False
        self._until = parse_time(until) if until is not None else None
        self._last_data = time.monotonic()
        agent = SpotAgent(self.ktypes, calendar=self.calendar, bar_close_delay=self.bar_close_delay,
                          **(agent_options or {}))  # fmt: skip
        self.agent = agent
        self.attach(agent.bus)
        if live:
            started = _china_now()
            for broker in self.brokers:
                broker.broker_last_datetime = started
            self._reconcile_quietly()  # the book against the account before the first order
        restore = self._install_signals() if handle_signals else None
        try:
            if redis is not None:  # one consumer group of the collector's stream (another host, say)
                agent.start_redis(**redis)
            else:
                agent.start(address or self.address, tcp=tcp if tcp is not None else self.tcp)
            self._post(self._started)
            control = self._open_control()
            if self.deadman is not None:
                self.deadman.start(self, agent, live=live)
            next_tick = time.monotonic()
            next_reconcile = next_tick + self.reconcile_interval
            ended = False
            while not self._stop.wait(0.05) and not self._halted:
                if control is not None:
                    control.poll()  # hkrt halt / resume / status: read here, so a stuck callback cannot block them
                if feed_done is not None and feed_done(agent):
                    ended = True
                    break
                if live and time.monotonic() >= next_tick:
                    next_tick += 1.0
                    self._post(self._wall_tick)
                if live and time.monotonic() >= next_reconcile:
                    next_reconcile = time.monotonic() + self.reconcile_interval
                    self._post(self._reconcile_quietly)  # on the callback thread: the book is not moving
            if ended and self._delivering:
                self._close_day(agent)
            else:  # stopped, `until` or a broken feed: nothing more is delivered, no bar is invented
                self._halted = True
            self._post(self._stopped)
            self._flush_remote_brokers()
            if live:
                self._post(self._reconcile_quietly)
            agent.wait_idle(30)
        finally:
            if self.deadman is not None:
                self.deadman.stop()
            if self.control is not None:
                self.control.close()
                self.control = None
            agent.stop()
            self.detach()
            if restore is not None:
                restore()
        return self

    def _open_control(self) -> Any:
        """The control channel in ``<state_dir>/control`` (none without a state dir); a directory that is
        not the user's alone is refused in one line and the run goes on without it."""
        if self.state_dir is None:
            return None
        from hkrt.strategy.control import ControlChannel

        try:
            self.control = ControlChannel(self, self.state_dir).open()
        except OSError as err:
            log.error("no control channel (hkrt halt cannot reach this run): %s", err,
                      extra={"strategy": self.name, "state_dir": os.fspath(self.state_dir)})  # fmt: skip
            self.control = None
        return self.control

    def _flush_remote_brokers(self, timeout: float = 10.0) -> None:
        """A broker in another process (``hkrt.trader.RemoteBroker``) hands over its last reports before the run
        ends (on this thread: the callback thread applies them as they come, in order)."""
        for broker in self.brokers:
            flush = getattr(broker, "flush", None)
            if callable(flush) and type(broker).__module__.startswith("hkrt.trader."):
                try:
                    if not flush(timeout):
                        log.warning("broker %s did not deliver its last reports within %.0f s", broker.name, timeout)
                except Exception:
                    log.exception("flushing broker %s failed", broker.name)

    def _close_day(self, agent: SpotAgent) -> None:
        """The feed ended (``feed_done`` said so): its market day is over.  The agent closes the
        day on the feed's end-of-day marker; a feed that ended without one is closed here.
        Then the timers run to the close (market time = close + bar_close_delay)."""
        day = agent.market_day
        if day is None:
            return  # no spot came: there is no day to close
        if agent.closed_day != day:
            log.info("the feed ended without an end-of-day marker: closing its market day", extra={"day": str(day)})
            agent.close_day(day)
        end = dt.datetime.combine(day, DAY_CLOSE) + dt.timedelta(seconds=self.bar_close_delay, milliseconds=1)
        self._post(lambda: self._clock_to_close(end))

    def _clock_to_close(self, end: dt.datetime) -> None:
        if self._delivering and (self._clock is None or self._clock < end):
            self._advance_clock(end)

    def _install_signals(self) -> Callable[[], None] | None:
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

        def handler(signum: int, frame: Any) -> None:
            log.info("stopping on signal", extra={"signal": signal.Signals(signum).name})
            self._stop.set()

        for sig in previous:
            signal.signal(sig, handler)

        def restore() -> None:
            for sig, h in previous.items():
                signal.signal(sig, h)

        return restore

    def _post(self, func: Callable[[], Any]) -> None:
        """Run ``func`` on the callback thread, after everything queued before it."""
        if self.bus is not None and self.bus.running:
            self.bus.post(lambda: self._safe(func))

    def _safe(self, func: Callable[[], Any], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            log.exception("strategy callback %s raised; the strategy goes on", getattr(func, "__qualname__", func))

    # ------------------------------------------------------------ the bus
    def attach(self, bus: EventBus) -> None:
        """Subscribe the strategy to ``bus`` (leaving the bus it was attached to, if another):
        its bars, spots, cycles and the prices ``last_price`` follows.  :meth:`run` attaches it
        to its agent's bus; a test or another host attaches it to any bus and publishes
        ``BarBatch`` / ``BarClosed`` / ``SpotBatch`` / ``CycleEnded`` events by hand.  Timers
        follow the cycles' market time.  Starting and stopping the bus is the caller's."""
        if bus is self.bus:
            return
        self.detach()
        self.bus = bus
        # The clock (and the timers it fires) moves before the user's cycle callbacks see a
        # cycle; the prices move after the user's spot callbacks saw the message's spots, and
        # `until` is checked after the user's cycle callbacks: these stay at the two ends.
        self._subscriptions.append(bus.subscribe(CycleEnded, self._cycle_clock, name="Strategy.market_clock"))
        # the day's quotes (previous close, name) before anything acts on a batch: the risk engine checks an
        # order the emulator releases on the day's first batch against that day's limits, not none
        self._subscriptions.append(bus.subscribe(SpotBatch, self._track_quotes, filter=MarketFilter(self.codes),
                                                 name="Strategy.day_quotes"))  # fmt: skip
        # orders: the manager applies its brokers' ExecutionReports and publishes OrderEvent /
        # TradeEvent here; the brokers that report start publishing; the emulator follows the spots.
        # All before the user's callbacks: a paper broker matches the open orders against a batch
        # before the strategy reacts to it (an order placed on batch N trades from N on, at the book
        # the strategy saw, never at a quote it had not seen), and the emulator's triggers fire first.
        self.order_manager.attach(bus)
        self.risk.attach(bus)
        self._attach_brokers(bus)
        emulator = self.order_manager.emulator
        if emulator is not None:
            emulator.attach(bus)
        self._attach_indicators(bus)  # before the callbacks: an on_bar callback reads values with its bar counted
        for wanted in self._wanted:
            self._subscriptions.append(self._subscribe(bus, wanted))
        self._subscribe_tail(bus)
        for listener in list(self.bus_listeners):  # a SignalAggregator attaches its sources (docs/signals.md)
            listener(bus)

    def detach(self) -> None:
        """Unsubscribe the strategy from its bus (nothing is delivered to it from then on)."""
        if self.bus is not None:
            for sub in self._subscriptions + self._tail:
                self.bus.unsubscribe(sub)
            self.order_manager.detach()
            self.risk.detach()
            self._detach_brokers()
            detach_emulator = getattr(self.order_manager.emulator, "detach", None)
            if callable(detach_emulator):
                detach_emulator()
            for listener in list(self.bus_listeners):
                listener(None)
        if self.live_indicators is not None:
            self.live_indicators.detach()
        self.bus = None
        self._subscriptions, self._tail = [], []

    def _attach_indicators(self, bus: EventBus) -> None:
        from hkrt.indicators.live import LiveIndicators  # TA-Lib itself loads on the first indicator

        def history(symbol: str, ktype: KType) -> pd.DataFrame:
            return self.kdata(symbol, ktype)

        self.live_indicators = LiveIndicators(history, symbols=self.codes, ktypes=self.ktypes, clock=lambda: self.now)
        self.live_indicators.attach(bus)

    def _attach_brokers(self, bus: EventBus) -> None:
        """Brokers that report (an ``attach(bus)`` method) publish their ExecutionReports on ``bus``."""
        for broker in self.brokers:
            attach = getattr(broker, "attach", None)
            if callable(attach):
                attach(bus)

    def _detach_brokers(self) -> None:
        for broker in self.brokers:
            detach = getattr(broker, "detach", None)
            if callable(detach):
                detach()

    def _want(self, event_type: type, handler: Callable[[Any], Any], selected: Any, func: Callable[..., Any]) -> None:
        wanted = _Wanted(event_type, handler, selected, handler_name(func))
        self._wanted.append(wanted)
        if self.bus is not None:  # attached already: subscribe now, and keep the strategy's own last
            self._subscriptions.append(self._subscribe(self.bus, wanted))
            for sub in self._tail:
                self.bus.unsubscribe(sub)
            self._subscribe_tail(self.bus)

    @staticmethod
    def _subscribe(bus: EventBus, wanted: _Wanted) -> Subscription:
        return bus.subscribe(wanted.event_type, wanted.handler, filter=wanted.filter, name=wanted.name)

    def _subscribe_tail(self, bus: EventBus) -> None:
        self._tail = [
            bus.subscribe(SpotBatch, self._track_prices, filter=MarketFilter(self.codes), name="Strategy.last_price"),
            bus.subscribe(CycleEnded, self._cycle_until, name="Strategy.until"),
        ]

    # ------------------------------------------------- callback-thread work
    def _track_quotes(self, batch: SpotBatch) -> None:
        """First on each batch: the day of the latest spots and, per symbol with a trade, the batch its
        previous close and name are read from (the pre-trade and risk checks' day limits)."""
        columns = batch.columns  # the strategy's codes only (the subscription's filter)
        symbols, close = columns["symbol"], columns["close"]
        if not len(symbols):
            return
        day: dt.date = columns["datetime"][-1].astype("datetime64[D]").item()
        if self._spot_day is None or day > self._spot_day:
            self._spot_day = day
        for i in np.flatnonzero(close > 0):  # 0 = no trade yet (suspended, before the auction)
            self._traded[symbols[i].decode()] = (day, batch)

    def _track_prices(self, batch: SpotBatch) -> None:
        """Last on each batch (after the user's spot callbacks): ``last_price`` moves."""
        columns = batch.columns
        symbols, close = columns["symbol"], columns["close"]
        for i in np.flatnonzero(close > 0):
            self._prices[symbols[i].decode()] = float(close[i])

    def _halt(self, reason: str) -> None:
        """End the run without its feed's end (any thread): nothing more is delivered, no day closed."""
        if not self._halted:
            log.warning("strategy run ends: %s", reason, extra={"reason": reason})
        self._halted = True

    @property
    def _delivering(self) -> bool:
        """Whether market data still reaches the callbacks: not after stop(), `until` or a broken feed."""
        return not self._halted and not self._stop.is_set()

    def _bar_caller(self, func: Callable[[str, KType, Bar], Any]) -> Callable[[BarClosed], None]:
        def call(event: BarClosed) -> None:
            if not self._delivering:
                return
            bar = event.bar
            if self._until is not None and event.ktype.is_intraday and bar.datetime.time() > self._until:
                self._halted = True  # a bar from after `until`: the run is over
                return
            self._bump_clock(bar.datetime)
            func(event.symbol, event.ktype, bar)

        return call

    def _spot_caller(self, func: Callable[[Any], Any]) -> Callable[[Any], None]:
        def call(spot: Any) -> None:
            if self._delivering:
                self._bump_clock(spot.datetime)
                func(spot)

        return call

    def _cycle_caller(self, func: Callable[[CycleInfo], Any]) -> Callable[[CycleEnded], None]:
        def call(event: CycleEnded) -> None:
            if self._delivering:
                func(event.info)

        return call

    def _bump_clock(self, t: dt.datetime) -> None:
        """Data time seen inside a message: ``now`` moves, timers wait for the message's cycle
        event (so they fire after all its bars, whichever hooks are registered)."""
        if self._clock is None or t > self._clock:
            self._clock = t

    def _cycle_clock(self, event: CycleEnded) -> None:
        """A cycle ended: the market clock moves to its time and the timers due fire (before the
        user's cycle callbacks)."""
        info = event.info
        if self._delivering and info.market_time is not None:
            self._advance_clock(info.market_time)
            self._sample_equity(info.market_time)
            if self.risk.equity.active:  # a breached loss limit moves the trading state now, not at the next order
                self.risk.update_equity(info.market_time, self.portfolio_value())

    def _sample_equity(self, when: dt.datetime) -> None:
        """One equity sample per market minute (the first cycle of each), for :meth:`performance`."""
        minute = when.replace(second=0, microsecond=0)
        if self._equity and self._equity[-1][0].replace(second=0, microsecond=0) >= minute:
            return
        self._equity.append((when, self.portfolio_value(), self.book.cash))

    def _cycle_until(self, event: CycleEnded) -> None:
        """After the user's cycle callbacks: the market clock reached `until`, this cycle was the last."""
        when, until = event.info.market_time, self._until
        if self._delivering and until is not None and when is not None and when.time() >= until:
            self._halted = True

    def _wall_tick(self) -> None:
        """Live: fire timers by the China wall clock while the feed of *today* is silent (a lunch
        break, an outage), or when no data came at all.  A feed of another day (an old day
        replayed by mistake) never lets the wall clock in: its timers stay on its own time, so
        its orders stay dated in the past and the brokers' guard skips them."""
        now = _china_now()
        if not self._delivering:
            return
        coverage = self.calendar.coverage  # None: an unbounded calendar covers every day
        if coverage is not None and not self.calendar.covers(now.date()):  # said hourly, not a traceback a second
            log_limited(log, logging.ERROR, "calendar_coverage",
                        str(CalendarCoverageError(now.date(), coverage)), interval=3600.0)  # fmt: skip
            return
        if not self.calendar.is_trading_day(now.date()):
            return
        silent = time.monotonic() - self._last_data > WALL_CLOCK_AFTER
        if silent and (self._clock is None or self._clock.date() == now.date()):
            self._advance_clock(now, wall=True)

    def _advance_clock(self, now: dt.datetime, *, wall: bool = False) -> None:
        """Move the market clock (data time; ``wall``: the wall clock of a live run, which dates
        the orders of the timers it fires but never the data clock) and fire the due timers."""
        if not wall:
            self._last_data = time.monotonic()
            if self._clock is None or now > self._clock:
                self._clock = now
        self.book.roll_to(now.date())
        for _, timer in self.timers.advance(now):
            timer.fired += 1
            self._timer_now = now if wall else None
            self.running_timer = timer.name  # the dead-man switch names the user's timer, not the clock's handler
            try:
                self._safe(timer.func)
            finally:
                self._timer_now = None
                self.running_timer = None

    def _started(self) -> None:
        self._callback_thread = threading.get_ident()
        for f in self._start_funcs:
            self._safe(f)

    def _stopped(self) -> None:
        for f in self._stop_funcs:
            self._safe(f)
        self._safe(self.check_ledger)  # the end of a run: the ledger against the book, loudly

    @property
    def _ktype_names(self) -> list[str]:
        return [k.value for k in self.ktypes]

    def __repr__(self) -> str:
        kt, n = self._ktype_names, len(self.brokers)
        return f"Strategy({self.name!r}, codes={len(self.codes)}, ktypes={kt}, brokers={n})"


def _check_order_arguments(
    shares: float,
    price: float | None,
    order_type: str,
    tif: str,
    stop_price: float | None,
    trail: float | None,
    take_profit: float | None,
    stop_loss: float | None,
) -> None:
    """One clear ValueError for an order the strategy asked for wrongly (not a trading refusal)."""
    from hkrt.bus.trading import ORDER_TYPES, TIMES_IN_FORCE

    if order_type not in ORDER_TYPES:
        raise ValueError(f"order_type {order_type!r} is not one of {', '.join(ORDER_TYPES)}")
    if tif not in TIMES_IN_FORCE:
        raise ValueError(f"tif {tif!r} is not one of {', '.join(TIMES_IN_FORCE)}")
    if isinstance(shares, bool) or not isinstance(shares, (int, float, np.integer, np.floating)):
        raise ValueError(f"shares must be a number (negative to sell), not {shares!r}")
    if not math.isfinite(shares):
        raise ValueError(f"shares must be a finite number, not {shares}")
    if order_type in ("limit", "stop_limit") and price is None:
        raise ValueError(f"a {order_type} order needs its limit price: price=")
    if order_type in ("stop", "trailing_stop") and price is not None:
        raise ValueError(f"a {order_type} order sends a market order when it triggers: no price (use stop_limit)")
    if order_type in ("stop", "stop_limit") and stop_price is None:
        raise ValueError(f"a {order_type} order needs its trigger: stop_price=")
    if order_type not in ("stop", "stop_limit") and stop_price is not None:
        raise ValueError(f"stop_price is for stop and stop_limit orders, not {order_type}")
    if order_type == "trailing_stop" and (trail is None or not trail > 0):
        raise ValueError(f"a trailing_stop order needs trail= > 0 (yuan behind the best price), not {trail!r}")
    if order_type != "trailing_stop" and trail is not None:
        raise ValueError(f"trail is for trailing_stop orders, not {order_type}")
    for name, value in (("take_profit", take_profit), ("stop_loss", stop_loss)):
        if value is not None and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a price > 0, not {value!r}")
