"""The trading events of the layers above the agent: signals, orders, trades, broker reports and
risk decisions.

A broker (an execution client) publishes :class:`ExecutionReport` events: what it says happened to
an order.  The strategy's order manager turns them into :class:`OrderEvent` (the order's new
status) and :class:`TradeEvent` (a fill, the only thing that changes a book), so every component
(a recorder, a dashboard, the ledger) can follow the lifecycle by subscribing.  Signals and risk
decisions come with issue 15.  Values are checked on construction, so a bad one is one clear
ValueError naming the valid choices.
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
REPORT_KINDS = ("accepted", "rejected", "fill", "cancelled", "expired")


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


@dataclass(frozen=True)
class ExecutionReport(Event):
    """What a broker says happened to one order, published by the broker (its callback, poller or
    matching engine) onto the bus; the order manager applies it to the order on the callback thread.

    ``kind``: ``accepted`` (the venue took it), ``rejected``, ``fill`` (``shares`` more traded at
    ``price``), ``cancelled`` (the rest will not trade) or ``expired`` (a day order at the close).
    The order is found by ``client_order_id``, else by ``broker`` + ``broker_order_id``; a report for
    an order nobody knows is logged and kept (``OrderManager.unmatched_reports``), never dropped.
    """

    broker: str
    kind: str  # REPORT_KINDS
    client_order_id: str = ""  # "" when the venue does not echo it back: matched by broker_order_id
    broker_order_id: str = ""
    symbol: str = ""  # "SH600000"
    side: str = ""  # SIDES, or "" when the report does not say
    shares: int = 0  # fill: shares in this fill (not cumulative)
    price: float = 0.0  # fill: price of this fill, yuan
    fees: float | None = None  # fill: what the venue charged, yuan (None: the fee model computes them)
    trade_id: str = ""  # fill: the venue's id of the fill, unique per broker (a repeat is ignored)
    cumulative_shares: int | None = None  # the venue's total filled so far, when it says (a cross-check)
    reason: str = ""  # rejected / cancelled / expired: why, in the venue's words
    datetime: dt.datetime | None = None  # market time of the event at the venue

    def __post_init__(self) -> None:
        _check(self.kind, "kind", REPORT_KINDS)
        if self.side:
            _check(self.side, "side", SIDES)
        if self.kind == "fill" and (self.shares <= 0 or not self.price > 0):
            raise ValueError(f"a fill needs shares > 0 and price > 0, got {self.shares} @ {self.price}")
        if not self.client_order_id and not self.broker_order_id:
            raise ValueError("an execution report needs a client_order_id or a broker_order_id")
