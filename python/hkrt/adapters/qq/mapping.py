"""Tencent/QQ's edge: symbol codes, the wire format and its units, converted here and nowhere else.

Wire format (docs/fetchers.md, research note §2): 88 ``~`` fields in 2026 (older answers ~50); f0
market id, f1 name, f2 code, f3 last, f4 yesterday close, f5 open, f6 volume, f9-f28 the book as
(price, volume) pairs, f30 ``YYYYMMDDHHMMSS``, f33 high, f34 low, f35 ``price/volume/amount``,
f37 amount.

Units: prices yuan; volume (f6) and book volumes in **lots**, rounded (x 100 here), for stocks and
indices of both exchanges alike; amount from f35's third part in **yuan** (exact to the yuan), or
when absent f37 in **万元** (x 10,000 here, rounded to 万元 for SH/SZ).  Tencent takes no orders:
there is no order status to map.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation

from hkrt._hkrt import Spot
from hkrt.fetcher.common import ParseResult, parse_number, parse_statements, wire_code

LOT = 100  # shares per lot
WAN = 10_000  # yuan per 万元

_STATEMENT = re.compile(r'v_(\w+)="([^"\n]*)"')
_CUT_STATEMENT = re.compile(r"v_(\w+)")
NONE_MATCH = "pv_none_match"
MIN_FIELDS = 38  # f0..f37; everything after is optional


def qq_code(symbol: str) -> str:
    """'SH600000' / '600000.SH' / 'sh600000' -> 'sh600000'; ValueError for anything else."""
    return wire_code(symbol)


def qq_amount(fields: Sequence[str]) -> float:
    """Turnover in yuan: f35's third part (yuan) when present, else f37 (万元) x 10,000."""
    parts = fields[35].split("/")
    if len(parts) >= 3 and parts[2].strip():
        return float(parts[2])
    text = fields[37].strip()
    if not text:
        return 0.0
    try:
        return float(Decimal(text) * WAN)  # exact for BJ's 2 dp (542.55 -> 5425500)
    except InvalidOperation as e:
        raise ValueError(f"could not convert amount {text!r}") from e


def parse_qq_line(symbol: str, text: str) -> Spot:
    """One statement's quoted text -> Spot in hkrt units.  Raises ValueError when it cannot be read."""
    f = text.split("~")
    if len(f) < MIN_FIELDS:
        raise ValueError(f"{len(f)} fields, expected at least {MIN_FIELDS}")
    if f[2].strip() and f[2].strip() != symbol[-6:]:
        raise ValueError(f"code field {f[2]!r} does not match {symbol}")
    num = [parse_number(x) for x in f[3:29]]  # f3..f28, shifted by three
    return Spot(
        symbol,
        dt.datetime.strptime(f[30].strip(), "%Y%m%d%H%M%S"),
        name=f[1],
        close=num[0],
        yesterday_close=num[1],
        open=num[2],
        volume=num[3] * LOT,
        high=parse_number(f[33]),
        low=parse_number(f[34]),
        amount=qq_amount(f),
        bid=num[6:16:2],  # f9, f11, ... f17
        bid_volume=[v * LOT for v in num[7:16:2]],  # f10 ... f18: lots
        ask=num[16:26:2],  # f19 ... f27
        ask_volume=[v * LOT for v in num[17:26:2]],  # f20 ... f28: lots
    )


def parse_qq(body: str, requested: Iterable[str] | None = None) -> ParseResult:
    """Read a Tencent answer.

    Tencent leaves unknown codes out (``v_pv_none_match="1";`` when it knows none of them).  With
    ``requested`` (the symbols asked for, any accepted form), only those are returned, and a requested
    code the answer does not mention is unknown, unless the body ends inside a statement: then it is
    an error, "cut off" (the complete statements before it are kept).  A body without any statement
    (an HTML page, an empty answer, 访问过于频繁) sets ``error``: the whole answer is void.
    """
    return parse_statements(
        body,
        requested,
        statement=_STATEMENT,
        cut_statement=_CUT_STATEMENT,
        parse_line=parse_qq_line,
        special=lambda key, text, result: key == NONE_MATCH,
        missing_is_unknown=True,  # Tencent leaves unknown codes out of its answer
    )
