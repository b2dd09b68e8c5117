"""The publisher side of the Redis Streams bus: every message the spot publisher sends, appended to a
stream as it left the publisher (the same wire bytes, sealed when the feed has a key, sequence numbers
intact), so any number of consumer groups on other hosts read the feed (docs/scale-out-redis.md).

Why a sink on the publisher rather than a bridge that subscribes to its nng feed: a bridge is one more
process and one more hop, and nng drops for a slow subscriber; the sink sees every message, heartbeat
and end-of-day marker at the moment it is sent, and never blocks the publisher.

Bounds and losses, each counted in :meth:`RedisStreamSink.stats` and logged at WARNING (rate-limited):

- the stream: ``XADD ... MAXLEN ~ maxlen`` keeps at least ``maxlen`` entries (Redis trims whole
  internal nodes, so a few more) and trims the oldest; a consumer group that had not read them loses
  them, and its agent reports the sequence gap as on nng (recovered by retransmission when the agent
  can reach the spot server's retransmission socket);
- the queue to Redis: messages wait in memory while Redis is slow or down, at most ``max_messages``
  and ``max_bytes``; past that the oldest are dropped (``dropped``): the latest market data goes
  first when Redis comes back, and consumers see the dropped ones as a gap;
- Redis down or restarted: the writer reconnects with a growing backoff (0.05 s doubling to 2 s),
  counting ``errors`` and ``reconnects``; a batch that failed is sent again (an entry may then be
  appended twice: agents skip the repeat by its sequence number).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any

from hkrt.core.logs import LogLimiter
from hkrt.feed.redis_url import RedisUrl, connect, parse_redis_url

log = logging.getLogger("hkrt.redis")

DEFAULT_STREAM = "hkrt:spots"
#: entries kept in the stream (about 50 minutes of 3-second whole-market cycles; ~460 MB at 460 kB each)
DEFAULT_MAXLEN = 1000
FIELD = b"m"  # the one field of a stream entry: the message's bytes
_BATCH = 64  # XADDs per round trip at most
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 2.0


class RedisStreamSink:
    """Appends messages to a Redis stream from its own thread.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` (hkrt.feed.redis_url).
        stream: the stream's key.
        maxlen: entries the stream keeps at least (``MAXLEN ~``); the oldest are trimmed.
        max_messages, max_bytes: bounds of the queue of messages not yet in Redis (oldest dropped).
    """

    def __init__(
        self,
        url: str | RedisUrl,
        *,
        stream: str = DEFAULT_STREAM,
        maxlen: int = DEFAULT_MAXLEN,
        max_messages: int = 10_000,
        max_bytes: int = 256 << 20,
    ) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, not {maxlen}")
        if max_messages < 1 or max_bytes < 1:
            raise ValueError("max_messages and max_bytes must be at least 1")
        if not stream:
            raise ValueError("the stream name is empty")
        self.url = url if isinstance(url, RedisUrl) else parse_redis_url(url)
        self.stream = stream
        self.maxlen = maxlen
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        self._queue: deque[bytes] = deque()
        self._queued_bytes = 0
        self._in_flight = 0
        self._cond = threading.Condition()
        self._closed = False
        self._limiter = LogLimiter(interval=10.0)
        self._stats = {"appended": 0, "bytes": 0, "dropped": 0, "errors": 0, "reconnects": 0}
        self._connected = False
        self._client: Any = connect(self.url, name="hkrt-sink")
        self._thread = threading.Thread(target=self._write_loop, name="hkrt-redis-sink", daemon=True)
        self._thread.start()
        log.info("appending the feed to a Redis stream", extra={"redis": self.url.display, "stream": stream,
                                                               "maxlen": maxlen})  # fmt: skip

    def __call__(self, message: bytes) -> None:
        """Queue one message for the stream; never blocks (past the bounds the oldest are dropped)."""
        with self._cond:
            if self._closed:
                return
            self._queue.append(message)
            self._queued_bytes += len(message)
            dropped = self._trim()
            self._cond.notify()
        if dropped:
            allowed, suppressed = self._limiter.allow("dropped")
            if allowed:
                log.warning(
                    "Redis stream queue full: dropped the oldest messages (consumers will see a gap)",
                    extra={"redis": self.url.display, "stream": self.stream, "dropped": self._stats["dropped"],
                           "suppressed": suppressed},
                )  # fmt: skip

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every queued message is in Redis; False if that did not happen in ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    @property
    def connected(self) -> bool:
        """Whether the last write to Redis succeeded."""
        return self._connected

    def stats(self) -> dict[str, Any]:
        with self._cond:
            return {
                **self._stats,
                "queued": len(self._queue),
                "queued_bytes": self._queued_bytes,
                "connected": self._connected,
                "stream": self.stream,
                "maxlen": self.maxlen,
                "redis": self.url.display,
            }

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to ``timeout`` seconds), then stop; what is left is counted as dropped."""
        self.flush(timeout)
        with self._cond:
            self._closed = True
            left = len(self._queue)
            self._stats["dropped"] += left
            self._queue.clear()
            self._queued_bytes = 0
            self._cond.notify_all()
        if left:
            log.warning(
                "Redis stream sink closed with messages not written",
                extra={"dropped": left, "redis": self.url.display},
            )
        self._thread.join(timeout)
        self._client.close()

    def _trim(self) -> int:
        """Drop the oldest queued messages past the bounds (under the lock); returns how many."""
        dropped = 0
        while len(self._queue) > self.max_messages or (self._queued_bytes > self.max_bytes and len(self._queue) > 1):
            self._queued_bytes -= len(self._queue.popleft())
            dropped += 1
        self._stats["dropped"] += dropped
        return dropped

    # ------------------------------------------------------------------ writer
    def _write_loop(self) -> None:
        backoff = 0.0
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                batch = [self._queue.popleft() for _ in range(min(_BATCH, len(self._queue)))]
                size = sum(len(m) for m in batch)
                self._queued_bytes -= size
                self._in_flight = len(batch)
            try:
                pipe = self._client.pipeline(transaction=False)
                for message in batch:
                    pipe.xadd(self.stream, {FIELD: message}, maxlen=self.maxlen, approximate=True)
                pipe.execute()
            except Exception as err:  # redis.RedisError, OSError: Redis down, restarting, refusing
                self._failed(batch, size, err)
                backoff = min(_BACKOFF_MAX, backoff * 2 or _BACKOFF_FIRST)
                with self._cond:
                    self._cond.wait_for(lambda: self._closed, timeout=backoff)
                continue
            with self._cond:
                self._in_flight = 0
                self._stats["appended"] += len(batch)
                self._stats["bytes"] += size
                self._cond.notify_all()
            if not self._connected:
                self._connected = True
                if backoff:
                    self._stats["reconnects"] += 1
                    log.warning("Redis reachable again: appending the feed", extra={
                        "redis": self.url.display, "stream": self.stream, "errors": self._stats["errors"]})  # fmt: skip
            backoff = 0.0

    def _failed(self, batch: list[bytes], size: int, err: Exception) -> None:
        """Put a failed batch back in front (within the bounds), count and report the failure."""
        with self._cond:
            self._in_flight = 0
            self._stats["errors"] += 1
            self._queue.extendleft(reversed(batch))
            self._queued_bytes += size
            self._trim()
            self._cond.notify_all()
        was, self._connected = self._connected, False
        allowed, suppressed = self._limiter.allow("error")
        if allowed or was:
            log.warning(
                "cannot append to the Redis stream: retrying with backoff",
                extra={"redis": self.url.display, "stream": self.stream, "error": self.url.redact(str(err)),
                       "queued": len(self._queue), "errors": self._stats["errors"], "suppressed": suppressed},
            )  # fmt: skip
