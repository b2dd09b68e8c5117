"""The journal: records round-trip; a torn tail is detected, never misread, and cut off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hkrt.journal import MAGIC, JournalWriter, ScanResult, read_journal


def write(path: Path, payloads: list[bytes]) -> None:
    with JournalWriter(path, fsync="never") as w:
        for i, p in enumerate(payloads):
            w.append(p, recorded_us=1_000 + i)


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "j"
    payloads = [b"", b"a", os.urandom(1000)]
    write(path, payloads)
    records = list(read_journal(path))
    assert [r.payload for r in records] == payloads
    assert [r.recorded_us for r in records] == [1000, 1001, 1002]


@pytest.mark.parametrize("cut", [1, 5, 16, 17, 28])
def test_torn_tail_is_detected_and_cut_on_reopen(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "j"
    write(path, [b"first", b"second record"])
    size = path.stat().st_size
    os.truncate(path, size - cut)
    scan = ScanResult()
    assert [r.payload for r in read_journal(path, scan)] == [b"first"]
    assert scan.torn_bytes == size - cut - scan.valid_bytes > 0
    with JournalWriter(path, fsync="always") as w:  # reopening cuts the torn record, then appends
        w.append(b"third", recorded_us=7)
    assert [r.payload for r in read_journal(path)] == [b"first", b"third"]


def test_a_corrupt_last_record_is_not_misread(tmp_path: Path) -> None:
    path = tmp_path / "j"
    write(path, [b"good", b"flipped"])
    data = bytearray(path.read_bytes())
    data[-2] ^= 0xFF
    path.write_bytes(bytes(data))
    scan = ScanResult()
    assert [r.payload for r in read_journal(path, scan)] == [b"good"]
    assert scan.torn_bytes > 0


def test_not_a_journal(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_bytes(b"NOTAJRNL" + MAGIC)
    with pytest.raises(ValueError, match="not an hkrt journal"):
        list(read_journal(path))
