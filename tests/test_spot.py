"""hkrt.Spot: fields, units, symbol spellings and datetime conversions."""

from __future__ import annotations

import datetime as dt
import pickle

import numpy as np
import pandas as pd
import pytest

import hkrt


@pytest.mark.parametrize("text", ["SH600000", "sh600000", "600000.SH", "600000.sh", "Sh600000"])
def test_symbol_spellings_normalise(text: str) -> None:
    assert hkrt.normalize_symbol(text) == "SH600000"
    s = hkrt.Spot(text, dt.datetime(2026, 11, 20, 10, 0))
    assert (s.symbol, s.market, s.code) == ("SH600000", "SH", "600000")


def test_market_and_code_fields_and_bj_codes() -> None:
    s = hkrt.Spot(market="bj", code="920118", datetime=dt.datetime(2026, 11, 20, 10, 0))
    assert s.symbol == "BJ920118"
    s.code = "430047"
    assert s.symbol == "BJ430047"
    s.market = "SZ"
    assert s.symbol == "SZ430047"


@pytest.mark.parametrize("bad", ["600000", "SH60000", "XX600000", "SH6000000", "600000.XS", "", "SH 60000"])
def test_bad_symbols_raise_value_error_naming_the_spellings(bad: str) -> None:
    with pytest.raises(ValueError, match=r"SH600000, sh600000 or 600000\.SH"):
        hkrt.normalize_symbol(bad)
    with pytest.raises(ValueError):
        hkrt.Spot(bad, dt.datetime(2026, 11, 20, 10, 0))


def test_spot_requires_symbol_and_datetime() -> None:
    with pytest.raises(TypeError, match="symbol"):
        hkrt.Spot(datetime=dt.datetime(2026, 11, 20, 10, 0))
    with pytest.raises(TypeError, match="datetime"):
        hkrt.Spot("SH600000")


def test_fields_keep_units_as_given() -> None:
    s = hkrt.Spot(
        "SZ000001",
        dt.datetime(2026, 11, 20, 10, 0, 5, 250000),
        name="平安银行",
        yesterday_close=11.0,
        open=11.1,
        high=11.3,
        low=10.9,
        close=11.2,
        volume=123_400,
        amount=1_382_080.0,
        bid=[11.19, 11.18],
        bid_volume=[1000, 2000],
        ask=[11.2, 11.21, 11.22, 11.23, 11.24],
        ask_volume=[100, 200, 300, 400, 500],
    )
    assert s.name == "平安银行"
    assert s.volume == 123_400 and s.amount == 1_382_080.0
    assert s.bid == [11.19, 11.18, 0.0, 0.0, 0.0]
    assert s.ask_volume == [100, 200, 300, 400, 500]
    assert s.datetime == dt.datetime(2026, 11, 20, 10, 0, 5, 250000)
    with pytest.raises(ValueError, match="levels"):
        s.bid = [1, 2, 3, 4, 5, 6]


@pytest.mark.parametrize(
    "value",
    [
        dt.datetime(2026, 11, 20, 9, 30, 5),
        "2026-11-20 09:30:05",
        "2026-11-20T09:30:05",
        "20261120093005",
        pd.Timestamp("2026-11-20 09:30:05"),
        np.datetime64("2026-11-20T09:30:05"),
        dt.datetime(2026, 11, 20, 1, 30, 5, tzinfo=dt.timezone.utc),  # aware: converted to China time
        pd.Timestamp("2026-11-20 09:30:05", tz="Asia/Shanghai"),
    ],
)
def test_datetime_inputs_become_naive_china_time(value: object) -> None:
    s = hkrt.Spot("SH600000", value)
    assert s.datetime == dt.datetime(2026, 11, 20, 9, 30, 5)
    assert s.datetime.tzinfo is None


def test_bad_datetime_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="invalid datetime"):
        hkrt.Spot("SH600000", "2026-02-30 10:00:00")
    with pytest.raises(TypeError, match="datetime"):
        hkrt.Spot("SH600000", 1763602205000)


def test_equality_repr_and_pickle() -> None:
    a = hkrt.Spot("SH600000", "2026-11-20 10:00:00", close=10.5, volume=100, amount=1050, bid=[10.49])
    b = pickle.loads(pickle.dumps(a))
    assert a == b
    assert a != hkrt.Spot("SH600000", "2026-11-20 10:00:00", close=10.6, volume=100, amount=1050)
    assert repr(a) == "Spot(symbol='SH600000', datetime='2026-11-20 10:00:00', close=10.5, volume=100.0, amount=1050.0)"


def test_keyword_errors_are_clear() -> None:
    when = dt.datetime(2026, 11, 20, 10, 0)
    with pytest.raises(TypeError, match="unexpected or repeated keyword argument 'price'"):
        hkrt.Spot("SH600000", when, price=10.0)
    with pytest.raises(TypeError, match=r"Spot\.close must be a number, got str"):
        hkrt.Spot("SH600000", when, close="10.0")
    with pytest.raises(TypeError, match="at most 2 positional"):
        hkrt.Spot("SH600000", when, 10.0)
    with pytest.raises(TypeError, match="repeated keyword argument 'symbol'"):
        hkrt.Spot("SH600000", when, symbol="SH600000")
    s = hkrt.Spot(symbol="sz000001", datetime=when, close=np.float64(11.5), volume=np.int64(300))
    assert (s.symbol, s.close, s.volume) == ("SZ000001", 11.5, 300.0)
