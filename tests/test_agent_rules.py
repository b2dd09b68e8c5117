"""Every aggregation rule of the engine, checked against hand-computed bars.

Units: volume in shares, amount in yuan.  Times are China local time.  The rules, and the
hand computation behind each expected bar here, are written down in docs/aggregation.md;
the tests mirror its examples section by section.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import hkrt
from conftest import FRIDAY, SYMBOL, at, spot
from hkrt import AfterHours, CarryIn, GapVolume, KType, TradingCalendar

THURSDAY = dt.date(2026, 11, 19)
MONDAY = dt.date(2026, 11, 23)
STAR = "SH688001"  # a STAR-market stock: after-hours fixed-price trading 15:05-15:30

# The day hikyuu's agent was measured on, in our units (its 万元 x 10,000 and lots x 100):
# each spot as (time, last, day high, day low, cumulative shares, cumulative yuan).
HIKYUU_DAY = [
    ("09:25:00", 10.00, 10.00, 10.00, 5_000, 500_000),
    ("09:30:05", 10.00, 10.00, 10.00, 10_000, 1_000_000),
    ("09:30:40", 10.10, 10.10, 10.00, 15_000, 1_510_000),
    ("09:31:00", 10.00, 10.10, 10.00, 20_000, 2_010_000),
    ("09:35:00", 10.05, 10.10, 10.00, 30_000, 3_020_000),
    ("11:30:10", 10.20, 10.40, 10.00, 50_000, 5_000_000),
    ("14:59:59", 10.30, 10.40, 9.90, 70_000, 7_100_000),
    ("15:00:20", 10.36, 10.40, 9.90, 71_000, 7_200_000),
]


def rows(agent: hkrt.SpotAgent, ktype: str, symbol: str = SYMBOL) -> list[tuple]:
    """Bars as (label, open, high, low, close, volume, amount): HH:MM for intraday bars,
    YYYY-MM-DD for DAY and longer.  ``filled`` is checked separately (:func:`filled`)."""
    frame = agent.kdata(symbol, ktype)
    values = frame[["open", "high", "low", "close", "volume", "amount"]].itertuples(index=False, name=None)
    return [
        (ts.strftime("%H:%M") if ts.hour or ts.minute else ts.strftime("%Y-%m-%d"), *row)
        for ts, row in zip(frame.index, values, strict=True)
    ]


def filled(agent: hkrt.SpotAgent, ktype: str, symbol: str = SYMBOL) -> list[str]:
    """Labels (HH:MM) of the flat bars no spot landed in."""
    frame = agent.kdata(symbol, ktype)
    return [ts.strftime("%H:%M") for ts in frame.index[frame["filled"].to_numpy()]]


def flat(label: str, price: float) -> tuple:
    return (label, price, price, price, price, 0, 0)


def completed(agent: hkrt.SpotAgent) -> list[tuple]:
    """Bars the engine reported complete since the last call, as (ktype, label, volume, filled, amended)."""
    ktypes = list(KType)  # a record's ktype is the index in this order; MIN .. HOUR2 are the first 7
    return [
        (
            ktypes[int(r["ktype"])].name,
            pd.Timestamp(r["datetime"]).strftime("%H:%M" if int(r["ktype"]) < 7 else "%Y-%m-%d"),
            float(r["volume"]),
            bool(r["filled"]),
            bool(r["amended"]),
        )
        for r in agent._engine.take_completed()
    ]


def collecting(ktypes: list[str]) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent(ktypes)
    agent._engine.collect_completed = True
    return agent


def hikyuu_day_spots() -> list[hkrt.Spot]:
    return [
        spot(t, close, volume, amount, open=10.0, high=high, low=low)
        for t, close, high, low, volume, amount in HIKYUU_DAY
    ]


@pytest.fixture
def day_agent() -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent()
    assert agent.ingest(hikyuu_day_spots()) == len(HIKYUU_DAY)
    return agent


class TestAFullDay:
    """hikyuu's measured day: eight spots, three of them after silent stretches (§3.3)."""

    def test_min_bars_auction_first_bar_and_gap_volume(self, day_agent: hkrt.SpotAgent) -> None:
        got = {b[0]: b[1:] for b in rows(day_agent, "MIN")}
        assert len(got) == 240  # empty minutes are flat bars
        # 09:25 auction, 09:30:05, 09:30:40 and 09:31:00.000 all close the 09:31 bar; open = the day's open.
        assert got["09:31"] == (10.0, 10.1, 10.0, 10.0, 20_000, 2_010_000)
        assert got["09:32"] == got["09:33"] == got["09:34"] == (10.0, 10.0, 10.0, 10.0, 0, 0)
        # 09:35:00.000 is minute 4, three minutes after the last spot: its 10,000 shares are gap volume.
        assert got["09:35"] == got["09:36"] == (10.05, 10.05, 10.05, 10.05, 0, 0)
        # 11:30:10 (grace) after 114 silent minutes: last price only, and the new day high 10.40 reaches DAY only.
        assert got["11:30"] == got["13:01"] == got["14:59"] == (10.2, 10.2, 10.2, 10.2, 0, 0)
        # 14:59:59 after a silent afternoon (gap; the new low 9.90 too), then 15:00:20 adds 1,000 shares.
        assert got["15:00"] == (10.3, 10.36, 10.3, 10.36, 1_000, 100_000)
        assert sum(v[4] for v in got.values()) == 21_000 == 71_000 - 0 - 50_000
        assert sum(v[5] for v in got.values()) == 2_110_000 == 7_200_000 - 0 - 5_090_000
        assert day_agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 50_000, 5_090_000, 3)
        assert day_agent.carry_in(SYMBOL) == CarryIn(FRIDAY, 0, 0)
        spotted = {"09:31", "09:35", "11:30", "15:00"}
        assert filled(day_agent, "MIN") == [label for label in got if label not in spotted]
        stats = day_agent.stats()
        assert (stats["gap_volume"], stats["gap_spans"]) == (1, 3)

    def test_min60_and_hour2_use_exchange_labels(self, day_agent: hkrt.SpotAgent) -> None:
        assert rows(day_agent, "MIN60") == [
            ("10:30", 10.0, 10.1, 10.0, 10.05, 20_000, 2_010_000),
            ("11:30", 10.05, 10.2, 10.05, 10.2, 0, 0),  # opens flat: 10:31 had no spot
            flat("14:00", 10.2),
            ("15:00", 10.2, 10.36, 10.2, 10.36, 1_000, 100_000),
        ]
        assert filled(day_agent, "MIN60") == ["14:00"]
        assert rows(day_agent, "HOUR2") == [
            ("11:30", 10.0, 10.2, 10.0, 10.2, 20_000, 2_010_000),
            ("15:00", 10.2, 10.36, 10.2, 10.36, 1_000, 100_000),
        ]

    def test_bar_counts_and_labels_of_every_intraday_period(self, day_agent: hkrt.SpotAgent) -> None:
        expected = {
            "MIN": (240, "09:31", "11:30", "13:01"),
            "MIN3": (80, "09:33", "11:30", "13:03"),
            "MIN5": (48, "09:35", "11:30", "13:05"),
            "MIN15": (16, "09:45", "11:30", "13:15"),
            "MIN30": (8, "10:00", "11:30", "13:30"),
        }
        for ktype, (count, first, noon, afternoon_first) in expected.items():
            labels = [b[0] for b in rows(day_agent, ktype)]
            assert len(labels) == count, ktype
            assert labels[0] == first and labels[count // 2 - 1] == noon, ktype
            assert labels[count // 2] == afternoon_first and labels[-1] == "15:00", ktype

    def test_day_and_longer_periods_hold_the_day_totals(self, day_agent: hkrt.SpotAgent) -> None:
        day = (10.0, 10.4, 9.9, 10.36, 71_000, 7_200_000)  # gap volume included
        assert rows(day_agent, "DAY") == [("2026-11-20", *day)]
        # hikyuu measured 390 lots / 403 万元 for this week bar: it subtracted the bar it updated.
        assert rows(day_agent, "WEEK") == [("2026-11-20", *day)]  # the week's last trading day, a Friday
        assert rows(day_agent, "MONTH") == [("2026-11-30", *day)]  # a Monday
        assert rows(day_agent, "QUARTER") == [("2026-12-31", *day)]
        assert rows(day_agent, "HALFYEAR") == [("2026-12-31", *day)]
        assert rows(day_agent, "YEAR") == [("2026-12-31", *day)]

    def test_closing_window_counts_until_1505_and_after_hours_stays_out(self, day_agent: hkrt.SpotAgent) -> None:
        day_agent._engine.collect_completed = True
        # 15:01:00 is in the closing window: a late-stamped closing print, in the 15:00 bar and DAY.
        assert day_agent.ingest(spot("15:01:00", 10.4, 72_000, 7_300_000)) == 1
        assert rows(day_agent, "MIN")[-1] == ("15:00", 10.3, 10.4, 10.3, 10.4, 2_000, 200_000)
        assert rows(day_agent, "DAY") == [("2026-11-20", 10.0, 10.4, 9.9, 10.4, 72_000, 7_300_000)]
        day_agent.advance_to(at("15:04:59.999"))
        assert completed(day_agent) == []  # nothing new is final: prints may still come until 15:05
        # 15:05:00.000 is after hours: accepted, no bar and not DAY; the rise is after-hours volume.
        assert day_agent.ingest(spot("15:05:00", 10.4, 73_000, 7_410_000)) == 1
        assert rows(day_agent, "MIN")[-1] == ("15:00", 10.3, 10.4, 10.3, 10.4, 2_000, 200_000)
        assert rows(day_agent, "DAY")[0][5:] == (72_000, 7_300_000)
        assert day_agent.after_hours(SYMBOL) == AfterHours(FRIDAY, 1_000, 110_000)
        assert day_agent.stats()["after_hours"] == 1
        assert completed(day_agent) == []
        day_agent.advance_to(at("15:05:00"))  # the close cutoff: the 15:00 bars, DAY and WEEK are final
        done = completed(day_agent)
        intraday = ["MIN", "MIN3", "MIN5", "MIN15", "MIN30", "MIN60", "HOUR2"]
        assert sorted(d[0] for d in done) == sorted([*intraday, "DAY", "WEEK"])  # November goes on: no MONTH
        assert {d[1] for d in done if d[0] in intraday} == {"15:00"}
        assert ("MIN", "15:00", 2_000, False, False) in done
        assert ("DAY", "2026-11-20", 72_000, False, False) in done

    def test_outside_session_before_the_auction(self, day_agent: hkrt.SpotAgent) -> None:
        assert day_agent.ingest(spot("09:14:59", 10.4, 72_000, 7_300_000)) == 0
        stats = day_agent.stats()
        assert stats["rejected"]["outside_session"] == 1
        assert stats["accepted"] == len(HIKYUU_DAY)


class TestVolumeAndPrices:
    """§3.1 and §4: differences of cumulative totals; the day open and the new-extreme rule."""

    def test_differences_of_cumulative_totals(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "DAY"])
        agent.ingest(
            [
                spot("09:25:00", 10.0, 1_000, 10_000),
                spot("09:30:20", 10.2, 1_500, 15_100),
                spot("09:31:05", 10.1, 1_800, 18_130, high=10.2),
            ]
        )
        assert rows(agent, "MIN") == [
            ("09:31", 10.0, 10.2, 10.0, 10.2, 1_500, 15_100),
            ("09:32", 10.1, 10.1, 10.1, 10.1, 300, 3_030),
        ]
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.2, 10.0, 10.1, 1_800, 18_130)]
        assert agent.carry_in(SYMBOL) == CarryIn(FRIDAY, 0, 0)

    def test_new_day_extremes_enter_the_bar_that_receives_them(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "DAY"])
        agent.ingest(
            [
                spot("09:30:10", 10.02, 100, 1_002, high=10.05, low=9.98),
                spot("09:31:10", 10.10, 300, 3_022, high=10.30, low=9.98),
                spot("09:31:40", 10.20, 400, 4_042, high=10.30, low=9.98),
                spot("09:32:20", 10.00, 600, 6_042, high=10.30, low=9.90),
            ]
        )
        assert rows(agent, "MIN") == [
            ("09:31", 10.0, 10.05, 9.98, 10.02, 100, 1_002),
            ("09:32", 10.1, 10.3, 10.1, 10.2, 300, 3_040),
            ("09:33", 10.0, 10.0, 9.9, 10.0, 200, 2_000),
        ]
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.3, 9.9, 10.0, 600, 6_042)]


class TestLateStart:
    def test_carry_in_stays_out_of_intraday_bars(self) -> None:
        agent = hkrt.SpotAgent()
        agent.ingest(
            [
                spot("10:40:10", 10.5, 50_000, 520_000, high=10.8, low=9.9),
                spot("10:40:40", 10.6, 50_300, 523_180, high=10.8, low=9.9),
                spot("10:41:05", 10.55, 50_800, 528_455, high=10.8, low=9.9),
            ]
        )
        # No bar before the first spot; the morning's 50,000 shares are in no intraday bar,
        # and the day high 10.8 / low 9.9 made before the agent started are not either.
        assert rows(agent, "MIN") == [
            ("10:41", 10.5, 10.6, 10.5, 10.6, 300, 3_180),
            ("10:42", 10.55, 10.55, 10.55, 10.55, 500, 5_275),
        ]
        assert rows(agent, "MIN5") == [
            ("10:45", 10.5, 10.6, 10.5, 10.55, 800, 8_455),
        ]
        assert agent.carry_in(SYMBOL) == CarryIn(FRIDAY, 50_000, 520_000)
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 0, 0, 0)
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.8, 9.9, 10.55, 50_800, 528_455)]
        assert rows(agent, "MIN60") == [("11:30", 10.5, 10.6, 10.5, 10.55, 800, 8_455)]
        assert agent.stats()["carry_in"] == 1
        agent.advance_to(at("15:05:00"))
        assert len(agent.kdata(SYMBOL, "MIN")) == 240 - 70  # 10:41 .. 15:00

    @pytest.mark.parametrize(
        ("hhmmss", "carry", "bar"),
        [
            ("09:30:50", 0, ("09:31", 10.0, 10.1, 10.0, 10.1, 8_000, 80_500)),
            ("09:31:00", 0, ("09:31", 10.0, 10.1, 10.0, 10.1, 8_000, 80_500)),  # still the first minute
            ("09:31:00.001", 8_000, ("09:32", 10.1, 10.1, 10.1, 10.1, 0, 0)),  # a late start
        ],
    )
    def test_first_minute_ends_at_0931_inclusive(self, hhmmss: str, carry: float, bar: tuple) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(spot(hhmmss, 10.1, 8_000, 80_500))
        assert agent.carry_in(SYMBOL) == CarryIn(FRIDAY, carry, 80_500 if carry else 0)
        assert rows(agent, "MIN") == [bar]

    def test_zero_volume_first_spot_then_trades_is_not_carry_in(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        # 10:00:00.000 is minute 29 (the 10:00 bar), 10:00:30 minute 30: no silent minute between.
        agent.ingest([spot("10:00:00", 10.0, 0, 0, open=0), spot("10:00:30", 10.2, 300, 3_060)])
        assert agent.stats()["carry_in"] == 0
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 0, 0, 0)
        assert rows(agent, "MIN") == [("10:01", 10.0, 10.2, 10.0, 10.2, 300, 3_060)]


class TestZeroVolumeSpots:
    """§5: a volume-0 spot draws no bar but is a spot for the gap rule."""

    def test_pre_trade_auction_spot_then_trading(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest([spot("09:20:00", 10.0, 0, 0), spot("09:30:10", 10.2, 500, 5_050, high=10.3, low=9.9)])
        assert rows(agent, "MIN") == [("09:31", 10.0, 10.3, 9.9, 10.2, 500, 5_050)]

    def test_late_zero_spot_then_trading_in_the_next_minute(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest([spot("09:35:00", 10.0, 0, 0), spot("09:35:40", 10.2, 500, 5_050, high=10.3, low=9.9)])
        assert rows(agent, "MIN") == [("09:36", 10.0, 10.3, 9.9, 10.2, 500, 5_050)]  # the day open
        assert agent.carry_in(SYMBOL) == CarryIn(FRIDAY, 0, 0)
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 0, 0, 0)

    def test_pre_trade_spot_then_the_first_trade_after_a_silent_stretch(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "DAY"])
        agent.ingest([spot("09:20:00", 10.0, 0, 0), spot("10:40:10", 10.5, 50_000, 520_000, high=10.8, low=9.9)])
        assert rows(agent, "MIN") == [flat("10:41", 10.5)]
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.8, 9.9, 10.5, 50_000, 520_000)]
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 50_000, 520_000, 1)

    def test_suspended_all_day_draws_nothing(self) -> None:
        agent = hkrt.SpotAgent()
        agent.ingest([spot(t, 10.0, 0, 0) for t in ("09:25:00", "10:00:00", "14:00:00")])
        agent.advance_to(at("15:05:00"))
        assert agent.kdata(SYMBOL, "MIN").empty and agent.kdata(SYMBOL, "DAY").empty
        assert agent.stats()["filled_bars"] == 0


class TestGapVolume:
    """§3.3: volume that crossed a whole trading minute without a spot of the symbol."""

    def test_pre_open_spot_then_a_late_first_trade(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "DAY"])
        agent.ingest(
            [
                spot("09:20:00", 10.0, 0, 0, open=0, high=0, low=0),
                spot("10:40:10", 10.5, 50_000, 520_000, high=10.8, low=9.9),
                spot("10:40:40", 10.6, 50_300, 523_180, high=10.8, low=9.9),
            ]
        )
        # The first traded bar opens at the spot's price; the morning and its extremes are in DAY only.
        assert rows(agent, "MIN") == [("10:41", 10.5, 10.6, 10.5, 10.6, 300, 3_180)]
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.8, 9.9, 10.6, 50_300, 523_180)]
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 50_000, 520_000, 1)
        assert agent.carry_in(SYMBOL) == CarryIn(FRIDAY, 0, 0)
        # 11:29:50 is minute 119, 49 minutes on: a second gap.  13:00:10 is minute 120: lunch is no gap.
        agent.ingest(spot("11:29:50", 10.6, 50_400, 524_240, high=10.8, low=9.9))
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 50_100, 521_060, 2)
        agent.ingest(spot("13:00:10", 10.6, 50_500, 525_300, high=10.8, low=9.9))
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 50_100, 521_060, 2)
        got = {b[0]: b[1:] for b in rows(agent, "MIN")}
        assert got["11:30"] == (10.6, 10.6, 10.6, 10.6, 0, 0)
        assert got["13:01"] == (10.6, 10.6, 10.6, 10.6, 100, 1_060)
        assert sum(v[4] for v in got.values()) == 400 == 50_500 - 0 - 50_100
        assert (agent.stats()["gap_volume"], agent.stats()["gap_spans"]) == (1, 2)

    def test_a_feed_that_goes_quiet_for_two_minutes(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
        agent.ingest(
            [
                spot("09:30:10", 10.0, 1_000, 10_000),
                spot("09:31:10", 10.1, 1_200, 12_020),
                spot("09:34:20", 10.3, 2_000, 20_200, high=10.5, low=9.95),
                spot("09:35:30", 10.2, 2_300, 23_260, high=10.5, low=9.95),
            ]
        )
        assert rows(agent, "MIN") == [
            ("09:31", 10.0, 10.0, 10.0, 10.0, 1_000, 10_000),
            ("09:32", 10.1, 10.1, 10.1, 10.1, 200, 2_020),
            flat("09:33", 10.1),
            flat("09:34", 10.1),
            flat("09:35", 10.3),  # spot 3: its last price only
            ("09:36", 10.2, 10.2, 10.2, 10.2, 300, 3_060),
        ]
        assert filled(agent, "MIN") == ["09:33", "09:34"]
        assert rows(agent, "MIN5") == [
            ("09:35", 10.0, 10.3, 10.0, 10.3, 1_200, 12_020),
            ("09:40", 10.2, 10.2, 10.2, 10.2, 300, 3_060),
        ]
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.5, 9.95, 10.2, 2_300, 23_260)]
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 800, 8_180, 1)

    def test_a_quote_with_unchanged_totals_is_a_spot(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(
            [
                spot("09:30:10", 10.0, 100, 1_000),
                spot("09:31:10", 10.0, 100, 1_000),  # nothing traded, but the feed saw the symbol
                spot("09:32:10", 10.0, 100, 1_000),
                spot("09:33:30", 10.3, 400, 4_090),
            ]
        )
        assert rows(agent, "MIN") == [
            ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000),
            flat("09:32", 10.0),
            flat("09:33", 10.0),
            ("09:34", 10.3, 10.3, 10.3, 10.3, 300, 3_090),
        ]
        assert filled(agent, "MIN") == []  # a spot landed in every minute
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 0, 0, 0)

    QUIET = "SZ000001"

    def quiet(self, t: str, close: float, volume: float, amount: float) -> hkrt.Spot:
        return spot(t, close, volume, amount, symbol=self.QUIET)

    def test_a_repeated_unchanged_quote_vouches_up_to_the_feed(self) -> None:
        first, later = self.quiet("09:30:10", 10.0, 100, 1_000), self.quiet("09:40:05", 10.1, 400, 4_030)
        other = spot("09:39:30", 11.0, 500, 5_500)
        silent = hkrt.SpotAgent(["MIN"])
        silent.ingest([first, other, later])
        assert silent.gap_volume(self.QUIET) == GapVolume(FRIDAY, 300, 3_030, 1)
        assert rows(silent, "MIN", self.QUIET)[-1] == flat("09:41", 10.1)
        repeated = hkrt.SpotAgent(["MIN"])
        repeated.ingest([first, other, first, later])  # the repeat is a duplicate, yet it vouches to minute 9
        assert repeated.stats()["duplicates"] == 1
        assert repeated.gap_volume(self.QUIET) == GapVolume(FRIDAY, 0, 0, 0)
        assert rows(repeated, "MIN", self.QUIET)[-1] == ("09:41", 10.1, 10.1, 10.1, 10.1, 300, 3_030)

    def test_a_change_only_feed_vouches_while_it_talks(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])

        def send(s: hkrt.Spot) -> None:
            assert agent.ingest(hkrt.wire.encode_spots([s], changes_only=True, simulated_time=True)) == 1

        send(self.quiet("09:30:10", 10.0, 100, 1_000))
        for m in range(31, 40):
            send(spot(f"09:{m}:10", 10.0, 1_000 + 100 * (m - 30), 10_000 + 1_000 * (m - 30)))
        send(self.quiet("09:40:05", 10.1, 400, 4_030))
        assert agent.gap_volume(self.QUIET) == GapVolume(FRIDAY, 0, 0, 0)
        assert rows(agent, "MIN", self.QUIET)[-1] == ("09:41", 10.1, 10.1, 10.1, 10.1, 300, 3_030)
        send(spot("09:45:10", 10.0, 2_000, 20_000))  # nothing at all from 09:40:05 to 09:45:10
        send(self.quiet("09:45:20", 10.2, 600, 6_050))
        assert agent.gap_volume(self.QUIET) == GapVolume(FRIDAY, 200, 2_020, 1)

    def test_advance_to_is_not_a_spot(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        agent.advance_to(at("09:33:20"))
        agent.ingest(spot("09:33:40", 10.2, 300, 3_040))
        assert rows(agent, "MIN")[-1] == flat("09:34", 10.2)
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 200, 2_040, 1)


class TestOrderAndDuplicates:
    def test_older_spot_lower_volume_and_duplicate(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        first = spot("09:35:00", 10.0, 1_000, 10_000)
        assert agent._engine.ingest_one(first) == "accepted"
        assert agent._engine.ingest_one(first) == "duplicate"
        assert agent._engine.ingest_one(spot("09:34:59", 10.0, 900, 9_000)) == "out_of_order"
        assert agent._engine.ingest_one(spot("09:36:00", 10.0, 999, 10_000)) == "cumulative_decreased"
        assert agent._engine.ingest_one(spot("09:36:00", 10.0, 1_000, 9_999)) == "cumulative_decreased"
        # Same second and totals but another price: no trade explains it, so it is not newer.
        assert agent._engine.ingest_one(spot("09:35:00", 10.2, 1_000, 10_000)) == "conflicting_duplicate"
        # Same second, more volume (a newer quote in the same second): accepted.
        assert agent._engine.ingest_one(spot("09:35:00", 10.1, 1_100, 11_010)) == "accepted"
        stats = agent.stats()
        assert (stats["accepted"], stats["duplicates"], stats["rejected_total"]) == (2, 1, 4)
        assert stats["rejected"]["conflicting_duplicate"] == 1
        assert stats["rejected"]["out_of_order"] == 1
        assert stats["rejected"]["cumulative_decreased"] == 2
        # 09:35:00.000 closes the 09:35 minute, after the first: its 1,000 shares are carry-in.
        assert rows(agent, "MIN") == [("09:35", 10.0, 10.1, 10.0, 10.1, 100, 1_010)]

    def test_doc_example(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        results = [
            agent._engine.ingest_one(s)
            for s in (
                spot("09:35:00", 10.0, 1_000, 10_000),
                spot("09:35:03", 10.1, 1_200, 12_020),
                spot("09:35:03", 10.1, 1_200, 12_020),
                spot("09:35:03", 10.05, 1_200, 12_020, high=10.1, low=10.0),
                spot("09:34:00", 10.0, 900, 9_000),
                spot("09:36:00", 10.1, 1_100, 12_100),
                spot("14:00:00", 10.1, 1_100, 12_100, day=THURSDAY),
            )
        ]
        assert results == [
            "accepted",
            "accepted",
            "duplicate",
            "conflicting_duplicate",
            "out_of_order",
            "cumulative_decreased",
            "out_of_order",
        ]
        assert rows(agent, "MIN") == [flat("09:35", 10.0), ("09:36", 10.1, 10.1, 10.1, 10.1, 200, 2_020)]
        stats = agent.stats()
        assert (stats["received"], stats["accepted"], stats["duplicates"]) == (7, 2, 1)
        assert (stats["rejected"]["out_of_order"], stats["rejected"]["cumulative_decreased"]) == (2, 1)

    def test_earlier_day_after_a_later_one_is_out_of_order(self) -> None:
        agent = hkrt.SpotAgent(["DAY"])
        agent.ingest(spot("10:00:00", 10.0, 100, 1_000))
        assert agent._engine.ingest_one(spot("10:00:00", 10.0, 100, 1_000, day=THURSDAY)) == "out_of_order"

    def test_reingesting_a_batch_changes_no_bar(self, day_agent: hkrt.SpotAgent) -> None:
        before = {k: day_agent.kdata(SYMBOL, k) for k in KType}
        assert day_agent.ingest(hikyuu_day_spots()) == 0
        for k in KType:
            pd.testing.assert_frame_equal(day_agent.kdata(SYMBOL, k), before[k])
        stats = day_agent.stats()
        assert stats["duplicates"] == 1  # the last spot repeats exactly
        assert stats["rejected"]["out_of_order"] == len(HIKYUU_DAY) - 1

    def test_reingest_doc_example(self) -> None:
        batch = [
            spot("09:30:00", 10.0, 1_000, 10_000),
            spot("09:30:03", 10.1, 1_200, 12_020),
            spot("09:30:06", 9.9, 1_500, 14_990, low=9.9),
        ]
        agent = hkrt.SpotAgent(["MIN"])
        assert agent.ingest(batch) == 3
        assert rows(agent, "MIN") == [("09:31", 10.0, 10.1, 9.9, 9.9, 1_500, 14_990)]
        assert agent.ingest(batch) == 0
        assert rows(agent, "MIN") == [("09:31", 10.0, 10.1, 9.9, 9.9, 1_500, 14_990)]
        assert (agent.stats()["rejected"]["out_of_order"], agent.stats()["duplicates"]) == (2, 1)


class TestCalendarAndSessions:
    @pytest.mark.parametrize(
        ("when", "reason"),
        [
            (dt.datetime(2026, 11, 21, 10, 0), "non_trading_day"),  # Saturday
            (dt.datetime(2026, 10, 1, 10, 0), "non_trading_day"),  # National Day
            (dt.datetime(2027, 1, 1, 10, 0), "outside_calendar"),  # after the bundled table
            (dt.datetime(2027, 1, 4, 10, 0), "outside_calendar"),  # a Monday after it
            (dt.datetime(2004, 12, 31, 10, 0), "outside_calendar"),  # before it
            (dt.datetime(2026, 11, 20, 8, 0), "outside_session"),
            (dt.datetime(2026, 11, 20, 9, 14, 59), "outside_session"),
            (dt.datetime(2026, 11, 20, 11, 30, 30, 1000), "outside_session"),
            (dt.datetime(2026, 11, 20, 12, 0), "outside_session"),
            (dt.datetime(2026, 11, 20, 12, 59, 59, 999_000), "outside_session"),
        ],
    )
    def test_rejections_are_counted_by_reason(self, when: dt.datetime, reason: str) -> None:
        agent = hkrt.SpotAgent()
        s = hkrt.Spot(SYMBOL, when, open=10, high=10, low=10, close=10, volume=100, amount=1000)
        assert agent._engine.ingest_one(s) == reason
        assert agent.stats()["rejected"][reason] == 1
        assert agent.kdata(SYMBOL, "DAY").empty

    def test_session_table_in_order(self) -> None:
        """§1.1's example: one agent, each spot with its own last price, so the bar whose close
        becomes that price is the bar the spot landed in."""
        table = [
            ("09:14:59", None),
            ("09:15:00", "09:31"),
            ("09:25:00", "09:31"),
            ("09:30:00", "09:31"),
            ("09:31:00", "09:31"),
            ("09:31:00.001", "09:32"),
            ("11:30:00", "11:30"),
            ("11:30:30", "11:30"),
            ("11:30:30.001", None),
            ("12:00:00", None),
            ("13:00:00", "13:01"),
            ("13:01:00", "13:01"),
            ("15:00:00", "15:00"),
            ("15:00:30.001", "15:00"),
            ("15:04:59.999", "15:00"),
            ("15:05:00", "after hours"),
        ]
        agent = hkrt.SpotAgent(["MIN"])
        volume = 0
        for i, (hhmmss, where) in enumerate(table):
            price = round(10.0 + i / 100, 2)
            volume += 100
            before = rows(agent, "MIN")
            accepted = agent.ingest(spot(hhmmss, price, volume, volume * 10, high=11.0, low=9.0))
            after = rows(agent, "MIN")
            if where is None:
                assert accepted == 0 and after == before, hhmmss
            elif where == "after hours":
                assert accepted == 1 and after == before, hhmmss
            else:
                assert accepted == 1, hhmmss
                assert [b[0] for b in after if b[4] == price] == [where], hhmmss
        assert agent.stats()["rejected"]["outside_session"] == 3

    @pytest.mark.parametrize(
        ("hhmmss", "ktype", "label"),
        [
            ("09:15:00", "MIN", "09:31"),
            ("09:29:59", "MIN", "09:31"),
            ("09:30:00", "MIN", "09:31"),
            ("09:31:00", "MIN", "09:31"),
            ("09:31:00.001", "MIN", "09:32"),
            ("10:29:59", "MIN60", "10:30"),
            ("10:30:00", "MIN60", "10:30"),
            ("10:30:00.001", "MIN60", "11:30"),
            ("11:30:00", "MIN", "11:30"),
            ("11:30:30", "MIN", "11:30"),
            ("13:00:00", "MIN", "13:01"),
            ("13:00:00", "MIN60", "14:00"),
            ("15:00:00", "MIN", "15:00"),
            ("15:00:30.001", "MIN", "15:00"),
            ("15:04:59.999", "MIN", "15:00"),
        ],
    )
    def test_boundaries(self, hhmmss: str, ktype: str, label: str) -> None:
        agent = hkrt.SpotAgent([ktype])
        assert agent.ingest(spot(hhmmss, 10.0, 100, 1_000)) == 1
        assert [b[0] for b in rows(agent, ktype)] == [label]

    def test_reject_reasons_doc_example(self) -> None:
        def reason(s: hkrt.Spot) -> str:
            return hkrt.SpotAgent()._engine.ingest_one(s)

        agent = hkrt.SpotAgent()
        agent.ingest_columns(symbol=["XX600000"], datetime=[at("10:00:00")], close=[10.0], volume=[1], amount=[10])
        assert agent.stats()["rejected"]["invalid_symbol"] == 1
        assert reason(spot("10:00:00", float("nan"), 100, 1_000)) == "invalid_value"
        assert reason(spot("10:00:00", 0.0, 2_450, 0, open=0)) == "invalid_value"
        assert reason(spot("10:00:00", 2_000_000.0, 100, 200_000_000)) == "beyond_bounds"
        assert reason(spot("10:00:00", 10.0, 100, 1_000, day=dt.date(2027, 1, 4))) == "outside_calendar"
        assert reason(spot("10:00:00", 10.0, 100, 1_000, day=dt.date(2026, 11, 21))) == "non_trading_day"
        assert reason(spot("10:00:00", 10.0, 100, 1_000, day=dt.date(2026, 10, 1))) == "non_trading_day"
        assert reason(spot("08:00:00", 10.0, 100, 1_000)) == "outside_session"
        assert reason(spot("12:00:00", 10.0, 100, 1_000)) == "outside_session"

    def test_calendar_coverage_doc_example(self) -> None:
        def reason(calendar: TradingCalendar | None, day: dt.date) -> str:
            agent = hkrt.SpotAgent(calendar=calendar) if calendar is not None else hkrt.SpotAgent()
            return agent._engine.ingest_one(spot("10:00:00", 10.0, 100, 1_000, day=day))

        new_year, monday = dt.date(2027, 1, 1), dt.date(2027, 1, 4)
        assert reason(None, dt.date(2025, 6, 13)) == "accepted"
        assert reason(None, new_year) == "outside_calendar"
        assert reason(None, monday) == "outside_calendar"
        added = TradingCalendar.china().with_holidays(["2027-01-01"])
        assert reason(added, new_year) == "outside_calendar"  # without through= the coverage does not move
        extended = TradingCalendar.china().with_holidays(["2027-01-01"], through="2027-12-31")
        assert reason(extended, new_year) == "non_trading_day"
        assert reason(extended, monday) == "accepted"
        assert reason(TradingCalendar([FRIDAY]), FRIDAY) == "non_trading_day"
        assert reason(TradingCalendar([FRIDAY]), dt.date(2026, 10, 1)) == "accepted"

    def test_a_past_day_replays_exactly_whatever_the_clock_says(self) -> None:
        past = dt.date(2015, 7, 8)  # a Wednesday, years before the machine's clock
        agent = hkrt.SpotAgent()
        agent.ingest([spot(t, c, v, a, day=past, high=h, low=lo) for t, c, h, lo, v, a in HIKYUU_DAY])
        frame = agent.kdata(SYMBOL, "MIN60")
        assert [str(ts) for ts in frame.index] == [
            "2015-07-08 10:30:00",
            "2015-07-08 11:30:00",
            "2015-07-08 14:00:00",
            "2015-07-08 15:00:00",
        ]
        assert frame.volume.tolist() == [20_000, 0, 0, 1_000]
        assert agent.kdata(SYMBOL, "WEEK").index[0] == pd.Timestamp("2015-07-10")

    def test_injected_calendar_decides_holidays(self) -> None:
        closed = hkrt.SpotAgent(calendar=TradingCalendar([FRIDAY]))
        assert closed._engine.ingest_one(spot("10:00:00", 10, 100, 1000)) == "non_trading_day"
        no_holidays = hkrt.SpotAgent(calendar=TradingCalendar())
        national_day = dt.date(2026, 10, 1)
        assert no_holidays._engine.ingest_one(spot("10:00:00", 10, 100, 1000, day=national_day)) == "accepted"


class TestValuesAndSymbols:
    def test_bad_values_are_rejected(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        assert agent._engine.ingest_one(spot("10:00:00", float("nan"), 100, 1000)) == "invalid_value"
        assert agent._engine.ingest_one(spot("10:00:00", 10, -100, 1000)) == "invalid_value"
        assert agent._engine.ingest_one(spot("10:00:00", 10, 100, float("inf"))) == "invalid_value"
        assert agent._engine.ingest_one(spot("10:00:00", 0, 100, 1000, open=0)) == "invalid_value"
        assert agent.stats()["rejected"]["invalid_value"] == 4

    def test_suspended_symbol_is_accepted_but_draws_no_bar(self) -> None:
        agent = hkrt.SpotAgent()
        suspended = hkrt.Spot(SYMBOL, at("10:00:00"), yesterday_close=8.0, open=0, high=0, low=0, close=0)
        assert agent.ingest([suspended, hkrt.Spot(SYMBOL, at("10:00:03"), yesterday_close=8.0)]) == 2
        assert agent.kdata(SYMBOL, "MIN").empty and agent.kdata(SYMBOL, "DAY").empty
        agent.advance_to(at("15:05:00"))
        assert agent.kdata(SYMBOL, "MIN").empty

    def test_columns_with_a_bad_symbol_count_it_and_keep_the_rest(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        accepted = agent.ingest_columns(
            symbol=["SH600000", "SH60000X", "600519.sh"],
            datetime=np.array(["2026-11-20T10:00:00"] * 3, dtype="datetime64[s]"),
            close=[10.0, 5.0, 1500.0],
            volume=[100, 100, 10],
            amount=[1000, 500, 15000],
        )
        assert accepted == 2
        assert agent.stats()["rejected"]["invalid_symbol"] == 1
        assert agent.symbols == ["SH600000", "SH600519"]

    def test_dataframe_input_with_aware_datetimes(self) -> None:
        frame = pd.DataFrame(
            {
                "symbol": ["sz000001", "sz000001"],
                "datetime": pd.to_datetime(["2026-11-20 02:00:10", "2026-11-20 02:00:40"]).tz_localize("UTC"),
                "close": [11.0, 11.1],
                "volume": [1_000, 1_500],
                "amount": [11_000, 16_550],
            }
        )
        agent = hkrt.SpotAgent(["MIN"])
        assert agent.ingest(frame) == 2
        assert rows(agent, "MIN", "SZ000001") == [("10:01", 11.0, 11.1, 11.0, 11.1, 500, 5_550)]

    def test_columns_accept_lists_of_aware_and_naive_datetimes(self) -> None:
        utc = dt.timezone.utc
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest_columns(
            symbol=["SH600000", "SH600000", "SH600000"],
            datetime=[dt.datetime(2026, 11, 20, 2, 0, 10, tzinfo=utc), "2026-11-20 10:00:20",
                      dt.datetime(2026, 11, 20, 10, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))],
            close=[10.0, 10.1, 10.2],
            volume=[100, 200, 300],
            amount=[1_000, 2_010, 3_030],
        )  # fmt: skip
        assert agent.stats()["accepted"] == 3
        assert rows(agent, "MIN") == [("10:01", 10.0, 10.2, 10.0, 10.2, 200, 2_030)]  # 100 shares are carry-in

    def test_unsupported_input_is_a_type_error(self) -> None:
        agent = hkrt.SpotAgent()
        with pytest.raises(TypeError):
            agent.ingest("SH600000")
        assert agent.ingest(b"\x00\x01") == 0  # bytes are a wire message: a bad one is counted, not raised
        assert agent.stats()["transport"]["rejected"]["too_short"] == 1
        with pytest.raises(TypeError, match=r"not an hkrt\.Spot"):
            agent.ingest([spot("10:00:00", 10, 100, 1000), "SH600000"])
        with pytest.raises(ValueError, match="same length"):
            agent.ingest_columns(["SH600000"], np.array(["2026-11-20T10:00"], "M8[s]"), [1, 2], [1], [1])


class TestEmptyMinutes:
    SPOTS = (
        ("09:30:10", 10.0, 100, 1_000),
        ("09:33:30", 10.3, 400, 4_090),
        ("09:37:00", 10.4, 500, 5_130),  # 09:37:00.000 closes the 09:37 minute
    )

    def test_flat_bars_are_marked_and_coarse_bars_open_at_the_flat_price(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
        agent.ingest([spot(*s) for s in self.SPOTS])
        assert rows(agent, "MIN") == [
            ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000),
            flat("09:32", 10.0),
            flat("09:33", 10.0),
            flat("09:34", 10.3),  # spot 2: its 300 shares crossed two silent minutes
            flat("09:35", 10.3),
            flat("09:36", 10.3),
            flat("09:37", 10.4),  # spot 3, still forming
        ]
        assert filled(agent, "MIN") == ["09:32", "09:33", "09:35", "09:36"]
        assert rows(agent, "MIN5") == [
            ("09:35", 10.0, 10.3, 10.0, 10.3, 100, 1_000),
            ("09:40", 10.3, 10.4, 10.3, 10.4, 0, 0),  # opens at the flat price of 09:36
        ]
        assert filled(agent, "MIN5") == []
        assert agent.stats()["filled_bars"] == 4
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 400, 4_130, 2)
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.4, 10.0, 10.4, 500, 5_130)]

    def test_filling_can_be_turned_off(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "MIN5"], fill_empty_bars=False)
        agent.ingest([spot(*s) for s in self.SPOTS])
        assert [b[0] for b in rows(agent, "MIN")] == ["09:31", "09:34", "09:37"]
        assert rows(agent, "MIN5") == [
            ("09:35", 10.0, 10.3, 10.0, 10.3, 100, 1_000),
            flat("09:40", 10.4),
        ]
        assert agent.stats()["filled_bars"] == 0
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 400, 4_130, 2)  # the rule does not depend on filling
        agent.advance_to(at("15:05:00"))
        assert len(rows(agent, "MIN")) == 3

    def test_advance_to_fills_ended_minutes_and_reports_only_past_their_end(self) -> None:
        agent = collecting(["MIN", "MIN5"])
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))  # step 1
        agent.advance_to(at("09:31:00"))  # step 2
        assert completed(agent) == []  # a spot stamped 09:31:00.000 still belongs to 09:31
        agent.ingest(spot("09:31:00", 10.1, 150, 1_505))  # step 3
        assert rows(agent, "MIN") == [("09:31", 10.0, 10.1, 10.0, 10.1, 150, 1_505)]
        assert agent.stats()["amended_bars"] == 0
        agent.advance_to(at("09:33:20"))  # step 4
        assert rows(agent, "MIN") == [("09:31", 10.0, 10.1, 10.0, 10.1, 150, 1_505), flat("09:32", 10.1),
                                      flat("09:33", 10.1)]  # fmt: skip
        assert filled(agent, "MIN") == ["09:32", "09:33"]
        assert completed(agent) == [
            ("MIN", "09:31", 150, False, False),
            ("MIN", "09:32", 0, True, False),
            ("MIN", "09:33", 0, True, False),
        ]
        assert rows(agent, "MIN5") == [("09:35", 10.0, 10.1, 10.0, 10.1, 150, 1_505)]  # forming
        agent.ingest(spot("09:33:40", 10.2, 300, 3_040))  # step 5
        assert rows(agent, "MIN")[-1] == flat("09:34", 10.2)  # minute 3 after minute 0: gap volume
        assert filled(agent, "MIN") == ["09:32", "09:33"]
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 150, 1_535, 1)
        assert completed(agent) == []
        agent.advance_to(dt.datetime(2026, 11, 23, 9, 0))  # step 6: a later day
        assert len(rows(agent, "MIN")) == 240 and len(rows(agent, "MIN5")) == 48
        done = completed(agent)
        assert [d[1] for d in done if d[0] == "MIN"] == [b[0] for b in rows(agent, "MIN")[3:]]  # 09:34 .. 15:00
        assert len([d for d in done if d[0] == "MIN5"]) == 48

    def test_the_1500_bar_is_filled_at_1500_and_stays_open_until_1505(self) -> None:
        agent = collecting(["MIN"])
        agent.ingest(spot("14:58:30", 10.0, 100, 1_000))  # a carry-in
        agent.advance_to(at("14:59:30"))
        assert [b[0] for b in rows(agent, "MIN")] == ["14:59"]  # 15:00 has not ended
        agent.advance_to(at("15:00:00"))
        assert rows(agent, "MIN")[-1] == flat("15:00", 10.0)
        assert [d[1] for d in completed(agent)] == ["14:59"]  # 15:00 is filled, not final
        agent.ingest(spot("15:00:20", 10.2, 150, 1_510))  # a closing print: minute 239, right after 238
        assert rows(agent, "MIN")[-1] == ("15:00", 10.0, 10.2, 10.0, 10.2, 50, 510)  # opens at the flat price
        assert agent.stats()["amended_bars"] == 0  # it was never reported
        agent.advance_to(at("15:04:59.999"))
        assert completed(agent) == []
        agent.advance_to(at("15:05:00"))
        assert completed(agent) == [("MIN", "15:00", 50, False, False)]

    def test_a_first_trade_after_advance_to_is_caught_up(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(spot("09:30:05", 11.0, 100, 1_100, symbol="SZ000001"))
        agent.advance_to(at("10:00:00"))
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        got = rows(agent, "MIN")
        assert got[0] == ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000)
        assert len(got) == 30 and got[-1] == flat("10:00", 10.0)
        assert filled(agent, "MIN") == [b[0] for b in got[1:]]

    def test_straggler_amends_a_reported_bar_and_is_reported_again(self) -> None:
        agent = collecting(["MIN", "MIN5"])
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        agent.advance_to(at("09:33:20"))
        assert [d[1] for d in completed(agent)] == ["09:31", "09:32", "09:33"]
        agent.ingest(spot("09:31:30", 10.1, 150, 1_505))  # minute 1: no gap
        assert rows(agent, "MIN") == [
            ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000),
            ("09:32", 10.0, 10.1, 10.0, 10.1, 50, 505),
            flat("09:33", 10.1),
        ]
        assert filled(agent, "MIN") == ["09:33"]
        assert rows(agent, "MIN5") == [("09:35", 10.0, 10.1, 10.0, 10.1, 150, 1_505)]
        assert completed(agent) == [("MIN", "09:32", 50, False, True), ("MIN", "09:33", 0, True, True)]
        assert agent.stats()["amended_bars"] == 1

    def test_day_rollover_completes_the_day(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "HOUR2"])
        agent.ingest([spot("09:30:00", 10.0, 100, 1_000), spot("09:30:00", 10.0, 50, 500, day=MONDAY)])
        frame = agent.kdata(SYMBOL, "MIN")
        assert len(frame.loc["2026-11-20"]) == 240
        assert len(frame.loc["2026-11-23"]) == 1
        assert frame.loc["2026-11-23"].volume.tolist() == [50]  # volume restarts with the day

    def test_day_completion_doc_example(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest([spot("09:25:00", 10.0, 100, 1_000), spot("10:00:05", 10.1, 300, 3_020)])
        got = rows(agent, "MIN")
        assert len(got) == 31
        assert got[0] == ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000)
        assert got[1:30] == [flat(f"{9 + m // 60:02d}:{m % 60:02d}", 10.0) for m in range(32, 61)]
        assert got[30] == flat("10:01", 10.1)
        assert agent.gap_volume(SYMBOL) == GapVolume(FRIDAY, 200, 2_020, 1)
        agent.ingest(spot("09:25:00", 10.0, 100, 1_000, day=MONDAY))
        friday = agent.kdata(SYMBOL, "MIN").loc["2026-11-20"]
        assert len(friday) == 240
        assert friday.iloc[-1].tolist() == [10.1, 10.1, 10.1, 10.1, 0.0, 0.0, True]

    def test_straggler_after_the_day_was_completed_reaches_day(self) -> None:
        agent = collecting(["MIN", "MIN60", "DAY", "WEEK"])
        agent.ingest(spot("14:00:30", 10.0, 1_000, 10_000, day=THURSDAY))  # a carry-in
        agent.advance_to(dt.datetime(2026, 11, 19, 15, 6))
        assert ("DAY", "2026-11-19", 1_000, False, False) in completed(agent)
        assert agent.ingest(spot("14:01:20", 10.2, 1_500, 15_100, day=THURSDAY)) == 1
        done = completed(agent)
        assert ("DAY", "2026-11-19", 1_500, False, True) in done
        assert ("MIN60", "15:00", 500, False, True) in done
        assert ("MIN", "14:02", 500, False, True) in done
        assert len([d for d in done if d[0] == "MIN"]) == 59 and all(d[4] for d in done)  # 14:02 .. 15:00
        # Friday's first spot comes before anything reads Thursday.
        agent.ingest(spot("09:30:05", 10.3, 100, 1_030, day=FRIDAY, open=10.3))
        assert rows(agent, "DAY") == [
            ("2026-11-19", 10.0, 10.2, 10.0, 10.2, 1_500, 15_100),
            ("2026-11-20", 10.3, 10.3, 10.3, 10.3, 100, 1_030),
        ]
        assert rows(agent, "WEEK") == [("2026-11-20", 10.0, 10.3, 10.0, 10.3, 1_600, 16_130)]
        amended = [10.0, 10.2, 10.0, 10.2, 500.0, 5_100.0, False]
        thursday = agent.kdata(SYMBOL, "MIN60").loc["2026-11-19"]
        assert thursday.loc[pd.Timestamp("2026-11-19 15:00")].tolist() == amended
        minutes = agent.kdata(SYMBOL, "MIN").loc["2026-11-19"]
        assert minutes.loc[pd.Timestamp("2026-11-19 14:02")].tolist() == amended
        assert (minutes.loc["2026-11-19 14:03":, "close"] == 10.2).all() and len(minutes) == 60


class TestClosingAuction:
    """§6.3: late-stamped closing prints count until 15:05; after-hours trading stays out."""

    def test_closing_call_stamped_late_reaches_day_and_after_hours_is_apart(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "DAY"])

        def star(t: str, close: float, volume: float, amount: float) -> hkrt.Spot:
            return spot(t, close, volume, amount, high=10.05, low=9.98, symbol=STAR)

        agent.ingest(
            [
                star("14:59:10", 10.0, 1_000_000, 10_000_000),
                star("15:00:48", 10.02, 1_060_000, 10_601_200),
                star("15:12:00", 10.02, 1_075_000, 10_751_500),
            ]
        )
        assert agent.after_hours(STAR) == AfterHours(FRIDAY, 15_000, 150_300)
        agent.ingest(star("16:14:58", 10.02, 1_080_000, 10_801_600))
        assert rows(agent, "MIN", STAR) == [("15:00", 10.0, 10.02, 10.0, 10.02, 60_000, 601_200)]
        assert rows(agent, "DAY", STAR) == [("2026-11-20", 10.0, 10.05, 9.98, 10.02, 1_060_000, 10_601_200)]
        assert agent.after_hours(STAR) == AfterHours(FRIDAY, 20_000, 200_400)
        assert agent.carry_in(STAR) == CarryIn(FRIDAY, 1_000_000, 10_000_000)
        assert agent.gap_volume(STAR) == GapVolume(FRIDAY, 0, 0, 0)
        assert (agent.stats()["after_hours"], agent.stats()["accepted"]) == (1, 4)

    def test_a_first_spot_after_hours_takes_the_day(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "DAY"])
        agent.ingest(spot("15:30:00", 10.0, 500_000, 5_000_000))
        agent.ingest(spot("15:40:00", 10.0, 510_000, 5_100_000))
        assert rows(agent, "MIN") == [flat("15:00", 10.0)]
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.0, 10.0, 10.0, 500_000, 5_000_000)]
        assert agent.carry_in(SYMBOL) == CarryIn(FRIDAY, 500_000, 5_000_000)
        assert agent.after_hours(SYMBOL) == AfterHours(FRIDAY, 10_000, 100_000)


class TestMultiDayPeriods:
    WEEKS = [dt.date(2026, 11, d) for d in (23, 24, 25, 26, 27, 30)] + [dt.date(2026, 12, 1)]

    def run_days(self, agent: hkrt.SpotAgent) -> list[tuple]:
        days = []
        for i, day in enumerate(self.WEEKS):
            o, c, v = 10.0 + i, 10.5 + i, 1_000 * (i + 1)
            agent.ingest(spot("14:00:00", c, v, v * c, day=day, open=o, high=c + 0.2, low=o - 0.1))
            days.append((o, c + 0.2, o - 0.1, c, v, v * c))
        return days

    def test_week_month_and_longer_are_exact_aggregates_of_days(self) -> None:
        agent = hkrt.SpotAgent()
        days = self.run_days(agent)

        def agg(rows_: list[tuple]) -> tuple:
            amount = 0.0
            for r in rows_:
                amount += r[5]
            return (rows_[0][0], max(r[1] for r in rows_), min(r[2] for r in rows_), rows_[-1][3],
                    sum(r[4] for r in rows_), amount)  # fmt: skip

        assert rows(agent, "WEEK") == [("2026-11-27", *agg(days[:5])), ("2026-12-04", *agg(days[5:]))]
        assert rows(agent, "MONTH") == [("2026-11-30", *agg(days[:6])), ("2026-12-31", *agg(days[6:]))]
        assert rows(agent, "QUARTER") == [("2026-12-31", *agg(days))]
        assert rows(agent, "YEAR") == [("2026-12-31", *agg(days))]

    def test_two_spots_a_day_doc_example(self) -> None:
        agent = hkrt.SpotAgent(["WEEK", "MONTH"])
        mon, tue = dt.date(2026, 11, 16), dt.date(2026, 11, 17)
        agent.ingest(
            [
                spot("14:00:00", 10.5, 7_000, 72_000, day=mon, high=10.8, low=9.9),
                spot("15:00:00", 10.4, 7_100, 73_000, day=mon, high=10.8, low=9.9),
                spot("10:00:00", 10.6, 2_000, 21_000, day=tue, open=10.4, high=10.9, low=10.3),
                spot("11:00:00", 10.7, 3_000, 32_000, day=tue, open=10.4, high=11.0, low=10.3),
            ]
        )
        assert rows(agent, "DAY") == [
            ("2026-11-16", 10.0, 10.8, 9.9, 10.4, 7_100, 73_000),
            ("2026-11-17", 10.4, 11.0, 10.3, 10.7, 3_000, 32_000),
        ]
        assert rows(agent, "WEEK") == [("2026-11-20", 10.0, 11.0, 9.9, 10.7, 10_100, 105_000)]
        assert rows(agent, "MONTH") == [("2026-11-30", 10.0, 11.0, 9.9, 10.7, 10_100, 105_000)]

    def test_labels_are_the_periods_last_trading_day(self) -> None:
        agent = hkrt.SpotAgent(["WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR"])
        for day, price, volume in (
            (dt.date(2026, 9, 23), 9.0, 50),
            (dt.date(2026, 9, 29), 10.0, 100),
            (dt.date(2026, 9, 30), 11.0, 200),
            (dt.date(2026, 10, 8), 12.0, 300),
        ):
            agent.ingest(spot("10:00:00", price, volume, volume * price, day=day, open=price, high=price, low=price))
        assert rows(agent, "WEEK") == [
            ("2026-09-24", 9.0, 9.0, 9.0, 9.0, 50, 450),  # Friday 09-25 is Mid-Autumn
            ("2026-09-30", 10.0, 11.0, 10.0, 11.0, 300, 3_200),  # 10-01 and 10-02 are National Day
            ("2026-10-09", 12.0, 12.0, 12.0, 12.0, 300, 3_600),
        ]
        assert rows(agent, "MONTH") == [
            ("2026-09-30", 9.0, 11.0, 9.0, 11.0, 350, 3_650),
            ("2026-10-30", 12.0, 12.0, 12.0, 12.0, 300, 3_600),  # 10-31 is a Saturday
        ]
        assert rows(agent, "QUARTER") == [
            ("2026-09-30", 9.0, 11.0, 9.0, 11.0, 350, 3_650),
            ("2026-12-31", 12.0, 12.0, 12.0, 12.0, 300, 3_600),
        ]
        year = [("2026-12-31", 9.0, 12.0, 9.0, 12.0, 650, 7_250)]
        assert rows(agent, "HALFYEAR") == year and rows(agent, "YEAR") == year

    def test_week_label_with_an_unbounded_calendar(self) -> None:
        agent = hkrt.SpotAgent(["WEEK"], calendar=TradingCalendar(["2026-10-09"]))
        agent.ingest(spot("10:00:00", 10.0, 100, 1_000, day=dt.date(2026, 10, 8)))
        assert agent.kdata(SYMBOL, "WEEK").index.tolist() == [pd.Timestamp("2026-10-08")]  # Friday is closed
        assert KType.DAY in agent.ktypes  # kept: WEEK is built from DAY bars

    def test_preloaded_history_continues_into_live_bars(self) -> None:
        history = pd.DataFrame(
            {
                "open": [9.0, 9.4, 9.8],
                "high": [9.5, 10.1, 10.0],
                "low": [8.9, 9.3, 9.7],
                "close": [9.4, 10.0, 9.9],
                "volume": [500.0, 800.0, 600.0],
                "amount": [4_700.0, 7_900.0, 5_950.0],
            },
            index=pd.DatetimeIndex(["2026-11-13", "2026-11-16", "2026-11-17"], name="datetime"),
        )
        agent = hkrt.SpotAgent(["DAY", "WEEK", "MONTH"])
        agent.preload(SYMBOL, "day", history)
        agent.ingest(spot("10:00:00", 10.2, 300, 3_060, day=dt.date(2026, 11, 18), open=10.0, high=10.3, low=9.95))
        assert rows(agent, "WEEK") == [("2026-11-20", 9.4, 10.3, 9.3, 10.2, 1_700, 16_910)]
        assert rows(agent, "MONTH") == [("2026-11-30", 9.0, 10.3, 8.9, 10.2, 2_200, 21_610)]
        assert len(agent.kdata(SYMBOL, "DAY")) == 4
        assert agent.kdata(SYMBOL, "DAY", start="2026-11-16", end="2026-11-17").volume.tolist() == [800, 600]

    def test_day_history_doc_example(self) -> None:
        history = pd.DataFrame(
            {"open": [9.0, 9.4], "high": [9.5, 10.1], "low": [8.9, 9.3], "close": [9.4, 10.0],
             "volume": [500.0, 800.0], "amount": [4_700.0, 7_900.0]},
            index=pd.DatetimeIndex(["2026-11-13", "2026-11-16"], name="datetime"),
        )  # fmt: skip
        agent = hkrt.SpotAgent(["DAY", "WEEK"])
        agent.preload(SYMBOL, "DAY", history)
        agent.ingest(spot("10:00:00", 10.2, 300, 3_060, day=dt.date(2026, 11, 17), open=10.0, high=10.3, low=9.95))
        assert rows(agent, "WEEK") == [("2026-11-20", 9.4, 10.3, 9.3, 10.2, 1_100, 10_960)]
        assert rows(agent, "DAY")[-1] == ("2026-11-17", 10.0, 10.3, 9.95, 10.2, 300, 3_060)

    @staticmethod
    def week_so_far(label: str) -> pd.DataFrame:
        return pd.DataFrame(
            {"open": [9.4], "high": [10.1], "low": [9.3], "close": [10.0], "volume": [1_400.0], "amount": [13_900.0]},
            index=pd.DatetimeIndex([label], name="datetime"),
        )

    def test_a_vendors_week_so_far_is_continued(self) -> None:
        wednesday = dt.date(2026, 11, 18)
        agent = hkrt.SpotAgent(["DAY", "WEEK"])
        agent.preload(SYMBOL, "WEEK", self.week_so_far("2026-11-17"))  # Monday and Tuesday
        agent.ingest(spot("10:00:00", 10.2, 300, 3_060, day=wednesday, open=10.0, high=10.3, low=9.95))
        merged = [("2026-11-20", 9.4, 10.3, 9.3, 10.2, 1_700, 16_960)]
        assert rows(agent, "WEEK") == merged  # one bar for the week, under the live label
        assert agent.stats()["period_history_merged"] == 1
        # The week's DAY bars up to the history bar's label are in it already: not added twice.
        days = pd.DataFrame(
            {"open": [9.4, 9.8], "high": [10.1, 10.0], "low": [9.3, 9.7], "close": [9.9, 10.0],
             "volume": [800.0, 600.0], "amount": [7_900.0, 6_000.0]},
            index=pd.DatetimeIndex(["2026-11-16", "2026-11-17"], name="datetime"),
        )  # fmt: skip
        agent.preload(SYMBOL, "DAY", days)
        assert rows(agent, "WEEK") == merged

    def test_a_history_bar_that_already_holds_today_is_replaced(self) -> None:
        agent = hkrt.SpotAgent(["DAY", "WEEK"])
        agent.ingest(spot("10:00:00", 10.2, 300, 3_060, day=dt.date(2026, 11, 18), open=10.0, high=10.3, low=9.95))
        agent.preload(SYMBOL, "WEEK", self.week_so_far("2026-11-22"))  # labelled by the Sunday
        assert rows(agent, "WEEK") == [("2026-11-20", 10.0, 10.3, 9.95, 10.2, 300, 3_060)]
        assert (agent.stats()["period_history_replaced"], agent.stats()["period_history_merged"]) == (1, 0)

    def test_live_bars_win_over_history_with_the_same_label(self) -> None:
        agent = hkrt.SpotAgent(["DAY"])
        agent.ingest(spot("10:00:00", 10.2, 300, 3_060))
        stale = pd.DataFrame({"datetime": [pd.Timestamp(FRIDAY)], "open": [1.0], "high": [1.0], "low": [1.0],
                              "close": [1.0], "volume": [1.0], "amount": [1.0]})  # fmt: skip
        agent.preload(SYMBOL, "DAY", stale)
        assert rows(agent, "DAY") == [("2026-11-20", 10.0, 10.2, 10.0, 10.2, 300, 3_060)]

    def test_bad_history_is_refused(self) -> None:
        agent = hkrt.SpotAgent(["DAY"])
        frame = pd.DataFrame({"open": [1.0, 1.0], "high": [1.0, 1.0], "low": [1.0, 1.0], "close": [1.0, 1.0],
                              "volume": [1.0, 1.0], "amount": [1.0, 1.0]},
                             index=pd.DatetimeIndex(["2026-11-17", "2026-11-16"], name="datetime"))  # fmt: skip
        with pytest.raises(ValueError, match="sorted"):
            agent.preload(SYMBOL, "DAY", frame)
        with pytest.raises(ValueError, match="lacks columns"):
            agent.preload(SYMBOL, "DAY", frame.drop(columns="amount"))


class TestZeroCopyView:
    def test_view_is_read_only_engine_memory_and_survives_growth(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        view = agent.kdata_view(SYMBOL, "MIN")
        assert view.dtype.names == ("datetime", "open", "high", "low", "close", "volume", "amount", "filled")
        assert view.dtype.itemsize == 64
        assert not view.flags.writeable and not view.flags.owndata
        assert view["datetime"][0] == np.datetime64("2026-11-20T09:31")
        volume = 100.0
        for minute in range(31, 90):  # grow the series well past its first buffer, one spot a minute
            volume += 10
            t = f"{9 + minute // 60:02d}:{minute % 60:02d}:30"
            agent.ingest(spot(t, 10.0, volume, volume * 10))
        assert view["volume"][0] == 100.0  # still valid memory
        fresh = agent.kdata_view(SYMBOL, "MIN")
        frame = agent.kdata(SYMBOL, "MIN")
        assert len(fresh) == len(frame) == 60
        np.testing.assert_array_equal(fresh["volume"], frame.volume.to_numpy())
        np.testing.assert_array_equal(fresh["filled"], frame.filled.to_numpy())
        with pytest.raises(ValueError):
            fresh["close"][0] = 1.0

    def test_view_doc_example(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        view = agent.kdata_view(SYMBOL, "MIN")
        assert len(view) == 1 and view["close"][0] == 10.0 and view["volume"][0] == 100
        agent.ingest(spot("09:30:40", 10.2, 200, 2_020))
        assert view["close"][0] == 10.0 and view["volume"][0] == 100  # the forming bar is not flushed yet
        agent.ingest(spot("09:31:10", 10.1, 300, 3_030))
        assert len(view) == 1  # 09:32 is not in it
        assert [view[f][0] for f in ("open", "high", "low", "close", "volume")] == [10.0, 10.2, 10.0, 10.2, 200]
        fresh = agent.kdata_view(SYMBOL, "MIN")
        assert len(fresh) == 2 and [fresh[f][1] for f in ("open", "close", "volume")] == [10.1, 10.1, 100]
        assert not fresh["filled"].any()

    def test_unknown_symbol_gives_empty_results(self) -> None:
        agent = hkrt.SpotAgent()
        assert agent.kdata("SZ000002", "MIN").empty
        assert len(agent.kdata_view("SZ000002", "MIN")) == 0
        assert agent.carry_in("SZ000002") is None
        assert agent.gap_volume("SZ000002") is None and agent.after_hours("SZ000002") is None
        assert list(agent.kdata("SZ000002", "DAY").columns) == [
            "open",
            "high",
            "low",
            "close",
            "volume",
            "amount",
            "filled",
        ]
        assert agent.kdata("SZ000002", "DAY").index.name == "datetime"
