"""Position sizing: how many shares to buy, already rounded to what the exchange accepts (docs/sizing.md).

Each sizer turns a rule (a fraction of equity, a volatility target, fractional Kelly) into a yuan *budget*,
then :func:`affordable` finds the largest valid buy quantity whose cost -- shares x price plus the buy's fees
under a :class:`~hkrt.core.fees.FeeModel` -- stays within it.  The budget is the rule's target value, lowered
to ``cash`` when given, so a result never costs more than either.  Quantities follow the board's lot rule
(:mod:`hkrt.core.lots`): main boards and ChiNext in lots of 100, STAR at least 200 then single shares, Beijing
at least 100 then single shares.  A budget below one valid lot gives 0 shares, not an error.

The functions are pure (no account, no clock): the fees are those of a whole order priced at once, on the buy
side, where no stamp tax is due, so the trade date does not matter.  Bad input raises a one-line ValueError
naming the argument.
"""

from __future__ import annotations

import datetime as dt
import math
import numbers
from decimal import Decimal

from hkrt._hkrt import normalize_symbol
from hkrt.core.fees import FeeModel, round_fen
from hkrt.core.lots import lot_rule, round_buy

__all__ = [
    "A_SHARE_FEES",
    "affordable",
    "buy_cost",
    "fixed_fraction",
    "kelly",
    "kelly_fraction",
    "lot_rounded",
    "volatility_target",
]

#: the default fee schedule: the A-share FeeModel (0.025 % commission, 5 yuan minimum, transfer fee)
A_SHARE_FEES = FeeModel()

# buys pay no stamp tax, so any date prices them alike; a fixed one keeps the functions pure
_BUY_DAY = dt.date(2024, 1, 2)


def _symbol(symbol: str) -> str:
    try:
        return normalize_symbol(symbol)
    except ValueError as exc:
        raise ValueError(f"symbol: {exc}") from None


def _finite(name: str, value: float) -> float:
    # numbers.Real: numpy scalars from a DataFrame are welcome; bool is an int, not a quantity
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def _positive(name: str, value: float) -> float:
    if _finite(name, value) <= 0:
        raise ValueError(f"{name} must be > 0, not {value!r}")
    return float(value)


def _non_negative(name: str, value: float) -> float:
    if _finite(name, value) < 0:
        raise ValueError(f"{name} must be 0 or more, not {value!r}")
    return float(value)


def _fraction(name: str, value: float) -> float:
    if not 0 < _finite(name, value) <= 1:
        raise ValueError(f"{name} must be a fraction in (0, 1], not {value!r}")
    return float(value)


def _budget(target: float, cash: float | None) -> float:
    if cash is None:
        return target
    return min(target, _non_negative("cash", cash))


def buy_cost(symbol: str, price: float, shares: int, fees: FeeModel | None = A_SHARE_FEES) -> float:
    """What buying ``shares`` of ``symbol`` at ``price`` costs, yuan: the amount plus the order's fees.

    ``fees=None`` counts the amount only.  0.0 for 0 shares.
    """
    sym = _symbol(symbol)
    _positive("price", price)
    if isinstance(shares, bool) or not isinstance(shares, numbers.Integral) or shares < 0:
        raise ValueError(f"shares must be a whole number, 0 or more, not {shares!r}")
    return _cost(sym, float(price), int(shares), fees)


def _cost(sym: str, price: float, shares: int, fees: FeeModel | None) -> float:
    if shares == 0:
        return 0.0
    amount = Decimal(repr(price)) * shares
    if fees is None:
        return round_fen(amount)
    return round_fen(amount + Decimal(repr(fees.fill_fees(sym, "buy", price, shares, _BUY_DAY).total)))


def _fee_bound(fees: FeeModel | None, budget: float) -> float:
    """More than the buy fees of any order of at most ``budget`` yuan (each component's rounding included)."""
    if fees is None:
        return 0.0
    return max(fees.min_commission, fees.commission_rate * budget) + fees.transfer_fee_rate * budget + 0.02


def lot_rounded(symbol: str, shares: float) -> int:
    """``shares`` rounded down to a quantity the board accepts for a buy (0 below its minimum)."""
    return round_buy(_symbol(symbol), _non_negative("shares", shares))


def affordable(symbol: str, price: float, budget: float, *, fees: FeeModel | None = A_SHARE_FEES) -> int:
    """The largest valid buy quantity of ``symbol`` at ``price`` whose cost (fees included) is <= ``budget``.

    The cost grows with the quantity, so a binary search over the board's valid quantities
    (minimum + k x step) finds it.  It searches between what the budget buys without fees (an upper bound)
    and what it buys once an upper bound of the fees is set aside (affordable): a window of a few steps,
    so a call prices the fees a handful of times.
    """
    sym = _symbol(symbol)
    price = _positive("price", price)
    _non_negative("budget", budget)
    rule = lot_rule(sym)
    top = round_buy(sym, budget / price)  # fees only lower it
    if top == 0 or _cost(sym, price, rule.minimum, fees) > budget:
        return 0
    # step indexes (quantity = minimum + index x step): low affordable, high an upper bound
    low, high = 0, (top - rule.minimum) // rule.step
    surely = round_buy(sym, (budget - _fee_bound(fees, budget)) / price)
    if surely > rule.minimum and _cost(sym, price, surely, fees) <= budget:
        low = (surely - rule.minimum) // rule.step
    while low < high:
        mid = (low + high + 1) // 2
        if _cost(sym, price, rule.minimum + mid * rule.step, fees) <= budget:
            low = mid
        else:
            high = mid - 1
    return rule.minimum + low * rule.step


def fixed_fraction(
    symbol: str,
    equity: float,
    price: float,
    fraction: float,
    *,
    cash: float | None = None,
    fees: FeeModel | None = A_SHARE_FEES,
) -> int:
    """Shares worth ``fraction`` of ``equity`` (fees included), no more than ``cash`` pays for.

    Budget = min(equity x fraction, cash).  Example: equity 100,000, fraction 0.1, price 12.34 on a main
    board: 10,000 / 12.34 = 810.4 -> 800 shares, cost 9,872 + 5.00 commission + 0.10 transfer fee = 9,877.10.
    """
    _non_negative("equity", equity)
    _positive("price", price)
    _fraction("fraction", fraction)
    return affordable(symbol, price, _budget(equity * fraction, cash), fees=fees)


def volatility_target(
    symbol: str,
    equity: float,
    price: float,
    atr: float,
    *,
    risk_fraction: float = 0.01,
    atr_multiple: float = 2.0,
    cash: float | None = None,
    fees: FeeModel | None = A_SHARE_FEES,
) -> int:
    """Shares such that an adverse move of ``atr_multiple`` x ``atr`` loses ``risk_fraction`` of ``equity``.

    shares = equity x risk_fraction / (atr_multiple x atr); the position's value is then capped at
    ``equity`` (no leverage: a tiny ATR does not buy more than the account is worth) and at ``cash``.
    Example: equity 200,000, risk 1 %, ATR 0.50, multiple 2, price 20 on a main board: 2,000 / 1.00 = 2,000
    shares worth 40,000 (within equity), cost 40,000 + 10.00 commission + 0.40 transfer fee = 40,010.40 > 40,000
    -> 1,900 shares (38,009.88); a stop 1.00 below entry then loses 1,900 yuan, just under 1 %.
    """
    _non_negative("equity", equity)
    _positive("price", price)
    _positive("atr", atr)
    _fraction("risk_fraction", risk_fraction)
    _positive("atr_multiple", atr_multiple)
    shares = equity * risk_fraction / (atr_multiple * atr)
    return affordable(symbol, price, _budget(min(shares * price, equity), cash), fees=fees)


# an edge this close to zero is float noise (0.4 - 0.6 / 1.5 is 2.8e-17, not a reason to buy)
_NO_EDGE = 1e-12


def kelly_fraction(win_rate: float, win_loss_ratio: float, *, cap: float = 0.25, fraction: float = 0.5) -> float:
    """The share of equity fractional Kelly stakes: clamp(fraction x (p - (1 - p) / b), 0, cap).

    An edge p - (1 - p) / b of at most 1e-12 counts as none (0.0).
    """
    p = _finite("win_rate", win_rate)
    if not 0 <= p <= 1:
        raise ValueError(f"win_rate must be a probability in [0, 1], not {win_rate!r}")
    b = _positive("win_loss_ratio", win_loss_ratio)
    _fraction("cap", cap)
    _fraction("fraction", fraction)
    edge = p - (1 - p) / b
    if edge <= _NO_EDGE:
        return 0.0
    return min(edge * fraction, cap)


def kelly(
    symbol: str,
    equity: float,
    price: float,
    *,
    win_rate: float,
    win_loss_ratio: float,
    cap: float = 0.25,
    fraction: float = 0.5,
    cash: float | None = None,
    fees: FeeModel | None = A_SHARE_FEES,
) -> int:
    """Shares worth the fractional Kelly stake of ``equity`` (see :func:`kelly_fraction`); 0 without an edge.

    f* = p - (1 - p) / b with p = ``win_rate`` and b = ``win_loss_ratio`` (average win / average loss); the
    stake is ``fraction`` x f*, at most ``cap``, never negative.  Example: p 0.55, b 1.5: f* = 0.55 - 0.45 / 1.5
    = 0.25, half Kelly 0.125 of 100,000 = 12,500 yuan; at price 10 on a main board 1,200 shares (12,005.12).
    """
    _non_negative("equity", equity)
    _positive("price", price)
    stake = kelly_fraction(win_rate, win_loss_ratio, cap=cap, fraction=fraction)
    if stake <= 0:
        _symbol(symbol)
        return 0
    return affordable(symbol, price, _budget(equity * stake, cash), fees=fees)
