"""Hostile input to the agent's message path: random bytes and mutated valid messages are
rejected with a counted reason or decoded safely, and the agent keeps serving."""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt

GOOD = hkrt.wire.encode_spots(
    [
        hkrt.Spot("SH600000", dt.datetime(2026, 11, 20, 10, 0, 5), name="浦发银行", open=10, high=10.2, low=9.9,
                  close=10.1, volume=1_000, amount=10_100, bid=[10.09, 10.08], bid_volume=[500, 800]),
        hkrt.Spot("SZ000001", dt.datetime(2026, 11, 20, 10, 0, 6), open=11, high=11, low=11, close=11,
                  volume=300, amount=3_300),
    ],
    publisher_id=5,
    sequence=1,
)  # fmt: skip


def assert_still_serving(agent: hkrt.SpotAgent) -> None:
    before = agent.stats()["accepted"]
    ok = hkrt.wire.encode_spots(
        [hkrt.Spot("SH600519", dt.datetime(2026, 11, 20, 14, 0), open=1, high=1, low=1, close=1, volume=1, amount=1)],
        publisher_id=99,
        sequence=1,
    )
    assert agent.ingest(ok) == 1
    assert agent.stats()["accepted"] == before + 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    agent = hkrt.SpotAgent(["MIN"])
    agent.ingest(data)
    t = agent.stats()["transport"]
    assert t["messages"] == 1 and t["verified"] + sum(t["rejected"].values()) == 1
    assert_still_serving(agent)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.integers(0, len(GOOD)))  # fmt: skip
def test_mutated_and_truncated_messages(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(GOOD)
    for pos, value in flips:
        data[pos] = value
    agent = hkrt.SpotAgent(["MIN"])
    accepted = agent.ingest(bytes(data[:cut]))
    t = agent.stats()["transport"]
    assert t["verified"] + sum(t["rejected"].values()) == 1
    assert 0 <= accepted <= 2
    assert_still_serving(agent)
