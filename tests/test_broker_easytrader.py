"""EasyTraderOrderBroker against easytrader's own HTTP server (loopback) and against local user objects."""

from __future__ import annotations

import datetime as dt
import json
import logging
import time

import pytest
from easytrader import remoteclient
from easytrader.exceptions import TradeError

from easytrader_user import EasyTraderServer, FakeMiniqmtUser, FakeThsUser
from hkrt.broker import AssetInfo, OrderStatus
from hkrt.broker.easytrader_broker import (
    EasyTraderAsset,
    EasyTraderOrderBroker,
    market_of_code,
    order_quantity_error,
)

T0 = dt.datetime(2026, 11, 20, 14, 50)
NOW = dt.datetime(2026, 11, 20, 14, 55)


def clock() -> dt.datetime:
    return NOW


@pytest.fixture
def ths() -> FakeThsUser:
    return FakeThsUser(100_000.0, {"600000": (1000, 9.5), "000001": (500, 12.0)})


@pytest.fixture
def server(ths: FakeThsUser):
    with EasyTraderServer({"ht_client": ths}) as srv:  # a login client: ClientTrader ("ths") has no prepare
        yield srv


def remote_broker(srv: EasyTraderServer, prepare: bool = True, **kw) -> EasyTraderOrderBroker:
    user = remoteclient.use("ht_client", srv.host, srv.port)
    if prepare:
        assert user.prepare(user="acct", password="pw") == {"msg": "login success"}
    return EasyTraderOrderBroker(user, clock=clock, **kw)


def posted(srv: EasyTraderServer, path: str) -> list:
    return [body for method, p, body in srv.requests if (method, p) == ("POST", path)]


# ---- orders over the server ---------------------------------------------------------------------


def test_prepare_buy_cancel_sell_through_the_server(server: EasyTraderServer, ths: FakeThsUser) -> None:
    ths.auto_fill = False
    b = remote_broker(server)
    assert ths.logged_in and ths.calls[0][1]["user"] == "acct"

    r = b.buy(T0, "SH", "600000", 10.0, 200)
    assert (r.status, r.order_id) == (OrderStatus.Sent, "1001")
    # RemoteClient posts flat fields plus an empty nested "kwargs", which the server passes on as a keyword
    assert posted(server, "/buy") == [{"security": "600000", "price": 10.0, "amount": 200, "kwargs": {}}]
    assert ths.calls[-1] == ("buy", {"security": "600000", "price": 10.0, "amount": 200, "kwargs": {}})
    assert ths.balance["可用金额"] == 98_000.0  # frozen by the pending buy

    c = b.cancel("1001")
    assert (c.status, c.order_id) == (OrderStatus.Sent, "1001")
    assert ths.calls[-1] == ("cancel_entrust", {"entrust_no": "1001"})  # THS matches 合同编号 as text
    assert ths.entrusts[0].status == "已撤" and ths.balance["可用金额"] == 100_000.0
    again = b.cancel("1001")
    assert again.status == OrderStatus.Rejected and "不能撤单" in again.error

    s = b.sell(T0, "SZ", "000001", 12.5, 300)
    assert (s.status, s.order_id) == (OrderStatus.Sent, "1002")
    ths.fill("1002")
    assert ths.holdings["000001"].shares == 200 and ths.cash == 100_000.0 + 12.5 * 300
    assert [x.result.status for x in b.records] == [OrderStatus.Sent, OrderStatus.Sent]


def test_refused_order_is_rejected_with_the_clients_text(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server)
    r = b.buy(T0, "SH", "600000", 10.0, 20_000)  # 200,000 yuan > 100,000 cash
    assert r.status == OrderStatus.Rejected
    assert r.error == "buy SH600000 refused: 可用资金不足"
    s = b.sell(T0, "SZ", "000001", 12.0, 600)  # 500 held; a round lot, so the client judges it
    assert s.status == OrderStatus.Rejected and s.error == "sell SZ000001 refused: 可用股份不足"
    assert [c[0] for c in ths.order_calls()] == ["buy", "sell"] and ths.cash == 100_000.0


def test_server_faults_make_orders_failed_with_a_clear_error(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server)
    ths.inject("buy", raise_=RuntimeError("pywinauto lost the window"))
    r = b.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Failed
    assert "RuntimeError: pywinauto lost the window" in r.error and "127.0.0.1" in r.error

    server.fail_with = 500
    r = b.buy(T0, "SH", "600000", 10.0, 200)
    assert r.status == OrderStatus.Failed and "non-JSON body" in r.error and "Internal Server Error" in r.error
    server.fail_with = None

    server.stop()
    r = b.buy(T0, "SH", "600000", 10.0, 300)
    assert r.status == OrderStatus.Failed and r.error.startswith("buy SH600000: connection to easytrader server")
    assert b.last_error == r.error
    assert len(ths.order_calls()) == 1  # only the first reached the user (and raised)


def test_a_hung_server_times_out_and_the_order_state_is_unknown(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server, timeout=0.3)
    ths.inject("buy", delay=1.0)
    r = b.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Failed and "did not answer in time" in r.error and "unknown" in r.error
    deadline = time.monotonic() + 5
    while not ths.entrusts and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [(e.code, e.amount) for e in ths.entrusts] == [("600000", 100)]  # why Failed is not "not sent"


def test_not_prepared_server_is_explained(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server, prepare=False)
    r = b.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Failed and "no logged-in trader" in r.error
    assert b.get_asset_info() == ""
    assert "no logged-in trader" in b.last_error and b.asset() is None
    with pytest.raises(ValueError):
        AssetInfo.parse(b.get_asset_info())
    assert ths.calls == []


def test_guard_keeps_history_away_from_the_server(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server)
    b.broker_last_datetime = T0
    r = b.buy(T0 - dt.timedelta(days=1), "SH", "600000", 10.0, 100)
    s = b.sell(T0 - dt.timedelta(minutes=1), "SZ", "000001", 12.0, 100)
    assert r.status == s.status == OrderStatus.Skipped
    assert ths.order_calls() == [] and posted(server, "/buy") == posted(server, "/sell") == []
    assert b.buy(T0, "SH", "600000", 10.0, 100).status == OrderStatus.Sent
    assert len(ths.order_calls()) == 1


def test_invalid_quantities_never_reach_the_server(server: EasyTraderServer, ths: FakeThsUser) -> None:
    ths.holdings["000001"].shares = ths.holdings["000001"].sellable = 550
    b = remote_broker(server)
    bad = [
        b.buy(T0, "SH", "600000", 10.0, 150),  # not a lot of 100
        b.buy(T0, "SH", "688001", 10.0, 199),  # STAR minimum 200
        b.buy(T0, "BJ", "920001", 10.0, 99),  # BJ minimum 100
        b.buy(T0, "SH", "600000", 10.0, 100.5),  # not whole shares
        b.buy(T0, "SH", "600000", 10.005, 100),  # off the 0.01 tick: the client would round it
        b.sell(T0, "SZ", "000001", 12.0, 30),  # odd lot that does not clear the 50 remainder
        b.buy(T0, "HK", "600000", 10.0, 100),
        b.buy(T0, "SH", "60000", 10.0, 100),
    ]
    assert [r.status for r in bad] == [OrderStatus.Rejected] * len(bad)
    assert "multiple of 100" in bad[0].error and "minimum is 200" in bad[1].error
    assert "minimum is 100" in bad[2].error and "whole number" in bad[3].error and "tick" in bad[4].error
    assert "odd remainder (50 of 550 sellable)" in bad[5].error
    assert ths.order_calls() == [] and posted(server, "/buy") == posted(server, "/sell") == []

    good = [
        b.buy(T0, "SH", "688001", 10.0, 201),
        b.buy(T0, "BJ", "920001", 10.0, 101),
        b.sell(T0, "SZ", "000001", 12.0, 250),  # 200 + the whole odd 50
    ]
    assert [r.status for r in good] == [OrderStatus.Sent] * 3
    assert [c[1]["amount"] for c in ths.order_calls()] == [201, 101, 250]


def test_remote_miniqmt_buy_hits_the_kwargs_defect_and_cancel_sends_an_int(server: EasyTraderServer) -> None:
    mini = FakeMiniqmtUser(50_000.0, {"000001": (1000, 11.0)}, auto_fill=False)
    server.install(mini)  # 0.23.7's MiniqmtTrader has no prepare: /prepare cannot make it
    b = remote_broker(server, prepare=False)
    r = b.buy(T0, "SZ", "000001", 10.0, 100)
    assert r.status == OrderStatus.Failed and "nested 'kwargs'" in r.error
    assert mini.order_calls() == []  # the call failed while binding its arguments
    s = b.sell(T0, "SZ", "000001", 12.0, 100)  # sell has **kwargs in 0.23.7
    assert (s.status, s.order_id) == (OrderStatus.Sent, "1001")
    c = b.cancel("1001")
    assert c.status == OrderStatus.Sent and mini.calls[-1] == ("cancel_entrust", {"entrust_no": 1001})
    assert b.cancel("1001").status == OrderStatus.Rejected
    refused = b.sell(T0, "SZ", "000001", 12.0, 5000)
    assert refused.status == OrderStatus.Rejected and "entrust_no -1" in refused.error


# ---- asset ----------------------------------------------------------------------------------------


def test_asset_mapping_through_the_server(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server)
    assert b.buy(T0, "SH", "600000", 10.0, 200).ok  # fills: cash 98,000; 1200 @ (9500 + 2000) / 1200
    assert b.sell(T0, "SZ", "000001", 13.0, 300).ok  # cash 98,000 + 3,900
    a = b.asset()
    assert isinstance(a, EasyTraderAsset) and not a.stale and a.error == "" and a.as_of == NOW
    assert a.cash == 101_900.0
    assert a.market_value == 1200 * 10.0 + 200 * 13.0 and a.total_asset == 101_900.0 + 14_600.0
    by_code = {p.code: p for p in a.positions}
    assert (by_code["600000"].market, by_code["600000"].number, by_code["600000"].cost_price) == ("SH", 1200, 9.583)
    assert (by_code["000001"].market, by_code["000001"].number, by_code["000001"].cost_price) == ("SZ", 200, 12.0)
    assert a.available == {("SH", "600000"): 1000.0, ("SZ", "000001"): 200.0}  # T+1: today's 200 not sellable
    parsed = AssetInfo.parse(b.get_asset_info())
    assert parsed.cash == 101_900.0 and parsed.datetime == NOW
    assert {(p.market, p.code, p.number) for p in parsed.positions} == {("SH", "600000", 1200), ("SZ", "000001", 200)}
    assert set(json.loads(b.get_asset_info())) == {"datetime", "cash", "positions"}


def test_failed_asset_query_keeps_the_last_snapshot_stale(
    server: EasyTraderServer, ths: FakeThsUser, caplog: pytest.LogCaptureFixture
) -> None:
    b = remote_broker(server)
    good = b.get_asset_info()
    assert json.loads(good)["cash"] == 100_000.0

    ths.inject("balance", raise_=ValueError("could not convert string to float: '-'"))
    with caplog.at_level(logging.WARNING, logger="hkrt.broker.easytrader"):
        assert b.get_asset_info() == good
    a = b.asset(refresh=False)
    assert a is not None and a.stale and "could not convert string to float" in a.error and a.cash == 100_000.0
    assert b.asset_failures == 1 and "keeping the snapshot" in caplog.text

    ths.inject("position", return_=None)  # the grid reader's answer when the clipboard cannot be parsed
    a = b.asset()
    assert a.stale and "position is NoneType" in a.error and len(a.positions) == 2
    ths.inject("position", return_=[])  # a blocked clipboard copy: empty grid, but the balance shows stock
    a = b.asset()
    assert a.stale and "position list is empty" in a.error and len(a.positions) == 2
    ths.inject("balance", return_={"资金余额": "-", "可用金额": "-"})
    assert b.asset().stale

    server.fail_with = 500
    assert "non-JSON" in b.asset().error
    server.fail_with = None
    server.stop()
    a = b.asset()
    assert a.stale and "connection to easytrader server" in a.error
    assert b.get_asset_info() == good and b.asset_failures == 7
    assert [p.number for p in a.positions] == [1000, 500]


def test_recovery_clears_the_stale_flag(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server)
    assert not b.asset().stale
    ths.inject("balance", raise_=RuntimeError("x"))
    assert b.asset().stale
    ths.cash = 5.0
    a = b.asset()
    assert not a.stale and a.error == "" and a.cash == 5.0


# ---- local user objects ---------------------------------------------------------------------------


def test_local_ths_user_directly() -> None:
    user = FakeThsUser(10_000.0, {"600000": (100, 9.0)})
    b = EasyTraderOrderBroker(user, clock=clock)
    r = b.buy(T0, "SH", "601318", 50.0, 100)
    assert (r.status, r.order_id) == (OrderStatus.Sent, "1001")
    assert user.calls[-1] == ("buy", {"security": "601318", "price": 50.0, "amount": 100})  # no nested kwargs
    r = b.buy(T0, "SH", "601318", 50.0, 200)  # 10,000 needed, 5,000 left: TradeError
    assert r.status == OrderStatus.Rejected and r.error.endswith("可用资金不足")
    a = b.asset()
    assert a.cash == 5_000.0 and {(p.code, p.number, p.cost_price) for p in a.positions} == {
        ("600000", 100, 9.0),
        ("601318", 100, 50.0),
    }


@pytest.mark.parametrize(
    ("answer", "status", "order_id", "error"),
    [
        ({"entrust_no": "A12"}, OrderStatus.Sent, "A12", ""),
        ({"message": "success"}, OrderStatus.Sent, None, ""),  # THS: no dialog appeared
        ({"entrust_no": -1}, OrderStatus.Rejected, None, "entrust_no -1"),  # miniqmt refusal
        ([{"entrust_no": 5, "entrust_type": "雪球虚拟委托"}], OrderStatus.Sent, "5", ""),  # xq
        ([{"error_no": 10022, "error_info": "调仓失败"}], OrderStatus.Rejected, None, "调仓失败"),
        ({"message": "委托失败"}, OrderStatus.Rejected, None, "委托失败"),
        (None, OrderStatus.Failed, None, "check today_entrusts"),  # xq when its post failed
        ("ok", OrderStatus.Failed, None, "unrecognised answer 'ok'"),
    ],
)
def test_answer_forms(answer, status, order_id, error) -> None:
    user = FakeThsUser(100_000.0)
    user.inject("buy", return_=answer)
    r = EasyTraderOrderBroker(user).buy(T0, "SH", "600000", 10.0, 100)
    assert (r.status, r.order_id) == (status, order_id)
    assert error in r.error and (error or r.error == "")


def test_local_exceptions() -> None:
    user = FakeThsUser(100_000.0)
    b = EasyTraderOrderBroker(user)
    user.inject("sell", raise_=TradeError("股东代码错误"))
    r = b.sell(T0, "SZ", "000001", 10.0, 100)
    assert r.status == OrderStatus.Rejected and r.error == "sell SZ000001 refused: 股东代码错误"
    user.inject("cancel_entrust", raise_=OSError("window gone"))
    c = b.cancel("9")
    assert c.status == OrderStatus.Failed and "OSError: window gone" in c.error


@pytest.mark.parametrize("flavour", ["yh", "miniqmt"])
def test_other_answer_shapes_map_to_the_same_asset(flavour: str) -> None:
    positions = {"600000": (1000, 9.5), "300750": (300, 200.0), "688001": (250, 30.0)}
    user = (
        FakeMiniqmtUser(7_000.0, positions) if flavour == "miniqmt" else FakeThsUser(7_000.0, positions, flavour="yh")
    )
    a = EasyTraderOrderBroker(user, clock=clock).asset()
    assert a.cash == 7_000.0 and a.market_value == 9_500.0 + 60_000.0 + 7_500.0
    assert sorted((p.market, p.code, p.number, p.cost_price) for p in a.positions) == [
        ("SH", "600000", 1000, 9.5),
        ("SH", "688001", 250, 30.0),
        ("SZ", "300750", 300, 200.0),
    ]


def test_yh_balance_picks_the_rmb_row_and_rows_without_market_use_the_code() -> None:
    user = FakeThsUser(0.0, flavour="yh")
    user.inject("balance", return_=[{"币种": "港币", "可用资金": 1.0}, {"币种": "人民币", "可用资金": "12,345.60"}])
    rows = [
        {"证券代码": code, "股份余额": 100, "参考成本价": 1.0}
        for code in ("688001", "920001", "430047", "830799", "300750", "000001", "900901", "601318")
    ]
    rows += [{"证券代码": "2", "股份余额": 100}, {"证券代码": "600000", "股份余额": 0}]  # zeros lost; sold out
    user.inject("position", return_=rows)
    a = EasyTraderOrderBroker(user).asset()
    assert a.cash == 12_345.6
    assert [(p.market, p.code) for p in a.positions] == [
        ("SH", "688001"),
        ("BJ", "920001"),
        ("BJ", "430047"),
        ("BJ", "830799"),
        ("SZ", "300750"),
        ("SZ", "000001"),
        ("SH", "900901"),
        ("SH", "601318"),
        ("SZ", "000002"),
    ]


def test_prefix_market_sends_the_exchange_to_ths() -> None:
    user = FakeThsUser(100_000.0)
    b = EasyTraderOrderBroker(user, prefix_market=True)
    assert b.buy(T0, "SH", "600000", 10.0, 100).ok and b.buy(T0, "BJ", "920001", 10.0, 100).ok
    assert [c[1]["security"] for c in user.order_calls()] == ["sh600000", "920001"]
    assert set(user.holdings) == {"600000", "920001"}


@pytest.mark.parametrize(
    ("code", "market"),
    [
        ("600000", "SH"),
        ("688981", "SH"),
        ("900901", "SH"),
        ("510300", "SH"),
        ("000001", "SZ"),
        ("300750", "SZ"),
        ("200011", "SZ"),
        ("159915", "SZ"),
        ("920001", "BJ"),
        ("430047", "BJ"),
        ("830799", "BJ"),
        ("873223", "BJ"),
    ],
)
def test_market_of_code(code: str, market: str) -> None:
    assert market_of_code(code) == market


@pytest.mark.parametrize(
    ("side", "market", "code", "price", "num", "held", "bad"),
    [
        ("buy", "SH", "600000", 10.0, 100, None, ""),
        ("buy", "SZ", "300750", 200.01, 1000, None, ""),
        ("buy", "SZ", "000001", 10.0, 101, None, "multiple of 100"),
        ("buy", "SH", "688001", 10.0, 200, None, ""),
        ("buy", "SH", "688001", 10.0, 150, None, "minimum is 200"),
        ("buy", "SH", "510300", 3.456, 100, None, ""),  # funds quote to 0.001
        ("buy", "SH", "600000", 3.456, 100, None, "tick"),
        ("sell", "SH", "600000", 10.0, 130, 230, ""),
        ("sell", "SH", "600000", 10.0, 130, 250, "odd remainder"),
        ("sell", "SH", "600000", 10.0, 130, None, ""),  # holding unknown: the broker judges
        ("sell", "SH", "600000", 10.0, 300, 200, "only 200 sellable"),
        ("sell", "SH", "688001", 10.0, 150, 150, ""),  # STAR: the whole remainder below 200
        ("sell", "SH", "688001", 10.0, 150, 400, "whole remainder"),
        ("sell", "SH", "688001", 10.0, 201, 400, ""),
    ],
)
def test_order_quantity_rules(side, market, code, price, num, held, bad) -> None:
    why = order_quantity_error(side, market, code, price, num, held)
    assert (bad in why and why != "") if bad else why == ""


# ---- deadline and size cap over easytrader's server ----------------------------------------------


@pytest.mark.parametrize("fault", ["trickle", "silent", "endless trickle"])
def test_a_slow_answer_is_cut_at_the_whole_request_deadline(
    server: EasyTraderServer, ths: FakeThsUser, fault: str
) -> None:
    """requests' timeout is per socket read: a byte every 0.1 s never trips it.  The deadline is wall time."""
    deadline = 0.5
    b = remote_broker(server, timeout=deadline)
    if fault == "silent":
        ths.inject("buy", delay=2.0)  # the trader hangs; the server sends nothing at all
    else:
        server.trickle = 0.1  # the whole answer (about 25 bytes) would take 2.5 s
        server.endless = fault == "endless trickle"
    start = time.monotonic()
    r = b.buy(T0, "SH", "600000", 10.0, 100)
    elapsed = time.monotonic() - start
    assert r.status == OrderStatus.Failed, r
    assert "0.5 s deadline" in r.error and "outcome is unknown" in r.error
    assert deadline * 0.9 <= elapsed < deadline + 0.4  # the strategy's thread is free again at once
    assert b.last_error == r.error
    server.trickle, server.endless = None, False
    if fault == "trickle":  # why Failed is not "not sent": the trader did place it
        assert [(e.code, e.amount) for e in ths.entrusts] == [("600000", 100)]
        assert b.buy(T0, "SH", "600000", 10.0, 200).status == OrderStatus.Sent  # the broker works on


def test_an_asset_query_that_trickles_is_cut_too(server: EasyTraderServer) -> None:
    b = remote_broker(server, timeout=0.4)
    assert b.asset() is not None
    server.trickle = 0.1
    start = time.monotonic()
    a = b.asset()
    assert time.monotonic() - start < 0.8
    assert a is not None and a.stale and "deadline" in a.error and b.asset_failures == 1


def test_an_endless_answer_is_refused_at_the_size_cap(server: EasyTraderServer, ths: FakeThsUser) -> None:
    b = remote_broker(server, timeout=10.0, max_answer_bytes=1_000_000)
    server.endless = True
    start = time.monotonic()
    r = b.buy(T0, "SH", "600000", 10.0, 100)
    assert time.monotonic() - start < 3.0
    assert r.status == OrderStatus.Failed and "over the 1000000 byte limit" in r.error and "unknown" in r.error
    server.endless = False
    ths.inject("position", return_=[{"证券代码": "600000", "股票余额": 100, "备注": "x" * 2_000_000}])
    a = b.asset()  # a declared length over the cap is refused before reading
    assert a is None and "2000" in b.last_asset_error and "byte limit" in b.last_asset_error


def test_deadline_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="timeout must be > 0"):
        EasyTraderOrderBroker(FakeThsUser(), timeout=0)
    with pytest.raises(ValueError, match="max_answer_bytes must be > 0"):
        EasyTraderOrderBroker(FakeThsUser(), max_answer_bytes=-1)


# ---- no secret in errors or logs ------------------------------------------------------------------

PW, COMM = "s3crét +/&=%pw", "c0mm-pässw0rd"


def secret_forms(secret: str) -> dict[str, str]:
    import base64
    import urllib.parse

    escaped = json.dumps(secret)[1:-1]  # as requests puts it in a JSON body
    return {
        "plain": secret,
        "json": escaped,
        "quote": urllib.parse.quote(secret, safe=""),
        "quote_plus": urllib.parse.quote_plus(secret),
        "base64": base64.b64encode(secret.encode()).decode(),
        "base64 of json": base64.b64encode(escaped.encode()).decode(),
    }


def base64_hides(text: str, secret: str) -> bool:
    """No run of base64 characters in ``text`` decodes, at any alignment, to bytes holding ``secret``."""
    import base64
    import re

    for run in re.findall(r"[A-Za-z0-9+/_-]{4,}", text):
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) - (len(chunk) % 4 == 1)]  # one odd character holds no whole byte
            try:
                if secret.encode() in base64.b64decode(chunk + "=" * (-len(chunk) % 4)):
                    return False
            except ValueError:
                continue
    return True


def leaks(texts: dict[str, str]) -> list[tuple[str, str, str]]:
    found = []
    for secret in (PW, COMM):
        for where, text in texts.items():
            found += [(secret, where, name) for name, form in secret_forms(secret).items() if form in text]
            if not base64_hides(text, secret) or not base64_hides(text, json.dumps(secret)[1:-1]):
                found.append((secret, where, "base64 inside a blob"))
    return found


@pytest.mark.parametrize("echo", ["error page echoing the request", "TradeError echoing the password"])
def test_a_login_error_echoing_the_password_is_scrubbed(
    server: EasyTraderServer, ths: FakeThsUser, caplog: pytest.LogCaptureFixture, echo: str
) -> None:
    import requests

    if echo.startswith("error page"):
        server.fail_with, server.fail_echo = 500, True
        page = requests.post(f"http://{server.host}:{server.port}/prepare", json={"password": PW}, timeout=5).text
        # the page does echo it: JSON-escaped, URL-encoded, and base64-encoded inside the body's base64
        assert [name for _, _, name in leaks({"page": page})] == ["json", "quote_plus", "base64 inside a blob"]
        server.requests.clear()
    else:
        ths.inject("prepare", raise_=TradeError(f"登录失败: 账号 acct 密码 {PW} 通讯密码 {COMM} 错误"))
    b = EasyTraderOrderBroker(remoteclient.use("ht_client", server.host, server.port))
    with caplog.at_level(logging.DEBUG, logger="hkrt"), pytest.raises(ValueError) as err:
        b.prepare(user="acct", password=PW, comm_password=COMM)
    assert posted(server, "/prepare")[0]["password"] == PW  # the login was really sent
    text = str(err.value)
    assert "login refused or failed" in text
    assert (
        ("non-JSON body" in text)
        if echo.startswith("error page")
        else ("登录失败: 账号 acct 密码 *** 通讯密码 *** 错误" in text)
    )
    server.fail_with = None
    ths.inject("balance", raise_=RuntimeError(f"balance failed for password {PW}"))
    assert b.asset() is None
    logs = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("hkrt"))
    assert "asset query failed" in logs
    assert leaks({"error": text, "asset error": b.last_asset_error, "last_error": b.last_error, "logs": logs}) == []


def test_order_errors_are_scrubbed_of_the_given_secrets(caplog: pytest.LogCaptureFixture) -> None:
    user = FakeThsUser(100_000.0)
    b = EasyTraderOrderBroker(user, secrets=[PW, None])
    user.inject("buy", raise_=OSError(f"GUI dump: password={PW} comm={COMM}"))
    user.inject("sell", return_={"odd": PW})
    user.inject("cancel_entrust", return_={"message": f"bad {PW}"})
    b.add_secret(COMM)
    with caplog.at_level(logging.DEBUG, logger="hkrt"):
        results = [b.buy(T0, "SH", "600000", 10.0, 100), b.sell(T0, "SH", "600000", 10.0, 100), b.cancel("1")]
    assert [r.status for r in results] == [OrderStatus.Failed, OrderStatus.Failed, OrderStatus.Rejected]
    assert "password=*** comm=***" in results[0].error and "{'odd': '***'}" in results[1].error
    logs = "\n".join(rec.getMessage() for rec in caplog.records if rec.name.startswith("hkrt"))
    assert leaks({f"result {i}": r.error for i, r in enumerate(results)} | {"logs": logs}) == []
