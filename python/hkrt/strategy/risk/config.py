"""The risk engine's limits: in code (``RiskConfig(...)``, a dict) or a TOML file's ``[risk]`` table.

Every limit is optional (None: not checked) except the order-rate limits, which are always on with
defaults far below the exchanges' high-frequency thresholds (300 orders and cancels a second, 20,000
a day, since 2025-07-07): a runaway loop is stopped long before an account is flagged.  A key that is
not a limit, a value of the wrong type or an impossible limit (negative, a share above 100 %, a
per-second rate above the per-day one) is refused at start with one line naming it.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hkrt.bus.trading import TRADING_STATES

EXCHANGE_ORDERS_PER_SECOND = 300  # orders + cancels a second that make an account high-frequency
EXCHANGE_ORDERS_PER_DAY = 20_000  # ... or a day


class RiskConfigError(ValueError):
    """A risk configuration that cannot be used: one line naming the key and the problem."""


@dataclass(frozen=True)
class RiskConfig:
    """The limits the risk engine enforces (docs/risk.md).  Money in yuan, shares in shares, shares of
    equity as fractions (0.2 = 20 %)."""

    # one order
    max_order_value: float | None = None  # yuan: shares x reference price
    max_order_shares: int | None = None
    # positions, counting what the order would add (and what open buys will add)
    max_position_value: float | None = None  # yuan held in one symbol at the latest price
    max_position_pct: float | None = None  # ... as a share of equity (0..1]
    max_gross_exposure: float | None = None  # positions' value / equity (a cash account is at most 1)
    max_positions: int | None = None  # symbols held or being bought
    # losses: equity from the cash and the positions at their latest prices
    max_daily_loss: float | None = None  # yuan below the day's opening equity
    max_daily_loss_pct: float | None = None  # ... as a share of it
    max_drawdown_pct: float | None = None  # below the run's highest equity
    daily_loss_action: str = "REDUCING"  # the state a breached daily loss moves to
    drawdown_action: str = "HALTED"
    # orders and cancels sent, together (the exchanges count both)
    max_orders_per_second: int = 20
    max_orders_per_day: int = 2_000
    # prices
    # a limit price within this share of the latest price: 10 % lets a main-board limit-up / limit-down
    # order through while the last price is at the previous close, and stops a price far off the market
    price_band: float | None = 0.10
    trading_hours: bool = True  # orders only while the exchange takes them

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            _check_value(f.name, getattr(self, f.name))
        if self.max_orders_per_second > self.max_orders_per_day:
            raise RiskConfigError(
                f"risk: max_orders_per_second {self.max_orders_per_second} is above "
                f"max_orders_per_day {self.max_orders_per_day}"
            )

    @classmethod
    def load(cls, source: RiskConfig | Mapping[str, Any] | str | os.PathLike[str] | None) -> RiskConfig:
        """A config from a RiskConfig, a mapping of limits, or a TOML file (its ``[risk]`` table, or the
        whole file when it has none); None: the defaults."""
        if source is None:
            return cls()
        if isinstance(source, RiskConfig):
            return source
        if isinstance(source, Mapping):
            return cls.from_mapping(source)
        return cls.from_toml(source)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> RiskConfig:
        from hkrt.core.toml_file import read_toml

        file = Path(path).expanduser()
        try:
            data = read_toml(file)
        except ValueError as err:
            raise RiskConfigError(f"risk: {err}") from None
        table = data.get("risk", data)
        if not isinstance(table, Mapping):
            raise RiskConfigError(f"risk: [risk] in {file} is not a table")
        return cls.from_mapping(table, where=str(file))

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], *, where: str = "") -> RiskConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(str(key), sorted(known), n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                place = f" in {where}" if where else ""
                raise RiskConfigError(f"risk: unknown key {key!r}{place}{hint}")
        return cls(**dict(values))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FRACTIONS = {"max_position_pct", "max_daily_loss_pct", "max_drawdown_pct", "price_band"}
_COUNTS = {"max_order_shares", "max_positions", "max_orders_per_second", "max_orders_per_day"}
_MONEY = {"max_order_value", "max_position_value", "max_daily_loss"}
_STATES = {"daily_loss_action", "drawdown_action"}


def _check_value(name: str, value: Any) -> None:
    """One line naming ``name`` when ``value`` cannot be that limit."""
    if name == "trading_hours":
        if not isinstance(value, bool):
            raise RiskConfigError(f"risk: trading_hours must be true or false, not {value!r}")
        return
    if name in _STATES:
        if value not in TRADING_STATES[1:]:
            raise RiskConfigError(f"risk: {name} must be REDUCING or HALTED, not {value!r}")
        return
    if value is None:
        if name in ("max_orders_per_second", "max_orders_per_day"):
            raise RiskConfigError(f"risk: {name} cannot be switched off (the exchanges count every order)")
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RiskConfigError(f"risk: {name} must be a number, not {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise RiskConfigError(f"risk: {name} must be a positive number, not {value!r}")
    if name in _COUNTS and value != int(value):
        raise RiskConfigError(f"risk: {name} must be a whole number, not {value!r}")
    if name in _FRACTIONS and value > 1:
        raise RiskConfigError(f"risk: {name} is a share of 1 (0.2 = 20 %), not {value!r}")
    if name == "max_gross_exposure" and value > 1:
        raise RiskConfigError(
            f"risk: max_gross_exposure {value!r} is above 1: a cash account cannot hold more than it is worth"
        )
    if name == "max_orders_per_second" and value >= EXCHANGE_ORDERS_PER_SECOND:
        raise RiskConfigError(
            f"risk: max_orders_per_second {value!r} reaches the exchanges' high-frequency threshold "
            f"({EXCHANGE_ORDERS_PER_SECOND} orders and cancels a second)"
        )
    if name == "max_orders_per_day" and value >= EXCHANGE_ORDERS_PER_DAY:
        raise RiskConfigError(
            f"risk: max_orders_per_day {value!r} reaches the exchanges' high-frequency threshold "
            f"({EXCHANGE_ORDERS_PER_DAY:,} orders and cancels a day)"
        )
    assert name in _FRACTIONS | _COUNTS | _MONEY | {"max_gross_exposure"}, name
