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
from collections.abc import Callable
from typing import Any, Protocol

from hkrt.bus import EventBus, RiskEvent
from hkrt.core.logs import log_limited
from hkrt.strategy.order import Order
from hkrt.strategy.risk.config import RiskConfig
from hkrt.strategy.risk.state import ACTIVE, HALTED, REDUCING, TradingState

log = logging.getLogger("hkrt.risk")

PREFIX = "risk: "


class Account(Protocol):
    """What the checks read of the account they guard (``Strategy`` is one)."""

    @property
    def now(self) -> dt.datetime | None: ...
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
        self.checks: list[tuple[str, Check]] = [("state", _state_check)]
        self.stats: collections.Counter[str] = collections.Counter()
        self.bus: EventBus | None = None
        self.refusals: collections.deque[tuple[dt.datetime | None, str, str]] = collections.deque(maxlen=1_000)

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
        """A cancel of ``order`` is about to go out: "" to send it; else why not (the order-rate limit).
        ``forced`` cancels (the kill switch, the dead-man switch) are counted but never refused."""
        self.stats["cancels"] += 1
        return ""

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
        return {"state": self.state, "reason": self.reason, "since": self.trading.since, "stats": dict(self.stats)}

    def __repr__(self) -> str:
        return f"RiskEngine({self.name!r}, {self.trading!r})"


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
