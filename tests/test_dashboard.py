"""The dashboard's server without a browser: real HTTP and WebSocket clients on loopback (docs/dashboard.md).

A strategy is attached to a running EventBus and the test publishes the bus's own events onto it: the
snapshot + numbered-delta protocol, the token rules, and the bounds (bars, series, done orders, clients, a
slow client's queue) are checked on what the server sends.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import secrets
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="needs the dashboard extra: pip install 'hkrt[dashboard]'")
ws_client = pytest.importorskip("websockets.sync.client", reason="needs websockets (the test extra)")

import hkrt  # noqa: E402
from hkrt.bus import Bar, BarClosed, EventBus, OrderEvent  # noqa: E402
from hkrt.core.ktype import KType  # noqa: E402
from hkrt.dashboard import serve_dashboard  # noqa: E402
from hkrt.dashboard.access import dashboard_access  # noqa: E402
from hkrt.dashboard.app import DashboardServer  # noqa: E402
from hkrt.dashboard.hub import RESYNC, Hub  # noqa: E402
from hkrt.dashboard.state import DashboardState  # noqa: E402
from hkrt.ops.access import AccessError, Bind  # noqa: E402

CODES = ("SH600000", "SZ000001")
TOKEN = secrets.token_urlsafe(24)
T0 = dt.datetime(2026, 11, 20, 9, 31)


def bar(minute: int, close: float = 10.0) -> Bar:
    return Bar(T0 + dt.timedelta(minutes=minute), close, close + 0.1, close - 0.1, close, 1000.0, 10_000.0)


def order(n: int, status: str) -> OrderEvent:
    return OrderEvent(client_order_id=f"o{n}", symbol=CODES[0], side="buy", shares=100, status=status,
                      reason="because" if status == "rejected" else "", strategy="board", datetime=T0)  # fmt: skip


@pytest.fixture
def bus() -> Iterator[tuple[EventBus, hkrt.Strategy]]:
    strategy = hkrt.Strategy(CODES, ktypes=["MIN", "MIN5"], name="board")
    bus = EventBus()
    strategy.attach(bus)
    bus.start()
    try:
        yield bus, strategy
    finally:
        bus.stop()


def publish(bus: EventBus, *events: Any) -> None:
    for event in events:
        assert bus.publish(event)
    assert bus.wait_idle(5.0)


def ws_url(board: DashboardServer) -> str:
    return board.url.replace("http://", "ws://") + "/ws"


def receive(conn: Any) -> dict[str, Any]:
    return json.loads(conn.recv(timeout=5))  # type: ignore[no-any-return]


# ------------------------------------------------------------------ access
def test_an_address_beyond_loopback_needs_a_long_enough_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HKRT_DASHBOARD_TOKEN", raising=False)
    monkeypatch.delenv("HKRT_DASHBOARD_TOKEN_FILE", raising=False)
    with pytest.raises(
        AccessError, match=re.escape("dashboard on 0.0.0.0:8050 would be reachable beyond this machine")
    ):
        dashboard_access("0.0.0.0:8050")
    with pytest.raises(AccessError, match="dashboard token is shorter than 16"):
        dashboard_access("127.0.0.1:8050", "short")
    with pytest.raises(AccessError, match="dashboard address 'nowhere'"):
        dashboard_access("nowhere")
    local = dashboard_access("127.0.0.1:8050")
    assert local.generated and len(local.token) >= 16 and not local.read_needs_token
    assert local.token not in repr(local)
    monkeypatch.setenv("HKRT_DASHBOARD_TOKEN", TOKEN)
    wide = dashboard_access("0.0.0.0:8050")
    assert wide.token == TOKEN and wide.read_needs_token and not wide.generated


def test_the_halt_button_needs_the_token_and_halts_the_strategy(bus: tuple[EventBus, hkrt.Strategy]) -> None:
    _, strategy = bus
    with serve_dashboard(strategy, "127.0.0.1:0", token=TOKEN) as board:
        halt = board.url + "/api/halt"
        assert httpx.post(halt).status_code == 401
        assert httpx.post(halt, headers={"Authorization": "Bearer " + TOKEN[:-1] + "x"}).status_code == 401
        assert strategy.trading_state == "ACTIVE"
        answer = httpx.post(halt, headers={"Authorization": "Bearer " + TOKEN}, json={"reason": "test"})
        assert answer.status_code == 200
        assert answer.json()["state"] == "HALTED" and strategy.trading_state == "HALTED"
        assert strategy.risk.reason == "halted from the dashboard: test"
        snap = httpx.get(board.url + "/api/snapshot").json()  # loopback: reading needs no token
        assert snap["data"]["risk"] == {"state": "HALTED", "reason": "halted from the dashboard: test"}
        assert board.stats["unauthorized"] == 2 and board.stats["halts"] == 1


def test_beyond_loopback_reading_needs_the_token_too(bus: tuple[EventBus, hkrt.Strategy]) -> None:
    _, strategy = bus
    # the rules of a non-loopback bind, served on loopback so the test opens nothing to the network
    access = dashboard_access("127.0.0.1:0", TOKEN)
    access = type(access)(Bind("127.0.0.1", 0), TOKEN, read_needs_token=True)
    with DashboardServer(DashboardState(strategy), access, queue_size=10, max_clients=2) as board:
        assert httpx.get(board.url + "/api/snapshot").status_code == 401
        assert httpx.get(board.url + "/api/stats").status_code == 401
        ok = httpx.get(board.url + "/api/snapshot", headers={"Authorization": "Bearer " + TOKEN})
        assert ok.status_code == 200 and ok.json()["type"] == "snapshot"
        assert httpx.get(board.url + "/").status_code == 200  # the page holds no data
        with ws_client.connect(ws_url(board)) as conn:
            conn.send(json.dumps({"type": "hello", "token": "wrong-token-wrong-token"}))
            with pytest.raises(Exception, match="1008"):
                conn.recv(timeout=5)
        with ws_client.connect(ws_url(board)) as conn:
            conn.send(json.dumps({"type": "hello", "token": TOKEN}))
            assert receive(conn)["type"] == "snapshot"


# ----------------------------------------------------------------- protocol
def test_a_client_gets_a_snapshot_then_each_change_numbered_in_order(bus: tuple[EventBus, hkrt.Strategy]) -> None:
    b, strategy = bus
    with serve_dashboard(strategy, "127.0.0.1:0", token=TOKEN, ktypes=["MIN"]) as board:
        publish(b, BarClosed(CODES[0], KType.MIN, bar(0)))
        with ws_client.connect(ws_url(board)) as conn:
            conn.send(json.dumps({"type": "hello"}))
            snap = receive(conn)
            assert snap["type"] == "snapshot" and snap["data"]["symbols"] == list(CODES)
            assert [s["ktype"] for s in snap["data"]["bars"]] == ["MIN"]  # MIN5 bars are not charted here
            assert len(snap["data"]["bars"][0]["bars"]) == 1
            publish(b, BarClosed(CODES[0], KType.MIN, bar(1, 10.5)), BarClosed(CODES[0], KType.MIN5, bar(4)),
                    order(1, "accepted"), order(1, "rejected"))  # fmt: skip
            got = [receive(conn) for _ in range(3)]
        assert [m["seq"] for m in got] == [snap["seq"] + 1, snap["seq"] + 2, snap["seq"] + 3]
        assert [m["kind"] for m in got] == ["bar", "order", "order"]
        assert got[0]["data"]["bar"]["close"] == 10.5
        assert got[0]["data"]["bar"]["time"] == int(
            dt.datetime(2026, 11, 20, 9, 32, tzinfo=dt.timezone.utc).timestamp()
        )
        assert got[2]["data"]["status"] == "rejected" and got[2]["data"]["reason"] == "because"
        final = httpx.get(board.url + "/api/snapshot").json()
        assert final["seq"] == snap["seq"] + 3
        assert [o["status"] for o in final["data"]["orders"]] == ["rejected"]


def test_the_state_keeps_its_bounds(bus: tuple[EventBus, hkrt.Strategy]) -> None:
    b, strategy = bus
    state = DashboardState(strategy, ktypes=["MIN"], max_bars=5, max_series=1, max_done_orders=3)
    publish(b, *(BarClosed(CODES[0], KType.MIN, bar(i)) for i in range(8)), BarClosed(CODES[1], KType.MIN, bar(0)))
    publish(b, BarClosed(CODES[0], KType.MIN, bar(7, 11.0)))  # an amended bar replaces its first report
    publish(b, *(order(i, "filled") for i in range(5)), order(9, "accepted"))
    data = state.snapshot()["data"]
    (series,) = data["bars"]
    assert series["symbol"] == CODES[0] and len(series["bars"]) == 5 and series["bars"][-1]["close"] == 11.0
    assert state.stats["bars_dropped_series"] == 1
    assert [o["id"] for o in data["orders"]] == ["o9", "o2", "o3", "o4"]  # working first, then the newest done
    state.close()
    publish(b, BarClosed(CODES[0], KType.MIN, bar(9)))
    assert state.snapshot()["data"]["bars"][0]["bars"][-1]["time"] == series["bars"][-1]["time"]  # unsubscribed


def test_a_slow_client_loses_its_queue_and_gets_a_fresh_snapshot() -> None:
    async def play() -> tuple[Hub, list[dict[str, Any]], bool]:
        hub = Hub(queue_size=3, max_clients=1)
        joined = hub.join(lambda: {"type": "snapshot", "seq": 0})
        assert joined is not None
        client, _ = joined
        refused = hub.join(lambda: {"type": "snapshot", "seq": 0}) is None  # max_clients
        for seq in range(1, 6):
            hub.fanout({"type": "delta", "seq": seq})
        queued = []
        while not client.queue.empty():
            queued.append(client.queue.get_nowait())
        return hub, queued, refused

    hub, queued, refused = asyncio.run(play())
    assert refused and hub.stats["refused_busy"] == 1
    # 3 fitted, the 4th did not: those 4 dropped, the marker queued, then the 5th
    assert queued == [RESYNC, {"type": "delta", "seq": 5}]
    assert hub.stats["dropped"] == 4 and hub.stats["resyncs"] == 1


def test_a_client_beyond_max_clients_is_refused(bus: tuple[EventBus, hkrt.Strategy]) -> None:
    _, strategy = bus
    with serve_dashboard(strategy, "127.0.0.1:0", max_clients=1) as board:
        with ws_client.connect(ws_url(board)) as first:
            first.send(json.dumps({"type": "hello"}))
            assert receive(first)["type"] == "snapshot"
            with ws_client.connect(ws_url(board)) as second:
                second.send(json.dumps({"type": "hello"}))
                with pytest.raises(Exception, match="1013"):
                    second.recv(timeout=5)
        assert board.stats["refused_busy"] == 1


# ---------------------------------------------------------------------- CLI
def test_hkrt_demo_serves_the_dashboard_while_it_runs_and_stops_it_after(tmp_path: Any) -> None:
    from click.testing import CliRunner

    from hkrt.cli import main

    args = ["demo", "--symbols", "5", "--days", "1", "--speed", "20000", "--out", str(tmp_path), "--dashboard"]
    refused = CliRunner().invoke(main, [*args, "0.0.0.0:8050"], env={"HKRT_DASHBOARD_TOKEN": ""})
    assert refused.exit_code == 2 and "would be reachable beyond this machine" in refused.output
    assert "Traceback" not in refused.output
    done = CliRunner().invoke(main, [*args, "127.0.0.1:0"])
    assert done.exit_code == 0, done.output
    (line,) = [x for x in done.output.splitlines() if x.startswith("dashboard: ")]
    url, _, token = line.removeprefix("dashboard: ").partition("/#token=")
    assert url.startswith("http://127.0.0.1:") and len(token) >= 16
    with pytest.raises(httpx.ConnectError):  # stopped with the command
        httpx.get(url + "/api/snapshot", timeout=2)


# ----------------------------------------------------------------- notebook
def test_a_notebook_chart_holds_its_data_and_nothing_ends_its_script_early() -> None:
    import pandas as pd

    from hkrt.dashboard.notebook import chart_data, interactive_candlestick

    index = pd.date_range("2026-11-20 01:31", periods=3, freq="min", tz="UTC")  # 09:31 China time
    bars = pd.DataFrame({"open": [1.0, None, 3.0], "high": [2.0, 2.0, 4.0], "low": [0.5, 1.0, 2.0],
                         "close": [1.5, 2.0, 3.5], "volume": [10.0, 20.0, float("nan")]}, index=index)  # fmt: skip
    rows, _ = chart_data(bars)
    nine_31 = int(dt.datetime(2026, 11, 20, 9, 31, tzinfo=dt.timezone.utc).timestamp())
    assert [r["time"] for r in rows] == [nine_31, nine_31 + 120]  # the row without an open is left out
    assert rows[1]["volume"] == 0.0
    with pytest.raises(ValueError, match="missing: close"):
        chart_data(bars.drop(columns="close"))
    page = interactive_candlestick(bars, title="</script><b>x</b>").page
    assert page.count("</script>") == 3 and "&lt;b&gt;x" in page  # the three script elements' own ends
    assert "TradingView Lightweight Charts™ v5.0.8" in page and "Apache License 2.0" in page
