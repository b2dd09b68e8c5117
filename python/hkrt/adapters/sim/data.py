"""A simulated whole market: deterministic, seeded, offline.

Every symbol follows a random walk on a 0.01-yuan tick from its previous close, with the
exchange's daily price limit (±10 % main board, ±20 % STAR 688xxx and ChiNext 300xxx,
±30 % Beijing 920xxx); some are suspended all day.  The day has the opening call auction
(09:15-09:25 indicative prices and no volume, the match at 09:25), continuous trading
09:30-11:30 and 13:00-15:00, and nothing in the lunch break.  Volume is cumulative in
shares (whole lots), amount cumulative in yuan, and each spot carries the day's open,
high, low and a five-level book.

The market advances one step per snapshot, so the same seed and the same snapshot times
give the same quotes at any replay speed.

Each ``SimMarket(day, config)`` draws its previous closes from (seed, day), so two days made
that way are unrelated.  :meth:`SimMarket.following` makes the next day of a market played to
its close: its previous close is that day's close (a suspended symbol keeps its previous
close), so consecutive days form one price history for multi-day runs
(``hkrt.strategy.runner.run_sim(days=N)``), deterministic for (seed, first day, days).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hkrt import _hkrt
from hkrt.adapters.sim.config import SimConfig, SimSourceConfig
from hkrt.adapters.sim.mapping import price_limit, universe
from hkrt.core.calendar import TradingCalendar
from hkrt.core.china_time import AUCTION_OPEN, SESSIONS, in_session

AUCTION_START = AUCTION_OPEN  # the schedule is the C++ core's (hkrt.core.china_time)
AUCTION_MATCH = dt.time(9, 25)  # the simulated call auction's match: the engine needs no such rule

if TYPE_CHECKING:
    from hkrt.adapters.base import ServePlan
    from hkrt.feed.server import SpotServer

__all__ = [
    "AUCTION_MATCH",
    "AUCTION_START",
    "SimConfig",
    "SimMarket",
    "SimMinuteHistory",
    "make_data_client",
    "price_limit",
    "universe",
]


@dataclass
class _State:
    previous_close: np.ndarray
    limit_up: np.ndarray
    limit_down: np.ndarray
    suspended: np.ndarray
    drift: np.ndarray
    price: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    volume: np.ndarray
    amount: np.ndarray
    step: int = 0
    matched: bool = False


@dataclass
class SimMarket:
    """The market of one trading day; ``snapshot(t)`` advances it to market time ``t``.

    ``previous_close`` (one price per symbol of ``universe(config.symbols)``, yuan): the day's
    previous closes, and so its price limits; None draws them from (seed, day).  Either way the
    day's other draws (suspensions, hot symbols, moves) come from (seed, day) alone.
    """

    day: dt.date
    config: SimConfig = field(default_factory=SimConfig)
    previous_close: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = self.config.symbols
        self.symbols = np.array(universe(n), dtype="S8")
        self.names = np.array([f"模拟{i:04d}" for i in range(n)])
        # One generator per day, so a day is the same whatever else was simulated before.
        self._rng = np.random.default_rng([self.config.seed, self.day.toordinal()])
        rng = self._rng
        drawn = np.round(rng.uniform(3.0, 80.0, n), 2)  # drawn even when given: the day's later draws stay the same
        previous = drawn if self.previous_close is None else _checked_closes(self.previous_close, n)
        limits = np.array([price_limit(s.decode()) for s in self.symbols])
        hot = rng.random(n) < self.config.hot_share
        self._state = _State(
            previous_close=previous,
            limit_up=np.round(previous * (1 + limits), 2),
            limit_down=np.round(previous * (1 - limits), 2),
            suspended=rng.random(n) < self.config.suspended_share,
            drift=np.where(hot, rng.choice([-1.0, 1.0], n) * 0.01, 0.0),
            price=previous.copy(),
            open=np.zeros(n),
            high=np.zeros(n),
            low=np.zeros(n),
            volume=np.zeros(n),
            amount=np.zeros(n),
        )
        self._closed = False  # the 15:00 snapshot was taken: closing_prices() is the day's close

    @classmethod
    def following(cls, previous: SimMarket, day: dt.date) -> SimMarket:
        """The market of ``day`` (the trading day after ``previous.day``) continuing ``previous``,
        which must have been played to its 15:00 snapshot: its previous closes are
        ``previous.closing_prices()``, its limits recomputed from them, its own draws from
        (seed, day)."""
        if day <= previous.day:
            raise ValueError(f"the following day must come after {previous.day}, not {day}")
        return cls(day, previous.config, previous.closing_prices())

    def closing_prices(self) -> np.ndarray:
        """Each symbol's close of the day (yuan): the last price of a trading symbol, the previous
        close of a suspended one.  ValueError before the day's 15:00 snapshot was taken."""
        if not self._closed:
            raise ValueError(f"the simulated day {self.day} has not been played to its 15:00 close")
        s = self._state
        return np.where(s.suspended, s.previous_close, s.price)

    # ---------------------------------------------------------------- times
    def times(self, *, auction: bool = True) -> Iterator[dt.datetime]:
        """Snapshot times of the day every ``interval`` market seconds, lunch excluded."""
        step = dt.timedelta(seconds=self.config.interval)
        spans = [(AUCTION_START, SESSIONS[0][0])] if auction else []
        for start, end in [*spans, *SESSIONS]:
            t = dt.datetime.combine(self.day, start)
            stop = dt.datetime.combine(self.day, end)
            while t < stop:
                yield t
                t += step
        yield dt.datetime.combine(self.day, SESSIONS[-1][1])  # the closing snapshot at 15:00

    # ------------------------------------------------------------- snapshot
    def snapshot(self, at: dt.datetime) -> dict[str, np.ndarray]:
        """The whole market at ``at`` (a time of ``times()``, in order), as spot columns."""
        s = self._state
        n = len(self.symbols)
        rng = self._rng
        clock = at.time()
        trading = in_session(clock) or clock == SESSIONS[-1][1]
        self._closed = self._closed or clock >= SESSIONS[-1][1]
        if clock < AUCTION_MATCH:  # indicative auction prices: no trade, nothing cumulative
            s.price = np.clip(np.round(s.previous_close * np.exp(rng.normal(0, 0.004, n)), 2), s.limit_down, s.limit_up)
        elif not s.matched:  # the 09:25 match: the open, and the first volume
            s.matched = True
            s.open = s.price.copy()
            s.high = s.price.copy()
            s.low = s.price.copy()
            traded = rng.integers(1, 400, n) * 100.0
            s.volume = traded
            s.amount = traded * s.price
        if trading:
            s.step += 1
            move = np.exp(rng.normal(s.drift * self.config.interval / 3.0, self.config.volatility, n))
            s.price = np.clip(np.round(s.price * move, 2), s.limit_down, s.limit_up)
            at_limit = (s.price >= s.limit_up) | (s.price <= s.limit_down)
            lots = rng.integers(0, 60, n) * np.where(at_limit, 0.1, 1.0)  # little trades at a limit
            traded = np.floor(lots) * 100.0
            s.volume = s.volume + traded
            s.amount = s.amount + traded * s.price
            s.high = np.maximum(s.high, s.price)
            s.low = np.minimum(s.low, s.price)
        return self._columns(at)

    def _columns(self, at: dt.datetime) -> dict[str, np.ndarray]:
        s = self._state
        n = len(self.symbols)
        live = ~s.suspended
        matched = s.matched
        close = np.where(live, s.price, 0.0)
        # A five-level book around the last price; at limit-up there are no sellers, at
        # limit-down no buyers.
        ticks = np.arange(1, 6) * 0.01
        bid = np.where((close > 0)[:, None], np.round(close[:, None] - ticks[None, :] + 0.01, 2), 0.0)
        ask = np.where((close > 0)[:, None], np.round(close[:, None] + ticks[None, :], 2), 0.0)
        ask[s.price >= s.limit_up] = 0.0
        bid[s.price <= s.limit_down] = 0.0
        book_volume = np.where(bid > 0, 100.0 * (1 + (np.arange(n)[:, None] + np.arange(5)[None, :]) % 50), 0.0)
        ask_volume = np.where(ask > 0, 100.0 * (1 + (np.arange(n)[:, None] * 3 + np.arange(5)[None, :]) % 40), 0.0)
        zeros = np.zeros(n)
        return {
            "symbol": self.symbols,
            "name": self.names,
            "datetime": np.full(n, np.datetime64(at, "ms")),
            "yesterday_close": s.previous_close,
            "open": np.where(live, s.open, 0.0) if matched else zeros,
            "high": np.where(live, s.high, 0.0) if matched else zeros,
            "low": np.where(live, s.low, 0.0) if matched else zeros,
            "close": close,
            "volume": np.where(live, s.volume, 0.0),
            "amount": np.where(live, s.amount, 0.0),
            "bid": bid,
            "bid_volume": book_volume,
            "ask": ask,
            "ask_volume": ask_volume,
        }

    def day_snapshots(self, *, auction: bool = True) -> Iterator[dict[str, np.ndarray]]:
        """Every snapshot of the day, in order."""
        for t in self.times(auction=auction):
            yield self.snapshot(t)


def _checked_closes(closes: np.ndarray, n: int) -> np.ndarray:
    prices = np.asarray(closes, dtype=np.float64)
    if prices.shape != (n,):
        raise ValueError(f"previous_close must hold one price per simulated symbol ({n}), not shape {prices.shape}")
    if not (np.isfinite(prices).all() and (prices > 0).all()):
        raise ValueError("previous_close must hold positive finite prices")
    return np.round(prices, 2)


class SimDataClient:
    """The spot server's simulated market: the day of ``config.day`` (default: the latest trading day up to
    today), one snapshot per ``interval`` market seconds played at ``speed`` times real time, then the
    end-of-day marker."""

    def __init__(self, config: SimSourceConfig) -> None:
        self.config = config

    def serve(self, server: SpotServer, plan: ServePlan) -> None:
        c = self.config
        # the latest trading day up to today: the last one before tomorrow
        day = c.day or plan.calendar.previous_trading_day(plan.today + dt.timedelta(days=1))
        plan.say(f"simulated market: {c.symbols} symbols, {day}, {c.speed:g}x real time")
        if c.first_day is not None and c.first_day < day:
            plan.say(f"continuing the simulated days from {c.first_day}: playing the days before {day} to their close")
        server.run_sim(continued_market(c, day, c.first_day, plan.calendar), speed=c.speed)


def played_to_close(market: SimMarket) -> SimMarket:
    """``market`` after every snapshot of its day (its closes known), without publishing anything."""
    for t in market.times():
        market.snapshot(t)
    return market


def continued_market(
    config: SimConfig, day: dt.date, first_day: dt.date | None, calendar: TradingCalendar | None = None
) -> SimMarket:
    """The simulated market of ``day`` as a multi-day run from ``first_day`` plays it: each trading day from
    ``first_day`` on opens from the previous one's closes (:meth:`SimMarket.following`), so a spot server
    started for day 3 of a run quotes what ``run_sim(first_day, days=3)`` quotes on its third day.  The days
    before are played here (quietly, in memory).  ``first_day`` None, or not before ``day``: the day alone."""
    if first_day is None or first_day >= day:
        return SimMarket(day, config)
    calendar = calendar if calendar is not None else TradingCalendar.china()
    first = calendar.first_trading_day(first_day)
    market = SimMarket(first, config)
    while True:
        following = calendar.next_trading_day(market.day)
        if following > day:
            raise ValueError(f"{day} is not a trading day: the simulated days from {first_day} skip it")
        market = SimMarket.following(played_to_close(market), following)
        if following == day:
            return market


def make_data_client(config: SimSourceConfig) -> SimDataClient:
    """The spot server's simulated market (``hkrt spot-server --source sim``)."""
    return SimDataClient(config)


class SimMinuteHistory:
    """The simulated market's own past as minute history: the day is recomputed from its
    seed up to ``until`` (the simulation is deterministic) and aggregated to MIN bars.
    ``first_day``: the first day of a multi-day run (``run_sim(days=N)``, ``hkrt node --days N``), whose
    later days continue from the earlier days' closes (:func:`continued_market`); None: each day alone."""

    def __init__(
        self,
        config: SimConfig | None = None,
        calendar: TradingCalendar | None = None,
        *,
        first_day: dt.date | None = None,
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.calendar = calendar if calendar is not None else TradingCalendar.china()
        self.first_day = first_day
        self._opened: dict[dt.date, np.ndarray] = {}  # day -> its previous closes (a later call skips the replay)

    def _market(self, day: dt.date) -> SimMarket:
        """A fresh market of ``day`` (a call plays it from its start), opened as the run opened it."""
        previous = self._opened.get(day)
        if previous is None:
            if self.first_day is None or self.first_day >= day:
                return SimMarket(day, self.config)
            opened = continued_market(self.config, day, self.first_day, self.calendar).previous_close
            if opened is None:  # continued_market opens every later day from the closes before it
                return SimMarket(day, self.config)
            previous = opened
            if len(self._opened) >= 8:  # bounded: a few days' opening prices
                self._opened.pop(next(iter(self._opened)))
            self._opened[day] = previous
        return SimMarket(day, self.config, previous)

    def minute_bars(self, symbols: Sequence[str] | None, day: dt.date, until: dt.datetime) -> pd.DataFrame:
        self.calendar.ensure_covered(day)
        market = self._market(day)
        engine = _hkrt.Engine(["MIN"], self.calendar.holidays, True, 1, coverage=self.calendar.coverage)
        for t in market.times():
            if t >= until:
                break
            snap = market.snapshot(t)
            engine.ingest_columns(
                snap["symbol"],
                snap["datetime"].astype("datetime64[ms]").astype(np.int64),
                *(np.ascontiguousarray(snap[c], dtype=np.float64) for c in ("close", "volume", "amount")),
                *(np.ascontiguousarray(snap[c], dtype=np.float64) for c in ("open", "high", "low")),
            )
        engine.advance_to(np.datetime64(until, "ms"))
        wanted = None if symbols is None else {_hkrt.normalize_symbol(s) for s in symbols}
        frames = []
        for symbol in engine.symbols():
            if wanted is not None and symbol not in wanted:
                continue
            b = engine.bars(symbol, "MIN")
            b = b[b["datetime"] <= np.datetime64(until, "ms")]
            if len(b):
                frame = pd.DataFrame({c: b[c] for c in b.dtype.names or ()})
                frame.insert(0, "symbol", symbol)
                frames.append(frame)
        if not frames:
            from hkrt.agent.history_sources import MINUTE_BAR_COLUMNS  # the source protocol's shape

            return pd.DataFrame(columns=list(MINUTE_BAR_COLUMNS))
        return pd.concat(frames, ignore_index=True)
