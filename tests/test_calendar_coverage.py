"""The trading calendar never answers past its coverage: it raises one clear line, extends from a
holidays file, from exchange_calendars (a faithful stand-in module here) or in code, and
`hkrt spot-server` warns before the table runs out."""

from __future__ import annotations

import datetime as dt
import logging
import os
import pickle
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt.cli import main
from hkrt.core.calendar import (
    CHINA_HOLIDAYS_FROM,
    CHINA_HOLIDAYS_THROUGH,
    HOLIDAYS_FILE_ENV,
    MAX_HOLIDAYS_FILE_BYTES,
    CalendarCoverageError,
    CoverageWatch,
    TradingCalendar,
    coverage_warning,
    log_coverage_warning,
)

ROOT = Path(__file__).resolve().parents[1]
D = dt.date.fromisoformat
HOW = (
    "extend it with a holidays file (HKRT_HOLIDAYS_FILE=PATH or TradingCalendar.with_holidays_file), "
    "TradingCalendar.with_exchange_calendars() or with_holidays(..., through=); see docs/calendar.md"
)
# Test data only: a made-up 2027 (New Year's Day and a Spring Festival week), not the real schedule.
FILE_2027 = "# 2027 closures (test data)\n\n2027-01-01  # New Year\n2027-02-08\n2027-02-09\nthrough 2027-12-31\n"


@pytest.fixture(autouse=True)
def _no_holidays_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(HOLIDAYS_FILE_ENV, raising=False)


def write(tmp_path: Path, text: str | bytes, name: str = "holidays.txt") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8", newline="")
    return path


# ----------------------------------------------------------------- the coverage bound
def test_the_last_covered_day_answers_and_the_first_day_after_raises_one_line() -> None:
    cal = TradingCalendar.china()
    assert cal.coverage == (D("2005-01-01"), D("2026-12-31")) == (CHINA_HOLIDAYS_FROM, CHINA_HOLIDAYS_THROUGH)
    assert cal.is_trading_day("2026-12-31") and not cal.is_holiday("2026-12-31")  # a Thursday
    assert cal.covers("2026-12-31") and not cal.covers("2027-01-01") and not cal.covers("2004-12-31")
    with pytest.raises(CalendarCoverageError) as caught:
        cal.is_trading_day(dt.date(2027, 1, 4))
    err = caught.value
    assert str(err) == (
        "2027-01-04 is outside the trading calendar's coverage (2005-01-01 to 2026-12-31): "
        "it cannot say whether that day trades; " + HOW
    )
    assert isinstance(err, ValueError) and err.day == D("2027-01-04") and err.coverage == cal.coverage
    again = pickle.loads(pickle.dumps(err))  # crosses process boundaries intact
    assert str(again) == str(err) and again.day == err.day
    for ask in (
        lambda: cal.is_trading_day("2027-01-01"),  # a Friday: once silently a trading day
        lambda: cal.is_holiday(dt.datetime(2027, 1, 1, 10, 0)),
        lambda: cal.trading_days("2026-12-28", "2027-01-08"),
        lambda: cal.trading_days("2004-12-27", "2005-01-07"),
        lambda: cal.is_trading_day("2004-12-31"),
    ):
        with pytest.raises(CalendarCoverageError, match=r"coverage \(2005-01-01 to 2026-12-31\)"):
            ask()
    assert cal.trading_days("2026-12-28", "2026-12-31") == [D("2026-12-28"), D("2026-12-29"), D("2026-12-30"),
                                                            D("2026-12-31")]  # fmt: skip
    assert cal.trading_days("2027-01-08", "2027-01-04") == []  # an empty range asks about no day
    assert repr(cal) == f"TradingCalendar({len(cal.holidays)} holidays, 2005-01-01 to 2026-12-31)"


def test_a_calendar_without_coverage_stays_unbounded() -> None:
    cal = TradingCalendar(["2027-01-01"])
    assert cal.coverage is None and cal.covers("2999-01-01")
    assert not cal.is_trading_day("2027-01-01") and cal.is_trading_day("2027-01-04")
    assert cal.next_trading_day("2026-12-31") == D("2027-01-04")
    assert cal.trading_days("1990-01-01", "1990-01-05") == [D("1990-01-01") + dt.timedelta(days=i) for i in range(5)]


def test_next_and_previous_trading_day_stop_at_the_coverage() -> None:
    cal = TradingCalendar.china()
    assert cal.next_trading_day("2026-09-30") == D("2026-10-08")  # National Day: Oct 1, 2, 5, 6, 7 closed
    assert cal.previous_trading_day("2026-10-08") == D("2026-09-30")
    assert cal.next_trading_day("2026-12-30") == D("2026-12-31")
    assert cal.previous_trading_day("2026-11-23") == D("2026-11-20")  # Monday -> Friday
    with pytest.raises(CalendarCoverageError, match=r"^2027-01-01 is outside"):
        cal.next_trading_day("2026-12-31")  # never a guess at 2027-01-01
    with pytest.raises(CalendarCoverageError, match=r"^2004-12-31 is outside"):
        cal.previous_trading_day("2005-01-04")  # 2005-01-03 closed, then a weekend, then outside
    with pytest.raises(CalendarCoverageError, match=r"^2027-01-04 is outside"):
        cal.previous_trading_day("2027-01-04")


@settings(max_examples=200, deadline=None)
@given(
    holidays=st.sets(st.dates(D("2020-01-01"), D("2020-12-31")), max_size=60),
    first=st.dates(D("2020-01-01"), D("2020-06-30")),
    length=st.integers(0, 200),
    day=st.dates(D("2019-10-01"), D("2021-03-31")),
)
def test_property_inside_the_coverage_weekdays_minus_holidays_outside_it_raises(
    holidays: set[dt.date], first: dt.date, length: int, day: dt.date
) -> None:
    last = first + dt.timedelta(days=length)
    cal = TradingCalendar(holidays, coverage=(first, last))
    if first <= day <= last:
        assert cal.covers(day)
        assert cal.is_trading_day(day) == (day.weekday() < 5 and day not in holidays)
        assert cal.is_holiday(day) == (day in holidays)
        assert cal.trading_days(day, day) == ([day] if cal.is_trading_day(day) else [])
    else:
        assert not cal.covers(day)
        for ask in (cal.is_trading_day, cal.is_holiday, cal.next_trading_day, cal.previous_trading_day):
            with pytest.raises(CalendarCoverageError, match=f"^{day} is outside .*coverage \\({first} to {last}\\)"):
                ask(day)


CHINA = TradingCalendar.china()
CHINA_HOLIDAYS = set(CHINA.holidays)


@settings(max_examples=300, deadline=None)
@given(day=st.dates(D("2003-01-01"), D("2029-12-31")))
def test_property_the_bundled_table(day: dt.date) -> None:
    if CHINA_HOLIDAYS_FROM <= day <= CHINA_HOLIDAYS_THROUGH:
        assert CHINA.is_trading_day(day) == (day.weekday() < 5 and day not in CHINA_HOLIDAYS)
    else:
        with pytest.raises(CalendarCoverageError):
            CHINA.is_trading_day(day)


# ----------------------------------------------------------------- extending from a file
def test_a_holidays_file_extends_the_coverage(tmp_path: Path) -> None:
    base = TradingCalendar.china()
    cal = base.with_holidays_file(write(tmp_path, FILE_2027))
    assert cal.coverage == (D("2005-01-01"), D("2027-12-31"))
    assert cal.is_holiday("2027-01-01") and not cal.is_trading_day("2027-01-01")
    assert cal.is_trading_day("2027-01-04")
    assert cal.next_trading_day("2026-12-31") == D("2027-01-04")
    assert cal.trading_days("2027-02-05", "2027-02-12") == [D("2027-02-05"), D("2027-02-10"), D("2027-02-11"),
                                                            D("2027-02-12")]  # fmt: skip
    assert cal.is_holiday("2026-10-01")  # the bundled table is kept
    with pytest.raises(CalendarCoverageError, match=r"^2028-01-03 is outside .*\(2005-01-01 to 2027-12-31\)"):
        cal.is_trading_day("2028-01-03")
    assert base.coverage == (D("2005-01-01"), D("2026-12-31"))  # a new calendar; the old one is unchanged


def test_a_holidays_file_tolerates_a_bom_crlf_comments_and_blank_lines(tmp_path: Path) -> None:
    text = "\ufeff# closures\r\n\r\n  2027-01-01   # New Year's Day\r\nTHROUGH 2027-03-31  # as far as we know\r\n"
    cal = TradingCalendar.china().with_holidays_file(write(tmp_path, text))
    assert cal.coverage is not None and cal.coverage[1] == D("2027-03-31")
    assert cal.holidays[-1] == D("2027-01-01")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2027-1-4\nthrough 2027-12-31\n", "line 1: '2027-1-4' is not a date YYYY-MM-DD (one holiday a line)"),
        ("through 2027-12-31\n2027-02-30\n", "line 2: '2027-02-30' is not a date YYYY-MM-DD"),
        ("2027-01-01 2027-01-04\nthrough 2027-12-31\n", "line 1: '2027-01-01 2027-01-04' is not a date"),
        ("# x\n2027-01-02\nthrough 2027-12-31\n", "line 2: 2027-01-02 is a Saturday: list only weekdays"),
        ("2027-01-01\n", "no 'through YYYY-MM-DD' line: name the last day the table is right for"),
        ("through 2027-12-31\nthrough 2028-12-31\n", "line 2: a second 'through' line (the first is line 1)"),
        ("through 2027-12-31\n2028-01-03\n", "line 2: holiday 2028-01-03 is after 'through 2027-12-31' (line 1)"),
        ("through next year\n", "line 1: 'through next year': expected 'through YYYY-MM-DD'"),
        (b"2027-01-01\n\xff\xfe\nthrough 2027-12-31\n", "not UTF-8 text"),
        (b"2027-01-01\n" * (MAX_HOLIDAYS_FILE_BYTES // 11 + 1), f"larger than {MAX_HOLIDAYS_FILE_BYTES:,} bytes"),
    ],
)
def test_a_bad_holidays_file_is_one_line_naming_the_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as caught:
        TradingCalendar.china().with_holidays_file(path)
    assert "\n" not in str(caught.value)
    assert str(caught.value).startswith(str(path)) and message in str(caught.value)


def test_a_missing_holidays_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^cannot read holidays file .*nope\.txt: No such file"):
        TradingCalendar.china().with_holidays_file(tmp_path / "nope.txt")


def test_the_environment_variable_extends_every_default_calendar(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monday = hkrt.Spot("SH600000", "2027-01-04 10:00:00", open=10, high=10, low=10, close=10, volume=100, amount=1000)
    bounded = hkrt.SpotAgent(["MIN"])
    assert bounded.ingest(monday) == 0 and bounded.stats()["rejected"]["outside_calendar"] == 1
    monkeypatch.setenv(HOLIDAYS_FILE_ENV, str(write(tmp_path, FILE_2027)))
    assert TradingCalendar.china().coverage == (D("2005-01-01"), D("2027-12-31"))
    extended = hkrt.SpotAgent(["MIN"])  # its default calendar, and the engine's coverage, follow the file
    assert extended.ingest(monday) == 1 and len(extended.kdata("SH600000", "MIN")) == 1
    monkeypatch.setenv(HOLIDAYS_FILE_ENV, str(write(tmp_path, "2027-01-01\n", "bad.txt")))
    with pytest.raises(ValueError, match=r"bad\.txt: no 'through YYYY-MM-DD' line"):
        TradingCalendar.china()


def test_extending_in_code() -> None:
    cal = TradingCalendar.china().with_holidays(["2027-01-01"], through="2027-01-31")
    assert cal.coverage == (D("2005-01-01"), D("2027-01-31"))
    assert not cal.is_trading_day("2027-01-01") and cal.is_trading_day("2027-01-29")
    with pytest.raises(CalendarCoverageError):
        cal.is_trading_day("2027-02-01")


# ------------------------------------------------------------- extending from exchange_calendars
XSHG_FIRST = D("2006-11-29")  # 20 years before "now": exchange_calendars' default start


def fake_exchange_calendars(closed: set[dt.date], last: dt.date, first: dt.date = XSHG_FIRST) -> types.ModuleType:
    """A stand-in for the documented exchange_calendars API: get_calendar("XSHG") returns an object
    with .sessions (a tz-naive DatetimeIndex of session dates), .first_session, .last_session and
    is_session(date); an unknown name raises (InvalidCalendarName, a KeyError there)."""
    sessions = pd.DatetimeIndex([d for d in pd.bdate_range(first, last) if d.date() not in closed])

    class XSHG:
        name = "XSHG"

        def __init__(self) -> None:
            self.sessions = sessions
            self.first_session = sessions[0]
            self.last_session = sessions[-1]

        def is_session(self, date: object) -> bool:
            return pd.Timestamp(date) in self.sessions  # type: ignore[arg-type]

    module = types.ModuleType("exchange_calendars")

    def get_calendar(name: str) -> XSHG:
        if name != "XSHG":
            raise KeyError(f"Invalid calendar name {name!r}")
        return XSHG()

    module.get_calendar = get_calendar  # type: ignore[attr-defined]
    return module


def test_extending_from_exchange_calendars(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stand-in also closes 2026-11-20 (a Friday the bundled table opens): only days after the
    # coverage are taken from it, the table already vouched for is kept.
    closed = {D("2026-11-20"), D("2027-01-01"), D("2027-02-08"), D("2027-02-09")}
    monkeypatch.setitem(sys.modules, "exchange_calendars", fake_exchange_calendars(closed, D("2027-12-31")))
    cal = TradingCalendar.china().with_exchange_calendars()
    assert cal.coverage == (D("2005-01-01"), D("2027-12-31"))
    assert cal.is_holiday("2027-01-01") and cal.is_trading_day("2027-01-04")
    assert cal.holidays[-3:] == (D("2027-01-01"), D("2027-02-08"), D("2027-02-09"))
    assert cal.is_trading_day("2026-11-20")
    assert set(cal.holidays) - set(TradingCalendar.china().holidays) == closed - {D("2026-11-20")}
    part = TradingCalendar.china().with_exchange_calendars(through="2027-01-31")
    assert part.coverage == (D("2005-01-01"), D("2027-01-31")) and part.holidays[-1] == D("2027-01-01")
    with pytest.raises(CalendarCoverageError, match=r"^2027-02-01 is outside"):
        part.is_trading_day("2027-02-01")
    with pytest.raises(ValueError, match="no coverage bound"):
        TradingCalendar().with_exchange_calendars()


def test_exchange_calendars_never_guesses_past_its_own_table(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "exchange_calendars", fake_exchange_calendars(set(), D("2026-12-31")))
    with caplog.at_level(logging.WARNING, logger="hkrt.calendar"):
        cal = TradingCalendar.china().with_exchange_calendars(through="2027-12-31")
    assert cal.coverage == (D("2005-01-01"), D("2026-12-31"))  # nothing invented for 2027
    [record] = [r for r in caplog.records if r.name == "hkrt.calendar"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(
        "exchange_calendars' XSHG ends on 2026-12-31: the calendar's coverage now ends on 2026-12-31, not 2027-12-31"
    )
    # a last session before the year's end (here 2027-06-30): coverage stops there
    monkeypatch.setitem(sys.modules, "exchange_calendars", fake_exchange_calendars(set(), D("2027-06-30")))
    assert TradingCalendar.china().with_exchange_calendars().coverage == (D("2005-01-01"), D("2027-06-30"))
    # a calendar whose sessions start after the coverage ends would leave a gap
    monkeypatch.setitem(sys.modules, "exchange_calendars", fake_exchange_calendars(set(), D("2027-06-30"),
                                                                                   first=D("2027-01-04")))  # fmt: skip
    with pytest.raises(ValueError, match="starts on 2027-01-04, after this calendar's coverage ends"):
        TradingCalendar.china().with_exchange_calendars()


def test_without_exchange_calendars_the_error_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "exchange_calendars", None)  # import raises ModuleNotFoundError
    with pytest.raises(ImportError) as caught:
        TradingCalendar.china().with_exchange_calendars()
    assert str(caught.value) == (
        "exchange_calendars is not installed: pip install exchange_calendars "
        "(or extend the calendar from a holidays file: see docs/calendar.md)"
    )


def test_exchange_calendars_is_imported_only_when_asked(tmp_path: Path) -> None:
    # A real module on the path (not sys.modules surgery): `import hkrt` and its CLI must not load it.
    package = tmp_path / "site" / "exchange_calendars"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import pandas as pd

            class _XSHG:
                sessions = pd.bdate_range("2006-11-29", "2027-03-31").drop(pd.Timestamp("2027-01-01"))
                first_session, last_session = sessions[0], sessions[-1]

                def is_session(self, date):
                    return pd.Timestamp(date) in self.sessions

            def get_calendar(name):
                return _XSHG()
            """
        ),
        encoding="utf-8",
    )
    code = (
        "import sys, hkrt, hkrt.cli, hkrt.core.calendar\n"
        "print('loaded' if 'exchange_calendars' in sys.modules else 'lazy')\n"
        "cal = hkrt.TradingCalendar.china().with_exchange_calendars()\n"
        "print(cal.coverage[1], cal.is_holiday('2027-01-01'), cal.is_trading_day('2027-01-04'))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site")}
    env.pop(HOLIDAYS_FILE_ENV, None)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n")[:2] == ["lazy", "2027-03-31 True True"]


# ------------------------------------------------------------------- warning ahead
def test_coverage_warning_hand_computed() -> None:
    cal = TradingCalendar.china()
    assert coverage_warning(cal, "2026-11-29") is None  # 32 days left
    assert coverage_warning(cal, "2026-11-30") is None  # 31
    assert coverage_warning(cal, "2026-12-01") == (
        "the trading calendar ends on 2026-12-31, in 30 days: later days will be refused (outside_calendar); "
        "the exchanges publish next year's closures around November-December; " + HOW
    )
    assert "in 1 day:" in (coverage_warning(cal, "2026-12-30") or "")
    assert "ends on 2026-12-31, today:" in (coverage_warning(cal, "2026-12-31") or "")
    assert coverage_warning(cal, "2027-01-01") == (
        "the trading calendar ended on 2026-12-31, 1 day ago: every later day is refused (outside_calendar) "
        "and the calendar raises for it; " + HOW
    )
    assert "ended on 2026-12-31, 5 days ago" in (coverage_warning(cal, "2027-01-05") or "")
    assert coverage_warning(cal, "2026-12-20", days=7) is None
    assert coverage_warning(cal, "2026-12-24", days=7) is not None
    assert coverage_warning(TradingCalendar(["2027-01-01"]), "2099-01-01") is None  # unbounded


def test_log_coverage_warning_levels(caplog: pytest.LogCaptureFixture) -> None:
    cal = TradingCalendar.china()
    with caplog.at_level(logging.INFO, logger="hkrt.calendar"):
        assert log_coverage_warning(cal, "2026-06-01") is None
        log_coverage_warning(cal, "2026-12-21")
        log_coverage_warning(cal, "2027-01-04")
    records = [r for r in caplog.records if r.name == "hkrt.calendar"]
    assert [(r.levelno, getattr(r, "days_left", None)) for r in records] == [(logging.WARNING, 10), (logging.ERROR, -4)]
    assert (
        getattr(records[0], "coverage_end", None) == "2026-12-31" and getattr(records[1], "today", None) == "2027-01-04"
    )


def test_coverage_watch_warns_once_a_day_while_running(caplog: pytest.LogCaptureFixture) -> None:
    today = [D("2026-12-20")]
    watch = CoverageWatch(TradingCalendar.china(), clock=lambda: today[0], every=0.01)
    with caplog.at_level(logging.WARNING, logger="hkrt.calendar"), watch:
        assert watch.warnings == 1  # at start, before any wait
        time.sleep(0.2)  # many checks on the same day: still one line
        assert watch.warnings == 1
        today[0] = D("2026-12-21")
        deadline = time.monotonic() + 10
        while watch.warnings < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watch.warnings == 2
    assert not any(t.name == "hkrt-calendar-watch" for t in threading.enumerate())
    lines = [r.getMessage() for r in caplog.records if r.name == "hkrt.calendar"]
    assert [line.split(":")[0] for line in lines] == [
        "the trading calendar ends on 2026-12-31, in 11 days",
        "the trading calendar ends on 2026-12-31, in 10 days",
    ]
    quiet = CoverageWatch(TradingCalendar(), clock=lambda: today[0]).start()  # unbounded: no thread at all
    assert quiet._thread is None and quiet.warnings == 0
    quiet.stop()


# ------------------------------------------------------------------- hkrt spot-server
@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Result]]:
    """Runs spot-server in-process with a fake China clock; restores what the command changes
    (the hkrt logger's handlers, SIGTERM)."""
    import signal

    import hkrt.feed.server

    logger = logging.getLogger("hkrt")
    handlers, level, sigterm = logger.handlers[:], logger.level, signal.getsignal(signal.SIGTERM)

    def invoke(today: str, *args: str) -> Result:
        monkeypatch.setattr(hkrt.feed.server, "china_now", lambda: dt.datetime.fromisoformat(today + " 09:00:00"))
        return CliRunner().invoke(main, ["spot-server", *args])

    yield invoke
    logger.handlers[:] = handlers
    logger.setLevel(level)
    signal.signal(signal.SIGTERM, sigterm)


def sim_args(tmp_path: Path, day: str) -> list[str]:
    return ["--source", "sim", "--date", day, "--symbols", "2", "--interval", "120", "--speed", "1000000",
            "--address", f"ipc://{tmp_path / 'feed.ipc'}"]  # fmt: skip


def test_spot_server_warns_at_startup_when_the_table_nears_its_end(
    tmp_path: Path, cli_env: Callable[..., Result], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="hkrt.calendar"):
        result = cli_env("2026-12-10", *sim_args(tmp_path, "2026-11-20"))
    assert result.exit_code == 0, result.output
    [record] = [r for r in caplog.records if r.name == "hkrt.calendar"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith("the trading calendar ends on 2026-12-31, in 21 days")
    assert "simulated market: 2 symbols, 2026-11-20" in result.output
    assert not any(t.name == "hkrt-calendar-watch" for t in threading.enumerate())  # stopped with the command

    caplog.clear()  # past the end: an ERROR line, and a past day still serves
    with caplog.at_level(logging.WARNING, logger="hkrt.calendar"):
        result = cli_env("2027-01-05", *sim_args(tmp_path, "2026-11-20"))
    assert result.exit_code == 0, result.output
    [record] = [r for r in caplog.records if r.name == "hkrt.calendar"]
    assert record.levelno == logging.ERROR and "ended on 2026-12-31, 5 days ago" in record.getMessage()


def test_spot_server_refuses_a_day_past_the_table_in_one_line(tmp_path: Path, cli_env: Callable[..., Result]) -> None:
    result = cli_env("2027-01-04", "--source", "qq", "--codes", "SH600000")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "Error: today: 2027-01-04 is outside the trading calendar's coverage (2005-01-01 to 2026-12-31): "
        "it cannot say whether that day trades; " + HOW
    ]
    result = cli_env("2026-12-10", *sim_args(tmp_path, "2027-01-04"))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "Error: --date: 2027-01-04 is outside the trading calendar's coverage (2005-01-01 to 2026-12-31): "
        "it cannot say whether that day trades; " + HOW
    ]


def test_spot_server_follows_the_holidays_file(
    tmp_path: Path, cli_env: Callable[..., Result], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOLIDAYS_FILE_ENV, str(write(tmp_path, FILE_2027)))
    result = cli_env("2027-01-04", *sim_args(tmp_path, "2027-01-04"))
    assert result.exit_code == 0, result.output
    assert "simulated market: 2 symbols, 2027-01-04" in result.output
    monkeypatch.setenv(HOLIDAYS_FILE_ENV, str(write(tmp_path, "2027-01-01\nthrough 2027-12-31\n2028-01-03\n", "b.txt")))
    result = cli_env("2027-01-04", *sim_args(tmp_path, "2027-01-04"))
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        f"Error: HKRT_HOLIDAYS_FILE: {tmp_path / 'b.txt'}, line 3: holiday 2028-01-03 is after "
        "'through 2027-12-31' (line 2): move 'through' to the last day the table is right for"
    ]


def test_spot_server_bad_holidays_file_as_a_process(tmp_path: Path) -> None:
    env = {**os.environ, HOLIDAYS_FILE_ENV: str(write(tmp_path, "2027-13-01\nthrough 2027-12-31\n"))}
    run = subprocess.run([sys.executable, "-m", "hkrt", "spot-server", "--source", "sim"],
                         capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert run.returncode == 2
    assert "Traceback" not in run.stderr and run.stdout == ""
    assert run.stderr.splitlines() == [f"Error: HKRT_HOLIDAYS_FILE: {tmp_path / 'holidays.txt'}, line 1: "
                                       "'2027-13-01' is not a date YYYY-MM-DD (one holiday a line) "
                                       "or 'through YYYY-MM-DD'"]  # fmt: skip


# ------------------------------------------------------------------- the callers
def test_the_pull_schedule_never_guesses_past_the_table() -> None:
    from hkrt.feed.server import Phase, PullSchedule

    schedule = PullSchedule([Phase.parse("09:15-11:31")], TradingCalendar.china())
    assert schedule.next_start(dt.datetime(2026, 12, 30, 16, 0)) == dt.datetime(2026, 12, 31, 9, 15)
    with pytest.raises(CalendarCoverageError, match=r"^2027-01-01 is outside"):
        schedule.next_start(dt.datetime(2026, 12, 31, 16, 0))  # once: 2027-01-01 09:15, a guess


def test_the_strategy_timers_never_fire_on_a_guessed_day() -> None:
    from hkrt.strategy.timers import TimerSet

    timers = TimerSet(TradingCalendar.china())
    timers.add(lambda: None, at=dt.time(9, 31))
    timers.advance(dt.datetime(2026, 12, 31, 9, 0))
    assert [t for t, _ in timers.advance(dt.datetime(2026, 12, 31, 9, 40))] == [dt.datetime(2026, 12, 31, 9, 31)]
    with pytest.raises(CalendarCoverageError, match=r"^2027-01-01 is outside"):
        timers.advance(dt.datetime(2027, 1, 1, 9, 40))


def test_hkrt_run_on_a_day_past_the_table_is_one_line() -> None:
    args = ["run", str(ROOT / "examples" / "ma_cross.py"), "--source", "sim", "--date", "2027-01-04"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    assert result.output.splitlines()[-1].startswith("Error: 2027-01-04 is outside the trading calendar's coverage")


def test_hkrt_demo_on_a_day_past_the_table_is_one_line() -> None:
    result = CliRunner().invoke(main, ["demo", "--date", "2027-01-04"])
    assert result.exit_code == 2 and isinstance(result.exception, SystemExit)  # a bad --date, no traceback
    last = result.output.splitlines()[-1]
    assert last.startswith("Error: ") and "2027-01-04 is outside the trading calendar's coverage" in last


def test_a_live_strategy_past_the_table_does_not_raise_every_second(monkeypatch: pytest.MonkeyPatch) -> None:
    import hkrt.strategy.strategy as strategy_module

    monkeypatch.setattr(strategy_module, "_china_now", lambda: dt.datetime(2027, 1, 4, 10, 0))
    strategy = hkrt.Strategy(["SH600000"])
    strategy._wall_tick()  # posted to the callback thread every second of a live run
