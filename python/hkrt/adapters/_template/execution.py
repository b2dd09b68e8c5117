"""The template venue's execution client: an ``OrderBrokerBase`` that maps one ``OrderRequest`` and sends it.

The C++ base does the rest, for every venue alike: ``buy``/``sell``/``submit`` never raise (an exception in
a hook becomes a Failed result, logged), every attempt is in ``records``, ``broker_last_datetime`` keeps
history away from a live account, the same order never goes twice.  Pre-trade checks are not the
client's job (``Strategy.order`` and ``hkrt.adapters.checks``); it maps, sends and reads the answer:

- Sent / Filled with the venue's order id when it took the order;
- Rejected when it said no (and why);
- Failed when the outcome is unknown (a timeout, an answer it cannot read): the order may be live.

A venue without trading writes ``make_execution_client = None`` here and sets ``no_execution``.
"""

from __future__ import annotations

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.adapters._template.config import TemplateConfig
from hkrt.adapters._template.mapping import venue_code


class TemplateOrderBroker(OrderBrokerBase):
    def __init__(self, config: TemplateConfig, name: str = "TemplateOrderBroker") -> None:
        super().__init__(name)
        self.config = config

    def _send(self, side: str, request: OrderRequest) -> OrderResult:
        code = venue_code(request.symbol)  # the venue's code; request.num is shares, request.price yuan
        raise NotImplementedError(f"send {side} {code} {request.num:g} @ {request.price:g} to the venue")

    def _buy(self, request: OrderRequest) -> OrderResult:
        return self._send("buy", request)

    def _sell(self, request: OrderRequest) -> OrderResult:
        return self._send("sell", request)

    def _cancel(self, order_id: str) -> OrderResult:
        return OrderResult(OrderStatus.Failed, order_id=order_id, error="the template cancels nothing")

    def _get_asset_info(self) -> str:
        # hikyuu's JSON {"datetime", "cash", "positions": [...]}: hkrt.broker.AssetInfo(...).to_json()
        raise NotImplementedError("ask the venue for cash and positions")


def make_execution_client(config: TemplateConfig) -> TemplateOrderBroker:
    """Build the execution client from its config (the registry calls this)."""
    return TemplateOrderBroker(config)
