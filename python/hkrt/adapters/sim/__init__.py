"""The simulated market: a deterministic, seeded, offline whole market; a data venue only.

Clients: ``data.make_data_client`` (one simulated day through the spot server);
``execution.make_execution_client`` is None.  Built by name through :mod:`hkrt.adapters.registry`.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.sim.config import SimSourceConfig

VENUE = Venue(
    name="sim",
    summary="the simulated market (offline, seeded)",
    data_config=SimSourceConfig,
    no_execution="the simulated market plays quotes only; trade it with the paper broker (test)",
    simulated_time=True,
)

__all__ = ["VENUE"]
