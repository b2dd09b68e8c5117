"""Bar periods.  Names parse in any case: ``KType("min5") is KType.MIN5``.

The periods, their order, their lengths and their families (intraday, DAY, multi-day) are
the C++ core's registry (cpp/kdata/ktype.h); the enum below lists the same names so type
checkers and editors see them, and the import fails loudly if the two ever disagree.
Multi-day period boundaries (``period_start``, ``period_end``, ``period_label``) are
computed by the core too.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from hkrt import _hkrt

if TYPE_CHECKING:
    from hkrt.calendar import TradingCalendar


class KType(str, enum.Enum):
    """The thirteen bar periods, shortest first."""

    MIN = "MIN"
    MIN3 = "MIN3"
    MIN5 = "MIN5"
    MIN15 = "MIN15"
    MIN30 = "MIN30"
    MIN60 = "MIN60"
    HOUR2 = "HOUR2"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    HALFYEAR = "HALFYEAR"
    YEAR = "YEAR"

    @classmethod
    def _missing_(cls, value: object) -> KType:
        if isinstance(value, str):
            # The C++ parser owns the rule (case-insensitive) and the error text.
            return cls(_hkrt.canonical_ktype(value))
        raise ValueError(f"a ktype is a name such as 'MIN5', not {type(value).__name__} {value!r}")

    @classmethod
    def parse(cls, value: KType | str) -> KType:
        """A KType from a member or a name in any case; ValueError lists the valid names."""
        return value if isinstance(value, KType) else cls(value)

    @property
    def is_intraday(self) -> bool:
        """MIN..HOUR2: bars within one trading day."""
        return self in _INTRADAY

    @property
    def is_multi_day(self) -> bool:
        """WEEK..YEAR: bars spanning several trading days (DAY is neither intraday nor multi-day)."""
        return self in _MULTI_DAY

    @property
    def intraday_minutes(self) -> int:
        """Trading minutes per bar: 5 for MIN5, 0 for DAY and longer."""
        return _MINUTES[self]

    def __str__(self) -> str:
        return self.value


if [k.value for k in KType] != list(_hkrt.KTYPE_NAMES):  # a period added in C++ must be listed here too
    raise ImportError(f"hkrt.KType {[k.value for k in KType]} disagrees with the C++ registry {_hkrt.KTYPE_NAMES}")

_MINUTES: dict[KType, int] = {KType(name): int(n) for name, n in _hkrt.KTYPE_INTRADAY_MINUTES.items()}
_INTRADAY = frozenset(k for k, n in _MINUTES.items() if n > 0)
_MULTI_DAY = frozenset(KType(name) for name in _hkrt.KTYPE_MULTI_DAY)


def period_start(ktype: KType | str, day: dt.date) -> dt.date:
    """First calendar day of the DAY..YEAR period containing ``day`` (Monday for WEEK)."""
    boundary: dt.date = _hkrt.period_start(str(KType.parse(ktype)), day)
    return boundary


def period_end(ktype: KType | str, day: dt.date) -> dt.date:
    """Last calendar day of the DAY..YEAR period containing ``day`` (Sunday for WEEK)."""
    boundary: dt.date = _hkrt.period_end(str(KType.parse(ktype)), day)
    return boundary


def period_label(ktype: KType | str, day: dt.date, calendar: TradingCalendar) -> dt.date:
    """Label of the DAY..YEAR bar holding trading day ``day``: the period's last trading day on
    ``calendar``, as the engine labels it (days past the calendar's coverage count as closed)."""
    boundary: dt.date = _hkrt.period_label(str(KType.parse(ktype)), day, calendar.holidays, calendar.coverage)
    return boundary
