"""The running agent over real nng sockets (ipc and tcp on loopback), with publishers in
other processes: fan-out, slow consumers, publisher restarts, gaps, bad messages."""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

import hkrt
from feed_process import DAY, publish_day_slice
from hkrt.core.synthetic import synthetic_day
from hkrt.feed.transport import SpotPublisher, default_address, runtime_dir, tcp_address
from test_wire import raw_batch

SPAWN = multiprocessing.get_context("spawn")  # nng is not fork-safe


def free_tcp_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def start_publisher(address: str, **kwargs) -> multiprocessing.Process:
    proc = SPAWN.Process(target=publish_day_slice, args=(address,), kwargs=kwargs)
    proc.start()
    return proc


def in_process_reference(n_symbols: int, cycles: int) -> hkrt.SpotAgent:
    agent = hkrt.SpotAgent()
    for i, push in enumerate(synthetic_day(n_symbols, DAY)):
        if i == cycles:
            break
        agent.ingest_columns(**push.columns())
    return agent


def assert_same_bars(got: hkrt.SpotAgent, want: hkrt.SpotAgent, ktypes=("MIN", "MIN5", "DAY", "WEEK")) -> None:
    assert got.symbols == want.symbols
    for symbol in want.symbols:
        for k in ktypes:
            pd.testing.assert_frame_equal(got.kdata(symbol, k), want.kdata(symbol, k))


@pytest.fixture
def ipc_address(tmp_path: Path) -> str:
    return f"ipc://{tmp_path / 'feed.ipc'}"


@pytest.mark.parametrize("transport", ["ipc", "tcp"])
def test_several_consumers_get_every_spot(transport: str, ipc_address: str) -> None:
    address = ipc_address if transport == "ipc" else free_tcp_address()
    n_symbols, cycles = 40, 50
    agents = [hkrt.SpotAgent().start(address) for _ in range(2)]
    cycles_seen: list[list[hkrt.CycleInfo]] = [[], []]
    for seen, agent in zip(cycles_seen, agents, strict=True):
        agent.on_cycle(seen.append)
    try:
        proc = start_publisher(address, subscribers=2, n_symbols=n_symbols, cycles=cycles, max_part_spots=15)
        for agent in agents:
            wait_until(lambda a=agent: (t := a.stats()["transport"])["messages"] - t["heartbeats"] == cycles * 3)
        proc.join(10)
        assert proc.exitcode == 0
    finally:
        for agent in agents:
            agent.stop()
    want = in_process_reference(n_symbols, cycles)
    for seen, agent in zip(cycles_seen, agents, strict=True):
        assert_same_bars(agent, want)
        t = agent.stats()["transport"]
        assert (t["verified"], t["gaps"], t["duplicate_messages"], t["publishers"]) == (cycles * 3, 0, 0, 1)
        assert len(seen) == cycles - 1 or len(seen) == cycles  # the last cycle reports once its parts are in
        assert all(c.complete and c.parts_received == 3 and c.spots == n_symbols for c in seen)
        assert agent.stats()["accepted"] == n_symbols * cycles


def test_bars_complete_through_hooks_on_one_thread(ipc_address: str) -> None:
    agent = hkrt.SpotAgent(["MIN", "MIN5"], bar_close_delay=0)
    threads, bars = set(), []

    @agent.on_bar(ktypes=["MIN"], symbols=["SH600000"])
    def record(symbol: str, ktype: hkrt.KType, bar) -> None:
        threads.add(threading.get_ident())
        bars.append((symbol, ktype, bar))

    agent.start(ipc_address)
    try:
        proc = start_publisher(ipc_address, subscribers=1, n_symbols=4, cycles=80, max_part_spots=100)
        wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 80)
        proc.join(10)
        assert agent.wait_idle()
    finally:
        agent.stop()
    # 80 pushes: the 09:25 auction, then 09:30:01 ... 09:33:58 every 3 s: minutes 09:31-09:33 are over.
    assert [b.datetime.strftime("%H:%M") for _, _, b in bars] == ["09:31", "09:32", "09:33"]
    assert {s for s, _, _ in bars} == {"SH600000"} and {k for _, k, _ in bars} == {hkrt.KType.MIN}
    frame = agent.kdata("SH600000", "MIN")
    assert [b.volume for _, _, b in bars] == frame.volume.iloc[:3].tolist()
    assert len(threads) == 1 and threading.get_ident() not in threads


def test_a_slow_callback_does_not_slow_receiving_or_lose_anything(ipc_address: str) -> None:
    fast, slow = hkrt.SpotAgent(["MIN"]), hkrt.SpotAgent(["MIN"])
    slow_cycles: list[hkrt.CycleInfo] = []

    @slow.on_cycle
    def crawl(info: hkrt.CycleInfo) -> None:
        time.sleep(0.02)
        slow_cycles.append(info)

    fast.start(ipc_address)
    slow.start(ipc_address)
    try:
        proc = start_publisher(ipc_address, subscribers=2, n_symbols=20, cycles=60, max_part_spots=100)
        for agent in (fast, slow):
            wait_until(lambda a=agent: (t := a.stats()["transport"])["messages"] - t["heartbeats"] == 60)
        assert slow.stats()["transport"]["queue_depth"] > 0  # its callbacks lag behind its data
        proc.join(10)
        assert slow.wait_idle(timeout=10)
    finally:
        fast.stop()
        slow.stop()
    assert len(slow_cycles) >= 59 and slow.stats()["transport"]["gaps"] == 0
    assert_same_bars(slow, fast, ktypes=("MIN",))


def test_a_lagging_subscriber_sees_its_losses_as_gaps(ipc_address: str) -> None:
    """A subscriber that stops reading for a while overflows nng's small receive buffer;
    feeding what it did get to an agent shows exactly how many messages were lost."""
    import pynng

    sub = pynng.Sub0(recv_buffer_size=4, recv_timeout=5000)
    sub.subscribe(b"")
    sub.dial(ipc_address, block=False)
    proc = start_publisher(ipc_address, subscribers=1, n_symbols=5, cycles=100, max_part_spots=100, pause=0.005)
    received = [sub.recv()]  # the stream's first message, then the consumer stalls
    proc.join(20)
    sub.recv_timeout = 500
    while True:
        try:
            received.append(sub.recv())
        except pynng.Timeout:
            break
    sub.close()
    agent = hkrt.SpotAgent(["MIN"])
    for message in received:
        agent.ingest(message)
    t = agent.stats()["transport"]
    sequences = [hkrt.wire.decode_header(m).sequence for m in received]
    assert len(received) < 100 and sequences[0] == 1 and sequences[-1] == 100
    assert t["gaps"] >= 1
    assert t["missing_messages"] == 100 - len(received)


def test_gaps_are_reported(ipc_address: str, caplog: pytest.LogCaptureFixture) -> None:
    agent = hkrt.SpotAgent(["MIN"])
    gaps: list[hkrt.GapInfo] = []
    agent.on_gap(gaps.append)
    agent.start(ipc_address)
    try:
        with caplog.at_level(logging.WARNING, logger="hkrt"):
            proc = start_publisher(
                ipc_address, subscribers=1, n_symbols=3, cycles=10, max_part_spots=100, skip_sequences_after=5
            )
            wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 10)
            proc.join(10)
            agent.wait_idle()
    finally:
        agent.stop()
    assert [(g.expected_sequence, g.received_sequence, g.missing) for g in gaps] == [(6, 9, 3)]
    t = agent.stats()["transport"]
    assert (t["gaps"], t["missing_messages"]) == (1, 3)
    assert any(getattr(r, "missing", None) == 3 for r in caplog.records)


def test_publisher_restart_is_a_new_stream(ipc_address: str) -> None:
    agent = hkrt.SpotAgent(["MIN"]).start(ipc_address)
    try:
        first = start_publisher(ipc_address, subscribers=1, n_symbols=3, cycles=5, max_part_spots=100)
        wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 5)
        first.join(10)
        second = start_publisher(ipc_address, subscribers=1, n_symbols=3, cycles=8, max_part_spots=100)
        wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 13)
        second.join(10)
    finally:
        agent.stop()
    t = agent.stats()["transport"]
    assert (t["publishers"], t["gaps"], t["duplicate_messages"]) == (2, 0, 0)
    # The second run replays the same day from the start: its first 5 pushes repeat what
    # the agent has (duplicates or out of order), the last 3 are new.
    assert_same_bars(agent, in_process_reference(3, 8), ktypes=("MIN",))


def test_same_publisher_id_restarting_at_sequence_one_is_a_restart() -> None:
    agent = hkrt.SpotAgent(["MIN"])
    pushes = [p.columns() for p in synthetic_day(2, DAY, interval=60)][:4]
    for seq, push in enumerate(pushes[:3], start=1):
        agent.ingest(hkrt.wire.encode_spots(push, publisher_id=7, sequence=seq, cycle_id=seq))
    assert agent.ingest(hkrt.wire.encode_spots(pushes[2], publisher_id=7, sequence=3, cycle_id=3)) == 0
    agent.ingest(hkrt.wire.encode_spots(pushes[3], publisher_id=7, sequence=1, cycle_id=1))
    t = agent.stats()["transport"]
    assert (t["duplicate_messages"], t["publisher_restarts"]) == (1, 1)
    assert agent.stats()["accepted"] == 8


def test_bad_messages_are_counted_and_the_agent_keeps_serving(ipc_address: str) -> None:
    agent = hkrt.SpotAgent(["MIN"]).start(ipc_address)
    good = hkrt.wire.encode_spots(
        [
            hkrt.Spot(
                "SH600000",
                dt.datetime(2026, 11, 20, 10, 0, 5),
                open=10,
                high=10,
                low=10,
                close=10,
                volume=100,
                amount=1000,
            )
        ],
        publisher_id=1,
        sequence=1,
    )
    missing_required = raw_batch([{"market": "SH", "close": 10.0}])  # no code, no datetime
    future_version = raw_batch(version=2)
    bad = [
        b"",
        b"\x00" * 3,
        os.urandom(64),
        good[: len(good) // 2],
        b"XXXX" + good[4:],
        good[:4] + b"ZZZZ" + good[8:],
        missing_required,
        future_version,
    ]
    try:
        with SpotPublisher(ipc_address) as pub:
            wait_until(lambda: len(pub._socket.pipes) == 1)
            time.sleep(0.05)
            for message in bad:
                pub.send_raw(message)
            pub.send_raw(good)
            # the publisher's idle heartbeats (one a second) may come in between: they are not the test's
            wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] >= len(bad) + 1)
    finally:
        agent.stop()
    t = agent.stats()["transport"]
    assert t["verified"] - t["heartbeats"] == 1 and sum(t["rejected"].values()) == len(bad)
    assert t["rejected"]["too_short"] >= 2 and t["rejected"]["malformed"] >= 2
    assert t["rejected"]["bad_identifier"] >= 1 and t["rejected"]["unsupported_version"] == 1
    assert len(agent.kdata("SH600000", "MIN")) == 1


def test_a_consumer_joining_mid_cycle_uses_the_rest_of_it() -> None:
    spots = [p for p in synthetic_day(6, DAY)][1].columns()
    parts = [
        hkrt.wire.encode_spots(
            {k: v[i * 2 : i * 2 + 2] for k, v in spots.items()},
            publisher_id=9,
            sequence=10 + i,
            cycle_id=4,
            part_index=i,
            part_count=3,
        )
        for i in range(3)
    ]
    agent = hkrt.SpotAgent(["MIN"])
    cycles: list[hkrt.CycleInfo] = []
    agent.on_cycle(cycles.append)
    agent.bus.start()  # hooks without a socket
    for message in parts[1:]:  # part 0 went out before this consumer joined
        agent.ingest(message)
    transport = agent.stats()["transport"]
    # sequences 1..10 went out before this consumer joined: a late join, reported as such
    assert agent.stats()["accepted"] == 4 and transport["late_joins"] == 1 and transport["missing_messages"] == 10
    next_cycle = [p for p in synthetic_day(6, DAY)][2].columns()
    agent.ingest(hkrt.wire.encode_spots(next_cycle, publisher_id=9, sequence=13, cycle_id=5))
    agent.wait_idle()
    joined, following = cycles
    assert (joined.cycle_id, joined.complete, joined.joined_mid_cycle, joined.parts_received, joined.spots) == (
        4,
        False,
        True,
        2,
        4,
    )
    assert (following.cycle_id, following.complete, following.joined_mid_cycle, following.spots) == (5, True, False, 6)
    assert agent.stats()["transport"]["incomplete_cycles"] == 1


def test_callback_errors_are_logged_counted_and_survived(ipc_address: str, caplog: pytest.LogCaptureFixture) -> None:
    agent = hkrt.SpotAgent(["MIN"])
    calls: list[int] = []

    @agent.on_cycle
    def explode(info: hkrt.CycleInfo) -> None:
        calls.append(info.cycle_id)
        raise RuntimeError("strategy bug")

    agent.start(ipc_address)
    try:
        with caplog.at_level(logging.ERROR, logger="hkrt"):
            proc = start_publisher(ipc_address, subscribers=1, n_symbols=3, cycles=6, max_part_spots=100)
            wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 6)
            proc.join(10)
            agent.wait_idle()
    finally:
        agent.stop()
    assert len(calls) >= 5
    assert agent.stats()["transport"]["callback_errors"] == len(calls)
    assert any("strategy bug" in (r.exc_text or "") for r in caplog.records)


def test_in_process_ingest_feeds_the_hooks_of_a_running_agent_and_never_piles_up(ipc_address: str) -> None:
    pushes = [p.columns() for p in synthetic_day(3, DAY)][:45]  # 09:25, then 09:30:01 .. 09:32:10
    idle = hkrt.SpotAgent(["MIN"])
    idle.on_bars(lambda records: None)
    for push in pushes:
        idle.ingest_columns(**push)
    assert len(idle._engine.take_completed()) == 0  # drained after each call, not kept
    running = hkrt.SpotAgent(["MIN"])
    seen: list[str] = []
    running.on_bar(lambda symbol, ktype, bar: seen.append(f"{symbol} {bar.datetime:%H:%M}"), symbols=["SH600000"])
    running.start(ipc_address)
    try:
        for push in pushes:
            running.ingest_columns(**push)
        running.wait_idle()
    finally:
        running.stop()
    assert seen == ["SH600000 09:31", "SH600000 09:32"]
    assert running.wait_idle()  # stopped: nothing to wait for


def test_start_stop_restart_and_module_level_agent(ipc_address: str) -> None:
    agent = hkrt.SpotAgent(["MIN"]).start(ipc_address)
    with pytest.raises(RuntimeError, match="already running"):
        agent.start(ipc_address)
    agent.stop()
    assert not agent.running
    agent.start(ipc_address)
    proc = start_publisher(ipc_address, subscribers=1, n_symbols=2, cycles=3, max_part_spots=100)
    wait_until(lambda: (t := agent.stats()["transport"])["messages"] - t["heartbeats"] == 3)
    proc.join(10)
    agent.stop()
    global_agent = hkrt.start_spot_agent(ipc_address, ktypes=["MIN"])
    try:
        assert global_agent.running and hkrt.get_spot_agent() is global_agent
        with pytest.raises(RuntimeError, match="already running"):
            hkrt.start_spot_agent(ipc_address)
    finally:
        hkrt.stop_spot_agent()
    assert not global_agent.running


def test_default_address_is_private_to_the_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    address = default_address()
    assert address == f"ipc://{tmp_path / 'hkrt' / 'spot.ipc'}"
    assert stat.S_IMODE((tmp_path / "hkrt").stat().st_mode) == 0o700
    (tmp_path / "hkrt").chmod(0o777)
    with pytest.raises(PermissionError, match="open to other users"):
        runtime_dir()


def test_tcp_is_loopback_unless_told_otherwise() -> None:
    assert tcp_address(True) == "tcp://127.0.0.1:9200"
    assert tcp_address(9300) == "tcp://127.0.0.1:9300"
    assert tcp_address(":9300") == "tcp://127.0.0.1:9300"
    assert tcp_address("0.0.0.0:9300") == "tcp://0.0.0.0:9300"
    with pytest.raises(ValueError, match="invalid TCP address"):
        tcp_address("localhost")


def test_a_second_publisher_on_the_same_address_is_a_clear_error(ipc_address: str) -> None:
    with SpotPublisher(ipc_address), pytest.raises(OSError, match="already in use"):
        SpotPublisher(ipc_address)


def test_a_closed_publisher_frees_its_feed_and_retransmission_addresses(ipc_address: str) -> None:
    from hkrt.feed.retransmit import fetch_missing, retransmit_address

    first = SpotPublisher(ipc_address, heartbeat_interval=0.05)
    first.publish(next(iter(synthetic_day(2, DAY))).columns())
    first.close()
    first.close()  # twice is harmless
    with pytest.raises(ValueError, match="closed"):
        first.publish([])
    assert not first._heartbeat_thread.is_alive()
    with SpotPublisher(ipc_address, publisher_id=first.publisher_id) as second:  # nothing left bound
        second.publish(next(iter(synthetic_day(2, DAY))).columns())
        got = fetch_missing(retransmit_address(ipc_address), second.publisher_id, second.session_epoch, 1, 1, timeout=5)
    assert second.session_epoch > first.session_epoch
    assert got.error is None and hkrt.wire.decode_header(got.messages[0]).session_epoch == second.session_epoch


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full to fill the disk")
def test_a_full_disk_under_the_publisher_journal_is_reported_and_the_feed_goes_on(
    ipc_address: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from hkrt.feed.retransmit import fetch_missing, retransmit_address

    pushes = [p.columns() for p in synthetic_day(2, DAY)][:4]
    with SpotPublisher(ipc_address, record=tmp_path / "feed.jnl", ring_messages=1, heartbeat_interval=0) as pub:
        pub.publish(pushes[0])
        full = os.open("/dev/full", os.O_WRONLY)
        saved = os.dup(pub._journal._fd)
        os.dup2(full, pub._journal._fd)  # every later journal write fails with ENOSPC
        try:
            with caplog.at_level(logging.WARNING, logger="hkrt.transport"):
                pub.publish(pushes[1])
                pub.publish(pushes[2])
        finally:
            os.dup2(saved, pub._journal._fd)
            os.close(saved)
            os.close(full)
        pub.publish(pushes[3])
        stats = pub.stats()
        got = fetch_missing(retransmit_address(ipc_address), pub.publisher_id, pub.session_epoch, 1, 4, timeout=5)
    assert stats["sequence"] == 4 and stats["messages"] == 4 and stats["journal_errors"] == 2
    assert len([r for r in caplog.records if "journal append failed" in r.getMessage()]) == 1  # rate-limited
    # 1 and 4 are in the journal, 2 and 3 were evicted from the one-message ring and never journaled
    assert got.error is None and got.unavailable == [(2, 3)]
    assert [hkrt.wire.decode_header(m).sequence for m in got.messages] == [1, 4]
    assert [
        hkrt.wire.decode_header(r.payload).sequence for r in hkrt.feed.journal.read_journal(tmp_path / "feed.jnl")
    ] == [
        1,
        4,
    ]
