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
    def day_totals(self, symbol: str) -> dict[str, Any] | None: ...
    def repair_gaps(
        self,
        symbol: str,
        datetime_ms: np.ndarray,
        open: np.ndarray,
        high: np.ndarray,
        low: np.ndarray,
        close: np.ndarray,
        volume: np.ndarray,
        amount: np.ndarray,
    ) -> dict[str, Any]: ...
    def symbols(self) -> list[str]: ...
    def stats(self) -> dict[str, Any]: ...
    def memory_bytes(self) -> int: ...
    def enabled_ktypes(self) -> list[str]: ...

# Order brokers (cpp/bindings/broker.cpp; docs/brokers.md)

class OrderStatus:
    Sent: OrderStatus
    Filled: OrderStatus
    Rejected: OrderStatus
    Skipped: OrderStatus
    Failed: OrderStatus
    name: str
    value: int
    def __init__(self, value: int) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class OrderSide:
    Buy: OrderSide
    Sell: OrderSide
    name: str
    value: int
    def __init__(self, value: int) -> None: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

class OrderResult:
    order_id: str | None
    status: OrderStatus
    error: str
    def __init__(self, status: OrderStatus = ..., order_id: str | None = None, error: str = "") -> None: ...
    @property
    def ok(self) -> bool: ...

class OrderRecord:
    @property
    def datetime(self) -> dt.datetime: ...
    @property
    def side(self) -> OrderSide: ...
    @property
    def market(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def price(self) -> float: ...
    @property
    def num(self) -> float: ...
    @property
    def stoploss(self) -> float: ...
    @property
    def goal_price(self) -> float: ...
    @property
    def part_from(self) -> int: ...
    @property
    def remark(self) -> str: ...
    @property
    def result(self) -> OrderResult: ...

_HookResult = OrderResult | str | bool | None

class OrderBrokerBase:
    name: str
    broker_last_datetime: dt.datetime | None
    def __init__(self, name: str = "NO_NAME") -> None: ...
    def buy(
        self,
        datetime: _DatetimeLike,
        market: str,
        code: str,
        price: float,
        num: float,
        stoploss: float = 0.0,
        goal_price: float = 0.0,
        part_from: int = 0,
        remark: str = "",
    ) -> OrderResult: ...
    def sell(
        self,
        datetime: _DatetimeLike,
        market: str,
        code: str,
        price: float,
        num: float,
        stoploss: float = 0.0,
        goal_price: float = 0.0,
        part_from: int = 0,
        remark: str = "",
    ) -> OrderResult: ...
    def cancel(self, order_id: str) -> OrderResult: ...
    def get_asset_info(self) -> str: ...
    @property
    def records(self) -> list[OrderRecord]: ...
    def clear_records(self) -> None: ...
    @property
    def last_error(self) -> str: ...
    # Implemented by subclasses (called with the GIL held; exceptions become Failed results):
    # def _buy(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark) -> _HookResult
    # def _sell(...same...) -> _HookResult
    # def _get_asset_info(self) -> str
    # def _cancel(self, order_id: str) -> _HookResult   (optional)
