"""The A-share fee model (hkrt.core.fees): hand-computed fills, the dated stamp tax, the per-order minimum
commission, rounding half up to the fen, and properties over random fills."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hkrt.core.fees import STAMP_TAX_CUT, FeeModel, Fees, round_fen

BEFORE = dt.date(2023, 8, 25)  # the Friday before the cut
AFTER = dt.date(2023, 8, 28)  # the cut's first day (a Monday)
MODEL = FeeModel()  # 0.025 %, min 5 yuan, transfer 0.001 %


def test_a_10000_yuan_buy_and_sell_before_and_after_the_stamp_tax_cut() -> None:
    # buy 1000 SH600000 @ 10.00: amount 10,000.00
    #   commission 10,000 × 0.00025 = 2.50 < 5 -> 5.00 (the minimum); transfer 10,000 × 0.00001 = 0.10
    assert MODEL.fill_fees("SH600000", "buy", 10.0, 1000, BEFORE) == Fees(5.0, 0.0, 0.1)
    assert MODEL.fill_fees("SH600000", "buy", 10.0, 1000, AFTER).total == 5.10
    # sell the same: + stamp tax 10,000 × 0.001 = 10.00 before, 10,000 × 0.0005 = 5.00 from 2023-08-28
    assert MODEL.fill_fees("SH600000", "sell", 10.0, 1000, BEFORE) == Fees(5.0, 10.0, 0.1)
    assert MODEL.fill_fees("SH600000", "sell", 10.0, 1000, BEFORE).total == 15.10
    assert MODEL.fill_fees("SH600000", "sell", 10.0, 1000, AFTER) == Fees(5.0, 5.0, 0.1)
    assert MODEL.fill_fees("SH600000", "sell", 10.0, 1000, dt.datetime(2023, 8, 28, 9, 30)).total == 10.10


def test_a_large_fill_pays_the_rate_and_every_component_rounds_half_up_to_the_fen() -> None:
    # sell 300 SZ000001 @ 12.34 on 2024-01-02: amount 3,702.00
    #   commission 3,702 × 0.00025 = 0.9255 -> but the order's first fill: topped up to 5.00
    #   stamp 3,702 × 0.0005 = 1.851 -> 1.85; transfer 3,702 × 0.00001 = 0.03702 -> 0.04
    assert MODEL.fill_fees("SZ000001", "sell", 12.34, 300, dt.date(2024, 1, 2)) == Fees(5.0, 1.85, 0.04)
    # a later fill of an order that paid 5.00 already: the rate only, 0.9255 -> 0.93
    later = MODEL.fill_fees("SZ000001", "sell", 12.34, 300, dt.date(2024, 1, 2), commission_so_far=5.0)
    assert later == Fees(0.93, 1.85, 0.04) and later.total == 2.82
    # buy 10,100 @ 20.00: amount 202,000.00, commission 202,000 × 0.00025 = 50.50, transfer 2.02
    assert MODEL.fill_fees("SH600519", "buy", 20.0, 10_100, AFTER) == Fees(50.5, 0.0, 2.02)
    # half up, not to even: 0.125 -> 0.13 (a float would print 0.125 and round to 0.12 with round())
    assert round_fen(0.125) == 0.13 and round_fen(0.135) == 0.14 and round_fen(2.675) == 2.68
    # 10.05 × 100 is 1005.00 in decimal (1004.9999… as a binary float): commission 0.25125 -> 0.25
    assert MODEL.fill_fees("SH600000", "buy", 10.05, 100, AFTER, commission_so_far=5.0).commission == 0.25


def test_the_minimum_is_per_order_topped_up_across_fills() -> None:
    # an order of 3 fills of 4,000 yuan each: 1.00 by rate each
    first = MODEL.fill_fees("SH600000", "buy", 10.0, 400, AFTER)  # max(1.00, 5 - 0) = 5.00
    second = MODEL.fill_fees("SH600000", "buy", 10.0, 400, AFTER, commission_so_far=first.commission)
    assert (first.commission, second.commission) == (5.0, 1.0)  # max(1.00, 5 - 5) = 1.00
    # a partial top-up: 3.20 paid so far -> this fill pays max(1.00, 1.80) = 1.80
    assert MODEL.fill_fees("SH600000", "buy", 10.0, 400, AFTER, commission_so_far=3.2).commission == 1.8
    # the whole order at once: 12,000 × 0.00025 = 3.00 -> 5.00; in 3 fills 5 + 1 + 1 = 7.00 (per-fill top-up)
    assert MODEL.fill_fees("SH600000", "buy", 10.0, 1200, AFTER).commission == 5.0


def test_funds_pay_no_stamp_tax_nor_transfer_fee_and_markets_can_be_excluded() -> None:
    # sell 100,000 SH510300 (an ETF) @ 4.000: amount 400,000: commission 100.00, nothing else
    assert MODEL.fill_fees("SH510300", "sell", 4.0, 100_000, AFTER) == Fees(100.0, 0.0, 0.0)
    # Beijing: charged by default (the conservative choice), excluded on request
    assert MODEL.fill_fees("BJ430047", "buy", 10.0, 1000, AFTER).transfer_fee == 0.1
    no_bj = FeeModel(transfer_fee_markets=frozenset({"SH", "SZ"}))
    assert no_bj.fill_fees("BJ430047", "buy", 10.0, 1000, AFTER).transfer_fee == 0.0
    assert no_bj.fill_fees("sh600000", "buy", 10.0, 1000, AFTER).transfer_fee == 0.1  # any spelling


def test_a_custom_schedule_and_bad_input_are_one_clear_error() -> None:
    cheap = FeeModel(commission_rate=0.0001, min_commission=0.0, transfer_fee_rate=0.0)
    # 10,000 × 0.0001 = 1.00, no minimum, no transfer fee
    assert cheap.fill_fees("SH600000", "buy", 10.0, 1000, AFTER) == Fees(1.0, 0.0, 0.0)
    assert MODEL.stamp_tax_rate(STAMP_TAX_CUT - dt.timedelta(days=1)) == 0.001
    assert MODEL.stamp_tax_rate(STAMP_TAX_CUT) == 0.0005
    assert FeeModel(stamp_tax=((dt.date(2000, 1, 1), 0.002),)).stamp_tax_rate(dt.date(1999, 1, 1)) == 0.0
    for kwargs, message in (
        ({"commission_rate": -0.1}, "commission_rate must be a fraction"),
        ({"min_commission": float("nan")}, "min_commission must be"),
        ({"stamp_tax": ()}, "at least one"),
        ({"stamp_tax": ((AFTER, 0.001), (BEFORE, 0.001))}, "increasing date order"),
        ({"transfer_fee_markets": frozenset({"HK"})}, "not HK"),
    ):
        with pytest.raises(ValueError, match=message):
            FeeModel(**kwargs)  # type: ignore[arg-type]
    for args, message in (
        (("SH600000", "short", 10.0, 100, AFTER), "side 'short'"),
        (("SH600000", "buy", 0.0, 100, AFTER), "price must be > 0"),
        (("SH600000", "buy", 10.0, 0, AFTER), "shares must be > 0"),
    ):
        with pytest.raises(ValueError, match=message):
            MODEL.fill_fees(*args)  # type: ignore[arg-type]


prices = st.integers(min_value=1, max_value=300_000).map(lambda fen: fen / 100)  # 0.01 .. 3000.00 yuan
quantities = st.integers(min_value=1, max_value=2_000_000)
days = st.dates(min_value=dt.date(2010, 1, 1), max_value=dt.date(2030, 12, 31))
symbols = st.sampled_from(["SH600000", "SZ000001", "SZ300750", "SH688981", "BJ430047"])


@given(symbols, prices, quantities, quantities, days)
def test_fees_never_fall_as_shares_grow(symbol: str, price: float, a: int, b: int, day: dt.date) -> None:
    small, large = sorted((a, b))
    for side in ("buy", "sell"):
        lo, hi = (MODEL.fill_fees(symbol, side, price, n, day) for n in (small, large))
        assert lo.commission <= hi.commission and lo.stamp_tax <= hi.stamp_tax
        assert lo.transfer_fee <= hi.transfer_fee and lo.total <= hi.total


@given(symbols, prices, quantities, days, st.integers(min_value=0, max_value=1000).map(lambda fen: fen / 100))
def test_an_order_pays_at_least_the_minimum(symbol: str, price: float, n: int, day: dt.date, paid: float) -> None:
    fees = MODEL.fill_fees(symbol, "buy", price, n, day, commission_so_far=paid)
    assert paid + fees.commission >= MODEL.min_commission - 1e-9
    assert fees.commission >= round_fen(price * n * MODEL.commission_rate) - 0.01  # never below the rate
    if paid >= MODEL.min_commission:  # the minimum is met: the rate alone
        assert fees.commission == pytest.approx(round_fen(price * n * MODEL.commission_rate), abs=0.01)


@given(symbols, prices, quantities, days)
def test_a_sell_costs_the_buy_plus_the_stamp_tax(symbol: str, price: float, n: int, day: dt.date) -> None:
    buy = MODEL.fill_fees(symbol, "buy", price, n, day)
    sell = MODEL.fill_fees(symbol, "sell", price, n, day)
    assert buy.stamp_tax == 0.0 and sell.commission == buy.commission and sell.transfer_fee == buy.transfer_fee
    rate = 0.001 if day < STAMP_TAX_CUT else 0.0005
    assert sell.stamp_tax == pytest.approx(round(price * n * rate, 2), abs=0.0100001)
    assert sell.total == pytest.approx(buy.total + sell.stamp_tax, abs=1e-9) and sell.total >= buy.total


@given(symbols, prices, quantities)
def test_the_stamp_tax_halves_at_the_date_boundary(symbol: str, price: float, n: int) -> None:
    before = MODEL.fill_fees(symbol, "sell", price, n, STAMP_TAX_CUT - dt.timedelta(days=1)).stamp_tax
    after = MODEL.fill_fees(symbol, "sell", price, n, STAMP_TAX_CUT).stamp_tax
    # halved, up to rounding: each is within half a fen of its exact value, so 2 × after within a fen
    assert after <= before and abs(before - 2 * after) <= 0.015
    assert MODEL.fill_fees(symbol, "sell", price, n, STAMP_TAX_CUT + dt.timedelta(days=400)).stamp_tax == after


def test_an_orders_fills_merge_into_one_commission() -> None:
    from hkrt.core.fees import FeeModel

    model, day = FeeModel(), dt.date(2026, 11, 20)

    def commissions(amounts: list[float]) -> list[float]:
        paid, so_far, traded = [], 0.0, 0.0
        for amount in amounts:  # price 10.00: shares = amount / 10
            c = model.fill_fees("SH600000", "buy", 10.0, amount / 10, day, commission_so_far=so_far,
                                amount_so_far=traded).commission  # fmt: skip
            paid.append(c)
            so_far, traded = so_far + c, traded + amount
        return paid

    # three fills of 4,000: 0.025 % of 12,000 is 3.00 < 5: the minimum once, then nothing
    assert commissions([4_000, 4_000, 4_000]) == [5.0, 0.0, 0.0]
    # 10,000 (2.50 -> 5.00), then 30,000 in all (7.50: 2.50 more), then 50,000 (12.50: 5.00 more)
    assert commissions([10_000, 20_000, 20_000]) == [5.0, 2.5, 5.0]
    # without the amount so far: each fill its own rate, the first topped up (an upper bound)
    assert model.fill_fees("SH600000", "buy", 10.0, 400, day, commission_so_far=5.0).commission == 1.0


@given(st.lists(st.integers(min_value=1, max_value=5_000), min_size=1, max_size=8))
def test_split_fills_pay_the_whole_orders_commission(lots: list[int]) -> None:
    from hkrt.core.fees import FeeModel

    model, day = FeeModel(), dt.date(2026, 11, 20)
    so_far = traded = 0.0
    for n in lots:
        so_far += model.fill_fees("SZ000001", "sell", 12.34, n * 100, day, commission_so_far=so_far,
                                  amount_so_far=traded).commission  # fmt: skip
        traded += 12.34 * n * 100
    whole = model.fill_fees("SZ000001", "sell", 12.34, sum(lots) * 100, day).commission
    assert so_far == pytest.approx(whole, abs=0.011)  # the same, within a fen of rounding
