"""KType parsing (any case, clear errors) and the trading calendar."""

from __future__ import annotations

import datetime as dt

import pytest

import hkrt
from hkrt import KType, TradingCalendar
from hkrt.calendar import CHINA_HOLIDAYS_THROUGH


@pytest.mark.parametrize("name", ["min5", "Min5", "MIN5", "mIn5"])
def test_ktype_parses_in_any_case(name: str) -> None:
    assert KType(name) is KType.MIN5
    assert KType.parse(name) is KType.MIN5


def test_thirteen_ktypes_in_order() -> None:
    assert [k.value for k in KType] == [
        "MIN", "MIN3", "MIN5", "MIN15", "MIN30", "MIN60", "HOUR2",
        "DAY", "WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR",
    ]  # fmt: skip
    assert KType.HOUR2.is_intraday and not KType.DAY.is_intraday


def test_unknown_ktype_lists_the_valid_ones() -> None:
    with pytest.raises(ValueError) as err:
        KType("min7")
    message = str(err.value)
    assert "min7" in message
    for k in KType:
        assert k.value in message


def test_lower_case_ktypes_work_across_the_agent(agent: hkrt.SpotAgent) -> None:
    lower = hkrt.SpotAgent(["min", "day", "Week"])
    assert lower.ktypes == (KType.MIN, KType.DAY, KType.WEEK)
    lower.ingest(
        hkrt.Spot("SH600000", "2026-11-20 10:00:00", open=10, high=10, low=10, close=10, volume=100, amount=1000)
    )
    assert len(lower.kdata("sh600000", "min")) == 1
    with pytest.raises(ValueError, match="valid ktypes"):
        lower.kdata("SH600000", "hour7")
    with pytest.raises(ValueError, match="not enabled"):
        lower.kdata("SH600000", "min5")
    with pytest.raises(ValueError, match="valid ktypes"):
        hkrt.SpotAgent(["min", "minute"])


def test_china_calendar_knows_exchange_closures() -> None:
    cal = TradingCalendar.china()
    assert cal.is_holiday(dt.date(2026, 10, 1))  # National Day
    assert cal.is_holiday(dt.date(2024, 2, 9))  # Spring Festival eve: exchanges closed
    assert cal.is_holiday("2026-02-17")
    assert not cal.is_trading_day(dt.date(2026, 11, 21))  # Saturday
    assert cal.is_trading_day(dt.date(2026, 11, 20))
    assert not cal.is_trading_day(dt.date(2026, 10, 1))
    assert dt.date(2026, 12, 31) == CHINA_HOLIDAYS_THROUGH
    # October 2026: 22 weekdays, 5 of them closed for National Day.
    assert len(cal.trading_days("2026-10-01", "2026-10-31")) == 17


def test_calendar_is_injectable() -> None:
    cal = TradingCalendar(["2026-11-20"])
    assert not cal.is_trading_day("2026-11-20")
    assert cal.with_holidays([dt.date(2026, 11, 19)]).holidays == (
        dt.date(2026, 11, 19),
        dt.date(2026, 11, 20),
    )
    assert TradingCalendar().holidays == ()
