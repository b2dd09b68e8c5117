"""Property tests: invariants of the aggregation that must hold for any spot stream.

- intraday bars of a day sum to the day's volume minus carry-in;
- every coarser intraday period equals the re-aggregation of the MIN bars;
- re-ingesting what was already ingested changes no bar;
- the object path and the columnar path build identical bars;
- symbols do not interact: interleaving two symbols' spots changes neither's bars;
- WEEK and longer equal the aggregation of the DAY bars of their period.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt import KType

DAY = dt.date(2026, 11, 20)
COARSE = {KType.MIN3: 3, KType.MIN5: 5, KType.MIN15: 15, KType.MIN30: 30, KType.MIN60: 60, KType.HOUR2: 120}
MORNING_END = 7230  # trading-second offsets: 0 = 09:30:00 ... 7230 = 11:30:30 (grace)
AFTERNOON_END = 14461  # 7231 = 13:00:00 ... 14461 = 15:00:30 (grace)


def wall_time(offset: int, day: dt.date = DAY) -> dt.datetime:
    """A trading-second offset as a wall-clock time; negative offsets are the opening auction."""
    base = dt.datetime.combine(day, dt.time(9, 30))
    if offset <= MORNING_END:
        return base + dt.timedelta(seconds=offset)
    return dt.datetime.combine(day, dt.time(13, 0)) + dt.timedelta(seconds=offset - MORNING_END - 1)


@dataclass
class Tick:
    offset: int
    price_cents: int
    traded_lots: int
    high_jump: int  # ticks the day high rose between spots, beyond the last price
    low_jump: int


ticks = st.builds(
    Tick,
    # Edges drawn often: auction end, the first minute boundary, 11:30 and its grace, 13:00,
    # 15:00; repeated offsets give several spots in the same second.
    offset=st.integers(-900, AFTERNOON_END) | st.sampled_from([-1, 0, 59, 60, 7199, 7200, 7230, 7231, 14400, 14461]),
    price_cents=st.integers(100, 5_000),
    traded_lots=st.integers(0, 500),
    high_jump=st.integers(0, 3) | st.just(0),
    low_jump=st.integers(0, 3) | st.just(0),
)


def day_spots(raw: list[Tick], symbol: str = "SH600000", day: dt.date = DAY) -> list[hkrt.Spot]:
    """Turn drawn ticks into a consistent day: sorted times, cumulative totals, monotone extremes."""
    spots = []
    volume = amount = 0.0
    high, low, open_ = 0.0, float("inf"), 0.0
    for t in sorted(raw, key=lambda t: t.offset):
        price = t.price_cents / 100
        traded = t.traded_lots * 100
        volume += traded
        amount += traded * price
        if volume > 0:
            open_ = open_ or price
            high = max(high, price + t.high_jump / 100)
            low = min(low, max(price - t.low_jump / 100, 0.01))
        spots.append(
            hkrt.Spot(
                symbol,
                wall_time(t.offset, day),
                open=open_,
                high=high,
                low=low if volume > 0 else 0.0,
                close=price if volume > 0 else 0.0,
                volume=volume,
                amount=amount,
            )
        )
    return spots


def coarse_label(min_label: pd.Timestamp, minutes: int) -> pd.Timestamp:
    """Independent statement of the bucket rule: [t, t+n) anchored at the session open, right label."""
    midnight = min_label.normalize()
    session_open = midnight + pd.Timedelta(hours=9, minutes=30)
    if min_label > midnight + pd.Timedelta(hours=11, minutes=30):
        session_open = midnight + pd.Timedelta(hours=13)
    minute_index = int((min_label - session_open) / pd.Timedelta(minutes=1)) - 1
    return session_open + pd.Timedelta(minutes=(minute_index // minutes + 1) * minutes)


def reaggregate(mins: pd.DataFrame, minutes: int) -> pd.DataFrame:
    labels = [coarse_label(ts, minutes) for ts in mins.index]
    return ohlcv(mins.groupby(pd.DatetimeIndex(labels, name="datetime", dtype="datetime64[ns]"), sort=True))


def ohlcv(grouped) -> pd.DataFrame:
    """The standard bar aggregation: first open, max high, min low, last close, sums."""
    return pd.DataFrame(
        {
            "open": grouped.open.first(),
            "high": grouped.high.max(),
            "low": grouped.low.min(),
            "close": grouped.close.last(),
            "volume": grouped.volume.sum(),
            "amount": grouped.amount.sum(),
        }
    )


def all_bars(agent: hkrt.SpotAgent, symbol: str = "SH600000") -> dict[KType, pd.DataFrame]:
    return {k: agent.kdata(symbol, k) for k in agent.ktypes}


@settings(max_examples=250, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=60), st.booleans())
def test_intraday_volume_sums_to_day_volume_minus_carry_in(raw: list[Tick], close_day: bool) -> None:
    agent = hkrt.SpotAgent()
    agent.ingest(day_spots(raw))
    if close_day:
        agent.advance_to(dt.datetime.combine(DAY, dt.time(15, 1)))
    day = agent.kdata("SH600000", "DAY")
    if day.empty:  # nothing traded
        assert agent.kdata("SH600000", "MIN").empty
        return
    carry = agent.carry_in("SH600000")
    assert carry is not None
    for k in COARSE.keys() | {KType.MIN}:
        bars = agent.kdata("SH600000", k)
        assert bars.volume.sum() == day.volume.iloc[0] - carry.volume, k
        assert bars.amount.sum() == pytest.approx(day.amount.iloc[0] - carry.amount, rel=1e-9, abs=1e-6)
        assert (bars.volume >= 0).all() and (bars.high >= bars.low).all()
        assert ((bars.open <= bars.high) & (bars.open >= bars.low)).all()
        assert ((bars.close <= bars.high) & (bars.close >= bars.low)).all()
    mins = agent.kdata("SH600000", "MIN")
    if close_day and carry.volume == 0 and mins.index[0].time() == dt.time(9, 31):
        assert len(mins) == 240  # a traded day from its first minute has every minute bar
    assert day.high.iloc[0] >= mins.high.max() and day.low.iloc[0] <= mins.low.min()


@settings(max_examples=250, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=60), st.booleans(), st.booleans())
def test_coarse_periods_equal_reaggregated_minutes(raw: list[Tick], fill: bool, close_day: bool) -> None:
    agent = hkrt.SpotAgent(fill_empty_bars=fill)
    agent.ingest(day_spots(raw))
    if close_day:
        agent.advance_to(dt.datetime.combine(DAY, dt.time(15, 1)))
    mins = agent.kdata("SH600000", "MIN")
    for k, minutes in COARSE.items():
        got = agent.kdata("SH600000", k)
        want = reaggregate(mins, minutes)
        pd.testing.assert_frame_equal(got.drop(columns="amount"), want.drop(columns="amount"), check_freq=False)
        np.testing.assert_allclose(got.amount, want.amount, rtol=1e-12, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(ticks, min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 40), st.integers(-120, 600)), max_size=6),
)
def test_invariants_hold_when_time_is_advanced_ahead_of_spots(raw: list[Tick], advances: list[tuple[int, int]]) -> None:
    """advance_to() may run ahead of a symbol's spots (another feed's clock); stragglers then
    amend closed minutes, and the invariants still hold."""
    spots = day_spots(raw)
    agent = hkrt.SpotAgent()
    for i, s in enumerate(spots):
        agent.ingest(s)
        for after, seconds in advances:
            if after == i:
                agent.advance_to(s.datetime + dt.timedelta(seconds=seconds))
    mins = agent.kdata("SH600000", "MIN")
    for k, minutes in COARSE.items():
        got = agent.kdata("SH600000", k)
        want = reaggregate(mins, minutes)
        pd.testing.assert_frame_equal(got.drop(columns="amount"), want.drop(columns="amount"), check_freq=False)
    day = agent.kdata("SH600000", "DAY")
    if not day.empty:
        carry = agent.carry_in("SH600000")
        assert carry is not None and mins.volume.sum() == day.volume.iloc[0] - carry.volume
        assert mins.close.iloc[-1] == day.close.iloc[0]  # flat bars carry the last price


@settings(max_examples=150, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=40), st.integers(0, 40))
def test_reingest_changes_nothing(raw: list[Tick], split: int) -> None:
    spots = day_spots(raw)
    agent = hkrt.SpotAgent()
    agent.ingest(spots)
    before = all_bars(agent)
    agent.ingest(spots)  # the whole batch again
    agent.ingest(spots[: split % (len(spots) + 1)])  # and a prefix of it
    for k, frame in all_bars(agent).items():
        pd.testing.assert_frame_equal(frame, before[k])
    assert agent.stats()["accepted"] <= len(spots)


@settings(max_examples=100, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=40))
def test_object_and_column_paths_build_the_same_bars(raw: list[Tick]) -> None:
    spots = day_spots(raw)
    by_object = hkrt.SpotAgent()
    by_object.ingest(spots)
    by_column = hkrt.SpotAgent()
    by_column.ingest_columns(
        symbol=[s.symbol for s in spots],
        datetime=np.array([s.datetime for s in spots], dtype="datetime64[ms]"),
        close=[s.close for s in spots],
        volume=[s.volume for s in spots],
        amount=[s.amount for s in spots],
        open=[s.open for s in spots],
        high=[s.high for s in spots],
        low=[s.low for s in spots],
    )
    for k, frame in all_bars(by_object).items():
        pd.testing.assert_frame_equal(by_column.kdata("SH600000", k), frame)
    assert by_column.stats() == by_object.stats()


@settings(max_examples=100, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=30), st.lists(ticks, min_size=1, max_size=30), st.randoms())
def test_symbols_do_not_interact(raw_a: list[Tick], raw_b: list[Tick], rnd) -> None:
    a, b = day_spots(raw_a, "SH600000"), day_spots(raw_b, "SZ000001")
    # Interleave keeping each symbol's own order, as any fair merge of two feeds would.
    merged, ia, ib = [], 0, 0
    while ia < len(a) or ib < len(b):
        if ib == len(b) or (ia < len(a) and rnd.random() < 0.5):
            merged.append(a[ia])
            ia += 1
        else:
            merged.append(b[ib])
            ib += 1
    together = hkrt.SpotAgent()
    together.ingest(merged)
    for symbol, own in (("SH600000", a), ("SZ000001", b)):
        alone = hkrt.SpotAgent()
        alone.ingest(own)
        for k in alone.ktypes:
            pd.testing.assert_frame_equal(together.kdata(symbol, k), alone.kdata(symbol, k))


trading_days = hkrt.TradingCalendar.china().trading_days("2026-06-01", "2026-12-31")


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.sampled_from(trading_days), min_size=1, max_size=25, unique=True),
    st.lists(st.tuples(st.integers(100, 5_000), st.integers(1, 1_000)), min_size=25, max_size=25),
)
def test_longer_periods_aggregate_day_bars(days: list[dt.date], quotes: list[tuple[int, int]]) -> None:
    agent = hkrt.SpotAgent(["DAY", "WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR"])
    for day, (cents, lots) in zip(sorted(days), quotes, strict=False):
        price = cents / 100
        agent.ingest(
            hkrt.Spot(
                "SH600000",
                dt.datetime.combine(day, dt.time(10, 0)),
                open=price,
                high=price * 1.02,
                low=price * 0.97,
                close=price,
                volume=lots * 100,
                amount=lots * 100 * price,
            )
        )
    daily = agent.kdata("SH600000", "DAY")
    rules = {KType.WEEK: "W-FRI", KType.MONTH: "ME", KType.QUARTER: "QE-DEC", KType.HALFYEAR: "6ME", KType.YEAR: "YE"}
    for k, rule in rules.items():
        if k is KType.HALFYEAR:
            label = daily.index.map(
                lambda t: pd.Timestamp(t.year, 6, 30) if t.month <= 6 else pd.Timestamp(t.year, 12, 31)
            )
            grouped = daily.groupby(label)
        else:
            grouped = daily.resample(rule, closed="right", label="right")
        want = ohlcv(grouped).dropna()
        want.index.name = "datetime"
        got = agent.kdata("SH600000", k)
        pd.testing.assert_frame_equal(got, want, check_freq=False, check_index_type=False, rtol=1e-12)
