"""``Order``: one order of a strategy and where it stands, moved only by its broker's reports.

Statuses (docs/strategy.md, "Orders"): an order is ``submitted`` when the strategy sent it, then the
broker's reports move it: ``accepted`` (the venue took it), ``partially_filled``, ``filled``; or it ends
``cancelled``, ``rejected`` or ``expired`` (a day order at the close).  The four last ones and
``filled`` are final: nothing moves an order out of them, and a report that tries is logged, not
applied.  An emulated order (stop, stop-limit, trailing stop, a bracket's legs) is held by the
strategy's emulator until its trigger, with ``emulated`` True; it is sent to the broker when it
triggers.

The strategy owns the ``Order`` objects; user code reads them (``strategy.order(...)`` returns one,
``on_order`` / ``on_trade`` receive them) and must not assign their fields.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from hkrt.bus.trading import ORDER_STATUSES, ORDER_TYPES, SIDES, TIMES_IN_FORCE

FINAL_STATUSES = frozenset({"filled", "cancelled", "rejected", "expired"})

# status -> the statuses a report may move it to
TRANSITIONS: dict[str, frozenset[str]] = {
    "submitted": frozenset({"accepted", "partially_filled", "filled", "cancelled", "rejected", "expired"}),
    # a venue may still reject what its gateway accepted (the exchange's own checks)
    "accepted": frozenset({"partially_filled", "filled", "cancelled", "rejected", "expired"}),
    "partially_filled": frozenset({"partially_filled", "filled", "cancelled", "expired"}),
    "filled": frozenset(),
    "cancelled": frozenset(),
    "rejected": frozenset(),
    "expired": frozenset(),
}


class OrderStateError(ValueError):
    """A status change the state machine does not allow (e.g. a fill after ``cancelled``)."""


@dataclass(eq=False)
class Order:
    """One order: what was asked, and what its broker has reported so far.  Prices in yuan, quantities
    in shares."""

    client_order_id: str  # the strategy's id, unique: a second submission with it is a duplicate
    symbol: str  # "SH600000"
    side: str  # "buy" | "sell"
    shares: int  # ordered, after lot rounding (0 when refused before sending)
    order_type: str = "market"  # ORDER_TYPES
    time_in_force: str = "day"  # TIMES_IN_FORCE
    price: float | None = None  # the limit (limit, stop_limit); None for market
    stop_price: float | None = None  # stop, stop_limit: the trigger
    # trailing_stop: the distance from the best price since placing: yuan (0.3), or a percent of that price ("3%")
    trail: float | str | None = None
    take_profit: float | None = None  # a bracket's take-profit leg (limit sell at this price)
    stop_loss: float | None = None  # a bracket's stop-loss leg (stop sell at this price)
    status: str = "submitted"
    filled_shares: int = 0
    average_price: float = 0.0  # of the fills so far
    fees: float = 0.0  # of the fills so far: commission + stamp tax + transfer fee
    reason: str = ""  # why rejected / cancelled / expired
    broker: str = ""  # the primary broker's name
    broker_order_id: str = ""
    requested: float = 0.0  # shares the strategy asked for, before rounding
    created: dt.datetime | None = None  # market time
    updated: dt.datetime | None = None  # market time of the last change
    emulated: bool = False  # held by the strategy's emulator, not (yet) at the broker
    triggered: bool = False  # an emulated order whose trigger fired (it went to the broker)
    parent_id: str = ""  # a bracket leg: its entry order's client id
    remark: str = ""
    history: list[tuple[dt.datetime | None, str, str]] = field(default_factory=list)  # (when, status, reason)
    # the price on the wire request: the limit, or for a market order the reference the strategy
    # carried (its last price, or the price it was given): a broker's protection price, the price a
    # legacy broker's ``Filled`` answer fills at, and what an open buy reserves of the cash
    request_price: float = 0.0
    results: list[Any] = field(default_factory=list)  # each broker's answer to the send (OrderResult), primary first

    def __post_init__(self) -> None:
        for value, name, allowed in (
            (self.side, "side", SIDES),
            (self.order_type, "order_type", ORDER_TYPES),
            (self.time_in_force, "time_in_force", TIMES_IN_FORCE),
            (self.status, "status", ORDER_STATUSES),
        ):
            if value not in allowed:
                raise ValueError(f"{name} {value!r} is not one of {', '.join(allowed)}")
        if not self.history:
            self.history.append((self.created, self.status, self.reason))

    # --------------------------------------------------------------- reading
    @property
    def remaining(self) -> int:
        """Shares still to trade (0 once the order is final)."""
        return 0 if self.is_final else max(self.shares - self.filled_shares, 0)

    @property
    def is_final(self) -> bool:
        return self.status in FINAL_STATUSES

    @property
    def is_open(self) -> bool:
        """Still working (at the broker or held by the emulator)."""
        return not self.is_final

    @property
    def ok(self) -> bool:
        """Not refused: the order went to the broker (or is held by the emulator) and was not rejected."""
        return self.status != "rejected"

    @property
    def error(self) -> str:
        """Why the order was rejected ("" otherwise); the reason of an OrderTicket."""
        return self.reason if self.status == "rejected" else ""

    @property
    def datetime(self) -> dt.datetime | None:
        """When the strategy placed it (market time): ``created``, as an OrderTicket named it."""
        return self.created

    @property
    def value(self) -> float:
        """Filled shares × average price, yuan (fees not included)."""
        return self.filled_shares * self.average_price

    # --------------------------------------------------------------- moving
    def move_to(self, status: str, when: dt.datetime | None, reason: str = "") -> None:
        """Set a new status if the state machine allows it; raises OrderStateError otherwise."""
        if status not in ORDER_STATUSES:
            raise ValueError(f"status {status!r} is not one of {', '.join(ORDER_STATUSES)}")
        if status not in TRANSITIONS[self.status]:
            raise OrderStateError(f"order {self.client_order_id}: {self.status} -> {status} is not allowed")
        self.status = status
        if reason:
            self.reason = reason
        self.updated = when
        self.history.append((when, status, reason))

    def add_fill(self, shares: int, price: float, fees: float, when: dt.datetime | None) -> None:
        """Count a fill and move to partially_filled or filled; raises OrderStateError when the order is
        final or the fill is more than what remains."""
        if shares <= 0 or not price > 0:
            raise ValueError(f"a fill needs shares > 0 and price > 0, got {shares} @ {price}")
        if self.is_final:
            raise OrderStateError(f"order {self.client_order_id} is {self.status}: a fill of {shares} is not allowed")
        if shares > self.shares - self.filled_shares:
            raise OrderStateError(
                f"order {self.client_order_id}: a fill of {shares} exceeds the {self.shares - self.filled_shares} left"
            )
        total = self.filled_shares + shares
        self.average_price = (self.average_price * self.filled_shares + price * shares) / total
        self.filled_shares = total
        self.fees += fees
        self.move_to("filled" if total == self.shares else "partially_filled", when)

    def __repr__(self) -> str:
        px = "market" if self.price is None else f"{self.price:g}"
        return (
            f"Order({self.client_order_id} {self.side} {self.shares} {self.symbol} {self.order_type} @ {px} "
            f"{self.status} filled={self.filled_shares})"
        )
