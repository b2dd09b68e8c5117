"""The consumer side of the Redis Streams bus: one consumer of a consumer group (docs/scale-out-redis.md).

A group is one logical reader of the whole feed (an agent, a strategy host, a recorder): each message
of the stream goes to one consumer of the group, so an agent, which needs every message, runs as the
group's one active consumer, and every host that needs the feed has its own group (fan-out).  A
second consumer of the group is a replacement, not a second reader.

What :meth:`RedisGroupReader.read` returns, in this order:

1. after every (re)connection, the consumer's own pending entries (its PEL: delivered before, never
   acknowledged -- it restarted, or crashed, after reading them): nothing it read is lost;
2. every ``claim_interval`` seconds, other consumers' entries pending longer than ``claim_idle``
   (``XAUTOCLAIM``): a crashed consumer's messages are taken over;
3. new entries (``XREADGROUP ... >``), waiting up to ``block`` seconds for them.

The caller acknowledges (:meth:`ack`) an entry once it has taken the message: at least once
delivery; an entry read twice carries a sequence number the agent has already seen and is skipped.
Entries trimmed by ``MAXLEN`` after delivery and before acknowledgement come back without a message
(``None``): counted here (``trimmed_pending``), and the agent sees the sequence gap.

Redis down or restarted: :meth:`read` returns nothing while it cannot connect, retrying with a
growing backoff (counted: ``errors``, ``reconnects``; WARNING, rate-limited).  When the group is gone
(a Redis restarted without persistence lost the stream) it is created again from the start of the
stream (``group_recreated``): what the publisher appended since the restart is read, and what the
restart lost shows as a sequence gap in the agent.  A group created for the first time starts at
``start_id``: ``$`` (new messages only) by default, ``0`` to read everything the stream holds.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from hkrt.core.logs import LogLimiter
from hkrt.feed.redis_sink import DEFAULT_STREAM, FIELD
from hkrt.feed.redis_url import RedisUrl, connect, parse_redis_url

log = logging.getLogger("hkrt.redis")

Entry = tuple[bytes, bytes | None]  # (entry id, message; None when trimmed before it was acknowledged)
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 2.0


def default_consumer() -> str:
    """The host's name: a consumer that restarts on the same host finds its pending entries again."""
    return socket.gethostname() or f"pid-{os.getpid()}"


class RedisGroupReader:
    """Reads a stream as one consumer of a consumer group.

    Args:
        url: ``redis://``, ``rediss://`` or ``unix://`` (hkrt.feed.redis_url).
        group: the consumer group (created when missing, with the stream).
        consumer: this consumer's name in the group; the host name by default.
        stream: the stream's key.
        start_id: where a group created now starts: ``$`` new entries only, ``0`` the whole stream.
        claim_idle: seconds another consumer's entry must have been pending before it is claimed.
        claim_interval: seconds between claim sweeps (the first sweep runs on the first read).
        count: entries per read at most.
    """

    def __init__(
        self,
        url: str | RedisUrl,
        group: str,
        *,
        consumer: str | None = None,
        stream: str = DEFAULT_STREAM,
        start_id: str = "$",
        claim_idle: float = 30.0,
        claim_interval: float | None = None,
        count: int = 16,
    ) -> None:
        if not group:
            raise ValueError("the consumer group name is empty")
        if claim_idle < 0:
            raise ValueError(f"claim_idle must be >= 0 seconds, not {claim_idle}")
        self.url = url if isinstance(url, RedisUrl) else parse_redis_url(url)
        self.group = group
        self.consumer = consumer or default_consumer()
        self.stream = stream
        self.start_id = start_id
        self.claim_idle_ms = int(claim_idle * 1000)
        self.claim_interval = claim_interval if claim_interval is not None else max(0.5, min(claim_idle / 2, 10.0))
        self.count = count
        self._limiter = LogLimiter(interval=10.0)
        # no connection yet (redis-py connects on the first command); a missing redis package raises here
        self._client: Any = connect(self.url, timeout=5.0, name=f"hkrt-{group}-{self.consumer}")
        self._connected = False
        self._ever_connected = False
        self._pending_from: bytes | None = None  # reading own PEL from after this id; None: PEL done
        self._next_claim = 0.0
        self._backoff = 0.0
        self._retry_at = 0.0
        self._stats = {
            "read": 0,
            "pending_reread": 0,
            "claimed": 0,
            "acked": 0,
            "trimmed_pending": 0,
            "errors": 0,
            "reconnects": 0,
            "group_recreated": 0,
        }

    @property
    def display(self) -> str:
        return f"{self.url.display} stream {self.stream} group {self.group} consumer {self.consumer}"

    @property
    def connected(self) -> bool:
        return self._connected

    def stats(self) -> dict[str, Any]:
        return {**self._stats, "connected": self._connected, "group": self.group, "consumer": self.consumer,
                "stream": self.stream, "redis": self.url.display}  # fmt: skip

    # ------------------------------------------------------------------ reading
    def read(self, block: float = 0.1) -> list[Entry]:
        """The next entries (see the module's docstring for the order); [] when none came within
        ``block`` seconds or Redis cannot be reached now."""
        now = time.monotonic()
        if now < self._retry_at:
            time.sleep(min(block, self._retry_at - now))
            return []
        try:
            if not self._connected:
                self._connect()
            if self._pending_from is not None:
                entries = self._read_pending()
                if entries:
                    return entries
            if time.monotonic() >= self._next_claim:
                self._next_claim = time.monotonic() + self.claim_interval
                entries = self._claim()
                if entries:
                    return entries
            return self._read_new(block)
        except Exception as err:  # redis.RedisError, OSError
            self._failed(err)
            return []

    def join(self) -> bool:
        """Connect and create the group now (so that a group new to the stream starts at this moment,
        not at the receiver's first read); False, and retried by :meth:`read`, when Redis cannot be reached."""
        try:
            self._connect()
        except Exception as err:
            self._failed(err)
            return False
        return True

    def ack(self, ids: list[bytes]) -> None:
        """Acknowledge entries the caller has taken (a failure leaves them pending: they come back
        from the PEL after the reconnection, and are skipped as repeats)."""
        if not ids:
            return
        try:
            self._stats["acked"] += int(self._client.xack(self.stream, self.group, *ids))
        except Exception as err:
            self._failed(err)

    def close(self) -> None:
        self._client.close()
        self._connected = False

    def _connect(self) -> None:
        self._ensure_group(recreate=False)
        self._pending_from = b"0"
        if self._ever_connected:
            self._stats["reconnects"] += 1
            log.warning("Redis reachable again: reading the stream", extra={"redis": self.url.display,
                        "stream": self.stream, "group": self.group, "errors": self._stats["errors"]})  # fmt: skip
        self._connected = self._ever_connected = True
        self._backoff = 0.0

    def _ensure_group(self, *, recreate: bool) -> None:
        """Create the group (and the stream) unless it exists.  A group that vanished under a running
        consumer (Redis restarted without persistence) starts at the stream's beginning."""
        start = "0" if recreate or self._ever_connected else self.start_id
        try:
            self._client.xgroup_create(self.stream, self.group, id=start, mkstream=True)
        except Exception as err:
            if "BUSYGROUP" in str(err):
                return  # it exists
            raise
        if recreate or self._ever_connected:
            self._stats["group_recreated"] += 1
            log.warning(
                "the consumer group was gone (Redis restarted without persistence?): created again at the "
                "stream's start; what the restart lost shows as a sequence gap",
                extra={"redis": self.url.display, "stream": self.stream, "group": self.group},
            )
        else:
            log.info("created the consumer group", extra={"stream": self.stream, "group": self.group, "start": start})

    def _read_pending(self) -> list[Entry]:
        assert self._pending_from is not None
        reply = self._xreadgroup(self._pending_from, None)
        if not reply:
            self._pending_from = None
            return []
        self._pending_from = reply[-1][0]
        entries = self._entries(reply)
        self._stats["pending_reread"] += len(entries)
        return entries

    def _claim(self) -> list[Entry]:
        out: list[Entry] = []
        start: bytes | str = "0-0"
        while True:
            reply = self._client.xautoclaim(self.stream, self.group, self.consumer, self.claim_idle_ms, start,
                                            count=self.count)  # fmt: skip
            start, claimed = reply[0], reply[1]
            deleted = reply[2] if len(reply) > 2 else []
            out.extend(self._entries(claimed))
            if deleted:  # trimmed while pending: XAUTOCLAIM has dropped them from the PEL
                self._stats["trimmed_pending"] += len(deleted)
            if start in (b"0-0", "0-0") or len(out) >= self.count * 4:
                break
        if out:
            self._stats["claimed"] += len(out)
            log.warning(
                "claimed the pending messages of another consumer of the group",
                extra={"stream": self.stream, "group": self.group, "consumer": self.consumer, "claimed": len(out)},
            )
        return out

    def _read_new(self, block: float) -> list[Entry]:
        reply = self._xreadgroup(">", max(1, int(block * 1000)))
        entries = self._entries(reply)
        self._stats["read"] += len(entries)
        return entries

    def _xreadgroup(self, start: bytes | str, block_ms: int | None) -> list[Any]:
        try:
            reply = self._client.xreadgroup(self.group, self.consumer, {self.stream: start}, count=self.count,
                                            block=block_ms)  # fmt: skip
        except Exception as err:
            if "NOGROUP" not in str(err):
                raise
            self._ensure_group(recreate=True)
            return []
        return list(reply[0][1]) if reply else []

    def _entries(self, raw: list[Any]) -> list[Entry]:
        out: list[Entry] = []
        for entry_id, fields in raw:
            message = fields.get(FIELD) if fields else None
            if message is None:
                self._stats["trimmed_pending"] += 1
            out.append((entry_id, message))
        return out

    def _failed(self, err: Exception) -> None:
        self._stats["errors"] += 1
        was, self._connected = self._connected, False
        self._backoff = min(_BACKOFF_MAX, self._backoff * 2 or _BACKOFF_FIRST)
        self._retry_at = time.monotonic() + self._backoff
        allowed, suppressed = self._limiter.allow("error")
        if allowed or was:
            log.warning(
                "cannot read the Redis stream: reconnecting with backoff",
                extra={"redis": self.url.display, "stream": self.stream, "group": self.group,
                       "error": self.url.redact(str(err)), "errors": self._stats["errors"], "suppressed": suppressed},
            )  # fmt: skip
