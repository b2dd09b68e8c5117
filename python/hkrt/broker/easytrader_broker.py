"""Moved to :mod:`hkrt.adapters.easytrader` (``execution.py``, ``mapping.py``; the exchange-rule check to
:mod:`hkrt.adapters.checks`); these names stay importable from here for existing code."""

from hkrt.adapters._moved import forward
from hkrt.adapters.checks import order_quantity_error
from hkrt.adapters.easytrader.execution import AnswerTooLarge, EasyTraderOrderBroker, RequestDeadlineExceeded
from hkrt.adapters.easytrader.mapping import EasyTraderAsset, market_of_code, parse_asset

__all__ = [
    "AnswerTooLarge",
    "EasyTraderAsset",
    "EasyTraderOrderBroker",
    "RequestDeadlineExceeded",
    "market_of_code",
    "order_quantity_error",
    "parse_asset",
]

__getattr__ = forward(
    __name__, "hkrt.adapters.easytrader.execution", "hkrt.adapters.easytrader.mapping", "hkrt.adapters.checks"
)
