"""Technical indicators over K-data: TA-Lib's functions by name, and the variants Chinese charting
software prints (docs/indicators.md).  ``hkrt.indicator(name, kdata, **params)`` computes one over a
bars DataFrame; :class:`LiveIndicator` / :class:`LiveIndicators` carry them bar by bar as bars close
(``Strategy.indicator``).  TA-Lib loads on first use, not with ``import hkrt``."""

from __future__ import annotations

from hkrt.indicators.batch import IndicatorError, indicator, indicator_names
from hkrt.indicators.live import LiveIndicator, LiveIndicators

__all__ = ["IndicatorError", "LiveIndicator", "LiveIndicators", "indicator", "indicator_names"]
