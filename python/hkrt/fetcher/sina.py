"""Moved to :mod:`hkrt.adapters.sina` (``config.py``, ``data.py``, ``mapping.py``); these names stay
importable from here for existing code (``from hkrt.fetcher.sina import SinaClient, parse_sina``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.sina.config import SINA_REFERER, SINA_URL, SinaConfig
from hkrt.adapters.sina.data import SinaClient
from hkrt.adapters.sina.mapping import (
    LOT,
    LOT_VOLUME_PREFIXES,
    MIN_FIELDS,
    parse_sina,
    parse_sina_line,
    sina_code,
    volume_in_lots,
)

__all__ = [
    "LOT",
    "LOT_VOLUME_PREFIXES",
    "MIN_FIELDS",
    "SINA_REFERER",
    "SINA_URL",
    "SinaClient",
    "SinaConfig",
    "parse_sina",
    "parse_sina_line",
    "sina_code",
    "volume_in_lots",
]

__getattr__ = forward(__name__, "hkrt.adapters.sina.data", "hkrt.adapters.sina.mapping", "hkrt.adapters.sina.config")
