"""Daily timers on the market clock: ``run_daily(func, interval)`` and ``run_daily_at(func, time)``.

The clock is the market time the strategy has seen (the feed's data time, and in a live run
also the China wall clock), never the machine's clock alone, so a replayed or simulated day
fires the same timers at the same market times as the live day did.

Rules (docs/strategy.md, "Timers"):

- Timers fire only on trading days of the calendar.
- ``run_daily_at(func, "14:50")`` fires once a day, at the first clock reading at or after
  14:50:00 — provided the strategy saw an earlier time that day.  A strategy started at 14:55
  does not fire a 14:50 timer late; one whose feed paused over 14:50 fires on the next reading.
- ``run_daily(func, interval)`` fires at every session open + k × interval (k = 0, 1, …) before
  the session's close: with 5 minutes, 09:30, 09:35, …, 11:25, 13:00, …, 14:55.  The closes
  themselves are left out because a feed may publish nothing at or after 11:30:00 until 13:00
  (the simulated market's last morning snapshot is 11:29:57); use ``run_daily_at`` for them.
- Instants of an earlier day than the current reading are missed (logged), never fired late.
- Timers due at the same reading fire in time order, then in the order they were added.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from hkrt.core.calendar import TradingCalendar
from hkrt.core.china_time import SESSIONS

log = logging.getLogger("hkrt.strategy")

__all__ = ["SESSIONS", "TimerSet", "parse_interval", "parse_time"]  # SESSIONS: kept importable from here


def parse_time(value: dt.time | str) -> dt.time:
    if isinstance(value, dt.time):
        return value
    try:
        return dt.time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a time of day: {value!r} (write it as 'HH:MM' or 'HH:MM:SS')") from None


def parse_interval(value: dt.timedelta | float | str) -> dt.timedelta:
    """A timedelta, seconds, or text such as '5min', '30s', '1h'."""
    if isinstance(value, dt.timedelta):
        delta = value
    elif isinstance(value, (int, float)):
        delta = dt.timedelta(seconds=float(value))
    else:
        text = str(value).strip().lower()
        units = {"ms": 0.001, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
        for unit in sorted(units, key=len, reverse=True):
            number = text[: -len(unit)].strip()
            if text.endswith(unit) and number.replace(".", "", 1).isdigit():
                delta = dt.timedelta(seconds=float(number) * units[unit])
                break
        else:
            raise ValueError(f"not an interval: {value!r} (e.g. '5min', '30s', '1h' or seconds)")
    if delta <= dt.timedelta(0):
        raise ValueError(f"interval must be positive, not {value!r}")
    return delta


@dataclass
class Timer:
    func: Callable[[], Any]
    name: str
    order: int
    at: dt.time | None = None  # run_daily_at
    interval: dt.timedelta | None = None  # run_daily
    fired: int = 0
    missed: int = 0

    def instants(self, day: dt.date) -> Iterator[dt.datetime]:
        if self.at is not None:
            yield dt.datetime.combine(day, self.at)
            return
        assert self.interval is not None
        for start, end in SESSIONS:
            t, stop = dt.datetime.combine(day, start), dt.datetime.combine(day, end)
            while t < stop:
                yield t
                t += self.interval


@dataclass
class TimerSet:
    """The strategy's timers and the clock they follow."""

    calendar: TradingCalendar
    timers: list[Timer] = field(default_factory=list)
    clock: dt.datetime | None = None  # the latest reading

    def add(self, func: Callable[[], Any], *, at: dt.time | None = None, interval: dt.timedelta | None = None) -> Timer:
        timer = Timer(func, getattr(func, "__qualname__", repr(func)), len(self.timers), at=at, interval=interval)
        self.timers.append(timer)
        return timer

    def advance(self, now: dt.datetime) -> list[tuple[dt.datetime, Timer]]:
        """Move the clock to ``now`` and return the (instant, timer) pairs now due, in order.
        A reading earlier than the clock is ignored (the clock never goes back)."""
        prev = self.clock
        if prev is not None and now <= prev:
            return []
        self.clock = now
        if prev is None or not self.timers:
            return []
        due: list[tuple[dt.datetime, int, Timer]] = []
        for day in self.calendar.trading_days(prev.date(), now.date()):
            for timer in self.timers:
                for t in timer.instants(day):
                    if prev < t <= now:
                        due.append((t, timer.order, timer))
        out = []
        for t, _, timer in sorted(due, key=lambda x: (x[0], x[1])):
            if t.date() < now.date():
                timer.missed += 1
                log.warning("timer missed", extra={"timer": timer.name, "due": t.isoformat(), "now": now.isoformat()})
                continue
            out.append((t, timer))
        return out
