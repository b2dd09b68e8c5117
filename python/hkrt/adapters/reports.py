"""Execution reports of the brokers that report: a venue's order states and trades in, each
:class:`~hkrt.bus.ExecutionReport` out once (docs/brokers.md, "Order lifecycle reports").

A venue tells the same thing many times: easytrader's poller reads the whole of today's entrusts and
trades on every poll, QMT pushes an order's state on every change and again after a reconnect.
:class:`OrderReporter` remembers, per order, what it has published: ``accepted`` once, each trade once
(by the venue's trade id: a repeated one is counted in ``stats["duplicate_trades"]`` and dropped), and
the final ``cancelled`` / ``rejected`` once.  A final state whose fills have not all been reported yet
(the venue says 300 traded, 200 were seen as trades) is held until they are, so the order manager never
sees a fill after a cancel; after ``final_grace`` seconds it goes out anyway, with a WARNING.

Venue states are mapped to the venue-independent ones below by the venue's edge (easytrader's status
words in ``easytrader/mapping.py``; xtquant's ``order_status`` codes here, as QMT and easytrader's miniqmt
trader both answer them).  Reports carry ``client_order_id`` when the reporter knows it (the broker told
it in :meth:`OrderReporter.track` when sending, or the venue echoed it) and always the venue's order id.
Trade ids in reports are ``<order id>/<venue trade id>``: unique per broker even where a venue numbers
trades per market.

Bounds: ``max_orders`` orders and ``max_trades`` trade ids remembered per day (oldest forgotten first,
counted); everything is forgotten when the day changes (venues number orders per day).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from hkrt.bus.trading import ExecutionReport
from hkrt.core.logs import log_limited

__all__ = [
    "ACCEPTED_STATES",
    "CANCELLED",
    "CANCEL_PENDING",
    "FILLED",
    "PARTIALLY_FILLED",
    "PENDING",
    "QMT_ORDER_STATES",
    "REJECTED",
    "STATES",
    "WORKING",
    "OrderHint",
    "OrderReporter",
]

log = logging.getLogger("hkrt.broker.reports")

# Venue-independent order states.  Fills are never read from a state: they come from trades.
PENDING = "pending"  # 未报 / 待报 / 正报: not at the exchange yet (no report)
WORKING = "working"  # 已报: the venue took it -> accepted
PARTIALLY_FILLED = "partially_filled"  # 部成 -> accepted (the fills come as trades)
FILLED = "filled"  # 已成 -> accepted (the fills come as trades)
CANCEL_PENDING = "cancel_pending"  # 待撤 / 已报待撤 / 部成待撤: a cancel is on its way, still working -> accepted
CANCELLED = "cancelled"  # 已撤 / 部撤 -> cancelled
REJECTED = "rejected"  # 废单 -> rejected (cancelled when some of it had traded)
STATES = (PENDING, WORKING, PARTIALLY_FILLED, FILLED, CANCEL_PENDING, CANCELLED, REJECTED)
ACCEPTED_STATES = frozenset({WORKING, PARTIALLY_FILLED, FILLED, CANCEL_PENDING})

# xtconstant ORDER_* (xtquant 250807.1.2): QMT's XtOrder.order_status, and easytrader miniqmt's
# today_entrusts "order_status".  255 ORDER_UNKNOWN maps to nothing (counted, logged).
QMT_ORDER_STATES: dict[int, str] = {
    48: PENDING,  # ORDER_UNREPORTED 未报
    49: PENDING,  # ORDER_WAIT_REPORTING 待报
    50: WORKING,  # ORDER_REPORTED 已报
    51: CANCEL_PENDING,  # ORDER_REPORTED_CANCEL 已报待撤
    52: CANCEL_PENDING,  # ORDER_PARTSUCC_CANCEL 部成待撤
    53: CANCELLED,  # ORDER_PART_CANCEL 部撤
    54: CANCELLED,  # ORDER_CANCELED 已撤
    55: PARTIALLY_FILLED,  # ORDER_PART_SUCC 部成
    56: FILLED,  # ORDER_SUCCEEDED 已成
    57: REJECTED,  # ORDER_JUNK 废单
}


@dataclasses.dataclass(frozen=True)
class OrderHint:
    """What a venue's row says of an order the reporter was not told about (an order of an earlier
    run, echoed with the client id it carried): enough to report it."""

    client_order_id: str = ""
    symbol: str = ""
    side: str = ""


@dataclasses.dataclass
class _Held:
    """A final report waiting for the fills the venue says happened before it."""

    kind: str
    reason: str
    when: dt.datetime | None
    needed: int  # shares the venue says traded
    since: float  # monotonic


@dataclasses.dataclass
class _Order:
    broker_order_id: str
    client_order_id: str
    symbol: str
    side: str
    accepted: bool = False
    final: bool = False
    filled: int = 0  # shares reported as fills
    held: _Held | None = None


_Event = tuple[str, tuple[Any, ...], dict[str, Any]]  # ("state" | "trade", args, kwargs)


def _china_now() -> dt.datetime:
    from hkrt.core.china_time import china_now

    return china_now().replace(tzinfo=None, microsecond=0)


class OrderReporter:
    """Turns one broker's venue events into ExecutionReports, each once (module docstring).

    ``early_grace``: seconds an event for an order not tracked yet is kept, waiting for :meth:`track`
    (a push can overtake the answer that gives the broker the order id); after that (at a :meth:`flush`)
    the order is reported under the venue's hint (an earlier run's order, its client id echoed back), if
    any.  ``None``: such events are taken at once, under their hint (a poller reads them again next
    time).  Untracked orders without a hint are counted in ``stats["foreign_orders"]`` (orders typed by
    hand, or by another program) and not reported.
    ``clock`` gives the China local time of events without one, and the day.  Thread-safe."""

    def __init__(
        self,
        broker: str,
        *,
        early_grace: float | None = None,
        final_grace: float = 10.0,
        max_orders: int = 100_000,
        max_trades: int = 500_000,
        clock: Callable[[], dt.datetime] = _china_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_orders < 1 or max_trades < 1:
            raise ValueError("max_orders and max_trades must be >= 1")
        self.broker = broker
        self.early_grace = early_grace
        self.final_grace = final_grace
        self.max_orders = max_orders
        self.max_trades = max_trades
        self._clock = clock
        self._monotonic = monotonic
        self._lock = threading.RLock()
        self._publish: Callable[[ExecutionReport], object] | None = None
        self._day: dt.date | None = None
        self._orders: OrderedDict[str, _Order] = OrderedDict()
        self._trades: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._early: OrderedDict[str, tuple[float, list[_Event]]] = OrderedDict()
        self._foreign: OrderedDict[str, None] = OrderedDict()
        self.stats: dict[str, int] = dict.fromkeys(
            (
                "reports",
                "fills",
                "duplicate_trades",
                "foreign_orders",
                "unknown_states",
                "refused",
                "finals_held",
                "finals_forced",
                "orders_forgotten",
                "trade_ids_forgotten",
            ),
            0,
        )

    # ------------------------------------------------------------------ wiring
    def attach(self, publish: Callable[[ExecutionReport], object]) -> None:
        """Publish reports with ``publish`` (``bus.publish``) from now on."""
        with self._lock:
            self._publish = publish

    def detach(self) -> None:
        """Stop publishing; what was published stays remembered."""
        with self._lock:
            self._publish = None

    @property
    def attached(self) -> bool:
        return self._publish is not None

    # ------------------------------------------------------------------ the broker's side
    def track(self, order_no: str, client_order_id: str, symbol: str, side: str, *, broker_order_id: str = "") -> None:
        """The broker sent an order: the venue calls it ``order_no`` (the key its rows and pushes use),
        ``broker_order_id`` is the id the broker answered (default ``order_no``).  Events that arrived
        for it before this call are applied now."""
        with self._lock:
            self._roll()
            order = self._orders.get(order_no)
            if order is None:
                self._remember(order_no, _Order(broker_order_id or order_no, client_order_id, symbol, side))
            else:  # adopted from a push first: the broker knows better
                order.client_order_id = client_order_id or order.client_order_id
                order.symbol, order.side = symbol or order.symbol, side or order.side
            early = self._early.pop(order_no, None)
            for kind, args, kwargs in early[1] if early else ():
                (self._state if kind == "state" else self._trade)(*args, **kwargs)

    def knows(self, order_no: str) -> bool:
        with self._lock:
            return order_no in self._orders

    # ------------------------------------------------------------------ the venue's side
    def order_state(
        self,
        order_no: str,
        state: str | None,
        *,
        filled: int | None = None,
        reason: str = "",
        when: dt.datetime | None = None,
        hint: OrderHint | None = None,
    ) -> None:
        """The venue says order ``order_no`` is in ``state`` (one of :data:`STATES`, None when the venue's
        word is unknown), ``filled`` shares traded so far when it says."""
        with self._lock:
            if self._publish is not None:
                self._roll()
                self._state(order_no, state, filled=filled, reason=reason, when=when, hint=hint)

    def trade(
        self,
        order_no: str,
        trade_id: str,
        shares: int,
        price: float,
        *,
        when: dt.datetime | None = None,
        fees: float | None = None,
        hint: OrderHint | None = None,
    ) -> None:
        """The venue reports a trade of order ``order_no``: ``shares`` at ``price`` yuan."""
        with self._lock:
            if self._publish is not None:
                self._roll()
                self._trade(order_no, trade_id, shares, price, when=when, fees=fees, hint=hint)

    def flush(self) -> None:
        """Release held final reports older than ``final_grace`` (WARNING: fills missing) and forget
        early events older than ``early_grace`` (their orders are foreign).  Call it now and then."""
        with self._lock:
            if self._publish is None:
                return
            now = self._monotonic()
            for order in list(self._orders.values()):
                held = order.held
                if held is not None and now - held.since >= self.final_grace:
                    self.stats["finals_forced"] += 1
                    log.warning(
                        "%s: order %s is %s with %d shares traded, but only %d were reported as trades "
                        "after %.0f s; reporting it %s anyway (reconcile the book)",
                        self.broker,
                        order.broker_order_id,
                        held.kind,
                        held.needed,
                        order.filled,
                        self.final_grace,
                        held.kind,
                        extra={"broker": self.broker, "order_id": order.broker_order_id},
                    )
                    self._final(order, held.kind, held.reason, held.when)
            if self.early_grace is not None:
                for order_no, (since, events) in list(self._early.items()):
                    if now - since >= self.early_grace:  # never tracked: an earlier run's order, or foreign
                        del self._early[order_no]
                        hints = [e[2]["hint"] for e in events if e[2].get("hint") is not None]
                        if self._adopt(order_no, hints[0] if hints else None) is not None:
                            for kind, args, kwargs in events:
                                (self._state if kind == "state" else self._trade)(*args, **kwargs)

    # ------------------------------------------------------------------ machinery
    def _roll(self) -> None:
        today = self._clock().date()
        if today != self._day:
            if self._day is not None:
                self._orders.clear()
                self._trades.clear()
                self._early.clear()
                self._foreign.clear()
            self._day = today

    def _remember(self, order_no: str, order: _Order) -> None:
        self._orders[order_no] = order
        if len(self._orders) > self.max_orders:
            self._orders.popitem(last=False)
            self.stats["orders_forgotten"] += 1
            log_limited(log, logging.WARNING, ("orders", self.broker),
                        f"{self.broker}: more than {self.max_orders} orders today; the oldest is forgotten "
                        "(its later reports are not published)",
                        {"broker": self.broker})  # fmt: skip

    def _resolve(self, order_no: str, hint: OrderHint | None, event: _Event) -> _Order | None:
        order = self._orders.get(order_no)
        if order is not None:
            return order
        if self.early_grace is not None:  # wait for track(): the broker's client id beats a venue's hint
            since, events = self._early.get(order_no, (self._monotonic(), []))
            if len(events) < 64:  # one order's pushes before its id came back: a handful
                events.append(event)
            self._early[order_no] = (since, events)
            while len(self._early) > 1024:
                old, _ = self._early.popitem(last=False)
                self._count_foreign(old)
            return None
        return self._adopt(order_no, hint)

    def _adopt(self, order_no: str, hint: OrderHint | None) -> _Order | None:
        """An order this broker was not told about: reported under the venue's hint, else foreign."""
        if hint is not None and hint.client_order_id:
            order = _Order(order_no, hint.client_order_id, hint.symbol, hint.side)
            self._remember(order_no, order)
            return order
        self._count_foreign(order_no)
        return None

    def _count_foreign(self, order_no: str) -> None:
        if order_no in self._foreign:
            return
        self._foreign[order_no] = None
        if len(self._foreign) > 10_000:
            self._foreign.popitem(last=False)
        self.stats["foreign_orders"] += 1
        log.debug("%s: order %s was not sent by this broker; not reported", self.broker, order_no)

    def _state(
        self,
        order_no: str,
        state: str | None,
        *,
        filled: int | None,
        reason: str,
        when: dt.datetime | None,
        hint: OrderHint | None,
    ) -> None:
        event: _Event = ("state", (order_no, state), {"filled": filled, "reason": reason, "when": when, "hint": hint})
        order = self._resolve(order_no, hint, event)
        if order is None or order.final:
            return
        if state is None or state not in STATES:
            self.stats["unknown_states"] += 1
            log_limited(log, logging.WARNING, ("state", self.broker),
                        f"{self.broker}: order {order.broker_order_id} has a state the broker does not know "
                        f"({reason or state!r}); no report", {"broker": self.broker})  # fmt: skip
            return
        if state in ACCEPTED_STATES:
            # a venue may push a trade before the order's state: after a fill, accepted goes without saying
            if not order.accepted and (order.filled > 0 or self._emit(order, "accepted", when=when)):
                order.accepted = True
            return
        if state in (CANCELLED, REJECTED):
            kind = CANCELLED if state == CANCELLED or order.filled > 0 else REJECTED
            if filled is not None and filled > order.filled:
                if order.held is None:
                    self.stats["finals_held"] += 1
                    order.held = _Held(kind, reason, when, filled, self._monotonic())
                else:
                    order.held.needed = filled
                return
            self._final(order, kind, reason, when)

    def _final(self, order: _Order, kind: str, reason: str, when: dt.datetime | None) -> None:
        if self._emit(order, kind, reason=reason, when=when):
            order.final, order.held = True, None

    def _trade(
        self,
        order_no: str,
        trade_id: str,
        shares: int,
        price: float,
        *,
        when: dt.datetime | None,
        fees: float | None,
        hint: OrderHint | None,
    ) -> None:
        event: _Event = ("trade", (order_no, trade_id, shares, price), {"when": when, "fees": fees, "hint": hint})
        order = self._resolve(order_no, hint, event)
        if order is None:
            return
        key = (order_no, trade_id)
        if key in self._trades:
            self.stats["duplicate_trades"] += 1
            return
        if shares <= 0 or not price > 0:
            log_limited(log, logging.WARNING, ("bad-trade", self.broker),
                        f"{self.broker}: trade {trade_id} of order {order.broker_order_id} has {shares} shares at "
                        f"{price}; not reported", {"broker": self.broker})  # fmt: skip
            return
        cumulative = order.filled + shares
        published = self._emit(
            order, "fill", shares=shares, price=price, fees=fees, trade_id=f"{order_no}/{trade_id}",
            cumulative_shares=cumulative, when=when,
        )  # fmt: skip
        if not published:
            return
        self.stats["fills"] += 1
        order.filled = cumulative
        self._trades[key] = None
        if len(self._trades) > self.max_trades:
            self._trades.popitem(last=False)
            self.stats["trade_ids_forgotten"] += 1
        if order.held is not None and order.filled >= order.held.needed:
            held = order.held
            self._final(order, held.kind, held.reason, held.when)

    def _emit(self, order: _Order, kind: str, *, when: dt.datetime | None, **fields: Any) -> bool:
        publish = self._publish
        if publish is None:
            return False
        report = ExecutionReport(
            broker=self.broker,
            kind=kind,
            client_order_id=order.client_order_id,
            broker_order_id=order.broker_order_id,
            symbol=order.symbol,
            side=order.side,
            datetime=when or self._clock(),
            **fields,
        )
        if publish(report) is False:  # the bus is stopped or refused it: a poller reads it again
            self.stats["refused"] += 1
            log_limited(log, logging.WARNING, ("refused", self.broker),
                        f"{self.broker}: the bus refused a {kind} report of order {order.broker_order_id}",
                        {"broker": self.broker, "refused": self.stats["refused"]})  # fmt: skip
            return False
        self.stats["reports"] += 1
        return True
