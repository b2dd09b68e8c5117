"""Performance of a run from its equity curve and its fills: returns, drawdown, Sharpe, Sortino, turnover,
round trips, win rate, exposure, fees (docs/performance.md gives each definition with its formula).

Pure over pandas objects: ``performance(equity, trades, cash=...)`` reads a Series of portfolio values (yuan,
indexed by datetime, intraday or daily) and the fills as ``strategy.trades`` lists them, and returns a frozen
``Performance``.  A metric that cannot be computed is NaN and ``Performance.reasons`` says why.
``plot_performance`` writes the equity and drawdown panels to a PNG (matplotlib loaded on first use, drawn on
its Agg canvas outside pyplot: no display needed, and the backend is never changed).
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("hkrt.performance")

TRADING_DAYS_PER_YEAR = 242  # SSE/SZSE open about 242 days a year (365 less weekends and ~11 holiday weekdays)
# a standard deviation below this (per day, as a fraction) is zero: a constant growth rate differs from itself
# only by rounding, and dividing by that rounding would give a meaningless, huge ratio
ZERO_STD = 1e-12
POSITION_EPS = 0.005  # yuan: equity - cash above half a fen means a position is held

ROUND_TRIP_COLUMNS = [
    "symbol", "entry", "exit", "shares", "entry_price", "exit_price", "fees", "pnl", "return",
]  # fmt: skip


# eq=False: the Series and frames it holds have no single truth value, so == compares identity
@dataclass(frozen=True, eq=False)
class Performance:
    """The numbers of one run.  Money in yuan, returns and drawdowns as fractions (0.1 = 10 %)."""

    start_equity: float
    end_equity: float
    total_return: float
    annual_return: float
    days: int  # trading days in the curve (distinct dates)
    daily_returns: pd.Series  # indexed by the day's date (the first day has none)
    max_drawdown: float  # fraction of the peak
    max_drawdown_value: float  # yuan lost from the peak to the trough of the largest fractional drawdown
    peak: pd.Timestamp | None
    trough: pd.Timestamp | None
    sharpe: float
    sortino: float
    turnover: float
    round_trips: int
    win_rate: float
    exposure: float
    total_fees: float
    equity: pd.Series  # the curve as given (sorted), for the plot
    drawdown: pd.Series  # 1 - equity / running peak, on the same index
    trips: pd.DataFrame  # one row per closed round trip (ROUND_TRIP_COLUMNS)
    periods_per_year: int = TRADING_DAYS_PER_YEAR  # trading days a year the annual figures assume
    unmatched_sell_shares: int = 0  # sold shares with no earlier buy in ``trades`` (a position held before)
    reasons: dict[str, str] = field(default_factory=dict)  # metric name -> why it is NaN

    def as_dict(self) -> dict[str, Any]:
        """The scalar metrics as plain Python values (dates as ISO strings), JSON-ready."""
        return {
            "start_equity": self.start_equity,
            "end_equity": self.end_equity,
            "total_return": self.total_return,
            "annual_return": self.annual_return,
            "days": self.days,
            "max_drawdown": self.max_drawdown,
            "max_drawdown_value": self.max_drawdown_value,
            "peak": None if self.peak is None else self.peak.isoformat(),
            "trough": None if self.trough is None else self.trough.isoformat(),
            "sharpe": self.sharpe,
            "sortino": self.sortino,
            "turnover": self.turnover,
            "round_trips": self.round_trips,
            "win_rate": self.win_rate,
            "exposure": self.exposure,
            "total_fees": self.total_fees,
            "periods_per_year": self.periods_per_year,
            "unmatched_sell_shares": self.unmatched_sell_shares,
            "reasons": dict(self.reasons),
        }

    def table(self, markdown: bool = True) -> str:
        """The metrics as a two-column table: Markdown, or aligned plain text with ``markdown=False``."""
        rows = [
            ("start equity", _money(self.start_equity)),
            ("end equity", _money(self.end_equity)),
            ("total return", _pct(self.total_return)),
            (f"annual return ({self.periods_per_year} d/y)", _pct(self.annual_return, "annual_return", self.reasons)),
            ("trading days", str(self.days)),
            ("max drawdown", f"{_pct(self.max_drawdown)} ({_money(self.max_drawdown_value)})"),
            ("drawdown peak → trough", f"{_when(self.peak)} → {_when(self.trough)}"),
            ("Sharpe", _ratio(self.sharpe, "sharpe", self.reasons)),
            ("Sortino", _ratio(self.sortino, "sortino", self.reasons)),
            ("turnover", _ratio(self.turnover, "turnover", self.reasons)),
            ("round trips", str(self.round_trips)),
            ("win rate", _pct(self.win_rate, "win_rate", self.reasons)),
            ("exposure", _pct(self.exposure, "exposure", self.reasons)),
            ("total fees", _money(self.total_fees)),
        ]
        if markdown:
            return "\n".join(["| metric | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
        width = max(len(k) for k, _ in rows)
        return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)

    def __str__(self) -> str:
        return self.table(markdown=False)


def _money(x: float) -> str:
    return f"{x:,.2f}"


def _when(t: pd.Timestamp | None) -> str:
    return "-" if t is None else str(t)


def _pct(x: float, name: str = "", reasons: dict[str, str] | None = None) -> str:
    if math.isnan(x):
        return f"n/a ({reasons.get(name, '')})" if reasons and name in reasons else "n/a"
    return f"{x * 100:.2f} %"


def _ratio(x: float, name: str, reasons: dict[str, str]) -> str:
    return f"n/a ({reasons.get(name, '')})" if math.isnan(x) else f"{x:.3f}"


def daily_equity(equity: pd.Series) -> pd.Series:
    """The last value of each calendar date in ``equity`` (a trading day's close), indexed by that date."""
    return equity.groupby(equity.index.normalize()).last()


def drawdown_series(equity: pd.Series) -> pd.Series:
    """1 - equity / running maximum: 0 at a new high, 0.1 when 10 % below the highest value so far."""
    values = equity.to_numpy(dtype=float)
    return pd.Series(1.0 - values / np.maximum.accumulate(values), index=equity.index, name="drawdown")


def sharpe_ratio(returns: np.ndarray, periods_per_year: int, risk_free: float = 0.0) -> tuple[float, str]:
    """mean(r - rf/P) / std(r - rf/P, ddof=1) * sqrt(P); NaN with the reason when it cannot be computed."""
    if len(returns) < 2:
        return math.nan, f"needs at least 2 daily returns, has {len(returns)}"
    excess = returns - risk_free / periods_per_year
    std = float(np.std(excess, ddof=1))
    if std < ZERO_STD:
        return math.nan, "daily returns have zero variance"
    return float(np.mean(excess)) / std * math.sqrt(periods_per_year), ""


def sortino_ratio(returns: np.ndarray, periods_per_year: int, risk_free: float = 0.0) -> tuple[float, str]:
    """mean(r - rf/P) / sqrt(mean(min(r - rf/P, 0)^2)) * sqrt(P) (downside deviation over all days)."""
    if len(returns) < 2:
        return math.nan, f"needs at least 2 daily returns, has {len(returns)}"
    excess = returns - risk_free / periods_per_year
    downside = math.sqrt(float(np.mean(np.minimum(excess, 0.0) ** 2)))
    if downside < ZERO_STD:
        return math.nan, "no day returned less than the risk-free rate (zero downside deviation)"
    return float(np.mean(excess)) / downside * math.sqrt(periods_per_year), ""


def match_round_trips(trades: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Close buy lots by later sells, first in first out, per symbol.

    A round trip is one buy fill (a lot) once sells have closed all its shares.  Its P&L is
    Σ(sell price - buy price) × shares matched, less the buy's fees and each closing sell's fees in
    proportion to the shares it closed of this lot.  Lots still open at the end are not round trips.
    Returns (one row per round trip, sold shares that no earlier buy covered).
    """
    if trades.empty:
        return pd.DataFrame(columns=ROUND_TRIP_COLUMNS), 0
    ordered = trades.sort_values("datetime", kind="stable")
    # per symbol: open lots as [entry time, shares left, shares, price, fees, proceeds so far, sell fees so far, exit]
    lots: dict[str, deque[list[Any]]] = {}
    rows: list[dict[str, Any]] = []
    unmatched = 0
    for when, symbol, side, price, shares, fees in ordered[
        ["datetime", "symbol", "side", "price", "shares", "fees"]
    ].itertuples(index=False):
        shares, price, fees = int(shares), float(price), float(fees)
        queue = lots.setdefault(str(symbol), deque())
        if side == "buy":
            queue.append([when, shares, shares, price, fees, 0.0, 0.0, None])
            continue
        if side != "sell":
            raise ValueError(f"trade side must be 'buy' or 'sell', got {side!r}")
        left = shares
        while left > 0 and queue:
            lot = queue[0]
            take = min(left, lot[1])
            lot[1] -= take
            lot[5] += take * price
            lot[6] += fees * take / shares
            lot[7] = when
            left -= take
            if lot[1] == 0:
                queue.popleft()
                _, _, n, buy_price, buy_fees, proceeds, sell_fees, exit_time = lot
                cost = n * buy_price
                pnl = proceeds - cost - buy_fees - sell_fees
                rows.append({
                    "symbol": str(symbol), "entry": lot[0], "exit": exit_time, "shares": n,
                    "entry_price": buy_price, "exit_price": proceeds / n, "fees": buy_fees + sell_fees,
                    "pnl": pnl, "return": pnl / (cost + buy_fees) if cost + buy_fees > 0 else math.nan,
                })  # fmt: skip
        unmatched += left
    if unmatched:
        log.warning(
            "sells of %d shares have no earlier buy in the trades (positions held before the run?): not in round trips",
            unmatched,
            extra={"unmatched_sell_shares": unmatched},
        )
    return pd.DataFrame(rows, columns=ROUND_TRIP_COLUMNS), unmatched


def performance(
    equity: pd.Series,
    trades: pd.DataFrame | None = None,
    *,
    cash: pd.Series | None = None,
    periods_per_year: int = TRADING_DAYS_PER_YEAR,
    risk_free: float = 0.0,
) -> Performance:
    """The performance of a run (docs/performance.md).

    equity: portfolio value in yuan (cash + positions at market), indexed by datetime, intraday or daily;
    daily returns come from each date's last value.  trades: the fills (the columns of ``strategy.trades``;
    None for none).  cash: the cash balance over time, for ``exposure`` (NaN without it).
    periods_per_year: trading days a year for annualising (242 for A-shares).  risk_free: annual rate.
    """
    if not isinstance(equity, pd.Series) or not isinstance(equity.index, pd.DatetimeIndex):
        raise ValueError("equity must be a pandas Series indexed by datetime (portfolio value in yuan)")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, got {periods_per_year}")
    curve = equity.dropna().astype(float).sort_index(kind="stable")
    if curve.empty:
        raise ValueError("equity has no values")
    if (curve.to_numpy() <= 0).any():
        raise ValueError("equity must be positive (returns and drawdowns are fractions of it)")
    reasons: dict[str, str] = {}

    start, end = float(curve.iloc[0]), float(curve.iloc[-1])
    closes = daily_equity(curve)
    daily = closes.pct_change().iloc[1:].rename("return")
    n = len(daily)
    if n:
        try:
            annual = (end / start) ** (periods_per_year / n) - 1.0
        except OverflowError:  # a large gain over a few days, compounded for a year, exceeds a float
            annual = math.inf
    else:
        annual = math.nan
        reasons["annual_return"] = "needs at least 2 trading days"

    dd = drawdown_series(curve)
    dd_values = dd.to_numpy()
    if dd_values.max() > 0:
        trough_i = int(np.argmax(dd_values))
        peak_i = int(np.argmax(curve.to_numpy()[: trough_i + 1]))
        peak, trough = curve.index[peak_i], curve.index[trough_i]
        dd_value = float(curve.iloc[peak_i] - curve.iloc[trough_i])
    else:
        peak = trough = None
        dd_value = 0.0

    r = daily.to_numpy(dtype=float)
    sharpe, why = sharpe_ratio(r, periods_per_year, risk_free)
    if why:
        reasons["sharpe"] = why
    sortino, why = sortino_ratio(r, periods_per_year, risk_free)
    if why:
        reasons["sortino"] = why

    fills = trades if trades is not None else pd.DataFrame(columns=["datetime", "symbol", "side", "price", "shares"])
    if not fills.empty:
        missing = {"datetime", "symbol", "side", "price", "shares", "amount", "fees"} - set(fills.columns)
        if missing:
            raise ValueError(f"trades lack the columns {sorted(missing)} (expected those of strategy.trades)")
    traded = float(fills["amount"].sum()) if "amount" in fills else 0.0
    total_fees = float(fills["fees"].sum()) if "fees" in fills else 0.0
    turnover = traded / float(closes.mean())
    trips, unmatched = match_round_trips(fills)
    if len(trips):
        win_rate = float((trips["pnl"] > 0).mean())
    else:
        win_rate = math.nan
        reasons["win_rate"] = "no round trips"

    if cash is None:
        exposure = math.nan
        reasons["exposure"] = "no cash series given"
    else:
        held = cash.astype(float).sort_index().reindex(curve.index, method="ffill")
        invested = curve - held
        exposure = float((invested.dropna() > POSITION_EPS).sum() / len(curve))

    return Performance(
        start_equity=start,
        end_equity=end,
        total_return=end / start - 1.0,
        annual_return=annual,
        days=len(closes),
        daily_returns=daily,
        max_drawdown=float(dd_values.max()),
        max_drawdown_value=dd_value,
        peak=peak,
        trough=trough,
        sharpe=sharpe,
        sortino=sortino,
        turnover=turnover,
        round_trips=len(trips),
        win_rate=win_rate,
        exposure=exposure,
        total_fees=total_fees,
        equity=curve,
        drawdown=dd,
        trips=trips,
        periods_per_year=periods_per_year,
        unmatched_sell_shares=unmatched,
        reasons=reasons,
    )


def plot_performance(perf: Performance, path: str | Path, *, title: str = "") -> Path:
    """Write a PNG: the equity curve above, the drawdown (in %, filled below zero) underneath; returns its path."""
    # a Figure on the Agg canvas, outside pyplot: a notebook kernel's backend is left as it was
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 6))
    FigureCanvasAgg(fig)
    eax, dax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]})
    x = np.arange(len(perf.equity))  # by sample: no gaps for lunch, nights or weekends
    eax.plot(x, perf.equity.to_numpy(), color="#1f77b4", linewidth=1.2)
    eax.set_ylabel("equity (yuan)")
    eax.set_title(title or f"total {perf.total_return * 100:.2f} %, max drawdown {perf.max_drawdown * 100:.2f} %")
    eax.grid(alpha=0.3)
    dd = -perf.drawdown.to_numpy() * 100
    dax.fill_between(x, dd, 0.0, color="#d62728", alpha=0.4, step="post")
    dax.set_ylabel("drawdown (%)")
    dax.grid(alpha=0.3)
    ticks = np.linspace(0, len(x) - 1, num=min(len(x), 8)).round().astype(int)
    dax.set_xticks(ticks)
    dax.set_xticklabels([perf.equity.index[i].strftime("%m-%d %H:%M") for i in ticks], rotation=0)
    fig.tight_layout()
    out = Path(path).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
