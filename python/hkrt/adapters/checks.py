"""The exchange's rules (lots, board minimums, price ticks, odd-lot sells) at the broker's door.

Which layer refuses what (docs/risk.md): ``Strategy.order`` rounds to lots and to what the cash and the
T+1 sellable shares allow and refuses a suspended symbol, an off-tick price or one outside the day's
limits (hkrt.strategy.pretrade); the risk engine refuses what breaks the account's own limits; the C++
``OrderBrokerBase`` refuses num <= 0, a bad price, an order before ``broker_last_datetime`` and a
duplicate; :class:`ExchangeRuleGate` refuses, before a venue sees it, an order the venue would change
rather than refuse (easytrader's GUI clients auto-confirm their warnings) -- orders from other code than
a Strategy reach it too.  The rules are the same functions everywhere: the tick and the fund/bond board
from ``hkrt.core.price_limits``, the stock boards' lots from ``hkrt.core.lots``.  No execution client
carries rules of its own: a gated one implements ``send`` (map and send) and ``sellable`` (what the
account may sell now), the gate does the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.core.lots import lot_rule
from hkrt.core.price_limits import board_of, on_tick, tick_size

__all__ = ["ExchangeRuleGate", "exchange_rule_refusal", "order_quantity_error"]

log = logging.getLogger("hkrt.broker.checks")

_EPS = 1e-6


_BOND_PREFIXES = ("110", "111", "113", "118", "123", "127", "128")  # convertible bonds: lots of 10


def _board(market: str, code: str) -> tuple[int, int, float]:
    """(lot, minimum, tick) for a code: STAR needs 200 then steps of 1; BJ 100 then 1; convertible bonds
    trade in 10s; funds and bonds quote to 0.001 yuan, stocks to 0.01 (``hkrt.core.price_limits``)."""
    symbol = f"{market}{code}"
    tick = tick_size(symbol)
    if board_of(symbol) == "fund":
        return (10, 10, tick) if code.startswith(_BOND_PREFIXES) else (100, 100, tick)
    rule = lot_rule(symbol)  # stocks: the one table of board rules (hkrt.core.lots)
    return rule.step, rule.minimum, tick


def order_quantity_error(side: str, market: str, code: str, price: float, num: float, held: float | None) -> str:
    """Why the exchange would refuse this order, or "" when it would not (as far as we can tell).

    ``side`` is "buy" or "sell"; ``held`` the shares sellable now, or None when unknown (then an odd-lot sell
    is left to the broker to judge).  A sell may be an odd amount only to clear the odd remainder.
    """
    if abs(num - round(num)) > _EPS:
        return f"num {num:g} is not a whole number of shares"
    n = round(num)
    lot, minimum, tick = _board(market, code)
    if not on_tick(f"{market}{code}", price):
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


class ExchangeRuleGate(OrderBrokerBase):
    """An ``OrderBrokerBase`` whose orders pass the exchange's rules before ``send``: a market other than
    SH/SZ/BJ, a code that is not six digits and (``check_exchange_rules``) a quantity or price the exchange
    would refuse are Rejected here, logged at WARNING, and never reach the venue.

    A subclass implements ``send(side, request)`` ("buy" or "sell"; map the request to the venue and send
    it) and, when it can, ``sellable(market, code)`` (shares sellable now, None when unknown), asked only
    for a sell that is valid solely as the whole remainder."""

    check_exchange_rules = True

    def _buy(self, request: OrderRequest) -> OrderResult:
        return self._gated("buy", request)

    def _sell(self, request: OrderRequest) -> OrderResult:
        return self._gated("sell", request)

    def send(self, side: str, request: OrderRequest) -> OrderResult:
        raise NotImplementedError(f"{type(self).__name__} does not implement send")

    def sellable(self, market: str, code: str) -> float | None:
        return None

    def _gated(self, side: str, request: OrderRequest) -> OrderResult:
        market, code = request.market.upper(), request.code
        if market not in ("SH", "SZ", "BJ"):
            return OrderResult(OrderStatus.Rejected, error=f"market {market!r} is not SH, SZ or BJ")
        if not (len(code) == 6 and code.isdigit()):
            return OrderResult(OrderStatus.Rejected, error=f"code {code!r} is not six digits")
        if self.check_exchange_rules:
            held = lambda: self.sellable(market, code)  # noqa: E731  (asked only when a sell needs it)
            why = exchange_rule_refusal(side, market, code, request.price, request.num, held)
            if why:
                log.warning("%s: %s not sent: %s", self.name, side, why, extra={"broker": self.name, "reason": why})
                return OrderResult(OrderStatus.Rejected, error=why)
        return self.send(side, request)
