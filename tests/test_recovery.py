"""The agent's spot journal: a killed agent recovers its bars bit for bit and continues the
live feed; a torn or corrupt journal tail is cut off; a failing disk never stops aggregation."""

from __future__ import annotations

import errno
import logging
import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import hkrt
import hkrt.feed.journal
from feed_process import DAY, publish_with_pause, run_journaling_agent
from hkrt.core.synthetic import synthetic_day
from hkrt.feed.journal import ScanResult, read_journal
from hkrt.feed.transport import SpotPublisher

SPAWN = multiprocessing.get_context("spawn")  # nng is not fork-safe
JOURNAL = f"spots-{DAY:%Y%m%d}.hkj"


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def day_messages(tmp_path: Path, n_symbols: int, cycles: int, max_part_spots: int = 7) -> list[bytes]:
    """The wire messages a publisher sends for the first ``cycles`` pushes of the day."""
    record = tmp_path / "sent.hkj"
    with SpotPublisher(f"ipc://{tmp_path / 'nobody.ipc'}", max_part_spots=max_part_spots, record=record) as pub:
        for i, push in enumerate(synthetic_day(n_symbols, DAY)):
            if i == cycles:
                break
            pub.publish(push.columns())
    messages = [r.payload for r in read_journal(record)]
    record.unlink()
    return messages


def fed(messages: list[bytes], **options) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent(**options)
    for message in messages:
        agent.ingest(message)
    return agent


def assert_same_bars(got: hkrt.SpotAgent, want: hkrt.SpotAgent) -> None:
    assert got.symbols == want.symbols and want.symbols
    for symbol in want.symbols:
        for ktype in hkrt.KType:
            pd.testing.assert_frame_equal(got.kdata(symbol, ktype), want.kdata(symbol, ktype))


def journal_records(path: Path) -> int:
    if not path.exists():
        return 0
    scan = ScanResult()
    for _ in read_journal(path, scan):
        pass
    return scan.records


def test_killed_agent_recovers_and_continues_the_live_feed(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    journal_dir, sent = tmp_path / "journal", tmp_path / "sent.hkj"
    n_symbols, cycles, pause_after, parts = 30, 140, 90, 3
    resume = SPAWN.Event()
    victim = SPAWN.Process(target=run_journaling_agent, args=(address, str(journal_dir)))
    victim.start()
    publisher = SPAWN.Process(
        target=publish_with_pause, args=(address, n_symbols, cycles, pause_after, resume, str(sent), 10)
    )
    publisher.start()
    agent = None
    try:
        # every record reaches the OS as it is appended: a kill -9 loses none of them
        wait_until(lambda: journal_records(journal_dir / JOURNAL) == pause_after * parts)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        assert victim.exitcode == -signal.SIGKILL

        agent = hkrt.SpotAgent(journal_dir=journal_dir)
        bars_seen = []
        agent.on_bars(bars_seen.append)
        agent.start(address)  # recovers first
        recovered = agent.stats()["journal"]["recovered"]
        assert (recovered["messages"], recovered["torn_bytes"]) == (pause_after * parts, 0)
        wait_until(lambda: len(agent._socket.pipes) == 1)
        resume.set()
        wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == cycles * parts)
        publisher.join(20)
        assert publisher.exitcode == 0
        agent.wait_idle()
        # the hooks hear of live bars only: the last push before the kill was 09:34:28
        first = min(b["datetime"].min() for b in bars_seen)
        assert first == pd.Timestamp(DAY) + pd.Timedelta("09:35:00"), first
    finally:
        for proc in (victim, publisher):
            if proc.is_alive():
                proc.kill()
        if agent is not None:
            agent.stop()
    transport = agent.stats()["transport"]
    assert (transport["gaps"], transport["duplicate_messages"], transport["publisher_restarts"]) == (0, 0, 0)
    assert agent.stats()["journal"]["appended"] == (cycles - pause_after) * parts
    assert journal_records(journal_dir / JOURNAL) == cycles * parts
    assert_same_bars(agent, fed([r.payload for r in read_journal(sent)]))


def test_killed_in_full_stream_loses_only_what_was_sent_while_down(tmp_path: Path) -> None:
    """No pause: the kill lands while messages stream in (perhaps mid-cycle, mid-write); the
    new agent's bars are those of an agent that got exactly the messages it kept."""
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    journal_dir, sent = tmp_path / "journal", tmp_path / "sent.hkj"
    n_symbols, cycles, parts = 30, 300, 3
    never = SPAWN.Event()  # held here: its semaphore must outlive the child's start
    victim = SPAWN.Process(target=run_journaling_agent, args=(address, str(journal_dir)))
    victim.start()
    publisher = SPAWN.Process(
        target=publish_with_pause,
        args=(address, n_symbols, cycles, cycles, never, str(sent), 10),
        kwargs={"pause": 0.02},
    )
    publisher.start()
    agent = None
    try:
        wait_until(lambda: journal_records(journal_dir / JOURNAL) >= 100)
        os.kill(victim.pid, signal.SIGKILL)
        victim.join(10)
        agent = hkrt.SpotAgent(journal_dir=journal_dir).start(address)
        assert agent.stats()["journal"]["recovered"]["messages"] >= 100
        publisher.join(30)
        assert publisher.exitcode == 0
        time.sleep(0.3)
    finally:
        for proc in (victim, publisher):
            if proc.is_alive():
                proc.kill()
        if agent is not None:
            agent.stop()
    kept = {r.payload for r in read_journal(journal_dir / JOURNAL)}
    # A quick restart may lose nothing; either way the bars are those of exactly what was kept.
    assert agent.stats()["transport"]["messages"] > 0 and len(kept) <= cycles * parts
    assert agent.stats()["transport"]["gaps"] <= 1 and agent.stats()["transport"]["duplicate_messages"] == 0
    assert_same_bars(agent, fed([r.payload for r in read_journal(sent) if r.payload in kept]))


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_corrupt_tail_is_cut_and_the_good_prefix_recovered(tmp_path: Path, damage: str) -> None:
    messages = day_messages(tmp_path, n_symbols=12, cycles=60)
    agent = fed(messages[:100], journal_dir=tmp_path)
    agent.close_journal()
    path = tmp_path / JOURNAL
    data = bytearray(path.read_bytes())
    if damage == "truncate":
        data = data[:-10]
    else:
        data[-3] ^= 0x40
    path.write_bytes(bytes(data))

    recovered = hkrt.SpotAgent(journal_dir=tmp_path)
    assert recovered.recover() == 99
    report = recovered.stats()["journal"]["recovered"]
    assert report["torn_bytes"] > 0 and report["path"] == str(path)
    assert_same_bars(recovered, fed(messages[:99]))
    assert journal_records(path) == 99  # the repaired journal holds every intact record, nothing else
    assert Path(report["corrupt_copy"]).read_bytes() == bytes(data)  # the damaged original is kept
    # the live feed goes on: the lost message is a gap of one, nothing is aggregated twice
    for message in messages[98:]:
        recovered.ingest(message)
    t = recovered.stats()["transport"]
    assert (t["gaps"], t["missing_messages"], t["duplicate_messages"]) == (0, 0, 1)
    assert_same_bars(recovered, fed(messages))
    assert journal_records(path) == len(messages)


def test_recovered_agent_continues_a_live_sequence_without_gap(tmp_path: Path) -> None:
    messages = day_messages(tmp_path, n_symbols=10, cycles=50)
    fed(messages[:70], journal_dir=tmp_path, journal_fsync="always").close_journal()
    agent = hkrt.SpotAgent(journal_dir=tmp_path)
    assert agent.recover(DAY) == 70
    with pytest.raises(RuntimeError, match="fresh agent"):
        agent.recover(DAY)  # a second replay would look like a publisher restart
    for message in messages[70:]:
        assert agent.ingest(message) > 0
    t = agent.stats()["transport"]
    assert (t["gaps"], t["missing_messages"], t["publisher_restarts"]) == (0, 0, 0)
    assert_same_bars(agent, fed(messages))


def test_write_failure_keeps_aggregating_and_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    messages = day_messages(tmp_path, n_symbols=10, cycles=50)
    agent = hkrt.SpotAgent(journal_dir=tmp_path)
    for message in messages[:40]:
        agent.ingest(message)
    real_write = os.write

    def full_disk(fd: int, data) -> int:
        real_write(fd, bytes(data)[:5])  # a partial record, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(hkrt.feed.journal.os, "write", full_disk)
    with caplog.at_level(logging.ERROR, logger="hkrt.agent"):
        for message in messages[40:60]:
            assert agent.ingest(message) > 0
    journal = agent.stats()["journal"]
    assert (journal["appended"], journal["write_errors"]) == (40, 20)
    assert "No space left" in journal["last_error"] and journal["path"] == str(tmp_path / JOURNAL)
    assert len([r for r in caplog.records if "journal write failed" in r.message]) == 1  # once per streak
    monkeypatch.setattr(hkrt.feed.journal.os, "write", real_write)
    for message in messages[60:]:
        agent.ingest(message)
    assert agent.stats()["journal"]["appended"] == len(messages) - 20
    assert agent.stats()["journal"]["failing"] is False
    assert_same_bars(agent, fed(messages))  # aggregation never stopped
    agent.close_journal()

    # the journal holds whole records only; the 20 lost messages are a reported gap on recovery
    recovered = hkrt.SpotAgent(journal_dir=tmp_path)
    assert recovered.recover() == len(messages) - 20
    assert recovered.stats()["journal"]["recovered"]["torn_bytes"] == 0
    t = recovered.stats()["transport"]
    assert (t["gaps"], t["missing_messages"]) == (1, 20)


def test_journal_file_per_market_day(tmp_path: Path) -> None:
    messages = day_messages(tmp_path, n_symbols=4, cycles=5, max_part_spots=100)
    agent = fed(messages, journal_dir=tmp_path, journal_fsync="never")
    agent.close_journal()
    assert [p.name for p in tmp_path.glob("*.hkj")] == [JOURNAL]
    assert journal_records(tmp_path / JOURNAL) == len(messages)
    other = hkrt.SpotAgent(journal_dir=tmp_path, recover_on_start=False)
    assert other.recover("2026-11-19") == 0  # no journal that day
    with pytest.raises(ValueError, match="journal_fsync"):
        hkrt.SpotAgent(journal_dir=tmp_path, journal_fsync="sometimes")
