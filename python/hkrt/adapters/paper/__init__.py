"""The paper venue: an in-memory broker; execution only.

Clients: ``execution.make_execution_client``: the :class:`~hkrt.adapters.paper.execution.TestOrderBroker`
(fills every order at once at its price; ``fills = "instant"``, the default) or the
:class:`~hkrt.adapters.paper.execution.PaperBroker` (matches orders against the spot stream with fees, T+1
and price limits; ``fills = "market"``, docs/paper-broker.md); ``data.make_data_client`` is None.
``--broker test`` names it too (``registry.ALIASES``).
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.paper.config import PaperConfig

VENUE = Venue(
    name="paper",
    summary="paper trading in memory: instant fills at the order price, or matched against the spots (fills=market)",
    no_data="the paper broker fills orders and publishes no quotes",
    execution_config=PaperConfig,
    reports_account=True,
)

__all__ = ["VENUE"]
