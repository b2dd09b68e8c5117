"""easytrader's edge: security codes as the trading clients want them, and their answers (balance and
position grids, order answers) read into hkrt's types.

THS-family grids name columns after the GUI and differ by broker (research §8.3); miniqmt and xq answer
with English keys.  Quantities are shares, prices and cash yuan, as the clients show them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from hkrt.broker.asset import AssetInfo, BrokerPosition

__all__ = ["EasyTraderAsset", "market_of_code", "parse_asset", "security_code"]

_EPS = 1e-6

# Keys seen in easytrader answers, most specific first.  THS-family grids name columns after the GUI and
# differ by broker (research §8.3); miniqmt and xq answer with English keys.
_CASH_KEYS = ("可用金额", "可用资金", "cash", "enable_balance", "current_balance", "资金余额")
_TOTAL_KEYS = ("总资产", "total_asset", "asset_balance")
_MARKET_VALUE_KEYS = ("股票市值", "参考市值", "证券市值", "market_value")
_CODE_KEYS = ("证券代码", "security", "stock_code")
_NUMBER_KEYS = ("股票余额", "股份余额", "当前持仓", "实际数量", "持仓数量", "volume", "current_amount")
_AVAILABLE_KEYS = ("可用余额", "股份可用", "可卖数量", "can_use_volume", "enable_amount")
_COST_KEYS = ("成本价", "参考成本价", "摊薄成本价", "买入成本", "avg_price", "cost_price")
_MARKET_NAME_KEYS = ("交易市场", "市场", "市场名称")
_CURRENCY_KEY = "币种"
_RMB = {"人民币", "RMB", "CNY", "0"}
_CODE_RE = re.compile(r"(?i)^(?:(sh|sz|bj)\.?)?(\d{6})(?:\.(sh|sz|bj))?$")


@dataclasses.dataclass
class EasyTraderAsset(AssetInfo):
    """An ``AssetInfo`` with where it came from.

    ``stale`` is True when the latest query failed and this is the last good snapshot (``error`` says why);
    ``as_of`` is when that snapshot was read (also its ``datetime``).  ``available`` maps (market, code) to
    the shares sellable now (T+1), when the trader reports it.  ``to_json()`` writes hikyuu's contract only.
    """

    stale: bool = False
    error: str = ""
    as_of: dt.datetime | None = None
    total_asset: float | None = None
    market_value: float | None = None
    available: dict[tuple[str, str], float] = dataclasses.field(default_factory=dict)


def market_of_code(code: str) -> str:
    """SH / SZ / BJ for a six-digit A-share code, by the exchanges' number ranges.

    92xxxx (BJ since 2024) is tested before 9xxxxx (SH B shares); 4xxxxx and 8xxxxx are BJ (the old NEEQ
    ranges); 5, 6, 7, 9 and 11x (SH bonds and funds) are SH; the rest (0, 1, 2, 3) SZ.
    """
    if code.startswith("92") or code.startswith(("4", "8")):
        return "BJ"
    if code.startswith(("5", "6", "7", "9", "110", "111", "113", "118", "132", "204")):
        return "SH"
    return "SZ"


def security_code(market: str, code: str, *, prefix_market: bool) -> str:
    """The code a trading client takes: ``sh600000`` when it wants the market prefix (the THS clients know
    no ``bj`` prefix: BJ codes go bare), else the six digits."""
    if prefix_market and market in ("SH", "SZ"):
        return market.lower() + code
    return code


def _number(value: Any) -> float | None:
    """A float from a grid cell: numbers, or text with thousands separators; '-', '' and NaN are None."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        f = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(",", "")
        if text in ("", "-", "--"):
            return None
        try:
            f = float(text)
        except ValueError:
            return None
    else:
        return None
    return f if math.isfinite(f) else None


def _first(row: Mapping[str, Any], keys: Iterable[str]) -> Any:
    """The value of the first of ``keys`` present and non-empty in ``row``, else None."""
    for k in keys:
        if k in row and row[k] not in (None, ""):
            return row[k]
    return None


def _split_code(raw: Any) -> tuple[str | None, str]:
    """(market or None, six-digit code) from '600000', 'SH600000', 'sh600000', '600000.SH'."""
    text = str(raw).strip()
    if text.isdigit() and len(text) < 6:  # a grid read as a number lost its leading zeros
        text = text.zfill(6)
    m = _CODE_RE.match(text)
    if not m:
        raise ValueError(f"unrecognised security code {raw!r}")
    prefix = m.group(1) or m.group(3)
    return (prefix.upper() if prefix else None), m.group(2)


def _market_from_name(name: Any) -> str | None:
    text = str(name)
    if "上海" in text or "沪" in text:
        return "SH"
    if "深" in text:
        return "SZ"
    if "北" in text:
        return "BJ"
    return None


def parse_asset(balance: Any, position: Any, when: dt.datetime) -> EasyTraderAsset:
    """Map easytrader ``balance`` and ``position`` answers to an asset snapshot; ValueError for anything
    that cannot be trusted (the caller keeps its last good snapshot instead)."""
    if isinstance(balance, list):
        rows = [r for r in balance if isinstance(r, Mapping)]
        if not rows:
            raise ValueError(f"balance is an empty list ({balance!r:.200})")
        # YH answers one row per currency; the account's cash is the RMB row.
        rmb = [r for r in rows if str(r.get(_CURRENCY_KEY, "")).strip() in _RMB]
        balance = rmb[0] if rmb else rows[0]
    if not isinstance(balance, Mapping):
        raise ValueError(f"balance is {type(balance).__name__}, not an object ({balance!r:.200})")
    cash = _number(_first(balance, _CASH_KEYS))
    if cash is None:
        raise ValueError(f"balance has no usable cash ({', '.join(_CASH_KEYS)}); keys: {', '.join(balance)}")
    total = _number(_first(balance, _TOTAL_KEYS))
    market_value = _number(_first(balance, _MARKET_VALUE_KEYS))

    if not isinstance(position, list):
        # The THS grid reader returns None when it cannot parse the clipboard; the server sends it as null.
        raise ValueError(f"position is {type(position).__name__}, not a list ({position!r:.200})")
    merged: dict[tuple[str, str], BrokerPosition] = {}
    available: dict[tuple[str, str], float] = {}
    for i, row in enumerate(position):
        if not isinstance(row, Mapping):
            raise ValueError(f"position row {i} is {type(row).__name__}, not an object")
        raw_code = _first(row, _CODE_KEYS)
        if raw_code is None:
            raise ValueError(f"position row {i} has no code ({', '.join(_CODE_KEYS)}); keys: {', '.join(row)}")
        prefix, code = _split_code(raw_code)
        number = _number(_first(row, _NUMBER_KEYS))
        if number is None:
            raise ValueError(f"position row {i} ({code}) has no share count ({', '.join(_NUMBER_KEYS)})")
        if number <= _EPS:
            continue  # sold out today: the grid keeps the row until the next day
        market = prefix or _market_from_name(_first(row, _MARKET_NAME_KEYS)) or market_of_code(code)
        cost = _number(_first(row, _COST_KEYS)) or 0.0
        k = (market, code)
        if k in merged:  # one stock under two shareholder accounts: one holding, weighted cost
            p = merged[k]
            p.cost_price = (p.cost_price * p.number + cost * number) / (p.number + number)
            p.number += number
        else:
            merged[k] = BrokerPosition(market=market, code=code, number=number, cost_price=cost)
        avail = _number(_first(row, _AVAILABLE_KEYS))
        if avail is not None:
            available[k] = available.get(k, 0.0) + avail
    if not merged and market_value is not None and market_value > 0.005:
        # A blocked clipboard copy gives an empty grid: believing it would drop every holding.
        raise ValueError(f"balance reports a market value of {market_value:g} but the position list is empty")
    return EasyTraderAsset(
        cash=cash,
        positions=list(merged.values()),
        datetime=when,
        as_of=when,
        total_asset=total,
        market_value=market_value,
        available=available,
    )
