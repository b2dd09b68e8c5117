"""The bus's bounded queue between its producers and its one callback thread, and its policy.

Bound.  At most ``max_events`` events, holding at most ``max_items`` spots or bars in all, wait
for the handlers (an event bigger than ``max_items`` alone still passes when the queue is empty,
or it would wait forever).

Policy when full: **block**.  ``put()`` makes its caller wait until the handlers have made room:
backpressure, never a drop.  For a running agent the caller is its receiver thread; while it
waits, nng buffers incoming messages and, once its own buffer is full, drops them, which the agent
sees as sequence gaps and fetches again by retransmission.  So slow handlers cost latency, never
unbounded memory and never a silent loss.  Two exceptions keep the wait finite: a ``put()`` from
the callback thread itself never waits (it cannot make room while it waits for it), and a
``put()`` on a queue that is closed (before ``open()``, after ``close()``) is **refused**: not
queued, counted in ``refused`` and logged.

Loud: a WARNING (rate-limited, ``warn_interval`` seconds per kind) when the queue first passes
half its bound and when a producer has to wait, naming the depth and the slowest handler.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from hkrt.core.logs import LogLimiter, log_limited


class EventQueue:
    """A bounded FIFO of (item, weight) pairs with the block-when-full policy above."""

    def __init__(
        self,
        max_events: int,
        max_items: int,
        *,
        log: logging.Logger,
        limiter: LogLimiter,
        slowest: Callable[[], tuple[str | None, float]],
    ) -> None:
        if max_events < 1 or max_items < 1:
            raise ValueError(f"the callback queue bound must be >= 1 (max_events={max_events}, max_items={max_items})")
        self.max_events = max_events
        self.max_items = max_items
        self._log = log
        self._limiter = limiter
        self._slowest = slowest  # names the handler that took the most time, for the warnings
        self._entries: deque[tuple[Any, int]] = deque()
        self._items = 0
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._closed = True  # refuses puts: not opened yet, or closed
        self._draining = False  # close requested: get() hands out what is queued, then None
        self._over_half = False  # warned of the current climb past half the bound
        self.high_water = 0  # the most events ever queued at once
        self.blocked = 0  # times put() had to wait for room
        self.blocked_seconds = 0.0  # seconds producers spent waiting for room, in all
        self.refused = 0  # puts on a closed queue (not queued)
        self.abandoned = 0  # events still queued when the queue was closed (never run)

    @property
    def depth(self) -> int:
        """Events queued now."""
        return len(self._entries)

    @property
    def items(self) -> int:
        """Spots or bars held by the queued events now."""
        return self._items

    @property
    def is_open(self) -> bool:
        return not self._closed

    def open(self) -> None:
        """Take events (again)."""
        with self._lock:
            self._closed = self._draining = False

    def put(self, item: Any, weight: int, *, wait: bool, label: str) -> bool:
        """Queue ``item``; if full and ``wait``, block until there is room.  False when the queue
        is closed (``refused``, logged with ``label``)."""
        waited_since: float | None = None
        crossed_half = False
        refused = 0
        while True:
            with self._lock:
                if self._closed:
                    self.refused += 1
                    refused = self.refused
                    break
                if not wait or not self._full(weight):
                    self._entries.append((item, weight))
                    self._items += weight
                    self._not_empty.notify()
                    self.high_water = max(self.high_water, len(self._entries))
                    if not self._over_half and self._fill() > 0.5:
                        self._over_half = crossed_half = True
                    break
                if waited_since is None:
                    waited_since = time.perf_counter()
                    self.blocked += 1
                    blocked_now = True
                else:
                    blocked_now = not self._not_full.wait(0.5) and self._full(weight)
            if blocked_now:  # outside the lock: a slow log handler must not hold up the handlers
                self.warn("full", "callback queue full: the producer waits for the handlers (backpressure)")
        if waited_since is not None:
            with self._lock:
                self.blocked_seconds += time.perf_counter() - waited_since
        if refused:
            log_limited(self._log, logging.WARNING, ("refused", id(self)), "callback event refused: the bus is stopped",
                        {"kind": label, "refused": refused}, self._limiter.interval, limiter=self._limiter)  # fmt: skip
            return False
        if crossed_half:
            self.warn("half", "callback queue past half its bound: the handlers are slower than the producers")
        return True

    def get(self) -> Any:
        """The next item, waiting for one; None once the queue is closed, or draining and empty
        (which closes it: a put after the last item was handed out is refused, never stranded)."""
        with self._lock:
            while not self._entries and not self._draining and not self._closed:
                self._not_empty.wait()
            if self._closed:
                return None
            if not self._entries:  # draining and done: closed at once, so no later put is left unrun
                self._closed = True
                self._not_full.notify_all()
                return None
            item, weight = self._entries.popleft()
            self._items -= weight
            if self._over_half and self._fill() <= 0.25:  # the next climb past half warns again
                self._over_half = False
            self._not_full.notify()
            return item

    def drain(self) -> None:
        """Let ``get()`` hand out what is queued, then return None (puts are still taken)."""
        with self._lock:
            self._draining = True
            self._not_empty.notify_all()

    def close(self) -> int:
        """Refuse puts from now on; the events still queued are dropped and counted in
        ``abandoned``.  Returns how many were dropped."""
        with self._lock:
            self._closed = True
            left = len(self._entries)
            self.abandoned += left
            self._entries.clear()
            self._items = 0
            self._not_full.notify_all()  # a producer still waiting gets its refusal now
            self._not_empty.notify_all()
        return left

    def _full(self, weight: int) -> bool:
        return len(self._entries) >= self.max_events or (self._items + weight > self.max_items and self._items > 0)

    def _fill(self) -> float:
        return max(len(self._entries) / self.max_events, self._items / self.max_items)

    def warn(self, key: str, message: str) -> None:
        slowest, seconds = self._slowest()
        fields = {"depth": self.depth, "items": self._items, "max_events": self.max_events,
                  "max_items": self.max_items, "blocked": self.blocked,
                  "blocked_seconds": round(self.blocked_seconds, 3), "slowest_hook": slowest,
                  "slowest_hook_seconds": round(seconds, 3)}  # fmt: skip
        log_limited(self._log, logging.WARNING, (key, id(self)), message, fields, self._limiter.interval,
                    limiter=self._limiter)  # fmt: skip
