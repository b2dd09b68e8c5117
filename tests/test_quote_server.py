"""hkrt.testing.QuoteServer: a real loopback HTTP server in the Sina and Tencent formats."""

from __future__ import annotations

import datetime as dt
import socket
import threading
import time

import httpx
import pytest

import hkrt
from hkrt.fetcher.qq import parse_qq, parse_qq_line
from hkrt.fetcher.sina import SINA_REFERER, parse_sina, parse_sina_line
from hkrt.testing import QuoteServer, parse_request_path, render_body, render_qq, render_sina

WHEN = dt.datetime(2026, 11, 20, 10, 15, 30)
REFERER = {"Referer": SINA_REFERER}


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def quote(symbol: str, name: str, close: float, volume: float, amount: float, **fields: object) -> hkrt.Spot:
    return hkrt.Spot(
        symbol, WHEN, name=name, yesterday_close=round(close * 0.99, 2), open=close, high=close, low=close,
        close=close, volume=volume, amount=amount, **fields,
    )  # fmt: skip


SPOTS = [
    quote("SH600000", "浦发银行", 10.25, 35_678_900, 363_012_346, bid=[10.24, 10.23], bid_volume=[12_300, 45_600]),
    quote("SZ000001", "平安银行", 11.62, 98_765_400, 1_140_567_890, ask=[11.62], ask_volume=[4_000]),
    quote("SH000001", "上证指数", 3902.35, 41_234_567_800, 401_234_567_890),
    quote("SZ399001", "深证成指", 12101.37, 45_678_901_200, 498_765_432_110),
    quote("SH688981", "中芯国际", 88.46, 23_456_800, 2_075_678_901),
    quote("BJ920118", "太湖远大", 16.82, 1_234_600, 20_746_330),
    hkrt.Spot("SZ300068", WHEN, name="南都电源", yesterday_close=20.14),  # suspended
]


@pytest.fixture
def server() -> QuoteServer:
    with QuoteServer(SPOTS) as s:
        yield s


def get(server: QuoteServer, path: str, **headers: str) -> httpx.Response:
    return httpx.get(server.url + path, headers=headers, timeout=5, trust_env=False)


@pytest.mark.parametrize("spot", SPOTS, ids=lambda s: s.symbol)
def test_renderers_invert_the_parsers(spot: hkrt.Spot) -> None:
    line = render_sina(spot)
    assert line.startswith(f'var hq_str_{spot.symbol.lower()}="') and line.endswith('";')
    assert parse_sina_line(spot.symbol, line.split('"')[1]) == spot
    line = render_qq(spot)
    assert len(line.split('"')[1].split("~")) == 88
    assert parse_qq_line(spot.symbol, line.split('"')[1]) == spot


def test_renderers_write_the_wire_units() -> None:
    sh_index = render_sina(SPOTS[2]).split('"')[1].split(",")
    sz_index = render_sina(SPOTS[3]).split('"')[1].split(",")
    assert sh_index[8] == "412345678" and sh_index[3] == "3902.3500"  # SH index: lots, 4 dp
    assert sz_index[8] == "45678901200" and sz_index[3] == "12101.370"  # SZ index: shares, 3 dp
    stock = render_sina(SPOTS[0]).split('"')[1].split(",")
    assert stock[8:12] == ["35678900", "363012346.000", "12300", "10.240"]  # shares, yuan, (volume, price)
    f = render_qq(SPOTS[0]).split('"')[1].split("~")
    assert f[0] == "1" and f[2] == "600000" and f[6] == "356789" and f[9:11] == ["10.24", "123"]  # lots
    assert f[35] == "10.25/356789/363012346" and f[37] == "36301" and f[57] == "36301.2346"  # yuan; 万元
    bj = render_qq(SPOTS[5]).split('"')[1].split("~")
    assert bj[0] == "62" and bj[37] == "2074.63"  # BJ: 万元 with 2 dp
    assert render_qq(SPOTS[2]).split('"')[1].split("~")[61] == "ZS"
    assert render_sina(SPOTS[6]).split('"')[1].split(",")[32] == "03"  # suspended status


def test_sina_answer_gbk_with_unknown_code(server: QuoteServer) -> None:
    r = get(server, "/list=sh600000,sh999999,sz300068", **REFERER)
    assert r.status_code == 200 and "GB18030" in r.headers["content-type"]
    text = r.content.decode("gbk")  # GBK on the wire
    lines = text.splitlines()
    assert lines[0].startswith('var hq_str_sh600000="浦发银行,10.250,')
    assert lines[1] == 'var hq_str_sh999999="";'
    result = parse_sina(text, ["sh600000", "sh999999", "sz300068"])
    assert [s.symbol for s in result.spots] == ["SH600000", "SZ300068"] and result.unknown == ["SH999999"]


def test_sina_403_without_referer(server: QuoteServer) -> None:
    r = get(server, "/list=sh600000")
    assert r.status_code == 403 and r.content == b"Kinsoku jikou desu!"
    assert get(server, "/list=sh600000", Referer="https://example.com/").status_code == 403
    server.require_referer = False
    assert get(server, "/list=sh600000").status_code == 200
    assert get(server, "/q=sh600000").status_code == 200  # Tencent needs none


def test_sina_malformed_token_voids_the_batch(server: QuoteServer) -> None:
    r = get(server, "/list=sh600000,600519sh", **REFERER)
    assert r.text == 'var hq_str_sys_auth="FAILED";\n'
    assert parse_sina(r.text, ["sh600000"]).error is not None


def test_url_forms(server: QuoteServer) -> None:
    assert get(server, "/rn=1732000000000&list=sh600000", **REFERER).text.startswith("var hq_str_sh600000=")
    assert get(server, "/?_=0.123&list=sz000001", **REFERER).text.startswith("var hq_str_sz000001=")
    assert get(server, "/favicon.ico").status_code == 404
    assert parse_request_path("/q=sh600000,sz000001,") == ("qq", ["sh600000", "sz000001"])
    assert parse_request_path("/nothing") == (None, [])


def test_qq_answer_and_none_match(server: QuoteServer) -> None:
    r = get(server, "/q=sh600000,sh999999,bj920118")
    assert r.status_code == 200 and "GBK" in r.headers["content-type"]
    text = r.content.decode("gbk")
    assert [line[:12] for line in text.splitlines()] == ['v_sh600000="', 'v_bj920118="']  # unknown left out
    result = parse_qq(text, ["sh600000", "sh999999", "bj920118"])
    assert result.unknown == ["SH999999"] and len(result.spots) == 2
    assert get(server, "/q=sh999999,sz999999").text == 'v_pv_none_match="1";\n'
    assert get(server, "/q=szSHRQ88,sh600000").text == 'v_pv_none_match="1";\n'


def test_render_body_kinds() -> None:
    assert render_body("qq", [], {}) == 'v_pv_none_match="1";\n'
    with pytest.raises(ValueError):
        render_body("eastmoney", ["sh600000"], {})


def test_counts_tokens_and_headers(server: QuoteServer) -> None:
    get(server, "/list=sh600000", **REFERER)
    get(server, "/q=sh600000,sz000001")
    get(server, "/q=sz000001")
    assert server.counts == {"sina": 1, "qq": 2}
    assert server.request_count("qq") == 2 and server.request_count() == 3
    assert server.tokens("qq") == ["sh600000", "sz000001", "sz000001"]
    assert server.requests[0].headers["Referer"] == SINA_REFERER and server.requests[0].status == 200
    server.clear_requests()
    assert server.request_count() == 0


def test_quote_source_callable_gets_normalised_symbols() -> None:
    asked: list[list[str]] = []

    def source(symbols: list[str]) -> dict[str, hkrt.Spot | None]:
        asked.append(symbols)
        return {"SH600000": SPOTS[0], "SZ000001": None}

    with QuoteServer(source, require_referer=False) as s:
        text = get(s, "/list=sh600000,sz000001").text
        assert asked == [["SH600000", "SZ000001"]]
        assert 'var hq_str_sz000001="";' in text
        s.source = {"600000.SH": SPOTS[1]}  # a mapping, any symbol form; swapped at run time
        assert "平安银行" in get(s, "/list=sh600000").text


def test_fail_next_and_drop_next(server: QuoteServer) -> None:
    server.fail_next(2, status=502)
    assert [get(server, "/q=sh600000").status_code for _ in range(3)] == [502, 502, 200]
    server.drop_next(1)
    with pytest.raises(httpx.RemoteProtocolError):
        get(server, "/q=sh600000")
    assert get(server, "/q=sh600000").status_code == 200
    assert [r.status for r in server.requests] == [502, 502, 200, None, 200]


def test_truncate_and_sys_auth(server: QuoteServer) -> None:
    server.truncate = 5
    full = render_qq(SPOTS[0]) + "\n"
    assert get(server, "/q=sh600000").content == full.encode("gbk")[:-5]
    server.reset_modes()
    server.sys_auth_failed = True
    assert get(server, "/list=sh600000", **REFERER).text == 'var hq_str_sys_auth="FAILED";\n'
    assert get(server, "/q=sh600000").text.startswith("v_sh600000=")  # Sina only
    server.reset_modes()
    assert server.require_referer and not server.sys_auth_failed and server.truncate == 0


def test_slow_only_for_chosen_symbols(server: QuoteServer) -> None:
    server.slow(0.6, symbols=["sz000001"])
    start = time.monotonic()
    get(server, "/q=sh600000")
    assert time.monotonic() - start < 0.5
    start = time.monotonic()
    get(server, "/q=sh600000,sz000001")
    assert time.monotonic() - start >= 0.58
    server.slow(0)


def test_stop_is_quick_with_a_slow_request_pending() -> None:
    server = QuoteServer(SPOTS).start()
    server.slow(30)
    answers: list[object] = []

    def ask() -> None:
        try:
            answers.append(get(server, "/q=sh600000").status_code)
        except httpx.HTTPError as e:
            answers.append(e)

    worker = threading.Thread(target=ask)
    worker.start()
    time.sleep(0.1)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 1.0
    worker.join(timeout=10)
    assert not worker.is_alive() and len(answers) == 1  # woken and answered (or cut off), not left hanging


def test_a_failing_quote_source_answers_500() -> None:
    def broken(symbols: list[str]) -> dict[str, hkrt.Spot | None]:
        raise RuntimeError("market closed")

    with QuoteServer(broken) as s:
        r = get(s, "/q=sh600000")
        assert r.status_code == 500 and "market closed" in r.text
        assert [type(e) for e in s.errors] == [RuntimeError]


def test_base_url_and_lifecycle() -> None:
    server = QuoteServer([])
    with pytest.raises(RuntimeError):
        server.port  # noqa: B018
    with server:
        assert server.base_url("sina") == server.base_url("qq") == f"http://127.0.0.1:{server.port}"
        with pytest.raises(ValueError):
            server.base_url("eastmoney")
    server.stop()  # idempotent


# ------------------------------------------------------------------ hostile modes
def test_trickle_sends_one_byte_at_a_time_for_chosen_symbols(server: QuoteServer) -> None:
    server.trickle(0.2, symbols=["sz000001"])
    start = time.monotonic()
    assert get(server, "/q=sh600000").status_code == 200  # not trickled
    assert time.monotonic() - start < 0.5
    with httpx.stream("GET", server.url + "/q=sz000001", timeout=5, trust_env=False) as r:
        assert r.status_code == 200 and int(r.headers["content-length"]) > 100  # headers at once
        first_bytes = r.iter_raw(4)
        start = time.monotonic()
        assert next(first_bytes) == b"v_sz"
        assert time.monotonic() - start >= 0.6  # four bytes, 0.2 s apart
    server.trickle(0)
    assert get(server, "/q=sz000001").text.startswith("v_sz000001=")


def test_trickled_headers(server: QuoteServer) -> None:
    server.trickle(0.1, headers=True)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as conn:
        conn.sendall(b"GET /q=sh600000 HTTP/1.1\r\nHost: x\r\n\r\n")
        start = time.monotonic()
        head = b""
        while len(head) < 8:
            head += conn.recv(8 - len(head))
        assert head == b"HTTP/1.1" and time.monotonic() - start >= 0.7  # eight bytes, 0.1 s apart
    assert server.requests[-1].sent == 0  # no body byte yet


def test_endless_answer_goes_on_until_the_client_hangs_up(server: QuoteServer) -> None:
    server.endless = True
    with httpx.stream("GET", server.url + "/q=sh600000", timeout=5, trust_env=False) as r:
        assert "content-length" not in r.headers and r.headers["transfer-encoding"] == "chunked"
        received = 0
        for chunk in r.iter_raw():
            received += len(chunk)
            if received > 1_000_000:
                break
    assert received > 1_000_000 and b'v_sh600000="' in chunk  # the quotes, over and over
    deadline = time.monotonic() + 5
    while server.requests[-1].sent < received and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.requests[-1].sent >= received


def test_oversize_announces_the_length_and_sends_it(server: QuoteServer) -> None:
    server.oversize = 5_000_000
    r = get(server, "/q=sh600000")
    assert int(r.headers["content-length"]) == 5_000_000 and len(r.content) == 5_000_000
    assert r.content.startswith(b"v_sh600000=") and r.content.endswith(b" ")
    assert server.requests[-1].sent == 5_000_000


def test_omit_next_leaves_codes_out_of_the_next_answers(server: QuoteServer) -> None:
    server.omit_next(["SZ000001"], count=1)
    assert "sz000001" not in get(server, "/list=sh600000,sz000001", **REFERER).text  # no line at all, not empty
    assert server.requests[-1].omitted == ["SZ000001"]
    assert get(server, "/list=sh600000,sz000001", **REFERER).text.count("var hq_str_") == 2
    assert server.requests[-1].omitted is None


def test_gzip_only_when_the_client_accepts_it(server: QuoteServer) -> None:
    server.gzip = True
    r = get(server, "/q=sh600000", **{"Accept-Encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip" and r.text.startswith("v_sh600000=")
    r = get(server, "/q=sh600000", **{"Accept-Encoding": "identity"})
    assert "content-encoding" not in r.headers and r.text.startswith("v_sh600000=")


@pytest.mark.parametrize("mode", ["endless", "trickle"])
def test_stop_is_quick_with_a_hostile_answer_in_flight(mode: str) -> None:
    server = QuoteServer(SPOTS).start()
    if mode == "endless":
        server.endless = True
    else:
        server.trickle(10.0)
    worker = threading.Thread(target=lambda: _read_some(server))
    worker.start()
    time.sleep(0.2)
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 2.0
    worker.join(timeout=10)
    assert not worker.is_alive()


def _read_some(server: QuoteServer) -> None:
    try:
        with httpx.stream("GET", server.url + "/q=sh600000", timeout=5, trust_env=False) as r:
            for _ in r.iter_raw():
                pass
    except httpx.HTTPError:
        pass
