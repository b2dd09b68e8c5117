"""The paper broker's settings: starting cash and the broker's name.

From a TOML table (``[test]`` or ``[paper]``), ``HKRT_TEST_CASH`` or ``hkrt run --cash`` through
``hkrt.adapters.registry.execution_config("paper", ...)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class PaperConfig:
    cash: float = 0.0  # yuan
    name: str = "TestOrderBroker"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cash) and self.cash >= 0):
            raise ValueError(f"cash must be a finite amount of yuan, 0 or more, not {self.cash!r}")
