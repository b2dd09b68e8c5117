"""Static candlestick charts of K-data with a strategy's trades marked (matplotlib, no display needed).

Colours follow the China convention: a rising bar (close >= open) is red, a falling one green.
Buys are marked with an upward triangle below the bar's low, sells with a downward one above
its high.  Bars are drawn at their position in the frame (no gaps for lunch or nights), with
time labels underneath.

:func:`static_candlestick` and :func:`save_candlestick` draw on a ``matplotlib.figure.Figure`` with the Agg
canvas attached directly: pyplot is never imported and ``matplotlib.use`` never called, so a notebook
kernel's backend stays what it was (a later ``plt.show()`` still shows) and the figure is in no pyplot
list (shown once, never again by the inline backend at the end of the cell).  :func:`candlestick` is the
older spelling that returns a pyplot figure (for ``plt.show()`` and ``plt.subplots`` axes); the interactive
chart a notebook shows is :func:`hkrt.notebook.candlestick` (docs/dashboard.md, "In a notebook").
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

UP, DOWN = "#d62728", "#2ca02c"  # red rises, green falls
FORMATS = ("png", "svg", "pdf")  # what save_candlestick writes, by the path's suffix


class CandleFigure(Figure):
    """A matplotlib Figure that a notebook shows as one PNG (``_repr_png_``), on the Agg canvas."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", dpi=100)
        return buffer.getvalue()


def static_candlestick(
    bars: pd.DataFrame,
    *,
    trades: pd.DataFrame | None = None,
    title: str = "",
    ax: Any = None,
    volume: bool = True,
    figure: Figure | None = None,
) -> Figure:
    """Draw ``bars`` (a DataFrame indexed by datetime with open/high/low/close/volume, as ``agent.kdata()``
    or ``hkrt.load_kdata()`` gives) on a new figure outside pyplot and return it (a :class:`CandleFigure`:
    as a cell's last line it shows one PNG; ``fig.savefig(...)`` writes it; ``fig.axes[0]`` is the price axes).

    ``trades``: rows with datetime, side ("buy"/"sell") and price (``strategy.trades``); each is marked on
    the bar whose period contains it.  ``ax``: draw into this Axes instead (no volume panel; its figure is
    returned); ``figure``: draw on this empty figure (a pyplot one, say) instead of a new one."""
    if ax is not None:
        return _draw(ax.figure, ax, None, bars, trades, title)
    if figure is None:
        figure = CandleFigure(figsize=(12, 6 if volume else 5))
        FigureCanvasAgg(figure)  # the canvas savefig and _repr_png_ render with; no backend is selected
    return _draw(figure, *_axes(figure, volume), bars, trades, title)


def candlestick(bars: pd.DataFrame, **options: Any) -> Figure:
    """:func:`static_candlestick` (same keywords) on a **pyplot** figure: the older spelling, kept for scripts
    that call ``plt.show()`` after it.  In a notebook prefer :func:`hkrt.notebook.candlestick` (interactive)
    or :func:`static_candlestick` (one PNG): a pyplot figure as a cell's last line is shown twice by the
    inline backend."""
    if options.get("ax") is None and options.get("figure") is None:
        import matplotlib.pyplot as plt

        options["figure"] = plt.figure(figsize=(12, 6 if options.get("volume", True) else 5))
    return static_candlestick(bars, **options)


def _axes(fig: Figure, volume: bool) -> tuple[Any, Any]:
    if not volume:
        return fig.subplots(), None
    price, vol = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    return price, vol


def _draw(fig: Figure, ax: Any, vax: Any, bars: pd.DataFrame, trades: pd.DataFrame | None, title: str) -> Figure:
    if bars.empty:
        ax.text(0.5, 0.5, "no bars yet", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(title)
        return fig
    x = np.arange(len(bars))
    o, h, lo, c = (bars[k].to_numpy(float) for k in ("open", "high", "low", "close"))
    colours = np.where(c >= o, UP, DOWN)
    ax.vlines(x, lo, h, colors=colours, linewidth=0.8)
    body = np.maximum(np.abs(c - o), (np.nanmax(h) - np.nanmin(lo)) * 0.002)  # a flat bar stays visible
    ax.bar(x, body, bottom=np.minimum(o, c), width=0.7, color=colours, edgecolor=colours)
    if vax is not None:
        vax.bar(x, bars["volume"].to_numpy(float), width=0.7, color=colours)
        vax.set_ylabel("volume (shares)")
    if trades is not None and len(trades):
        _mark_trades(ax, bars, trades, lo, h)
    labels = _labels(bars.index)
    step = max(1, len(x) // 8)
    (vax or ax).set_xticks(x[::step], labels[::step], rotation=0)
    ax.set_xlim(-1, len(x))
    ax.set_ylabel("price (yuan)")
    ax.set_title(title)
    ax.grid(alpha=0.2)
    fig.tight_layout()
    return fig


def _labels(index: pd.Index) -> list[str]:
    times = pd.DatetimeIndex(index)
    one_day = len(set(times.date)) == 1
    return [t.strftime("%H:%M" if one_day else "%m-%d %H:%M" if t.hour or t.minute else "%Y-%m-%d") for t in times]


def _mark_trades(ax: Any, bars: pd.DataFrame, trades: pd.DataFrame, lo: np.ndarray, h: np.ndarray) -> None:
    labels = pd.DatetimeIndex(bars.index).to_numpy()
    span = float(np.nanmax(h) - np.nanmin(lo)) or 1.0
    for side, marker, colour in (("buy", "^", UP), ("sell", "v", DOWN)):
        rows = trades[trades["side"] == side]
        if rows.empty:
            continue
        when = pd.DatetimeIndex(rows["datetime"]).to_numpy()
        # bars are right-labelled: a trade at t belongs to the first bar whose label is >= t
        pos = np.clip(np.searchsorted(labels, when, side="left"), 0, len(labels) - 1)
        y = lo[pos] - span * 0.03 if side == "buy" else h[pos] + span * 0.03
        ax.scatter(pos, y, marker=marker, s=80, color=colour, edgecolors="black", zorder=3, label=side)
    ax.legend(loc="upper left")


def save_candlestick(path: str | Path, bars: pd.DataFrame, **kwargs: Any) -> Path:
    """Draw (:func:`static_candlestick`'s keywords) and write a PNG, SVG or PDF, by the path's suffix (PNG
    when it has none of these); returns its path.  Leaves matplotlib's backend and pyplot alone."""
    out = Path(path).expanduser()
    suffix = out.suffix.lower().lstrip(".")
    fig = static_candlestick(bars, **kwargs)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100, format=suffix if suffix in FORMATS else "png")
    return out
