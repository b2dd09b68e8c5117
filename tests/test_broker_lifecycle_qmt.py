"""QMT's order lifecycle: xttrader's pushes (the real xtquant.xttrader over fake_xttrader's native
client) published as ExecutionReports on a real EventBus."""

from __future__ import annotations

import datetime as dt
import importlib.util
import time
from collections.abc import Callable, Iterator

import pytest

from fake_xtquant import import_xtquant_quietly
from hkrt.broker import OrderRequest, OrderSide, OrderStatus
from hkrt.broker.qmt import XtQuantOrderBroker
from hkrt.bus import EventBus, ExecutionReport

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("xtquant") is None, reason="the xtquant wheel (pip install xtquant) runs these"
)
T0 = dt.datetime(2026, 11, 20, 10, 0)
PATH, ACCOUNT = r"C:\QMT\userdata_mini", "1000000365"


class Reports:
    def __init__(self) -> None:
        self.bus = EventBus().start()
        self.got: list[ExecutionReport] = []
        self.bus.subscribe(ExecutionReport, self.got.append)

    def until(self, n: int, timeout: float = 5.0) -> list[ExecutionReport]:
        """The reports once there are ``n`` (pushes arrive on xttrader's thread), and no more come."""
        deadline = time.monotonic() + timeout
        while len(self.got) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)  # a report too many would show now
        assert self.bus.wait_idle()
        out, self.got[:] = list(self.got), []
        return out


@pytest.fixture
def account():
    import_xtquant_quietly()  # without its update check (a request to pypi.org)
    from fake_xttrader import FakeQmtAccount

    return FakeQmtAccount(ACCOUNT, cash=100_000.0, positions={"000001.SZ": (1000, 11.0)}, auto_fill=False)


@pytest.fixture
def reports() -> Iterator[Reports]:
    r = Reports()
    yield r
    r.bus.stop()


@pytest.fixture
def broker(account, reports) -> Iterator[XtQuantOrderBroker]:
    from fake_xttrader import installed

    with installed(account), XtQuantOrderBroker(PATH, 4242, ACCOUNT, confirm_timeout=2.0) as b:
        b.attach(reports.bus)
        yield b
        b.detach()


def order(b: XtQuantOrderBroker, side: OrderSide, symbol: str, price: float, num: int, cid: str, remark: str = ""):
    return b.submit(side, OrderRequest(T0, symbol[:2], symbol[2:], price, num, remark=remark, client_order_id=cid))


def kinds(got: list[ExecutionReport]) -> list[tuple]:
    return [(r.kind, r.shares, r.price, r.cumulative_shares) if r.kind == "fill" else (r.kind, r.reason) for r in got]


def wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_order_accepted_partly_filled_then_filled(broker, account, reports) -> None:
    r = order(broker, OrderSide.Buy, "SH600000", 10.0, 1000, "q-1")
    assert r.status == OrderStatus.Sent
    oid = int(r.order_id)
    _, req = account.requests[-1]
    assert req["m_strOrderRemark"] == "q-1"  # the client id travels in order_remark
    (accepted,) = reports.until(1)  # 49 待报: nothing; 50 已报: accepted
    assert (accepted.kind, accepted.client_order_id, accepted.broker_order_id) == ("accepted", "q-1", r.order_id)
    assert (accepted.broker, accepted.symbol, accepted.side) == ("XtQuantOrderBroker", "SH600000", "buy")

    account.fill(oid, 300)  # shares: QMT's order_volume and traded_volume count 股
    (fill,) = reports.until(1)
    assert (fill.kind, fill.shares, fill.price, fill.cumulative_shares) == ("fill", 300, 10.0, 300)
    assert fill.trade_id == f"{oid}/1" and fill.client_order_id == "q-1" and fill.fees is None
    assert isinstance(fill.datetime, dt.datetime)

    account.push_again(oid)  # QMT pushes the order and its trades again (after a reconnect)
    assert reports.until(0) == []
    assert broker.report_stats["duplicate_trades"] == 1

    account.fill(oid, 700, 9.98)
    assert kinds(reports.until(1)) == [("fill", 700, 9.98, 1000)]
    assert broker.report_stats["fills"] == 2


def test_cancel_after_a_partial_fill(broker, account, reports) -> None:
    account.order_push_first = True  # the order's 部成 push before its trade push
    r = order(broker, OrderSide.Sell, "SZ000001", 11.5, 600, "q-2")
    oid = int(r.order_id)
    account.fill(oid, 200)
    assert kinds(reports.until(2)) == [("accepted", ""), ("fill", 200, 11.5, 200)]
    c = broker.cancel(r.order_id)
    assert c.status == OrderStatus.Sent
    got = reports.until(1)  # 52 部成待撤: still working; 53 部撤: cancelled
    assert kinds(got) == [("cancelled", "53")] and got[0].client_order_id == "q-2"

    r2 = order(broker, OrderSide.Buy, "SH600000", 10.0, 100, "q-3")
    broker.cancel(r2.order_id)
    assert kinds(reports.until(2)) == [("accepted", ""), ("cancelled", "54")]
    assert broker.events["on_stock_order"] >= 8


def test_a_cancel_pushed_before_its_trade_waits_for_the_trade(broker, account, reports) -> None:
    from xtquant.xttype import XtTrade

    r = order(broker, OrderSide.Buy, "SH600000", 10.0, 500, "q-4")
    oid = int(r.order_id)
    assert kinds(reports.until(1)) == [("accepted", "")]
    o = account.orders[oid]
    o.traded_volume, o.status = 200, 53  # 部撤 with 200 traded, its trade push still on the way
    client = account.clients[0]
    client._emit([("StockOrder", (account._xt_order(o),))])
    assert reports.until(0) == [] and broker.report_stats["finals_held"] == 1
    trade = XtTrade(ACCOUNT, "600000.SH", 23, "T9", int(time.time()), 10.0, 200, 2000.0, oid, o.sysid, "hkrt",
                    "q-4", 48, 48, 0.0, "A000000001", "600000.SH")  # fmt: skip
    client._emit([("StockTrade", (trade,))])
    assert kinds(reports.until(2)) == [("fill", 200, 10.0, 200), ("cancelled", "53")]


def test_a_counter_refusal_and_an_exchange_junk_are_rejected(broker, account, reports) -> None:
    r = order(broker, OrderSide.Buy, "SH600519", 1500.0, 100, "q-5")  # 150,000 > 100,000 cash
    assert r.status == OrderStatus.Rejected and "可用资金不足" in r.error
    got = reports.until(1)  # on_order_error, then the 57 push: one report
    assert kinds(got) == [("rejected", "[-61] 可用资金不足 (available cash 100000.00, needed 150000.00)")]
    assert (got[0].client_order_id, got[0].broker_order_id) == ("q-5", r.order_id)

    r2 = order(broker, OrderSide.Buy, "SH600000", 10.0, 100, "q-6")
    assert reports.until(1)[0].kind == "accepted"
    account.junk(int(r2.order_id))
    assert kinds(reports.until(1)) == [("rejected", "[证券交易所]价格超出涨跌幅限制")]


def test_orders_of_other_strategies_are_not_reported_and_an_earlier_runs_are(broker, account, reports) -> None:
    from xtquant.xttype import StockAccount

    trader = broker.trader
    other = trader.order_stock(StockAccount(ACCOUNT), "000001.SZ", 24, 100, 11, 11.0, "another", "x-1")
    account.fill(other)
    mine_before = trader.order_stock(StockAccount(ACCOUNT), "000001.SZ", 24, 100, 11, 11.2, "hkrt", "old-7")
    got = reports.until(1, timeout=10)  # an earlier run's order (strategy hkrt, its client id in the remark), ...
    assert broker.report_stats["foreign_orders"] == 0  # ... reported once 5 s showed no send() of this run owns it
    assert [(r.kind, r.client_order_id, r.broker_order_id) for r in got] == [("accepted", "old-7", str(mine_before))]
    assert broker.report_stats["foreign_orders"] == 0  # the other strategy's pushes never reach the reporter
    assert all(r.client_order_id != "x-1" for r in got)


def test_a_long_client_id_stays_out_of_the_remark_and_still_comes_back(broker, account, reports) -> None:
    cid = "strategy-A/2026-11-20/000123"  # 28 characters: more than order_remark keeps
    r = order(broker, OrderSide.Buy, "SH600000", 10.0, 100, cid, remark="note")
    assert account.requests[-1][1]["m_strOrderRemark"] == "note"
    account.fill(int(r.order_id))
    got = reports.until(2)
    assert [(x.kind, x.client_order_id) for x in got] == [("accepted", cid), ("fill", cid)]


def test_before_attach_and_after_detach_nothing_is_published(broker, account, reports) -> None:
    broker.detach()
    r = order(broker, OrderSide.Buy, "SH600000", 10.0, 100, "q-8")
    account.fill(int(r.order_id))
    wait_for(lambda: broker.events.get("on_stock_trade", 0) >= 1)
    assert reports.until(0) == []
    broker.attach(reports.bus)
    account.push_again(int(r.order_id))
    # the trade is pushed before the order's 已成: no accepted after a fill (it goes without saying)
    assert kinds(reports.until(1)) == [("fill", 100, 10.0, 100)]
