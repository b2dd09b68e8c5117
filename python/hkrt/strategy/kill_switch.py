"""Halting and cancelling from outside the callback thread, without waiting on it: what ``hkrt halt`` and
the dead-man switch do to a running strategy.

``Strategy.halt`` moves the trading state, then cancels the working orders one after the other.  From
the callback thread that is all.  From another thread (the run loop reading ``hkrt halt``, the dead-man
watchdog) each step may publish on the bus (the RiskEvent of the state change, a paper broker's
``cancelled`` report, the order event of an emulated order), and a publish from outside the callback
thread waits for room when the callback queue is full -- which is just when the kill switch is needed:
a callback stuck for minutes lets the feed fill the queue.  One such wait must not hold the other
orders working, so :func:`stop_trading`

1. moves the state to HALTED in a thread of its own and waits only for the *state* (set before the
   event is published: from then on every new order is refused),
2. asks for each working order's cancel from a small pool of threads (``MAX_WORKERS``): a cancel
   whose report waits for the queue holds one worker, the others go on (the paper broker lets one
   thread publish its reports and the others leave theirs to it; easytrader and QMT send the cancel
   and report later from their own pollers),
3. waits at most ``wait`` seconds in all and says which cancels went out, and how many were still
   on their way (they finish in the background when the queue has room).

What it relies on: the order manager's lock (an RLock) is held only around its own bookkeeping, never
across a broker call, and each broker's ``cancel`` is safe from any thread (the paper broker and the
easytrader broker serialise their state with their own locks).
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from hkrt.strategy.order import Order

if TYPE_CHECKING:
    from hkrt.strategy.strategy import Strategy

log = logging.getLogger("hkrt.risk")

MAX_WORKERS = 8  # threads asking for cancels at once


@dataclasses.dataclass
class KillOutcome:
    """What :func:`stop_trading` did within its wait."""

    asked: list[Order]  # orders whose cancel went out (or that were cancelled here: held by the emulator)
    refused: list[Order]  # orders whose cancel the broker refused (final already, unknown) or that raised
    pending: list[Order]  # cancels still on their way when the wait ended
    state: str  # the trading state after it
    halted: bool  # the state is HALTED


def stop_trading(strategy: Strategy, reason: str, *, halt: bool = True, wait: float = 5.0) -> KillOutcome:
    """HALT ``strategy`` (unless ``halt`` is False) and ask for every working order to be cancelled,
    from any thread, never waiting more than ``wait`` seconds on the bus (see the module docstring)."""
    bus = strategy.bus
    why = f"cancelled by the kill switch: {reason}" if not reason.startswith("dead-man") else reason
    if bus is not None and bus.on_callback_thread:  # publishing from here never waits: plainly, in order
        if halt:
            strategy.risk.halt(reason)
        orders = strategy.order_manager.open_orders()
        answered = {o.client_order_id: _cancel(strategy, o, why) for o in orders}
        return _outcome(strategy, reason, orders, answered)
    deadline = time.monotonic() + wait
    if halt:
        risk = strategy.risk
        mover = threading.Thread(target=_guarded, args=(risk.halt, reason), name="hkrt-kill-state", daemon=True)
        mover.start()
        while risk.state != "HALTED" and mover.is_alive():
            if time.monotonic() >= deadline:
                break
            time.sleep(0.001)
    orders = strategy.order_manager.open_orders()
    todo: queue.SimpleQueue[Order] = queue.SimpleQueue()
    for order in orders:
        todo.put(order)
    done: dict[str, bool] = {}
    lock = threading.Lock()

    def worker() -> None:
        while True:
            try:
                order = todo.get_nowait()
            except queue.Empty:
                return
            ok = _cancel(strategy, order, why)
            with lock:
                done[order.client_order_id] = ok

    workers = [
        threading.Thread(target=worker, name="hkrt-kill-cancel", daemon=True)
        for _ in range(min(MAX_WORKERS, len(orders)))
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join(max(0.0, deadline - time.monotonic()))
    with lock:
        answered = dict(done)
    return _outcome(strategy, reason, orders, answered)


def _cancel(strategy: Strategy, order: Order, why: str) -> bool:
    try:
        return strategy.order_manager.cancel(order, why, forced=True)
    except Exception:  # one broker's failure must not leave the other orders working
        log.exception(
            "kill switch: cancel of %s failed", order.client_order_id, extra={"client_order_id": order.client_order_id}
        )
        return False


def _outcome(strategy: Strategy, reason: str, orders: list[Order], answered: dict[str, bool]) -> KillOutcome:
    asked = [o for o in orders if answered.get(o.client_order_id) is True]
    refused = [o for o in orders if answered.get(o.client_order_id) is False]
    pending = [o for o in orders if o.client_order_id not in answered]
    state = strategy.trading_state
    outcome = KillOutcome(asked, refused, pending, state, state == "HALTED")
    log.warning(
        "kill switch: %s; %d working orders asked to cancel%s",
        reason,
        len(asked),
        f", {len(pending)} cancels still on their way (the callback queue is full?)" if pending else "",
        extra={
            "strategy": strategy.name,
            "reason": reason,
            "cancelled": len(asked),
            "pending": len(pending),
            "state": state,
        },
    )
    return outcome


def _guarded(func: Callable[[str], object], reason: str) -> None:
    try:
        func(reason)
    except Exception:
        log.exception("kill switch: moving the trading state failed")
