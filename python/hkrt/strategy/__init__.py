"""The strategy runtime: ``hkrt.Strategy`` and the runners of a simulated or replayed day.

See docs/strategy.md.
"""

from hkrt.lots import LotRule, lot_rule, round_buy, round_sell
from hkrt.strategy.book import Book, Position, Trade
from hkrt.strategy.runner import FeedReport, load_strategy, run_replay, run_sim
from hkrt.strategy.strategy import OrderTicket, Strategy

__all__ = [
    "Book",
    "FeedReport",
    "LotRule",
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
