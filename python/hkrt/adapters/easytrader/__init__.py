"""easytrader: real orders through an easytrader user object or its HTTP server; execution only.

Clients: ``execution.make_execution_client``
(:class:`~hkrt.adapters.easytrader.execution.EasyTraderOrderBroker` over ``easytrader.remoteclient``);
``data.make_data_client`` is None.  Built by name through :mod:`hkrt.adapters.registry`.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.easytrader.config import EasyTraderConfig

VENUE = Venue(
    name="easytrader",
    summary="real orders through easytrader's server on the trading PC",
    no_data="easytrader drives a trading client and publishes no quotes",
    execution_config=EasyTraderConfig,
    reports_account=True,
)

__all__ = ["VENUE"]
