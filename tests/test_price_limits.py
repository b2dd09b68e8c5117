"""Price limits and ticks per board: hand-computed cases and properties (docs/strategy.md)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hkrt.core.price_limits import board_of, is_st, limit_rate, on_tick, price_limits, tick_size


@pytest.mark.parametrize(
    ("symbol", "board", "rate", "tick"),
    [
        ("SH600000", "main", 0.10, 0.01),
        ("SZ000001", "main", 0.10, 0.01),
        ("SZ002594", "main", 0.10, 0.01),
        ("SH688981", "star", 0.20, 0.01),
        ("SZ300750", "chinext", 0.20, 0.01),
        ("SZ301236", "chinext", 0.20, 0.01),
        ("BJ830799", "beijing", 0.30, 0.01),
        ("SH510300", "fund", 0.10, 0.001),
        ("SZ159915", "fund", 0.10, 0.001),
        ("SH113050", "fund", 0.10, 0.001),
    ],
)
def test_boards_rates_and_ticks(symbol: str, board: str, rate: float, tick: float) -> None:
    assert board_of(symbol) == board
    assert limit_rate(symbol) == rate
    assert tick_size(symbol) == tick


def test_hand_computed_limits() -> None:
    # 10.05 × 1.10 = 11.055 rounds half up to 11.06 (its binary float is 11.0549999...)
    assert price_limits("SH600000", 10.05) == (9.05, 11.06)
    assert price_limits("SH600000", 3.33, st=True) == (3.16, 3.50)  # 3.1635 -> 3.16, 3.4965 -> 3.50
    assert price_limits("SZ300750", 200.0) == (160.0, 240.0)
    assert price_limits("SZ300750", 200.0, st=True) == (160.0, 240.0)  # ST does not narrow ChiNext
    assert price_limits("SH688001", 33.33) == (26.66, 40.0)  # 26.664 -> 26.66, 39.996 -> 40.00
    assert price_limits("BJ830799", 12.34) == (8.64, 16.04)  # 8.638 -> 8.64, 16.042 -> 16.04
    assert price_limits("SH510300", 4.012) == (3.611, 4.413)  # 3.6108 -> 3.611, 4.4132 -> 4.413
    with pytest.raises(ValueError, match="previous close 0"):
        price_limits("SH600000", 0)


def test_st_names() -> None:
    assert is_st("ST康美") and is_st("*ST中天") and is_st(" S*ST前锋")
    assert not is_st("浦发银行") and not is_st("")


def test_ticks() -> None:
    assert on_tick("SH600000", 10.01) and not on_tick("SH600000", 10.005)
    assert on_tick("SH510300", 4.005) and not on_tick("SH510300", 4.0005)


@given(
    cents=st.integers(min_value=1, max_value=500_000),
    symbol=st.sampled_from(["SH600000", "SH688001", "SZ300750", "BJ830799"]),
    st_flag=st.booleans(),
)
def test_limits_bracket_the_close_on_ticks_within_half_a_tick_of_the_rate(
    cents: int, symbol: str, st_flag: bool
) -> None:
    close = cents / 100
    down, up = price_limits(symbol, close, st=st_flag)
    rate = limit_rate(symbol, st=st_flag)
    assert on_tick(symbol, down) and on_tick(symbol, up)
    assert down <= close <= up
    assert math.isclose(up, close * (1 + rate), abs_tol=0.005 + 1e-9)
    assert down >= 0.01
    if close * (1 - rate) >= 0.01:
        assert math.isclose(down, close * (1 - rate), abs_tol=0.005 + 1e-9)


def test_round_to_tick() -> None:
    from hkrt.core.price_limits import round_to_tick

    assert round_to_tick("SH600000", 10.005) == 10.01  # half up, from the printed value
    assert round_to_tick("SH600000", 10.3 * 1.03) == 10.61  # 10.609 -> 10.61
    assert round_to_tick("SH600000", 10.609, "down") == 10.6
    assert round_to_tick("SH600000", 10.601, "up") == 10.61
    assert round_to_tick("SH510300", 4.0125) == 4.013
    with pytest.raises(ValueError, match="direction 'x'"):
        round_to_tick("SH600000", 1.0, "x")
