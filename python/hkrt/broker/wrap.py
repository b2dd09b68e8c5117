"""crtOB: any Python object with buy/sell (and optionally get_asset_info, cancel) as a broker.

The object's methods are called the hikyuu way, ``buy(market, code, price, num, stoploss,
goal_price, part_from, remark)``, and get the order's datetime too:

- first parameter named ``datetime``: ``buy(datetime, market, code, ...)``, the order of
  ``OrderBrokerBase.buy``;
- a ``datetime`` parameter elsewhere, or ``**kwargs``: the hikyuu call plus ``datetime=...``;
- otherwise the plain hikyuu call (old brokers keep working).
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Callable
from typing import Any

from hkrt._hkrt import OrderBrokerBase, OrderResult, OrderStatus
from hkrt.broker.asset import AssetInfo

_FIRST, _KEYWORD, _PLAIN = "first", "keyword", "plain"


def _style(method: Callable[..., Any]) -> str:
    try:
        params = list(inspect.signature(method).parameters.values())
    except (TypeError, ValueError):  # some builtins have no signature
        return _PLAIN
    if params and params[0].name == "datetime" and params[0].kind != inspect.Parameter.KEYWORD_ONLY:
        return _FIRST
    if any(p.name == "datetime" or p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
        return _KEYWORD
    return _PLAIN


def _coerce(ret: Any) -> OrderResult | str | bool | None:
    """What the trampoline accepts: an OrderResult, an order id, a bool, or None (Sent)."""
    if ret is None or isinstance(ret, (OrderResult, str, bool)):
        return ret
    if isinstance(ret, int):
        return str(ret)
    if isinstance(ret, dict):
        for key in ("order_id", "entrust_no"):
            if ret.get(key) is not None:
                return str(ret[key])
    return None


class OrderBrokerWrap(OrderBrokerBase):
    """An OrderBrokerBase delegating to a plain Python object (see crtOB)."""

    def __init__(self, broker: Any, name: str = "NO_NAME") -> None:
        for method in ("buy", "sell"):
            if not callable(getattr(broker, method, None)):
                raise TypeError(f"{type(broker).__name__} has no {method}() method; it cannot be a broker")
        super().__init__(name)
        self.broker = broker
        self._styles = {m: _style(getattr(broker, m)) for m in ("buy", "sell")}

    def _order(self, side: str, datetime: dt.datetime, *args: Any) -> OrderResult | str | bool | None:
        method = getattr(self.broker, side)
        style = self._styles[side]
        if style == _FIRST:
            return _coerce(method(datetime, *args))
        if style == _KEYWORD:
            return _coerce(method(*args, datetime=datetime))
        return _coerce(method(*args))

    def _buy(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
        return self._order("buy", datetime, market, code, price, num, stoploss, goal_price, part_from, remark)

    def _sell(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
        return self._order("sell", datetime, market, code, price, num, stoploss, goal_price, part_from, remark)

    def _cancel(self, order_id: str) -> OrderResult | str | bool | None:
        cancel = getattr(self.broker, "cancel", None)
        if not callable(cancel):
            return OrderResult(OrderStatus.Failed, error=f"broker '{self.name}' does not support cancel")
        return _coerce(cancel(order_id))

    def _get_asset_info(self) -> str:
        get = getattr(self.broker, "get_asset_info", None)
        if not callable(get):
            return ""
        info = get()
        if isinstance(info, AssetInfo):
            return info.to_json()
        if isinstance(info, dict):
            return json.dumps(info, ensure_ascii=False, default=str)
        return "" if info is None else str(info)


def crtOB(broker: Any, name: str = "NO_NAME") -> OrderBrokerBase:  # hikyuu spelling
    """Wrap ``broker`` (any object with buy/sell) as an OrderBrokerBase; a broker is returned as is."""
    if isinstance(broker, OrderBrokerBase):
        return broker
    return OrderBrokerWrap(broker, name)
