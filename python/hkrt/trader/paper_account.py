"""``hkrt trader --broker paper --account-file FILE``: the trader keeps its paper account on disk
(:mod:`hkrt.trader.paper_account_file`), so a trader restarted mid-day (killed, or hung and killed by
``hkrt node``) goes on with its strategy's cash, shares (T+1 included) and open orders, and its strategy's
book and the account still agree.

How the account, the journal and the strategy stay one story across a kill:

- the paper broker's reports are made events at once, on the order worker (no bus thread in between);
- after each order-worker item that changed anything, the account is written together with every event a
  strategy has not yet confirmed (a request asks "after" the last event it has), and only then are the
  item's events served (``TraderServer.hold_events``): a strategy never sees a fill its account file lacks;
- a restarted trader reads the file back, serves those unconfirmed events again (a fill seen twice is
  dropped by its trade id), and forgets the journal's orders the account does not hold (received and never
  sent, or answered after the last write): the strategy's resend of them is sent as new, instead of
  "outcome unknown", because the paper account itself says they never reached it.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from hkrt.trader.journal import UNKNOWN
from hkrt.trader.server import TraderServer

log = logging.getLogger("hkrt.trader")


class _Inline:
    """A bus for the paper broker that hands each report to the trader at once (its own thread)."""

    running = True

    def __init__(self, func: Callable[[Any], None]) -> None:
        self.func = func

    def subscribe(self, *args: Any, **kwargs: Any) -> None:
        return None  # market data reaches the paper broker through the trader's order worker

    def unsubscribe(self, subscription: Any) -> None:
        pass

    def publish(self, event: Any) -> bool:
        self.func(event)
        return True


def keep_paper_account(server: TraderServer, path: str | os.PathLike[str], *, new: bool = False) -> None:
    """Before ``server.start()``: restore its paper broker from ``path`` (when the file exists and ``new`` is
    false; else the broker's starting account replaces it) and keep it there after each change (module
    docstring).  ValueError (one line) for a broker that is not a paper one, or a file that cannot be read."""
    from hkrt.adapters.paper.execution import PaperBroker
    from hkrt.trader.paper_account_file import account_version, load_account, save_account

    broker = server.broker
    if not isinstance(broker, PaperBroker):
        raise ValueError(f"--account-file is for the paper broker (with market fills), not {broker.name}")
    data = None if new else load_account(broker, path)
    if data is not None:
        forgotten = 0
        for cid, entry in list(server.journal.entries.items()):
            number = entry.order_id[1:] if entry.order_id.startswith("P") else ""
            # never sent, or sent after the account was last written (its order number is past the account's)
            if entry.status == UNKNOWN or (number.isdigit() and int(number) > broker._orders):
                server.journal.forget(cid)
                forgotten += 1
        events = [e for e in data.get("events", []) if isinstance(e, dict)]
        server.reemit(events)
        opened = len(broker.open_orders())
        log.info(f"paper account restored: cash {broker.cash:,.2f}, {opened} open orders; {forgotten} orders of "
                 f"the journal it does not hold (sent as new when asked again), {len(events)} events served again",
                 extra={"path": os.fspath(path), "cash": broker.cash, "open_orders": opened,
                        "orders_forgotten": forgotten, "events_again": len(events)})  # fmt: skip
    server.hold_events = True
    written: list[Any] = [None]

    def after_work() -> None:
        version = (account_version(broker), server.stats["events"])
        if version != written[0]:
            save_account(broker, path, {"events": server.unacknowledged_events()})
            written[0] = version

    after_work()  # the file exists from the first start: a restart finds the starting cash
    server.after_work = after_work


def report_inline(server: TraderServer) -> None:
    """After ``server.start()``: the paper broker's reports become the trader's events on the worker that made
    them (so the account written after the item holds them)."""
    server.broker.attach(_Inline(server._on_report))  # type: ignore[attr-defined]
