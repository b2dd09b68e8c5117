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
    from hkrt.strategy.aggregator import SignalAggregator
    from hkrt.strategy.deadman import DeadManAlert, DeadManSwitch
    from hkrt.strategy.emulator import OrderEmulator
    from hkrt.strategy.kill_switch import KillOutcome, stop_trading
    from hkrt.strategy.ledger import Ledger, LedgerError
    from hkrt.strategy.order import Order
    from hkrt.strategy.order_manager import OrderManager
    from hkrt.strategy.performance import Performance, performance, plot_performance
    from hkrt.strategy.reconcile import Reconciliation, reconcile
    from hkrt.strategy.risk import RiskConfig, RiskConfigError, RiskEngine
    from hkrt.strategy.runner import FeedReport, load_strategy, run_replay, run_sim
    from hkrt.strategy.sizing import fixed_fraction, kelly, kelly_fraction, lot_rounded, volatility_target
    from hkrt.strategy.strategy import OrderTicket, Strategy

_LAZY_NAMES: dict[str, str] = {
    **dict.fromkeys(("FeedReport", "load_strategy", "run_replay", "run_sim"), "hkrt.strategy.runner"),
    **dict.fromkeys(("OrderTicket", "Strategy"), "hkrt.strategy.strategy"),
    "Order": "hkrt.strategy.order",
    "OrderManager": "hkrt.strategy.order_manager",
    "OrderEmulator": "hkrt.strategy.emulator",
    "SignalAggregator": "hkrt.strategy.aggregator",
    **dict.fromkeys(("DeadManAlert", "DeadManSwitch"), "hkrt.strategy.deadman"),
    **dict.fromkeys(("KillOutcome", "stop_trading"), "hkrt.strategy.kill_switch"),
    **dict.fromkeys(("RiskConfig", "RiskConfigError", "RiskEngine"), "hkrt.strategy.risk"),
    **dict.fromkeys(("Ledger", "LedgerError"), "hkrt.strategy.ledger"),
    **dict.fromkeys(("Performance", "performance", "plot_performance"), "hkrt.strategy.performance"),
    **dict.fromkeys(("Reconciliation", "reconcile"), "hkrt.strategy.reconcile"),
    **dict.fromkeys(
        ("fixed_fraction", "kelly", "kelly_fraction", "lot_rounded", "volatility_target"), "hkrt.strategy.sizing"
    ),
}
_SUBMODULES = frozenset(
    {
        "book", "broker_config", "emulator", "ledger", "order", "order_manager", "performance", "pretrade",
        "reconcile", "runner", "sizing", "strategy", "timers",
        "aggregator", "signals", "signals_attribution", "control", "deadman", "kill_switch", "risk", "ledger_book",
    }
)  # fmt: skip


__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_NAMES, _SUBMODULES)


__all__ = [
    "Book",
    "DeadManAlert",
    "DeadManSwitch",
    "FeedReport",
    "KillOutcome",
    "Ledger",
    "LedgerError",
    "LotRule",
    "Order",
    "OrderEmulator",
    "OrderManager",
    "OrderTicket",
    "Performance",
    "Position",
    "Reconciliation",
    "RiskConfig",
    "RiskConfigError",
    "RiskEngine",
    "SignalAggregator",
    "Strategy",
    "Trade",
    "fixed_fraction",
    "kelly",
    "kelly_fraction",
    "load_strategy",
    "lot_rounded",
    "lot_rule",
    "performance",
    "plot_performance",
    "reconcile",
    "round_buy",
    "round_sell",
    "run_replay",
    "run_sim",
    "stop_trading",
    "volatility_target",
]
