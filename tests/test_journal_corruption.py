"""Fault injection on real journal files: damage anywhere never costs an intact record.

Each test damages a real file the way disks and crashes do (a flipped byte, a zero-filled
hole, a torn tail or magic, a cut-out stretch) and checks that every record whose bytes were
not touched is read back identically and in order, that salvage keeps the original bytes in a
``.corrupt`` copy and leaves a journal that reads clean, and that nothing raises.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import random
import struct
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import hkrt
from hkrt.agent.history_sources import journal_messages
from hkrt.feed import day_journal
from hkrt.feed.day_journal import DayJournal, china_today
from hkrt.feed.journal import (
    MAGIC_V1,
    MAGIC_V2,
    JournalWriter,
    SalvageReport,
    ScanResult,
    read_journal,
    salvage,
)
from hkrt.fetcher.replay import ReplayConfig, ReplaySource

HEAD_V2 = 24
DAY = dt.date(2026, 11, 20)


def make_payloads(n: int, seed: int = 1, max_size: int = 120) -> list[bytes]:
    """Distinct payloads (each starts with its index) of varied sizes, some empty-bodied."""
    rng = random.Random(seed)
    return [struct.pack("<I", i) + rng.randbytes(rng.randrange(max_size)) for i in range(n)]


def write(path: Path, payloads: list[bytes]) -> list[tuple[int, int]]:
    """Write a format-2 journal; the (start, end) byte span of every record."""
    spans, pos = [], len(MAGIC_V2)
    with JournalWriter(path, fsync="never") as w:
        for i, p in enumerate(payloads):
            w.append(p, recorded_us=1_000_000 + i)
            spans.append((pos, pos + HEAD_V2 + len(p)))
            pos += HEAD_V2 + len(p)
    assert path.stat().st_size == pos
    return spans


def read(path: Path) -> tuple[list[bytes], ScanResult]:
    scan = ScanResult()
    payloads = [r.payload for r in read_journal(path, scan)]
    assert scan.complete
    return payloads, scan


def damage(path: Path, offset: int, new: bytes) -> bytes:
    data = bytearray(path.read_bytes())
    data[offset : offset + len(new)] = new
    path.write_bytes(bytes(data))
    return bytes(data)


def flip(path: Path, offset: int) -> bytes:
    data = path.read_bytes()
    return damage(path, offset, bytes([data[offset] ^ 0x10]))


def assert_accounted(scan: ScanResult, record_bytes: int) -> None:
    """Every byte is the magic, an intact record, a corrupt region or the torn tail."""
    magic = 0 if (scan.bad_magic or scan.torn_magic) else len(MAGIC_V2)
    assert magic + record_bytes + scan.corrupt_bytes + scan.torn_bytes == scan.size


# ---------------------------------------------------------------- one flipped byte


@pytest.mark.parametrize("where", ["sync", "length", "recorded_us", "crc", "head_crc", "payload"])
def test_one_flipped_byte_mid_file_loses_only_its_record(
    tmp_path: Path, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spots-20261120.hkj"
    payloads = make_payloads(1000)
    spans = write(path, payloads)
    victim = 500
    start, end = spans[victim]
    field = {"sync": 1, "length": 5, "recorded_us": 10, "crc": 17, "head_crc": 22, "payload": HEAD_V2 + 2}[where]
    if where == "payload" and end - start <= HEAD_V2 + 2:
        field = HEAD_V2  # the index bytes: every payload has them
    damaged = flip(path, start + field)
    want = payloads[:victim] + payloads[victim + 1 :]

    with caplog.at_level(logging.WARNING, logger="hkrt.journal"):
        got, scan = read(path)
    assert got == want  # identical payloads, in order: the half after the damage is all there
    assert (scan.records, scan.corrupt_regions, scan.regions, scan.torn_bytes) == (999, 1, [(start, end - start)], 0)
    assert scan.corrupt_bytes == end - start and not scan.bad_magic
    assert_accounted(scan, sum(e - s for s, e in spans) - (end - start))
    assert any("journal is damaged" in r.message for r in caplog.records)
    stamps = [r.recorded_us for r in read_journal(path)]
    assert stamps == [1_000_000 + i for i in range(1000) if i != victim]

    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="hkrt.journal"):
        report = salvage(path)
    assert isinstance(report, SalvageReport)
    assert (report.action, report.records, report.corrupt_regions, report.corrupt_bytes) == (
        "rewritten",
        999,
        1,
        end - start,
    )
    corrupt = tmp_path / "spots-20261120.hkj.corrupt"
    assert report.corrupt_copy == str(corrupt) and corrupt.read_bytes() == damaged  # the original, byte for byte
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and errors[0].kept_records == 999 and errors[0].corrupt_bytes == end - start
    got, scan = read(path)
    assert got == want and not scan.damaged and scan.version == 2
    assert [r.recorded_us for r in read_journal(path)] == stamps  # original timestamps kept
    assert report.kept_bytes == path.stat().st_size == len(damaged) - (end - start)
    assert report.as_dict()["regions"] == [[start, end - start]]

    # a second salvage of the now whole file does nothing and makes no copy
    again = salvage(path)
    assert again.action == "none" and again.corrupt_copy is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spots-20261120.hkj", "spots-20261120.hkj.corrupt"]


def test_several_corrupt_regions(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    payloads = make_payloads(1000, seed=2)
    spans = write(path, payloads)
    hit = [100, 101, 400, 777]  # 100 and 101 touch: one region
    for i in hit:
        flip(path, spans[i][0] + HEAD_V2 - 1)
    got, scan = read(path)
    assert got == [p for i, p in enumerate(payloads) if i not in hit]
    assert scan.corrupt_regions == 3
    assert scan.regions == [
        (spans[100][0], spans[101][1] - spans[100][0]),
        (spans[400][0], spans[400][1] - spans[400][0]),
        (spans[777][0], spans[777][1] - spans[777][0]),
    ]
    report = salvage(path)
    assert report.records == 996 and report.corrupt_regions == 3
    assert read(path)[0] == got


def test_zero_filled_hole_as_after_power_loss(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    payloads = make_payloads(1000, seed=3)
    spans = write(path, payloads)
    hole = (8192, 8192 + 4096)  # a page the disk never wrote
    original = path.read_bytes()
    damaged = damage(path, hole[0], bytes(hole[1] - hole[0]))
    untouched = [i for i, (s, e) in enumerate(spans) if e <= hole[0] or s >= hole[1]]
    got, scan = read(path)
    assert got == [payloads[i] for i in untouched] and len(untouched) < 1000
    first_lost = next(i for i, (s, e) in enumerate(spans) if e > hole[0])
    next_kept = next(i for i, (s, e) in enumerate(spans) if s >= hole[1])
    assert scan.regions == [(spans[first_lost][0], spans[next_kept][0] - spans[first_lost][0])]
    report = salvage(path)
    assert Path(report.corrupt_copy or "").read_bytes() == damaged != original
    assert read(path)[0] == got


def test_a_cut_out_stretch_is_skipped(tmp_path: Path) -> None:
    """Bytes missing in the middle (a bad copy): the records after it are found again."""
    path = tmp_path / "j.hkj"
    payloads = make_payloads(300, seed=4)
    spans = write(path, payloads)
    data = path.read_bytes()
    cut = (spans[120][0] + 7, spans[130][0] + 3)
    path.write_bytes(data[: cut[0]] + data[cut[1] :])
    got, scan = read(path)
    assert got == payloads[:120] + payloads[131:]
    assert scan.corrupt_regions == 1 and scan.torn_bytes == 0


# ---------------------------------------------------------------- tail and magic


def test_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    payloads = make_payloads(50, seed=5)
    spans = write(path, payloads)
    os.truncate(path, spans[-1][0] + 11)  # the crash hit inside the last record's header
    torn = path.read_bytes()
    got, scan = read(path)
    assert got == payloads[:-1] and scan.torn_bytes == 11 and scan.corrupt_regions == 0
    report = salvage(path)
    assert (report.action, report.records, report.torn_bytes) == ("rewritten", 49, 11)
    assert Path(report.corrupt_copy or "").read_bytes() == torn
    assert path.read_bytes() == torn[: spans[-1][0]]  # the same records, byte for byte


@pytest.mark.parametrize("content", [b"HKR", b"HKRTJNL", b""])
def test_torn_magic(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "j.hkj"
    path.write_bytes(content)
    got, scan = read(path)
    assert got == [] and scan.torn_magic and not scan.bad_magic and scan.torn_bytes == len(content)
    report = salvage(path)  # nothing recognisable: kept aside, replaced by an empty journal
    assert (report.action, report.records) == ("replaced", 0)
    if content:
        assert Path(report.corrupt_copy or "").read_bytes() == content
    else:
        assert report.corrupt_copy is None  # nothing to keep
    assert path.read_bytes() == MAGIC_V2
    with JournalWriter(path, fsync="never") as w:
        w.append(b"next", recorded_us=1)
    assert read(path)[0] == [b"next"]


def test_torn_magic_reopened_by_a_writer(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    path.write_bytes(b"HKR")
    with JournalWriter(path, fsync="never") as w:
        assert w.salvage_report is not None and w.salvage_report.torn_magic
        w.append(b"first", recorded_us=1)
    assert read(path)[0] == [b"first"]
    assert (tmp_path / "j.hkj.corrupt").read_bytes() == b"HKR"


def test_bad_magic_with_intact_records_after_it(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    payloads = make_payloads(200, seed=6)
    write(path, payloads)
    damaged = damage(path, 0, b"XXXXXXXX")
    got, scan = read(path)
    assert got == payloads and scan.bad_magic and scan.regions == [(0, 8)] and scan.version == 2
    report = salvage(path)
    assert report.bad_magic and report.records == 200
    assert Path(report.corrupt_copy or "").read_bytes() == damaged
    assert path.read_bytes()[:8] == MAGIC_V2 and read(path)[0] == payloads


def test_nothing_recognisable_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    garbage = random.Random(7).randbytes(5000)
    path.write_bytes(garbage)
    got, scan = read(path)
    assert got == [] and scan.bad_magic and not scan.recognised and scan.torn_bytes == 5000
    report = salvage(path)
    assert report.action == "replaced" and Path(report.corrupt_copy or "").read_bytes() == garbage
    assert path.read_bytes() == MAGIC_V2


def test_corrupt_copies_are_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    write(path, make_payloads(10))
    (tmp_path / "j.hkj.corrupt").write_bytes(b"an older copy")
    damaged = flip(path, 40)
    report = salvage(path)
    assert report.corrupt_copy == str(tmp_path / "j.hkj.2.corrupt")
    assert (tmp_path / "j.hkj.corrupt").read_bytes() == b"an older copy"
    assert (tmp_path / "j.hkj.2.corrupt").read_bytes() == damaged


def test_salvage_that_cannot_write_leaves_the_original(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "j.hkj"
    write(path, make_payloads(20))
    damaged = flip(path, 100)

    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError, match="No space"):
        salvage(path)
    monkeypatch.undo()
    assert path.read_bytes() == damaged
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".salvage")]  # no temporary file left


# ---------------------------------------------------------------- format 1


def write_v1(path: Path, payloads: list[bytes]) -> list[tuple[int, int]]:
    out, spans = bytearray(MAGIC_V1), []
    for i, p in enumerate(payloads):
        stamp = 1_000 + i
        spans.append((len(out), len(out) + 16 + len(p)))
        out += struct.pack("<IIq", len(p), zlib.crc32(p, zlib.crc32(struct.pack("<q", stamp))), stamp) + p
    path.write_bytes(bytes(out))
    return spans


def test_v1_file_with_a_bad_record_stops_there_and_deletes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "old.hkj"
    payloads = make_payloads(100, seed=8)
    spans = write_v1(path, payloads)
    assert read(path)[0] == payloads
    damaged = flip(path, spans[60][0] + 17)
    got, scan = read(path)
    assert got == payloads[:60] and scan.version == 1 and scan.torn_bytes == len(damaged) - spans[60][0]
    report = salvage(path)
    assert report.records == 60 and Path(report.corrupt_copy or "").read_bytes() == damaged  # all bytes kept
    got, scan = read(path)
    assert got == payloads[:60] and scan.version == 2 and not scan.damaged


def test_v1_file_with_a_bad_magic(tmp_path: Path) -> None:
    path = tmp_path / "old.hkj"
    payloads = make_payloads(30, seed=9)
    write_v1(path, payloads)
    damage(path, 2, b"??")
    got, scan = read(path)
    assert got == payloads and scan.bad_magic and scan.version == 1 and scan.regions == [(0, 8)]


# ---------------------------------------------------------------- writer, day journal


def test_writer_reopening_a_damaged_file_keeps_every_intact_record(tmp_path: Path) -> None:
    path = tmp_path / "j.hkj"
    payloads = make_payloads(1000, seed=10)
    spans = write(path, payloads)
    damaged = flip(path, spans[300][0] + 30)
    with JournalWriter(path, fsync="always") as w:
        report = w.salvage_report
        assert report is not None and report.records == 999 and report.corrupt_regions == 1
        w.append(b"appended", recorded_us=5)
    assert read(path)[0] == payloads[:300] + payloads[301:] + [b"appended"]
    assert (tmp_path / "j.hkj.corrupt").read_bytes() == damaged


def test_day_journal_files_by_the_given_day_and_latest_skips_the_future(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    journal = DayJournal(tmp_path, fsync="never")
    today = china_today()
    yesterday = today - dt.timedelta(days=1)
    journal.append(b"one", yesterday)
    journal.append(b"two", dt.datetime.combine(yesterday, dt.time(10)))
    journal.close()
    future = journal.path(today + dt.timedelta(days=3))
    future.write_bytes(MAGIC_V2)  # made by a wrong clock or a hostile header
    (tmp_path / "spots-20991231.hkj.corrupt").write_bytes(b"x")
    (tmp_path / "spots-20261399.hkj").write_bytes(MAGIC_V2)  # no such date
    with caplog.at_level(logging.WARNING, logger="hkrt.agent"):
        assert journal.latest() == journal.path(yesterday)
    assert any("dated after today" in r.message for r in caplog.records)
    assert read(journal.path(yesterday))[0] == [b"one", b"two"]
    journal.append(b"today", today)
    journal.close()
    assert journal.latest() == journal.path(today)
    future.unlink()
    assert DayJournal(tmp_path / "empty").latest() == (tmp_path / "empty").joinpath(f"spots-{today:%Y%m%d}.hkj")


def test_day_journal_salvages_a_damaged_file_and_counts_it(tmp_path: Path) -> None:
    journal = DayJournal(tmp_path, fsync="never")
    for p in make_payloads(100, seed=11):
        journal.append(p, DAY)
    journal.close()
    path = journal.path(DAY)
    flip(path, 600)
    journal.append(b"more", DAY)  # reopening salvages
    journal.close()
    stats = journal.stats
    assert stats["corrupt_files"] == 1 and stats["salvaged"][0]["records"] == 99
    assert stats["appended"] == 101 and stats["write_errors"] == 0
    assert read(path)[0][-1] == b"more" and len(read(path)[0]) == 100
    report = journal.salvage(path)
    assert report.action == "none" and journal.stats["corrupt_files"] == 1


def test_day_journal_expands_the_home_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    journal = DayJournal("~/journal", fsync="never")
    journal.append(b"x", DAY)
    journal.close()
    assert (tmp_path / "journal" / f"spots-{DAY:%Y%m%d}.hkj").exists() and not (tmp_path / "~").exists()


def test_day_journal_open_failures_are_counted_and_not_rescanned_per_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened = []

    class CountingWriter(JournalWriter):
        def __init__(self, path: Path, **options) -> None:
            opened.append(path)
            super().__init__(path, **options)

    monkeypatch.setattr(day_journal, "JournalWriter", CountingWriter)
    journal = DayJournal(tmp_path, fsync="never")
    journal.path(DAY).mkdir()  # a directory where the file should be: opening fails
    for _ in range(50):
        journal.append(b"x", DAY)
    stats = journal.stats
    assert (stats["appended"], stats["write_errors"], stats["failing"]) == (0, 50, True)
    assert "IsADirectoryError" in stats["last_error"] or "PermissionError" in stats["last_error"]
    assert len(opened) == 1  # one scan of the file, not fifty
    journal.path(DAY).rmdir()
    monkeypatch.setattr(day_journal, "OPEN_RETRY_SECONDS", 0.0)
    journal.append(b"y", DAY)  # the next try after the back-off opens it
    assert (journal.stats["appended"], journal.stats["failing"], len(opened)) == (1, False, 2)
    journal.close()
    assert read(journal.path(DAY))[0] == [b"y"]


# ---------------------------------------------------------------- readers: backfill, replay


def wire_messages(n: int) -> list[bytes]:
    out = []
    for i in range(n):
        t = dt.datetime.combine(DAY, dt.time(9, 30)) + dt.timedelta(seconds=3 * i)
        spot = hkrt.Spot(
            "SH600000", t, open=10.0, high=10.5, low=9.5, close=10.0 + (i % 7) / 100,
            volume=1000.0 * (i + 1), amount=10_000.0 * (i + 1),
        )  # fmt: skip
        out.append(hkrt.wire.encode_spots([spot], publisher_id=7, sequence=i + 1, cycle_id=i + 1))
    return out


def test_backfill_uses_every_intact_record_and_reports_the_damage(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "server.hkj"
    messages = wire_messages(200)
    spans = write(path, messages)
    damaged = flip(path, spans[100][0] + HEAD_V2 + 9)
    scan = ScanResult()
    with caplog.at_level(logging.WARNING, logger="hkrt.backfill"):
        got = list(journal_messages(path, scan=scan))
    assert got == messages[:100] + messages[101:]
    assert scan.corrupt_regions == 1 and scan.regions == [(spans[100][0], spans[100][1] - spans[100][0])]
    assert [r for r in caplog.records if r.name == "hkrt.backfill" and r.levelno == logging.WARNING]
    assert path.read_bytes() == damaged  # a backfill source is read, never repaired
    report = hkrt.SpotAgent().backfill(path)
    assert report["messages"] == 199  # it stopped at the damage before

    path.write_bytes(b"this is not a journal at all")
    with pytest.raises(ValueError, match="not an hkrt journal"):
        list(journal_messages(path))


def test_replay_plays_every_intact_record(tmp_path: Path) -> None:
    path = tmp_path / "day.hkj"
    messages = wire_messages(60)
    spans = write(path, messages)
    flip(path, spans[20][0] + 3)
    source = ReplaySource(ReplayConfig(path, speed=0))
    cycles = list(source.cycles())
    assert len(cycles) == 59 and source.stats.scan.corrupt_regions == 1
    path.write_bytes(b"garbage!" * 10)
    with pytest.raises(ValueError, match="not an hkrt journal"):
        list(ReplaySource(ReplayConfig(path, speed=0)).cycles())


# ---------------------------------------------------------------- property


@st.composite
def damaged_journals(draw: st.DrawFn) -> tuple[list[bytes], list[tuple[int, bytes]], tuple[int, int] | None]:
    n = draw(st.integers(0, 60))
    sizes = draw(st.lists(st.integers(0, 90), min_size=n, max_size=n))
    payloads = [struct.pack("<I", i) + bytes((i * 7 + k) % 251 for k in range(s)) for i, s in enumerate(sizes)]
    total = len(MAGIC_V2) + sum(HEAD_V2 + len(p) for p in payloads)
    writes = draw(
        st.lists(
            st.tuples(
                st.integers(0, max(total - 1, 0)),
                st.one_of(st.binary(min_size=1, max_size=40), st.integers(1, 300).map(bytes)),  # random or zeros
            ),
            max_size=4,
        )
    )
    cut = draw(st.none() | st.tuples(st.integers(0, total), st.integers(0, 100)))
    return payloads, writes, cut


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damaged_journals())
@example(([], [], (0, 8)))  # a journal of only its magic, cut to nothing
def test_property_every_untouched_record_survives_any_damage(
    case: tuple[list[bytes], list[tuple[int, bytes]], tuple[int, int] | None],
) -> None:
    payloads, writes, cut = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "j.hkj"
        spans = write(path, payloads)
        data = bytearray(path.read_bytes())
        touched: list[tuple[int, int]] = []
        for offset, new in writes:
            end = min(offset + len(new), len(data))
            data[offset:end] = new[: end - offset]
            touched.append((offset, end))
        if cut is not None:
            start, length = cut[0], min(cut[1], len(data) - cut[0])
            del data[start : start + length]
            touched.append((start, start + length))  # in original offsets: writes never move bytes
        path.write_bytes(bytes(data))

        def untouched(span: tuple[int, int]) -> bool:
            return all(end <= span[0] or start >= span[1] for start, end in touched if end > start)

        want = [i for i, span in enumerate(spans) if untouched(span)]
        got, scan = read(path)  # never raises
        indices = [struct.unpack_from("<I", p)[0] for p in got]
        assert indices == sorted(set(indices))  # in order, no record twice
        assert all(payloads[i] == p for i, p in zip(indices, got, strict=True))  # never a made-up record
        assert set(want) <= set(indices)  # every untouched record is back
        assert_accounted(scan, sum(HEAD_V2 + len(p) for p in got))

        report = salvage(path)  # never raises for content
        after, clean = read(path)
        assert after == got and not clean.damaged
        if report.damaged:
            # an emptied file has nothing to keep a copy of (its magic is written afresh)
            assert not data or Path(report.corrupt_copy or "").read_bytes() == bytes(data)
        else:
            assert path.read_bytes() == bytes(data)
