"""hkrt: real-time market data and trading engine for China A-shares.

Units everywhere: prices and amounts in yuan, volumes in shares; times are naive China
local time.  See docs/ for the aggregation rules.

``import hkrt`` loads only the C++ core (``hkrt._hkrt``, with numpy) and :class:`KType`.  Every
other public name, and every submodule (``hkrt.store``, ``hkrt.fetcher``, ...), is imported the
first time it is touched (PEP 562 ``__getattr__``), so a script, ``hkrt --help`` or a Windows
machine without a venue's package pays only for what it uses: no HTTP, SMTP, TLS, Parquet,
socket or venue module until then (docs/architecture.md, "Import cost and portability").
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hkrt._hkrt import OrderBrokerBase, OrderResult, OrderStatus, Spot, normalize_symbol
from hkrt._lazy import lazy_exports
from hkrt._moved_modules import install as _install_moved_modules
from hkrt.core.ktype import KType

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports these on first use
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
    from hkrt.broker import AssetInfo, TestOrderBroker, crtOB
    from hkrt.broker.mail import MailOrderBroker
    from hkrt.compat.hikyuu import hikyuu_spot_records
    from hkrt.core.calendar import CalendarCoverageError, TradingCalendar
    from hkrt.hooks import Bar, CycleInfo, FeedEvent, GapInfo
    from hkrt.indicators.batch import indicator
    from hkrt.pgstore.spot_reader import load_spots
    from hkrt.store import KDataStore, load_kdata
    from hkrt.strategy import Order, OrderTicket, Strategy

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first access)
_LAZY_NAMES: dict[str, str] = {
    **dict.fromkeys(
        (
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
        ),
        "hkrt.agent",
    ),
    "MailOrderBroker": "hkrt.broker.mail",
    "AssetInfo": "hkrt.broker.asset",
    "TestOrderBroker": "hkrt.broker.paper",
    "crtOB": "hkrt.broker.wrap",
    **dict.fromkeys(("CalendarCoverageError", "TradingCalendar"), "hkrt.core.calendar"),
    "hikyuu_spot_records": "hkrt.compat.hikyuu",
    **dict.fromkeys(("Bar", "CycleInfo", "FeedEvent", "GapInfo"), "hkrt.hooks"),
    "indicator": "hkrt.indicators.batch",
    "load_spots": "hkrt.pgstore.spot_reader",
    **dict.fromkeys(("KDataStore", "load_kdata"), "hkrt.store"),
    **dict.fromkeys(("OrderTicket", "Strategy"), "hkrt.strategy.strategy"),
    "Order": "hkrt.strategy.order",
}

# The wire codec is the feed layer's business, not the package's front door: its names live in
# hkrt.wire (``from hkrt.wire import encode_spots``); the old top-level spellings still work and
# warn (DeprecationWarning) until they are removed.
_MOVED_NAMES: dict[str, str] = dict.fromkeys(
    ("WireError", "WireHeader", "decode_columns", "decode_header", "decode_spots", "encode_spots"), "hkrt.wire"
)

# Submodules reachable as attributes after a bare ``import hkrt`` (``hkrt.store.KDataStore``,
# ``hkrt.fetcher.get_spot``), as they were when this file imported them all eagerly.
_SUBMODULES = frozenset(
    {
        "adapters",
        "agent",
        "backfill",
        "broker",
        "bus",
        "calendar",
        "chart",
        "columns",
        "cli",
        "compat",
        "core",
        "day_journal",
        "demo_strategy",
        "feed",
        "feed_auth",
        "fetcher",
        "hooks",
        "indicators",
        "journal",
        "ktype",
        "logs",
        "lots",
        "notebook",
        "retransmit",
        "server",
        "store",
        "strategy",
        "synthetic",
        "testing",
        "transport",
        "wire",
    }
)


_install_moved_modules()  # hkrt.calendar, hkrt.wire ... : the modules' paths before the layers
__getattr__, __dir__ = lazy_exports(__name__, globals(), _LAZY_NAMES, _SUBMODULES, _MOVED_NAMES)


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
    "MailOrderBroker",
    "Order",
    "OrderBrokerBase",
    "OrderResult",
    "OrderStatus",
    "OrderTicket",
    "Spot",
    "SpotAgent",
    "Strategy",
    "TestOrderBroker",
    "TradingCalendar",
    "__version__",
    "crtOB",
    "get_spot_agent",
    "hikyuu_spot_records",
    "indicator",
    "load_kdata",
    "load_spots",
    "normalize_symbol",
    "release_spot_agent",
    "spot_agent_is_connected",
    "spot_agent_is_running",
    "start_spot_agent",
    "stop_spot_agent",
]
