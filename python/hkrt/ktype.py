"""Bar periods.  Names parse in any case: ``KType("min5") is KType.MIN5``."""

from __future__ import annotations

import enum

from hkrt import _hkrt


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
        return self in _INTRADAY

    def __str__(self) -> str:
        return self.value


_INTRADAY = frozenset({KType.MIN, KType.MIN3, KType.MIN5, KType.MIN15, KType.MIN30, KType.MIN60, KType.HOUR2})
