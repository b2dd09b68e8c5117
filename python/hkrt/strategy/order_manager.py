"""``OrderManager``: a strategy's orders from the send to their last fill, driven by broker reports.

The manager holds every :class:`~hkrt.strategy.order.Order` of one strategy by its client id.
``submit`` sends an order to the strategy's brokers (or hands a stop, stop-limit or trailing-stop
order to the emulator, which ``release``\\ s it when it triggers); ``on_report`` (subscribed to
:class:`~hkrt.bus.trading.ExecutionReport` on the strategy's bus) applies what a broker says
happened, moves the order through its state machine and publishes an ``OrderEvent`` for every
status change and a ``TradeEvent`` for every fill.  The book changes on fills only.

Brokers.  The first is the primary: its answers and reports move the order and the book.  The
others are mirrors: they receive the same request, and their answers and reports are recorded
(``broker_legs``) but move nothing.  Reports are told apart by broker name, so give brokers
distinct names.  A broker with no reports of its own (no ``attach`` method: mail, hikyuu-style
brokers through ``crtOB``) answers ``Sent`` and its order stays ``submitted``; a legacy ``Filled``
answer counts as one fill of the whole order at the request price.

Never raises into the bus: a report that cannot be applied is logged (WARNING, rate-limited),
counted in ``stats`` and kept: ``unmatched_reports`` (no order known by its client id or broker
order id: applied later if the send that names its broker id is still being answered),
``refused_reports`` (the state machine does not allow it: a fill after ``cancelled``, more shares
than ordered).  A fill whose (broker, trade id) was applied already is ignored (re-polling).

Bounds (documented policy):
- orders: at most ``max_orders`` kept.  Past it, the oldest final orders (filled, cancelled,
  rejected, expired) are forgotten first, then the oldest orders of an earlier market day that are
  not held by the emulator (an A-share venue ends every order at its day's close); today's open
  orders are never forgotten.  A forgotten order's trades stay in the book; a report for it is
  then unmatched.  Counted in ``stats["forgotten_orders"]``, WARNING once an hour.
- client ids: the newest 2**20 ids are remembered for duplicate detection (the broker base keeps
  its own 2**20 as well).
- trade ids: the newest 2**20 (broker, trade id) pairs.
- kept reports: the newest 10,000 of each kind.

Threading: ``on_report`` runs on the bus's callback thread; ``submit`` and ``cancel`` on whatever
thread calls them (normally the same one: strategy callbacks).  State changes happen under one
lock; brokers are called and events published outside it, so a broker that publishes its reports
from inside ``submit`` and a full bus queue cannot deadlock with the callback thread.
"""

from __future__ import annotations

import copy
import datetime as dt
import logging
import re
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderSide, OrderStatus
from hkrt.bus import EventBus, ExecutionReport, OrderEvent, Subscription, TradeEvent
from hkrt.core.logs import LogLimiter, log_limited
from hkrt.strategy.book import Book
from hkrt.strategy.order import Order, OrderStateError

log = logging.getLogger("hkrt.strategy")

MAX_ORDERS = 100_000
MAX_IDS = 1 << 20
MAX_KEPT_REPORTS = 10_000
EMULATED_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})
WIRE_TYPES = ("market", "limit")
REFUSED_BY_STRATEGY = "(strategy)"  # the broker column of an order refused before it was sent
_WARN_INTERVAL = 60.0

# fees(symbol, side, price, shares, day, commission_so_far) -> yuan (a float, or hkrt.core.fees.Fees-like
# with .total and .commission).  A FeeModel (anything with fill_fees) is accepted as well.
FeeFunction = Callable[[str, str, float, int, dt.date, float], Any]
# a listener: ("order", snapshot, OrderEvent) on every status change, ("trade", snapshot, TradeEvent) per fill
Listener = Callable[[str, Order, Any], None]


class Emulator(Protocol):
    """What holds emulated orders (stop, stop-limit, trailing stop, bracket legs) until they trigger.

    ``cancel`` stops holding an order and answers whether it did; the manager then moves the order
    to ``cancelled`` and publishes the change."""

    def hold(self, order: Order) -> None: ...
    def attach_bracket(self, entry: Order) -> None: ...
    def cancel(self, order: Order) -> bool: ...
    def attach(self, bus: EventBus) -> None: ...
    def restore(self) -> list[Order]: ...
    @property
    def held(self) -> list[Order]: ...


class RiskGate(Protocol):
    """What may refuse an order on its way to the brokers (``hkrt.strategy.risk.RiskEngine``):
    ``check`` answers "" or the refusal's reason; ``note_cancel`` is told of every cancel sent."""

    def check(self, order: Order, wire_type: str, limit_price: float | None) -> str: ...
    def note_cancel(self, order: Order, *, forced: bool = False) -> str: ...


@dataclass
class BrokerLeg:
    """One broker's side of an order: its answer to the send and the reports it sent since."""

    broker: str
    primary: bool
    result: str = ""  # OrderStatus name of the send's answer ("" until sent)
    broker_order_id: str = ""
    error: str = ""
    report: str = ""  # kind of its latest report
    filled_shares: int = 0  # as its reports say (mirrors: recorded, never booked)
    reports: int = 0


@dataclass
class _Record:
    order: Order
    legs: list[BrokerLeg] = field(default_factory=list)
    commission: float = 0.0  # the order's commission so far (the fee model's minimum is per order)
    stoploss: float = 0.0  # hikyuu's pass-through arguments of the request
    goal_price: float = 0.0
    fills: int = 0
    reserved: tuple[dt.date | None, float, int] | None = None  # (day, cash, shares) counted in the totals


def _fee_function(fees: Any) -> FeeFunction:
    if fees is None:
        return lambda symbol, side, price, shares, day, so_far: 0.0
    fill_fees = getattr(fees, "fill_fees", None)
    if callable(fill_fees):  # hkrt.core.fees.FeeModel
        return lambda symbol, side, price, shares, day, so_far: fill_fees(
            symbol, side, price, shares, day, commission_so_far=so_far
        )
    if callable(fees):
        return fees  # type: ignore[no-any-return]
    raise TypeError(f"fees must be a FeeModel or a callable(symbol, side, price, shares, day, so_far), not {fees!r}")


def _fee_parts(value: Any) -> tuple[float, float]:
    """(total, commission) of what a fee function returned."""
    total = getattr(value, "total", value)
    commission = getattr(value, "commission", total)
    return float(total), float(commission)


def snapshot(order: Order) -> Order:
    """A copy of the order as it stands now (what ``on_order`` / ``on_trade`` receive)."""
    copied = copy.copy(order)
    copied.history = list(order.history)
    copied.results = list(order.results)
    return copied


def order_event(order: Order, strategy: str) -> OrderEvent:
    return OrderEvent(
        client_order_id=order.client_order_id, symbol=order.symbol, side=order.side, shares=order.shares,
        status=order.status, order_type=order.order_type, time_in_force=order.time_in_force, price=order.price,
        stop_price=order.stop_price, filled_shares=order.filled_shares, average_price=order.average_price,
        fees=order.fees, reason=order.reason, broker_order_id=order.broker_order_id, broker=order.broker,
        strategy=strategy, datetime=order.updated or order.created,
    )  # fmt: skip


class OrderManager:
    """A strategy's orders, their lifecycle and the book's fills (see the module docstring).

    Args:
        brokers: where orders go, the first the primary (the list object is read at each send:
            ``brokers`` may be replaced).
        book: the strategy's book; it changes on the primary broker's fills only.
        strategy: the strategy's name (in client ids and events).
        fees: a ``FeeModel`` or ``fees(symbol, side, price, shares, day, commission_so_far)``
            returning yuan (or a Fees-like object); None: no fees.  A report's own ``fees`` win.
        emulator: what holds emulated orders (``Emulator``); None: such orders are rejected.
        risk: the risk engine every order passes on its way out (``RiskGate``); None: no risk checks.
        clock: the strategy's market clock (``now()``; dates orders and reports without one).
        last_price: the latest price of a symbol (a released market order's reference price).
        max_orders: orders kept (see the module's bounds).
    """

    def __init__(
        self,
        brokers: Sequence[OrderBrokerBase],
        book: Book,
        *,
        strategy: str = "strategy",
        fees: Any = None,
        emulator: Emulator | None = None,
        clock: Callable[[], dt.datetime | None] | None = None,
        last_price: Callable[[str], float | None] | None = None,
        max_orders: int = MAX_ORDERS,
        risk: RiskGate | None = None,
    ) -> None:
        if max_orders < 1:
            raise ValueError(f"max_orders must be >= 1, not {max_orders}")
        self.brokers: Sequence[OrderBrokerBase] = brokers
        self.book = book
        self.strategy = strategy
        self.fees = _fee_function(fees)
        # hkrt's FeeModel is also told the order's amount so far (its per-order minimum is charged once
        # over merged fills); another object with fill_fees keeps the commission-so-far contract
        from hkrt.core.fees import FeeModel

        self._fee_model = fees if isinstance(fees, FeeModel) else None
        self.emulator = emulator
        self.risk = risk
        self._clock = clock
        self._last_price = last_price
        self.max_orders = max_orders
        self.listeners: list[Listener] = []
        self.unmatched_reports: deque[ExecutionReport] = deque(maxlen=MAX_KEPT_REPORTS)
        self.refused_reports: deque[tuple[ExecutionReport, str]] = deque(maxlen=MAX_KEPT_REPORTS)
        self.stats: dict[str, int] = dict.fromkeys(
            ("orders", "sent", "refused", "emulated", "rejected", "fills", "duplicate_trades", "unmatched_reports",
             "rematched_reports", "refused_reports", "late_accepted", "mirror_reports", "cumulative_mismatches",
             "fills_without_trade_id", "forgotten_orders", "forgotten_ids", "risk_refused"), 0,
        )  # fmt: skip
        self._lock = threading.RLock()
        self._limiter = LogLimiter(_WARN_INTERVAL)  # this manager's: one strategy's warnings never mute another's
        self._hourly = LogLimiter(3600.0)
        self._records: OrderedDict[int, _Record] = OrderedDict()  # creation order
        self._by_id: dict[str, _Record] = {}
        self._by_broker_id: dict[tuple[str, str], _Record] = {}
        self._open: dict[str, _Record] = {}  # not final, by client id
        self._reserved_cash: dict[dt.date | None, float] = {}  # open buys at the broker: day -> yuan
        self._reserved_shares: dict[tuple[dt.date | None, str], int] = {}  # open sells: (day, symbol) -> shares
        self._known_ids: OrderedDict[str, None] = OrderedDict()  # every client id used (bounded)
        self._trade_ids: OrderedDict[tuple[str, str], None] = OrderedDict()
        self._next_key = 0
        self._sequence = 0
        self._tag = secrets.token_hex(2)  # this run's: a restarted strategy never reuses an id
        self._prefix = re.sub(r"[^0-9A-Za-z_]", "", strategy)[:12] or "order"
        self._bus: EventBus | None = None
        self._subscription: Subscription | None = None

    # ------------------------------------------------------------------ the bus
    def attach(self, bus: EventBus) -> None:
        """Subscribe ``on_report`` to the bus's ExecutionReports of this manager's brokers and publish
        OrderEvent / TradeEvent there from now on."""
        self.detach()
        self._bus = bus
        self._subscription = bus.subscribe(
            ExecutionReport, self.on_report, filter=self._ours, name=f"OrderManager({self.strategy}).on_report"
        )

    def detach(self) -> None:
        if self._bus is not None and self._subscription is not None:
            self._bus.unsubscribe(self._subscription)
        self._bus, self._subscription = None, None

    def _ours(self, report: ExecutionReport) -> bool:
        return any(b.name == report.broker for b in self.brokers)

    # ---------------------------------------------------------------- reading
    def now(self) -> dt.datetime | None:
        """The strategy's market clock (None before any data)."""
        return self._clock() if self._clock is not None else None

    def get(self, client_order_id: str) -> Order | None:
        with self._lock:
            rec = self._by_id.get(client_order_id)
            return rec.order if rec is not None else None

    @property
    def orders(self) -> list[Order]:
        """The orders kept, oldest first (pre-trade refusals included)."""
        with self._lock:
            return [r.order for r in self._records.values()]

    def open_orders(self, symbol: str | None = None, side: str | None = None) -> list[Order]:
        with self._lock:
            return [
                r.order
                for r in self._open.values()
                if (symbol is None or r.order.symbol == symbol) and (side is None or r.order.side == side)
            ]

    @property
    def broker_legs(self) -> list[tuple[Order, BrokerLeg]]:
        """(order, leg) for every broker that received an order, primary first."""
        with self._lock:
            return [(r.order, leg) for r in self._records.values() for leg in r.legs]

    def is_known(self, client_order_id: str) -> bool:
        """Whether an order with this client id was placed already (a new one with it is a duplicate)."""
        with self._lock:
            return client_order_id in self._known_ids or client_order_id in self._by_id

    def reserved_cash(self, day: dt.date | None) -> float:
        """Yuan the open buys at the broker placed on ``day`` may still spend (remaining shares at their
        request price; None: of every day).  Orders held by the emulator reserve nothing until
        released; orders of an earlier day are over at the venue.  Kept up to date on every change,
        so asking costs nothing however many orders are open."""
        with self._lock:
            if day is None:
                return sum(self._reserved_cash.values())
            return self._reserved_cash.get(day, 0.0) + self._reserved_cash.get(None, 0.0)

    def reserved_shares(self, symbol: str, day: dt.date | None) -> int:
        """Shares of ``symbol`` the open sells at the broker placed on ``day`` may still sell."""
        with self._lock:
            if day is None:
                return sum(n for (_, sym), n in self._reserved_shares.items() if sym == symbol)
            return self._reserved_shares.get((day, symbol), 0) + self._reserved_shares.get((None, symbol), 0)

    def _reserve(self, rec: _Record, *, forget: bool = False) -> None:
        """Bring the reservation totals in line with the order as it stands (call after any change)."""
        order = rec.order
        old = rec.reserved
        new: tuple[dt.date | None, float, int] | None = None
        if not forget and not order.is_final and (not order.emulated or order.triggered):
            day = order.created.date() if order.created is not None else None
            left = order.remaining
            new = (day, left * order.request_price, 0) if order.side == "buy" else (day, 0.0, left)
        if old == new:
            return
        for sign, entry in ((-1, old), (1, new)):
            if entry is None:
                continue
            day, cash, shares = entry
            if order.side == "buy":
                total = self._reserved_cash.get(day, 0.0) + sign * cash
                if sign < 0 and abs(total) < 1e-6:
                    self._reserved_cash.pop(day, None)  # back to nothing: no float residue kept
                else:
                    self._reserved_cash[day] = total
            else:
                key = (day, order.symbol)
                count = self._reserved_shares.get(key, 0) + sign * shares
                if count:
                    self._reserved_shares[key] = count
                else:
                    self._reserved_shares.pop(key, None)
        rec.reserved = new

    def estimate_fees(self, symbol: str, side: str, price: float, shares: int, day: dt.date) -> float:
        """What the fee model charges a new order filled at once (the cash check of a buy)."""
        return _fee_parts(self.fees(symbol, side, price, shares, day, 0.0))[0] if shares > 0 else 0.0

    # --------------------------------------------------------------- client ids
    def new_client_id(self, day: dt.date | None = None) -> str:
        """``<strategy>-<yyyymmdd>-<sequence>-<run tag>``: unique in this run, and across restarts by
        the run tag (random per manager)."""
        when = day or (self.now() or dt.datetime.now()).date()
        with self._lock:
            while True:
                self._sequence += 1
                cid = f"{self._prefix}-{when:%Y%m%d}-{self._sequence:04d}-{self._tag}"
                if not self.is_known(cid):
                    return cid

    # --------------------------------------------------------------- placing
    def refuse(self, order: Order, reason: str) -> Order:
        """Record an order refused before sending (pre-trade checks): ``rejected`` with ``reason``,
        never sent, an OrderEvent published."""
        out: list[tuple[str, Order, Any]] = []
        with self._lock:
            self._refuse_locked(order, reason, out)
        self._flush(out)
        return order

    def _refuse_locked(self, order: Order, reason: str, out: list[tuple[str, Order, Any]]) -> None:
        order.shares = 0
        order.broker = REFUSED_BY_STRATEGY
        order.move_to("rejected", order.created, reason)
        self.stats["refused"] += 1
        self._register(order, duplicate_ok=True)
        self._changed(order, out)
        # every refusal is a line (as before orders had a lifecycle): `hkrt demo` counts and groups them
        log.warning("order not sent: %s %s: %s", order.side, order.symbol, reason,
                    extra={"symbol": order.symbol, "side": order.side, "client_order_id": order.client_order_id,
                           "reason": reason})  # fmt: skip

    def submit(self, order: Order, *, stoploss: float = 0.0, goal_price: float = 0.0) -> Order:
        """Send ``order`` (status ``submitted``, sized already) to the brokers, or hand it to the emulator
        when its type is emulated; a duplicate client id, or an emulated order with no emulator, is
        refused.  Returns the order: ``rejected`` when the primary broker refused it at once, ``filled``
        when a legacy broker answered ``Filled``, else ``submitted`` until the reports move it."""
        if order.status != "submitted" or order.filled_shares:
            raise ValueError(f"submit() takes a new order, not one that is {order.status}: {order!r}")
        if order.order_type in EMULATED_TYPES:
            order.emulated = True
        bracket = order.take_profit is not None or order.stop_loss is not None
        out: list[tuple[str, Order, Any]] = []
        # a held order passes the risk engine when placed (again when released), outside this manager's lock:
        # the engine reads the open orders under its own lock, so the locks are always taken engine first
        held_why = ""
        if order.emulated and self.emulator is not None and not self.is_known(order.client_order_id):
            held_why = self._risk_check(order, order.order_type, order.price)
        with self._lock:
            if order.created is None:
                order.created = self.now()
                order.history[0] = (order.created, order.status, order.reason)
            if not order.broker and self.brokers:
                order.broker = self.brokers[0].name
            if self.is_known(order.client_order_id):
                self._refuse_locked(order, f"duplicate client order id {order.client_order_id}: never sent", out)
            elif (order.emulated or bracket) and self.emulator is None:
                what = f"a {order.order_type} order" if order.emulated else "a bracket (take_profit / stop_loss)"
                why = f"{what} is held by the order emulator until it triggers, and this strategy has none"
                self._refuse_locked(order, why, out)
            elif not self.brokers and not order.emulated:
                self._refuse_locked(order, "the strategy has no broker", out)
            elif held_why:
                self.stats["risk_refused"] += 1
                self._refuse_locked(order, held_why, out)
            else:
                rec = self._register(order)
                rec.stoploss, rec.goal_price = stoploss, goal_price
                self._changed(order, out)
                if order.emulated:
                    self.stats["emulated"] += 1
        self._flush(out)
        if order.is_final:
            return order
        emulator = self.emulator
        if bracket and emulator is not None:
            emulator.attach_bracket(order)  # before the send: the entry's fills find its legs waiting
        if order.emulated:
            assert emulator is not None
            emulator.hold(order)
            return order
        self._send(order, order.order_type, order.price)
        return order

    def release(self, order: Order, wire_type: str, limit_price: float | None, when: dt.datetime | None = None) -> None:
        """Send an emulated order whose trigger fired, as a ``wire_type`` ("market" | "limit") order
        (at ``limit_price`` for a limit; a market order carries the last price as its reference), dated
        ``when`` (the time of the spot that fired it; default: the strategy's clock)."""
        if wire_type not in WIRE_TYPES:
            raise ValueError(f"wire_type {wire_type!r} is not one of {', '.join(WIRE_TYPES)}")
        if wire_type == "limit" and (limit_price is None or not limit_price > 0):
            raise ValueError(f"a limit release needs a limit price > 0, got {limit_price!r}")
        with self._lock:
            if order.is_final or not order.emulated or order.triggered:
                why = "final" if order.is_final else "not emulated" if not order.emulated else "released already"
                log.warning("release of %s ignored: the order is %s", order.client_order_id, why,
                            extra={"client_order_id": order.client_order_id, "status": order.status})  # fmt: skip
                return
            order.triggered = True
        self._send(order, wire_type, limit_price, when)

    def create_child(
        self,
        parent: Order,
        *,
        side: str,
        shares: int,
        order_type: str,
        price: float | None = None,
        stop_price: float | None = None,
        trail: float | str | None = None,
    ) -> Order:
        """A bracket leg of ``parent``: a new emulated order (status ``submitted``, published), which the
        caller (the emulator) holds and releases.  Same symbol, time in force, broker and remark."""
        when = self.now() or parent.updated or parent.created
        child = Order(
            client_order_id=self.new_client_id(when.date() if when else None), symbol=parent.symbol, side=side,
            shares=int(shares), order_type=order_type, time_in_force=parent.time_in_force, price=price,
            stop_price=stop_price, trail=trail, broker=parent.broker, requested=float(shares), created=when,
            emulated=True, parent_id=parent.client_order_id, remark=parent.remark,
            request_price=price if price is not None else 0.0,
        )  # fmt: skip
        out: list[tuple[str, Order, Any]] = []
        with self._lock:
            self._register(child)
            self._changed(child, out)
            self.stats["emulated"] += 1
        self._flush(out)
        return child

    def adopt(self, order: Order) -> bool:
        """Take in an order made elsewhere (the emulator's journal after a restart), without events;
        False when its client id is known already."""
        with self._lock:
            if self.is_known(order.client_order_id):
                log.warning("restored order %s not adopted: its client id is known", order.client_order_id,
                            extra={"client_order_id": order.client_order_id})  # fmt: skip
                return False
            rec = self._register(order)
            if order.broker_order_id:
                self._by_broker_id[(order.broker, order.broker_order_id)] = rec
            return True

    def cancel(self, order: Order, reason: str = "", *, forced: bool = False) -> bool:
        """Ask for the rest of ``order`` (or of the live order a copy of it stands for) to be cancelled.
        An emulated order not yet released is cancelled at once (the emulator stops holding it); one at
        the broker when the broker reports ``cancelled`` (a broker with no reports: at once, if it took
        the cancel).  False when the order is final, unknown, the broker refused the cancel, or the risk
        engine's order-rate limit held it back; ``forced`` (the kill switch's) cancels are never held back."""
        if order.is_final:  # (a refused duplicate shares its client id with the live order: never that one)
            return False
        with self._lock:
            rec = self._by_id.get(order.client_order_id)
            if rec is None or rec.order.is_final:
                return False
            order = rec.order  # the live one (on_order callbacks hold copies)
            held = order.emulated and not order.triggered
            legs = [(leg.broker, leg.broker_order_id) for leg in rec.legs if not leg.primary and leg.broker_order_id]
        if held:
            emulator = self.emulator
            if emulator is None or not emulator.cancel(order):
                return False
            self._cancelled_here(order, reason or "cancelled by the strategy (held by the emulator, never sent)")
            return True
        risk = self.risk
        why = risk.note_cancel(order, forced=forced) if risk is not None else ""
        if why:  # the order-rate limit: the cancel is not sent (a forced one always is; the engine warns)
            log.debug("cancel of %s not sent: %s", order.client_order_id, why,
                        extra={"client_order_id": order.client_order_id, "reason": why})  # fmt: skip
            return False
        primary = self._broker(order.broker)
        if primary is None:
            log.warning("cancel of %s: its broker %s is gone", order.client_order_id, order.broker,
                        extra={"client_order_id": order.client_order_id, "broker": order.broker})  # fmt: skip
            return False
        result = self._call_cancel(primary, order.broker_order_id or order.client_order_id)
        for name, broker_order_id in legs:  # mirrors follow, their answers only logged
            mirror = self._broker(name)
            if mirror is not None:
                self._call_cancel(mirror, broker_order_id)
        if not result.ok:
            log.warning("cancel of %s refused by %s: %s", order.client_order_id, primary.name, result.error,
                        extra={"client_order_id": order.client_order_id, "broker": primary.name,
                               "status": result.status.name, "error": result.error})  # fmt: skip
            return False
        if not _reports(primary):
            self._cancelled_here(order, f"cancelled ({primary.name} took the cancel; it sends no reports)")
        return True

    def _risk_check(self, order: Order, wire_type: str, limit_price: float | None) -> str:
        risk = self.risk
        return risk.check(order, wire_type, limit_price) if risk is not None else ""

    def cancel_all(self, reason: str, *, forced: bool = True) -> list[Order]:
        """Ask for every working order to be cancelled (the emulator's held ones at once, the others when
        their brokers report it): the kill switch.  Returns the orders whose cancel went out (or was done)."""
        asked: list[Order] = []
        for order in self.open_orders():
            try:
                if self.cancel(order, reason, forced=forced):
                    asked.append(order)
            except Exception:  # one broker's failure must not leave the other orders working
                log.exception("cancel of %s failed", order.client_order_id,
                              extra={"client_order_id": order.client_order_id})  # fmt: skip
        return asked

    # ---------------------------------------------------------------- reports
    def on_report(self, report: ExecutionReport) -> None:
        """Apply one broker report (the bus's callback thread); never raises."""
        out: list[tuple[str, Order, Any]] = []
        try:
            with self._lock:
                self._report_locked(report, out)
        except Exception:  # a defect here must cost this report only, loudly
            log.exception(
                "applying an execution report failed",
                extra={"broker": report.broker, "kind": report.kind, "client_order_id": report.client_order_id},
            )
            self._keep_refused(report, "internal error while applying it")
        self._flush(out)

    def _report_locked(self, report: ExecutionReport, out: list[tuple[str, Order, Any]]) -> None:
        rec = self._match(report)
        if rec is None:
            self.stats["unmatched_reports"] += 1
            self.unmatched_reports.append(report)
            log_limited(log, logging.WARNING, "unmatched",
                        f"execution report for an unknown order kept: {report.kind} from {report.broker}",
                        {"broker": report.broker, "kind": report.kind, "client_order_id": report.client_order_id,
                         "broker_order_id": report.broker_order_id, "unmatched": self.stats["unmatched_reports"]},
                        _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip
            return
        order = rec.order
        leg = next((leg for leg in rec.legs if leg.broker == report.broker), None)
        if leg is not None:
            leg.reports += 1
            leg.report = report.kind
            if report.broker_order_id and not leg.broker_order_id:
                leg.broker_order_id = report.broker_order_id
                self._by_broker_id[(report.broker, report.broker_order_id)] = rec
        if report.broker != order.broker:  # a mirror: recorded, the book does not follow it
            self.stats["mirror_reports"] += 1
            if leg is not None and report.kind == "fill":
                leg.filled_shares += report.shares
            return
        if report.broker_order_id and not order.broker_order_id:
            order.broker_order_id = report.broker_order_id
            self._by_broker_id[(report.broker, report.broker_order_id)] = rec
        when = report.datetime or self.now()
        if report.kind == "fill":
            self._fill(rec, report, when, out)
            if leg is not None and report.broker == order.broker:
                leg.filled_shares = order.filled_shares
            return
        if report.kind == "accepted" and order.status in ("accepted", "partially_filled", "filled"):
            self.stats["late_accepted"] += 1  # a venue's order callback after its trade callback
            log.debug("late accepted report of %s ignored", order.client_order_id)
            return
        try:
            order.move_to(report.kind, when, report.reason)
        except OrderStateError as err:
            self._keep_refused(report, str(err))
            return
        if order.status == "rejected":
            self.stats["rejected"] += 1
        self._changed(order, out)

    def _fill(self, rec: _Record, report: ExecutionReport, when: dt.datetime | None,
              out: list[tuple[str, Order, Any]]) -> None:  # fmt: skip
        order = rec.order
        if (report.symbol and report.symbol != order.symbol) or (report.side and report.side != order.side):
            self._keep_refused(report, f"fill of {report.side} {report.symbol} for order {order!r}")
            return
        trade_id = report.trade_id
        if trade_id:
            key = (report.broker, trade_id)
            if key in self._trade_ids:
                self.stats["duplicate_trades"] += 1
                log.debug("repeated trade %s of %s ignored", trade_id, report.broker)
                return
        else:
            self.stats["fills_without_trade_id"] += 1
            trade_id = f"{order.client_order_id}-{rec.fills + 1}"
        self._apply_fill(rec, report.shares, report.price, report.fees, trade_id, when, report.broker, out, report)
        if report.cumulative_shares is not None and report.cumulative_shares != order.filled_shares:
            self.stats["cumulative_mismatches"] += 1
            said = f"{report.broker} says {report.cumulative_shares} shares of {order.client_order_id} are filled"
            fields = {"client_order_id": order.client_order_id, "broker": report.broker}
            log_limited(log, logging.WARNING, "cumulative", f"{said}, its fills add up to {order.filled_shares}",
                        fields, _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip

    def _apply_fill(
        self,
        rec: _Record,
        shares: int,
        price: float,
        venue_fees: float | None,
        trade_id: str,
        when: dt.datetime | None,
        broker: str,
        out: list[tuple[str, Order, Any]],
        report: ExecutionReport | None = None,
    ) -> None:
        order = rec.order
        when = when or order.updated or order.created or dt.datetime.now()
        if venue_fees is not None:
            fees, commission = float(venue_fees), float(venue_fees)
        else:
            if self._fee_model is not None:
                so_far = {"commission_so_far": rec.commission, "amount_so_far": order.value}
                charged = self._fee_model.fill_fees(order.symbol, order.side, price, shares, when.date(), **so_far)
            else:
                charged = self.fees(order.symbol, order.side, price, shares, when.date(), rec.commission)
            fees, commission = _fee_parts(charged)
        try:
            order.add_fill(shares, price, fees, when)
        except (OrderStateError, ValueError) as err:
            if report is not None:
                self._keep_refused(report, str(err))
            else:
                log.warning("fill of %s not applied: %s", order.client_order_id, err)
            return
        self._trade_ids[(broker, trade_id)] = None
        if len(self._trade_ids) > MAX_IDS:
            self._trade_ids.popitem(last=False)
        rec.commission += commission
        rec.fills += 1
        self.stats["fills"] += 1
        self.book.fill(when, order.symbol, order.side, price, shares, order.client_order_id,
                       fees=fees, trade_id=trade_id, broker=broker)  # fmt: skip
        trade = TradeEvent(
            client_order_id=order.client_order_id, trade_id=trade_id, symbol=order.symbol, side=order.side,
            shares=shares, price=price, amount=price * shares, fees=fees, broker=broker, strategy=self.strategy,
            datetime=when,
        )  # fmt: skip
        self._changed(order, out)
        out.append(("trade", snapshot(order), trade))

    def _keep_refused(self, report: ExecutionReport, why: str) -> None:
        self.stats["refused_reports"] += 1
        self.refused_reports.append((report, why))
        fields = {"broker": report.broker, "kind": report.kind, "client_order_id": report.client_order_id,
                  "refused_reports": self.stats["refused_reports"]}  # fmt: skip
        log_limited(log, logging.WARNING, "refused_report", f"execution report not applied, kept: {why}", fields,
                    _WARN_INTERVAL, limiter=self._limiter)  # fmt: skip

    def _match(self, report: ExecutionReport) -> _Record | None:
        if report.client_order_id:
            rec = self._by_id.get(report.client_order_id)
            if rec is not None:
                return rec
        if report.broker_order_id:
            return self._by_broker_id.get((report.broker, report.broker_order_id))
        return None

    # ---------------------------------------------------------------- sending
    def _send(self, order: Order, wire_type: str, limit_price: float | None, when: dt.datetime | None = None) -> None:
        out: list[tuple[str, Order, Any]] = []
        now = when or self.now()  # the firing spot's time for a released order
        with self._lock:
            rec = self._by_id.get(order.client_order_id)
            brokers = list(self.brokers)
            if rec is None or rec.order is not order or not brokers:
                why = "the strategy has no broker" if not brokers else "the order is not this manager's"
                if not order.is_final:
                    order.move_to("rejected", now or order.created, why)
                    self.stats["rejected"] += 1
                    self._changed(order, out)
        if rec is None or rec.order is not order or not brokers:
            self._flush(out)
            return
        why = self._risk_check(order, wire_type, limit_price)
        if why:  # every order on its way to a broker passes the risk engine: the one place that refuses
            with self._lock:
                if not order.is_final:
                    order.broker = REFUSED_BY_STRATEGY  # no broker saw it, as a pre-trade refusal
                    order.move_to("rejected", now or order.created, why)
                    self.stats["risk_refused"] += 1
                    self._changed(order, out)
            self._flush(out)
            # the risk engine warns (rate-limited) and counts each refusal: a runaway loop floods no log here
            log.debug("order not sent: %s %s: %s", order.side, order.symbol, why,
                        extra={"symbol": order.symbol, "side": order.side, "client_order_id": order.client_order_id,
                               "reason": why})  # fmt: skip
            return
        with self._lock:
            if wire_type == "limit":
                assert limit_price is not None
                order.request_price = float(limit_price)
            elif (
                self._last_price is not None
                and (last := self._last_price(order.symbol))
                and (order.emulated or not order.request_price > 0)
            ):
                order.request_price = float(last)  # a market order's reference: the last price
            when = now or order.created or dt.datetime.now()
            sym = order.symbol
            request = OrderRequest(
                when, sym[:2], sym[2:], order.request_price, float(order.shares - order.filled_shares), rec.stoploss,
                rec.goal_price, 0, order.remark, client_order_id=order.client_order_id, order_type=wire_type,
                time_in_force=order.time_in_force,
            )  # fmt: skip
            rec.legs = [BrokerLeg(b.name, i == 0) for i, b in enumerate(brokers)]
            self.stats["sent"] += 1
            self._reserve(rec)  # at the broker from now on (a released order starts reserving here)
        side = OrderSide.Buy if order.side == "buy" else OrderSide.Sell
        results = [self._call_submit(b, side, request) for b in brokers]
        with self._lock:
            order.results = results
            for leg, result in zip(rec.legs, results, strict=True):
                leg.result, leg.error = result.status.name, result.error
                if result.order_id:
                    leg.broker_order_id = result.order_id
                    self._by_broker_id[(leg.broker, result.order_id)] = rec
            primary = results[0]
            if primary.order_id and not order.broker_order_id:
                order.broker_order_id = primary.order_id
            if primary.status == OrderStatus.Filled and not order.is_final:
                trade_id = f"{brokers[0].name}-sync-{primary.order_id or order.client_order_id}"
                shares = order.shares - order.filled_shares
                self._apply_fill(rec, shares, request.price, None, trade_id, when, brokers[0].name, out)
            elif not primary.ok and not order.is_final:
                why = f"{primary.status.name}: {primary.error}" if primary.error else primary.status.name
                order.move_to("rejected", when, why)
                self.stats["rejected"] += 1
                self._changed(order, out)
            rematch = self._waiting_reports(rec)
        self._flush(out)
        for report in rematch:  # reports that came before the send's answer named their broker id
            self.stats["rematched_reports"] += 1
            self.on_report(report)
        log.info("order", extra={"client_order_id": order.client_order_id, "symbol": sym, "side": order.side,
                                 "shares": order.shares, "price": request.price, "order_type": wire_type,
                                 "status": order.status, "broker_status": primary.status.name})  # fmt: skip

    def _waiting_reports(self, rec: _Record) -> list[ExecutionReport]:
        if not self.unmatched_reports:
            return []
        ids = {(leg.broker, leg.broker_order_id) for leg in rec.legs if leg.broker_order_id}
        waiting = [r for r in self.unmatched_reports if (r.broker, r.broker_order_id) in ids]
        for r in waiting:
            self.unmatched_reports.remove(r)
        return waiting

    @staticmethod
    def _call_submit(broker: OrderBrokerBase, side: OrderSide, request: OrderRequest) -> OrderResult:
        try:
            return broker.submit(side, request)
        except Exception as err:  # submit never raises; a broken wrapper must not lose the order's state
            log.exception("broker %s raised from submit", broker.name)
            return OrderResult(OrderStatus.Failed, error=f"{type(err).__name__}: {err}")

    @staticmethod
    def _call_cancel(broker: OrderBrokerBase, broker_order_id: str) -> OrderResult:
        try:
            return broker.cancel(broker_order_id)
        except Exception as err:
            log.exception("broker %s raised from cancel", broker.name)
            return OrderResult(OrderStatus.Failed, error=f"{type(err).__name__}: {err}")

    def _broker(self, name: str) -> OrderBrokerBase | None:
        return next((b for b in self.brokers if b.name == name), None)

    def expire(self, order: Order, reason: str) -> None:
        """An order the emulator held to the close (a day stop never triggered): ``expired``, with its
        OrderEvent, like a broker's expiry report."""
        out: list[tuple[str, Order, Any]] = []
        with self._lock:
            rec = self._by_id.get(order.client_order_id)
            live = rec.order if rec is not None else order
            if not live.is_final:
                live.move_to("expired", self.now() or live.updated or live.created, reason)
                self._changed(live, out)
        self._flush(out)

    def _cancelled_here(self, order: Order, reason: str) -> None:
        out: list[tuple[str, Order, Any]] = []
        with self._lock:
            if not order.is_final:
                order.move_to("cancelled", self.now() or order.updated or order.created, reason)
                self._changed(order, out)
        self._flush(out)

    # ---------------------------------------------------------------- keeping
    def _register(self, order: Order, *, duplicate_ok: bool = False) -> _Record:
        rec = _Record(order)
        self._next_key += 1
        self._records[self._next_key] = rec
        cid = order.client_order_id
        if cid not in self._by_id:
            self._by_id[cid] = rec
        elif not duplicate_ok:
            raise ValueError(f"client order id {cid} is known already")
        self._known_ids[cid] = None
        if len(self._known_ids) > MAX_IDS:
            self._known_ids.popitem(last=False)
            self.stats["forgotten_ids"] += 1
        if not order.is_final and self._by_id[cid] is rec:
            self._open[cid] = rec
            self._reserve(rec)
        self.stats["orders"] += 1
        if len(self._records) > self.max_orders:
            self._forget()
        return rec

    def _forget(self) -> None:
        """Over the bound: forget the oldest final orders, then the oldest orders of earlier days not held
        by the emulator, down to 90 % of the bound (so the scan runs once per tenth of it)."""
        target = self.max_orders * 9 // 10
        now = self.now()
        today = now.date() if now is not None else None
        excess = len(self._records) - target
        forgotten = 0
        for final_only in (True, False):
            for key in list(self._records):
                if forgotten >= excess:
                    break
                o = self._records[key].order
                held = o.emulated and not o.triggered and not o.is_final
                earlier = today is not None and o.created is not None and o.created.date() < today
                if o.is_final if final_only else (earlier and not held):
                    self._drop(key)
                    forgotten += 1
        self.stats["forgotten_orders"] += forgotten
        log_limited(log, logging.WARNING, "forgotten_orders",
                    f"{self.strategy}: more than {self.max_orders} orders: the oldest finished ones are forgotten "
                    f"(strategy.orders no longer lists them)",
                    {"forgotten": self.stats["forgotten_orders"], "kept": len(self._records)}, 3600.0,
                    limiter=self._hourly)  # fmt: skip

    def _drop(self, key: int) -> None:
        rec = self._records.pop(key)
        cid = rec.order.client_order_id
        self._reserve(rec, forget=True)  # an earlier day's open order forgotten: its reservation goes too
        if self._by_id.get(cid) is rec:
            del self._by_id[cid]
        if self._open.get(cid) is rec:
            del self._open[cid]
        for leg in rec.legs:
            if leg.broker_order_id and self._by_broker_id.get((leg.broker, leg.broker_order_id)) is rec:
                del self._by_broker_id[(leg.broker, leg.broker_order_id)]

    # ---------------------------------------------------------------- telling
    def _changed(self, order: Order, out: list[tuple[str, Order, Any]]) -> None:
        rec = self._by_id.get(order.client_order_id)
        if rec is not None and rec.order is order:
            self._reserve(rec)
            if order.is_final:
                self._open.pop(order.client_order_id, None)
        out.append(("order", snapshot(order), order_event(order, self.strategy)))

    def _flush(self, out: Iterable[tuple[str, Order, Any]]) -> None:
        bus = self._bus
        for kind, snap, event in out:
            if bus is not None and bus.running:
                bus.publish(event)
            for listener in list(self.listeners):
                try:
                    listener(kind, snap, event)
                except Exception:
                    log.exception("order listener raised; the manager goes on")


def _reports(broker: OrderBrokerBase) -> bool:
    """Whether a broker publishes ExecutionReports (it has ``attach``): its orders move by them."""
    return callable(getattr(broker, "attach", None))
