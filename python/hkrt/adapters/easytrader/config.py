"""The easytrader broker's settings: where easytrader's server runs (on the trading PC) and how to log in
(docs/broker-easytrader.md).

From a TOML table ``[easytrader]``, ``HKRT_EASYTRADER_*`` or keywords through
``hkrt.adapters.registry.execution_config("easytrader", ...)``; ``host`` and ``client`` are required.
Passwords never show in ``repr``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LOGIN_KEYS = ("user", "password", "exe_path", "comm_password", "config_path")


@dataclass(frozen=True)
class EasyTraderConfig:
    host: str
    client: str  # easytrader's client name on the server: "ths", "yh_client", "miniqmt", ...
    port: int = 1430
    timeout: float = 30.0  # whole-request deadline of each call, seconds
    poll_interval: float = 5.0  # seconds between two reads of today's entrusts and trades (lifecycle reports)
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    exe_path: str | None = None
    comm_password: str | None = field(default=None, repr=False)
    config_path: str | None = None

    def __post_init__(self) -> None:
        if not self.host:
            raise ValueError("host (the PC running easytrader's server) is required")
        if not self.client:
            raise ValueError("client (easytrader's client name, e.g. ths) is required")
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be 1..65535, not {self.port}")
        if not self.timeout > 0:
            raise ValueError(f"timeout must be > 0 seconds, not {self.timeout:g}")
        if not self.poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, not {self.poll_interval:g}")

    def login(self) -> dict[str, Any]:
        """The ``prepare(...)`` keywords that are set."""
        return {k: getattr(self, k) for k in LOGIN_KEYS if getattr(self, k)}

    def secrets(self) -> list[str]:
        return [s for s in (self.password, self.comm_password) if s]
