"""The core layer: market time (``china_time``), the trading calendar, bar periods (``ktype``), lots,
column conversions, logging helpers and the synthetic market day.  Every rule here is read from the
C++ core (``hkrt._hkrt``); nothing in this layer imports anything above it (docs/architecture.md,
"Packages by layer").  Submodules load on first use."""

from __future__ import annotations

from hkrt._lazy import lazy_exports

__getattr__, __dir__ = lazy_exports(
    __name__, globals(), {}, ("calendar", "china_time", "columns", "ktype", "logs", "lots", "synthetic")
)
