"""The risk engine: pre-trade limits and the trading state between a strategy and its brokers (docs/risk.md)."""

from hkrt.strategy.risk.config import RiskConfig, RiskConfigError
from hkrt.strategy.risk.engine import PREFIX, Account, RiskEngine
from hkrt.strategy.risk.state import ACTIVE, HALTED, REDUCING, TradingState

__all__ = ["ACTIVE", "HALTED", "PREFIX", "REDUCING", "Account", "RiskConfig", "RiskConfigError", "RiskEngine",
           "TradingState"]  # fmt: skip
