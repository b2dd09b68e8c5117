"""The simulated market's settings: how the market looks (:class:`SimConfig`) and, for the spot server,
which day it plays and how fast (:class:`SimSourceConfig`).

From a TOML table, ``HKRT_SIM_*`` or CLI flags through ``hkrt.adapters.registry.data_config("sim", ...)``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class SimConfig:
    """How the simulated market looks."""

    symbols: int = 3000
    seed: int = 7
    interval: float = 3.0  # market seconds between snapshots
    suspended_share: float = 0.01  # symbols suspended all day
    hot_share: float = 0.02  # symbols drifting hard enough to reach a price limit
    volatility: float = 0.0004  # per-step standard deviation of the log price (about 3 % a day)

    def __post_init__(self) -> None:
        if self.symbols < 1:
            raise ValueError(f"symbols must be at least 1, not {self.symbols}")
        if self.interval <= 0:
            raise ValueError(f"interval must be positive (market seconds between snapshots), not {self.interval:g}")


@dataclass(frozen=True)
class SimSourceConfig(SimConfig):
    """The spot server's simulated market: a :class:`SimConfig` plus the day it plays (None: the latest
    trading day up to today) and ``speed``, market seconds per wall second.  ``first_day``: the first day of
    a multi-day run that ``day`` continues (each day opening from the previous day's closes, as
    ``run_sim(days=N)`` plays them; ``hkrt node --days N`` starts one spot server per day); None: the day
    stands alone, its previous closes drawn from (seed, day)."""

    day: dt.date | None = None
    speed: float = 1.0
    first_day: dt.date | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.speed > 0:
            raise ValueError(f"speed must be positive (0 only for replay), not {self.speed:g}")
        if self.first_day is not None and self.day is not None and self.first_day > self.day:
            raise ValueError(f"first_day {self.first_day} comes after the day played, {self.day}")
