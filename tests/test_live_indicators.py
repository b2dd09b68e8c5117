"""Live indicators (hkrt.indicators.live, docs/indicators.md "Live indicators"): every indicator
name streamed bar by bar equals the batch over the same bars bit for bit; peek changes nothing;
warm-up, amended bars, duplicates and bars out of order on a real agent and bus; the bound; a
BarBatch taken whole gives what its bars one at a time give, and every name fed by batches the
batch's values; a Strategy on a real SpotAgent fed the simulated market; and the Chinese variants
by hand."""

from __future__ import annotations

import datetime as dt
import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from conftest import at, spot
from hkrt.bus import Bar, BarBatch, BarClosed, EventBus
from hkrt.fetcher.sim import SimConfig, SimMarket
from hkrt.indicators import IndicatorError, LiveIndicator, LiveIndicators, indicator_names
from test_indicators import synthetic_minute_bars

DAY = dt.date(2026, 11, 20)
PREVIOUS_DAY = dt.date(2026, 11, 19)
WARM = 160  # history bars before streaming: past every default look-back (PERCENTRANK's 100 is the longest)


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    """test_indicators.py's day of MIN bars, plus the ``periods`` column MAVP reads."""
    frame = synthetic_minute_bars()
    return frame.assign(periods=[float(2 + i % 29) for i in range(len(frame))])


def rows_of(frame: pd.DataFrame) -> Iterator[tuple[Any, dict[str, float]]]:
    columns = {c: frame[c].to_numpy(dtype=np.float64) for c in frame.columns if c != "filled"}
    for i, label in enumerate(frame.index):
        yield label, {c: float(v[i]) for c, v in columns.items()}


def batch_rows(name: str, frame: pd.DataFrame, **params: Any) -> list[tuple[float, ...]]:
    """``hkrt.indicator`` over ``frame``: each bar's outputs as a tuple of floats."""
    out = hkrt.indicator(name, frame, **params)
    columns = [out] if isinstance(out, pd.Series) else [out[c] for c in out.columns]
    return list(zip(*(c.to_numpy(dtype=np.float64).tolist() for c in columns), strict=True))


def as_tuple(value: float | dict[str, float]) -> tuple[float, ...]:
    return (value,) if isinstance(value, float) else tuple(value.values())


def same(got: tuple[float, ...], want: tuple[float, ...]) -> bool:
    """Bit for bit: equal, or NaN where the batch is NaN."""
    if len(got) != len(want):
        return False
    return all(g == w or (math.isnan(g) and math.isnan(w)) for g, w in zip(got, want, strict=True))


# ------------------------------------------------------- every name, bit for bit
@pytest.mark.parametrize("name", indicator_names())
def test_every_indicator_streamed_bar_by_bar_equals_the_batch_bit_for_bit(bars: pd.DataFrame, name: str) -> None:
    want = batch_rows(name, bars)
    rows = list(rows_of(bars))
    # warmed up on WARM bars: the first live value is the batch's on the history's last bar
    live = LiveIndicator(name, bars.iloc[:WARM])
    assert live.ready and same(as_tuple(live.value), want[WARM - 1]), (live.value, want[WARM - 1])
    for i in range(WARM, len(rows)):
        label, row = rows[i]
        got = as_tuple(live.update(row, label))
        assert same(got, want[i]), (name, i, got, want[i])
    assert live.last_label == bars.index[-1] and live.bars == len(bars)
    # from two bars of history: kept until it can open, NaN (0 for a pattern) where the batch has it
    early = LiveIndicator(name, bars.iloc[:2])
    assert same(as_tuple(early.value), want[1])
    for i in range(2, len(rows)):
        label, row = rows[i]
        got = as_tuple(early.update(row, label))
        assert same(got, want[i]), (name, i, got, want[i])
    assert early.ready


@pytest.mark.parametrize(
    ("name", "params"),
    [("SMA", {"timeperiod": 5}), ("MACD", {}), ("RSI", {}), ("KDJ_CN", {}), ("BOLL_CN", {}), ("CDLDOJI", {})],
)
def test_peek_changes_nothing_and_is_what_update_then_gives(
    bars: pd.DataFrame, name: str, params: dict[str, int]
) -> None:
    for history in (bars.iloc[:WARM], bars.iloc[:3]):  # opened, and still keeping bars
        live = LiveIndicator(name, history, **params)
        label, row = next(rows_of(bars.iloc[len(history) :]))
        before, bars_before = live.value, live.bars
        peeked = as_tuple(live.peek(row))
        forming = {**row, "close": row["close"] * 1.01, "high": row["high"] * 1.01}
        live.peek(forming)
        assert same(as_tuple(live.value), as_tuple(before)) and live.bars == bars_before
        assert same(as_tuple(live.update(row, label)), peeked)
        # several bars at once (the agent ahead of the events): a copy carries them, the handle stays
        later = [r for _, r in rows_of(bars.iloc[len(history) + 1 : len(history) + 4])]
        ahead = as_tuple(live.peek_bars(later))
        assert live.last_label == label
        want = batch_rows(name, bars.iloc[: len(history) + 4], **params)[-1]
        assert same(ahead, want)


@settings(max_examples=40, deadline=None)
@given(
    closes=st.lists(st.floats(min_value=1.0, max_value=100.0, allow_nan=False), min_size=3, max_size=60),
    split=st.integers(min_value=0, max_value=60),
    period=st.integers(min_value=2, max_value=12),
)
def test_any_split_into_history_and_live_bars_gives_the_batch(closes: list[float], split: int, period: int) -> None:
    """Wherever the history ends and the live bars begin, the values are the batch's, bit for bit."""
    index = pd.date_range("2026-11-20 09:31", periods=len(closes), freq="min")
    spread = [c * 0.01 for c in closes]
    frame = pd.DataFrame({"open": closes, "high": [c + s for c, s in zip(closes, spread, strict=True)],
                          "low": [c - s for c, s in zip(closes, spread, strict=True)], "close": closes,
                          "volume": [100.0] * len(closes)}, index=index)  # fmt: skip
    split = min(split, len(closes))
    for name, params in [("EMA", {"timeperiod": period}), ("RSI", {"timeperiod": period}),
                         ("KDJ_CN", {"fastk_period": period}), ("BOLL_CN", {"timeperiod": period})]:  # fmt: skip
        want = batch_rows(name, frame, **params)
        live = LiveIndicator(name, frame.iloc[:split], **params)
        for i, (label, row) in enumerate(rows_of(frame)):
            if i < split:
                continue
            assert same(as_tuple(live.update(row, label)), want[i]), (name, i)
        assert same(as_tuple(live.value), want[-1])


# ------------------------------------------------------- the set on a real agent and bus
SYMBOL = "SH600000"


def minute_bar(frame: pd.DataFrame, label: pd.Timestamp, *, amended: bool = False) -> Bar:
    row = frame.loc[label]
    values = [float(row[c]) for c in ("open", "high", "low", "close", "volume", "amount")]
    return Bar(label.to_pydatetime(), *values, bool(row["filled"]), amended)


def test_warm_up_uses_the_delivered_bars_and_an_amended_bar_rebuilds(caplog: pytest.LogCaptureFixture) -> None:
    agent = hkrt.SpotAgent(["MIN"])
    indicators = LiveIndicators(agent.kdata, symbols=[SYMBOL], ktypes=["MIN"])
    indicators.attach(agent.bus)
    agent.bus.start()
    try:
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        agent.advance_to(at("09:33:20"))  # 09:31 traded, 09:32 and 09:33 flat: all three delivered
        agent.bus.wait_idle()
        sma = indicators.get(SYMBOL, "MIN", "SMA", timeperiod=2)
        assert sma.last_label == at("09:33") and sma.value == 10.0  # (10.0 + 10.0) / 2
        # a straggler lands in 09:32, which was reported: 09:32 and 09:33 come again, amended
        agent.ingest(spot("09:31:30", 10.1, 150, 1_505))
        agent.bus.wait_idle()
        assert indicators.stats["amended"] == 2 and indicators.stats["rebuilds"] == 2
        frame = agent.kdata(SYMBOL, "MIN")
        assert frame["close"].tolist() == [10.0, 10.1, 10.1]
        assert sma.value == hkrt.indicator("SMA", frame, timeperiod=2).iloc[-1] == pytest.approx(10.1)  # not 10.0
        # later bars carry on from the rebuilt state
        agent.ingest(spot("09:34:30", 10.4, 250, 2_545))
        agent.advance_to(at("09:35:20"))
        agent.bus.wait_idle()
        frame = agent.kdata(SYMBOL, "MIN")
        assert sma.last_label == at("09:35")
        assert sma.value == hkrt.indicator("SMA", frame, timeperiod=2).iloc[-1]
        # an indicator asked for now is warmed up to the last delivered bar, never further
        macd = indicators.get(SYMBOL, "min", "macd_cn", fastperiod=2, slowperiod=3, signalperiod=2)
        assert macd.last_label == at("09:35") and macd is indicators.get(SYMBOL, "MIN", "MACD_CN", fastperiod=2,
                                                                          slowperiod=3, signalperiod=2)  # fmt: skip
        want = hkrt.indicator("MACD_CN", frame, fastperiod=2, slowperiod=3, signalperiod=2).iloc[-1].to_dict()
        assert macd.value == want
    finally:
        agent.bus.stop()


def test_duplicates_are_ignored_and_a_bar_out_of_order_rebuilds_from_the_history(
    bars: pd.DataFrame, caplog: pytest.LogCaptureFixture
) -> None:
    """A hand-published bus: the history is a frame the test controls (the truth)."""
    truth = {"frame": bars.iloc[:100]}
    indicators = LiveIndicators(lambda symbol, ktype: truth["frame"], symbols=[SYMBOL], ktypes=["MIN"])
    bus = EventBus()
    indicators.attach(bus)
    seen: list[float] = []
    bus.subscribe(BarClosed, lambda e: seen.append(indicators.value(SYMBOL, "MIN", "EMA", timeperiod=10)))
    with bus:
        ema = indicators.get(SYMBOL, "MIN", "EMA", timeperiod=10)
        assert ema.value == hkrt.indicator("EMA", bars.iloc[:100], timeperiod=10).iloc[-1]
        for label in bars.index[100:110]:
            truth["frame"] = bars.loc[:label]
            bus.publish(BarClosed(SYMBOL, hkrt.KType.MIN, minute_bar(bars, label)))
        bus.publish(BarClosed(SYMBOL, hkrt.KType.MIN, minute_bar(bars, bars.index[109])))  # the same bar again
        bus.wait_idle()
        want = hkrt.indicator("EMA", bars.iloc[:110], timeperiod=10)
        assert seen[:10] == want.iloc[100:110].tolist()  # the set's handler ran before the later subscriber's
        assert indicators.stats["duplicates"] == 1 and ema.value == want.iloc[-1]
        # a changed bar under an old label, not flagged amended: the history (changed too) is the truth
        changed = bars.iloc[:110].copy()
        changed.iloc[105, changed.columns.get_loc("close")] += 0.5
        truth["frame"] = changed
        with caplog.at_level(logging.WARNING, logger="hkrt.indicators"):
            bus.publish(BarClosed(SYMBOL, hkrt.KType.MIN, minute_bar(changed, changed.index[105])))
            bus.wait_idle()
        assert indicators.stats["out_of_order"] == 1 and indicators.stats["rebuilds"] == 1
        assert ema.value == hkrt.indicator("EMA", changed, timeperiod=10).iloc[-1] != want.iloc[-1]
        assert "rebuilt from the history" in caplog.text
        # a bar that is not finite: refused, counted, loud; the indicator unchanged
        before = ema.value
        nan_bar = minute_bar(bars, bars.index[110])._replace(close=math.nan)
        with caplog.at_level(logging.WARNING, logger="hkrt.indicators"):
            bus.publish(BarClosed(SYMBOL, hkrt.KType.MIN, nan_bar))
            bus.wait_idle()
        assert indicators.stats["rejected_bars"] == 1 and ema.value == before and "not finite" in caplog.text
    assert bus.errors == 0


def test_before_any_bar_is_delivered_the_clock_says_which_history_bars_closed(bars: pd.DataFrame) -> None:
    days = pd.DataFrame({"close": [10.0, 11.0, 12.0, 13.5]}, index=pd.date_range("2026-11-17", periods=4, freq="D"))
    frames = {hkrt.KType.MIN: bars, hkrt.KType.DAY: days}
    now = {"clock": dt.datetime(2026, 11, 20, 11, 15, 30)}
    indicators = LiveIndicators(lambda s, k: frames[k], clock=lambda: now["clock"])
    # intraday: bars labelled before the clock (11:16 is forming: it holds 11:15:30)
    sma = indicators.get(SYMBOL, "MIN", "SMA", timeperiod=5)
    assert sma.last_label == pd.Timestamp("2026-11-20 11:15")
    assert sma.value == hkrt.indicator("SMA", bars.loc[:"2026-11-20 11:15"], timeperiod=5).iloc[-1]
    # DAY and longer: bars of days before the clock's (today's DAY bar is forming, whatever its 00:00 label)
    day = indicators.get(SYMBOL, "DAY", "SMA", timeperiod=2)
    assert day.last_label == pd.Timestamp("2026-11-19") and day.value == 11.5
    assert indicators.value(SYMBOL, "DAY", "SMA", forming=True, timeperiod=2) == 12.75  # (12 + 13.5) / 2
    assert day.value == 11.5  # peeking changed nothing
    now["clock"] = None  # no market time yet (before the first spot): every history bar is closed
    assert indicators.get(SYMBOL, "DAY", "EMA", timeperiod=2).last_label == pd.Timestamp("2026-11-20")


def test_the_number_of_live_indicators_is_bounded_and_bad_requests_are_one_line(bars: pd.DataFrame) -> None:
    indicators = LiveIndicators(lambda s, k: bars.iloc[:50], symbols=[SYMBOL, "SZ000001"], ktypes=["MIN"],
                                max_indicators=2)  # fmt: skip
    indicators.get(SYMBOL, "MIN", "SMA", timeperiod=5)
    assert indicators.get("600000.SH", "min", "sma", timeperiod=5.0) is indicators.get(SYMBOL, "MIN", "SMA",
                                                                                          timeperiod=5)  # fmt: skip
    indicators.get(SYMBOL, "MIN", "SMA")  # default timeperiod=30: another indicator
    assert len(indicators) == 2
    cases = [
        (lambda: indicators.get(SYMBOL, "MIN", "RSI"), "live indicators: 2 already, the limit"),
        (lambda: indicators.get(SYMBOL, "MIN", "SMAX"), "unknown indicator 'SMAX' (did you mean SMA"),
        (lambda: indicators.get(SYMBOL, "MIN", "SMA", period=5), "SMA takes no parameter 'period'"),
        (lambda: indicators.get(SYMBOL, "MIN", "SMA", timeperiod=0), "SMA(timeperiod=0): "),
        (lambda: indicators.get(SYMBOL, "MIN5", "SMA", timeperiod=5), "SH600000 MIN5 is not among the bars"),
        (lambda: indicators.get("SH600009", "MIN", "SMA", timeperiod=5), "SH600009 MIN is not among the bars"),
        (lambda: indicators.get("nonsense", "MIN", "SMA"), "live indicator of 'nonsense' 'MIN': "),
        (lambda: LiveIndicator("BOLL_CN", timeperiod=1), "BOLL_CN's timeperiod must be at least 2"),
        (lambda: LiveIndicator("SMA", timeperiod=[5]), "SMA's timeperiod must be a number"),
        (lambda: LiveIndicator("MAVP", bars.drop(columns="periods")), "MAVP needs the bars' periods column"),
        (lambda: LiveIndicator("SMA").update({"open": 1.0}), "SMA reads the bar's close; dict lacks one"),
    ]
    for call, message in cases:
        with pytest.raises(IndicatorError) as info:
            call()
        assert str(info.value).startswith(message) and "\n" not in str(info.value), str(info.value)
    assert indicators.remove(SYMBOL, "MIN", "SMA", timeperiod=5)
    assert not indicators.remove(SYMBOL, "MIN", "SMA", timeperiod=5)
    indicators.get(SYMBOL, "MIN", "RSI")  # room again
    assert len(indicators) == 2


# ------------------------------------------------------- a BarBatch taken whole
BATCH_SYMBOLS = ["SH600000", "SZ000001", "SH600519", "SZ300750"]
BATCH_CASES: list[tuple[str, dict[str, int]]] = [
    ("SMA", {"timeperiod": 5}),
    ("MACD", {}),  # three outputs
    ("ATR", {"timeperiod": 14}),  # high, low, close
    ("OBV", {}),  # close and volume: a bar with no volume is refused for it only
    ("KDJ_CN", {}),  # a variant's stream
]
BATCH_EXTRA: dict[str, tuple[str, dict[str, int]]] = {  # one symbol each: the others' bars stay on the fast path
    "SH600519": ("SMA", {"timeperiod": 110}),  # not open on 100 bars of history: its bars are kept until then
    "SZ300750": ("MAVP", {"minperiod": 2, "maxperiod": 30}),  # reads a column a bar has not: refused, both ways
}
PRICES = ["open", "high", "low", "close"]


def symbol_frames(bars: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """One day of MIN bars per symbol (the fixture's, prices scaled): the history, the truth."""
    frames = {}
    for j, symbol in enumerate(BATCH_SYMBOLS):
        frame = bars.copy()
        frame[PRICES] = (frame[PRICES] * (1 + 0.01 * j)).round(2)
        frames[symbol] = frame
    return frames


def bar_records(rows: list[tuple[str, hkrt.KType, pd.Timestamp, Bar]]) -> np.ndarray:
    """Rows (symbol, ktype, label, bar) as the records of one BarBatch."""
    out = np.zeros(len(rows), dtype=hkrt._hkrt.COMPLETED_DTYPE)
    for i, (symbol, ktype, label, bar) in enumerate(rows):
        out[i] = (symbol.encode(), ktype.record_code, np.datetime64(label.to_pydatetime(), "ms"), *bar[1:])
    return out


def state(indicators: LiveIndicators) -> dict[Any, tuple[Any, ...]]:
    """Every indicator of the set: value (bit for bit), last label, last bar, bars fed."""
    return {(i.symbol, i.spec.name, i.spec.params): (as_tuple(i.value), i.last_label, i.last_bar, i.bars)
            for i in indicators}  # fmt: skip


def same_state(a: dict[Any, tuple[Any, ...]], b: dict[Any, tuple[Any, ...]]) -> bool:
    return a.keys() == b.keys() and all(
        same(a[k][0], b[k][0]) and a[k][1:3] == b[k][1:3] and a[k][3] == b[k][3] for k in a
    )


def test_a_bar_batch_of_many_symbols_gives_what_its_bars_one_at_a_time_give(bars: pd.DataFrame) -> None:
    """One set takes each BarBatch whole (``on_batch``), the other its bars one by one (``on_bar``,
    what the bus's BarClosed split gives): after every batch the same values bit for bit, labels,
    bars and stats, through duplicates, bars not finite, an amended bar, a bar out of order, a
    symbol with no indicators, another period in the batch, and the set changed between batches."""
    frames = symbol_frames(bars)
    truth = {s: f.iloc[:100] for s, f in frames.items()}
    whole, single = (LiveIndicators(lambda s, k: truth[s], ktypes=["MIN", "MIN5"]) for _ in range(2))
    for indicators in (whole, single):
        for symbol in BATCH_SYMBOLS:
            for name, params in [*BATCH_CASES, *([BATCH_EXTRA[symbol]] if symbol in BATCH_EXTRA else [])]:
                indicators.get(symbol, "MIN", name, **params)
    assert same_state(state(whole), state(single))
    amended = nan_close = nan_volume = late = 0

    def deliver(rows: list[tuple[str, hkrt.KType, pd.Timestamp, Bar]]) -> None:
        batch = BarBatch(bar_records(rows))
        whole.on_batch(batch)
        for event in batch.items():
            single.on_bar(event)
        assert whole.stats == single.stats
        assert same_state(state(whole), state(single))
        for symbol in [SYMBOL, "SH600519", "SZ300750"]:  # and the batch's over the truth (SZ000001: see below)
            for name, params in BATCH_CASES:
                want = batch_rows(name, truth[symbol], **params)[-1]
                assert same(as_tuple(whole.value(symbol, "MIN", name, **params)), want), (symbol, name)

    for t in range(100, 140):
        label = bars.index[t]
        for symbol, frame in frames.items():
            truth[symbol] = frame.iloc[: t + 1]
        rows = [(s, hkrt.KType.MIN, label, minute_bar(frames[s], label)) for s in BATCH_SYMBOLS]
        rows.append(("SH601318", hkrt.KType.MIN, label, minute_bar(frames[SYMBOL], label)))  # followed by none
        if t % 5 == 0:  # another period in the same batch
            rows.append((SYMBOL, hkrt.KType.MIN5, label, minute_bar(frames[SYMBOL], label)))
        if t in (115, 116):  # not finite: refused for every indicator, or only for those reading the column
            rows[1] = (*rows[1][:3], rows[1][3]._replace(**{"close" if t == 115 else "volume": math.nan}))
            nan_close = nan_volume = 1
        if t == 120:  # a late spot changed the last bar of SZ300750: amended, and the truth with it
            deliver(rows)
            changed = frames["SZ300750"].copy()
            changed.iloc[t, changed.columns.get_loc("close")] += 0.07
            frames["SZ300750"] = changed
            truth["SZ300750"] = changed.iloc[: t + 1]
            rows = [("SZ300750", hkrt.KType.MIN, label, minute_bar(changed, label, amended=True))]
            amended = 1
        if t == 125:  # a changed bar under an old label, in the middle of a batch
            changed = frames[SYMBOL].copy()
            changed.iloc[118, changed.columns.get_loc("close")] -= 0.05
            frames[SYMBOL] = changed
            truth[SYMBOL] = changed.iloc[: t + 1]
            old = bars.index[118]
            rows.insert(2, (SYMBOL, hkrt.KType.MIN, old, minute_bar(changed, old)))
            late = 1
        if t == 135:  # the next bar published alone first: this batch's is then out of order (the truth is to t + 1)
            truth[SYMBOL] = frames[SYMBOL].iloc[: t + 2]
            ahead = BarClosed(SYMBOL, hkrt.KType.MIN, minute_bar(frames[SYMBOL], bars.index[t + 1]))
            whole.on_bar(ahead)
            single.on_bar(ahead)
            late = 2
        deliver(rows)
        if t == 110:
            deliver(rows)  # the same batch again: duplicates
        if t == 130:  # the set changed between batches, the same way in both
            for indicators in (whole, single):
                indicators.get(SYMBOL, "MIN", "EMA", timeperiod=7)
                assert indicators.remove("SZ000001", "MIN", "SMA", timeperiod=5)
                indicators.get("SH600519", "MIN", "RSI").update(minute_bar(frames["SH600519"], bars.index[t + 1]))
    stats = whole.stats
    assert stats["duplicates"] > 0 and stats["amended"] == amended and stats["out_of_order"] == late
    assert stats["rejected_bars"] > 40 + nan_close + nan_volume  # MAVP's every bar, and more
    assert stats["updates"] > 40 * len(BATCH_SYMBOLS) * len(BATCH_CASES) * 0.9
    # SZ000001's refused bar is in the truth, not fed; SH600519's SMA(110) opened on the way
    assert not same(as_tuple(whole.value("SZ000001", "MIN", "MACD")), batch_rows("MACD", truth["SZ000001"])[-1])
    assert same(as_tuple(whole.value("SH600519", "MIN", "SMA", timeperiod=110)), batch_rows("SMA", truth["SH600519"],
                timeperiod=110)[-1])  # fmt: skip


def test_every_indicator_fed_by_batches_equals_the_batch_bit_for_bit(bars: pd.DataFrame) -> None:
    """Every name (MAVP aside: a bar has no periods) in one set, fed by BarBatches: the batch path's
    values (each indicator taking its handle's value when read) equal the batch's, bit for bit."""
    names = [n for n in indicator_names() if n != "MAVP"]
    want = {n: batch_rows(n, bars) for n in names}
    truth = {"frame": bars.iloc[:WARM]}
    indicators = LiveIndicators(lambda s, k: truth["frame"])
    for name in names:
        indicators.get(SYMBOL, "MIN", name)
    read_at = {WARM, WARM + 1, WARM + 37, len(bars) - 1}  # read now and then: several bars taken between reads
    for i in range(WARM, len(bars)):
        truth["frame"] = bars.iloc[: i + 1]
        indicators.on_batch(
            BarBatch(bar_records([(SYMBOL, hkrt.KType.MIN, bars.index[i], minute_bar(bars, bars.index[i]))]))
        )
        if i in read_at:
            for name in names:
                got = as_tuple(indicators.value(SYMBOL, "MIN", name))
                assert same(got, want[name][i]), (name, i, got, want[name][i])
    assert indicators.stats["updates"] == len(names) * (len(bars) - WARM)
    assert all(i.bars == len(bars) and i.last_label == bars.index[-1] for i in indicators)


def test_through_a_running_bus_a_batch_and_a_single_bar_are_each_counted_once(bars: pd.DataFrame) -> None:
    """The set takes a published BarBatch whole and a published BarClosed alone; a handler
    subscribed after it sees every bar of a batch with the batch already counted."""
    frames = symbol_frames(bars)
    truth = {s: f.iloc[:100] for s, f in frames.items()}
    indicators = LiveIndicators(lambda s, k: truth[s], symbols=BATCH_SYMBOLS[:3], ktypes=["MIN"])
    bus = EventBus()
    indicators.attach(bus)
    seen: list[tuple[str, Any, tuple[float, ...]]] = []

    def after(event: BarClosed) -> None:
        followed = event.symbol in BATCH_SYMBOLS[:3]
        got = as_tuple(indicators.value(event.symbol, "MIN", "MACD")) if followed else ()
        seen.append((event.symbol, event.bar.datetime, got))

    bus.subscribe(BarClosed, after)
    with bus:
        for symbol in BATCH_SYMBOLS[:3]:
            indicators.get(symbol, "MIN", "MACD")
            indicators.get(symbol, "MIN", "SMA", timeperiod=5)
        for t in range(100, 110):
            label = bars.index[t]
            for symbol, frame in frames.items():
                truth[symbol] = frame.iloc[: t + 1]
            rows = [(s, hkrt.KType.MIN, label, minute_bar(frames[s], label)) for s in BATCH_SYMBOLS]
            if t % 3:
                bus.publish(BarBatch(bar_records(rows)))
            else:
                for symbol, _, _, bar in rows:
                    bus.publish(BarClosed(symbol, hkrt.KType.MIN, bar))
            if t == 104:  # the set changed while its indicators advance together: one out, one in
                assert bus.wait_idle(30)
                removed = indicators.get(BATCH_SYMBOLS[0], "MIN", "SMA", timeperiod=5)
                assert indicators.remove(BATCH_SYMBOLS[0], "MIN", "SMA", timeperiod=5)
                ema = indicators.get(BATCH_SYMBOLS[1], "MIN", "EMA", timeperiod=3)
        assert bus.wait_idle(30)
    assert bus.errors == 0
    assert indicators.stats["updates"] == 5 * 3 * 2 + 5 * (3 * 2 - 1 + 1) and indicators.stats["duplicates"] == 0
    assert removed.last_label == bars.index[104] and removed.bars == 105
    assert (
        ema.last_label == bars.index[109]
        and ema.value == hkrt.indicator("EMA", truth[BATCH_SYMBOLS[1]], timeperiod=3).iloc[-1]
    )
    assert len(seen) == 10 * 4  # the other subscriber gets every bar: the set's filter is its own
    for symbol, label, got in seen:
        if got:
            assert same(got, batch_rows("MACD", frames[symbol].loc[:label])[-1]), (symbol, label)
    indicators.detach()
    assert bus.subscriptions(BarBatch) == [] and [s.name for s in bus.subscriptions(BarClosed)] != ["LiveIndicators"]


# ------------------------------------------------------- a Strategy on the simulated market
CASES: list[tuple[str, dict[str, int]]] = [
    ("SMA", {"timeperiod": 20}),
    ("MACD", {}),
    ("RSI", {"timeperiod": 14}),
    ("ATR", {}),
    ("MACD_CN", {}),
    ("KDJ_CN", {}),
    ("BOLL_CN", {}),
]
CODES = ["SH600000", "SZ000001"]


def sim_agent(symbols: int) -> hkrt.SpotAgent:
    """An agent holding the previous simulated day's MIN bars as stored history (preloaded)."""
    previous = hkrt.SpotAgent(["MIN"])
    for snap in SimMarket(PREVIOUS_DAY, SimConfig(symbols=symbols)).day_snapshots():
        previous.ingest(snap)
    previous.close_day(PREVIOUS_DAY)
    agent = hkrt.SpotAgent(["MIN"])
    for code in CODES:
        agent.preload(code, "MIN", previous.kdata(code, "MIN"))
    return agent


@pytest.mark.parametrize("lockstep", [True, False], ids=["lockstep", "agent-ahead"])
def test_strategy_indicator_equals_the_batch_on_its_kdata_at_every_closed_bar(lockstep: bool) -> None:
    """A real SpotAgent fed the simulated market in process, its bus carrying the bars to a
    Strategy.  In ``lockstep`` the feed waits for the callbacks after each snapshot, so the
    agent's forming bar is the one after the bar just delivered; otherwise the agent runs ahead
    of the callbacks, and the values still follow the event order."""
    agent = sim_agent(symbols=10)
    strategy = hkrt.Strategy(CODES, ktypes=["MIN"])
    strategy.agent = agent
    checked: list[tuple[str, dt.datetime]] = []
    formed: list[dt.datetime] = []
    wrong: list[tuple[Any, ...]] = []

    @strategy.on_bar
    def check(symbol: str, ktype: hkrt.KType, bar: Bar) -> None:
        history = strategy.kdata(symbol, ktype, end=bar.datetime)  # bars up to the one just closed are final
        for name, params in CASES:
            got = strategy.indicator(symbol, ktype, name, **params)
            want = batch_rows(name, history, **params)[-1]
            if not same(as_tuple(got), want):
                wrong.append((symbol, bar.datetime, name, got, want))
        if lockstep:  # the forming bar: the agent's last bar, not yet closed
            now = strategy.kdata(symbol, ktype)
            forming = strategy.indicator(symbol, ktype, "SMA", forming=True, timeperiod=20)
            if now.index[-1] > bar.datetime:
                formed.append(bar.datetime)
                if forming != hkrt.indicator("SMA", now, timeperiod=20).iloc[-1]:
                    wrong.append((symbol, bar.datetime, "forming", forming))
            elif forming != strategy.indicator(symbol, ktype, "SMA", timeperiod=20):
                wrong.append((symbol, bar.datetime, "nothing forming", forming))
        checked.append((symbol, bar.datetime))

    strategy.attach(agent.bus)
    agent.bus.start()
    try:
        for snap in SimMarket(DAY, SimConfig(symbols=10)).day_snapshots():
            agent.ingest(snap)
            if lockstep:
                agent.bus.wait_idle()
        agent.close_day(DAY)
        assert agent.bus.wait_idle(30)
    finally:
        agent.bus.stop()
        strategy.detach()
    assert wrong == []
    assert len(checked) == 2 * 240 and agent.bus.errors == 0
    assert len(formed) >= (2 * 200 if lockstep else 0)  # a forming bar after the closed one, most minutes
    live = strategy.live_indicators
    assert live is not None and len(live) == 2 * len(CASES)
    assert live.stats["updates"] >= 2 * 239 * len(CASES) and live.stats["rebuilds"] == 0


def test_strategy_run_on_the_simulated_feed_gives_the_batch_values() -> None:
    """The whole path: ``run_sim`` serves the simulated market over a socket, the strategy's own
    agent aggregates it, its bus carries the bars; the first half hour of the day."""
    from hkrt.strategy import run_sim

    strategy = hkrt.Strategy(CODES, ktypes=["MIN"])
    checked: list[dt.datetime] = []
    wrong: list[tuple[Any, ...]] = []

    @strategy.on_bar
    def check(symbol: str, ktype: hkrt.KType, bar: Bar) -> None:
        history = strategy.kdata(symbol, ktype, end=bar.datetime)
        for name, params in [("MACD_CN", {}), ("RSI", {"timeperiod": 6}), ("KDJ_CN", {})]:
            got = strategy.indicator(symbol, ktype, name, **params)
            if not same(as_tuple(got), batch_rows(name, history, **params)[-1]):
                wrong.append((symbol, bar.datetime, name, got))
        checked.append(bar.datetime)

    report = run_sim(strategy, DAY, symbols=10, speed=2000, handle_signals=False, until="10:00")
    assert report.gaps == 0 and wrong == []
    assert len(checked) >= 2 * 25 and strategy.live_indicators.stats["rebuilds"] == 0


def test_strategy_indicator_needs_an_attached_strategy() -> None:
    strategy = hkrt.Strategy(CODES)
    with pytest.raises(RuntimeError, match="not running"):
        strategy.indicator("SH600000", "MIN", "SMA")


# ------------------------------------------------------- the Chinese variants, by hand
def frame_of(**columns: list[float]) -> pd.DataFrame:
    size = len(next(iter(columns.values())))
    return pd.DataFrame(columns, index=pd.date_range("2026-11-20 09:31", periods=size, freq="min"))


def test_macd_cn_by_hand_doubles_the_histogram() -> None:
    frame = frame_of(close=[10.0, 11.0, 13.0, 12.0, 15.0, 14.0])
    got = hkrt.indicator("MACD_CN", frame, fastperiod=2, slowperiod=3, signalperiod=2)
    # from bar 3 (index 2) on: fast EMA(2) seeded with mean(11, 13) = 12, alpha 2/3; slow EMA(3) seeded with
    # mean(10, 11, 13) = 11.333, alpha 1/2.  Bar 4: fast 12, slow 11.667, DIF 0.333; DEA(2) seeded with the mean
    # of DIF 0.667 and 0.333 = 0.5.  Bar 5: fast 14, slow 13.333, DIF 0.667, DEA 0.5 + 2/3 (0.667 - 0.5) = 0.611.
    # Bar 6: fast 14, slow 13.667, DIF 0.333, DEA 0.611 + 2/3 (0.333 - 0.611) = 0.426.
    dif, dea = [1 / 3, 2 / 3, 1 / 3], [0.5, 11 / 18, 23 / 54]
    np.testing.assert_allclose(got["macd"].iloc[3:], dif, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["macdsignal"].iloc[3:], dea, rtol=0, atol=1e-12)
    hist = [2 * (a - b) for a, b in zip(dif, dea, strict=True)]  # -0.333, 0.111, -0.185: twice TA-Lib's
    np.testing.assert_allclose(got["macdhist"].iloc[3:], hist, rtol=0, atol=1e-12)
    assert got["macd"].iloc[:3].isna().all()


def test_kdj_cn_by_hand_seeded_with_the_first_rsv() -> None:
    # N = 3, M1 = M2 = 3.  HHV/LLV over the bars there are while fewer than N.
    frame = frame_of(high=[10.0, 11.0, 12.0, 11.0, 10.0], low=[8.0, 9.0, 10.0, 9.0, 9.0],
                     close=[9.0, 10.0, 11.0, 10.0, 9.5])  # fmt: skip
    got = hkrt.indicator("KDJ_CN", frame, fastk_period=3)
    # RSV: (9-8)/(10-8)=50; (10-8)/(11-8)=66.67; (11-8)/(12-8)=75; (10-9)/(12-9)=33.33; (9.5-9)/(12-9)=16.67
    rsv = [50.0, 200 / 3, 75.0, 100 / 3, 50 / 3]
    k, d = [rsv[0]], [rsv[0]]  # Tongdaxin's SMA starts at its first input: K0 = RSV0, D0 = K0
    for x in rsv[1:]:
        k.append((x + 2 * k[-1]) / 3)  # SMA(RSV, 3, 1) = (1*RSV + (3-1)*K') / 3
        d.append((k[-1] + 2 * d[-1]) / 3)
    np.testing.assert_allclose(got["k"], k, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["d"], d, rtol=0, atol=1e-12)
    np.testing.assert_allclose(got["j"], [3 * a - 2 * b for a, b in zip(k, d, strict=True)], rtol=0, atol=1e-12)
    assert got["k"].round(4).tolist() == [50.0, 55.5556, 62.037, 52.4691, 40.535]
    # a bar whose window has no range (HHV = LLV) has no RSV: K and D stay
    flat = frame_of(high=[10.0, 10.0, 12.0], low=[10.0, 10.0, 10.0], close=[10.0, 10.0, 11.0])
    kdj = hkrt.indicator("KDJ_CN", flat, fastk_period=1)
    assert kdj["k"].isna().tolist() == [True, True, False] and kdj["k"].iloc[-1] == 50.0


def test_kdj_cn_meets_ta_libs_kdj_once_the_seed_is_forgotten(bars: pd.DataFrame) -> None:
    cn, ta = hkrt.indicator("KDJ_CN", bars), hkrt.indicator("KDJ", bars)
    # TA-Lib's first value is on bar 13 (look-back 9 - 1 + 3 - 1 + 3 - 1), seeded with means; Tongdaxin's on bar 1
    assert ta["k"].iloc[:12].isna().all() and ta["k"].iloc[12:].notna().all() and cn["k"].notna().all()
    gap = (cn - ta).abs()
    assert gap["k"].iloc[12] > 1e-2 and gap.iloc[-120:].max().max() < 1e-9


def test_boll_cn_by_hand_uses_the_sample_standard_deviation() -> None:
    frame = frame_of(close=[1.0, 2.0, 3.0, 4.0, 5.0])
    got = hkrt.indicator("BOLL_CN", frame, timeperiod=5).iloc[-1]
    # mean 3; squared deviations 4+1+0+1+4 = 10; sample variance 10/4 = 2.5, std 1.5811388
    assert got["middleband"] == pytest.approx(3.0, abs=1e-12)
    assert got["upperband"] == pytest.approx(3 + 2 * math.sqrt(2.5), abs=1e-12)  # 6.1622777
    assert got["lowerband"] == pytest.approx(3 - 2 * math.sqrt(2.5), abs=1e-12)
    ta = hkrt.indicator("BBANDS", frame, timeperiod=5).iloc[-1]  # population: 10/5 = 2, std 1.4142136
    assert ta["upperband"] == pytest.approx(3 + 2 * math.sqrt(2.0), abs=1e-12)


def test_boll_cn_is_wider_than_bbands_by_the_sample_factor(bars: pd.DataFrame) -> None:
    cn, ta = hkrt.indicator("BOLL_CN", bars), hkrt.indicator("BBANDS", bars)
    pd.testing.assert_series_equal(cn["middleband"], ta["middleband"])
    width = (cn["upperband"] - cn["middleband"]) / (ta["upperband"] - ta["middleband"])
    np.testing.assert_allclose(width.dropna(), math.sqrt(20 / 19), rtol=1e-9)  # 1.0259784
    std = bars["close"].rolling(20).std(ddof=1)  # pandas' sample deviation, computed apart
    np.testing.assert_allclose((cn["upperband"] - cn["middleband"]).dropna(), 2 * std.dropna(), rtol=1e-7)
