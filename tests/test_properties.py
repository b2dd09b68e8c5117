"""Property tests: invariants of the aggregation that must hold for any spot stream.

- intraday bars of a day sum to the day's volume minus carry-in minus gap volume, and carry-in,
  gap volume and after-hours volume equal an independent statement of their rules
  (docs/aggregation.md §3.2, §3.3, §6.3) on minutes closed on the right, (t-1min, t];
- every coarser intraday period equals the re-aggregation of the MIN bars;
- both hold when advance_to() runs ahead of the spots, past the close included;
- re-ingesting what was already ingested changes no bar;
- the object path and the columnar path build identical bars;
- symbols do not interact: interleaving two symbols' spots changes neither's bars;
- WEEK and longer equal the aggregation of the DAY bars of their period, labelled by the
  period's last trading day.
"""

from __future__ import annotations

import calendar
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
CLOSE = 14431  # 7231 = 13:00:00 ... 14431 = 15:00:00
AFTER_HOURS = 14731  # 15:05:00: the close cutoff; later offsets are after hours
DAY_END = AFTER_HOURS + 4200  # 16:15:00 (Tencent stamps a final snapshot as late as 16:14:58)


def wall_time(offset: int, millis: int = 0, day: dt.date = DAY) -> dt.datetime:
    """A trading-second offset (plus milliseconds) as a wall-clock time; negative offsets are
    the opening auction, offsets past CLOSE the closing window and then after hours."""
    base = dt.datetime.combine(day, dt.time(9, 30))
    if offset > MORNING_END:
        base = dt.datetime.combine(day, dt.time(13, 0))
        offset -= MORNING_END + 1
    return base + dt.timedelta(seconds=offset, milliseconds=millis)


@dataclass
class Tick:
    offset: int
    millis: int  # 0 stamps a whole second: at offsets divisible by 60, exactly on a minute's end
    price_cents: int
    traded_lots: int
    high_jump: int  # ticks the day high rose between spots, beyond the last price
    low_jump: int


ticks = st.builds(
    Tick,
    # Edges drawn often: auction end, the first minute's end (09:31:00.000 and .001), 11:30 and
    # its grace, 13:00, 15:00, the close cutoff 15:05; repeated offsets give several spots in
    # the same second.  After-hours spots are drawn now and then.
    offset=st.integers(-900, AFTER_HOURS - 1)
    | st.sampled_from([-1, 0, 59, 60, 7199, 7200, 7230, 7231, 7291, CLOSE - 1, CLOSE, CLOSE + 30, AFTER_HOURS - 1])
    | st.integers(AFTER_HOURS, DAY_END),
    millis=st.sampled_from([0, 0, 0, 1, 500, 999]),
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
    for t in sorted(raw, key=lambda t: (t.offset, t.millis)):
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
                wall_time(t.offset, 0 if t.offset == MORNING_END else t.millis, day),  # the grace ends at .000
                open=open_,
                high=high,
                low=low if volume > 0 else 0.0,
                close=price if volume > 0 else 0.0,
                volume=volume,
                amount=amount,
            )
        )
    return spots


def reference_minute(when: dt.datetime) -> int | None:
    """Trading minute of a spot by the written rule: minute m of a session opening at O is
    (O+m, O+m+1], the open instant in minute 0, the auction in minute 0, the grace and the
    closing window in the session's last minute; None after hours (15:05 on)."""
    t = when - dt.datetime.combine(when.date(), dt.time())
    minute = dt.timedelta(minutes=1)
    morning, afternoon = dt.timedelta(hours=9, minutes=30), dt.timedelta(hours=13)
    if t < morning:
        return 0  # the opening auction (the generator never stamps before 09:15)
    if t >= dt.timedelta(hours=15, minutes=5):
        return None
    first, session_open = (0, morning) if t < afternoon else (120, afternoon)
    elapsed = t - session_open
    closing_minute = -(-elapsed // minute) - 1 if elapsed else 0  # ceil(elapsed / 1 min) - 1
    return first + min(closing_minute, 119)


@dataclass
class DayTotals:
    carry: tuple[float, float] = (0.0, 0.0)
    gap: tuple[float, float] = (0.0, 0.0)
    gaps: int = 0
    after_hours: tuple[float, float] = (0.0, 0.0)
    day: tuple[float, float] | None = None  # DAY volume and amount, None when nothing traded


def reference_totals(spots: list[hkrt.Spot]) -> DayTotals:
    """Carry-in, gap volume, after-hours volume and DAY totals of one symbol-day by the rules
    of docs/aggregation.md, stated independently of the engine (the spots are in order, and a
    repeated time stamp repeats the totals or raises them, so none is rejected for its totals)."""
    out = DayTotals()
    last = (0.0, 0.0)
    last_minute: int | None = None
    traded = after = False
    regular = (0.0, 0.0)
    for i, s in enumerate(spots):
        totals = (s.volume, s.amount)
        minute = reference_minute(s.datetime)
        if i == 0 and (minute is None or minute > 0) and s.volume > 0:
            out.carry = last = totals  # a late start, however late
        if minute is None and (traded or after):
            if not after:  # what the day traded before the cutoff
                after, regular = True, last
            out.after_hours = (s.volume - regular[0], s.amount - regular[1])
            continue
        minute = 239 if minute is None else minute  # a day's first trade after the cutoff is its close
        rise = (s.volume - last[0], s.amount - last[1])
        silent = last_minute is not None and minute - last_minute >= 2  # a whole minute without a spot
        if silent and (rise[0] > 0 or rise[1] > 0) and (traded or s.volume > 0):
            out.gap = (out.gap[0] + rise[0], out.gap[1] + rise[1])
            out.gaps += 1
        last, last_minute = totals, max(minute, last_minute if last_minute is not None else minute)
        traded = traded or s.volume > 0
        if traded:
            out.day = totals
        if reference_minute(s.datetime) is None:
            after, regular = True, totals
    return out


def coarse_labels(min_labels: pd.DatetimeIndex, minutes: int) -> pd.DatetimeIndex:
    """Independent statement of the bucket rule: (t-n, t] anchored at the session open, right
    label.  A MIN label L closes the minute (L-1, L]; its bucket ends at the next multiple of n
    minutes after the session's open, counting from the open."""
    midnight = min_labels.normalize()
    minute_of_day = np.asarray((min_labels - midnight) // pd.Timedelta(minutes=1))
    session_open = np.where(minute_of_day <= 11 * 60 + 30, 9 * 60 + 30, 13 * 60)
    minute_index = minute_of_day - session_open - 1  # 0 for the session's first minute
    end = session_open + (minute_index // minutes + 1) * minutes
    return pd.DatetimeIndex(midnight + pd.to_timedelta(end, unit="min"), name="datetime", dtype="datetime64[ns]")


def reaggregate(mins: pd.DataFrame, minutes: int) -> pd.DataFrame:
    """The MIN bars grouped into coarse bars: first open, max high, min low, last close, sums, and
    filled when no spot landed in any of its minutes (numpy: this runs thousands of times)."""
    labels = coarse_labels(mins.index, minutes)
    if len(mins) == 0:
        return mins.copy()
    starts = np.flatnonzero(np.r_[True, labels[1:] != labels[:-1]])
    ends = np.r_[starts[1:], len(mins)] - 1
    column = {c: mins[c].to_numpy() for c in mins.columns}
    return pd.DataFrame(
        {
            "open": column["open"][starts],
            "high": np.maximum.reduceat(column["high"], starts),
            "low": np.minimum.reduceat(column["low"], starts),
            "close": column["close"][ends],
            "volume": np.add.reduceat(column["volume"], starts),
            "amount": np.add.reduceat(column["amount"], starts),
            "filled": np.logical_and.reduceat(column["filled"], starts),
        },
        index=labels[starts],
    )


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


# None: no advance_to; else advance_to here: past 15:00 (filled, not final), the close cutoff
# (the day is complete), or the next trading day.
CLOSINGS = [None, dt.datetime(2026, 11, 20, 15, 1), dt.datetime(2026, 11, 20, 15, 5), dt.datetime(2026, 11, 23, 9, 0)]


def assert_sums_to_day(agent: hkrt.SpotAgent, spots: list[hkrt.Spot]) -> None:
    """Σ intraday = DAY - carry-in - gap volume for every intraday period (amount too), and the
    engine's carry-in, gap and after-hours volume are what the written rules give."""
    want = reference_totals(spots)
    carry, gap, after = agent.carry_in("SH600000"), agent.gap_volume("SH600000"), agent.after_hours("SH600000")
    assert carry is not None and gap is not None and after is not None
    assert (carry.volume, carry.amount) == pytest.approx(want.carry)
    assert (gap.volume, gap.amount, gap.gaps) == pytest.approx((*want.gap, want.gaps))
    assert (after.volume, after.amount) == pytest.approx(want.after_hours)
    day = agent.kdata("SH600000", "DAY")
    if want.day is None:  # nothing traded (before the cutoff)
        assert day.empty and agent.kdata("SH600000", "MIN").empty
        return
    assert (day.volume.iloc[0], day.amount.iloc[0]) == pytest.approx(want.day)
    for k in COARSE.keys() | {KType.MIN}:
        bars = agent.kdata("SH600000", k)
        assert bars.volume.sum() == day.volume.iloc[0] - carry.volume - gap.volume, k
        assert bars.amount.sum() == pytest.approx(day.amount.iloc[0] - carry.amount - gap.amount, rel=1e-9, abs=1e-6)
        assert (bars.volume >= 0).all() and (bars.high >= bars.low).all()
        assert ((bars.open <= bars.high) & (bars.open >= bars.low)).all()
        assert ((bars.close <= bars.high) & (bars.close >= bars.low)).all()
        flat = bars[bars.filled]  # a filled bar is flat with nothing traded
        assert (flat.volume == 0).all() and ((flat.open == flat.close) & (flat.high == flat.low)).all()


@settings(max_examples=250, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=60), st.sampled_from(CLOSINGS))
def test_intraday_volume_sums_to_day_volume_minus_carry_in_and_gap_volume(
    raw: list[Tick], closing: dt.datetime | None
) -> None:
    spots = day_spots(raw)
    agent = hkrt.SpotAgent()
    agent.ingest(spots)
    if closing is not None:
        agent.advance_to(closing)
    assert_sums_to_day(agent, spots)
    day = agent.kdata("SH600000", "DAY")
    if day.empty:
        return
    mins = agent.kdata("SH600000", "MIN")
    carry = agent.carry_in("SH600000")
    if closing is not None and carry is not None and carry.volume == 0 and mins.index[0].time() == dt.time(9, 31):
        assert len(mins) == 240  # a traded day from its first minute has every minute bar
    assert day.high.iloc[0] >= mins.high.max() and day.low.iloc[0] <= mins.low.min()


@settings(max_examples=250, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=60), st.booleans(), st.sampled_from(CLOSINGS))
def test_coarse_periods_equal_reaggregated_minutes(raw: list[Tick], fill: bool, closing: dt.datetime | None) -> None:
    agent = hkrt.SpotAgent(fill_empty_bars=fill)
    agent.ingest(day_spots(raw))
    if closing is not None:
        agent.advance_to(closing)
    mins = agent.kdata("SH600000", "MIN")
    for k, minutes in COARSE.items():
        got = agent.kdata("SH600000", k)
        want = reaggregate(mins, minutes)
        pd.testing.assert_frame_equal(got.drop(columns="amount"), want.drop(columns="amount"), check_freq=False)
        np.testing.assert_allclose(got.amount, want.amount, rtol=1e-12, atol=1e-6)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(ticks, min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 40), st.integers(-120, 600) | st.sampled_from([0, 60, 330, 86_400])), max_size=6),
)
def test_invariants_hold_when_time_is_advanced_ahead_of_spots(raw: list[Tick], advances: list[tuple[int, int]]) -> None:
    """advance_to() may run ahead of a symbol's spots (another feed's clock), up to past the
    close cutoff or into the next day; stragglers then amend closed minutes and a completed
    DAY, and the invariants still hold."""
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
    assert_sums_to_day(agent, spots)
    day = agent.kdata("SH600000", "DAY")
    if not day.empty:
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


def without_repeats(spots: list[hkrt.Spot]) -> list[hkrt.Spot]:
    """The spots less those that repeat the one before exactly (a duplicate to the engine)."""

    def key(s: hkrt.Spot) -> tuple:
        return (s.datetime, s.close, s.high, s.low, s.volume, s.amount)

    return [s for i, s in enumerate(spots) if i == 0 or key(s) != key(spots[i - 1])]


@settings(max_examples=100, deadline=None)
@given(st.lists(ticks, min_size=1, max_size=30), st.lists(ticks, min_size=1, max_size=30), st.randoms())
def test_symbols_do_not_interact(raw_a: list[Tick], raw_b: list[Tick], rnd) -> None:
    # A symbol's last spot repeated unchanged vouches that it did not trade up to the newest spot
    # of any symbol (aggregation.md §3.3): the one designed interaction, so no repeats here.
    a, b = without_repeats(day_spots(raw_a, "SH600000")), without_repeats(day_spots(raw_b, "SZ000001"))
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


CALENDAR = hkrt.TradingCalendar.china()
trading_days = CALENDAR.trading_days("2026-06-01", "2026-12-31")


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
    daily = agent.kdata("SH600000", "DAY").drop(columns="filled")
    for k in (KType.WEEK, KType.MONTH, KType.QUARTER, KType.HALFYEAR, KType.YEAR):
        label = daily.index.map(lambda t, k=k: last_trading_day(k, t.date()))
        want = ohlcv(daily.groupby(pd.DatetimeIndex(label, dtype="datetime64[ns]")))
        want.index.name = "datetime"
        got = agent.kdata("SH600000", k)
        assert not got.filled.any()
        pd.testing.assert_frame_equal(got.drop(columns="filled"), want, check_freq=False, rtol=1e-12)


def last_trading_day(k: KType, day: dt.date) -> pd.Timestamp:
    """The period's last trading day by the bundled calendar: the label of its bar."""
    if k is KType.WEEK:
        first = day - dt.timedelta(days=day.weekday())
        last = first + dt.timedelta(days=6)
    else:
        months = {KType.MONTH: 1, KType.QUARTER: 3, KType.HALFYEAR: 6, KType.YEAR: 12}[k]
        start_month = (day.month - 1) // months * months + 1
        first = dt.date(day.year, start_month, 1)
        end_month = start_month + months - 1
        last = dt.date(day.year, end_month, calendar.monthrange(day.year, end_month)[1])
    return pd.Timestamp(CALENDAR.trading_days(first, min(last, CALENDAR.coverage[1]))[-1])
