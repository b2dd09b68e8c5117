"""The simulated market: deterministic, realistic in the ways the engine cares about."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

import hkrt
from hkrt.fetcher.sim import SimConfig, SimMarket, price_limit, universe

DAY = dt.date(2026, 11, 20)


def whole_day(market: SimMarket) -> list[dict[str, np.ndarray]]:
    return list(market.day_snapshots())


def test_same_seed_same_day_same_quotes_and_another_seed_differs() -> None:
    a = whole_day(SimMarket(DAY, SimConfig(symbols=30)))
    b = whole_day(SimMarket(DAY, SimConfig(symbols=30)))
    c = whole_day(SimMarket(DAY, SimConfig(symbols=30, seed=8)))
    assert all(np.array_equal(x["close"], y["close"]) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1]["close"], c[-1]["close"])


def test_times_cover_auction_and_sessions_and_skip_lunch() -> None:
    times = list(SimMarket(DAY, SimConfig(symbols=1)).times())
    assert times[0] == dt.datetime(2026, 11, 20, 9, 15)
    assert times[-1] == dt.datetime(2026, 11, 20, 15, 0)
    assert not [t for t in times if dt.time(11, 30) <= t.time() < dt.time(13, 0)]
    assert len(times) == 300 + 2400 + 2400 + 1  # auction 09:15-09:30, two sessions every 3 s, the 15:00 close


def test_boards_limits_auction_and_suspension() -> None:
    market = SimMarket(DAY, SimConfig(symbols=400, suspended_share=0.05, hot_share=0.2))
    symbols = [s.decode() for s in market.symbols]
    assert {s[:2] for s in symbols} == {"SH", "SZ", "BJ"}
    assert any(s.startswith("SH688") for s in symbols) and any(s.startswith("BJ920") for s in symbols)
    assert price_limit("SH600000") == 0.10 and price_limit("SZ300750") == 0.20 and price_limit("BJ920118") == 0.30
    snaps = {t: market.snapshot(t) for t in market.times()}
    before_match = snaps[dt.datetime(2026, 11, 20, 9, 20)]
    assert (before_match["volume"] == 0).all() and (before_match["open"] == 0).all()  # indicative only
    at_match = snaps[dt.datetime(2026, 11, 20, 9, 25)]
    live = at_match["close"] > 0
    assert (at_match["volume"][live] > 0).all() and (at_match["open"][live] == at_match["close"][live]).all()
    last = snaps[dt.datetime(2026, 11, 20, 15, 0)]
    prev = last["yesterday_close"]
    limits = np.array([price_limit(s) for s in symbols])
    traded = last["close"] > 0
    assert (last["high"][traded] <= np.round(prev * (1 + limits), 2)[traded] + 1e-9).all()
    assert (last["low"][traded] >= np.round(prev * (1 - limits), 2)[traded] - 1e-9).all()
    at_limit_up = traded & (last["close"] >= np.round(prev * (1 + limits), 2))
    assert at_limit_up.any() and (last["ask"][at_limit_up] == 0).all()  # nobody sells at limit-up
    suspended = ~traded
    assert suspended.any() and (last["volume"][suspended] == 0).all()
    assert (np.diff(np.stack([s["volume"] for s in snaps.values()]), axis=0) >= 0).all()  # cumulative


def test_a_simulated_day_aggregates_to_full_days_of_bars() -> None:
    market = SimMarket(DAY, SimConfig(symbols=20, suspended_share=0.0))
    agent = hkrt.SpotAgent()
    for snap in market.day_snapshots():
        agent.ingest(snap)
    stats = agent.stats()
    assert stats["rejected_total"] == 0 and stats["carry_in"] == 0
    for symbol in agent.symbols:
        mins = agent.kdata(symbol, "MIN")
        assert len(mins) == 240
        assert mins.volume.sum() == agent.kdata(symbol, "DAY").volume.iloc[0]


@pytest.mark.parametrize("n", [1, 2, 5, 7, 100, 3001])
def test_universe_has_exactly_n_distinct_symbols(n: int) -> None:
    u = universe(n)
    assert len(u) == len(set(u)) == n
