"""User callbacks of a running agent, run on one dedicated thread, in order.

The receiving thread never runs user code: it queues events, and the dispatcher thread
calls the hooks one event at a time.  An exception in a hook is logged with its traceback
and counted; the agent keeps going.  The queue is bounded; when hooks fall behind, the
receiver waits (see ``Dispatcher``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from hkrt.ktype import KType
from hkrt.logs import LogLimiter, log_limited

log = logging.getLogger("hkrt.agent")

KTYPES = list(KType)


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


@dataclass
class _BarHook:
    func: Callable[[str, KType, Bar], Any]
    ktypes: frozenset[int] | None
    symbols: frozenset[bytes] | None


@dataclass
class HookSet:
    spot: list[Callable[[Any], Any]] = field(default_factory=list)
    columns: list[Callable[[dict[str, np.ndarray]], Any]] = field(default_factory=list)
    bar: list[_BarHook] = field(default_factory=list)
    bars: list[Callable[[np.ndarray], Any]] = field(default_factory=list)
    cycle: list[Callable[[CycleInfo], Any]] = field(default_factory=list)
    gap: list[Callable[[GapInfo], Any]] = field(default_factory=list)
    feed: list[Callable[[FeedEvent], Any]] = field(default_factory=list)

    def add_bar(
        self,
        func: Callable[[str, KType, Bar], Any],
        ktypes: Iterable[KType | str] | None,
        symbols: Iterable[str] | None,
    ) -> None:
        from hkrt._hkrt import normalize_symbol

        kset = None if ktypes is None else frozenset(KTYPES.index(KType.parse(k)) for k in ktypes)
        sset = None if symbols is None else frozenset(normalize_symbol(s).encode() for s in symbols)
        self.bar.append(_BarHook(func, kset, sset))

    @property
    def wants_bars(self) -> bool:
        return bool(self.bar or self.bars)


class Dispatcher:
    """The callback thread: takes queued events and runs the hooks for each, in order.

    Bound and policy.  At most ``max_events`` events, holding at most ``max_items`` spots or
    bars in all, wait for the hooks (an event bigger than ``max_items`` alone still passes when
    the queue is empty).  When the queue is full, ``put()`` blocks its caller (the agent's
    receiver thread) until the hooks have made room: backpressure, never a drop.  While the
    receiver waits, nng buffers incoming messages and, once its own buffer is full, drops
    them; the agent sees those as sequence gaps and fetches them again by retransmission.  So
    slow hooks cost latency, never unbounded memory and never a silent loss.

    Loud: a WARNING (rate-limited, ``warn_interval`` seconds per kind) when the queue first
    passes half its bound and when a producer has to wait, naming the depth and the hook that
    took the most time.  ``stats()`` holds the counters.

    A ``put()`` from the callback thread itself (a hook that queues work) never waits: it
    cannot make room while it waits for it.  ``stop()`` runs what is queued; a ``put()``
    during ``stop()`` is still run if the thread has not finished, and refused (counted,
    logged) after it, so it never hangs for longer than ``stop()``'s own timeout.
    """

    def __init__(
        self, hooks: HookSet, max_events: int = 10_000, *, max_items: int = 1_000_000, warn_interval: float = 60.0
    ) -> None:
        if max_events < 1 or max_items < 1:
            raise ValueError(f"the callback queue bound must be >= 1 (max_events={max_events}, max_items={max_items})")
        self.hooks = hooks
        self.max_events = max_events
        self.max_items = max_items
        self.errors = 0
        self._events: deque[tuple[str, Any, int]] = deque()  # (kind, payload, weight in items)
        self._items = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._stopping = False  # stop() called: run what is queued, then end
        self._closed = False  # stop() returned: nothing more is run
        self._over_half = False  # warned of the current climb past half the bound
        self._high_water = 0
        self._blocked = 0
        self._blocked_seconds = 0.0
        self._refused = 0
        self._abandoned = 0
        self._hook_seconds: dict[str, float] = {}  # seconds spent in each hook, for the warnings
        self._running: tuple[str, float] | None = None  # the hook running now, since when
        self._hook_lock = threading.Lock()
        self._limiter = LogLimiter(warn_interval)
        self._thread = threading.Thread(target=self._run, name="hkrt-callbacks", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------- producer side
    def put(self, kind: str, payload: Any) -> bool:
        """Queue one event; wait while the queue is full.  False if the dispatcher has stopped
        (the event is counted in ``refused`` and logged, not run)."""
        weight = _weight(kind, payload)
        on_callback_thread = threading.get_ident() == self._thread.ident
        waited_since: float | None = None
        crossed_half = False
        while True:
            with self._lock:
                if self._closed or not self._thread.is_alive():
                    self._refused += 1
                    refused = self._refused
                    break
                if on_callback_thread or not self._full(weight):
                    self._events.append((kind, payload, weight))
                    self._items += weight
                    self._not_empty.notify()
                    depth = len(self._events)
                    self._high_water = max(self._high_water, depth)
                    if not self._over_half and self._fill() > 0.5:
                        self._over_half = crossed_half = True
                    refused = 0
                    break
                if waited_since is None:
                    waited_since = time.perf_counter()
                    self._blocked += 1
                    blocked_now = True
                else:
                    blocked_now = not self._not_full.wait(0.5) and self._full(weight)
            if blocked_now:  # outside the lock: a slow log handler must not hold up the hooks
                self._warn("full", "callback queue full: the receiver waits for the hooks (backpressure)")
                blocked_now = False
        if waited_since is not None:
            with self._lock:
                self._blocked_seconds += time.perf_counter() - waited_since
        if refused:
            log_limited(log, logging.WARNING, ("refused", id(self)), "callback event refused: the agent has stopped",
                        {"kind": kind, "refused": refused}, self._limiter.interval, limiter=self._limiter)  # fmt: skip
            return False
        if crossed_half:
            self._warn("half", "callback queue past half its bound: the hooks are slower than the feed")
        return True

    def _full(self, weight: int) -> bool:
        # an event heavier than the whole item bound passes alone, or it would wait forever
        return len(self._events) >= self.max_events or (self._items + weight > self.max_items and self._items > 0)

    def _fill(self) -> float:
        return max(len(self._events) / self.max_events, self._items / self.max_items)

    def _warn(self, key: str, message: str) -> None:
        slowest, seconds = self.slowest_hook()
        fields = {"depth": self.depth, "items": self._items, "max_events": self.max_events,
                  "max_items": self.max_items, "blocked": self._blocked,
                  "blocked_seconds": round(self._blocked_seconds, 3), "slowest_hook": slowest,
                  "slowest_hook_seconds": round(seconds, 3)}  # fmt: skip
        log_limited(log, logging.WARNING, (key, id(self)), message, fields, self._limiter.interval,
                    limiter=self._limiter)  # fmt: skip

    # ------------------------------------------------------------------ counters
    @property
    def depth(self) -> int:
        """Events queued now."""
        return len(self._events)

    @property
    def high_water(self) -> int:
        """The most events ever queued at once."""
        return self._high_water

    @property
    def blocked(self) -> int:
        """Times ``put()`` had to wait for room."""
        return self._blocked

    @property
    def blocked_seconds(self) -> float:
        """Seconds producers spent waiting for room, in all."""
        return self._blocked_seconds

    @property
    def refused(self) -> int:
        """Events put after the dispatcher stopped (not run)."""
        return self._refused

    @property
    def abandoned(self) -> int:
        """Events still queued when ``stop()`` gave up waiting for a hook (not run)."""
        return self._abandoned

    def slowest_hook(self) -> tuple[str | None, float]:
        """The hook that has taken the most time so far, and its seconds in all (the one
        running now counts what it has taken so far: a stuck hook is named while stuck)."""
        running = self._running
        with self._hook_lock:
            seconds = dict(self._hook_seconds)
        if running is not None:
            name, since = running
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - since
        if not seconds:
            return None, 0.0
        name = max(seconds, key=seconds.__getitem__)
        return name, seconds[name]

    def stats(self) -> dict[str, Any]:
        slowest, seconds = self.slowest_hook()
        return {
            "depth": self.depth,
            "items": self._items,
            "max_events": self.max_events,
            "max_items": self.max_items,
            "high_water": self._high_water,
            "blocked": self._blocked,
            "blocked_seconds": self._blocked_seconds,
            "refused": self._refused,
            "abandoned": self._abandoned,
            "errors": self.errors,
            "slowest_hook": slowest,
            "slowest_hook_seconds": seconds,
        }

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then end the thread (waiting at most ``timeout`` seconds)."""
        with self._lock:
            self._stopping = True
            self._not_empty.notify_all()
        if threading.get_ident() != self._thread.ident:
            self._thread.join(timeout)
        with self._lock:
            self._closed = True
            self._abandoned += len(self._events)
            left = len(self._events)
            self._events.clear()
            self._items = 0
            self._not_full.notify_all()  # a producer still waiting gets its refusal now
        if left:
            slowest, seconds = self.slowest_hook()
            log.warning(
                "callback thread did not finish in time: queued events were not run",
                extra={"abandoned": left, "timeout": timeout, "slowest_hook": slowest,
                       "slowest_hook_seconds": round(seconds, 3)},
            )  # fmt: skip

    # ----------------------------------------------------------- callback thread
    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._events and not self._stopping:
                    self._not_empty.wait()
                if self._closed or not self._events:
                    return
                kind, payload, weight = self._events.popleft()
                self._items -= weight
                if self._over_half and self._fill() <= 0.25:  # the next climb past half warns again
                    self._over_half = False
                self._not_full.notify()
            try:
                self._dispatch(kind, payload)
            except Exception:  # hooks are guarded one by one; this is a bug here, not in a hook
                self.errors += 1
                log.exception("dispatching a %s event failed; the callback thread goes on", kind)

    def _dispatch(self, kind: str, payload: Any) -> None:
        if kind == "bars":
            self._bars(payload)
        elif kind == "spots":
            for s in payload:
                self._call(self.hooks.spot, s)
        elif kind == "columns":
            self._call(self.hooks.columns, payload)
        elif kind == "cycle":
            self._call(self.hooks.cycle, payload)
        elif kind == "gap":
            self._call(self.hooks.gap, payload)
        elif kind == "feed":
            self._call(self.hooks.feed, payload)
        elif kind == "call":  # posted work; also a barrier telling a waiter all earlier events are done
            self._call([payload])

    def _bars(self, records: np.ndarray) -> None:
        self._call(self.hooks.bars, records)
        for hook in self.hooks.bar:
            started = time.perf_counter()
            self._running = (_name(hook.func), started)
            for rec in records:
                if hook.ktypes is not None and int(rec["ktype"]) not in hook.ktypes:
                    continue
                if hook.symbols is not None and bytes(rec["symbol"]) not in hook.symbols:
                    continue
                bar = Bar(
                    rec["datetime"].astype("datetime64[ms]").item(),
                    float(rec["open"]),
                    float(rec["high"]),
                    float(rec["low"]),
                    float(rec["close"]),
                    float(rec["volume"]),
                    float(rec["amount"]),
                    bool(rec["filled"]),
                    bool(rec["amended"]),
                )
                self._guarded(hook.func, bytes(rec["symbol"]).decode(), KTYPES[int(rec["ktype"])], bar)
            self._charge(hook.func, time.perf_counter() - started)

    def _call(self, funcs: Iterable[Callable[..., Any]], *args: Any) -> None:
        for func in funcs:
            started = time.perf_counter()
            self._running = (_name(func), started)
            self._guarded(func, *args)
            self._charge(func, time.perf_counter() - started)

    def _guarded(self, func: Callable[..., Any], *args: Any) -> None:
        try:
            func(*args)
        except Exception:
            self.errors += 1
            log.exception("callback %s raised; the agent goes on", _name(func))

    def _charge(self, func: Callable[..., Any], seconds: float) -> None:
        # by name, not by object: posted calls are new objects each time, hooks are not
        name = _name(func)
        self._running = None
        with self._hook_lock:
            if name in self._hook_seconds or len(self._hook_seconds) < _MAX_TIMED_HOOKS:
                self._hook_seconds[name] = self._hook_seconds.get(name, 0.0) + seconds


_MAX_TIMED_HOOKS = 1024


def _name(func: Callable[..., Any]) -> str:
    named = func if hasattr(func, "__qualname__") else type(func)  # a callable object: its class
    module = getattr(named, "__module__", None)
    return f"{module}.{named.__qualname__}" if module else str(named.__qualname__)


def _weight(kind: str, payload: Any) -> int:
    """An event's size in spots or bars, for the ``max_items`` bound."""
    if kind in ("spots", "bars"):
        return max(1, len(payload))
    if kind == "columns" and payload:
        return max(1, len(next(iter(payload.values()))))
    return 1
