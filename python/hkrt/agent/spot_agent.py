"""SpotAgent: spots in, K-line bars out.

A thin Python face over the C++ engine (``hkrt._hkrt.Engine``): it converts pandas and
numpy inputs to plain columns and bars back to DataFrames.  Every aggregation rule lives
in C++ and is documented in docs/aggregation.md.

Three of the agent's jobs have their own modules, functions that take the agent and use its
private attributes as its parts: :mod:`hkrt.agent.history` (earlier days' bars from the store),
:mod:`hkrt.agent.backfill` (backfill and gap repair) and :mod:`hkrt.agent.recovery` (journal
recovery); the public methods here delegate to them.  hikyuu's spot record shape lives in
:mod:`hkrt.compat.hikyuu` and is re-exported here.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, TypeAlias

import numpy as np
import pandas as pd

from hkrt import _hkrt
from hkrt._hkrt import Spot
from hkrt.bus import (
    BarBatch,
    BarClosed,
    CycleEnded,
    DayClosed,
    EventBus,
    FeedGap,
    FeedStatus,
    Heartbeat,
    MarketFilter,
    SpotBatch,
)
from hkrt.bus.bus import handler_name
from hkrt.compat.hikyuu import HIKYUU_SPOT_FIELDS as HIKYUU_SPOT_FIELDS  # re-exported: hkrt.agent's names
from hkrt.compat.hikyuu import hikyuu_spot_record as hikyuu_spot_record
from hkrt.compat.hikyuu import hikyuu_spot_records as hikyuu_spot_records
from hkrt.core.calendar import TradingCalendar
from hkrt.core.china_time import (
    DAY_CLOSE_CUTOFF,
    MARKET_CLOSE,
    china_now,
    china_today,
    market_time,
    utc_ms_to_local_datetime,
    utc_ms_to_local_ms,
)
from hkrt.core.columns import datetime_ms
from hkrt.core.columns import floats as _floats
from hkrt.core.ktype import KType
from hkrt.core.logs import LogLimiter
from hkrt.feed.day_journal import DayJournal
from hkrt.feed.transport import default_address, subscriber, tcp_address
from hkrt.feed.wire import decode_header, encode_heartbeat
from hkrt.hooks import Bar, CycleInfo, FeedEvent, GapInfo
from hkrt.store import KDataStore, StoreWriter, _is_database_url

if TYPE_CHECKING:
    import pynng

    from hkrt.feed.redis_reader import RedisGroupReader
    from hkrt.pgstore.reader import PgBarStore
    from hkrt.pgstore.spot_writer import PgSpotWriter
    from hkrt.pgstore.writer import PgBarWriter

log = logging.getLogger("hkrt.agent")

BAR_COLUMNS = ("open", "high", "low", "close", "volume", "amount")

DatetimeLike: TypeAlias = dt.datetime | dt.date | str | np.datetime64 | pd.Timestamp

#: A live feed's market day is over this long (plus ``bar_close_delay``) after its close on the
#: agent's own China wall clock: the closing auction's late-stamped snapshots count until here.
#: ... and only once no spot was accepted for this many seconds of that clock: a feed still
#: delivering spots of the day (a clock that is off, a past day replayed without the simulated
#: flag) is not over, whatever the clock says.  A real day's last spots come by about 15:01.
LIVE_CLOSE_QUIET = 60.0


class CarryIn(NamedTuple):
    """What a symbol had traded on ``day`` before the first spot the agent saw."""

    day: dt.date
    volume: float  # shares
    amount: float  # yuan


class GapVolume(NamedTuple):
    """What a symbol traded on ``day`` while no spot of it came for a whole minute or more
    (docs/aggregation.md §3.3): in DAY, in no intraday bar."""

    day: dt.date
    volume: float  # shares
    amount: float  # yuan
    gaps: int  # spans of the day with such volume


class AfterHours(NamedTuple):
    """What a symbol traded on ``day`` after the close cutoff (15:05: STAR and ChiNext
    after-hours fixed-price trading): in no bar and not in DAY."""

    day: dt.date
    volume: float  # shares
    amount: float  # yuan


class _Cycle(NamedTuple):
    """A publisher cycle that is over, as the C++ core's CycleTracker reports it
    (cpp/spot_agent/cycle_tracker.h): the engine's ``ingest_message`` result lists them under
    ``"cycles"`` in this field order."""

    publisher_id: int
    cycle_id: int
    parts_expected: int
    parts_received: int
    spots: int
    accepted: int
    complete: bool
    joined_mid_cycle: bool
    first_send_us: int
    market_time_ms: int  # believed market time (UTC epoch ms), 0 = none


class SpotAgent:
    """Aggregates spots into bars of the chosen periods, in-process or from a spot feed.

    Args:
        ktypes: periods to build (KType members or names in any case); all 13 by default.
            WEEK and longer are built from DAY bars, so DAY is kept whenever one of them is.
        calendar: trading calendar; the bundled China exchange calendar by default.
        fill_empty_bars: give a minute without spots a flat zero-volume bar once a later
            spot (or :meth:`advance_to`) shows that time has moved on.
        shards: symbols are spread over this many engines, processed in parallel (one
            symbol's spots always in order).  One is right for a 2-core machine.
        bar_close_delay: seconds a running agent waits after a bar's end, in the feed's
            market time, before it declares the bar complete (quotes can lag a little).
        journal_dir: keep a journal of every accepted wire message here, one file per
            market day (``spots-YYYYMMDD.hkj``), to rebuild the bars after a crash with
            :meth:`recover` (docs/agent.md, "Journal and recovery").
        journal_fsync: when journal records reach the disk: "interval" (every
            ``journal_fsync_interval`` seconds), "always" (every message) or "never"
            (left to the OS).  Records reach the OS at once in every case.
        recover_on_start: :meth:`start` first replays the latest journal (once per agent).
        store: persist completed bars to this K-data store (a :class:`~hkrt.store.KDataStore`
            or its directory), written every ``store_flush_interval`` seconds and on
            :meth:`stop`, and load earlier days back as history on :meth:`start`
            (docs/store.md).  A ``postgresql://`` URL records them in PostgreSQL instead, from a
            thread of its own (:class:`hkrt.pgstore.PgBarWriter`, docs/scale-out.md; needs
            ``pip install 'hkrt[postgres]'``); ``store_spill_dir`` is then where bars wait while
            the database is away.
        store_spots: with a ``postgresql://`` store, also record every spot of the feed (book,
            name, publisher and sequence) in its ``hkrt.spots`` table, from a thread of its own
            (:class:`hkrt.pgstore.spot_writer.PgSpotWriter`, its queue bounded at a quarter of
            ``store_max_pending`` spots; spilled to ``store_spill_dir/spots`` while the database is
            away); read back with ``hkrt.load_spots``.  Off by default:
            the whole market is about 26 M spots (about 10 GB) a day (docs/scale-out.md, "Spots").
        history_days: trading days of intraday bars :meth:`load_history` preloads (DAY bars go
            back to the start of the longest enabled WEEK..YEAR period as well).
        backfill: a source of today's earlier spots or minute bars (a journal file, or an
            object with ``minute_bars(symbols, day, until)``) that :meth:`start` applies with
            :meth:`backfill` when the agent has nothing of today yet (docs/store.md, "Backfill").
        max_ahead: seconds a live feed's spot may be dated after its message was sent
            (clock skew); a later one is rejected (``ahead_of_clock``) so that it cannot push
            its symbol into the future.
        max_message_bytes: larger messages are rejected (``too_large``) before they are read.
        callback_queue: events (bars, spots, cycles, gaps) waiting for the callback thread
            at most; when full the receiver waits for the hooks (docs/agent.md, "Bounds").
            It bounds :attr:`bus`, the agent's event bus, which components subscribe to.
        retransmit: ask the spot server for messages a gap, a late join, a lost tail or this
            agent's own restart missed, and aggregate them in order before going on.
        retransmit_timeout: seconds one retransmission request may take.
        auth_key: the feed's HMAC key (bytes or hex), else ``$HKRT_FEED_KEY`` or the file
            ``$HKRT_FEED_KEY_FILE``; with a key every message must be sealed with it.  Required
            to dial TCP on anything but loopback (docs/feed-recovery.md).
        silence_after: seconds without any message (publishers send heartbeats every second
            when idle) after which the feed is reported silent.
        universe: the symbols the feed will send (the spot server's code list, or yesterday's):
            the engine pre-sizes their state, so the day's first whole-market message allocates
            nothing and the cycles behind it do not queue (docs/agent.md, "Bounds").  After each
            closed market day the engine makes room for the next one the same way.
    """

    def __init__(
        self,
        ktypes: Iterable[KType | str] | None = None,
        *,
        calendar: TradingCalendar | None = None,
        fill_empty_bars: bool = True,
        shards: int = 1,
        bar_close_delay: float = 3.0,
        journal_dir: str | Path | None = None,
        journal_fsync: str = "interval",
        journal_fsync_interval: float = 1.0,
        recover_on_start: bool = True,
        store: KDataStore | str | Path | None = None,
        history_days: int = 1,
        store_flush_interval: float = 5.0,
        store_max_pending: int = 1_000_000,
        store_spill_dir: str | Path | None = None,
        store_spots: bool = False,
        backfill: Any = None,
        max_ahead: float = 60.0,
        max_message_bytes: int = 64 << 20,
        callback_queue: int = 10_000,
        retransmit: bool = True,
        retransmit_timeout: float = 2.0,
        auth_key: bytes | str | None = None,
        auth_key_file: str | Path | None = None,
        silence_after: float = 5.0,
        universe: Iterable[str] | None = None,
    ) -> None:
        wanted = list(KType) if ktypes is None else [KType.parse(k) for k in ktypes]
        if not wanted:
            raise ValueError("ktypes is empty: name at least one period, or pass None for all")
        self._calendar = calendar if calendar is not None else TradingCalendar.china()
        self._engine = _hkrt.Engine(
            [k.value for k in wanted],
            self._calendar.holidays,
            fill_empty_bars,
            shards,
            coverage=self._calendar.coverage,
            max_ahead_seconds=max_ahead,
            max_message_bytes=max_message_bytes,
        )
        if universe is not None:
            self._engine.reserve(np.array([_hkrt.normalize_symbol(s) for s in universe], dtype=object))
        from hkrt.feed.feed_auth import load_key

        self._auth_key = load_key(auth_key, key_file=auth_key_file)
        self._max_message_bytes = max_message_bytes
        self._retransmit = retransmit
        self._retransmit_timeout = retransmit_timeout
        self._retransmit_backoff: dict[int, float] = {}  # publisher -> monotonic time to ask again
        self._silence_after = silence_after
        self._last_heard: float | None = None  # monotonic time of the last verified message
        self._started_at = 0.0
        self._silent = False
        self._limiter = LogLimiter(interval=10.0)
        self._feed_counts = {
            "unauthenticated": 0,
            "retransmit_requests": 0,
            "retransmitted_messages": 0,
            "retransmit_unavailable": 0,
            "retransmit_failures": 0,
            "silences": 0,
            "day_end_markers": 0,  # verified end-of-day markers received (a publisher repeats them)
            "day_end_ignored": 0,  # markers for another day than the agent's market day: changed nothing
            "days_closed": 0,  # market days closed (by a marker, the wall clock or close_day())
            "days_closed_by_clock": 0,  # of those, a live feed's day closed by the wall clock
            "bars_emitted": 0,  # completed bars handed to the hooks and/or the store (hkrt.ops metrics)
        }
        self._closed_day: dt.date | None = None  # the last market day closed
        self._last_simulated: bool | None = None  # the feed's last verified message's simulated_time flag
        self._clock: Callable[[], dt.datetime] = _china_now  # the wall clock a live day closes by (tests replace it)
        self._last_accepted_at: dt.datetime | None = None  # that clock when a message last brought accepted spots
        self._close_delay_ms = int(bar_close_delay * 1000)
        self._unplaced_seen = (0, 0)  # gap spans and after-hours symbol-days already reported
        self._completed_dropped_seen = 0  # completed bars the engine's bounded queue dropped, already reported
        # The feed's events go out on this bus; its callback thread runs from start() to stop().
        self.bus = EventBus(max_events=callback_queue)
        self._bars_wanted = False  # someone subscribed to bars: completed bars are collected for them
        self.bus.when_subscribed(self._subscribed)
        self._receiver: threading.Thread | None = None
        self._socket: pynng.Sub0 | None = None
        self._redis: RedisGroupReader | None = None  # start_redis(): the consumer the receiver reads
        self._retransmit_feed: str | None = None  # the feed address whose retransmission server fills gaps
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # message handling state
        self._deferred = threading.local()  # events raised under the lock, put once it is released
        self._latency_ms: deque[float] = deque(maxlen=20_000)  # the last messages' send-to-processed ms
        self._next_clock_close_check = 0.0  # monotonic: the receiver checks the wall-clock close once a second
        self.address: str | None = None
        self._journal = (
            DayJournal(journal_dir, fsync=journal_fsync, fsync_interval=journal_fsync_interval)
            if journal_dir is not None
            else None
        )
        self._recover_on_start = recover_on_start
        self._recovered = False
        self._recovered_day: dt.date | None = None
        if history_days < 0:
            raise ValueError("history_days must be >= 0")
        self._history_days = history_days
        self._history_loaded = False
        self._store: StoreWriter | PgBarWriter | None = None
        if isinstance(store, str) and _is_database_url(store):
            from hkrt.pgstore.writer import PgBarWriter  # psycopg loads only for a database

            self._store = PgBarWriter(store, max_pending=store_max_pending, spill_dir=store_spill_dir)
            self._engine.collect_completed = True
        elif store is not None:
            kstore = store if isinstance(store, KDataStore) else KDataStore(store)
            self._store = StoreWriter(kstore, max_pending=store_max_pending, spill_dir=store_spill_dir)
            self._engine.collect_completed = True  # completed bars feed the store
        self._spot_store: PgSpotWriter | None = None
        if store_spots:
            if not (isinstance(store, str) and _is_database_url(store)):
                raise ValueError(
                    "store_spots=True records spots in PostgreSQL only: give store='postgresql://…' "
                    f"(the store is {store!r})"
                )
            from hkrt.pgstore.spot_writer import PgSpotWriter

            spot_spill = None if store_spill_dir is None else Path(store_spill_dir) / "spots"
            # a spot record is about three bars' bytes (280): a quarter of the bars' bound keeps memory alike
            spots_pending = max(1, store_max_pending // 4)
            self._spot_store = PgSpotWriter(store, max_pending=spots_pending, spill_dir=spot_spill)
        self._store_interval = store_flush_interval
        self._store_last_flush = time.monotonic()
        self._flusher: threading.Thread | None = None
        self._backfill_source = backfill
        self._backfill_report: dict[str, Any] | None = None

    # ----------------------------------------------------------------- input
    def ingest(self, spots: Spot | Iterable[Spot] | pd.DataFrame | Mapping[str, Any]) -> int:
        """Ingest spots in order and return how many were accepted.

        Accepts one :class:`Spot`, an iterable of them, one encoded wire message (bytes),
        a DataFrame or a mapping of columns (see :meth:`ingest_columns`).  Rejected and
        duplicate spots, and malformed messages, are counted in :meth:`stats`, never
        raised: one bad quote must not stop a feed.
        """
        if isinstance(spots, Spot):
            spots = [spots]
        if isinstance(spots, (bytes, bytearray, memoryview)):
            return int(self._handle_message(spots)["accepted"])
        if isinstance(spots, pd.DataFrame):
            frame = spots.reset_index() if "datetime" not in spots.columns else spots
            return self.ingest_columns(**{c: frame[c] for c in _COLUMN_ARGS if c in frame.columns})
        if isinstance(spots, Mapping):
            unknown = set(spots) - set(_COLUMN_ARGS) - _UNUSED_SPOT_COLUMNS
            if unknown:
                raise TypeError(f"unknown spot columns {sorted(unknown)}; bars use {list(_COLUMN_ARGS)}")
            return self.ingest_columns(**{k: v for k, v in spots.items() if k in _COLUMN_ARGS})
        if isinstance(spots, str):
            raise TypeError("ingest takes Spot objects, an encoded message, a DataFrame or a mapping of columns")
        if not isinstance(spots, (list, tuple)):
            spots = list(spots)
        if self._spot_store is not None:
            self._spot_store.add_spots(spots)
        return self._drained(self._engine.ingest_spots(spots))

    def ingest_columns(
        self,
        symbol: Sequence[str] | np.ndarray | pd.Series,
        datetime: Sequence[Any] | np.ndarray | pd.Series,
        close: Any,
        volume: Any,
        amount: Any,
        open: Any = None,
        high: Any = None,
        low: Any = None,
    ) -> int:
        """Ingest one push as columns: the hot path (one call per push, no Python objects).

        ``symbol`` is an array of str or bytes ("SH600000"); ``datetime`` datetime64 values
        (naive = China local time, tz-aware converted); prices in yuan, ``volume`` shares
        and ``amount`` yuan, cumulative for the day.  ``open``/``high``/``low`` are the
        day's values and may be omitted.
        """
        symbols = np.asarray(symbol)
        if symbols.dtype.kind not in "SUO":
            raise TypeError("symbol must hold strings such as 'SH600000'")
        columns = (
            symbols,
            datetime_ms(datetime),
            _floats(close),
            _floats(volume),
            _floats(amount),
            None if open is None else _floats(open),
            None if high is None else _floats(high),
            None if low is None else _floats(low),
        )
        if self._spot_store is not None:
            self._spot_store.add_columns(*columns)
        return self._drained(self._engine.ingest_columns(*columns))

    def advance_to(self, now: DatetimeLike) -> None:
        """Declare that time has reached ``now``: minutes that ended without spots get flat bars."""
        self._engine.advance_to(now)
        self._drained(0)

    def preload(self, symbol: str, ktype: KType | str, history: pd.DataFrame) -> None:
        """Load history bars so live bars continue them.

        ``history`` has a DatetimeIndex (or a ``datetime`` column) of bar labels and the
        columns open, high, low, close, volume (shares), amount (yuan).  Bars the agent
        already built win over history bars with the same label.  Preload DAY history to
        continue WEEK and longer bars in the middle of their period.
        """
        frame = history.reset_index() if "datetime" not in history.columns else history
        missing = [c for c in ("datetime", *BAR_COLUMNS) if c not in frame.columns]
        if missing:
            raise ValueError(f"history lacks columns {missing}")
        self._engine.preload(
            symbol,
            KType.parse(ktype).value,
            datetime_ms(frame["datetime"]),
            *(_floats(frame[c]) for c in BAR_COLUMNS),
        )

    # ---------------------------------------------------------------- output
    def kdata(
        self,
        symbol: str,
        ktype: KType | str,
        start: DatetimeLike | None = None,
        end: DatetimeLike | None = None,
    ) -> pd.DataFrame:
        """Bars of one symbol as a DataFrame indexed by ``datetime`` (the bar's right label),
        with the columns open, high, low, close, volume, amount and ``filled`` (True for a
        flat bar no spot landed in).

        The last bar may still be forming.  ``start``/``end`` bound the labels (inclusive).
        """
        bars = self._engine.bars(symbol, KType.parse(ktype).value)
        frame = pd.DataFrame(
            {**{c: bars[c] for c in BAR_COLUMNS}, "filled": bars["filled"]},
            index=pd.DatetimeIndex(bars["datetime"].astype("datetime64[ns]"), name="datetime"),
        )
        if start is not None or end is not None:
            frame = frame.loc[
                (pd.Timestamp(start) if start is not None else None) : (pd.Timestamp(end) if end is not None else None)
            ]
        return frame

    def kdata_view(self, symbol: str, ktype: KType | str) -> np.ndarray:
        """The engine's bars as a read-only numpy structured array, without copying.

        Fields: datetime (datetime64[ms]), open, high, low, close, volume, amount, filled
        (bool; 64-byte records).  The view
        covers the bars as they were when it was taken (taking it writes the symbol's
        forming bars out).  Ingesting later may update bars inside it only when they are
        written out again, and never adds bars to it: take a new view after ingesting.
        """
        return self._engine.view(symbol, KType.parse(ktype).value)

    def carry_in(self, symbol: str) -> CarryIn | None:
        """Carry-in of the symbol's current day, or None if it has no spot yet."""
        raw = self._engine.carry_in(symbol)
        return None if raw is None else CarryIn(*raw)

    def gap_volume(self, symbol: str) -> GapVolume | None:
        """Gap volume of the symbol's current day, or None if it has no spot yet."""
        t = self._engine.day_totals(symbol)
        return None if t is None else GapVolume(t["day"], t["gap_volume"], t["gap_amount"], t["gap_spans"])

    def after_hours(self, symbol: str) -> AfterHours | None:
        """After-hours volume of the symbol's current day, or None if it has no spot yet."""
        t = self._engine.day_totals(symbol)
        return None if t is None else AfterHours(t["day"], t["after_hours_volume"], t["after_hours_amount"])

    def stats(self) -> dict[str, Any]:
        """Counters of spots (received, accepted, duplicates, rejected by reason, carry_in,
        filled_bars, amended_bars, symbols) and, under ``"transport"``, of messages
        (received, verified, rejected by reason, gaps, missing and duplicate messages,
        cycles, callback errors, callback queue depth, end-to-end latency percentiles), under
        ``"callbacks"``, the event bus's counters (:meth:`hkrt.bus.EventBus.stats`) and, reading a Redis
        stream (:meth:`start_redis`), under ``"redis"`` the consumer's (entries read, re-read from its
        pending list, claimed, acknowledged, trimmed while pending, errors, reconnects, groups recreated)."""
        out = self._engine.stats()
        messages = self._engine.message_stats()
        rejected = sum(messages["rejected"].values())
        latencies = np.array(self._latency_ms) if self._latency_ms else np.zeros(0)
        out["transport"] = {
            **messages,
            "verified": messages["messages"] - rejected,
            "lost_messages": messages["missing_messages"] - messages["recovered_messages"],
            **self._feed_counts,
            "closed_day": self._closed_day.isoformat() if self._closed_day is not None else None,
            "connected": self._connected() if self.running else 0,
            "last_message_age_s": None if self._last_heard is None else time.monotonic() - self._last_heard,
            "silent": self._silent,
            "callback_errors": self.bus.errors,
            "queue_depth": self.bus.depth,
            "latency_ms": {
                "count": len(latencies),
                **{f"p{q}": float(np.percentile(latencies, q)) if len(latencies) else None for q in (50, 90, 99)},
                "max": float(latencies.max()) if len(latencies) else None,
            },
        }
        out["journal"] = dict(self._journal.stats if self._journal is not None else _NO_JOURNAL)
        out["store"] = dict(self._store.stats) if self._store is not None else None
        out["store_spots"] = dict(self._spot_store.stats) if self._spot_store is not None else None
        out["backfill"] = self._backfill_report
        out["redis"] = self._redis.stats() if self._redis is not None else None
        out["callbacks"] = self.bus.stats()
        return out

    # ----------------------------------------------------------------- hooks
    # Shims over the bus, kept for the scripts written against them: each subscribes ``func``
    # to the matching event of :attr:`bus` (docs/architecture.md, "The event bus").  A new
    # component subscribes to the bus itself.
    def on_spot(self, func: Callable[[Spot], Any]) -> Callable[[Spot], Any]:
        """Call ``func(spot)`` for every spot received while running (decorator).
        Same as ``agent.bus.subscribe(hkrt.Spot, func)``."""
        self.bus.subscribe(Spot, func)
        return func

    def on_bar(
        self,
        func: Callable[[str, KType, Bar], Any] | None = None,
        *,
        ktypes: Iterable[KType | str] | None = None,
        symbols: Iterable[str] | None = None,
    ) -> Any:
        """Call ``func(symbol, ktype, bar)`` for each completed bar, optionally only for some
        periods or symbols.  Use as ``@agent.on_bar`` or ``@agent.on_bar(ktypes=["MIN5"])``.
        Same as subscribing to :class:`hkrt.bus.BarClosed` with a ``MarketFilter``."""
        selected = None if ktypes is None and symbols is None else MarketFilter(symbols, ktypes)

        def register(f: Callable[[str, KType, Bar], Any]) -> Callable[[str, KType, Bar], Any]:
            def call(event: BarClosed) -> None:
                f(event.symbol, event.ktype, event.bar)

            self.bus.subscribe(BarClosed, call, filter=selected, name=handler_name(f))
            return f

        return register(func) if func is not None else register

    def on_bars(self, func: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], Any]:
        """Call ``func(records)`` once per message with all bars it completed (numpy, read-only;
        the fast path).  Same as subscribing to :class:`hkrt.bus.BarBatch`."""
        self.bus.subscribe(BarBatch, lambda event: func(event.records), name=handler_name(func))
        return func

    def on_columns(self, func: Callable[[dict[str, np.ndarray]], Any]) -> Callable[[dict[str, np.ndarray]], Any]:
        """Call ``func(columns)`` with each accepted message's spots as numpy columns
        (``hkrt.wire.decode_columns``): the cheap way to follow prices of a whole market, in the
        same order as the bars and cycles the message produced.  The columns are the ones the
        engine decoded, shared without copying: read-only, and valid for as long as they are
        held.  Same as subscribing to :class:`hkrt.bus.SpotBatch` and reading ``event.columns``."""
        self.bus.subscribe(SpotBatch, lambda event: func(event.columns), name=handler_name(func))
        return func

    def on_cycle(self, func: Callable[[CycleInfo], Any]) -> Callable[[CycleInfo], Any]:
        """Call ``func(info)`` once per publisher cycle, when its last part is processed
        (:class:`hkrt.bus.CycleEnded`)."""
        self.bus.subscribe(CycleEnded, lambda event: func(event.info), name=handler_name(func))
        return func

    def on_gap(self, func: Callable[[GapInfo], Any]) -> Callable[[GapInfo], Any]:
        """Call ``func(info)`` when messages of a publisher were lost for good: a gap, a late
        join, a lost tail (revealed by a heartbeat) or a restart's lost first messages that
        retransmission could not recover (``info.kind``; ``info.recovered`` were fetched)
        (:class:`hkrt.bus.FeedGap`)."""
        self.bus.subscribe(FeedGap, lambda event: func(event.info), name=handler_name(func))
        return func

    def on_feed(self, func: Callable[[FeedEvent], Any]) -> Callable[[FeedEvent], Any]:
        """Call ``func(event)`` when the feed goes silent, resumes, or has no publisher
        connected (``event.kind``: "silent", "resumed", "no_publisher") (:class:`hkrt.bus.FeedStatus`)."""
        self.bus.subscribe(FeedStatus, lambda event: func(event.info), name=handler_name(func))
        return func

    def _subscribed(self, event_type: type) -> None:
        """Someone subscribed to ``event_type``: bars are collected from the engine once anyone
        wants them (a subscriber to a base class such as ``Event`` included)."""
        if issubclass(BarBatch, event_type) or issubclass(BarClosed, event_type):
            self._bars_wanted = True
            self._engine.collect_completed = True

    # -------------------------------------------------------------- running
    @property
    def running(self) -> bool:
        return self._receiver is not None and self._receiver.is_alive()

    def start(self, address: str | None = None, *, tcp: bool | int | str | None = None) -> SpotAgent:
        """Subscribe to a spot feed and aggregate it in the background until :meth:`stop`.

        ``address`` is the publisher's (``ipc://`` or ``tcp://``), by default this user's
        ipc address; ``tcp`` dials TCP instead (True = 127.0.0.1:9200, a port or host:port).
        Hooks and the subscribers of :attr:`bus` run on its one callback thread.  An agent can
        be started again after a stop.
        """
        if self.running:
            raise RuntimeError(f"the agent is already running on {self.address}")
        address = tcp_address(tcp) if tcp else (address or default_address())
        from hkrt.feed.feed_auth import require_auth

        require_auth(address, self._auth_key, "subscribe")  # a rogue listener must not feed us
        self._prepare_start()
        self.address = self._retransmit_feed = address
        self._redis = None
        self.bus.start()
        self._socket = subscriber([self.address])
        # a message larger than this is dropped by nng before it is read (and shows as a gap)
        self._socket.recv_max_size = self._max_message_bytes + 64
        self._launch(self._receive)
        return self

    def start_redis(
        self,
        url: str,
        group: str,
        *,
        consumer: str | None = None,
        stream: str | None = None,
        retransmit_from: str | None = None,
        start_id: str = "$",
        claim_idle: float = 30.0,
    ) -> SpotAgent:
        """Read the spot feed from a Redis stream as one consumer of a consumer group, in the background
        until :meth:`stop` (docs/scale-out-redis.md).

        ``url``: ``redis://``, ``rediss://`` or ``unix://``; ``group``: this agent's consumer group (one
        per agent: the group's messages are shared among its consumers); ``consumer``: its name in the
        group (the host name by default; a restart under the same name re-reads what it had not
        acknowledged); ``stream``: the stream's key (``hkrt:spots``); ``retransmit_from``: a spot
        server's feed address (``ipc://`` or ``tcp://``) whose retransmission socket fills sequence
        gaps (trimmed entries, a Redis restart's losses), None: gaps are reported, not filled;
        ``start_id``: where a group created now starts (``$`` new messages, ``0`` the whole stream; an
        agent that has taken messages before starts a new group at ``0``);
        ``claim_idle``: seconds after which another consumer's unacknowledged messages are claimed.
        Messages are acknowledged once the agent has taken them (journaled when it keeps a journal).
        """
        if self.running:
            raise RuntimeError(f"the agent is already running on {self.address}")
        from hkrt.agent import redis_feed
        from hkrt.feed.redis_reader import RedisGroupReader
        from hkrt.feed.redis_sink import DEFAULT_STREAM

        reader = RedisGroupReader(url, group, consumer=consumer, stream=stream or DEFAULT_STREAM,
                                  start_id=start_id, claim_idle=claim_idle)  # fmt: skip
        if retransmit_from is not None:
            from hkrt.feed.feed_auth import require_auth

            require_auth(retransmit_from, self._auth_key, "retransmission client")
        self._prepare_start()
        if start_id == "$" and self._engine.message_stats()["messages"]:
            # an agent that took messages before (a restart, a recovered journal) continues: a group it
            # has to create now reads the whole stream, whose repeats it skips by their sequence numbers
            reader.start_id = "0"
        reader.join()  # the group exists from now on (Redis down: logged, and retried by the receiver)
        self.address = reader.display
        self._retransmit_feed = retransmit_from
        self._redis = reader
        self._socket = None
        self.bus.start()
        self._launch(lambda: redis_feed.receive(self, reader))
        return self

    def _prepare_start(self) -> None:
        """What every start does before it listens: history, journal recovery, backfill."""
        if self._store is not None and not self._history_loaded:
            self.load_history()
        if self._journal is not None and self._recover_on_start and not self._recovered:
            if self._engine.message_stats()["messages"]:
                log.warning("not recovering the journal: the agent has already processed messages")
                self._recovered = True
            else:
                self.recover()
        if self._backfill_source is not None:
            from hkrt.agent import backfill as agent_backfill

            source, self._backfill_source = self._backfill_source, None
            agent_backfill.start_backfill(self, source)

    def _launch(self, receive: Callable[[], None]) -> None:
        """Start the receiver thread (running ``receive``) and the store's flusher."""
        self._started_at = time.monotonic()
        self._last_heard = None
        self._silent = False
        self._stopping.clear()
        self._receiver = threading.Thread(target=receive, name="hkrt-receiver", daemon=True)
        self._receiver.start()
        if self._store is not None:
            self._flusher = threading.Thread(target=self._flush_loop, name="hkrt-store", daemon=True)
            self._flusher.start()
        log.info("agent started", extra={"address": self.address})

    def stop(self, timeout: float = 5.0) -> None:
        """Stop receiving, run the callbacks already queued, close the journal, and return."""
        if self._receiver is None:
            self.bus.stop(timeout)  # a bus started by hand (events of in-process ingest)
            self.close_journal()
            self.flush_store(compact=True)
            return
        self._stopping.set()
        self._receiver.join(timeout)
        if self._socket is not None:
            self._socket.close()
        if self._redis is not None:
            self._redis.close()
        self.bus.stop(timeout)
        self._receiver = self._socket = None  # a Redis reader stays, closed, for its counters in stats()
        if self._flusher is not None:
            self._flusher.join(timeout)
            self._flusher = None
        self.close_journal()
        self.flush_store(compact=True)
        log.info("agent stopped", extra={"address": self.address})

    def join(self, timeout: float | None = None) -> bool:
        """Block until the agent is stopped (:meth:`stop` from a hook or another thread, or :meth:`run`'s
        Ctrl-C/SIGTERM); True once it is, False when ``timeout`` seconds passed first.  Waits in short
        steps, so that Ctrl-C reaches the waiting main thread on every OS."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.running and not self._stopping.is_set():
            step = 0.25 if deadline is None else min(0.25, deadline - time.monotonic())
            if step <= 0:
                return False
            self._stopping.wait(step)
        return True

    def run(
        self, address: str | None = None, *, tcp: bool | int | str | None = None, handle_signals: bool = True
    ) -> int | None:
        """:meth:`start`, block until Ctrl-C, SIGTERM (SIGBREAK on Windows) or :meth:`stop`, then stop (the
        queued callbacks run, the store is flushed, the journal closed): a script's last line.  Returns the
        signal that stopped it, None for a :meth:`stop`; ``sys.exit(128 + signum)`` gives the shell's
        conventional status.  ``handle_signals=False`` (or a thread other than the main one) leaves the
        process's signal handlers alone."""
        import signal

        received: list[int] = []

        def on_signal(signum: int, frame: Any) -> None:
            received.append(signum)
            self._stopping.set()  # the receiver ends; stop() below does the rest

        names = ("SIGINT", "SIGTERM", "SIGBREAK")
        wanted = [getattr(signal, n) for n in names if hasattr(signal, n)]
        previous: dict[int, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            previous = {sig: signal.signal(sig, on_signal) for sig in wanted}
        try:
            self.start(address, tcp=tcp)
            self.join()
        finally:
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return received[0] if received else None

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every callback queued so far has run (for tests and notebooks)."""
        return self.bus.wait_idle(timeout)

    def __enter__(self) -> SpotAgent:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _receive(self) -> None:
        import pynng  # here, not at import: an agent fed in-process (ingest) loads no socket library

        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                message = self._socket.recv()
            except pynng.Timeout:
                self._idle()
                continue
            except pynng.Closed:
                break
            except RuntimeError:
                # pynng's recv() cannot unpack an empty message; it is a bad message like any
                # other, to be counted.
                message = b""
            try:
                self._handle_message(message, live=True)
                now = time.monotonic()
                if now >= self._next_clock_close_check:  # the wall-clock close needs no more than 1/s
                    self._next_clock_close_check = now + 1.0
                    self._close_by_clock()
            except Exception:  # a bug must not kill the feed: log it and go on
                log.exception("failed to handle a message of %d bytes", len(message))

    def _idle(self) -> None:
        """While no message comes: let the interval fsync catch up, close a live market day that
        is over by the wall clock, and say when the feed is silent."""
        if self._journal is not None:
            with self._lock:
                self._journal.sync_if_due()
        self._close_by_clock()
        now = time.monotonic()
        since = self._last_heard if self._last_heard is not None else self._started_at
        if now - since < self._silence_after:
            return
        connected = self._connected()
        if connected == 0:
            allowed, suppressed = self._limiter.allow("no_publisher")
            if allowed:
                log.warning(
                    "no publisher connected: waiting for the spot server",
                    extra={"address": self.address, "seconds": round(now - since, 1), "suppressed": suppressed},
                )
                self._emit("feed", FeedEvent("no_publisher", now - since, self.address))
        if not self._silent and self._last_heard is not None:
            self._silent = True
            self._feed_counts["silences"] += 1
            log.warning(
                "feed silent: no message or heartbeat",
                extra={"address": self.address, "seconds": round(now - since, 1), "connected": connected},
            )
            self._emit("feed", FeedEvent("silent", now - since, self.address))

    def _connected(self) -> int:
        """Publishers connected to the nng socket; reading Redis: 1 while Redis answers, else 0."""
        socket, redis = self._socket, self._redis
        if socket is not None:
            return len(socket.pipes)
        return int(redis is not None and redis.connected)

    def _handle_message(self, message: bytes | bytearray | memoryview, *, live: bool = False) -> dict[str, Any]:
        if self._auth_key is not None:
            from hkrt.feed.feed_auth import unseal

            payload = unseal(self._auth_key, message)
            if payload is None:
                self._feed_counts["unauthenticated"] += 1
                allowed, suppressed = self._limiter.allow("unauthenticated")
                if allowed:
                    log.warning(
                        "rejected a message that is not sealed with the feed key",
                        extra={"bytes": len(message), "unauthenticated": self._feed_counts["unauthenticated"],
                               "suppressed": suppressed},
                    )  # fmt: skip
                return {"error": "unauthenticated", "accepted": 0, "spots": 0}
            message = payload
        with self._locked():
            hold = live and self._retransmit and self._retransmit_feed is not None
            result = self._ingest(message, hold_gaps=hold)
            if result["held"]:
                retransmitted = self._fetch_missing(result)
                result = self._ingest(message)  # what is still missing is lost: reported below
                result["retransmitted"] = retransmitted
            return self._after_ingest(message, result)

    def _ingest(self, message: bytes | bytearray | memoryview, *, hold_gaps: bool = False) -> dict[str, Any]:
        """The engine's ``ingest_message``, asking for the decoded spots (``"columns"``,
        ``"spot_objects"``) only when a running agent has a hook that takes them: the message is
        decoded once, in C++, for the engine and every consumer."""
        wanted = self.bus.running and self.bus.wants(SpotBatch)
        return self._engine.ingest_message(
            message,
            hold_gaps=hold_gaps,
            columns=wanted,
            spots=wanted and self.bus.wants(Spot),
            advance_delay_ms=self._close_delay_ms,  # a cycle's end moves the clock in the same C++ call
        )

    def _fetch_missing(self, held: dict[str, Any]) -> int:
        """Fetch the messages a held message showed missing from the spot server and process
        them, in order, before it.  Returns how many were recovered."""
        from hkrt.feed.retransmit import fetch_missing, retransmit_address

        publisher = held["publisher_id"]
        if time.monotonic() < self._retransmit_backoff.get(publisher, 0.0):
            return 0
        first, last = held["gap_first"], held["gap_last"]
        assert self._retransmit_feed is not None
        reply = fetch_missing(
            retransmit_address(self._retransmit_feed),
            publisher,
            held["session_epoch"],
            first,
            last,
            key=self._auth_key,
            timeout=self._retransmit_timeout,
        )
        self._feed_counts["retransmit_requests"] += reply.requests
        self._feed_counts["retransmit_unavailable"] += sum(b - a + 1 for a, b in reply.unavailable)
        for payload in reply.messages:
            self._after_ingest(payload, self._ingest(payload))
        self._feed_counts["retransmitted_messages"] += len(reply.messages)
        if reply.error is not None:
            self._feed_counts["retransmit_failures"] += 1
            if not reply.messages:  # the server does not answer: do not stall every gap on it
                self._retransmit_backoff[publisher] = time.monotonic() + 30.0
            allowed, suppressed = self._limiter.allow("retransmit")
            if allowed:
                log.warning(
                    "retransmission incomplete",
                    extra={"publisher_id": publisher, "first": first, "last": last, "recovered": len(reply.messages),
                           "error": reply.error, "suppressed": suppressed},
                )  # fmt: skip
        elif reply.messages:
            log.info(
                "recovered lost messages by retransmission",
                extra={"publisher_id": publisher, "first": first, "last": last, "recovered": len(reply.messages)},
            )
        return len(reply.messages)

    def _after_ingest(self, message: bytes | bytearray | memoryview, result: dict[str, Any]) -> dict[str, Any]:
        """Everything after the engine took a message: loss reports, journal, hooks, cycles."""
        if result["error"] != "ok":
            allowed, suppressed = self._limiter.allow(("rejected", result["error"]))
            if allowed:
                log.warning(
                    "rejected a message",
                    extra={"reason": result["error"], "bytes": len(message), "suppressed": suppressed},
                )
            return result
        status = result["sequence_status"]
        publisher = result["publisher_id"]
        if status == "duplicate":
            log.debug("skipped a duplicate message", extra={"publisher_id": publisher, "sequence": result["sequence"]})
            return result
        if status == "anomaly":
            allowed, suppressed = self._limiter.allow("anomaly")
            if allowed:
                log.warning(
                    "quarantined a message whose sequence is far outside the expected window",
                    extra={"publisher_id": publisher, "sequence": result["sequence"], "suppressed": suppressed},
                )
            return result
        self._last_heard = time.monotonic()
        self._last_simulated = bool(result["simulated_time"])
        if result["accepted"] and not self._last_simulated:
            self._last_accepted_at = self._clock()
        if self._silent:
            self._silent = False
            log.warning("feed resumed", extra={"address": self.address, "publisher_id": publisher})
            self._emit("feed", FeedEvent("resumed", 0.0, self.address))
        if result["missing"]:
            self._report_gap(result)
        if status == "restart":
            allowed, suppressed = self._limiter.allow("restart")
            if allowed:
                log.warning("publisher restarted", extra={"publisher_id": publisher, "session": result["session_epoch"],
                                                          "suppressed": suppressed})  # fmt: skip
        if result["heartbeat"]:
            self._emit_heartbeat(message, result)
            if result["market_time_ms"]:  # an idle feed still moves the market clock (bounded by the spots)
                self._engine.advance_to(_local(result["market_time_ms"] - self._close_delay_ms))
                self._take_completed(to_hooks=True)
            if _is_day_end(message, result):
                self._on_day_end(message, result, live=True)
            return result
        if self._journal is not None:
            self._journal.append(message, self._market_day())
        if self._spot_store is not None:
            self._spot_store.add_message(message, result["spots"], publisher, result["sequence"])
        self._emit_spots(message, result, columns=result.get("columns"), spots=result.get("spot_objects"))
        finished = self._track_cycle(result)
        market_time_ms = max((c.market_time_ms for _, c in finished), default=0)
        # The latest cycle over moves the market clock (one sweep, not one per cycle); the engine
        # did it in ingest_message when asked to ("advanced").
        advance_here = bool(market_time_ms) and not result.get("advanced")
        if advance_here:
            self._engine.advance_to(_local(market_time_ms - self._close_delay_ms))
        if advance_here or result.get("completed_waiting", 1):  # none waiting after the engine's call: no take
            self._take_completed(to_hooks=True)
        self._report_unplaced(result.get("unplaced"))
        now_ms = time.time() * 1000
        self._latency_ms.append(now_ms - result["send_time_us"] / 1000)
        for cycle_id, cycle in finished:
            self._emit("cycle", self._cycle_info(publisher, cycle_id, cycle, now_ms))
        return result

    def _report_gap(self, result: dict[str, Any]) -> None:
        status = result["sequence_status"]
        kind = {"first": "late_join", "restart": "restart", "heartbeat": "tail"}.get(status, "gap")
        gap = GapInfo(
            result["publisher_id"],
            result["gap_first"],
            result["sequence"],
            result["missing"],
            kind=kind,
            recovered=result.get("retransmitted", 0),
        )
        allowed, suppressed = self._limiter.allow("gap")
        if allowed:
            log.warning(
                "messages lost",
                extra={"publisher_id": gap.publisher_id, "kind": kind, "missing": gap.missing,
                       "first": result["gap_first"], "last": result["gap_last"], "recovered": gap.recovered,
                       "suppressed": suppressed},
            )  # fmt: skip
        self._emit("gap", gap)

    def _market_day(self) -> dt.date:
        """The agent's market day: that of the newest spot it accepted (today's before any).
        The journal file follows it, so no single message header can open another day's file."""
        return self.market_day or china_today()

    # ------------------------------------------------------------ end of day
    @property
    def market_day(self) -> dt.date | None:
        """The day of the newest spot the agent accepted (None before any): the day it builds bars of."""
        newest = self._engine.newest_accepted()
        return None if newest is None else np.datetime64(newest, "ms").item().date()

    @property
    def closed_day(self) -> dt.date | None:
        """The last market day the agent closed (its 15:00 bars, DAY and, when the day ends
        them, WEEK..YEAR completed and delivered), None before any."""
        return self._closed_day

    def close_day(self, day: DatetimeLike | None = None) -> bool:
        """Declare the agent's market day over: every symbol's bars of that day are completed
        up to the close (the 15:00 bars of every period, DAY, and WEEK..YEAR when the day ends
        their period) and handed to the hooks and the store.

        ``day`` (default: :attr:`market_day`) must be the agent's market day: True when the day
        was closed now; False, changing nothing, for another day (no later day is closed early,
        an earlier one is over already), before any spot, or when it is closed already.  A
        running agent does this itself on the feed's end-of-day marker and, on a live feed, by
        the wall clock (docs/agent.md, "End of the market day").  With a journal, the close is
        journaled, so :meth:`recover` closes the day again.
        """
        with self._locked():
            market = self.market_day
            wanted = market if day is None else pd.Timestamp(day).date()
            if market is None or wanted != market or self._closed_day == market:
                return False
            self._journal_day_end(market)
            self._close_market_day(market, "close_day", to_hooks=True)
            return True

    def _on_day_end(self, message: bytes | bytearray | memoryview, result: dict[str, Any], *, live: bool) -> bool:
        """A verified end-of-day marker: close its day if it is the agent's market day (under the lock)."""
        self._feed_counts["day_end_markers"] += 1
        marker_day = _epoch_day(result.get("header_market_time_ms", result["market_time_ms"]))
        market = self.market_day
        if market is None:  # no spot yet: nothing to close (an agent started after the day ended)
            log.debug("end-of-day marker before any spot", extra={"day": str(marker_day)})
            return False
        if marker_day != market:  # a later day must not be closed early, an earlier one is over
            self._feed_counts["day_end_ignored"] += 1
            allowed, suppressed = self._limiter.allow("day_end_ignored")
            if allowed:
                log.warning(
                    "ignored an end-of-day marker that is not for the agent's market day",
                    extra={"marker_day": str(marker_day), "market_day": str(market),
                           "publisher_id": result["publisher_id"], "suppressed": suppressed},
                )  # fmt: skip
            return False
        if self._closed_day == market:
            return False  # repeated by the publisher's heartbeats
        if live and self._journal is not None:
            self._journal.append(message, market)  # so that recover() closes the day too
        self._close_market_day(market, "day_end", to_hooks=live)
        return True

    def _close_by_clock(self) -> None:
        """A live feed (its last message not simulated) whose market day is over by the agent's
        own China wall clock, and that brought no spot for LIVE_CLOSE_QUIET seconds: close the
        day, even if no message comes."""
        if self._last_simulated is not False:
            return
        market = self.market_day
        if market is None or (self._closed_day is not None and self._closed_day >= market):
            return
        due = dt.datetime.combine(market, DAY_CLOSE_CUTOFF) + dt.timedelta(milliseconds=self._close_delay_ms)
        now = self._clock()
        if now < due:
            return
        last = self._last_accepted_at
        if last is not None and (now - last).total_seconds() < LIVE_CLOSE_QUIET:
            return  # spots of the day still come
        with self._locked():
            if self.market_day != market or self._closed_day == market or self._last_simulated is not False:
                return  # a message came meanwhile
            self._journal_day_end(market)
            self._close_market_day(market, "wall_clock", to_hooks=True)

    def _journal_day_end(self, day: dt.date) -> None:
        """Journal an end-of-day marker of the agent's own (unnumbered), so that :meth:`recover`
        closes the day it closed without one from the feed."""
        if self._journal is None:
            return
        newest = self._engine.newest_accepted()
        when = np.datetime64(newest, "ms").item() if newest is not None else dt.datetime.combine(day, MARKET_CLOSE)
        marker = encode_heartbeat(
            publisher_id=0,
            session_epoch=0,
            sequence=0,
            market_time=when,
            simulated_time=bool(self._last_simulated),
            day_end=True,
        )
        self._journal.append(marker, day)

    def _close_market_day(self, day: dt.date, reason: str, *, to_hooks: bool) -> None:
        """Complete every bar of ``day`` (under the lock): time moves to the day's last millisecond,
        past any closing cutoff, so every symbol of the day gets its bars filled to the close."""
        self._engine.advance_to(np.datetime64(f"{day.isoformat()}T23:59:59.999", "ms"))
        self._closed_day = day
        self._feed_counts["days_closed"] += 1
        if reason == "wall_clock":
            self._feed_counts["days_closed_by_clock"] += 1
        bars = self._take_completed(to_hooks=to_hooks)
        self._engine.reserve_next_day()  # the next day's first message then allocates nothing
        if to_hooks:
            self._emit(DayClosed(day, reason, bars))
        log.info("closed the market day", extra={"day": day.isoformat(), "reason": reason, "bars": bars})

    # -------------------------------------------------------------- journal
    def journal_path(self, day: dt.date) -> Path:
        """The journal file of one market day."""
        from hkrt.agent import recovery as agent_recovery

        return agent_recovery.journal_path(self, day)

    def recover(self, day: DatetimeLike | None = None) -> int:
        """Replay a day's journal (default: the latest in ``journal_dir``) and return how
        many messages it gave back.

        Every record goes through the same steps as a live message (verification, sequence
        and cycle tracking, aggregation, bar completion by market time) without hooks, so
        the bars, and the sequences a live feed continues, are those of an agent that never
        stopped.  A torn last record is cut off, logged and reported in
        ``stats()["journal"]["recovered"]``.  Call it on a fresh agent, before :meth:`start`
        (which calls it itself unless ``recover_on_start=False``).
        """
        from hkrt.agent import recovery as agent_recovery

        return agent_recovery.recover(self, day)

    def close_journal(self) -> None:
        """Close the journal file (fsync unless the policy is "never"); the next message reopens it."""
        if self._journal is not None:
            with self._lock:
                self._journal.close()

    def _track_cycle(self, r: dict[str, Any]) -> list[tuple[int, _Cycle]]:  # (cycle_id, cycle)
        """The publisher cycles the message ended (the C++ core tracks them: cycle_tracker.h)."""
        return [(c[1], _Cycle(*c)) for c in r.get("cycles", ())]

    def _cycle_info(self, publisher: int, cycle_id: int, cycle: _Cycle, now_ms: float) -> CycleInfo:
        sent_ms = cycle.first_send_us / 1000
        return CycleInfo(
            publisher_id=publisher,
            cycle_id=cycle_id,
            parts_expected=cycle.parts_expected,
            parts_received=cycle.parts_received,
            spots=cycle.spots,
            accepted=cycle.accepted,
            complete=cycle.complete,
            joined_mid_cycle=cycle.joined_mid_cycle,
            market_time=_local_datetime(cycle.market_time_ms) if cycle.market_time_ms else None,
            sent_at_ms=sent_ms,
            latency_ms=now_ms - sent_ms,
        )

    def _drained(self, accepted: int) -> int:
        """After an in-process call: hand the bars it completed to the hooks (when the agent
        runs) and the store, so they never pile up in the engine."""
        self._report_unplaced()
        # Only when someone consumes them: a caller collecting completed bars itself (tests,
        # tools: engine.collect_completed + take_completed) must find them all there.
        if self._engine.collect_completed and (self._store is not None or self._bars_wanted):
            with self._locked():
                self._take_completed(to_hooks=True)
            if self._store is not None and not self.running:
                self._flush_if_due()  # a running agent's flusher thread does it
        return accepted

    def _report_unplaced(self, counts: tuple[int, int] | None = None) -> None:
        """Say so when volume reached DAY but no intraday bar: traded while no spot of its symbol
        came for a minute or more (a WARNING: bars are short of it), or after hours (INFO).
        ``counts``: (gap spans, after-hours symbol-days) as a message result gives them, else
        read from the engine's stats."""
        if counts is None:
            stats = self._engine.stats()
            counts = (stats["gap_spans"], stats["after_hours"])
        spans, after_hours = counts
        seen_spans, seen_after_hours = self._unplaced_seen
        if spans == seen_spans and after_hours == seen_after_hours:
            return
        self._unplaced_seen = (spans, after_hours)
        stats = self._engine.stats()
        if spans > seen_spans:
            allowed, suppressed = self._limiter.allow("gap_volume")
            if allowed:
                log.warning(
                    "volume traded while no spot of its symbol came for a minute or more is in DAY only, in no "
                    "intraday bar (agent.gap_volume(symbol) tells how much)",
                    extra={"new_spans": spans - seen_spans, "gap_spans": spans, "symbol_days": stats["gap_volume"],
                           "suppressed": suppressed},
                )  # fmt: skip
        if after_hours > seen_after_hours:
            allowed, suppressed = self._limiter.allow("after_hours")
            if allowed:
                log.info(
                    "after-hours trading kept out of bars and DAY (agent.after_hours(symbol))",
                    extra={"symbol_days": after_hours, "suppressed": suppressed},
                )

    def _take_completed(self, *, to_hooks: bool) -> int:
        """Move the bars the engine completed to the store queue and (live only) the hooks;
        returns how many."""
        if not self._engine.collect_completed:
            return 0
        completed = self._engine.take_completed()
        if not len(completed):
            return 0
        self._feed_counts["bars_emitted"] += len(completed)
        if self._store is not None:
            self._store.add(completed)
        if to_hooks:
            self._emit("bars", completed)
        if len(completed) >= _COMPLETED_CHECK_FROM:  # only a take this large can follow a drop: check then
            self._report_completed_dropped()
        return len(completed)

    def _report_completed_dropped(self) -> None:
        """Say so, loudly, when the engine's completed-bar queue hit its bound (10 M bars nobody took)
        and dropped the oldest: those bars reached no hook and no store."""
        dropped = int(self._engine.message_stats()["completed_dropped"])
        if dropped > self._completed_dropped_seen:
            new, self._completed_dropped_seen = dropped - self._completed_dropped_seen, dropped
            log.warning(
                "completed bars dropped: the queue reached its bound before they were taken",
                extra={"dropped": new, "completed_dropped": dropped},
            )

    # ---------------------------------------------------------------- store
    @property
    def store(self) -> KDataStore | PgBarStore | None:
        """The K-data store completed bars go to, if any (a :class:`hkrt.pgstore.PgBarStore` for a database)."""
        return self._store.store if self._store is not None else None

    def flush_store(self, *, compact: bool = False) -> bool:
        """Write the queued completed bars to the store now (``compact``: also merge each
        day's files into one).  Returns False when the write failed: the failure is logged
        once per streak and counted in ``stats()["store"]``, and the bars stay queued."""
        if self._store is None:
            return True
        self._store_last_flush = time.monotonic()
        spots = self._spot_store.flush() if self._spot_store is not None else True
        return self._store.flush(compact=compact) and spots

    def _flush_if_due(self) -> None:
        if time.monotonic() - self._store_last_flush >= self._store_interval:
            self.flush_store()

    def _flush_loop(self) -> None:
        while not self._stopping.wait(min(self._store_interval, 0.5)):
            try:
                self._flush_if_due()
            except Exception:  # a bug must not kill the writer: log it and go on
                log.exception("store flush failed")

    def load_history(self, before: DatetimeLike | None = None) -> dict[str, int]:
        """Preload earlier days' bars from the store, so live bars continue them.

        Loaded (label dates before ``before``, default today in China): intraday bars of the
        last ``history_days`` trading days; DAY bars of those days and, when WEEK..YEAR are
        enabled, back to the start of the longest enabled period containing ``before`` (the
        current WEEK..YEAR bars are aggregates of their DAY bars); completed WEEK..YEAR bars
        over the same span.  Returns the bars loaded per ktype; also in
        ``stats()["store"]["history"]``.  Bars the agent already built win.
        """
        from hkrt.agent import history as agent_history

        return agent_history.load_history(self, before)

    # ------------------------------------------------------------- backfill
    def backfill(self, source: Any, until: DatetimeLike | None = None) -> dict[str, Any]:
        """Fill today's bars up to ``until`` from a source that serves history, so a late
        start has no hole and no carry-in.

        ``source``: a journal file (``hkrt spot-server --record``, another agent's journal):
        its messages are replayed as if received, so every bar of every ktype is exact and
        the live feed of the same publisher continues it (messages already replayed are
        duplicates, skipped); or an object with ``minute_bars(symbols, day, until)`` (e.g.
        :class:`hkrt.agent.history_sources.SimMinuteHistory`, a :class:`~hkrt.store.KDataStore`): its
        minute bars are turned into spots that rebuild them, and the next live spot
        continues from their cumulative totals.  Call before :meth:`start` and before any
        spot of that day (``SpotAgent(backfill=...)`` does it on start).  Backfilled messages
        go to the journal and completed bars to the store, not to the hooks.  Returns a
        report (also in ``stats()["backfill"]``).
        """
        from hkrt.agent import backfill as agent_backfill

        return agent_backfill.backfill(self, source, until)

    def repair_gaps(self, source: Any, symbols: Iterable[str] | None = None) -> dict[str, Any]:
        """Place gap volume (docs/aggregation.md §3.3) into the minutes it traded in, from a
        source of today's minute bars (``minute_bars(symbols, day, until)``, as for
        :meth:`backfill`: :class:`hkrt.agent.history_sources.SimMinuteHistory`, a KDataStore of another
        agent, a vendor's minute history).

        A span is repaired when its last minute is complete and the source's minutes, less what
        the agent's own bars already hold, add up to it exactly; its MIN bars and the coarser
        bars over them are rebuilt and reported again to ``on_bar`` (``Bar.amended``) and the
        store.  Anything else stays gap volume and is counted (``mismatched``: the source does
        not agree with the feed; ``pending``: the span's last minute is still forming).  Needs
        MIN among the agent's ktypes.  Safe to call again (a repaired span is gone).  Not
        journaled: after a restart, call it again.  Returns a report.
        """
        from hkrt.agent import backfill as agent_backfill

        return agent_backfill.repair_gaps(self, source, symbols)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """The agent's lock, with the events raised under it handed to the bus only after it is
        released: a full callback queue makes the producer wait, and a hook that calls back into
        the agent (``ingest``) needs the lock to make room."""
        with self._lock:
            self._deferred.events = []
            try:
                yield
            finally:
                events, self._deferred.events = self._deferred.events, None
        for event in events:
            self.bus.publish(event)

    def _emit(self, event: object, payload: Any = None) -> None:
        """Publish ``event`` on the bus if it runs and the event's class has a subscriber.  The
        older form ``_emit(kind, payload)`` is kept: "bars" (completed records), "cycle",
        "gap", "feed", "spots" (a list of Spot) and "columns" (decoded columns) become their
        typed events here."""
        if not self.bus.running:
            return
        if isinstance(event, str):
            event_type, make = _KIND_EVENTS[event]
            if not self.bus.wants(event_type):
                return
            event = make(payload)
        elif not self.bus.wants(type(event)):
            return
        deferred = getattr(self._deferred, "events", None)
        if deferred is not None:
            deferred.append(event)
        else:
            self.bus.publish(event)

    def _emit_spots(
        self,
        message: bytes | bytearray | memoryview,
        result: dict[str, Any],
        columns: Mapping[str, np.ndarray] | None = None,
        spots: Sequence[Spot] | None = None,
    ) -> None:
        """An accepted message's spots as one SpotBatch, decoded on the callback thread only if a
        subscriber reads them (no decoding at all without a subscriber); ``columns`` / ``spots``:
        what the engine's one decoding of the message gave (shared, not decoded again)."""
        if self.bus.running and self.bus.wants(SpotBatch):
            self._emit(SpotBatch.from_message(message, result["spots"], columns=columns, spot_objects=spots))

    def _emit_heartbeat(self, message: bytes | bytearray | memoryview, result: dict[str, Any]) -> None:
        if self.bus.running and self.bus.wants(Heartbeat):
            market_ms = result["market_time_ms"]
            self._emit(Heartbeat(result["publisher_id"], result["sequence"],
                                 _local_datetime(market_ms) if market_ms else None,
                                 bool(result["simulated_time"]), _is_day_end(message, result)))  # fmt: skip

    @property
    def symbols(self) -> list[str]:
        return self._engine.symbols()

    @property
    def ktypes(self) -> tuple[KType, ...]:
        return tuple(KType(k) for k in self._engine.enabled_ktypes())

    @property
    def calendar(self) -> TradingCalendar:
        return self._calendar


# the older string kinds of _emit: the event class each becomes, and how
_KIND_EVENTS: dict[str, tuple[type, Callable[[Any], object]]] = {
    "bars": (BarBatch, BarBatch),
    "cycle": (CycleEnded, CycleEnded),
    "gap": (FeedGap, FeedGap),
    "feed": (FeedStatus, FeedStatus),
    "spots": (SpotBatch, SpotBatch.from_spots),
    "columns": (SpotBatch, SpotBatch.from_columns),
}
_COMPLETED_CHECK_FROM = 1_000_000  # a take of fewer bars cannot follow the queue's 10 M bound being hit
_COLUMN_ARGS = ("symbol", "datetime", "close", "volume", "amount", "open", "high", "low")
# Spot fields a column mapping may carry that bars do not need (the book, names ...).
_UNUSED_SPOT_COLUMNS = {"name", "yesterday_close", "bid", "bid_volume", "ask", "ask_volume"}
_NO_JOURNAL: dict[str, Any] = {"path": None, "appended": 0, "write_errors": 0, "last_error": None,
                               "failing": False, "recovered": None, "corrupt_files": 0, "salvaged": []}  # fmt: skip


def _local(epoch_ms: int) -> np.datetime64:
    """UTC epoch milliseconds as China local time (what the engine works in)."""
    return np.datetime64(utc_ms_to_local_ms(epoch_ms), "ms")


def _local_datetime(epoch_ms: int) -> dt.datetime:
    return utc_ms_to_local_datetime(epoch_ms)  # datetime arithmetic: several times cheaper than numpy's item()


def _epoch_day(epoch_ms: int) -> dt.date | None:
    """The China local day of a header's market time; None when unknown (0) or not a sane time."""
    local = market_time(epoch_ms)
    return None if local is None else local.date()


def _is_day_end(message: bytes | bytearray | memoryview, result: dict[str, Any]) -> bool:
    """Whether a verified heartbeat is an end-of-day marker (the engine's result may not say;
    the header then is read again: a heartbeat is a few dozen bytes)."""
    flag = result.get("day_end")
    return bool(flag) if flag is not None else decode_header(message).day_end


_china_now = china_now  # the agent's own clock seam (tests replace the attribute ``_clock``)


_GLOBAL_AGENT: SpotAgent | None = None
_GLOBAL_LOCK = threading.Lock()
_cycle_log = logging.getLogger("hkrt.agent.spot_agent.cycles")
_START_FORMS = "start_spot_agent(print=False, worker_num=None, addr=None) (hikyuu) or start_spot_agent(address) (hkrt)"


def start_spot_agent(
    *args: Any,
    print: bool = False,
    worker_num: int | None = None,
    addr: str | None = None,
    address: str | None = None,
    tcp: bool | int | str | None = None,
    **options: Any,
) -> SpotAgent:
    """Start the process-wide agent and return it (hikyuu returned nothing).

    Takes hikyuu's arguments, by position or by name, and hkrt's:

    - ``print``: log each received publisher cycle at INFO on the ``hkrt.agent.spot_agent.cycles`` logger
      (nothing is written to stdout; ``hkrt.core.logs.configure_logging("INFO")`` shows the lines on
      stderr, and a WARNING says so when INFO is not enabled);
    - ``worker_num``: the agent's ``shards``, engines that aggregate disjoint sets of symbols in
      parallel (hikyuu's worker threads; one symbol's spots always stay in order here);
    - ``addr`` (hikyuu) or ``address`` (hkrt): the spot server to dial, "" or None for this
      user's default ipc address; ``tcp`` dials TCP instead;
    - ``options``: any other :class:`SpotAgent` argument (``ktypes``, ``store``, ...).

    A first positional argument that is a bool is hikyuu's ``print`` (then ``worker_num``,
    ``addr``); a str is hkrt's ``address``.  Starting while the agent runs is a RuntimeError.
    """
    if args and isinstance(args[0], bool):  # hikyuu: (print, worker_num, addr)
        if len(args) > 3:
            raise TypeError(f"too many positional arguments ({len(args)}); {_START_FORMS}")
        given = dict(zip(("print", "worker_num", "addr"), args, strict=False))
        twice = [k for k in given if {"print": print, "worker_num": worker_num, "addr": addr}[k] not in (None, False)]
        if twice:
            raise TypeError(f"{', '.join(twice)} given both by position and by keyword")
        print, worker_num, addr = given["print"], given.get("worker_num"), given.get("addr")
    elif args:
        if len(args) > 1 or not (args[0] is None or isinstance(args[0], str)):
            raise TypeError(f"unexpected positional arguments {args!r}; {_START_FORMS}")
        if address is not None:
            raise TypeError("address given both by position and by keyword")
        address = args[0]
    if not isinstance(print, bool):
        raise TypeError(f"print must be True or False, not {print!r}")
    if addr and address and addr != address:
        raise ValueError(f"two addresses: addr={addr!r} and address={address!r}; give one")
    address = addr or address or None
    if worker_num is not None:
        if isinstance(worker_num, bool) or not isinstance(worker_num, int) or worker_num < 1:
            raise ValueError(f"worker_num must be a whole number >= 1, not {worker_num!r}")
        if options.get("shards", worker_num) != worker_num:
            raise ValueError(f"worker_num={worker_num} and shards={options['shards']} disagree; give one")
        options["shards"] = worker_num
    global _GLOBAL_AGENT
    with _GLOBAL_LOCK:
        if _GLOBAL_AGENT is not None and _GLOBAL_AGENT.running:
            raise RuntimeError("the spot agent is already running; stop_spot_agent() first")
        agent = SpotAgent(**options)
        if print:
            agent.on_cycle(_log_cycle)
            if not _cycle_log.isEnabledFor(logging.INFO):
                log.warning(
                    "print=True logs each cycle at INFO on 'hkrt.agent.spot_agent.cycles', which is not enabled: "
                    "call hkrt.core.logs.configure_logging('INFO') to see the lines"
                )
        _GLOBAL_AGENT = agent.start(address, tcp=tcp)
        return _GLOBAL_AGENT


def _log_cycle(info: CycleInfo) -> None:
    """``print=True``: one INFO line per publisher cycle, on the callback thread."""
    _cycle_log.info(
        "spot cycle received",
        extra={
            "publisher_id": info.publisher_id,
            "cycle_id": info.cycle_id,
            "spots": info.spots,
            "accepted": info.accepted,
            "parts": f"{info.parts_received}/{info.parts_expected}",
            "complete": info.complete,
            "market_time": info.market_time,
            "latency_ms": round(info.latency_ms, 3),
        },
    )


def stop_spot_agent() -> None:
    """Stop the process-wide agent, if one runs (it stays readable through get_spot_agent())."""
    with _GLOBAL_LOCK:
        if _GLOBAL_AGENT is not None:
            _GLOBAL_AGENT.stop()


def release_spot_agent() -> None:
    """Stop the process-wide agent and drop it, with its bars (hikyuu's releaseGlobalSpotAgent)."""
    global _GLOBAL_AGENT
    with _GLOBAL_LOCK:
        if _GLOBAL_AGENT is not None:
            _GLOBAL_AGENT.stop()
        _GLOBAL_AGENT = None


def get_spot_agent() -> SpotAgent | None:
    """The process-wide agent of start_spot_agent(), if any."""
    return _GLOBAL_AGENT


def spot_agent_is_running() -> bool:
    """Whether the process-wide agent of start_spot_agent() is running (hikyuu's spotAgentIsRunning)."""
    agent = _GLOBAL_AGENT
    return agent is not None and agent.running


def spot_agent_is_connected(within: float | None = None) -> bool:
    """Whether the process-wide agent hears a spot server now (hikyuu's spotAgentIsConnected).

    True when it runs, at least one publisher is connected to its socket, and a verified message
    (data or heartbeat: an idle publisher sends one a second) arrived within ``within`` seconds
    (default: the agent's ``silence_after``, 5 s unless set).  A connected publisher that has sent
    nothing for that long, or whose messages all fail verification (a wrong feed key, another
    wire format), is not connected in this sense.
    """
    agent = _GLOBAL_AGENT
    if agent is None or not agent.running:
        return False
    limit = within if within is not None else float(getattr(agent, "_silence_after", 5.0))
    transport = agent.stats()["transport"]
    age = transport["last_message_age_s"]
    return transport["connected"] > 0 and age is not None and age < limit
