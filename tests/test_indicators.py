"""hkrt.indicator: TA-Lib's own functions over hkrt bars, hand-computed cases, properties, the
Chinese MACD variant, and one-line errors (docs/indicators.md)."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import talib
from hkrt.synthetic import synthetic_day
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt.indicators import IndicatorError, indicator_names

DAY = dt.date(2026, 11, 20)


def synthetic_minute_bars() -> pd.DataFrame:
    """A real day's MIN bars of one synthetic symbol, as the agent builds them (yuan, shares)."""
    agent = hkrt.SpotAgent(["MIN"])
    for push in synthetic_day(3, DAY):
        agent.ingest_columns(**push.columns())
    agent.close_day(DAY)
    frame = agent.kdata(agent.symbols[0], "MIN")
    assert len(frame) == 240
    return frame


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return synthetic_minute_bars()


def _arrays(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy(dtype=np.float64) for c in ("open", "high", "low", "close", "volume")}


# each indicator through hkrt, and the same through TA-Lib's function API on the bar arrays
CASES = [
    ("SMA", {"timeperiod": 20}, lambda a: talib.SMA(a["close"], 20)),
    ("ema", {"timeperiod": 12}, lambda a: talib.EMA(a["close"], 12)),
    ("WMA", {}, lambda a: talib.WMA(a["close"])),
    ("RSI", {"timeperiod": 14}, lambda a: talib.RSI(a["close"], 14)),
    ("MACD", {}, lambda a: talib.MACD(a["close"])),
    ("BBANDS", {"timeperiod": 20, "nbdevup": 2, "nbdevdn": 2}, lambda a: talib.BBANDS(a["close"], 20, 2, 2)),
    ("ATR", {"timeperiod": 14}, lambda a: talib.ATR(a["high"], a["low"], a["close"], 14)),
    ("NATR", {}, lambda a: talib.NATR(a["high"], a["low"], a["close"])),
    ("STOCH", {}, lambda a: talib.STOCH(a["high"], a["low"], a["close"])),
    ("CCI", {"timeperiod": 20}, lambda a: talib.CCI(a["high"], a["low"], a["close"], 20)),
    ("ADX", {}, lambda a: talib.ADX(a["high"], a["low"], a["close"])),
    ("OBV", {}, lambda a: talib.OBV(a["close"], a["volume"])),
    ("MFI", {}, lambda a: talib.MFI(a["high"], a["low"], a["close"], a["volume"])),
    ("SAR", {}, lambda a: talib.SAR(a["high"], a["low"])),
    ("ROC", {"timeperiod": 10}, lambda a: talib.ROC(a["close"], 10)),
    ("WILLR", {}, lambda a: talib.WILLR(a["high"], a["low"], a["close"])),
]


@pytest.mark.parametrize(("name", "params", "direct"), CASES, ids=[c[0] for c in CASES])
def test_each_indicator_is_ta_libs_own_function_on_the_same_bars(
    bars: pd.DataFrame, name: str, params: dict[str, float], direct: object
) -> None:
    got = hkrt.indicator(name, bars, **params)
    want = direct(_arrays(bars))  # type: ignore[operator]
    if isinstance(want, tuple):
        assert isinstance(got, pd.DataFrame) and len(got.columns) == len(want)
        for column, expected in zip(got.columns, want, strict=True):
            np.testing.assert_array_equal(got[column].to_numpy(), expected)  # bit for bit, NaN where TA-Lib has NaN
    else:
        assert isinstance(got, pd.Series)
        np.testing.assert_array_equal(got.to_numpy(), want)
    assert got.index.equals(bars.index)
    assert np.isfinite(np.asarray(got, dtype=float)[-1]).all()  # a whole day is past every look-back here


def test_hand_computed_moving_averages_and_rsi() -> None:
    index = pd.date_range("2026-11-20 09:31", periods=6, freq="min")
    frame = pd.DataFrame({"close": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]}, index=index)
    sma = hkrt.indicator("SMA", frame, timeperiod=3)
    assert sma.isna().tolist() == [True, True, False, False, False, False]
    assert sma.iloc[2:].tolist() == [11.0, 12.0, 13.0, 14.0]  # (10+11+12)/3, (11+12+13)/3 ...
    # EMA(3): alpha 2/(3+1) = 0.5, seeded with the SMA of the first 3 (11); then 11*0.5 + 13*0.5 = 12 ...
    assert hkrt.indicator("EMA", frame, timeperiod=3).iloc[2:].tolist() == [11.0, 12.0, 13.0, 14.0]
    # only gains: RSI is 100
    assert hkrt.indicator("RSI", frame, timeperiod=3).iloc[3:].tolist() == [100.0, 100.0, 100.0]


def test_macd_cn_doubles_the_histogram_and_keeps_the_lines(bars: pd.DataFrame) -> None:
    ta = hkrt.indicator("MACD", bars)
    cn = hkrt.indicator("macd_cn", bars, fastperiod=12, slowperiod=26, signalperiod=9)
    assert list(cn.columns) == ["macd", "macdsignal", "macdhist"]
    pd.testing.assert_series_equal(cn["macd"], ta["macd"])
    pd.testing.assert_series_equal(cn["macdsignal"], ta["macdsignal"])
    valid = cn["macdhist"].notna()
    np.testing.assert_allclose(cn["macdhist"][valid], 2 * (cn["macd"] - cn["macdsignal"])[valid], rtol=0, atol=1e-12)
    assert "MACD_CN" in indicator_names() and "SMA" in indicator_names()


@settings(max_examples=60, deadline=None)
@given(
    closes=st.lists(st.floats(min_value=0.01, max_value=10_000, allow_nan=False), min_size=2, max_size=80),
    period=st.integers(min_value=2, max_value=30),
)
def test_sma_is_the_rolling_mean_and_rsi_stays_in_0_100(closes: list[float], period: int) -> None:
    frame = pd.DataFrame({"close": closes})
    sma = hkrt.indicator("SMA", frame, timeperiod=period)
    rolling = frame["close"].rolling(period).mean()
    assert sma.isna().equals(rolling.isna())
    np.testing.assert_allclose(sma.dropna(), rolling.dropna(), rtol=1e-9, atol=1e-9)
    rsi = hkrt.indicator("RSI", frame, timeperiod=min(period, 14)).dropna()
    assert ((rsi >= -1e-9) & (rsi <= 100 + 1e-9)).all()


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("SMAX", {}, "unknown indicator 'SMAX' (did you mean SMA"),
        ("SMA", {"period": 5}, "SMA takes no parameter 'period'; it takes timeperiod"),
        ("SMA", {"timeperiod": "5"}, "SMA's timeperiod must be a number, got '5'"),
        ("SMA", {"timeperiod": math.inf}, "SMA's timeperiod must be finite"),
        ("SMA", {"timeperiod": 0}, "SMA(timeperiod=0): "),
        ("ATR", {}, "ATR needs the bars' high, low column(s)"),
    ],
)
def test_a_bad_request_is_one_line_naming_the_problem(name: str, params: dict[str, object], message: str) -> None:
    frame = pd.DataFrame({"close": [1.0, 2.0, 3.0]})
    with pytest.raises(IndicatorError) as info:
        hkrt.indicator(name, frame, **params)
    assert str(info.value).startswith(message) and "\n" not in str(info.value)
    with pytest.raises(IndicatorError, match="bars DataFrame"):
        hkrt.indicator("SMA", [1.0, 2.0])  # type: ignore[arg-type]


def test_import_hkrt_loads_no_ta_lib() -> None:
    code = "import sys, hkrt\nassert 'talib' not in sys.modules\nhkrt.indicator\nassert 'talib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
