"""EventBus: typed events in, handlers subscribed by event class run on one callback thread.

Producers (the agent's receiver thread, a test, a later order or risk layer) ``publish`` events;
the bus queues them (bounded: :mod:`hkrt.bus.queue`) and its one callback thread hands each, in
the order published, to the handlers subscribed to its class, in the order they subscribed.  So
handler code never runs two at a time and needs no locks, and a component — a strategy, an
indicator, a recorder — plugs in with one ``subscribe`` call, without the producer knowing it.

Promises:

- **Routing by class.**  A subscription to ``C`` receives every published event that is an
  instance of ``C`` (so ``Event`` receives all), optionally narrowed by a filter.  A batch
  (``SpotBatch``, ``BarBatch``) is also split into its single events (``hkrt.Spot``,
  ``BarClosed``) for the subscribers of those, built for them only: subscribe to what you
  consume, and a publisher builds nothing nobody asked for (``wants``).
- **Handlers are guarded.**  An exception in a handler (or its filter) is counted in
  ``errors`` and logged with its traceback (rate-limited per handler); the other handlers and
  the next events run, and the thread never dies of it.
- **Unsubscribing takes effect at once**, even from a handler during a dispatch: an
  unsubscribed handler is never called again, not even for the event being dispatched.  A
  subscription made during a dispatch receives the events dispatched after it.
- **Causal order.**  An event a handler publishes (or work it posts) runs right after the event
  being dispatched, before the events other threads queued meanwhile: a broker's report on an order
  placed on a spot reaches the order manager before the next spot, however far the feed's thread
  is ahead, so a replayed day runs exactly as it ran live.  What handlers publish while handling one
  event is held in a list drained before the next event; it grows only with what the handlers
  themselves make, never with the feed, and holds at most ``max_run_next``: past that a handler's
  publish or post is refused (False, counted in ``own_refused``, a WARNING naming the event).
- **Bounded, never silent** (:mod:`hkrt.bus.queue`): when the handlers fall behind, producers
  wait; every refusal and abandonment is counted and logged; the time each handler takes is
  summed, so warnings and ``stats()`` name the slowest.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from hkrt.bus.filters import MarketFilter
from hkrt.bus.queue import EventQueue
from hkrt.core.logs import LogLimiter, log_limited

log = logging.getLogger("hkrt.bus")

E = TypeVar("E")
Handler = Callable[[Any], Any]
EventFilter = Callable[[Any], bool]

_MAX_TIMED_HANDLERS = 1024  # names whose time is summed (posted calls are new objects every time)


class Subscription:
    """One handler subscribed to one event class (what :meth:`EventBus.subscribe` returns).

    ``name`` names the handler in logs and ``stats()``; ``active`` turns False for good when it
    is unsubscribed."""

    __slots__ = ("active", "event_type", "filter", "handler", "name", "order")

    def __init__(self, event_type: type, handler: Handler, event_filter: EventFilter | None, name: str, order: int):
        self.event_type = event_type
        self.handler = handler
        self.filter = event_filter
        self.name = name
        self.order = order
        self.active = True

    def __repr__(self) -> str:
        state = "" if self.active else ", unsubscribed"
        return f"Subscription({self.event_type.__name__}, {self.name}{state})"


class _Call:
    """Work posted to the callback thread (``post``); also the barrier of ``wait_idle``."""

    __slots__ = ("func",)

    def __init__(self, func: Callable[[], Any]) -> None:
        self.func = func


class EventBus:
    """Typed publish/subscribe with one callback thread.

    Args:
        max_events: events waiting for the callback thread at most.
        max_items: spots or bars those events hold at most (a batch weighs its length).
        warn_interval: seconds between two WARNINGs of one kind (queue past half, full, a
            handler raising again).
        name: the callback thread's name.
        max_run_next: events (and posted calls) handlers published while handling one event that
            wait to run right after it, at most; past it a handler's publish / post is refused.  It
            is separate from ``max_events``: a handler is never made to wait for its own thread.

    The thread runs from :meth:`start` to :meth:`stop` (and again after another ``start``);
    subscribing works at any time.  Use as a context manager to start and stop it.
    """

    def __init__(
        self,
        *,
        max_events: int = 10_000,
        max_items: int = 1_000_000,
        warn_interval: float = 60.0,
        name: str = "hkrt-callbacks",
        max_run_next: int = 1_000_000,
    ) -> None:
        if max_run_next < 1:
            raise ValueError(f"max_run_next must be >= 1, not {max_run_next}")
        self.max_run_next = max_run_next
        self._limiter = LogLimiter(warn_interval)
        self._queue = self._new_queue(max_events, max_items)  # closed until start(): refuses
        self._past = {"high_water": 0, "blocked": 0, "blocked_seconds": 0.0, "refused": 0, "abandoned": 0}
        self.name = name
        self.errors = 0  # handler (and posted work) exceptions, since the bus was made
        self.published = 0  # events queued, since the bus was made
        self.own_refused = 0  # events handlers published past the bound of the list run next
        self._subscriptions: list[Subscription] = []
        self._routes: dict[type, tuple[tuple[Subscription, bool], ...]] = {}  # event class -> (sub, split)
        self._order = 0
        self._registry_lock = threading.Lock()
        self._listeners: list[Callable[[type], Any]] = []
        self._thread: threading.Thread | None = None
        self._own: collections.deque[object] = collections.deque()  # published by handlers: run next
        self._handler_seconds: dict[str, float] = {}
        self._running_handler: tuple[str, float] | None = None  # the handler running now, since when
        self._seconds_lock = threading.Lock()

    def _new_queue(self, max_events: int, max_items: int) -> EventQueue:
        return EventQueue(max_events, max_items, log=log, limiter=self._limiter, slowest=self.slowest_handler)

    # ------------------------------------------------------------- subscribing
    def subscribe(
        self,
        event_type: type[E],
        handler: Callable[[E], Any],
        *,
        filter: EventFilter | None = None,
        name: str | None = None,
    ) -> Subscription:
        """Call ``handler(event)`` on the callback thread for every published instance of
        ``event_type`` (and, for ``hkrt.Spot`` and ``BarClosed``, every one a published batch
        holds) that ``filter`` lets through: a ``MarketFilter(symbols=, ktypes=)`` or any
        ``callable(event) -> bool``.  With a MarketFilter a batch subscriber receives the batch
        narrowed to the matching rows, and none when no row matches.  ``name`` names the
        handler in logs and stats (default: its qualified name)."""
        if not isinstance(event_type, type):
            raise TypeError(f"subscribe() takes an event class such as hkrt.bus.BarClosed, not {event_type!r}")
        if not callable(handler):
            raise TypeError(f"subscribe({event_type.__name__}, handler): the handler {handler!r} is not callable")
        if filter is not None and not callable(filter):
            raise TypeError(f"filter must be a MarketFilter or a callable(event) -> bool, not {filter!r}")
        with self._registry_lock:
            self._order += 1
            sub = Subscription(event_type, handler, filter, name or handler_name(handler), self._order)
            self._subscriptions.append(sub)
            self._routes = {}
        for listener in list(self._listeners):
            listener(event_type)
        return sub

    def unsubscribe(self, subscription: Subscription) -> bool:
        """Stop the subscription at once (see the module's promises); False if it was not active."""
        with self._registry_lock:
            if not subscription.active or subscription not in self._subscriptions:
                return False
            subscription.active = False
            self._subscriptions.remove(subscription)
            self._routes = {}
        return True

    def subscriptions(self, event_type: type | None = None) -> list[Subscription]:
        """The active subscriptions (to ``event_type`` exactly, if given), in subscription order."""
        with self._registry_lock:
            return [s for s in self._subscriptions if event_type is None or s.event_type is event_type]

    def wants(self, event_type: type) -> bool:
        """Whether a published ``event_type`` would reach any handler: a producer asks before
        building an event that costs something (decoding a message, converting bars)."""
        return bool(self._route(event_type))

    def when_subscribed(self, listener: Callable[[type], Any]) -> None:
        """Call ``listener(event_type)`` after each subscription (on the subscriber's thread): a
        producer that keeps some work off until someone wants its events turns it on here."""
        self._listeners.append(listener)

    def _route(self, event_type: type) -> tuple[tuple[Subscription, bool], ...]:
        route = self._routes.get(event_type)
        if route is None:
            with self._registry_lock:
                item = getattr(event_type, "ITEM", None)  # a batch: its single events are delivered too
                route = tuple(
                    (s, s.event_type is item and not issubclass(event_type, s.event_type))
                    for s in self._subscriptions
                    if issubclass(event_type, s.event_type) or s.event_type is item
                )
                self._routes[event_type] = route
        return route

    # -------------------------------------------------------------- producing
    def publish(self, event: object) -> bool:
        """Queue ``event`` for its subscribers; wait while the queue is full (not when called from
        a handler).  False if the bus is not running (counted in ``refused`` and logged)."""
        if self.on_callback_thread and self._queue.is_open:  # a handler's event: next, before the feed's
            if not self._run_next(event, type(event).__name__):
                return False
            self.published += 1
            return True
        weight = max(1, len(event)) if hasattr(event, "__len__") else 1
        if not self._queue.put(event, weight, wait=not self.on_callback_thread, label=type(event).__name__):
            return False
        self.published += 1
        return True

    def post(self, func: Callable[[], Any]) -> bool:
        """Run ``func()`` on the callback thread after every event queued before it (guarded and
        timed like a handler); from a handler, right after the event being dispatched.  False if the
        bus is not running."""
        if self.on_callback_thread and self._queue.is_open:
            return self._run_next(_Call(func), "call")
        return self._queue.put(_Call(func), 1, wait=not self.on_callback_thread, label="call")

    def _run_next(self, item: object, label: str) -> bool:
        """Hold a handler's event (or posted call) to run right after the current one; refused past
        ``max_run_next`` held (a handler publishing without end must not exhaust memory)."""
        if len(self._own) >= self.max_run_next:
            self.own_refused += 1
            log_limited(log, logging.WARNING, ("own_refused", id(self)),
                        f"{label} published by a handler refused: {len(self._own)} events already wait to run next",
                        {"kind": label, "own_refused": self.own_refused}, self._limiter.interval,
                        limiter=self._limiter)  # fmt: skip
            return False
        self._own.append(item)
        return True

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until every event queued so far has been handled.  True at once when the bus is
        not running; False after ``timeout`` seconds, or when called from a handler (the callback
        thread cannot wait for itself)."""
        if not self.running:
            return True
        if self.on_callback_thread:
            return False
        done = threading.Event()
        if not self.post(done.set):
            return not self.running
        return done.wait(timeout)

    # -------------------------------------------------------------- lifecycle
    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._queue.is_open

    @property
    def on_callback_thread(self) -> bool:
        thread = self._thread
        return thread is not None and threading.get_ident() == thread.ident

    def start(self) -> EventBus:
        """Start the callback thread (nothing happens if it runs already)."""
        if self.running:
            return self
        old = self._queue
        self._past["high_water"] = max(self._past["high_water"], old.high_water)
        for key in ("blocked", "blocked_seconds", "refused", "abandoned"):
            self._past[key] += getattr(old, key)
        # a new queue each run: a thread left behind by a stop() that timed out keeps its own,
        # closed one, so it can never take the new run's events
        self._queue = self._new_queue(old.max_events, old.max_items)
        self._queue.open()
        self._own = collections.deque()
        self._thread = threading.Thread(target=self._run, args=(self._queue, self._own), name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Run what is queued, then end the thread, waiting at most ``timeout`` seconds; what a
        stuck handler left queued is dropped, counted in ``abandoned`` and logged.  A publish
        during ``stop()`` is still handled if the thread has not finished, else refused."""
        thread, queue = self._thread, self._queue
        if thread is None:
            return
        queue.drain()
        if threading.get_ident() != thread.ident:
            thread.join(timeout)
        left = queue.close()
        self._thread = None
        if left:
            slowest, seconds = self.slowest_handler()
            log.warning(
                "callback thread did not finish in time: queued events were not run",
                extra={"abandoned": left, "timeout": timeout, "slowest_hook": slowest,
                       "slowest_hook_seconds": round(seconds, 3)},
            )  # fmt: skip

    def __enter__(self) -> EventBus:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- counters
    @property
    def depth(self) -> int:
        """Events queued now."""
        return self._queue.depth

    @property
    def high_water(self) -> int:
        """The most events ever queued at once."""
        return max(int(self._past["high_water"]), self._queue.high_water)

    @property
    def blocked(self) -> int:
        """Times a producer had to wait for room."""
        return int(self._past["blocked"] + self._queue.blocked)

    @property
    def blocked_seconds(self) -> float:
        """Seconds producers spent waiting for room, in all."""
        return float(self._past["blocked_seconds"] + self._queue.blocked_seconds)

    @property
    def refused(self) -> int:
        """Events published while the bus was not running (not handled)."""
        return int(self._past["refused"] + self._queue.refused)

    @property
    def abandoned(self) -> int:
        """Events still queued when ``stop()`` gave up waiting for a handler (not handled)."""
        return int(self._past["abandoned"] + self._queue.abandoned)

    @property
    def running_handler(self) -> tuple[str, float] | None:
        """The handler running on the callback thread now and its seconds so far; None while the thread
        waits for work.  (A watchdog on another thread reads it: a handler stuck in a loop shows here.)"""
        running = self._running_handler
        if running is None:
            return None
        name, since = running
        return name, time.perf_counter() - since

    def slowest_handler(self) -> tuple[str | None, float]:
        """The handler that has taken the most time so far and its seconds in all (the one running
        now counts what it has taken so far: a stuck handler is named while stuck)."""
        running = self._running_handler
        with self._seconds_lock:
            seconds = dict(self._handler_seconds)
        if running is not None:
            name, since = running
            seconds[name] = seconds.get(name, 0.0) + time.perf_counter() - since
        if not seconds:
            return None, 0.0
        name = max(seconds, key=seconds.__getitem__)
        return name, seconds[name]

    def stats(self) -> dict[str, Any]:
        """Counters since the bus was made (``depth`` and ``items``: now)."""
        slowest, seconds = self.slowest_handler()
        queue = self._queue
        return {
            "depth": queue.depth,
            "items": queue.items,
            "max_events": queue.max_events,
            "max_items": queue.max_items,
            "high_water": self.high_water,
            "blocked": self.blocked,
            "blocked_seconds": self.blocked_seconds,
            "refused": self.refused,
            "abandoned": self.abandoned,
            "errors": self.errors,
            "slowest_hook": slowest,
            "slowest_hook_seconds": seconds,
            "published": self.published,
            "own_refused": self.own_refused,
            "subscriptions": len(self._subscriptions),
            "running": self.running,
        }

    # ---------------------------------------------------------- callback thread
    def _run(self, queue: EventQueue, own: collections.deque[object]) -> None:
        try:
            while True:
                event = own.popleft() if own else queue.get()
                if event is None:
                    return
                try:
                    self._dispatch(event)
                except Exception:  # handlers are guarded one by one: this is a bug of the bus
                    self.errors += 1
                    log.exception("dispatching a %s failed; the callback thread goes on", type(event).__name__)
        finally:
            queue.close()  # refuse, never strand: nothing runs what is put after this thread

    def _dispatch(self, event: object) -> None:
        if isinstance(event, _Call):
            self._call(handler_name(event.func), event.func)
            return
        for sub, split in self._route(type(event)):
            if not sub.active:  # unsubscribed by an earlier handler of this very event
                continue
            if split:
                self._call(sub.name, self._deliver_items, sub, event)
            else:
                self._call(sub.name, self._deliver, sub, event)

    @staticmethod
    def _deliver(sub: Subscription, event: Any) -> None:
        event_filter = sub.filter
        if event_filter is not None:
            if isinstance(event_filter, MarketFilter) and hasattr(event, "select"):
                event = event.select(event_filter)  # a batch: the matching rows only
                if event is None:
                    return
            elif not event_filter(event):
                return
        sub.handler(event)

    def _deliver_items(self, sub: Subscription, batch: Any) -> None:
        for item in batch.items(sub.filter):
            if not sub.active:
                return
            try:
                sub.handler(item)
            except Exception:  # one bad item must not cost the handler the rest of the batch
                self._failed(sub.name)

    def _call(self, name: str, func: Callable[..., Any], *args: Any) -> None:
        started = time.perf_counter()
        self._running_handler = (name, started)
        try:
            func(*args)
        except Exception:
            self._failed(name)
        finally:
            self._charge(name, time.perf_counter() - started)

    def _failed(self, name: str) -> None:
        self.errors += 1
        log_limited(log, logging.ERROR, ("raised", name), f"callback {name} raised; the other handlers go on",
                    {"handler": name, "errors": self.errors}, self._limiter.interval, limiter=self._limiter,
                    exc_info=True)  # fmt: skip

    def _charge(self, name: str, seconds: float) -> None:
        self._running_handler = None
        with self._seconds_lock:
            if name in self._handler_seconds or len(self._handler_seconds) < _MAX_TIMED_HANDLERS:
                self._handler_seconds[name] = self._handler_seconds.get(name, 0.0) + seconds


def handler_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, or of a callable object's class."""
    named = func if hasattr(func, "__qualname__") else type(func)
    module = getattr(named, "__module__", None)
    qualname = str(named.__qualname__)
    return f"{module}.{qualname}" if module else qualname
