"""The completed-bar handoff (engine.take_completed): records in blocks the engine reuses once no
array holds them, so a minute boundary neither allocates nor faults in fresh pages, and a held
array is never written over."""

from __future__ import annotations

import datetime as dt
import logging

import numpy as np
import pytest

import hkrt


def minute_message(sequence: int, minute: int) -> bytes:
    """Three symbols at 10:0m:30 (each message after the first completes the minute before)."""
    base = np.array([10.0, 20.0, 30.0]) + minute
    columns = {
        "symbol": np.array(["SH600000", "SZ000001", "BJ830799"]),
        "datetime": np.full(3, np.datetime64(dt.datetime(2026, 11, 20, 10, minute, 30), "ms")),
        "open": base,
        "high": base,
        "low": base,
        "close": base,
        "volume": np.array([100.0, 200.0, 300.0]) * (minute + 1),
        "amount": np.array([1000.0, 4000.0, 9000.0]) * (minute + 1),
    }
    return hkrt.wire.encode_spots(
        columns, publisher_id=3, session_epoch=1, sequence=sequence, cycle_id=sequence, simulated_time=True
    )


def closes(records: np.ndarray) -> list[float]:
    return sorted(records[records["ktype"] == 0]["close"].tolist())


def test_taken_bars_stay_as_they_were_while_held_and_their_block_is_reused_after() -> None:
    engine = hkrt.SpotAgent(ktypes=["MIN", "MIN5"])._engine
    engine.collect_completed = True
    engine.ingest_message(minute_message(1, 0))
    assert len(engine.take_completed()) == 0
    engine.ingest_message(minute_message(2, 1))
    first = engine.take_completed()
    assert closes(first) == [10.0, 20.0, 30.0]  # 10:01, the first minute's bars
    assert not first.flags.owndata  # a view of the engine's block: no copy made for Python
    address = first.__array_interface__["data"][0]
    engine.ingest_message(minute_message(3, 2))
    second = engine.take_completed()
    assert second.__array_interface__["data"][0] != address  # the first is held: not written over
    assert closes(first) == [10.0, 20.0, 30.0]
    assert closes(second) == [11.0, 21.0, 31.0]
    del first
    engine.ingest_message(minute_message(4, 3))
    third = engine.take_completed()
    assert third.__array_interface__["data"][0] == address  # nobody held it any more: reused
    assert closes(third) == [12.0, 22.0, 32.0]
    assert closes(second) == [11.0, 21.0, 31.0]
    view = third[1:]  # a view keeps the block too
    del third
    engine.ingest_message(minute_message(5, 4))
    fourth = engine.take_completed()
    assert closes(view) == [22.0, 32.0]
    assert closes(fourth) == [13.0, 23.0, 33.0]
    assert set(fourth["symbol"].tolist()) == {b"SH600000", b"SZ000001", b"BJ830799"}


def test_ingest_message_with_advance_delay_moves_the_clock_as_a_separate_advance_to_would() -> None:
    from hkrt.china_time import utc_ms_to_local_ms

    fused = hkrt.SpotAgent(ktypes=["MIN", "MIN5"])._engine
    separate = hkrt.SpotAgent(ktypes=["MIN", "MIN5"])._engine
    for engine in (fused, separate):
        engine.collect_completed = True
    advanced = 0
    for minute in range(7):
        message = minute_message(minute + 1, minute)
        result = fused.ingest_message(message, advance_delay_ms=5_000)
        plain = separate.ingest_message(message)
        assert plain["advanced"] is False
        times = [c[9] for c in plain["cycles"] if c[9]]
        assert result["advanced"] is bool(times)
        if times:
            advanced += 1
            separate.advance_to(np.datetime64(utc_ms_to_local_ms(max(times) - 5_000), "ms"))
        a, b = fused.take_completed(), separate.take_completed()
        assert a.tobytes() == b.tobytes()
        assert result["completed_waiting"] == len(a)  # what a take right after the message gives
    assert advanced > 0
    assert fused.stats() == separate.stats()


def test_bars_the_bounded_queue_dropped_are_reported_once_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The engine's completed-bar queue drops its oldest bars past 10 M untaken ones (its C++ test
    fills it); the agent turns the counter into a WARNING naming how many, once per increase."""
    import hkrt.agent.spot_agent as spot_agent

    agent = hkrt.SpotAgent(["MIN"])
    real = agent._engine
    drops = [0]

    class DroppingEngine:  # the real engine, whose queue is said to have dropped `drops[0]` bars
        def __getattr__(self, name: str) -> object:
            return getattr(real, name)

        def __setattr__(self, name: str, value: object) -> None:
            setattr(real, name, value)

        def message_stats(self) -> dict[str, object]:
            return {**real.message_stats(), "completed_dropped": drops[0]}

    agent._engine = DroppingEngine()  # type: ignore[assignment]
    monkeypatch.setattr(spot_agent, "_COMPLETED_CHECK_FROM", 1)
    agent.on_bars(lambda records: None)
    with caplog.at_level(logging.WARNING, logger="hkrt.agent"):
        agent.bus.start()
        try:
            for sequence, dropped in enumerate((0, 7, 7, 9), start=1):
                drops[0] = dropped
                agent.ingest(minute_message(sequence, sequence))  # each completes the minute before
            assert agent.wait_idle()
        finally:
            agent.bus.stop()
    warnings = [r for r in caplog.records if "completed bars dropped" in r.getMessage()]
    assert [(r.dropped, r.completed_dropped) for r in warnings] == [(7, 7), (2, 9)]  # type: ignore[attr-defined]
