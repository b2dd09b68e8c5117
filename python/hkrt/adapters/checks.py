"""Pre-trade checks of the exchange's rules (lots, board minimums, price ticks, odd-lot sells), in one
place until the risk engine (issue 15) takes them over.

Where checks live today: ``Strategy.order`` rounds to lots and to what the cash and the T+1 sellable
shares allow (hkrt.lots, strategy/book.py); the C++ ``OrderBrokerBase`` refuses num <= 0, a bad price, an
order before ``broker_last_datetime`` and a duplicate; an execution client that sends to a GUI client
which would silently change a refused order (easytrader) asks :func:`exchange_rule_refusal` before
sending.  No execution client carries rules of its own.
"""

from __future__ import annotations

from collections.abc import Callable

from hkrt.lots import lot_rule

__all__ = ["exchange_rule_refusal", "order_quantity_error"]

_EPS = 1e-6


def _board(market: str, code: str) -> tuple[int, int, float]:
    """(lot, minimum, tick) for a code: STAR needs 200 then steps of 1; BJ 100 then 1; convertible bonds
    trade in 10s; funds and bonds quote to 0.001 yuan, stocks to 0.01."""
    if market != "BJ" and code.startswith(("110", "111", "113", "118", "123", "127", "128")):
        return 10, 10, 0.001
    if market != "BJ" and code.startswith(("15", "16", "18", "5")):
        return 100, 100, 0.001
    rule = lot_rule(f"{market}{code}")  # stocks: the one table of board rules (hkrt.lots)
    return rule.step, rule.minimum, 0.01


def order_quantity_error(side: str, market: str, code: str, price: float, num: float, held: float | None) -> str:
    """Why the exchange would refuse this order, or "" when it would not (as far as we can tell).

    ``side`` is "buy" or "sell"; ``held`` the shares sellable now, or None when unknown (then an odd-lot sell
    is left to the broker to judge).  A sell may be an odd amount only to clear the odd remainder.
    """
    if abs(num - round(num)) > _EPS:
        return f"num {num:g} is not a whole number of shares"
    n = round(num)
    lot, minimum, tick = _board(market, code)
    if abs(price / tick - round(price / tick)) > 1e-6:
        # The GUI clients format the price themselves ('{:.2f}') and auto-confirm the decimals warning,
        # so an off-tick price would be sent changed rather than refused.
        return f"price {price!r} is not a multiple of the {tick:g} yuan tick for {market}{code}"
    if side == "buy":
        if n < minimum:
            return f"buy of {n} shares of {market}{code}: the minimum is {minimum}"
        if n % lot:
            return f"buy of {n} shares of {market}{code}: must be a multiple of {lot}"
        return ""
    if held is not None and n > held + _EPS:
        return f"sell of {n} shares of {market}{code}: only {held:g} sellable"
    if lot > 1 and n % lot:
        if held is not None and n % lot != round(held) % lot:
            return (
                f"sell of {n} shares of {market}{code}: an odd lot may only clear the odd remainder "
                f"({round(held) % lot} of {held:g} sellable)"
            )
    elif lot == 1 and n < minimum and held is not None and n != round(held):
        return f"sell of {n} shares of {market}{code}: below {minimum} only the whole remainder ({held:g}) may be sold"
    return ""


def _needs_holding(market: str, code: str, num: float) -> bool:
    """Whether a sell of ``num`` is valid only as the whole remainder (so the holding must be known)."""
    lot, minimum, _ = _board(market, code)
    n = round(num)
    return bool(n % lot) if lot > 1 else n < minimum


def exchange_rule_refusal(
    side: str, market: str, code: str, price: float, num: float, sellable: Callable[[], float | None]
) -> str:
    """Why the exchange would refuse the order, or "".  ``sellable()`` (the shares sellable now, None when
    unknown) is asked only for a sell that is valid solely as the whole remainder."""
    why = order_quantity_error(side, market, code, price, num, None)
    if not why and side == "sell" and _needs_holding(market, code, num):
        why = order_quantity_error(side, market, code, price, num, sellable())
    return why
