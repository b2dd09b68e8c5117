"""Consecutive simulated days as a spot server records them (``hkrt spot-server --record``), one
journal per day, for the multi-day replay tests."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence
from pathlib import Path

from hkrt.feed.server import SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.fetcher.sim import SimConfig, SimMarket


def record_days(paths: Sequence[Path], days: Sequence[dt.date], config: SimConfig) -> list[Path]:
    """Play ``days`` (each opening from the day before's close: ``SimMarket.following``) through a
    recording spot server, day i into ``paths[i]``, and return the paths."""
    market: SimMarket | None = None
    for path, day in zip(paths, days, strict=True):
        market = SimMarket(day, config) if market is None else SimMarket.following(market, day)
        with SpotPublisher(f"inproc://sim-journals-{secrets.token_hex(6)}", record=path, simulated_time=True,
                           heartbeat_interval=0) as publisher:  # fmt: skip
            SpotServer(publisher).run_sim(market, speed=1e9)
    return list(paths)
