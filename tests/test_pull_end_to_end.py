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
from hkrt.core.calendar import TradingCalendar
from hkrt.feed.server import FetchOutcome, Phase, PullSchedule, SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.fetcher import make_client
from hkrt.fetcher.sim import SimConfig, SimMarket
from hkrt.testing import QuoteServer

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
        current.update({s.symbol: s for s in hkrt.wire.decode_spots(hkrt.wire.encode_spots(columns))})

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


def test_spot_server_pull_reports_reasked_dropped_and_failed_codes(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The spot-server's own pull function (the CLI's): a partial answer is re-asked in its cycle and
    published, unknown codes are dropped only on the third cycle, a failed batch is counted with its
    reason -- and ServerStatus says all of it."""
    from hkrt.cli.spot_server import _pull_fetcher

    when = dt.datetime.combine(DAY, dt.time(10, 0))
    listed = {
        s: hkrt.Spot(s, when, open=10, high=10, low=10, close=10, volume=100, amount=1000)
        for s in ("SH600000", "SZ000001", "SH601318")
    }
    codes = [*listed, "SH600001", "SH600002"]
    clock = [when]
    schedule = PullSchedule([Phase.parse("09:15-11:31")], TradingCalendar.china())
    with QuoteServer(listed) as quotes, SpotPublisher(f"ipc://{tmp_path / 'feed.ipc'}") as pub:
        fetch = _pull_fetcher("sina", quotes.base_url("sina"))
        server = SpotServer(pub, sleep=lambda seconds: None)
        published: list[int] = []

        def cycle(asked: list[str]) -> FetchOutcome:
            n = len(published) + 1
            if n == 1:
                quotes.omit_next(["SZ000001"])  # a partial answer: re-asked at once
            if n == 2:
                quotes.fail_next(3, status=503)  # the batch and its two retries fail
            outcome = fetch(asked)
            published.append(len(outcome.spots))
            if n == 5:
                server.stop()
            return outcome

        with caplog.at_level("INFO", logger="hkrt"):
            server.run_pull(cycle, codes, schedule, interval=3.0, clock=lambda: clock[0])
    status = server.status
    assert published == [3, 0, 3, 3, 3]  # the partial cycle still published all three
    assert status.missing_retried == 1 and status.failures == {"http_503": 1} and status.failed_batches == 1
    assert status.dropped == 2  # after three unknown answers (cycles 1, 3, 4), not after the first
    assert [r.tokens for r in quotes.requests if r.status == 200][-1] == ["sh600000", "sz000001", "sh601318"]
    assert "re-asked 1" in status.line() and "dropped 2" in status.line() and "(http_503 1)" in status.line()
    assert any("dropped 2 codes" in r.getMessage() for r in caplog.records)
