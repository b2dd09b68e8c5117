"""The QMT source: tick mapping and units, pull and push through the real xtquant.xtdata.

xtquant's Python layer (the PyPI wheel) runs unmodified over fake_xtquant, a fake
of its Windows-only native ``datacenter`` module that answers full-tick requests as JSON and
pushes whole-quote callbacks as BSON bytes, as the real one does (docs/qmt.md).
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

import hkrt
from fake_xtquant import FakeMiniQmt, china_ms, import_xtquant_quietly, installed, make_tick
from hkrt.fetcher import qmt
from hkrt.fetcher.qmt import QmtClient, QmtConfig, QmtPushClient, parse_ticks, tick_to_spot

T0 = dt.datetime(2026, 11, 20, 10, 0, 3)  # a Friday, continuous trading
FAST = QmtConfig(subscribe_pause=0.0, watchdog_timeout=0.3)


def needs_xtquant() -> None:
    """Skip without the xtquant wheel; import it without its update check (a request to pypi.org)."""
    if importlib.util.find_spec("xtquant") is None:
        pytest.skip("the xtquant wheel (pip install xtquant, in the test extra) runs the QMT seam tests")
    import_xtquant_quietly()


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.005)
    return condition()


def stock(when: dt.datetime = T0, price: float = 10.5, lots: int = 1_000, **kw) -> dict:
    return make_tick(when, price, volume=lots, pvolume=kw.pop("pvolume", lots * 100 + 37), **kw)


MARKET = {
    "600000.SH": stock(),
    "600036.SH": stock(price=35.2),
    "000001.SZ": stock(price=11.39),
    "300750.SZ": stock(price=180.0),
    "688981.SH": stock(price=88.8),
    "430047.BJ": stock(price=12.3),
    "920118.BJ": stock(price=25.0),
}


# ---------------------------------------------------------------------------- mapping and units
def test_sz_stock_from_the_documented_sample() -> None:
    # The subscribe_whole_quote docstring sample (xtquant 250807): 000001.SZ at 2024-12-02 13:55:54.
    tick = {
        "time": 1733118954000, "lastPrice": 11.39, "open": 11.39, "high": 11.4, "low": 11.31, "lastClose": 11.38,
        "amount": 862127800.0, "volume": 758613, "pvolume": 75861284, "stockStatus": 3, "openInt": 13,
        "transactionNum": 37062, "lastSettlementPrice": 11.38, "settlementPrice": 0.0, "pe": 0.0,
        "askPrice": [11.4, 11.41, 11.42, 11.43, 11.44], "bidPrice": [11.39, 11.38, 11.370000000000001, 11.36, 11.35],
        "askVol": [10929, 12401, 6671, 4555, 6708], "bidVol": [2429, 7127, 7146, 9111, 12189],
        "volRatio": 0.0, "speed1Min": 0.0, "speed5Min": 0.0,
    }  # fmt: skip
    spot = tick_to_spot("000001.SZ", tick)
    assert spot.symbol == "SZ000001"
    assert spot.datetime == dt.datetime(2024, 12, 2, 13, 55, 54)  # UTC epoch ms + 8 h, naive
    assert (spot.open, spot.high, spot.low, spot.close, spot.yesterday_close) == (11.39, 11.4, 11.31, 11.39, 11.38)
    assert spot.volume == 75_861_284  # pvolume: shares, not volume (lots)
    assert spot.amount == 862_127_800.0  # yuan as is
    assert spot.bid[:2] == [11.39, 11.38]
    assert spot.bid_volume == [242_900, 712_700, 714_600, 911_100, 1_218_900]  # lots x 100
    assert spot.ask_volume[0] == 1_092_900
    assert spot.name == ""


@pytest.mark.parametrize(
    ("code", "symbol"),
    [("600000.SH", "SH600000"), ("688981.SH", "SH688981"), ("300750.SZ", "SZ300750"), ("430047.BJ", "BJ430047"),
     ("920118.BJ", "BJ920118")],
)  # fmt: skip
def test_stocks_of_every_board_take_pvolume_in_shares(code: str, symbol: str) -> None:
    # STAR and BJ trade in single shares above the minimum: pvolume is not a multiple of 100.
    tick = stock(lots=12_345, pvolume=1_234_567, price=20.0, bid_vol=[3, 2, 1, 0, 0])
    spot = tick_to_spot(code, tick)
    assert spot.symbol == symbol
    assert spot.volume == 1_234_567
    assert spot.amount == round(1_234_567 * 20.0, 2)
    assert spot.bid_volume == [300, 200, 100, 0, 0]
    assert spot.datetime == T0


def test_etf_whose_pvolume_equals_volume_counts_lots() -> None:
    # ContextInfo.get_full_tick sample for 510050.SH: pvolume == volume, amount / (price x volume) ≈ 100.
    tick = {
        "timetag": "20231106 15:00:04", "lastPrice": 2.533, "open": 2.528, "high": 2.5380000000000003, "low": 2.521,
        "lastClose": 2.513, "amount": 1442588037.0, "volume": 5701929, "pvolume": 5701929, "stockStatus": 5,
        "openInt": 15, "askPrice": [2.533, 2.534, 2.535, 0, 0], "askVol": [100, 20, 3, 0, 0],
    }  # fmt: skip
    spot = tick_to_spot("510050.SH", tick)
    assert spot.datetime == dt.datetime(2023, 11, 6, 15, 0, 4)  # timetag: already Beijing time
    assert spot.volume == 570_192_900
    assert spot.ask_volume[:3] == [10_000, 2_000, 300]
    assert 0.9 < spot.amount / (spot.volume * spot.close) < 1.1


def test_fund_whose_volumes_are_already_shares_is_taken_as_is() -> None:
    tick = make_tick(T0, 1.2, volume=50_000, pvolume=50_000, amount=60_100.0, bid_vol=[7, 0, 0, 0, 0])
    spot = tick_to_spot("159915.SZ", tick)
    assert spot.volume == 50_000
    assert spot.bid_volume[0] == 7


def test_etf_with_pvolume_in_shares() -> None:
    spot = tick_to_spot("510300.SH", make_tick(T0, 4.0, volume=20_000, pvolume=2_000_000))
    assert spot.volume == 2_000_000


def test_index_volume_policy() -> None:
    tick = make_tick(T0, 3950.12, volume=150_000_000, pvolume=150_000_000, amount=2.1e11)
    assert tick_to_spot("000300.SH", tick).volume == 15_000_000_000  # lots by default
    assert tick_to_spot("000300.SH", tick, index_volume_in_lots=False).volume == 150_000_000
    assert tick_to_spot("399001.SZ", tick).volume == 15_000_000_000
    shares = make_tick(T0, 3950.12, volume=150_000_000, pvolume=15_000_000_000, amount=2.1e11)
    assert tick_to_spot("000300.SH", shares).volume == 15_000_000_000  # pvolume >> volume: shares


def test_suspended_and_pre_trade_ticks_pass_through() -> None:
    suspended = make_tick(T0, 0.0, volume=0, pvolume=0, amount=0.0, open=0.0, high=0.0, low=0.0, last_close=9.87)
    spot = tick_to_spot("600001.SH", suspended)
    assert (spot.close, spot.volume, spot.amount, spot.yesterday_close) == (0.0, 0.0, 0.0, 9.87)
    odd_lots = make_tick(T0, 9.0, volume=0, pvolume=50)  # 50 shares traded: 0 whole lots
    assert tick_to_spot("600002.SH", odd_lots).volume == 50
    agent = hkrt.SpotAgent()
    agent.ingest([spot])
    assert agent.stats()["accepted"] == 1  # accepted, draws no bar (aggregation.md §5)


def test_book_is_cut_to_five_levels_and_missing_fields_default() -> None:
    tick = {"time": china_ms(T0), "lastPrice": 10.0, "volume": 10, "pvolume": 1000, "amount": 10_000.0,
            "bidPrice": [10.0 - i / 100 for i in range(10)], "bidVol": list(range(1, 11))}  # fmt: skip
    spot = tick_to_spot("600000.SH", tick)
    assert spot.bid_volume == [100, 200, 300, 400, 500]
    assert spot.ask == [0.0] * 5 and spot.open == 0.0


@pytest.mark.parametrize("code", ["IF2412.IF", "00700.HK", "BK0001.BKZS", "SH", "600000"])
def test_non_a_share_codes_are_rejected_with_a_reason(code: str) -> None:
    with pytest.raises(ValueError, match="not an A-share code"):
        tick_to_spot(code, stock())
    result = parse_ticks({code: stock(), "600000.SH": stock()})
    assert [s.symbol for s in result.spots] == ["SH600000"]
    assert list(result.errors) == [code]


@pytest.mark.parametrize(
    ("tick", "reason"),
    [({"lastPrice": 1.0}, "neither a time"), ({"time": china_ms(T0), "lastPrice": "x"}, "lastPrice is not a number"),
     ({"timetag": "2023-11-06"}, "timetag"), ({"time": china_ms(T0), "bidVol": 5}, "not a list"), (None, "not a dict")],
)  # fmt: skip
def test_malformed_ticks_are_rejected_not_raised(tick: object, reason: str) -> None:
    result = parse_ticks({"600000.SH": tick})
    assert result.spots == [] and reason in result.errors["SH600000"]


def test_mapped_spots_make_bars_in_shares() -> None:
    agent = hkrt.SpotAgent()
    agent.ingest(
        [
            tick_to_spot("600000.SH", make_tick(T0, 10.0, volume=100, pvolume=10_000, amount=100_000.0)),
            tick_to_spot("600000.SH", make_tick(T0 + dt.timedelta(seconds=3), 10.1, volume=150, pvolume=15_050)),
        ]
    )
    agent.advance_to(dt.datetime(2026, 11, 20, 15, 5))
    day = agent.kdata("SH600000", "DAY")
    assert day["volume"].iloc[-1] == 15_050


def test_codes_in_any_spelling() -> None:
    assert qmt.qmt_code("sh600000") == "600000.SH"
    assert qmt.qmt_code("SZ000001") == "000001.SZ"
    assert qmt.qmt_code("430047.bj") == "430047.BJ"
    assert qmt.qmt_code("sz") == "SZ"
    with pytest.raises(ValueError):
        qmt.qmt_code("IF2412")


def test_config_is_validated() -> None:
    with pytest.raises(ValueError, match="port"):
        QmtConfig(ip="10.0.0.5")
    with pytest.raises(ValueError):
        QmtConfig(subscribe_chunk_size=0)
    with pytest.raises(TypeError, match="unknown QMT option"):
        qmt.get_spot(["600000.SH"], chunk=3)


def test_trading_time_predicate() -> None:
    friday = dt.date(2026, 11, 20)
    assert qmt.china_trading_time(dt.datetime.combine(friday, dt.time(10, 0)))
    assert qmt.china_trading_time(dt.datetime.combine(friday, dt.time(14, 59, 59)))
    assert not qmt.china_trading_time(dt.datetime.combine(friday, dt.time(12, 0)))
    assert not qmt.china_trading_time(dt.datetime.combine(friday, dt.time(9, 27)))
    assert not qmt.china_trading_time(dt.datetime(2026, 11, 21, 10, 0))  # Saturday
    assert not qmt.china_trading_time(dt.datetime(2026, 10, 1, 10, 0))  # National Day


# ---------------------------------------------------------------------------- the real xtdata over the fake
@pytest.fixture
def market() -> Iterator[tuple[FakeMiniQmt, object]]:
    needs_xtquant()
    with installed(FakeMiniQmt(MARKET)) as (server, xtdata):
        yield server, xtdata


@pytest.fixture
def push_clients() -> Iterator[list[QmtPushClient]]:
    clients: list[QmtPushClient] = []
    yield clients
    for client in clients:
        client.stop()


def test_pull_in_chunks_with_batch_func(market) -> None:
    server, _ = market
    batches: list[list[hkrt.Spot]] = []
    codes = ["SH600000", "sh600036", "000001.SZ", "SZ300750", "688981.SH", "BJ430047", "920118.BJ"]
    spots = qmt.get_spot(codes, batch_func=batches.append, pull_chunk_size=3)  # xtquant imported the normal way
    assert server.full_tick_requests == [
        ["600000.SH", "600036.SH", "000001.SZ"],
        ["300750.SZ", "688981.SH", "430047.BJ"],
        ["920118.BJ"],
    ]
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [s.symbol for s in spots] == [hkrt.normalize_symbol(c) for c in codes]
    first = spots[0]
    assert (first.volume, first.datetime, first.close) == (100_037, T0, 10.5)


def test_pull_through_the_fetcher_entry_point(market) -> None:
    from hkrt.fetcher import get_spot

    server, _ = market
    spots = get_spot(["SH600000", "SZ000001", "BJ430047"], source="qmt", pull_chunk_size=2)
    assert [s.symbol for s in spots] == ["SH600000", "SZ000001", "BJ430047"]
    assert len(server.full_tick_requests) == 2


def test_pull_reports_unknown_and_invalid_codes(market) -> None:
    server, xtdata = market
    client = QmtClient(QmtConfig(pull_chunk_size=2), xtdata=xtdata)
    report = client.fetch(["600000.SH", "600999.SH", "not-a-code", "IF2412.IF", "600036.SH"])
    assert server.full_tick_requests == [["600000.SH", "600999.SH"], ["600036.SH"]]  # bad codes never reach QMT
    assert [s.symbol for s in report.spots] == ["SH600000", "SH600036"]
    assert report.unknown == ["SH600999"]  # QMT left it out of its answer
    assert report.invalid == ["not-a-code", "IF2412.IF"]
    assert report.ok and (report.requested, report.batches, report.requests) == (3, 2, 2)
    assert client.stats()["unknown"] == ["SH600999"]


def test_pull_of_a_whole_market_skips_other_instruments(market) -> None:
    server, xtdata = market
    server.set_ticks({"IF2412.IF": stock(price=3900.0), "00700.SH": stock()})  # not A-share codes
    report = qmt.fetch(["SH", "bj"], xtdata=xtdata)
    assert server.full_tick_requests == [["SH", "BJ"]]
    assert {s.symbol for s in report.spots} == {"SH600000", "SH600036", "SH688981", "BJ430047", "BJ920118"}
    assert report.ok and report.unknown == []


def test_pull_reports_a_failed_chunk_and_goes_on(market, monkeypatch) -> None:
    server, xtdata = market
    real = xtdata.get_full_tick
    calls = []

    def flaky(codes):
        calls.append(codes)
        if len(calls) == 1:
            raise Exception("行情服务连接断开")
        return real(codes)

    monkeypatch.setattr(xtdata, "get_full_tick", flaky)
    bad = {"600036.SH": {**stock(), "lastPrice": "n/a"}}
    server.set_ticks(bad)
    batches: list[list[hkrt.Spot]] = []
    report = qmt.fetch(["SH600000", "SZ000001", "SH600036", "SZ300750"], batch_func=batches.append, pull_chunk_size=2)
    assert [f.codes for f in report.failed_batches] == [("SH600000", "SZ000001"), ("SH600036",)]
    assert "连接断开" in report.failed_batches[0].error
    assert "malformed tick (lastPrice is not a number" in report.failed_batches[1].error
    assert [s.symbol for s in report.spots] == ["SZ300750"] and len(batches) == 1


def test_pull_connects_to_a_remote_miniqmt(market) -> None:
    server, xtdata = market
    qmt.get_spot(["600000.SH"], ip="10.1.2.3", port=58610, xtdata=xtdata)
    assert server.addresses == ["10.1.2.3:58610"]


def test_pull_without_qmt_running(market) -> None:
    server, _ = market
    server.accept_connections = False
    with pytest.raises(qmt.QmtConnectionError, match="QMT / miniQMT running"):
        qmt.get_spot(["600000.SH"])


def test_push_subscribes_in_chunks_and_maps_every_push(market, push_clients) -> None:
    server, xtdata = market
    received: list[list[hkrt.Spot]] = []
    config = QmtConfig(subscribe_chunk_size=3, subscribe_pause=0.05, watchdog_timeout=30)
    client = QmtPushClient(config, received.append, xtdata=xtdata, is_trading_time=lambda: True)
    push_clients.append(client)
    started = time.monotonic()
    client.start(list(MARKET))
    assert time.monotonic() - started >= 0.1  # two pauses between three subscribe calls
    assert server.subscribe_requests == [list(MARKET)[:3], list(MARKET)[3:6], list(MARKET)[6:]]
    assert len(client.subscriptions) == 3

    assert server.push() == 3  # the current snapshot first, one callback per subscription
    assert sorted(s.symbol for batch in received for s in batch) == sorted(hkrt.normalize_symbol(c) for c in MARKET)

    received.clear()
    later = T0 + dt.timedelta(seconds=3)
    server.set_ticks({"000001.SZ": stock(later, price=11.41, lots=2_000, pvolume=200_005)})
    assert server.push() == 1  # only the code that changed
    [[spot]] = received
    assert (spot.symbol, spot.datetime, spot.close, spot.volume) == ("SZ000001", later, 11.41, 200_005)
    stats = client.stats()
    assert stats["pushes"] == 4 and stats["spots"] == 8 and stats["resubscriptions"] == 0


def test_push_from_the_native_thread(market, push_clients) -> None:
    server, xtdata = market
    received: list[hkrt.Spot] = []
    threads: set[str] = set()

    def on_spots(spots: list[hkrt.Spot]) -> None:
        threads.add(threading.current_thread().name)
        received.extend(spots)

    client = QmtPushClient(FAST, on_spots, xtdata=xtdata, is_trading_time=lambda: False)
    push_clients.append(client)
    server.start_pushing(0.01)
    client.start(["SH600000", "SZ000001"])
    assert wait_for(lambda: len(received) == 2)
    assert threads == {"fake-xtquant-push"}


def test_watchdog_resubscribes_after_silent_subscriptions(market, push_clients) -> None:
    server, xtdata = market
    received: list[hkrt.Spot] = []
    client = QmtPushClient(FAST, received.extend, xtdata=xtdata, is_trading_time=lambda: True)
    push_clients.append(client)
    client.start(["600000.SH", "000001.SZ"])
    first = client.subscriptions
    server.push()
    assert len(received) == 2

    server.drop_subscriptions()  # miniQMT switched quote servers: the old subscriptions say nothing
    server.start_pushing(0.01)
    assert wait_for(lambda: client.resubscriptions >= 1)
    assert set(first) <= set(server.unsubscribed)  # the dead ones are freed, not piled up
    assert len(server.live_subscriptions()) == 1
    assert wait_for(lambda: len(received) == 4)  # the new subscription pushes its snapshot again
    server.set_ticks({"600000.SH": stock(T0 + dt.timedelta(seconds=6), price=10.6)})
    assert wait_for(lambda: received[-1].close == 10.6)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_watchdog_counts_silence_in_trading_hours_only(market) -> None:
    server, xtdata = market
    clock = FakeClock()
    trading = threading.Event()
    config = QmtConfig(subscribe_pause=0, watchdog_timeout=60)
    client = QmtPushClient(
        config, lambda spots: None, xtdata=xtdata, is_trading_time=trading.is_set, monotonic=clock, watchdog=False
    )
    with client:
        client.start(["600000.SH", "000001.SZ"])
        clock.now += 3600  # an hour without a push, but not in trading hours
        assert not client.check_silence()
        trading.set()
        clock.now += 59  # the silence counts from the open
        assert not client.check_silence()
        server.push()  # a push resets it
        clock.now += 59
        assert not client.check_silence()
        old = client.subscriptions
        clock.now += 1
        assert client.check_silence()  # 60 s silent in trading hours
        assert client.resubscriptions == 1 and client.stats()["resubscriptions"] == 1
        assert sorted(server.unsubscribed) == sorted(old)
        assert list(server.live_subscriptions()) == client.subscriptions != old
        clock.now += 59
        assert not client.check_silence()  # the resubscription restarted the count
        clock.now += 1
        assert client.check_silence() and client.resubscriptions == 2  # still silent: again
        assert len(server.live_subscriptions()) == 1  # never piling up


def test_watchdog_reconnects_after_a_lost_connection(market, push_clients) -> None:
    server, xtdata = market
    received: list[hkrt.Spot] = []
    client = QmtPushClient(FAST, received.extend, xtdata=xtdata, is_trading_time=lambda: True)
    push_clients.append(client)
    client.start(["600000.SH"])
    server.start_pushing(0.01)
    assert wait_for(lambda: len(received) == 1)
    server.disconnect()
    assert wait_for(lambda: client.resubscriptions >= 1)  # xtdata.get_client() reconnects on subscribe
    assert server.connected and len(server.addresses) == 2
    assert wait_for(lambda: len(received) == 2)


def test_stop_unsubscribes_everything(market) -> None:
    server, xtdata = market
    received: list[hkrt.Spot] = []
    client = QmtPushClient(QmtConfig(subscribe_chunk_size=2, subscribe_pause=0), received.extend, xtdata=xtdata)
    client.start(list(MARKET))
    seqs = client.subscriptions
    assert len(seqs) == 4
    client.stop()
    assert sorted(server.unsubscribed) == sorted(seqs)
    assert server.live_subscriptions() == {}
    assert not client.running and client.subscriptions == []
    client.stop()  # idempotent
    assert server.push() == 0 and received == []
    assert not any(t.name == "hkrt-qmt-watchdog" for t in threading.enumerate())


def test_callback_errors_are_counted_not_printed(market, push_clients, capsys) -> None:
    server, xtdata = market

    def broken(spots: list[hkrt.Spot]) -> None:
        raise RuntimeError("boom")

    client = QmtPushClient(FAST, broken, xtdata=xtdata, is_trading_time=lambda: False)
    push_clients.append(client)
    client.start(["SH", "IF2412.IF"])  # the whole SH market; a future is no A-share symbol: not subscribed
    assert client.invalid == ["IF2412.IF"] and server.subscribe_requests == [["SH"]]
    server.set_ticks({"10004567.SH": stock()})  # an option-like code in the market's push
    server.push()
    stats = client.stats()
    assert stats["callback_errors"] == 1
    assert "subscribe callback error" not in capsys.readouterr().out  # xtquant's wrapper saw no exception
    assert stats["errors"] == {"10004567.SH": "not an A-share code (SH/SZ/BJ and six digits)"}
    assert stats["spots"] == 3


def test_push_start_fails_cleanly(market) -> None:
    server, xtdata = market
    server.fail_subscribe = True
    client = QmtPushClient(FAST, lambda spots: None, xtdata=xtdata)
    with pytest.raises(qmt.QmtError, match="subscribe_whole_quote failed"):
        client.start(["600000.SH"])
    assert not client.running
    with pytest.raises(ValueError, match="no valid code"):
        client.start(["nonsense"])


# ---------------------------------------------------------------------------- where xtquant cannot run
def _assert_clear(error: pytest.ExceptionInfo[ImportError]) -> None:
    message = str(error.value)
    assert isinstance(error.value, ImportError)
    assert "Windows-only" in message
    assert "hkrt spot-server --source qmt --tcp" in message
    assert "QMT / miniQMT" in message


def _block(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    package = sys.modules.get("xtquant")
    for name in ("xtquant.xtdata", "xtquant.xtdatacenter", "xtquant.xtconn", "xtquant.datacenter"):
        monkeypatch.delitem(sys.modules, name, raising=False)
        monkeypatch.delattr(package, name.rpartition(".")[2], raising=False)
    monkeypatch.setitem(sys.modules, module, None)  # `import module` now raises ImportError


def test_clear_import_error_without_xtquant(monkeypatch: pytest.MonkeyPatch) -> None:
    _block(monkeypatch, "xtquant")
    with pytest.raises(qmt.QmtUnavailableError) as error:
        qmt.get_spot(["600000.SH"])
    _assert_clear(error)
    with pytest.raises(ImportError) as error:
        QmtPushClient(None, lambda spots: None)
    _assert_clear(error)


def test_clear_import_error_without_the_native_part(monkeypatch: pytest.MonkeyPatch) -> None:
    needs_xtquant()
    _block(monkeypatch, "xtquant.datacenter")  # what Linux gives: the .pyd files cannot load
    with pytest.raises(qmt.QmtUnavailableError) as error:
        QmtClient()
    _assert_clear(error)
    assert "datacenter" in str(error.value)


@pytest.mark.skipif(sys.platform == "win32", reason="the real native module loads on Windows")
def test_the_real_wheel_fails_on_linux_with_the_clear_error() -> None:
    needs_xtquant()
    code = (
        "import sys; sys.modules['requests'] = None\n"  # no update check against pypi.org
        "import hkrt.fetcher.qmt as q\n"
        "try:\n    q.load_xtdata()\nexcept ImportError as e:\n    print(type(e).__name__, e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.startswith("QmtUnavailableError"), out.stdout + out.stderr
    assert "cannot import name 'datacenter'" in out.stdout


def test_import_works_without_xtquant() -> None:
    code = "import sys; sys.modules['xtquant'] = None\nimport hkrt.fetcher.qmt\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr


def test_spot_server_publishes_every_qmt_push_to_an_agent(market, tmp_path) -> None:
    from hkrt.feed.server import SpotServer
    from hkrt.feed.transport import SpotPublisher

    server_qmt, xtdata = market
    address = f"ipc://{tmp_path / 'qmt.ipc'}"
    agent = hkrt.SpotAgent(["MIN", "DAY"]).start(address)
    clients: list[QmtPushClient] = []

    def make_client(on_spots):
        client = QmtPushClient(QmtConfig(subscribe_pause=0.0), on_spots, xtdata=xtdata, is_trading_time=lambda: True)
        clients.append(client)
        return client

    with SpotPublisher(address) as pub:
        pub.wait_for_subscribers(1, timeout=10)
        spot_server = SpotServer(pub)
        runner = threading.Thread(target=spot_server.run_push, args=(make_client, list(MARKET)))
        runner.start()
        assert wait_for(lambda: bool(clients) and len(clients[0].subscriptions) > 0)
        server_qmt.push()
        later = T0 + dt.timedelta(seconds=3)
        server_qmt.set_ticks({"000001.SZ": stock(later, price=11.41, lots=2_000, pvolume=200_005)})
        server_qmt.push()
        assert wait_for(lambda: agent.stats()["transport"]["messages"] >= 2)
        spot_server.stop()
        runner.join(10)
    agent.stop()
    assert not runner.is_alive() and not server_qmt.live_subscriptions()  # unsubscribed on stop
    assert spot_server.status.cycles == agent.stats()["transport"]["cycles"] >= 2
    assert agent.kdata("SZ000001", "DAY").volume.iloc[-1] == 200_005


def test_the_registrys_qmt_source_serves_the_spot_server_by_push(market, tmp_path) -> None:
    """What `hkrt spot-server --source qmt` runs: registry.data_client("qmt") and its serve(), one push a cycle."""
    from hkrt.adapters import registry
    from hkrt.adapters.base import ServePlan
    from hkrt.core.calendar import TradingCalendar
    from hkrt.feed.server import Phase, PullSchedule, SpotServer
    from hkrt.feed.transport import SpotPublisher

    server_qmt, _ = market
    address = f"ipc://{tmp_path / 'qmt.ipc'}"
    agent = hkrt.SpotAgent(["MIN", "DAY"]).start(address)
    client = registry.data_client("qmt", {"mode": "push", "subscribe_pause": "0"})
    calendar = TradingCalendar.china()
    plan = ServePlan(list(MARKET), PullSchedule([Phase.parse("09:15-11:31")], calendar), 3.0, calendar, T0.date())
    with SpotPublisher(address) as pub:
        pub.wait_for_subscribers(1, timeout=10)
        spot_server = SpotServer(pub)
        runner = threading.Thread(target=client.serve, args=(spot_server, plan))
        runner.start()
        assert wait_for(lambda: len(server_qmt.live_subscriptions()) > 0)
        server_qmt.push()
        assert wait_for(lambda: agent.stats()["transport"]["messages"] >= 1)
        spot_server.stop()
        runner.join(10)
    agent.stop()
    assert not runner.is_alive() and not server_qmt.live_subscriptions()  # unsubscribed on stop
    assert spot_server.status.cycles == agent.stats()["transport"]["cycles"] >= 1
    assert pub.changes_only  # a push sends a symbol only when it changed
