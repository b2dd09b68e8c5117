"""The Redis Streams bus against a real redis-server (tests/redis_server.py): a simulated day through
Redis gives the bars of the same day over nng; a restarted consumer resumes from its last
acknowledged message (its pending entries first); a crashed consumer's pending messages are claimed
by another; Redis restarted mid-day is reconnected to, and what the restart lost is reported as a
gap and recovered from the spot server's retransmission when the agent can reach it; MAXLEN trimming
before a slow consumer reads is reported as a gap."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import hkrt
from hkrt.core.synthetic import synthetic_day
from hkrt.feed.redis_reader import RedisGroupReader
from hkrt.feed.redis_sink import DEFAULT_STREAM, RedisStreamSink
from hkrt.feed.transport import SpotPublisher
from redis_server import RedisServer, running_redis
from test_feed_recovery import assert_same_bars, fed

DAY = dt.date(2026, 11, 20)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    with running_redis() as server:
        yield server


def wait_until(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def data_messages(agent: hkrt.SpotAgent) -> int:
    t = agent.stats()["transport"]
    return int(t["messages"] - t["heartbeats"])


class Feed:
    """A spot publisher (nng, with its retransmission server) whose every message also goes to Redis
    and to ``sent``; ``publish(n)`` sends the next ``n`` pushes of a synthetic day."""

    def __init__(self, address: str, url: str, *, maxlen: int = 100_000, heartbeat_interval: float = 0.0) -> None:
        self.publisher = SpotPublisher(address, max_part_spots=4, heartbeat_interval=heartbeat_interval)
        self.sink = RedisStreamSink(url, maxlen=maxlen)
        self.sent: list[bytes] = []
        self.publisher.add_sink(self.sink)
        self.publisher.add_sink(self.sent.append)
        self._pushes = iter(synthetic_day(10, DAY))

    def publish(self, cycles: int) -> None:
        for _ in range(cycles):
            self.publisher.publish(next(self._pushes).columns())

    def close(self) -> None:
        self.publisher.close()
        self.sink.close()


@contextmanager
def feed(tmp_path: Path, url: str, **options) -> Iterator[Feed]:
    f = Feed(f"ipc://{tmp_path / 'feed.ipc'}", url, **options)
    try:
        yield f
    finally:
        f.close()


def test_a_sim_day_through_redis_gives_the_bars_of_the_same_day_over_nng(tmp_path: Path, redis_server) -> None:
    from hkrt.feed.server import SpotServer
    from hkrt.fetcher.sim import SimConfig, SimMarket

    address = f"ipc://{tmp_path / 'feed.ipc'}"
    over_nng, over_redis = hkrt.SpotAgent(), hkrt.SpotAgent()
    gaps: list[hkrt.GapInfo] = []
    over_redis.on_gap(gaps.append)
    over_redis.start_redis(redis_server.url, "strategy-host")  # the group exists from here: nothing missed
    over_nng.start(address)
    try:
        with SpotPublisher(address, simulated_time=True, heartbeat_interval=0.2) as publisher:
            sink = RedisStreamSink(redis_server.url, maxlen=100_000)
            publisher.add_sink(sink)
            assert publisher.wait_for_subscribers(1, timeout=10)
            SpotServer(publisher).run_sim(SimMarket(DAY, SimConfig(symbols=12, interval=15)), speed=1e9)
            wait_until(lambda: over_redis.closed_day == DAY and over_nng.closed_day == DAY)
            sink.close()
        assert over_redis.wait_idle() and over_nng.wait_idle()
    finally:
        over_redis.stop()
        over_nng.stop()
    assert assert_same_bars(over_redis, over_nng) > 12 * 240
    t = over_redis.stats()["transport"]
    assert (t["gaps"], t["lost_messages"], gaps) == (0, 0, [])
    assert data_messages(over_redis) == sink.stats()["appended"] - t["heartbeats"]
    assert sink.stats()["dropped"] == 0
    with redis_server.client() as client:  # every message taken was acknowledged
        assert client.xpending(DEFAULT_STREAM, "strategy-host")["pending"] == 0


def test_a_restarted_consumer_resumes_from_its_last_acknowledged_message(tmp_path: Path, redis_server) -> None:
    """The agent stops mid-day; messages go on into the stream; before it comes back, its consumer
    reads five entries and dies without acknowledging them (a crash between reading and taking).  The
    restarted agent (journal recovery, same consumer) re-reads those five first, then the rest."""
    journal = tmp_path / "journal"
    with feed(tmp_path, redis_server.url) as f:
        first = hkrt.SpotAgent(journal_dir=journal).start_redis(redis_server.url, "g", consumer="host-a")
        f.publish(20)
        wait_until(lambda: data_messages(first) == len(f.sent))
        first.stop()
        f.publish(20)  # nobody reads: they wait in the stream for the group
        crashed = RedisGroupReader(redis_server.url, "g", consumer="host-a", count=5)
        assert len(crashed.read(block=1.0)) == 5  # read, never acknowledged
        crashed.close()
        f.publish(10)
        again = hkrt.SpotAgent(journal_dir=journal)
        gaps: list[hkrt.GapInfo] = []
        again.on_gap(gaps.append)
        again.start_redis(redis_server.url, "g", consumer="host-a")
        try:
            assert again.stats()["journal"]["recovered"]["messages"] == 20 * 3  # what the first agent took
            wait_until(lambda: data_messages(again) == len(f.sent))
            again.wait_idle()
        finally:
            again.stop()
    reread = again.stats()["redis"]["pending_reread"]
    assert reread == 5
    t = again.stats()["transport"]
    assert (t["gaps"], t["lost_messages"], t["duplicate_messages"], gaps) == (0, 0, 0, [])
    assert_same_bars(again, fed(f.sent))


def test_a_crashed_consumers_pending_messages_are_claimed_by_another(tmp_path: Path, redis_server) -> None:
    with feed(tmp_path, redis_server.url) as f:
        dead = RedisGroupReader(redis_server.url, "g", consumer="host-a", count=7)
        assert dead.join()
        f.publish(30)
        assert len(dead.read(block=1.0)) == 7  # then it dies: seven entries pending on host-a
        dead.close()
        time.sleep(0.3)  # longer than claim_idle: the entries are idle
        standby = hkrt.SpotAgent()
        standby.start_redis(redis_server.url, "g", consumer="host-b", claim_idle=0.25)
        try:
            wait_until(lambda: data_messages(standby) == len(f.sent))
            standby.wait_idle()
        finally:
            standby.stop()
        with redis_server.client() as client:
            pending = client.xpending(DEFAULT_STREAM, "g")["pending"]
    assert standby.stats()["redis"]["claimed"] == 7 and pending == 0
    t = standby.stats()["transport"]
    assert (t["gaps"], t["lost_messages"]) == (0, 0)
    assert_same_bars(standby, fed(f.sent))


def test_redis_restarted_under_running_consumers_loses_nothing(tmp_path: Path, redis_server, caplog) -> None:
    """Redis goes down mid-day and comes back empty (no persistence); the publisher's sink keeps what
    it could not write, the agent reconnects, finds its group gone, creates it again at the stream's
    start and reads what the sink wrote since: nothing lost, every reconnect counted and logged."""
    caplog.set_level(logging.WARNING, logger="hkrt.redis")
    with feed(tmp_path, redis_server.url) as f:
        agent = hkrt.SpotAgent().start_redis(redis_server.url, "g")
        try:
            f.publish(15)
            wait_until(lambda: data_messages(agent) == len(f.sent))
            redis_server.stop()
            f.publish(15)  # Redis is down: queued in the sink
            time.sleep(0.3)
            assert f.sink.stats()["queued"] > 0 and f.sink.stats()["errors"] > 0
            redis_server.start()
            f.publish(15)
            wait_until(lambda: data_messages(agent) == len(f.sent))
            agent.wait_idle()
        finally:
            agent.stop()
        r = agent.stats()["redis"]
        s = f.sink.stats()
    assert s["reconnects"] >= 1 and s["dropped"] == 0
    assert r["reconnects"] >= 1 and r["errors"] >= 1 and r["group_recreated"] == 1
    t = agent.stats()["transport"]
    assert (t["gaps"], t["lost_messages"]) == (0, 0)
    assert_same_bars(agent, fed(f.sent))
    text = caplog.text
    assert "cannot append to the Redis stream" in text and "cannot read the Redis stream" in text
    assert "consumer group was gone" in text


def test_what_a_redis_restart_lost_is_reported_and_fetched_from_the_spot_server(tmp_path: Path, redis_server) -> None:
    """Both agents are away while messages sit in the stream; Redis restarts and loses them.  Back,
    each agent sees the sequence gap: one that can reach the spot server's retransmission socket
    fetches the lost messages (bars equal), one that cannot reports them lost (on_gap, stats)."""
    with feed(tmp_path, redis_server.url) as f:
        address = f.publisher.addresses[0]
        fetching = hkrt.SpotAgent().start_redis(redis_server.url, "fetching", retransmit_from=address)
        fetched_gaps: list[hkrt.GapInfo] = []
        fetching.on_gap(fetched_gaps.append)
        reporting = hkrt.SpotAgent().start_redis(redis_server.url, "reporting")
        gaps: list[hkrt.GapInfo] = []
        reporting.on_gap(gaps.append)
        f.publish(10)
        wait_until(lambda: data_messages(fetching) == data_messages(reporting) == len(f.sent))
        fetching.stop()
        reporting.stop()
        before = len(f.sent)
        f.publish(10)
        assert f.sink.flush()
        lost = len(f.sent) - before
        redis_server.stop()
        redis_server.start()  # empty: the ten cycles are gone
        f.publish(10)
        fetching.start_redis(redis_server.url, "fetching", retransmit_from=address)
        reporting.start_redis(redis_server.url, "reporting")
        try:
            wait_until(
                lambda: data_messages(fetching) == len(f.sent) and data_messages(reporting) == len(f.sent) - lost
            )
            fetching.wait_idle()
            reporting.wait_idle()
        finally:
            fetching.stop()
            reporting.stop()
    t = fetching.stats()["transport"]
    assert (t["retransmit_requests"] >= 1, t["retransmitted_messages"], t["lost_messages"], fetched_gaps) == (
        True,
        lost,
        0,
        [],
    )
    assert_same_bars(fetching, fed(f.sent))
    t = reporting.stats()["transport"]
    assert (t["gaps"], t["missing_messages"], t["lost_messages"]) == (1, lost, lost)
    assert [(g.kind, g.expected_sequence, g.missing, g.recovered) for g in gaps] == [("gap", before + 1, lost, 0)]


def test_maxlen_trimming_before_a_slow_consumer_reads_is_reported_as_a_gap(tmp_path: Path, redis_server) -> None:
    with feed(tmp_path, redis_server.url, maxlen=50) as f:
        agent = hkrt.SpotAgent().start_redis(redis_server.url, "slow")
        gaps: list[hkrt.GapInfo] = []
        agent.on_gap(gaps.append)
        f.publish(5)
        wait_until(lambda: data_messages(agent) == len(f.sent))
        agent.stop()
        before = len(f.sent)
        f.publish(200)  # 600 messages into a stream kept at ~50: most are trimmed before the agent reads
        assert f.sink.flush()
        with redis_server.client() as client:
            kept = client.xlen(DEFAULT_STREAM)
        assert 50 <= kept < 600
        agent.start_redis(redis_server.url, "slow")
        try:
            wait_until(lambda: data_messages(agent) == before + kept)
            agent.wait_idle()
        finally:
            agent.stop()
    trimmed = len(f.sent) - before - kept
    t = agent.stats()["transport"]
    assert (t["gaps"], t["lost_messages"]) == (1, trimmed)
    assert [(g.kind, g.expected_sequence, g.missing) for g in gaps] == [("gap", before + 1, trimmed)]


def test_a_sealed_feed_stays_sealed_in_the_stream(tmp_path: Path, redis_server) -> None:
    """The stream holds the bytes the nng socket sends: sealed with the feed key, so an agent with the
    key takes them and one with another key rejects every one (counted), as on nng."""
    key, other = "11" * 32, "22" * 32
    with SpotPublisher(f"ipc://{tmp_path / 'feed.ipc'}", auth_key=key, heartbeat_interval=0) as publisher:
        sink = RedisStreamSink(redis_server.url)
        sent: list[bytes] = []
        publisher.add_sink(sink)
        publisher.add_sink(sent.append)
        keyed = hkrt.SpotAgent(auth_key=key).start_redis(redis_server.url, "keyed")
        stranger = hkrt.SpotAgent(auth_key=other).start_redis(redis_server.url, "stranger")
        try:
            for push in itertools.islice(synthetic_day(6, DAY), 10):
                publisher.publish(push.columns())
            wait_until(lambda: data_messages(keyed) == 10 and stranger.stats()["transport"]["unauthenticated"] == 10)
            keyed.wait_idle()
        finally:
            keyed.stop()
            stranger.stop()
            sink.close()
    with redis_server.client() as client:
        stored = [fields[b"m"] for _, fields in client.xrange(DEFAULT_STREAM)]
    assert stored == sent
    from hkrt.feed.feed_auth import unseal

    assert_same_bars(keyed, fed([unseal(bytes.fromhex(key), m) for m in sent]))
    assert stranger.stats()["transport"]["messages"] == 0


def test_a_consumer_killed_with_messages_pending_has_them_claimed_by_another(tmp_path: Path, redis_server) -> None:
    """A real agent process reads a batch, hangs in its hook before acknowledging it, and is killed
    with SIGKILL; the group's other consumer claims the batch once it is idle, then reads on: its
    bars equal those of every message sent."""
    import multiprocessing
    import signal

    from redis_consumer_process import run_stuck_agent

    with feed(tmp_path, redis_server.url) as f:
        assert RedisGroupReader(redis_server.url, "desk").join()  # the group starts before the first message
        f.publish(30)
        victim = multiprocessing.get_context("spawn").Process(
            target=run_stuck_agent, args=(redis_server.url, "desk", "host-a")
        )
        victim.start()
        with redis_server.client() as client:

            def pending_on_a() -> int:
                consumers = {c["name"]: c["pending"] for c in client.xinfo_consumers(DEFAULT_STREAM, "desk")}
                return int(consumers.get(b"host-a", 0))

            wait_until(lambda: pending_on_a() > 0)
            time.sleep(0.3)  # it is stuck: its batch stays pending
            stuck = pending_on_a()
            victim.kill()
            victim.join(10)
            assert victim.exitcode == -signal.SIGKILL
            time.sleep(0.6)  # longer than claim_idle
            f.publish(10)
            standby = hkrt.SpotAgent().start_redis(redis_server.url, "desk", consumer="host-b", claim_idle=0.5)
            try:
                wait_until(lambda: data_messages(standby) == len(f.sent))
                standby.wait_idle()
            finally:
                standby.stop()
            left = client.xpending(DEFAULT_STREAM, "desk")["pending"]
    assert stuck > 0 and standby.stats()["redis"]["claimed"] == stuck and left == 0
    t = standby.stats()["transport"]
    assert (t["gaps"], t["lost_messages"]) == (0, 0)
    assert_same_bars(standby, fed(f.sent))
