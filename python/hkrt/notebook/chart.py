"""Candlestick charts of K-data with a strategy's trades marked (matplotlib, no display needed).

Colours follow the China convention: a rising bar (close >= open) is red, a falling one green.
Buys are marked with an upward triangle below the bar's low, sells with a downward one above
its high.  Bars are drawn at their position in the frame (no gaps for lunch or nights), with
time labels underneath.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

UP, DOWN = "#d62728", "#2ca02c"  # red rises, green falls


def candlestick(
    bars: pd.DataFrame,
    *,
    trades: pd.DataFrame | None = None,
    title: str = "",
    ax: Any = None,
    volume: bool = True,
) -> Any:
    """Draw ``bars`` (a DataFrame indexed by datetime with open/high/low/close/volume, as
    ``agent.kdata()`` or ``hkrt.load_kdata()`` gives) and return the matplotlib Figure.

    ``trades``: rows with datetime, side ("buy"/"sell") and price (``strategy.trades``); each is
    marked on the bar whose period contains it.  ``ax``: draw into this Axes (no volume panel).
    """
    if ax is None:
        import matplotlib.pyplot as plt

        if volume:
            fig, (ax, vax) = plt.subplots(2, 1, figsize=(12, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
        else:
            fig, ax = plt.subplots(figsize=(12, 5))
            vax = None
    else:
        fig, vax = ax.figure, None
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
    """Draw and write a PNG; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = candlestick(bars, **kwargs)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
