"""Exchange trading calendar: weekdays that are not exchange holidays.

The engine takes its calendar from here (injectable), never from the wall clock, so any
past day replays exactly.  ``TradingCalendar.china()`` covers SSE/SZSE/BSE closures from
2005 through ``CHINA_HOLIDAYS_THROUGH`` (plus the file named by ``HKRT_HOLIDAYS_FILE``, when
set).  A day outside a calendar's ``coverage`` is one it cannot vouch for: every method that
answers about a day raises :class:`CalendarCoverageError` for it, and the engine rejects spots
of such a day (``outside_calendar``) rather than aggregate them on a guessed calendar.
Extend the coverage with a holidays file (:meth:`TradingCalendar.with_holidays_file`), from
``exchange_calendars`` (:meth:`TradingCalendar.with_exchange_calendars`) or in code
(:meth:`TradingCalendar.with_holidays` with ``through=``).  See docs/calendar.md.

The rules themselves (weekends never trade, a holiday closes a weekday, which trading day comes
next or before, the trading days between two days) are the C++ core's (cpp/kdata/calendar.h), the
calendar the engine uses: this module builds it from the day set (bundled table, holidays file,
exchange_calendars overlay) and asks it, so Python computes no trading day itself.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import threading
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from hkrt import _hkrt
from hkrt.core.china_time import china_today

CHINA_HOLIDAYS_THROUGH = dt.date(2026, 12, 31)
CHINA_HOLIDAYS_FROM = dt.date(2005, 1, 1)
HOLIDAYS_FILE_ENV = "HKRT_HOLIDAYS_FILE"  # extends TradingCalendar.china() for every command at once
MAX_HOLIDAYS_FILE_BYTES = 1_000_000  # a year's closures take ~200 bytes: anything near this is not a holidays file

log = logging.getLogger("hkrt.calendar")

_HOW_TO_EXTEND = (
    "extend it with a holidays file (HKRT_HOLIDAYS_FILE=PATH or TradingCalendar.with_holidays_file), "
    "TradingCalendar.with_exchange_calendars() or with_holidays(..., through=); see docs/calendar.md"
)
_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_NO_HOLIDAYS = _hkrt.TradingCalendar()  # the core's weekday rule alone: which days could trade at all


class CalendarCoverageError(ValueError):
    """A day outside a calendar's coverage: the calendar cannot say whether it trades.

    ``day`` is the day asked about, ``coverage`` the calendar's (first, last) day.  The message
    is one line naming both and the ways to extend the calendar.
    """

    def __init__(self, day: dt.date, coverage: tuple[dt.date, dt.date]) -> None:
        self.day = day
        self.coverage = coverage
        first, last = coverage
        super().__init__(
            f"{day} is outside the trading calendar's coverage ({first} to {last}): "
            f"it cannot say whether that day trades; {_HOW_TO_EXTEND}"
        )

    def __reduce__(self) -> tuple[Any, ...]:  # picklable across processes despite the two arguments
        return (type(self), (self.day, self.coverage))


class TradingCalendar:
    """Trading days are Monday to Friday minus the given holidays.

    ``coverage`` = (first, last) day the holiday table is known to be right for: a day outside
    it raises :class:`CalendarCoverageError` wherever the calendar is asked about it.  None
    (the default for a calendar built from a list) = unbounded: every day is answered.
    """

    def __init__(
        self, holidays: Iterable[dt.date | str] = (), coverage: tuple[dt.date | str, dt.date | str] | None = None
    ) -> None:
        self._coverage = None if coverage is None else (_to_date(coverage[0]), _to_date(coverage[1]))
        self._core = _hkrt.TradingCalendar([_to_date(d) for d in holidays], self._coverage)

    @property
    def core(self) -> _hkrt.TradingCalendar:
        """The C++ calendar answering every question about a day (the engine's own type)."""
        return self._core

    def __reduce__(self) -> tuple[Any, ...]:  # picklable: rebuilt from its day set in the other process
        return (type(self), (self.holidays, self._coverage))

    @classmethod
    def china(cls) -> TradingCalendar:
        """Shanghai / Shenzhen / Beijing exchange closures on weekdays (bundled table), covering
        2005-01-01 through :data:`CHINA_HOLIDAYS_THROUGH`, extended by the holidays file named in
        the ``HKRT_HOLIDAYS_FILE`` environment variable when it is set (a bad file raises
        ValueError naming the file and line)."""
        calendar = cls(_china_holidays(), coverage=(CHINA_HOLIDAYS_FROM, CHINA_HOLIDAYS_THROUGH))
        extra = os.environ.get(HOLIDAYS_FILE_ENV, "").strip()
        if not extra:
            return calendar
        try:
            return calendar.with_holidays_file(extra)
        except ValueError as err:  # one line naming the variable (hkrt.core.settings_env's rule)
            raise ValueError(f"{HOLIDAYS_FILE_ENV}: {err}") from None

    @property
    def coverage(self) -> tuple[dt.date, dt.date] | None:
        """(first, last) day the holiday table is known to be right for; None = unbounded."""
        return self._coverage

    @property
    def holidays(self) -> tuple[dt.date, ...]:
        """The holidays, sorted (weekends are closed without being listed)."""
        days: list[dt.date] = self._core.holidays
        return tuple(days)

    # ------------------------------------------------------------------ extending
    def with_holidays(self, extra: Iterable[dt.date | str], *, through: dt.date | str | None = None) -> TradingCalendar:
        """This calendar plus ``extra`` holidays; ``through`` extends its coverage to that day
        (the exchanges publish each year's closures in December)."""
        coverage = self._coverage
        if through is not None:
            first = coverage[0] if coverage else dt.date.min
            coverage = (first, max(_to_date(through), coverage[1] if coverage else dt.date.min))
        return TradingCalendar([*self.holidays, *extra], coverage=coverage)

    def with_holidays_file(self, path: str | os.PathLike[str]) -> TradingCalendar:
        """This calendar plus the holidays of a text file, its coverage extended to the file's
        ``through`` day.

        The file: one ISO date (YYYY-MM-DD) per line, each a weekday the exchanges are closed;
        ``#`` starts a comment; blank lines are skipped; exactly one line ``through YYYY-MM-DD``
        names the last day the table (this calendar plus the file) is right for.  Any other line,
        a weekend date, a holiday after ``through`` or a file over
        :data:`MAX_HOLIDAYS_FILE_BYTES` raises ValueError naming the file and the line.
        """
        holidays, through = _read_holidays_file(Path(path).expanduser())
        return self.with_holidays(holidays, through=through)

    def with_exchange_calendars(self, through: dt.date | str | None = None) -> TradingCalendar:
        """This calendar extended from the ``exchange_calendars`` package's XSHG calendar.

        Every weekday after this calendar's coverage up to ``through`` (default: as far as XSHG
        goes), and no later than XSHG's last session, that is not an XSHG session becomes a
        holiday; the coverage extends to that day.  XSHG's holidays are recorded year by year, so
        it never guesses past its own table.  Stopping short of ``through`` is logged at WARNING
        (upgrade exchange_calendars for the new year).  Raises ImportError (one line) when the
        package is not installed; it is imported here only, never by ``import hkrt``.
        """
        if self._coverage is None:
            raise ValueError("this calendar has no coverage bound to extend: start from TradingCalendar.china()")
        try:
            import exchange_calendars
        except ImportError as err:
            raise ImportError(
                "exchange_calendars is not installed: pip install exchange_calendars "
                "(or extend the calendar from a holidays file: see docs/calendar.md)"
            ) from err
        xshg = exchange_calendars.get_calendar("XSHG")
        first_session, last_session = _to_date(xshg.first_session), _to_date(xshg.last_session)
        first, end = self._coverage
        start = end + dt.timedelta(days=1)
        wanted = last_session if through is None else _to_date(through)
        stop = min(wanted, last_session)
        if first_session > start:
            raise ValueError(
                f"exchange_calendars' XSHG starts on {first_session}, after this calendar's coverage ends ({end}): "
                "it cannot extend it without a gap"
            )
        if stop < wanted or (through is None and stop < start):  # asked for more than XSHG knows
            log.warning(
                "exchange_calendars' XSHG ends on %s: the calendar's coverage now ends on %s%s "
                "(pip install -U exchange_calendars for a newer year, or use a holidays file)",
                last_session,
                max(stop, end),
                "" if through is None else f", not {wanted}",
                extra={"xshg_last_session": str(last_session), "coverage_end": str(max(stop, end))},
            )
        if stop < start:
            return TradingCalendar(self.holidays, coverage=self._coverage)
        sessions = {d for d in (_to_date(s) for s in xshg.sessions) if start <= d <= stop}
        weekdays: list[dt.date] = _NO_HOLIDAYS.trading_days(start, stop)
        closed = [d for d in weekdays if d not in sessions]
        return TradingCalendar([*self.holidays, *closed], coverage=(first, stop))

    # ------------------------------------------------------------ asking about days
    def covers(self, day: dt.date | str) -> bool:
        """Whether the calendar vouches for ``day`` (always, when unbounded)."""
        # the core's bounds, compared here: one call into C++ fewer on every question about a day
        return self._coverage is None or self._coverage[0] <= _to_date(day) <= self._coverage[1]

    def ensure_covered(self, day: dt.date | str) -> dt.date:
        """``day`` as a date; raises :class:`CalendarCoverageError` when it is outside the coverage."""
        d = _to_date(day)
        if self._coverage is not None and not self._coverage[0] <= d <= self._coverage[1]:
            raise CalendarCoverageError(d, self._coverage)
        return d

    def is_holiday(self, day: dt.date | str) -> bool:
        holiday: bool = self._core.is_holiday(self.ensure_covered(day))
        return holiday

    def is_trading_day(self, day: dt.date | str) -> bool:
        trades: bool = self._core.is_trading_day(self.ensure_covered(day))
        return trades

    def trading_days(self, start: dt.date | str, end: dt.date | str) -> list[dt.date]:
        """Trading days in [start, end] (empty when end is before start); the whole range must be
        covered."""
        d, last = _to_date(start), _to_date(end)
        if d > last:
            return []
        self.ensure_covered(d)
        self.ensure_covered(last)  # coverage is one span: both ends inside = every day inside
        days: list[dt.date] = self._core.trading_days(d, last)
        return days

    def next_trading_day(self, day: dt.date | str) -> dt.date:
        """The first trading day after ``day``; raises :class:`CalendarCoverageError` rather than
        step past the coverage."""
        return self._or_past_coverage(self._core.next_trading_day(self.ensure_covered(day)), after=True)

    def previous_trading_day(self, day: dt.date | str) -> dt.date:
        """The last trading day before ``day``; raises :class:`CalendarCoverageError` rather than
        step before the coverage."""
        return self._or_past_coverage(self._core.previous_trading_day(self.ensure_covered(day)), after=False)

    def last_trading_day(self, on_or_before: dt.date | str | None = None) -> dt.date:
        """The latest trading day up to ``on_or_before`` (default: today in China), that day itself
        when it trades; raises :class:`CalendarCoverageError` when the day is outside the coverage
        or no covered trading day precedes it."""
        day = self.ensure_covered(china_today() if on_or_before is None else on_or_before)
        return self._or_past_coverage(self._core.trading_day_on_or_before(day), after=False)

    def first_trading_day(self, on_or_after: dt.date | str) -> dt.date:
        """The earliest trading day from ``on_or_after`` on, that day itself when it trades; raises
        :class:`CalendarCoverageError` when the day is outside the coverage or no covered trading
        day follows it."""
        day = self.ensure_covered(on_or_after)
        return self._or_past_coverage(self._core.trading_day_on_or_after(day), after=True)

    def _or_past_coverage(self, day: dt.date | None, *, after: bool) -> dt.date:
        """The core's answer, or the coverage error naming the first day the walk could not vouch for."""
        if day is not None:
            return day
        if self._coverage is None:  # an unbounded walk ends only at the ends of time
            raise ValueError("no trading day there: the walk left the range of dates")
        first, last = self._coverage
        beyond = last + dt.timedelta(days=1) if after else first - dt.timedelta(days=1)
        raise CalendarCoverageError(beyond, self._coverage)

    def __repr__(self) -> str:
        span = "unbounded" if self._coverage is None else f"{self._coverage[0]} to {self._coverage[1]}"
        return f"TradingCalendar({len(self._core.holidays)} holidays, {span})"


# ---------------------------------------------------------------- coverage warning
def could_trade(day: dt.date) -> bool:
    """Whether ``day`` could trade at all by the core's weekday rule, holidays aside: the judgement for a
    day past a holiday table's coverage (louder, not quieter) and for code that has no calendar."""
    return bool(_NO_HOLIDAYS.is_trading_day(day))


def coverage_warning(calendar: TradingCalendar, today: dt.date | str, *, days: int = 30) -> str | None:
    """One line when ``calendar``'s coverage ends within ``days`` of ``today`` (or has ended);
    None while it reaches further, or when the calendar is unbounded."""
    coverage = calendar.coverage
    if coverage is None:
        return None
    last = coverage[1]
    left = (last - _to_date(today)).days
    if left < 0:
        ago = f"{-left} day{'s' if left != -1 else ''} ago"
        return (
            f"the trading calendar ended on {last}, {ago}: every later day is refused (outside_calendar) "
            f"and the calendar raises for it; {_HOW_TO_EXTEND}"
        )
    if left > days:
        return None
    when = "today" if left == 0 else f"in {left} day{'s' if left != 1 else ''}"
    return (
        f"the trading calendar ends on {last}, {when}: later days will be refused (outside_calendar); "
        f"the exchanges publish next year's closures around November-December; {_HOW_TO_EXTEND}"
    )


def log_coverage_warning(calendar: TradingCalendar, today: dt.date | str, *, days: int = 30) -> str | None:
    """Log :func:`coverage_warning` on the ``hkrt.core.calendar`` logger (ERROR once the coverage has
    ended, else WARNING) and return it."""
    message = coverage_warning(calendar, today, days=days)
    if message is not None:
        assert calendar.coverage is not None
        last, day = calendar.coverage[1], _to_date(today)
        level = logging.ERROR if day > last else logging.WARNING
        log.log(level, message, extra={"coverage_end": str(last), "today": str(day), "days_left": (last - day).days})
    return message


class CoverageWatch:
    """Warns that a calendar's coverage is running out: at :meth:`start`, then once a day while
    it runs (checked every ``every`` seconds on a daemon thread; a line at most once per day of
    ``clock``, the China date by default) until :meth:`stop`.  An unbounded calendar needs no
    thread."""

    def __init__(
        self,
        calendar: TradingCalendar,
        *,
        clock: Callable[[], dt.date] | None = None,
        days: int = 30,
        every: float = 3600.0,
    ) -> None:
        self.calendar = calendar
        self.days = days
        self.every = every
        self.warnings = 0  # lines logged
        self._clock = clock if clock is not None else china_today
        self._last_day: dt.date | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def check(self) -> str | None:
        """Log the warning if one is due and not yet logged today; return it when logged."""
        today = self._clock()
        if today == self._last_day:
            return None
        message = log_coverage_warning(self.calendar, today, days=self.days)
        self._last_day = today
        if message is not None:
            self.warnings += 1
        return message

    def start(self) -> CoverageWatch:
        self.check()
        if self.calendar.coverage is not None and self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="hkrt-calendar-watch", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.check()
            except Exception:  # a warning must never take the server down
                log.exception("calendar coverage check failed")

    def __enter__(self) -> CoverageWatch:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# ---------------------------------------------------------------------- helpers
def _to_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


def _read_holidays_file(path: Path) -> tuple[list[dt.date], dt.date]:
    """(holidays, through) of a holidays file; ValueError (one line, naming file and line) on any fault."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_HOLIDAYS_FILE_BYTES + 1)
    except OSError as err:
        raise ValueError(f"cannot read holidays file {path}: {err.strerror or err}") from err
    if len(data) > MAX_HOLIDAYS_FILE_BYTES:
        raise ValueError(
            f"{path}: larger than {MAX_HOLIDAYS_FILE_BYTES:,} bytes: not a holidays file (one date a line)"
        )
    try:
        text = data.decode("utf-8-sig")  # a BOM from Windows editors is fine
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text (byte {err.start}): a holidays file is one date a line") from err
    holidays: list[tuple[int, dt.date]] = []
    through: tuple[int, dt.date] | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        where = f"{path}, line {number}"
        if words[0].lower() == "through":
            if len(words) != 2 or (day := _iso_date(words[1])) is None:
                raise ValueError(f"{where}: {line!r}: expected 'through YYYY-MM-DD'")
            if through is not None:
                raise ValueError(f"{where}: a second 'through' line (the first is line {through[0]})")
            through = (number, day)
            continue
        day = _iso_date(words[0]) if len(words) == 1 else None
        if day is None:
            raise ValueError(f"{where}: {line!r} is not a date YYYY-MM-DD (one holiday a line) or 'through YYYY-MM-DD'")
        if not _NO_HOLIDAYS.is_trading_day(day):  # the core's rule: weekends never trade
            raise ValueError(
                f"{where}: {day} is a {_WEEKDAY_NAMES[day.weekday()]}: list only weekdays the exchanges close "
                "(weekends are closed anyway)"
            )
        holidays.append((number, day))
    if through is None:
        raise ValueError(
            f"{path}: no 'through YYYY-MM-DD' line: name the last day the table is right for, e.g. through 2027-12-31"
        )
    for number, day in holidays:
        if day > through[1]:
            raise ValueError(
                f"{path}, line {number}: holiday {day} is after 'through {through[1]}' (line {through[0]}): "
                "move 'through' to the last day the table is right for"
            )
    return [day for _, day in holidays], through[1]


def _iso_date(text: str) -> dt.date | None:
    if not _ISO_DATE.fullmatch(text):
        return None
    try:
        return dt.date.fromisoformat(text)
    except ValueError:  # 2027-02-30
        return None


@lru_cache(maxsize=1)
def _china_holidays() -> tuple[dt.date, ...]:
    text = resources.files("hkrt").joinpath("data/cn_holidays.txt").read_text(encoding="ascii")
    return tuple(dt.date.fromisoformat(line) for line in text.split() if line)
