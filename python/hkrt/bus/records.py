"""What the agent reports, as plain immutable records: a completed bar, a publisher cycle, a loss
of messages, a change of the feed's state.

They are the payloads of the bus's events (:mod:`hkrt.bus.events`) and of the agent's hook shims
(``on_bar``, ``on_cycle``, ``on_gap``, ``on_feed``); ``hkrt.Bar``, ``hkrt.CycleInfo``,
``hkrt.GapInfo`` and ``hkrt.FeedEvent`` are these classes (also importable from ``hkrt.hooks``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple


class Bar(NamedTuple):
    """A completed bar: right label, OHLC in yuan, volume in shares, amount in yuan.

    ``filled``: a flat bar no spot landed in (time passed without one; O=H=L=C at the last
    price, volume 0).  ``amended``: this bar was reported before and a late spot changed it;
    the new values replace the old ones.
    """

    datetime: dt.datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    amount: float
    filled: bool = False
    amended: bool = False


@dataclass(frozen=True)
class CycleInfo:
    """One publisher cycle as the agent received it."""

    publisher_id: int
    cycle_id: int
    parts_expected: int
    parts_received: int
    spots: int
    accepted: int
    complete: bool  # every part arrived
    joined_mid_cycle: bool  # the agent started listening after the cycle's first part
    market_time: dt.datetime | None  # the data time the cycle reached (China local)
    sent_at_ms: float  # publisher's send time of the cycle's first part (UTC epoch ms)
    latency_ms: float  # publisher send of the first part -> last part processed


@dataclass(frozen=True)
class GapInfo:
    """Messages of a publisher lost for good (retransmission could not bring them back).

    ``kind``: "gap" (a sequence skipped ahead), "late_join" (the agent started after the
    publisher: sequences from 1), "tail" (a heartbeat showed messages that never came),
    "restart" (a restarted publisher's first messages).  ``missing`` were lost from
    ``expected_sequence`` on; ``recovered`` others of the same hole were fetched again.
    """

    publisher_id: int
    expected_sequence: int
    received_sequence: int
    missing: int
    kind: str = "gap"
    recovered: int = 0


@dataclass(frozen=True)
class FeedEvent:
    """The feed's state changed: "silent" (no message or heartbeat for ``seconds``),
    "resumed", or "no_publisher" (nothing connected to ``address`` for ``seconds``)."""

    kind: str
    seconds: float
    address: str | None
