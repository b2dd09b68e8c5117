"""The strategy's own book: cash, positions and trades as its orders were filled.

The book is what the strategy *believes* it holds, and it changes on fills only: the fills its
primary broker reports (``ExecutionReport`` kind "fill"), or the one fill a legacy broker's
``Filled`` answer stands for (docs/orders.md).  An order that was merely sent changes nothing.
A real broker's own view is ``Strategy.broker_asset()``; a live run starts from it
(``Strategy.sync_from_broker``).

Fees (commission, stamp tax, transfer fee) come out of the cash on every fill; a buy's fees are
also part of its cost price (what the shares cost, all in), a sell's are not (they reduce the
proceeds), so a round trip's P&L is the cash it left, fees included.

A-share settlement is T+1: shares bought today cannot be sold before the next trading day, so
``sellable`` excludes them.

Bounded: the newest ``max_trades`` trades are kept (older ones are dropped, counted in
``trades_dropped`` and logged once per drop run); the counts and ``fees`` cover every trade.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import deque
from dataclasses import dataclass, field

from hkrt.core.logs import log_limited

log = logging.getLogger("hkrt.strategy")

MAX_TRADES = 1_000_000  # trades kept in memory per book (a day of a busy strategy is a few thousand)


@dataclass
class Position:
    """One holding: shares, of which ``bought_today`` are not yet sellable; average cost in yuan
    (buy fees included)."""

    symbol: str
    shares: int = 0
    cost_price: float = 0.0
    bought_today: int = 0

    @property
    def sellable(self) -> int:
        return self.shares - self.bought_today


@dataclass(frozen=True)
class Trade:
    """One fill as the book counted it."""

    datetime: dt.datetime
    symbol: str
    side: str  # "buy" | "sell"
    price: float
    shares: int
    amount: float  # yuan, price × shares
    fees: float = 0.0  # yuan: commission + stamp tax + transfer fee
    client_order_id: str = ""  # the order it filled
    trade_id: str = ""  # the broker's id of the fill
    broker: str = ""

    @property
    def order_id(self) -> str:
        """The order's client id (the name this field had before orders had a lifecycle)."""
        return self.client_order_id


@dataclass
class Book:
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    trades: deque[Trade] = field(default_factory=lambda: deque(maxlen=MAX_TRADES))
    day: dt.date | None = None
    initial_cash: float = 0.0
    fees: float = 0.0  # paid so far, yuan
    trade_count: int = 0  # every trade counted, kept or not
    trades_dropped: int = 0  # older trades no longer kept (the bound)

    def __post_init__(self) -> None:
        self.initial_cash = self.cash

    def roll_to(self, day: dt.date) -> None:
        """A new trading day: yesterday's buys become sellable."""
        if self.day != day:
            self.day = day
            for p in self.positions.values():
                p.bought_today = 0

    def held(self, symbol: str) -> int:
        p = self.positions.get(symbol)
        return p.shares if p else 0

    def sellable(self, symbol: str) -> int:
        p = self.positions.get(symbol)
        return p.sellable if p else 0

    def fill(
        self,
        when: dt.datetime,
        symbol: str,
        side: str,
        price: float,
        shares: int,
        order_id: str | None = None,
        *,
        fees: float = 0.0,
        trade_id: str = "",
        broker: str = "",
    ) -> Trade:
        """Count one fill: ``shares`` of ``symbol`` at ``price`` yuan, ``fees`` yuan paid on it."""
        self.roll_to(when.date())
        amount = price * shares
        p = self.positions.setdefault(symbol, Position(symbol))
        if side == "buy":
            p.cost_price = (p.cost_price * p.shares + amount + fees) / (p.shares + shares)
            p.shares += shares
            p.bought_today += shares
            self.cash -= amount + fees
        else:
            p.shares -= shares
            p.bought_today = min(p.bought_today, max(p.shares, 0))
            self.cash += amount - fees
            if p.shares <= 0:
                del self.positions[symbol]
        self.fees += fees
        trade = Trade(when, symbol, side, price, shares, amount, fees, order_id or "", trade_id, broker)
        if self.trades.maxlen is not None and len(self.trades) == self.trades.maxlen:
            self.trades_dropped += 1
            log_limited(log, logging.WARNING, "book_trades_dropped",
                        f"the book keeps the newest {self.trades.maxlen} trades: older ones leave strategy.trades",
                        {"kept": self.trades.maxlen, "dropped": self.trades_dropped}, 3600.0)  # fmt: skip
        self.trades.append(trade)
        self.trade_count += 1
        return trade

    def market_value(self, prices: dict[str, float]) -> float:
        """Positions at ``prices`` (their cost where no price is known)."""
        return sum(p.shares * prices.get(s, p.cost_price) for s, p in self.positions.items())
