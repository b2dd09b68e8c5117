"""The strategy's own book: cash, positions and trades as its orders went through.

The book is what the strategy *believes* it holds: an order counts as filled at its price
once the primary broker took it (``Filled``, or ``Sent`` by a broker that reports no fills,
such as mail).  A real broker's own view is ``Strategy.broker_asset()``; a live run starts
from it (``Strategy.sync_from_broker``).

A-share settlement is T+1: shares bought today cannot be sold before the next trading day,
so ``sellable`` excludes them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass
class Position:
    """One holding: shares, of which ``bought_today`` are not yet sellable; average cost in yuan."""

    symbol: str
    shares: int = 0
    cost_price: float = 0.0
    bought_today: int = 0

    @property
    def sellable(self) -> int:
        return self.shares - self.bought_today


@dataclass(frozen=True)
class Trade:
    datetime: dt.datetime
    symbol: str
    side: str  # "buy" | "sell"
    price: float
    shares: int
    amount: float  # yuan, price × shares
    order_id: str | None


@dataclass
class Book:
    cash: float
    positions: dict[str, Position] = field(default_factory=dict)
    trades: list[Trade] = field(default_factory=list)
    day: dt.date | None = None
    initial_cash: float = 0.0

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

    def fill(self, when: dt.datetime, symbol: str, side: str, price: float, shares: int, order_id: str | None) -> Trade:
        self.roll_to(when.date())
        amount = price * shares
        p = self.positions.setdefault(symbol, Position(symbol))
        if side == "buy":
            p.cost_price = (p.cost_price * p.shares + amount) / (p.shares + shares)
            p.shares += shares
            p.bought_today += shares
            self.cash -= amount
        else:
            p.shares -= shares
            self.cash += amount
            if p.shares <= 0:
                del self.positions[symbol]
        trade = Trade(when, symbol, side, price, shares, amount, order_id)
        self.trades.append(trade)
        return trade

    def market_value(self, prices: dict[str, float]) -> float:
        """Positions at ``prices`` (their cost where no price is known)."""
        return sum(p.shares * prices.get(s, p.cost_price) for s, p in self.positions.items())
