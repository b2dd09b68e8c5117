"""An append-only journal of wire messages, for recording a feed and replaying it.

Format 2 (written): the 8-byte magic ``HKRTJNL2``, then records of::

    sync "\\xe7\\x1fJr" | u32 length | i64 recorded_us | u32 crc | u32 head_crc | payload

little-endian.  ``crc`` covers the length, the timestamp and the payload; ``head_crc`` covers
the length, the timestamp and ``crc``.  The sync marker lets a reader find the next record
after a damaged one: it scans for the marker and accepts a candidate only if its header CRC
verifies, its length is within :data:`MAX_RECORD` and the file, and its CRC verifies.  The
header CRC rejects a false marker without reading the length it claims, so a scan of any
file costs time in proportion to its size.

Format 1 (still read; appended to in its own format): ``HKRTJNL1``, then records of
``u32 length | u32 crc32 | i64 recorded_us | payload`` with the CRC over timestamp and
payload.  It has no marker, so a reader stops at its first bad record and reports the rest
as torn.

Nothing here deletes bytes it could not read.  :func:`read_journal` yields every intact
record and reports the damage in a :class:`ScanResult`; :func:`salvage` keeps a damaged
file's original bytes as a ``.corrupt`` copy beside it and atomically rewrites the journal
with its intact records; :class:`JournalWriter` salvages a damaged file before appending.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import mmap
import os
import shutil
import struct
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("hkrt.journal")

MAGIC_V1 = b"HKRTJNL1"
MAGIC_V2 = b"HKRTJNL2"
MAGIC = MAGIC_V2  # what a writer puts at the start of a new file
SYNC = b"\xe7\x1fJr"  # starts every format-2 record; not ASCII text, not zeros, not 0xff
_HEAD_V1 = struct.Struct("<IIq")  # length, crc, recorded_us
_HEAD_V2 = struct.Struct("<4sIqII")  # sync, length, recorded_us, crc, head_crc
_LENGTH_STAMP = struct.Struct("<Iq")
MAX_RECORD = 256 * 1024 * 1024  # a length beyond this is corruption, not a message
MAX_LISTED_REGIONS = 64  # corrupt regions listed by offset; all are counted
MAX_CORRUPT_COPIES = 1000  # .corrupt copies of one journal before salvage refuses to make more


@dataclass(frozen=True)
class Record:
    offset: int  # where the record starts in the file
    recorded_us: int  # UTC epoch microseconds
    payload: bytes


@dataclass
class ScanResult:
    """What a read of a journal found (filled in as :func:`read_journal` goes).

    Every byte of the file is accounted for: the magic (when intact), intact records,
    ``corrupt_bytes`` (damage with an intact record after it) and ``torn_bytes`` (bytes after
    the last intact record that hold none: a crash in mid-write, a damaged last record, or a
    file with nothing recognisable).
    """

    version: int = 0  # 2 or 1: the file's format; 0 when the magic is bad or torn and no record says which
    records: int = 0  # intact records read
    size: int = 0  # the file's size when the read began
    valid_bytes: int = len(MAGIC)  # where the last intact record ends (the magic's end when none)
    torn_bytes: int = 0
    bad_magic: bool = False  # the first 8 bytes are not a journal magic
    torn_magic: bool = False  # the file is shorter than a magic (a crash while creating it)
    corrupt_regions: int = 0  # damaged stretches skipped between intact records (a bad magic counts)
    corrupt_bytes: int = 0
    regions: list[tuple[int, int]] = field(default_factory=list)  # (offset, bytes), the first MAX_LISTED_REGIONS
    complete: bool = False  # the read reached the end of the file

    @property
    def damaged(self) -> bool:
        return bool(self.bad_magic or self.torn_magic or self.corrupt_regions or self.torn_bytes)

    @property
    def recognised(self) -> bool:
        """Whether anything in the file is a journal: an intact magic or record."""
        return self.records > 0 or not (self.bad_magic or self.torn_magic)

    @property
    def skipped_bytes(self) -> int:
        return self.corrupt_bytes + self.torn_bytes

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["regions"] = [list(r) for r in self.regions]
        out["damaged"] = self.damaged
        return out

    def _region(self, start: int, end: int) -> None:
        self.corrupt_regions += 1
        self.corrupt_bytes += end - start
        if len(self.regions) < MAX_LISTED_REGIONS:
            self.regions.append((start, end - start))


def _crc_v1(recorded_us: int, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(struct.pack("<q", recorded_us)))


def _encode_v1(payload: bytes, recorded_us: int) -> bytes:
    return _HEAD_V1.pack(len(payload), _crc_v1(recorded_us, payload), recorded_us) + payload


def _encode_v2(payload: bytes, recorded_us: int) -> bytes:
    length_stamp = _LENGTH_STAMP.pack(len(payload), recorded_us)
    crc = zlib.crc32(payload, zlib.crc32(length_stamp))
    head_crc = zlib.crc32(length_stamp + struct.pack("<I", crc))
    return _HEAD_V2.pack(SYNC, len(payload), recorded_us, crc, head_crc) + payload


def _v1_at(data: mmap.mmap, pos: int, size: int) -> Record | None:
    """The intact format-1 record at ``pos``, if there is one."""
    if pos + _HEAD_V1.size > size:
        return None
    length, crc, recorded_us = _HEAD_V1.unpack_from(data, pos)
    end = pos + _HEAD_V1.size + length
    if length > MAX_RECORD or end > size:
        return None
    payload = data[pos + _HEAD_V1.size : end]
    return Record(pos, recorded_us, payload) if _crc_v1(recorded_us, payload) == crc else None


def _v2_at(data: mmap.mmap, pos: int, size: int) -> Record | None:
    """The intact format-2 record at ``pos``, if there is one."""
    if pos + _HEAD_V2.size > size:
        return None
    sync, length, recorded_us, crc, head_crc = _HEAD_V2.unpack_from(data, pos)
    if sync != SYNC:
        return None
    if zlib.crc32(data[pos + 4 : pos + 20]) != head_crc:  # length, recorded_us, crc
        return None
    end = pos + _HEAD_V2.size + length
    if length > MAX_RECORD or end > size:
        return None
    payload = data[pos + _HEAD_V2.size : end]
    return (
        Record(pos, recorded_us, payload) if zlib.crc32(payload, zlib.crc32(data[pos + 4 : pos + 16])) == crc else None
    )


def read_journal(path: str | Path, scan: ScanResult | None = None, *, log_damage: bool = True) -> Iterator[Record]:
    """Every intact record of the journal, in file order; ``scan`` receives what was found.

    Never raises for damage (only OSError when the file cannot be read): a damaged record is
    skipped and reading resumes at the next intact one (format 2), a bad magic is skipped
    the same way, and what was skipped is in ``scan`` and, unless ``log_damage`` is False
    (the caller reports it), in one WARNING when the read ends.  The file is only read.
    """
    scan = scan if scan is not None else ScanResult()
    try:
        yield from _scan(path, scan)
    finally:
        if log_damage and scan.damaged:
            log.warning(
                "journal is damaged: read its intact records, skipped the rest (salvage() keeps and repairs it)",
                extra={"path": str(path), **damage_fields(scan)},
            )


def damage_fields(scan: ScanResult) -> dict[str, Any]:
    """What a scan found damaged, as log fields (one place for every reader of a journal)."""
    return {
        "records": scan.records,
        "corrupt_regions": scan.corrupt_regions,
        "corrupt_bytes": scan.corrupt_bytes,
        "regions": scan.regions[:8],
        "torn_bytes": scan.torn_bytes,
        "bad_magic": scan.bad_magic,
        "torn_magic": scan.torn_magic,
        "complete": scan.complete,
    }


def _scan(path: str | Path, scan: ScanResult) -> Iterator[Record]:
    """read_journal without the log line."""
    with open(Path(path).expanduser(), "rb") as file:
        size = scan.size = os.fstat(file.fileno()).st_size
        if size < len(MAGIC):
            head = file.read()
            scan.valid_bytes = 0
            scan.torn_bytes = len(head)
            if MAGIC_V2.startswith(head) or MAGIC_V1.startswith(head):
                scan.torn_magic = True
            else:
                scan.bad_magic = True
            scan.complete = True
            return
        data = mmap.mmap(file.fileno(), size, access=mmap.ACCESS_READ)  # a day's journal need not fit in memory
    try:
        magic = data[: len(MAGIC)]
        if magic == MAGIC_V2:
            scan.version = 2
            yield from _records_v2(data, size, len(MAGIC), None, scan)
        elif magic == MAGIC_V1:
            scan.version = 1
            yield from _records_v1(data, size, len(MAGIC), None, scan)
        else:
            scan.bad_magic = True
            scan.valid_bytes = 0
            # which format follows the bad magic: a record right after it says; else scan for markers
            if _v2_at(data, len(MAGIC), size) is None and _v1_at(data, len(MAGIC), size) is not None:
                scan.version = 1
                yield from _records_v1(data, size, len(MAGIC), 0, scan)
            else:
                first = data.find(SYNC, 0)
                yield from _records_v2(data, size, first if first >= 0 else size, 0, scan)
        scan.complete = True
    finally:
        data.close()


def _records_v1(data: mmap.mmap, size: int, pos: int, damage_start: int | None, scan: ScanResult) -> Iterator[Record]:
    """Format 1 has no marker to resynchronise on: the first bad record ends the read."""
    while True:
        record = _v1_at(data, pos, size)
        if record is None:
            break
        if damage_start is not None:
            scan._region(damage_start, pos)
            damage_start = None
        pos = record.offset + _HEAD_V1.size + len(record.payload)
        scan.records += 1
        scan.valid_bytes = pos
        yield record
    scan.torn_bytes = size - (pos if damage_start is None else damage_start)


def _records_v2(data: mmap.mmap, size: int, pos: int, damage_start: int | None, scan: ScanResult) -> Iterator[Record]:
    """Format 2: after a damaged stretch, the next marker that starts an intact record."""
    while pos < size:
        record = _v2_at(data, pos, size)
        if record is None:
            if damage_start is None:
                damage_start = pos
            pos = data.find(SYNC, pos + 1)
            if pos < 0:
                break
            continue
        if damage_start is not None:
            scan._region(damage_start, pos)
            damage_start = None
        pos = record.offset + _HEAD_V2.size + len(record.payload)
        scan.version = 2  # (after a bad magic, the records say which format)
        scan.records += 1
        scan.valid_bytes = pos
        yield record
    if damage_start is not None:
        scan.torn_bytes = size - damage_start


# ------------------------------------------------------------------ salvage


@dataclass
class SalvageReport:
    """What :func:`salvage` found and did.

    ``action``: "none" (the file was whole: untouched), "rewritten" (the intact records were
    kept, the original is ``corrupt_copy``), "replaced" (nothing recognisable: the original
    is ``corrupt_copy``, the journal is now empty).
    """

    path: str
    action: str
    version: int  # format of the original (0: not recognisable)
    records: int  # intact records, all kept
    bad_magic: bool
    torn_magic: bool
    corrupt_regions: int
    corrupt_bytes: int
    regions: list[tuple[int, int]]
    torn_bytes: int
    original_bytes: int
    kept_bytes: int  # the journal's size afterwards
    corrupt_copy: str | None  # where the original bytes are kept (None: untouched, or an empty file)
    seconds: float = 0.0

    @property
    def damaged(self) -> bool:
        return self.action != "none"

    @property
    def skipped_bytes(self) -> int:
        return self.corrupt_bytes + self.torn_bytes

    def as_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["regions"] = [list(r) for r in self.regions]
        return out


def salvage(path: str | Path) -> SalvageReport:
    """Make a damaged journal whole again without losing a byte of it.

    An undamaged file is left untouched.  A damaged one (bad or torn magic, corrupt records
    in the middle, a torn tail) keeps its original bytes as ``<name>.corrupt`` beside it
    (``<name>.2.corrupt`` ... if that exists: a copy is never overwritten; a hard link where
    the file system allows, else a copy), and is atomically replaced (temporary file, fsync,
    rename, directory fsync on POSIX) by a format-2 journal of its intact records in order,
    with their original timestamps.  A file with nothing recognisable becomes an empty
    journal.  What was skipped is logged at ERROR and returned.

    Raises only OSError (the file cannot be read, or the rewrite cannot be written: then
    the original is unchanged), never for the file's content.  Needs free space for the
    intact records (and for the original too where hard links are not supported).
    """
    path = Path(path).expanduser()
    started = time.perf_counter()
    first = ScanResult()
    for _ in _scan(path, first):
        pass
    if not first.damaged:
        return _report(path, "none", first, first.size, None, started)
    scan, tmp = ScanResult(), None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".salvage")
        tmp = Path(tmp_name)
        with os.fdopen(fd, "wb") as out:
            out.write(MAGIC_V2)
            for record in _scan(path, scan):  # the file again: what is written is what this read verified
                out.write(_encode_v2(record.payload, record.recorded_us))
            out.flush()
            os.fsync(out.fileno())
            kept_bytes = out.tell()
        corrupt_copy = _keep_original(path) if scan.size else None
        os.replace(tmp, path)
        tmp = None
        fsync_directory(path.parent)
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    action = "rewritten" if scan.recognised else "replaced"
    report = _report(path, action, scan, kept_bytes, corrupt_copy, started)
    if action == "rewritten":
        message = "journal was damaged: kept its intact records, the original bytes are in the corrupt copy"
    elif corrupt_copy is not None:
        message = "journal held nothing recognisable: moved it to the corrupt copy and started an empty one"
    else:
        message = "journal file was empty (a crash while creating it): wrote its magic"
    log.error(
        message,
        extra={
            "path": str(path),
            "action": action,
            "corrupt_copy": corrupt_copy,
            "kept_records": scan.records,
            "corrupt_regions": scan.corrupt_regions,
            "corrupt_bytes": scan.corrupt_bytes,
            "regions": scan.regions[:8],
            "torn_bytes": scan.torn_bytes,
            "bad_magic": scan.bad_magic,
            "torn_magic": scan.torn_magic,
        },
    )
    return report


def _report(
    path: Path, action: str, scan: ScanResult, kept_bytes: int, corrupt_copy: str | None, started: float
) -> SalvageReport:
    return SalvageReport(
        path=str(path),
        action=action,
        version=scan.version,
        records=scan.records,
        bad_magic=scan.bad_magic,
        torn_magic=scan.torn_magic,
        corrupt_regions=scan.corrupt_regions,
        corrupt_bytes=scan.corrupt_bytes,
        regions=list(scan.regions),
        torn_bytes=scan.torn_bytes,
        original_bytes=scan.size,
        kept_bytes=kept_bytes,
        corrupt_copy=corrupt_copy,
        seconds=time.perf_counter() - started,
    )


def corrupt_copy_names(path: str | Path) -> Iterator[Path]:
    """Where salvage keeps a damaged original: ``<name>.corrupt``, then ``<name>.2.corrupt`` ..."""
    path = Path(path)
    yield path.with_name(path.name + ".corrupt")
    for n in range(2, MAX_CORRUPT_COPIES + 1):
        yield path.with_name(f"{path.name}.{n}.corrupt")


def _keep_original(path: Path) -> str:
    """Link (or copy) the file to its first free ``.corrupt`` name; never overwrites one."""
    for target in corrupt_copy_names(path):
        try:
            os.link(path, target)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (some file systems, some Windows set-ups): copy
            try:
                with open(path, "rb") as src, open(target, "xb") as dst:
                    shutil.copyfileobj(src, dst, 1024 * 1024)
                    dst.flush()
                    os.fsync(dst.fileno())
            except FileExistsError:
                continue
            except OSError:
                with contextlib.suppress(OSError):
                    target.unlink()
                raise
        return str(target)
    raise FileExistsError(f"{path}: {MAX_CORRUPT_COPIES} corrupt copies exist already; move them away")


def fsync_directory(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (the journal and the store both need it)."""
    if os.name == "nt":  # directories cannot be opened for fsync there; NTFS journals the rename
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ------------------------------------------------------------------ writing

FSYNC_POLICIES = ("interval", "always", "never")
_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation


class JournalWriter:
    """Appends records.

    Every record goes to the operating system with one ``write`` as it is appended (no
    buffering in the process), so a crash of the process loses nothing already appended.
    ``fsync`` decides when it also reaches the disk (what survives a power loss): "always"
    (every record), "never" (left to the OS), "interval" (at most ``fsync_interval``
    seconds after a record, checked on each append and :meth:`sync_if_due`), or a number
    of seconds (the same as "interval" with that interval).

    A new file is written in format 2.  Reopening an existing journal first runs
    :func:`salvage` on it (a damaged file keeps its intact records, its original bytes go to
    a ``.corrupt`` copy; ``salvage_report`` says what happened), then appends in the file's
    own format (a whole format-1 file stays format 1).  A failed append (e.g. disk full)
    raises OSError after cutting the file back to its last whole record, so a later append
    can go on where the journal is still good.
    """

    def __init__(self, path: str | Path, *, fsync: str | float = "interval", fsync_interval: float = 1.0) -> None:
        if isinstance(fsync, str):
            if fsync not in FSYNC_POLICIES:
                raise ValueError(f"fsync must be one of {FSYNC_POLICIES} or a number of seconds, not {fsync!r}")
            self._policy, self._interval = fsync, float(fsync_interval)
        else:
            self._policy, self._interval = "interval", float(fsync)
        self.path = Path(path).expanduser()
        self.salvage_report: SalvageReport | None = None  # set when the opened file was damaged
        self.torn_bytes = 0  # bytes of a torn tail the salvage on opening moved to the .corrupt copy
        self._last_sync = time.monotonic()
        self._dirty = False
        self.version = 2
        if self.path.exists() and self.path.stat().st_size > 0:
            report = salvage(self.path)
            if report.damaged:
                self.salvage_report = report
                self.torn_bytes = report.torn_bytes
            else:
                self.version = report.version
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | _O_BINARY)
            self.size = os.fstat(self._fd).st_size
        else:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | _O_BINARY, 0o644)
            self.size = 0
            try:
                self._write(MAGIC_V2)
            except OSError:
                os.close(self._fd)
                raise
        self._encode = _encode_v2 if self.version == 2 else _encode_v1

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
            with contextlib.suppress(OSError):  # never leave a partial record (a reader would skip it as damage)
                os.ftruncate(self._fd, self.size)
            raise
        self.size += len(data)

    def append(self, payload: bytes, recorded_us: int | None = None) -> None:
        if self._fd < 0:
            raise ValueError(f"journal {self.path} is closed")
        stamp = time.time_ns() // 1000 if recorded_us is None else recorded_us
        self._write(self._encode(bytes(payload), stamp))
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
