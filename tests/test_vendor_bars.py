"""Bars as the vendors print them (issue 12): every new aggregation rule against bars worked out by hand.

The expected values here were computed by hand from the rules, never by running the engine. Units: volume
in shares, amount in yuan, times China local. Sections follow the rules: boundary (t-n, t], lunch grace,
closing auction stamped late, after-hours, completion of the close, gap volume, the lost amendment, the
`filled` / `amended` flags, period labels by last trading day, and preloaded history of the current period.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pandas as pd
import pytest

import hkrt
from conftest import SYMBOL, at, spot
from hkrt import KType

MON, TUE, WED, THU, FRI = (dt.date(2026, 11, d) for d in range(16, 21))  # an ordinary week
NEXT_MON = dt.date(2026, 11, 23)
INTRADAY = ("MIN", "MIN3", "MIN5", "MIN15", "MIN30", "MIN60", "HOUR2")
FIELDS = ["open", "high", "low", "close", "volume", "amount"]


def rows(agent: hkrt.SpotAgent, ktype: str, day: dt.date | None = None) -> dict[str, tuple]:
    """Bars as {label: (open, high, low, close, volume, amount)}; intraday labels "HH:MM" of `day`,
    DAY and longer labels "YYYY-MM-DD"."""
    frame = agent.kdata(SYMBOL, ktype)
    out = {}
    for ts, values in zip(frame.index, frame[FIELDS].itertuples(index=False, name=None), strict=True):
        if ts.hour or ts.minute:
            if day is None or ts.date() == day:
                out[ts.strftime("%H:%M")] = tuple(values)
        else:
            out[ts.strftime("%Y-%m-%d")] = tuple(values)
    return out


def labels_of(records) -> list[tuple[str, str, float]]:
    """Completed-bar records as (ktype, label, volume); label "MM-DD HH:MM" or "YYYY-MM-DD"."""
    names = [k.value for k in KType]
    out = []
    for rec in records:
        ts = pd.Timestamp(rec["datetime"])
        label = ts.strftime("%m-%d %H:%M") if ts.hour or ts.minute else ts.strftime("%Y-%m-%d")
        out.append((names[int(rec["ktype"])], label, float(rec["volume"])))
    return out


def collecting_agent(ktypes=None) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent(ktypes)
    agent._engine.collect_completed = True  # completed bars stay in the engine for take_completed()
    return agent


def taken(agent: hkrt.SpotAgent) -> list[tuple[str, str, float]]:
    return labels_of(agent._engine.take_completed())


# --------------------------------------------------------------------------------------------------
# Boundary (t-n, t]: cumulative totals at T cover trades up to T, so the spot closes the bar ending at T.


@pytest.mark.parametrize(
    ("stamp", "ktype", "label"),
    [
        ("09:30:00.000", "MIN", "09:31"),  # the open instant belongs to the first minute
        ("09:31:00.000", "MIN", "09:31"),  # today: 09:32
        ("09:31:00.001", "MIN", "09:32"),
        ("09:35:00.000", "MIN5", "09:35"),  # today: 09:40
        ("10:30:00.000", "MIN", "10:30"),
        ("10:30:00.000", "MIN60", "10:30"),  # today: 11:30
        ("10:30:00.001", "MIN60", "11:30"),
        ("11:30:00.000", "MIN", "11:30"),
        ("11:30:00.000", "HOUR2", "11:30"),
        ("13:00:00.000", "MIN", "13:01"),  # the afternoon's open instant: its first minute
        ("13:01:00.000", "MIN", "13:01"),  # today: 13:02
        ("14:00:00.000", "MIN60", "14:00"),  # today: 15:00
        ("14:59:00.000", "MIN", "14:59"),  # today: 15:00
        ("15:00:00.000", "MIN", "15:00"),
    ],
)
def test_a_spot_lands_in_the_bar_that_ends_at_or_after_its_stamp(stamp: str, ktype: str, label: str) -> None:
    agent = hkrt.SpotAgent([ktype])
    assert agent.ingest(spot(stamp, 10.3, 100, 1_030)) == 1
    frame = agent.kdata(SYMBOL, ktype)
    assert frame.index[-1] == at(label + ":00")
    assert frame.close.iloc[-1] == 10.3


def test_cumulative_totals_stamped_on_the_minute_close_that_minute() -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    agent.ingest(
        [
            spot("09:30:10", 10.0, 100, 1_000),
            spot("09:31:00.000", 10.1, 300, 3_020),  # covers trades up to 09:31:00: the 09:31 bar
            spot("09:31:00.001", 10.2, 400, 4_040),
            spot("09:32:00.000", 10.0, 600, 6_040, high=10.2),
        ]
    )
    assert rows(agent, "MIN", FRI) == {
        # day open; the day high rose 10.0 -> 10.1 with the second spot (new-extreme rule)
        "09:31": (10.0, 10.1, 10.0, 10.1, 300, 3_020),
        "09:32": (10.2, 10.2, 10.0, 10.0, 300, 3_020),
    }
    assert rows(agent, "DAY")["2026-11-20"] == (10.0, 10.2, 10.0, 10.0, 600, 6_040)


@pytest.mark.parametrize(
    ("stamp", "carry", "label", "bar_volume"),
    [
        ("09:31:00.000", 0, "09:31", 100),  # still the first minute: nothing was missed
        ("09:31:00.001", 100, "09:32", 0),  # a late start: the 100 shares are carry-in
    ],
)
def test_the_first_minute_ends_at_0931_inclusive_for_carry_in(
    stamp: str, carry: float, label: str, bar_volume: float
) -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    agent.ingest(spot(stamp, 10.0, 100, 1_000))
    assert agent.carry_in(SYMBOL) == (FRI, carry, carry * 10)
    assert rows(agent, "MIN", FRI) == {label: (10.0, 10.0, 10.0, 10.0, bar_volume, bar_volume * 10)}


# --------------------------------------------------------------------------------------------------
# Lunch grace (unchanged): (11:30:00, 11:30:30.000] joins the 11:30 bar; later before 13:00 is rejected.


@pytest.mark.parametrize(
    ("stamp", "label"),
    [
        ("09:14:59.999", None),
        ("09:15:00.000", "09:31"),
        ("11:30:00.001", "11:30"),
        ("11:30:30.000", "11:30"),
        ("11:30:30.001", None),
        ("12:59:59.999", None),
    ],
)
def test_lunch_grace_and_the_auction_start(stamp: str, label: str | None) -> None:
    agent = hkrt.SpotAgent(["MIN"])
    accepted = agent.ingest(spot(stamp, 10.0, 100, 1_000))
    if label is None:
        assert accepted == 0 and agent.stats()["rejected"]["outside_session"] == 1
        assert agent.kdata(SYMBOL, "MIN").empty
    else:
        assert accepted == 1 and agent.kdata(SYMBOL, "MIN").index[-1] == at(label + ":00")


def test_the_lunch_break_is_not_a_gap_but_a_missed_last_morning_minute_is() -> None:
    joined = hkrt.SpotAgent(["MIN", "DAY"])
    joined.ingest(
        [
            spot("11:29:50", 10.0, 1_000, 10_000),  # a late start: carry-in 1000
            spot("11:30:20", 10.1, 1_200, 12_020),  # grace: the 11:30 bar
            spot("13:00:10", 10.2, 1_500, 15_080),  # minute 120 follows minute 119: no gap
        ]
    )
    assert rows(joined, "MIN", FRI) == {
        "11:30": (10.0, 10.1, 10.0, 10.1, 200, 2_020),
        "13:01": (10.2, 10.2, 10.2, 10.2, 300, 3_060),
    }
    assert joined.gap_volume(SYMBOL) == (FRI, 0.0, 0.0, 0)


# --------------------------------------------------------------------------------------------------
# Closing call auction stamped late: (15:00:00, 15:05:00) counts in the 15:00 bar of every period and DAY.

CLOSE_A = dict(open=10.0, high=10.2, low=9.8)


def closing_day(late_stamp: str = "15:02:10") -> list[hkrt.Spot]:
    return [
        spot("14:59:50", 10.0, 1_000_000, 10_000_000, **CLOSE_A),  # a late start: carry-in
        spot(late_stamp, 10.1, 1_060_000, 10_606_000, **CLOSE_A),  # the closing call: 60,000 at 10.1
    ]


@pytest.mark.parametrize("late_stamp", ["15:00:30.001", "15:02:10", "15:04:59.999"])
def test_a_late_stamped_close_counts_in_every_1500_bar_and_in_day(late_stamp: str) -> None:
    agent = hkrt.SpotAgent()
    assert agent.ingest(closing_day(late_stamp)) == 2
    assert agent.stats()["rejected"]["outside_session"] == 0
    for ktype in INTRADAY:
        # opens at its first sampled price: the carry-in's day high/low were made before the agent started
        assert rows(agent, ktype, FRI) == {"15:00": (10.0, 10.1, 10.0, 10.1, 60_000, 606_000)}, ktype
    assert rows(agent, "DAY") == {"2026-11-20": (10.0, 10.2, 9.8, 10.1, 1_060_000, 10_606_000)}
    assert agent.carry_in(SYMBOL) == (FRI, 1_000_000, 10_000_000)


# --------------------------------------------------------------------------------------------------
# After-hours fixed-price trading (15:05 on): accepted, in no bar and not in DAY, reported per symbol-day.


def test_after_hours_volume_stays_out_of_bars_and_day_and_is_reported() -> None:
    agent = hkrt.SpotAgent()
    assert agent.after_hours(SYMBOL) is None
    assert agent.gap_volume(SYMBOL) is None
    agent.ingest(closing_day())
    assert agent.after_hours(SYMBOL) == (FRI, 0.0, 0.0)
    after = [
        spot("15:05:00.000", 10.1, 1_070_000, 10_707_000, **CLOSE_A),  # 10,000 at the close price
        spot("15:30:00", 10.15, 1_090_000, 10_909_000, **CLOSE_A),  # 20,000 more; an odd last price
    ]
    assert agent.ingest(after) == 2
    assert agent.stats()["accepted"] == 4
    for ktype in INTRADAY:
        assert rows(agent, ktype, FRI) == {"15:00": (10.0, 10.1, 10.0, 10.1, 60_000, 606_000)}, ktype
    assert rows(agent, "DAY") == {"2026-11-20": (10.0, 10.2, 9.8, 10.1, 1_060_000, 10_606_000)}
    assert rows(agent, "WEEK") == {"2026-11-20": (10.0, 10.2, 9.8, 10.1, 1_060_000, 10_606_000)}
    report = agent.after_hours(SYMBOL)
    assert type(report).__name__ == "AfterHours" and report._fields == ("day", "volume", "amount")
    assert report == (FRI, 30_000.0, 303_000.0)
    assert agent.stats()["after_hours"] == 1
    agent.advance_to(dt.datetime.combine(FRI, dt.time(23, 0)))
    assert rows(agent, "DAY")["2026-11-20"][4] == 1_060_000
    # The next trading day starts over; the counter keeps the symbol-day it counted.
    agent.ingest(spot("09:30:10", 10.2, 500, 5_100, day=NEXT_MON))
    assert agent.after_hours(SYMBOL) == (NEXT_MON, 0.0, 0.0)
    assert agent.stats()["after_hours"] == 1


def test_a_day_first_seen_after_1505_is_all_carry_in() -> None:
    agent = hkrt.SpotAgent()
    assert agent.ingest(spot("15:20:00", 10.1, 1_090_000, 10_909_000, **CLOSE_A)) == 1
    assert rows(agent, "DAY") == {"2026-11-20": (10.0, 10.2, 9.8, 10.1, 1_090_000, 10_909_000)}
    assert agent.carry_in(SYMBOL) == (FRI, 1_090_000, 10_909_000)
    assert agent.after_hours(SYMBOL) == (FRI, 0.0, 0.0)
    assert agent.stats()["after_hours"] == 0
    for ktype in INTRADAY:
        assert agent.kdata(SYMBOL, ktype).volume.sum() == 0, ktype


# --------------------------------------------------------------------------------------------------
# Completion: the 15:00 bars and DAY complete at advance_to(>= 15:05) or a later day's spot; 11:30 after 11:30:30.


def test_the_close_completes_at_1505_and_the_noon_bars_after_their_grace() -> None:
    agent = collecting_agent()
    agent.ingest([spot("09:30:10", 10.0, 100, 1_000), spot("11:30:10", 10.1, 300, 3_020)])
    reported = taken(agent)
    agent.advance_to(at("11:30:30.000"))  # a grace spot stamped 11:30:30.000 may still come
    reported += taken(agent)
    assert not {(k, lbl) for k, lbl, _ in reported if lbl == "11-20 11:30"}
    agent.advance_to(at("11:30:31"))
    noon = taken(agent)
    assert {(k, lbl) for k, lbl, _ in noon if lbl == "11-20 11:30"} == {(k, "11-20 11:30") for k in INTRADAY}
    reported += noon

    agent.ingest(spot("14:59:50", 10.2, 500, 5_060, high=10.2))
    agent.advance_to(at("15:00:31"))  # today the close completes here
    agent.advance_to(at("15:04:59.999"))
    before = taken(agent)
    assert not [r for r in before if r[1] in ("11-20 15:00", "2026-11-20")]
    reported += before

    assert agent.ingest(spot("15:03:00", 10.3, 560, 5_678, high=10.3)) == 1  # the closing call, stamped late
    agent.advance_to(at("15:05:00.000"))
    close = taken(agent)
    reported += close
    finished = {(k, lbl): v for k, lbl, v in close if lbl in ("11-20 15:00", "2026-11-20")}
    assert finished == {
        # 14:59:50 came after a gap (its 200 shares are gap volume); the late 15:03 spot adds 60
        **{(k, "11-20 15:00"): 60.0 for k in INTRADAY},
        ("DAY", "2026-11-20"): 560.0,
        ("WEEK", "2026-11-20"): 560.0,  # Friday is the week's last trading day
    }
    assert not [r for r in close if r[0] in ("MONTH", "QUARTER", "HALFYEAR", "YEAR")]  # November goes on
    minutes = [lbl for k, lbl, _ in reported if k == "MIN"]
    assert len(minutes) == 240 and len(set(minutes)) == 240  # each minute reported once, flat fills included


def test_a_later_days_spot_completes_the_day() -> None:
    agent = collecting_agent()
    agent.ingest(spot("14:59:50", 10.0, 100, 1_000, day=WED))
    assert not [r for r in taken(agent) if r[1] in ("11-18 15:00", "2026-11-18")]
    agent.ingest(spot("09:25:00", 10.1, 50, 505, day=THU))
    done = {(k, lbl) for k, lbl, _ in taken(agent)}
    assert {("MIN", "11-18 15:00"), ("MIN60", "11-18 15:00"), ("HOUR2", "11-18 15:00"), ("DAY", "2026-11-18")} <= done
    assert not [k for k, _ in done if k in ("WEEK", "MONTH")]  # the week and month go on


# --------------------------------------------------------------------------------------------------
# Gap volume: the rise across a feed gap of a whole trading minute or more is in DAY and in no intraday bar.


def test_a_pre_open_spot_then_a_feed_gap_keeps_the_morning_out_of_intraday_bars() -> None:
    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
    agent.ingest(spot("09:20:00", 10.0, 0, 0))  # indicative price, nothing traded
    agent.ingest(spot("10:40:10", 10.5, 50_000, 520_000, high=10.8, low=9.9))
    assert agent.carry_in(SYMBOL) == (FRI, 0.0, 0.0)  # the day's first spot was in the first minute
    report = agent.gap_volume(SYMBOL)
    assert type(report).__name__ == "GapVolume" and report._fields == ("day", "volume", "amount", "gaps")
    assert report == (FRI, 50_000.0, 520_000.0, 1)
    assert rows(agent, "MIN", FRI)["10:41"] == (10.5, 10.5, 10.5, 10.5, 0, 0)
    assert agent.kdata(SYMBOL, "MIN").volume.sum() == 0

    agent.ingest(spot("10:40:40", 10.6, 50_300, 523_180, high=10.8, low=9.9))
    assert rows(agent, "MIN", FRI)["10:41"] == (10.5, 10.6, 10.5, 10.6, 300, 3_180)
    assert rows(agent, "MIN5", FRI)["10:45"] == (10.5, 10.6, 10.5, 10.6, 300, 3_180)
    assert rows(agent, "DAY") == {"2026-11-20": (10.0, 10.8, 9.9, 10.6, 50_300, 523_180)}

    # 10.8 / 9.9 were made during the gap: only a higher high reaches a bar.
    agent.ingest(spot("10:41:20", 10.7, 50_500, 525_320, high=10.9, low=9.9))
    assert rows(agent, "MIN", FRI)["10:42"] == (10.7, 10.9, 10.7, 10.7, 200, 2_140)
    assert agent.gap_volume(SYMBOL) == (FRI, 50_000.0, 520_000.0, 1)
    assert agent.stats()["gap_volume"] == 1
    assert agent.kdata(SYMBOL, "MIN").volume.sum() == 50_500 - 0 - 50_000


def test_a_late_first_zero_volume_spot_then_a_gap_is_gap_volume() -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    agent.ingest(spot("09:35:00", 10.0, 0, 0))  # minute (09:34, 09:35]
    agent.ingest(spot("09:40:10", 10.2, 500, 5_050, high=10.3, low=9.9))  # minute (09:40, 09:41]
    assert agent.carry_in(SYMBOL) == (FRI, 0.0, 0.0)
    assert agent.gap_volume(SYMBOL) == (FRI, 500.0, 5_050.0, 1)
    assert rows(agent, "MIN", FRI)["09:41"] == (10.2, 10.2, 10.2, 10.2, 0, 0)
    assert rows(agent, "DAY") == {"2026-11-20": (10.0, 10.3, 9.9, 10.2, 500, 5_050)}


def test_a_mid_morning_feed_gap() -> None:
    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
    agent.ingest(
        [
            spot("09:30:10", 10.0, 1_000, 10_000),
            spot("09:31:30", 10.1, 1_500, 15_050),  # next minute: no gap
            spot("09:40:30", 10.4, 5_500, 56_250, high=10.6, low=9.7),  # minutes 2..9 silent: 4000 is gap volume
            spot("09:40:50", 10.5, 5_600, 57_300, high=10.6, low=9.7),
            spot("09:41:10", 9.6, 5_800, 59_220, high=10.6, low=9.5),  # the day low falls below 9.7
        ]
    )
    mins = rows(agent, "MIN", FRI)
    assert mins["09:31"] == (10.0, 10.0, 10.0, 10.0, 1_000, 10_000)
    assert mins["09:32"] == (10.1, 10.1, 10.1, 10.1, 500, 5_050)
    for label in ("09:33", "09:34", "09:35", "09:36", "09:37", "09:38", "09:39", "09:40"):
        assert mins[label] == (10.1, 10.1, 10.1, 10.1, 0, 0), label
    assert mins["09:41"] == (10.4, 10.5, 10.4, 10.5, 100, 1_050)  # its first spot gave its price only
    assert mins["09:42"] == (9.6, 9.6, 9.5, 9.6, 200, 1_920)
    assert len(mins) == 12
    assert rows(agent, "MIN5", FRI) == {
        "09:35": (10.0, 10.1, 10.0, 10.1, 1_500, 15_050),
        "09:40": (10.1, 10.1, 10.1, 10.1, 0, 0),
        "09:45": (10.4, 10.5, 9.5, 9.6, 300, 2_970),
    }
    assert rows(agent, "DAY") == {"2026-11-20": (10.0, 10.6, 9.5, 9.6, 5_800, 59_220)}
    assert agent.gap_volume(SYMBOL) == (FRI, 4_000.0, 41_200.0, 1)
    assert agent.stats()["gap_volume"] == 1
    assert sum(v[4] for v in mins.values()) == 5_800 - 0 - 4_000


@pytest.mark.parametrize(
    ("first", "second", "gap"),
    [
        ("09:30:10", "09:31:20", False),
        ("09:30:10", "09:32:00.000", False),  # minute (09:31, 09:32] follows (09:30, 09:31]
        ("09:30:10", "09:32:00.001", True),
        ("11:29:50", "13:00:10", False),  # lunch is not trading time
        ("11:30:20", "13:00:10", False),
        ("11:28:50", "13:00:10", True),  # the 11:30 minute passed with no spot
        ("14:57:50", "15:02:00", True),  # the late close counts in minute 15:00; minute 14:59 was silent
        ("14:58:50", "15:02:00", False),
    ],
)
def test_which_silences_are_gaps(first: str, second: str, gap: bool) -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    agent.ingest([spot(first, 10.0, 1_000, 10_000), spot(second, 10.2, 1_500, 15_100)])
    assert agent.gap_volume(SYMBOL) == ((FRI, 500.0, 5_100.0, 1) if gap else (FRI, 0.0, 0.0, 0))
    last = agent.kdata(SYMBOL, "MIN").iloc[-1]
    assert (last.close, last.volume, last.amount) == ((10.2, 0, 0) if gap else (10.2, 500, 5_100))
    assert agent.kdata(SYMBOL, "DAY").volume.iloc[-1] == 1_500


def test_gaps_are_counted_per_day_and_reset_the_next_day() -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    agent.ingest(
        [
            spot("09:30:10", 10.0, 100, 1_000),
            spot("10:00:10", 10.1, 300, 3_020),  # gap 1: 200 shares
            spot("10:00:30", 10.1, 350, 3_525),
            spot("10:30:10", 10.1, 600, 6_050),  # gap 2: 250 shares
        ]
    )
    assert agent.gap_volume(SYMBOL) == (FRI, 450.0, 4_545.0, 2)
    mins = agent.kdata(SYMBOL, "MIN")
    assert (mins.volume.sum(), mins.amount.sum()) == (600 - 450, 6_050 - 4_545)
    agent.ingest(spot("09:30:10", 10.1, 100, 1_010, day=NEXT_MON))
    assert agent.gap_volume(SYMBOL) == (NEXT_MON, 0.0, 0.0, 0)
    assert agent.stats()["gap_volume"] == 1  # symbol-days with gap volume


# --------------------------------------------------------------------------------------------------
# The lost amendment: a straggler after the close window, then the next day's first spot, before any read.


def straggler_days(agent: hkrt.SpotAgent) -> None:
    assert agent.ingest(spot("14:00:00", 10.0, 1_000, 10_000, day=WED)) == 1  # a late start: carry-in 1000
    agent.advance_to(dt.datetime.combine(WED, dt.time(15, 6)))  # past the close window: Wednesday complete
    assert agent.ingest(spot("14:00:40", 10.2, 1_500, 15_100, day=WED)) == 1  # straggler; next minute, no gap
    assert agent.ingest(spot("09:30:10", 10.3, 200, 2_060, day=THU)) == 1


def test_a_straggler_after_the_close_reaches_day_and_every_longer_period() -> None:
    agent = hkrt.SpotAgent()
    straggler_days(agent)  # no read in between
    assert rows(agent, "DAY") == {
        "2026-11-18": (10.0, 10.2, 10.0, 10.2, 1_500, 15_100),
        "2026-11-19": (10.0, 10.3, 10.0, 10.3, 200, 2_060),
    }
    mins = rows(agent, "MIN", WED)
    assert mins["14:00"][4:] == (0, 0)  # carry-in
    assert (mins["14:01"][1], mins["14:01"][3:]) == (10.2, (10.2, 500, 5_100))
    assert mins["15:00"] == (10.2, 10.2, 10.2, 10.2, 0, 0)  # re-flattened at the straggler's price
    min60 = rows(agent, "MIN60", WED)
    assert min60["14:00"][4:] == (0, 0)
    assert min60["15:00"][4:] == (500, 5_100)
    assert rows(agent, "HOUR2", WED)["15:00"][4:] == (500, 5_100)
    week = (10.0, 10.3, 10.0, 10.3, 1_700, 17_160)
    assert rows(agent, "WEEK") == {"2026-11-20": week}
    assert rows(agent, "MONTH") == {"2026-11-30": week}
    assert rows(agent, "QUARTER") == rows(agent, "HALFYEAR") == rows(agent, "YEAR") == {"2026-12-31": week}


# --------------------------------------------------------------------------------------------------
# `filled` in kdata and in Bar; a reported bar a straggler changes is reported again with amended=True.


def test_kdata_marks_exactly_the_bars_no_spot_landed_in() -> None:
    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
    agent.ingest([spot("09:30:10", 10.0, 100, 1_000), spot("09:31:30", 10.1, 200, 2_010)])
    agent.advance_to(at("09:34:30"))
    agent.ingest(spot("09:34:40", 10.2, 300, 3_030))  # after a gap: a spot landed, with +0 volume
    mins = agent.kdata(SYMBOL, "MIN")
    assert mins["filled"].dtype == bool
    assert dict(zip(mins.index.strftime("%H:%M"), mins["filled"], strict=True)) == {
        "09:31": False,
        "09:32": False,
        "09:33": True,
        "09:34": True,
        "09:35": False,
    }
    assert (mins.loc[at("09:35:00"), "volume"], mins.loc[at("09:35:00"), "close"]) == (0, 10.2)
    agent.advance_to(at("09:45:30"))
    mins = agent.kdata(SYMBOL, "MIN")
    assert mins.loc[at("09:36:00") : at("09:45:00"), "filled"].tolist() == [True] * 10
    five = agent.kdata(SYMBOL, "MIN5")
    assert dict(zip(five.index.strftime("%H:%M"), five["filled"], strict=True)) == {
        "09:35": False,
        "09:40": True,
        "09:45": True,
    }
    assert not agent.kdata(SYMBOL, "DAY")["filled"].any()


def test_bar_has_filled_and_amended_flags_that_default_to_false() -> None:
    when = dt.datetime(2026, 11, 20, 9, 31)
    bar = hkrt.Bar(when, 10.0, 10.0, 10.0, 10.0, 0.0, 0.0)
    assert (bar.filled, bar.amended) == (False, False)
    assert hkrt.Bar(when, 10.0, 10.0, 10.0, 10.0, 0.0, 0.0, filled=True, amended=True)[-2:] == (True, True)
    assert hkrt.Bar._fields[:7] == ("datetime", "open", "high", "low", "close", "volume", "amount")


@pytest.fixture
def ipc_address(tmp_path: Path) -> str:
    return f"ipc://{tmp_path / 'feed.ipc'}"


def test_on_bar_gets_filled_bars_and_again_each_bar_a_straggler_amends(ipc_address: str) -> None:
    agent = hkrt.SpotAgent(["MIN", "MIN60", "DAY"])
    reports: dict[tuple[str, dt.datetime], list[hkrt.Bar]] = {}
    lock = threading.Lock()

    @agent.on_bar(symbols=[SYMBOL])
    def record(symbol: str, ktype: KType, bar: hkrt.Bar) -> None:
        with lock:
            reports.setdefault((KType(ktype).value, bar.datetime), []).append(bar)

    agent.start(ipc_address)
    try:
        straggler_days(agent)
        assert agent.wait_idle()
    finally:
        agent.stop()

    def seen(ktype: str, day: dt.date, hhmm: str = "00:00") -> list[hkrt.Bar]:
        return reports[(ktype, dt.datetime.combine(day, dt.time.fromisoformat(hhmm)))]

    for key, bars in reports.items():  # first report plain, every later one amended
        assert not bars[0].amended and all(b.amended for b in bars[1:]), key
    [only] = seen("MIN", WED, "14:00")  # the carry-in minute never changed
    assert (only.volume, only.filled, only.amended) == (0, False, False)
    first, *_, last = seen("MIN", WED, "14:01")
    assert (first.volume, first.close, first.filled) == (0, 10.0, True)
    assert (last.volume, last.amount, last.close, last.high, last.filled) == (500, 5_100, 10.2, 10.2, False)
    first, *_, last = seen("MIN", WED, "15:00")
    assert (first.close, first.filled) == (10.0, True)
    assert (last.close, last.volume, last.filled, last.amended) == (10.2, 0, True, True)
    first, *_, last = seen("MIN60", WED, "15:00")
    assert (first.volume, first.filled, last.volume, last.amount, last.filled) == (0, True, 500, 5_100, False)
    first, *_, last = seen("DAY", WED)
    assert (first.volume, first.amended) == (1_000, False)
    assert (last.volume, last.amount, last.close, last.amended, last.filled) == (1_500, 15_100, 10.2, True, False)


# --------------------------------------------------------------------------------------------------
# WEEK ... YEAR labelled by the period's last trading day (holidays 2026: 06-19, 09-25, 10-01..10-07).


def one_spot_a_day(agent: hkrt.SpotAgent, day: dt.date, price: float, volume: float) -> None:
    p = dict(open=price, high=price, low=price)
    assert agent.ingest(spot("10:00:00", price, volume, volume * price, day=day, **p)) == 1


def test_long_periods_are_labelled_by_their_last_trading_day() -> None:
    agent = hkrt.SpotAgent(["DAY", "WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR"])
    one_spot_a_day(agent, dt.date(2026, 9, 23), 9.0, 50)  # Wed; Thu 24 trades, Fri 25 is a holiday
    one_spot_a_day(agent, dt.date(2026, 9, 29), 10.0, 100)  # Tue; Thu 10-01 and Fri 10-02 are holidays
    # The label is known in advance: a read before Wednesday trades already shows 09-30.
    assert list(rows(agent, "WEEK")) == ["2026-09-24", "2026-09-30"]
    one_spot_a_day(agent, dt.date(2026, 9, 30), 11.0, 200)
    one_spot_a_day(agent, dt.date(2026, 10, 8), 12.0, 300)  # Thu after the National Day week (10-05..07 shut)
    assert rows(agent, "WEEK") == {
        "2026-09-24": (9.0, 9.0, 9.0, 9.0, 50, 450),
        "2026-09-30": (10.0, 11.0, 10.0, 11.0, 300, 3_200),
        "2026-10-09": (12.0, 12.0, 12.0, 12.0, 300, 3_600),
    }
    september = (9.0, 11.0, 9.0, 11.0, 350, 3_650)
    october = (12.0, 12.0, 12.0, 12.0, 300, 3_600)
    assert rows(agent, "MONTH") == {"2026-09-30": september, "2026-10-30": october}  # Oct 31 is a Saturday
    assert rows(agent, "QUARTER") == {"2026-09-30": september, "2026-12-31": october}
    year = (9.0, 12.0, 9.0, 12.0, 650, 7_250)
    assert rows(agent, "HALFYEAR") == {"2026-12-31": year}  # Thu 12-31 trades
    assert rows(agent, "YEAR") == {"2026-12-31": year}


def test_first_half_and_an_ordinary_november_week() -> None:
    agent = hkrt.SpotAgent(["DAY", "WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR"])
    one_spot_a_day(agent, dt.date(2026, 5, 29), 8.0, 100)  # Fri; May 30/31 are a weekend
    one_spot_a_day(agent, dt.date(2026, 6, 18), 9.0, 100)  # Thu; Fri 06-19 is the Dragon Boat holiday
    one_spot_a_day(agent, FRI, 10.0, 100)
    assert list(rows(agent, "WEEK")) == ["2026-05-29", "2026-06-18", "2026-11-20"]
    assert list(rows(agent, "MONTH")) == ["2026-05-29", "2026-06-30", "2026-11-30"]
    assert list(rows(agent, "QUARTER")) == ["2026-06-30", "2026-12-31"]
    assert rows(agent, "HALFYEAR") == {
        "2026-06-30": (8.0, 9.0, 8.0, 9.0, 200, 1_700),
        "2026-12-31": (10.0, 10.0, 10.0, 10.0, 100, 1_000),
    }
    assert list(rows(agent, "YEAR")) == ["2026-12-31"]


# --------------------------------------------------------------------------------------------------
# Preloaded vendor history of the current period merges with the live bar of that period.


def history(*bars: tuple) -> pd.DataFrame:
    frame = pd.DataFrame([b[1:] for b in bars], columns=FIELDS)
    frame.index = pd.DatetimeIndex([pd.Timestamp(b[0]) for b in bars], name="datetime")
    return frame


THURSDAY = dict(day=THU, open=9.6, high=10.0, low=9.4)


def test_a_preloaded_week_and_month_so_far_continue_without_their_day_bars() -> None:
    agent = hkrt.SpotAgent(["DAY", "WEEK", "MONTH"])
    agent.preload(
        SYMBOL,
        "WEEK",
        history(("2026-11-13", 8.5, 9.1, 8.4, 9.0, 5_000, 45_000), ("2026-11-18", 9.0, 9.8, 8.8, 9.5, 3_000, 28_000)),
    )
    agent.preload(
        SYMBOL,
        "MONTH",
        history(
            ("2026-10-30", 8.0, 9.0, 7.9, 8.6, 40_000, 330_000), ("2026-11-18", 8.6, 9.8, 8.4, 9.5, 20_000, 180_000)
        ),
    )
    agent.ingest(spot("10:00:00", 9.9, 400, 3_920, **THURSDAY))
    assert rows(agent, "DAY") == {"2026-11-19": (9.6, 10.0, 9.4, 9.9, 400, 3_920)}
    assert rows(agent, "WEEK") == {
        "2026-11-13": (8.5, 9.1, 8.4, 9.0, 5_000, 45_000),
        "2026-11-20": (9.0, 10.0, 8.8, 9.9, 3_400, 31_920),  # Mon-Wed as the vendor gave them + Thursday
    }
    assert rows(agent, "MONTH") == {
        "2026-10-30": (8.0, 9.0, 7.9, 8.6, 40_000, 330_000),
        "2026-11-30": (8.6, 10.0, 8.4, 9.9, 20_400, 183_920),
    }
    # More of Thursday after a read, then Friday: the preloaded part is counted once.
    agent.ingest(spot("10:00:20", 9.9, 500, 4_910, **THURSDAY))
    agent.ingest(spot("10:00:00", 10.0, 100, 1_000, day=FRI))
    assert rows(agent, "WEEK")["2026-11-20"] == (9.0, 10.0, 8.8, 10.0, 3_600, 33_910)
    assert rows(agent, "MONTH")["2026-11-30"] == (8.6, 10.0, 8.4, 10.0, 20_600, 185_910)
    assert list(rows(agent, "WEEK")) == ["2026-11-13", "2026-11-20"]


@pytest.mark.parametrize("week_first", [True, False])
def test_a_preloaded_week_with_its_day_bars_is_the_aggregate_of_the_days(week_first: bool) -> None:
    agent = hkrt.SpotAgent(["DAY", "WEEK"])
    days = history(
        ("2026-11-16", 9.0, 9.5, 8.8, 9.3, 1_000, 9_300),
        ("2026-11-17", 9.3, 9.8, 9.2, 9.6, 1_200, 11_500),
        ("2026-11-18", 9.6, 9.7, 9.0, 9.5, 800, 7_600),
    )
    week = history(("2026-11-18", 9.0, 9.8, 8.8, 9.5, 3_000, 28_400))  # the vendor's week so far, same days
    for ktype, frame in [("WEEK", week), ("DAY", days)][:: 1 if week_first else -1]:
        agent.preload(SYMBOL, ktype, frame)
    agent.ingest(spot("10:00:00", 9.9, 400, 3_920, **THURSDAY))
    assert rows(agent, "WEEK") == {"2026-11-20": (9.0, 10.0, 8.8, 9.9, 3_400, 32_320)}
    assert list(rows(agent, "DAY")) == ["2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19"]
