"""The records a running agent's hooks receive, kept importable from here.

The hooks themselves (``SpotAgent.on_spot``, ``on_bar``, ``on_bars``, ``on_columns``,
``on_cycle``, ``on_gap``, ``on_feed``) are shims over the agent's typed event bus,
:mod:`hkrt.bus`, whose one callback thread runs them in order; the records live in
:mod:`hkrt.bus.records`.  ``hkrt.Bar is hkrt.hooks.Bar is hkrt.bus.Bar``.
"""

from __future__ import annotations

from hkrt.bus.filters import KTYPES
from hkrt.bus.records import Bar, CycleInfo, FeedEvent, GapInfo

__all__ = ["KTYPES", "Bar", "CycleInfo", "FeedEvent", "GapInfo"]
