"""Python's market-time rules are the C++ core's: one offset, one schedule, one period registry,
one trading calendar.

Each rule is checked twice: its value against both the core (hkrt._hkrt) and hand-written
expectations, so a rule changed on one side only, or changed by mistake on both, fails here; and a
scan of the package source, so no module states it again (the offset outside hkrt.core.china_time, a
session time, a list of periods, an index into the periods, a walk to the next trading day...).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

import hkrt
from hkrt import _hkrt
from hkrt.core import china_time
from hkrt.core.calendar import CalendarCoverageError, TradingCalendar
from hkrt.core.ktype import KTYPE_BY_RECORD_CODE, KType, bar_labels_ms, period_end, period_label, period_start

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
    from hkrt.feed import server, wire

    local = dt.datetime(2026, 9, 30, 14, 59, 57)
    assert wire._epoch_ms(local, "t") == china_time.local_datetime_to_utc_ms(local)

    class Cycle:  # a replayed cycle: its recorded market time, and no spots to fall back on
        market_time_ms = china_time.local_datetime_to_utc_ms(local)
        spots: tuple[object, ...] = ()

    assert server._cycle_time(Cycle()) == local
    Cycle.market_time_ms = china_time.SANE_MARKET_TIME_MS[1] + 1  # a broken clock: not believed
    assert server._cycle_time(Cycle()) is None


def test_now_and_today_are_china_time_whatever_the_machine_zone() -> None:
    before = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=8)
    now, today = china_time.china_now(), china_time.china_today()
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(hours=8)
    assert now.tzinfo is None and before <= now <= after
    assert today in (before.date(), after.date())


def test_old_names_stay_importable_and_are_the_one_definition() -> None:
    from hkrt.core import calendar, columns
    from hkrt.feed import day_journal, server
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


def test_ktype_record_codes_are_the_cores() -> None:
    """The ``ktype`` field of completed-bar records: KType reads the codes from the core, in the
    registry's order (the store relies on "code <= DAY's code" meaning intraday or DAY)."""
    assert {k.value: k.record_code for k in KType} == _hkrt.KTYPE_RECORD_CODES
    assert [k.record_code for k in KType] == list(range(13))
    assert tuple(KType) == KTYPE_BY_RECORD_CODE
    assert all(KType.from_record_code(k.record_code) is k for k in KType)
    with pytest.raises(ValueError, match="not a ktype record code"):
        KType.from_record_code(13)


def test_ktype_record_codes_name_the_engines_records() -> None:
    """Completed bars the engine reports, read through KType.from_record_code, are exactly the
    bars the engine holds for that period: the code <-> period mapping is asserted, not assumed."""
    engine = _hkrt.Engine([k.value for k in KType], [], True, 1)
    engine.collect_completed = True
    for day in ("2026-01-30", "2026-02-02"):  # a Friday that ends a week and a month, then a Monday
        for hhmmss, close, volume in (("09:30:05", 10.0, 100), ("10:42:10", 10.3, 700), ("14:59:50", 10.1, 900)):
            spot = hkrt.Spot("SH600000", f"{day} {hhmmss}", open=10, high=10.3, low=10, close=close,
                             volume=volume, amount=volume * 10.0)  # fmt: skip
            assert engine.ingest_one(spot) == "accepted"
    engine.advance_to(dt.datetime(2026, 2, 2, 16, 0))
    records = engine.take_completed()
    by_kind: dict[KType, set[object]] = {}
    for rec in records:
        by_kind.setdefault(KType.from_record_code(int(rec["ktype"])), set()).add(rec["datetime"])
    for kind, labels in by_kind.items():
        held = set(engine.bars("SH600000", kind.value)["datetime"])
        assert labels <= held, kind
        if kind.is_intraday or kind is KType.DAY:  # the day is over: every such bar was reported
            assert labels == held, kind
    assert len(by_kind[KType.MIN]) == 2 * 240 and len(by_kind[KType.HOUR2]) == 2 * 2
    assert {KType.WEEK, KType.MONTH} <= set(by_kind) and KType.YEAR not in by_kind


def test_bar_labels_are_the_engines_schedule() -> None:
    minute = bar_labels_ms(KType.MIN)
    assert len(minute) == china_time.MINUTES_PER_DAY
    assert (minute[0], minute[119], minute[120], minute[-1]) == tuple(
        _ms(dt.time(h, m)) for h, m in ((9, 31), (11, 30), (13, 1), (15, 0))
    )
    assert bar_labels_ms("HOUR2") == (_ms(dt.time(11, 30)), _ms(dt.time(15, 0)))
    assert bar_labels_ms("MIN30")[0] == _ms(dt.time(10, 0))
    with pytest.raises(ValueError, match="intraday"):
        bar_labels_ms("DAY")


def test_the_sane_market_time_range_is_the_cores() -> None:
    first, last = china_time.SANE_MARKET_TIME_MS
    assert (first, last) == tuple(_hkrt.SANE_MARKET_TIME_MS)
    assert china_time.market_time(first) == dt.datetime(1990, 1, 1, 8, 0)
    assert china_time.market_time(last) == dt.datetime(2200, 1, 1, 8, 0)
    assert china_time.market_time(0) is None and china_time.market_time(last + 1) is None


# ------------------------------------------------------------------ the trading calendar


def _reference_next(day: dt.date, closed: set[dt.date], step: int) -> dt.date:
    """The test's own reading of the rule: weekends and listed holidays never trade."""
    day += dt.timedelta(days=step)
    while day.weekday() >= 5 or day in closed:
        day += dt.timedelta(days=step)
    return day


def test_trading_day_walks_are_the_cores_and_the_rule() -> None:
    calendar = TradingCalendar.china()
    assert isinstance(calendar.core, _hkrt.TradingCalendar)
    assert tuple(calendar.core.holidays) == calendar.holidays and calendar.core.coverage == calendar.coverage
    closed = set(calendar.holidays)
    day = D("2024-01-02")
    while day < D("2026-12-01"):
        nxt = calendar.next_trading_day(day)
        assert nxt == calendar.core.next_trading_day(day) == _reference_next(day, closed, +1)
        assert calendar.previous_trading_day(nxt) == calendar.core.previous_trading_day(nxt)
        assert calendar.previous_trading_day(nxt) == _reference_next(nxt, closed, -1)
        assert calendar.last_trading_day(day) == calendar.core.trading_day_on_or_before(day)
        day += dt.timedelta(days=1)
    october = calendar.trading_days("2026-10-01", "2026-10-31")
    assert october == calendar.core.trading_days(D("2026-10-01"), D("2026-10-31")) and len(october) == 17


def test_the_core_calendar_takes_the_overlays_day_set(tmp_path: Path) -> None:
    holidays = tmp_path / "holidays.txt"
    holidays.write_text("2027-02-08\n2027-02-09\nthrough 2027-12-31\n", encoding="utf-8")
    base = TradingCalendar.china()
    with pytest.raises(CalendarCoverageError):
        base.next_trading_day("2026-12-31")  # the bundled table ends there
    extended = base.with_holidays_file(holidays)
    assert {D("2027-02-08"), D("2027-02-09")} <= set(extended.core.holidays)
    assert extended.core.coverage == (D("2005-01-01"), D("2027-12-31"))
    assert extended.next_trading_day("2027-02-05") == D("2027-02-10")  # Friday -> past the file's closures
    assert extended.next_trading_day("2026-12-31") == D("2027-01-01")  # the file does not close New Year: it trades
    assert period_label("WEEK", D("2027-02-10"), extended) == D("2027-02-12")


# ------------------------------------------------------------------ no second copy of any rule

_NAMES = "|".join(sorted(_hkrt.KTYPE_NAMES, key=len, reverse=True))


@dataclass(frozen=True)
class Restated:
    """How a rule looks when a module writes it again, and the one module allowed to (it reads it from C++)."""

    pattern: re.Pattern[str]
    home: frozenset[str] = frozenset()


_LITERAL_OFFSET = re.compile(r"\b28_?800\b|\b8\s*\*\s*3_?600\b|timedelta\(\s*hours\s*=\s*8\s*\)|Asia/Shanghai")

RULES: dict[str, Restated] = {
    "the UTC offset": Restated(_LITERAL_OFFSET, frozenset({"core/china_time.py"})),
    "local/UTC arithmetic on the offset": Restated(
        re.compile(r"[-+]\s*_?CHINA_\w*OFFSET\w*|\b_?CHINA_\w*OFFSET\w*\s*[-+*]"), frozenset({"core/china_time.py"})
    ),
    "the sane market-time range": Restated(re.compile(r"631_?152_?000_?000|7_?258_?118_?400_?000")),
    "a session time": Restated(
        re.compile(
            r"time\(\s*(9|11|13|15)\s*,\s*(0|15|30|5)\s*[,)]|\b(9|13)\s*\*\s*60\s*\+|\b(9|11|13|15)\s*\*\s*3_?600|(?<![\"'])[\"'](09:15|09:30|11:30|13:00|15:00)"
        )
    ),
    "a list of the periods": Restated(
        re.compile(rf"[\"']({_NAMES})[\"']\s*,\s*[\"']({_NAMES})[\"']|^\s*({_NAMES})\s*=\s*[\"']", re.MULTILINE),
        frozenset({"core/ktype.py"}),  # only in its generated block: test_ktype_members_are_only_the_generated_block
    ),
    "a table of period lengths": Restated(re.compile(rf"[\"']({_NAMES})[\"']\s*:\s*\d")),
    "an index into the list of periods": Restated(re.compile(r"\.index\(\s*(KType\b|ktype\b|k\b)|KTYPES\[\s*int\(")),
    "a walk over days to a trading day": Restated(
        re.compile(r"is_trading_day\([^\n]*\n(?:[^\n]*\n){0,6}?[^\n]*[-+]=\s*(dt\.)?timedelta\(days=1\)")
    ),
    "the weekend rule": Restated(re.compile(r"weekday\(\)\s*(<|>|==|!=|in\b)")),
    "a period boundary": Restated(
        re.compile(
            r"\.replace\(\s*(month\s*=\s*1\s*,\s*)?day\s*=\s*1\s*\)|\(\s*\w+\.month\s*-\s*1\s*\)\s*//\s*3|days=\w+\.weekday\(\)"
        )
    ),
}


def _offenders(root: Path, rule: Restated) -> set[str]:
    found = set()
    for path in root.rglob("*.py"):
        rel = path.relative_to(root).as_posix()
        if rel not in rule.home and rule.pattern.search(path.read_text(encoding="utf-8")):
            found.add(rel)
    return found


@pytest.mark.parametrize(
    ("rule", "texts"),
    [
        ("the UTC offset", ["x = 28800\n", "x = 8 * 3600 * 1000\n", "dt.timedelta(hours=8)\n", "'Asia/Shanghai'\n"]),
        ("local/UTC arithmetic on the offset", ["t = ms + CHINA_UTC_OFFSET_MS\n", "x - CHINA_UTC_OFFSET\n"]),
        ("the sane market-time range", ["SANE = (631_152_000_000, 1)\n"]),
        (
            "a session time",
            [
                "OPEN = dt.time(9, 30)\n",
                "x = (13 * 60 + 1) * 60_000\n",
                "t = 15 * 3600 * 1000\n",
                "p = '09:15-11:31'\n",
            ],
        ),
        ("a list of the periods", ['K = ("WEEK", "MONTH")\n', '    MIN5 = "MIN5"\n']),
        ("a table of period lengths", ['M = {"MIN5": 5}\n']),
        ("an index into the list of periods", ["code = ALL.index(KType.DAY)\n", "k = KTYPES[int(rec['ktype'])]\n"]),
        (
            "a walk over days to a trading day",
            ["while not cal.is_trading_day(d):\n    d -= dt.timedelta(days=1)\n"],
        ),
        ("the weekend rule", ["if d.weekday() < 5:\n"]),
        ("a period boundary", ["first = d.replace(day=1)\n", "monday = d - dt.timedelta(days=d.weekday())\n"]),
    ],
)
def test_the_scan_finds_each_spelling(tmp_path: Path, rule: str, texts: list[str]) -> None:
    for i, text in enumerate(texts):
        (tmp_path / f"m{i}.py").write_text(text, encoding="utf-8")
    (tmp_path / "clean.py").write_text("x = 3600 * 8_000\nfrom hkrt.core.china_time import CHINA_UTC_OFFSET_MS\n")
    for home in RULES[rule].home:
        (tmp_path / home).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / home).write_text(texts[0], encoding="utf-8")
    assert _offenders(tmp_path, RULES[rule]) == {f"m{i}.py" for i in range(len(texts))}


@pytest.mark.parametrize("rule", list(RULES))
def test_no_module_restates_a_rule_of_the_core(rule: str) -> None:
    found = _offenders(PACKAGE, RULES[rule])
    assert not found, f"{rule} restated in {sorted(found)}"


def test_the_one_calendar_module_computes_no_trading_day() -> None:
    """hkrt.core.calendar asks the core: no walk over days, no weekend rule, no holiday-set lookups."""
    source = (PACKAGE / "core" / "calendar.py").read_text(encoding="utf-8")
    assert not re.search(r"weekday\(\)\s*[<>=]|timedelta\(days=1\)\)\s*$|in self\._holidays", source, re.MULTILINE)
