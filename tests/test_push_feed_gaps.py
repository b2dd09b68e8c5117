"""A push feed (QMT's whole-quote subscription) sends a symbol only when it changed: a quiet
symbol is then not a gap in its data, and its next trade lands in the bar it happened in.
The same silence on a snapshot feed (every symbol every cycle) means its spots were lost."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import pynng
import pytest

import hkrt
from hkrt.feed.server import SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.feed.wire import decode_header, encode_spots

DAY = dt.date(2026, 11, 20)


def at(hms: str) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time.fromisoformat(hms))


def spot(symbol: str, hms: str, close: float, volume: float) -> hkrt.Spot:
    return hkrt.Spot(symbol, at(hms), open=10.0, high=max(10.0, close), low=min(10.0, close), close=close,
                     volume=volume, amount=volume * close)  # fmt: skip


def push_day(changes_only: bool) -> hkrt.SpotAgent:
    """SH600000 trades every minute 09:30-09:40; SZ000001 trades at 09:30:10 and again at 09:40:05."""
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    messages = [[spot("SH600000", "09:30:10", 10.0, 100), spot("SZ000001", "09:30:10", 20.0, 1000)]]
    messages += [[spot("SH600000", f"09:{m}:10", 10.0, 100.0 * m)] for m in range(31, 40)]
    messages += [[spot("SZ000001", "09:40:05", 20.1, 1500)]]
    for seq, batch in enumerate(messages, 1):
        agent.ingest(encode_spots(batch, publisher_id=7, sequence=seq, changes_only=changes_only))
    return agent


def test_a_quiet_symbol_on_a_push_feed_is_no_gap() -> None:
    agent = push_day(changes_only=True)
    gap = agent.gap_volume("SZ000001")
    assert gap is not None and gap.volume == 0.0 and gap.gaps == 0
    bars = agent.kdata("SZ000001", "MIN")
    assert bars.loc[at("09:41"), "volume"] == 500  # the trade of 09:40:05, in its own bar
    assert bars["volume"].sum() == 1500 - 0  # no carry-in: the first spot was in the first minute
    assert agent.stats()["gap_volume"] == 0


def test_the_same_silence_on_a_snapshot_feed_is_gap_volume() -> None:
    agent = push_day(changes_only=False)
    gap = agent.gap_volume("SZ000001")
    assert gap is not None and (gap.volume, gap.gaps) == (500.0, 1)
    assert gap.amount == pytest.approx(1500 * 20.1 - 1000 * 20.0)  # cumulative amounts differenced
    bars = agent.kdata("SZ000001", "MIN")
    assert bars.loc[at("09:41"), "volume"] == 0 and not bars.loc[at("09:41"), "filled"]
    assert bars["volume"].sum() == agent.kdata("SZ000001", "DAY")["volume"].iloc[-1] - gap.volume
    assert agent.stats()["gap_volume"] == 1


def test_a_push_feed_silent_as_a_whole_is_a_gap() -> None:
    agent = hkrt.SpotAgent(["MIN"])
    batches = [[spot("SH600000", "09:30:10", 10.0, 100), spot("SZ000001", "09:30:10", 20.0, 1000)],
               [spot("SH600000", "09:35:10", 10.0, 900), spot("SZ000001", "09:35:20", 20.0, 1200)]]  # fmt: skip
    for seq, batch in enumerate(batches, 1):
        agent.ingest(encode_spots(batch, publisher_id=7, sequence=seq, changes_only=True))
    assert agent.gap_volume("SZ000001").volume == 200  # nothing at all came 09:31-09:35
    assert agent.gap_volume("SH600000").volume == 800


class _FakePush:
    """Stands in for QmtPushClient: pushes two batches from its own thread, as xtquant calls back."""

    def __init__(self, on_spots: Any) -> None:
        self._on_spots = on_spots
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self, codes: list[str]) -> None:
        self._thread.start()

    def _run(self) -> None:
        time.sleep(0.3)
        self._on_spots([spot("SH600000", "09:30:10", 10.0, 100), spot("SZ000001", "09:30:10", 20.0, 1000)])
        self._on_spots([spot("SZ000001", "09:40:05", 20.1, 1500)])

    def stop(self) -> None:
        self._thread.join(5)


def test_the_spot_server_marks_push_messages_changes_only(tmp_path) -> None:
    address = f"ipc://{tmp_path / 'push.ipc'}"
    publisher = SpotPublisher(address)
    server = SpotServer(publisher)
    with pynng.Sub0(dial=address, recv_timeout=5000) as sub:
        sub.subscribe(b"")
        assert publisher.wait_for_subscribers(1, timeout=5)
        runner = threading.Thread(target=server.run_push, args=(_FakePush, ["SH600000", "SZ000001"]))
        runner.start()
        try:
            headers = []
            while len(headers) < 2:
                header = decode_header(sub.recv())
                if not header.heartbeat:
                    headers.append(header)
        finally:
            server.stop()
            runner.join(10)
            publisher.close()
    assert all(h.changes_only for h in headers)


def test_gap_volume_is_reported_loudly_once_per_burst(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="hkrt.agent"):
        push_day(changes_only=False)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "in DAY only" in r.message]
    assert len(warnings) == 1 and warnings[0].gap_spans == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hkrt.agent"):
        push_day(changes_only=True)
    assert not [r for r in caplog.records if "in DAY only" in r.message]


def test_after_hours_volume_is_said_at_info(caplog: pytest.LogCaptureFixture) -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    with caplog.at_level(logging.INFO, logger="hkrt.agent"):
        agent.ingest([spot("SH688001", "14:59:50", 10.0, 1000), spot("SH688001", "15:20:00", 10.0, 1500)])
    assert agent.after_hours("SH688001").volume == 500
    assert [r for r in caplog.records if r.levelno == logging.INFO and "after-hours" in r.message]
