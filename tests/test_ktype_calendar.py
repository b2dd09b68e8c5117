"""KType parsing (any case, clear errors) and the trading calendar."""

from __future__ import annotations

import datetime as dt
import importlib.util
import pickle
import re
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import pytest

import hkrt
from hkrt import KType, TradingCalendar, _hkrt
from hkrt.core.calendar import CHINA_HOLIDAYS_THROUGH, CalendarCoverageError
from hkrt.core.china_time import china_today


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


# ------------------------------------------------------------------ KType from the C++ registry

ROOT = Path(__file__).resolve().parents[1]


def _gen_stub() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("gen_stub", ROOT / "tools" / "gen_stub.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ktype_is_built_from_the_registry() -> None:
    assert list(KType.__members__) == list(_hkrt.KTYPE_NAMES)
    assert (KType.__module__, KType.__qualname__) == ("hkrt.core.ktype", "KType")
    assert all(pickle.loads(pickle.dumps(k)) is k for k in KType)
    assert isinstance(KType.MIN5, str) and KType.MIN5 == "MIN5" and f"{KType.MIN5}" == "MIN5"


def test_a_period_added_in_cpp_appears_with_nothing_to_edit() -> None:
    """The enum is built from whatever the core's registry holds: a registry with one more period
    (patched in, then hkrt.core.ktype loaded again, in a fresh interpreter) gives a KType with it."""
    code = textwrap.dedent(
        """
        import importlib
        import hkrt.core.ktype
        from hkrt import _hkrt
        _hkrt.KTYPE_NAMES = [*_hkrt.KTYPE_NAMES, "FORTNIGHT"]
        _hkrt.KTYPE_INTRADAY_MINUTES = {**_hkrt.KTYPE_INTRADAY_MINUTES, "FORTNIGHT": 0}
        _hkrt.KTYPE_MULTI_DAY = (*_hkrt.KTYPE_MULTI_DAY, "FORTNIGHT")
        _hkrt.KTYPE_RECORD_CODES = {**_hkrt.KTYPE_RECORD_CODES, "FORTNIGHT": 13}
        importlib.reload(hkrt.core.ktype)
        from hkrt.core.ktype import KTYPE_BY_RECORD_CODE, KType
        k = KType("FORTNIGHT")
        print(len(KType), k.is_multi_day, k.record_code, KTYPE_BY_RECORD_CODE[13] is k)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["14", "True", "13", "True"]


def test_ktype_members_are_only_the_generated_block() -> None:
    """Type checkers read the members from a block tools/gen_stub.py writes from the registry; the
    checked-in block is what it writes, and no member is declared by hand anywhere else."""
    gen = _gen_stub()
    text = (ROOT / "python" / "hkrt" / "core" / "ktype.py").read_text(encoding="utf-8")
    names = list(_hkrt.KTYPE_NAMES)
    assert gen.with_ktype_members(text, names) == text
    assert gen.with_ktype_members(text, [*names, "FORTNIGHT"]) != text  # a stale block is caught
    head, _, rest = text.partition(gen.KTYPE_BEGIN)
    block, _, tail = rest.partition(gen.KTYPE_END)
    member = re.compile(r"^\s+[A-Z][A-Z0-9]* = \"", re.MULTILINE)
    assert len(member.findall(block)) == len(names) and not member.search(head + tail)


# ------------------------------------------------------------------ the calendar asks the core


def test_last_and_first_trading_day() -> None:
    cal = TradingCalendar.china()
    assert cal.last_trading_day("2026-10-04") == dt.date(2026, 9, 30)  # National Day + a weekend
    assert cal.last_trading_day(dt.date(2026, 9, 30)) == dt.date(2026, 9, 30)  # a trading day: itself
    assert cal.first_trading_day("2026-10-01") == dt.date(2026, 10, 8)
    assert cal.last_trading_day() == cal.last_trading_day(china_today())
    assert cal.first_trading_day("2026-12-31") == dt.date(2026, 12, 31)  # the coverage's last day trades
    with pytest.raises(CalendarCoverageError, match="2027-01-01 is outside"):
        cal.first_trading_day("2027-01-01")
    with pytest.raises(CalendarCoverageError, match="2027-01-04 is outside"):
        cal.last_trading_day("2027-01-04")


def test_walks_off_the_coverage_name_the_first_day_they_cannot_vouch_for() -> None:
    cal = TradingCalendar(["2026-03-02"], coverage=("2026-02-28", "2026-03-03"))
    with pytest.raises(CalendarCoverageError) as err:
        cal.previous_trading_day("2026-03-03")  # Sat, Sun, a holiday: back to before the coverage
    assert err.value.day == dt.date(2026, 2, 27)
    with pytest.raises(CalendarCoverageError) as err:
        cal.next_trading_day("2026-03-03")
    assert err.value.day == dt.date(2026, 3, 4)
    assert TradingCalendar().next_trading_day("2026-11-20") == dt.date(2026, 11, 23)  # unbounded: never raises


def test_a_calendar_pickles_with_its_day_set() -> None:
    cal = TradingCalendar.china().with_holidays(["2027-01-01"], through="2027-01-31")
    again = pickle.loads(pickle.dumps(cal))
    assert again.holidays == cal.holidays and again.coverage == cal.coverage
    assert again.next_trading_day("2026-12-31") == dt.date(2027, 1, 4)
    assert repr(again) == repr(cal) and "2027-01-31" in repr(cal)
