"""``RiskEngine``: the one place between a strategy and its brokers where an order may be refused.

Every order that would reach a broker passes :meth:`RiskEngine.check` on its way out (the order
manager calls it when it sends an order and when the emulator releases a stop), and every cancel is
counted by :meth:`RiskEngine.note_cancel`.  A refusal is the order ``rejected`` with a reason that
starts ``risk:``, a WARNING and a count in ``stats["refused"]`` by check; a :class:`RiskEvent` is
published on the strategy's bus for each refusal and each change of the trading state.

Fail closed: a check that raises moves the state to HALTED with the error as its reason and refuses
the order; nothing more goes out until someone resumes.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from hkrt.bus import EventBus, RiskEvent
from hkrt.core.logs import log_limited
from hkrt.strategy.order import Order
from hkrt.strategy.risk.config import RiskConfig
from hkrt.strategy.risk.losses import EquityWatch
from hkrt.strategy.risk.rates import RateLimiter
from hkrt.strategy.risk.state import ACTIVE, HALTED, REDUCING, TradingState

if TYPE_CHECKING:
    from hkrt.strategy.pretrade import Quote

log = logging.getLogger("hkrt.risk")

PREFIX = "risk: "
_EPOCH = dt.datetime(1970, 1, 1)


class Account(Protocol):
    """What the checks read of the account they guard (``Strategy`` is one).  ``now`` is its market
    clock (None before any data); ``live`` whether its orders reach a real market now (the rate limits
    then count wall-clock seconds); ``holdings()`` symbol -> shares held; ``day_quote(symbol)`` what the
    feed said of the symbol today (previous close, name), None when nothing."""

    @property
    def now(self) -> dt.datetime | None: ...
    @property
    def live(self) -> bool: ...
    def holdings(self) -> Mapping[str, int]: ...
    def day_quote(self, symbol: str) -> Quote | None: ...
    def position(self, symbol: str) -> int: ...
    def last_price(self, symbol: str) -> float | None: ...
    def portfolio_value(self) -> float: ...
    def open_orders(self, symbol: str | None = None, side: str | None = None) -> list[Order]: ...


# a check: (engine, order, wire_type, limit_price) -> "" or why (without the "risk: " prefix)
Check = Callable[["RiskEngine", Order, str, "float | None"], str]


class RiskEngine:
    """The pre-trade risk checks and the trading state of one account (docs/risk.md)."""

    def __init__(self, config: RiskConfig | None = None, *, account: Account, name: str = "") -> None:
        self.config = config if config is not None else RiskConfig()
        self.account = account
        self.name = name
        self.trading = TradingState()
        from hkrt.strategy.risk.checks import PER_ORDER_CHECKS

        # in order: the first that fails refuses; the rate limit last, as it counts what goes out
        self.checks: list[tuple[str, Check]] = [("losses", _loss_check), ("state", _state_check),
                                                *PER_ORDER_CHECKS, ("order_rate", _rate_check)]  # fmt: skip
        self.rates = RateLimiter(self.config.max_orders_per_second, self.config.max_orders_per_day)
        self.equity = EquityWatch(self.config)
        self._equity_now: float | None = None
        self._buys_now: list[Order] | None = None
        # orders come from the callback thread, the kill switch and the CLI from others: one at a time
        self._lock = threading.RLock()
        self.stats: collections.Counter[str] = collections.Counter()
        self.bus: EventBus | None = None
        self.refusals: collections.deque[tuple[dt.datetime | None, str, str]] = collections.deque(maxlen=1_000)

    def configure(self, config: RiskConfig) -> None:
        """Take new limits (``hkrt run --risk``): the order counts and the equity marks start again; the
        trading state stays."""
        self.config = config
        self.rates = RateLimiter(config.max_orders_per_second, config.max_orders_per_day)
        self.equity = EquityWatch(config)

    # ------------------------------------------------------------ state
    @property
    def state(self) -> str:
        return self.trading.state

    @property
    def reason(self) -> str:
        return self.trading.reason

    def halt(self, reason: str) -> bool:
        """Refuse every order from now on (until :meth:`resume`); True when the state changed."""
        return self._move(HALTED, reason)

    def reduce(self, reason: str) -> bool:
        """Let only orders that reduce a position out (until :meth:`resume`)."""
        return self._move(REDUCING, reason)

    def resume(self, reason: str = "resumed") -> bool:
        """Back to ACTIVE: every order the checks pass goes out again."""
        return self._move(ACTIVE, reason)

    def _move(self, state: str, reason: str) -> bool:
        with self._lock:
            return self._move_locked(state, reason)

    def _move_locked(self, state: str, reason: str) -> bool:
        previous = self.trading.state
        if not self.trading.change(state, reason, self.account.now):
            return False
        level = logging.INFO if state == ACTIVE else logging.WARNING
        log.log(level, "trading state %s -> %s: %s", previous, state, reason,
                extra={"strategy": self.name, "state": state, "previous": previous, "reason": reason})  # fmt: skip
        self.stats[f"state_{state.lower()}"] += 1
        self._publish(RiskEvent("state", state, reason, strategy=self.name, datetime=self.account.now))
        return True

    # ----------------------------------------------------------- checks
    def check(self, order: Order, wire_type: str, limit_price: float | None) -> str:
        """ "" when ``order`` may go out now as a ``wire_type`` order at ``limit_price``; else the refusal's
        reason (starting "risk: "), counted, logged and published.  Never raises (fail closed)."""
        with self._lock:
            return self._check_locked(order, wire_type, limit_price)

    def _check_locked(self, order: Order, wire_type: str, limit_price: float | None) -> str:
        self._equity_now = None  # computed at most once per order (several checks read them)
        self._buys_now = None
        for name, check in self.checks:
            try:
                why = check(self, order, wire_type, limit_price)
            except Exception as err:  # a defect in a check must stop trading, not let the order through
                log.exception("risk check %s failed: trading halted", name,
                              extra={"strategy": self.name, "check": name})  # fmt: skip
                self.stats["check_failures"] += 1
                self.halt(f"the {name} check failed: {type(err).__name__}: {err}")
                why = f"the {name} check failed ({type(err).__name__}: {err}); trading halted"
            if why:
                return self._refuse(name, order, why)
        return ""

    def equity_now(self) -> float:
        """The account's equity (cash and positions at their latest prices), once per order checked."""
        if self._equity_now is None:
            self._equity_now = self.account.portfolio_value()
        return self._equity_now

    def open_buys_now(self) -> list[Order]:
        """The account's open buys working at a broker (or released), once per order checked; the emulator's
        held ones are checked when released."""
        if self._buys_now is None:
            self._buys_now = [o for o in self.account.open_orders(None, "buy") if not (o.emulated and not o.triggered)]
        return self._buys_now

    def _refuse(self, check: str, order: Order, why: str) -> str:
        reason = PREFIX + why
        self.stats["refused"] += 1
        self.stats[f"refused_{check}"] += 1
        self.refusals.append((self.account.now, order.client_order_id, reason))
        log_limited(log, logging.WARNING, f"refused:{check}:{order.symbol}",
                    f"order refused: {order.side} {order.symbol}: {reason}", interval=1.0,
                    extra={"strategy": self.name, "check": check, "symbol": order.symbol,
                           "client_order_id": order.client_order_id})  # fmt: skip
        self._publish(RiskEvent("refused", self.state, reason, symbol=order.symbol,
                                client_order_id=order.client_order_id, strategy=self.name,
                                datetime=self.account.now))  # fmt: skip
        return reason

    def note_cancel(self, order: Order, *, forced: bool = False) -> str:
        """A cancel of ``order`` is about to go out: "" to send it; else why not (the order-rate limit,
        counted as a refusal).  ``forced`` cancels (the kill switch, the dead-man switch) are counted in
        the rates but never refused."""
        with self._lock:
            return self._note_cancel_locked(order, forced=forced)

    def _note_cancel_locked(self, order: Order, *, forced: bool = False) -> str:
        self.stats["cancels"] += 1
        if not forced:
            try:
                why = self._rate_refusal("cancel", order)
            except Exception as err:  # fail closed, as for an order
                self.stats["check_failures"] += 1
                self.halt(f"the order_rate check failed: {type(err).__name__}: {err}")
                why = f"the order_rate check failed ({type(err).__name__}: {err}); trading halted"
            if why:
                self.stats["cancels_refused"] += 1
                return self._refuse("order_rate", order, why)
        else:
            self.stats["cancels_forced"] += 1
        self.rates.record(*self.rate_clock())
        return ""

    # ------------------------------------------------------------ rates
    def rate_clock(self) -> tuple[dt.date, float]:
        """(day, seconds) on the clock the order-rate limits count: a live account's wall clock (the
        exchanges count real seconds), else the account's market clock (a replay refuses what the
        recorded run refused); an account with no market clock yet, the wall clock."""
        now = None if self.account.live else self.account.now
        if now is None:
            from hkrt.core.china_time import china_today

            return china_today(), time.monotonic()
        return now.date(), (now - _EPOCH).total_seconds()  # naive market time: no DST of the host

    def _rate_refusal(self, what: str, order: Order) -> str:
        day, now = self.rate_clock()
        hit = self.rates.refusal(day, now)
        if hit == "second":
            self.stats["rate_second_hits"] += 1
            return (
                f"order rate: {self.rates.per_second} orders and cancels in the last second "
                f"(max_orders_per_second); this {what} is not sent"
            )
        if hit == "day":
            self.stats["rate_day_hits"] += 1
            why = (
                f"order rate: {self.rates.today} orders and cancels today reach max_orders_per_day "
                f"{self.rates.per_day} (a runaway loop?)"
            )
            self.halt(why)
            return why + "; trading halted"
        return ""

    # ----------------------------------------------------------- equity
    def update_equity(self, when: dt.datetime | None, equity: float) -> None:
        """The account's equity at ``when`` (the strategy calls this every market cycle): a breached
        daily-loss or drawdown limit moves the trading state now, and is published."""
        with self._lock:
            self._update_equity_locked(when, equity)

    def _update_equity_locked(self, when: dt.datetime | None, equity: float) -> None:
        if not self.equity.active:
            return
        for breach in self.equity.update(when.date() if when is not None else None, equity):
            self.stats[f"breach_{breach.limit}"] += 1
            if breach.action == HALTED:
                self.halt(breach.reason)
            else:
                self.reduce(breach.reason)

    # -------------------------------------------------------------- bus
    def attach(self, bus: EventBus) -> None:
        self.bus = bus

    def detach(self) -> None:
        self.bus = None

    def _publish(self, event: RiskEvent) -> None:
        bus = self.bus
        if bus is not None and bus.running:
            bus.publish(event)

    def status(self) -> dict[str, Any]:
        """The state, its reason and since when, and the counters (for ``hkrt status`` and monitors)."""
        watch = self.equity
        return {"state": self.state, "reason": self.reason, "since": self.trading.since, "stats": dict(self.stats),
                "orders_today": self.rates.today, "day_open_equity": watch.day_open, "peak_equity": watch.peak,
                "equity": watch.equity}  # fmt: skip

    def __repr__(self) -> str:
        return f"RiskEngine({self.name!r}, {self.trading!r})"


def _loss_check(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """The daily-loss and drawdown limits at the equity now (a breach moves the state, which the state
    check then applies to this order)."""
    if engine.equity.active:
        engine.update_equity(engine.account.now, engine.equity_now())
    return ""


def _rate_check(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """max_orders_per_second / max_orders_per_day over orders and cancels sent; an order the emulator
    takes to hold is not sent (counted when released).  The last check: an order passing it is counted."""
    from hkrt.strategy.risk.checks import HELD_TYPES

    if wire_type in HELD_TYPES:
        return ""
    why = engine._rate_refusal("order", order)
    if not why:
        engine.rates.record(*engine.rate_clock())
    return why


def _state_check(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """HALTED refuses everything; REDUCING refuses what does not reduce a position."""
    state = engine.state
    if state == ACTIVE:
        return ""
    if state == HALTED:
        return f"trading halted: {engine.reason}"
    assert state == REDUCING
    if order.side == "buy":
        return f"reducing only ({engine.reason}): a buy adds to a position"
    held = engine.account.position(order.symbol)
    selling = sum(
        o.shares - o.filled_shares
        for o in engine.account.open_orders(order.symbol, "sell")
        if o.client_order_id != order.client_order_id and not (o.emulated and not o.triggered)
    )
    rest = order.shares - order.filled_shares
    if rest > held - selling:
        return (
            f"reducing only ({engine.reason}): selling {rest} of {order.symbol} with {held} held and {selling} "
            "in open sells would open a short"
        )
    return ""
