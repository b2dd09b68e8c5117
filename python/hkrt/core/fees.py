"""The A-share fee model: what one fill costs in commission, stamp tax and transfer fee (docs/paper-broker.md).

- **Commission** (佣金, the broker's): ``commission_rate`` of the amount, both sides, with a minimum per
  order (``min_commission``, customarily 5 yuan).  The minimum applies to the order, not to each fill: each
  fill pays rate × its amount, topped up so that the order's commission so far is at least the minimum
  (the first fill of a small order pays the minimum, later fills pay the rate only once the order's total
  is past it).  Brokers set the rate; 0.025 % is a common retail rate.
- **Stamp tax** (印花税, the state's): on sells only, by trade date: 0.1 % before 2023-08-28, 0.05 % from it
  (:data:`STAMP_TAX`).  Before 2008-09-19 it was charged on both sides at other rates: not modelled (the
  table starts at 0.1 % on sells).
- **Transfer fee** (过户费, China Securities Depository and Clearing's): 0.001 % of the amount, both sides,
  since 2022-04-29 on Shanghai and Shenzhen A-shares.  Beijing: the sources we found disagree on whether
  it is charged on Beijing Stock Exchange trades, so the model charges it on all three markets by default
  (the conservative side: the paper account pays slightly more, never less) and ``transfer_fee_markets``
  narrows it (``frozenset({"SH", "SZ"})`` for a Beijing trade without it).
- Funds, ETFs and bonds (``board_of(symbol) == "fund"``) pay neither stamp tax nor transfer fee; the
  commission (and its minimum) applies as to stocks.  Brokers often waive the minimum on ETFs: set
  ``min_commission`` per account if yours does.

Every component is rounded half up to 0.01 yuan (the fen), computed in decimal from the printed values, so
10.05 × 100 shares is 1005.00 yuan exactly and 0.25 fen rounds as the counter rounds it, not as a binary
float would.

Worked example (rate 0.025 %, min 5 yuan): a 10,000-yuan buy pays commission max(2.50, 5.00) = 5.00,
transfer fee 0.10, total 5.10; the same sell on 2023-08-25 adds stamp tax 10.00 (total 15.10), on
2023-08-28 stamp tax 5.00 (total 10.10).
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from hkrt._hkrt import normalize_symbol
from hkrt.core.price_limits import board_of

__all__ = ["STAMP_TAX", "STAMP_TAX_CUT", "FeeModel", "Fees", "round_fen"]

#: the day the stamp tax on A-share sells was halved (0.1 % -> 0.05 %)
STAMP_TAX_CUT = dt.date(2023, 8, 28)

#: (first trade day, rate on sells) in date order: the rate of a day is that of the last entry on or before it
STAMP_TAX: tuple[tuple[dt.date, float], ...] = ((dt.date.min, 0.001), (STAMP_TAX_CUT, 0.0005))

_FEN = Decimal("0.01")
_SIDES = ("buy", "sell")


def round_fen(value: Decimal | float) -> float:
    """``value`` yuan rounded half up to the fen (0.01 yuan); a float is read from its printed value."""
    exact = value if isinstance(value, Decimal) else Decimal(repr(float(value)))
    return float(exact.quantize(_FEN, rounding=ROUND_HALF_UP))


def _decimal(value: float) -> Decimal:
    return Decimal(repr(float(value)))


@dataclass(frozen=True)
class Fees:
    """What one fill costs, yuan, each component already rounded to the fen."""

    commission: float = 0.0
    stamp_tax: float = 0.0
    transfer_fee: float = 0.0

    @property
    def total(self) -> float:
        """Commission + stamp tax + transfer fee (exact to the fen)."""
        return round_fen(_decimal(self.commission) + _decimal(self.stamp_tax) + _decimal(self.transfer_fee))


def _rate(value: float, name: str) -> None:
    if not (math.isfinite(value) and 0.0 <= value < 1.0):
        raise ValueError(f"{name} must be a fraction of the amount in [0, 1), not {value!r}")


@dataclass(frozen=True)
class FeeModel:
    """An account's fee schedule.  ``fill_fees`` prices one fill; see the module doc for the rules."""

    commission_rate: float = 0.00025
    min_commission: float = 5.0  # yuan per order
    transfer_fee_rate: float = 0.00001
    stamp_tax: tuple[tuple[dt.date, float], ...] = STAMP_TAX
    transfer_fee_markets: frozenset[str] = field(default_factory=lambda: frozenset({"SH", "SZ", "BJ"}))

    def __post_init__(self) -> None:
        _rate(self.commission_rate, "commission_rate")
        _rate(self.transfer_fee_rate, "transfer_fee_rate")
        if not (math.isfinite(self.min_commission) and self.min_commission >= 0):
            raise ValueError(f"min_commission must be a finite amount of yuan, 0 or more, not {self.min_commission!r}")
        if not self.stamp_tax:
            raise ValueError("the stamp tax table needs at least one (first day, rate) entry")
        days = [day for day, _ in self.stamp_tax]
        if days != sorted(days) or len(set(days)) != len(days):
            raise ValueError("the stamp tax table must be in strictly increasing date order")
        for _, rate in self.stamp_tax:
            _rate(rate, "a stamp tax rate")
        unknown = set(self.transfer_fee_markets) - {"SH", "SZ", "BJ"}
        if unknown:
            raise ValueError(f"transfer_fee_markets takes SH, SZ and BJ, not {', '.join(sorted(unknown))}")

    def stamp_tax_rate(self, day: dt.date) -> float:
        """The stamp tax rate on a sell traded on ``day`` (0.0 before the table's first day)."""
        rate = 0.0
        for first, value in self.stamp_tax:
            if first > day:
                break
            rate = value
        return rate

    def fill_fees(
        self,
        symbol: str,
        side: str,
        price: float,
        shares: float,
        day: dt.date | dt.datetime,
        *,
        commission_so_far: float = 0.0,
        amount_so_far: float | None = None,
    ) -> Fees:
        """The fees of ``shares`` of ``symbol`` traded at ``price`` on ``day``, ``side`` "buy" or "sell".

        ``commission_so_far``: the commission the order's earlier fills paid (0 for its first fill, or for a
        whole order priced at once); ``amount_so_far``: their amount, yuan.  With both, the order's
        commission after this fill is max(rate × its whole amount, minimum), as a broker merges the fills
        of one order: three fills of 4,000 yuan pay 5.00 + 0 + 0 (rate × 12,000 = 3.00 < 5).  Without
        ``amount_so_far`` the fill pays its own rate, topped up to the minimum (5.00 + 1.00 + 1.00: an
        upper bound).  ValueError for a side that is not buy/sell, a price or a quantity that is not > 0.
        """
        if side not in _SIDES:
            raise ValueError(f"side {side!r} is not one of buy, sell")
        if not (math.isfinite(price) and price > 0):
            raise ValueError(f"price must be > 0 yuan, not {price!r}")
        if not (math.isfinite(shares) and shares > 0):
            raise ValueError(f"shares must be > 0, not {shares!r}")
        if not (math.isfinite(commission_so_far) and commission_so_far >= 0):
            raise ValueError(f"commission_so_far must be 0 or more yuan, not {commission_so_far!r}")
        trade_day = day.date() if isinstance(day, dt.datetime) else day
        sym = normalize_symbol(symbol)
        amount = _decimal(price) * _decimal(shares)
        if amount_so_far is not None:
            if not (math.isfinite(amount_so_far) and amount_so_far >= 0):
                raise ValueError(f"amount_so_far must be 0 or more yuan, not {amount_so_far!r}")
            whole = ((_decimal(amount_so_far) + amount) * _decimal(self.commission_rate)).quantize(
                _FEN, rounding=ROUND_HALF_UP
            )
            owed = max(whole, _decimal(self.min_commission).quantize(_FEN, rounding=ROUND_HALF_UP))
            commission = max(owed - _decimal(commission_so_far).quantize(_FEN, rounding=ROUND_HALF_UP), Decimal(0))
        else:
            by_rate = (amount * _decimal(self.commission_rate)).quantize(_FEN, rounding=ROUND_HALF_UP)
            top_up = (_decimal(self.min_commission) - _decimal(commission_so_far)).quantize(
                _FEN, rounding=ROUND_HALF_UP
            )
            commission = max(by_rate, top_up)
        stock = board_of(sym) != "fund"
        stamp = Decimal(0)
        if side == "sell" and stock:
            stamp = amount * _decimal(self.stamp_tax_rate(trade_day))
        transfer = Decimal(0)
        if stock and sym[:2] in self.transfer_fee_markets:
            transfer = amount * _decimal(self.transfer_fee_rate)
        return Fees(round_fen(commission), round_fen(stamp), round_fen(transfer))
