"""Feed authentication: sealing, keys, the loopback rule, and a sealed publisher over real
TCP sockets (an unauthenticated or wrongly keyed receiver gets nothing it could trust)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pynng
import pytest

import hkrt
from hkrt.feed import feed_auth
from hkrt.feed.feed_auth import (
    FeedKeyError,
    is_loopback,
    is_sealed,
    load_key,
    read_key_file,
    require_auth,
    seal,
    unseal,
)
from hkrt.feed.retransmit import Request, Status, decode_reply, encode_request, fetch_missing, retransmit_address
from hkrt.feed.transport import SpotPublisher
from test_retransmit import cycle, free_tcp_port_pair

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
POSIX = os.name == "posix"


@pytest.fixture(autouse=True)
def no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(feed_auth.ENV_KEY, raising=False)
    monkeypatch.delenv(feed_auth.ENV_KEY_FILE, raising=False)


# ------------------------------------------------------------------------------ seal / unseal
def test_seal_unseal_round_trip() -> None:
    payload = hkrt.wire.encode_spots([], publisher_id=1, sequence=1)
    sealed = seal(KEY, payload)
    assert sealed[:4] == b"HKA1" and len(sealed) == len(payload) + feed_auth.OVERHEAD
    assert sealed[feed_auth.OVERHEAD :] == payload
    assert is_sealed(sealed) and not is_sealed(payload)
    assert unseal(KEY, sealed) == payload
    assert unseal(KEY, seal(KEY, b"")) == b""


def test_every_flipped_bit_and_a_wrong_key_are_rejected() -> None:
    sealed = seal(KEY, b"spot batch bytes")
    for byte in range(len(sealed)):
        for bit in (0, 7):
            damaged = bytearray(sealed)
            damaged[byte] ^= 1 << bit
            assert unseal(KEY, bytes(damaged)) is None, (byte, bit)
    assert unseal(OTHER_KEY, sealed) is None
    assert unseal(KEY, sealed[:-1]) is None
    assert unseal(KEY, sealed[: feed_auth.OVERHEAD - 1]) is None
    assert unseal(KEY, b"spot batch bytes") is None  # not sealed at all


# ------------------------------------------------------------------------------ keys
def write_key_file(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


def test_keys_from_arguments_environment_and_files(tmp_path: Path) -> None:
    assert load_key(environ={}) is None
    assert load_key(KEY, environ={}) == KEY
    assert load_key(KEY.hex(), environ={}) == KEY
    assert load_key(environ={feed_auth.ENV_KEY: KEY.hex() + "\n"}) == KEY
    key_file = write_key_file(tmp_path / "feed.key", OTHER_KEY.hex() + "\n")
    assert load_key(environ={feed_auth.ENV_KEY_FILE: str(key_file)}) == OTHER_KEY
    assert load_key(key_file=key_file, environ={feed_auth.ENV_KEY: KEY.hex()}) == OTHER_KEY  # explicit first
    assert load_key(environ={feed_auth.ENV_KEY: KEY.hex(), feed_auth.ENV_KEY_FILE: str(key_file)}) == KEY


@pytest.mark.parametrize(
    ("value", "message"),
    [("abc", "must be hex"), ("00" * 8, "at least 16"), (b"short", "at least 16"), (12, "bytes or a hex str")],
)
def test_bad_keys_are_one_clear_line(value: object, message: str) -> None:
    with pytest.raises(FeedKeyError, match=message) as err:
        load_key(value, environ={})  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


@pytest.mark.skipif(not POSIX, reason="file modes are POSIX")
@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644, 0o660])
def test_a_key_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    key_file = write_key_file(tmp_path / "feed.key", KEY.hex(), mode)
    with pytest.raises(FeedKeyError, match=r"open to other users.*chmod 600") as err:
        read_key_file(key_file)
    assert "\n" not in str(err.value)
    with pytest.raises(FeedKeyError, match="open to other users"):
        SpotPublisher(f"ipc://{tmp_path / 'feed.ipc'}", key_file=key_file)


def test_key_file_problems_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FeedKeyError, match="cannot read feed key file"):
        read_key_file(tmp_path / "absent.key")
    with pytest.raises(FeedKeyError, match="must be hex"):
        read_key_file(write_key_file(tmp_path / "text.key", "not a key at all"))
    with pytest.raises(FeedKeyError, match="not a regular file"):
        read_key_file(tmp_path)


# ------------------------------------------------------------------------------ the loopback rule
@pytest.mark.parametrize(
    "address",
    [
        "ipc:///tmp/hkrt/spot.ipc",
        "inproc://feed",
        "tcp://127.0.0.1:9200",
        "tcp://127.1.2.3:9200",
        "tcp://localhost:9200",
        "tcp://LOCALHOST:9200",
        "tcp://[::1]:9200",
        "tcp4://127.0.0.1:9200",
    ],
)
def test_loopback_addresses(address: str) -> None:
    assert is_loopback(address)
    require_auth(address, None, "publisher")  # zero-config


@pytest.mark.parametrize(
    "address",
    [
        "tcp://0.0.0.0:9200",
        "tcp://:9200",
        "tcp://*:9200",
        "tcp://192.168.1.20:9200",
        "tcp://10.0.0.5:9200",
        "tcp://[::]:9200",
        "tcp://[fe80::1]:9200",
        "tcp://quotes.example.com:9200",
        "tcp://localhost.example.com:9200",
    ],
)
def test_addresses_beyond_loopback_need_a_key(address: str) -> None:
    assert not is_loopback(address)
    with pytest.raises(ValueError, match="needs a feed key") as err:
        require_auth(address, None, "subscriber")
    assert "\n" not in str(err.value) and address in str(err.value) and "subscriber" in str(err.value)
    require_auth(address, KEY, "subscriber")


# ------------------------------------------------------------------------------ a sealed publisher
def tcp_port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_publishing_on_every_interface_without_a_key_is_refused(tmp_path: Path) -> None:
    port, _ = free_tcp_port_pair()
    with pytest.raises(ValueError, match=r"publisher on tcp://0\.0\.0\.0:\d+ needs a feed key") as err:
        SpotPublisher(f"ipc://{tmp_path / 'feed.ipc'}", tcp=f"0.0.0.0:{port}")
    assert "\n" not in str(err.value)
    assert tcp_port_is_free(port) and tcp_port_is_free(port + 1)  # refused before anything listened
    assert not (tmp_path / "feed.ipc").exists()


def receive_all(sub: pynng.Sub0, quiet: float = 0.2, limit: float = 1.0) -> list[bytes]:
    """What arrives until a quiet moment or ``limit`` seconds (heartbeats go on and on)."""
    sub.recv_timeout = int(quiet * 1000)
    deadline = time.monotonic() + limit
    out = []
    while time.monotonic() < deadline:
        try:
            out.append(sub.recv())
        except pynng.Timeout:
            break
    return out


def test_a_keyed_publisher_on_every_interface_sends_sealed_bytes_only(tmp_path: Path) -> None:
    port, _ = free_tcp_port_pair()
    sub = pynng.Sub0(recv_timeout=5000)
    sub.subscribe(b"")
    sub.dial(f"tcp://127.0.0.1:{port}", block=False)
    with SpotPublisher(
        f"ipc://{tmp_path / 'feed.ipc'}", tcp=f"0.0.0.0:{port}", auth_key=KEY, heartbeat_interval=0.1
    ) as pub:
        assert pub.authenticated and pub.retransmit_addresses[1] == f"tcp://0.0.0.0:{port + 1}"
        assert pub.wait_for_subscribers(1, timeout=10)
        for i in range(3):
            pub.publish(cycle(i))
        time.sleep(0.35)  # idle: heartbeats follow
        received = receive_all(sub)
        # retransmission over TCP needs the key too
        address = f"tcp://127.0.0.1:{port + 1}"
        good = fetch_missing(address, pub.publisher_id, pub.session_epoch, 1, 3, key=KEY, timeout=5)
        keyless = fetch_missing(address, pub.publisher_id, pub.session_epoch, 1, 3, timeout=5)
        wrong = fetch_missing(address, pub.publisher_id, pub.session_epoch, 1, 3, key=OTHER_KEY, timeout=5)
        retransmit_stats = pub.stats()["retransmit"]
    sub.close()
    assert len(received) >= 4
    headers = []
    for message in received:
        assert message[:4] == b"HKA1"
        assert unseal(OTHER_KEY, message) is None
        with pytest.raises(hkrt.wire.WireError):
            hkrt.wire.decode_header(message)  # the raw bytes are not a wire message a keyless agent could take
        headers.append(hkrt.wire.decode_header(unseal(KEY, message)))
    assert [h.sequence for h in headers if not h.heartbeat] == [1, 2, 3]
    assert any(h.heartbeat and h.sequence == 3 for h in headers)
    assert good.error is None and [hkrt.wire.decode_header(m).sequence for m in good.messages] == [1, 2, 3]
    assert good.messages == [unseal(KEY, m) for m in received if not hkrt.wire.decode_header(unseal(KEY, m)).heartbeat]
    assert keyless.messages == [] and "unauthenticated" in (keyless.error or "")
    assert wrong.messages == [] and "unauthenticated" in (wrong.error or "")
    assert retransmit_stats["errors"]["unauthenticated"] == 2


def test_a_keyed_retransmission_server_refuses_unsealed_requests_and_keeps_serving(tmp_path: Path) -> None:
    with SpotPublisher(f"ipc://{tmp_path / 'feed.ipc'}", auth_key=KEY, heartbeat_interval=0) as pub:
        pub.publish(cycle(0))
        address = retransmit_address(pub.addresses[0])
        request = encode_request(Request(77, pub.publisher_id, pub.session_epoch, 1, 1, 1 << 20))
        with pynng.Req0(recv_timeout=5000, send_timeout=5000) as req:
            req.dial(address)
            req.send(request)  # a forged, unsealed request
            reply = req.recv()
            assert unseal(KEY, reply) is not None  # the refusal is sealed too
            assert decode_reply(unseal(KEY, reply)).status == Status.UNAUTHENTICATED
            req.send(seal(OTHER_KEY, request))
            assert decode_reply(unseal(KEY, req.recv())).status == Status.UNAUTHENTICATED
            req.send(seal(KEY, request))
            answer = decode_reply(unseal(KEY, req.recv()))
        assert answer.status == Status.OK and [s for s, _ in answer.messages] == [1]
        assert pub.stats()["retransmit"]["errors"] == {"unauthenticated": 2}


def test_the_key_from_the_environment_seals_an_ipc_feed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(feed_auth.ENV_KEY, KEY.hex())
    sub = pynng.Sub0(recv_timeout=5000)
    sub.subscribe(b"")
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    sub.dial(address, block=False)
    with SpotPublisher(address, heartbeat_interval=0) as pub:
        assert pub.authenticated
        assert pub.wait_for_subscribers(1, timeout=10)
        pub.publish(cycle(0))
        message = sub.recv()
    sub.close()
    assert hkrt.wire.decode_header(unseal(KEY, message)).sequence == 1
