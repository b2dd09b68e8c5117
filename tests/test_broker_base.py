"""OrderBrokerBase from Python: the trampoline, the broker_last_datetime guard, TestOrderBroker, crtOB."""

from __future__ import annotations

import datetime as dt
import json
import logging

import pytest

import hkrt
from hkrt.broker import (
    AssetInfo,
    BrokerPosition,
    OrderBrokerBase,
    OrderBrokerWrap,
    OrderResult,
    OrderSide,
    OrderStatus,
    TestOrderBroker,
    crtOB,
)

T0 = dt.datetime(2026, 11, 20, 14, 50)


class Recorder(OrderBrokerBase):
    """Remembers every hook call; raises for code '666666'."""

    def __init__(self) -> None:
        super().__init__("recorder")
        self.calls: list[tuple] = []

    def _buy(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
        if code == "666666":
            raise RuntimeError("gateway down")
        self.calls.append(("buy", datetime, market, code, price, num, stoploss, goal_price, part_from, remark))
        return f"B{len(self.calls)}"

    def _sell(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
        self.calls.append(("sell", datetime, market, code, price, num, stoploss, goal_price, part_from, remark))
        return OrderResult(OrderStatus.Filled, order_id="S1")

    def _get_asset_info(self):
        return json.dumps({"datetime": "2026-11-20 15:00:00", "cash": 1.5, "positions": []})


def test_trampoline_calls_overrides_with_every_argument() -> None:
    b = Recorder()
    r = b.buy(T0, "SH", "600000", 10.5, 200, 9.0, 12.0, 2, "first")
    assert (r.status, r.order_id, r.ok) == (OrderStatus.Sent, "B1", True)
    assert b.calls[0] == ("buy", T0, "SH", "600000", 10.5, 200.0, 9.0, 12.0, 2, "first")
    s = b.sell(T0, "SZ", "000001", 8.0, 100)
    assert (s.status, s.order_id) == (OrderStatus.Filled, "S1")
    assert b.calls[1] == ("sell", T0, "SZ", "000001", 8.0, 100.0, 0.0, 0.0, 0, "")
    assert json.loads(b.get_asset_info())["cash"] == 1.5
    c = b.cancel("B1")
    assert c.status == OrderStatus.Failed and "does not support cancel" in c.error
    assert [(x.side, x.code, x.result.status) for x in b.records] == [
        (OrderSide.Buy, "600000", OrderStatus.Sent),
        (OrderSide.Sell, "000001", OrderStatus.Filled),
    ]


def test_keyword_call_matches_the_documented_names() -> None:
    b = Recorder()
    r = b.buy(
        datetime=T0,
        market="SH",
        code="600000",
        price=10.0,
        num=100,
        stoploss=9.5,
        goal_price=11.0,
        part_from=3,
        remark="kw",
    )
    assert r.ok
    assert b.calls[0] == ("buy", T0, "SH", "600000", 10.0, 100.0, 9.5, 11.0, 3, "kw")
    b.sell(datetime=T0, market="SH", code="600000", price=10.0, num=100, stoploss=1.0, goal_price=2.0)
    assert b.calls[1][6:8] == (1.0, 2.0)
    rec = b.records[0]
    assert (rec.datetime, rec.market, rec.code, rec.price, rec.num) == (T0, "SH", "600000", 10.0, 100.0)
    assert (rec.stoploss, rec.goal_price, rec.part_from, rec.remark) == (9.5, 11.0, 3, "kw")


def test_exception_in_buy_is_failed_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    b = Recorder()
    with caplog.at_level(logging.ERROR, logger="hkrt.broker"):
        r = b.buy(T0, "SH", "666666", 10.0, 100)
    assert r.status == OrderStatus.Failed and not r.ok
    assert r.error == "RuntimeError: gateway down"
    assert r.order_id is None
    assert "gateway down" in caplog.text
    assert any(rec.exc_info for rec in caplog.records)  # with the traceback
    assert b.records[-1].result.status == OrderStatus.Failed


def test_bad_returns_and_missing_hooks_fail_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    class Odd(OrderBrokerBase):
        def _buy(self, *args):
            return 3.14

        def _sell(self, *args):
            return False

        def _get_asset_info(self):
            raise OSError("offline")

    class Bare(OrderBrokerBase):
        pass

    odd = Odd("odd")
    with caplog.at_level(logging.ERROR, logger="hkrt.broker"):
        r = odd.buy(T0, "SH", "600000", 10.0, 100)
        assert r.status == OrderStatus.Failed and "must return" in r.error
        assert odd.sell(T0, "SH", "600000", 10.0, 100).status == OrderStatus.Rejected
        assert odd.get_asset_info() == ""
        assert "offline" in odd.last_error
        bare = Bare()
        assert bare.buy(T0, "SH", "600000", 10.0, 100).status == OrderStatus.Failed
        assert bare.get_asset_info() == ""


def test_guard_both_ways_and_same_datetime_orders() -> None:
    b = Recorder()
    assert b.broker_last_datetime is None  # no guard by default
    b.broker_last_datetime = T0
    assert b.broker_last_datetime == T0
    before = b.buy(T0 - dt.timedelta(minutes=1), "SH", "600000", 10.0, 100)
    assert before.status == OrderStatus.Skipped and "before broker_last_datetime" in before.error
    assert b.calls == []
    assert b.buy(T0, "SH", "600000", 10.0, 100).ok
    assert b.buy(T0, "SZ", "000001", 10.0, 100).ok  # same datetime, another order: sent (hikyuu dropped it)
    dup = b.buy(T0, "SH", "600000", 10.0, 100)
    assert dup.status == OrderStatus.Skipped and "duplicate" in dup.error
    assert len(b.calls) == 2
    assert [r.result.status for r in b.records] == [
        OrderStatus.Skipped,
        OrderStatus.Sent,
        OrderStatus.Sent,
        OrderStatus.Skipped,
    ]
    b.broker_last_datetime = None
    assert b.buy(T0 - dt.timedelta(days=1), "SH", "600000", 10.0, 100).ok
    b.clear_records()
    assert b.records == []


def test_history_run_sends_nothing_after_the_guard() -> None:
    broker = TestOrderBroker(cash=100_000)
    broker.broker_last_datetime = dt.datetime(2026, 11, 20, 9, 0)  # what a live runner does at start
    day = dt.datetime(2026, 11, 2, 14, 50)
    for i in range(10):  # a replay over history: every bar's signal
        when = day + dt.timedelta(days=i)
        assert broker.buy(when, "SH", "600000", 10.0, 100).status == OrderStatus.Skipped
        assert broker.sell(when, "SH", "600000", 10.0, 100).status == OrderStatus.Skipped
    assert broker.cash == 100_000 and broker.positions == {}
    assert len(broker.records) == 20
    live = broker.buy(dt.datetime(2026, 11, 20, 14, 50), "SH", "600000", 10.0, 100)
    assert live.status == OrderStatus.Filled
    assert broker.cash == 99_000


def test_paper_broker_fills_positions_cash_and_asset_json() -> None:
    b = TestOrderBroker(cash=10_000)
    r1 = b.buy(T0, "SH", "600000", 10.0, 500, stoploss=9.0, goal_price=12.0)
    assert (r1.status, r1.order_id) == (OrderStatus.Filled, "T000001")
    assert b.buy(T0, "SH", "600000", 12.0, 250).status == OrderStatus.Filled
    assert b.cash == pytest.approx(10_000 - 5_000 - 3_000)
    pos = b.positions[("SH", "600000")]
    assert pos.number == 750 and pos.cost_price == pytest.approx(8_000 / 750)
    short = b.buy(T0, "SZ", "000001", 100.0, 100)
    assert short.status == OrderStatus.Rejected and "insufficient cash" in short.error
    assert b.sell(T0, "SH", "600000", 11.0, 1_000).status == OrderStatus.Rejected
    assert b.sell(T0, "SH", "600000", 11.0, 250).status == OrderStatus.Filled
    assert b.cash == pytest.approx(2_000 + 2_750)
    assert b.cancel("T000001").status == OrderStatus.Rejected

    text = b.get_asset_info()
    raw = json.loads(text)
    assert set(raw) == {"datetime", "cash", "positions"}
    assert raw["datetime"] == "2026-11-20 14:50:00"
    assert set(raw["positions"][0]) == {"market", "code", "number", "stoploss", "goal_price", "cost_price"}
    info = AssetInfo.parse(text)
    assert info.datetime == T0 and info.cash == pytest.approx(4_750)
    assert info.positions == [BrokerPosition("SH", "600000", 500.0, 0.0, 0.0, pytest.approx(8_000 / 750))]
    assert AssetInfo.parse(info.to_json()) == info

    b.sell(T0, "SH", "600000", 11.0, 500)
    assert b.positions == {}


def test_asset_info_parser_refuses_malformed() -> None:
    for bad in ("", "not json", "[]", '{"cash": 1}', '{"positions": []}', '{"cash": 1, "positions": [{"code": "1"}]}'):
        with pytest.raises(ValueError):
            AssetInfo.parse(bad)
    assert AssetInfo.parse({"cash": "2.5", "positions": []}) == AssetInfo(cash=2.5)


def test_crtob_wraps_plain_objects_hikyuu_style_and_with_datetime() -> None:
    class HikyuuStyle:  # the signature hikyuu users wrote
        def __init__(self) -> None:
            self.got: list[tuple] = []

        def buy(self, market, code, price, num, stoploss, goal_price, part_from, remark):
            self.got.append((market, code, price, num, stoploss, goal_price, part_from, remark))

        def sell(self, market, code, price, num, stoploss, goal_price, part_from, remark):
            raise ConnectionError("mail server down")

        def get_asset_info(self):
            return {"datetime": "2026-11-20 15:00:00", "cash": 7.0, "positions": []}

    class WithDatetime:
        def __init__(self) -> None:
            self.got: list[tuple] = []

        def buy(self, datetime, market, code, price, num, stoploss, goal_price, part_from, remark):
            self.got.append((datetime, market, code))
            return 12345

        def sell(self, market, code, price, num, *args, datetime=None, **kwargs):
            self.got.append((datetime, market, code))
            return {"entrust_no": "E9"}

    plain = HikyuuStyle()
    ob = hkrt.crtOB(plain, "mail")
    assert isinstance(ob, OrderBrokerWrap) and ob.name == "mail" and ob.broker is plain
    assert ob.buy(T0, "SH", "600000", 10.0, 100, 9.0, 11.0, 1, "r").status == OrderStatus.Sent
    assert plain.got == [("SH", "600000", 10.0, 100.0, 9.0, 11.0, 1, "r")]
    failed = ob.sell(T0, "SH", "600000", 10.0, 100)
    assert failed.status == OrderStatus.Failed and "mail server down" in failed.error
    assert AssetInfo.parse(ob.get_asset_info()).cash == 7.0
    assert ob.cancel("x").status == OrderStatus.Failed

    dated = WithDatetime()
    ob2 = crtOB(dated)
    assert ob2.name == "NO_NAME"
    assert ob2.buy(T0, "SH", "600000", 10.0, 100).order_id == "12345"
    assert ob2.sell(T0, "SZ", "000001", 10.0, 100).order_id == "E9"
    assert dated.got == [(T0, "SH", "600000"), (T0, "SZ", "000001")]
    assert ob2.get_asset_info() == ""  # no get_asset_info method

    paper = TestOrderBroker(cash=1)
    assert crtOB(paper) is paper
    with pytest.raises(TypeError):
        crtOB(object())


def test_client_order_id_is_passed_to_a_broker_once_at_any_datetime() -> None:
    from hkrt.broker import OrderRequest

    b = Recorder()
    first = OrderRequest(T0, "SH", "600000", 10.0, 100, client_order_id="s-1", order_type="limit", time_in_force="ioc")
    assert (first.client_order_id, first.order_type, first.time_in_force) == ("s-1", "limit", "ioc")
    assert b.submit(OrderSide.Buy, first).ok
    # the same client id later, even for another symbol: a duplicate, never passed
    again = OrderRequest(T0 + dt.timedelta(seconds=5), "SZ", "000001", 9.0, 200, client_order_id="s-1")
    dup = b.submit(OrderSide.Buy, again)
    assert dup.status == OrderStatus.Skipped and "client order id s-1" in dup.error
    # two identical orders under different client ids both go (two signals may want the same order)
    assert b.submit(OrderSide.Buy, OrderRequest(T0, "SH", "600000", 10.0, 100, client_order_id="s-2")).ok
    assert len(b.calls) == 2
    assert b.forgotten_client_ids == 0
    with pytest.raises(ValueError, match="order_type 'stop' is not one of limit, market"):
        OrderRequest(T0, "SH", "600000", 10.0, 100, order_type="stop")
    with pytest.raises(ValueError, match="time_in_force 'gtc'"):
        OrderRequest(T0, "SH", "600000", 10.0, 100, time_in_force="gtc")
