"""The per-order limits: each a check ``(engine, order, wire_type, limit_price) -> why`` ("" passes).

``wire_type`` is how the order goes out now ("limit", "market"), or its emulated type ("stop",
"stop_limit", "trailing_stop") when the emulator takes it to hold: a held order reaches no exchange,
so the price and hours checks wait for its release (when it is checked again as a market or limit
order).  Sizes count what is still to trade (``shares - filled_shares``); "open buys" are the buys
working at a broker (or released), not the emulator's held ones, which are checked when released.
Sells reduce a position and are never refused by the position and exposure limits.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from hkrt.strategy import pretrade
from hkrt.strategy.order import Order
from hkrt.strategy.risk.hours import hours_text, takes_orders

if TYPE_CHECKING:
    from hkrt.strategy.risk.engine import RiskEngine

HELD_TYPES = frozenset({"stop", "stop_limit", "trailing_stop"})  # the emulator's: not sent when placed


def remaining(order: Order) -> int:
    return max(order.shares - order.filled_shares, 0)


def reference_price(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> float | None:
    """The price an order's value is taken at: its limit, a stop's trigger, else the request's reference
    or the latest price."""
    if limit_price is not None:
        return limit_price
    if wire_type == "stop" and order.stop_price is not None:
        return order.stop_price
    if order.request_price is not None and order.request_price > 0:
        return order.request_price
    return engine.account.last_price(order.symbol)


def open_buys(engine: RiskEngine, order: Order, symbol: str | None = None) -> list[Order]:
    """The open buys working at a broker (of ``symbol``), other than ``order``."""
    cid = order.client_order_id
    return [o for o in engine.open_buys_now() if o.client_order_id != cid and (symbol is None or o.symbol == symbol)]


def _value_of(order: Order, fallback: float | None) -> float:
    px = order.price or order.request_price or fallback or 0.0
    return remaining(order) * px


def order_size(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """max_order_shares and max_order_value, both sides (a fat-fingered sell is as wrong as a buy)."""
    c, n = engine.config, remaining(order)
    if c.max_order_shares is not None and n > c.max_order_shares:
        return f"{order.side} of {n} shares of {order.symbol} is above max_order_shares {c.max_order_shares}"
    if c.max_order_value is not None:
        px = reference_price(engine, order, wire_type, limit_price)
        if px is None:
            return f"no price to value the {order.side} of {order.symbol} against max_order_value"
        if n * px > c.max_order_value:
            return (
                f"{order.side} of {n} {order.symbol} at {px:g} is worth {n * px:,.2f} yuan, above max_order_value "
                f"{c.max_order_value:,.2f}"
            )
    return ""


def position_size(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """max_position_value and max_position_pct: what the symbol would be worth with this buy and the
    open buys filled, at the latest price (the order's price when none)."""
    c = engine.config
    if order.side != "buy" or (c.max_position_value is None and c.max_position_pct is None):
        return ""
    account, sym = engine.account, order.symbol
    px = account.last_price(sym) or reference_price(engine, order, wire_type, limit_price)
    if px is None:
        return f"no price to value {sym} against the position limits"
    shares = account.position(sym) + remaining(order) + sum(remaining(o) for o in open_buys(engine, order, sym))
    value = shares * px
    if c.max_position_value is not None and value > c.max_position_value:
        return (
            f"{sym} would be {shares} shares worth {value:,.2f} yuan at {px:g} (held, open buys and this one), "
            f"above max_position_value {c.max_position_value:,.2f}"
        )
    if c.max_position_pct is not None and (over := _over_equity(engine, value, c.max_position_pct)):
        return f"{sym} would be {value:,.2f} yuan, {over}, above max_position_pct {c.max_position_pct:.2%}"
    return ""


def _over_equity(engine: RiskEngine, value: float, limit: float) -> str:
    """ "" when ``value`` is at most ``limit`` of the account's equity; else "x % of equity y"."""
    equity = engine.equity_now()
    if equity > 0 and value <= limit * equity:
        return ""
    share = value / equity if equity > 0 else math.inf
    return f"{share:.2%} of equity {equity:,.2f}"


def gross_exposure(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """max_gross_exposure: the positions at their latest prices, the open buys and this one, over equity."""
    limit = engine.config.max_gross_exposure
    if order.side != "buy" or limit is None:
        return ""
    account = engine.account
    held = 0.0
    for sym, shares in account.holdings().items():
        px = account.last_price(sym)
        held += shares * (px if px is not None else 0.0)
    buys = sum(_value_of(o, account.last_price(o.symbol)) for o in open_buys(engine, order))
    px = reference_price(engine, order, wire_type, limit_price) or 0.0
    total = held + buys + remaining(order) * px
    if over := _over_equity(engine, total, limit):
        return (
            f"gross exposure would be {total:,.2f} yuan, {over} (positions {held:,.2f}, open buys {buys:,.2f}, "
            f"this buy {remaining(order) * px:,.2f}), above max_gross_exposure {limit:.2%}"
        )
    return ""


def position_count(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """max_positions: symbols held or being bought; a buy of a new one past the limit is refused."""
    limit = engine.config.max_positions
    if order.side != "buy" or limit is None:
        return ""
    account = engine.account
    symbols = {s for s, n in account.holdings().items() if n > 0} | {o.symbol for o in open_buys(engine, order)}
    if order.symbol in symbols or len(symbols) < limit:
        return ""
    return (
        f"a buy of {order.symbol} would make {len(symbols) + 1} positions (held or being bought), "
        f"above max_positions {limit}"
    )


def price_band(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """The fat-finger band: a limit price within ``price_band`` of the latest price."""
    band = engine.config.price_band
    if band is None or wire_type != "limit" or limit_price is None:
        return ""
    last = engine.account.last_price(order.symbol)
    if last is None or not last > 0:
        return ""  # nothing to compare with yet: the day's limits still bind it
    off = abs(limit_price / last - 1.0)
    if off > band + 1e-9:
        return (
            f"limit price {limit_price:g} is {off:.2%} from {order.symbol}'s latest price {last:g}, outside "
            f"price_band {band:.2%}"
        )
    return ""


def day_limits(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """The day's price limits at the moment the order goes out (``hkrt.strategy.pretrade.outside_limits``,
    the rule ``Strategy.order`` applies when the order is placed): a stop-limit released on a later day
    meets that day's limits."""
    if wire_type != "limit" or limit_price is None:
        return ""
    quote = engine.account.day_quote(order.symbol)
    return pretrade.outside_limits(order.symbol, limit_price, quote) if quote is not None else ""


def trading_hours(engine: RiskEngine, order: Order, wire_type: str, limit_price: float | None) -> str:
    """Orders only while the exchange takes them (``risk.hours``), at the account's clock; a strategy
    with no clock yet (not running, no data) is not checked: nothing tells the time it trades at."""
    if not engine.config.trading_hours or wire_type in HELD_TYPES:
        return ""
    now = engine.account.now
    if now is None or takes_orders(now.time()):
        return ""
    return f"{now:%H:%M:%S} is outside the exchange's order hours ({hours_text()})"


PER_ORDER_CHECKS = (
    ("trading_hours", trading_hours),
    ("order_size", order_size),
    ("price_band", price_band),
    ("day_limits", day_limits),
    ("position_size", position_size),
    ("gross_exposure", gross_exposure),
    ("max_positions", position_count),
)
