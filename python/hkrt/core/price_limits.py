"""The exchanges' daily price limits and price ticks, per board (docs/strategy.md, "Price limits").

A security may trade only within its day's limits, computed from the previous close: ±10 % on the
Shanghai and Shenzhen main boards, ±20 % on STAR (688/689) and ChiNext (300/301), ±30 % on the
Beijing exchange, ±5 % for a main-board stock under risk warning (ST, *ST).  The limit price is the
previous close times (1 ± rate), rounded half up to the tick (0.01 yuan for stocks).  Funds and bonds
quote to 0.001 yuan.

Worked example: previous close 10.05, main board: up 10.05 × 1.10 = 11.055 -> 11.06, down
10.05 × 0.90 = 9.045 -> 9.05.  ST at 3.33: up 3.4965 -> 3.50, down 3.1635 -> 3.16.

Not modelled (no listing dates in the feed): the first days of a new listing, which trade without a
limit (five days on STAR, ChiNext and Beijing; the first day on the main boards).
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from hkrt._hkrt import normalize_symbol

__all__ = ["board_of", "is_st", "limit_rate", "on_tick", "price_limits", "round_to_tick", "tick_size"]

_FUND_OR_BOND_PREFIXES = ("110", "111", "113", "118", "123", "127", "128", "15", "16", "18", "5")


def board_of(symbol: str) -> str:
    """ "main", "star", "chinext", "beijing" or "fund" (funds, ETFs and bonds)."""
    sym = normalize_symbol(symbol)
    market, code = sym[:2], sym[2:]
    if market == "BJ":
        return "beijing"
    if code.startswith(_FUND_OR_BOND_PREFIXES):
        return "fund"
    if market == "SH" and code.startswith(("688", "689")):
        return "star"
    if market == "SZ" and code.startswith(("300", "301")):
        return "chinext"
    return "main"


def is_st(name: str) -> bool:
    """A security name under risk warning: "ST xx", "*ST xx", "S*ST xx" (the exchanges' prefixes)."""
    return name.strip().upper().startswith(("ST", "*ST", "S*ST", "SST"))


def limit_rate(symbol: str, *, st: bool = False) -> float:
    """The day's limit as a fraction of the previous close (0.10, 0.20, 0.30, 0.05)."""
    board = board_of(symbol)
    if board in ("star", "chinext"):
        return 0.20  # risk warning does not narrow these boards' limit
    if board == "beijing":
        return 0.30
    return 0.05 if st else 0.10


def tick_size(symbol: str) -> float:
    """The price step, yuan: 0.01 for stocks, 0.001 for funds, ETFs and bonds."""
    return 0.001 if board_of(symbol) == "fund" else 0.01


def _round_to_tick(value: Decimal, tick: float) -> float:
    step = Decimal(str(tick))
    return float((value / step).quantize(Decimal(1), rounding=ROUND_HALF_UP) * step)


def price_limits(symbol: str, prev_close: float, *, st: bool = False) -> tuple[float, float]:
    """(limit down, limit up) in yuan for a day whose previous close was ``prev_close``.

    Computed in decimal from the close's printed value, so 10.05 × 1.1 rounds as the exchange does
    (11.06), not as its binary float (11.054999…).  Raises ValueError for a close that is not > 0.
    """
    if not prev_close > 0:
        raise ValueError(f"previous close {prev_close!r} of {symbol} is not a positive price")
    rate = Decimal(str(limit_rate(symbol, st=st)))
    close = Decimal(repr(float(prev_close)))
    tick = tick_size(symbol)
    down = _round_to_tick(close * (1 - rate), tick)
    up = _round_to_tick(close * (1 + rate), tick)
    return max(down, tick), up


LIMIT_EPS = 1e-6  # float noise on prices of 0.001-yuan ticks


def inside_limits(price: float, limits: tuple[float, float]) -> bool:
    """Whether ``price`` is within the day's ``(down, up)`` limits, both included (the one comparison the
    strategy, the risk engine and the paper broker make)."""
    return limits[0] - LIMIT_EPS <= price <= limits[1] + LIMIT_EPS


def on_tick(symbol: str, price: float) -> bool:
    """Whether ``price`` is a whole number of ticks (within float noise)."""
    steps = price / tick_size(symbol)
    return abs(steps - round(steps)) <= 1e-6


def round_to_tick(symbol: str, price: float, direction: str = "nearest") -> float:
    """``price`` on the symbol's tick: "nearest" (half up), "down" or "up" — e.g. a take-profit computed
    as 1.03 × a close, made a price the exchange accepts."""
    tick = Decimal(str(tick_size(symbol)))
    steps = Decimal(repr(float(price))) / tick
    rounding = {"nearest": ROUND_HALF_UP, "down": ROUND_FLOOR, "up": ROUND_CEILING}.get(direction)
    if rounding is None:
        raise ValueError(f"direction {direction!r} is not one of nearest, down, up")
    return float(steps.quantize(Decimal(1), rounding=rounding) * tick)
