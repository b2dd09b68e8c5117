"""Sina's edge: symbol codes, the wire format and its units, converted here and nowhere else.

Wire format (docs/fetchers.md, research note §1): 33 comma fields for stocks and indices (34 with
an after-hours block, 39 for BJ); f0 name, f1 open, f2 yesterday close, f3 last, f4 high, f5 low,
f8 volume, f9 amount, f10-f29 the book as (volume, price) pairs, f30 date, f31 time, f32 status.

Units: prices yuan; f8 **shares**, except SH indices (``sh000…``, ``sh580…``) where it is **lots**;
f9 yuan; book volumes shares.  Sina sells no trading: there is no order status to map.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable

from hkrt._hkrt import Spot, normalize_symbol
from hkrt.fetcher.common import ParseResult, parse_number, parse_statements, wire_code

LOT = 100  # shares per lot
LOT_VOLUME_PREFIXES = ("SH000", "SH580")  # Sina gives these symbols' volume in lots

_STATEMENT = re.compile(r'var hq_str_(\w+)="([^"\n]*)"')
_CUT_STATEMENT = re.compile(r"var hq_str_(\w+)")
MIN_FIELDS = 32  # f0..f31; f32 (status) and anything after are optional


def sina_code(symbol: str) -> str:
    """'SH600000' / '600000.SH' / 'sh600000' -> 'sh600000'; ValueError for anything else."""
    return wire_code(symbol)


def volume_in_lots(symbol: str) -> bool:
    """True for the symbols whose Sina volume (f8) is in lots: SH indices ``sh000…`` and ``sh580…``.

    SZ indices (``sz399…``) give shares, so CSI 300 as ``sh000300`` and as ``sz399300`` differ by 100.
    """
    return normalize_symbol(symbol).startswith(LOT_VOLUME_PREFIXES)


def parse_sina_line(symbol: str, text: str) -> Spot:
    """One statement's quoted text -> Spot in hkrt units.  Raises ValueError when it cannot be read."""
    f = text.split(",")
    if len(f) < MIN_FIELDS:
        raise ValueError(f"{len(f)} fields, expected at least {MIN_FIELDS}")
    num = [parse_number(x) for x in f[1:30]]  # f1..f29, shifted by one
    volume = num[7] * LOT if volume_in_lots(symbol) else num[7]
    return Spot(
        symbol,
        dt.datetime.strptime(f"{f[30].strip()} {f[31].strip()}", "%Y-%m-%d %H:%M:%S"),
        name=f[0],
        open=num[0],
        yesterday_close=num[1],
        close=num[2],
        high=num[3],
        low=num[4],
        volume=volume,
        amount=num[8],
        bid_volume=num[9:19:2],  # f10, f12, ... f18: shares
        bid=num[10:19:2],  # f11 ... f19
        ask_volume=num[19:29:2],  # f20 ... f28: shares
        ask=num[20:29:2],  # f21 ... f29
    )


def parse_sina(body: str, requested: Iterable[str] | None = None) -> ParseResult:
    """Read a Sina answer.

    An empty statement (``var hq_str_sh999999="";``) is an unknown code.  With ``requested`` (the
    symbols asked for, any accepted form), only those are returned, and any that the answer does not
    mention is an error: "cut off" when the body ends inside a statement (the complete statements
    before it are kept), otherwise "missing".  ``var hq_str_sys_auth="FAILED";`` (Sina's answer to a
    malformed code) and a body without any statement set ``error``: the whole answer is void.
    """
    return parse_statements(
        body,
        requested,
        statement=_STATEMENT,
        cut_statement=_CUT_STATEMENT,
        parse_line=parse_sina_line,
        special=_sys_auth,
        missing_is_unknown=False,  # Sina answers every code it is asked, so a missing one is an error
    )


def _sys_auth(key: str, text: str, result: ParseResult) -> bool:
    """``var hq_str_sys_auth="FAILED";``: Sina voids the whole batch (a malformed code in it)."""
    if key != "sys_auth":
        return False
    result.error = f'Sina rejected the batch: var hq_str_sys_auth="{text}" (a malformed code voids a batch)'
    return True
