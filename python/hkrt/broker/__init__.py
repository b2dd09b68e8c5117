"""Order brokers: where a strategy's orders go (docs/brokers.md).

``OrderBrokerBase`` (C++, hkrt._hkrt) is the base class: ``buy``/``sell``/``submit`` never raise and
return an ``OrderResult``; ``broker_last_datetime`` keeps history away from a live broker; every attempt
is in ``records``.  Subclass it in Python by implementing ``_buy(request)``, ``_sell(request)`` (one
:class:`OrderRequest` each; the older nine-argument hooks still work), ``_get_asset_info`` and optionally
``_cancel``, or wrap any object with ``buy``/``sell`` by ``crtOB(obj, name)``.

The brokers themselves are the execution clients of the venue adapters (``hkrt.adapters.<venue>``,
docs/adding-a-venue.md); their names stay importable from here.  Each is imported the first time one of
its names is used (PEP 562): ``crtOB`` or the paper broker load no SMTP, TLS, HTTP or venue module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hkrt._hkrt import OrderBrokerBase, OrderRecord, OrderRequest, OrderResult, OrderSide, OrderStatus
from hkrt._lazy import lazy_exports

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ imports these on first use
    from hkrt.adapters.easytrader.execution import EasyTraderOrderBroker
    from hkrt.adapters.easytrader.mapping import EasyTraderAsset
    from hkrt.adapters.mail.execution import MailOrderBroker
    from hkrt.adapters.paper.execution import TestOrderBroker
    from hkrt.adapters.qmt.execution import QmtTradingConnectionError, QmtTradingUnavailableError, XtQuantOrderBroker
    from hkrt.broker.asset import AssetInfo, BrokerPosition
    from hkrt.broker.wrap import OrderBrokerWrap, crtOB

_LAZY_NAMES: dict[str, str] = {
    "AssetInfo": "hkrt.broker.asset",
    "BrokerPosition": "hkrt.broker.asset",
    "EasyTraderAsset": "hkrt.adapters.easytrader.mapping",
    "EasyTraderOrderBroker": "hkrt.adapters.easytrader.execution",
    "MailOrderBroker": "hkrt.adapters.mail.execution",
    "TestOrderBroker": "hkrt.adapters.paper.execution",
    "QmtTradingConnectionError": "hkrt.adapters.qmt.execution",
    "QmtTradingUnavailableError": "hkrt.adapters.qmt.execution",
    "XtQuantOrderBroker": "hkrt.adapters.qmt.execution",
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
    "OrderRequest",
    "OrderResult",
    "OrderSide",
    "OrderStatus",
    "QmtTradingConnectionError",
    "QmtTradingUnavailableError",
    "TestOrderBroker",
    "XtQuantOrderBroker",
    "crtOB",
]
