"""A real broker behind ``hkrt trader``: the easytrader broker in a trader child process, against easytrader's own
HTTP server on loopback (tests/easytrader_user.py).  A broker call that hangs leaves the strategy's callbacks
running; a trader killed mid-call and started again loses nothing: the order it was sending is reported with an
unknown outcome, the order queued meanwhile goes, and a fill of an earlier order still arrives."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

import hkrt
from easytrader_user import EasyTraderServer, FakeThsUser
from hkrt._hkrt import OrderRequest, OrderSide, OrderStatus
from hkrt.core.china_time import china_now
from hkrt.strategy import run_sim
from hkrt.trader.remote_broker import RemoteBroker
from test_trader import Recorder
from trader_process import TraderProcess


@pytest.fixture
def ths() -> FakeThsUser:
    return FakeThsUser(1_000_000.0, {"600000": (1000, 9.5)}, auto_fill=False)


@pytest.fixture
def server(ths: FakeThsUser):
    with EasyTraderServer({"ht_client": ths}) as srv:
        yield srv


def easytrader_env(server: EasyTraderServer) -> dict[str, str]:
    settings = {"HOST": server.host, "PORT": str(server.port), "CLIENT": "ht_client", "USER": "acct",
                "PASSWORD": "pw", "TIMEOUT": "40", "POLL_INTERVAL": "0.2"}  # fmt: skip
    return {f"HKRT_EASYTRADER_{k}": v for k, v in settings.items()}


def request(cid: str, price: float = 10.0) -> OrderRequest:
    # dated today: the venue numbers orders per day, and a restarted trader takes over today's only
    return OrderRequest(china_now(), "SH", "600000", price, 100, client_order_id=cid, order_type="limit")


def test_a_hung_broker_call_never_stops_the_strategys_callbacks(
    tmp_path: Path, server: EasyTraderServer, ths: FakeThsUser
) -> None:
    ths.auto_fill = True
    ths.inject("buy", delay=3.0)  # easytrader's server sits on the buy for 3 s (it was over 30 s in the field)
    with TraderProcess(tmp_path, "easytrader", env=easytrader_env(server)) as trader:
        broker = RemoteBroker(trader.address, name="et")
        try:
            strategy = hkrt.Strategy(["SH600000"], brokers=[broker], cash=1_000_000, name="patient")
            bars: list[float] = []
            timers: list[float] = []
            sent: list[tuple[float, float]] = []  # (wall time of the call, seconds it took)
            changes: list[tuple[str, float]] = []

            @strategy.on_bar
            def bar(symbol: str, ktype: Any, bar: Any) -> None:
                bars.append(time.monotonic())

            @strategy.run_daily(interval="1min")
            def tick() -> None:
                timers.append(time.monotonic())
                if not sent and (last := strategy.last_price("SH600000")):
                    start = time.monotonic()
                    strategy.order("SH600000", 100, price=round(last, 2), order_type="limit")
                    sent.append((start, time.monotonic() - start))

            @strategy.on_order
            def changed(order: Any) -> None:
                changes.append((order.status, time.monotonic()))

            @strategy.on_stop
            def drain() -> None:
                assert broker.flush(20), broker.stats

            run_sim(strategy, "2026-11-19", symbols=20, speed=700, handle_signals=False, until="10:40")
        finally:
            broker.close()
    assert sent and sent[0][1] < 0.2, sent  # the order left the callback at once
    start = sent[0][0]
    accepted = next(t for status, t in changes if status == "accepted")
    assert accepted - start >= 2.5  # it waited on the broker...
    during = [t for t in bars if start < t < accepted]
    assert len(during) >= 20 and len([t for t in timers if start < t < accepted]) >= 20  # ...while bars came
    order = strategy.order_manager.orders[0]
    assert order.status == "filled" and order.filled_shares == 100  # the venue's fill arrived after
    assert [t.shares for t in strategy.book.trades] == [100]


def test_a_trader_killed_mid_call_and_started_again_loses_nothing(
    tmp_path: Path, server: EasyTraderServer, ths: FakeThsUser
) -> None:
    trader = TraderProcess(tmp_path, "easytrader", env=easytrader_env(server)).start()
    broker = RemoteBroker(trader.address, name="et", send_timeout=60)
    rec = Recorder(broker)
    try:
        assert broker.submit(OrderSide.Buy, request("a")).status == OrderStatus.Sent
        first = rec.wait_for("a", "accepted")
        assert first.broker_order_id
        ths.inject("buy", delay=3.0)
        broker.submit(OrderSide.Buy, request("b"))
        journal = tmp_path / "trader.journal"
        deadline = time.monotonic() + 10
        while '"cid": "b"' not in journal.read_text() and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.3)
        trader.kill()  # in the middle of b's call to the broker
        broker.submit(OrderSide.Buy, request("c", 10.1))  # queued while no trader runs
        time.sleep(0.5)
        assert rec.kinds("c") == []
        trader.start()  # the same journal and address: a supervisor's restart
        unknown = rec.wait_for("b", "rejected", timeout=20)
        assert "outcome unknown" in unknown.reason and "check the account" in unknown.reason
        assert rec.wait_for("c", "accepted", timeout=20).broker_order_id
        ths.fill(first.broker_order_id)  # the venue fills a (sent by the first trader) after the restart
        fill = rec.wait_for("a", "fill", timeout=20)
        assert fill.shares == 100 and fill.price == 10.0
        assert broker.stats["trader_restarts"] == 1 and broker.stats["outbox_full"] == 0
        assert [e.amount for e in ths.entrusts if e.no in (first.broker_order_id,)] == [100]
        assert len([c for c in ths.order_calls() if c[0] == "buy"]) == 3  # a, b (its outcome unknown), c: never twice
    finally:
        broker.close()
        trader.stop()
        rec.bus.stop()
