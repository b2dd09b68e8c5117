"""Completed-bar events: every bar of a finished day is reported exactly once, final."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt import KType
from test_properties import DAY, Tick, day_spots, ticks


def completed_frame(records: np.ndarray, symbol: str, ktype: KType) -> pd.DataFrame:
    rows = records[(records["symbol"] == symbol.encode()) & (records["ktype"] == list(KType).index(ktype))]
    return pd.DataFrame(
        {c: rows[c] for c in ("open", "high", "low", "close", "volume", "amount", "filled", "amended")},
        index=pd.DatetimeIndex(rows["datetime"].astype("datetime64[ns]"), name="datetime"),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(ticks, min_size=1, max_size=40),
    st.lists(st.tuples(st.integers(0, 40), st.integers(-60, 900)), max_size=5),
    st.booleans(),
)
def test_each_bar_of_a_finished_day_is_reported_once_and_final(
    raw: list[Tick], advances: list[tuple[int, int]], fill: bool
) -> None:
    spots = day_spots(raw)
    agent = hkrt.SpotAgent(fill_empty_bars=fill)
    agent._engine.collect_completed = True
    for i, s in enumerate(spots):
        agent.ingest(s)
        for after, seconds in advances:
            if after == i:
                agent.advance_to(s.datetime + dt.timedelta(seconds=seconds))
    agent.advance_to(dt.datetime.combine(DAY + dt.timedelta(days=3), dt.time(9)))  # Monday: Friday is over
    records = agent._engine.take_completed()
    amended = agent.stats()["amended_bars"]
    for k in KType:
        reported = completed_frame(records, "SH600000", k)
        final = agent.kdata("SH600000", k)
        if k in (KType.MONTH, KType.QUARTER, KType.HALFYEAR, KType.YEAR):
            assert reported.empty  # November goes on after Friday the 20th
            continue
        # Reported once; a bar a straggler changed afterwards is reported again, marked amended,
        # and its last report is final.
        first = reported[~reported["amended"]]
        assert not first.index.duplicated().any(), k
        assert reported["amended"].any() <= (amended > 0), k
        last = reported[~reported.index.duplicated(keep="last")].drop(columns="amended")
        pd.testing.assert_frame_equal(last, final, check_freq=False)


def test_completion_in_order_of_time_for_a_simple_day() -> None:
    agent = hkrt.SpotAgent(["MIN", "HOUR2", "DAY", "WEEK"])
    agent._engine.collect_completed = True
    day = dt.date(2026, 11, 20)
    morning = dt.datetime.combine(day, dt.time(9, 30, 10))
    afternoon = dt.datetime.combine(day, dt.time(13, 0, 10))
    agent.ingest(
        [
            hkrt.Spot("SH600000", morning, open=10, high=10, low=10, close=10, volume=100, amount=1000),
            hkrt.Spot("SH600000", afternoon, open=10, high=10.2, low=10, close=10.2, volume=300, amount=3040),
        ]
    )
    first = agent._engine.take_completed()
    assert len(first[first["ktype"] == 0]) == 120 and len(first[first["ktype"] == 6]) == 1
    agent.advance_to(dt.datetime(2026, 11, 20, 15, 5))
    rest = agent._engine.take_completed()
    names = [list(KType)[k].value for k in rest["ktype"]]
    assert names.count("MIN") == 120 and names.count("HOUR2") == 1
    assert names[-2:] == ["DAY", "WEEK"]  # Friday ends the week
    assert rest["datetime"][-1] == np.datetime64("2026-11-20")
