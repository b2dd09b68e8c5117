"""The paper venue's execution client: ``TestOrderBroker`` fills every order at its price, with cash and
positions.

No T+1, no lots, no fees: a stand-in for a real broker in tests and dry runs.  Its cash and share checks
are the paper account's own answer (a real counter refuses an order it cannot pay for too), not a
pre-trade check: those stay with the strategy (``Strategy.order``) until the risk engine (issue 15).
"""

from __future__ import annotations

import datetime as dt

from hkrt._hkrt import OrderBrokerBase, OrderRequest, OrderResult, OrderStatus
from hkrt.adapters.paper.config import PaperConfig
from hkrt.broker.asset import AssetInfo, BrokerPosition

_EPS = 1e-6


class TestOrderBroker(OrderBrokerBase):
    """Fills at the order price: a buy needs the cash, a sell needs the shares (else Rejected)."""

    __test__ = False  # not a pytest test class

    def __init__(self, cash: float = 0.0, name: str = "TestOrderBroker") -> None:
        super().__init__(name)
        self._cash = float(cash)
        self._positions: dict[tuple[str, str], BrokerPosition] = {}
        self._last: dt.datetime | None = None
        self._count = 0

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def positions(self) -> dict[tuple[str, str], BrokerPosition]:
        """(market, code) -> a copy of the holding."""
        return {k: BrokerPosition(**vars(p)) for k, p in self._positions.items()}

    def _fill(self, datetime: dt.datetime) -> OrderResult:
        self._count += 1
        self._last = datetime
        return OrderResult(OrderStatus.Filled, order_id=f"T{self._count:06d}")

    def _buy(self, request: OrderRequest) -> OrderResult:
        market, code, price, num = request.market, request.code, request.price, request.num
        cost = price * num
        if cost > self._cash + _EPS:
            why = f"insufficient cash: {cost:.2f} needed, {self._cash:.2f} held"
            return OrderResult(OrderStatus.Rejected, error=why)
        key = (market.upper(), code)
        pos = self._positions.get(key)
        if pos is None:
            pos = self._positions[key] = BrokerPosition(key[0], code, 0.0)
        pos.cost_price = (pos.cost_price * pos.number + cost) / (pos.number + num)
        pos.number += num
        pos.stoploss, pos.goal_price = request.stoploss, request.goal_price
        self._cash -= cost
        return self._fill(request.datetime)

    def _sell(self, request: OrderRequest) -> OrderResult:
        market, code, price, num = request.market, request.code, request.price, request.num
        key = (market.upper(), code)
        pos = self._positions.get(key)
        held = pos.number if pos else 0.0
        if num > held + _EPS:
            return OrderResult(OrderStatus.Rejected, error=f"insufficient shares of {key[0]}{code}: {held:g} held")
        assert pos is not None
        pos.number -= num
        if pos.number <= _EPS:
            del self._positions[key]
        self._cash += price * num
        return self._fill(request.datetime)

    def _cancel(self, order_id: str) -> OrderResult:
        why = "paper orders fill at once; nothing to cancel"
        return OrderResult(OrderStatus.Rejected, order_id=order_id, error=why)

    def asset_info(self) -> AssetInfo:
        return AssetInfo(cash=self._cash, positions=list(self.positions.values()), datetime=self._last)

    def _get_asset_info(self) -> str:
        return self.asset_info().to_json()


def make_execution_client(config: PaperConfig) -> TestOrderBroker:
    """The paper broker (``hkrt run --broker test``) with the config's starting cash."""
    return TestOrderBroker(cash=config.cash, name=config.name)
