"""Gap volume placed into its minutes from a source's minute history: after the repair the bars
equal those of an agent that saw every spot, and Σ intraday = DAY − carry-in holds again."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

import hkrt
from hkrt.adapters.sim.data import SimMinuteHistory
from hkrt.fetcher.sim import SimConfig, SimMarket

DAY = dt.date(2026, 11, 20)
CONFIG = SimConfig(symbols=40, seed=3)
KTYPES = ["MIN", "MIN5", "MIN15", "MIN60", "HOUR2", "DAY"]


def sim_day(skip: tuple[dt.time, dt.time] | None = None, victims: int = 10) -> hkrt.SpotAgent:
    """The simulated day; with ``skip``, the first ``victims`` symbols' spots in [start, end) are
    lost (a failed fetch batch)."""
    agent = hkrt.SpotAgent(KTYPES)
    market = SimMarket(DAY, CONFIG)
    for t in market.times():
        snap = market.snapshot(t)
        if skip is not None and skip[0] <= t.time() < skip[1]:
            keep = np.ones(len(snap["symbol"]), dtype=bool)
            keep[:victims] = False
            snap = {k: v[keep] for k, v in snap.items()}
        agent.ingest(snap)
    agent.advance_to(dt.datetime.combine(DAY, dt.time(15, 5)))
    return agent


def test_a_repaired_gap_gives_the_bars_of_an_agent_that_saw_every_spot() -> None:
    full = sim_day()
    holed = sim_day(skip=(dt.time(10, 3, 20), dt.time(10, 17, 40)))
    victims = holed.symbols[:10]
    lost = {s: holed.gap_volume(s).volume for s in holed.symbols}
    assert sum(v > 0 for v in lost.values()) >= 8  # the hole cost most victims volume in their bars
    for symbol in victims:
        assert (
            holed.kdata(symbol, "MIN")["volume"].sum() < full.kdata(symbol, "MIN")["volume"].sum() or not lost[symbol]
        )
    report = holed.repair_gaps(SimMinuteHistory(CONFIG))
    assert report["mismatched"] == 0 and report["pending"] == 0
    assert report["repaired"] == sum(v > 0 for v in lost.values())
    assert report["volume"] == pytest.approx(sum(lost.values()))
    for symbol in holed.symbols:
        assert holed.gap_volume(symbol).volume == pytest.approx(0.0, abs=1e-6)
        day = holed.kdata(symbol, "DAY")["volume"].iloc[0]
        for ktype in KTYPES[:-1]:
            got, want = holed.kdata(symbol, ktype), full.kdata(symbol, ktype)
            assert got["volume"].sum() == pytest.approx(day - holed.carry_in(symbol).volume)
            pd.testing.assert_frame_equal(got[["open", "high", "low", "close", "volume"]],
                                          want[["open", "high", "low", "close", "volume"]],
                                          check_exact=False, rtol=1e-9)  # fmt: skip
    assert holed.stats()["gap_spans_repaired"] == report["repaired"]
    assert holed.repair_gaps(SimMinuteHistory(CONFIG))["repaired"] == 0  # nothing left to do


def test_a_source_that_disagrees_changes_nothing() -> None:
    holed = sim_day(skip=(dt.time(10, 3, 20), dt.time(10, 17, 40)), victims=3)
    symbol = next(s for s in holed.symbols[:3] if holed.gap_volume(s).volume > 0)
    before = holed.kdata(symbol, "MIN")

    class Halved:
        def minute_bars(self, symbols, day, until):
            bars = SimMinuteHistory(CONFIG).minute_bars(symbols, day, until)
            return bars.assign(volume=bars["volume"] // 2)

    report = holed.repair_gaps(Halved(), symbols=[symbol])
    assert report["repaired"] == 0 and report["mismatched"] >= 1
    pd.testing.assert_frame_equal(holed.kdata(symbol, "MIN"), before)
    assert holed.gap_volume(symbol).volume > 0 and holed.stats()["gap_repair_mismatches"] >= 1


def test_repaired_bars_reach_on_bar_marked_amended() -> None:
    holed = hkrt.SpotAgent(["MIN", "MIN5"])
    holed._engine.collect_completed = True
    market = SimMarket(DAY, CONFIG)
    for t in market.times():
        if t.time() >= dt.time(10, 30):
            break
        snap = market.snapshot(t)
        if dt.time(10, 3, 20) <= t.time() < dt.time(10, 17, 40):
            snap = {k: v[1:] for k, v in snap.items()}
        holed.ingest(snap)
    holed._engine.take_completed()
    symbol = holed.symbols[0]
    assert holed.gap_volume(symbol).volume > 0
    holed.repair_gaps(SimMinuteHistory(CONFIG), symbols=[symbol])
    records = holed._engine.take_completed()
    assert len(records) and records["amended"].all()
    labels = records["datetime"][records["ktype"] == 0].astype("datetime64[m]").astype(str)
    assert "2026-11-20T10:10" in labels.tolist()


def test_the_worked_example_of_the_docs() -> None:
    """docs/aggregation.md §3.3, Example 2 and its repair, computed by hand."""

    def spot(t: str, close: float, volume: float, amount: float, high: float, low: float) -> hkrt.Spot:
        when = dt.datetime.combine(DAY, dt.time.fromisoformat(t))
        return hkrt.Spot("SH600000", when, open=10.0, high=high, low=low, close=close, volume=volume, amount=amount)

    agent = hkrt.SpotAgent(["MIN", "MIN5", "DAY"])
    agent.ingest(
        [
            spot("09:30:10", 10.0, 1000, 10000, 10.0, 10.0),
            spot("09:31:10", 10.1, 1200, 12020, 10.1, 10.0),
            spot("09:34:20", 10.3, 2000, 20200, 10.5, 9.95),
            spot("09:35:30", 10.2, 2300, 23260, 10.5, 9.95),
        ]
    )
    assert agent.gap_volume("SH600000")[1:] == (800.0, 8180.0, 1)

    class Source:
        def minute_bars(self, symbols, day, until):
            return pd.DataFrame(
                {
                    "symbol": ["SH600000"] * 4,
                    "datetime": pd.to_datetime(
                        ["2026-11-20 09:31", "2026-11-20 09:32", "2026-11-20 09:33", "2026-11-20 09:34"]
                    ),
                    "open": [10.0, 10.1, 10.2, 10.3],
                    "high": [10.0, 10.1, 10.4, 10.5],
                    "low": [10.0, 10.1, 10.1, 9.95],
                    "close": [10.0, 10.1, 10.3, 10.3],
                    "volume": [1000.0, 200.0, 500.0, 300.0],
                    "amount": [10000.0, 2020.0, 5110.0, 3070.0],
                }
            )

    report = agent.repair_gaps(Source())
    assert (report["repaired"], report["volume"]) == (1, 800.0)
    bars = agent.kdata("SH600000", "MIN")
    assert bars.loc["2026-11-20 09:33"].tolist() == [10.2, 10.4, 10.1, 10.3, 500.0, 5110.0, False]
    assert bars.loc["2026-11-20 09:34"].tolist() == [10.3, 10.5, 9.95, 10.3, 300.0, 3070.0, False]
    assert bars.loc["2026-11-20 09:35"].tolist() == [10.3, 10.3, 10.3, 10.3, 0.0, 0.0, False]
    min5 = agent.kdata("SH600000", "MIN5")
    assert min5.loc["2026-11-20 09:35"].tolist()[:6] == [10.0, 10.5, 9.95, 10.3, 2000.0, 20200.0]
    assert agent.gap_volume("SH600000")[1:] == (0.0, 0.0, 0)
