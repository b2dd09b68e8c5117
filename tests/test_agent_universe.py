"""SpotAgent(universe=...): the engine pre-sized for the feed's symbols changes no bar and lists no
symbol that never traded; a bad symbol is one clear error."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import hkrt
from hkrt.core.synthetic import synthetic_day, synthetic_symbols

DAY = pd.Timestamp("2026-11-20").date()


def _messages(n_symbols: int, pushes: int) -> list[bytes]:
    out = []
    for i, push in zip(range(pushes), synthetic_day(n_symbols, DAY), strict=False):
        out.append(
            hkrt.wire.encode_spots(push.columns(), publisher_id=3, session_epoch=1, sequence=i + 1, cycle_id=i + 1)
        )
    return out


def test_a_presized_agent_builds_the_same_bars_and_lists_only_symbols_that_traded() -> None:
    universe = [s.decode() for s in synthetic_symbols(40)]
    traded = universe[:30]  # ten symbols of the universe never send a spot
    messages = _messages(30, 120)
    plain = hkrt.SpotAgent()
    presized = hkrt.SpotAgent(universe=universe)
    for m in messages:
        plain.ingest(m)
        presized.ingest(m)
    assert sorted(presized.symbols) == sorted(plain.symbols) == sorted(traded)
    for symbol in traded[:5]:
        for ktype in ("MIN", "MIN5", "DAY"):
            a, b = plain.kdata(symbol, ktype), presized.kdata(symbol, ktype)
            pd.testing.assert_frame_equal(a, b)
            assert len(a) > 0
    assert presized.kdata(universe[-1], "MIN").empty  # reserved, never traded: no bars


def test_a_closed_day_makes_room_for_the_next_and_the_next_day_aggregates_as_before() -> None:
    agent = hkrt.SpotAgent(["MIN", "DAY"])
    for m in _messages(10, 30):
        agent.ingest(m)
    assert agent.close_day(DAY)
    before = agent._engine.memory_bytes()
    next_day = pd.Timestamp("2026-11-23").date()
    pushes = [p for _, p in zip(range(30), synthetic_day(10, next_day), strict=False)]
    for i, push in enumerate(pushes):
        agent.ingest(
            hkrt.wire.encode_spots(push.columns(), publisher_id=3, session_epoch=1, sequence=31 + i, cycle_id=31 + i)
        )
    symbol = agent.symbols[0]
    days = agent.kdata(symbol, "DAY")
    assert [d.date() for d in days.index] == [DAY, next_day]  # the second still forming
    minutes = agent.kdata(symbol, "MIN")
    second = minutes[minutes.index.date == next_day]
    assert len(second) > 0 and second["volume"].sum() == days["volume"].iloc[-1]
    assert agent._engine.memory_bytes() >= before


def test_an_invalid_symbol_in_the_universe_is_named() -> None:
    with pytest.raises(ValueError, match="invalid symbol 'SH60000X'"):
        hkrt.SpotAgent(universe=["SH600000", "SH60000X"])
    with pytest.raises(ValueError, match="invalid symbol"):
        hkrt.SpotAgent(universe=np.array(["SZ000001", "bogus"]))
