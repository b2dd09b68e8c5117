"""Moved to :mod:`hkrt.adapters.qmt` (``execution.py``); these names stay importable from here for
existing code (``from hkrt.broker.qmt import XtQuantOrderBroker``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.qmt.execution import (
    PRICE_TYPES,
    QmtTradingConnectionError,
    QmtTradingUnavailableError,
    XtQuantOrderBroker,
    load_xttrader,
)

__all__ = [
    "PRICE_TYPES",
    "QmtTradingConnectionError",
    "QmtTradingUnavailableError",
    "XtQuantOrderBroker",
    "load_xttrader",
]

__getattr__ = forward(__name__, "hkrt.adapters.qmt.execution", "hkrt.adapters.qmt.mapping")
