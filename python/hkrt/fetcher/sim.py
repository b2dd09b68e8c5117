"""Moved to :mod:`hkrt.adapters.sim` (``config.py``, ``data.py``, ``mapping.py``); these names stay
importable from here for existing code (``from hkrt.fetcher.sim import SimConfig, SimMarket``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.sim.config import SimConfig, SimSourceConfig
from hkrt.adapters.sim.data import AUCTION_MATCH, AUCTION_START, SimMarket
from hkrt.adapters.sim.mapping import price_limit, universe

__all__ = ["AUCTION_MATCH", "AUCTION_START", "SimConfig", "SimMarket", "SimSourceConfig", "price_limit", "universe"]

__getattr__ = forward(__name__, "hkrt.adapters.sim.data", "hkrt.adapters.sim.mapping", "hkrt.adapters.sim.config")
