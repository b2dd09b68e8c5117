"""Retransmission over real nng sockets (ipc, and tcp on 127.0.0.1): the sent-message ring
and its bounds, serving from the ring and from the journal, partial replies, unavailable
ranges, other sessions, hostile requests; heartbeats and session epochs of the publisher."""

from __future__ import annotations

import datetime as dt
import os
import socket
import threading
import time
from pathlib import Path

import pynng
import pytest

import hkrt
from hkrt.feed.retransmit import (
    MAX_REQUEST_RANGE,
    PROTOCOL_VERSION,
    REQUEST_MAGIC,
    Request,
    SentLog,
    Status,
    decode_reply,
    encode_request,
    fetch_missing,
    retransmit_address,
)
from hkrt.feed.transport import SpotPublisher

DAY_START = dt.datetime(2026, 11, 20, 9, 30)
SYMBOLS = ("SH600000", "SZ000001", "SH600519")


def cycle(i: int, n: int = 3) -> list[hkrt.Spot]:
    """Cycle ``i`` of a small market: ``n`` spots, 3 s after the previous cycle."""
    when = DAY_START + dt.timedelta(seconds=3 * i)
    return [
        hkrt.Spot(symbol, when, open=10, high=10 + i, low=10, close=10 + i, volume=100 * (i + 1), amount=1e4 * (i + 1))
        for symbol in SYMBOLS[:n]
    ]


def free_tcp_port_pair() -> tuple[int, int]:
    """A free loopback port p whose p + 1 is free too (the feed and its retransmission port)."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65534:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
        return port, port + 1
    raise RuntimeError("no two consecutive free ports")


@pytest.fixture
def address(tmp_path: Path) -> str:
    return f"ipc://{tmp_path / 'spot.ipc'}"


def publisher(address: str, **kwargs) -> SpotPublisher:
    kwargs.setdefault("heartbeat_interval", 0)
    return SpotPublisher(address, **kwargs)


def sequences(messages: list[bytes]) -> list[int]:
    return [hkrt.wire.decode_header(m).sequence for m in messages]


def subscribe(address: str) -> pynng.Sub0:
    sub = pynng.Sub0(recv_timeout=5000)
    sub.subscribe(b"")
    sub.dial(address, block=False)
    return sub


def drain(sub: pynng.Sub0, quiet: float = 0.3, limit: float = 3.0) -> list[bytes]:
    """What arrives until nothing came for ``quiet`` seconds (or ``limit`` passed: heartbeats
    never stop on their own)."""
    sub.recv_timeout = int(quiet * 1000)
    deadline = time.monotonic() + limit
    out = []
    while time.monotonic() < deadline:
        try:
            out.append(sub.recv())
        except pynng.Timeout:
            break
    return out


# ------------------------------------------------------------------------------ addresses
def test_retransmit_address_sits_next_to_the_feed() -> None:
    assert retransmit_address("ipc:///run/user/1/hkrt/spot.ipc") == "ipc:///run/user/1/hkrt/spot-retransmit.ipc"
    assert retransmit_address("ipc:///tmp/feed") == "ipc:///tmp/feed-retransmit"
    assert retransmit_address("inproc://feed") == "inproc://feed-retransmit"
    assert retransmit_address("tcp://127.0.0.1:9200") == "tcp://127.0.0.1:9201"
    assert retransmit_address("tcp://[::1]:9200") == "tcp://[::1]:9201"
    for bad in ("tcp://127.0.0.1:65535", "tcp://127.0.0.1:0", "tcp://127.0.0.1", "nothing"):
        with pytest.raises(ValueError, match=r"retransmission address|invalid feed address"):
            retransmit_address(bad)


# ------------------------------------------------------------------------------ the ring
def test_ring_is_bounded_by_messages_and_bytes() -> None:
    log = SentLog(max_messages=4, max_bytes=10_000)
    for seq in range(1, 11):
        log.add(seq, bytes([seq]) * 100)
    assert (len(log), log.ring_bytes, log.first_in_ring, log.stats["evicted"]) == (4, 400, 7, 6)
    log = SentLog(max_messages=100, max_bytes=1000)
    for seq in range(1, 11):
        log.add(seq, bytes([seq]) * 300)
    assert (len(log), log.ring_bytes, log.first_in_ring) == (3, 900, 8)
    log.add(11, b"x" * 5000)  # larger than the whole ring: not kept in memory
    assert (len(log), log.ring_bytes) == (0, 0)
    found = log.collect(1, 11, 1 << 20)
    assert found.messages == [] and found.unavailable == [(1, 11)] and found.through == 11
    log.add(11, b"again")  # a sequence that does not increase is not kept
    assert log.stats["not_kept"] == 1 and len(log) == 0


def test_publisher_ring_evicts_the_oldest(address: str) -> None:
    with publisher(address, ring_messages=5) as pub:
        for i in range(12):
            pub.publish(cycle(i))
        ring = pub.stats()["ring"]
        result = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 12, timeout=5)
    assert (ring["messages"], ring["first_sequence"], ring["evicted"]) == (5, 8, 7)
    assert result.error is None and result.unavailable == [(1, 7)]
    assert sequences(result.messages) == result.sequences == [8, 9, 10, 11, 12]


# ------------------------------------------------------------------------------ serving
def test_a_range_is_retransmitted_with_the_exact_bytes_sent(address: str) -> None:
    sub = subscribe(address)
    with publisher(address, max_part_spots=2) as pub:
        assert pub.wait_for_subscribers(1, timeout=10)
        for i in range(5):
            pub.publish(cycle(i))  # 2 parts per cycle: sequences 1..10
        sent = drain(sub)
        result = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 3, 8, timeout=5)
        stats = pub.stats()["retransmit"]
    sub.close()
    assert sequences(sent) == list(range(1, 11))
    assert result.error is None and result.unavailable == [] and result.through == 8
    assert result.messages == sent[2:8]
    header = hkrt.wire.decode_header(result.messages[0])
    assert (header.publisher_id, header.session_epoch) == (pub.publisher_id, pub.session_epoch)
    assert (stats["requests"], stats["messages"], stats["from_ring"], stats["from_journal"]) == (1, 6, 6, 0)


def test_evicted_messages_are_served_from_the_journal(address: str, tmp_path: Path) -> None:
    journal = tmp_path / "feed.jnl"
    with publisher(address, ring_messages=3, record=journal) as pub:
        for i in range(10):
            pub.publish(cycle(i))
        result = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 10, timeout=5)
        stats = pub.stats()
    assert result.error is None and result.unavailable == []
    assert result.messages == [r.payload for r in hkrt.feed.journal.read_journal(journal)]
    assert sequences(result.messages) == list(range(1, 11))
    assert (stats["retransmit"]["from_journal"], stats["retransmit"]["from_ring"]) == (7, 3)
    assert stats["ring"]["journal_indexed"] == 10


def test_a_damaged_journal_record_is_reported_unavailable_never_served(address: str, tmp_path: Path) -> None:
    journal = tmp_path / "feed.jnl"
    with publisher(address, ring_messages=2, record=journal) as pub:
        for i in range(6):
            pub.publish(cycle(i))
        records = list(hkrt.feed.journal.read_journal(journal))
        with open(journal, "r+b") as f:  # flip one byte inside the payload of sequence 3
            f.seek(records[3].offset - 10)
            original = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([original[0] ^ 0xFF]))
        result = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 6, timeout=5)
        stats = pub.stats()
    assert result.error is None and result.unavailable == [(3, 3)]
    assert sequences(result.messages) == [1, 2, 4, 5, 6]
    assert stats["ring"]["journal_read_errors"] == 1 and stats["retransmit"]["unavailable_messages"] == 1


def test_partial_replies_are_assembled_in_order(address: str) -> None:
    with publisher(address, max_reply_bytes=1500) as pub:  # the server caps each reply
        for i in range(20):
            pub.publish(cycle(i))
        size = len(fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 1).messages[0])
        by_server = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 20, timeout=5)
        by_client = fetch_missing(
            retransmit_address(address), pub.publisher_id, pub.session_epoch, 2, 19, timeout=5, max_reply_bytes=1024
        )
        capped = fetch_missing(
            retransmit_address(address),
            pub.publisher_id,
            pub.session_epoch,
            1,
            20,
            timeout=5,
            max_reply_bytes=1024,
            max_total_bytes=2000,
        )
    assert 300 < size < 700  # so a reply holds a few messages, not all
    assert by_server.error is None and sequences(by_server.messages) == list(range(1, 21))
    assert by_server.requests >= 20 * size // 1500
    assert by_client.error is None and sequences(by_client.messages) == list(range(2, 20))
    assert by_client.requests >= 18 * size // 1024
    assert capped.error.startswith("max_total_bytes") and 0 < len(capped.messages) < 20
    assert capped.through == capped.sequences[-1] and sequences(capped.messages) == list(range(1, capped.through + 1))


def test_ranges_never_sent_are_unavailable(address: str) -> None:
    with publisher(address) as pub:
        for i in range(4):
            pub.publish(cycle(i))
        pub.sequence += 3  # as if 5..7 were lost before they were ever kept
        pub.publish(cycle(4))
        result = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 2, 12, timeout=5)
    assert result.error is None
    assert sequences(result.messages) == [2, 3, 4, 8]
    assert result.unavailable == [(5, 7), (9, 12)] and result.through == 12


def test_another_session_is_refused(address: str) -> None:
    with publisher(address, publisher_id=42) as pub:
        pub.publish(cycle(0))
        old = fetch_missing(retransmit_address(address), 42, pub.session_epoch - 1, 1, 1, timeout=5)
        other = fetch_missing(retransmit_address(address), 43, pub.session_epoch, 1, 1, timeout=5)
        errors = pub.stats()["retransmit"]["errors"]
    for result in (old, other):
        assert result.messages == [] and result.unavailable == [(1, 1)]
        assert result.error.startswith("wrong_session") and f"session {pub.session_epoch}" in result.error
    assert errors == {"wrong_session": 2}


def test_a_restarted_publisher_has_a_larger_epoch_and_does_not_serve_the_old_session(address: str) -> None:
    with publisher(address, publisher_id=7) as first:
        first.publish(cycle(0))
        old_epoch = first.session_epoch
    with publisher(address, publisher_id=7) as second:
        second.publish(cycle(1))
        assert second.session_epoch > old_epoch
        assert abs(second.session_epoch - time.time_ns() // 1000) < 60e6  # UTC epoch microseconds
        result = fetch_missing(retransmit_address(address), 7, old_epoch, 1, 1, timeout=5)
        assert result.error.startswith("wrong_session") and result.unavailable == [(1, 1)]
        mine = fetch_missing(retransmit_address(address), 7, second.session_epoch, 1, 1, timeout=5)
    assert hkrt.wire.decode_header(mine.messages[0]).session_epoch == second.session_epoch


def request(req: pynng.Req0, data: bytes):
    req.send(data)
    return decode_reply(req.recv())


def test_hostile_requests_get_an_error_and_the_server_keeps_serving(address: str) -> None:
    with publisher(address) as pub:
        for i in range(3):
            pub.publish(cycle(i))
        good = encode_request(Request(1, pub.publisher_id, pub.session_epoch, 1, 3, 1 << 20))
        hostile = [
            (b"", Status.BAD_REQUEST),
            (b"HKRQ", Status.BAD_REQUEST),
            (os.urandom(52), Status.BAD_REQUEST),
            (good[:-1], Status.BAD_REQUEST),
            (good + b"\x00", Status.BAD_REQUEST),
            (REQUEST_MAGIC + bytes([PROTOCOL_VERSION + 8]) + good[5:], Status.UNSUPPORTED_VERSION),
            (encode_request(Request(2, pub.publisher_id, pub.session_epoch, 0, 3, 0)), Status.BAD_REQUEST),
            (encode_request(Request(3, pub.publisher_id, pub.session_epoch, 3, 2, 0)), Status.BAD_REQUEST),
            (hkrt.feed.feed_auth.seal(b"k" * 32, good), Status.BAD_REQUEST),  # sealed, but this server has no key
            (encode_request(Request(4, pub.publisher_id, pub.session_epoch, 1, 1, 10)), Status.TOO_LARGE),
        ]
        with pynng.Req0(recv_timeout=5000, send_timeout=5000) as req:
            req.dial(retransmit_address(address))
            for data, status in hostile:
                reply = request(req, data)
                assert reply.status == status, data[:16]
                assert reply.error and reply.messages == []
            huge = request(req, encode_request(Request(5, pub.publisher_id, pub.session_epoch, 1, 2**64 - 1, 0)))
            answer = request(req, good)
        after = fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 3, timeout=5)
        errors = pub.stats()["retransmit"]["errors"]
    # a range beyond any bound is served in bounded parts, not refused
    assert huge.status == Status.PARTIAL and huge.through == MAX_REQUEST_RANGE
    assert huge.unavailable == [(4, MAX_REQUEST_RANGE)] and [s for s, _ in huge.messages] == [1, 2, 3]
    assert answer.status == Status.OK and [s for s, _ in answer.messages] == [1, 2, 3]
    assert after.error is None and sequences(after.messages) == [1, 2, 3]
    assert sum(errors.values()) == len(hostile)
    assert errors["bad_request"] == 7 and errors["unsupported_version"] == 1 and errors["too_large"] == 1


def test_nobody_serving_is_a_timeout_within_the_deadline(tmp_path: Path) -> None:
    started = time.monotonic()
    result = fetch_missing(f"ipc://{tmp_path / 'nobody.ipc'}", 1, 1, 1, 10, timeout=0.3)
    assert time.monotonic() - started < 2
    assert result.error.startswith("timeout") and result.messages == [] and result.through == 0
    assert fetch_missing(f"ipc://{tmp_path / 'x.ipc'}", 1, 1, 5, 4).error.startswith("bad_range")


def test_retransmission_over_tcp_on_loopback() -> None:
    port, next_port = free_tcp_port_pair()
    with publisher(f"tcp://127.0.0.1:{port}", retransmit=True) as pub:
        assert pub.retransmit_addresses == [f"tcp://127.0.0.1:{next_port}"]
        for i in range(4):
            pub.publish(cycle(i))
        result = fetch_missing(f"tcp://127.0.0.1:{next_port}", pub.publisher_id, pub.session_epoch, 1, 4, timeout=5)
    assert result.error is None and sequences(result.messages) == [1, 2, 3, 4]


def test_retransmission_can_be_disabled_or_placed(address: str, tmp_path: Path) -> None:
    with publisher(address, retransmit=False) as pub:
        pub.publish(cycle(0))
        assert pub.retransmit_addresses == [] and "retransmit" not in pub.stats()
        assert fetch_missing(retransmit_address(address), pub.publisher_id, pub.session_epoch, 1, 1, timeout=0.2).error
    elsewhere = f"ipc://{tmp_path / 'replay.ipc'}"
    with publisher(address, retransmit=elsewhere) as pub:
        pub.publish(cycle(0))
        result = fetch_missing(elsewhere, pub.publisher_id, pub.session_epoch, 1, 1, timeout=5)
    assert sequences(result.messages) == [1]


# ------------------------------------------------------------------------------ heartbeats
def test_an_idle_publisher_sends_heartbeats_with_its_last_sequence(address: str) -> None:
    sub = subscribe(address)
    with publisher(address, heartbeat_interval=0.1) as pub:
        assert pub.wait_for_subscribers(1, timeout=10)
        pub.publish(cycle(0))
        pub.publish(cycle(1))
        time.sleep(0.45)
        received = drain(sub, quiet=0.05, limit=0.05)
        heartbeats_sent = pub.stats()["heartbeats"]
    sub.close()
    headers = [hkrt.wire.decode_header(m) for m in received]
    data = [h for h in headers if not h.heartbeat]
    assert [h.sequence for h in data] == [1, 2]
    # heartbeats may come while waiting for the subscriber (sequence 0: nothing sent yet)
    beats = headers[headers.index(data[-1]) + 1 :]
    assert all(h.sequence == 0 for h in headers[: headers.index(data[0])])
    assert all(h.heartbeat for h in beats) and 2 <= len(beats) <= 8 and heartbeats_sent >= len(beats)
    assert all(h.sequence == 2 and h.session_epoch == pub.session_epoch for h in beats)
    assert all(h.publisher_id == pub.publisher_id and h.market_time == cycle(1)[0].datetime for h in beats)
    assert all(hkrt.wire.decode_spots(m) == [] for m, h in zip(received, headers, strict=True) if h.heartbeat)


def test_heartbeats_can_be_disabled(address: str) -> None:
    sub = subscribe(address)
    with publisher(address, heartbeat_interval=0) as pub:
        assert pub.wait_for_subscribers(1, timeout=10)
        pub.publish(cycle(0))
        time.sleep(0.3)
        received = drain(sub)
        assert pub.stats()["heartbeats"] == 0
    sub.close()
    assert [hkrt.wire.decode_header(m).heartbeat for m in received] == [False]
    with pytest.raises(ValueError, match="heartbeat_interval"):
        SpotPublisher(address, heartbeat_interval=-1)


def test_heartbeats_never_run_ahead_of_the_data_they_announce(address: str) -> None:
    """Publishing from two threads while heartbeats fire every few ms: on the wire, data
    sequences are 1..N in order and a heartbeat never names a sequence not yet sent."""
    sub = pynng.Sub0(recv_timeout=5000, recv_buffer_size=8192)
    sub.subscribe(b"")
    sub.dial(address, block=False)
    with publisher(address, heartbeat_interval=0.002, queue_messages=8192) as pub:
        assert pub.wait_for_subscribers(1, timeout=10)

        def run(offset: int) -> None:
            for i in range(100):
                pub.publish(cycle(offset + i, n=1))
                if i % 10 == 0:
                    time.sleep(0.005)  # idle moments: heartbeats go out

        threads = [threading.Thread(target=run, args=(k * 1000,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        received = drain(sub, quiet=0.2, limit=0.5)
    sub.close()
    last_data = 0
    beats = 0
    for message in received:
        h = hkrt.wire.decode_header(message)
        if h.heartbeat:
            beats += 1
            assert h.sequence == last_data
        else:
            assert h.sequence == last_data + 1
            last_data = h.sequence
    assert last_data == 200 and beats > 0
