"""The bus's market-data events: what a running agent publishes, one class per kind of news.

Every event is immutable (a frozen dataclass) and is delivered to the subscribers of its class
(and of its base classes: subscribe to :class:`Event` to see everything).  Two of them are
*batches* — one per wire message, the cheap form — that the bus also splits into single events
for subscribers that want one at a time, building those objects only for them:

==============  ===========================================  ===============================
event           holds                                        split into (for its subscribers)
==============  ===========================================  ===============================
SpotBatch       one accepted message's spots: ``columns``     ``hkrt.Spot``, one per spot
                (numpy, decoded once) and ``spots``
BarBatch        the bars one message (or a clock step)        ``BarClosed``, one per bar
                completed: numpy records
BarClosed       one bar: symbol, ktype, ``Bar``               —
CycleEnded      a publisher cycle is over (``CycleInfo``)     —
FeedGap         messages lost for good (``GapInfo``)          —
FeedStatus      the feed went silent / resumed / has no       —
                publisher (``FeedEvent``)
Heartbeat       a publisher's idle heartbeat                  —
DayClosed       the market day was closed                     —
==============  ===========================================  ===============================

Within one message the agent publishes its SpotBatch, then its BarBatch, then CycleEnded when
the message ends a cycle.  The trading events of the next layers (signals, orders, trades, risk)
are in :mod:`hkrt.bus.trading`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from hkrt._hkrt import Spot
from hkrt.bus.filters import KTYPES, MarketFilter
from hkrt.bus.records import Bar, CycleInfo, FeedEvent, GapInfo
from hkrt.core.ktype import KType

EventFilter = Callable[[Any], bool]


@dataclass(frozen=True)
class Event:
    """Base of the bus's events: a subscription to ``Event`` receives every event published
    (the batches as batches, not split)."""


def _read_only(array: np.ndarray) -> np.ndarray:
    """A view no subscriber can write through: one batch reaches many subscribers in turn."""
    view: np.ndarray = array.view()
    view.flags.writeable = False
    return view


class _Message:
    """The decoded forms of one message, made on first use and shared by every view of its
    batch (the callback thread is the only one that decodes)."""

    __slots__ = ("columns", "message", "spots")

    def __init__(
        self,
        message: bytes | None,
        columns: Mapping[str, np.ndarray] | None = None,
        spots: Sequence[Spot] | None = None,
    ) -> None:
        self.message = message
        self.columns = None if columns is None else {k: _read_only(np.asarray(v)) for k, v in columns.items()}
        self.spots = None if spots is None else tuple(spots)

    def decoded_columns(self) -> dict[str, np.ndarray]:
        if self.columns is None:
            from hkrt.feed.wire import decode_columns, encode_spots

            message = self.message if self.message is not None else encode_spots(list(self.spots or ()))
            self.columns = {k: _read_only(v) for k, v in decode_columns(message).items()}
        return self.columns

    def decoded_spots(self) -> tuple[Spot, ...]:
        if self.spots is None:
            from hkrt.feed.wire import decode_spots, encode_spots

            if self.message is not None:
                message = self.message
            else:
                columns = self.decoded_columns()
                valid = columns["symbol"] != b""  # a row without a valid symbol has no Spot
                message = encode_spots({k: v[valid] for k, v in columns.items()})
            self.spots = tuple(decode_spots(message))
        return self.spots


@dataclass(frozen=True, eq=False)
class SpotBatch(Event):
    """The spots of one accepted wire message, decoded only when a subscriber asks.

    ``columns``: numpy columns as :func:`hkrt.wire.decode_columns` gives them (``symbol`` S8,
    ``datetime``, ``open`` … ``amount``), read-only, decoded once and shared by every
    subscriber.  ``spots``: the same spots as ``hkrt.Spot`` objects (a spot whose symbol is
    invalid has a column row but no object), built on first use.  ``message``: the wire message
    itself when the batch came from one.  ``len(batch)`` counts the spots.

    Build one with :meth:`from_message`, :meth:`from_columns` or :meth:`from_spots`.
    """

    ITEM: ClassVar[type] = Spot

    size: int
    source: _Message = field(repr=False)
    narrowed_by: tuple[MarketFilter, ...] = ()
    _narrowed: dict[str, Any] = field(default_factory=dict, repr=False)  # this view's columns, once made

    @classmethod
    def from_message(
        cls,
        message: bytes | bytearray | memoryview,
        spots: int | None = None,
        *,
        columns: Mapping[str, np.ndarray] | None = None,
        spot_objects: Sequence[Spot] | None = None,
    ) -> SpotBatch:
        """A batch over an encoded wire message (copied unless it is ``bytes``: decoding waits for
        the callback thread, and the caller may reuse its buffer); ``spots`` is the number of
        spots it holds, if known (else the message is decoded now to count them); ``columns`` /
        ``spot_objects``: its columns / Spot objects if the caller decoded them already (then they are not
        decoded again)."""
        data = message if isinstance(message, bytes) else bytes(message)
        source = _Message(data, columns=columns, spots=spot_objects)
        return cls(len(source.decoded_columns()["symbol"]) if spots is None else spots, source)

    @classmethod
    def from_columns(cls, columns: Mapping[str, np.ndarray]) -> SpotBatch:
        """A batch over columns shaped as :func:`hkrt.wire.decode_columns` gives them."""
        source = _Message(None, columns=columns)
        return cls(len(source.decoded_columns()["symbol"]), source)

    @classmethod
    def from_spots(cls, spots: Sequence[Spot]) -> SpotBatch:
        """A batch over ``hkrt.Spot`` objects (columns are made from them only if asked for)."""
        return cls(len(spots), _Message(None, spots=spots))

    @property
    def message(self) -> bytes | None:
        return self.source.message

    @property
    def columns(self) -> dict[str, np.ndarray]:
        columns = self._narrowed.get("columns")
        if columns is None:
            columns = self.source.decoded_columns()
            for market_filter in self.narrowed_by:
                rows = market_filter.rows(columns["symbol"])
                if rows is not None:
                    columns = {k: _read_only(v[rows]) for k, v in columns.items()}
            if self.narrowed_by:
                self._narrowed["columns"] = columns
        return dict(columns)  # the arrays are shared (read-only), the mapping is the caller's

    @property
    def spots(self) -> tuple[Spot, ...]:
        spots = self.source.decoded_spots()
        for market_filter in self.narrowed_by:
            spots = tuple(s for s in spots if market_filter(s))
        return spots

    def __len__(self) -> int:
        return self.size if not self.narrowed_by else len(self.columns["symbol"])

    def select(self, market_filter: MarketFilter) -> SpotBatch | None:
        """This batch narrowed to the filter's symbols (None when no spot matches)."""
        if market_filter.symbols is None:
            return self
        narrowed = SpotBatch(self.size, self.source, (*self.narrowed_by, market_filter))
        return narrowed if len(narrowed) else None

    def items(self, event_filter: EventFilter | None = None) -> Iterator[Spot]:
        """The spots one at a time (those the filter lets through)."""
        if isinstance(event_filter, MarketFilter):
            narrowed = self.select(event_filter)
            yield from () if narrowed is None else narrowed.spots
            return
        for spot in self.spots:
            if event_filter is None or event_filter(spot):
                yield spot


@dataclass(frozen=True)
class BarClosed(Event):
    """One completed bar of ``symbol`` (``"SH600000"``) and ``ktype``.  ``bar.amended``: the bar
    was reported before and a late spot changed it (the new values replace the old)."""

    symbol: str
    ktype: KType
    bar: Bar

    @property
    def amended(self) -> bool:
        return self.bar.amended


@dataclass(frozen=True, eq=False)
class BarBatch(Event):
    """The bars completed together (by one message, a heartbeat's clock, or the day's close), as
    numpy records of ``hkrt._hkrt.COMPLETED_DTYPE``: ``symbol`` (S8), ``ktype`` (index into
    ``list(hkrt.KType)``), ``datetime`` (right label), OHLC, ``volume``, ``amount``, ``filled``,
    ``amended``.  Read-only.  The fast path: one event per message, whatever the market size."""

    ITEM: ClassVar[type] = BarClosed

    records: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "records", _read_only(self.records))

    def __len__(self) -> int:
        return len(self.records)

    def select(self, market_filter: MarketFilter) -> BarBatch | None:
        """This batch narrowed to the filter's symbols and periods (None when no bar matches)."""
        rows = market_filter.rows(self.records["symbol"], self.records["ktype"])
        if rows is None:
            return self
        return BarBatch(self.records[rows]) if len(rows) else None

    def items(self, event_filter: EventFilter | None = None) -> Iterator[BarClosed]:
        """The bars one at a time, as :class:`BarClosed` (only those the filter lets through are built)."""
        records = self.records
        if isinstance(event_filter, MarketFilter):
            rows = event_filter.rows(records["symbol"], records["ktype"])
            if rows is not None:
                records = records[rows]
            event_filter = None
        # whole columns to Python objects at once: reading a numpy record's fields one by one
        # costs about ten times as much per bar
        symbols = [s.decode() for s in records["symbol"].tolist()]
        ktypes = [KTYPES[k] for k in records["ktype"].tolist()]
        times = records["datetime"].astype("datetime64[ms]").tolist()
        values = [records[name].tolist() for name in ("open", "high", "low", "close", "volume", "amount")]
        flags = [records["filled"].tolist(), records["amended"].tolist()]
        for symbol, ktype, when, *fields in zip(symbols, ktypes, times, *values, *flags, strict=True):
            event = BarClosed(symbol, ktype, Bar(when, *fields))
            if event_filter is None or event_filter(event):
                yield event


@dataclass(frozen=True)
class CycleEnded(Event):
    """A publisher cycle is over: its last part was processed, or a newer cycle of its
    publisher began (then ``info.complete`` is False).  After the cycle's bars."""

    info: CycleInfo


@dataclass(frozen=True)
class FeedGap(Event):
    """Messages of a publisher were lost for good (retransmission could not bring them back)."""

    info: GapInfo


@dataclass(frozen=True)
class FeedStatus(Event):
    """The feed went silent, resumed, or has no publisher connected (``info.kind``)."""

    info: FeedEvent


@dataclass(frozen=True)
class Heartbeat(Event):
    """A publisher's heartbeat (sent every second while it has nothing to publish): it moves the
    market clock (``market_time``, China local) and may carry the end-of-day marker."""

    publisher_id: int
    sequence: int  # the last message the publisher sent: a larger one than received reveals a lost tail
    market_time: dt.datetime | None
    simulated: bool  # the feed's times are simulated or replayed
    day_end: bool  # the publisher's end-of-day marker


@dataclass(frozen=True)
class DayClosed(Event):
    """The agent closed its market day ``day``: every bar of it up to the close was completed and
    published before this event (``bars`` of them in the close).  ``reason``: "day_end" (the
    feed's marker), "wall_clock" (a live feed, by the China clock) or "close_day" (by hand)."""

    day: dt.date
    reason: str
    bars: int
