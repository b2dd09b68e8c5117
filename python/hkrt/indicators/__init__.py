"""Technical indicators over K-data: TA-Lib's functions by name, and the variants Chinese charting
software prints (docs/indicators.md).  ``hkrt.indicator(name, kdata, **params)`` is the entry point;
TA-Lib loads on first use, not with ``import hkrt``."""

from __future__ import annotations

from hkrt.indicators.batch import IndicatorError, indicator, indicator_names

__all__ = ["IndicatorError", "indicator", "indicator_names"]
