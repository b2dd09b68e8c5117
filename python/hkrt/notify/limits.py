"""A token bucket: at most ``burst`` at once, refilled at ``per_minute``.  Used per alert kind by the router
and per notifier by its outbox (an API's own limit, e.g. DingTalk's and WeCom's 20 messages a minute)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """``take()`` spends a token if one is there; ``wait()`` says how long until one is.  Thread-safe."""

    def __init__(self, per_minute: float, burst: float | None = None, *, clock: Callable[[], float] = time.monotonic):
        if not per_minute > 0:
            raise ValueError(f"per_minute must be > 0, not {per_minute!r}")
        self.rate = per_minute / 60.0  # tokens a second
        self.capacity = float(burst if burst is not None else per_minute)
        if not self.capacity >= 1:
            raise ValueError(f"burst must be >= 1, not {burst!r}")
        self._clock = clock
        self._tokens = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.capacity, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def take(self) -> bool:
        with self._lock:
            self._refill()
            if self._tokens >= 1:
                self._tokens -= 1
                return True
            return False

    def available(self) -> int:
        """Whole tokens there now."""
        with self._lock:
            self._refill()
            return int(self._tokens)

    def wait(self) -> float:
        """Seconds until a token is there (0: now)."""
        with self._lock:
            self._refill()
            return 0.0 if self._tokens >= 1 else (1 - self._tokens) / self.rate
