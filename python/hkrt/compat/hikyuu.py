"""hikyuu's spot record shape: an :class:`hkrt.Spot` as the dict hikyuu's fetchers gave (docs/hikyuu-migration.md).

Units are converted here and nowhere else: hikyuu counts volume and book sizes in lots of 100
shares and turnover in 万元, hkrt in shares and yuan.  Loads nothing but the C++ core.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from hkrt._hkrt import Spot

#: hikyuu's spot record fields, in its order (SpotRecord and the fetchers' dicts).
HIKYUU_SPOT_FIELDS = (
    "market", "code", "name", "datetime", "yesterday_close", "open", "high", "low", "close",
    "amount", "volume", "bid", "bid_amount", "ask", "ask_amount",
)  # fmt: skip

_SHARES_PER_LOT = 100.0
_YUAN_PER_WAN = 10_000.0


def hikyuu_spot_record(spot: Spot) -> dict[str, Any]:
    """One :class:`hkrt.Spot` as hikyuu's spot record: a dict with hikyuu's field names and units.

    Converted at this edge only: ``amount`` yuan -> 万元 (/ 10,000), ``volume`` and the book sizes
    (``bid_amount``, ``ask_amount``, hkrt's ``bid_volume``/``ask_volume``) shares -> lots (/ 100,
    fractional for odd lots); prices stay yuan, ``datetime`` naive China local time.
    """
    return {
        "market": spot.market,
        "code": spot.code,
        "name": spot.name,
        "datetime": spot.datetime,
        "yesterday_close": spot.yesterday_close,
        "open": spot.open,
        "high": spot.high,
        "low": spot.low,
        "close": spot.close,
        "amount": spot.amount / _YUAN_PER_WAN,
        "volume": spot.volume / _SHARES_PER_LOT,
        "bid": list(spot.bid),
        "bid_amount": [v / _SHARES_PER_LOT for v in spot.bid_volume],
        "ask": list(spot.ask),
        "ask_amount": [v / _SHARES_PER_LOT for v in spot.ask_volume],
    }


def hikyuu_spot_records(spots: Iterable[Spot]) -> list[dict[str, Any]]:
    """:func:`hikyuu_spot_record` of each spot, in order."""
    return [hikyuu_spot_record(s) for s in spots]
