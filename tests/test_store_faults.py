"""Fault injection for the K-data store on real file systems: a full disk (a 1 MiB tmpfs mounted
here), a ``~`` store root, corrupt part and spill files, a queue overflow that spills to disk and
lands later, a spill that survives a kill -9, a producer that blocks rather than drop.  Every
test checks that each bar lands exactly once (raw part-file rows) and that the latest write of a
bar wins."""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import hkrt
import hkrt.store
from hkrt._hkrt import COMPLETED_DTYPE
from hkrt.cli import main as cli_main
from hkrt.core.ktype import KType
from hkrt.core.synthetic import synthetic_day
from hkrt.store import KDataStore, StoreWriter, default_store_root, load_kdata

SPAWN = multiprocessing.get_context("spawn")  # nng is not fork-safe
FRIDAY = dt.date(2026, 11, 20)
SYMBOLS = ["SH600000", "SZ000001", "BJ920001"]
COLUMNS = ["open", "high", "low", "close", "volume", "amount"]


# ------------------------------------------------------------------------------------ helpers
@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of its own, unmounted afterwards."""
    if not sys.platform.startswith("linux") or shutil.which("mount") is None:
        pytest.skip("needs Linux mount to make a small tmpfs")
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def fill(where: Path) -> Path:
    """Fill the file system of ``where`` up to the last byte; returns the ballast to free it."""
    ballast = where / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for size in (65536, 512, 1):  # big steps, then the last page's crumbs
            with contextlib.suppress(OSError):
                while os.write(fd, b"\0" * size):
                    pass
    finally:
        os.close(fd)
    with pytest.raises(OSError, match="No space left"):
        (where / "probe").write_bytes(b"x")
    return ballast


def records(first_minute: int, minutes: int, *, version: float = 1.0, ktype: str = "MIN") -> np.ndarray:
    """Completed-bar records: every symbol, minutes 09:31+first_minute on; ``close`` holds the
    version, ``open`` the minute, so a load shows which write of a bar won."""
    rows = []
    for m in range(first_minute, first_minute + minutes):
        when = np.datetime64(dt.datetime.combine(FRIDAY, dt.time(9, 31))) + np.timedelta64(m, "m")
        for s in SYMBOLS:
            rows.append(
                (
                    s.encode(),
                    list(KType).index(KType.parse(ktype)),
                    when,
                    m,
                    20.0,
                    1.0,
                    version,
                    100.0,
                    1e3,
                    False,
                    False,
                )
            )
    return np.array(rows, dtype=COMPLETED_DTYPE)


def part_rows(root: Path) -> int:
    """Rows in every part file: each bar written once means exactly the rows added."""
    return sum(pq.read_metadata(p).num_rows for p in root.glob("ktype=*/date=*/part-*.parquet"))


def messages(caplog: pytest.LogCaptureFixture, text: str, level: int = logging.WARNING) -> list[logging.LogRecord]:
    return [r for r in caplog.records if text in r.message and r.levelno >= level]


# ----------------------------------------------------------------------------- the full disk
def test_full_disk_loses_nothing_and_every_bar_lands_exactly_once(disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = KDataStore(disk / "store")
    writer = StoreWriter(store, max_pending=300)
    writer.add(records(0, 10))
    assert writer.flush() and writer.stats["written"] == 30
    ballast = fill(disk)
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        for start in range(10, 200, 10):  # 570 rows while nothing can be written nor spilled
            writer.add(records(start, 10))
            assert not writer.flush()
    stats = writer.stats
    assert stats["failing"] and "No space left" in stats["last_error"] and stats["write_errors"] == 19
    assert stats["written"] == 30 and part_rows(store.root) == 30  # nothing counted that did not land
    assert stats["spill_errors"] > 0 and "No space left" in stats["last_spill_error"] and stats["spilled_rows"] == 0
    assert stats["pending"] == stats["pending_memory"] == 570 and stats["over_limit"] == 270
    assert not stats["blocked"] and stats["blocks"] == 0  # under hard_limit (4 x 300)
    assert len(messages(caplog, "store write failed", logging.ERROR)) == 1  # once per streak
    assert len(messages(caplog, "could not spill", logging.ERROR)) == 1  # rate-limited
    assert not list(disk.rglob(".tmp-*"))  # nothing half-written left behind

    ballast.unlink()
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        assert writer.flush(compact=True)
    stats = writer.stats
    assert stats["written"] == 600 and stats["pending"] == 0 and stats["over_limit"] == 0 and not stats["failing"]
    assert messages(caplog, "store writes work again")
    got = store.load(None, "MIN")
    assert len(got) == 600 and all(list(opens) == list(range(200)) for _, opens in got.groupby("symbol")["open"])
    assert [p.name for p in store.partition("MIN", FRIDAY).iterdir()] == ["data.parquet"]


def test_compaction_on_a_full_disk_deletes_nothing(disk: Path) -> None:
    store = KDataStore(disk / "store")
    for start in range(0, 60, 10):
        store.write(records(start, 10))
    parts = sorted(store.partition("MIN", FRIDAY).glob("part-*.parquet"))
    ballast = fill(disk)
    with pytest.raises(OSError, match="No space left"):
        store.compact()
    assert sorted(store.partition("MIN", FRIDAY).glob("part-*.parquet")) == parts
    assert not (store.partition("MIN", FRIDAY) / "data.parquet").exists() and not list(disk.rglob(".tmp-*"))
    assert len(store.load(None, "MIN")) == 180
    ballast.unlink()
    assert store.compact() == 1 and len(store.load(None, "MIN")) == 180


# ------------------------------------------------------------------------------ spill to disk
def test_overflow_spills_to_another_disk_and_lands_in_order(
    disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = KDataStore(disk / "store")
    spill = tmp_path / "spill"
    writer = StoreWriter(store, max_pending=60, spill_dir=spill)
    ballast = fill(disk)
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        for version in range(1, 31):  # the same 10 minutes rewritten 30 times: the last must win
            writer.add(records(0, 10, version=float(version)))
            writer.flush()
    stats = writer.stats
    assert stats["written"] == 0 and stats["pending"] == 900 and stats["pending_memory"] <= 60
    assert stats["spilled_rows"] == stats["pending_spilled"] >= 840 and stats["spilling"]
    assert stats["spill_files"] == len(list(spill.glob("spill-*.npy"))) > 1 and stats["spill_errors"] == 0
    assert not stats["blocked"] and stats["over_limit"] == 0
    assert len(messages(caplog, "spilling the oldest bars")) == 1  # rate-limited

    ballast.unlink()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        assert writer.flush()
    stats = writer.stats
    assert stats["written"] == 900 and part_rows(store.root) == 900  # every row exactly once
    assert stats["pending"] == stats["spill_files"] == 0 and not stats["spilling"] and not list(spill.iterdir())
    assert messages(caplog, "spilled store bars all written")
    got = store.load(None, "MIN")
    assert len(got) == 30 and (got["close"] == 30.0).all()  # oldest first: the newest write won


def spill_then_wait(root: str, spill: str, ready) -> None:
    """Child process: the store's disk is full, so the overflow spills; then wait for kill -9."""
    writer = StoreWriter(KDataStore(root), max_pending=30, spill_dir=spill)
    for version in range(1, 11):
        writer.add(records(0, 10, version=float(version)))
        writer.flush()
    ready.put(writer.stats["spilled_rows"])
    while True:
        time.sleep(1)


def test_spill_survives_kill_9_and_the_next_writer_lands_it_first(
    disk: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root, spill = disk / "store", tmp_path / "spill"
    ballast = fill(disk)
    ready = SPAWN.Queue()
    child = SPAWN.Process(target=spill_then_wait, args=(str(root), str(spill), ready))
    child.start()
    try:
        spilled = ready.get(timeout=120)
        os.kill(child.pid, signal.SIGKILL)
        child.join(10)
        assert child.exitcode == -signal.SIGKILL
    finally:
        if child.is_alive():
            child.kill()
    assert spilled >= 270 and spilled % 30 == 0  # whole batches: versions 1 .. spilled/30
    ballast.unlink()
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        writer = StoreWriter(KDataStore(root), max_pending=30, spill_dir=spill)
    assert messages(caplog, "found bars spilled by an earlier run")
    assert writer.stats["pending_spilled"] == writer.stats["pending"] == spilled and writer.stats["spilling"]
    writer.add(records(0, 10, version=99.0))  # newer than anything spilled
    assert writer.flush()
    assert writer.stats["written"] == spilled + 30 and part_rows(root) == spilled + 30
    got = load_kdata(None, "MIN", store=root)
    assert len(got) == 30 and (got["close"] == 99.0).all()
    assert not list(spill.glob("spill-*"))


def test_blocked_producer_waits_instead_of_dropping(disk: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = KDataStore(disk / "store")  # the spill is on the same full disk: it fails too
    writer = StoreWriter(store, max_pending=30, hard_limit=60, block_poll=0.02, block_log_every=0.1)
    ballast = fill(disk)
    added = []

    def produce() -> None:
        for start in range(0, 50, 10):
            writer.add(records(start, 10))
            added.append(start)

    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        producer = threading.Thread(target=produce)
        producer.start()
        deadline = time.monotonic() + 10
        while not writer.stats["blocked"] and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.35)
        assert producer.is_alive() and writer.stats["blocked"] and added == [0, 10]  # the third add waits
        assert writer.stats["pending_memory"] == 90 and writer.stats["spill_errors"] > 0
        assert len(messages(caplog, "store queue full", logging.ERROR)) >= 3  # every 0.1 s while blocked
        ballast.unlink()  # the blocked add() flushes by itself (no writer thread here) and returns
        producer.join(10)
    assert not producer.is_alive() and added == [0, 10, 20, 30, 40]
    assert writer.flush()
    stats = writer.stats
    assert stats["written"] == 150 and part_rows(store.root) == 150 and stats["blocks"] >= 1
    assert stats["blocked_seconds"] >= 0.3 and not stats["blocked"]
    assert len(store.load(None, "MIN")) == 150


def test_a_corrupt_spill_file_is_kept_aside_and_the_rest_lands(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = KDataStore(tmp_path / "store")
    spill = tmp_path / "store" / "_spill"
    spill.mkdir(parents=True)
    np.save(spill / "spill-000000000000-1-30.npy", records(0, 10))
    (spill / "spill-000000000001-1-30.npy").write_bytes(b"\x93NUMPY torn")
    np.save(spill / "spill-000000000002-1-30.npy", records(10, 10))
    writer = StoreWriter(store, max_pending=100)
    assert writer.stats["pending_spilled"] == 90
    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        assert writer.flush()
    assert writer.stats["written"] == 60 and writer.stats["spill_unreadable"] == 1
    assert messages(caplog, "a spill file cannot be read", logging.ERROR)[0].rows == 30
    kept = spill / "_quarantine" / "spill-000000000001-1-30.npy.unreadable"
    assert kept.read_bytes() == b"\x93NUMPY torn"
    assert len(store.load(None, "MIN")) == 60


def test_written_counts_only_files_in_place(tmp_path: Path) -> None:
    store = KDataStore(tmp_path / "store")
    writer = StoreWriter(store)
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "ktype=DAY").write_text("in the way")  # the DAY partition cannot be made
    writer.add(np.concatenate([records(0, 5), records(0, 1, ktype="DAY")]))
    assert not writer.flush()
    assert writer.stats["written"] == 15 and writer.stats["pending"] == 3  # the MIN part landed
    (tmp_path / "store" / "ktype=DAY").unlink()
    assert writer.flush()
    assert writer.stats["written"] == 18 and part_rows(store.root) == 18  # MIN not written twice


# ------------------------------------------------------------------------------- unreadable files
def test_corrupt_part_is_never_deleted_and_the_rest_compacts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = KDataStore(tmp_path)
    for start in (0, 10, 20):
        store.write(records(start, 10))
    partition = store.partition("MIN", FRIDAY)
    parts = sorted(partition.glob("part-*.parquet"))
    bad = parts[1]
    raw = bytearray(bad.read_bytes())
    raw[len(raw) // 2 : len(raw) // 2 + 64] = b"\xff" * 64  # a flipped run in the middle
    raw[-8:-4] = b"\xff\xff\xff\x7f"  # and an impossible footer length
    bad.write_bytes(bytes(raw))
    with caplog.at_level(logging.WARNING, logger="hkrt.store"):
        got = load_kdata(None, "MIN", store=store)  # the rest, loudly
        again = store.load(None, "MIN")
    assert len(got) == len(again) == 60 and store.stats["unreadable"] == 2 and str(bad) in store.unreadable
    assert len(messages(caplog, "skipped an unreadable store file")) == 1  # rate-limited per file

    with caplog.at_level(logging.ERROR, logger="hkrt.store"):
        assert store.compact() == 1
    kept = partition / "_quarantine" / f"{bad.name}.unreadable"
    assert kept.read_bytes() == bytes(raw)  # kept byte for byte
    assert sorted(p.name for p in partition.iterdir()) == ["_quarantine", "data.parquet"]
    assert store.stats["quarantined"] == 1 and messages(caplog, "moved it to the quarantine", logging.ERROR)
    assert len(store.load(None, "MIN")) == 60
    assert len(pd.read_parquet(tmp_path / "ktype=MIN")) == 60  # plain readers skip the quarantine too


def test_corrupt_data_file_is_kept_and_replaced_by_the_readable_parts(tmp_path: Path) -> None:
    store = KDataStore(tmp_path)
    store.write(records(0, 10))
    store.compact()
    data = store.partition("MIN", FRIDAY) / "data.parquet"
    data.write_bytes(data.read_bytes()[:100])  # torn
    store.write(records(10, 5))
    assert store.compact() == 1
    kept = list((data.parent / "_quarantine").glob("data-*.parquet.unreadable"))
    assert len(kept) == 1 and len(kept[0].read_bytes()) == 100
    assert len(store.load(None, "MIN")) == 15 and store.stats["quarantined"] == 1


def test_compaction_that_does_not_read_back_deletes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = KDataStore(tmp_path)
    for start in (0, 10):
        store.write(records(start, 10))
    parts = sorted(store.partition("MIN", FRIDAY).glob("part-*.parquet"))
    real_write = pq.write_table
    monkeypatch.setattr(hkrt.store.pq, "write_table", lambda table, *a, **k: real_write(table.slice(0, 5), *a, **k))
    with pytest.raises(OSError, match="reads back 5 of 60"):
        store.compact()
    assert sorted(store.partition("MIN", FRIDAY).iterdir()) == parts  # no data.parquet, no temp file
    monkeypatch.undo()
    assert store.compact() == 1 and len(store.load(None, "MIN")) == 60


# ------------------------------------------------------------------------------------ ~ paths
def test_tilde_paths_go_to_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    agent = hkrt.SpotAgent(["MIN", "MIN5"], store="~/hkrt-store")  # the README's example
    for push in list(synthetic_day(3, FRIDAY))[:1500]:
        agent.ingest_columns(**push.columns())
    agent.stop()  # flushes and compacts
    assert not (cwd / "~").exists() and agent.store.root == home / "hkrt-store"
    stored = 0
    for symbol in agent.symbols:
        for ktype in ("MIN", "MIN5"):
            got, built = load_kdata(symbol, ktype, store="~/hkrt-store"), agent.kdata(symbol, ktype)
            assert len(built) - 1 <= len(got) <= len(built)  # all but a forming bar
            pd.testing.assert_frame_equal(got, built.iloc[: len(got)])
            stored += len(got)
    assert stored > 0 and agent.stats()["store"]["written"] == stored
    assert all(p.name == "data.parquet" for p in (home / "hkrt-store").glob("ktype=*/date=*/*"))

    assert (
        KDataStore("~/x").root == home / "x"
        and StoreWriter(KDataStore("~/x"), spill_dir="~/sp").spill_dir == home / "sp"
    )
    monkeypatch.setenv("HKRT_STORE", "~/hkrt-store")
    assert default_store_root() == home / "hkrt-store"
    assert len(load_kdata(None, "MIN")) == stored - len(load_kdata(None, "MIN5"))
    monkeypatch.delenv("HKRT_STORE")
    monkeypatch.setenv("HKRT_HOME", "~/hk")
    assert default_store_root() == home / "hk" / "store"

    result = CliRunner().invoke(cli_main, ["export", "--store=~/hkrt-store", "--ktype", "MIN5", "--out=~/out/b.csv"])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(home / "out" / "b.csv")) == len(load_kdata(None, "MIN5", store=home / "hkrt-store"))
    assert not (cwd / "~").exists()


def test_export_to_an_unwritable_place_is_one_error_line(tmp_path: Path) -> None:
    store = KDataStore(tmp_path / "store")
    store.write(records(0, 3))
    (tmp_path / "afile").write_text("")
    result = CliRunner().invoke(cli_main, ["export", "--store", str(store.root), "--ktype", "MIN",
                                           "--out", str(tmp_path / "afile" / "b.parquet")])  # fmt: skip
    assert result.exit_code == 1 and result.exception is not None and isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write {tmp_path / 'afile' / 'b.parquet'}: ")
