"""SpotAgent: spots in, K-line bars out.

A thin Python face over the C++ engine (``hkrt._hkrt.Engine``): it converts pandas and
numpy inputs to plain columns and bars back to DataFrames.  Every aggregation rule lives
in C++ and is documented in docs/aggregation.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from hkrt import _hkrt
from hkrt._hkrt import Spot
from hkrt.calendar import TradingCalendar
from hkrt.ktype import KType

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "amount")
_CHINA_TZ = dt.timezone(dt.timedelta(hours=8))

DatetimeLike = dt.datetime | dt.date | str | np.datetime64 | pd.Timestamp


class CarryIn(NamedTuple):
    """What a symbol had traded on ``day`` before the first spot the agent saw."""

    day: dt.date
    volume: float  # shares
    amount: float  # yuan


class SpotAgent:
    """Aggregates spots into bars of the chosen periods.

    Args:
        ktypes: periods to build (KType members or names in any case); all 13 by default.
            WEEK and longer are built from DAY bars, so DAY is kept whenever one of them is.
        calendar: trading calendar; the bundled China exchange calendar by default.
        fill_empty_bars: give a minute without spots a flat zero-volume bar once a later
            spot (or :meth:`advance_to`) shows that time has moved on.
    """

    def __init__(
        self,
        ktypes: Iterable[KType | str] | None = None,
        *,
        calendar: TradingCalendar | None = None,
        fill_empty_bars: bool = True,
    ) -> None:
        wanted = list(KType) if ktypes is None else [KType.parse(k) for k in ktypes]
        if not wanted:
            raise ValueError("ktypes is empty: name at least one period, or pass None for all")
        self._calendar = calendar if calendar is not None else TradingCalendar.china()
        self._engine = _hkrt.Engine([k.value for k in wanted], self._calendar.holidays, fill_empty_bars)

    # ----------------------------------------------------------------- input
    def ingest(self, spots: Spot | Iterable[Spot] | pd.DataFrame | Mapping[str, Any]) -> int:
        """Ingest spots in order and return how many were accepted.

        Accepts one :class:`Spot`, an iterable of them, a DataFrame or a mapping of columns
        (see :meth:`ingest_columns`).  Rejected and duplicate spots are counted in
        :meth:`stats`, never raised: one bad quote must not stop a feed.
        """
        if isinstance(spots, Spot):
            return self._engine.ingest_spots([spots])
        if isinstance(spots, pd.DataFrame):
            frame = spots.reset_index() if "datetime" not in spots.columns else spots
            return self.ingest_columns(**{c: frame[c] for c in _COLUMN_ARGS if c in frame.columns})
        if isinstance(spots, Mapping):
            return self.ingest_columns(**spots)
        if isinstance(spots, (bytes, bytearray, memoryview, str)):
            raise TypeError("ingest takes Spot objects, a DataFrame or a mapping of columns")
        if not isinstance(spots, (list, tuple)):
            spots = list(spots)
        return self._engine.ingest_spots(spots)

    def ingest_columns(
        self,
        symbol: Sequence[str] | np.ndarray | pd.Series,
        datetime: Sequence[Any] | np.ndarray | pd.Series,
        close: Any,
        volume: Any,
        amount: Any,
        open: Any = None,
        high: Any = None,
        low: Any = None,
    ) -> int:
        """Ingest one push as columns: the hot path (one call per push, no Python objects).

        ``symbol`` is an array of str or bytes ("SH600000"); ``datetime`` datetime64 values
        (naive = China local time, tz-aware converted); prices in yuan, ``volume`` shares
        and ``amount`` yuan, cumulative for the day.  ``open``/``high``/``low`` are the
        day's values and may be omitted.
        """
        symbols = np.asarray(symbol)
        if symbols.dtype.kind not in "SUO":
            raise TypeError("symbol must hold strings such as 'SH600000'")
        return self._engine.ingest_columns(
            symbols,
            datetime_ms(datetime),
            _floats(close),
            _floats(volume),
            _floats(amount),
            None if open is None else _floats(open),
            None if high is None else _floats(high),
            None if low is None else _floats(low),
        )

    def advance_to(self, now: DatetimeLike) -> None:
        """Declare that time has reached ``now``: minutes that ended without spots get flat bars."""
        self._engine.advance_to(now)

    def preload(self, symbol: str, ktype: KType | str, history: pd.DataFrame) -> None:
        """Load history bars so live bars continue them.

        ``history`` has a DatetimeIndex (or a ``datetime`` column) of bar labels and the
        columns open, high, low, close, volume (shares), amount (yuan).  Bars the agent
        already built win over history bars with the same label.  Preload DAY history to
        continue WEEK and longer bars in the middle of their period.
        """
        frame = history.reset_index() if "datetime" not in history.columns else history
        missing = [c for c in ("datetime", *BAR_COLUMNS) if c not in frame.columns]
        if missing:
            raise ValueError(f"history lacks columns {missing}")
        self._engine.preload(
            symbol,
            KType.parse(ktype).value,
            datetime_ms(frame["datetime"]),
            *(_floats(frame[c]) for c in BAR_COLUMNS),
        )

    # ---------------------------------------------------------------- output
    def kdata(
        self,
        symbol: str,
        ktype: KType | str,
        start: DatetimeLike | None = None,
        end: DatetimeLike | None = None,
    ) -> pd.DataFrame:
        """Bars of one symbol as a DataFrame indexed by ``datetime`` (the bar's right label).

        The last bar may still be forming.  ``start``/``end`` bound the labels (inclusive).
        """
        bars = self._engine.bars(symbol, KType.parse(ktype).value)
        frame = pd.DataFrame(
            {c: bars[c] for c in BAR_COLUMNS},
            index=pd.DatetimeIndex(bars["datetime"].astype("datetime64[ns]"), name="datetime"),
        )
        if start is not None or end is not None:
            frame = frame.loc[
                (pd.Timestamp(start) if start is not None else None) : (pd.Timestamp(end) if end is not None else None)
            ]
        return frame

    def kdata_view(self, symbol: str, ktype: KType | str) -> np.ndarray:
        """The engine's bars as a read-only numpy structured array, without copying.

        Fields: datetime (datetime64[ms]), open, high, low, close, volume, amount.  The view
        covers the bars as they were when it was taken (taking it writes the symbol's
        forming bars out).  Ingesting later may update bars inside it only when they are
        written out again, and never adds bars to it: take a new view after ingesting.
        """
        return self._engine.view(symbol, KType.parse(ktype).value)

    def carry_in(self, symbol: str) -> CarryIn | None:
        """Carry-in of the symbol's current day, or None if it has no spot yet."""
        raw = self._engine.carry_in(symbol)
        return None if raw is None else CarryIn(*raw)

    def stats(self) -> dict[str, Any]:
        """Counters: received, accepted, duplicates, rejected (by reason), carry_in, filled_bars, symbols."""
        return self._engine.stats()

    @property
    def symbols(self) -> list[str]:
        return self._engine.symbols()

    @property
    def ktypes(self) -> tuple[KType, ...]:
        return tuple(KType(k) for k in self._engine.enabled_ktypes())

    @property
    def calendar(self) -> TradingCalendar:
        return self._calendar


_COLUMN_ARGS = ("symbol", "datetime", "close", "volume", "amount", "open", "high", "low")


def _floats(values: Any) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(values, dtype=np.float64))


def datetime_ms(values: Any) -> np.ndarray:
    """Datetimes as int64 milliseconds of China local time (tz-aware values converted)."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        naive = values
    else:
        try:
            index = pd.DatetimeIndex(values)
        except (TypeError, ValueError):  # naive and aware mixed: naive means China time
            index = pd.DatetimeIndex([_naive_china(pd.Timestamp(v)) for v in values])
        if index.tz is not None:
            index = index.tz_convert(_CHINA_TZ).tz_localize(None)
        naive = index.to_numpy()
    if naive.dtype.kind != "M":
        raise TypeError(f"datetime must hold datetimes, got dtype {naive.dtype}")
    return np.ascontiguousarray(naive.astype("datetime64[ms]").astype(np.int64))


def _naive_china(ts: pd.Timestamp) -> pd.Timestamp:
    return ts.tz_convert(_CHINA_TZ).tz_localize(None) if ts.tzinfo is not None else ts
