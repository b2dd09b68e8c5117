"""The trader process (``hkrt trader``) and ``RemoteBroker``: real nng sockets and real child processes.

A simulated day through a trader hosting the paper broker gives the orders and trades of the same paper broker
in-process; the bounds and the key are checked on a trader served in this process (threads, no child)."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import os
import socket
import stat
import time
from pathlib import Path
from typing import Any

import pytest

import hkrt
from hkrt._hkrt import OrderRequest, OrderSide, OrderStatus
from hkrt.adapters.paper.execution import PaperBroker
from hkrt.bus import EventBus, ExecutionReport
from hkrt.strategy import run_sim
from hkrt.trader.journal import TraderJournal
from hkrt.trader.protocol import check_address
from hkrt.trader.remote_broker import RemoteBroker, trader_status
from hkrt.trader.server import TraderServer
from trader_process import TraderProcess

CODES = ["SH600000", "SZ000001"]
T0 = dt.datetime(2026, 11, 19, 9, 31)
KEY = bytes(range(32))


def twin_strategy(broker: Any) -> hkrt.Strategy:
    """Every 5 minutes: a market buy, then a limit buy 1 % under the last price, then the limits cancelled:
    decisions that do not hang on when a fill is seen, so both runs send the same orders."""
    strategy = hkrt.Strategy(CODES, brokers=[broker], cash=2_000_000, name="twin")
    step = itertools.count()
    limits: list[str] = []

    @strategy.run_daily(interval="5min")
    def trade() -> None:
        n = next(step)
        for symbol in CODES:
            last = strategy.last_price(symbol)
            if last is None:
                continue
            if n % 3 == 0:
                strategy.order(symbol, 100)
            elif n % 3 == 1:
                limits.append(
                    strategy.order(symbol, 200, price=round(last * 0.995, 2), order_type="limit").client_order_id
                )
        if n % 3 == 2:
            for cid in limits:
                order = strategy.get_order(cid)
                if order is not None and not order.is_final:
                    strategy.cancel(order)
            limits.clear()

    if isinstance(broker, RemoteBroker):

        @strategy.on_stop
        def drain() -> None:  # the reports still on their way are on the bus before the run ends
            assert broker.flush(20), broker.stats

    return strategy


def outcome(strategy: hkrt.Strategy) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    orders = [(o.symbol, o.side, o.order_type, o.shares, o.price, o.created, o.filled_shares, round(o.average_price, 4),
               round(o.fees, 2), o.status, o.reason) for o in strategy.order_manager.orders]  # fmt: skip
    trades = [(t.datetime, t.symbol, t.side, t.shares, t.price, round(t.fees, 2)) for t in strategy.book.trades]
    return orders, trades


def test_a_simulated_day_through_the_trader_process_matches_the_paper_broker_in_process(tmp_path: Path) -> None:
    local = twin_strategy(PaperBroker(5_000_000, name="paper"))
    run_sim(local, "2026-11-19", symbols=20, speed=5000, handle_signals=False, until="10:40")
    with TraderProcess(tmp_path, "paper", "--cash", "5000000") as trader:
        remote = RemoteBroker(trader.address, name="remote", forward_market=True)
        try:
            far = twin_strategy(remote)
            run_sim(far, "2026-11-19", symbols=20, speed=5000, handle_signals=False, until="10:40")
        finally:
            remote.close()
    orders, trades = outcome(local)
    statuses = {o[-2] for o in orders}
    assert {"filled", "cancelled"} <= statuses and len(trades) >= 6, (statuses, trades)  # the day did trade
    assert outcome(far) == (orders, trades)
    assert remote.stats["outbox_full"] == remote.stats["lost_events"] == remote.stats["market_dropped"] == 0
    assert remote.stats["results"] == len(orders)


# ---------------------------------------------------------------- a trader in this process
class Recorder:
    def __init__(self, broker: RemoteBroker) -> None:
        self.bus = EventBus().start()
        self.reports: list[ExecutionReport] = []
        self.bus.subscribe(ExecutionReport, self.reports.append)
        broker.attach(self.bus)

    def kinds(self, cid: str) -> list[str]:
        self.bus.wait_idle()
        return [r.kind for r in self.reports if r.client_order_id == cid]

    def wait_for(self, cid: str, kind: str, timeout: float = 10.0) -> ExecutionReport:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.bus.wait_idle()
            for r in self.reports:
                if r.client_order_id == cid and r.kind == kind:
                    return r
            time.sleep(0.02)
        raise AssertionError(f"no {kind} report for {cid}: {self.reports}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(cid: str, price: float = 10.0, shares: int = 100, when: dt.datetime = T0) -> OrderRequest:
    return OrderRequest(when, "SH", "600000", price, shares, client_order_id=cid, order_type="limit")


def test_the_socket_is_the_owners_alone_and_tcp_needs_a_key(tmp_path: Path) -> None:
    address = f"ipc://{tmp_path / 't.ipc'}"
    server = TraderServer(PaperBroker(1e6), address, guard=None).start()
    try:
        assert stat.S_IMODE(os.stat(tmp_path / "t.ipc").st_mode) == 0o600
    finally:
        server.stop()
    with pytest.raises(ValueError, match=r"needs a key: TCP on 127\.0\.0\.1"):
        check_address("tcp://127.0.0.1:9999", None)
    with pytest.raises(ValueError, match="needs a key: TCP on a network address"):
        RemoteBroker("tcp://10.0.0.1:9999")
    with pytest.raises(TimeoutError, match=r"did not answer within 0\.3 s"):
        trader_status(address, timeout=0.3)  # stopped: nobody answers


def test_a_wrong_key_is_refused_before_anything_is_read(tmp_path: Path, caplog: Any) -> None:
    paper = PaperBroker(1e6)
    server = TraderServer(paper, f"tcp://127.0.0.1:{free_port()}", key=KEY, guard=None).start()
    broker = RemoteBroker(server.address, key=bytes(32 - i for i in range(32)), name="wrongkey")
    rec = Recorder(broker)
    try:
        with caplog.at_level(logging.WARNING, logger="hkrt.trader"):
            assert broker.submit(OrderSide.Buy, request("k1")).status == OrderStatus.Sent
            report = rec.wait_for("k1", "rejected")
        assert "refused authentication" in report.reason and "never sent" in report.reason
        assert server.stats["auth_refused"] >= 1 and server.stats["submits"] == 0 and paper.records == []
        assert broker.stats["auth_refused"] >= 1
        assert any("refused" in r.getMessage() for r in caplog.records)
        with pytest.raises(PermissionError, match="refused the key"):
            trader_status(server.address, key=bytes(16))
        assert trader_status(server.address, key=KEY)["stats"]["auth_refused"] >= 2
        good = RemoteBroker(server.address, key=KEY, name="goodkey")
        try:
            assert good.get_asset_info().startswith("{")  # the right key gets through the same socket
        finally:
            good.close()
    finally:
        broker.close()
        server.stop()
        rec.bus.stop()


def test_a_full_outbox_refuses_the_order_loudly(tmp_path: Path, caplog: Any) -> None:
    # nobody serves the address: the outbox fills and the next order is refused at once, with the bound named
    broker = RemoteBroker(f"ipc://{tmp_path / 'nobody.ipc'}", max_outbox=2, send_timeout=0.5, name="nobody")
    rec = Recorder(broker)
    try:
        with caplog.at_level(logging.WARNING, logger="hkrt.trader"):
            assert broker.submit(OrderSide.Buy, request("o1")).status == OrderStatus.Sent
            assert broker.submit(OrderSide.Buy, request("o2")).status == OrderStatus.Sent
            start = time.monotonic()
            third = broker.submit(OrderSide.Buy, request("o3"))
            assert time.monotonic() - start < 0.1
        assert third.status == OrderStatus.Rejected and "outbox to the trader full (2 requests wait" in third.error
        assert broker.stats["outbox_full"] == 1
        assert any("o3 refused" in r.getMessage() for r in caplog.records)
        # the two waiting were never handed over: past send_timeout they are reported rejected, never sent
        for cid in ("o1", "o2"):
            assert "unreachable for 0.5 s: never sent" in rec.wait_for(cid, "rejected").reason
        assert broker.stats["never_sent"] == 2
    finally:
        broker.close()
        rec.bus.stop()


def test_a_hung_broker_call_leaves_submit_and_the_next_requests_free(tmp_path: Path) -> None:
    release = __import__("threading").Event()

    class Hanging(PaperBroker):
        def _buy(self, request: OrderRequest) -> Any:
            release.wait(20)
            return super()._buy(request)

    paper = Hanging(1e6, name="hang")
    server = TraderServer(paper, f"ipc://{tmp_path / 'h.ipc'}", guard=None).start()
    broker = RemoteBroker(server.address, asset_timeout=1.0)
    rec = Recorder(broker)
    try:
        start = time.monotonic()
        assert broker.submit(OrderSide.Buy, request("h1")).status == OrderStatus.Sent
        assert broker.submit(OrderSide.Buy, request("h2")).status == OrderStatus.Sent
        assert time.monotonic() - start < 0.1  # the strategy's thread is never held by the broker
        time.sleep(0.3)
        assert rec.kinds("h1") == [] and server.busy_since is not None  # the trader's worker is in the call
        status = trader_status(server.address)  # what a supervisor's heartbeat sees: alive, its broker hung
        assert status["broker"] == "hang" and status["busy"] >= 0.2 and status["queued"] == 1
        assert status["epoch"] == server.epoch and status["stats"]["submits"] == 2
        assert broker.get_asset_info().startswith("{")  # the account answers on the asset worker meanwhile
        release.set()
        assert "no quote" in rec.wait_for("h1", "rejected").reason  # the broker's own reason comes back
        assert "no quote" in rec.wait_for("h2", "rejected").reason
    finally:
        release.set()
        broker.close()
        server.stop()
        rec.bus.stop()


def test_the_guard_holds_in_the_trader_and_a_repeated_client_id_is_never_sent_twice(tmp_path: Path) -> None:
    paper = PaperBroker(1e6, name="guarded")
    server = TraderServer(paper, f"ipc://{tmp_path / 'g.ipc'}", guard=T0).start()
    broker = RemoteBroker(server.address)
    rec = Recorder(broker)
    try:
        broker.submit(OrderSide.Buy, request("g-old", when=T0 - dt.timedelta(minutes=5)))
        assert rec.wait_for("g-old", "rejected").reason.startswith("Skipped")  # dated before: never reaches it
        broker.submit(OrderSide.Buy, request("g1"))
        rec.wait_for("g1", "rejected")
        other = RemoteBroker(server.address, name="remote")  # another session sends the same client id
        other_rec = Recorder(other)
        try:
            other.submit(OrderSide.Buy, request("g1"))
            other_rec.wait_for("g1", "rejected")  # answered from the journal
        finally:
            other.close()
            other_rec.bus.stop()
        sent = [(r.request.client_order_id, r.result.status.name) for r in paper.records]
        assert sent == [("g-old", "Skipped"), ("g1", "Rejected")]  # g-old held by the guard, g1 sent once
        assert server.stats["duplicates"] == 1
    finally:
        broker.close()
        server.stop()
        rec.bus.stop()


def test_the_journal_marks_an_order_a_dead_trader_was_sending_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "j"
    journal = TraderJournal(path)
    journal.received("a", "s1")
    journal.answered("a", "Sent", "1001", "")
    journal.received("b", "s1")
    journal.close()
    with path.open("a") as f:
        f.write('{"cid": "c", "own')  # torn by the crash
    again = TraderJournal(path)
    a, b = again.get("a"), again.get("b")
    assert a is not None and (a.status, a.order_id, a.owner) == ("Sent", "1001", "s1") and again.cid_of("1001") == "a"
    assert b is not None and b.status == "unknown" and "may or may not" in b.error and again.unknown == 1
    assert again.get("c") is None
    again.close()


def test_events_that_passed_out_of_the_ring_are_counted_and_warned(tmp_path: Path, caplog: Any) -> None:
    server = TraderServer(PaperBroker(1e6, name="ring"), f"ipc://{tmp_path / 'r.ipc'}", guard=None, ring_events=4)
    server.start()
    broker = RemoteBroker(server.address, poll_interval=0.01)
    rec = Recorder(broker)
    try:
        assert broker.get_asset_info()  # connected: from now on its events are followed
        assert server._bus is not None
        with caplog.at_level(logging.WARNING, logger="hkrt.trader"):
            with broker._lock:  # the client stalls; the broker reports on orders the trader never sent meanwhile
                for i in range(10):
                    server._bus.publish(ExecutionReport(broker="ring", kind="cancelled", broker_order_id=f"x{i}"))
                server._bus.wait_idle()
            deadline = time.monotonic() + 5
            while not broker.stats["lost_events"] and time.monotonic() < deadline:
                time.sleep(0.02)
        assert broker.stats["lost_events"] == 6  # 10 made, the newest 4 kept
        assert [r.broker_order_id for r in rec.reports][-4:] == ["x6", "x7", "x8", "x9"]
        assert any("passed out of its ring" in r.getMessage() for r in caplog.records)
    finally:
        broker.close()
        server.stop()
        rec.bus.stop()


def test_an_asset_query_the_broker_sits_on_times_out_at_the_client(tmp_path: Path) -> None:
    release = __import__("threading").Event()

    class Stuck(PaperBroker):
        def _get_asset_info(self) -> str:
            release.wait(20)
            return str(super()._get_asset_info())

    server = TraderServer(Stuck(1e6, name="stuck"), f"ipc://{tmp_path / 's.ipc'}", guard=None).start()
    broker = RemoteBroker(server.address, asset_timeout=0.5)
    try:
        start = time.monotonic()
        assert broker.get_asset_info() == ""
        assert 0.45 <= time.monotonic() - start < 1.5
        assert "gave no asset info within 0.5 s" in broker.last_error and broker.stats["asset_timeouts"] == 1
        start = time.monotonic()
        assert broker.get_asset_info() == ""  # the first is still unanswered: no second wait
        assert time.monotonic() - start < 0.1 and "not answered the previous asset query" in broker.last_error
        release.set()  # the broker answers the first at last: the next query goes through
        deadline = time.monotonic() + 5
        while not broker.get_asset_info() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert broker.get_asset_info().startswith("{") and broker.stats["asset_busy"] >= 1
    finally:
        release.set()
        broker.close()
        server.stop()


def test_broker_remote_is_made_from_its_settings(tmp_path: Path, monkeypatch: Any) -> None:
    from hkrt.strategy.broker_config import make_broker

    address = f"ipc://{tmp_path / 'cfg.ipc'}"
    broker = make_broker("remote", {"remote": {"address": address, "forward_market": "true", "max_outbox": "7"}},
                         cash=0)  # fmt: skip
    try:
        assert isinstance(broker, RemoteBroker) and broker.name == "remote" and broker.forward_market
        assert (broker.address, broker.max_outbox) == (address, 7)
    finally:
        broker.close()  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="needs the trader's address: set HKRT_REMOTE_ADDRESS"):
        make_broker("remote", {}, cash=0)
    monkeypatch.setenv("HKRT_REMOTE_ADDRESS", address)
    monkeypatch.setenv("HKRT_REMOTE_SEND_TIMEOUT", "soon")
    with pytest.raises(ValueError, match="HKRT_REMOTE_SEND_TIMEOUT must be a number, not 'soon'"):
        make_broker("remote", {}, cash=0)


def test_hkrt_trader_refuses_tcp_without_a_key_in_one_line_and_ends_on_sigterm(tmp_path: Path) -> None:
    import subprocess
    import sys

    address = f"tcp://127.0.0.1:{free_port()}"
    done = subprocess.run([sys.executable, "-m", "hkrt", "trader", "--broker", "paper", "--address", address,
                           "--journal", str(tmp_path / "j")],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"Error: trader on {address} needs a key: TCP on 127.0.0.1 is reachable by other users (set "
        "HKRT_TRADER_KEY to a hex key or HKRT_TRADER_KEY_FILE to an owner-only key file), or use ipc://"
    ]
    trader = TraderProcess(tmp_path, "paper").start()
    assert trader.stop() == 128 + 15  # SIGTERM: a clean stop, the conventional status
    assert any("trader stopped" in line for line in trader.lines)


def test_a_request_sent_again_is_acted_on_once(tmp_path: Path) -> None:
    import pynng

    from hkrt.trader.protocol import decode, encode, request_to_dict

    paper = PaperBroker(1e6, name="once")
    server = TraderServer(paper, f"ipc://{tmp_path / 'o.ipc'}", guard=None).start()
    item = {"id": 1, "op": "submit", "side": "buy", "request": request_to_dict(request("once-1")), "guard": None}
    try:
        with pynng.Req0(dial=server.address, recv_timeout=5000) as sock:
            replies = []
            for _ in range(3):  # the client's reply was lost twice: the same request again
                sock.send(encode({"v": 1, "session": "s", "after": 0, "items": [item]}, None))
                replies.append(decode(sock.recv(), None))
            deadline = time.monotonic() + 5
            while not [e for r in replies for e in r["events"] if e["type"] == "result"]:
                assert time.monotonic() < deadline
                sock.send(encode({"v": 1, "session": "s", "after": 0, "items": []}, None))
                replies.append(decode(sock.recv(), None))
        assert [r["taken"] for r in replies[:3]] == [1, 1, 1]
        results = [e for e in replies[-1]["events"] if e["type"] == "result"]
        assert [(e["cid"], e["status"]) for e in results] == [("once-1", "Rejected")]  # one answer, one call
        assert len(paper.records) == 1 and server.stats["submits"] == 1 and server.stats["duplicates"] == 2
    finally:
        server.stop()


def test_a_client_without_the_key_of_a_keyed_ipc_trader_is_refused(tmp_path: Path) -> None:
    server = TraderServer(PaperBroker(1e6), f"ipc://{tmp_path / 'k.ipc'}", key=KEY, guard=None).start()
    broker = RemoteBroker(server.address, name="keyless")
    rec = Recorder(broker)
    try:
        broker.submit(OrderSide.Buy, request("n1"))
        assert "refused authentication (wrong or missing key)" in rec.wait_for("n1", "rejected").reason
        assert server.stats["auth_refused"] >= 1 and server.stats["submits"] == 0
    finally:
        broker.close()
        server.stop()
        rec.bus.stop()


SCRIPT = """
import hkrt

strategy = hkrt.Strategy(["SH600000"], name="cliremote")


@strategy.run_daily_at(time="09:40")
def buy():
    strategy.order("SH600000", 100)


@strategy.on_stop
def drain():  # the reports still on their way are applied before the run ends (docs/trader-process.md)
    strategy.brokers[0].flush(20)
"""


def test_hkrt_run_sends_its_orders_to_a_trader_with_broker_remote(tmp_path: Path) -> None:
    import csv
    import subprocess
    import sys

    (tmp_path / "buy.py").write_text(SCRIPT, encoding="utf-8")
    with TraderProcess(tmp_path, "paper", "--cash", "1000000") as trader:
        (tmp_path / "cfg.toml").write_text(f'[remote]\naddress = "{trader.address}"\nforward_market = true\n')
        done = subprocess.run([sys.executable, "-m", "hkrt", "run", str(tmp_path / "buy.py"), "--source", "sim",
                               "--broker", "remote", "--config", str(tmp_path / "cfg.toml"), "--until", "10:30",
                               "--symbols", "20", "--speed", "5000", "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"broker remote: {{'address': '{trader.address}', 'forward_market': True}}" in done.stdout
    with (tmp_path / "out" / "orders.csv").open() as f:
        orders = list(csv.DictReader(f))
    assert [(o["symbol"], o["shares"], o["status"], o["broker"]) for o in orders] == [
        ("SH600000", "100", "filled", "remote")
    ]


def test_an_unreadable_item_costs_only_itself(tmp_path: Path) -> None:
    import pynng

    from hkrt.trader.protocol import decode, encode, request_to_dict

    paper = PaperBroker(1e6, name="bad")
    server = TraderServer(paper, f"ipc://{tmp_path / 'b.ipc'}", guard=None).start()
    broken = {"id": 1, "op": "submit", "side": "buy", "request": {"client_order_id": "bad-1"}}  # no price, ...
    good = {"id": 2, "op": "submit", "side": "buy", "request": request_to_dict(request("good-1")), "guard": None}
    try:
        with pynng.Req0(dial=server.address, recv_timeout=5000) as sock:
            sock.send(encode({"v": 1, "session": "s", "after": 0, "items": [broken, good]}, None))
            reply = decode(sock.recv(), None)
            assert reply["taken"] == 2 and "error" not in reply
            deadline, results = time.monotonic() + 5, {}
            while len(results) < 2 and time.monotonic() < deadline:
                sock.send(encode({"v": 1, "session": "s", "after": 0, "items": []}, None))
                results = {e["cid"]: e for e in decode(sock.recv(), None)["events"] if e["type"] == "result"}
        assert "cannot read this 'submit' item (KeyError" in results["bad-1"]["error"]
        assert results["good-1"]["status"] == "Rejected" and "no quote" in results["good-1"]["error"]
        assert server.stats["bad_requests"] == 1 and len(paper.records) == 1
    finally:
        server.stop()


def test_a_strategy_bus_that_takes_no_reports_leaves_them_at_the_trader_until_it_does(
    tmp_path: Path, monkeypatch: Any
) -> None:
    import threading

    from hkrt.trader import remote_broker

    monkeypatch.setattr(remote_broker, "MAX_BACKLOG", 3)
    server = TraderServer(PaperBroker(1e6, name="slow"), f"ipc://{tmp_path / 'sl.ipc'}", guard=None).start()
    broker = RemoteBroker(server.address, poll_interval=0.01)
    gate = threading.Event()
    got: list[str] = []
    bus = EventBus(max_events=1).start()
    bus.subscribe(ExecutionReport, lambda r: (gate.wait(20), got.append(r.broker_order_id)))
    broker.attach(bus)
    try:
        assert broker.get_asset_info()  # connected
        assert server._bus is not None
        for i in range(20):  # reports of orders nobody sent through the trader: every session gets them
            server._bus.publish(ExecutionReport(broker="slow", kind="cancelled", broker_order_id=f"x{i}"))
            if i == 9:  # a first wave taken in: more than MAX_BACKLOG wait for the stuck bus
                deadline = time.monotonic() + 5
                while broker.stats["reports"] < 10 and time.monotonic() < deadline:
                    time.sleep(0.02)
        deadline = time.monotonic() + 5
        while not broker.stats["backlog_pauses"] and time.monotonic() < deadline:
            time.sleep(0.02)
        assert broker.stats["backlog_pauses"] >= 1 and got == []  # the bus is stuck: the sender waits, not loses
        gate.set()
        assert broker.flush(10)
        bus.wait_idle()
        assert got == [f"x{i}" for i in range(20)] and broker.stats["lost_events"] == 0
    finally:
        gate.set()
        broker.close()
        server.stop()
        bus.stop()
