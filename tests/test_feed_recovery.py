"""Nothing lost: late joins, lost tails and an agent's own kill -9 are recovered from the spot
server's retransmission, over real nng sockets with publishers in other processes; what
cannot be recovered is reported (on_gap, stats, WARNING)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd

import hkrt
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


def fed(messages: list[bytes]) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent()
    for message in messages:
        agent.ingest(message)
    return agent


def assert_same_bars(got: hkrt.SpotAgent, want: hkrt.SpotAgent) -> int:
    """Every bar of every symbol and all 13 periods equal; returns how many bars were compared."""
    assert got.symbols == want.symbols and want.symbols
    compared = 0
    for symbol in want.symbols:
        for ktype in hkrt.KType:
            expected = want.kdata(symbol, ktype)
            pd.testing.assert_frame_equal(got.kdata(symbol, ktype), expected)
            compared += len(expected)
    return compared


def records(path: Path) -> int:
    if not path.exists():
        return 0
    scan = ScanResult()
    for _ in read_journal(path, scan):
        pass
    return scan.records


def test_kill_9_while_the_feed_flows_loses_nothing(tmp_path: Path) -> None:
    """The agent is killed mid-stream; the restarted one recovers its journal, fetches what
    was sent while it was down, and its bars equal an uninterrupted agent's for all 13
    periods."""
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    journal_dir, sent = tmp_path / "journal", tmp_path / "sent.hkj"
    n_symbols, cycles, parts = 30, 300, 3
    never = SPAWN.Event()
    uninterrupted = hkrt.SpotAgent().start(address)
    victim = SPAWN.Process(target=run_journaling_agent, args=(address, str(journal_dir)))
    victim.start()
    publisher = SPAWN.Process(
        target=publish_with_pause,
        args=(address, n_symbols, cycles, cycles, never, str(sent), 10),
        kwargs={"pause": 0.02, "linger": 8.0},
    )
    agent = None
    try:
        publisher.start()  # whichever agent connects later joins late and fetches what it missed
        wait_until(lambda: records(journal_dir / JOURNAL) >= 150)
        os.kill(victim.pid, signal.SIGKILL)  # mid-stream: perhaps mid-cycle, mid-write
        victim.join(10)
        assert victim.exitcode == -signal.SIGKILL
        time.sleep(0.3)  # messages go on flowing while no agent listens
        gaps: list[hkrt.GapInfo] = []
        agent = hkrt.SpotAgent(journal_dir=journal_dir)
        agent.on_gap(gaps.append)
        agent.start(address)  # recovers the journal, then the feed
        kept = agent.stats()["journal"]["recovered"]["messages"]
        wait_until(lambda: records(journal_dir / JOURNAL) == cycles * parts, timeout=60)
        wait_until(lambda: uninterrupted.stats()["transport"]["messages"] >= cycles * parts)
        publisher.join(30)
        assert publisher.exitcode == 0
        agent.wait_idle()
    finally:
        for proc in (victim, publisher):
            if proc.is_alive():
                proc.kill()
        uninterrupted.stop()
        if agent is not None:
            agent.stop()
    t = agent.stats()["transport"]
    assert t["retransmitted_messages"] > 0 and kept + t["messages"] - t["duplicate_messages"] >= cycles * parts
    assert t["lost_messages"] == 0 and gaps == []
    assert uninterrupted.stats()["transport"]["lost_messages"] == 0
    everything = fed([r.payload for r in read_journal(sent)])
    assert assert_same_bars(uninterrupted, everything) > 0
    assert_same_bars(agent, everything)


def test_a_publisher_that_starts_before_the_agent_connects_loses_nothing(tmp_path: Path) -> None:
    """The first messages go out before the agent's pipe is connected: a late join, fetched."""
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    sent = tmp_path / "sent.hkj"
    never = SPAWN.Event()
    publisher = SPAWN.Process(
        target=publish_with_pause,
        args=(address, 12, 50, 50, never, str(sent), 4),
        kwargs={"pause": 0.01, "linger": 4.0, "wait_subscriber": False},
    )
    publisher.start()
    time.sleep(1.0)  # it is already sending
    agent = hkrt.SpotAgent()
    gaps: list[hkrt.GapInfo] = []
    agent.on_gap(gaps.append)
    try:
        agent.start(address)
        publisher.join(30)
        assert publisher.exitcode == 0
        agent.wait_idle()
    finally:
        if publisher.is_alive():
            publisher.kill()
        agent.stop()
    t = agent.stats()["transport"]
    assert t["late_joins"] == 0 or t["lost_messages"] == 0
    assert t["retransmitted_messages"] > 0 and t["lost_messages"] == 0 and gaps == []
    assert_same_bars(agent, fed([r.payload for r in read_journal(sent)]))


def test_a_lost_tail_is_revealed_by_heartbeats_and_fetched(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    pushes = [p.columns() for _, p in zip(range(20), synthetic_day(8, DAY), strict=False)]
    with SpotPublisher(address, heartbeat_interval=0.2, max_part_spots=100) as pub:
        for push in pushes:  # nobody listens: all 20 are "lost" for a consumer that comes later
            pub.publish(push)
        agent = hkrt.SpotAgent(silence_after=60)
        try:
            agent.start(address)
            wait_until(lambda: agent.stats()["transport"]["retransmitted_messages"] == 20, timeout=10)
            agent.wait_idle()
        finally:
            agent.stop()
    t = agent.stats()["transport"]
    assert t["heartbeats"] >= 1 and t["lost_messages"] == 0
    want = hkrt.SpotAgent()
    for push in pushes:
        want.ingest_columns(**push)
    assert_same_bars(agent, want)


def test_what_cannot_be_recovered_is_reported(tmp_path: Path, caplog) -> None:
    """Sequences the server never sent (a publisher bug) are unavailable: on_gap, stats, WARNING."""
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    agent = hkrt.SpotAgent()
    gaps: list[hkrt.GapInfo] = []
    agent.on_gap(gaps.append)
    pushes = [p.columns() for _, p in zip(range(6), synthetic_day(5, DAY), strict=False)]
    with SpotPublisher(address, max_part_spots=100) as pub:
        agent.start(address)
        pub.wait_for_subscribers(1, timeout=10)
        try:
            for i, push in enumerate(pushes):
                if i == 3:
                    pub.sequence += 2  # two sequence numbers skipped: nothing can bring them back
                pub.publish(push)
            wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 6)
            agent.wait_idle()
        finally:
            agent.stop()
    assert [(g.kind, g.expected_sequence, g.missing, g.recovered) for g in gaps] == [("gap", 4, 2, 0)]
    t = agent.stats()["transport"]
    assert (t["gaps"], t["lost_messages"], t["retransmit_unavailable"]) == (1, 2, 2)
    assert any("messages lost" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


def test_a_silent_feed_and_a_missing_publisher_are_reported(tmp_path: Path, caplog) -> None:
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    events: list[hkrt.FeedEvent] = []
    agent = hkrt.SpotAgent(silence_after=0.5)
    agent.on_feed(events.append)
    agent.start(address)
    try:
        wait_until(lambda: any(e.kind == "no_publisher" for e in events) or (agent.wait_idle(0.1) and False), 5)
        with SpotPublisher(address, heartbeat_interval=0) as pub:  # no heartbeats: it goes silent
            pub.wait_for_subscribers(1, timeout=10)
            pub.publish(next(iter(synthetic_day(3, DAY))).columns())
            wait_until(lambda: agent.stats()["transport"]["silent"], 5)
            pub.publish([])
            wait_until(lambda: not agent.stats()["transport"]["silent"], 5)
        agent.wait_idle()
    finally:
        agent.stop()
    kinds = [e.kind for e in events]
    assert "no_publisher" in kinds and "silent" in kinds and "resumed" in kinds
    assert any("feed silent" in r.getMessage() for r in caplog.records)
