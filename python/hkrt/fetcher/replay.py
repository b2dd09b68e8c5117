"""Moved to :mod:`hkrt.adapters.replay` (``config.py``, ``data.py``); these names stay importable from
here for existing code (``from hkrt.fetcher.replay import ReplayConfig, ReplaySource``)."""

from hkrt.adapters._moved import forward
from hkrt.adapters.replay.config import ReplayConfig
from hkrt.adapters.replay.data import ReplayCycle, ReplaySource, ReplayStats

__all__ = ["ReplayConfig", "ReplayCycle", "ReplaySource", "ReplayStats"]

__getattr__ = forward(__name__, "hkrt.adapters.replay.data", "hkrt.adapters.replay.config")
