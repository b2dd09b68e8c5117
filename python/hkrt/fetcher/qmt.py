"""Moved to :mod:`hkrt.adapters.qmt` (``config.py``, ``data.py``, ``mapping.py``); these names stay
importable from here for existing code (``from hkrt.fetcher.qmt import QmtClient, tick_to_spot``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.qmt.config import QmtConfig
from hkrt.adapters.qmt.data import (
    QmtClient,
    QmtConnectionError,
    QmtError,
    QmtPushClient,
    QmtUnavailableError,
    china_trading_time,
    fetch,
    get_spot,
    load_xtdata,
)
from hkrt.adapters.qmt.mapping import MARKETS, parse_ticks, qmt_code, tick_to_spot, volume_in_shares

__all__ = [
    "MARKETS",
    "QmtClient",
    "QmtConfig",
    "QmtConnectionError",
    "QmtError",
    "QmtPushClient",
    "QmtUnavailableError",
    "china_trading_time",
    "fetch",
    "get_spot",
    "load_xtdata",
    "parse_ticks",
    "qmt_code",
    "tick_to_spot",
    "volume_in_shares",
]

__getattr__ = forward(__name__, "hkrt.adapters.qmt.data", "hkrt.adapters.qmt.mapping", "hkrt.adapters.qmt.config")
