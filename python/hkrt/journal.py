"""An append-only journal of wire messages, for recording a feed and replaying it.

File layout: the 8-byte magic ``HKRTJNL1``, then records of
``u32 length | u32 crc32 | i64 recorded_us | payload``, little-endian, where the CRC covers
the timestamp and the payload.  A crash can leave a torn last record (short, or with a bad
CRC): the reader stops there and says so, and a writer reopening the file cuts it off, so a
torn record is never misread as data.
"""

from __future__ import annotations

import logging
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
    data = Path(path).read_bytes()
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


class JournalWriter:
    """Appends records; ``fsync`` is "never", "always" (every record) or a number of seconds
    between syncs.  Reopening an existing journal first cuts off a torn last record."""

    def __init__(self, path: str | Path, *, fsync: str | float = 1.0) -> None:
        self.path = Path(path)
        self._fsync = fsync
        self._last_sync = time.monotonic()
        if self.path.exists() and self.path.stat().st_size > 0:
            scan = ScanResult()
            for _ in read_journal(self.path, scan):
                pass
            if scan.torn_bytes:
                os.truncate(self.path, scan.valid_bytes)
            self._file = open(self.path, "ab")  # noqa: SIM115 - held open for appends
        else:
            self._file = open(self.path, "wb")  # noqa: SIM115
            self._file.write(MAGIC)

    def append(self, payload: bytes, recorded_us: int | None = None) -> None:
        stamp = time.time_ns() // 1000 if recorded_us is None else recorded_us
        self._file.write(_HEAD.pack(len(payload), _crc(stamp, payload), stamp) + payload)
        if self._fsync == "always" or (
            isinstance(self._fsync, (int, float)) and time.monotonic() - self._last_sync >= self._fsync
        ):
            self.flush(sync=True)

    def flush(self, *, sync: bool = False) -> None:
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())
            self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self._file.closed:
            self.flush(sync=self._fsync != "never")
            self._file.close()

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
