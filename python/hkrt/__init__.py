"""hkrt: real-time market data and trading engine for China A-shares.

Units everywhere: prices and amounts in yuan, volumes in shares; times are naive China
local time.  See docs/ for the aggregation rules.
"""

from hkrt._hkrt import Spot, normalize_symbol
from hkrt.agent import CarryIn, SpotAgent
from hkrt.calendar import TradingCalendar
from hkrt.ktype import KType

__version__ = "0.1.0"

__all__ = [
    "CarryIn",
    "KType",
    "Spot",
    "SpotAgent",
    "TradingCalendar",
    "__version__",
    "normalize_symbol",
]
