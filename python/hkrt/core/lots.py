"""Order quantities the exchanges accept (trading rules of SSE, SZSE and BSE).

- Main boards (SH 60xxxx, SZ 00xxxx) and ChiNext (SZ 30xxxx): buys in whole lots of 100 shares.
- STAR Market (SH 688xxx/689xxx): a buy is at least 200 shares, then any number of shares.
- Beijing (BJ): a buy is at least 100 shares, then any number of shares.
- Sells follow the same minimum and step, except that a holding smaller than the minimum
  (an odd lot) may only be sold all at once, and selling the whole holding is always allowed.

Everything rounds *down*: an order never becomes bigger than the strategy asked for.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LotRule:
    """``minimum`` shares per order, then multiples of ``step`` above it."""

    board: str
    minimum: int
    step: int


MAIN = LotRule("main", 100, 100)
CHINEXT = LotRule("chinext", 100, 100)
STAR = LotRule("star", 200, 1)
BEIJING = LotRule("beijing", 100, 1)


def lot_rule(symbol: str) -> LotRule:
    """The rule for a normalized symbol such as ``SH688001``."""
    market, code = symbol[:2].upper(), symbol[2:]
    if market == "BJ":
        return BEIJING
    if market == "SH" and code.startswith(("688", "689")):
        return STAR
    if market == "SZ" and code.startswith("30"):
        return CHINEXT
    return MAIN


def _floor(rule: LotRule, num: int) -> int:
    if num < rule.minimum:
        return 0
    return rule.minimum + (num - rule.minimum) // rule.step * rule.step


def round_buy(symbol: str, num: float) -> int:
    """The largest valid buy quantity not above ``num`` (0 when below the minimum)."""
    return _floor(lot_rule(symbol), int(max(num, 0.0) + 1e-9))


def round_sell(symbol: str, num: float, held: float) -> int:
    """The largest valid sell quantity not above ``num`` out of ``held`` sellable shares."""
    want = int(max(num, 0.0) + 1e-9)
    have = int(max(held, 0.0) + 1e-9)
    if want <= 0 or have <= 0:
        return 0
    if want >= have:
        return have  # the whole holding, odd lot included
    return _floor(lot_rule(symbol), want)
