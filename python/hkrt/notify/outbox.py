"""A notifier's outbox: a bounded queue and one thread that sends from it, so a slow or hung webhook holds
up only its own alerts -- never the bus's callback thread, never another notifier.

- **Bound and policy.**  At most ``capacity`` alerts wait; when full, the oldest waiting alert is dropped
  for the new one (the newest news matters more during an outage), counted in ``stats["dropped"]`` and
  logged at WARNING (at most once a minute, with the count).
- **The API's rate limit.**  A token bucket at the notifier's ``per_minute`` (DingTalk and WeCom: 20);
  alerts go out one by one while tokens last; once more alerts wait than there are tokens, the waiting ones
  go out as one digest message (at most ``digest_max`` alerts in it) as soon as a token comes: a burst is
  merged, never silently dropped.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from hkrt.core.logs import LogLimiter, log_limited
from hkrt.notify.alert import Alert, digest
from hkrt.notify.base import Delivery, Notifier
from hkrt.notify.limits import TokenBucket

log = logging.getLogger("hkrt.notify")

DIGEST_MAX = 30  # alerts merged into one message at most (the API's length limit cuts the text anyway)


class Outbox:
    def __init__(
        self,
        notifier: Notifier,
        *,
        capacity: int = 1000,
        per_minute: float | None = None,
        burst: float | None = None,
        digest_max: int = DIGEST_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if capacity < 1:
            raise ValueError(f"the alert queue bound must be >= 1, not {capacity}")
        self.notifier = notifier
        self.capacity = capacity
        self.digest_max = max(1, digest_max)
        rate = per_minute or notifier.per_minute
        self.bucket = TokenBucket(rate, burst if burst is not None else max(1.0, min(rate, 5.0)), clock=clock)
        self.stats: collections.Counter[str] = collections.Counter()
        self.last_error = ""
        self.max_latency = 0.0  # seconds from queued to sent (or given up), the longest
        self._queue: collections.deque[tuple[float, Alert]] = collections.deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._clock = clock
        self._limiter = LogLimiter(60.0)
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.notifier.name

    def start(self) -> None:
        with self._cond:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name=f"hkrt-alerts-{self.name}", daemon=True)
            self._thread.start()

    def put(self, alert: Alert) -> None:
        """Queue ``alert``; never blocks (a full queue drops its oldest)."""
        with self._cond:
            dropped = None
            if len(self._queue) >= self.capacity:
                dropped = self._queue.popleft()[1]
                self.stats["dropped"] += 1
            self._queue.append((self._clock(), alert))
            self.stats["queued"] += 1
            self.stats["high_water"] = max(self.stats["high_water"], len(self._queue))
            self._cond.notify()
        if dropped is not None:
            log_limited(
                log, logging.WARNING, ("alert-queue-full", self.name),
                f"alert queue of {self.name} full ({self.capacity}): dropped the oldest alert",
                extra={"notifier": self.name, "dropped": self.stats["dropped"], "kind": dropped.kind},
                limiter=self._limiter,
            )  # fmt: skip

    @property
    def depth(self) -> int:
        with self._cond:
            return len(self._queue)

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                wait = self.bucket.wait()
                if wait > 0 and not self._stopping:
                    self._cond.wait(wait)  # woken early by stop(); new alerts just join the next digest
                    continue
                # alone while the tokens last; once more wait than there are tokens, merged into one digest
                alone = len(self._queue) <= self.bucket.available()
                self.bucket.take()
                count = 1 if alone else min(len(self._queue), self.digest_max)
                batch = [self._queue.popleft() for _ in range(count)]
                self._busy = True
            try:
                self._deliver(batch)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    def _deliver(self, batch: list[tuple[float, Alert]]) -> None:
        alerts = [a for _, a in batch]
        message = alerts[0] if len(alerts) == 1 else digest(alerts)
        if len(alerts) > 1:
            self.stats["digests"] += 1
            self.stats["digested"] += len(alerts)
        result: Delivery = self.notifier.send(message)
        now = self._clock()
        self.max_latency = max(self.max_latency, now - batch[0][0])
        if result.ok:
            self.stats["sent"] += 1
            self.stats["alerts_sent"] += len(alerts)
        else:
            self.stats["failed"] += 1
            self.stats["alerts_failed"] += len(alerts)
            self.last_error = result.error

    def wait_idle(self, timeout: float) -> bool:
        """Wait until nothing is queued or being sent; False if ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
            return True

    def stop(self, timeout: float = 5.0) -> None:
        """Send what is queued (rate limits aside, as one digest) within ``timeout``, then end the thread; what
        is still queued then is counted in ``stats["abandoned"]`` and logged."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                self.notifier.close()  # no more waiting between retries
                thread.join(1.0)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
        if left:
            self.stats["abandoned"] += left
            log.warning("%d alerts for %s not sent before stopping", left, self.name, extra={"notifier": self.name})

    def status(self) -> dict[str, object]:
        return {
            **dict(self.stats), "depth": self.depth, "capacity": self.capacity, "per_minute": self.bucket.rate * 60,
            "max_latency_s": round(self.max_latency, 3), "last_error": self.last_error,
            "notifier": dict(self.notifier.stats),
        }  # fmt: skip
