"""Orders with a lifecycle: the order manager over a reporting broker on a real EventBus.

The broker here is an ``OrderBrokerBase`` subclass written for the test: it answers ``Sent`` with its
own order id and publishes ``ExecutionReport`` events on the bus when the test tells it to, so every
status transition, fill and fee can be driven by hand and checked against hand-computed values.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hkrt
from hkrt import OrderBrokerBase, OrderResult, OrderStatus, Spot
from hkrt.broker import OrderRequest, OrderSide
from hkrt.bus import EventBus, ExecutionReport, OrderEvent, SpotBatch, TradeEvent
from hkrt.strategy.book import Book
from hkrt.strategy.order import Order
from hkrt.strategy.order_manager import OrderManager
from hkrt.strategy.strategy import BROKER_ORDER_COLUMNS, ORDER_COLUMNS, TRADE_COLUMNS

FRIDAY = dt.date(2026, 11, 20)
MONDAY = dt.date(2026, 11, 23)
CODES = ["SH600000", "SZ300001", "SH688001", "SH600005", "SZ000002"]


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm))


class Venue(OrderBrokerBase):
    """A broker that reports: ``Sent`` + its id at once, then the ExecutionReports the test asks for."""

    def __init__(self, name: str = "venue", refuse: str = "") -> None:
        super().__init__(name)
        self.bus: EventBus | None = None
        self.requests: list[OrderRequest] = []
        self.cancels: list[str] = []
        self.refuse = refuse  # an error text: the venue refuses every order at the send
        self._trades = 0

    def attach(self, bus: EventBus) -> None:
        self.bus = bus

    def detach(self) -> None:
        self.bus = None

    def _buy(self, request: OrderRequest) -> OrderResult:
        self.requests.append(request)
        if self.refuse:
            return OrderResult(OrderStatus.Rejected, error=self.refuse)
        return OrderResult(OrderStatus.Sent, order_id=f"{self.name}-{len(self.requests)}")

    _sell = _buy

    def _cancel(self, order_id: str) -> OrderResult:
        self.cancels.append(order_id)
        return OrderResult(OrderStatus.Sent, order_id=order_id)

    def _get_asset_info(self) -> str:
        return ""

    def report(self, kind: str, order: Order, **fields: Any) -> ExecutionReport:
        """Publish one report about ``order`` (by its client id unless ``client_order_id`` is given)."""
        if kind == "fill" and "trade_id" not in fields:
            self._trades += 1
            fields["trade_id"] = f"{self.name}-T{self._trades}"
        fields.setdefault("client_order_id", order.client_order_id)
        report = ExecutionReport(broker=self.name, kind=kind, symbol=order.symbol, side=order.side, **fields)
        assert self.bus is not None, "attach the strategy first"
        self.bus.publish(report)
        self.bus.wait_idle()
        return report


@pytest.fixture
def bus() -> Iterator[EventBus]:
    with EventBus() as running:
        yield running


def strategy_on(bus: EventBus, *brokers: OrderBrokerBase, cash: float = 100_000.0, **kwargs: Any) -> hkrt.Strategy:
    no_emulator = kwargs.pop("no_emulator", False)
    kwargs.setdefault("fees", 0)  # the test venue's fills carry their fees (or none): no fee model on top
    s = hkrt.Strategy(CODES, brokers=list(brokers), cash=cash, name="t", **kwargs)
    if no_emulator:  # a strategy built without one (the default has one): emulated types are refused
        s.order_manager.emulator = None
    s.attach(bus)
    s._advance_clock(at(FRIDAY, "10:00"))
    return s


def spots(bus: EventBus, when: dt.datetime, **closes: float | tuple[float, float, str]) -> None:
    """Publish one batch of spots: symbol=close or symbol=(close, yesterday_close, name)."""
    batch = []
    for symbol, value in closes.items():
        close, prev, name = value if isinstance(value, tuple) else (value, 0.0, "")
        batch.append(Spot(market=symbol[:2], code=symbol[2:], datetime=when, close=close, yesterday_close=prev,
                          name=name, volume=1000.0 if close > 0 else 0.0, amount=close * 1000.0))  # fmt: skip
    bus.publish(SpotBatch.from_spots(batch))
    bus.wait_idle()


def recorded(bus: EventBus) -> tuple[list[OrderEvent], list[TradeEvent]]:
    orders: list[OrderEvent] = []
    trades: list[TradeEvent] = []
    bus.subscribe(OrderEvent, orders.append)
    bus.subscribe(TradeEvent, trades.append)
    return orders, trades


# ------------------------------------------------------------------- the lifecycle
def test_submitted_accepted_partially_filled_filled_and_the_book_moves_on_fills_only(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    events, trades = recorded(bus)
    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    assert (order.status, order.shares, order.broker, order.broker_order_id) == ("submitted", 1000, "venue", "venue-1")
    [request] = venue.requests
    assert (request.client_order_id, request.order_type, request.time_in_force) == (
        order.client_order_id,
        "limit",
        "day",
    )
    assert (request.price, request.num) == (10.0, 1000.0)
    assert s.cash == 100_000 and s.positions == {}  # sent is not filled

    venue.report("accepted", order)
    assert order.status == "accepted" and s.cash == 100_000
    venue.report("fill", order, shares=400, price=9.99)
    assert (order.status, order.filled_shares, order.remaining) == ("partially_filled", 400, 600)
    assert s.position("SH600000") == 400 and s.cash == pytest.approx(100_000 - 3_996)
    venue.report("fill", order, shares=600, price=10.0, cumulative_shares=1000)
    assert (order.status, order.filled_shares, order.remaining) == ("filled", 1000, 0)
    assert order.average_price == pytest.approx((3_996 + 6_000) / 1000)
    assert s.cash == pytest.approx(100_000 - 9_996) and s.position("SH600000") == 1000
    bus.wait_idle()
    assert [e.status for e in events] == ["submitted", "accepted", "partially_filled", "filled"]
    assert [(t.shares, t.price, t.amount, t.trade_id) for t in trades] == [
        (400, 9.99, pytest.approx(3_996), "venue-T1"), (600, 10.0, 6_000, "venue-T2"),
    ]  # fmt: skip
    assert {e.strategy for e in events} == {"t"} and bus.errors == 0
    assert s.order_manager.stats["cumulative_mismatches"] == 0


def test_cancel_asks_the_broker_and_the_order_is_cancelled_when_it_reports_so(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 500, 10.0, order_type="limit")
    venue.report("accepted", order)
    venue.report("fill", order, shares=100, price=10.0)
    assert s.cancel(order) and venue.cancels == ["venue-1"]
    assert order.status == "partially_filled"  # until the venue says so
    venue.report("cancelled", order, reason="cancelled by the user")
    assert (order.status, order.reason, order.filled_shares) == ("cancelled", "cancelled by the user", 100)
    assert not s.cancel(order) and venue.cancels == ["venue-1"]  # final: nothing to cancel
    assert s.position("SH600000") == 100


def test_a_broker_refusing_at_the_send_and_a_venue_rejecting_later(bus: EventBus) -> None:
    refusing = Venue("counter", refuse="insufficient funds at the counter")
    s = strategy_on(bus, refusing)
    order = s.order("SH600000", 100, 10.0, order_type="limit")
    assert (order.status, order.ok, order.error) == ("rejected", False, "Rejected: insufficient funds at the counter")
    assert s.cash == 100_000 and len(refusing.requests) == 1

    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 100, 10.0, order_type="limit")
    venue.report("accepted", order)
    venue.report("rejected", order, reason="price outside the exchange's band")
    assert (order.status, order.reason) == ("rejected", "price outside the exchange's band")
    assert [h[1] for h in order.history] == ["submitted", "accepted", "rejected"]


def test_a_day_order_expires_at_the_close_keeping_its_fills(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    venue.report("fill", order, shares=300, price=10.0)
    venue.report("expired", order, reason="day order at the close", datetime=at(FRIDAY, "15:00"))
    assert (order.status, order.filled_shares, order.updated) == ("expired", 300, at(FRIDAY, "15:00"))
    assert s.position("SH600000") == 300
    assert s.order_manager.reserved_cash(FRIDAY) == 0  # final: it reserves nothing any more


def test_impossible_transitions_are_logged_and_kept_never_applied(bus: EventBus, caplog: Any) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 200, 10.0, order_type="limit")
    venue.report("fill", order, shares=200, price=10.0)
    with caplog.at_level(logging.WARNING, logger="hkrt.strategy"):
        venue.report("cancelled", order)  # after filled
        venue.report("fill", order, shares=100, price=10.0)  # more than ordered
    assert order.status == "filled" and order.filled_shares == 200 and s.position("SH600000") == 200
    kept = s.order_manager.refused_reports
    assert [r.kind for r, _ in kept] == ["cancelled", "fill"] and "filled" in kept[0][1]
    assert s.order_manager.stats["refused_reports"] == 2
    assert "not applied, kept" in caplog.text and bus.errors == 0
    # a late "accepted" (a venue's order callback after its trade callback) is no error
    venue.report("accepted", order)
    assert s.order_manager.stats["late_accepted"] == 1 and len(kept) == 2


def test_an_overfill_from_the_sent_state_is_refused_too(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 100, 10.0, order_type="limit")
    venue.report("fill", order, shares=300, price=10.0)
    assert order.status == "submitted" and s.positions == {} and s.order_manager.stats["refused_reports"] == 1


# ------------------------------------------------------------------------- fees
def flat_fees(calls: list[tuple[Any, ...]]) -> Any:
    """5 yuan commission per order (charged on its first fill), 0.05 % stamp tax on sells."""

    def fees(symbol: str, side: str, price: float, shares: int, day: dt.date, so_far: float) -> float:
        calls.append((symbol, side, price, shares, day, so_far))
        commission = max(5.0 - so_far, 0.0)
        return commission + (round(price * shares * 0.0005, 2) if side == "sell" else 0.0)

    return fees


def test_fees_come_out_of_the_cash_and_into_a_buys_cost(bus: EventBus) -> None:
    calls: list[tuple[Any, ...]] = []
    venue = Venue()
    s = strategy_on(bus, venue, fees=flat_fees(calls))
    buy = s.order("SH600000", 1000, 10.0, order_type="limit")
    assert calls == [("SH600000", "buy", 10.0, 1000, FRIDAY, 0.0)]  # the cash check counts the fees
    venue.report("fill", buy, shares=400, price=10.0)
    venue.report("fill", buy, shares=600, price=10.0)
    assert [c[5] for c in calls[1:]] == [0.0, 5.0]  # the order's commission so far reaches the fee model
    assert buy.fees == 5.0 and s.cash == pytest.approx(100_000 - 10_000 - 5)
    assert s.positions["SH600000"].cost_price == pytest.approx(10.005)  # (10,000 + 5) / 1000
    s._advance_clock(at(MONDAY, "10:00"))
    sell = s.order("SH600000", -1000, 11.0, order_type="limit")
    venue.report("fill", sell, shares=1000, price=11.0)
    assert sell.fees == pytest.approx(5 + 5.5)
    assert s.cash == pytest.approx(100_000 - 10_005 + 11_000 - 10.5)
    summary = s.summary()
    assert summary["fees"] == pytest.approx(15.5) and summary["pnl"] == pytest.approx(1_000 - 15.5)
    assert list(s.trades["fees"]) == [5.0, 0.0, pytest.approx(10.5)]
    # a venue's own fees win over the model's
    again = s.order("SH600000", 100, 11.0, order_type="limit")
    venue.report("fill", again, shares=100, price=11.0, fees=7.25)
    assert again.fees == 7.25 and len(calls) == 5  # 2 cash checks, 3 fills: none for the venue-priced fill


def test_a_fee_model_object_is_accepted_and_its_commission_tracked_per_order(bus: EventBus) -> None:
    class Fees:
        def __init__(self, commission: float, stamp_tax: float) -> None:
            self.commission, self.stamp_tax = commission, stamp_tax

        @property
        def total(self) -> float:
            return self.commission + self.stamp_tax

    class Model:
        def __init__(self) -> None:
            self.so_far: list[float] = []

        def fill_fees(self, symbol: str, side: str, price: float, shares: int, day: dt.date, *,
                      commission_so_far: float = 0.0) -> Fees:  # fmt: skip
            self.so_far.append(commission_so_far)
            return Fees(max(5.0 - commission_so_far, price * shares * 0.00025), 1.0)

    model, venue = Model(), Venue()
    s = strategy_on(bus, venue, fees=model)
    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    venue.report("fill", order, shares=500, price=10.0)
    venue.report("fill", order, shares=500, price=10.0)
    assert model.so_far == [0.0, 0.0, 5.0]  # the cash check, then the fills: the stamp tax is not commission
    assert order.fees == pytest.approx(5 + 1 + 1.25 + 1)


# ------------------------------------------------------------- ids and repeats
def test_client_ids_are_unique_per_strategy_and_differ_after_a_restart(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    a, b = s.order("SH600000", 100, 10.0), s.order("SH600000", 100, 10.0)
    assert a.client_order_id != b.client_order_id and a.client_order_id.startswith("t-20261120-0001-")
    restarted = strategy_on(bus, Venue("venue2"))
    again = restarted.order("SH600000", 100, 10.0)
    assert again.client_order_id.startswith("t-20261120-0001-") and again.client_order_id != a.client_order_id


def test_a_duplicate_client_id_is_rejected_and_never_sent(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    first = s.order("SH600000", 100, 10.0, client_order_id="mine-1")
    second = s.order("SH600000", 200, 10.0, client_order_id="mine-1")
    assert first.status == "submitted" and second.status == "rejected"
    assert second.reason.startswith("duplicate client order id mine-1") and second.broker == "(strategy)"
    assert len(venue.requests) == 1 and s.get_order("mine-1") is first
    assert list(s.orders["status"]) == ["submitted", "rejected"]
    # the manager refuses one itself too (an order submitted without the strategy's checks)
    third = Order("mine-1", "SH600000", "buy", 100, created=at(FRIDAY, "10:00"))
    assert s.order_manager.submit(third).status == "rejected" and len(venue.requests) == 1


def test_a_repeated_trade_id_is_ignored_and_counted(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    venue.report("fill", order, shares=100, price=10.0, trade_id="X1")
    venue.report("fill", order, shares=100, price=10.0, trade_id="X1")  # re-polled
    assert order.filled_shares == 100 and s.position("SH600000") == 100
    assert s.order_manager.stats["duplicate_trades"] == 1 and len(s.trades) == 1


def test_a_report_for_an_unknown_order_is_logged_and_kept(bus: EventBus, caplog: Any) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    ghost = Order("nobody-1", "SH600000", "buy", 100)
    with caplog.at_level(logging.WARNING, logger="hkrt.strategy"):
        report = venue.report("fill", ghost, shares=100, price=10.0)
    assert list(s.order_manager.unmatched_reports) == [report]
    assert "unknown order kept" in caplog.text and s.positions == {} and s.cash == 100_000
    # another broker's reports are none of this strategy's business
    bus.publish(ExecutionReport(broker="elsewhere", kind="accepted", client_order_id="x"))
    bus.wait_idle()
    assert len(s.order_manager.unmatched_reports) == 1


def test_a_report_by_broker_order_id_only_matches_and_an_early_one_waits_for_the_send(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 100, 10.0, order_type="limit")
    venue.report("accepted", order, client_order_id="", broker_order_id="venue-1")
    assert order.status == "accepted"

    class Early(Venue):
        """Reports before its send returns (a venue callback racing the answer), by broker id only."""

        def _buy(self, request: OrderRequest) -> OrderResult:
            manager.on_report(ExecutionReport(broker=self.name, kind="accepted", broker_order_id="E-1"))
            return OrderResult(OrderStatus.Sent, order_id="E-1")

    early = Early("early")
    s2 = strategy_on(bus, early)
    manager = s2.order_manager
    order2 = s2.order("SH600000", 100, 10.0, order_type="limit")
    assert order2.status == "accepted" and not manager.unmatched_reports
    assert manager.stats["rematched_reports"] == 1


# ------------------------------------------------------------ pre-trade checks
@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (dict(symbol="SH600000", shares=100, price=10.005, order_type="limit"), "off the 0.01 yuan tick"),
        (dict(symbol="SH600000", shares=100, price=11.01, order_type="limit"), "outside SH600000's limits today"),
        (dict(symbol="SH600000", shares=100, price=8.99, order_type="limit"), "[9, 11]"),
        (dict(symbol="SH600005", shares=100, price=10.51, order_type="limit"), "±5%, ST"),  # *ST: ±5 %
        (dict(symbol="SZ300001", shares=100, price=24.01, order_type="limit"), "±20%"),  # ChiNext: ±20 %
        (dict(symbol="SH600000", shares=99, price=10.0, order_type="limit"), "below the lot"),
        (dict(symbol="SH688001", shares=150, price=30.0, order_type="limit"), "star board minimum 200"),
        (dict(symbol="SH600000", shares=-100, price=10.0, order_type="limit"), "T+1: nothing sellable"),
        (dict(symbol="SZ000002", shares=200), "SZ000002 is suspended"),
        (dict(symbol="SH600000", shares=100, order_type="stop", stop_price=10.5), "order emulator"),
        (dict(symbol="SH600000", shares=100, price=10.0, take_profit=11.0), "order emulator"),
    ],
)
def test_pre_trade_rejections_name_their_reason_and_nothing_is_sent(
    bus: EventBus, args: dict[str, Any], reason: str
) -> None:
    venue = Venue()
    s = strategy_on(bus, venue, no_emulator=True)
    spots(bus, at(FRIDAY, "09:59:57"), SH600000=(10.0, 10.0, "浦发银行"), SZ300001=(20.0, 20.0, "x"),
          SH600005=(10.0, 10.0, "*ST 东方"), SH688001=(30.0, 30.0, ""),
          SZ000002=(0.0, 30.0, "停牌"))  # fmt: skip
    order = s.order(**args)
    assert order.status == "rejected" and reason in order.reason, order.reason
    assert (order.shares, order.ok, order.broker) == (0, False, "(strategy)")
    assert venue.requests == [] and s.cash == 100_000
    assert s.orders.iloc[-1]["reason"] == order.reason


def test_the_limits_and_ticks_let_valid_prices_through(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue, cash=1_000_000)
    spots(bus, at(FRIDAY, "09:59:57"), SH600000=(10.0, 10.0, ""), SH600005=(10.0, 10.0, "*ST 东方"))
    assert s.order("SH600000", 100, 11.0, order_type="limit").status == "submitted"  # limit-up itself
    assert s.order("SH600000", 100, 9.0, order_type="limit").status == "submitted"
    assert s.order("SH600005", 100, 10.5, order_type="limit").status == "submitted"
    market = s.order("SH600000", 100)  # market: the last price is the request's reference
    assert (market.price, market.request_price, venue.requests[-1].order_type) == (None, 10.0, "market")
    assert venue.requests[-1].price == 10.0 and s.orders.iloc[-1]["price"] == 10.0


def test_no_price_and_before_the_open_nothing_is_taken_as_suspended(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    assert s.order("SH600000", 100).reason.startswith("no valid price for SH600000")
    s._advance_clock(at(MONDAY, "09:20"))
    spots(bus, at(MONDAY, "09:20"), SH600000=(0.0, 10.0, ""), SZ300001=(0.0, 20.0, ""))
    assert s.order("SH600000", 100, 10.0, order_type="limit").status == "submitted"  # the auction: no trade yet


def test_cash_counts_what_open_buys_reserve_and_sells_what_open_sells_hold(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue, cash=30_000)
    first = s.order("SH600000", 2000, 10.0, order_type="limit")  # reserves 20,000
    assert first.status == "submitted"
    second = s.order("SH600000", 2000, 10.0, order_type="limit")
    assert second.shares == 1000  # only 10,000 left unreserved
    third = s.order("SH600000", 100, 10.0, order_type="limit")
    assert third.status == "rejected" and "30,000.00 reserved by open buys" in third.reason
    venue.report("fill", first, shares=2000, price=10.0)
    venue.report("cancelled", second)
    s._advance_clock(at(MONDAY, "10:00"))
    sell = s.order("SH600000", -1500, 10.0, order_type="limit")
    assert sell.shares == 1500
    rest = s.order("SH600000", -1000, 10.0, order_type="limit")
    assert rest.shares == 500  # 2000 sellable, 1500 in an open sell
    refused = s.order("SH600000", -100, 10.0, order_type="limit")
    assert refused.status == "rejected" and "2000 in open sells" in refused.reason
    poor = strategy_on(bus, Venue("poor"), cash=900)
    broke = poor.order("SH600000", 100, 10.0, order_type="limit")
    assert broke.reason == "cash: 100 shares of SH600000 at 10 need 1,000.00 yuan, 900.00 available"


def test_bad_arguments_are_one_clear_value_error(bus: EventBus) -> None:
    s = strategy_on(bus, Venue())
    for kwargs, message in [
        (dict(order_type="limit"), "needs its limit price"),
        (dict(order_type="iceberg"), "order_type 'iceberg' is not one of"),
        (dict(tif="gtc"), "tif 'gtc' is not one of"),
        (dict(order_type="stop"), "needs its trigger"),
        (dict(order_type="trailing_stop"), "trail= > 0"),
        (dict(stop_price=10.0), "stop_price is for stop"),
    ]:
        with pytest.raises(ValueError, match=message):
            s.order("SH600000", 100, **kwargs)
    with pytest.raises(ValueError, match="protect a buy"):
        s.order("SH600000", -100, 10.0, take_profit=11.0)


# ---------------------------------------------------------------- callbacks
def test_on_order_and_on_trade_run_on_the_bus_thread_with_the_order_as_each_change_left_it(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    seen: list[tuple[str, int, int]] = []
    fills: list[tuple[int, int, float]] = []
    threads: set[int] = set()

    @s.on_order
    def changed(order: Order) -> None:
        threads.add(threading.get_ident())
        seen.append((order.status, order.filled_shares, threading.get_ident()))

    @s.on_trade
    def traded(order: Order, trade: TradeEvent) -> None:
        threads.add(threading.get_ident())
        fills.append((order.filled_shares, trade.shares, trade.price))

    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    venue.report("accepted", order)
    venue.report("fill", order, shares=300, price=10.0)
    venue.report("fill", order, shares=700, price=9.98)
    bus.wait_idle()
    assert [x[:2] for x in seen] == [("submitted", 0), ("accepted", 0), ("partially_filled", 300), ("filled", 1000)]
    assert fills == [(300, 300, 10.0), (1000, 700, 9.98)]
    assert bus._thread is not None and threads == {bus._thread.ident}
    assert s.get_order(order.client_order_id) is order


def test_a_callback_cancelling_from_on_order_cancels_the_live_order(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    s.on_order(lambda order: s.cancel(order) if order.status == "accepted" else None)
    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    venue.report("accepted", order)
    bus.wait_idle()
    assert venue.cancels == ["venue-1"]


# ------------------------------------------------------------------- frames
def test_the_orders_and_trades_frames(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    order = s.order("SH600000", 1000, 10.0, order_type="limit", remark="why")
    s.order("SH600000", 50, 10.0)  # refused: below the lot
    venue.report("fill", order, shares=1000, price=10.0, datetime=at(FRIDAY, "10:00:03"))
    orders, trades = s.orders, s.trades
    assert list(orders.columns) == ORDER_COLUMNS and list(trades.columns) == TRADE_COLUMNS
    row = orders.iloc[0]
    columns = [
        "client_order_id",
        "symbol",
        "side",
        "order_type",
        "time_in_force",
        "price",
        "shares",
        "requested",
        "filled_shares",
        "average_price",
        "status",
        "broker",
        "broker_order_id",
        "emulated",
        "remark",
    ]
    assert row[columns].tolist() == [
        order.client_order_id, "SH600000", "buy", "limit", "day", 10.0, 1000, 1000.0, 1000, 10.0, "filled", "venue",
        "venue-1", False, "why",
    ]  # fmt: skip
    assert (row["created"], row["updated"]) == (at(FRIDAY, "10:00"), at(FRIDAY, "10:00:03"))
    assert orders.iloc[1][["status", "broker", "shares"]].tolist() == ["rejected", "(strategy)", 0]
    assert trades.iloc[0].tolist() == [at(FRIDAY, "10:00:03"), "SH600000", "buy", 10.0, 1000, 10_000.0, 0.0,
                                       order.client_order_id, "venue-T1", "venue"]  # fmt: skip
    summary = s.summary()
    assert summary["order_statuses"] == {"filled": 1, "rejected": 1} and summary["orders"] == 2
    assert summary["trades"] == 1 and summary["fees"] == 0.0


# ------------------------------------------------------------------ brokers
def test_mirrors_get_every_order_their_reports_are_recorded_and_the_book_follows_the_primary(bus: EventBus) -> None:
    venue, mirror = Venue(), Venue("mirror")
    s = strategy_on(bus, venue, mirror)
    assert venue.bus is bus and mirror.bus is bus  # attach() started both brokers' reports
    order = s.order("SH600000", 1000, 10.0, order_type="limit")
    assert [r.client_order_id for r in (venue.requests + mirror.requests)] == [order.client_order_id] * 2
    mirror.report("fill", order, shares=1000, price=10.0)
    assert order.status == "submitted" and s.positions == {}  # a mirror's fill moves nothing
    venue.report("fill", order, shares=600, price=10.0)
    legs = s.broker_orders
    assert list(legs.columns) == BROKER_ORDER_COLUMNS
    assert legs[["broker", "primary", "result", "broker_order_id", "report", "filled_shares"]].values.tolist() == [
        ["venue", True, "Sent", "venue-1", "fill", 600],
        ["mirror", False, "Sent", "mirror-1", "fill", 1000],
    ]  # fmt: skip
    assert s.position("SH600000") == 600 and s.order_manager.stats["mirror_reports"] == 1
    assert s.cancel(order) and (venue.cancels, mirror.cancels) == (["venue-1"], ["mirror-1"])
    s.detach()
    assert venue.bus is None and mirror.bus is None


def test_a_legacy_filled_answer_is_one_fill_at_the_request_price_and_sent_stays_submitted() -> None:
    s = hkrt.Strategy(["SH600000"], brokers=[hkrt.TestOrderBroker(cash=100_000)], cash=100_000,
                      fees=lambda *a: 5.0)  # fmt: skip
    order = s.order("SH600000", 1000, 10.0)
    assert (order.status, order.filled_shares, order.average_price, order.fees) == ("filled", 1000, 10.0, 5.0)
    assert s.cash == 100_000 - 10_005 and s.trades.iloc[0]["trade_id"] == "TestOrderBroker-sync-T000001"

    class Silent(OrderBrokerBase):  # takes orders, reports nothing (mail-like)
        def __init__(self) -> None:
            super().__init__("silent")

        def _buy(self, request: OrderRequest) -> str:
            return "S1"

        _sell = _buy

        def _cancel(self, order_id: str) -> OrderResult:
            return OrderResult(OrderStatus.Sent, order_id=order_id)

        def _get_asset_info(self) -> str:
            return ""

    s = hkrt.Strategy(["SH600000"], brokers=[Silent()], cash=100_000)
    order = s.order("SH600000", 1000, 10.0)
    assert order.status == "submitted" and s.cash == 100_000
    assert s.cancel(order) and order.status == "cancelled"  # no reports: a taken cancel is final


# ------------------------------------------------------------------- emulator
class HoldingEmulator:
    """The Emulator protocol at its simplest: holds what it is given until the test releases it."""

    def __init__(self) -> None:
        self.held_orders: list[Order] = []
        self.brackets: list[Order] = []
        self.bus: EventBus | None = None

    def hold(self, order: Order) -> None:
        self.held_orders.append(order)

    def attach_bracket(self, entry: Order) -> None:
        self.brackets.append(entry)

    def cancel(self, order: Order, reason: str = "") -> bool:
        if order in self.held_orders:
            self.held_orders.remove(order)
            return True
        return False

    def attach(self, bus: EventBus) -> None:
        self.bus = bus

    def restore(self) -> list[Order]:
        return [Order("restored-1", "SH600000", "sell", 100, order_type="stop", stop_price=9.0, emulated=True)]

    @property
    def held(self) -> list[Order]:
        return list(self.held_orders)


def test_emulated_orders_are_held_released_and_cancelled_through_the_emulator(bus: EventBus) -> None:
    venue, emulator = Venue(), HoldingEmulator()
    s = strategy_on(bus, venue)
    s.set_emulator(emulator)
    assert emulator.bus is bus and s.get_order("restored-1") is not None
    spots(bus, at(FRIDAY, "10:00"), SH600000=(10.2, 10.0, ""))
    stop = s.order("SH600000", 1000, order_type="stop", stop_price=10.5)
    assert (stop.status, stop.emulated, emulator.held) == ("submitted", True, [stop]) and venue.requests == []
    fired_at = at(FRIDAY, "10:00") + dt.timedelta(seconds=3)  # the next spot's time: the clock is a cycle behind
    s.order_manager.release(stop, "market", None, fired_at)
    [request] = venue.requests
    assert (request.order_type, request.price, request.client_order_id) == ("market", 10.2, stop.client_order_id)
    assert request.datetime == fired_at
    assert stop.triggered and stop.broker_order_id == "venue-1"
    venue.report("fill", stop, shares=1000, price=10.21)
    assert stop.status == "filled" and s.position("SH600000") == 1000

    child = s.order_manager.create_child(stop, side="sell", shares=1000, order_type="stop", stop_price=9.5)
    assert (child.parent_id, child.emulated, child.status, child.symbol) == (stop.client_order_id, True,
                                                                            "submitted", "SH600000")  # fmt: skip
    emulator.hold(child)
    assert s.cancel(child) and child.status == "cancelled" and child not in emulator.held
    bracket = s.order("SH600000", 100, 10.2, order_type="limit", take_profit=11.0, stop_loss=9.8)
    assert emulator.brackets == [bracket] and bracket.status == "submitted" and len(venue.requests) == 2


# -------------------------------------------------------------------- bounds
def test_old_final_orders_are_forgotten_past_the_bound_open_ones_never() -> None:
    book = Book(1e9)
    venue = Venue()
    now = [at(FRIDAY, "10:00")]
    manager = OrderManager([venue], book, strategy="b", clock=lambda: now[0], max_orders=10)
    open_order = manager.submit(Order(manager.new_client_id(), "SH600000", "buy", 100, "limit", price=10.0))
    for _ in range(20):
        o = Order(manager.new_client_id(), "SH600000", "buy", 100, "limit", price=10.0)
        manager.refuse(o, "test refusal")
    kept = manager.orders
    assert len(kept) <= 10 and open_order in kept and manager.stats["forgotten_orders"] >= 11
    assert manager.stats["orders"] == 21
    assert manager.is_known(kept[1].client_order_id)


# ------------------------------------------------------------------ property
Report = tuple[int, str, int, int, int]
REPORT = st.tuples(
    st.integers(0, 3),  # which order
    st.sampled_from(["accepted", "fill", "fill", "fill", "cancelled", "expired", "rejected"]),
    st.integers(1, 700),  # fill shares
    st.integers(990, 1010),  # fill price, fen
    st.integers(0, 12),  # trade id (repeats on purpose)
)


@settings(max_examples=60, deadline=None)
@given(reports=st.lists(REPORT, max_size=40))
def test_random_report_sequences_never_break_the_books_invariants(
    reports: list[tuple[int, str, int, int, int]],
) -> None:
    book = Book(1_000_000.0)
    book.positions["SH600000"] = hkrt.strategy.Position("SH600000", 1000, 9.0)  # held from before: sellable
    venue = Venue()
    manager = OrderManager([venue], book, strategy="p", fees=lambda s, side, px, n, d, so_far: 0.01 * n,
                           clock=lambda: at(FRIDAY, "10:00"))  # fmt: skip
    sides = ["buy", "buy", "sell", "buy"]
    orders = [manager.submit(Order(manager.new_client_id(), "SH600000", side, 500, "limit", price=10.0,
                                   request_price=10.0)) for side in sides]  # fmt: skip
    finals: dict[str, str] = {}
    for which, kind, shares, fen, trade in reports:
        o = orders[which]
        fields: dict[str, Any] = (
            {"shares": shares, "price": fen / 100, "trade_id": f"T{trade}"} if kind == "fill" else {}
        )
        manager.on_report(ExecutionReport(broker="venue", kind=kind, client_order_id=o.client_order_id, **fields))
        for order in orders:
            assert 0 <= order.filled_shares <= order.shares
            if order.client_order_id in finals:
                assert order.status == finals[order.client_order_id]  # nothing leaves a final status
            if order.is_final:
                finals[order.client_order_id] = order.status
        # what open orders reserve, kept up to date change by change, equals a recount
        open_buys = [o for o in orders if o.side == "buy" and not o.is_final]
        assert manager.reserved_cash(FRIDAY) == pytest.approx(sum(o.remaining * 10.0 for o in open_buys))
        open_sells = [o for o in orders if o.side == "sell" and not o.is_final]
        assert manager.reserved_shares("SH600000", FRIDAY) == sum(o.remaining for o in open_sells)
    buys = sum(t.amount for t in book.trades if t.side == "buy")
    sells = sum(t.amount for t in book.trades if t.side == "sell")
    fees = sum(t.fees for t in book.trades)
    assert book.cash == pytest.approx(1_000_000 - buys - fees + sells)
    assert fees == pytest.approx(book.fees) and fees == pytest.approx(sum(o.fees for o in orders))
    for o in orders:
        traded = sum(t.shares for t in book.trades if t.client_order_id == o.client_order_id)
        assert traded == o.filled_shares
    assert len({(t.broker, t.trade_id) for t in book.trades}) == len(book.trades)  # no trade counted twice
    bought = sum(t.shares for t in book.trades if t.side == "buy")
    sold = sum(t.shares for t in book.trades if t.side == "sell")
    assert book.held("SH600000") == 1000 + bought - sold


def test_a_stop_sell_of_todays_buy_is_not_bound_by_t_plus_1(bus: EventBus) -> None:
    venue, emulator = Venue(), HoldingEmulator()
    s = strategy_on(bus, venue)
    s.set_emulator(emulator)
    buy = s.order("SH600000", 1000, 10.0, order_type="limit")
    venue.report("fill", buy, shares=1000, price=10.0)
    assert s.order("SH600000", -1000, 9.5, order_type="limit").reason.startswith("T+1")  # a limit sell now: no
    stop = s.order("SH600000", -1000, order_type="stop", stop_price=9.5)  # held until it triggers: yes
    assert (stop.status, stop.shares) == ("submitted", 1000) and stop in emulator.held


def test_reconcile_compares_the_book_with_the_primary_brokers_account() -> None:
    broker = hkrt.TestOrderBroker(cash=100_000)  # instant fills, no fees
    s = hkrt.Strategy(["SH600000"], brokers=[broker], cash=100_000, fees=0)
    s._advance_clock(at(FRIDAY, "10:00"))
    assert s.order("SH600000", 1000, 10.0, order_type="limit").status == "filled"
    agreed = s.reconcile()
    assert agreed is not None and agreed.ok and list(s.reconciliations) == [agreed]
    broker.submit(OrderSide.Buy, OrderRequest(at(FRIDAY, "10:01"), "SH", "600000", 10.0, 100))  # behind our back
    differs = s.reconcile()
    assert differs is not None and not differs.ok
    assert [(d.symbol, d.book, d.broker) for d in differs.positions] == [("SH600000", 1000, 1100)]
    assert abs(differs.cash_difference) == pytest.approx(1000.0)  # the broker paid 1,000 yuan the book did not


def test_open_orders_and_the_former_num_keyword(bus: EventBus) -> None:
    venue = Venue()
    s = strategy_on(bus, venue)
    spots(bus, at(FRIDAY, "09:59:57"), SH600000=(10.0, 10.0, ""))
    resting = s.order("SH600000", num=100, price=9.5, order_type="limit")
    assert resting.status == "submitted" and s.open_orders("sh600000") == [resting] and s.open_orders("SZ000001") == []
    with pytest.raises(TypeError, match="takes the quantity once"):
        s.order("SH600000", 100, num=100)


def test_a_held_stop_survives_a_restart_of_the_strategy_through_its_state_dir(tmp_path: Any) -> None:
    """The default emulator journals under state_dir: a new Strategy over the same directory holds the
    same stop, and it fires from the new run's spots."""
    first_venue = Venue()
    with EventBus() as bus:
        first = strategy_on(bus, first_venue, state_dir=tmp_path)
        spots(bus, at(FRIDAY, "09:59:57"), SH600000=(10.0, 10.0, ""))
        stop = first.order("SH600000", 100, order_type="stop", stop_price=10.5)
        assert (stop.status, stop.emulated) == ("submitted", True) and first_venue.requests == []
        first.detach()
    assert (tmp_path / "emulator.jsonl").exists()
    venue = Venue()  # the restarted process: a new broker object, a new bus, the same journal
    with EventBus() as bus:
        again = strategy_on(bus, venue, state_dir=tmp_path)
        held = again.open_orders("SH600000")
        assert [o.client_order_id for o in held] == [stop.client_order_id] and held[0].stop_price == 10.5
        spots(bus, at(FRIDAY, "10:00:00"), SH600000=(10.4, 10.0, ""))
        assert venue.requests == []  # below the trigger: still held
        spots(bus, at(FRIDAY, "10:00:03"), SH600000=(10.5, 10.0, ""))
        assert [(r.client_order_id, r.order_type, r.num) for r in venue.requests] == [
            (stop.client_order_id, "market", 100.0)
        ]
        assert again.get_order(stop.client_order_id).triggered  # type: ignore[union-attr]


def test_performance_needs_an_equity_sample_first() -> None:
    s = hkrt.Strategy(["SH600000"], brokers=[hkrt.TestOrderBroker(cash=100_000)], cash=100_000, fees=0)
    assert s.equity.empty
    with pytest.raises(ValueError, match="no equity recorded yet"):
        s.performance()
    s._sample_equity(at(FRIDAY, "10:00"))
    s._sample_equity(at(FRIDAY, "10:00").replace(second=30))  # the same minute: one sample
    s._sample_equity(at(FRIDAY, "10:01"))
    assert list(s.equity["equity"]) == [100_000.0, 100_000.0]
    assert s.performance().total_return == 0.0
