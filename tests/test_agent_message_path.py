"""The agent's message path: each message decoded once, in C++, and its columns shared with every
consumer (the engine, ``on_columns``, ``on_spot``); publisher cycles tracked by the C++ core."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time

import numpy as np
import pytest

import hkrt
from hkrt import _hkrt
from hkrt.feed.transport import SpotPublisher

DAY = dt.date(2026, 11, 20)


def columns(minute: int, names: bool = True) -> dict[str, object]:
    """Three symbols at 10:0m:00 with a name and a two-level book."""
    base = np.array([10.0, 20.0, 30.0]) + minute * 0.01
    out: dict[str, object] = {
        "symbol": np.array(["SH600000", "SZ000001", "BJ830799"]),
        "datetime": np.full(3, np.datetime64(dt.datetime(2026, 11, 20, 10, minute, 0), "ms")),
        "open": base,
        "high": base + 0.5,
        "low": base - 0.5,
        "close": base,
        "volume": np.array([100.0, 200.0, 300.0]) * (minute + 1),
        "amount": np.array([1000.0, 4000.0, 9000.0]) * (minute + 1),
        "yesterday_close": base - 0.1,
        "bid": np.stack([base - 0.01, base - 0.02], axis=1),
        "bid_volume": np.full((3, 2), 500.0),
        "ask": np.stack([base + 0.01, base + 0.02], axis=1),
        "ask_volume": np.full((3, 2), 700.0),
    }
    if names:
        out["name"] = np.array(["浦发银行", "平安银行", "北交所"], dtype=object)
    return out


def message(sequence: int, minute: int) -> bytes:
    return hkrt.wire.encode_spots(
        columns(minute), publisher_id=9, session_epoch=1, sequence=sequence, cycle_id=sequence, simulated_time=True
    )


def test_engine_shares_its_decoded_columns_and_reuses_them_only_when_nobody_holds_them() -> None:
    engine = hkrt.SpotAgent()._engine
    first = engine.ingest_message(message(1, 0), columns=True)
    held = first["columns"]
    want = hkrt.wire.decode_columns(message(1, 0))
    assert set(held) == set(want)
    for name in want:
        np.testing.assert_array_equal(held[name], want[name])
    assert not held["close"].flags.writeable and not held["close"].flags.owndata  # a read-only view, no copy
    address = held["close"].__array_interface__["data"][0]
    second = engine.ingest_message(message(2, 1), columns=True)
    assert second["columns"]["close"].__array_interface__["data"][0] != address  # held: not written over
    np.testing.assert_array_equal(held["volume"], [100.0, 200.0, 300.0])  # still message 1's
    del first, held
    reused_from = second["columns"]["close"].__array_interface__["data"][0]
    del second
    third = engine.ingest_message(message(3, 2), columns=True)
    assert third["columns"]["close"].__array_interface__["data"][0] == reused_from  # nobody held it: reused
    np.testing.assert_array_equal(third["columns"]["volume"], [300.0, 600.0, 900.0])
    assert "columns" not in engine.ingest_message(message(4, 3))  # not asked for: not built
    assert "columns" not in engine.ingest_message(message(4, 3), columns=True)  # a duplicate: not processed
    stats = engine.message_stats()  # one publisher session, the same three symbols in order: parsed once
    assert (stats["symbol_cache_misses"], stats["symbol_cache_hits"]) == (3, 12)


def test_spot_objects_come_from_the_shared_columns_with_every_field() -> None:
    engine = hkrt.SpotAgent()._engine
    msg = message(1, 0)
    result = engine.ingest_message(msg, spots=True)
    assert result["spot_objects"] == hkrt.wire.decode_spots(msg)
    spot = result["spot_objects"][1]
    assert (spot.symbol, spot.name, spot.close) == ("SZ000001", "平安银行", 20.0)
    assert spot.bid == [19.99, 19.98, 0.0, 0.0, 0.0] and spot.ask_volume == [700.0, 700.0, 0.0, 0.0, 0.0]


def test_engine_reports_the_cycles_a_message_ended() -> None:
    engine = hkrt.SpotAgent()._engine
    parts = [
        hkrt.wire.encode_spots(columns(0), publisher_id=3, sequence=i + 1, cycle_id=7, part_index=i, part_count=2)
        for i in range(2)
    ]
    assert engine.ingest_message(parts[0])["cycles"] == []
    (cycle,) = engine.ingest_message(parts[1])["cycles"]
    publisher, cycle_id, expected, received, spots, accepted, complete, joined_mid, send_us, market_ms = cycle
    assert (publisher, cycle_id, expected, received, spots, accepted, complete, joined_mid) == (
        3, 7, 2, 2, 6, 3, True, False,
    )  # fmt: skip
    assert send_us > 0 and market_ms == 0  # the header gave no market time for a split cycle
    stats = engine.message_stats()
    assert (stats["cycles"], stats["incomplete_cycles"], stats["abandoned_cycles"]) == (1, 0, 0)
    assert stats["completed_dropped"] == 0


def test_running_agent_hands_each_consumer_the_message_decoded_once() -> None:
    agent = hkrt.SpotAgent(bar_close_delay=0)
    got_columns: list[dict[str, np.ndarray]] = []
    got_spots: list[hkrt.Spot] = []
    cycles: list[hkrt.CycleInfo] = []
    done = threading.Event()
    agent.on_columns(got_columns.append)
    agent.on_spot(got_spots.append)

    @agent.on_cycle
    def cycle(info: hkrt.CycleInfo) -> None:
        cycles.append(info)
        if len(cycles) == 3:
            done.set()

    address = f"ipc://{tempfile.mkdtemp()}/msgpath.ipc"
    with SpotPublisher(address, simulated_time=True) as pub:
        agent.start(address)
        try:
            deadline = time.monotonic() + 10
            while not pub._socket.pipes and time.monotonic() < deadline:
                time.sleep(0.01)
            time.sleep(0.1)
            for minute in range(3):
                pub.publish(columns(minute))
            assert done.wait(10)
            agent.wait_idle()
        finally:
            agent.stop()
    assert len(got_columns) == 3 and len(got_spots) == 9
    np.testing.assert_array_equal(got_columns[0]["volume"], [100.0, 200.0, 300.0])  # kept valid after later ones
    np.testing.assert_array_equal(got_columns[2]["symbol"], [b"SH600000", b"SZ000001", b"BJ830799"])
    assert [s.name for s in got_spots[:3]] == ["浦发银行", "平安银行", "北交所"]
    assert got_spots[8].close == pytest.approx(30.02) and got_spots[8].bid_volume[:2] == [500.0, 500.0]
    assert [(c.spots, c.accepted, c.complete, c.parts_received) for c in cycles] == [(3, 3, True, 1)] * 3
    assert all(c.latency_ms >= 0 and c.market_time is not None for c in cycles)
    transport = agent.stats()["transport"]
    assert (transport["cycles"], transport["incomplete_cycles"], transport["abandoned_cycles"]) == (3, 0, 0)


def test_decoded_columns_need_no_python_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """The agent never decodes a message again in Python for its consumers."""

    def forbidden(*_: object) -> None:
        raise AssertionError("decoded twice")

    monkeypatch.setattr(_hkrt, "_wire_decode_spots", forbidden)
    monkeypatch.setattr(_hkrt, "_wire_decode_columns", forbidden)
    test_running_agent_hands_each_consumer_the_message_decoded_once()


def test_decode_columns_alone_gives_its_caller_writeable_columns() -> None:
    cols = hkrt.wire.decode_columns(message(1, 0))  # nobody else sees this buffer: the caller may change it
    cols["close"] *= 2
    np.testing.assert_array_equal(cols["close"], [20.0, 40.0, 60.0])
