"""Benchmark: live indicators for a whole market, next to recomputing them from the history.

Run ``python benchmarks/bench_indicators.py`` (``--quick`` for a smoke test); it prints a Markdown
table.  The workload (issue 14): 5,000 symbols, each with three indicators — SMA(20), MACD(12, 26,
9) and RSI(14) — and 1,200 MIN bars of history; then, minute after minute, every symbol's new bar
closes and each of the 15,000 indicators takes its value on it.  Each row does that whole-market
minute its own way, in the same process; the time is the median minute of the repeats.

- live: the set a strategy keeps (``LiveIndicators``, hkrt.indicators.live) subscribed to a running
  ``EventBus``, one ``BarBatch`` of the minute's 5,000 bars published (what the agent publishes;
  the set takes it whole) until the bus is idle: the reference row; the same set's
  ``on_batch`` called directly; its ``on_bar`` with one ``BarClosed`` per symbol (bars published
  one by one); ``LiveIndicator.update`` called directly; and TA-Lib's stream handles alone
  (``talib.stream``), the floor under them.
- recompute: TA-Lib's batch functions over the last 1,200 bars of each symbol (numpy arrays kept
  ready, only the calls timed); ``hkrt.indicator`` over the bars DataFrame (what a strategy does
  with ``strategy.kdata``); pandas ``rolling().mean()`` and ``ewm()`` (MACD, and RSI as Wilder's
  average).

The values are cross-checked once, untimed: the live ones equal TA-Lib's batch bit for bit, and
pandas' are within the printed difference.  Nothing is asserted: the numbers are reported, never
judged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import talib

import hkrt
from hkrt.bus import Bar, BarBatch, BarClosed, EventBus
from hkrt.indicators import LiveIndicator, LiveIndicators

INDICATORS: list[tuple[str, dict[str, int]]] = [
    ("SMA", {"timeperiod": 20}),
    ("MACD", {"fastperiod": 12, "slowperiod": 26, "signalperiod": 9}),
    ("RSI", {"timeperiod": 14}),
]
T0 = dt.datetime(2026, 11, 20, 9, 31)


def symbols(n: int) -> list[str]:
    return [f"SH{600000 + i:06d}" if i % 2 == 0 else f"SZ{i:06d}" for i in range(n)]


class Market:
    """``history`` bars and ``minutes`` live bars a symbol: a random walk in yuan, OHLC around it."""

    def __init__(self, n_symbols: int, history: int, minutes: int, seed: int = 14) -> None:
        rng = np.random.default_rng(seed)
        total = history + minutes
        self.names = symbols(n_symbols)
        self.history, self.minutes = history, minutes
        steps = rng.normal(0.0, 0.002, (n_symbols, total))
        self.close = np.round(10.0 * np.exp(np.cumsum(steps, axis=1)), 2)
        spread = np.round(np.abs(rng.normal(0.0, 0.01, (n_symbols, total))), 2)
        self.high, self.low = self.close + spread, self.close - spread
        self.open = np.round((self.high + self.low) / 2, 2)
        self.volume = rng.integers(1, 500, (n_symbols, total)).astype(np.float64) * 100
        self.labels = pd.date_range(T0, periods=total, freq="min")
        self.amount = self.volume * self.close

    def frame(self, i: int, end: int) -> pd.DataFrame:
        """Symbol ``i``'s bars before ``end`` (a column index), as ``agent.kdata`` shapes them."""
        columns = {c: getattr(self, c)[i, :end] for c in ("open", "high", "low", "close", "volume", "amount")}
        return pd.DataFrame({**columns, "filled": np.zeros(end, bool)}, index=self.labels[:end])

    def bar(self, i: int, t: int) -> Bar:
        values = (float(getattr(self, c)[i, t]) for c in ("open", "high", "low", "close", "volume", "amount"))
        return Bar(self.labels[t].to_pydatetime(), *values)

    def records(self, t: int) -> np.ndarray:
        """Minute ``t``'s bars as one BarBatch's records."""
        out = np.zeros(len(self.names), dtype=hkrt._hkrt.COMPLETED_DTYPE)
        out["symbol"] = [s.encode() for s in self.names]
        out["ktype"] = hkrt.KType.MIN.record_code
        out["datetime"] = np.datetime64(self.labels[t].to_pydatetime(), "ms")
        for c in ("open", "high", "low", "close", "volume", "amount"):
            out[c] = getattr(self, c)[:, t]
        return out


def per_minute(market: Market, prepare: Callable[[], Callable[[int], None]]) -> float:
    """Median seconds of one whole-market minute: ``prepare()`` (untimed: warm-ups, history)
    returns ``step(t)``, timed once per live minute."""
    step = prepare()
    times = []
    for t in range(market.history, market.history + market.minutes):
        start = time.perf_counter()
        step(t)
        times.append(time.perf_counter() - start)
    getattr(step, "close", lambda: None)()  # a row's own teardown (a bus to stop), untimed
    return statistics.median(times)


# ---------------------------------------------------------------- live rows
def live_set(market: Market) -> tuple[LiveIndicators, Callable[[int], pd.DataFrame]]:
    frames: dict[str, pd.DataFrame] = {}

    def history(symbol: str, ktype: hkrt.KType) -> pd.DataFrame:
        return frames[symbol]

    indicators = LiveIndicators(history, max_indicators=len(market.names) * len(INDICATORS))
    for i, name in enumerate(market.names):
        frames[name] = market.frame(i, market.history)
        for indicator, params in INDICATORS:
            indicators.get(name, "MIN", indicator, **params)
    return indicators, lambda i: frames[market.names[i]]


def live_on_bar(market: Market) -> Callable[[int], None]:
    indicators, _ = live_set(market)
    events = {t: [BarClosed(s, hkrt.KType.MIN, market.bar(i, t)) for i, s in enumerate(market.names)]
              for t in range(market.history, market.history + market.minutes)}  # fmt: skip

    def step(t: int) -> None:
        for event in events[t]:
            indicators.on_bar(event)

    step.indicators = indicators  # type: ignore[attr-defined]
    return step


def live_on_batch(market: Market) -> Callable[[int], None]:
    indicators, _ = live_set(market)
    batches = {t: BarBatch(market.records(t)) for t in range(market.history, market.history + market.minutes)}

    def step(t: int) -> None:
        indicators.on_batch(batches[t])

    return step


def live_through_bus(market: Market) -> Callable[[int], None]:
    indicators, _ = live_set(market)
    bus = EventBus(max_items=10 * len(market.names)).start()
    indicators.attach(bus)
    batches = {t: BarBatch(market.records(t)) for t in range(market.history, market.history + market.minutes)}

    def step(t: int) -> None:
        bus.publish(batches[t])
        bus.wait_idle(60)

    step.close = bus.stop  # type: ignore[attr-defined]
    step.indicators = indicators  # type: ignore[attr-defined]
    return step


def live_direct(market: Market) -> Callable[[int], None]:
    live = [[LiveIndicator(n, market.frame(i, market.history), **p) for n, p in INDICATORS]
            for i in range(len(market.names))]  # fmt: skip
    bars = {t: [market.bar(i, t) for i in range(len(market.names))]
            for t in range(market.history, market.history + market.minutes)}  # fmt: skip

    def step(t: int) -> None:
        for per_symbol, bar in zip(live, bars[t], strict=True):
            for indicator in per_symbol:
                indicator.update(bar)

    return step


def stream_handles(market: Market) -> Callable[[int], None]:
    handles = []
    for i in range(len(market.names)):
        close = market.close[i, : market.history]
        handles.append([talib.stream.SMA(close, 20), talib.stream.MACD(close, 12, 26, 9), talib.stream.RSI(close, 14)])
    closes = market.close.tolist()

    def step(t: int) -> None:
        for per_symbol, row in zip(handles, closes, strict=True):
            price = row[t]
            for handle in per_symbol:
                handle.update(price)

    return step


# ----------------------------------------------------------- recompute rows
def talib_batch(market: Market) -> Callable[[int], None]:
    close = market.close

    def step(t: int) -> None:
        for i in range(len(market.names)):
            window = close[i, t + 1 - market.history : t + 1]  # the last 1,200 bars, this one included
            talib.SMA(window, 20)
            talib.MACD(window, 12, 26, 9)
            talib.RSI(window, 14)

    return step


def hkrt_batch(market: Market) -> Callable[[int], None]:
    frames = [market.frame(i, market.history + market.minutes) for i in range(len(market.names))]

    def step(t: int) -> None:
        for frame in frames:
            bars = frame.iloc[t + 1 - market.history : t + 1]
            for name, params in INDICATORS:
                hkrt.indicator(name, bars, **params)

    return step


def pandas_values(close: pd.Series) -> tuple[float, float, float, float, float]:
    """SMA(20), MACD(12, 26, 9) and RSI(14) on the last bar, with pandas' rolling and ewm."""
    sma = close.rolling(20).mean()
    macd = close.ewm(span=12, adjust=False).mean() - close.ewm(span=26, adjust=False).mean()
    signal = macd.ewm(span=9, adjust=False).mean()
    change = close.diff()
    gain = change.clip(lower=0).ewm(alpha=1 / 14, adjust=False).mean()
    loss = (-change.clip(upper=0)).ewm(alpha=1 / 14, adjust=False).mean()
    rsi = 100 - 100 / (1 + gain / loss)
    return sma.iloc[-1], macd.iloc[-1], signal.iloc[-1], macd.iloc[-1] - signal.iloc[-1], rsi.iloc[-1]


def pandas_recompute(market: Market) -> Callable[[int], None]:
    series = [pd.Series(market.close[i], index=market.labels) for i in range(len(market.names))]

    def step(t: int) -> None:
        for close in series:
            pandas_values(close.iloc[t + 1 - market.history : t + 1])

    return step


# --------------------------------------------------------------- cross-check
def cross_check(market: Market, indicators: LiveIndicators) -> tuple[bool, float]:
    """After the live minutes: the set's values against TA-Lib's batch over all bars (bit for bit),
    and pandas' against TA-Lib's over the last 1,200 (largest difference)."""
    end = market.history + market.minutes
    equal, pandas_gap = True, 0.0
    for i, name in enumerate(market.names[:200]):
        close = market.close[i, :end]
        want = [talib.SMA(close, 20)[-1], *(o[-1] for o in talib.MACD(close, 12, 26, 9)), talib.RSI(close, 14)[-1]]
        got: list[Any] = [indicators.value(name, "MIN", n, **p) for n, p in INDICATORS]
        live = [got[0], got[1]["macd"], got[1]["macdsignal"], got[1]["macdhist"], got[2]]
        equal &= live == want
        window = close[end - market.history :]
        recent = [talib.SMA(window, 20)[-1], *(o[-1] for o in talib.MACD(window, 12, 26, 9)), talib.RSI(window, 14)[-1]]
        gaps = [abs(a - b) for a, b in zip(pandas_values(pd.Series(window)), recent, strict=True)]
        pandas_gap = max(pandas_gap, *gaps)
    return equal, pandas_gap


def main() -> None:
    market = Market(ARGS.symbols, ARGS.history, ARGS.minutes)
    updates = len(market.names) * len(INDICATORS)
    through_bus = live_through_bus(market)
    paths: list[tuple[str, Callable[[], Callable[[int], None]]]] = [
        ("live: through a running `EventBus` (one `BarBatch` a minute)", lambda: through_bus),
        ("live: `LiveIndicators.on_batch` called directly", lambda: live_on_batch(market)),
        ("live: `LiveIndicators.on_bar`, one `BarClosed` a symbol", lambda: live_on_bar(market)),
        ("live: `LiveIndicator.update` called directly", lambda: live_direct(market)),
        ("TA-Lib stream handles alone (the floor)", lambda: stream_handles(market)),
        (f"recompute: TA-Lib batch on the last {market.history:,} closes", lambda: talib_batch(market)),
        ("recompute: `hkrt.indicator` on the bars DataFrame", lambda: hkrt_batch(market)),
        ("recompute: pandas `rolling` / `ewm`", lambda: pandas_recompute(market)),
    ]
    rows = [(path, per_minute(market, prepare)) for path, prepare in paths]
    equal, pandas_gap = cross_check(market, through_bus.indicators)  # type: ignore[attr-defined]

    live = rows[0][1]
    print(f"# Live indicators — {platform.python_implementation()} {platform.python_version()}, {platform.machine()}, "
          f"talib {talib.__version__}\n")  # fmt: skip
    print(f"{len(market.names):,} symbols × 3 indicators (SMA 20, MACD 12/26/9, RSI 14) = {updates:,} values a "
          f"minute; {market.history:,} bars of history a symbol; median of {market.minutes} minutes.\n")  # fmt: skip
    print("| path | ms per whole-market minute | µs per indicator value | × through the bus |")
    print("|---|---:|---:|---:|")
    for path, seconds in rows:
        print(f"| {path} | {seconds * 1e3:,.1f} | {seconds / updates * 1e6:.2f} | {seconds / live:.2f}× |")
    verdict = "yes" if equal else "NO"
    print(f"\nCross-check (200 symbols, untimed): live values equal TA-Lib's batch bit for bit: {verdict};"
          f" pandas differs from TA-Lib by at most {pandas_gap:.1e}.")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=5000)
    parser.add_argument("--history", type=int, default=1200, help="bars of history a symbol")
    parser.add_argument("--minutes", type=int, default=5, help="live minutes timed (the median is reported)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.symbols, ARGS.history, ARGS.minutes = 200, 300, 2
    main()
