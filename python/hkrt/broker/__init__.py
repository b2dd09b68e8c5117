"""Order brokers: where a strategy's orders go (docs/brokers.md).

``OrderBrokerBase`` (C++, hkrt._hkrt) is the base class: ``buy``/``sell`` never raise and return an
``OrderResult``; ``broker_last_datetime`` keeps history away from a live broker; every attempt is
in ``records``.  Subclass it in Python by implementing ``_buy``, ``_sell``, ``_get_asset_info`` and
optionally ``_cancel``, or wrap any object with ``buy``/``sell`` by ``crtOB(obj, name)``.
"""

from hkrt._hkrt import OrderBrokerBase, OrderRecord, OrderResult, OrderSide, OrderStatus
from hkrt.broker.asset import AssetInfo, BrokerPosition
from hkrt.broker.easytrader_broker import EasyTraderAsset, EasyTraderOrderBroker
from hkrt.broker.mail import MailOrderBroker
from hkrt.broker.paper import TestOrderBroker
from hkrt.broker.qmt import QmtTradingConnectionError, QmtTradingUnavailableError, XtQuantOrderBroker
from hkrt.broker.wrap import OrderBrokerWrap, crtOB

__all__ = [
    "AssetInfo",
    "BrokerPosition",
    "EasyTraderAsset",
    "EasyTraderOrderBroker",
    "MailOrderBroker",
    "OrderBrokerBase",
    "OrderBrokerWrap",
    "OrderRecord",
    "OrderResult",
    "OrderSide",
    "OrderStatus",
    "QmtTradingConnectionError",
    "QmtTradingUnavailableError",
    "TestOrderBroker",
    "XtQuantOrderBroker",
    "crtOB",
]
