"""Every aggregation rule of the engine, checked against hand-computed bars.

Units: volume in shares, amount in yuan.  Times are China local time.  The rules are
written down in docs/aggregation.md.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import hkrt
from conftest import FRIDAY, SYMBOL, at, bars, spot
from hkrt import KType, TradingCalendar

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
    def test_min_bars_auction_first_bar_and_differences(self, day_agent: hkrt.SpotAgent) -> None:
        got = {b[0]: b[1:] for b in bars(day_agent, "MIN")}
        assert len(got) == 240  # empty minutes are flat bars
        # 09:25 auction + 09:30:05 + 09:30:40 all belong to the 09:31 bar; open = the day's open.
        assert got["09:31"] == (10.0, 10.1, 10.0, 10.1, 15_000, 1_510_000)
        assert got["09:32"] == (10.0, 10.0, 10.0, 10.0, 5_000, 500_000)
        assert got["09:33"] == got["09:34"] == got["09:35"] == (10.0, 10.0, 10.0, 10.0, 0, 0)
        assert got["09:36"] == (10.05, 10.05, 10.05, 10.05, 10_000, 1_010_000)
        # The day high rose to 10.40 between 09:35 and 11:30:10: the 11:30 bar receives it.
        assert got["11:30"] == (10.2, 10.4, 10.2, 10.2, 20_000, 1_980_000)
        assert got["13:01"] == (10.2, 10.2, 10.2, 10.2, 0, 0)
        # 14:59:59 and the 15:00:20 grace spot fold into the 15:00 bar; the new low 9.90 too.
        assert got["15:00"] == (10.3, 10.36, 9.9, 10.36, 21_000, 2_200_000)
        assert sum(v[4] for v in got.values()) == 71_000

    def test_min60_and_hour2_use_exchange_labels(self, day_agent: hkrt.SpotAgent) -> None:
        assert bars(day_agent, "MIN60") == [
            ("10:30", 10.0, 10.1, 10.0, 10.05, 30_000, 3_020_000),
            ("11:30", 10.05, 10.4, 10.05, 10.2, 20_000, 1_980_000),  # opens flat: 10:31 had no spot
            ("14:00", 10.2, 10.2, 10.2, 10.2, 0, 0),
            ("15:00", 10.2, 10.36, 9.9, 10.36, 21_000, 2_200_000),
        ]
        assert bars(day_agent, "HOUR2") == [
            ("11:30", 10.0, 10.4, 10.0, 10.2, 50_000, 5_000_000),
            ("15:00", 10.2, 10.36, 9.9, 10.36, 21_000, 2_200_000),
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
            labels = [b[0] for b in bars(day_agent, ktype)]
            assert len(labels) == count, ktype
            assert labels[0] == first and labels[count // 2 - 1] == noon, ktype
            assert labels[count // 2] == afternoon_first and labels[-1] == "15:00", ktype

    def test_day_and_longer_periods_hold_the_day_totals(self, day_agent: hkrt.SpotAgent) -> None:
        day = (10.0, 10.4, 9.9, 10.36, 71_000, 7_200_000)
        assert bars(day_agent, "DAY") == [("2026-11-20", *day)]
        # hikyuu measured 390 lots / 403 万元 for this week bar: it subtracted the bar it updated.
        assert bars(day_agent, "WEEK") == [("2026-11-20", *day)]  # labelled by the week's Friday
        assert bars(day_agent, "MONTH") == [("2026-11-30", *day)]
        assert bars(day_agent, "QUARTER") == [("2026-12-31", *day)]
        assert bars(day_agent, "HALFYEAR") == [("2026-12-31", *day)]
        assert bars(day_agent, "YEAR") == [("2026-12-31", *day)]

    def test_after_close_spot_is_rejected_and_counted(self, day_agent: hkrt.SpotAgent) -> None:
        assert day_agent.ingest(spot("15:01:00", 10.4, 72_000, 7_300_000)) == 0
        stats = day_agent.stats()
        assert stats["rejected"]["outside_session"] == 1
        assert stats["accepted"] == len(HIKYUU_DAY)
        assert bars(day_agent, "DAY")[0][5] == 71_000


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
        assert bars(agent, "MIN") == [
            ("10:41", 10.5, 10.6, 10.5, 10.6, 300, 3_180),
            ("10:42", 10.55, 10.55, 10.55, 10.55, 500, 5_275),
        ]
        assert agent.carry_in(SYMBOL) == hkrt.CarryIn(FRIDAY, 50_000, 520_000)
        assert bars(agent, "DAY") == [("2026-11-20", 10.0, 10.8, 9.9, 10.55, 50_800, 528_455)]
        assert bars(agent, "MIN60") == [("11:30", 10.5, 10.6, 10.5, 10.55, 800, 8_455)]
        assert agent.stats()["carry_in"] == 1
        agent.advance_to(at("15:00:31"))
        assert len(agent.kdata(SYMBOL, "MIN")) == 240 - 70  # 10:41 .. 15:00

    def test_first_spot_in_first_minute_is_not_carry_in(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest(spot("09:30:50", 10.1, 8_000, 80_500))
        assert agent.carry_in(SYMBOL) == hkrt.CarryIn(FRIDAY, 0, 0)
        assert bars(agent, "MIN") == [("09:31", 10.0, 10.1, 10.0, 10.1, 8_000, 80_500)]

    def test_zero_volume_first_spot_then_trades_is_not_carry_in(self) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        agent.ingest([spot("10:00:00", 10.0, 0, 0, open=0), spot("10:00:30", 10.2, 300, 3_060)])
        assert agent.stats()["carry_in"] == 0
        assert bars(agent, "MIN") == [("10:01", 10.0, 10.2, 10.0, 10.2, 300, 3_060)]


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
        # 09:35 was the day's first spot, after the first minute: its 1,000 shares are carry-in.
        assert bars(agent, "MIN") == [("09:36", 10.0, 10.1, 10.0, 10.1, 100, 1_010)]

    def test_earlier_day_after_a_later_one_is_out_of_order(self) -> None:
        agent = hkrt.SpotAgent(["DAY"])
        agent.ingest(spot("10:00:00", 10.0, 100, 1_000))
        assert agent._engine.ingest_one(spot("10:00:00", 10.0, 100, 1_000, day=dt.date(2026, 11, 19))) == (
            "out_of_order"
        )

    def test_reingesting_a_batch_changes_no_bar(self, day_agent: hkrt.SpotAgent) -> None:
        before = {k: day_agent.kdata(SYMBOL, k) for k in KType}
        assert day_agent.ingest(hikyuu_day_spots()) == 0
        for k in KType:
            pd.testing.assert_frame_equal(day_agent.kdata(SYMBOL, k), before[k])
        stats = day_agent.stats()
        assert stats["duplicates"] == 1  # the last spot repeats exactly
        assert stats["rejected"]["out_of_order"] == len(HIKYUU_DAY) - 1


class TestCalendarAndSessions:
    @pytest.mark.parametrize(
        ("when", "reason"),
        [
            (dt.datetime(2026, 11, 21, 10, 0), "non_trading_day"),  # Saturday
            (dt.datetime(2026, 10, 1, 10, 0), "non_trading_day"),  # National Day
            (dt.datetime(2026, 11, 20, 9, 14, 59), "outside_session"),
            (dt.datetime(2026, 11, 20, 11, 30, 30, 1000), "outside_session"),
            (dt.datetime(2026, 11, 20, 12, 0), "outside_session"),
            (dt.datetime(2026, 11, 20, 12, 59, 59), "outside_session"),
            (dt.datetime(2026, 11, 20, 15, 0, 30, 1000), "outside_session"),
        ],
    )
    def test_rejections_are_counted_by_reason(self, when: dt.datetime, reason: str) -> None:
        agent = hkrt.SpotAgent()
        s = hkrt.Spot(SYMBOL, when, open=10, high=10, low=10, close=10, volume=100, amount=1000)
        assert agent._engine.ingest_one(s) == reason
        assert agent.stats()["rejected"][reason] == 1
        assert agent.kdata(SYMBOL, "DAY").empty

    @pytest.mark.parametrize(
        ("hhmmss", "label"),
        [
            ("09:15:00", "09:31"),
            ("09:29:59", "09:31"),
            ("11:30:30", "11:30"),
            ("13:00:00", "13:01"),
            ("15:00:30", "15:00"),
        ],
    )
    def test_auction_and_grace_edges(self, hhmmss: str, label: str) -> None:
        agent = hkrt.SpotAgent(["MIN"])
        assert agent.ingest(spot(hhmmss, 10.0, 100, 1_000)) == 1
        assert [b[0] for b in bars(agent, "MIN")] == [label]

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
        assert frame.volume.tolist() == [30_000, 20_000, 0, 21_000]
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
        agent.advance_to(at("15:01:00"))
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
        assert bars(agent, "MIN", "SZ000001") == [("10:01", 11.0, 11.1, 11.0, 11.1, 500, 5_550)]

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
        assert bars(agent, "MIN") == [("10:01", 10.0, 10.2, 10.0, 10.2, 200, 2_030)]  # 100 shares are carry-in

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
    def test_gaps_fill_flat_and_coarse_bars_open_at_the_flat_price(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "MIN5"])
        agent.ingest(
            [
                spot("09:30:10", 10.0, 100, 1_000),
                spot("09:33:30", 10.3, 400, 4_090, high=10.3),
                spot("09:37:00", 10.4, 500, 5_130, high=10.4),
            ]
        )
        assert bars(agent, "MIN") == [
            ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000),
            ("09:32", 10.0, 10.0, 10.0, 10.0, 0, 0),
            ("09:33", 10.0, 10.0, 10.0, 10.0, 0, 0),
            ("09:34", 10.3, 10.3, 10.3, 10.3, 300, 3_090),
            ("09:35", 10.3, 10.3, 10.3, 10.3, 0, 0),
            ("09:36", 10.3, 10.3, 10.3, 10.3, 0, 0),
            ("09:37", 10.3, 10.3, 10.3, 10.3, 0, 0),
            ("09:38", 10.4, 10.4, 10.4, 10.4, 100, 1_040),
        ]
        assert bars(agent, "MIN5") == [
            ("09:35", 10.0, 10.3, 10.0, 10.3, 400, 4_090),
            ("09:40", 10.3, 10.4, 10.3, 10.4, 100, 1_040),
        ]
        assert agent.stats()["filled_bars"] == 5

    def test_advance_to_closes_elapsed_minutes_only(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "MIN30"])
        agent.ingest(spot("10:00:10", 10.0, 100, 1_000))
        agent.advance_to(at("10:02:59"))
        assert [b[0] for b in bars(agent, "MIN")] == ["10:01", "10:02"]
        agent.advance_to(at("10:30:00"))
        assert len(bars(agent, "MIN")) == 30 and [b[0] for b in bars(agent, "MIN30")] == ["10:30"]
        # A spot of a minute advance_to already closed amends that bar in place.
        agent.ingest(spot("10:29:30", 10.2, 300, 3_040, high=10.2))
        assert bars(agent, "MIN")[-1] == ("10:30", 10.0, 10.2, 10.0, 10.2, 200, 2_040)
        # A straggler further back amends its minute, and the flat minutes after it move to its price.
        agent = hkrt.SpotAgent(["MIN", "MIN5"])
        agent.ingest(spot("09:30:10", 10.0, 100, 1_000))
        agent.advance_to(at("09:33:20"))
        agent.ingest(spot("09:31:30", 10.1, 150, 1_505, high=10.1))
        assert bars(agent, "MIN") == [
            ("09:31", 10.0, 10.0, 10.0, 10.0, 100, 1_000),
            ("09:32", 10.0, 10.1, 10.0, 10.1, 50, 505),
            ("09:33", 10.1, 10.1, 10.1, 10.1, 0, 0),
        ]
        assert bars(agent, "MIN5") == [("09:35", 10.0, 10.1, 10.0, 10.1, 150, 1_505)]

    def test_day_rollover_completes_the_day(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "HOUR2"])
        agent.ingest([spot("09:30:00", 10.0, 100, 1_000), spot("09:30:00", 10.0, 50, 500, day=dt.date(2026, 11, 23))])
        frame = agent.kdata(SYMBOL, "MIN")
        assert len(frame.loc["2026-11-20"]) == 240
        assert len(frame.loc["2026-11-23"]) == 1
        assert frame.loc["2026-11-23"].volume.tolist() == [50]  # volume restarts with the day

    def test_filling_can_be_turned_off(self) -> None:
        agent = hkrt.SpotAgent(["MIN", "MIN5"], fill_empty_bars=False)
        agent.ingest([spot("09:30:10", 10.0, 100, 1_000), spot("09:33:30", 10.3, 400, 4_090)])
        assert [b[0] for b in bars(agent, "MIN")] == ["09:31", "09:34"]
        assert bars(agent, "MIN5") == [("09:35", 10.0, 10.3, 10.0, 10.3, 400, 4_090)]
        agent.advance_to(at("15:01:00"))
        assert len(bars(agent, "MIN")) == 2


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

        def agg(rows: list[tuple]) -> tuple:
            amount = 0.0
            for r in rows:
                amount += r[5]
            return (rows[0][0], max(r[1] for r in rows), min(r[2] for r in rows), rows[-1][3],
                    sum(r[4] for r in rows), amount)  # fmt: skip

        assert bars(agent, "WEEK") == [("2026-11-27", *agg(days[:5])), ("2026-12-04", *agg(days[5:]))]
        assert bars(agent, "MONTH") == [("2026-11-30", *agg(days[:6])), ("2026-12-31", *agg(days[6:]))]
        assert bars(agent, "QUARTER") == [("2026-12-31", *agg(days))]
        assert bars(agent, "YEAR") == [("2026-12-31", *agg(days))]

    def test_week_label_is_friday_even_when_friday_is_a_holiday(self) -> None:
        agent = hkrt.SpotAgent(["WEEK"], calendar=TradingCalendar(["2026-10-09"]))
        agent.ingest(spot("10:00:00", 10.0, 100, 1_000, day=dt.date(2026, 10, 8)))
        assert agent.kdata(SYMBOL, "WEEK").index.tolist() == [pd.Timestamp("2026-10-09")]
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
        assert bars(agent, "WEEK") == [("2026-11-20", 9.4, 10.3, 9.3, 10.2, 1_700, 16_910)]
        assert bars(agent, "MONTH") == [("2026-11-30", 9.0, 10.3, 8.9, 10.2, 2_200, 21_610)]
        assert len(agent.kdata(SYMBOL, "DAY")) == 4
        assert agent.kdata(SYMBOL, "DAY", start="2026-11-16", end="2026-11-17").volume.tolist() == [800, 600]

    def test_live_bars_win_over_history_with_the_same_label(self) -> None:
        agent = hkrt.SpotAgent(["DAY"])
        agent.ingest(spot("10:00:00", 10.2, 300, 3_060))
        stale = pd.DataFrame({"datetime": [pd.Timestamp(FRIDAY)], "open": [1.0], "high": [1.0], "low": [1.0],
                              "close": [1.0], "volume": [1.0], "amount": [1.0]})  # fmt: skip
        agent.preload(SYMBOL, "DAY", stale)
        assert bars(agent, "DAY") == [("2026-11-20", 10.0, 10.2, 10.0, 10.2, 300, 3_060)]

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
        assert view.dtype.names == ("datetime", "open", "high", "low", "close", "volume", "amount")
        assert not view.flags.writeable and not view.flags.owndata
        assert view["datetime"][0] == np.datetime64("2026-11-20T09:31")
        volume = 100.0
        for minute in range(31, 90):  # grow the series well past its first buffer
            volume += 10
            t = f"{9 + minute // 60:02d}:{minute % 60:02d}:00"
            agent.ingest(spot(t, 10.0, volume, volume * 10))
        assert view["volume"][0] == 100.0  # still valid memory
        fresh = agent.kdata_view(SYMBOL, "MIN")
        frame = agent.kdata(SYMBOL, "MIN")
        assert len(fresh) == len(frame) == 60
        np.testing.assert_array_equal(fresh["volume"], frame.volume.to_numpy())
        with pytest.raises(ValueError):
            fresh["close"][0] = 1.0

    def test_unknown_symbol_gives_empty_results(self) -> None:
        agent = hkrt.SpotAgent()
        assert agent.kdata("SZ000002", "MIN").empty
        assert len(agent.kdata_view("SZ000002", "MIN")) == 0
        assert agent.carry_in("SZ000002") is None
        assert list(agent.kdata("SZ000002", "DAY").columns) == [
            "open",
            "high",
            "low",
            "close",
            "volume",
            "amount",
        ]
        assert agent.kdata("SZ000002", "DAY").index.name == "datetime"
