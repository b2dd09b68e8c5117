"""China time and the A-share trading schedule, read from the C++ core.

Every timestamp hkrt hands out is naive China local time (UTC+8, no daylight saving since
1991); the wire carries UTC epoch milliseconds.  The offset and the schedule are rules of the
C++ core (cpp/kdata/time.h, cpp/kdata/schedule.h): this module reads them from ``_hkrt`` so
Python states none of them again.  Import ``CHINA_TZ``, ``china_now`` and ``china_today`` from
here rather than writing the offset out (tests/test_market_time_rules.py rejects a literal
8-hour offset anywhere else in the package).
"""

from __future__ import annotations

import datetime as dt

from hkrt import _hkrt

CHINA_UTC_OFFSET_MS: int = int(_hkrt.CHINA_UTC_OFFSET_MS)
"""China's UTC offset in milliseconds: local = UTC + offset."""
CHINA_UTC_OFFSET = dt.timedelta(milliseconds=CHINA_UTC_OFFSET_MS)
CHINA_TZ = dt.timezone(CHINA_UTC_OFFSET)
"""A fixed-offset tzinfo for China: no tz database needed (China has one offset all year)."""

_EPOCH = dt.datetime(1970, 1, 1)


def china_now() -> dt.datetime:
    """The wall clock in China as a naive datetime, whatever the machine's time zone."""
    return dt.datetime.now(CHINA_TZ).replace(tzinfo=None)


def china_today() -> dt.date:
    """Today's date in China, whatever the machine's time zone."""
    return dt.datetime.now(CHINA_TZ).date()


def local_ms_to_utc_ms(local_ms: int) -> int:
    """Naive China-local epoch ms (the engine's clock) -> true UTC epoch ms (the wire's)."""
    return local_ms - CHINA_UTC_OFFSET_MS


def utc_ms_to_local_ms(utc_ms: int) -> int:
    """True UTC epoch ms (the wire's) -> naive China-local epoch ms (the engine's clock)."""
    return utc_ms + CHINA_UTC_OFFSET_MS


def utc_ms_to_local_datetime(utc_ms: int) -> dt.datetime:
    """UTC epoch ms -> naive China local datetime (exact to the millisecond)."""
    return _EPOCH + dt.timedelta(milliseconds=utc_ms + CHINA_UTC_OFFSET_MS)


def local_datetime_to_utc_ms(local: dt.datetime) -> int:
    """A datetime -> UTC epoch ms; naive means China local time, aware is converted."""
    if local.tzinfo is not None:
        local = local.astimezone(CHINA_TZ).replace(tzinfo=None)
    return (local - _EPOCH) // dt.timedelta(milliseconds=1) - CHINA_UTC_OFFSET_MS


SANE_MARKET_TIME_MS: tuple[int, int] = (int(_hkrt.SANE_MARKET_TIME_MS[0]), int(_hkrt.SANE_MARKET_TIME_MS[1]))
"""UTC epoch ms a message's market time may carry (inclusive, 1990..2200): outside is a broken clock."""


def market_time(utc_ms: int) -> dt.datetime | None:
    """A message's market time (UTC epoch ms; 0 = unknown) as naive China local time; None when
    unknown or outside :data:`SANE_MARKET_TIME_MS`, as the agent core reads a header's market time."""
    if not SANE_MARKET_TIME_MS[0] <= utc_ms <= SANE_MARKET_TIME_MS[1]:
        return None
    return utc_ms_to_local_datetime(utc_ms)


def _time_of_day(ms: int) -> dt.time:
    return (_EPOCH + dt.timedelta(milliseconds=int(ms))).time()


# The A-share schedule (SH/SZ/BJ) as the engine applies it, as times of day.
_SCHEDULE = _hkrt.CHINA_A_SHARE_SCHEDULE
SESSIONS_MS: tuple[tuple[int, int], ...] = tuple((int(a), int(b)) for a, b in _SCHEDULE["sessions"])
"""The sessions as (open, close) in ms since local midnight, the engine's own numbers."""
AUCTION_OPEN_MS: int = int(_SCHEDULE["auction_open_ms"])
SESSIONS: tuple[tuple[dt.time, dt.time], ...] = tuple(
    (_time_of_day(open_ms), _time_of_day(close_ms)) for open_ms, close_ms in _SCHEDULE["sessions"]
)
"""Continuous trading sessions, (open, close): 09:30-11:30 and 13:00-15:00."""
AUCTION_OPEN = _time_of_day(_SCHEDULE["auction_open_ms"])
"""The opening call auction starts (09:15); its trades fold into the first minute."""
MARKET_OPEN = SESSIONS[0][0]
MARKET_CLOSE = SESSIONS[-1][1]
"""The last session's close (15:00): the day's last bar is labelled with it."""
SESSION_GRACE = dt.timedelta(milliseconds=_SCHEDULE["grace_ms"])
"""After a midday close, spots stamped this late still belong to the session's last minute."""
DAY_CLOSE_CUTOFF = _time_of_day(_SCHEDULE["close_cutoff_ms"])
"""From this time (15:05, after-hours trading opens) a spot is after hours; the day's bars are final."""
MINUTES_PER_DAY: int = int(_SCHEDULE["minutes_per_day"])


def in_session(clock: dt.time) -> bool:
    """Whether a time of day is inside continuous trading (open inclusive, close exclusive)."""
    return any(start <= clock < end for start, end in SESSIONS)
