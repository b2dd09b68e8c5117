"""QMT's edge: xtquant codes (``600000.SH``), ticks into :class:`hkrt.Spot` in hkrt units, and xttrader's
order codes; converted here and only here (docs/units.md).

A tick's ``time`` (UTC epoch ms) becomes naive China local time, ``pvolume`` (shares) the spot volume,
``amount`` stays in yuan, and the book volumes ``bidVol`` / ``askVol`` (lots) are multiplied by 100.
``volume`` is in lots for stocks, and for some ETFs and indices ``pvolume`` equals ``volume`` (lots as
well), so the unit is checked per tick, see :func:`volume_in_shares`.  Importing this module imports no
xtquant and no HTTP library.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

from hkrt._hkrt import Spot, normalize_symbol
from hkrt.core.china_time import utc_ms_to_local_datetime
from hkrt.fetcher.common import ParseResult, requested_symbols, symbol_or_none

MARKETS = ("SH", "SZ", "BJ")
LOT = 100  # shares per lot (手)
# amount / (lastPrice × volume) is ≈ 100 when `volume` counts lots and ≈ 1 when it counts shares;
# the geometric middle keeps the test right while the average price is within 10× of the last.
_LOTS_RATIO = 10.0
_BOOK_LEVELS = 5
_NOT_A_SHARE = "not an A-share code (SH/SZ/BJ and six digits)"


# ---------------------------------------------------------------------------- codes
def qmt_code(symbol: str) -> str:
    """'SH600000' / 'sh600000' / '600000.SH' -> xtquant's '600000.SH'; a market code ('SH', 'SZ', 'BJ':
    the whole market) is passed through.  ValueError for anything else."""
    text = symbol.strip().upper()
    if text in MARKETS:
        return text
    normal = normalize_symbol(text)
    return f"{normal[2:]}.{normal[:2]}"


def _as_symbol(code: str) -> str:
    try:
        return normalize_symbol(code)
    except (ValueError, TypeError):
        return str(code).upper()


def _is_index(symbol: str) -> bool:
    """SH 000xxx, SZ 399xxx, BJ 899xxx: the exchanges' index code ranges."""
    return symbol.startswith(("SH000", "SZ399", "BJ899"))


# ---------------------------------------------------------------------------- mapping
def _number(tick: Mapping[str, Any], key: str, default: float = 0.0) -> float:
    value = tick.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key} is not a number: {value!r}")
    return float(value)


def _levels(tick: Mapping[str, Any], key: str, factor: float = 1.0) -> list[float]:
    value = tick.get(key)
    if value is None:
        return []
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{key} is not a list: {value!r}")
    out = []
    for v in value[:_BOOK_LEVELS]:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise ValueError(f"{key} holds a non-number: {v!r}")
        out.append(float(v) * factor)
    return out


def _tick_time(tick: Mapping[str, Any]) -> dt.datetime:
    ms = tick.get("time")
    if isinstance(ms, (int, float)) and not isinstance(ms, bool) and ms > 0:
        return utc_ms_to_local_datetime(int(ms))
    tag = tick.get("timetag")  # older builds: 'YYYYMMDD HH:MM:SS', already Beijing time
    if isinstance(tag, str) and tag:
        try:
            return dt.datetime.strptime(tag, "%Y%m%d %H:%M:%S")
        except ValueError:
            raise ValueError(f"timetag is not 'YYYYMMDD HH:MM:SS': {tag!r}") from None
    raise ValueError("the tick has neither a time (epoch ms) nor a timetag")


def volume_in_shares(code: str, tick: Mapping[str, Any], *, index_volume_in_lots: bool = True) -> tuple[float, float]:
    """The tick's cumulative volume in shares, and the factor that turns its book volumes into shares.

    * ``pvolume`` ≫ ``volume`` (≥ 50×, or ``volume`` 0 with some ``pvolume``: odd lots): ``pvolume``
      is shares and ``volume`` lots, the A-share stock case.  Book volumes are lots (× 100).
    * Otherwise both count the same unit (samples of an ETF and a sector index show
      ``pvolume == volume``), and the unit is read from the price: ``amount / (lastPrice × volume)``
      is ≈ 100 for lots and ≈ 1 for shares (threshold 10).
    * An index has no such price check (its price is in points): its volume counts lots when
      ``index_volume_in_lots`` (the default, as for SH indices elsewhere), else shares.
    * With nothing to check against (no amount or price), ``volume`` is taken as documented: lots.
    """
    volume = _number(tick, "volume", float("nan"))
    pvolume = _number(tick, "pvolume", float("nan"))
    has_v, has_pv = volume == volume, pvolume == pvolume  # not NaN
    if not has_v and not has_pv:
        return 0.0, float(LOT)
    if has_v and has_pv and pvolume > volume and (volume == 0 or pvolume >= 50 * volume):
        return pvolume, float(LOT)
    base = volume if has_v else pvolume
    if base == 0:
        return 0.0, float(LOT)
    if _is_index(_as_symbol(code)):
        factor = float(LOT) if index_volume_in_lots else 1.0
        return base * factor, factor
    price, amount = _number(tick, "lastPrice"), _number(tick, "amount")
    if price > 0 and amount > 0:
        factor = float(LOT) if amount / (price * base) >= _LOTS_RATIO else 1.0
        return base * factor, factor
    return base * LOT, float(LOT)


def tick_to_spot(code: str, tick: Mapping[str, Any], *, index_volume_in_lots: bool = True) -> Spot:
    """One xtquant tick dict (``get_full_tick`` or whole-quote push) as an :class:`hkrt.Spot`.

    ``code`` is xtquant's '600000.SH'.  Raises ``ValueError`` for a code that is not an A-share
    symbol (SH/SZ/BJ and six digits; e.g. 'IF2412.IF', '00700.HK') or a malformed tick.
    """
    if not isinstance(tick, Mapping):
        raise ValueError(f"the tick of {code} is not a dict: {type(tick).__name__}")
    try:
        symbol = normalize_symbol(code)
    except (ValueError, TypeError):
        raise ValueError(f"{_NOT_A_SHARE}: {code!r}") from None
    volume, book = volume_in_shares(symbol, tick, index_volume_in_lots=index_volume_in_lots)
    return Spot(
        symbol,
        _tick_time(tick),
        yesterday_close=_number(tick, "lastClose"),
        open=_number(tick, "open"),
        high=_number(tick, "high"),
        low=_number(tick, "low"),
        close=_number(tick, "lastPrice"),
        volume=volume,
        amount=_number(tick, "amount"),
        bid=_levels(tick, "bidPrice"),
        bid_volume=_levels(tick, "bidVol", book),
        ask=_levels(tick, "askPrice"),
        ask_volume=_levels(tick, "askVol", book),
    )


def parse_ticks(
    ticks: Mapping[str, Any], requested: Iterable[str] | None = None, *, index_volume_in_lots: bool = True
) -> ParseResult:
    """Map a ``{code: tick}`` answer (full tick or push) without raising.

    With ``requested`` (the symbols asked for, any accepted form), only those are returned, and a
    requested symbol the answer leaves out is ``unknown`` (QMT answers only the codes it knows).
    A tick that cannot be read is in ``errors`` under its symbol, or under the raw code when that is
    not an A-share code (a future or a Hong Kong code from a market-wide request).
    """
    wanted = requested_symbols(requested)
    result = ParseResult()
    if not isinstance(ticks, Mapping):
        result.error = f"the answer is not a dict: {type(ticks).__name__}"
        return result
    seen: set[str] = set()
    for code, tick in ticks.items():
        result.statements += 1
        symbol = symbol_or_none(str(code))
        if wanted is not None and symbol not in wanted:
            continue
        if symbol is None:
            result.errors[str(code)] = _NOT_A_SHARE
            continue
        seen.add(symbol)
        try:
            result.spots.append(tick_to_spot(str(code), tick, index_volume_in_lots=index_volume_in_lots))
        except (ValueError, TypeError, OverflowError) as exc:
            result.errors[symbol] = f"malformed tick ({exc})"
    result.unknown.extend(s for s in wanted or () if s not in seen)
    return result


def split_qmt_code(stock_code: str) -> tuple[str, str]:
    """xtquant's '600000.SH' -> ('SH', '600000')."""
    code, _, market = str(stock_code).partition(".")
    return market.upper(), code
