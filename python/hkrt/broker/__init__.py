"""Order brokers: where a strategy's orders go (docs/brokers.md).

``OrderBrokerBase`` (C++, hkrt._hkrt) is the base class: ``buy``/``sell`` never raise and return an
``OrderResult``; ``broker_last_datetime`` keeps history away from a live broker; every attempt is
in ``records``.  Subclass it in Python by implementing ``_buy``, ``_sell``, ``_get_asset_info`` and
optionally ``_cancel``, or wrap any object with ``buy``/``sell`` by ``crtOB(obj, name)``.

Each broker's module is imported the first time one of its names is used (PEP 562): ``crtOB`` or
the paper broker load no SMTP, TLS, HTTP or venue module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hkrt._hkrt import OrderBrokerBase, OrderRecord, OrderResult, OrderSide, OrderStatus
from hkrt._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports these on first use
    from hkrt.broker.asset import AssetInfo, BrokerPosition
    from hkrt.broker.easytrader_broker import EasyTraderAsset, EasyTraderOrderBroker
    from hkrt.broker.mail import MailOrderBroker
    from hkrt.broker.paper import TestOrderBroker
    from hkrt.broker.qmt import QmtTradingConnectionError, QmtTradingUnavailableError, XtQuantOrderBroker
    from hkrt.broker.wrap import OrderBrokerWrap, crtOB

_LAZY_NAMES: dict[str, str] = {
    "AssetInfo": "hkrt.broker.asset",
    "BrokerPosition": "hkrt.broker.asset",
    "EasyTraderAsset": "hkrt.broker.easytrader_broker",
    "EasyTraderOrderBroker": "hkrt.broker.easytrader_broker",
    "MailOrderBroker": "hkrt.broker.mail",
    "TestOrderBroker": "hkrt.broker.paper",
    "QmtTradingConnectionError": "hkrt.broker.qmt",
    "QmtTradingUnavailableError": "hkrt.broker.qmt",
    "XtQuantOrderBroker": "hkrt.broker.qmt",
    "OrderBrokerWrap": "hkrt.broker.wrap",
    "crtOB": "hkrt.broker.wrap",
}


# Submodules stay reachable as attributes after a bare ``import hkrt.broker`` (``hkrt.broker.mail``).
__getattr__, __dir__ = lazy_exports(
    __name__, globals(), _LAZY_NAMES, ("asset", "easytrader_broker", "mail", "paper", "qmt", "wrap")
)


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
