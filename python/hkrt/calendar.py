"""Exchange trading calendar: weekdays that are not exchange holidays.

The engine takes its calendar from here (injectable), never from the wall clock, so any
past day replays exactly.  ``TradingCalendar.china()`` covers SSE/SZSE/BSE closures from
2005 through ``CHINA_HOLIDAYS_THROUGH``; the exchanges publish each year's closures in
December, and days after that date are treated as trading days unless you add holidays.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

CHINA_HOLIDAYS_THROUGH = dt.date(2026, 12, 31)


class TradingCalendar:
    """Trading days are Monday to Friday minus the given holidays."""

    def __init__(self, holidays: Iterable[dt.date | str] = ()) -> None:
        self._holidays = frozenset(_to_date(d) for d in holidays)

    @classmethod
    def china(cls) -> TradingCalendar:
        """Shanghai / Shenzhen / Beijing exchange closures on weekdays (bundled table)."""
        return cls(_china_holidays())

    @property
    def holidays(self) -> tuple[dt.date, ...]:
        return tuple(sorted(self._holidays))

    def with_holidays(self, extra: Iterable[dt.date | str]) -> TradingCalendar:
        return TradingCalendar([*self._holidays, *extra])

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
