"""Interactive candlestick charts in notebooks, drawn by the dashboard's own chart code (docs/dashboard.md,
"In a notebook").

:func:`candlestick` (``hkrt.notebook.candlestick``) returns an object a notebook shows as an interactive
chart (zoom with the wheel, pan by dragging, hover for values) of a frame of bars with a strategy's trades marked: one
self-contained HTML page (the vendored Lightweight Charts, ``static/candles.js`` and the data) inside an
``<iframe srcdoc>``, so it needs no server, no extension, and nothing of one chart leaks into another.  Made
with the standard library and pandas only: no FastAPI needed.  For a chart that updates live while a
strategy or an agent runs, without blocking the kernel: :func:`hkrt.dashboard.live.live_chart`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
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


def chart_data(
    bars: pd.DataFrame, trades: pd.DataFrame | None = None, lines: Mapping[str, Any] | None = None
) -> tuple[list[dict[str, Any]], list[Any]]:
    """The chart's bars (rows without a price are left out) and trades, as candles.js takes them; ``lines``
    (label -> values by bar: a Series on the bars' index, or a sequence as long as the bars) ride on the bars
    as their ``ind`` values (no point where a value is missing)."""
    missing = [c for c in COLUMNS if c not in bars.columns]
    if missing:
        raise ValueError(f"bars need the columns open, high, low, close (missing: {', '.join(missing)})")
    extra = {label: _aligned(label, values, bars) for label, values in (lines or {}).items()}
    keep = bars[list(COLUMNS)].notna().all(axis=1).to_numpy()
    frame = bars[keep]
    times = _seconds(frame.index)
    volume = np.nan_to_num(frame["volume"].to_numpy(float)) if "volume" in frame.columns else np.zeros(len(frame))
    columns = [frame[c].to_numpy(float) for c in COLUMNS]
    rows = [
        {"time": int(t), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in zip(times, *columns, volume, strict=True)
    ]
    for label, values in extra.items():
        for row, value in zip(rows, values[keep], strict=True):
            if np.isfinite(value):
                row.setdefault("ind", {})[label] = float(value)
    marks: list[Any] = []
    if trades is not None and len(trades):
        when = _seconds(trades["datetime"])
        for t, side, shares in zip(when, trades["side"], trades["shares"], strict=True):
            marks.append({"time": int(t), "side": str(side), "shares": int(shares)})
    return rows, marks


def _aligned(label: str, values: Any, bars: pd.DataFrame) -> np.ndarray:
    """A line's values as floats, one per bar (a Series is aligned on the bars' index)."""
    if isinstance(values, pd.Series):
        values = values.reindex(bars.index)
    out = np.asarray(values, dtype=float)
    if out.shape != (len(bars),):
        raise ValueError(f"the line {label!r} has {out.size} values for {len(bars)} bars")
    return out


def chart_page(rows: list[dict[str, Any]], marks: list[Any], panes: dict[str, bool], title: str, height: int,
               volume: bool) -> str:  # fmt: skip
    """The chart as one self-contained HTML page: ``rows`` and ``marks`` from :func:`chart_data`, ``panes``: line
    label -> drawn over the prices (True) or in the pane below (False)."""

    def literal(value: Any) -> str:  # JSON inside <script>: no "</" may end the element early
        return json.dumps(value, allow_nan=False).replace("</", "<\\/")

    heading = f"<div class='t'>{html.escape(title)}</div>" if title else ""
    chart_height = height - (22 if title else 0)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><style>body{margin:0;font:13px system-ui,sans-serif}"
        f".t{{height:22px;padding-left:4px}}#c{{height:{chart_height}px}}</style></head><body>{heading}"
        f"<div id='c'></div><script>{_script('lightweight-charts.js')}</script><script>{_script('candles.js')}"
        f"</script><script>const chart = hkrtCandles.create(document.getElementById('c'), "
        f"{{volume: {literal(volume)}}});chart.setPanes({literal(panes)});chart.setBars({literal(rows)});"
        f"chart.setTrades({literal(marks)});chart.fit();window.hkrtChart = chart;</script></body></html>"
    )


class CandleChart:
    """An interactive chart a notebook shows (``_repr_html_``); :attr:`page` is the HTML, :meth:`save` writes it."""

    def __init__(self, page: str, height: int, bars: int = 0) -> None:
        self.page = page
        self.height = height
        self.bars = bars  # how many bars it draws

    def __repr__(self) -> str:
        return f"<CandleChart: {self.bars} bars>"

    def _repr_html_(self) -> str:
        return (f"<iframe srcdoc=\"{html.escape(self.page, quote=True)}\" style=\"width:100%;height:"
                f"{self.height + 8}px;border:0\" sandbox=\"allow-scripts\"></iframe>")  # fmt: skip

    def save(self, path: str | Path) -> Path:
        """Write the chart as a standalone HTML file (opens in any browser, offline)."""
        target = Path(path).expanduser()
        target.write_text(self.page, encoding="utf-8")
        return target


def candlestick(
    bars: pd.DataFrame,
    trades: pd.DataFrame | None = None,
    *,
    title: str = "",
    height: int = 420,
    volume: bool = True,
    lines: Mapping[str, Any] | None = None,
    lower: Mapping[str, Any] | None = None,
    static: bool = False,
) -> Any:
    """A candlestick chart of ``bars`` (indexed by datetime with open/high/low/close and volume, as
    ``agent.kdata()``, ``strategy.kdata()`` or ``hkrt.load_kdata()`` give), ``trades`` marked (rows with
    datetime, side and shares: ``strategy.trades``); ``hkrt.notebook.candlestick`` is this function.

    An interactive :class:`CandleChart` (zoom with the wheel, pan by dragging, hover for values).  ``lines``:
    label -> values by bar (a Series on the bars' index, or a sequence as long as the bars) drawn over the
    prices, such as a moving average or the VWAP; ``lower``: the same in a pane below (an RSI).  As a cell's
    last line it shows one chart; ``.save(path)`` writes it as an HTML file.  ValueError when a price column
    is missing or a line's length is not the bars'.

    ``static=True``: matplotlib's drawing instead, a figure outside pyplot that shows as one PNG
    (:func:`hkrt.notebook.chart.static_candlestick`; ``title``, ``trades`` and ``volume`` apply)."""
    if static:
        if lines or lower:
            raise ValueError("lines and lower are drawn on the interactive chart only (static=False)")
        from hkrt.notebook.chart import static_candlestick

        return static_candlestick(bars, trades=trades, title=title, volume=volume)
    panes = {label: True for label in lines or {}} | {label: False for label in lower or {}}
    rows, marks = chart_data(bars, trades, {**(lines or {}), **(lower or {})})
    return CandleChart(chart_page(rows, marks, panes, title, height, volume), height, len(rows))


interactive_candlestick = candlestick  # the first name of it (issue 16), kept for the code that uses it
