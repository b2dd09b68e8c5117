"""The paper venue's execution clients: ``TestOrderBroker`` (every order filled at once at its price) and
``PaperBroker`` (a simulated counter and exchange matching orders against the spot stream).

``TestOrderBroker``: no T+1, no lots, no fees: a stand-in for a real broker in tests and dry runs.  Its cash
and share checks are the paper account's own answer (a real counter refuses an order it cannot pay for
too), not a pre-trade check: those stay with the strategy (``Strategy.order``) until the risk engine.

``PaperBroker``: what a counter refuses at once is a Rejected result (off-tick or out-of-limit price, a
quantity off the lot rule, a suspended symbol, too little cash or sellable shares); an order it takes is
Sent with its paper order id, and its lifecycle follows as ``hkrt.bus.ExecutionReport`` events (accepted,
fill, cancelled, expired) on the bus it is attached to.  Fills follow the book and the traded volume of
the spots it receives, capped by a participation rate; fees by ``hkrt.core.fees.FeeModel``; bought shares
are sellable from the next trading day.  The rules, with worked examples, are in docs/paper-broker.md.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import math
import threading
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus, Spot, normalize_symbol
from hkrt.adapters.paper.config import PaperConfig
from hkrt.adapters.paper.mapping import CLOSE_TIME, order_id_of, trade_id_of
from hkrt.broker.asset import AssetInfo, BrokerPosition
from hkrt.bus.events import DayClosed, SpotBatch
from hkrt.bus.trading import ExecutionReport
from hkrt.core.fees import FeeModel, round_fen
from hkrt.core.logs import log_limited
from hkrt.core.lots import lot_rule, round_buy, round_sell
from hkrt.core.price_limits import inside_limits, is_st, on_tick, price_limits  # one comparison with the day's limits

if TYPE_CHECKING:
    from hkrt.bus.bus import EventBus, Subscription

log = logging.getLogger("hkrt.paper")

_EPS = 1e-6
_LEVELS = 5  # the book's depth in a spot


class TestOrderBroker(OrderBrokerBase):
    """Fills at the order price: a buy needs the cash, a sell needs the shares (else Rejected)."""

    __test__ = False  # not a pytest test class

    def __init__(self, cash: float = 0.0, name: str = "TestOrderBroker") -> None:
        super().__init__(name)
        self._cash = float(cash)
        self._positions: dict[tuple[str, str], BrokerPosition] = {}
        self._last: dt.datetime | None = None
        self._count = 0

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def positions(self) -> dict[tuple[str, str], BrokerPosition]:
        """(market, code) -> a copy of the holding."""
        return {k: BrokerPosition(**vars(p)) for k, p in self._positions.items()}

    def _fill(self, datetime: dt.datetime) -> OrderResult:
        self._count += 1
        self._last = datetime
        return OrderResult(OrderStatus.Filled, order_id=f"T{self._count:06d}")

    def _buy(self, request: OrderRequest) -> OrderResult:
        market, code, price, num = request.market, request.code, request.price, request.num
        cost = price * num
        if cost > self._cash + _EPS:
            why = f"insufficient cash: {cost:.2f} needed, {self._cash:.2f} held"
            return OrderResult(OrderStatus.Rejected, error=why)
        key = (market.upper(), code)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = BrokerPosition(key[0], code, 0.0)
        pos.cost_price = (pos.cost_price * pos.number + cost) / (pos.number + num)
        pos.number += num
        pos.stoploss, pos.goal_price = request.stoploss, request.goal_price
        self._cash -= cost
        return self._fill(request.datetime)

    def _sell(self, request: OrderRequest) -> OrderResult:
        market, code, price, num = request.market, request.code, request.price, request.num
        key = (market.upper(), code)
        pos = self._positions.get(key)
        held = pos.number if pos else 0.0
        if num > held + _EPS:
            return OrderResult(OrderStatus.Rejected, error=f"insufficient shares of {key[0]}{code}: {held:g} held")
        assert pos is not None
        pos.number -= num
        if pos.number <= _EPS:
            del self._positions[key]
        self._cash += price * num
        return self._fill(request.datetime)

    def _cancel(self, order_id: str) -> OrderResult:
        why = "paper orders fill at once; nothing to cancel"
        return OrderResult(OrderStatus.Rejected, order_id=order_id, error=why)

    def asset_info(self) -> AssetInfo:
        return AssetInfo(cash=self._cash, positions=list(self.positions.values()), datetime=self._last)

    def _get_asset_info(self) -> str:
        return self.asset_info().to_json()


# ------------------------------------------------------------------------------------------- PaperBroker


def _money(value: float) -> float:
    """Yuan kept to the milli-yuan: amounts are ticks (0.01 / 0.001) × whole shares, fees whole fen."""
    return round(value, 3)


@dataclass
class _Holding:
    """One symbol held by the paper account."""

    shares: int = 0
    bought_today: int = 0  # T+1: not sellable before the next trading day
    reserved: int = 0  # by open sells
    cost: float = 0.0  # yuan paid for the shares held, buy fees included (average cost)
    stoploss: float = 0.0
    goal_price: float = 0.0

    @property
    def sellable(self) -> int:
        return self.shares - self.bought_today - self.reserved


@dataclass(eq=False)
class _Order:
    """One order at the paper counter."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str  # "buy" | "sell"
    shares: int
    order_type: str  # "limit" | "market"
    time_in_force: str  # "day" | "ioc" | "fok"
    limit: float | None  # None: market
    day: dt.date
    created: dt.datetime  # market time; a spot matches it only when dated after it
    stoploss: float = 0.0
    goal_price: float = 0.0
    reserve_price: float = 0.0  # buys: yuan per share held back (the limit, or the day's limit up)
    reserved_cash: float = 0.0  # buys: what this order holds back now, fees included
    filled: int = 0
    commission: float = 0.0  # so far (the minimum is per order)
    fees: float = 0.0  # so far
    traded: float = 0.0  # amount of the fills so far, yuan (the commission merges an order's fills)

    @property
    def remaining(self) -> int:
        return self.shares - self.filled

    def reaches(self, price: float) -> bool:
        """Whether the order may trade at ``price`` (a market order at any)."""
        if self.limit is None:
            return True
        return price <= self.limit + _EPS if self.side == "buy" else price >= self.limit - _EPS


class _Quote:
    """The latest spot of one symbol and what our own orders took from its book."""

    __slots__ = (
        "ask",
        "ask_volume",
        "bid",
        "bid_volume",
        "close",
        "day",
        "high",
        "limits",
        "low",
        "name",
        "spot",
        "taken",
        "time",
        "volume",
    )

    def __init__(self, spot: Spot, limits: tuple[float, float] | None) -> None:
        self.spot = spot
        self.time: dt.datetime = spot.datetime
        self.day = self.time.date()
        self.close = spot.close
        self.volume = spot.volume
        self.high, self.low = spot.high, spot.low
        self.name = spot.name
        self.bid, self.bid_volume = list(spot.bid), list(spot.bid_volume)
        self.ask, self.ask_volume = list(spot.ask), list(spot.ask_volume)
        self.limits = limits  # (down, up); None when the previous close is unknown
        self.taken = {"buy": [0] * _LEVELS, "sell": [0] * _LEVELS}  # shares our fills took per level

    @property
    def trading(self) -> bool:
        """False for a suspended symbol: an empty book on both sides and no volume (or no last price)."""
        empty_book = self.bid[0] <= 0 and self.ask[0] <= 0
        return not (empty_book and (self.volume <= 0 or self.close <= 0))

    def book(self, side: str) -> list[tuple[int, float, float]]:
        """(level, price, displayed shares) of the side an order of ``side`` trades against."""
        prices, volumes = (self.ask, self.ask_volume) if side == "buy" else (self.bid, self.bid_volume)
        return [(i, p, v) for i, (p, v) in enumerate(zip(prices, volumes, strict=False)) if p > 0 and v > 0]

    def sealed(self, side: str) -> bool:
        """At limit up with no ask (no buy fills), or at limit down with no bid (no sell fills)."""
        if self.limits is None:
            return False
        down, up = self.limits
        if side == "buy":
            return self.ask[0] <= 0 and self.close >= up - _EPS
        return self.bid[0] <= 0 and 0 < self.close <= down + _EPS


_LEVEL_COLUMNS = ("bid", "bid_volume", "ask", "ask_volume")
_PRICE_COLUMNS = ("yesterday_close", "open", "high", "low", "close", "volume", "amount")
_QUOTE_COLUMNS = frozenset({"name", *_PRICE_COLUMNS, *_LEVEL_COLUMNS})  # all a quote reads


def _spot_from_row(columns: dict[str, np.ndarray], row: int, symbol: str) -> Spot:
    """Row ``row`` of a batch's columns as the ``Spot`` the batch decodes it to (absent columns: 0 / "")."""
    fields: dict[str, Any] = {"symbol": symbol, "datetime": columns["datetime"][row].astype("datetime64[ms]").item()}
    for key in _PRICE_COLUMNS:
        column = columns.get(key)
        if column is not None:
            fields[key] = float(column[row])
    name = columns.get("name")
    if name is not None:
        value = name[row]
        fields["name"] = value.decode() if isinstance(value, bytes) else str(value)
    for key in _LEVEL_COLUMNS:
        column = columns.get(key)
        if column is not None:
            fields[key] = column[row].tolist()
    return Spot(**fields)


class PaperBroker(OrderBrokerBase):
    """A simulated A-share counter and exchange: orders match against the spots of the bus it is attached
    to (docs/paper-broker.md).

    ``cash``: starting yuan; ``fees``: the account's :class:`~hkrt.core.fees.FeeModel`; ``participation``: the
    share of the volume one spot's fills may take (of the traded volume since the previous spot for an order
    resting at the counter, of each displayed book level for an order matched on arrival);
    ``max_open_orders``: a new order past it is rejected (open orders are never dropped);
    ``max_kept_orders``: finished orders remembered for ``cancel`` answers; ``max_undelivered``: reports
    held while no bus takes them (the oldest dropped past it, counted and logged).

    Thread-safe: ``submit``/``cancel`` from any thread, spots on the bus's callback thread; one lock holds
    the account and the books, and reports go out in the order they were made.
    """

    def __init__(
        self,
        cash: float = 0.0,
        *,
        name: str = "PaperBroker",
        fees: FeeModel | None = None,
        participation: float = 0.25,
        max_open_orders: int = 1000,
        max_kept_orders: int = 10_000,
        max_undelivered: int = 100_000,
    ) -> None:
        super().__init__(name)
        if not (math.isfinite(cash) and cash >= 0):
            raise ValueError(f"cash must be a finite amount of yuan, 0 or more, not {cash!r}")
        if not (math.isfinite(participation) and 0 < participation <= 1):
            raise ValueError(f"participation must be a fraction in (0, 1], not {participation!r}")
        if max_open_orders < 1 or max_kept_orders < 1 or max_undelivered < 1:
            raise ValueError("max_open_orders, max_kept_orders and max_undelivered must be at least 1")
        self.fee_model = fees or FeeModel()
        self.participation = float(participation)
        self.max_open_orders = max_open_orders
        self.max_kept_orders = max_kept_orders
        self.max_undelivered = max_undelivered
        self._lock = threading.RLock()
        self._cash = float(cash)
        self._reserved_cash = 0.0
        self._holdings: dict[str, _Holding] = {}
        self._open: dict[str, _Order] = {}  # order id -> order, in arrival order (time priority)
        self._open_by_symbol: dict[str, dict[str, _Order]] = {}  # symbol -> its open orders, in arrival order
        self._finished: OrderedDict[str, str] = OrderedDict()  # order id -> final status, the newest kept
        self._quotes: dict[str, _Quote] = {}  # symbol -> its latest spot (quotes made on demand)
        # symbol -> its latest spot, for symbols without open orders: a Spot, or (columns, row) of a batch
        self._spots: dict[str, Spot | tuple[dict[str, np.ndarray], int]] = {}
        # symbol -> ((previous close, name), its day's limits): one computation per symbol and day
        self._limits: dict[str, tuple[tuple[float, str], tuple[float, float] | None]] = {}
        self._market_day: dt.date | None = None  # the day of the newest spot
        self._closed_day: dt.date | None = None  # the newest day a DayClosed closed
        self._last_time: dt.datetime | None = None
        self._orders = 0
        self._trades = 0
        self._outbox: deque[ExecutionReport] = deque()
        self._emit_lock = threading.Lock()
        self._bus: EventBus | None = None
        self._subscriptions: list[Subscription] = []
        self._stats = {
            "accepted": 0,
            "rejected": 0,
            "fills": 0,
            "cancelled": 0,
            "expired": 0,
            "reports_published": 0,
            "report_publish_failures": 0,
            "reports_dropped": 0,
        }

    # ---------------------------------------------------------------------------------- account
    @property
    def cash(self) -> float:
        """Yuan held (reserved included)."""
        with self._lock:
            return self._cash

    @property
    def reserved_cash(self) -> float:
        """Yuan held back by open buys (their price × shares left + estimated fees)."""
        with self._lock:
            return self._reserved_cash

    @property
    def available_cash(self) -> float:
        """Yuan a new buy may use."""
        with self._lock:
            return _money(self._cash - self._reserved_cash)

    @property
    def positions(self) -> dict[tuple[str, str], BrokerPosition]:
        """(market, code) -> the holding (shares held, average cost with buy fees)."""
        with self._lock:
            return {(s[:2], s[2:]): self._position(s, h) for s, h in self._holdings.items() if h.shares > 0}

    def sellable(self, symbol: str) -> int:
        """Shares of ``symbol`` a new sell may use: held, less bought today (T+1), less reserved by open sells."""
        with self._lock:
            holding = self._holdings.get(normalize_symbol(symbol))
            return holding.sellable if holding else 0

    def open_orders(self) -> list[dict[str, Any]]:
        """The open orders, oldest first: id, client id, symbol, side, shares, filled, type, tif, limit."""
        with self._lock:
            return [
                {
                    "order_id": o.order_id,
                    "client_order_id": o.client_order_id,
                    "symbol": o.symbol,
                    "side": o.side,
                    "shares": o.shares,
                    "filled": o.filled,
                    "order_type": o.order_type,
                    "time_in_force": o.time_in_force,
                    "limit": o.limit,
                    "fees": o.fees,
                }
                for o in self._open.values()
            ]

    def stats(self) -> dict[str, int]:
        """Counters since the broker was made, and ``open_orders`` / ``reports_waiting`` now."""
        with self._lock:
            return {**self._stats, "open_orders": len(self._open), "reports_waiting": len(self._outbox)}

    def _position(self, symbol: str, holding: _Holding) -> BrokerPosition:
        cost_price = holding.cost / holding.shares if holding.shares else 0.0
        return BrokerPosition(
            symbol[:2], symbol[2:], float(holding.shares), holding.stoploss, holding.goal_price, cost_price
        )

    def asset_info(self) -> AssetInfo:
        with self._lock:
            return AssetInfo(cash=self._cash, positions=list(self.positions.values()), datetime=self._last_time)

    def _get_asset_info(self) -> str:
        return self.asset_info().to_json()

    # ---------------------------------------------------------------------------------- the bus
    def attach(self, bus: EventBus) -> None:
        """Receive ``SpotBatch`` and ``DayClosed`` from ``bus`` and publish reports on it (those made while
        no bus was attached go out now)."""
        self.detach()
        self._bus = bus
        self._subscriptions = [
            bus.subscribe(SpotBatch, self.on_spots, name=f"{self.name}.spots"),
            bus.subscribe(DayClosed, self.on_day_closed, name=f"{self.name}.day_closed"),
        ]
        self._flush()

    def detach(self) -> None:
        """Stop receiving market data and publishing (reports are kept until the next ``attach``)."""
        bus, self._bus = self._bus, None
        for sub in self._subscriptions:
            if bus is not None:
                bus.unsubscribe(sub)
        self._subscriptions = []

    def on_spots(self, batch: SpotBatch | Iterable[Spot]) -> None:
        """Match the open orders against these spots, in order (the bus calls this for each SpotBatch)."""
        with self._lock:
            if not (isinstance(batch, SpotBatch) and self._on_columns(batch)):
                for spot in batch.spots if isinstance(batch, SpotBatch) else batch:
                    self._on_spot(spot)
        self._flush()

    def _on_columns(self, batch: SpotBatch) -> bool:
        """A batch of one market day read as columns: only the rows of symbols with open orders become
        ``Spot`` objects and are matched (in row order, as ``_on_spot`` would); every other row is kept as a
        reference, made a quote only when an order needs it.  The same outcome as spot by spot, without a
        Python object per row of a whole-market batch.  False (nothing done) for a batch this cannot take:
        columns without the whole quote, or spots of more than one day (then the spots go one by one)."""
        columns = batch.columns
        symbols, times = columns.get("symbol"), columns.get("datetime")
        if symbols is None or times is None or symbols.dtype.kind != "S" or not columns.keys() >= _QUOTE_COLUMNS:
            return False  # columns that do not hold the whole quote (a batch made of Spot objects): spot by spot
        valid = symbols != b""  # a row without a valid symbol has no Spot
        if not valid.all():
            columns = {k: v[valid] for k, v in columns.items()}
            symbols, times = columns["symbol"], columns["datetime"]
        if not len(symbols):
            return True
        stamps = times.astype("datetime64[ms]")
        first, last = stamps.min(), stamps.max()
        if first.astype("datetime64[D]") != last.astype("datetime64[D]"):
            return False
        day, when = first.astype("datetime64[D]").item(), last.item()
        if self._market_day is None or day > self._market_day:
            if self._market_day is not None:
                self._close_day(self._market_day)
            self._market_day = day
        if self._last_time is None or when > self._last_time:
            self._last_time = when
        names = symbols.astype("U8").tolist()
        watched = [sym.encode() for sym, orders in self._open_by_symbol.items() if orders]
        rows = np.nonzero(np.isin(symbols, watched))[0].tolist() if watched else []
        if rows:
            kept = set(rows)
            self._spots.update((names[i], (columns, i)) for i in range(len(names)) if i not in kept)
        else:
            self._spots.update(zip(names, zip(itertools.repeat(columns), range(len(names)), strict=False), strict=True))
        for i in rows:  # in row order: a symbol's spots match one after another, as they came
            self._on_spot(_spot_from_row(columns, i, names[i]))
        return True

    def on_day_closed(self, event: DayClosed) -> None:
        """The market day ``event.day`` closed: its open orders expire, its buys become sellable."""
        with self._lock:
            self._close_day(event.day)
        self._flush()

    # ---------------------------------------------------------------------------------- orders
    def _buy(self, request: OrderRequest) -> OrderResult:
        return self._submit("buy", request)

    def _sell(self, request: OrderRequest) -> OrderResult:
        return self._submit("sell", request)

    def _submit(self, side: str, request: OrderRequest) -> OrderResult:
        with self._lock:
            order, why = self._admit(side, request)
            if order is None:
                self._stats["rejected"] += 1
                log.info(
                    "paper order rejected: %s",
                    why,
                    extra={
                        "broker": self.name,
                        "symbol": request.symbol,
                        "side": side,
                        "client_order_id": request.client_order_id,
                    },
                )
                result = OrderResult(OrderStatus.Rejected, error=why)
            else:
                self._arrive(order)
                result = OrderResult(OrderStatus.Sent, order_id=order.order_id)
        self._flush()
        return result

    def _admit(self, side: str, request: OrderRequest) -> tuple[_Order | None, str]:
        """The order the counter takes from ``request``, or None and why it refuses it."""
        try:
            symbol = normalize_symbol(request.symbol)
        except ValueError:
            return None, f"unknown symbol {request.symbol!r}"
        order_type, tif = request.order_type, request.time_in_force
        if order_type not in ("limit", "market"):
            return None, f"order type {order_type!r}: the counter takes limit and market orders"
        if tif not in ("day", "ioc", "fok"):
            return None, f"time in force {tif!r}: the counter takes day, ioc and fok"
        shares = round(request.num)
        if abs(request.num - shares) > _EPS:
            return None, f"{request.num:g} shares is not a whole number of shares"
        when: dt.datetime = request.datetime
        day = when.date()
        if self._closed_day is not None and day <= self._closed_day:
            return None, f"the market day {day} is closed"
        if self._market_day is not None and day < self._market_day:
            return None, f"the order is dated {day}, the market is on {self._market_day}"
        if len(self._open) >= self.max_open_orders:
            return None, f"too many open orders: {len(self._open)} (max_open_orders)"
        quote = self._quote(symbol)
        if quote is None:
            return None, f"{symbol} has no quote: suspended, or not in the feed"
        if quote.day != day:
            return None, f"{symbol} has no quote on {day}: suspended, or its first spot of the day has not come"
        if not quote.trading:
            return None, f"{symbol} is suspended: its quote of {day} shows no trading"
        limit: float | None = None
        if order_type == "limit":
            limit = float(request.price)
            if not limit > 0:
                return None, f"limit price {limit:g} is not a positive price"
            if not on_tick(symbol, limit):
                return None, f"limit price {limit:g} is off the tick of {symbol}"
            if quote.limits is not None and not inside_limits(limit, quote.limits):
                down, up = quote.limits
                return None, f"limit price {limit:g} is outside the day's limits {down:g}..{up:g} of {symbol}"
        holding = self._holdings.get(symbol)
        rule = lot_rule(symbol)
        if side == "sell":
            sellable = holding.sellable if holding else 0
            if shares > sellable:
                today = holding.bought_today if holding else 0
                reserved = holding.reserved if holding else 0
                return None, (
                    f"insufficient shares of {symbol}: {sellable} sellable ({today} bought today, "
                    f"sellable from the next trading day; {reserved} held by open sells)"
                )
            if round_sell(symbol, shares, sellable) != shares:
                return None, (
                    f"{shares} shares is off the lot rule of the {rule.board} board: sells of at least "
                    f"{rule.minimum}, in steps of {rule.step}, or the whole holding"
                )
        elif round_buy(symbol, shares) != shares:
            return None, (
                f"{shares} shares is off the lot rule of the {rule.board} board: buys of at least "
                f"{rule.minimum}, in steps of {rule.step}"
            )
        order = _Order(
            order_id_of(self._orders + 1),
            request.client_order_id,
            symbol,
            side,
            shares,
            order_type,
            tif,
            limit,
            day,
            when,
            request.stoploss,
            request.goal_price,
        )
        if side == "buy":
            order.reserve_price = limit if limit is not None else self._worst_buy_price(quote)
            need = self._reserve_for(order)
            available = _money(self._cash - self._reserved_cash)
            if need > available + _EPS:
                return None, f"insufficient cash: {need:.2f} needed with estimated fees, {available:.2f} available"
        self._orders += 1
        return order, ""

    @staticmethod
    def _worst_buy_price(quote: _Quote) -> float:
        """What a market buy may pay at most today: the limit up, else the highest price in view."""
        if quote.limits is not None:
            return quote.limits[1]
        return float(max([quote.close, *quote.ask]))

    def _reserve_for(self, order: _Order) -> float:
        """Cash a buy holds back for its remaining shares: at its reserve price, with their fees."""
        left = order.remaining
        if left <= 0:
            return 0.0
        fees = self.fee_model.fill_fees(
            order.symbol,
            "buy",
            order.reserve_price,
            left,
            order.day,
            commission_so_far=order.commission,
            amount_so_far=order.traded,
        )
        return _money(order.reserve_price * left + fees.total)

    def _arrive(self, order: _Order) -> None:
        """A taken order: reserve for it, report it accepted, match it against the last quote."""
        self._stats["accepted"] += 1
        self._last_time = max(self._last_time or order.created, order.created)
        if order.side == "buy":
            order.reserved_cash = self._reserve_for(order)
            self._reserved_cash = _money(self._reserved_cash + order.reserved_cash)
        else:
            self._holdings[order.symbol].reserved += order.shares
        self._open[order.order_id] = order
        self._open_by_symbol.setdefault(order.symbol, {})[order.order_id] = order
        self._report(order, "accepted", order.created)
        quote = self._quote(order.symbol)
        assert quote is not None  # _admit saw it
        takes = self._book_takes(order, quote, budget=None)
        if order.time_in_force == "fok" and sum(n for _, _, n in takes) < order.shares:
            able = sum(n for _, _, n in takes)
            self._finish(order, "cancelled", order.created, f"fok: {able} of {order.shares} could fill at once")
            return
        for level, price, shares in takes:
            quote.taken[order.side][level] += shares
            self._fill(order, shares, price, order.created)
        if order.order_id in self._open and order.time_in_force != "day":
            self._finish(
                order,
                "cancelled",
                order.created,
                f"{order.time_in_force}: {order.remaining} of {order.shares} did not fill at once",
            )

    def _cancel(self, order_id: str) -> OrderResult:
        with self._lock:
            order = self._open.get(order_id)
            if order is None:
                final = self._finished.get(order_id)
                why = f"order {order_id} is {final}" if final else f"unknown order {order_id}"
                result = OrderResult(OrderStatus.Rejected, order_id=order_id, error=why)
            else:
                when = max(self._last_time or order.created, order.created)
                self._finish(order, "cancelled", when, "cancelled by request")
                result = OrderResult(OrderStatus.Sent, order_id=order_id)
        self._flush()
        return result

    # ---------------------------------------------------------------------------------- matching
    def _quote(self, symbol: str) -> _Quote | None:
        quote = self._quotes.get(symbol)
        spot = self._spots.pop(symbol, None)
        if spot is not None:
            if isinstance(spot, tuple):  # a row of a batch read as columns
                spot = _spot_from_row(spot[0], spot[1], symbol)
            quote = self._quotes[symbol] = self._new_quote(symbol, spot)
        return quote

    def _new_quote(self, symbol: str, spot: Spot) -> _Quote:
        """The spot as a quote, with the day's price limits (computed once per symbol and previous close)."""
        key = (spot.yesterday_close, spot.name)
        cached = self._limits.get(symbol)
        if cached is not None and cached[0] == key:
            limits = cached[1]
        else:
            prev_close, name = key
            limits = price_limits(symbol, prev_close, st=is_st(name)) if prev_close > 0 else None
            self._limits[symbol] = (key, limits)
        return _Quote(spot, limits)

    def _on_spot(self, spot: Spot) -> None:
        when: dt.datetime = spot.datetime
        day = when.date()
        if self._market_day is None or day > self._market_day:
            if self._market_day is not None:
                self._close_day(self._market_day)
            self._market_day = day
        if self._last_time is None or when > self._last_time:
            self._last_time = when
        symbol = spot.symbol
        by_symbol = self._open_by_symbol.get(symbol)
        if not by_symbol:
            self._quotes.pop(symbol, None)
            self._spots[symbol] = spot  # a quote is made only when an order needs it
            return
        previous = self._quote(symbol)
        quote = self._quotes[symbol] = self._new_quote(symbol, spot)
        if previous is not None and previous.day == quote.day:
            traded = max(quote.volume - previous.volume, 0.0)
        else:
            traded = quote.volume
        if traded <= 0 or not quote.trading:
            return
        budget = {side: math.floor(self.participation * traded + _EPS) for side in ("buy", "sell")}
        for order in list(by_symbol.values()):
            if order.order_id not in self._open or when <= order.created or order.day != day:
                continue  # a spot dated at or before the order reports trades it was not there for
            side = order.side
            if budget[side] <= 0 or quote.sealed(side):
                continue
            takes = self._book_takes(order, quote, budget=budget[side])
            if not takes and order.limit is not None and self._traded_through(order, quote, previous):
                takes = [(-1, order.limit, min(order.remaining, budget[side]))]
            for level, price, shares in takes:
                if level >= 0:
                    quote.taken[side][level] += shares
                budget[side] -= self._fill(order, shares, price, when)

    @staticmethod
    def _traded_through(order: _Order, quote: _Quote, previous: _Quote | None) -> bool:
        """Whether trades since the previous spot reached the order's limit: the last price at or through
        it, or a new day low (buy) / high (sell) at or through it."""
        assert order.limit is not None
        if order.side == "buy":
            new_low = previous is not None and 0 < quote.low < previous.low
            lowest = min(quote.close, quote.low) if new_low else quote.close
            return 0 < lowest <= order.limit + _EPS
        new_high = previous is not None and quote.high > previous.high > 0
        highest = max(quote.close, quote.high) if new_high else quote.close
        return highest >= order.limit - _EPS

    def _book_takes(self, order: _Order, quote: _Quote, *, budget: int | None) -> list[tuple[int, float, int]]:
        """(level, price, shares) ``order`` takes from the quote's opposite book, best level first.

        ``budget`` None: an order arriving: each level gives at most participation × its displayed shares.
        Else an order resting: each level gives at most its displayed shares, all levels at most ``budget``.
        Shares our earlier fills took from a level of this quote are not there again."""
        if quote.sealed(order.side):
            return []
        takes: list[tuple[int, float, int]] = []
        left = order.remaining
        for level, price, shown in quote.book(order.side):
            if left <= 0 or (budget is not None and budget <= 0) or not order.reaches(price):
                break
            cap = math.floor(self.participation * shown + _EPS) if budget is None else int(shown)
            shares = min(left, cap - quote.taken[order.side][level])
            if budget is not None:
                shares = min(shares, budget)
                budget -= max(shares, 0)
            if shares > 0:
                takes.append((level, price, shares))
                left -= shares
        return takes

    def _fill(self, order: _Order, shares: int, price: float, when: dt.datetime) -> int:
        """Trade ``shares`` of ``order`` at ``price``: cash, holding, fees, the report; the shares traded
        (fewer for a buy the cash cannot pay for, which can only happen when a market buy's limits were
        unknown)."""
        side, symbol = order.side, order.symbol
        if side == "buy":
            shares = self._affordable(order, shares, price)
            if shares <= 0:
                return 0
        fees = self.fee_model.fill_fees(
            symbol, side, price, shares, order.day, commission_so_far=order.commission, amount_so_far=order.traded
        )
        amount = price * shares
        holding = self._holdings.setdefault(symbol, _Holding())
        if side == "buy":
            self._cash = _money(self._cash - amount - fees.total)
            holding.shares += shares
            holding.bought_today += shares
            holding.cost = _money(holding.cost + amount + fees.total)
            holding.stoploss, holding.goal_price = order.stoploss, order.goal_price
        else:
            self._cash = _money(self._cash + amount - fees.total)
            holding.cost = _money(holding.cost * (holding.shares - shares) / holding.shares)
            holding.shares -= shares
            holding.reserved -= shares
            if holding.shares <= 0:
                del self._holdings[symbol]
        order.filled += shares
        order.traded += price * shares
        order.commission = round_fen(order.commission + fees.commission)
        order.fees = round_fen(order.fees + fees.total)
        if side == "buy":
            self._rereserve(order)
        self._trades += 1
        self._stats["fills"] += 1
        self._outbox_put(
            ExecutionReport(
                self.name,
                "fill",
                order.client_order_id,
                order.order_id,
                symbol,
                side,
                shares=shares,
                price=price,
                fees=fees.total,
                trade_id=trade_id_of(self._trades),
                cumulative_shares=order.filled,
                datetime=when,
            )
        )
        if order.remaining <= 0:
            self._finish(order, "filled", when, "")
        return shares

    def _affordable(self, order: _Order, shares: int, price: float) -> int:
        """At most ``shares``, as many as the cash free for this order pays for with fees."""
        free = self._cash - self._reserved_cash + order.reserved_cash
        while shares > 0:
            fees = self.fee_model.fill_fees(
                order.symbol,
                "buy",
                price,
                shares,
                order.day,
                commission_so_far=order.commission,
                amount_so_far=order.traded,
            )
            if price * shares + fees.total <= free + _EPS:
                break
            shares = min(shares - 1, int(free / price))
        return max(shares, 0)

    def _rereserve(self, order: _Order) -> None:
        held = self._reserve_for(order) if order.order_id in self._open and order.remaining > 0 else 0.0
        self._reserved_cash = _money(max(self._reserved_cash - order.reserved_cash + held, 0.0))
        order.reserved_cash = held

    def _finish(self, order: _Order, status: str, when: dt.datetime, reason: str) -> None:
        """The order leaves the book: its reservation is released; cancelled / expired are reported."""
        del self._open[order.order_id]
        by_symbol = self._open_by_symbol[order.symbol]
        del by_symbol[order.order_id]
        if not by_symbol:
            del self._open_by_symbol[order.symbol]
        if order.side == "buy":
            self._rereserve(order)
        else:
            holding = self._holdings.get(order.symbol)
            if holding is not None:
                holding.reserved -= order.remaining
        if status != "filled":
            self._stats[status] += 1
            self._report(order, status, when, reason)
        self._finished[order.order_id] = status
        while len(self._finished) > self.max_kept_orders:
            self._finished.popitem(last=False)

    def _close_day(self, day: dt.date) -> None:
        """Day ``day`` is over: its open orders (and older ones) expire; shares bought become sellable."""
        close = dt.datetime.combine(day, CLOSE_TIME)
        for order in [o for o in self._open.values() if o.day <= day]:
            self._finish(order, "expired", close, f"day order expired at the close of {day}")
        if self._market_day is None or day >= self._market_day:
            for holding in self._holdings.values():
                holding.bought_today = 0
        if self._closed_day is None or day > self._closed_day:
            self._closed_day = day

    # ---------------------------------------------------------------------------------- reports
    def _report(self, order: _Order, kind: str, when: dt.datetime, reason: str = "") -> None:
        self._outbox_put(
            ExecutionReport(
                self.name,
                kind,
                order.client_order_id,
                order.order_id,
                order.symbol,
                order.side,
                cumulative_shares=order.filled,
                reason=reason,
                datetime=when,
            )
        )

    def _outbox_put(self, report: ExecutionReport) -> None:
        self._outbox.append(report)
        if len(self._outbox) > self.max_undelivered:
            self._outbox.popleft()
            self._stats["reports_dropped"] += 1
            self._warn(
                "dropped",
                "execution report dropped, no bus took the reports (max_undelivered)",
                dropped=self._stats["reports_dropped"],
            )

    def _warn(self, kind: str, message: str, **fields: int) -> None:
        key = (kind, id(self))
        log_limited(log, logging.WARNING, key, f"paper broker: {message}", {"broker": self.name, **fields})

    def _flush(self) -> None:
        """Publish the waiting reports in order.  One thread publishes at a time; the others leave theirs to
        it and return at once (the bus's callback thread must never wait for a producer that waits for it)."""
        while self._outbox and self._bus is not None:
            if not self._emit_lock.acquire(blocking=False):
                return  # the holder publishes ours too (it looks again after releasing)
            try:
                while self._outbox:
                    bus = self._bus
                    if bus is None:
                        return
                    report = self._outbox[0]
                    if not bus.publish(report):
                        with self._lock:
                            self._stats["report_publish_failures"] += 1
                        self._warn(
                            "refused",
                            "the bus refused an execution report (stopped?): kept for later",
                            waiting=len(self._outbox),
                        )
                        return
                    with self._lock:  # unless the bound dropped it meanwhile (then it is no longer first)
                        if self._outbox and self._outbox[0] is report:
                            self._outbox.popleft()
                        self._stats["reports_published"] += 1
            finally:
                self._emit_lock.release()


def make_execution_client(config: PaperConfig) -> OrderBrokerBase:
    """The paper broker (``hkrt run --broker paper``/``test``): ``fills="instant"`` the TestOrderBroker,
    ``"market"`` the PaperBroker, with the config's cash and fee schedule."""
    if config.fills == "instant":
        return TestOrderBroker(cash=config.cash, name=config.name or "TestOrderBroker")
    fees = FeeModel(config.commission_rate, config.min_commission, config.transfer_fee_rate)
    return PaperBroker(
        config.cash,
        name=config.name or "PaperBroker",
        fees=fees,
        participation=config.participation,
        max_open_orders=config.max_open_orders,
    )
