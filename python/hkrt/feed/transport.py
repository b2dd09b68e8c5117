"""Spot transport over nng (pynng): addresses, the publisher, the subscriber socket.

Messages are wire-format spot batches (docs/wire-format.md) on an nng pub/sub socket, so
any number of consumers can subscribe.  By default the publisher listens on an ``ipc://``
path inside a per-user runtime directory that only its owner can enter (on Windows, where
nng's ipc is a named pipe, on a per-user pipe name instead); TCP is used only when asked for,
and then on 127.0.0.1 unless another interface is named.  pynng is imported by the functions
that open a socket, not with this module, so an agent fed in-process loads no socket library.

Every numbered message of a publisher session (``publisher_id`` + ``session_epoch``) is kept
for retransmission (hkrt.feed.retransmit: a memory ring plus the publisher's journal) and served
on a request/reply socket next to the feed; an idle publisher sends heartbeats; with a feed
key every message is sealed (hkrt.feed.feed_auth), and TCP beyond loopback requires one.
docs/feed-recovery.md has the details.

nng is not fork-safe: start helper processes with the ``spawn`` method.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import math
import os
import re
import secrets
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import numpy as np
import pandas as pd

from hkrt._hkrt import Spot
from hkrt.core.china_time import CHINA_TZ
from hkrt.feed.feed_auth import load_key, require_auth, seal
from hkrt.feed.journal import JournalWriter
from hkrt.feed.retransmit import (
    DEFAULT_MAX_REPLY_BYTES,
    DEFAULT_RING_BYTES,
    DEFAULT_RING_MESSAGES,
    RetransmitServer,
    SentLog,
    retransmit_address,
)
from hkrt.feed.wire import encode_heartbeat, encode_spots

if TYPE_CHECKING:
    import pynng

log = logging.getLogger("hkrt.transport")

DEFAULT_TCP_PORT = 9200
IPC_NAME = "spot.ipc"


def runtime_dir() -> Path:
    """The per-user directory for ipc sockets, created with owner-only permissions (POSIX).

    ``$XDG_RUNTIME_DIR/hkrt`` when the session has one, else ``<tmp>/hkrt-<uid>``.  An
    existing directory owned by someone else, or open to others, is refused rather than
    used: another user could otherwise read or inject quotes.  Not used on Windows (see
    :func:`default_address`).
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    path = Path(base) / "hkrt" if base else Path(tempfile.gettempdir()) / f"hkrt-{os.getuid()}"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise PermissionError(f"{path} is not a directory owned by this user; refusing to put sockets there")
    if info.st_mode & 0o077:
        raise PermissionError(f"{path} is open to other users (mode {oct(info.st_mode & 0o777)}); chmod 700 it")
    return path


def default_address() -> str:
    r"""``ipc://`` address of the default spot feed for this user.

    POSIX: a socket file in :func:`runtime_dir`.  Windows: nng's ipc is a named pipe
    (``\\.\pipe\<name>``) with no directory to guard, so the name carries the user instead
    (:func:`windows_pipe_name`); the pipe's default security lets only its creator, SYSTEM and
    administrators connect.  Another user could still claim the name first: on a shared
    machine use a feed key (docs/feed-recovery.md), which makes an agent refuse every message
    not sealed with it.
    """
    if os.name == "nt":
        return f"ipc://{windows_pipe_name(_login_name())}"
    return f"ipc://{runtime_dir() / IPC_NAME}"


def windows_pipe_name(user: str) -> str:
    """``hkrt-<user>-spot``: the default feed's pipe name on Windows.  A name that is not plain
    ASCII letters, digits, ``_`` or ``-`` (a Chinese user name, a space, a dot, which
    :func:`~hkrt.feed.retransmit.retransmit_address` would take for a suffix) is replaced by a hash
    of it: two users never share a pipe, and nng, which opens pipes by their ANSI name, never
    sees a character the code page may mangle."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", user):
        user = "u" + hashlib.sha256(user.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"hkrt-{user}-spot"


def _login_name() -> str:
    """This user's login name (Windows sets %USERNAME%); without one, a name no user has."""
    import getpass

    try:
        return getpass.getuser()
    except (ImportError, KeyError, OSError):  # no environment variable and no pwd database
        return "unknown-user"


def tcp_address(tcp: bool | int | str) -> str:
    """A TCP address from ``--tcp``: True = 127.0.0.1:9200, a port, ``host:port`` or a full URL."""
    if tcp is True:
        return f"tcp://127.0.0.1:{DEFAULT_TCP_PORT}"
    if isinstance(tcp, int) and not isinstance(tcp, bool):
        return f"tcp://127.0.0.1:{tcp}"
    text = str(tcp)
    if text.startswith("tcp://"):
        return text
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid TCP address {tcp!r}: expected a port, host:port or tcp://host:port")
    return f"tcp://{host or '127.0.0.1'}:{port}"


def resolve_addresses(address: str | None, tcp: bool | int | str | None) -> list[str]:
    """The addresses to listen on or dial: the given or default ipc one, plus TCP if asked."""
    addresses = [address or default_address()]
    if tcp:
        addresses.append(tcp_address(tcp))
    return addresses


@dataclass(frozen=True)
class CycleReport:
    """What one published cycle sent."""

    cycle_id: int
    parts: int
    spots: int
    bytes: int
    first_sequence: int
    seconds: float


SpotsLike: TypeAlias = Iterable[Spot] | pd.DataFrame | Mapping[str, Any]


_epoch_lock = threading.Lock()
_last_epoch = 0


def new_session_epoch() -> int:
    """UTC epoch microseconds now, strictly above any epoch this process handed out before,
    so two sessions of one ``publisher_id`` always differ and a later one is larger (across
    processes this holds as long as the wall clock does not step back)."""
    global _last_epoch
    with _epoch_lock:
        _last_epoch = max(time.time_ns() // 1000, _last_epoch + 1)
        return _last_epoch


class SpotPublisher:
    """Publishes spot cycles, each split into parts with a header (session, sequence, cycle, part).

    Args:
        address: where to listen; the per-user ipc address by default.
        tcp: also listen on TCP (True for 127.0.0.1:9200, a port, or ``host:port``).
        publisher_id: identifies this publisher; random by default.  Each construction is a
            new session with its own ``session_epoch`` (UTC epoch µs, larger than any earlier
            session's), so a restart is visible to consumers even with a fixed id.
        max_part_spots: spots per message; a cycle larger than that goes out in parts.
        queue_messages: messages nng queues per subscriber before it drops for that one
            (a subscriber that falls this far behind sees the loss as a sequence gap).
        record: a journal file (hkrt.feed.journal) that gets every message sent, for replay; it
            also lets the retransmission server serve messages the memory ring evicted.
        retransmit: serve retransmission requests (hkrt.feed.retransmit) on
            ``retransmit_address(a)`` of every listening address (True, the default), on the
            address given (a str), or not at all (False).
        ring_messages, ring_bytes: bounds of the memory ring of sent messages (the oldest
            are evicted first; with ``record`` they are still served from the journal).
        max_reply_bytes: messages per retransmission reply at most (a client loops).
        heartbeat_interval: after this many seconds without a message, send a heartbeat
            (the last sequence and market time) and keep sending one per interval while
            idle; 0 disables them.
        auth_key: a feed key (bytes, or hex str) that seals every message, heartbeat and
            retransmission reply (hkrt.feed.feed_auth); ``key_file`` names a file holding one;
            by default ``$HKRT_FEED_KEY`` / ``$HKRT_FEED_KEY_FILE``, else none.  Listening
            on TCP beyond loopback without a key raises ValueError.
        simulated_time: mark messages as carrying simulated or replayed times.
        changes_only: mark messages as coming from a source that sends a symbol only when it
            changed (a push feed), so agents do not take a quiet symbol for a feed gap.
    """

    def __init__(
        self,
        address: str | None = None,
        *,
        tcp: bool | int | str | None = None,
        publisher_id: int | None = None,
        max_part_spots: int = 6000,
        queue_messages: int = 1024,
        record: str | Path | None = None,
        retransmit: bool | str = True,
        ring_messages: int = DEFAULT_RING_MESSAGES,
        ring_bytes: int = DEFAULT_RING_BYTES,
        max_reply_bytes: int = DEFAULT_MAX_REPLY_BYTES,
        heartbeat_interval: float = 1.0,
        auth_key: bytes | str | None = None,
        key_file: str | Path | None = None,
        simulated_time: bool = False,
        changes_only: bool = False,
    ) -> None:
        if max_part_spots < 1:
            raise ValueError("max_part_spots must be at least 1")
        if not (isinstance(heartbeat_interval, (int, float)) and math.isfinite(heartbeat_interval)):
            raise ValueError(f"heartbeat_interval must be a number of seconds, not {heartbeat_interval!r}")
        if heartbeat_interval < 0:
            raise ValueError(f"heartbeat_interval must be >= 0 (0 disables heartbeats), not {heartbeat_interval}")
        if max_reply_bytes < 1024:
            raise ValueError(f"max_reply_bytes must be at least 1024, not {max_reply_bytes}")
        self.addresses = resolve_addresses(address, tcp)
        self._key = load_key(auth_key, key_file=key_file)
        if isinstance(retransmit, str):
            self.retransmit_addresses = [retransmit]
        elif retransmit:
            self.retransmit_addresses = [retransmit_address(a) for a in self.addresses]
        else:
            self.retransmit_addresses = []
        for addr in self.addresses:
            require_auth(addr, self._key, "publisher")
        for addr in self.retransmit_addresses:
            require_auth(addr, self._key, "retransmission server")
        self.publisher_id = publisher_id if publisher_id is not None else secrets.randbits(63)
        self.session_epoch = new_session_epoch()
        self.max_part_spots = max_part_spots
        self.heartbeat_interval = float(heartbeat_interval)
        self.simulated_time = bool(simulated_time)
        self.changes_only = bool(changes_only)
        self.sequence = 0
        self.cycle_id = 0
        self.last_market_time: Any = None
        # The market time whose day end_day() ended, until the next publish(): every heartbeat
        # meanwhile repeats the end-of-day marker, so one lost marker costs a heartbeat interval.
        self.day_ended: dt.datetime | None = None
        self._send_lock = threading.RLock()
        self._closed = False
        self._last_send = time.monotonic()
        self._stats = {"messages": 0, "bytes": 0, "heartbeats": 0, "day_ends": 0, "journal_errors": 0}
        self._sinks: list[Callable[[bytes], None]] = []  # add_sink(): more places every message goes to
        self._journal_error_logged = 0.0
        import pynng

        self._socket = pynng.Pub0(send_buffer_size=queue_messages)
        self._journal: JournalWriter | None = None
        self._retransmit: RetransmitServer | None = None
        try:
            try:
                for addr in self.addresses:
                    self._socket.listen(addr)
            except pynng.exceptions.AddressInUse as err:
                raise OSError(
                    f"cannot publish on {addr}: address already in use (is another spot server running?)"
                ) from err
            self._journal = JournalWriter(record) if record else None
            self._sent = SentLog(
                max_messages=ring_messages,
                max_bytes=ring_bytes,
                journal_path=self._journal.path if self._journal is not None else None,
            )
            if self.retransmit_addresses:
                self._retransmit = RetransmitServer(
                    self.retransmit_addresses,
                    self._sent,
                    publisher_id=self.publisher_id,
                    session_epoch=self.session_epoch,
                    key=self._key,
                    max_reply_bytes=max_reply_bytes,
                )
        except BaseException:
            self._socket.close()
            if self._journal is not None:
                self._journal.close()
            raise
        self._stop = threading.Event()
        self._heartbeat_thread: threading.Thread | None = None
        if self.heartbeat_interval > 0:
            self._heartbeat_thread = threading.Thread(target=self._heartbeats, name="hkrt-heartbeat", daemon=True)
            self._heartbeat_thread.start()
        log.info(
            "publisher listening",
            extra={
                "addresses": self.addresses,
                "retransmit": self.retransmit_addresses,
                "publisher_id": self.publisher_id,
                "session_epoch": self.session_epoch,
                "authenticated": self._key is not None,
            },
        )

    @property
    def authenticated(self) -> bool:
        """Whether messages are sealed with a feed key."""
        return self._key is not None

    @property
    def subscribers(self) -> int:
        """Subscribers connected now."""
        return len(self._socket.pipes)

    def wait_for_subscribers(self, count: int, timeout: float | None = None) -> bool:
        """Block until ``count`` subscribers are connected (pub/sub drops what is sent before)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.subscribers < count:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        time.sleep(0.05)  # let their subscriptions reach this socket
        return True

    def publish(self, spots: SpotsLike, *, market_time: Any = None) -> CycleReport:
        """Send one cycle.  ``market_time`` is the data time the cycle reached (default: its latest spot)."""
        started = time.perf_counter()
        parts = list(_split(spots, self.max_part_spots))
        if market_time is None:
            market_time = _latest_datetime(parts)
        sent = count = 0
        with self._send_lock:
            if self._closed:
                raise ValueError("publisher is closed")
            self.cycle_id += 1
            first = self.sequence + 1
            self.day_ended = None  # data again: the day (or a new one) goes on
            if market_time is not None:
                self.last_market_time = market_time
            for index, part in enumerate(parts):
                self.sequence += 1
                message = encode_spots(
                    part,
                    publisher_id=self.publisher_id,
                    sequence=self.sequence,
                    cycle_id=self.cycle_id,
                    part_index=index,
                    part_count=len(parts),
                    market_time=market_time,
                    session_epoch=self.session_epoch,
                    simulated_time=self.simulated_time,
                    changes_only=self.changes_only,
                )
                # kept (ring, journal) before it leaves, so whatever a consumer can learn of is servable
                self._sent.add(self.sequence, message, self._record(message))
                self._send(message)
                sent += len(message)
                count += _length(part)
            return CycleReport(self.cycle_id, len(parts), count, sent, first, time.perf_counter() - started)

    def _record(self, message: bytes) -> tuple[int, int] | None:
        """Journal the message; its (start, end) in the journal, None when not journaled."""
        if self._journal is None:
            return None
        start = self._journal.size
        try:
            self._journal.append(message)
        except OSError as err:  # the feed goes on; the message stays in the memory ring only
            self._stats["journal_errors"] += 1
            now = time.monotonic()
            if now - self._journal_error_logged >= 10.0:
                self._journal_error_logged = now
                log.warning(
                    "publisher journal append failed: message kept in memory only",
                    extra={
                        "path": str(self._journal.path),
                        "error": str(err),
                        "journal_errors": self._stats["journal_errors"],
                    },
                )
            return None
        return start, self._journal.size

    def _send(self, message: bytes, *, heartbeat: bool = False) -> None:
        data = seal(self._key, message) if self._key is not None else message
        self._socket.send(data)
        for sink in self._sinks:
            sink(data)
        self._last_send = time.monotonic()
        if heartbeat:
            self._stats["heartbeats"] += 1
        else:
            self._stats["messages"] += 1
            self._stats["bytes"] += len(data)

    def add_sink(self, sink: Callable[[bytes], None]) -> None:
        """Send every later message, heartbeat and end-of-day marker to ``sink`` too, as it goes out
        on the socket (sealed when the feed has a key), e.g. a :class:`hkrt.feed.redis_sink.RedisStreamSink`.
        A sink must not block: it is called under the publisher's send lock."""
        with self._send_lock:
            self._sinks.append(sink)

    def send_heartbeat(self) -> None:
        """Send a heartbeat now (the background thread does this when idle).  After
        :meth:`end_day` and until the next :meth:`publish`, it carries the end-of-day marker."""
        with self._send_lock:
            if self._closed:
                return
            ended = self.day_ended
            message = encode_heartbeat(
                publisher_id=self.publisher_id,
                session_epoch=self.session_epoch,
                sequence=self.sequence,
                market_time=ended if ended is not None else self.last_market_time,
                simulated_time=self.simulated_time,
                day_end=ended is not None,
            )
            self._send(message, heartbeat=True)

    def end_day(self, market_time: Any) -> None:
        """Tell subscribers the source has nothing more for the market day of ``market_time``
        (a datetime, naive = China local time; the day's last market time): a heartbeat flagged
        ``day_end``, numbered like every heartbeat with the last sequence sent, so a subscriber
        that missed messages before it learns of them first.  Agents on that day then complete
        its last bars (the 15:00 bars, DAY, and WEEK..YEAR when the day ends them).

        Like heartbeats it is neither journaled nor kept for retransmission; instead every
        heartbeat repeats it until the next :meth:`publish`, so a subscriber that lost it, or
        joined after it, still hears it within ``heartbeat_interval``.
        """
        when = _as_datetime(market_time)
        if when is None:
            raise ValueError(f"end_day needs the market time whose day ends, not {market_time!r}")
        with self._send_lock:
            if self._closed:
                raise ValueError("publisher is closed")
            self.day_ended = when
            self.last_market_time = when
            self.send_heartbeat()
            self._stats["day_ends"] += 1
        log.info("end of the market day sent", extra={"day": when.date().isoformat(), "market_time": str(when),
                                                      "sequence": self.sequence})  # fmt: skip

    def _heartbeats(self) -> None:
        import pynng

        interval = self.heartbeat_interval
        wait = interval
        while not self._stop.wait(wait):
            idle = time.monotonic() - self._last_send
            if idle < interval:
                wait = interval - idle
                continue
            try:
                self.send_heartbeat()
                with self._send_lock:
                    if self._journal is not None and not self._closed:
                        self._journal.sync_if_due()
            except pynng.Closed:
                break
            except Exception:  # a heartbeat must never end the thread
                log.exception("heartbeat failed")
            wait = interval

    def send_raw(self, message: bytes) -> None:
        """Send bytes as they are (tools and tests; nothing checks or seals them)."""
        with self._send_lock:
            self._socket.send(message)

    def stats(self) -> dict[str, Any]:
        """Messages and heartbeats sent, the ring, retransmissions served."""
        with self._send_lock:
            out: dict[str, Any] = dict(self._stats)
            out.update(
                publisher_id=self.publisher_id,
                session_epoch=self.session_epoch,
                sequence=self.sequence,
                subscribers=self.subscribers if not self._closed else 0,
            )
        out["ring"] = self._sent.snapshot()
        if self._retransmit is not None:
            out["retransmit"] = self._retransmit.snapshot()
        return out

    def close(self) -> None:
        with self._send_lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        if self._heartbeat_thread is not None and self._heartbeat_thread is not threading.current_thread():
            self._heartbeat_thread.join(timeout=5)
        if self._retransmit is not None:
            self._retransmit.close()
        with self._send_lock:
            self._socket.close()
            if self._journal is not None:
                self._journal.close()

    def __enter__(self) -> SpotPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_datetime(value: Any) -> dt.datetime | None:
    """A market time (datetime, pandas Timestamp, numpy datetime64, ISO text) as a naive datetime."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        return None
    if stamp is pd.NaT:
        return None
    if stamp.tzinfo is not None:  # an aware time: China local, like every time in hkrt
        stamp = stamp.tz_convert(CHINA_TZ).tz_localize(None)
    naive: dt.datetime = stamp.to_pydatetime()
    return naive


def _length(part: Any) -> int:
    if isinstance(part, Mapping):
        return len(next(iter(part.values()))) if part else 0
    return len(part)


def _split(spots: SpotsLike, size: int) -> Iterable[Any]:
    """Parts of at most ``size`` spots (a cycle of no spots is one empty part)."""
    if isinstance(spots, pd.DataFrame):
        spots = {c: spots[c].to_numpy() for c in spots.columns}
    if isinstance(spots, Mapping):
        n = _length(spots)
        for start in range(0, max(n, 1), size):
            yield {k: np.asarray(v)[start : start + size] for k, v in spots.items()}
        return
    items = spots if isinstance(spots, list) else list(spots)
    for start in range(0, max(len(items), 1), size):
        yield items[start : start + size]


def _latest_datetime(parts: list[Any]) -> Any:
    latest = None
    for part in parts:
        if isinstance(part, Mapping):
            values = np.asarray(part["datetime"])
            if len(values):
                candidate = pd.Timestamp(values.max())
                latest = candidate if latest is None or candidate > latest else latest
        else:
            for s in part:
                latest = s.datetime if latest is None or s.datetime > latest else latest
    return latest


def subscriber(addresses: list[str], *, recv_timeout_ms: int = 100, buffer_messages: int = 1024) -> pynng.Sub0:
    """A subscriber socket dialled to every address (retrying in the background until a
    publisher is there).  ``buffer_messages`` is how many messages nng holds for a slow
    consumer; beyond that it drops, and the sequence numbers reveal the loss."""
    import pynng

    sock = pynng.Sub0(recv_timeout=recv_timeout_ms, recv_buffer_size=buffer_messages)
    sock.subscribe(b"")
    for addr in addresses:
        sock.dial(addr, block=False)
    return sock
