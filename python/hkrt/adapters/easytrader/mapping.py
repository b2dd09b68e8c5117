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

from hkrt.adapters.reports import (
    CANCEL_PENDING,
    CANCELLED,
    FILLED,
    PARTIALLY_FILLED,
    PENDING,
    QMT_ORDER_STATES,
    REJECTED,
    WORKING,
)
from hkrt.broker.asset import AssetInfo, BrokerPosition

__all__ = [
    "EasyTraderAsset",
    "EntrustRow",
    "TradeRow",
    "entrust_state",
    "market_of_code",
    "order_no_key",
    "parse_asset",
    "parse_entrusts",
    "parse_trades",
    "security_code",
]

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


# ---- today's entrusts and trades (the order lifecycle, docs/broker-easytrader.md) -------------------

# The entrust number send() got back is matched against the first of these a row has (THS grids name it
# 合同编号, some brokers 委托编号 or 委托序号; miniqmt answers order_id).
_ORDER_NO_KEYS = ("合同编号", "委托编号", "委托序号", "entrust_no", "order_id")
_SIDE_KEYS = ("买卖标志", "操作", "委托类别", "买卖方向", "order_type_name", "offset_flag_name")
_ORDERED_KEYS = ("委托数量", "order_volume")
_FILLED_KEYS = ("成交数量", "traded_volume")
_STATUS_WORD_KEYS = ("状态说明", "委托状态", "order_status_name", "备注")
_REASON_KEYS = ("废单原因", "status_msg", "返回信息", "备注")
_TRADE_ID_KEYS = ("成交编号", "traded_id", "成交序号")
_TRADE_PRICE_KEYS = ("成交价格", "成交均价", "traded_price")
_TRADE_TIME_KEYS = ("成交时间", "traded_time")
_TRADE_DATE_KEYS = ("成交日期",)
_QMT_SIDES = {23: "buy", 24: "sell"}  # xtconstant STOCK_BUY / STOCK_SELL (miniqmt's order_type)


def entrust_state(word: Any) -> str | None:
    """The lifecycle state (hkrt.adapters.reports) of an entrust's status: an xtquant ``order_status`` code
    (miniqmt) or a THS-family status word; None when unknown.

    The words differ by broker and client version; they are read by what they contain, most specific
    first: 废 (废单) rejected; 待撤 / 正撤 / 撤单中 (a cancel on its way, 已报待撤, 部成待撤) still working;
    any other 撤 (已撤, 部撤, 已撤单, 场内撤单, 场外撤单) cancelled; 已成 / 全部成交 / 全成 filled;
    部成 / 部分成交 partly filled; 未报 / 待报 / 正报 not at the exchange yet; 已报 / 未成交 / 已申报 /
    已确认 / 已委托 working.
    """
    if isinstance(word, int) and not isinstance(word, bool):
        return QMT_ORDER_STATES.get(word)
    text = str(word or "").strip()
    if not text:
        return None
    if "废" in text:
        return REJECTED
    if "待撤" in text or "正撤" in text or "撤单中" in text:
        return CANCEL_PENDING
    if "撤" in text:
        return CANCELLED
    if "已成" in text or "全部成交" in text or "全成" in text:  # before 部成: 全部成交 contains it
        return FILLED
    if "部成" in text or "部分成交" in text:
        return PARTIALLY_FILLED
    if text in ("未报", "待报", "正报"):
        return PENDING
    if text in ("已报", "未成交", "已申报", "已确认", "已委托"):
        return WORKING
    return None


def order_no_key(value: Any) -> str:
    """An entrust number as the text rows and answers are matched by: a grid read as numbers loses
    leading zeros, so they are dropped on both sides."""
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():  # a grid cell read as a float
        text = text[:-2]
    return text.lstrip("0") or text


def _side(row: Mapping[str, Any]) -> str:
    code = row.get("order_type")
    if isinstance(code, int) and code in _QMT_SIDES:
        return _QMT_SIDES[code]
    text = str(_first(row, _SIDE_KEYS) or "")
    if "买" in text:
        return "buy"
    if "卖" in text:
        return "sell"
    return ""


def _symbol(row: Mapping[str, Any]) -> str:
    raw = _first(row, _CODE_KEYS)
    if raw is None:
        return ""
    prefix, code = _split_code(raw)
    return (prefix or _market_from_name(_first(row, _MARKET_NAME_KEYS)) or market_of_code(code)) + code


def _shares(value: Any) -> int | None:
    n = _number(value)
    return None if n is None else round(n)


@dataclasses.dataclass(frozen=True)
class EntrustRow:
    """One of today's entrusts as the trader lists it.  ``order_no``: matched by :func:`order_no_key`;
    ``state``: :func:`entrust_state` of its status (``status`` the venue's own word or code);
    ``filled``: shares traded so far (None when the row does not say)."""

    order_no: str
    symbol: str
    side: str
    ordered: int | None
    filled: int | None
    state: str | None
    status: str
    reason: str


@dataclasses.dataclass(frozen=True)
class TradeRow:
    """One of today's trades (成交): ``shares`` at ``price`` yuan of entrust ``order_no``.  ``trade_id`` is
    the venue's 成交编号, or, for a grid without one, made of the row's time, price and shares and its
    rank among identical rows (the grid lists the day's trades in the same order on every read)."""

    order_no: str
    trade_id: str
    symbol: str
    side: str
    shares: int
    price: float
    when: dt.datetime | None


def parse_entrusts(rows: Any) -> list[EntrustRow]:
    """``today_entrusts`` read into rows; ValueError when the answer is not a list of objects.  A row
    without an entrust number cannot be matched to an order and is left out."""
    if not isinstance(rows, list):
        raise ValueError(f"today_entrusts is {type(rows).__name__}, not a list ({rows!r:.200})")
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"entrust row {i} is {type(row).__name__}, not an object")
        no = _first(row, _ORDER_NO_KEYS)
        if no is None:
            continue
        code = row.get("order_status")
        status: Any = code if isinstance(code, int) and not isinstance(code, bool) else _first(row, _STATUS_WORD_KEYS)
        reason = str(_first(row, _REASON_KEYS) or "")
        out.append(
            EntrustRow(
                order_no=order_no_key(no),
                symbol=_symbol(row),
                side=_side(row),
                ordered=_shares(_first(row, _ORDERED_KEYS)),
                filled=_shares(_first(row, _FILLED_KEYS)),
                state=entrust_state(status),
                status=str(row.get("order_status_name") or status or ""),
                reason=reason,
            )
        )
    return out


def _trade_time(row: Mapping[str, Any], today: dt.date) -> dt.datetime | None:
    raw = _first(row, _TRADE_TIME_KEYS)
    if isinstance(raw, (int, float)) and not isinstance(raw, bool) and raw > 10**8:  # miniqmt: epoch seconds
        from hkrt.core.china_time import utc_ms_to_local_datetime

        return utc_ms_to_local_datetime(int(raw) * 1000)
    text = str(raw or "").strip()
    day = today
    date_text = str(_first(row, _TRADE_DATE_KEYS) or "").strip()
    if len(date_text) == 8 and date_text.isdigit():
        day = dt.date(int(date_text[:4]), int(date_text[4:6]), int(date_text[6:]))
    for fmt in ("%H:%M:%S", "%H%M%S"):
        try:
            return dt.datetime.combine(day, dt.datetime.strptime(text, fmt).time())
        except ValueError:
            continue
    return None


def parse_trades(rows: Any, today: dt.date) -> list[TradeRow]:
    """``today_trades`` read into rows (module units: shares, yuan); ValueError when the answer is not a
    list of objects.  Rows without an entrust number, or without shares or a price, are left out."""
    if not isinstance(rows, list):
        raise ValueError(f"today_trades is {type(rows).__name__}, not a list ({rows!r:.200})")
    out = []
    ranks: dict[tuple[str, ...], int] = {}
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise ValueError(f"trade row {i} is {type(row).__name__}, not an object")
        no = _first(row, _ORDER_NO_KEYS)
        shares = _shares(_first(row, _FILLED_KEYS))
        price = _number(_first(row, _TRADE_PRICE_KEYS))
        if no is None or shares is None or price is None:
            continue
        key = order_no_key(no)
        trade_id = _first(row, _TRADE_ID_KEYS)
        if trade_id is None:
            made = (key, str(_first(row, _TRADE_DATE_KEYS) or ""), str(_first(row, _TRADE_TIME_KEYS) or ""),
                    f"{price:g}", str(shares))  # fmt: skip
            ranks[made] = ranks.get(made, 0) + 1
            trade_id = "@".join(made[1:]) + f"#{ranks[made]}"
        out.append(
            TradeRow(key, str(trade_id).strip(), _symbol(row), _side(row), shares, price, _trade_time(row, today))
        )
    return out
