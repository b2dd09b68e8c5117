"""Replay of a recorded journal: the cycles a spot server published, at any speed; a data venue only.

Clients: ``data.make_data_client`` (:class:`~hkrt.adapters.replay.data.ReplaySource`);
``execution.make_execution_client`` is None.  Built by name through :mod:`hkrt.adapters.registry`.
"""

from __future__ import annotations

from hkrt.adapters.base import Venue
from hkrt.adapters.replay.config import ReplayConfig

VENUE = Venue(
    name="replay",
    summary="a recorded journal, played back (--replay FILE)",
    data_config=ReplayConfig,
    no_execution="a replay plays a recorded feed and takes no orders; trade it with the paper broker (test)",
    simulated_time=True,
    serves_today=False,
)

__all__ = ["VENUE"]
