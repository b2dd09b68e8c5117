"""The strategy runtime: ``hkrt.Strategy`` and the runners of a simulated or replayed day.

See docs/strategy.md.  ``Strategy`` and the runners (which bring the agent, pandas and the brokers)
are imported the first time they are touched, so ``hkrt.strategy.broker_config`` (read by
``hkrt run --help``) and the lot rules stay cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hkrt._lazy import lazy_exports
from hkrt.core.lots import LotRule, lot_rule, round_buy, round_sell
from hkrt.strategy.book import Book, Position, Trade

if TYPE_CHECKING:
    from hkrt.strategy.order import Order
    from hkrt.strategy.order_manager import OrderManager
    from hkrt.strategy.runner import FeedReport, load_strategy, run_replay, run_sim
    from hkrt.strategy.strategy import OrderTicket, Strategy

_LAZY_NAMES: dict[str, str] = {
    **dict.fromkeys(("FeedReport", "load_strategy", "run_replay", "run_sim"), "hkrt.strategy.runner"),
    **dict.fromkeys(("OrderTicket", "Strategy"), "hkrt.strategy.strategy"),
    "Order": "hkrt.strategy.order",
    "OrderManager": "hkrt.strategy.order_manager",
}
_SUBMODULES = frozenset({"book", "broker_config", "order", "order_manager", "pretrade", "runner", "strategy", "timers"})


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_NAMES, _SUBMODULES)


__all__ = [
    "Book",
    "FeedReport",
    "LotRule",
    "Order",
    "OrderManager",
    "OrderTicket",
    "Position",
    "Strategy",
    "Trade",
    "load_strategy",
    "lot_rule",
    "round_buy",
    "round_sell",
    "run_replay",
    "run_sim",
]
