"""Interactive candlestick charts in notebooks, drawn by the dashboard's own chart code (docs/dashboard.md,
"In a notebook").

:func:`interactive_candlestick` returns an object a notebook shows as an interactive chart (zoom with the
wheel, pan by dragging, hover for values) of a frame of bars with a strategy's trades marked: one
self-contained HTML page (the vendored Lightweight Charts, ``static/candles.js`` and the data) inside an
``<iframe srcdoc>``, so it needs no server, no extension, and nothing of one chart leaks into another.  Made
with the standard library and pandas only: no FastAPI needed.  For a chart that updates live while a
strategy runs, without blocking the kernel, show a running dashboard (:func:`hkrt.dashboard.serve_dashboard`
returns one; its HTML in a notebook is the live page).
"""

from __future__ import annotations

import html
import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hkrt.core.china_time import CHINA_TZ

STATIC = Path(__file__).with_name("static")
COLUMNS = ("open", "high", "low", "close")


@cache
def _script(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def _seconds(index: Any) -> np.ndarray:
    """Market time (China local) as the chart's seconds: the clock face read as UTC, as the dashboard does."""
    times = pd.DatetimeIndex(index)
    if times.tz is not None:
        times = times.tz_convert(CHINA_TZ).tz_localize(None)
    result: np.ndarray = times.to_numpy(dtype="datetime64[s]").astype(np.int64)
    return result


def chart_data(bars: pd.DataFrame, trades: pd.DataFrame | None = None) -> tuple[list[dict[str, Any]], list[Any]]:
    """The chart's bars (rows without a price are left out) and trades, as candles.js takes them."""
    missing = [c for c in COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars need the columns open, high, low, close (missing: {', '.join(missing)})")
    frame = bars.dropna(subset=list(COLUMNS))
    times = _seconds(frame.index)
    volume = np.nan_to_num(frame["volume"].to_numpy(float)) if "volume" in frame.columns else np.zeros(len(frame))
    columns = [frame[c].to_numpy(float) for c in COLUMNS]
    rows = [
        {"time": int(t), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in zip(times, *columns, volume, strict=True)
    ]
    marks: list[Any] = []
    if trades is not None and len(trades):
        when = _seconds(trades["datetime"])
        for t, side, shares in zip(when, trades["side"], trades["shares"], strict=True):
            marks.append({"time": int(t), "side": str(side), "shares": int(shares)})
    return rows, marks


def chart_page(bars: pd.DataFrame, *, trades: pd.DataFrame | None = None, title: str = "", height: int = 420,
               volume: bool = True) -> str:  # fmt: skip
    """The chart as one self-contained HTML page."""
    rows, marks = chart_data(bars, trades)

    def literal(value: Any) -> str:  # JSON inside <script>: no "</" may end the element early
        return json.dumps(value, allow_nan=False).replace("</", "<\\/")

    heading = f"<div class='t'>{html.escape(title)}</div>" if title else ""
    chart_height = height - (22 if title else 0)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>body{margin:0;font:13px system-ui,sans-serif}"
        f".t{{height:22px;padding-left:4px}}#c{{height:{chart_height}px}}</style></head><body>{heading}"
        f"<div id='c'></div><script>{_script('lightweight-charts.js')}</script><script>{_script('candles.js')}"
        f"</script><script>const chart = hkrtCandles.create(document.getElementById('c'), "
        f"{{volume: {literal(volume)}}});chart.setBars({literal(rows)});chart.setTrades({literal(marks)});"
        "chart.fit();window.hkrtChart = chart;</script></body></html>"
    )


class CandleChart:
    """An interactive chart a notebook shows (``_repr_html_``); :attr:`page` is the HTML, :meth:`save` writes it."""

    def __init__(self, page: str, height: int) -> None:
        self.page = page
        self.height = height

    def _repr_html_(self) -> str:
        return (f"<iframe srcdoc=\"{html.escape(self.page, quote=True)}\" style=\"width:100%;height:"
                f"{self.height + 8}px;border:0\" sandbox=\"allow-scripts\"></iframe>")  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write the chart as a standalone HTML file (opens in any browser, offline)."""
        target = Path(path).expanduser()
        target.write_text(self.page, encoding="utf-8")
        return target


def interactive_candlestick(
    bars: pd.DataFrame,
    *,
    trades: pd.DataFrame | None = None,
    title: str = "",
    height: int = 420,
    volume: bool = True,
) -> CandleChart:
    """An interactive candlestick chart of ``bars`` (indexed by datetime with open/high/low/close and volume,
    as ``agent.kdata()``, ``strategy.kdata()`` or ``hkrt.load_kdata()`` give), ``trades`` marked (rows with
    datetime, side and shares: ``strategy.trades``).  As a cell's last line it shows one chart; ``.save(path)``
    writes it as an HTML file.  ValueError when a price column is missing."""
    return CandleChart(chart_page(bars, trades=trades, title=title, height=height, volume=volume), height)
