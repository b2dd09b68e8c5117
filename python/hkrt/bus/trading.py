"""The trading events of the layers above the agent: signals, orders, trades and risk decisions.

Defined now so that the layers to come (issue 14: orders with a lifecycle and their fills;
issue 15: the risk engine and the signal aggregator) publish onto the same bus and every
component (a recorder, a dashboard, the ledger) can subscribe to them today.  Nothing in hkrt
publishes them yet.  The fields follow those issues; values are checked on construction, so a
bad one is one clear ValueError naming the valid choices.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from hkrt.bus.events import Event

SIDES = ("buy", "sell")
SIGNAL_ACTIONS = ("buy", "sell", "flat")  # flat: close the position
ORDER_TYPES = ("market", "limit", "stop", "stop_limit", "trailing_stop")
TIMES_IN_FORCE = ("day", "ioc", "fok")
ORDER_STATUSES = ("submitted", "accepted", "partially_filled", "filled", "cancelled", "rejected", "expired")
TRADING_STATES = ("ACTIVE", "REDUCING", "HALTED")
RISK_KINDS = ("refused", "state")


def _check(value: str, name: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")


@dataclass(frozen=True)
class SignalEvent(Event):
    """A strategy's opinion instead of an order: ``action`` on ``symbol`` with ``confidence``
    (0..1), for an aggregator that combines the signals of several strategies into orders."""

    strategy: str
    symbol: str
    action: str  # SIGNAL_ACTIONS
    confidence: float = 1.0
    reason: str = ""
    datetime: dt.datetime | None = None  # market time

    def __post_init__(self) -> None:
        _check(self.action, "action", SIGNAL_ACTIONS)
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence {self.confidence} is not within 0..1")


@dataclass(frozen=True)
class OrderEvent(Event):
    """An order's state changed (``status``), driven by its broker's reports: submitted ->
    accepted -> partially_filled -> filled, or cancelled / rejected / expired."""

    client_order_id: str  # the strategy's id, unique: duplicate submissions are detected by it
    symbol: str
    side: str  # SIDES
    shares: int  # ordered
    status: str  # ORDER_STATUSES
    order_type: str = "market"  # ORDER_TYPES
    time_in_force: str = "day"  # TIMES_IN_FORCE
    price: float | None = None  # the limit (None: market)
    stop_price: float | None = None
    filled_shares: int = 0
    average_price: float = 0.0  # of the fills so far, yuan
    fees: float = 0.0  # yuan
    reason: str = ""  # why rejected / cancelled / expired ("risk: ..." from the risk engine)
    broker_order_id: str = ""
    broker: str = ""
    strategy: str = ""
    datetime: dt.datetime | None = None  # market time of the change

    def __post_init__(self) -> None:
        _check(self.side, "side", SIDES)
        _check(self.status, "status", ORDER_STATUSES)
        _check(self.order_type, "order_type", ORDER_TYPES)
        _check(self.time_in_force, "time_in_force", TIMES_IN_FORCE)


@dataclass(frozen=True)
class TradeEvent(Event):
    """A fill: ``shares`` of an order traded at ``price``; the book changes on these only."""

    client_order_id: str
    trade_id: str
    symbol: str
    side: str  # SIDES
    shares: int
    price: float  # yuan
    amount: float  # yuan
    fees: float = 0.0  # commission + stamp tax + transfer fee, yuan
    broker: str = ""
    strategy: str = ""
    datetime: dt.datetime | None = None

    def __post_init__(self) -> None:
        _check(self.side, "side", SIDES)


@dataclass(frozen=True)
class RiskEvent(Event):
    """A decision of the risk engine: an order ``refused`` (its ``reason``), or the trading
    ``state`` changed (ACTIVE / REDUCING: only orders that reduce positions / HALTED)."""

    kind: str  # RISK_KINDS
    state: str  # TRADING_STATES, after the decision
    reason: str
    symbol: str | None = None
    client_order_id: str | None = None
    strategy: str = ""
    datetime: dt.datetime | None = None

    def __post_init__(self) -> None:
        _check(self.kind, "kind", RISK_KINDS)
        _check(self.state, "state", TRADING_STATES)
