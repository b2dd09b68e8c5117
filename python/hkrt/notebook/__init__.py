"""Notebook helpers (``chart``: candlesticks with trades).  The top of the stack: it may use any layer."""

from __future__ import annotations

from hkrt._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(__name__, globals(), {}, ("chart",))
