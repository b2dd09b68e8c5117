"""Charts in notebooks (docs/dashboard.md, "In a notebook").  The top of the stack: it may use any layer.

* :func:`candlestick` ``(bars, trades=None, ...)``: an interactive chart (the dashboard's chart code; zoom,
  pan, hover); ``static=True`` for matplotlib's drawing instead.
* :func:`static_candlestick`, :func:`save_candlestick`: matplotlib on its Agg canvas, outside pyplot (the
  kernel's backend is never changed); PNG, SVG or PDF by the file's suffix.
* :func:`live_chart` ``(strategy_or_agent, symbol, ktype)``: a chart updating live from a background server
  while the kernel runs other cells; ``.stop()``.
* :mod:`hkrt.notebook.chart`: the matplotlib drawing; its ``candlestick`` is the older spelling returning a
  pyplot figure (``plt.show()`` code keeps working).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hkrt._lazy import lazy_exports

if TYPE_CHECKING:
    from hkrt.dashboard.live import LiveChart, live_chart
    from hkrt.dashboard.notebook import candlestick
    from hkrt.notebook.chart import save_candlestick, static_candlestick

__all__ = ["LiveChart", "candlestick", "live_chart", "save_candlestick", "static_candlestick"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    globals(),
    {
        "candlestick": "hkrt.dashboard.notebook",
        "static_candlestick": "hkrt.notebook.chart",
        "save_candlestick": "hkrt.notebook.chart",
        "live_chart": "hkrt.dashboard.live",
        "LiveChart": "hkrt.dashboard.live",
    },
    ("chart",),
)
