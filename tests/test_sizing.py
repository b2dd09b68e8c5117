"""Position sizing (hkrt.strategy.sizing): hand-computed quantities per board, fees against cash, Kelly, errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hkrt.core.fees import FeeModel
from hkrt.core.lots import lot_rule, round_buy
from hkrt.strategy.sizing import (
    affordable,
    buy_cost,
    fixed_fraction,
    kelly,
    kelly_fraction,
    lot_rounded,
    volatility_target,
)

MAIN, CHINEXT, STAR, BEIJING = "SH600000", "SZ300750", "SH688001", "BJ430047"


# -- lot_rounded and the cost of a buy --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("symbol", "shares", "expected"),
    [
        (MAIN, 250, 200),
        (MAIN, 99, 0),
        (CHINEXT, 199.9, 100),
        (STAR, 199, 0),
        (STAR, 200, 200),
        (STAR, 251, 251),
        (BEIJING, 99, 0),
        (BEIJING, 151, 151),
        ("600000.SH", 1234, 1200),  # any accepted spelling of the symbol
    ],
)
def test_lot_rounded_follows_the_board(symbol: str, shares: float, expected: int) -> None:
    assert lot_rounded(symbol, shares) == expected


def test_buy_cost_adds_commission_minimum_and_transfer_fee() -> None:
    # 9,872 yuan: commission 2.47 topped up to 5.00, transfer fee 0.10
    assert buy_cost(MAIN, 12.34, 800) == 9877.10
    # 24,000 yuan: commission 6.00 (past the minimum), transfer fee 0.24
    assert buy_cost(MAIN, 10.0, 2400) == 24006.24
    assert buy_cost(MAIN, 10.0, 2400, fees=None) == 24000.0
    assert buy_cost(MAIN, 10.0, 0) == 0.0
    no_transfer = FeeModel(transfer_fee_markets=frozenset({"SH", "SZ"}))
    assert buy_cost(BEIJING, 30.0, 333, no_transfer) == 9995.0


# -- fixed fraction ----------------------------------------------------------------------------------------


def test_fixed_fraction_main_board_in_lots_of_100() -> None:
    # 10,000 / 12.34 = 810.4 shares -> 800, costing 9,877.10
    assert fixed_fraction(MAIN, 100_000, 12.34, 0.1) == 800
    assert fixed_fraction(CHINEXT, 100_000, 12.34, 0.1) == 800


def test_fixed_fraction_fees_count_against_the_target() -> None:
    # 1,000 shares at 10 would cost 10,005.10 > 10,000: one lot less
    assert fixed_fraction(MAIN, 100_000, 10.0, 0.1) == 900
    assert fixed_fraction(MAIN, 100_000, 10.0, 0.1, fees=None) == 1000


def test_fixed_fraction_cash_limit_with_fees() -> None:
    # target 50,000 but only 10,003 in cash: 1,000 shares cost 10,005.10, 900 cost 9,005.09
    assert fixed_fraction(MAIN, 100_000, 10.0, 0.5, cash=10_003) == 900
    assert fixed_fraction(MAIN, 100_000, 10.0, 0.5, cash=10_005.10) == 1000
    assert fixed_fraction(MAIN, 100_000, 10.0, 0.5, cash=0) == 0


def test_fixed_fraction_star_minimum_200_then_single_shares() -> None:
    # 20,000 / 50 = 400, but 400 shares cost 20,005.20; 399 cost 19,950 + 5.00 + 0.20 = 19,955.20
    assert fixed_fraction(STAR, 200_000, 50.0, 0.1) == 399
    # 200 shares (the minimum) cost 10,005.10: a budget of 10,004 buys none, 10,005.10 buys exactly 200
    assert fixed_fraction(STAR, 100_000, 50.0, 1.0, cash=10_004) == 0
    assert fixed_fraction(STAR, 100_000, 50.0, 1.0, cash=10_005.10) == 200


def test_fixed_fraction_beijing_minimum_100_then_single_shares() -> None:
    # 333 x 30 = 9,990 + 5.00 + 0.10 = 9,995.10
    assert fixed_fraction(BEIJING, 10_000, 30.0, 1.0) == 333
    # 100 shares cost 3,005.03 > 3,000: below the minimum -> 0, not an error
    assert fixed_fraction(BEIJING, 3_000, 30.0, 1.0) == 0
    # 103 x 30 = 3,090 + 5.00 + 0.03 = 3,095.03 <= 3,100 < 104 shares' 3,125.03
    assert fixed_fraction(BEIJING, 3_100, 30.0, 1.0) == 103


def test_zero_equity_sizes_nothing() -> None:
    assert fixed_fraction(MAIN, 0, 10.0, 0.5) == 0
    assert volatility_target(MAIN, 0, 10.0, 0.2) == 0
    assert kelly(MAIN, 0, 10.0, win_rate=0.6, win_loss_ratio=2.0) == 0


# -- volatility target -------------------------------------------------------------------------------------


def test_volatility_target_worked_example() -> None:
    # risk 1 % of 200,000 = 2,000 yuan over 2 x ATR 0.50 = 1.00 per share -> 2,000 shares worth 40,000;
    # with fees that is 40,010.40 > 40,000, so 1,900 shares (38,009.88)
    assert volatility_target(MAIN, 200_000, 20.0, 0.5) == 1900
    assert volatility_target(MAIN, 200_000, 20.0, 0.5, fees=None) == 2000
    # risk 2 % over 3 x ATR 0.40 = 1.20 per share: 4,000 / 1.20 = 3,333.3 shares -> 3,300 (66,016.50)
    assert volatility_target(MAIN, 200_000, 20.0, 0.4, risk_fraction=0.02, atr_multiple=3.0) == 3300


def test_volatility_target_never_levers_past_equity() -> None:
    # ATR 0.001: 100 / 0.002 = 50,000 shares worth 500,000 -> capped at the 10,000 of equity
    assert volatility_target(MAIN, 10_000, 10.0, 0.001, fees=None) == 1000
    assert volatility_target(MAIN, 10_000, 10.0, 0.001) == 900


def test_volatility_target_star_and_cash() -> None:
    # 1 % of 1,000,000 over 2 x 0.25 = 20,000 shares at 5 = 100,000 yuan; cash 30,000 -> 30,000 budget:
    # 5,998 x 5 = 29,990 + 7.50 commission (rate 0.025 %) + 0.30 = 29,997.80; 5,999 costs 30,002.80
    assert volatility_target(STAR, 1_000_000, 5.0, 0.25, cash=30_000) == 5998
    assert buy_cost(STAR, 5.0, 5998) <= 30_000 < buy_cost(STAR, 5.0, 5999)


# -- Kelly -------------------------------------------------------------------------------------------------


def test_kelly_fraction_formula() -> None:
    # f* = 0.55 - 0.45 / 1.5 = 0.25, half Kelly 0.125
    assert kelly_fraction(0.55, 1.5) == pytest.approx(0.125)
    assert kelly_fraction(0.55, 1.5, fraction=1.0) == pytest.approx(0.25)
    # f* = 0.9 - 0.1 / 2 = 0.85, half 0.425, capped at 0.25
    assert kelly_fraction(0.9, 2.0) == 0.25
    assert kelly_fraction(0.9, 2.0, cap=0.5) == pytest.approx(0.425)
    assert kelly_fraction(1.0, 1.0, fraction=1.0, cap=1.0) == 1.0


def test_kelly_worked_example_and_cap() -> None:
    # 0.125 x 100,000 = 12,500 -> 1,200 shares at 10 (12,005.12)
    assert kelly(MAIN, 100_000, 10.0, win_rate=0.55, win_loss_ratio=1.5) == 1200
    # capped at 0.25: 25,000 -> 2,500 shares would cost 25,006.50, 2,400 cost 24,006.24
    assert kelly(MAIN, 100_000, 10.0, win_rate=0.9, win_loss_ratio=2.0) == 2400


@pytest.mark.parametrize(("win_rate", "ratio"), [(0.4, 1.5), (0.3, 1.5), (0.5, 1.0), (0.0, 3.0)])
def test_kelly_without_an_edge_buys_nothing(win_rate: float, ratio: float) -> None:
    assert kelly_fraction(win_rate, ratio) == 0.0
    assert kelly(MAIN, 1_000_000, 10.0, win_rate=win_rate, win_loss_ratio=ratio) == 0


# -- bad input: one line naming the argument ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "kwargs", "message"),
    [
        (fixed_fraction, {"fraction": 0.0}, "fraction must be a fraction in \\(0, 1\\], not 0.0"),
        (fixed_fraction, {"fraction": 1.5}, "fraction must be a fraction in \\(0, 1\\]"),
        (fixed_fraction, {"price": 0.0}, "price must be > 0, not 0.0"),
        (fixed_fraction, {"price": float("nan")}, "price must be a finite number"),
        (fixed_fraction, {"equity": -1.0}, "equity must be 0 or more, not -1.0"),
        (fixed_fraction, {"cash": -5.0}, "cash must be 0 or more"),
        (fixed_fraction, {"symbol": "600000"}, "symbol: invalid symbol '600000'"),
        (volatility_target, {"atr": 0.0}, "atr must be > 0, not 0.0"),
        (volatility_target, {"atr": -0.1}, "atr must be > 0"),
        (volatility_target, {"risk_fraction": 0.0}, "risk_fraction must be a fraction in \\(0, 1\\]"),
        (volatility_target, {"atr_multiple": 0.0}, "atr_multiple must be > 0"),
        (kelly, {"win_rate": 1.1}, "win_rate must be a probability in \\[0, 1\\], not 1.1"),
        (kelly, {"win_rate": -0.1}, "win_rate must be a probability in \\[0, 1\\]"),
        (kelly, {"win_loss_ratio": 0.0}, "win_loss_ratio must be > 0, not 0.0"),
        (kelly, {"cap": 0.0}, "cap must be a fraction in \\(0, 1\\]"),
        (kelly, {"fraction": 2.0}, "fraction must be a fraction in \\(0, 1\\]"),
        (kelly, {"price": -1.0}, "price must be > 0"),
    ],
)
def test_bad_input_names_the_argument(call: Callable[..., int], kwargs: dict[str, Any], message: str) -> None:
    base: dict[str, Any] = {"symbol": MAIN, "equity": 100_000.0, "price": 10.0}
    if call is fixed_fraction:
        base["fraction"] = 0.1
    elif call is volatility_target:
        base["atr"] = 0.2
    else:
        base.update(win_rate=0.55, win_loss_ratio=1.5)
    with pytest.raises(ValueError, match=f"^{message}") as caught:
        call(**{**base, **kwargs})
    assert "\n" not in str(caught.value)


def test_numpy_scalars_are_numbers_and_bools_are_not() -> None:
    np = pytest.importorskip("numpy")
    assert fixed_fraction(MAIN, np.int64(100_000), np.float64(12.34), np.float32(0.1)) == 800
    assert buy_cost(MAIN, 12.34, np.int64(800)) == 9877.10
    with pytest.raises(ValueError, match=r"^fraction must be a finite number, not True"):
        fixed_fraction(MAIN, 100_000, 10.0, True)
    with pytest.raises(ValueError, match=r"^shares must be a whole number, 0 or more, not 1\.5"):
        buy_cost(MAIN, 10.0, 1.5)  # type: ignore[arg-type]


def test_lot_rounded_rejects_negative_shares() -> None:
    with pytest.raises(ValueError, match=r"^shares must be 0 or more, not -1"):
        lot_rounded(MAIN, -1)


# -- properties --------------------------------------------------------------------------------------------

symbols = st.sampled_from([MAIN, CHINEXT, STAR, BEIJING, "SZ000001", "SH689009", "BJ830799"])
prices = st.integers(min_value=1, max_value=300_000).map(lambda fen: fen / 100)
amounts = st.floats(min_value=0, max_value=5e7, allow_nan=False)
fractions = st.floats(min_value=1e-4, max_value=1.0)
fee_models = st.sampled_from([FeeModel(), None, FeeModel(commission_rate=0.003, min_commission=0.0)])


def _is_valid_buy(symbol: str, shares: int) -> bool:
    return shares == 0 or round_buy(symbol, shares) == shares


@settings(max_examples=150, deadline=None)
@given(symbols, amounts, prices, fractions, st.one_of(st.none(), amounts), fee_models)
def test_fixed_fraction_properties(
    symbol: str, equity: float, price: float, fraction: float, cash: float | None, fees: FeeModel | None
) -> None:
    shares = fixed_fraction(symbol, equity, price, fraction, cash=cash, fees=fees)
    assert _is_valid_buy(symbol, shares)
    budget = equity * fraction if cash is None else min(equity * fraction, cash)
    assert buy_cost(symbol, price, shares, fees) <= budget
    # the largest such quantity: the next valid one costs more
    rule = lot_rule(symbol)
    following = rule.minimum if shares == 0 else shares + rule.step
    assert buy_cost(symbol, price, following, fees) > budget
    # monotone in equity
    assert fixed_fraction(symbol, equity * 1.5 + 1, price, fraction, cash=cash, fees=fees) >= shares


@settings(max_examples=100, deadline=None)
@given(
    symbols,
    amounts,
    prices,
    st.floats(min_value=0.001, max_value=100),
    fractions,
    st.floats(min_value=0.1, max_value=10),
    st.one_of(st.none(), amounts),
)
def test_volatility_target_properties(
    symbol: str, equity: float, price: float, atr: float, risk: float, multiple: float, cash: float | None
) -> None:
    shares = volatility_target(symbol, equity, price, atr, risk_fraction=risk, atr_multiple=multiple, cash=cash)
    assert _is_valid_buy(symbol, shares)
    cost = buy_cost(symbol, price, shares)
    assert cost <= equity
    if cash is not None:
        assert cost <= cash
    # the loss at the stop stays within the risk budget
    assert shares * multiple * atr <= equity * risk * (1 + 1e-9)
    bigger = volatility_target(symbol, equity * 2 + 1, price, atr, risk_fraction=risk, atr_multiple=multiple, cash=cash)
    assert bigger >= shares


@settings(max_examples=100, deadline=None)
@given(
    symbol=symbols,
    equity=amounts,
    price=prices,
    win_rate=st.floats(min_value=0, max_value=1),
    ratio=st.floats(min_value=0.05, max_value=20),
    cap=fractions,
    fraction=fractions,
    cash=st.one_of(st.none(), amounts),
)
def test_kelly_properties(
    symbol: str,
    equity: float,
    price: float,
    win_rate: float,
    ratio: float,
    cap: float,
    fraction: float,
    cash: float | None,
) -> None:
    shares = kelly(
        symbol, equity, price, win_rate=win_rate, win_loss_ratio=ratio, cap=cap, fraction=fraction, cash=cash
    )
    assert _is_valid_buy(symbol, shares)
    stake = kelly_fraction(win_rate, ratio, cap=cap, fraction=fraction)
    assert 0 <= stake <= cap
    cost = buy_cost(symbol, price, shares)
    assert cost <= equity * stake
    if cash is not None:
        assert cost <= cash
    if win_rate - (1 - win_rate) / ratio <= 0:
        assert shares == 0
    more = kelly(
        symbol, equity + 1000, price, win_rate=win_rate, win_loss_ratio=ratio, cap=cap, fraction=fraction, cash=cash
    )
    assert more >= shares


@settings(max_examples=150, deadline=None)
@given(symbols, prices, amounts, fee_models)
def test_affordable_is_the_largest_valid_quantity(
    symbol: str, price: float, budget: float, fees: FeeModel | None
) -> None:
    shares = affordable(symbol, price, budget, fees=fees)
    assert _is_valid_buy(symbol, shares)
    assert buy_cost(symbol, price, shares, fees) <= budget
    rule = lot_rule(symbol)
    following = rule.minimum if shares == 0 else shares + rule.step
    assert buy_cost(symbol, price, following, fees) > budget


@pytest.mark.parametrize("symbol", [MAIN, STAR, BEIJING])
def test_affordable_matches_a_scan_of_every_quantity(symbol: str) -> None:
    # budgets around the commission minimum's edge (5 yuan = 0.025 % of 20,000), every one checked by brute force
    price = 7.77
    for budget in range(19_900, 20_100, 7):
        # the answer lies near budget / price = 2,561..2,586 shares: scan 2,400..2,699
        scanned = max(
            q for q in range(2_400, 2_700) if _is_valid_buy(symbol, q) and buy_cost(symbol, price, q) <= budget
        )
        assert affordable(symbol, price, budget) == scanned, budget
