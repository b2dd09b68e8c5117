"""An append-only journal of wire messages, for recording a feed and replaying it.

File layout: the 8-byte magic ``HKRTJNL1``, then records of
``u32 length | u32 crc32 | i64 recorded_us | payload``, little-endian, where the CRC covers
the timestamp and the payload.  A crash can leave a torn last record (short, or with a bad
CRC): the reader stops there and says so, and a writer reopening the file cuts it off, so a
torn record is never misread as data.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("hkrt.journal")

MAGIC = b"HKRTJNL1"
_HEAD = struct.Struct("<IIq")
MAX_RECORD = 256 * 1024 * 1024  # a length beyond this is corruption, not a message


@dataclass(frozen=True)
class Record:
    offset: int
    recorded_us: int  # UTC epoch microseconds
    payload: bytes


@dataclass
class ScanResult:
    records: int = 0
    valid_bytes: int = len(MAGIC)  # where the good part of the file ends
    torn_bytes: int = 0  # bytes after it that do not form a whole, checked record


def _crc(recorded_us: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<q", recorded_us)))


def read_journal(path: str | Path, scan: ScanResult | None = None) -> Iterator[Record]:
    """The journal's whole, checked records in order; ``scan`` receives what was found."""
    scan = scan if scan is not None else ScanResult()
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if size < len(MAGIC):
            if file.read() != MAGIC[:size]:
                raise ValueError(f"{path} is not an hkrt journal (bad magic)")
            scan.valid_bytes, scan.torn_bytes = size, 0
            return
        data = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ)  # a day's journal need not fit in memory
    try:
        yield from _records(path, data, scan)
    finally:
        data.close()


def _records(path: str | Path, data: mmap.mmap, scan: ScanResult) -> Iterator[Record]:
    if data[: len(MAGIC)] != MAGIC:
        raise ValueError(f"{path} is not an hkrt journal (bad magic)")
    pos = len(MAGIC)
    while pos < len(data):
        if pos + _HEAD.size > len(data):
            break
        length, crc, recorded_us = _HEAD.unpack_from(data, pos)
        end = pos + _HEAD.size + length
        if length > MAX_RECORD or end > len(data):
            break
        payload = data[pos + _HEAD.size : end]
        if _crc(recorded_us, payload) != crc:
            break
        yield Record(pos, recorded_us, payload)
        scan.records += 1
        pos = end
        scan.valid_bytes = pos
    scan.torn_bytes = len(data) - scan.valid_bytes
    if scan.torn_bytes:
        log.warning("journal has a torn tail", extra={"path": str(path), "torn_bytes": scan.torn_bytes})


FSYNC_POLICIES = ("interval", "always", "never")


class JournalWriter:
    """Appends records.

    Every record goes to the operating system with one ``write`` as it is appended (no
    buffering in the process), so a crash of the process loses nothing already appended.
    ``fsync`` decides when it also reaches the disk (what survives a power loss): "always"
    (every record), "never" (left to the OS), "interval" (at most ``fsync_interval``
    seconds after a record, checked on each append and :meth:`sync_if_due`), or a number
    of seconds (the same as "interval" with that interval).

    Reopening an existing journal first cuts off a torn last record.  A failed append
    (e.g. disk full) raises OSError after cutting the file back to its last whole record,
    so a later append can go on where the journal is still good.
    """

    def __init__(self, path: str | Path, *, fsync: str | float = "interval", fsync_interval: float = 1.0) -> None:
        if isinstance(fsync, str):
            if fsync not in FSYNC_POLICIES:
                raise ValueError(f"fsync must be one of {FSYNC_POLICIES} or a number of seconds, not {fsync!r}")
            self._policy, self._interval = fsync, float(fsync_interval)
        else:
            self._policy, self._interval = "interval", float(fsync)
        self.path = Path(path)
        self.torn_bytes = 0  # cut off when the journal was opened
        self._last_sync = time.monotonic()
        self._dirty = False
        if self.path.exists() and self.path.stat().st_size > 0:
            scan = ScanResult()
            for _ in read_journal(self.path, scan):
                pass
            if scan.torn_bytes:
                os.truncate(self.path, scan.valid_bytes)
                self.torn_bytes = scan.torn_bytes
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            self.size = scan.valid_bytes
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o644)
            self.size = 0
            try:
                self._write(MAGIC)
            except OSError:
                os.close(self._fd)
                raise

    @property
    def fsync(self) -> str:
        return self._policy

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError:
            with contextlib.suppress(OSError):  # never leave a partial record (else reopening cuts it)
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)

    def append(self, payload: bytes, recorded_us: int | None = None) -> None:
        if self._fd < 0:
            raise ValueError(f"journal {self.path} is closed")
        stamp = time.time_ns() // 1000 if recorded_us is None else recorded_us
        self._write(_HEAD.pack(len(payload), _crc(stamp, payload), stamp) + bytes(payload))
        self._dirty = True
        if self._policy == "always":
            self.flush(sync=True)
        elif self._policy == "interval":
            self.sync_if_due()

    def sync_if_due(self) -> None:
        """fsync if the interval policy asks for it now (call when idle, too)."""
        if self._dirty and self._policy == "interval" and time.monotonic() - self._last_sync >= self._interval:
            self.flush(sync=True)

    def flush(self, *, sync: bool = False) -> None:
        """Records are written as they are appended; ``sync`` also forces them to the disk."""
        if sync and self._fd >= 0:
            os.fsync(self._fd)
            self._last_sync = time.monotonic()
            self._dirty = False

    def close(self) -> None:
        if self._fd >= 0:
            try:
                if self._policy != "never":
                    self.flush(sync=True)
            finally:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
