"""hkrt.bus: the typed event bus every component plugs into (docs/architecture.md, "The event bus").

A running :class:`~hkrt.agent.spot_agent.SpotAgent` owns one (``agent.bus``) and publishes the feed's
events onto it; a strategy, an indicator, a recorder or a dashboard subscribes by event class::

    from hkrt.bus import BarClosed, MarketFilter

    agent.bus.subscribe(BarClosed, lambda e: print(e.symbol, e.ktype, e.bar.close),
                        filter=MarketFilter(symbols=["SH600000"], ktypes=["MIN5"]))

Handlers run on the bus's one callback thread, in publication order: no locks needed.

Modules: :mod:`~hkrt.bus.bus` (EventBus, Subscription), :mod:`~hkrt.bus.queue` (the bound and
its policy), :mod:`~hkrt.bus.events` (market-data events), :mod:`~hkrt.bus.trading` (signal,
order, trade and risk events, for the layers to come), :mod:`~hkrt.bus.filters` (MarketFilter),
:mod:`~hkrt.bus.records` (Bar, CycleInfo, GapInfo, FeedEvent: the payloads).
"""

from __future__ import annotations

from hkrt.bus.bus import EventBus, Subscription
from hkrt.bus.events import (
    BarBatch,
    BarClosed,
    CycleEnded,
    DayClosed,
    Event,
    FeedGap,
    FeedStatus,
    Heartbeat,
    SpotBatch,
)
from hkrt.bus.filters import MarketFilter
from hkrt.bus.queue import EventQueue
from hkrt.bus.records import Bar, CycleInfo, FeedEvent, GapInfo
from hkrt.bus.trading import ExecutionReport, OrderEvent, RiskEvent, SignalEvent, TradeEvent

__all__ = [
    "Bar",
    "BarBatch",
    "BarClosed",
    "CycleEnded",
    "CycleInfo",
    "DayClosed",
    "Event",
    "EventBus",
    "EventQueue",
    "ExecutionReport",
    "FeedEvent",
    "FeedGap",
    "FeedStatus",
    "GapInfo",
    "Heartbeat",
    "MarketFilter",
    "OrderEvent",
    "RiskEvent",
    "SignalEvent",
    "SpotBatch",
    "Subscription",
    "TradeEvent",
]
