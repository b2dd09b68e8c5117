"""Exchange trading calendar: weekdays that are not exchange holidays.

The engine takes its calendar from here (injectable), never from the wall clock, so any
past day replays exactly.  ``TradingCalendar.china()`` covers SSE/SZSE/BSE closures from
2005 through ``CHINA_HOLIDAYS_THROUGH``; the exchanges publish each year's closures in
December.  A day outside a calendar's ``coverage`` is one it cannot vouch for: the engine
rejects spots of such a day (``outside_calendar``) rather than aggregate them on a guessed
calendar; extend it with :meth:`TradingCalendar.with_holidays` and ``through=``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

CHINA_HOLIDAYS_THROUGH = dt.date(2026, 12, 31)
CHINA_HOLIDAYS_FROM = dt.date(2005, 1, 1)


class TradingCalendar:
    """Trading days are Monday to Friday minus the given holidays."""

    def __init__(
        self, holidays: Iterable[dt.date | str] = (), coverage: tuple[dt.date | str, dt.date | str] | None = None
    ) -> None:
        self._holidays = frozenset(_to_date(d) for d in holidays)
        self._coverage = None if coverage is None else (_to_date(coverage[0]), _to_date(coverage[1]))

    @classmethod
    def china(cls) -> TradingCalendar:
        """Shanghai / Shenzhen / Beijing exchange closures on weekdays (bundled table), covering
        2005-01-01 through :data:`CHINA_HOLIDAYS_THROUGH`."""
        return cls(_china_holidays(), coverage=(CHINA_HOLIDAYS_FROM, CHINA_HOLIDAYS_THROUGH))

    @property
    def coverage(self) -> tuple[dt.date, dt.date] | None:
        """(first, last) day the holiday table is known to be right for; None = unbounded."""
        return self._coverage

    @property
    def holidays(self) -> tuple[dt.date, ...]:
        return tuple(sorted(self._holidays))

    def with_holidays(self, extra: Iterable[dt.date | str], *, through: dt.date | str | None = None) -> TradingCalendar:
        """This calendar plus ``extra`` holidays; ``through`` extends its coverage to that day
        (the exchanges publish each year's closures in December)."""
        coverage = self._coverage
        if through is not None:
            first = coverage[0] if coverage else dt.date.min
            coverage = (first, max(_to_date(through), coverage[1] if coverage else dt.date.min))
        return TradingCalendar([*self._holidays, *extra], coverage=coverage)

    def is_holiday(self, day: dt.date | str) -> bool:
        return _to_date(day) in self._holidays

    def is_trading_day(self, day: dt.date | str) -> bool:
        d = _to_date(day)
        return d.weekday() < 5 and d not in self._holidays

    def trading_days(self, start: dt.date | str, end: dt.date | str) -> list[dt.date]:
        """Trading days in [start, end]."""
        d, last = _to_date(start), _to_date(end)
        out = []
        while d <= last:
            if self.is_trading_day(d):
                out.append(d)
            d += dt.timedelta(days=1)
        return out

    def __repr__(self) -> str:
        return f"TradingCalendar({len(self._holidays)} holidays)"


def _to_date(value: dt.date | str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value)


@lru_cache(maxsize=1)
def _china_holidays() -> tuple[dt.date, ...]:
    text = resources.files("hkrt").joinpath("data/cn_holidays.txt").read_text(encoding="ascii")
    return tuple(dt.date.fromisoformat(line) for line in text.split() if line)
