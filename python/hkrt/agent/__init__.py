"""The agent layer: :class:`SpotAgent` (``spot_agent``) and its parts -- history preloading
(``history``), backfill and gap repair (``backfill``, ``history_sources``) and journal recovery
(``recovery``).  It imports the core, feed, store and bus layers, never a venue adapter or a
strategy (docs/architecture.md, "Packages by layer")."""

from __future__ import annotations

from typing import Any

from hkrt.agent.spot_agent import (
    AfterHours,
    CarryIn,
    GapVolume,
    SpotAgent,
    get_spot_agent,
    release_spot_agent,
    spot_agent_is_connected,
    spot_agent_is_running,
    start_spot_agent,
    stop_spot_agent,
)

__all__ = [
    "AfterHours",
    "CarryIn",
    "GapVolume",
    "SpotAgent",
    "get_spot_agent",
    "release_spot_agent",
    "spot_agent_is_connected",
    "spot_agent_is_running",
    "start_spot_agent",
    "stop_spot_agent",
]


def __getattr__(name: str) -> Any:
    """Any other name ``hkrt.agent`` had while it was one module (``DatetimeLike``, the hikyuu
    record helpers ...) is still found, in ``hkrt.agent.spot_agent``."""
    from hkrt.agent import spot_agent

    try:
        return getattr(spot_agent, name)
    except AttributeError:
        raise AttributeError(f"module 'hkrt.agent' has no attribute {name!r}") from None
