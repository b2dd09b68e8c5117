"""A pull source end to end: the simulated market served in QQ and Sina format by the local
quote server, fetched over real HTTP, published by the spot server, aggregated by an agent
over a real socket -- bars as if the agent had the market itself (units survive the trip)."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hkrt
from hkrt.calendar import TradingCalendar
from hkrt.fetcher import make_client
from hkrt.fetcher.sim import SimConfig, SimMarket
from hkrt.server import FetchOutcome, Phase, PullSchedule, SpotServer
from hkrt.testing import QuoteServer
from hkrt.transport import SpotPublisher

DAY = dt.date(2026, 11, 20)
BAR_COLUMNS = ["open", "high", "low", "close", "volume"]


@pytest.mark.parametrize("source", ["qq", "sina"])
def test_simulated_market_through_http_spot_server_and_agent(source: str, tmp_path: Path) -> None:
    market = SimMarket(DAY, SimConfig(symbols=12, suspended_share=0.0))
    times = [t for t in market.times() if t.time() >= dt.time(9, 25)][:140]  # the match, then 09:30 .. 09:36:51
    current: dict[str, hkrt.Spot] = {}
    reference = hkrt.SpotAgent(["MIN", "DAY"])

    def advance(at: dt.datetime) -> None:
        columns = market.snapshot(at)
        reference.ingest(columns)
        current.clear()
        current.update({s.symbol: s for s in hkrt.decode_spots(hkrt.encode_spots(columns))})

    clock = [times[0]]
    schedule = PullSchedule([Phase.parse("09:15-11:31")], TradingCalendar.china())
    address = f"ipc://{tmp_path / 'feed.ipc'}"
    agent = hkrt.SpotAgent(["MIN", "DAY"]).start(address)
    with QuoteServer(lambda symbols: {s: current.get(s) for s in symbols}) as quotes, SpotPublisher(address) as pub:
        pub.wait_for_subscribers(1, timeout=10)
        client = make_client(source, base_url=quotes.base_url(source), rate_limit=0)  # loopback: no limit
        ticks = iter(times)
        server = SpotServer(pub, sleep=lambda seconds: None)

        def fetch(codes: list[str]) -> FetchOutcome:
            at = next(ticks, None)
            if at is None:
                server.stop()
                return FetchOutcome([])
            clock[0] = at
            advance(at)
            report = client.fetch(codes)
            assert report.ok and not report.unknown, report.summary()
            return FetchOutcome(report.spots, len(report.failed_batches))

        server.run_pull(fetch, [s.decode() for s in market.symbols], schedule, interval=3.0, clock=lambda: clock[0])
        client.close()
    deadline = time.monotonic() + 20
    while agent.stats()["transport"]["messages"] < len(times) and time.monotonic() < deadline:
        time.sleep(0.02)
    agent.stop()
    assert agent.stats()["transport"]["gaps"] == 0 and agent.stats()["rejected_total"] == 0
    for symbol in reference.symbols:
        for k in ("MIN", "DAY"):
            got, want = agent.kdata(symbol, k), reference.kdata(symbol, k)
            pd.testing.assert_frame_equal(got[BAR_COLUMNS], want[BAR_COLUMNS])
            # QQ sends the amount in whole yuan: within half a yuan per spot of the exact one.
            np.testing.assert_allclose(got.amount, want.amount, atol=0.5 * len(times))
