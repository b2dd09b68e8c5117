"""The journal: records round-trip in format 2; a torn tail is detected, never misread, and on
reopen kept aside (``.corrupt``) while the intact records stay; format 1 is still read and
appended to in its own format."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import pytest

from hkrt.feed.journal import MAGIC, MAGIC_V1, MAGIC_V2, SYNC, JournalWriter, ScanResult, read_journal

HEAD_V2 = 24  # sync, length, recorded_us, crc, head_crc


def write(path: Path, payloads: list[bytes]) -> None:
    with JournalWriter(path, fsync="never") as w:
        for i, p in enumerate(payloads):
            w.append(p, recorded_us=1_000 + i)


def write_v1(path: Path, payloads: list[bytes]) -> None:
    """A format-1 file as the previous writer made it (no marker; CRC over timestamp and payload)."""
    out = bytearray(MAGIC_V1)
    for i, p in enumerate(payloads):
        stamp = 1_000 + i
        out += struct.pack("<IIq", len(p), zlib.crc32(p, zlib.crc32(struct.pack("<q", stamp))), stamp) + p
    path.write_bytes(bytes(out))


def test_round_trip_in_format_2(tmp_path: Path) -> None:
    path = tmp_path / "j"
    payloads = [b"", b"a", os.urandom(1000)]
    write(path, payloads)
    data = path.read_bytes()
    assert MAGIC == MAGIC_V2 and data.startswith(MAGIC_V2) and data[8:12] == SYNC
    assert len(data) == 8 + sum(HEAD_V2 + len(p) for p in payloads)
    scan = ScanResult()
    records = list(read_journal(path, scan))
    assert [r.payload for r in records] == payloads
    assert [r.recorded_us for r in records] == [1000, 1001, 1002]
    assert [r.offset for r in records] == [8, 8 + HEAD_V2, 8 + 2 * HEAD_V2 + 1]
    assert (scan.version, scan.records, scan.damaged, scan.complete, scan.valid_bytes) == (2, 3, False, True, len(data))


@pytest.mark.parametrize("cut", [1, 5, 16, 24, 25, 36])
def test_torn_tail_is_detected_and_kept_aside_on_reopen(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "j"
    write(path, [b"first", b"second record"])
    size = path.stat().st_size
    os.truncate(path, size - cut)
    torn = path.read_bytes()
    scan = ScanResult()
    assert [r.payload for r in read_journal(path, scan)] == [b"first"]
    assert scan.torn_bytes == size - cut - scan.valid_bytes > 0
    assert scan.corrupt_regions == 0 and scan.damaged
    with JournalWriter(path, fsync="always") as w:  # reopening salvages: the torn record goes aside, then appends
        assert w.salvage_report is not None and w.salvage_report.torn_bytes == scan.torn_bytes
        w.append(b"third", recorded_us=7)
    assert [r.payload for r in read_journal(path)] == [b"first", b"third"]
    assert (tmp_path / "j.corrupt").read_bytes() == torn


def test_a_corrupt_last_record_is_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write(path, [b"good", b"flipped"])
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    scan = ScanResult()
    assert [r.payload for r in read_journal(path, scan)] == [b"good"]
    assert scan.torn_bytes == HEAD_V2 + len(b"flipped")


def test_not_a_journal_is_reported_not_raised(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b"NOTAJRNL" + b"\x00" * 40)
    scan = ScanResult()
    assert list(read_journal(path, scan)) == []
    assert scan.bad_magic and not scan.recognised and scan.torn_bytes == 48 and scan.version == 0


def test_format_1_is_read_and_appended_to_in_format_1(tmp_path: Path) -> None:
    path = tmp_path / "old.hkj"
    write_v1(path, [b"one", b"two"])
    scan = ScanResult()
    assert [r.payload for r in read_journal(path, scan)] == [b"one", b"two"]
    assert (scan.version, scan.damaged) == (1, False)
    with JournalWriter(path, fsync="never") as w:  # a whole format-1 file is left as it is
        assert w.salvage_report is None and w.version == 1
        w.append(b"three", recorded_us=5)
    assert [r.payload for r in read_journal(path)] == [b"one", b"two", b"three"]
    assert path.read_bytes().startswith(MAGIC_V1) and not list(tmp_path.glob("*.corrupt"))


def test_a_failed_append_leaves_no_partial_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j"
    writer = JournalWriter(path, fsync="never")
    writer.append(b"kept", recorded_us=1)
    real_write = os.write

    def short_then_full(fd: int, data) -> int:
        real_write(fd, bytes(data)[:7])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", short_then_full)
    with pytest.raises(OSError, match="No space"):
        writer.append(b"lost", recorded_us=2)
    monkeypatch.setattr(os, "write", real_write)
    writer.append(b"after", recorded_us=3)
    writer.close()
    scan = ScanResult()
    assert [r.payload for r in read_journal(path, scan)] == [b"kept", b"after"] and not scan.damaged
