"""Type stubs of the C++ extension module (cpp/bindings/)."""

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

KTYPE_NAMES: list[str]
REJECT_REASONS: list[str]
BAR_DTYPE: np.dtype[Any]

_DatetimeLike = dt.datetime | dt.date | str | np.datetime64

def normalize_symbol(symbol: str) -> str: ...
def canonical_ktype(name: str) -> str: ...

class Spot:
    symbol: str
    market: str
    code: str
    name: str
    datetime: dt.datetime
    yesterday_close: float
    open: float
    high: float
    low: float
    close: float
    amount: float
    volume: float
    bid: list[float]
    bid_volume: list[float]
    ask: list[float]
    ask_volume: list[float]
    def __init__(
        self,
        symbol: str | None = None,
        datetime: _DatetimeLike | None = None,
        *,
        market: str | None = None,
        code: str | None = None,
        name: str = "",
        yesterday_close: float = 0.0,
        open: float = 0.0,
        high: float = 0.0,
        low: float = 0.0,
        close: float = 0.0,
        amount: float = 0.0,
        volume: float = 0.0,
        bid: Sequence[float] | None = None,
        bid_volume: Sequence[float] | None = None,
        ask: Sequence[float] | None = None,
        ask_volume: Sequence[float] | None = None,
    ) -> None: ...
    def __eq__(self, other: object) -> bool: ...

class Engine:
    def __init__(self, ktypes: list[str], holidays: Iterable[dt.date], fill_empty_bars: bool = True) -> None: ...
    def ingest_spots(self, spots: Sequence[Spot]) -> int: ...
    def ingest_one(self, spot: Spot) -> str: ...
    def ingest_columns(
        self,
        symbol: np.ndarray,
        datetime_ms: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        amount: np.ndarray,
        open: np.ndarray | None = None,
        high: np.ndarray | None = None,
        low: np.ndarray | None = None,
    ) -> int: ...
    def advance_to(self, now: _DatetimeLike) -> None: ...
    def preload(
        self,
        symbol: str,
        ktype: str,
        datetime_ms: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        amount: np.ndarray,
    ) -> None: ...
    def bars(self, symbol: str, ktype: str) -> np.ndarray: ...
    def view(self, symbol: str, ktype: str) -> np.ndarray: ...
    def carry_in(self, symbol: str) -> tuple[dt.date, float, float] | None: ...
    def symbols(self) -> list[str]: ...
    def stats(self) -> dict[str, Any]: ...
    def memory_bytes(self) -> int: ...
    def enabled_ktypes(self) -> list[str]: ...
