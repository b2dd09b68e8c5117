"""Properties of the aggregation (issue 12) for random streams, checked against a model written from the rules.

Streams: two symbols over up to three of five trading days around the 2026 National Day holidays, spots at
random times (opening auction, both sessions, the lunch grace, the closing call stamped up to 15:05, after-hours
trading until midnight, a few forbidden times), pre-open spots with volume 0, silences of several minutes (gaps),
the two symbols interleaved at random, ``advance_to`` anywhere (ahead of a symbol's spots, past the close, into
the next trading day) and reads interleaved. For every symbol-day and intraday period:

- sum of bar volume = DAY volume - carry-in - gap volume (and amount), each of the three as the model says;
- DAY holds the last spot stamped before 15:05; after-hours volume is reported apart;
- each coarse intraday period equals the MIN bars re-aggregated; WEEK..YEAR equal the DAY bars aggregated under
  labels worked out by hand (the period's last trading day);
- ``filled`` is True exactly for bars no spot landed in;
- an agent read at random points ends with the same bars as one never read until the end.
"""

from __future__ import annotations

import datetime as dt
import itertools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hkrt

SYMBOLS = ("SH600000", "SZ000001")
DAYS = tuple(dt.date(2026, m, d) for m, d in ((9, 28), (9, 29), (9, 30), (10, 8), (10, 9)))
AFTER_LAST = dt.date(2026, 10, 12)  # the Monday after; Sat 10-10 is a make-up workday, closed on the exchanges
NEXT_TRADING_DAY = dict(zip(DAYS, (*DAYS[1:], AFTER_LAST), strict=True))
# Labels by hand: Thu 10-01 .. Wed 10-07 are holidays, Sat 10-31 is a weekend, Thu 12-31 trades.
D = dt.date
LONG_LABEL = {
    "WEEK": {DAYS[0]: D(2026, 9, 30), DAYS[1]: D(2026, 9, 30), DAYS[2]: D(2026, 9, 30)}
    | {DAYS[3]: D(2026, 10, 9), DAYS[4]: D(2026, 10, 9)},
    "MONTH": {d: D(2026, 9, 30) if d.month == 9 else D(2026, 10, 30) for d in DAYS},
    "QUARTER": {d: D(2026, 9, 30) if d.month == 9 else D(2026, 12, 31) for d in DAYS},
    "HALFYEAR": dict.fromkeys(DAYS, D(2026, 12, 31)),
    "YEAR": dict.fromkeys(DAYS, D(2026, 12, 31)),
}
COARSE = {"MIN3": 3, "MIN5": 5, "MIN15": 15, "MIN30": 30, "MIN60": 60, "HOUR2": 120}
INTRADAY = ("MIN", *COARSE)
FIELDS = ["open", "high", "low", "close", "volume", "amount"]

SEC, MINUTE, HOUR = 1_000, 60_000, 3_600_000


def hm(h: int, m: int, s: int = 0, ms: int = 0) -> int:
    return h * HOUR + m * MINUTE + s * SEC + ms


AUCTION, OPEN_AM, GRACE_AM, OPEN_PM, CLOSE, AFTER_HOURS = (
    hm(9, 15),
    hm(9, 30),
    hm(11, 30, 30),
    hm(13, 0),
    hm(15, 0),
    hm(15, 5),
)
EDGES = [
    hm(9, 15),
    hm(9, 25),
    hm(9, 29, 59, 999),
    hm(9, 30),
    hm(9, 30, 59, 999),
    hm(9, 31),
    hm(9, 31, 0, 1),
    hm(9, 32),
    hm(10, 30),
    hm(10, 30, 0, 1),
    hm(11, 29),
    hm(11, 30),
    hm(11, 30, 30),
    hm(11, 30, 30, 1),  # rejected
    hm(13, 0),
    hm(13, 0, 0, 1),
    hm(13, 1),
    hm(14, 59),
    hm(14, 59, 59, 999),
    hm(15, 0),
    hm(15, 0, 0, 1),
    hm(15, 4, 59, 999),
    hm(15, 5),
    hm(15, 30),
]


def valid(ms: int) -> bool:
    """Accepted time of day: the auction, the morning with its grace, the afternoon on to midnight."""
    return AUCTION <= ms <= GRACE_AM or ms >= OPEN_PM


def trading_minute(ms: int) -> int:
    """Minute 0..239 of a spot stamped before 15:05: (open+m, open+m+1], open instant and auction in 0,
    the lunch grace in 119, the late close in 239."""
    if ms < OPEN_PM:
        return min(max(math.ceil((ms - OPEN_AM) / MINUTE) - 1, 0), 119)
    return 120 + min(max(math.ceil((ms - OPEN_PM) / MINUTE) - 1, 0), 119)


def minute_label(day: dt.date, minute: int) -> pd.Timestamp:
    base = pd.Timestamp(day) + (pd.Timedelta(hours=9, minutes=30) if minute < 120 else pd.Timedelta(hours=13))
    return base + pd.Timedelta(minutes=minute % 120 + 1)


def time_of_day(when: dt.datetime) -> int:
    return hm(when.hour, when.minute, when.second, when.microsecond // 1000)


@dataclass(frozen=True)
class Event:
    ms: int
    lots: int
    cents: int
    high_jump: int
    low_jump: int


times = st.one_of(
    st.integers(OPEN_AM, GRACE_AM),
    st.integers(OPEN_PM, CLOSE),
    st.integers(OPEN_AM, GRACE_AM),
    st.integers(OPEN_PM, CLOSE),
    st.integers(AUCTION, OPEN_AM - 1),
    st.integers(CLOSE + 1, AFTER_HOURS - 1),
    st.integers(AFTER_HOURS, 24 * HOUR - 1),
    st.sampled_from(EDGES),
    st.sampled_from(EDGES),
    st.integers(hm(8, 0), AUCTION - 1) | st.integers(GRACE_AM + 1, OPEN_PM - 1),  # rejected
)
events = st.builds(
    Event,
    ms=times,
    lots=st.integers(0, 300) | st.just(0),
    cents=st.integers(900, 1_100),
    high_jump=st.integers(0, 3),
    low_jump=st.integers(0, 3),
)


def day_spots(symbol: str, day: dt.date, raw: list[Event]) -> list[hkrt.Spot]:
    """A consistent day: times ascending, cumulative totals, monotone day extremes. No volume before the
    09:25 match or at forbidden times; after-hours trades at the last price and only once the day traded
    before 15:05, or when an after-hours spot is the day's very first one (a feed started late)."""
    out = []
    volume = amount = 0.0
    open_, high, low, last = 0.0, 0.0, math.inf, 0.0
    seen_valid = False
    started_after_hours = False
    for e in sorted(raw, key=lambda e: e.ms):
        price = e.cents / 100
        lots = e.lots
        after_hours = e.ms >= AFTER_HOURS
        if not valid(e.ms) or e.ms < hm(9, 25):
            lots = 0
        elif after_hours:
            if not seen_valid:
                started_after_hours = True
            elif started_after_hours or volume == 0:
                lots = 0
            if volume > 0:
                price = last
        seen_valid = seen_valid or valid(e.ms)
        volume += lots * 100
        amount += lots * 100 * price
        if volume > 0:
            open_ = open_ or price
            high = max(high, price + e.high_jump / 100)
            low = min(low, max(price - e.low_jump / 100, 0.01))
            last = price
        when = dt.datetime.combine(day, dt.time()) + dt.timedelta(milliseconds=e.ms)
        traded = volume > 0
        out.append(
            hkrt.Spot(
                symbol,
                when,
                open=open_ if traded else 0.0,
                high=high if traded else 0.0,
                low=low if traded else 0.0,
                close=price,
                volume=volume,
                amount=amount,
            )
        )
    return out


# ------------------------------------------------------------------------------------------------- model


@dataclass
class DayModel:
    day_volume: float
    day_amount: float
    day_close: float
    carry: tuple[float, float]
    gap: tuple[float, float]
    gap_spans: tuple[int, int]  # (spans with a rise, all spans): the reported count lies between
    after_hours: tuple[float, float]
    landed: set[pd.Timestamp]  # MIN labels of bars a traded spot landed in
    first_label: pd.Timestamp | None


def model_day(day: dt.date, accepted: list[hkrt.Spot]) -> DayModel | None:
    """What the rules say of one symbol-day, from its accepted spots alone."""
    if not any(s.volume > 0 for s in accepted):
        return None
    first = accepted[0]
    first_ms = time_of_day(first.datetime)
    before = [s for s in accepted if time_of_day(s.datetime) < AFTER_HOURS]
    if before:
        assert before[-1].volume > 0, "the generator never trades after hours on a day without volume before"
        source = before[-1]
    else:
        source = first
    after = (accepted[-1].volume - source.volume, accepted[-1].amount - source.amount)
    carry = (0.0, 0.0)
    if first.volume > 0 and (first_ms >= AFTER_HOURS or trading_minute(first_ms) >= 1):
        carry = (first.volume, first.amount)
    gap_volume = gap_amount = 0.0
    rising = spans = 0
    for prev, cur in itertools.pairwise(before):
        if trading_minute(time_of_day(cur.datetime)) - trading_minute(time_of_day(prev.datetime)) >= 2:
            spans += 1
            rising += cur.volume > prev.volume
            gap_volume += cur.volume - prev.volume
            gap_amount += cur.amount - prev.amount
    traded = [s for s in before if s.volume > 0]
    landed = {minute_label(day, trading_minute(time_of_day(s.datetime))) for s in traded}
    return DayModel(
        day_volume=source.volume,
        day_amount=source.amount,
        day_close=source.close,
        carry=carry,
        gap=(gap_volume, gap_amount),
        gap_spans=(rising, spans),
        after_hours=after,
        landed=landed,
        first_label=min(landed) if landed else None,
    )


def coarse_labels(index: pd.DatetimeIndex, n: int) -> pd.DatetimeIndex:
    """Bucket of each MIN label: n-minute buckets from each session's open, labelled by their end."""
    minutes = index.hour * 60 + index.minute
    base = np.where(minutes <= 11 * 60 + 30, 9 * 60 + 30, 13 * 60)
    k = minutes - base  # 1..120
    end = base + (-(-k // n)) * n
    return pd.DatetimeIndex(index.normalize() + pd.to_timedelta(end, unit="min"), name="datetime")


def aggregate(frame: pd.DataFrame, keys) -> pd.DataFrame:
    g = frame.groupby(keys, sort=True)
    out = pd.DataFrame(
        {
            "open": g.open.first(),
            "high": g.high.max(),
            "low": g.low.min(),
            "close": g.close.last(),
            "volume": g.volume.sum(),
            "amount": g.amount.sum(),
        }
    )
    if "filled" in frame.columns:
        out["filled"] = g.filled.all()
    return out


def assert_bars_equal(got: pd.DataFrame, want: pd.DataFrame, what: str) -> None:
    assert list(got.index) == list(want.index), what
    cols = ["open", "high", "low", "close", "volume"]
    np.testing.assert_array_equal(got[cols].to_numpy(), want[cols].to_numpy(), err_msg=what)
    np.testing.assert_allclose(got.amount.to_numpy(), want.amount.to_numpy(), rtol=1e-9, atol=1e-6, err_msg=what)


# ------------------------------------------------------------------------------------------------ stream


@dataclass
class Stream:
    spots: list[hkrt.Spot]  # both symbols interleaved, each in its own time order
    advances: dict[int, list[dt.datetime]]  # after spot i: advance_to(each)
    reads: dict[int, list[tuple[str, str]]]  # after spot i: read (symbol, ktype or "view") on the reading agent
    close_all: bool


@st.composite
def streams(draw) -> Stream:
    per_symbol = []
    for symbol in SYMBOLS:
        days = sorted(draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=3, unique=True)))
        own = []
        for day in days:
            own += day_spots(symbol, day, draw(st.lists(events, max_size=10, unique_by=lambda e: e.ms)))
        per_symbol.append(own)
    rnd = draw(st.randoms(use_true_random=False))
    merged: list[hkrt.Spot] = []
    a, b = per_symbol
    while a or b:
        merged.append((a if a and (not b or rnd.random() < 0.5) else b).pop(0))
    n = max(len(merged), 1)
    advances: dict[int, list[dt.datetime]] = {}
    for after, kind, pick in draw(
        st.lists(
            st.tuples(st.integers(0, n - 1), st.sampled_from(["ahead", "close", "next"]), st.integers(0, 10_000)),
            max_size=6,
        )
    ):
        if not merged:
            break
        s = merged[after]
        if kind == "ahead":
            when = s.datetime + dt.timedelta(seconds=pick % 7_400 - 200)
        elif kind == "close":
            when = dt.datetime.combine(s.datetime.date(), dt.time()) + dt.timedelta(
                milliseconds=[hm(15, 4, 59, 999), hm(15, 5), hm(15, 6), hm(16, 0)][pick % 4]
            )
        else:
            when = dt.datetime.combine(NEXT_TRADING_DAY[s.datetime.date()], dt.time()) + dt.timedelta(
                milliseconds=[hm(9, 0), hm(9, 25), hm(9, 31, 30)][pick % 3]
            )
        advances.setdefault(after, []).append(when)
    reads: dict[int, list[tuple[str, str]]] = {}
    for after, symbol, ktype in draw(
        st.lists(
            st.tuples(
                st.integers(0, n - 1),
                st.sampled_from(SYMBOLS),
                st.sampled_from([*INTRADAY, "DAY", "WEEK", "MONTH", "YEAR", "view"]),
            ),
            max_size=8,
        )
    ):
        reads.setdefault(after, []).append((symbol, ktype))
    return Stream(merged, advances, reads, draw(st.booleans()))


def day_report(agent: hkrt.SpotAgent, symbol: str) -> tuple:
    return (agent.carry_in(symbol), agent.gap_volume(symbol), agent.after_hours(symbol))


# ------------------------------------------------------------------------------------------------ properties


@settings(max_examples=70, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(streams())
def test_bars_follow_the_model_and_do_not_depend_on_when_they_are_read(stream: Stream) -> None:
    reading, unread = hkrt.SpotAgent(), hkrt.SpotAgent()
    unread._engine.collect_completed = True  # keep what it reports complete, for take_completed() below
    accepted: dict[tuple[str, dt.date], list[hkrt.Spot]] = {}
    current_day: dict[str, dt.date] = {}
    reports: dict[tuple[str, dt.date], tuple] = {}
    completed: set[tuple[str, dt.date]] = set()  # symbol-days the model knows are over
    forbidden = 0
    for i, s in enumerate(stream.spots):
        day = s.datetime.date()
        if s.symbol in current_day and current_day[s.symbol] != day:
            key = (s.symbol, current_day[s.symbol])
            reports[key] = day_report(reading, s.symbol)
            assert day_report(unread, s.symbol) == reports[key], key
        ok = valid(time_of_day(s.datetime))
        forbidden += not ok
        assert reading.ingest(s) == int(ok), s
        assert unread.ingest(s) == int(ok), s
        if ok:
            if s.symbol in current_day and current_day[s.symbol] != day:
                completed.add((s.symbol, current_day[s.symbol]))
            current_day[s.symbol] = day
            accepted.setdefault((s.symbol, day), []).append(s)
        for when in stream.advances.get(i, []):
            reading.advance_to(when)
            unread.advance_to(when)
            for symbol, d in current_day.items():
                # advance_to closes the days of symbols that have traded that day (a symbol that trades only
                # after it is closed by the next advance_to or the next day, not counted here)
                if when >= dt.datetime.combine(d, dt.time(15, 5)) and accepted[(symbol, d)][-1].volume > 0:
                    completed.add((symbol, d))
        for symbol, ktype in stream.reads.get(i, []):
            if ktype == "view":
                reading.kdata_view(symbol, "MIN")
            else:
                reading.kdata(symbol, ktype)
    if stream.close_all:
        for agent in (reading, unread):
            agent.advance_to(dt.datetime.combine(AFTER_LAST, dt.time(9)))
        completed |= set(accepted)
    for symbol, d in current_day.items():
        reports[(symbol, d)] = day_report(reading, symbol)
        assert day_report(unread, symbol) == reports[(symbol, d)]

    # The same bars whether read along the way or only now.
    for symbol in SYMBOLS:
        for k in unread.ktypes:
            pd.testing.assert_frame_equal(reading.kdata(symbol, k), unread.kdata(symbol, k), obj=f"{symbol} {k}")

    check_reports(unread, completed)
    models = {key: model_day(key[1], spots) for key, spots in accepted.items()}
    stats = unread.stats()
    assert stats["rejected"]["outside_session"] == forbidden
    assert stats["rejected_total"] == forbidden
    traded = {key: m for key, m in models.items() if m is not None}
    assert stats["carry_in"] == sum(m.carry[0] > 0 for m in traded.values())
    assert stats["gap_volume"] == sum(m.gap[0] > 0 for m in traded.values())
    assert stats["after_hours"] == sum(m.after_hours[0] > 0 for m in traded.values())

    for symbol in SYMBOLS:
        daily = unread.kdata(symbol, "DAY")
        intraday = {k: unread.kdata(symbol, k) for k in INTRADAY}
        for (sym, day), model in models.items():
            if sym != symbol:
                continue
            check_day(symbol, day, model, daily, intraday, reports[(symbol, day)], (symbol, day) in completed)
        assert set(daily.index.date) == {d for (sym, d), m in traded.items() if sym == symbol}
        for k, labels in LONG_LABEL.items():
            got = unread.kdata(symbol, k)
            if daily.empty:
                assert got.empty, (symbol, k)
                continue
            want = aggregate(daily[FIELDS], [pd.Timestamp(labels[d]) for d in daily.index.date])
            assert_bars_equal(got, want, f"{symbol} {k}")


def check_day(
    symbol: str,
    day: dt.date,
    model: DayModel | None,
    daily: pd.DataFrame,
    intraday: dict[str, pd.DataFrame],
    report: tuple,
    completed: bool,
) -> None:
    what = f"{symbol} {day}"
    carry, gap, after = report
    mins = intraday["MIN"][intraday["MIN"].index.normalize() == pd.Timestamp(day)]
    if model is None:  # volume 0 all day: no bar at all
        assert pd.Timestamp(day) not in daily.index, what
        assert mins.empty, what
        return
    bar = daily.loc[pd.Timestamp(day)]
    assert (bar.volume, bar.close) == (model.day_volume, model.day_close), what
    assert bar.amount == pytest.approx(model.day_amount, rel=1e-12), what
    assert (carry.day, gap.day, after.day) == (day, day, day), what
    assert carry.volume == model.carry[0] and carry.amount == pytest.approx(model.carry[1], abs=1e-6), what
    assert gap.volume == model.gap[0] and gap.amount == pytest.approx(model.gap[1], abs=1e-6), what
    assert model.gap_spans[0] <= gap.gaps <= model.gap_spans[1], what
    assert after.volume == model.after_hours[0] and after.amount == pytest.approx(model.after_hours[1], abs=1e-6), what

    intraday_volume = model.day_volume - model.carry[0] - model.gap[0]
    intraday_amount = model.day_amount - model.carry[1] - model.gap[1]
    for k, frame in intraday.items():
        bars = frame[frame.index.normalize() == pd.Timestamp(day)]
        assert bars.volume.sum() == intraday_volume, (what, k)
        assert bars.amount.sum() == pytest.approx(intraday_amount, rel=1e-9, abs=1e-6), (what, k)
        assert (bars.volume >= 0).all() and (bars.high >= bars[["open", "close"]].max(axis=1)).all(), (what, k)
        assert (bars.low <= bars[["open", "close"]].min(axis=1)).all(), (what, k)
        flat = bars[bars.filled]
        assert (flat.volume == 0).all() and (flat.open == flat.close).all() and (flat.high == flat.low).all()
        if k != "MIN":
            want = aggregate(mins[[*FIELDS, "filled"]], coarse_labels(mins.index, COARSE[k]))
            assert_bars_equal(bars, want, f"{what} {k}")
            assert bars.filled.tolist() == want.filled.tolist(), (what, k)

    if model.first_label is None:  # the day was first seen after hours: carry-in only
        return
    # MIN bars run without a hole from the first traded spot's minute, to 15:00 once the day is over.
    assert mins.index[0] == model.first_label, what
    assert set(mins.index) >= model.landed, what
    assert mins.filled.tolist() == [t not in model.landed for t in mins.index], what
    position = [trading_minute(time_of_day(t.to_pydatetime() - dt.timedelta(seconds=1))) for t in mins.index]
    assert position == list(range(position[0], position[0] + len(position))), what
    if completed:
        assert mins.index[-1] == minute_label(day, 239), what
    assert mins.close.iloc[-1] == model.day_close, what
    assert bar.high >= mins.high.max() and bar.low <= mins.low.min(), what


def check_reports(agent: hkrt.SpotAgent, completed: set[tuple[str, dt.date]]) -> None:
    """Every bar of a finished day was reported complete, and its last report is the final bar: stragglers
    that amend a reported bar report it again."""
    names = [k.value for k in hkrt.KType]
    last = {}
    for rec in agent._engine.take_completed():
        last[(rec["symbol"].decode(), names[int(rec["ktype"])], pd.Timestamp(rec["datetime"]))] = rec
    finals = {(symbol, k): agent.kdata(symbol, k) for symbol in SYMBOLS for k in names}
    for (symbol, k, label), rec in last.items():
        final = finals[(symbol, k)]
        assert label in final.index, (symbol, k, label)
        row = final.loc[label]
        assert [rec[c] for c in FIELDS[:5]] == [row[c] for c in FIELDS[:5]], (symbol, k, label)
        assert rec["amount"] == pytest.approx(row.amount, rel=1e-9, abs=1e-6), (symbol, k, label)
        assert bool(rec["filled"]) == bool(row.filled), (symbol, k, label)
    for symbol, day in completed:
        for k in (*INTRADAY, "DAY"):
            final = finals[(symbol, k)]
            for label in final.index[final.index.normalize() == pd.Timestamp(day)]:
                assert (symbol, k, label) in last, (symbol, k, label, "never reported")
