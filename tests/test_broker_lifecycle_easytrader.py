"""easytrader's order lifecycle: today's entrusts and trades, polled through easytrader's own HTTP server
(loopback) or a local user object, published as ExecutionReports on a real EventBus."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from easytrader import remoteclient

from easytrader_user import EasyTraderServer, FakeMiniqmtUser, FakeThsUser
from hkrt.adapters.easytrader.mapping import entrust_state, parse_entrusts, parse_trades
from hkrt.broker import OrderRequest, OrderSide, OrderStatus
from hkrt.broker.easytrader_broker import EasyTraderOrderBroker
from hkrt.bus import EventBus, ExecutionReport

T0 = dt.datetime(2026, 11, 20, 10, 0)


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 20, 10, 5)

    def __call__(self) -> dt.datetime:
        return self.now


class Reports:
    """A real bus with one subscriber collecting the ExecutionReports; the brokers attached to it are
    detached at the end of the test."""

    def __init__(self) -> None:
        self.bus = EventBus().start()
        self.got: list[ExecutionReport] = []
        self.bus.subscribe(ExecutionReport, self.got.append)
        self.brokers: list[EasyTraderOrderBroker] = []

    def take(self) -> list[ExecutionReport]:
        assert self.bus.wait_idle()
        out, self.got[:] = list(self.got), []
        return out


@pytest.fixture
def reports() -> Iterator[Reports]:
    r = Reports()
    yield r
    for b in r.brokers:
        b.detach()
    r.bus.stop()


@pytest.fixture
def ths() -> FakeThsUser:
    return FakeThsUser(100_000.0, {"000001": (1000, 12.0)}, auto_fill=False)


@pytest.fixture
def server(ths: FakeThsUser) -> Iterator[EasyTraderServer]:
    with EasyTraderServer({"ht_client": ths}) as srv:
        yield srv


def attached(broker: EasyTraderOrderBroker, reports: Reports) -> EasyTraderOrderBroker:
    """Attach, and wait for the poll the thread makes at once (later polls are the test's)."""
    broker.attach(reports.bus)
    reports.brokers.append(broker)
    wait_for(lambda: broker.report_stats["polls"] >= 1)
    return broker


def remote(
    srv: EasyTraderServer, reports: Reports, clock: Callable[[], dt.datetime] | None = None, **kw
) -> EasyTraderOrderBroker:
    clock = clock or Clock()
    user = remoteclient.use("ht_client", srv.host, srv.port)
    user.prepare(user="acct", password="pw")
    broker = EasyTraderOrderBroker(user, clock=clock, poll_interval=kw.pop("poll_interval", 3600.0), **kw)
    return attached(broker, reports)


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def order(broker: EasyTraderOrderBroker, side: OrderSide, symbol: str, price: float, num: int, cid: str):
    request = OrderRequest(T0, symbol[:2], symbol[2:], price, num, client_order_id=cid)
    return broker.submit(side, request)


def kinds(got: list[ExecutionReport]) -> list[tuple]:
    return [(r.kind, r.shares, r.price, r.cumulative_shares) if r.kind == "fill" else (r.kind, r.reason) for r in got]


# ---- THS-family client through easytrader's server ------------------------------------------------


def test_order_accepted_partly_filled_then_filled(server, ths, reports) -> None:
    b = remote(server, reports)
    r = order(b, OrderSide.Buy, "SH600000", 10.0, 1000, "c-1")
    assert (r.status, r.order_id) == (OrderStatus.Sent, "1001")
    assert b.poll_reports()
    (accepted,) = reports.take()
    assert (accepted.kind, accepted.client_order_id, accepted.broker_order_id) == ("accepted", "c-1", "1001")
    assert (accepted.broker, accepted.symbol, accepted.side) == ("EasyTraderOrderBroker", "SH600000", "buy")

    ths.fill("1001", 400)  # shares, at the limit
    assert b.poll_reports()
    (fill,) = reports.take()
    assert (fill.kind, fill.shares, fill.price, fill.cumulative_shares) == ("fill", 400, 10.0, 400)
    assert fill.trade_id == "1001/70001" and fill.client_order_id == "c-1" and fill.fees is None
    assert fill.datetime is not None and fill.datetime.date() == dt.date.today()  # the grid's 成交日期/时间

    assert b.poll_reports() and reports.take() == []  # the same grid again: nothing new
    assert b.report_stats["duplicate_trades"] == 1

    ths.fill("1001", 600, 9.99)
    assert b.poll_reports()
    assert kinds(reports.take()) == [("fill", 600, 9.99, 1000)]
    assert b.poll_reports() and reports.take() == []
    assert ths.holdings["600000"].shares == 1000
    b.detach()


def test_cancel_after_a_partial_fill_reports_the_fill_then_the_cancel(server, ths, reports) -> None:
    b = remote(server, reports)
    assert order(b, OrderSide.Sell, "SZ000001", 12.5, 800, "s-1").order_id == "1001"
    ths.fill("1001", 300)
    c = b.cancel("1001")
    assert c.status == OrderStatus.Sent
    assert ths.entrusts[0].status == "部撤"
    assert b.poll_reports()  # one poll sees the fill and the cancel, in that order (no accepted: 部撤 is final)
    assert kinds(reports.take()) == [("fill", 300, 12.5, 300), ("cancelled", "部撤")]

    r = order(b, OrderSide.Buy, "SH600000", 10.0, 100, "b-2")
    assert b.cancel(r.order_id).status == OrderStatus.Sent
    assert b.poll_reports()
    got = reports.take()
    assert kinds(got) == [("cancelled", "已撤")] and got[0].client_order_id == "b-2"
    b.detach()


def test_a_cancel_whose_fills_the_trade_grid_does_not_show_yet_waits_for_them(server, ths, reports) -> None:
    b = remote(server, reports)
    order(b, OrderSide.Buy, "SH600000", 10.0, 500, "c-3")
    ths.fill("1001", 200)
    b.cancel("1001")
    trade = ths.trades.pop()  # the grid lags: the entrust says 200 traded, the trade list is empty
    assert b.poll_reports()
    assert reports.take() == []  # the cancel waits for the 200 shares the entrust says traded
    assert b.report_stats["finals_held"] == 1
    ths.trades.append(trade)
    assert b.poll_reports()
    assert kinds(reports.take()) == [("fill", 200, 10.0, 200), ("cancelled", "部撤")]
    b.detach()


def test_a_junked_entrust_is_rejected_with_its_reason(server, ths, reports) -> None:
    b = remote(server, reports)
    order(b, OrderSide.Buy, "SH600000", 10.0, 100, "j-1")
    assert b.poll_reports()
    ths.junk("1001", "价格超出涨跌停限制")
    assert b.poll_reports()
    got = reports.take()
    assert kinds(got) == [("accepted", ""), ("rejected", "废单: 价格超出涨跌停限制")]
    assert b.poll_reports() and reports.take() == []  # final once


def test_entrusts_this_broker_did_not_send_are_not_reported(server, ths, reports) -> None:
    b = remote(server, reports)
    ths.buy("600000", 10.0, 100)  # typed by hand in the client
    ths.fill("1001")
    assert b.poll_reports() and reports.take() == []
    assert b.report_stats["foreign_orders"] == 1
    assert b.poll_reports() and b.report_stats["foreign_orders"] == 1  # counted once per order


def test_a_failed_poll_is_counted_logged_and_recovered(server, ths, reports, caplog) -> None:
    caplog.set_level(logging.WARNING, "hkrt.broker.easytrader")
    b = remote(server, reports)
    order(b, OrderSide.Buy, "SH600000", 10.0, 100, "f-1")
    ths.fill("1001")
    ths.inject("today_trades", raise_=RuntimeError("剪贴板被占用"))
    assert not b.poll_reports()
    assert reports.take() == []  # a half-read poll publishes nothing
    assert b.report_stats["poll_failures"] == 1
    assert "RuntimeError: 剪贴板被占用" in b.last_poll_error
    assert any("trying again" in rec.getMessage() for rec in caplog.records)
    server.fail_with = 500
    assert not b.poll_reports() and "non-JSON body" in b.last_poll_error
    server.fail_with = None
    assert b.poll_reports()
    assert kinds(reports.take()) == [("accepted", ""), ("fill", 100, 10.0, 100)]
    b.detach()


def test_the_thread_polls_on_its_own_survives_failures_and_stops_on_detach(server, ths, reports) -> None:
    b = remote(server, reports, poll_interval=0.02)
    order(b, OrderSide.Buy, "SH600000", 10.0, 200, "t-1")
    ths.inject("today_entrusts", raise_=RuntimeError("window lost"), times=3)
    wait_for(lambda: b.report_stats["poll_failures"] >= 3)
    ths.fill("1001", 200)
    wait_for(lambda: any(r.kind == "fill" for r in reports.got))
    b.detach()
    polls = b.report_stats["polls"]
    time.sleep(0.1)
    assert b.report_stats["polls"] == polls
    assert not any(t.name.startswith("hkrt-poll-") for t in threading.enumerate())
    assert kinds(reports.take()) == [("accepted", ""), ("fill", 200, 10.0, 200)]


def test_a_new_day_forgets_yesterdays_numbers(server, ths, reports) -> None:
    clock = Clock()
    b = remote(server, reports, clock=clock)
    order(b, OrderSide.Buy, "SH600000", 10.0, 100, "d-1")
    assert b.poll_reports() and kinds(reports.take()) == [("accepted", "")]
    clock.now += dt.timedelta(days=1)
    ths.entrusts.clear()  # the client starts the day empty and numbers from 1001 again
    ths._ids = iter(range(1001, 2000))
    order(b, OrderSide.Buy, "SH600000", 10.0, 200, "d-2")
    assert b.poll_reports()
    got = reports.take()
    assert [(r.kind, r.client_order_id) for r in got] == [("accepted", "d-2")]


# ---- other answer shapes -------------------------------------------------------------------------


def test_miniqmt_answers_codes_and_int_numbers(reports) -> None:
    user = FakeMiniqmtUser(50_000.0, {"000001": (500, 11.0)}, auto_fill=False)
    b = attached(EasyTraderOrderBroker(user, clock=Clock(), poll_interval=3600.0), reports)
    r = order(b, OrderSide.Sell, "SZ000001", 11.5, 500, "m-1")
    assert r.order_id == "1001"
    user.fill(1001, 100)
    assert b.poll_reports()
    got = reports.take()
    assert kinds(got) == [("accepted", ""), ("fill", 100, 11.5, 100)]
    assert got[1].trade_id == "1001/70001" and got[1].side == "sell" and got[1].symbol == "SZ000001"
    assert b.cancel("1001").ok  # miniqmt wants the int back
    user.entrusts[0].reason = "撤单成功"
    assert b.poll_reports()
    assert kinds(reports.take()) == [("cancelled", "部撤: 撤单成功")]
    b.detach()


def test_a_grid_without_trade_numbers_keeps_identical_trades_apart(reports) -> None:
    user = FakeThsUser(100_000.0, flavour="yh", auto_fill=False)  # 委托序号, no 成交编号
    b = attached(EasyTraderOrderBroker(user, clock=Clock(), poll_interval=3600.0), reports)
    order(b, OrderSide.Buy, "SH600000", 10.0, 300, "y-1")
    user.fill("1001", 100)
    user.fill("1001", 100)
    user.trades[1].when = user.trades[0].when  # two trades in the same second, same price and size
    assert b.poll_reports()
    got = reports.take()
    assert kinds(got) == [("accepted", ""), ("fill", 100, 10.0, 100), ("fill", 100, 10.0, 200)]
    assert got[1].trade_id != got[2].trade_id
    user.fill("1001", 100)
    assert b.poll_reports()
    assert kinds(reports.take()) == [("fill", 100, 10.0, 300)]
    b.detach()


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("未报", "pending"), ("待报", "pending"), ("正报", "pending"), ("已报", "working"), ("未成交", "working"),
        ("部成", "partially_filled"), ("部分成交", "partially_filled"), ("已成", "filled"), ("全部成交", "filled"),
        ("待撤", "cancel_pending"), ("已报待撤", "cancel_pending"), ("部成待撤", "cancel_pending"),
        ("已撤", "cancelled"), ("部撤", "cancelled"), ("场内撤单", "cancelled"), ("废单", "rejected"),
        (50, "working"), (55, "partially_filled"), (56, "filled"), (53, "cancelled"), (57, "rejected"),
        (48, "pending"), (51, "cancel_pending"), ("", None), ("审核中", None), (255, None),
    ],
)  # fmt: skip
def test_status_words_and_codes(word, state) -> None:
    assert entrust_state(word) == state


def test_grid_cells_as_text_are_read_in_shares_and_yuan() -> None:
    rows = [{"委托序号": "001001", "证券代码": "600000", "买卖标志": "卖出", "委托数量": "1,000", "成交数量": "300",
             "状态说明": "部成"}]  # fmt: skip
    (e,) = parse_entrusts(rows)
    assert (e.order_no, e.symbol, e.side, e.ordered, e.filled, e.state) == (
        "1001",
        "SH600000",
        "sell",
        1000,
        300,
        "partially_filled",
    )
    trades = [{"委托序号": 1001, "证券代码": "600000", "成交价格": "10.50", "成交数量": "300", "成交日期": "20261120",
               "成交时间": "10:01:02"}]  # fmt: skip
    (t,) = parse_trades(trades, dt.date(2026, 11, 21))
    assert (t.order_no, t.shares, t.price, t.when) == ("1001", 300, 10.5, dt.datetime(2026, 11, 20, 10, 1, 2))
    with pytest.raises(ValueError, match="not a list"):
        parse_trades(None, dt.date(2026, 11, 21))
