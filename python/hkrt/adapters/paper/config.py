"""The paper broker's settings: starting cash, how orders fill, the fee schedule and the account's bounds.

From a TOML table (``[test]`` or ``[paper]``), ``HKRT_PAPER_*`` / ``HKRT_TEST_*`` variables or ``hkrt run
--cash`` through ``hkrt.adapters.registry.execution_config("paper", ...)``.

``fills``: ``"market"`` (the default) makes the ``PaperBroker``: orders matched against the spot stream with
fees, T+1, price limits and partial fills (docs/paper-broker.md); ``"instant"`` makes the ``TestOrderBroker``:
every order filled at once at its own price, no fees, no T+1 (a stand-in for unit tests).  The other settings apply to
the ``PaperBroker`` only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

FILLS = ("instant", "market")


@dataclass(frozen=True)
class PaperConfig:
    cash: float = 0.0  # yuan
    name: str = ""  # the broker's name ("": TestOrderBroker / PaperBroker, after fills)
    fills: str = "market"  # FILLS
    participation: float = 0.25  # the share of the traded / displayed volume one spot's fills may take, (0, 1]
    commission_rate: float = 0.00025  # of the amount, both sides
    min_commission: float = 5.0  # yuan per order
    transfer_fee_rate: float = 0.00001  # of the amount, both sides
    max_open_orders: int = 1000  # per account: a new order past it is rejected

    def __post_init__(self) -> None:
        if not (math.isfinite(self.cash) and self.cash >= 0):
            raise ValueError(f"cash must be a finite amount of yuan, 0 or more, not {self.cash!r}")
        if self.fills not in FILLS:
            raise ValueError(f"fills must be one of {', '.join(FILLS)}, not {self.fills!r}")
        if not (math.isfinite(self.participation) and 0 < self.participation <= 1):
            raise ValueError(f"participation must be a fraction in (0, 1], not {self.participation!r}")
        for name in ("commission_rate", "transfer_fee_rate"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 <= value < 1):
                raise ValueError(f"{name} must be a fraction of the amount in [0, 1), not {value!r}")
        if not (math.isfinite(self.min_commission) and self.min_commission >= 0):
            raise ValueError(f"min_commission must be a finite amount of yuan, 0 or more, not {self.min_commission!r}")
        if self.max_open_orders < 1:
            raise ValueError(f"max_open_orders must be at least 1, not {self.max_open_orders!r}")
