"""Pre-trade checks: why an order must not be sent, in one line, before any broker sees it.

``Strategy.order`` runs them in this order and refuses the order (status ``rejected``, the reason,
never sent) at the first that fails (docs/orders.md, "Pre-trade rejections"):

1. a duplicate client order id;
2. a suspended symbol: the feed has spots of today but none of the symbol with a trade, once the
   continuous session has begun (09:30);
3. no price: a market order with no price given and none seen yet;
4. a price off the tick (0.01 yuan for stocks, 0.001 for funds), the limit or the stop price;
5. a limit price outside the day's price limits (from the symbol's previous close and, for the
   ±5 % of a stock under risk warning, its name; skipped when the feed gave no previous close);
   the risk engine checks it again when the order goes out (a stop-limit released on a later day);
6. the size: rounded down to the board's lot, then a buy to what the cash pays for (cash minus
   what today's open buys reserve, fees included), a sell to what is sellable today (T+1) minus
   today's open sells; nothing left is refused, naming the lot, the cash or T+1.

These are the exchange's rules, refused with the exchange's words (no ``risk:`` prefix): the order would
be refused by the exchange anyway.  The account's own limits are the risk engine's
(``hkrt.strategy.risk``, reasons starting ``risk:``), which every order passes on its way to a broker.
The same rule functions serve the paper broker and the easytrader gate (docs/risk.md).
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass

from hkrt.core.china_time import MARKET_OPEN
from hkrt.core.lots import lot_rule, round_buy, round_sell
from hkrt.core.price_limits import inside_limits, is_st, limit_rate, on_tick, price_limits, tick_size

CONTINUOUS_OPEN = MARKET_OPEN  # the continuous session's start: a symbol with no trade by then is taken as suspended


@dataclass(frozen=True)
class Quote:
    """What the feed said of a symbol on the order's day."""

    spots_today: bool  # the strategy has seen spots of the order's day (of any of its symbols)
    traded_today: bool  # ... and one of this symbol with a trade (close > 0)
    prev_close: float | None = None  # the previous close from its spots (None: not known)
    name: str = ""  # its display name ("*ST xx": risk warning, ±5 % on the main boards)


def suspended(symbol: str, quote: Quote, when: dt.datetime) -> str:
    if quote.spots_today and not quote.traded_today and when.time() >= CONTINUOUS_OPEN:
        return f"{symbol} is suspended: no trade today in the feed"
    return ""


def off_tick(symbol: str, price: float | None, what: str) -> str:
    if price is None:
        return ""
    if not math.isfinite(price) or price <= 0:
        return f"{what} {price} of {symbol} is not a positive price"
    if not on_tick(symbol, price):
        return f"{what} {price:g} is off the {tick_size(symbol):g} yuan tick of {symbol}"
    return ""


def outside_limits(symbol: str, price: float | None, quote: Quote) -> str:
    """The limit price against the day's limits (nothing to check without a previous close)."""
    if price is None or quote.prev_close is None or not quote.prev_close > 0:
        return ""
    st = is_st(quote.name)
    down, up = price_limits(symbol, quote.prev_close, st=st)
    if inside_limits(price, (down, up)):
        return ""
    rate = limit_rate(symbol, st=st)
    return (
        f"limit price {price:g} is outside {symbol}'s limits today [{down:g}, {up:g}] "
        f"(previous close {quote.prev_close:g}, ±{rate:.0%}{', ST' if st else ''})"
    )


def size_buy(
    symbol: str,
    requested: float,
    price: float,
    cash: float,
    reserved: float,
    fees: Callable[[int], float],
) -> tuple[int, str]:
    """(shares, "") for a buy of up to ``requested`` shares at ``price`` out of ``cash`` yuan of which
    ``reserved`` is promised to open buys, ``fees(shares)`` paid on top; (0, why) when nothing is left."""
    rule = lot_rule(symbol)
    if round_buy(symbol, requested) == 0:
        board = f"{rule.board} board minimum {rule.minimum}"
        return 0, f"below the lot: {requested:g} shares of {symbol} round to 0 ({board})"
    available = max(cash - reserved, 0.0)
    shares = round_buy(symbol, min(requested, available / price))
    while shares > 0 and shares * price + fees(shares) > available + 1e-6:
        shares = round_buy(symbol, shares - 1)  # the fees push it over: one step less
    if shares == 0:
        need = round_buy(symbol, requested) * price
        held_back = f", {reserved:,.2f} of {cash:,.2f} reserved by open buys" if reserved > 0 else ""
        return 0, (
            f"cash: {round_buy(symbol, requested)} shares of {symbol} at {price:g} need {need:,.2f} yuan, "
            f"{available:,.2f} available{held_back}"
        )
    return shares, ""


def size_sell(symbol: str, requested: float, held: int, sellable: int, reserved: int) -> tuple[int, str]:
    """(shares, "") for a sell of up to ``requested`` out of ``sellable`` shares (T+1) of which ``reserved``
    are in open sells; (0, why) when nothing is left."""
    available = max(sellable - reserved, 0)
    if available == 0:
        in_sells = f", {reserved} in open sells" if reserved else ""
        return 0, f"T+1: nothing sellable of {symbol}: {held} held, {sellable} sellable today{in_sells}"
    shares = round_sell(symbol, requested, available)
    if shares == 0:
        rule = lot_rule(symbol)
        return 0, (
            f"below the lot: {requested:g} of {available} sellable shares of {symbol} round to 0 "
            f"({rule.board} board minimum {rule.minimum}; the whole holding may always be sold)"
        )
    return shares, ""
