"""The paper venue: an in-memory broker that fills every order at its price; execution only.

Clients: ``execution.make_execution_client`` (:class:`~hkrt.adapters.paper.execution.TestOrderBroker`);
``data.make_data_client`` is None.  ``--broker test`` names it too (``registry.ALIASES``).
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.paper.config import PaperConfig

VENUE = Venue(
    name="paper",
    summary="paper trading: fills every order at its price (in memory)",
    no_data="the paper broker fills orders and publishes no quotes",
    execution_config=PaperConfig,
)

__all__ = ["VENUE"]
