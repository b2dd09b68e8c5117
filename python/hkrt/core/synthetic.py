"""A deterministic synthetic market, as numpy columns, for the demo and the benchmarks.

Each symbol follows a log random walk on a 0.01-yuan tick, with cumulative day volume
(whole lots, at least one per push) and amount, and the day's open/high/low.  Pushes are
time-major: every symbol's spot at one time, then the next time.  The first push is the
09:25 opening-auction match; then one push every ``interval`` seconds inside the sessions
(09:30:01, 09:30:04, ... for 3 s).  Units follow the project convention: volume in
shares, amount in yuan.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from hkrt.core.china_time import AUCTION_OPEN_MS, SESSIONS_MS


def synthetic_symbols(n: int) -> np.ndarray:
    """n distinct symbols alternating SH 600000+ and SZ 000001+, as 'S8' bytes."""
    sh = [f"SH{600000 + i:06d}" for i in range((n + 1) // 2)]
    sz = [f"SZ{1 + i:06d}" for i in range(n // 2)]
    out = [s for pair in zip(sh, sz, strict=False) for s in pair] + sh[len(sz) :]
    return np.array(out[:n], dtype="S8")


# The opening call auction's match, ten minutes after it opens (09:25): the synthetic market's first push.
_AUCTION_MATCH_MS = AUCTION_OPEN_MS + 10 * 60_000


def session_times(day: dt.date, interval: float = 3.0, offset: float = 1.0) -> np.ndarray:
    """Push times of one day as datetime64[ms]: the 09:25 auction, then every interval inside each
    session of the engine's schedule."""
    base = np.datetime64(day.isoformat(), "ms")
    step = int(interval * 1000)
    first = int(offset * 1000)
    sessions = [np.arange(open_ms + first, close_ms, step) for open_ms, close_ms in SESSIONS_MS]
    return base + np.concatenate([np.array([_AUCTION_MATCH_MS]), *sessions]).astype("timedelta64[ms]")


@dataclass
class Push:
    """One whole-market push: a spot per symbol at one time."""

    symbol: np.ndarray  # S8
    datetime: np.ndarray  # datetime64[ms]
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray  # shares, cumulative
    amount: np.ndarray  # yuan, cumulative

    def columns(self) -> dict[str, np.ndarray]:
        return {
            "symbol": self.symbol,
            "datetime": self.datetime,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": self.volume,
            "amount": self.amount,
        }


def synthetic_day(
    n_symbols: int,
    day: dt.date,
    *,
    interval: float = 3.0,
    seed: int = 7,
) -> Iterator[Push]:
    """Yield the pushes of one synthetic trading day (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    symbols = synthetic_symbols(n_symbols)
    times = session_times(day, interval)
    prev_close = np.round(rng.uniform(3.0, 80.0, n_symbols), 2)
    price = np.round(prev_close * np.exp(rng.normal(0, 0.01, n_symbols)), 2)
    day_open = price.copy()
    high = price.copy()
    low = price.copy()
    volume = rng.integers(1, 200, n_symbols).astype(np.float64) * 100  # auction match, shares
    amount = volume * price
    for t in times:
        if t != times[0]:
            step = np.exp(rng.normal(0, 0.0008, n_symbols))
            price = np.maximum(np.round(price * step, 2), 0.01)
            traded = rng.integers(1, 50, n_symbols).astype(np.float64) * 100
            volume = volume + traded
            amount = amount + traded * price
            high = np.maximum(high, price)
            low = np.minimum(low, price)
        yield Push(
            symbol=symbols,
            datetime=np.full(n_symbols, t, dtype="datetime64[ms]"),
            open=day_open,
            high=high,
            low=low,
            close=price,
            volume=volume,
            amount=amount,
        )
