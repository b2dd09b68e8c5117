"""hkrt: real-time market data and trading engine for China A-shares.

Units everywhere: prices and amounts in yuan, volumes in shares; times are naive China
local time.  See docs/ for the aggregation rules.
"""

from hkrt._hkrt import Spot, normalize_symbol
from hkrt.agent import AfterHours, CarryIn, GapVolume, SpotAgent, get_spot_agent, start_spot_agent, stop_spot_agent
from hkrt.broker import AssetInfo, OrderBrokerBase, OrderResult, OrderStatus, TestOrderBroker, crtOB
from hkrt.calendar import CalendarCoverageError, TradingCalendar
from hkrt.hooks import Bar, CycleInfo, FeedEvent, GapInfo
from hkrt.ktype import KType
from hkrt.store import KDataStore, load_kdata
from hkrt.strategy import OrderTicket, Strategy
from hkrt.wire import WireError, WireHeader, decode_columns, decode_header, decode_spots, encode_spots

__version__ = "0.1.0"

__all__ = [
    "AfterHours",
    "AssetInfo",
    "Bar",
    "CalendarCoverageError",
    "CarryIn",
    "CycleInfo",
    "FeedEvent",
    "GapInfo",
    "GapVolume",
    "KDataStore",
    "KType",
    "OrderBrokerBase",
    "OrderResult",
    "OrderStatus",
    "OrderTicket",
    "Spot",
    "SpotAgent",
    "Strategy",
    "TestOrderBroker",
    "TradingCalendar",
    "WireError",
    "WireHeader",
    "__version__",
    "crtOB",
    "decode_columns",
    "decode_header",
    "decode_spots",
    "encode_spots",
    "get_spot_agent",
    "load_kdata",
    "normalize_symbol",
    "start_spot_agent",
    "stop_spot_agent",
]
