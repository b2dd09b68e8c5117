"""Spot transport over nng (pynng): addresses, the publisher, the subscriber socket.

Messages are wire-format spot batches (docs/wire-format.md) on an nng pub/sub socket, so
any number of consumers can subscribe.  By default the publisher listens on an ``ipc://``
path inside a per-user runtime directory that only its owner can enter; TCP is used only
when asked for, and then on 127.0.0.1 unless another interface is named.

nng is not fork-safe: start helper processes with the ``spawn`` method.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pynng

from hkrt._hkrt import Spot
from hkrt.journal import JournalWriter
from hkrt.wire import encode_spots

log = logging.getLogger("hkrt.transport")

DEFAULT_TCP_PORT = 9200
IPC_NAME = "spot.ipc"


def runtime_dir() -> Path:
    """The per-user directory for ipc sockets, created with owner-only permissions.

    ``$XDG_RUNTIME_DIR/hkrt`` when the session has one, else ``<tmp>/hkrt-<uid>``.  An
    existing directory owned by someone else, or open to others, is refused rather than
    used: another user could otherwise read or inject quotes.
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
    """``ipc://`` address of the default spot feed for this user."""
    return f"ipc://{runtime_dir() / IPC_NAME}"


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


SpotsLike = Iterable[Spot] | pd.DataFrame | Mapping[str, Any]


class SpotPublisher:
    """Publishes spot cycles, each split into parts with a header (sequence, cycle, part).

    Args:
        address: where to listen; the per-user ipc address by default.
        tcp: also listen on TCP (True for 127.0.0.1:9200, a port, or ``host:port``).
        publisher_id: identifies this publisher run; random by default, so a restart is
            visible to consumers as a new stream.
        max_part_spots: spots per message; a cycle larger than that goes out in parts.
        queue_messages: messages nng queues per subscriber before it drops for that one
            (a subscriber that falls this far behind sees the loss as a sequence gap).
        record: a journal file (hkrt.journal) that gets every message sent, for replay.
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
    ) -> None:
        if max_part_spots < 1:
            raise ValueError("max_part_spots must be at least 1")
        self.addresses = resolve_addresses(address, tcp)
        self.publisher_id = publisher_id if publisher_id is not None else secrets.randbits(63)
        self.max_part_spots = max_part_spots
        self.sequence = 0
        self.cycle_id = 0
        self._socket = pynng.Pub0(send_buffer_size=queue_messages)
        try:
            for addr in self.addresses:
                self._socket.listen(addr)
        except pynng.exceptions.AddressInUse as err:
            self._socket.close()
            raise OSError(
                f"cannot publish on {addr}: address already in use (is another spot server running?)"
            ) from err
        self._journal = JournalWriter(record) if record else None
        log.info("publisher listening", extra={"addresses": self.addresses, "publisher_id": self.publisher_id})

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
        self.cycle_id += 1
        first = self.sequence + 1
        if market_time is None:
            market_time = _latest_datetime(parts)
        sent = count = 0
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
            )
            self._socket.send(message)
            if self._journal is not None:
                self._journal.append(message)
            sent += len(message)
            count += _length(part)
        return CycleReport(self.cycle_id, len(parts), count, sent, first, time.perf_counter() - started)

    def send_raw(self, message: bytes) -> None:
        """Send bytes as they are (tools and tests; nothing checks them)."""
        self._socket.send(message)

    def close(self) -> None:
        self._socket.close()
        if self._journal is not None:
            self._journal.close()

    def __enter__(self) -> SpotPublisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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
    sock = pynng.Sub0(recv_timeout=recv_timeout_ms, recv_buffer_size=buffer_messages)
    sock.subscribe(b"")
    for addr in addresses:
        sock.dial(addr, block=False)
    return sock
