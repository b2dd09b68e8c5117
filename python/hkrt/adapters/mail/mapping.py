"""The mail venue's edge: an order as the text of a message.

Prices are written in yuan with 2 decimals (3 for a 0.001 tick, fund prices), quantities in shares; the
venue has no order ids of its own (the message's Message-ID is the id) and no status to map: an order is
Sent once the server accepts the message.
"""

from __future__ import annotations

from hkrt._hkrt import OrderRequest


def price_text(p: float) -> str:
    """Yuan with 2 decimals, or 3 for fund prices (0.001 tick)."""
    return f"{p:.2f}" if abs(p * 100 - round(p * 100)) < 1e-6 else f"{p:.3f}"


def num_text(n: float) -> str:
    return f"{n:.0f}" if float(n).is_integer() else f"{n:g}"


def order_subject(side: str, request: OrderRequest) -> str:
    """'BUY SH600000 100 @ 10.50'."""
    return f"{side} {request.market.upper()}{request.code} {num_text(request.num)} @ {price_text(request.price)}"


def order_lines(side: str, request: OrderRequest, broker: str) -> list[tuple[str, str]]:
    """The body's ``key: value`` lines, in order."""
    return [
        ("side", side),
        ("datetime", request.datetime.isoformat(sep=" ")),
        ("market", request.market.upper()),
        ("code", request.code),
        ("price", price_text(request.price)),
        ("num", num_text(request.num)),
        ("stoploss", price_text(request.stoploss)),
        ("goal_price", price_text(request.goal_price)),
        ("part_from", str(request.part_from)),
        ("remark", request.remark),
        ("broker", broker),
    ]
