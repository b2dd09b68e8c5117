"""Python's market-time rules are the C++ core's: one offset, one schedule, one period registry.

The values are checked against both the core (hkrt._hkrt) and hand-written expectations, so a
rule changed on one side only, or changed by mistake on both, fails here.  A scan of the package
source keeps a literal 8-hour offset from creeping back outside hkrt.china_time.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

import hkrt
from hkrt import _hkrt, china_time
from hkrt.calendar import TradingCalendar
from hkrt.ktype import KType, period_end, period_label, period_start

PACKAGE = Path(hkrt.__file__).resolve().parent
D = dt.date.fromisoformat

# ------------------------------------------------------------------ the UTC offset


def test_offset_is_the_cores_and_eight_hours() -> None:
    assert china_time.CHINA_UTC_OFFSET_MS == _hkrt.CHINA_UTC_OFFSET_MS == 8 * 3_600_000
    assert china_time.CHINA_TZ.utcoffset(None) == dt.timedelta(hours=8)


def test_local_utc_conversions_agree_with_an_aware_datetime() -> None:
    local = dt.datetime(2026, 10, 9, 9, 30, 0, 123_000)
    utc_ms = int(local.replace(tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)
    assert china_time.local_datetime_to_utc_ms(local) == utc_ms
    assert china_time.utc_ms_to_local_datetime(utc_ms) == local
    # an aware datetime is converted, not read as local wall time
    assert china_time.local_datetime_to_utc_ms(local.replace(tzinfo=china_time.CHINA_TZ).astimezone(dt.UTC)) == utc_ms
    local_ms = (local - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)
    assert china_time.local_ms_to_utc_ms(local_ms) == utc_ms
    assert china_time.utc_ms_to_local_ms(utc_ms) == local_ms


def test_wire_and_server_use_the_same_offset() -> None:
    from hkrt import server, wire

    assert wire._CHINA_UTC_OFFSET_MS == server._CHINA_OFFSET_MS == china_time.CHINA_UTC_OFFSET_MS
    local = dt.datetime(2026, 9, 30, 14, 59, 57)
    assert wire._epoch_ms(local, "t") == china_time.local_datetime_to_utc_ms(local)


def test_now_and_today_are_china_time_whatever_the_machine_zone() -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=8)
    now, today = china_time.china_now(), china_time.china_today()
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=8)
    assert now.tzinfo is None and before <= now <= after
    assert today in (before.date(), after.date())


def test_old_names_stay_importable_and_are_the_one_definition() -> None:
    from hkrt import calendar, columns, day_journal, server
    from hkrt.strategy import strategy, timers

    assert day_journal.CHINA_TZ is columns.CHINA_TZ is server.CHINA is china_time.CHINA_TZ
    assert day_journal.china_today is calendar.china_today is china_time.china_today
    assert server.china_now is strategy._china_now is china_time.china_now
    assert timers.SESSIONS is china_time.SESSIONS


# ------------------------------------------------------------------ the trading schedule


def _ms(t: dt.time) -> int:
    return ((t.hour * 60 + t.minute) * 60 + t.second) * 1000 + t.microsecond // 1000


def test_schedule_is_the_cores_a_share_schedule() -> None:
    core = _hkrt.CHINA_A_SHARE_SCHEDULE
    assert tuple((_ms(a), _ms(b)) for a, b in china_time.SESSIONS) == tuple(core["sessions"])
    assert ((dt.time(9, 30), dt.time(11, 30)), (dt.time(13, 0), dt.time(15, 0))) == china_time.SESSIONS
    assert _ms(china_time.AUCTION_OPEN) == core["auction_open_ms"] and dt.time(9, 15) == china_time.AUCTION_OPEN
    assert _ms(china_time.DAY_CLOSE_CUTOFF) == core["close_cutoff_ms"]
    assert dt.time(15, 5) == china_time.DAY_CLOSE_CUTOFF
    assert china_time.SESSION_GRACE == dt.timedelta(milliseconds=core["grace_ms"]) == dt.timedelta(seconds=30)
    session_minutes = sum((_ms(b) - _ms(a)) // 60_000 for a, b in china_time.SESSIONS)
    assert china_time.MINUTES_PER_DAY == core["minutes_per_day"] == session_minutes == 240


def test_in_session_bounds() -> None:
    inside = [dt.time(9, 30), dt.time(11, 29, 59), dt.time(13, 0), dt.time(14, 59, 59)]
    outside = [dt.time(9, 29, 59), dt.time(11, 30), dt.time(12, 0), dt.time(15, 0), dt.time(9, 20)]
    assert all(china_time.in_session(t) for t in inside)
    assert not any(china_time.in_session(t) for t in outside)


def test_consumers_read_the_schedule() -> None:
    from hkrt.fetcher import sim
    from hkrt.strategy import strategy

    assert sim.SESSIONS is china_time.SESSIONS and sim.AUCTION_START == china_time.AUCTION_OPEN
    assert strategy.DAY_CLOSE == china_time.MARKET_CLOSE == dt.time(15, 0)
    times = list(sim.SimMarket(D("2026-10-09"), sim.SimConfig(symbols=3, interval=60.0)).times())
    assert times[0].time() == dt.time(9, 15) and times[-1].time() == dt.time(15, 0)
    assert not any(dt.time(11, 30) <= t.time() < dt.time(13, 0) for t in times)


# ------------------------------------------------------------------ the period registry


def test_ktype_enum_is_the_core_registry() -> None:
    assert [k.value for k in KType] == list(_hkrt.KTYPE_NAMES)
    assert {k.value: k.intraday_minutes for k in KType} == _hkrt.KTYPE_INTRADAY_MINUTES
    assert [k.value for k in KType if k.is_intraday] == ["MIN", "MIN3", "MIN5", "MIN15", "MIN30", "MIN60", "HOUR2"]
    assert [k.value for k in KType if k.is_multi_day] == list(_hkrt.KTYPE_MULTI_DAY)
    assert [k.value for k in KType if k.is_multi_day] == ["WEEK", "MONTH", "QUARTER", "HALFYEAR", "YEAR"]
    assert not KType.DAY.is_intraday and not KType.DAY.is_multi_day
    assert KType.MIN5.intraday_minutes == 5 and KType.HOUR2.intraday_minutes == 120


@pytest.mark.parametrize(
    ("ktype", "day", "start", "end"),
    [
        ("DAY", "2026-10-01", "2026-10-01", "2026-10-01"),
        ("WEEK", "2026-10-01", "2026-09-28", "2026-10-04"),  # National Day is a Thursday
        ("WEEK", "2026-09-28", "2026-09-28", "2026-10-04"),
        ("WEEK", "2026-10-04", "2026-09-28", "2026-10-04"),
        ("MONTH", "2026-02-17", "2026-02-01", "2026-02-28"),
        ("MONTH", "2024-02-10", "2024-02-01", "2024-02-29"),
        ("QUARTER", "2026-05-20", "2026-04-01", "2026-06-30"),
        ("HALFYEAR", "2026-08-01", "2026-07-01", "2026-12-31"),
        ("YEAR", "2026-10-01", "2026-01-01", "2026-12-31"),
    ],
)
def test_period_start_and_end(ktype: str, day: str, start: str, end: str) -> None:
    assert period_start(ktype, D(day)) == D(start)
    assert period_end(KType(ktype), D(day)) == D(end)


@pytest.mark.parametrize(
    ("ktype", "day", "label"),
    [
        ("WEEK", "2026-09-22", "2026-09-24"),  # Friday 09-25 is Mid-Autumn: the week ends Thursday
        ("WEEK", "2026-09-30", "2026-09-30"),  # National Day week: only Mon-Wed trade
        ("WEEK", "2026-10-08", "2026-10-09"),  # 10-05..07 closed, Thursday and Friday trade
        ("MONTH", "2026-09-15", "2026-09-30"),
        ("MONTH", "2026-10-09", "2026-10-30"),  # 10-31 is a Saturday
        ("QUARTER", "2026-09-30", "2026-09-30"),
        ("HALFYEAR", "2026-09-30", "2026-12-31"),
        ("YEAR", "2026-10-09", "2026-12-31"),
        ("DAY", "2026-10-09", "2026-10-09"),
    ],
)
def test_period_label_on_the_china_calendar(ktype: str, day: str, label: str) -> None:
    assert period_label(ktype, D(day), TradingCalendar.china()) == D(label)


def test_period_label_stops_at_the_calendars_coverage() -> None:
    calendar = TradingCalendar([], coverage=(D("2026-01-01"), D("2026-10-14")))
    assert period_label("MONTH", D("2026-10-09"), calendar) == D("2026-10-14")  # days past coverage hold no spots


def test_period_functions_refuse_intraday_and_bad_names() -> None:
    with pytest.raises(ValueError, match="DAY and longer"):
        period_start("MIN5", D("2026-10-09"))
    with pytest.raises(ValueError, match="MIN5"):
        period_end("FORTNIGHT", D("2026-10-09"))


# ------------------------------------------------------------------ no second copy of the offset

_LITERAL_OFFSET = re.compile(r"\b28_?800\b|\b8\s*\*\s*3_?600\b|timedelta\(\s*hours\s*=\s*8\s*\)|Asia/Shanghai")

# Modules that still spell the offset out, awaiting edits listed in the issue-13 report (their
# owners were busy): remove an entry once its module imports hkrt.china_time instead.
_PENDING: set[str] = set()


def _offenders(root: Path) -> set[str]:
    found = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel != "china_time.py" and _LITERAL_OFFSET.search(path.read_text(encoding="utf-8")):
            found.add(rel)
    return found


def test_the_scan_finds_each_spelling(tmp_path: Path) -> None:
    for i, text in enumerate(["x = 28800\n", "x = 8 * 3600 * 1000\n", "dt.timedelta(hours=8)\n", "'Asia/Shanghai'\n"]):
        (tmp_path / f"m{i}.py").write_text(text, encoding="utf-8")
    (tmp_path / "clean.py").write_text("x = 3600 * 8_000\n", encoding="utf-8")
    (tmp_path / "china_time.py").write_text("x = 28800\n", encoding="utf-8")
    assert _offenders(tmp_path) == {"m0.py", "m1.py", "m2.py", "m3.py"}


def test_no_module_but_china_time_spells_out_the_offset() -> None:
    assert _offenders(PACKAGE) == _PENDING
