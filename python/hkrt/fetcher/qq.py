"""Moved to :mod:`hkrt.adapters.qq` (``config.py``, ``data.py``, ``mapping.py``); these names stay
importable from here for existing code (``from hkrt.fetcher.qq import QQClient, parse_qq``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.qq.config import QQ_URL, QQConfig
from hkrt.adapters.qq.data import QQClient
from hkrt.adapters.qq.mapping import LOT, MIN_FIELDS, NONE_MATCH, WAN, parse_qq, parse_qq_line, qq_amount, qq_code

__all__ = [
    "LOT",
    "MIN_FIELDS",
    "NONE_MATCH",
    "QQ_URL",
    "WAN",
    "QQClient",
    "QQConfig",
    "parse_qq",
    "parse_qq_line",
    "qq_amount",
    "qq_code",
]

__getattr__ = forward(__name__, "hkrt.adapters.qq.data", "hkrt.adapters.qq.mapping", "hkrt.adapters.qq.config")
