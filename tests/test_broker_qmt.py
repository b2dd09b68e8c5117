"""XtQuantOrderBroker through the real xtquant.xttrader over fake_xttrader.

xttrader's Python layer (seq -> Future, the push executor, order-error reordering) runs
unmodified; only its Windows-only native client is faked (docs/broker-qmt.md).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from collections.abc import Iterator

import pytest

from fake_xtquant import import_xtquant_quietly
from hkrt._hkrt import OrderStatus
from hkrt.broker.asset import AssetInfo
from hkrt.broker.qmt import (
    PRICE_TYPES,
    QmtTradingConnectionError,
    QmtTradingUnavailableError,
    XtQuantOrderBroker,
)

T0 = dt.datetime(2026, 11, 20, 14, 50)
PATH = r"D:\国金QMT\userdata_mini"
ACCOUNT = "8881234567"


@pytest.fixture(autouse=True)
def _xtquant() -> None:
    if importlib.util.find_spec("xtquant") is None:
        pytest.skip("the xtquant wheel (pip install xtquant) runs the QMT trading seam tests")
    import_xtquant_quietly()  # without its update check (a request to pypi.org)


@pytest.fixture
def account():
    from fake_xttrader import FakeQmtAccount

    return FakeQmtAccount(ACCOUNT, cash=100_000.0, positions={"000001.SZ": (1000, 11.0)})


@pytest.fixture
def broker(account) -> Iterator[XtQuantOrderBroker]:
    from fake_xttrader import installed

    with installed(account), XtQuantOrderBroker(PATH, 4242, ACCOUNT, confirm_timeout=2.0) as b:
        yield b


def asset(b: XtQuantOrderBroker) -> AssetInfo:
    return AssetInfo.parse(b.get_asset_info())


def holdings(info: AssetInfo) -> dict[tuple[str, str], tuple[float, float]]:
    return {(p.market, p.code): (p.number, p.cost_price) for p in info.positions}


# ---------------------------------------------------------------------------- orders and assets
def test_buy_sell_round_trip_updates_the_asset_json(broker, account) -> None:
    from fake_xttrader import positions_of

    start = asset(broker)
    assert start.cash == 100_000.0
    assert holdings(start) == {("SZ", "000001"): (1000.0, 11.0)}

    r = broker.buy(T0, "SH", "600000", 10.0, 1000, 9.5, 11.0, 0, "break-out")
    assert r.status == OrderStatus.Sent, r.error
    assert int(r.order_id) > 0
    name, req = account.requests[-1]
    assert name == "orderStockWithSeq"
    assert (req["m_strAccountID"], req["m_strStockCode"], req["m_nOrderType"]) == (ACCOUNT, "600000.SH", 23)
    assert (req["m_nOrderVolume"], req["m_nPriceType"], req["m_dPrice"]) == (1000, 11, 10.0)
    assert (req["m_strStrategyName"], req["m_strOrderRemark"]) == ("hkrt", "break-out")

    r2 = broker.buy(T0, "SH", "600000", 12.0, 500)  # average cost (10*1000 + 12*500) / 1500
    assert r2.ok, r2.error
    after_buys = asset(broker)
    assert after_buys.cash == pytest.approx(100_000 - 10_000 - 6_000)
    got = holdings(after_buys)
    assert got[("SH", "600000")] == (1500.0, pytest.approx(16_000 / 1500))
    sh = next(p for p in after_buys.positions if p.code == "600000")
    assert (sh.stoploss, sh.goal_price) == (0.0, 0.0)  # the latest buy's targets

    s = broker.sell(T0, "SZ", "000001", 11.5, 400)  # yesterday's shares are sellable
    assert s.ok, s.error
    final = asset(broker)
    assert final.cash == pytest.approx(84_000 + 11.5 * 400)
    assert holdings(final) == {
        ("SH", "600000"): (1500.0, pytest.approx(16_000 / 1500)),
        ("SZ", "000001"): (600.0, 11.0),
    }
    assert positions_of(account)["000001.SZ"] == (600, 600, 11.0)
    assert broker.events["on_stock_trade"] == 3 and broker.events["on_stock_order"] >= 6
    assert [x.result.status for x in broker.records] == [OrderStatus.Sent] * 3


def test_t_plus_1_sell_of_todays_shares_is_rejected_by_the_counter(broker, account) -> None:
    assert broker.buy(T0, "SH", "600000", 10.0, 1000).ok
    r = broker.sell(T0, "SH", "600000", 10.5, 1000)
    assert r.status == OrderStatus.Rejected
    assert "可用股份不足" in r.error and r.order_id is not None
    account.new_day()
    assert broker.sell(T0, "SH", "600000", 10.6, 1000).ok
    assert ("SH", "600000") not in holdings(asset(broker))


@pytest.mark.parametrize("error_first", [True, False])
def test_a_buy_without_the_cash_is_rejected_with_the_counters_reason(account, error_first) -> None:
    from fake_xttrader import installed

    account.error_before_response = error_first  # both orders in which xttrader may see the two
    with installed(account), XtQuantOrderBroker(PATH, 1, ACCOUNT) as b:
        r = b.buy(T0, "SH", "600519", 1500.0, 100)
        assert r.status == OrderStatus.Rejected
        assert "[-61] 可用资金不足" in r.error
        assert account.orders[int(r.order_id)].status == 57
        assert asset(b).cash == 100_000.0
        assert b.events["on_order_error"] == 1
        assert b.last_error == r.error


def test_an_order_refused_with_id_minus_1_carries_the_callbacks_error(broker, account) -> None:
    account.refuse_orders = "当前时间不允许此类证券交易"
    r = broker.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Rejected
    assert r.error == "QMT refused the 600000.SH order (order id -1): [-1] 当前时间不允许此类证券交易"
    assert r.order_id is None


def test_cancel_a_pending_order_releases_the_cash(broker, account) -> None:
    account.auto_fill = False
    r = broker.buy(T0, "SH", "600000", 10.0, 1000)
    assert r.ok
    assert asset(broker).cash == 90_000.0  # frozen while pending
    c = broker.cancel(r.order_id)
    assert (c.status, c.order_id) == (OrderStatus.Sent, r.order_id)
    assert account.orders[int(r.order_id)].status == 54
    assert asset(broker).cash == 100_000.0
    again = broker.cancel(r.order_id)
    assert again.status == OrderStatus.Rejected
    assert again.error == f"QMT refused to cancel {r.order_id}: order status 54 cannot be canceled"
    assert broker.cancel("abc").status == OrderStatus.Rejected


def test_latest_price_type_sends_price_0_and_fills_at_the_last_price(account) -> None:
    from fake_xttrader import installed

    account.last_prices["600000.SH"] = 10.2
    with installed(account), XtQuantOrderBroker(PATH, 2, ACCOUNT, price_type={"SH": "LATEST_PRICE"}) as b:
        assert b.buy(T0, "SH", "600000", 10.0, 100).ok
        req = account.requests[-1][1]
        assert (req["m_nPriceType"], req["m_dPrice"]) == (PRICE_TYPES["LATEST_PRICE"], 0.0)
        assert asset(b).cash == pytest.approx(100_000 - 1020)
        assert b.sell(T0, "SZ", "000001", 11.0, 100).ok
        assert account.requests[-1][1]["m_nPriceType"] == 11  # SZ keeps FIX_PRICE


def test_price_type_validation() -> None:
    with pytest.raises(ValueError, match="unknown price type"):
        XtQuantOrderBroker(account_id=ACCOUNT, trader=object(), price_type="LIMIT")
    with pytest.raises(ValueError, match="MARKET_SZ_FULL_OR_CANCEL is for SZ only, not SH"):
        XtQuantOrderBroker(account_id=ACCOUNT, trader=object(), price_type="MARKET_SZ_FULL_OR_CANCEL")


def test_constants_match_the_wheel() -> None:
    from xtquant import xtconstant

    from hkrt.broker import qmt

    assert (qmt.STOCK_BUY, qmt.STOCK_SELL, qmt.SECURITY_ACCOUNT) == (23, 24, xtconstant.SECURITY_ACCOUNT)
    assert (xtconstant.STOCK_BUY, xtconstant.STOCK_SELL, xtconstant.ORDER_JUNK) == (23, 24, qmt.ORDER_JUNK)
    for name, value in PRICE_TYPES.items():
        assert getattr(xtconstant, name) == value, name


def test_bad_orders_never_reach_qmt(broker, account) -> None:
    n = len(account.requests)
    assert broker.buy(T0, "SH", "60000", 10.0, 100).status == OrderStatus.Rejected
    assert broker.buy(T0, "SH", "600000", 10.0, 100.5).error == "QMT orders whole shares, not 100.5"
    assert len(account.requests) == n


# ---------------------------------------------------------------------------- failures
def test_connect_failure_is_a_clear_error(account) -> None:
    from fake_xttrader import installed

    account.accept_connections = False
    with installed(account), pytest.raises(QmtTradingConnectionError, match="connect\\(\\) returned -1") as e:
        XtQuantOrderBroker(PATH, 7, ACCOUNT)
    assert "userdata_mini" in str(e.value) and "session 7" in str(e.value)


def test_subscribe_failure_names_the_account(account) -> None:
    from fake_xttrader import installed

    with installed(account), pytest.raises(QmtTradingConnectionError, match="subscribe\\(account 999\\) returned -1"):
        XtQuantOrderBroker(PATH, 8, "999")


def test_a_failed_asset_query_keeps_the_last_good_snapshot_marked_stale(broker, account, caplog) -> None:
    good = asset(broker)
    assert not broker.asset_stale
    account.fail_asset_query = True
    with caplog.at_level("WARNING", logger="hkrt.broker.qmt"):
        text = broker.get_asset_info()
    stale = AssetInfo.parse(text)
    assert json.loads(text)["stale"] is True
    assert (stale.cash, holdings(stale), stale.datetime) == (good.cash, holdings(good), good.datetime)
    assert broker.asset_stale and broker.events["asset_query_failed"] == 1
    assert "last good snapshot" in caplog.text
    account.fail_asset_query = False
    assert "stale" not in json.loads(broker.get_asset_info())
    assert not broker.asset_stale


def test_a_failed_first_asset_query_gives_empty_text_and_last_error(account) -> None:
    from fake_xttrader import installed

    account.fail_asset_query = True
    with installed(account), XtQuantOrderBroker(PATH, 3, ACCOUNT) as b:
        assert b.get_asset_info() == ""
        assert "no asset info from QMT yet" in b.last_error and "query_stock_asset returned None" in b.last_error


def test_disconnect_is_logged_counted_and_orders_fail_until_reconnect(broker, account) -> None:
    import time

    account.disconnect()
    deadline = time.monotonic() + 5
    while broker.connected and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not broker.connected and broker.events["on_disconnected"] == 1
    r = broker.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Failed and "reconnect()" in r.error
    broker.reconnect()
    assert broker.buy(T0, "SH", "600000", 10.0, 200).ok


def test_broker_last_datetime_guard_keeps_history_from_qmt(broker, account) -> None:
    broker.broker_last_datetime = T0
    n = len(account.requests)
    old = broker.buy(T0 - dt.timedelta(minutes=1), "SH", "600000", 10.0, 100)
    assert old.status == OrderStatus.Skipped
    assert len(account.requests) == n and account.orders == {}
    assert broker.buy(T0, "SH", "600000", 10.0, 100).ok
    assert len(account.orders) == 1


# ---------------------------------------------------------------------------- without the fake
def test_clear_import_error_without_the_native_client() -> None:
    from fake_xttrader import uninstall

    uninstall()
    if sys.platform == "win32":
        pytest.skip("the real native client loads on Windows")
    with pytest.raises(QmtTradingUnavailableError) as e:
        XtQuantOrderBroker(PATH, 1, ACCOUNT)
    text = str(e.value)
    assert isinstance(e.value, ImportError)
    assert "xtpythonclient" in text and "Windows" in text and "docs/broker-qmt.md" in text


def test_import_works_without_xtquant() -> None:
    code = "import sys; sys.modules['xtquant'] = None\nimport hkrt.broker.qmt\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_the_registrys_qmt_execution_client_sends_one_order_request(account) -> None:
    """registry.execution_client("qmt", settings as HKRT_QMT_* gives them) -> XtQuantOrderBroker over the fake
    native client; Strategy-style submit of one OrderRequest reaches the counter with every field mapped."""
    from fake_xttrader import installed
    from hkrt.adapters import registry
    from hkrt.broker import OrderRequest, OrderSide

    settings = {"path": PATH, "account": ACCOUNT, "session_id": "4243", "strategy_name": "reg"}
    with installed(account):
        broker = registry.execution_client("qmt", settings)
        try:
            request = OrderRequest(T0, "SZ", "000001", 11.5, 300, 10.0, 13.0, 0, "via registry")
            result = broker.submit(OrderSide.Buy, request)
            assert result.status == OrderStatus.Sent, result.error
            name, req = account.requests[-1]
            assert name == "orderStockWithSeq"
            assert (req["m_strStockCode"], req["m_nOrderType"], req["m_nOrderVolume"]) == ("000001.SZ", 23, 300)
            assert (req["m_dPrice"], req["m_strStrategyName"], req["m_strOrderRemark"]) == (11.5, "reg", "via registry")
            assert broker.records[0].request == request
        finally:
            broker.close()
