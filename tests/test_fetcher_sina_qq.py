"""Sina and Tencent/QQ fetchers: the mapping to hkrt units, and the HTTP client over a real loopback server.

The quote bodies below are written by hand from the field tables in docs/fetchers.md (research note
§1.3, §1.4, §2.3): each one is a made-up quote whose arithmetic is consistent (amount / volume lies
between low and high).  No network: every request goes to hkrt.testing.QuoteServer on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import random
import sys
import threading
import time
import types

import pytest

import hkrt
from hkrt import fetcher
from hkrt.fetcher import (
    FetchError,
    QQClient,
    QQConfig,
    RateLimiter,
    RetryPolicy,
    SinaClient,
    SinaConfig,
    get_spot,
    parse_qq,
    parse_qq_line,
    parse_sina,
    parse_sina_line,
    qq_code,
    sina_code,
)
from hkrt.fetcher.base import batched, call_with_retries, decode_body, validate_codes
from hkrt.fetcher.sina import volume_in_lots
from hkrt.testing import QuoteServer

DAY = dt.date(2026, 11, 20)
FAST = {"rate_limit": 0, "backoff": 0.01, "backoff_max": 0.02, "timeout": 2.0}  # no waiting in tests


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback requests must not be sent to a proxy from the environment."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


def at(hhmmss: str) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time.fromisoformat(hhmmss))


def by_symbol(spots: list[hkrt.Spot]) -> dict[str, hkrt.Spot]:
    return {s.symbol: s for s in spots}


# =====================================================================================================
# Sina: hand-written answer lines (33 fields; SH lines end with an empty f33, STAR carries an after-hours
# block, BJ six extra fields).  Book pairs are (volume in shares, price).
# =====================================================================================================
SINA_BOOK_EMPTY_SZ = ",".join(["0,0.000"] * 10)
SINA_LINES = {
    "sh600000": 'var hq_str_sh600000="浦发银行,10.120,10.100,10.250,10.300,10.050,10.240,10.250,35678901,'
    "363012345.678,12300,10.240,45600,10.230,7800,10.220,100,10.210,250000,10.200,9900,10.250,30000,10.260,"
    '4100,10.270,51000,10.280,600,10.290,2026-11-20,14:35:12,00,";',
    "sz000001": 'var hq_str_sz000001="平安银行,11.500,11.480,11.620,11.700,11.450,11.610,11.620,98765432,'
    "1140567890.120,20100,11.610,33300,11.600,1500,11.590,8800,11.580,120000,11.570,4000,11.620,7600,11.630,"
    '20000,11.640,300,11.650,99900,11.660,2026-11-20,15:00:03,00";',
    # SH index: 4 dp, book "0,0", volume in LOTS
    "sh000001": 'var hq_str_sh000001="上证指数,3891.1751,3880.0012,3902.3456,3910.0000,3875.5000,0,0,412345678,'
    '401234567890,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,2026-11-20,15:01:09,00,";',
    # SZ index: 3 dp, volume in SHARES
    "sz399001": 'var hq_str_sz399001="深证成指,12050.123,12000.456,12101.371,12150.000,12010.500,0.000,0.000,'
    f'45678901234,498765432109.876,{SINA_BOOK_EMPTY_SZ},2026-11-20,15:00:03,00";',
    # STAR: odd share volume, after-hours block in f33, updates until ~15:30
    "sh688981": 'var hq_str_sh688981="中芯国际,88.000,87.500,88.460,89.990,87.010,88.450,88.460,23456789,'
    "2075678901.230,1203,88.450,560,88.440,2211,88.430,77,88.420,1000,88.410,845,88.460,1300,88.470,3333,"
    '88.480,200,88.490,1567,88.500,2026-11-20,15:30:02,00,D|1520|134520.00";',
    # BJ (920xxx): 39 fields
    "bj920118": 'var hq_str_bj920118="太湖远大,16.800,16.700,16.820,17.050,16.600,16.810,16.820,1234567,'
    "20746329.550,500,16.810,1234,16.800,300,16.790,2000,16.780,777,16.770,100,16.820,401,16.830,2500,16.840,"
    '60,16.850,9000,16.860,2026-11-20,15:30:05,00,16.8044,0.0000,0,1200000,B,T";',
    # suspended all day: every price 0 but yesterday's close, status 03
    "sz300068": 'var hq_str_sz300068="南都电源,0.000,20.140,0.000,0.000,0.000,0.000,0.000,0,0.000,'
    f'{SINA_BOOK_EMPTY_SZ},2026-11-20,15:00:00,03";',
    # limit-up at 13.20: f7 0 and every ask level "0,0.000"
    "sh603777": 'var hq_str_sh603777="来伊份,12.500,12.000,13.200,13.200,12.480,13.200,0.000,55500000,'
    "718222500.000,6409300,13.200,12000,13.190,500,13.180,3000,13.170,800,13.160,0,0.000,0,0.000,0,0.000,"
    '0,0.000,0,0.000,2026-11-20,14:59:59,00,";',
    "sh999999": 'var hq_str_sh999999="";',
}
SINA_BODY = "\n".join(SINA_LINES.values()) + "\n"


def test_sina_fixture_lines_have_the_documented_field_counts() -> None:
    counts = {k: len(line.split('"')[1].split(",")) for k, line in SINA_LINES.items() if k != "sh999999"}
    assert counts == {
        "sh600000": 34,
        "sz000001": 33,
        "sh000001": 34,
        "sz399001": 33,
        "sh688981": 34,
        "bj920118": 39,
        "sz300068": 33,
        "sh603777": 34,
    }


def test_sina_sh_stock_units() -> None:
    s = by_symbol(parse_sina(SINA_BODY).spots)["SH600000"]
    assert (s.name, s.datetime) == ("浦发银行", at("14:35:12"))
    assert (s.open, s.yesterday_close, s.close, s.high, s.low) == (10.12, 10.10, 10.25, 10.30, 10.05)
    assert s.volume == 35_678_901  # shares, as is (odd lots kept)
    assert s.amount == 363_012_345.678  # yuan, as is
    assert s.bid == [10.24, 10.23, 10.22, 10.21, 10.20]
    assert s.bid_volume == [12300, 45600, 7800, 100, 250000]  # shares
    assert s.ask == [10.25, 10.26, 10.27, 10.28, 10.29]
    assert s.ask_volume == [9900, 30000, 4100, 51000, 600]


def test_sina_sz_stock_units() -> None:
    s = by_symbol(parse_sina(SINA_BODY).spots)["SZ000001"]
    assert (s.symbol, s.name, s.datetime) == ("SZ000001", "平安银行", at("15:00:03"))
    assert (s.volume, s.amount) == (98_765_432, 1_140_567_890.12)
    assert s.bid_volume[0] == 20100 and s.ask_volume[4] == 99900 and s.ask[4] == 11.66


def test_sina_index_volume_trap_sh_lots_sz_shares() -> None:
    spots = by_symbol(parse_sina(SINA_BODY).spots)
    sh, sz = spots["SH000001"], spots["SZ399001"]
    assert sh.volume == 412_345_678 * 100  # SH index: lots on the wire
    assert sh.amount == 401_234_567_890
    assert 5 < sh.amount / sh.volume < 20  # a plausible average share price only in shares
    assert (sh.close, sh.open, sh.high) == (3902.3456, 3891.1751, 3910.0)
    assert sz.volume == 45_678_901_234  # SZ index: shares on the wire
    assert 5 < sz.amount / sz.volume < 20
    assert sh.bid == [0.0] * 5 and sz.ask_volume == [0.0] * 5
    # the same index under both exchanges, same wire number: a factor of 100 apart
    assert volume_in_lots("sh000300") and not volume_in_lots("sz399300") and volume_in_lots("SH580001")
    line = SINA_LINES["sh000001"].split('"')[1]
    assert parse_sina_line("sh000300", line).volume == 100 * parse_sina_line("sz399300", line).volume


def test_sina_star_and_bj() -> None:
    spots = by_symbol(parse_sina(SINA_BODY).spots)
    star, bj = spots["SH688981"], spots["BJ920118"]
    assert (star.volume, star.amount, star.datetime) == (23_456_789, 2_075_678_901.23, at("15:30:02"))
    assert star.bid_volume[0] == 1203  # STAR trades in single shares
    assert 87.01 <= star.amount / star.volume <= 89.99
    assert (bj.symbol, bj.volume, bj.amount) == ("BJ920118", 1_234_567, 20_746_329.55)
    assert (bj.close, bj.ask[4], bj.ask_volume[4]) == (16.82, 16.86, 9000)


def test_sina_suspended_and_limit_up() -> None:
    spots = by_symbol(parse_sina(SINA_BODY).spots)
    halted = spots["SZ300068"]
    assert (halted.close, halted.open, halted.high, halted.low) == (0, 0, 0, 0)  # the engine draws no bar
    assert (halted.volume, halted.amount, halted.yesterday_close) == (0, 0, 20.14)
    up = spots["SH603777"]
    assert (up.close, up.high, up.volume, up.amount) == (13.2, 13.2, 55_500_000, 718_222_500)
    assert up.ask == [0.0] * 5 and up.ask_volume == [0.0] * 5  # an empty side, not a price of 0
    assert (up.bid[0], up.bid_volume[0]) == (13.2, 6_409_300)


def test_sina_unknown_code_and_requested_filter() -> None:
    result = parse_sina(SINA_BODY, requested=["sh999999", "SZ000001", "600000.SH"])
    assert result.unknown == ["SH999999"]
    assert [s.symbol for s in result.spots] == ["SH600000", "SZ000001"]  # only what was asked for
    assert result.errors == {} and result.error is None and not result.truncated


def test_sina_missing_code_malformed_line_and_sys_auth() -> None:
    result = parse_sina(SINA_LINES["sh600000"] + "\n", requested=["sh600000", "sz000001"])
    assert result.errors == {"SZ000001": "missing from the answer"}
    bad = 'var hq_str_sh600001="坏行,abc,1,2";\n' + SINA_LINES["sz000001"]
    result = parse_sina(bad, requested=["sh600001", "sz000001"])
    assert [s.symbol for s in result.spots] == ["SZ000001"] and "malformed" in result.errors["SH600001"]
    result = parse_sina('var hq_str_sys_auth="FAILED";\n', requested=["sh600000"])
    assert result.error is not None and "sys_auth" in result.error and not result.spots
    assert parse_sina("<html>blocked</html>", requested=["sh600000"]).error.startswith("no quote statement")
    assert parse_sina("", requested=[]).error is None


def test_sina_truncated_body_keeps_complete_lines() -> None:
    body = SINA_LINES["sh600000"] + "\n" + SINA_LINES["sz000001"] + "\n" + SINA_LINES["sh688981"][:60]
    result = parse_sina(body, requested=["sh600000", "sz000001", "sh688981", "bj920118"])
    assert result.truncated
    assert [s.symbol for s in result.spots] == ["SH600000", "SZ000001"]
    assert set(result.errors) == {"SH688981", "BJ920118"}
    assert all("cut off" in e for e in result.errors.values())


def test_sina_code() -> None:
    assert [sina_code(c) for c in ("SH600000", "600000.SH", "bj920118")] == ["sh600000", "sh600000", "bj920118"]
    with pytest.raises(ValueError):
        sina_code("600519sh")


# =====================================================================================================
# Tencent/QQ: hand-written f0..f37 for each quote, then a hand-written f38..f87 tail (not read by the
# parser).  Book pairs are (price, volume in lots).  Volumes in lots, f35 price/lots/yuan, f37 万元.
# =====================================================================================================
QQ_STOCK_TAIL = (
    "0.12~5.43~~10.30~10.05~2.48~3010.55~3010.55~0.45~11.11~9.09~1.02~-123~10.17~5.20~5.61~~~0.01~36301.2346~0~0~"
    "   A~GP-A~1.23~2.34~3.45~4.56~5.67~11.50~8.20~6.78~7.89~8.90~29352178996~29352178996~0~0~29352178996~0~0~0~"
    "0~0~CNY~0~___D__F__N~10.20~3~"
)
QQ_INDEX_TAIL = (
    "0.95~~~3910.00~3875.50~0.89~523456.78~612345.67~0.00~-1~-1~1.10~0~9.73~~~~~~40123456.7890~0~0~ ~ZS~"
    "1.0~2.0~3.0~4.0~5.0~4100.00~3000.00~6.0~7.0~8.0~0~0~0~0~0~0~0~0~0~0~CNY~0~~0.00~0~"
)
QQ_BOOK_EMPTY = "~".join(["0.00~0"] * 10)
QQ_HEADS = {
    "sh600000": "1~浦发银行~600000~10.25~10.10~10.12~356789~180000~176789~10.24~123~10.23~456~10.22~78~10.21~1~"
    "10.20~2500~10.25~99~10.26~300~10.27~41~10.28~510~10.29~6~~20261120143512~0.15~1.49~10.30~10.05~"
    "10.25/356789/363012346~356789~36301",
    "sz000001": "51~平安银行~000001~11.62~11.48~11.50~987654~500000~487654~11.61~201~11.60~333~11.59~15~11.58~"
    "88~11.57~1200~11.62~40~11.63~76~11.64~200~11.65~3~11.66~999~~20261120150003~0.14~1.22~11.70~11.45~"
    "11.62/987654/1140567890~987654~114057",
    "sh000001": f"1~上证指数~000001~3902.35~3880.00~3891.18~412345678~0~0~{QQ_BOOK_EMPTY}~~20261120150109~"
    "22.35~0.58~3910.00~3875.50~3902.35/412345678/401234567890~412345678~40123457",
    # SZ index: LOTS on Tencent (Sina gives shares)
    "sz399001": f"51~深证成指~399001~12101.37~12000.46~12050.12~456789012~0~0~{QQ_BOOK_EMPTY}~~20261120150003~"
    "100.91~0.84~12150.00~12010.50~12101.37/456789012/498765432110~456789012~49876543",
    "sh688981": "1~中芯国际~688981~88.46~87.50~88.00~234568~120000~114568~88.45~12~88.44~6~88.43~22~88.42~1~"
    "88.41~10~88.46~8~88.47~13~88.48~33~88.49~2~88.50~16~~20261120153002~0.96~1.10~89.99~87.01~"
    "88.46/234568/2075678901~234568~207568",
    # BJ: market id 62, f37 with 2 dp
    "bj920118": "62~太湖远大~920118~16.82~16.70~16.80~12346~6000~6346~16.81~5~16.80~12~16.79~3~16.78~20~16.77~"
    "8~16.82~1~16.83~4~16.84~25~16.85~1~16.86~90~~20261120153005~0.12~0.72~17.05~16.60~16.82/12346/20746330~"
    "12346~2074.63",
    # suspended: last = yesterday's close, open/high/low 0, no volume
    "sz300068": f"51~南都电源~300068~20.14~20.14~0.00~0~0~0~{QQ_BOOK_EMPTY}~~20261120150000~0.00~0.00~0.00~0.00~"
    "20.14/0/0~0~0",
    # limit-up: every ask level "0.00~0"
    "sh603777": "1~来伊份~603777~13.20~12.00~12.50~555000~400000~155000~13.20~64093~13.19~120~13.18~5~13.17~30~"
    "13.16~8~0.00~0~0.00~0~0.00~0~0.00~0~0.00~0~~20261120145959~1.20~10.00~13.20~12.48~13.20/555000/718222500~"
    "555000~71822",
}


def qq_line(code: str) -> str:
    tail = QQ_INDEX_TAIL if code in ("sh000001", "sz399001") else QQ_STOCK_TAIL
    return f'v_{code}="{QQ_HEADS[code]}~{tail}";'


QQ_BODY = "".join(qq_line(c) + "\n" for c in QQ_HEADS)


def test_qq_fixture_lines_have_88_fields() -> None:
    for code in QQ_HEADS:
        assert len(QQ_HEADS[code].split("~")) == 38, code
        assert len(qq_line(code).split('"')[1].split("~")) == 88, code


def test_qq_sh_stock_units() -> None:
    s = by_symbol(parse_qq(QQ_BODY).spots)["SH600000"]
    assert (s.name, s.datetime) == ("浦发银行", at("14:35:12"))
    assert (s.open, s.yesterday_close, s.close, s.high, s.low) == (10.12, 10.10, 10.25, 10.30, 10.05)
    assert s.volume == 356_789 * 100  # lots -> shares
    assert s.amount == 363_012_346  # f35's exact yuan, not f37's 36301 万元
    assert s.bid == [10.24, 10.23, 10.22, 10.21, 10.20]
    assert s.bid_volume == [12300, 45600, 7800, 100, 250000]  # lots -> shares
    assert s.ask == [10.25, 10.26, 10.27, 10.28, 10.29]
    assert s.ask_volume == [9900, 30000, 4100, 51000, 600]


def test_qq_sz_stock_units() -> None:
    s = by_symbol(parse_qq(QQ_BODY).spots)["SZ000001"]
    assert (s.symbol, s.datetime, s.volume, s.amount) == ("SZ000001", at("15:00:03"), 98_765_400, 1_140_567_890)
    assert (s.bid_volume[0], s.ask_volume[4], s.ask[4]) == (20100, 99900, 11.66)


def test_qq_index_volume_is_lots_on_both_exchanges() -> None:
    spots = by_symbol(parse_qq(QQ_BODY).spots)
    sh, sz = spots["SH000001"], spots["SZ399001"]
    assert (sh.volume, sh.amount) == (41_234_567_800, 401_234_567_890)
    assert (sz.volume, sz.amount) == (45_678_901_200, 498_765_432_110)
    assert 5 < sh.amount / sh.volume < 20 and 5 < sz.amount / sz.volume < 20
    # the same SZ index from Sina (shares) agrees to within the lot rounding
    sina_sz = by_symbol(parse_sina(SINA_BODY).spots)["SZ399001"]
    assert abs(sina_sz.volume - sz.volume) <= 50
    assert abs(sina_sz.amount - sz.amount) <= 1


def test_qq_star_and_bj() -> None:
    spots = by_symbol(parse_qq(QQ_BODY).spots)
    star, bj = spots["SH688981"], spots["BJ920118"]
    assert (star.volume, star.amount, star.datetime) == (23_456_800, 2_075_678_901, at("15:30:02"))
    assert abs(star.volume - 23_456_789) <= 50  # Sina's odd share count, rounded to lots
    assert (bj.symbol, bj.volume, bj.amount, bj.close) == ("BJ920118", 1_234_600, 20_746_330, 16.82)
    assert (bj.bid_volume[0], bj.ask[4], bj.ask_volume[4]) == (500, 16.86, 9000)


def test_qq_amount_falls_back_to_f37_in_wan() -> None:
    fields = qq_line("bj920118").split('"')[1].split("~")
    fields[35] = "16.82/12346"  # no yuan part
    assert parse_qq_line("bj920118", "~".join(fields)).amount == 20_746_300  # 2074.63 万元, exact
    fields = qq_line("sh600000").split('"')[1].split("~")
    fields[35] = ""
    assert parse_qq_line("sh600000", "~".join(fields)).amount == 363_010_000  # 36301 万元: ±5,000 yuan


def test_qq_suspended_and_limit_up() -> None:
    spots = by_symbol(parse_qq(QQ_BODY).spots)
    halted = spots["SZ300068"]
    # no trade: Tencent shows yesterday's close as the last price; volume 0, so the engine draws no bar
    assert (halted.close, halted.yesterday_close, halted.open, halted.high) == (20.14, 20.14, 0, 0)
    assert (halted.volume, halted.amount, halted.bid_volume) == (0, 0, [0.0] * 5)
    up = spots["SH603777"]
    assert (up.close, up.high, up.volume, up.amount) == (13.2, 13.2, 55_500_000, 718_222_500)
    assert up.ask == [0.0] * 5 and up.ask_volume == [0.0] * 5
    assert up.bid_volume[0] == 6_409_300


def test_qq_unknown_codes() -> None:
    result = parse_qq('v_pv_none_match="1";\n', requested=["sh999999"])
    assert result.unknown == ["SH999999"] and not result.spots and result.error is None
    # a mixed batch: Tencent leaves the unknown code out
    result = parse_qq(qq_line("sh600000") + "\n", requested=["sh600000", "sh999999"])
    assert [s.symbol for s in result.spots] == ["SH600000"] and result.unknown == ["SH999999"]


def test_qq_truncated_short_malformed_and_blocked() -> None:
    body = qq_line("sh600000") + "\n" + qq_line("sz000001")[:200]
    result = parse_qq(body, requested=["sh600000", "sz000001", "sh688981"])
    assert result.truncated and [s.symbol for s in result.spots] == ["SH600000"]
    assert set(result.errors) == {"SZ000001", "SH688981"} and not result.unknown
    old = "~".join(qq_line("sh600000").split('"')[1].split("~")[:50])  # a 2015-style 50-field line
    assert parse_qq_line("sh600000", old).volume == 35_678_900
    result = parse_qq('v_sh600000="1~浦发银行~600000~10.25";\n', requested=["sh600000"])
    assert "malformed" in result.errors["SH600000"]
    result = parse_qq(qq_line("sh600000").replace("v_sh600000", "v_sh600001") + "\n", requested=["sh600001"])
    assert "does not match" in result.errors["SH600001"]
    assert parse_qq("访问过于频繁", requested=["sh600000"]).error is not None


def test_qq_code() -> None:
    assert qq_code("000001.SZ") == "sz000001"


def test_decode_body_gbk_and_utf8() -> None:
    assert decode_body("浦发银行".encode("gbk")) == "浦发银行"
    assert decode_body("粤电力Ａ".encode(), "text/plain; charset=utf-8") == "粤电力Ａ"


# =====================================================================================================
# Shared machinery
# =====================================================================================================
def test_validate_codes_and_batches() -> None:
    valid, invalid = validate_codes(["sh600000", " SH600000", "600000.SH", "000001.SZ", "61666", "600519sh", 7])
    assert valid == ["SH600000", "SZ000001"] and invalid == ["61666", "600519sh", 7]
    assert validate_codes("bj920118") == (["BJ920118"], [])
    assert batched(list(range(7)), 3) == [[0, 1, 2], [3, 4, 5], [6]]


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="batch_size"):
        SinaConfig(batch_size=801)
    with pytest.raises(ValueError, match="base_url"):
        QQConfig(base_url="ftp://x")
    config = SinaConfig(headers={"X-A": "1"}, referer=None)
    assert hash(config) and "Referer" not in config.request_headers() and config.request_headers()["X-A"] == "1"
    assert SinaConfig().request_headers()["Referer"].startswith("https://finance.sina.com.cn")
    assert "Mozilla" in QQConfig().request_headers()["User-Agent"] and QQConfig().batch_size == 500


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_rate_limiter_with_an_injected_clock() -> None:
    clock = FakeClock()
    limiter = RateLimiter(5, clock=clock, sleep=clock.sleep)
    for _ in range(10):
        limiter.acquire()
    assert clock.now - 100.0 == pytest.approx(1.8)  # 10 requests at 5/s: the 10th goes 9 intervals later
    clock = FakeClock()
    limiter = RateLimiter(10, burst=3, clock=clock, sleep=clock.sleep)
    waits = [limiter.acquire() for _ in range(5)]
    assert waits[:3] == [0, 0, 0] and waits[3] == pytest.approx(0.1) and waits[4] == pytest.approx(0.1)
    clock.now += 10  # idle: the burst is available again, not more
    assert [limiter.acquire() for _ in range(4)][:3] == [0, 0, 0]
    assert RateLimiter(0).acquire() == 0


def test_rate_limiter_is_shared_by_threads() -> None:
    clock = FakeClock()
    lock = threading.Lock()

    def sleep(seconds: float) -> None:  # record only: the schedule is decided under the limiter's lock
        with lock:
            clock.sleeps.append(seconds)

    limiter = RateLimiter(4, clock=clock, sleep=sleep)
    threads = [threading.Thread(target=limiter.acquire) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(clock.sleeps) == pytest.approx([0.25 * k for k in range(1, 8)])  # one slot each


def test_retry_policy_backoff_and_jitter() -> None:
    policy = RetryPolicy(retries=5, backoff=0.5, backoff_max=3.0, jitter=0.5)
    rng = random.Random(1)
    for retry, base in enumerate([0.5, 1.0, 2.0, 3.0, 3.0]):
        delays = [policy.delay(retry, rng) for _ in range(50)]
        assert all(base * 0.5 <= d <= base for d in delays) and len(set(delays)) > 1
    assert RetryPolicy(jitter=0).delay(1) == 1.0


def test_call_with_retries() -> None:
    sleeps: list[float] = []
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise FetchError("HTTP 500", retryable=True, status=500)
        return "ok"

    policy = RetryPolicy(retries=2, backoff=1.0, jitter=0)
    assert call_with_retries(flaky, policy, sleep=sleeps.append) == "ok" and sleeps == [1.0, 2.0]
    calls.clear()
    with pytest.raises(FetchError):
        call_with_retries(flaky, RetryPolicy(retries=1, backoff=0), sleep=sleeps.append)
    assert len(calls) == 2

    def forbidden() -> None:
        calls.append(1)
        raise FetchError("HTTP 403", retryable=False, status=403)

    calls.clear()
    with pytest.raises(FetchError, match="403"):
        call_with_retries(forbidden, policy, sleep=sleeps.append)
    assert len(calls) == 1
    sleeps.clear()

    def throttled() -> None:
        raise FetchError("HTTP 429", retryable=True, status=429, retry_after=5.0)

    with pytest.raises(FetchError):
        call_with_retries(
            throttled, RetryPolicy(retries=1, backoff=0.1, backoff_max=2.0, jitter=0), sleep=sleeps.append
        )
    assert sleeps == [2.0]  # Retry-After honoured, capped at backoff_max


# =====================================================================================================
# Over HTTP: hkrt.testing.QuoteServer on loopback
# =====================================================================================================
def make_spot(symbol: str, name: str, yc: float, close: float, lots: int, hhmmss: str = "10:15:30") -> hkrt.Spot:
    """A quote whose values survive both wire formats exactly: 2 dp prices, whole lots, whole yuan."""
    tick = 0.01
    return hkrt.Spot(
        symbol,
        at(hhmmss),
        name=name,
        yesterday_close=yc,
        open=yc,
        high=round(max(yc, close) + 0.05, 2),
        low=round(min(yc, close) - 0.05, 2),
        close=close,
        volume=lots * 100,
        amount=float(round(lots * 100 * close)),
        bid=[round(close - tick * (i + 1), 2) for i in range(5)],
        bid_volume=[100 * (i + 1) for i in range(5)],
        ask=[round(close + tick * i, 2) for i in range(5)],
        ask_volume=[200 * (i + 1) for i in range(5)],
    )


MARKET = {
    s.symbol: s
    for s in [
        make_spot("SH600000", "浦发银行", 10.10, 10.25, 356_789),
        make_spot("SZ000001", "平安银行", 11.48, 11.62, 987_654),
        make_spot("SH688981", "中芯国际", 87.50, 88.46, 234_568),
        make_spot("BJ920118", "太湖远大", 16.70, 16.82, 12_346),
        make_spot("SH603777", "来伊份", 12.00, 13.20, 555_000),
        make_spot("SZ300750", "宁德时代", 250.00, 251.37, 123_456),
        make_spot("SH601318", "中国平安", 45.00, 44.12, 700_001),
    ]
}
MARKET["SH000001"] = hkrt.Spot(
    "SH000001", at("10:15:30"), name="上证指数", yesterday_close=3880.0, open=3891.18, high=3910.0, low=3875.5,
    close=3902.35, volume=41_234_567_800, amount=401_234_567_890,
)  # fmt: skip
MARKET["SZ399001"] = hkrt.Spot(
    "SZ399001", at("10:15:30"), name="深证成指", yesterday_close=12000.46, open=12050.12, high=12150.0,
    low=12010.5, close=12101.37, volume=45_678_901_200, amount=498_765_432_110,
)  # fmt: skip
MARKET["SZ300068"] = hkrt.Spot("SZ300068", at("10:15:30"), name="南都电源", yesterday_close=20.14)  # suspended
CODES = [s.lower() for s in MARKET]


@pytest.fixture
def server() -> QuoteServer:
    with QuoteServer(MARKET) as s:
        yield s


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_round_trip_spot_server_fetcher_spot(server: QuoteServer, source: str) -> None:
    report = fetcher.fetch([*CODES, "sh999999"], source, base_url=server.base_url(source), **FAST)
    assert report.ok and report.unknown == ["SH999999"] and report.invalid == []
    assert [s.symbol for s in report.spots] == list(MARKET)  # in the order asked
    for spot in report.spots:
        assert spot == MARKET[spot.symbol], spot.symbol
    assert (report.requested, report.batches, report.requests) == (len(MARKET) + 1, 1, 1)
    assert server.request_count(source) == 1


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_round_trip_within_each_formats_rounding(source: str) -> None:
    odd = hkrt.Spot(
        "SZ002594", at("13:01:02.750"), name="比亚迪", yesterday_close=300.0, open=301.0, high=305.55, low=299.5,
        close=303.123, volume=1_234_567, amount=374_214_567.891, bid=[303.12], bid_volume=[1_234],
    )  # fmt: skip
    with QuoteServer([odd]) as s:
        [got] = get_spot(["sz002594"], source, base_url=s.base_url(source), **FAST)
    assert got.datetime == at("13:01:02")  # to the second
    if source == "sina":  # shares and 3 dp: exact but for the milliseconds
        assert (got.volume, got.amount, got.close, got.bid_volume[0]) == (1_234_567, 374_214_567.891, 303.123, 1234)
    else:  # lots and whole yuan
        assert abs(got.volume - odd.volume) <= 50 and abs(got.amount - odd.amount) <= 0.5
        assert got.close == 303.123 and abs(got.bid_volume[0] - 1234) <= 50


def test_sina_needs_a_referer_403_reported_not_retried(server: QuoteServer) -> None:
    report = fetcher.fetch(CODES, "sina", base_url=server.base_url("sina"), referer=None, **FAST)
    assert report.spots == [] and not report.ok
    [failed] = report.failed_batches
    assert failed.status == 403 and "Referer" in failed.error and failed.attempts == 1
    assert set(failed.codes) == set(MARKET) and server.request_count("sina") == 1


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_slow_batch_times_out_and_the_others_arrive(server: QuoteServer, source: str) -> None:
    server.slow(3.0, symbols=["SH600000"])
    start = time.monotonic()
    report = fetcher.fetch(
        CODES, source, base_url=server.base_url(source), batch_size=2, **{**FAST, "timeout": 0.5, "retries": 0}
    )
    assert time.monotonic() - start < 2.0
    [failed] = report.failed_batches
    assert failed.batch == 0 and "timeout" in failed.error and failed.codes == ("SH600000", "SZ000001")
    assert len(report.spots) == len(MARKET) - 2 and "SH600000" not in {s.symbol for s in report.spots}


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_truncated_body_complete_lines_parsed_cut_one_reported(server: QuoteServer, source: str) -> None:
    server.truncate = 30
    codes = ["sh600000", "sz000001", "sh688981"]
    report = fetcher.fetch(codes, source, base_url=server.base_url(source), **FAST)
    assert [s.symbol for s in report.spots] == ["SH600000", "SZ000001"]
    [failed] = report.failed_batches
    assert failed.codes == ("SH688981",) and "cut off" in failed.error and failed.status == 200
    assert report.failed_codes == ["SH688981"] and not report.ok


def test_sys_auth_failed_is_reported(server: QuoteServer) -> None:
    server.sys_auth_failed = True
    report = fetcher.fetch(CODES, "sina", base_url=server.base_url("sina"), **{**FAST, "retries": 1})
    [failed] = report.failed_batches
    assert "sys_auth" in failed.error and failed.attempts == 2 and report.spots == []


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_http_500_then_ok_is_retried(server: QuoteServer, source: str) -> None:
    server.fail_next(2)
    report = fetcher.fetch(CODES, source, base_url=server.base_url(source), **{**FAST, "retries": 2})
    assert report.ok and len(report.spots) == len(MARKET) and report.requests == 3
    assert [r.status for r in server.requests] == [500, 500, 200]


def test_retries_exhausted_is_reported(server: QuoteServer) -> None:
    server.fail_next(10, status=503)
    report = fetcher.fetch(CODES, "qq", base_url=server.base_url("qq"), **{**FAST, "retries": 2})
    [failed] = report.failed_batches
    assert (failed.status, failed.attempts, failed.error) == (503, 3, "HTTP 503") and report.requests == 3
    assert server.request_count() == 3


def test_429_is_retried_other_4xx_are_not(server: QuoteServer) -> None:
    server.fail_next(1, status=429)
    assert fetcher.fetch(CODES, "qq", base_url=server.base_url("qq"), **FAST).ok
    server.fail_next(1, status=414)
    report = fetcher.fetch(CODES, "qq", base_url=server.base_url("qq"), **FAST)
    [failed] = report.failed_batches
    assert failed.attempts == 1 and "batch_size" in failed.error


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_connection_drop_retried_then_reported(server: QuoteServer, source: str) -> None:
    server.drop_next(1)
    assert fetcher.fetch(CODES, source, base_url=server.base_url(source), **{**FAST, "retries": 1}).ok
    server.drop_next(5)
    report = fetcher.fetch(CODES, source, base_url=server.base_url(source), **{**FAST, "retries": 1})
    [failed] = report.failed_batches
    assert "connection" in failed.error and failed.attempts == 2 and failed.status is None


def test_a_failed_batch_does_not_stop_the_cycle(server: QuoteServer) -> None:
    server.fail_next(2)
    report = fetcher.fetch(
        CODES, "sina", base_url=server.base_url("sina"), batch_size=2, concurrency=1, **{**FAST, "retries": 0}
    )
    assert [f.batch for f in report.failed_batches] == [0, 1]
    assert len(report.spots) == len(MARKET) - 4 and report.batches == 5 and server.request_count() == 5


@pytest.mark.parametrize("source", ["sina", "qq"])
def test_batching_and_batch_func(server: QuoteServer, source: str) -> None:
    calls: list[tuple[list[str], str]] = []
    report = fetcher.fetch(
        CODES[:7],
        source,
        base_url=server.base_url(source),
        batch_size=3,
        batch_func=lambda spots: calls.append(([s.symbol for s in spots], threading.current_thread().name)),
        **FAST,
    )
    assert report.batches == 3 and server.request_count(source) == 3 and len(report.spots) == 7
    assert sorted(len(symbols) for symbols, _ in calls) == [1, 3, 3]
    assert sorted(s for symbols, _ in calls for s in symbols) == sorted(s.upper() for s in CODES[:7])
    assert {thread for _, thread in calls} == {threading.current_thread().name}  # in the caller's thread
    assert sorted(len(r.tokens) for r in server.requests) == [1, 3, 3]


def test_batch_func_error_propagates(server: QuoteServer) -> None:
    def boom(spots: list[hkrt.Spot]) -> None:
        raise RuntimeError("callback failed")

    with pytest.raises(RuntimeError, match="callback failed"):
        get_spot(CODES, "qq", base_url=server.base_url("qq"), batch_size=2, batch_func=boom, **FAST)


def test_bad_codes_are_reported_and_never_sent(server: QuoteServer) -> None:
    codes = ["sh600000", "600519sh", "61666", "szSHRQ88", "hk00700", "000001.SZ", "SH600000"]
    report = fetcher.fetch(codes, "sina", base_url=server.base_url("sina"), **FAST)
    assert report.invalid == ["600519sh", "61666", "szSHRQ88", "hk00700"]
    assert [s.symbol for s in report.spots] == ["SH600000", "SZ000001"] and report.ok
    assert server.tokens() == ["sh600000", "sz000001"]  # one malformed token would void a Sina batch
    report = fetcher.fetch(["bad"], "qq", base_url=server.base_url("qq"), **FAST)
    assert report.invalid == ["bad"] and report.batches == 0 and server.request_count("qq") == 0


def test_rate_limit_spaces_requests(server: QuoteServer) -> None:
    options = {**FAST, "rate_limit": 20.0, "burst": 1, "batch_size": 1, "concurrency": 4}
    report = fetcher.fetch(CODES[:5], "qq", base_url=server.base_url("qq"), **options)
    assert report.ok and server.request_count() == 5
    times = sorted(r.time for r in server.requests)
    assert times[-1] - times[0] >= 0.15  # 4 intervals of 50 ms, with slack for timer granularity
    assert report.elapsed >= 0.15


def test_one_client_reuses_its_connection(server: QuoteServer) -> None:
    with SinaClient(base_url=server.base_url("sina"), **FAST) as client:
        for _ in range(3):
            assert client.fetch(CODES[:2]).ok
    assert len({r.client for r in server.requests}) == 1  # one kept-alive connection for three requests


def test_clients_accept_a_config_object(server: QuoteServer) -> None:
    config = QQConfig(base_url=server.base_url("qq"), batch_size=4, **FAST)
    with QQClient(config) as client:
        assert client.config is config and client.fetch(CODES).batches == 3
    with QQClient(config, batch_size=5) as client:
        assert client.config.batch_size == 5


# =====================================================================================================
# get_spot / fetch entry points
# =====================================================================================================
@pytest.mark.parametrize("source", ["sina", "qq"])
def test_get_spot_with_base_url(server: QuoteServer, source: str) -> None:
    spots = get_spot(["sh600000", "SZ000001", "920118.BJ"], source=source, base_url=server.base_url(source), **FAST)
    assert [s.symbol for s in spots] == ["SH600000", "SZ000001", "BJ920118"]
    assert all(s == MARKET[s.symbol] for s in spots)
    assert get_spot("sh600000", source=source, base_url=server.base_url(source), **FAST) == [MARKET["SH600000"]]


def test_get_spot_failures_are_left_out_and_logged(server: QuoteServer, caplog: pytest.LogCaptureFixture) -> None:
    server.fail_next(1)
    with caplog.at_level("WARNING", logger="hkrt.fetcher"):
        spots = get_spot(CODES, "qq", base_url=server.base_url("qq"), batch_size=5, concurrency=1, retries=0)
    assert len(spots) == len(MARKET) - 5
    [record] = [r for r in caplog.records if r.getMessage().startswith("quote batch failed")]
    assert (record.reason, record.error, record.source, record.codes) == ("http_500", "HTTP 500", "qq", 5)
    assert record.getMessage() == "quote batch failed: http_500 from qq, 5 codes, 1 attempt: HTTP 500"


def test_get_spot_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="unknown quote source"):
        get_spot(["sh600000"], source="eastmoney")
    with pytest.raises(TypeError):
        get_spot(["sh600000"], source="qq", no_such_option=1)
    with pytest.raises(ValueError, match="qmt"):
        fetcher.fetch(["sh600000"], source="qmt")
    seen = {}
    fake = types.ModuleType("hkrt.fetcher.qmt")
    fake.get_spot = lambda codes, batch_func=None, **options: seen.update(codes=codes, bf=batch_func, **options) or []
    monkeypatch.setitem(sys.modules, "hkrt.fetcher.qmt", fake)
    assert get_spot(["sh600000"], source="qmt", batch_func=print, period="tick") == []
    assert seen == {"codes": ["sh600000"], "bf": print, "period": "tick"}
    with pytest.raises(ValueError, match="base_url"):
        get_spot(["sh600000"], source="qmt", base_url="http://127.0.0.1:1")
    monkeypatch.setitem(sys.modules, "hkrt.fetcher.qmt", None)  # as if its import failed
    with pytest.raises(ImportError):
        get_spot(["sh600000"], source="qmt")
