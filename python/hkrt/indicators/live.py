"""Live indicators: one indicator of one symbol and period carried bar by bar as bars close, equal
to the batch indicator over the same bars (docs/indicators.md, "Live indicators").

``LiveIndicator`` wraps a TA-Lib stream handle (``talib.stream.<NAME>``: O(1) per closed bar,
bit-identical to TA-Lib's function over the same bars) or a variant's stream
(:mod:`hkrt.indicators.variants`):

- **Warm-up**: ``warm_up(history)`` opens the handle on a bars DataFrame with ``open_and_fill``,
  so the value after it is the batch value on the history's last bar.  History too short to open
  on is kept, bar by bar, until it is long enough; until then the value is what the batch gives
  over the bars kept (NaN, or 0 for TA-Lib's integer outputs).
- ``update(bar)`` on each closed bar; ``peek(bar)`` the value if ``bar`` closed now, changing
  nothing; ``value``: a float for a one-output indicator, else a dict keyed by the output names
  ``hkrt.indicator`` uses.

``LiveIndicators`` is the set a strategy keeps, a bus component: ``attach(bus)`` subscribes
``BarBatch`` (taken whole, ``on_batch``) and ``BarClosed`` published alone (``on_bar``) for its
symbols and periods, each indicator is created (and warmed up from the ``history(symbol, ktype)``
provider, the agent's K-data with its preloaded and stored bars) the first time it is asked for,
and each bar is routed to the indicators of its symbol and period:

- a bar later than an indicator's last bar advances it;
- the same bar again (same label, same values) is a duplicate and is ignored;
- an **amended** bar (``Bar.amended``: a late spot changed a completed bar), or any other bar not
  after the last one (a changed bar under an old label, a bar out of order), rebuilds the
  indicators of that symbol and period from the history: the agent's bars are the truth, and an
  indicator never keeps a state the bars no longer give;
- a bar that is not finite is refused and counted (``stats["rejected_bars"]``, a WARNING), the
  indicator unchanged.

The live case (a bar finite, not amended, after the last bar of every indicator of its symbol and
period) is the one a whole market takes every minute, so it is the fast one: a ``_Track`` per symbol
and period updates only the TA-Lib handles, in one loop over a batch's bars read once as columns,
and keeps the bar's label and values once for all its indicators; each indicator takes them (and
its handle's value) when it is read.  Any other bar takes the per-bar path above.

Warm-up follows the event order, so a replay gives the values a live run gave: an indicator
created while bars are delivered is warmed up on the history up to the last bar of its symbol
and period delivered so far (the agent may hold later bars, not yet delivered); before any,
on the bars the ``clock`` says have closed (intraday: labelled before the clock; DAY and longer:
of days before the clock's).  Bound: ``max_indicators`` (default 50,000); one more is an
:class:`IndicatorError` saying so.  Everything runs on the bus's callback thread: call the
set's methods from callbacks.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from itertools import repeat
from operator import attrgetter, itemgetter
from typing import Any

import numpy as np
import pandas as pd

from hkrt.bus import Bar, BarBatch, BarClosed, EventBus, MarketFilter, Subscription
from hkrt.bus.filters import KTYPES
from hkrt.core.ktype import KType
from hkrt.core.logs import log_limited
from hkrt.indicators.batch import bar_arrays, check_values, compute, resolve
from hkrt.indicators.spec import IndicatorError, IndicatorSpec, talib_lookback, talib_module
from hkrt.indicators.variants import VARIANTS

log = logging.getLogger("hkrt.indicators")

DEFAULT_MAX_INDICATORS = 50_000
ROW_COLUMNS = Bar._fields[1:7]  # open, high, low, close, volume, amount: a bar's values as the fast path reads them
Value = float | dict[str, float]
HistoryProvider = Callable[[str, KType], pd.DataFrame]


class LiveIndicator:
    """One indicator carried bar by bar: ``LiveIndicator("SMA", history, timeperiod=20)``.

    ``name`` and ``params`` as :func:`hkrt.indicator` takes them (checked the same way: a bad one
    is an :class:`IndicatorError` now, not at the first bar).  ``history``: bars to warm up on
    (a DataFrame as ``agent.kdata`` gives; omitted: start empty).  ``symbol``/``ktype`` only
    label it.  A bar passed to ``update``/``peek`` is an ``hkrt.Bar`` (or any object with the
    columns as attributes) or a mapping of column -> value (a dict, a DataFrame row).
    """

    __slots__ = (
        "_bars",
        "_column",
        "_handle",
        "_last_bar",
        "_last_label",
        "_lookback",
        "_pending",
        "_pick",
        "_raw",
        "_read_attrs",
        "_read_items",
        "_seen",
        "_single",
        "_track",
        "_update",
        "_variant",
        "inputs",
        "ktype",
        "spec",
        "symbol",
    )

    def __init__(
        self,
        name: str,
        history: pd.DataFrame | None = None,
        *,
        symbol: str = "",
        ktype: KType | str | None = None,
        **params: Any,
    ) -> None:
        self.spec: IndicatorSpec = resolve(name, params)
        check_values(self.spec)  # TA-Lib's check of the values, now rather than at the first bar
        self.symbol = symbol
        self.ktype = None if ktype is None else KType.parse(ktype)
        self._variant = VARIANTS.get(self.spec.name)
        self._lookback = (
            self._variant.lookback(dict(self.spec.params))
            if self._variant is not None
            else talib_lookback(self.spec.name, self.spec.given)
        )
        self._single = len(self.spec.outputs) == 1
        self.inputs = inputs = self.spec.inputs  # the bar columns it reads, in its arguments' order
        self._read_attrs = attrgetter(*inputs) if len(inputs) > 1 else _one(attrgetter(inputs[0]))
        self._read_items = itemgetter(*inputs) if len(inputs) > 1 else _one(itemgetter(inputs[0]))
        # where a batch row (ROW_COLUMNS' values) holds the inputs: one column's index, -1 for several
        # (read with ``_pick``), -2 when one is not a row column (its bars take ``on_bar``'s path)
        columns = [ROW_COLUMNS.index(c) if c in ROW_COLUMNS else -2 for c in inputs]
        self._column = -2 if -2 in columns else columns[0] if len(columns) == 1 else -1
        self._pick: Callable[[Sequence[float]], tuple[float, ...]] = (
            itemgetter(*columns) if len(columns) > 1 else _one(itemgetter(columns[0]))
        )
        self._handle: Any = None  # the stream handle, once the history was long enough to open on
        self._update: Callable[..., Any] | None = None  # its bound ``update``
        # the set's record of its symbol and period: while its indicators advance together on the batch
        # path, the track holds their last bar (label, row, steps taken) and each indicator settles
        # its own from it when read (``_settle``); told of any other change (``_Track.release``)
        self._track: _Track | None = None
        self._seen = 0  # the track's steps already counted in ``_bars``
        self._pending: list[list[float]] = [[] for _ in inputs]  # bars kept until then
        self._raw: Any = self._empty()  # the handle's last answer: a float, or a tuple of them
        self._last_label: Any = None
        self._last_bar: tuple[float, ...] | None = None
        self._bars = 0
        if history is not None:
            self.warm_up(history)

    # ------------------------------------------------------------- reading
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def outputs(self) -> tuple[str, ...]:
        return self.spec.outputs

    @property
    def last_label(self) -> Any:
        """The label (datetime) of the last bar fed."""
        if self._track is not None:
            self._settle(self._track)
        return self._last_label

    @property
    def last_bar(self) -> tuple[float, ...] | None:
        """The last bar's input values (``spec.inputs``): a duplicate is told by them."""
        if self._track is not None:
            self._settle(self._track)
        return self._last_bar

    @property
    def bars(self) -> int:
        """Bars fed, history included."""
        if self._track is not None:
            self._settle(self._track)
        return self._bars

    def _settle(self, track: _Track) -> None:
        """Take the bars the track fed this indicator's handle since it last looked: the value is
        the handle's (``value``: its last answer), the last bar the track's."""
        steps = track.steps
        if steps != self._seen:
            self._raw = self._handle.value
            self._bars += steps - self._seen
            self._last_label = track.label
            self._last_bar = self._pick(track.row)
            self._seen = steps

    @property
    def ready(self) -> bool:
        """Whether the history was long enough to open the stream on (values may be NaN before)."""
        return self._handle is not None

    @property
    def value(self) -> Value:
        """The value on the last bar fed: a float, or a dict keyed by the output names."""
        if self._track is not None:
            self._settle(self._track)
        return self._as_value(self._raw)

    def _as_value(self, raw: Any) -> Value:
        if self._single:
            return float(raw)
        return {name: float(v) for name, v in zip(self.spec.outputs, raw, strict=True)}

    # ------------------------------------------------------------- feeding
    def warm_up(self, history: pd.DataFrame) -> None:
        """Start again from ``history`` (a bars DataFrame): the value is then the batch value on
        its last bar.  Used on creation and to rebuild after an amended bar."""
        if not isinstance(history, pd.DataFrame):
            raise IndicatorError(f"history must be a bars DataFrame (agent.kdata(...)), got {type(history).__name__}")
        arrays = bar_arrays(self.spec, history)
        if self._track is not None:
            self._track.release()
        self._start(arrays)
        self._bars = len(history)
        self._last_label = history.index[-1] if len(history) else None
        self._last_bar = tuple(float(a[-1]) for a in arrays) if len(history) else None

    def update(self, bar: Any, label: Any = None) -> Value:
        """Feed one closed bar and return the new value.  ``label``: the bar's datetime (default:
        ``bar.datetime`` when it has one).  A bar that is not finite is an IndicatorError and
        changes nothing."""
        self.feed(bar, label)
        return self._as_value(self._raw)

    def feed(self, bar: Any, label: Any = None) -> None:
        """``update`` without building the value."""
        self.feed_values(self.read(bar), label if label is not None else getattr(bar, "datetime", None))

    def feed_values(self, values: tuple[float, ...], label: Any) -> None:
        """Feed one closed bar given as its input values (``read(bar)``): what the set calls, reading a
        bar once for all the indicators of its symbol and period that read the same columns."""
        if self._track is not None:
            self._track.release()
        if self._update is not None:
            self._raw = self._update(*values)
        else:
            for column, v in zip(self._pending, values, strict=True):
                column.append(v)
            self._start([np.array(c) for c in self._pending])
        self._bars += 1
        self._last_label = label
        self._last_bar = values

    def peek(self, bar: Any) -> Value:
        """The value if ``bar`` (the forming one) closed now; nothing changes."""
        values = self.read(bar)
        if self._handle is not None:
            return self._as_value(self._handle.peek(*values))
        return self._as_value(self._batch_last([[*c, v] for c, v in zip(self._pending, values, strict=True)]))

    def peek_bars(self, bars: Sequence[Any]) -> Value:
        """The value if ``bars`` (the bars after the last one fed, the forming one last) closed
        now; nothing changes.  No bars: the current value."""
        if not bars:
            return self.value
        if len(bars) == 1:
            return self.peek(bars[0])
        rows = [self.read(b) for b in bars]
        if self._handle is not None:
            twin = self._handle.copy()
            for row in rows[:-1]:
                twin.update(*row)
            return self._as_value(twin.peek(*rows[-1]))
        columns = [[*c, *(row[i] for row in rows)] for i, c in enumerate(self._pending)]
        return self._as_value(self._batch_last(columns))

    def same_bar(self, bar: Any) -> bool:
        """Whether ``bar`` holds the values of the last bar fed (a duplicate delivery)."""
        try:
            return self.last_bar is not None and self.read(bar) == self.last_bar
        except IndicatorError:
            return False

    def read(self, bar: Any) -> tuple[float, ...]:
        """The bar's values of the columns the indicator reads (``spec.inputs``), checked finite."""
        try:
            if type(bar) is Bar or not isinstance(bar, (Mapping, pd.Series)):
                raw = self._read_attrs(bar)
            else:
                raw = self._read_items(bar)
        except (AttributeError, KeyError):
            raise IndicatorError(
                f"{self.spec.name} reads the bar's {', '.join(self.spec.inputs)}; {type(bar).__name__} lacks one"
            ) from None
        values = tuple(map(float, raw))
        if not all(map(math.isfinite, values)):
            shown = ", ".join(f"{c}={v}" for c, v in zip(self.spec.inputs, values, strict=True))
            raise IndicatorError(f"{self.spec.describe()}: a bar that is not finite is not fed ({shown})")
        return values

    # ------------------------------------------------------------ internal
    def _open(self, arrays: Sequence[np.ndarray]) -> tuple[Any, tuple[np.ndarray, ...]]:
        if self._variant is not None:
            return self._variant.open(arrays, dict(self.spec.params))
        handle, outputs = getattr(talib_module().stream, self.spec.name).open_and_fill(*arrays, **dict(self.spec.given))
        return handle, outputs if isinstance(outputs, tuple) else (outputs,)

    def _start(self, arrays: Sequence[np.ndarray]) -> None:
        """Open on ``arrays``; too few bars: keep them, and take the batch's value over them.

        A history shorter than the look-back + 1 is not offered to TA-Lib: its ``OpenAndFill`` then
        answers now "insufficient history", now (rarely, at random: seen with ROC, MAMA, MINUS_DI,
        VORTEX in ta-lib 0.8.1) "bad parameter".  A refusal past that length is asked again once."""
        if _history_length(arrays) <= self._lookback:
            self._keep(arrays)
            return
        insufficient = talib_module().InsufficientHistory
        try:
            try:
                handle, outputs = self._open(arrays)
            except insufficient:
                raise
            except Exception:  # the parameters passed TA-Lib's check at creation: ask once more
                handle, outputs = self._open([np.array(a) for a in arrays])
        except insufficient:  # a seeding that wants more bars than the look-back
            self._keep(arrays)
            return
        except Exception as e:
            raise IndicatorError(f"{self.spec.describe()}: {e}") from None
        self._handle, self._update = handle, handle.update
        self._pending = [[] for _ in self.spec.inputs]
        self._raw = self._last(outputs) if len(arrays[0]) else self._empty()

    def _keep(self, arrays: Sequence[np.ndarray]) -> None:
        """Not open yet: keep the bars, and take the batch's value over them."""
        self._handle, self._update = None, None
        self._pending = [a.tolist() for a in arrays]
        self._raw = self._batch_last(self._pending)

    def _batch_last(self, columns: Sequence[Sequence[float]]) -> Any:
        if not len(columns[0]):
            return self._empty()
        return self._last(compute(self.spec, [np.asarray(c, dtype=np.float64) for c in columns]))

    def _last(self, outputs: Sequence[np.ndarray]) -> Any:
        last = tuple(o[-1].item() for o in outputs)
        return last[0] if self._single else last

    def _empty(self) -> Any:
        return math.nan if self._single else (math.nan,) * len(self.spec.outputs)

    def __repr__(self) -> str:
        where = f"{self.symbol} {self.ktype.value} " if self.ktype is not None else ""
        return f"LiveIndicator({where}{self.spec.describe()}, bars={self.bars}, value={self.value})"


def _history_length(arrays: Sequence[np.ndarray]) -> int:
    """Bars of history as TA-Lib counts them: leading bars NaN in any input are not history."""
    if not len(arrays) or not len(arrays[0]):
        return 0
    valid = np.flatnonzero(~np.logical_or.reduce([np.isnan(a) for a in arrays]))
    return len(arrays[0]) - int(valid[0]) if len(valid) else 0


def _bar(record: Any, label: dt.datetime) -> Bar:
    """A BarBatch record as an ``hkrt.Bar``."""
    o, h, lo, c, v, a = (float(record[c]) for c in ROW_COLUMNS)
    return Bar(label, o, h, lo, c, v, a, bool(record["filled"]), bool(record["amended"]))


class _Track:
    """The live indicators of one symbol and period in a set (the list ``_by_pair`` holds too),
    and ``label``: the bar label all of them last took together on the batch path, so the next
    bar's order is checked once for them all; None when unknown (an indicator was added, fed or
    warmed up some other way: each tells its track)."""

    __slots__ = ("indicators", "label", "plan", "row", "steps")

    def __init__(self, indicators: list[LiveIndicator]) -> None:
        self.indicators = indicators
        self.label: Any = None
        self.plan: tuple[tuple[Any, int, Callable[[Sequence[float]], tuple[float, ...]]], ...] = ()
        self.row: Sequence[float] = ()  # the last bar's ROW_COLUMNS values, while ``label`` is set
        self.steps = 0  # bars taken together on the batch path, ever

    def advanced_by(self, label: Any) -> bool:
        """Whether a bar labelled ``label`` advances every indicator (the batch path takes it):
        each is open, reads only bar columns and took no bar at or after it.  If so, ``plan``:
        each one's (handle, column, pick), what the batch path feeds."""
        for indicator in self.indicators:
            last = indicator.last_label
            if indicator._handle is None or indicator._column == -2 or (last is not None and not label > last):
                return False
        self.plan = tuple((i._handle, i._column, i._pick) for i in self.indicators)
        return True

    def take(self, label: Any, row: Sequence[float]) -> int:
        """Feed a bar (``row``: its ROW_COLUMNS values, finite; not amended) if it advances every
        indicator: the live case, where only the handles are touched.  The number fed, 0 if not."""
        synced = self.label
        if not (label > synced if synced is not None else self.advanced_by(label)):
            return 0
        for handle, column, pick in self.plan:
            if column >= 0:
                handle.update(row[column])
            else:
                handle.update(*pick(row))
        self.label, self.row = label, row
        self.steps += 1
        return len(self.plan)

    def release(self) -> None:
        """Before an indicator changes some other way: each settles its last bar, and the next
        batch checks them one by one again."""
        if self.label is not None:
            for indicator in self.indicators:
                indicator._settle(self)
            self.label = None


class _SingleBars(MarketFilter):
    """``filter``'s symbols and periods for single ``BarClosed`` events, and no row of a batch:
    the set takes a ``BarBatch`` whole (``on_batch``), so the bus must not split it into events
    for its ``BarClosed`` subscription too."""

    __slots__ = ()

    def __init__(self, market_filter: MarketFilter) -> None:
        super().__init__(market_filter.symbols, market_filter.ktypes)

    def rows(self, symbols: np.ndarray, ktypes: np.ndarray | None = None) -> np.ndarray:
        return np.empty(0, dtype=np.intp)


def _one(getter: Callable[[Any], Any]) -> Callable[[Any], tuple[Any, ...]]:
    """A getter of one field that answers a 1-tuple, as the getters of several fields answer tuples."""
    return lambda bar: (getter(bar),)


class LiveIndicators:
    """The live indicators of a strategy (or any host), kept current from the bus's bars.

    Args:
        history: ``history(symbol, ktype) -> DataFrame``: the bars to warm an indicator up on
            (``agent.kdata``: preloaded and stored bars, then the day's).  Its last row may be a
            forming bar: only the bars closed in the event order are used (see the module).
        symbols / ktypes: the bars followed (None: all).  An indicator outside them is refused.
        clock: the market time in the event order (``Strategy.now``), for a warm-up before any
            bar of its symbol and period was delivered.  None: every history bar counts as closed.
        max_indicators: how many live indicators the set holds at most.
    """

    def __init__(
        self,
        history: HistoryProvider,
        *,
        symbols: Iterable[str] | None = None,
        ktypes: Iterable[KType | str] | None = None,
        clock: Callable[[], dt.datetime | None] | None = None,
        max_indicators: int = DEFAULT_MAX_INDICATORS,
    ) -> None:
        if max_indicators < 1:
            raise ValueError(f"max_indicators must be at least 1, got {max_indicators}")
        self._history = history
        self.filter = MarketFilter(symbols, ktypes)
        self._clock = clock
        self.max_indicators = max_indicators
        self._by_pair: dict[tuple[str, KType], list[LiveIndicator]] = {}
        # by period, then symbol as a batch record spells it (b"SH600000": not decoded a bar):
        self._by_symbol: dict[KType, dict[bytes, _Track]] = {}  # the indicators' tracks
        self._by_key: dict[tuple[Hashable, ...], LiveIndicator] = {}  # (symbol, ktype, name, params)
        self._asked: dict[tuple[Hashable, ...], LiveIndicator] = {}  # the caller's spelling -> the same
        self._delivered: dict[KType, dict[bytes, Any]] = {}  # the last bar label delivered
        self._latest: dict[KType, Any] = {}  # the latest of them: a batch labelled after it sets them all at once
        self._needed: set[int] = set()  # the ROW_COLUMNS (indices) some indicator reads: a batch reads only those
        self.bus: EventBus | None = None
        self._subscriptions: list[Subscription] = []
        self.stats = {"updates": 0, "duplicates": 0, "amended": 0, "out_of_order": 0, "rebuilds": 0,
                      "rejected_bars": 0}  # fmt: skip

    # ------------------------------------------------------------ the bus
    def attach(self, bus: EventBus) -> None:
        """Subscribe to ``bus``'s bars (leaving the bus attached to before): a ``BarBatch`` whole,
        to ``on_batch``, a ``BarClosed`` published alone to ``on_bar``.  Attach before the handlers
        that read the indicators, so theirs see a bar after it is counted."""
        if bus is self.bus:
            return
        self.detach()
        self.bus = bus
        self._subscriptions = [
            bus.subscribe(BarBatch, self.on_batch, filter=self.filter, name="LiveIndicators"),
            bus.subscribe(BarClosed, self.on_bar, filter=_SingleBars(self.filter), name="LiveIndicators"),
        ]

    def detach(self) -> None:
        if self.bus is not None:
            for subscription in self._subscriptions:
                self.bus.unsubscribe(subscription)
        self.bus, self._subscriptions = None, []

    # ----------------------------------------------------------- the set
    def __len__(self) -> int:
        return len(self._by_key)

    def __iter__(self) -> Any:
        return iter(list(self._by_key.values()))

    def get(self, symbol: str, ktype: KType | str, name: str, **params: Any) -> LiveIndicator:
        """The live indicator ``name(**params)`` of ``symbol`` and ``ktype``, created and warmed up
        the first time it is asked for."""
        asked = (symbol, ktype, name, *params.items())
        try:
            return self._asked[asked]
        except (KeyError, TypeError):  # new, or a parameter that cannot be a key (refused below)
            pass
        spec = resolve(name, params)
        pair = self._pair(symbol, ktype)
        key = (*pair, spec.name, spec.params)
        indicator = self._by_key.get(key)
        if indicator is None:
            check_values(spec)
            if len(self._by_key) >= self.max_indicators:
                raise IndicatorError(
                    f"live indicators: {self.max_indicators} already, the limit"
                    " (LiveIndicators(max_indicators=...)); remove some with remove(...)"
                )
            indicator = LiveIndicator(name, self._closed_history(pair), symbol=pair[0], ktype=pair[1], **params)
            self._needed.update(ROW_COLUMNS.index(c) for c in spec.inputs if c in ROW_COLUMNS)
            self._by_key[key] = indicator
            tracks = self._by_symbol.setdefault(pair[1], {})
            track = tracks.get(pair[0].encode())
            if track is None:
                track = tracks[pair[0].encode()] = _Track(self._by_pair.setdefault(pair, []))
            track.release()  # the others settle: the new one is not known to be in step with them
            track.indicators.append(indicator)
            indicator._track, indicator._seen = track, track.steps
        if len(self._asked) >= 4 * self.max_indicators:  # spellings are bounded with the set
            self._asked.clear()
        with contextlib.suppress(TypeError):  # a spelling that cannot be a key is simply not remembered
            self._asked[asked] = indicator
        return indicator

    def value(self, symbol: str, ktype: KType | str, name: str, *, forming: bool = False, **params: Any) -> Value:
        """The latest value of ``name(**params)`` on ``symbol``'s ``ktype`` bars: on the last
        closed bar, or with ``forming=True`` as if the history's bars after it (the forming one
        last) closed now."""
        indicator = self.get(symbol, ktype, name, **params)
        if not forming:
            return indicator.value
        frame = self._history(indicator.symbol, indicator.ktype) if indicator.ktype is not None else None
        if frame is None or not len(frame):
            return indicator.value
        after = frame if indicator.last_label is None else frame[frame.index > indicator.last_label]
        return indicator.peek_bars([row for _, row in after.iterrows()])

    def remove(self, symbol: str, ktype: KType | str, name: str, **params: Any) -> bool:
        """Forget one live indicator; False if there was none."""
        spec = resolve(name, params)
        pair = self._pair(symbol, ktype)
        indicator = self._by_key.pop((*pair, spec.name, spec.params), None)
        if indicator is None:
            return False
        self._by_symbol[pair[1]][pair[0].encode()].release()
        self._by_pair[pair].remove(indicator)
        indicator._track = None
        if not self._by_pair[pair]:
            del self._by_pair[pair]
            del self._by_symbol[pair[1]][pair[0].encode()]
        self._asked.clear()
        return True

    # ------------------------------------------------------------ bars in
    def on_bar(self, event: BarClosed) -> None:
        """One closed bar (the bus calls this): advance, ignore or rebuild its indicators."""
        pair = (event.symbol, event.ktype)
        bar = event.bar
        label = bar.datetime
        delivered = self._delivered.get(pair[1])
        if delivered is None:
            delivered = self._delivered[pair[1]] = {}
        symbol = pair[0].encode()
        last_delivered = delivered.get(symbol)
        if last_delivered is None or label > last_delivered:
            delivered[symbol] = label
            latest = self._latest.get(pair[1])
            if latest is None or label > latest:
                self._latest[pair[1]] = label
        indicators = self._by_pair.get(pair)
        if not indicators:
            return
        if bar.amended:
            self.stats["amended"] += 1
            self._rebuild(pair, indicators, "amended bar")
            return
        if type(bar) is Bar:  # the live case first, as on_batch takes it
            row = tuple(map(float, bar[1:7]))
            fed = all(map(math.isfinite, row)) and self._by_symbol[pair[1]][symbol].take(label, row)
            if fed:
                self.stats["updates"] += fed
                return
        stale: list[LiveIndicator] = []
        read: dict[tuple[str, ...], tuple[float, ...]] = {}  # the bar's values, by the columns read
        updates = 0
        for indicator in indicators:
            last = indicator.last_label
            if last is None or label > last:
                inputs = indicator.inputs
                values = read.get(inputs)
                if values is None:
                    try:
                        values = read[inputs] = indicator.read(bar)
                    except IndicatorError as e:
                        self.stats["rejected_bars"] += 1
                        log_limited(log, logging.WARNING, ("rejected", pair), f"live indicator: bar refused: {e}",
                                    {"symbol": pair[0], "ktype": pair[1].value, "label": str(label)})  # fmt: skip
                        continue
                indicator.feed_values(values, label)
                updates += 1
            elif label == last and indicator.same_bar(bar):
                self.stats["duplicates"] += 1
            else:
                stale.append(indicator)
        self.stats["updates"] += updates
        if stale:
            self.stats["out_of_order"] += 1
            log_limited(log, logging.WARNING, ("out_of_order", pair),
                        "live indicator: a bar not after the last one, and not the same: rebuilt from the history",
                        {"symbol": pair[0], "ktype": pair[1].value, "label": str(label),
                         "last": str(stale[0].last_label)})  # fmt: skip
            self._rebuild(pair, stale, "bar out of order")

    def on_batch(self, batch: BarBatch) -> None:
        """The bars completed together (the bus calls this with a ``BarBatch``): each as ``on_bar``
        would take it, in the batch's order, without building an event a bar.

        The bar columns are read once for the batch.  A bar that is finite in all of
        ``ROW_COLUMNS``, not amended, and later than the last bar of each of its indicators (the
        live case) advances them in one tight loop; any other (amended, not finite, a duplicate,
        out of order, an indicator reading another column) goes to ``on_bar``, one by one."""
        records = batch.records
        if not len(records):
            return
        codes = records["ktype"]
        periods = np.unique(codes).tolist()
        for code in periods:  # mostly one: a batch is the bars one message or clock tick completed
            self._on_rows(KTYPES[code], records if len(periods) == 1 else records[codes == code])

    def _on_rows(self, ktype: KType, records: np.ndarray) -> None:
        """``on_batch`` for the rows of one period."""
        delivered = self._delivered.get(ktype)
        if delivered is None:
            delivered = self._delivered[ktype] = {}
        tracks = self._by_symbol.get(ktype, {})
        size = len(records)
        symbols = records["symbol"].tolist()  # bytes, as the tracks are keyed
        stamps, where = np.unique(records["datetime"].astype("datetime64[ms]"), return_inverse=True)
        times = stamps.tolist()  # datetimes, each made once (a batch holds one or a few labels)
        latest = self._latest.get(ktype)
        each = not (len(times) == 1 and (latest is None or times[0] > latest))  # a bar's delivery set in the loop
        if not each:  # the live case: one label, after every one delivered so far
            labels: Iterable[Any] = repeat(times[0], size)
            delivered.update(dict.fromkeys(symbols, times[0]))
            self._latest[ktype] = times[0]
        else:
            labels = [times[i] for i in where.tolist()]
            if latest is None or times[-1] > latest:
                self._latest[ktype] = times[-1]
        # the columns read, as Python floats (None in the others: no indicator reads them)
        needed = sorted(self._needed)
        columns = [records[c].tolist() if k in needed else repeat(None, size) for k, c in enumerate(ROW_COLUMNS)]
        finite = [np.isfinite(records[ROW_COLUMNS[k]]) for k in needed]
        plain = (np.logical_and.reduce(finite) if finite else np.ones(size, bool)) & ~records["amended"]
        rows = zip(*columns, strict=True)
        updates = 0
        for i, (symbol, label, simple, row) in enumerate(zip(symbols, labels, plain.tolist(), rows, strict=True)):
            if each:
                last = delivered.get(symbol)
                if last is None or label > last:
                    delivered[symbol] = label
            track = tracks.get(symbol)
            if track is None:
                continue
            fed = track.take(label, row) if simple else 0
            if fed:
                updates += fed
            else:
                values = records[[*ROW_COLUMNS, "filled", "amended"]][i].tolist()
                self.on_bar(BarClosed(symbol.decode(), ktype, Bar(label, *values)))
        self.stats["updates"] += updates

    # ------------------------------------------------------------ internal
    def _pair(self, symbol: str, ktype: KType | str) -> tuple[str, KType]:
        from hkrt._hkrt import normalize_symbol

        try:
            pair = (normalize_symbol(symbol), KType.parse(ktype))
        except ValueError as e:
            raise IndicatorError(f"live indicator of {symbol!r} {ktype!r}: {e}") from None
        symbols, ktypes = self.filter.symbols, self.filter.ktypes
        if (symbols is not None and pair[0] not in symbols) or (ktypes is not None and pair[1] not in ktypes):
            raise IndicatorError(f"{pair[0]} {pair[1].value} is not among the bars followed here ({self.filter})")
        return pair

    def _closed_history(self, pair: tuple[str, KType]) -> pd.DataFrame:
        """The history's bars closed in the event order (see the module)."""
        frame = self._history(*pair)
        if not len(frame):
            return frame
        delivered = self._delivered.get(pair[1], {}).get(pair[0].encode())
        if delivered is not None:
            return frame[frame.index <= delivered]
        now = self._clock() if self._clock is not None else None
        if now is None:
            return frame
        if pair[1].is_intraday:
            return frame[frame.index < now]
        return frame[frame.index < pd.Timestamp(now.date())]

    def _rebuild(self, pair: tuple[str, KType], indicators: Sequence[LiveIndicator], why: str) -> None:
        frame = self._closed_history(pair)
        for indicator in indicators:
            indicator.warm_up(frame)
        self.stats["rebuilds"] += len(indicators)
        fields = {"symbol": pair[0], "ktype": pair[1].value, "why": why, "indicators": len(indicators)}
        log.info("live indicators rebuilt from the history", extra=fields)

    def __repr__(self) -> str:
        return f"LiveIndicators({len(self)} of at most {self.max_indicators}, {self.filter})"
