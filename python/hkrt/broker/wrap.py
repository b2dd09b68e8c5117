"""crtOB: any Python object with buy/sell (and optionally get_asset_info, cancel) as a broker.

hikyuu's brokers had three generations of ``buy``/``sell``, and each keeps working here: the
wrapper reads the method's signature once, when it wraps, and calls it with the arguments it takes:

- three positional parameters: ``buy(code, price, num)``, where ``code`` is the market-prefixed
  symbol (``"SH600000"``: the bare code is ambiguous, SH000001 is an index, SZ000001 a bank);
- four to eight: the first that many of hikyuu's ``buy(market, code, price, num, stoploss,
  goal_price, part_from, remark)`` (seven is hikyuu's form before ``remark``, eight today's);
- ``*args``: all eight.

The order's datetime, which hikyuu dropped, is passed too when the method asks for it:

- first parameter named ``datetime``: ``buy(datetime, <the arguments above>)``, the order of
  ``OrderBrokerBase.buy``;
- a ``datetime`` parameter elsewhere, or ``**kwargs``: the arguments above plus ``datetime=...``;
- otherwise none (old brokers keep working).

The order arrives as one :class:`hkrt.broker.OrderRequest` (the object every broker hook gets); the
plan spreads its fields into the call the method was written for, in this one place.

A method the order's arguments cannot be bound to (fewer than three positional parameters, a
required one past the eighth, a required keyword-only one) is a ``TypeError`` from ``crtOB`` itself,
naming the method and its signature, not a Failed order on the first live signal.
"""

from __future__ import annotations

import datetime as dt
import inspect
import json
from collections.abc import Callable
from typing import Any, NamedTuple

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.broker.asset import AssetInfo

#: hikyuu's argument order of buy/sell; a method with k positional parameters (4 <= k <= 8) gets the first k.
HIKYUU_ORDER_ARGS = ("market", "code", "price", "num", "stoploss", "goal_price", "part_from", "remark")
_SHORT_FORM = 3  # buy(code, price, num): hikyuu's first broker signature
_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
_SAMPLE = OrderRequest(dt.datetime(2026, 1, 5, 9, 30), "SH", "600000", 10.0, 100.0)  # checks a method at wrap time


class CallPlan(NamedTuple):
    """How a wrapped object's buy or sell is called.

    ``datetime``: "first" (as the first argument), "keyword" (``datetime=``) or "none".
    ``arity``: 3 for ``(symbol, price, num)``, else how many of :data:`HIKYUU_ORDER_ARGS` are passed.
    """

    datetime: str
    arity: int

    def arguments(self, request: OrderRequest) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """The positional and keyword arguments of the call for one order."""
        r = request
        if self.arity == _SHORT_FORM:
            args: tuple[Any, ...] = (f"{r.market}{r.code}", r.price, r.num)
        else:
            args = (r.market, r.code, r.price, r.num, r.stoploss, r.goal_price, r.part_from, r.remark)[: self.arity]
        if self.datetime == "first":
            return (r.datetime, *args), {}
        if self.datetime == "keyword":
            return args, {"datetime": r.datetime}
        return args, {}


def call_plan(method: Callable[..., Any], what: str = "buy") -> CallPlan:
    """The :class:`CallPlan` for ``method`` (a bound method or function); ``TypeError`` naming the
    method when no plan fits its signature."""
    try:
        sig = inspect.signature(method)
    except (TypeError, ValueError):  # some builtins have no signature: hikyuu's full call
        return CallPlan("none", len(HIKYUU_ORDER_ARGS))
    params = list(sig.parameters.values())
    if params and params[0].name == "datetime" and params[0].kind in _POSITIONAL:
        mode, rest = "first", params[1:]
    elif any(p.name == "datetime" or p.kind == inspect.Parameter.VAR_KEYWORD for p in params):
        mode, rest = "keyword", params
    else:
        mode, rest = "none", params
    positional = [p for p in rest if p.kind in _POSITIONAL and p.name != "datetime"]
    if any(p.kind == inspect.Parameter.VAR_POSITIONAL for p in rest):
        arity = len(HIKYUU_ORDER_ARGS)
    else:
        arity = min(len(positional), len(HIKYUU_ORDER_ARGS))
    plan = CallPlan(mode, arity)
    forms = "(code, price, num), (market, code, price, num[, stoploss, goal_price, part_from, remark]) or *args"
    if arity < _SHORT_FORM:
        raise TypeError(f"{what}{sig} takes {arity} order argument(s); crtOB calls {forms}")
    args, kwargs = plan.arguments(_SAMPLE)
    try:
        sig.bind(*args, **kwargs)
    except TypeError as exc:
        raise TypeError(f"{what}{sig} cannot take an order as crtOB calls {forms}: {exc}") from None
    return plan


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
        plans = {}
        for method in ("buy", "sell"):
            func = getattr(broker, method, None)
            if not callable(func):
                raise TypeError(f"{type(broker).__name__} has no {method}() method; it cannot be a broker")
            plans[method] = call_plan(func, f"{type(broker).__name__}.{method}")
        super().__init__(name)
        self.broker = broker
        self.plans: dict[str, CallPlan] = plans

    def _order(self, side: str, request: OrderRequest) -> OrderResult | str | bool | None:
        args, kwargs = self.plans[side].arguments(request)
        return _coerce(getattr(self.broker, side)(*args, **kwargs))

    def _buy(self, request: OrderRequest) -> OrderResult | str | bool | None:
        return self._order("buy", request)

    def _sell(self, request: OrderRequest) -> OrderResult | str | bool | None:
        return self._order("sell", request)

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
    """Wrap ``broker`` (any object with buy/sell) as an OrderBrokerBase; a broker is returned as is.
    ``TypeError`` when ``buy`` or ``sell`` is missing or cannot take an order (module docstring)."""
    if isinstance(broker, OrderBrokerBase):
        return broker
    return OrderBrokerWrap(broker, name)
