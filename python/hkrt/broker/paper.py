"""TestOrderBroker: a paper broker that fills every order at its price, with cash and positions.

No T+1, no lots, no fees: a stand-in for a real broker in tests and dry runs.
"""

from __future__ import annotations

import datetime as dt

from hkrt._hkrt import OrderBrokerBase, OrderResult, OrderStatus
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

    def _buy(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
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
        pos.stoploss, pos.goal_price = stoploss, goal_price
        self._cash -= cost
        return self._fill(datetime)

    def _sell(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
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
        return self._fill(datetime)

    def _cancel(self, order_id: str) -> OrderResult:
        why = "paper orders fill at once; nothing to cancel"
        return OrderResult(OrderStatus.Rejected, order_id=order_id, error=why)

    def asset_info(self) -> AssetInfo:
        return AssetInfo(cash=self._cash, positions=list(self.positions.values()), datetime=self._last)

    def _get_asset_info(self) -> str:
        return self.asset_info().to_json()
