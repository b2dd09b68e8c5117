"""The PaperBroker on a real EventBus: spots built by hand, every matching rule with hand-computed fills
(shares, prices, fees, cash after), partial fills over several spots, IOC / FOK, expiry at the close,
limit-up / limit-down, T+1, cancel, the counter's refusals, reports kept while no bus takes them, and the
same events giving the same reports (docs/paper-broker.md)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import threading
from collections.abc import Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt.adapters import registry
from hkrt.adapters.paper.execution import PaperBroker, TestOrderBroker
from hkrt.broker import OrderRequest, OrderResult, OrderSide, OrderStatus
from hkrt.bus import DayClosed, EventBus, ExecutionReport, SpotBatch
from hkrt.core.fees import FeeModel

DAY = dt.date(2026, 11, 20)  # a Friday
NEXT = dt.date(2026, 11, 23)  # the Monday after
SYMBOL = "SH600000"  # main board: ±10 %, lots of 100; previous close 10.00 -> limits 9.00 .. 11.00
ASKS = ((10.01, 1000), (10.02, 2000), (10.03, 400))
BIDS = ((10.00, 1000), (9.99, 1000))


def at(hms: str, day: dt.date = DAY) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hms))


def quote(
    hms: str,
    close: float,
    volume: float,
    *,
    asks: Sequence[tuple[float, float]] = ASKS,
    bids: Sequence[tuple[float, float]] = BIDS,
    day: dt.date = DAY,
    symbol: str = SYMBOL,
    name: str = "浦发银行",
    prev_close: float = 10.0,
    low: float | None = None,
    high: float | None = None,
) -> hkrt.Spot:
    """A spot with its book (levels given best first); the day's low / high default to open 10.00 and close."""
    return hkrt.Spot(
        symbol, at(hms, day), name=name, yesterday_close=prev_close, open=10.0,
        high=max(10.0, close) if high is None else high, low=min(10.0, close) if low is None else low,
        close=close, volume=volume, amount=volume * close,
        ask=[p for p, _ in asks], ask_volume=[v for _, v in asks],
        bid=[p for p, _ in bids], bid_volume=[v for _, v in bids],
    )  # fmt: skip


class Venue:
    """A PaperBroker attached to a running EventBus, and every report it published."""

    def __init__(self, cash: float = 100_000.0, **options: object) -> None:
        self.bus = EventBus().start()
        self.broker = PaperBroker(cash, **options)  # type: ignore[arg-type]
        self.broker.attach(self.bus)
        self.reports: list[ExecutionReport] = []
        self.bus.subscribe(ExecutionReport, self.reports.append)

    def spots(self, *spots: hkrt.Spot) -> None:
        assert self.bus.publish(SpotBatch.from_spots(list(spots)))
        assert self.bus.wait_idle()

    def order(
        self, side: str, shares: float, price: float | None, when: dt.datetime, cid: str, tif: str = "day",
        symbol: str = SYMBOL,
    ) -> OrderResult:  # fmt: skip
        kind = "market" if price is None else "limit"
        request = OrderRequest(when, symbol[:2], symbol[2:], price or 0.0, shares, client_order_id=cid,
                               order_type=kind, time_in_force=tif)  # fmt: skip
        result = self.broker.submit(OrderSide.Buy if side == "buy" else OrderSide.Sell, request)
        assert self.bus.wait_idle()
        return result

    def close(self, day: dt.date = DAY) -> None:
        assert self.bus.publish(DayClosed(day, "day_end", 0))
        assert self.bus.wait_idle()

    def fills(self, cid: str) -> list[tuple[int, float, float | None]]:
        return [(r.shares, r.price, r.fees) for r in self.reports if r.kind == "fill" and r.client_order_id == cid]

    def kinds(self, cid: str) -> list[str]:
        return [r.kind for r in self.reports if r.client_order_id == cid]

    def last(self, cid: str) -> ExecutionReport:
        return [r for r in self.reports if r.client_order_id == cid][-1]


@pytest.fixture
def venue() -> Iterator[Venue]:
    v = Venue()
    yield v
    v.bus.stop()


def holding_venue(shares: int = 1000) -> Venue:
    """A venue whose account bought ``shares`` on DAY at 10.00 (fees 5.00 + 0.10 for 1000) and is now on NEXT."""
    v = Venue()
    v.spots(quote("14:00:00", 10.0, 50_000, asks=((10.0, 100_000),)))
    assert v.order("buy", shares, 10.0, at("14:00:01"), "setup").status == OrderStatus.Sent
    assert v.broker.positions[("SH", "600000")].number == shares
    v.close(DAY)
    return v


def test_a_market_buy_walks_the_asks_then_fills_the_rest_over_later_spots(venue: Venue) -> None:
    venue.spots(quote("10:00:00", 10.0, 10_000))
    sent = venue.order("buy", 1000, None, at("10:00:01"), "m1")
    assert sent.status == OrderStatus.Sent and sent.order_id == "P00000001"
    # on arrival: a quarter of each ask level: 250 @ 10.01, 500 @ 10.02, 100 @ 10.03 (850); 150 rest
    # The order's commission is max(0.025 % of all its fills so far, 5.00), each fill paying the increase:
    #   250 × 10.01 = 2502.50: 0.63 on 2,502.50 -> the minimum 5.00; transfer 0.025025 -> 0.03
    #   500 × 10.02 = 5010.00: 0.025 % of 7,512.50 = 1.88 < 5: 0 more; transfer 0.0501 -> 0.05
    #   100 × 10.03 = 1003.00: of 8,515.50 = 2.13 < 5: 0 more; transfer 0.01003 -> 0.01
    assert venue.fills("m1") == [(250, 10.01, 5.03), (500, 10.02, 0.05), (100, 10.03, 0.01)]
    # 100,000 - 8,515.50 - 5.09 = 91,479.41; 150 left reserved at the limit up 11.00: 1,650 + 0 commission
    # (0.025 % of 10,165.50 = 2.54 < the 5.00 paid) + transfer 0.0165 -> 0.02
    assert venue.broker.cash == pytest.approx(91_479.41)
    assert venue.broker.reserved_cash == pytest.approx(1_650.02)
    assert venue.broker.available_cash == pytest.approx(89_829.39)
    # 400 traded since: a quarter is 100, at the new book's best ask: 1,001.00 -> 0 commission + 0.01
    venue.spots(quote("10:00:03", 10.0, 10_400))
    # 600 more traded: 150 allowed, 50 wanted: 500.50 -> 0 commission (10,017.00 × 0.025 % = 2.50), 0.005005 -> 0.01
    venue.spots(quote("10:00:06", 10.0, 11_000))
    assert venue.fills("m1")[3:] == [(100, 10.01, 0.01), (50, 10.01, 0.01)]
    assert venue.kinds("m1") == ["accepted"] + ["fill"] * 5
    last = venue.last("m1")
    assert (last.cumulative_shares, last.datetime, last.trade_id) == (1000, at("10:00:06"), "PT00000005")
    # 100,000 - 10,017.00 - 5.11 (5.00 commission, once for the order, + 0.11 transfer fees)
    assert venue.broker.cash == pytest.approx(89_977.89) and venue.broker.reserved_cash == 0
    position = venue.broker.positions[("SH", "600000")]
    assert position.number == 1000 and position.cost_price == pytest.approx(10_022.11 / 1000)  # with its fees
    assert venue.broker.stats()["open_orders"] == 0


def test_a_limit_buy_fills_at_its_limit_only_once_the_market_trades_at_or_through_it(venue: Venue) -> None:
    venue.spots(quote("10:00:00", 10.0, 10_000))
    assert venue.order("buy", 1000, 9.95, at("10:00:01"), "l1").ok  # the best ask 10.01 is above: it rests
    assert venue.kinds("l1") == ["accepted"]
    # last 9.97, new low 9.97: not down to 9.95 yet (2,000 traded, but not at the limit)
    venue.spots(quote("10:00:03", 9.97, 12_000, asks=((9.98, 500),)))
    assert venue.fills("l1") == []
    # last 9.96 but the day's low went to 9.94 since: traded through 9.95; a quarter of 2,000 = 500 @ 9.95
    #   4,975.00: commission 1.2438 -> topped up to 5.00, transfer 0.0498 -> 0.05
    venue.spots(quote("10:00:06", 9.96, 14_000, asks=((9.97, 500),), low=9.94))
    # last 9.95, at the limit: 500 more (0.025 % of the order's 9,950.00 = 2.49 < the 5.00 paid: no more
    # commission; transfer 0.05)
    venue.spots(quote("10:00:09", 9.95, 16_000, asks=((9.96, 500),), low=9.94))
    assert venue.fills("l1") == [(500, 9.95, 5.05), (500, 9.95, 0.05)]
    assert venue.last("l1").cumulative_shares == 1000
    assert venue.broker.cash == pytest.approx(100_000 - 9_950 - 5.10)  # 90,044.90


def test_a_resting_limit_the_new_book_reaches_fills_at_the_books_prices(venue: Venue) -> None:
    venue.spots(quote("10:00:00", 10.0, 10_000))
    assert venue.order("buy", 1000, 10.0, at("10:00:01"), "l2").ok  # asks from 10.01: rests
    # the asks came down to 9.99 (300) and 10.00 (1,000); 2,000 traded: at most 500 this spot
    #   300 @ 9.99 = 2,997.00: 0.7493 -> topped up to 5.00, transfer 0.02997 -> 0.03
    #   200 @ 10.00 = 2,000.00: 0.025 % of the order's 4,997.00 = 1.25 < 5.00 paid: 0; transfer 0.02
    venue.spots(quote("10:00:03", 9.99, 12_000, asks=((9.99, 300), (10.0, 1000), (10.01, 500))))
    assert venue.fills("l2") == [(300, 9.99, 5.03), (200, 10.0, 0.02)]
    # a spot without trades moves nothing, however good its book
    venue.spots(quote("10:00:06", 9.99, 12_000, asks=((9.99, 5000),)))
    assert len(venue.fills("l2")) == 2
    assert venue.broker.open_orders()[0]["filled"] == 500


def test_a_marketable_limit_sell_takes_the_bids_down_to_its_limit() -> None:
    v = holding_venue()
    try:
        bids = ((10.02, 800), (10.01, 400), (10.0, 2000), (9.99, 5000))
        v.spots(quote("09:30:00", 10.0, 1_000, bids=bids, day=NEXT))
        assert v.broker.sellable("SH600000") == 1000
        assert v.order("sell", 1000, 10.0, at("09:30:01", NEXT), "s1").ok
        # a quarter of each bid level it reaches: 200 @ 10.02, 100 @ 10.01, 500 @ 10.00 (9.99 is below it)
        #   2,004.00: commission 0.501 -> topped up to 5.00, stamp tax 0.05 % 1.002 -> 1.00, transfer 0.02
        #   1,001.00: commission 0 (the order's 3,005.00 × 0.025 % = 0.75 < 5.00) + stamp 0.5005 -> 0.50
        #             + transfer 0.01 = 0.51
        #   5,000.00: 0 (8,005.00 -> 2.00 < 5.00) + stamp 2.50 + transfer 0.05 = 2.55
        assert v.fills("s1") == [(200, 10.02, 6.02), (100, 10.01, 0.51), (500, 10.0, 2.55)]
        # bought 1000 @ 10.00 for 10,005.10; sold 800 for 8,005.00 - 9.08
        assert v.broker.cash == pytest.approx(100_000 - 10_005.10 + 8_005.00 - 9.08)
        assert v.broker.positions[("SH", "600000")].number == 200 and v.broker.sellable("SH600000") == 0
    finally:
        v.bus.stop()


def test_ioc_fills_what_it_can_at_once_and_fok_all_or_nothing(venue: Venue) -> None:
    venue.spots(quote("10:00:00", 10.0, 10_000, asks=((10.01, 1000), (10.02, 400))))
    assert venue.order("buy", 1000, None, at("10:00:01"), "ioc", tif="ioc").ok
    # 250 @ 10.01 and 100 @ 10.02 at once, the other 650 cancelled
    assert [(n, p) for n, p, _ in venue.fills("ioc")] == [(250, 10.01), (100, 10.02)]
    assert venue.kinds("ioc") == ["accepted", "fill", "fill", "cancelled"]
    assert venue.last("ioc").reason == "ioc: 650 of 1000 did not fill at once"
    cash = venue.broker.cash
    assert venue.broker.reserved_cash == 0 and venue.broker.available_cash == pytest.approx(cash)
    # what the ioc took from this quote's book is gone: 0 left at 10.01, 0 at 10.02
    assert venue.order("buy", 100, 10.02, at("10:00:02"), "fok1", tif="fok").ok
    assert venue.kinds("fok1") == ["accepted", "cancelled"]
    assert venue.last("fok1").reason == "fok: 0 of 100 could fill at once"
    # a fresh book: 250 at 10.01 + 100 at 10.02 are there for a fok of 300: all of it
    venue.spots(quote("10:00:03", 10.0, 10_000, asks=((10.01, 1000), (10.02, 400))))
    assert venue.order("buy", 300, 10.02, at("10:00:04"), "fok2", tif="fok").ok
    assert [(n, p) for n, p, _ in venue.fills("fok2")] == [(250, 10.01), (50, 10.02)]
    assert venue.kinds("fok2") == ["accepted", "fill", "fill"]
    assert venue.broker.cash < cash and venue.broker.stats()["open_orders"] == 0


def test_day_orders_expire_at_the_close_or_at_the_first_spot_of_a_later_day(venue: Venue) -> None:
    venue.spots(quote("14:00:00", 10.0, 10_000))
    assert venue.order("buy", 1000, 9.5, at("14:00:01"), "d1").ok
    assert venue.broker.reserved_cash == pytest.approx(9_500 + 5.0 + 0.10)  # 9.5 × 1000 + min commission + 0.095
    venue.close(DAY)
    assert venue.kinds("d1") == ["accepted", "expired"]
    expired = venue.last("d1")
    assert (expired.datetime, expired.reason) == (at("15:00:00"), "day order expired at the close of 2026-11-20")
    assert venue.broker.reserved_cash == 0 and venue.broker.cash == 100_000
    late = venue.order("buy", 100, 10.0, at("15:00:05"), "late")
    assert late.status == OrderStatus.Rejected and late.error == "the market day 2026-11-20 is closed"
    # no DayClosed this time: the first spot of the next day expires the day before's orders
    venue.spots(quote("10:00:00", 10.0, 10_000, day=NEXT))
    assert venue.order("buy", 1000, 9.5, at("10:00:01", NEXT), "d2").ok
    venue.spots(quote("09:30:00", 10.0, 1_000, day=dt.date(2026, 11, 24)))
    assert venue.kinds("d2") == ["accepted", "expired"]
    assert venue.last("d2").datetime == at("15:00:00", NEXT)


def test_no_buy_fills_at_limit_up_with_an_empty_ask_until_the_board_opens(venue: Venue) -> None:
    sealed = {"asks": (), "bids": ((11.0, 50_000),), "high": 11.0}
    venue.spots(quote("10:00:00", 11.0, 100_000, **sealed))  # type: ignore[arg-type]
    assert venue.order("buy", 1000, 11.0, at("10:00:01"), "up").ok  # at the limit up: allowed, rests
    assert venue.order("buy", 100, None, at("10:00:01"), "up-m").ok
    venue.spots(quote("10:00:03", 11.0, 140_000, **sealed))  # type: ignore[arg-type]
    assert venue.fills("up") == [] and venue.fills("up-m") == []  # 40,000 traded at 11.00, none for us
    # the board opens: 2,000 offered at 11.00, 4,000 traded -> 1,000 for our buys, first come first served
    venue.spots(quote("10:00:06", 11.0, 144_000, asks=((11.0, 2000),), bids=((10.99, 100),), high=11.0))
    assert [(n, p) for n, p, _ in venue.fills("up")] == [(1000, 11.0)]
    assert venue.fills("up-m") == []  # the budget went to the older order
    assert venue.order("buy", 100, 11.01, at("10:00:07"), "over").error == (
        "limit price 11.01 is outside the day's limits 9..11 of SH600000"
    )


def test_no_sell_fills_at_limit_down_with_an_empty_bid() -> None:
    v = holding_venue()
    try:
        sealed = {"asks": ((9.0, 80_000),), "bids": (), "low": 9.0, "day": NEXT}
        v.spots(quote("10:00:00", 9.0, 100_000, **sealed))  # type: ignore[arg-type]
        assert v.order("sell", 1000, 9.0, at("10:00:01", NEXT), "down").ok
        v.spots(quote("10:00:03", 9.0, 150_000, **sealed))  # type: ignore[arg-type]
        assert v.fills("down") == []
        # a bid appears (9.00 × 300): 1,000 traded -> 250 for us, from the bid
        v.spots(quote("10:00:06", 9.0, 151_000, asks=((9.01, 100),), bids=((9.0, 300),), low=9.0, day=NEXT))
        assert [(n, p) for n, p, _ in v.fills("down")] == [(250, 9.0)]
    finally:
        v.bus.stop()


def test_t_plus_one_shares_bought_today_are_sellable_from_the_next_trading_day(venue: Venue) -> None:
    venue.spots(quote("14:00:00", 10.0, 50_000, asks=((10.0, 100_000),)))
    assert venue.order("buy", 1000, 10.0, at("14:00:01"), "b").ok
    assert venue.fills("b") == [(1000, 10.0, 5.1)]  # 10,000.00: commission 2.50 -> 5.00, transfer 0.10
    refused = venue.order("sell", 1000, 10.0, at("14:00:02"), "same-day")
    assert refused.status == OrderStatus.Rejected
    assert refused.error.startswith("insufficient shares of SH600000: 0 sellable (1000 bought today")
    venue.close(DAY)
    venue.spots(quote("09:30:00", 10.5, 10_000, bids=((10.5, 4000),), day=NEXT))
    assert venue.broker.sellable("SH600000") == 1000
    assert venue.order("sell", 600, 10.5, at("09:30:01", NEXT), "s1").ok  # 1,000 of the bid at once: all 600
    # 6,300.00: commission 1.575 -> 5.00 (minimum), stamp 0.05 % 3.15, transfer 0.063 -> 0.06: 8.21
    assert venue.fills("s1") == [(600, 10.5, 8.21)]
    assert venue.order("sell", 400, 11.0, at("09:30:02", NEXT), "s2").ok  # rests above the market
    assert venue.broker.sellable("SH600000") == 0  # the rest is held by the open sell
    assert venue.order("sell", 100, 10.5, at("09:30:03", NEXT), "s3").error.startswith(
        "insufficient shares of SH600000: 0 sellable (0 bought today, sellable from the next trading day; "
        "400 held by open sells)"
    )
    assert venue.broker.cash == pytest.approx(100_000 - 10_005.10 + 6_300 - 8.21)


def test_cancel_takes_the_rest_of_an_open_order_off_the_counter(venue: Venue) -> None:
    venue.spots(quote("10:00:00", 10.0, 10_000))
    order_id = venue.order("buy", 1000, 10.01, at("10:00:01"), "c1").order_id
    assert order_id is not None and venue.fills("c1") == [(250, 10.01, 5.03)]  # a quarter of the ask at once
    assert venue.broker.reserved_cash > 0
    cancelled = venue.broker.cancel(order_id)
    assert venue.bus.wait_idle()
    assert (cancelled.status, cancelled.order_id) == (OrderStatus.Sent, order_id)
    assert venue.kinds("c1") == ["accepted", "fill", "cancelled"]
    report = venue.last("c1")
    assert (report.reason, report.cumulative_shares, report.broker_order_id) == ("cancelled by request", 250, order_id)
    assert venue.broker.reserved_cash == 0 and venue.broker.stats()["cancelled"] == 1
    again = venue.broker.cancel(order_id)
    assert again.status == OrderStatus.Rejected and again.error == f"order {order_id} is cancelled"
    assert venue.broker.cancel("P99999999").error == "unknown order P99999999"
    venue.spots(quote("10:00:03", 10.0, 20_000))
    assert len(venue.fills("c1")) == 1  # nothing after the cancel


@pytest.mark.parametrize(
    ("side", "shares", "price", "symbol", "error"),
    [
        ("buy", 100, 10.005, SYMBOL, "limit price 10.005 is off the tick of SH600000"),
        ("buy", 100, 8.99, SYMBOL, "limit price 8.99 is outside the day's limits 9..11 of SH600000"),
        ("buy", 150, 10.0, SYMBOL, "150 shares is off the lot rule of the main board: buys of at least 100, in steps"),
        ("buy", 199, 50.0, "SH688001", "199 shares is off the lot rule of the star board: buys of at least 200"),
        ("buy", 100, 10.51, "SZ000004", "limit price 10.51 is outside the day's limits 9.5..10.5 of SZ000004"),
        ("buy", 100, 10.0, "SZ000001", "SZ000001 is suspended: its quote of 2026-11-20 shows no trading"),
        ("buy", 100, 10.0, "SZ000002", "SZ000002 has no quote: suspended, or not in the feed"),
        ("buy", 100, 10.0, "SZ000003", "SZ000003 has no quote on 2026-11-20: suspended, or its first spot"),
        ("buy", 20_000, 10.0, SYMBOL, "insufficient cash: 200052.00 needed with estimated fees, 100000.00 available"),
        ("sell", 100, 10.0, SYMBOL, "insufficient shares of SH600000: 0 sellable"),
        ("buy", 100.5, 10.0, SYMBOL, "100.5 shares is not a whole number of shares"),
    ],
)
def test_the_counter_refuses_at_once_with_one_line_and_no_report(
    venue: Venue, side: str, shares: float, price: float, symbol: str, error: str
) -> None:
    venue.spots(
        quote("10:00:00", 10.0, 10_000),
        quote("10:00:00", 50.0, 10_000, symbol="SH688001", prev_close=50.0, asks=((50.01, 100),)),
        quote("10:00:00", 10.0, 10_000, symbol="SZ000004", name="*ST 某某"),  # risk warning: ±5 %
        quote("10:00:00", 10.0, 0, symbol="SZ000001", asks=(), bids=()),  # a quote, no trading: suspended
        quote("10:00:00", 10.0, 10_000, symbol="SZ000003", day=dt.date(2026, 11, 19)),  # yesterday's only
    )
    result = venue.order(side, shares, price, at("10:00:01"), "bad", symbol=symbol)
    assert result.status == OrderStatus.Rejected and result.error.startswith(error), result.error
    assert "\n" not in result.error and venue.reports == []
    assert venue.broker.stats()["rejected"] == 1 and venue.broker.records[-1].result.error == result.error


def test_open_orders_are_capped_and_stale_orders_refused() -> None:
    v = Venue(max_open_orders=2)
    try:
        v.spots(quote("10:00:00", 10.0, 10_000))
        assert v.order("buy", 100, 9.0, at("10:00:01"), "a").ok and v.order("buy", 100, 9.0, at("10:00:01"), "b").ok
        assert v.order("buy", 100, 9.0, at("10:00:01"), "c").error == "too many open orders: 2 (max_open_orders)"
        assert v.broker.cancel(v.broker.open_orders()[0]["order_id"]).ok
        assert v.order("buy", 100, 9.0, at("10:00:02"), "d").ok  # room again
        stale = v.order("buy", 100, 9.0, at("10:00:01", dt.date(2026, 11, 19)), "e")
        assert stale.error == "the order is dated 2026-11-19, the market is on 2026-11-20"
    finally:
        v.bus.stop()


def test_a_spot_dated_at_the_orders_time_does_not_fill_it(venue: Venue) -> None:
    """A strategy that orders on a spot never trades on the volume that spot reported."""
    venue.spots(quote("10:00:00", 10.0, 10_000))
    assert venue.order("buy", 1000, 9.95, at("10:00:03"), "now").ok
    venue.spots(quote("10:00:03", 9.9, 20_000, asks=((9.96, 100),)))  # the spot the strategy reacted to
    assert venue.fills("now") == []
    venue.spots(quote("10:00:06", 9.9, 24_000, asks=((9.96, 100),)))  # 4,000 later: 1,000 through 9.95
    assert venue.fills("now") == [(1000, 9.95, 5.1)]  # 9,950.00: 2.4875 -> 5.00; transfer 0.0995 -> 0.10


def test_reports_wait_for_a_bus_and_are_never_lost() -> None:
    broker = PaperBroker(100_000)
    broker.on_spots([quote("10:00:00", 10.0, 10_000)])  # driven without a bus
    assert broker.submit(OrderSide.Buy, OrderRequest(at("10:00:01"), "SH", "600000", 9.0, 100, client_order_id="w")).ok
    assert broker.stats()["reports_waiting"] == 1
    got: list[ExecutionReport] = []
    with EventBus() as bus:
        bus.subscribe(ExecutionReport, got.append)
        broker.attach(bus)  # the waiting report goes out now
        assert bus.wait_idle() and [r.kind for r in got] == ["accepted"]
    # the bus stopped: a report is refused, counted, kept, and sent once a bus runs again
    broker.cancel("P00000001")
    stats = broker.stats()
    assert (stats["report_publish_failures"], stats["reports_waiting"]) == (1, 1)
    with EventBus() as bus2:
        bus2.subscribe(ExecutionReport, got.append)
        broker.attach(bus2)
        assert bus2.wait_idle()
    assert [r.kind for r in got] == ["accepted", "cancelled"] and broker.stats()["reports_published"] == 2
    broker.detach()


def test_past_its_bound_the_oldest_waiting_report_is_dropped_loudly(caplog: pytest.LogCaptureFixture) -> None:
    broker = PaperBroker(100_000, max_undelivered=2)  # no bus ever attached
    broker.on_spots([quote("10:00:00", 10.0, 10_000)])
    with caplog.at_level("WARNING", logger="hkrt.paper"):
        for i in range(3):
            broker.submit(
                OrderSide.Buy, OrderRequest(at("10:00:01"), "SH", "600000", 9.0, 100, client_order_id=f"o{i}")
            )
    assert broker.stats()["reports_dropped"] == 1 and broker.stats()["reports_waiting"] == 2
    assert any("execution report dropped" in r.getMessage() for r in caplog.records)


def test_orders_from_another_thread_while_spots_flow_through_a_tiny_bus_all_report() -> None:
    """Backpressure both ways: a producer thread waits for room, the callback thread never waits."""
    bus = EventBus(max_events=2).start()
    broker = PaperBroker(10_000_000)
    broker.attach(bus)
    got: list[ExecutionReport] = []
    bus.subscribe(ExecutionReport, got.append)
    try:
        broker.on_spots([quote("10:00:00", 10.0, 10_000)])

        def submit_many() -> None:
            for i in range(200):
                request = OrderRequest(at("10:00:01"), "SH", "600000", 0, 100, client_order_id=f"t{i}",
                                       order_type="market", time_in_force="ioc")  # fmt: skip
                assert broker.submit(OrderSide.Buy, request).ok

        worker = threading.Thread(target=submit_many)
        worker.start()
        for i in range(200):
            bus.publish(SpotBatch.from_spots([quote(f"10:00:{2 + i // 100:02d}.{i % 100:02d}", 10.0, 10_000 + i)]))
        worker.join(30)
        assert not worker.is_alive() and bus.wait_idle(30)
    finally:
        bus.stop()
    stats = broker.stats()
    assert stats["reports_waiting"] == 0 and stats["reports_published"] == len(got)
    first: dict[str, ExecutionReport] = {}
    last: dict[str, ExecutionReport] = {}
    for r in got:
        first.setdefault(r.client_order_id, r)
        last[r.client_order_id] = r
    assert len(first) == 200 and all(r.kind == "accepted" for r in first.values())
    # every ioc ended: cancelled (the rest of it), or filled whole by its last fill
    assert all(r.kind == "cancelled" or (r.kind == "fill" and r.cumulative_shares == 100) for r in last.values())


def scripted_day() -> list[ExecutionReport]:
    """A day of orders and spots (several orders per symbol, partial fills, cancel, expiry) on a fresh venue."""
    v = Venue(participation=0.3)
    try:
        v.spots(quote("09:30:00", 10.0, 5_000), quote("09:30:00", 20.0, 5_000, symbol="SZ000001", prev_close=20.0,
                asks=((20.01, 900), (20.02, 900)), bids=((19.99, 900),)))  # fmt: skip
        v.order("buy", 2000, None, at("09:30:01"), "a")
        v.order("buy", 1000, 10.0, at("09:30:01"), "b")
        v.order("buy", 500, 20.02, at("09:30:01"), "c", symbol="SZ000001")
        for i, (close, volume) in enumerate([(10.01, 6_000), (9.99, 8_000), (10.0, 8_500), (9.98, 12_000)]):
            v.spots(quote(f"09:31:0{i}", close, volume, low=min(close, 10.0)),
                    quote(f"09:31:0{i}", 20.0, 5_000 + 700 * (i + 1), symbol="SZ000001", prev_close=20.0))  # fmt: skip
            if i == 2:
                assert v.broker.cancel("P00000002").ok  # b, partly filled
        v.order("buy", 300, 9.9, at("09:32:00"), "d")
        v.close(DAY)
        return v.reports
    finally:
        v.bus.stop()


def test_the_same_events_in_the_same_order_give_the_same_reports() -> None:
    first, second = scripted_day(), scripted_day()
    assert first == second
    kinds = {r.kind for r in first}
    assert {"accepted", "fill", "cancelled", "expired"} <= kinds and len(first) > 10
    trade_ids = [r.trade_id for r in first if r.kind == "fill"]
    assert len(trade_ids) == len(set(trade_ids))  # unique per broker


def test_the_fee_model_is_the_accounts_and_asset_info_is_hikyuus_json() -> None:
    v = Venue(fees=FeeModel(commission_rate=0.0003, min_commission=0.0, transfer_fee_rate=0.0))
    try:
        v.spots(quote("10:00:00", 10.0, 10_000, asks=((10.0, 4000),)))
        v.order("buy", 1000, 10.0, at("10:00:01"), "f")
        assert v.fills("f") == [(1000, 10.0, 3.0)]  # 10,000 × 0.0003, no minimum, no transfer fee
        raw = json.loads(v.broker.get_asset_info())
        assert raw["cash"] == pytest.approx(89_997.0) and raw["datetime"] == "2026-11-20 10:00:01"
        assert raw["positions"] == [{"market": "SH", "code": "600000", "number": 1000.0, "stoploss": 0.0,
                                     "goal_price": 0.0, "cost_price": 10.003}]  # fmt: skip
    finally:
        v.bus.stop()


def test_the_paper_venue_makes_either_broker_from_its_config() -> None:
    default = registry.execution_client("test", {"cash": 1_000})
    assert type(default) is PaperBroker and default.name == "PaperBroker"  # the default: matched against the spots
    instant = registry.execution_client("test", {"cash": 1_000, "fills": "instant"})
    assert type(instant) is TestOrderBroker and instant.name == "TestOrderBroker"
    market = registry.execution_client(
        "paper", {"cash": "50000", "fills": "market", "participation": "0.5", "commission_rate": "0.0001",
                  "min_commission": "1", "max_open_orders": "7"}
    )  # fmt: skip
    assert isinstance(market, PaperBroker) and market.name == "PaperBroker" and market.cash == 50_000
    assert (market.participation, market.max_open_orders) == (0.5, 7)
    assert (market.fee_model.commission_rate, market.fee_model.min_commission) == (0.0001, 1.0)
    with pytest.raises(ValueError, match=r"^the paper broker: fills must be one of instant, market, not 'magic'$"):
        registry.execution_config("paper", {"fills": "magic"})
    with pytest.raises(ValueError, match="participation must be a fraction in"):
        registry.execution_config("paper", {"participation": "0"})


@st.composite
def day_of_events(draw: st.DrawFn) -> list[tuple]:
    """Spots (a random walk inside the limits, a five-level book, rising volume), orders, cancels and a close
    spread over two days."""
    events: list[tuple] = []
    for day in (DAY, NEXT):
        price, volume = 10.0, 0.0
        for i in range(draw(st.integers(1, 12))):
            price = min(max(round(price + draw(st.integers(-30, 30)) / 100, 2), 9.0), 11.0)
            volume += draw(st.sampled_from([0, 100, 1000, 5000]))
            sealed_up, sealed_down = price >= 11.0, price <= 9.0
            asks = () if sealed_up else tuple((round(price + k / 100, 2), 100.0 * (k + 1)) for k in range(1, 6))
            bids = () if sealed_down else tuple((round(price - k / 100, 2), 100.0 * (k + 2)) for k in range(5))
            asks = tuple((p, v) for p, v in asks if p <= 11.0)
            bids = tuple((p, v) for p, v in bids if p >= 9.0)
            events.append(("spot", quote(f"10:{i:02d}:00", price, volume, asks=asks, bids=bids, day=day)))
            for _ in range(draw(st.integers(0, 2))):
                kind = draw(st.sampled_from(["buy", "sell", "cancel"]))
                if kind == "cancel":
                    events.append(("cancel", f"P{draw(st.integers(1, 30)):08d}"))
                    continue
                limit = draw(st.one_of(st.none(), st.integers(900, 1100).map(lambda c: c / 100)))
                shares = draw(st.sampled_from([100, 200, 500, 1000, 3000]))
                tif = draw(st.sampled_from(["day", "day", "ioc", "fok"]))
                events.append(("order", kind, shares, limit, at(f"10:{i:02d}:01", day), tif))
        if draw(st.booleans()):
            events.append(("close", day))
    return events


@settings(max_examples=40, deadline=None)
@given(day_of_events())
def test_the_account_stays_consistent_whatever_happens(events: list[tuple]) -> None:
    v = Venue(cash=30_000)
    start = v.broker.cash
    try:
        for n, event in enumerate(events):
            if event[0] == "spot":
                v.spots(event[1])
            elif event[0] == "order":
                _, side, shares, limit, when, tif = event
                v.order(side, shares, limit, when, f"o{n}", tif=tif)
            elif event[0] == "cancel":
                v.broker.cancel(event[1])
            else:
                v.close(event[1])
            assert v.broker.cash >= -1e-6 and v.broker.reserved_cash >= -1e-6
            assert v.broker.available_cash >= -1e-6
        assert v.bus.wait_idle()
    finally:
        v.bus.stop()
    flow, shares_held, by_order = start, 0, {}
    for r in v.reports:
        by_order.setdefault(r.client_order_id, []).append(r)
        if r.kind == "fill":
            assert r.fees is not None and r.fees >= 0 and 9.0 <= r.price <= 11.0
            signed = 1 if r.side == "buy" else -1
            flow -= signed * r.shares * r.price + r.fees
            shares_held += signed * r.shares
    assert v.broker.cash == pytest.approx(flow, abs=1e-6)  # cash moved by the fills and their fees only
    held = v.broker.positions.get(("SH", "600000"))
    assert (held.number if held else 0) == shares_held >= 0
    open_ids = {o["client_order_id"] for o in v.broker.open_orders()}
    ordered = {f"o{n}": event[2] for n, event in enumerate(events) if event[0] == "order"}
    for cid, reports in by_order.items():
        kinds = [r.kind for r in reports]
        assert kinds[0] == "accepted" and kinds.count("accepted") == 1
        assert all(k == "fill" for k in kinds[1:-1])  # fills in between, one final report at most
        filled = sum(r.shares for r in reports if r.kind == "fill")
        assert [r.cumulative_shares for r in reports if r.kind == "fill"] == list(
            itertools.accumulate(r.shares for r in reports if r.kind == "fill")
        )
        ended = kinds[-1] in ("cancelled", "expired") or (kinds[-1] == "fill" and cid not in open_ids)
        assert ended != (cid in open_ids), (cid, kinds)
        assert filled <= ordered[cid] and (filled == ordered[cid]) == (kinds[-1] == "fill" and ended)
    if not open_ids:
        assert v.broker.reserved_cash == 0 and v.broker.available_cash == pytest.approx(v.broker.cash)


def _sim_day_reports(as_columns: bool) -> tuple[list[tuple], float, dict]:
    """A stretch of the simulated market (five-level books, suspended symbols, limit-ups) with orders of
    every kind placed along it; the batches handed over whole (read as columns) or as Spot objects."""
    from hkrt.adapters.sim.config import SimConfig
    from hkrt.adapters.sim.data import SimMarket

    market = SimMarket(DAY, SimConfig(symbols=60))
    broker = PaperBroker(5_000_000.0)
    reports: list[ExecutionReport] = []
    with EventBus() as bus:
        bus.subscribe(ExecutionReport, reports.append)
        broker.attach(bus)
        for n, t in enumerate(market.times()):
            batch = SpotBatch.from_columns(market.snapshot(t))
            broker.on_spots(batch if as_columns else list(batch.spots))
            bus.wait_idle()
            if n % 25 == 10 and n < 600:  # orders on a few symbols now and then: market, limits, IOC, sells
                names = [s.decode() for s in batch.columns["symbol"]]
                for k in range(3):
                    i = (n // 25 * 7 + k * 11) % len(names)
                    close = float(batch.columns["close"][i])
                    if close <= 0:
                        continue
                    sym, when = names[i], t + dt.timedelta(seconds=1)
                    kind, price, tif = [("market", 0.0, "day"), ("limit", round(close * 0.99, 2), "day"),
                                        ("limit", round(close * 1.01, 2), "ioc")][k]  # fmt: skip
                    side = OrderSide.Sell if broker.sellable(sym) >= 100 and k == 0 else OrderSide.Buy
                    request = OrderRequest(when, sym[:2], sym[2:], price, 300, client_order_id=f"o{n}-{k}",
                                           order_type=kind, time_in_force=tif)  # fmt: skip
                    broker.submit(side, request)
                    bus.wait_idle()
            if n == 700:
                break
        bus.publish(DayClosed(DAY, "day_end", 0))
        bus.wait_idle()
    out = [(r.kind, r.client_order_id, r.shares, r.price, r.fees, r.trade_id, r.datetime, r.reason) for r in reports]
    holdings = {k: (p.number, p.cost_price) for k, p in broker.positions.items()}
    return out, broker.cash, holdings


def test_a_batch_read_as_columns_matches_exactly_as_its_spots_one_by_one() -> None:
    columns, spots = _sim_day_reports(True), _sim_day_reports(False)
    assert sum(1 for r in columns[0] if r[0] == "fill") > 10  # the stretch does trade
    assert columns == spots
