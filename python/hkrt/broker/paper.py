"""Moved to :mod:`hkrt.adapters.paper` (``execution.py``); ``TestOrderBroker`` stays importable from here."""

from hkrt.adapters._moved import forward
from hkrt.adapters.paper.execution import TestOrderBroker

__all__ = ["TestOrderBroker"]

__getattr__ = forward(__name__, "hkrt.adapters.paper.execution", "hkrt.adapters.paper.config")
