"""hikyuu's calls on hkrt (docs/hikyuu-migration.md): MailOrderBroker(host, sender, pwd, receivers)
against a real local SMTP server, start_spot_agent(print, worker_num, addr) and the agent status calls
against a real SpotPublisher over ipc, crtOB with hikyuu's 3-, 4- and 7-argument brokers through the C++
OrderBrokerBase path a Strategy uses, and spots in hikyuu's record shape."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import hkrt
from hkrt import agent as agent_module
from hkrt._hkrt import OrderSide, OrderStatus
from hkrt.broker import OrderBrokerBase, OrderBrokerWrap, crtOB
from hkrt.broker.mail import MailOrderBroker
from hkrt.feed.transport import SpotPublisher
from hkrt.strategy import Strategy

try:  # the local SMTP server (aiosmtpd, a dev dependency) and its certificate fixture
    from test_broker_mail import USER, client_context, smtp_server
    from test_broker_mail import cert as cert  # the fixture, used by name

    HAVE_SMTP = True
except pytest.skip.Exception:  # only the mail tests need it
    USER, HAVE_SMTP = "bot@example.com", False
needs_smtp = pytest.mark.skipif(not HAVE_SMTP, reason="aiosmtpd runs the local SMTP server")

pytestmark = pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")

T0 = dt.datetime(2026, 11, 20, 14, 50)
PWD = "hk-app-pw-7731"  # the mail account's app password in these tests


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# ------------------------------------------------------------- MailOrderBroker(host, sender, pwd, receivers)
@needs_smtp
def test_hikyuus_positional_mail_broker_logs_in_as_the_sender_and_mails_every_receiver(cert) -> None:
    with smtp_server("ssl", cert) as (inbox, port):
        b = MailOrderBroker("127.0.0.1", USER, "s3cret-app-pw", ["alice@example.com", "bob@example.org"],
                            port=port, ssl_context=client_context(cert), timeout=5.0)  # fmt: skip
        r = b.buy(T0, "SH", "600000", 10.0, 1000)
        s = b.sell(T0, "SZ", "000001", 12.5, 300)
    assert r.status == OrderStatus.Sent and s.status == OrderStatus.Sent, (r.error, s.error)
    assert inbox.logins == [(USER, True), (USER, True)]  # the sender is the login, as in hikyuu
    assert [(frm, rcpt) for frm, rcpt, _ in inbox.envelopes] == [
        (USER, ["alice@example.com", "bob@example.org"]),
        (USER, ["alice@example.com", "bob@example.org"]),
    ]
    first = inbox.messages()[0]
    assert first["From"] == USER and first["Subject"] == "[hkrt] BUY SH600000 1000 @ 10.00"
    assert str(first["To"]) == "alice@example.com, bob@example.org"  # no leading comma (hikyuu's had one)
    assert [x.side for x in b.records] == [OrderSide.Buy, OrderSide.Sell]


@needs_smtp
def test_hikyuus_form_defaults_to_tls_and_can_still_speak_plain_smtp_when_asked(cert) -> None:
    b = MailOrderBroker("smtp.qq.com", "12345@qq.com", PWD, "me@example.com, partner@example.com")
    assert (b.port, b.security, b.sender) == (465, "ssl", "12345@qq.com")
    assert b.recipients == ["me@example.com", "partner@example.com"]  # a comma-separated string works too
    assert PWD not in repr(b) and PWD not in str(b)
    by_name = MailOrderBroker(host="smtp.163.com", sender="u@163.com", pwd=PWD, receivers=["x@example.com"])
    assert (by_name.port, by_name.sender, by_name.recipients) == (465, "u@163.com", ["x@example.com"])
    # hikyuu's exact transport, plain SMTP with a login, is refused beyond loopback without allow_insecure ...
    with pytest.raises(ValueError, match="clear text"):
        MailOrderBroker("smtp.qq.com", "12345@qq.com", PWD, ["me@example.com"], port=25, security="none")
    exact = MailOrderBroker("smtp.qq.com", "1@qq.com", PWD, ["a@b.cn"], port=25, security="none", allow_insecure=True)
    assert (exact.port, exact.security) == (25, "none")
    # ... and works against a plain server on loopback
    with smtp_server("plain") as (inbox, port):
        plain = MailOrderBroker("127.0.0.1", USER, "s3cret-app-pw", ["ops@example.com"], port=port, security="none")
        assert plain.buy(T0, "SH", "600000", 10.0, 100).status == OrderStatus.Sent
    assert inbox.logins == [(USER, True)] and inbox.envelopes[0][1] == ["ops@example.com"]


@needs_smtp
def test_a_wrong_hikyuu_password_fails_without_showing_it(cert, caplog: pytest.LogCaptureFixture) -> None:
    with smtp_server("ssl", cert) as (inbox, port), caplog.at_level(logging.DEBUG):
        b = MailOrderBroker("127.0.0.1", USER, PWD, [USER], port=port, ssl_context=client_context(cert), timeout=5.0)
        r = b.buy(T0, "SH", "600000", 10.0, 100)
    assert r.status == OrderStatus.Failed and f"login as {USER!r} refused" in r.error
    assert inbox.envelopes == []
    assert PWD not in r.error and PWD not in caplog.text and PWD not in b.last_error


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        (("smtp.qq.com", "me@qq.com", PWD), {}, TypeError, r"hikyuu's 4 positional arguments .* got 3"),
        (("smtp.qq.com", "me@qq.com"), {"user": "me@qq.com", "password": PWD, "to": "a@b.cn"}, TypeError,
         r"2nd argument is not a port"),
        (("smtp.qq.com", "me@qq.com", PWD, ["a@b.cn"]), {"user": "me@qq.com"}, TypeError, r"mixed with user="),
        (("smtp.qq.com", "me@qq.com", PWD, ["a@b.cn"]), {"to": "c@d.cn"}, TypeError, r"mixed with to="),
        (("smtp.qq.com", "me@qq.com", PWD, ["a@b.cn"]), {"pwd": PWD}, TypeError, r"pwd given both"),
        (("smtp.qq.com", 465, PWD, ["a@b.cn"]), {}, TypeError, r"a port \(465\) where hikyuu's form has the sender"),
        (("smtp.qq.com", "me@qq.com", PWD, []), {}, ValueError, r"receivers missing or empty"),
        (("smtp.qq.com",), {"sender": "me@qq.com", "pwd": PWD}, ValueError, r"receivers missing or empty"),
        (("smtp.qq.com",), {"to": "a@b.cn"}, TypeError, r"user= and password= are required"),
        (("smtp.qq.com", 465), {"port": 465, "user": None, "password": None, "to": "a@b.cn"}, TypeError,
         r"port given both"),
    ],
)  # fmt: skip
def test_an_ambiguous_mail_call_is_one_clear_error_without_the_password(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match) as exc:
        MailOrderBroker(*args, **kwargs)
    assert PWD not in str(exc.value) and "\n" not in str(exc.value)


def test_hkrts_own_mail_forms_are_unchanged() -> None:
    b = MailOrderBroker("127.0.0.1", 2525, user=None, password=None, sender="hkrt@example.com", to="a@b.cn",
                        security="none")  # fmt: skip
    assert (b.port, b.sender, b.recipients) == (2525, "hkrt@example.com", ["a@b.cn"])
    assert MailOrderBroker("smtp.qq.com", "465", user="u@qq.com", password=PWD, to="a@b.cn").port == 465
    assert MailOrderBroker.from_config({"host": "smtp.qq.com", "user": "u@qq.com", "password": "p", "to": "a@b.cn"})


# ---------------------------------------------------------------------------- crtOB: hikyuu's broker generations
class ThreeArgBroker:
    """hikyuu's first broker signature."""

    def __init__(self) -> None:
        self.got: list[tuple] = []

    def buy(self, code, price, num):
        self.got.append(("buy", code, price, num))

    def sell(self, code, price, num):
        self.got.append(("sell", code, price, num))
        return "S-1"


class SevenArgBroker:
    """hikyuu's signature before ``remark`` was added."""

    def __init__(self) -> None:
        self.got: list[tuple] = []

    def buy(self, market, code, price, num, stoploss, goal_price, part_from):
        self.got.append(("buy", market, code, price, num, stoploss, goal_price, part_from))

    def sell(self, market, code, price, num, stoploss, goal_price, part_from):
        raise ConnectionError("terminal offline")


def strategy_with(broker: object) -> Strategy:
    """A strategy whose orders go through crtOB and the C++ OrderBrokerBase, as in a live run."""
    return Strategy(["SH600000"], brokers=[broker], cash=100_000)


def test_crtob_three_argument_broker_gets_the_symbol_price_and_shares() -> None:
    plain = ThreeArgBroker()
    stg = strategy_with(plain)
    (ob,) = stg.brokers
    assert isinstance(ob, OrderBrokerWrap) and ob.plans["buy"].arity == 3
    ticket = stg.order("SH600000", 1000, price=10.5)
    assert [r.status for r in ticket.results] == [OrderStatus.Sent]
    assert plain.got == [("buy", "SH600000", 10.5, 1000.0)]
    # Sent by a broker that reports no fills: the order stays submitted and the book waits for fills
    assert ticket.status == "submitted" and stg.book.held("SH600000") == 0
    s = ob.sell(T0, "SZ", "000001", 8.0, 200, 7.0, 9.0, 1, "ignored by a 3-argument broker")
    assert (s.status, s.order_id) == (OrderStatus.Sent, "S-1")
    assert plain.got[-1] == ("sell", "SZ000001", 8.0, 200.0)
    assert [(x.side, x.code, x.result.status) for x in ob.records] == [
        (OrderSide.Buy, "600000", OrderStatus.Sent),
        (OrderSide.Sell, "000001", OrderStatus.Sent),
    ]


def test_crtob_seven_argument_broker_gets_hikyuus_arguments_without_remark() -> None:
    plain = SevenArgBroker()
    stg = strategy_with(plain)
    ticket = stg.order("SH600000", 500, price=10.0, stoploss=9.0, goal_price=12.0, remark="not in 7 args")
    assert ticket.results[0].status == OrderStatus.Sent
    assert plain.got == [("buy", "SH", "600000", 10.0, 500.0, 9.0, 12.0, 0)]
    (ob,) = stg.brokers
    failed = ob.sell(T0, "SH", "600000", 10.2, 500, 9.0, 12.0, 2)
    assert failed.status == OrderStatus.Failed and failed.error == "ConnectionError: terminal offline"
    assert ob.records[-1].result.status == OrderStatus.Failed


def test_crtob_reads_each_methods_own_form_and_passes_the_datetime_when_asked() -> None:
    class Mixed:
        def __init__(self) -> None:
            self.got: list[tuple] = []

        def buy(self, datetime, code, price, num):  # 3 order arguments after the datetime
            self.got.append((datetime, code, price, num))

        def sell(self, market, code, price, num, **kwargs):  # 4 arguments, the datetime by keyword
            self.got.append((kwargs["datetime"], market, code, price, num))

    m = Mixed()
    ob = crtOB(m, "mixed")
    assert ob.buy(T0, "BJ", "830799", 5.0, 300).ok and ob.sell(T0, "SH", "600000", 9.0, 100).ok
    assert m.got == [(T0, "BJ830799", 5.0, 300.0), (T0, "SH", "600000", 9.0, 100.0)]


@pytest.mark.parametrize(
    ("buy", "match"),
    [
        (lambda code, price: None, r"takes 2 order argument\(s\)"),
        (lambda m, c, p, n, s, g, f, r, extra: None, r"cannot take an order .* missing a required argument: 'extra'"),
        (lambda m, c, p, n, *, account: None, r"missing a required argument: 'account'"),
    ],
)
def test_crtob_refuses_a_method_it_cannot_call_when_wrapping(buy, match) -> None:
    class Bad:
        def sell(self, *args):
            pass

    bad = Bad()
    bad.buy = buy  # type: ignore[attr-defined]
    with pytest.raises(TypeError, match=match):
        crtOB(bad)


def test_crtob_returns_a_broker_unchanged() -> None:
    paper = hkrt.TestOrderBroker(cash=1.0)
    assert crtOB(paper) is paper and isinstance(paper, OrderBrokerBase)


# ---------------------------------------------------------------------------- start_spot_agent & co.
@pytest.fixture
def ipc_address(tmp_path: Path) -> Iterator[str]:
    yield f"ipc://{tmp_path / 'feed.ipc'}"
    agent_module.release_spot_agent()  # whatever a test left running


def one_spot(close: float = 10.1) -> hkrt.Spot:
    return hkrt.Spot("SH600000", dt.datetime(2026, 11, 20, 9, 30, 5), open=10.0, high=10.2, low=9.9, close=close,
                     volume=1_000, amount=10_100.0)  # fmt: skip


def test_start_spot_agent_positional_hikyuu_form_logs_cycles_and_reports_status(
    ipc_address: str, caplog: pytest.LogCaptureFixture
) -> None:
    assert not agent_module.spot_agent_is_running() and not agent_module.spot_agent_is_connected()
    caplog.set_level(logging.INFO, logger="hkrt.agent.spot_agent.cycles")
    with SpotPublisher(ipc_address, heartbeat_interval=0.2) as pub:
        agent = agent_module.start_spot_agent(True, 2, ipc_address)  # hikyuu: (print, worker_num, addr)
        assert agent is agent_module.get_spot_agent() and agent.address == ipc_address
        assert agent._engine.shards == 2  # worker_num -> shards
        assert agent_module.spot_agent_is_running()
        assert pub.wait_for_subscribers(1, timeout=10)
        wait_until(agent_module.spot_agent_is_connected)  # a heartbeat was heard
        pub.publish([one_spot()])
        wait_until(lambda: any(r.name == "hkrt.agent.spot_agent.cycles" for r in caplog.records))
        line = next(r for r in caplog.records if r.name == "hkrt.agent.spot_agent.cycles")
        assert line.levelno == logging.INFO and line.getMessage() == "spot cycle received"
        assert (line.cycle_id, line.spots, line.parts, line.complete) == (1, 1, "1/1", True)
        assert not agent_module.spot_agent_is_connected(within=0.0)  # "recently" is a bound the caller can set
    # the publisher is gone: its pipe closes, and the agent is running but no longer connected
    wait_until(lambda: not agent_module.spot_agent_is_connected())
    assert agent_module.spot_agent_is_running()
    with pytest.raises(RuntimeError, match="already running"):
        agent_module.start_spot_agent(addr=ipc_address)
    agent_module.stop_spot_agent()
    assert not agent_module.spot_agent_is_running() and agent_module.get_spot_agent() is agent
    agent_module.release_spot_agent()
    assert agent_module.get_spot_agent() is None


def test_a_connected_publisher_that_says_nothing_is_not_connected(ipc_address: str) -> None:
    with SpotPublisher(ipc_address, heartbeat_interval=0) as pub:  # no heartbeats: silence is real
        agent = agent_module.start_spot_agent(print=False, worker_num=None, addr=ipc_address, ktypes=["MIN"])
        assert pub.wait_for_subscribers(1, timeout=10)
        assert agent.stats()["transport"]["connected"] == 1
        assert not agent_module.spot_agent_is_connected()  # a pipe, but nothing heard yet
        pub.publish([one_spot()])
        wait_until(agent_module.spot_agent_is_connected)
    agent_module.stop_spot_agent()
    assert not agent_module.spot_agent_is_connected()


def test_print_warns_when_its_lines_would_not_show(ipc_address: str, caplog: pytest.LogCaptureFixture) -> None:
    cycles = logging.getLogger("hkrt.agent.spot_agent.cycles")
    before = cycles.level
    cycles.setLevel(logging.WARNING)
    try:
        with caplog.at_level(logging.WARNING, logger="hkrt.agent"):
            agent_module.start_spot_agent(print=True, addr=ipc_address)
    finally:
        cycles.setLevel(before)
    assert "configure_logging('INFO')" in caplog.text
    agent_module.release_spot_agent()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="hkrt.agent"):
        agent_module.start_spot_agent(ipc_address)  # hkrt's form, print off: no such warning
    assert "configure_logging" not in caplog.text
    assert agent_module.get_spot_agent().address == ipc_address


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "match"),
    [
        ((True, 1, "ipc:///tmp/a", "extra"), {}, TypeError, r"too many positional arguments"),
        ((True,), {"print": True}, TypeError, r"print given both"),
        (("ipc:///tmp/a", 2), {}, TypeError, r"unexpected positional arguments"),
        ((), {"print": "yes"}, TypeError, r"print must be True or False"),
        ((), {"worker_num": 0}, ValueError, r"worker_num must be a whole number >= 1"),
        ((), {"worker_num": 2, "shards": 3}, ValueError, r"worker_num=2 and shards=3 disagree"),
        ((), {"addr": "ipc:///tmp/a", "address": "ipc:///tmp/b"}, ValueError, r"two addresses"),
    ],
)
def test_start_spot_agent_bad_arguments_are_one_clear_error(args, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        agent_module.start_spot_agent(*args, **kwargs)
    assert not agent_module.spot_agent_is_running()


# ---------------------------------------------------------------------------- hikyuu's spot record shape
def test_a_spot_in_hikyuus_record_shape_and_units() -> None:
    spot = hkrt.Spot("SZ000001", dt.datetime(2026, 11, 20, 10, 0, 5), name="平安银行", yesterday_close=11.0,
                     open=11.1, high=11.5, low=10.9, close=11.3, volume=1_234_550.0, amount=13_950_000.0,
                     bid=[11.29, 11.28], bid_volume=[500.0, 250.0], ask=[11.3], ask_volume=[1_200.0])  # fmt: skip
    (rec,) = agent_module.hikyuu_spot_records([spot])
    assert tuple(rec) == agent_module.HIKYUU_SPOT_FIELDS
    assert rec == {
        "market": "SZ", "code": "000001", "name": "平安银行", "datetime": dt.datetime(2026, 11, 20, 10, 0, 5),
        "yesterday_close": 11.0, "open": 11.1, "high": 11.5, "low": 10.9, "close": 11.3,
        "amount": pytest.approx(1_395.0),  # 万元
        "volume": pytest.approx(12_345.5),  # lots of 100 shares (odd lots stay fractional)
        # five book levels, as hikyuu's level-1 fetchers gave; an empty level is 0
        "bid": [11.29, 11.28, 0.0, 0.0, 0.0], "bid_amount": [5.0, 2.5, 0.0, 0.0, 0.0],
        "ask": [11.3, 0.0, 0.0, 0.0, 0.0], "ask_amount": [12.0, 0.0, 0.0, 0.0, 0.0],
    }  # fmt: skip


def test_get_spot_in_hikyuus_shape_from_the_local_quote_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """get_spot(shape="hikyuu") over real HTTP (hkrt.testing.QuoteServer on loopback, Sina's format, which
    carries shares and yuan exactly): hikyuu's field names, lots and 万元, and batch_func gets the same."""
    from hkrt.fetcher import get_spot
    from hkrt.testing import QuoteServer

    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)  # loopback requests must not go to a proxy
    when = dt.datetime(2026, 11, 20, 10, 15, 30)
    market = [
        hkrt.Spot("SZ000001", when, name="平安银行", yesterday_close=11.0, open=11.1, high=11.5, low=10.9,
                  close=11.3, volume=1_234_550, amount=13_950_000.0, bid=[11.29, 11.28], bid_volume=[500, 250],
                  ask=[11.3], ask_volume=[1_200]),
        hkrt.Spot("SH600000", when, name="浦发银行", yesterday_close=10.0, open=10.0, high=10.3, low=9.9,
                  close=10.2, volume=2_000_000, amount=20_400_000.0, bid=[10.19], bid_volume=[3_000],
                  ask=[10.2], ask_volume=[700]),
    ]  # fmt: skip
    fast = {"rate_limit": 0, "backoff": 0.01, "backoff_max": 0.02, "timeout": 2.0}
    batches: list[list[dict]] = []
    with QuoteServer(market) as server:
        url = server.base_url("sina")
        records = get_spot(["sz000001", "sh600000"], "sina", base_url=url, batch_func=batches.append,
                           shape="hikyuu", **fast)  # fmt: skip
        spots = get_spot(["sz000001"], "sina", base_url=url, **fast)  # hkrt's shape stays the default
        with pytest.raises(ValueError, match=r"^unknown spot shape 'hku': expected one of hkrt, hikyuu$"):
            get_spot(["sz000001"], "sina", base_url=url, shape="hku", **fast)
        assert server.request_count("sina") == 2  # the bad shape was refused before any request
    assert [tuple(r) for r in records] == [agent_module.HIKYUU_SPOT_FIELDS] * 2
    first, second = records
    assert (first["market"], first["code"], first["name"], first["datetime"]) == ("SZ", "000001", "平安银行", when)
    assert (first["yesterday_close"], first["open"], first["high"], first["low"], first["close"]) == (
        11.0, 11.1, 11.5, 10.9, 11.3)  # fmt: skip
    # 1,234,550 shares = 12,345.5 lots; 13,950,000 yuan = 1,395 万元; book sizes 500, 250, 1,200 shares in lots
    assert (first["volume"], first["amount"]) == (pytest.approx(12_345.5), pytest.approx(1_395.0))
    assert first["bid"] == [11.29, 11.28, 0.0, 0.0, 0.0] and first["ask"] == [11.3, 0.0, 0.0, 0.0, 0.0]
    assert first["bid_amount"] == [5.0, 2.5, 0.0, 0.0, 0.0] and first["ask_amount"] == [12.0, 0.0, 0.0, 0.0, 0.0]
    # 2,000,000 shares = 20,000 lots; 20,400,000 yuan = 2,040 万元; 3,000 and 700 shares = 30 and 7 lots
    assert (second["code"], second["volume"], second["amount"]) == ("600000", 20_000.0, 2_040.0)
    assert (second["bid_amount"][0], second["ask_amount"][0]) == (30.0, 7.0)
    assert [r for batch in batches for r in batch] == records  # batch_func got hikyuu's records, not Spots
    assert isinstance(spots[0], hkrt.Spot) and spots[0].volume == 1_234_550


def test_crtob_loads_no_mail_or_venue_module() -> None:
    """A strategy that wraps its own broker does not pay for SMTP, TLS or a venue's client."""
    code = (
        "import sys, hkrt.broker.wrap, hkrt.broker.paper\n"
        "heavy = ('smtplib', 'hkrt.broker.mail', 'hkrt.broker.qmt', 'hkrt.broker.easytrader_broker')\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert out.stdout.strip() == ""
    import hkrt.broker as broker_package

    assert broker_package.MailOrderBroker is MailOrderBroker  # still reachable, loaded on first use
    with pytest.raises(AttributeError, match="no attribute 'MailBroker'"):
        broker_package.MailBroker  # noqa: B018
