"""Hostile and careless feeds, in process: every case of "Trust the feed" that used to lose or
poison data is now counted, reported and harmless (docs/wire-format.md, docs/durability.md)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

import hkrt
from conftest import FRIDAY, SYMBOL, at, spot

MONDAY = dt.date(2026, 11, 23)  # the next trading day


def message(spots, **header) -> bytes:
    return hkrt.wire.encode_spots(spots, **header)


def minute_spots(n: int, start: str = "09:31:00", symbol: str = SYMBOL) -> list[hkrt.Spot]:
    base = dt.datetime.combine(FRIDAY, dt.time.fromisoformat(start))
    return [
        hkrt.Spot(symbol, base + dt.timedelta(minutes=i), open=10.0, high=10.5, low=9.9, close=10.0 + i * 0.01,
                  volume=1000.0 * (i + 1), amount=10_000.0 * (i + 1))
        for i in range(n)
    ]  # fmt: skip


def test_unnumbered_messages_are_never_dropped_as_duplicates() -> None:
    agent = hkrt.SpotAgent()
    spots = minute_spots(60)
    for s in spots:  # the default header: publisher 0, sequence 0 ("not numbered")
        agent.ingest(message([s]))
    assert agent.stats()["accepted"] == 60
    t = agent.stats()["transport"]
    assert (t["unnumbered"], t["duplicate_messages"], t["gaps"]) == (60, 0, 0)
    again = message([spots[-1]])
    agent.ingest(again)
    agent.ingest(again)  # an identical re-ingest changes nothing: the spot rules see a duplicate
    assert agent.stats()["duplicates"] == 2 and agent.stats()["accepted"] == 60


def test_a_restarted_publisher_whose_first_message_was_lost_is_heard() -> None:
    agent = hkrt.SpotAgent()
    spots = minute_spots(20)
    for i in range(10):
        agent.ingest(message([spots[i]], publisher_id=7, session_epoch=1_000, sequence=i + 1))
    # the publisher restarts with the same id; its message 1 never arrives
    for i in range(10, 20):
        agent.ingest(message([spots[i]], publisher_id=7, session_epoch=2_000, sequence=i - 8))
    assert agent.stats()["accepted"] == 20
    t = agent.stats()["transport"]
    assert (t["publisher_restarts"], t["missing_messages"], t["duplicate_messages"]) == (1, 1, 0)


def test_one_absurd_sequence_does_not_silence_a_publisher() -> None:
    agent = hkrt.SpotAgent()
    spots = minute_spots(5)
    agent.ingest(message([spots[0]], publisher_id=3, session_epoch=1, sequence=1))
    agent.ingest(message([spots[1]], publisher_id=3, session_epoch=1, sequence=2**63))  # quarantined
    for i in range(2, 5):
        agent.ingest(message([spots[i]], publisher_id=3, session_epoch=1, sequence=i))
    assert agent.stats()["accepted"] == 4  # all but the quarantined one
    assert agent.stats()["transport"]["anomalies"] == 1


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (spot("09:40:00", 10.0, 5_000, 50_000, day=dt.date(2099, 6, 1)), "outside_calendar"),
        (spot("09:40:00", 10.0, 2.0**63, 50_000), "beyond_bounds"),
        (spot("09:40:00", 2e9, 5_000, 50_000, high=2e9), "beyond_bounds"),
        (spot("09:40:00", 10.0, 5_000, 1e15), "beyond_bounds"),
    ],
)
def test_one_absurd_spot_is_rejected_and_its_symbol_goes_on(bad: hkrt.Spot, reason: str) -> None:
    agent = hkrt.SpotAgent()
    agent.ingest(spot("09:31:00", 10.0, 1_000, 10_000))
    agent.ingest(bad)
    agent.ingest(spot("09:45:00", 10.1, 9_000, 90_500))
    stats = agent.stats()
    assert stats["rejected"][reason] == 1 and stats["accepted"] == 2
    assert stats["rejected"]["out_of_order"] == 0


def test_a_live_spot_dated_the_next_trading_day_is_rejected() -> None:
    agent = hkrt.SpotAgent()
    sent = at("09:40:05")
    agent.ingest(message([spot("09:40:00", 10.0, 1_000, 10_000)], publisher_id=1, sequence=1, send_time=sent))
    tomorrow = spot("09:31:00", 10.2, 500, 5_100, day=MONDAY)
    agent.ingest(message([tomorrow], publisher_id=1, sequence=2, send_time=sent))
    agent.ingest(message([spot("09:41:00", 10.1, 2_000, 20_100)], publisher_id=1, sequence=3, send_time=sent))
    stats = agent.stats()
    assert stats["rejected"]["ahead_of_clock"] == 1 and stats["accepted"] == 2
    assert agent.kdata(SYMBOL, "DAY").index[-1].date() == FRIDAY


def test_a_header_market_time_cannot_close_the_day() -> None:
    agent = hkrt.SpotAgent(store=None)
    completed: list[np.ndarray] = []
    agent.on_bars(completed.append)
    agent.bus.start()  # hooks without a socket
    agent.ingest(message([spot("09:35:00", 10.0, 1_000, 10_000)], publisher_id=1, sequence=1,
                         market_time=at("15:01:00")))  # fmt: skip
    agent.ingest(message([spot("09:36:10", 10.1, 2_000, 20_100)], publisher_id=1, sequence=2))
    agent.wait_idle()
    done = np.concatenate(completed) if completed else np.zeros(0, dtype=hkrt._hkrt.COMPLETED_DTYPE)
    assert not (done["ktype"] == list(hkrt.KType).index(hkrt.KType.DAY)).any()  # the day is not over
    assert len(agent.kdata(SYMBOL, "MIN")) <= 3  # no 240 flat minutes
    assert agent.stats()["transport"]["market_time_clamped"] == 1
    assert agent.kdata(SYMBOL, "DAY")["volume"].iloc[-1] == 2_000  # the correction reached DAY


@pytest.mark.parametrize("market_time", [2**63 - 1, -(2**63), 253_402_300_800_000, 10**17])
def test_no_header_value_makes_ingest_raise(market_time: int) -> None:
    agent = hkrt.SpotAgent()
    agent.bus.start()
    for seq in (1, 2):
        accepted = agent.ingest(message([spot(f"09:3{seq}:00", 10.0, 1_000 * seq, 10_000 * seq)], publisher_id=5,
                                        sequence=seq, cycle_id=seq, market_time=market_time,
                                        send_time=2**63 - 1 if seq == 2 else None))  # fmt: skip
        assert accepted == 1
    assert agent.stats()["transport"]["market_time_invalid"] == 2


def test_a_message_of_another_market_day_does_not_open_its_journal_file(tmp_path: Path) -> None:
    agent = hkrt.SpotAgent(journal_dir=tmp_path)
    agent.ingest(message([spot("09:35:00", 10.0, 1_000, 10_000)], publisher_id=1, sequence=1))
    agent.ingest(message([spot("09:36:00", 10.1, 2_000, 20_100)], publisher_id=1, sequence=2,
                         market_time=dt.datetime(2099, 1, 5, 10, 0)))  # fmt: skip
    agent.close_journal()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"spots-{FRIDAY:%Y%m%d}.hkj"]
    again = hkrt.SpotAgent(journal_dir=tmp_path)
    assert again.recover() == 2


def test_a_message_over_the_size_cap_is_rejected() -> None:
    agent = hkrt.SpotAgent(max_message_bytes=1_000)
    big = message(minute_spots(50))
    assert len(big) > 1_000
    assert agent.ingest(big) == 0
    assert agent.stats()["transport"]["rejected"]["too_large"] == 1
    assert agent.ingest(message(minute_spots(2))) == 2
