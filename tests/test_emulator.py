"""The order emulator (hkrt.strategy.emulator): stop, stop-limit, trailing-stop and bracket orders held
locally, fired from real SpotBatch events on a real EventBus, journalled to a real file.

The order manager here is a small stand-in with exactly the interface the emulator uses (release,
create_child, cancel, get, now, adopt, expire); it records what it was asked and publishes the
OrderEvent / TradeEvent a real manager would, so the emulator sees the same event flow."""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import FRIDAY, SYMBOL, at, spot
from hkrt.bus import DayClosed, EventBus, OrderEvent, SpotBatch, TradeEvent
from hkrt.core.calendar import TradingCalendar
from hkrt.strategy.emulator import OrderEmulator, parse_trail, trailing_trigger
from hkrt.strategy.order import TRANSITIONS, Order

MONDAY = dt.date(2026, 11, 23)  # the trading day after FRIDAY
OTHER = "SZ000001"
CALENDAR = TradingCalendar.china()


class Manager:
    """The order manager's side of the emulator contract, recording every call."""

    def __init__(self, bus: EventBus | None = None) -> None:
        self.bus = bus
        self.emulator: OrderEmulator | None = None
        self.orders: dict[str, Order] = {}
        self.released: list[tuple[str, str, float | None, int]] = []  # (id, wire type, limit, shares)
        self.released_at: list[dt.datetime | None] = []  # the time each release was dated
        self.children: list[Order] = []
        self.adopted: list[str] = []
        self.clock: dt.datetime | None = at("09:30:00")
        self.cancel_requests: list[str] = []
        self.broker_cancels_later = False  # True: a cancel at the broker is only asked for (a report ends it later)
        self._trades = 0

    # -------------------------------------------------- what the emulator calls
    def now(self) -> dt.datetime | None:
        return self.clock

    def get(self, client_order_id: str) -> Order | None:
        return self.orders.get(client_order_id)

    def adopt(self, order: Order) -> None:
        self.orders[order.client_order_id] = order
        self.adopted.append(order.client_order_id)

    def release(self, order: Order, wire_type: str, limit_price: float | None, when: dt.datetime | None = None) -> None:
        order.triggered = True
        self.released.append((order.client_order_id, wire_type, limit_price, order.shares))
        self.released_at.append(when)

    def create_child(
        self,
        parent: Order,
        *,
        side: str,
        shares: int,
        order_type: str,
        price: float | None = None,
        stop_price: float | None = None,
        trail: float | str | None = None,
    ) -> Order:
        child = Order(
            f"{parent.client_order_id}.{len(self.children) + 1}",
            parent.symbol,
            side,
            shares,
            order_type=order_type,
            price=price,
            stop_price=stop_price,
            trail=trail,
            emulated=True,
            parent_id=parent.client_order_id,
            created=self.clock,
        )
        self.children.append(child)
        self.orders[child.client_order_id] = child
        return child

    def cancel(self, order: Order, reason: str = "") -> bool:
        if order.is_final:
            return False
        self.cancel_requests.append(order.client_order_id)
        if order.emulated and not order.triggered:
            assert self.emulator is not None
            if not self.emulator.cancel(order):
                return False
        elif self.broker_cancels_later:
            return True
        order.move_to("cancelled", self.clock, "cancelled")
        self._status(order)
        return True

    def expire(self, order: Order, reason: str) -> None:
        order.move_to("expired", self.clock, reason)
        self._status(order)

    # -------------------------------------------------- what the test (the broker) does
    def submit(self, order: Order) -> Order:
        self.orders[order.client_order_id] = order
        return order

    def fill(self, order: Order, shares: int, price: float) -> None:
        order.add_fill(shares, price, 0.0, self.clock)
        self._status(order)
        self._trades += 1
        self._publish(
            TradeEvent(
                order.client_order_id,
                f"T{self._trades}",
                order.symbol,
                order.side,
                shares,
                price,
                shares * price,
                datetime=self.clock,
            )
        )

    def end(self, order: Order, status: str) -> None:
        order.move_to(status, self.clock, f"{status} by the broker")
        self._status(order)

    def _status(self, order: Order) -> None:
        self._publish(
            OrderEvent(
                order.client_order_id,
                order.symbol,
                order.side,
                order.shares,
                order.status,
                order_type=order.order_type,
                filled_shares=order.filled_shares,
                average_price=order.average_price,
                datetime=self.clock,
            )
        )

    def _publish(self, event: object) -> None:
        if self.bus is not None:
            self.bus.publish(event)


@pytest.fixture
def bus() -> Iterator[EventBus]:
    with EventBus() as running:
        yield running


@pytest.fixture
def manager(bus: EventBus) -> Manager:
    return Manager(bus)


def make_emulator(manager: Manager, bus: EventBus | None, journal: Path | None = None, **kwargs: Any) -> OrderEmulator:
    emulator = OrderEmulator(manager, journal=journal, calendar=CALENDAR, **kwargs)
    manager.emulator = emulator
    if bus is not None:
        emulator.attach(bus)
    return emulator


@pytest.fixture
def emulator(manager: Manager, bus: EventBus) -> OrderEmulator:
    return make_emulator(manager, bus)


_volume = [0.0]


def prices(bus: EventBus, *closes: float, day: dt.date = FRIDAY, symbol: str = SYMBOL, start: str = "10:00:00") -> None:
    """One SpotBatch per price, 3 seconds apart, then wait until the bus handled them."""
    t0 = dt.datetime.combine(day, dt.time.fromisoformat(start))
    for i, close in enumerate(closes):
        _volume[0] += 100
        hhmmss = (t0 + dt.timedelta(seconds=3 * i)).strftime("%H:%M:%S")
        bus.publish(SpotBatch.from_spots([spot(hhmmss, close, _volume[0], _volume[0] * close, day=day, symbol=symbol)]))
    assert bus.wait_idle()


def settle(bus: EventBus) -> None:
    assert bus.wait_idle()


def stop(cid: str, side: str, stop_price: float, shares: int = 100, **kw: Any) -> Order:
    symbol = kw.pop("symbol", SYMBOL)
    return Order(cid, symbol, side, shares, order_type="stop", stop_price=stop_price, emulated=True, **kw)


def trailing(cid: str, side: str, trail: float | str, shares: int = 100) -> Order:
    return Order(cid, SYMBOL, side, shares, order_type="trailing_stop", trail=trail, emulated=True)


def entry(
    cid: str = "E1", shares: int = 1000, price: float = 10.0, tp: float | None = 11.0, sl: float | None = 9.5
) -> Order:
    return Order(cid, SYMBOL, "buy", shares, order_type="limit", price=price, take_profit=tp, stop_loss=sl)


# ------------------------------------------------------------------ stops
def test_sell_stop_fires_when_the_last_price_falls_to_it(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    prices(bus, 10.5, 10.2, 10.01)
    assert manager.released == [] and [o.client_order_id for o in emulator.held] == ["S1"]
    prices(bus, 10.0)  # exactly at the stop
    assert manager.released == [("S1", "market", None, 100)]
    assert emulator.held == [] and emulator.stats["triggered"] == 1
    prices(bus, 9.0)  # released once only
    assert len(manager.released) == 1


def test_a_fired_order_is_dated_by_the_spot_that_fired_it_not_the_lagging_clock(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    manager.clock = dt.datetime.combine(FRIDAY, dt.time(9, 59, 57))  # the strategy's clock: the previous cycle
    emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    prices(bus, 10.5, 9.9)  # 10:00:00 and 10:00:03: the second fires
    assert manager.released == [("S1", "market", None, 100)]
    assert manager.released_at == [dt.datetime.combine(FRIDAY, dt.time(10, 0, 3))]


def test_buy_stop_fires_when_the_last_price_rises_to_it(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    emulator.hold(manager.submit(stop("B1", "buy", 11.0)))
    prices(bus, 10.5, 10.99, 9.0)  # falling does not fire a buy stop
    assert manager.released == []
    prices(bus, 11.0)
    assert manager.released == [("B1", "market", None, 100)]


def test_stop_limit_is_released_as_a_limit_at_its_price(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    order = Order("SL1", SYMBOL, "sell", 200, order_type="stop_limit", stop_price=10.0, price=9.95)
    emulator.hold(manager.submit(order))
    prices(bus, 10.3, 9.99)
    assert manager.released == [("SL1", "limit", 9.95, 200)]


def test_a_gap_through_the_stop_fires_at_the_first_price_beyond(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    emulator.hold(
        manager.submit(Order("SL1", SYMBOL, "sell", 100, order_type="stop_limit", stop_price=10.0, price=9.9))
    )
    emulator.hold(manager.submit(stop("B1", "buy", 12.0, symbol=OTHER)))
    prices(bus, 10.5)
    prices(bus, 9.0)  # opened far below both stops: a market sell goes, the stop-limit keeps its own limit
    prices(bus, 11.0, symbol=OTHER)
    prices(bus, 13.0, symbol=OTHER)  # gapped above the buy stop
    assert manager.released == [("S1", "market", None, 100), ("SL1", "limit", 9.9, 100), ("B1", "market", None, 100)]


def test_only_held_symbols_of_a_whole_market_batch_are_read(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    emulator.hold(manager.submit(stop("S2", "sell", 50.0, symbol=OTHER)))
    market = [spot("10:00:00", 1.0, 100, 100, symbol=f"SH{600100 + i}") for i in range(5000)]  # all below any stop
    bus.publish(SpotBatch.from_spots([*market, spot("10:00:00", 9.8, 100, 980)]))
    assert bus.wait_idle()
    assert manager.released == [("S1", "market", None, 100)]  # SZ000001 had no spot, nothing else is held
    assert [o.client_order_id for o in emulator.held] == ["S2"]


def test_an_order_added_to_a_quiet_symbol_is_looked_at_on_the_next_price(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    emulator.hold(manager.submit(stop("S1", "sell", 9.0)))
    emulator.hold(manager.submit(stop("B1", "buy", 11.0)))
    prices(bus, 10.0, 10.0, 9.9)  # between 9.00 and 11.00: nothing to do for this symbol
    emulator.hold(manager.submit(stop("S2", "sell", 9.95)))
    prices(bus, 9.9)  # was quiet for S1 and B1, not for S2
    assert manager.released == [("S2", "market", None, 100)]
    prices(bus, 11.0, 9.0)
    assert [r[0] for r in manager.released] == ["S2", "B1", "S1"]


def test_a_spot_without_a_trade_does_not_fire(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    prices(bus, 0.0)  # no trade yet (before the auction, or suspended): 0 is not a price
    assert manager.released == []


# ------------------------------------------------------------------ trailing stops
def test_sell_trailing_stop_ratchets_up_only(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    emulator.hold(manager.submit(trailing("T1", "sell", 0.3)))
    assert emulator.trigger_price("T1") is None  # no price seen yet
    seen = []
    for last in (10.0, 10.4, 10.2, 10.6, 10.35):
        prices(bus, last)
        seen.append(emulator.trigger_price("T1"))
    # highest 10.0 -> 9.7; 10.4 -> 10.1; a dip keeps 10.1; 10.6 -> 10.3; 10.35 > 10.3 does not fire
    assert seen == [9.7, 10.1, 10.1, 10.3, 10.3] and manager.released == []
    prices(bus, 10.3)
    assert manager.released == [("T1", "market", None, 100)]
    assert emulator.stats["ratchets"] == 3


def test_buy_trailing_stop_in_percent_ratchets_down_only(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    emulator.hold(manager.submit(trailing("T2", "buy", "5%")))
    seen = []
    for last in (10.0, 9.0, 9.2, 9.4):
        prices(bus, last)
        seen.append(emulator.trigger_price("T2"))
    # lowest 10.0 -> 10.5; 9.0 -> 9.45; a bounce to 9.2 / 9.4 keeps 9.45 and stays below it
    assert seen == [10.5, 9.45, 9.45, 9.45] and manager.released == []
    prices(bus, 9.45)
    assert manager.released == [("T2", "market", None, 100)]


@pytest.mark.parametrize(
    ("trail", "words"),
    [
        (0, "above 0"),
        (-0.2, "above 0"),
        (float("nan"), "above 0"),
        ("abc", "percent string"),
        ("0%", "above 0 and below 100"),
        ("150%", "above 0 and below 100"),
        ("x%", "above 0 and below 100"),
        (None, "percent string"),
        (True, "percent string"),
    ],
)
def test_a_bad_trail_is_one_clear_error_at_hold(manager: Manager, emulator: OrderEmulator, trail: Any, words: str):
    with pytest.raises(ValueError, match=words) as err:
        emulator.hold(manager.submit(trailing("T1", "sell", trail)))
    assert "T1" in str(err.value) and "\n" not in str(err.value)
    assert emulator.held == []


def test_parse_trail_and_trailing_trigger_by_hand() -> None:
    assert parse_trail(0.3) == (0.3, None) and parse_trail(" 2.5% ") == (None, 2.5)
    assert trailing_trigger(10.6, False, 0.3, None) == 10.3  # float noise rounded away
    assert trailing_trigger(20.0, False, None, 3.0) == 19.4 and trailing_trigger(20.0, True, None, 3.0) == 20.6


def test_hold_refuses_what_it_cannot_emulate(manager: Manager, emulator: OrderEmulator):
    with pytest.raises(ValueError, match="not 'limit'"):
        emulator.hold(Order("L1", SYMBOL, "sell", 100, order_type="limit", price=10.0))
    with pytest.raises(ValueError, match="stop_price must be a price above 0, not None"):
        emulator.hold(Order("S0", SYMBOL, "sell", 100, order_type="stop"))
    with pytest.raises(ValueError, match=r"price \(the limit"):
        emulator.hold(Order("S0", SYMBOL, "sell", 100, order_type="stop_limit", stop_price=10.0))
    emulator.hold(stop("S1", "sell", 10.0))
    with pytest.raises(ValueError, match="held already"):
        emulator.hold(stop("S1", "sell", 10.0))


# ------------------------------------------------------------------ cancel and expiry
def test_cancel_stops_holding(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    order = manager.submit(stop("S1", "sell", 10.0))
    emulator.hold(order)
    assert manager.cancel(order) and order.status == "cancelled"
    assert emulator.cancel(order) is False  # not held any more
    prices(bus, 9.0)
    assert manager.released == [] and emulator.stats["cancelled"] == 1


def test_held_stops_expire_at_the_close_and_bracket_legs_stay(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    order = manager.submit(stop("S1", "sell", 10.0))
    emulator.hold(order)
    buy = manager.submit(entry())
    emulator.attach_bracket(buy)
    manager.fill(buy, 1000, 10.0)
    settle(bus)
    bus.publish(DayClosed(FRIDAY, "day_end", 0))
    settle(bus)
    assert order.status == "expired" and "close" in order.reason
    assert sorted(o.client_order_id for o in emulator.held) == ["E1.1", "E1.2"]  # the legs live on
    prices(bus, 9.0, day=MONDAY)
    assert manager.released == [("E1.2", "market", None, 1000)]  # the stop-loss leg; the expired stop did not go


def test_a_day_order_seeing_a_later_day_expires_instead_of_firing(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    order = manager.submit(stop("S1", "sell", 10.0))
    emulator.hold(order)  # placed on FRIDAY (the manager's clock); the close was missed
    prices(bus, 9.0, day=MONDAY)
    assert manager.released == [] and order.status == "expired"


# ------------------------------------------------------------------ brackets
def leg_ids(emulator: OrderEmulator, buy: Order) -> dict[str, int]:
    return {leg.client_order_id: leg.shares - leg.filled_shares for leg in emulator.legs(buy)}


def test_bracket_legs_follow_partial_fills_and_wait_for_t_plus_1(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    buy = manager.submit(entry())
    emulator.attach_bracket(buy)
    manager.fill(buy, 300, 10.0)
    settle(bus)
    tp, sl = manager.children
    assert (tp.order_type, tp.price, tp.shares, tp.side) == ("limit", 11.0, 300, "sell")
    assert (sl.order_type, sl.stop_price, sl.shares, sl.parent_id) == ("stop", 9.5, 300, "E1")
    manager.fill(buy, 200, 10.0)  # the same day: the same legs grow
    settle(bus)
    assert len(manager.children) == 2 and tp.shares == 500 and sl.shares == 500
    prices(bus, 11.5, 9.0)  # FRIDAY: bought today, not sellable until Monday (T+1)
    assert manager.released == []
    prices(bus, 10.5, 11.2, day=MONDAY)
    assert manager.released == [("E1.1", "limit", 11.0, 500)]  # take-profit, limit at its price
    manager.fill(tp, 200, 11.0)
    settle(bus)
    assert sl.shares == 300  # OCO: the stop-loss shrinks with each take-profit fill
    manager.fill(tp, 300, 11.0)
    settle(bus)
    assert sl.status == "cancelled" and emulator.held == [] and emulator.legs(buy) == []
    assert emulator.stats["legs_created"] == 2 and emulator.stats["legs_resized"] >= 2


def test_fills_on_two_days_get_two_pairs_of_legs(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    buy = manager.submit(entry())
    emulator.attach_bracket(buy)
    manager.fill(buy, 400, 10.0)
    settle(bus)
    manager.clock = at("10:00:00", MONDAY)
    manager.fill(buy, 600, 10.0)
    settle(bus)
    assert leg_ids(emulator, buy) == {"E1.1": 400, "E1.2": 400, "E1.3": 600, "E1.4": 600}
    prices(bus, 9.4, day=MONDAY)  # Friday's shares are sellable, Monday's not yet
    assert manager.released == [("E1.2", "market", None, 400)]
    prices(bus, 9.3, day=dt.date(2026, 11, 24))
    assert manager.released[1:] == [("E1.4", "market", None, 600)]


def bought_on_friday(manager: Manager, emulator: OrderEmulator, bus: EventBus, shares: int = 500) -> list[Order]:
    """A bracket entry filled whole on Friday, its take-profit sent on Monday: [entry, take-profit, stop-loss]."""
    buy = manager.submit(entry(shares=shares))
    emulator.attach_bracket(buy)
    manager.fill(buy, shares, 10.0)
    settle(bus)
    prices(bus, 11.0, day=MONDAY)
    return [buy, *manager.children]


def test_stop_loss_firing_while_take_profit_works_cancels_it_first(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    _, tp, sl = bought_on_friday(manager, emulator, bus)
    manager.fill(tp, 100, 11.0)  # the take-profit works at the broker, 100 sold
    settle(bus)
    assert sl.shares == 400
    prices(bus, 9.5, day=MONDAY, start="11:00:00")  # the stop-loss fires: the take-profit must go first
    assert tp.status == "cancelled"  # this manager cancels at once; the released stop-loss sells the rest
    assert manager.released == [("E1.1", "limit", 11.0, 500), ("E1.2", "market", None, 400)]
    assert emulator.stats["oco_cancels"] == 1


def test_a_leg_waiting_for_its_sibling_survives_a_restart(tmp_path: Path, bus: EventBus):
    journal = tmp_path / "emulator.jsonl"
    first = Manager(bus)
    first.broker_cancels_later = True
    emulator = make_emulator(first, bus, journal)
    tp = bought_on_friday(first, emulator, bus)[1]
    first.fill(tp, 100, 11.0)
    prices(bus, 9.4, day=MONDAY, start="11:00:00")  # the stop-loss fires; the take-profit's cancel is only asked for
    assert first.cancel_requests == ["E1.1"] and tp.status == "partially_filled"
    assert [o.client_order_id for o in emulator.held] == ["E1.2"]  # waiting, not sent
    emulator.detach()
    emulator.close()

    second = Manager(bus)
    again = make_emulator(second, bus, journal)
    assert [o.client_order_id for o in again.restore()] == ["E1.2"]
    prices(bus, 9.3, day=MONDAY, start="11:01:00")  # still waiting for the take-profit to end
    assert second.released == []
    second.fill(second.orders["E1.1"], 50, 11.0)  # the broker filled 50 more before the cancel took
    second.end(second.orders["E1.1"], "cancelled")
    settle(bus)
    assert second.released == [("E1.2", "market", None, 350)]  # 500 bought, 150 sold by the take-profit
    again.close()


def test_a_leg_that_expired_at_the_broker_is_re_armed(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    buy, tp, _ = bought_on_friday(manager, emulator, bus)
    manager.fill(tp, 200, 11.0)
    manager.end(tp, "expired")  # a day order at the broker: the close ended it
    settle(bus)
    tp2 = manager.children[-1]
    assert (tp2.client_order_id, tp2.price, tp2.shares) == ("E1.3", 11.0, 300)
    assert leg_ids(emulator, buy) == {"E1.2": 300, "E1.3": 300} and emulator.stats["legs_rearmed"] == 1


def test_an_entry_cancelled_before_any_fill_makes_no_legs(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    buy = manager.submit(entry())
    emulator.attach_bracket(buy)
    manager.end(buy, "cancelled")
    settle(bus)
    assert manager.children == [] and emulator.stats["brackets_without_fills"] == 1


def test_an_entry_cancelled_after_a_partial_fill_keeps_the_legs_of_the_fill(
    manager: Manager, emulator: OrderEmulator, bus: EventBus
):
    buy = manager.submit(entry())
    emulator.attach_bracket(buy)
    manager.fill(buy, 300, 10.0)
    manager.end(buy, "cancelled")
    settle(bus)
    assert leg_ids(emulator, buy) == {"E1.1": 300, "E1.2": 300}


def test_cancelling_one_held_leg_keeps_the_other(manager: Manager, emulator: OrderEmulator, bus: EventBus):
    buy = manager.submit(entry())
    emulator.attach_bracket(buy)
    manager.fill(buy, 1000, 10.0)
    settle(bus)
    tp = manager.children[0]
    assert manager.cancel(tp) and tp.status == "cancelled"
    settle(bus)
    assert leg_ids(emulator, buy) == {"E1.2": 1000}
    prices(bus, 12.0, 9.0, day=MONDAY)
    assert manager.released == [("E1.2", "market", None, 1000)]


@pytest.mark.parametrize(
    ("side", "price", "tp", "sl", "words"),
    [
        ("sell", 10.0, 11.0, 9.0, "needs a buy entry.*short"),
        ("buy", 10.0, None, None, "needs a take_profit or a stop_loss"),
        ("buy", 10.0, 10.0, 9.0, "take_profit 10 must be above the entry price 10"),
        ("buy", 10.0, 11.0, 10.5, "stop_loss 10.5 must be below the entry price 10"),
        ("buy", None, 9.0, 9.5, "take_profit 9 must be above stop_loss 9.5"),
        ("buy", 10.0, -1.0, None, "take_profit must be a price above 0"),
    ],
)
def test_a_bad_bracket_is_one_clear_error(emulator: OrderEmulator, side: str, price: Any, tp: Any, sl: Any, words: str):
    order_type = "market" if price is None else "limit"
    order = Order("E9", SYMBOL, side, 100, order_type=order_type, price=price, take_profit=tp, stop_loss=sl)
    with pytest.raises(ValueError, match=words):
        emulator.attach_bracket(order)


# ------------------------------------------------------------------ the journal
def test_a_restart_holds_the_same_orders_with_the_same_trigger_state(tmp_path: Path, bus: EventBus):
    journal = tmp_path / "emulator.jsonl"
    first = Manager(bus)
    emulator = make_emulator(first, bus, journal)
    emulator.hold(first.submit(stop("S1", "sell", 9.8)))
    emulator.hold(first.submit(trailing("T1", "sell", "2%")))
    buy = first.submit(entry())
    emulator.attach_bracket(buy)
    first.fill(buy, 300, 10.0)
    settle(bus)
    prices(bus, 10.0, 10.5, 10.4)  # T1's best is 10.5: trigger 10.29
    assert emulator.trigger_price("T1") == 10.29
    emulator.detach()
    emulator.close()

    second = Manager(bus)  # a new process: the manager knows nothing; the emulator adopts through it
    again = make_emulator(second, bus, journal)
    restored = again.restore()
    assert sorted(o.client_order_id for o in restored) == ["E1.1", "E1.2", "S1", "T1"]
    assert sorted(second.adopted) == ["E1", "E1.1", "E1.2", "S1", "T1"]
    assert again.trigger_price("T1") == 10.29 and again.trigger_price("S1") == 9.8
    assert leg_ids(again, "E1") == {"E1.1": 300, "E1.2": 300}
    prices(bus, 10.3, 10.29)  # the restored trailing state fires where the first one would have
    assert second.released == [("T1", "market", None, 100)]
    second.clock = at("10:00:00", MONDAY)
    prices(bus, 9.5, day=MONDAY)  # Monday: S1 (a Friday day order) expired; the restored stop-loss leg is active
    assert second.released[1:] == [("E1.2", "market", None, 300)]
    assert second.orders["S1"].status == "expired"
    again.close()


def test_a_restored_order_the_manager_knows_is_its_own(tmp_path: Path, bus: EventBus, manager: Manager):
    journal = tmp_path / "emulator.jsonl"
    emulator = make_emulator(manager, None, journal)
    order = manager.submit(stop("S1", "sell", 10.0))
    emulator.hold(order)
    gone = manager.submit(stop("S2", "sell", 10.0))
    emulator.hold(gone)
    emulator.close()
    gone.move_to("cancelled", None)  # ended at the manager while the emulator was down
    again = make_emulator(manager, None, journal)
    assert again.restore() == [order] and again.held[0] is order
    assert manager.adopted == [] and again.stats["restored_dropped"] == 1
    again.close()


@pytest.mark.parametrize(
    "bad_line",
    [
        b'{"op": "hold", "held": {tru',  # torn
        b'{"op": "hold", "held": {"order": {"client_order_id": "X"}}}',  # fields missing
        b'{"op": "launch"}',  # no such change
        b"[1, 2]",
        b"\xff\xfe\x00garbage",  # not even UTF-8
    ],
)
def test_a_corrupt_journal_line_is_reported_and_the_file_kept_aside(
    tmp_path: Path, bus: EventBus, caplog: pytest.LogCaptureFixture, bad_line: bytes
):
    journal = tmp_path / "emulator.jsonl"
    manager = Manager(bus)
    emulator = make_emulator(manager, None, journal)
    emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    emulator.hold(manager.submit(stop("S2", "buy", 12.0)))
    emulator.close()
    lines = journal.read_bytes().splitlines()
    damaged = b"\n".join([lines[0], bad_line, *lines[1:]]) + b"\n"
    journal.write_bytes(damaged)
    again = make_emulator(Manager(bus), None, journal)
    with caplog.at_level(logging.WARNING, logger="hkrt.emulator"):
        restored = again.restore()
    assert sorted(o.client_order_id for o in restored) == ["S1", "S2"]  # the readable lines
    assert again.stats["journal_corrupt_lines"] == 1 and again.stats["journal_kept_aside"] == 1
    aside = tmp_path / "emulator.jsonl.corrupt"
    assert aside.read_bytes() == damaged  # kept whole, never deleted
    assert any("line 2 cannot be read" in r.getMessage() for r in caplog.records)
    assert all(json.loads(line) for line in journal.read_text().splitlines())  # the journal is whole again
    again.close()


def test_a_journal_that_cannot_be_written_is_a_counted_loss_and_the_order_still_held(
    tmp_path: Path, bus: EventBus, manager: Manager, caplog: pytest.LogCaptureFixture
):
    (tmp_path / "not-a-directory").write_text("")
    emulator = make_emulator(manager, bus, tmp_path / "not-a-directory" / "emulator.jsonl")
    with caplog.at_level(logging.WARNING, logger="hkrt.emulator"):
        emulator.hold(manager.submit(stop("S1", "sell", 10.0)))
    assert emulator.stats["journal_write_errors"] == 1 and "a restart would not see this change" in caplog.text
    prices(bus, 9.9)
    assert manager.released == [("S1", "market", None, 100)]


def test_the_journal_stays_bounded(tmp_path: Path, bus: EventBus, manager: Manager):
    journal = tmp_path / "emulator.jsonl"
    emulator = make_emulator(manager, bus, journal, max_journal_bytes=4000)
    emulator.hold(manager.submit(trailing("T1", "sell", 0.05)))
    climb = [round(10 + 0.01 * i, 2) for i in range(200)]  # 200 ratchets
    prices(bus, *climb)
    assert emulator.stats["ratchets"] == 200 and emulator.stats["journal_compactions"] >= 2
    assert journal.stat().st_size <= 2 * 4000
    emulator.close()
    again = make_emulator(Manager(bus), None, journal)
    again.restore()
    assert again.trigger_price("T1") == 11.94  # 11.99 - 0.05
    again.close()


def test_without_adopt_a_restored_unknown_order_is_a_counted_loss(
    tmp_path: Path, bus: EventBus, caplog: pytest.LogCaptureFixture
):
    class NoAdopt(Manager):
        adopt = None  # type: ignore[assignment]

    journal = tmp_path / "emulator.jsonl"
    emulator = make_emulator(Manager(bus), None, journal)
    emulator.hold(stop("S1", "sell", 10.0))
    emulator.close()
    again = make_emulator(NoAdopt(bus), None, journal)
    with caplog.at_level(logging.WARNING, logger="hkrt.emulator"):
        assert [o.client_order_id for o in again.restore()] == ["S1"]
    assert again.stats["restored_unadopted"] == 1 and "adopt()" in caplog.text
    again.close()


# ------------------------------------------------------------------ properties
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.integers(500, 1500), min_size=1, max_size=40),
    st.sampled_from(["buy", "sell"]),
    st.one_of(st.integers(1, 100).map(lambda cents: cents / 100), st.integers(1, 20).map(lambda p: f"{p}%")),
)
def test_the_trailing_trigger_never_moves_against_the_order(cents: list[int], side: str, trail: float | str):
    manager = Manager()
    emulator = make_emulator(manager, None)
    emulator.hold(manager.submit(trailing("T1", side, trail)))
    yuan, percent = parse_trail(trail)
    best: float | None = None
    previous: float | None = None
    for i, c in enumerate(cents):
        last = c / 100
        emulator.on_spots(SpotBatch.from_spots([spot(f"10:{i // 20:02d}:{i % 20 * 3:02d}", last, 100 * i + 100, 1e4)]))
        best = last if best is None else (min(best, last) if side == "buy" else max(best, last))
        expected = trailing_trigger(best, side == "buy", yuan, percent)
        fires = last >= expected if side == "buy" else last <= expected
        if fires:
            assert manager.released == [("T1", "market", None, 100)]
            return
        trigger = emulator.trigger_price("T1")
        assert trigger == expected
        if previous is not None:
            assert trigger <= previous if side == "buy" else trigger >= previous
        previous = trigger
    assert manager.released == []


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("entry"), st.integers(1, 600)),
        st.tuples(st.just("price"), st.sampled_from([9.0, 9.5, 10.0, 10.5, 11.0, 11.5])),
        st.tuples(st.just("leg_fill"), st.integers(1, 600)),
        st.tuples(st.just("leg_end"), st.sampled_from(["expired", "cancelled", "rejected"])),
        st.tuples(st.just("next_day"), st.just(0)),
    ),
    max_size=30,
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(1, 800), min_size=1, max_size=3), STEPS)
def test_legs_never_sell_more_than_the_entry_bought(first_fills: list[int], steps: list[tuple[str, Any]]):
    with EventBus() as bus:
        manager = Manager(bus)
        emulator = make_emulator(manager, bus)
        buy = manager.submit(entry(shares=2000))
        emulator.attach_bracket(buy)
        for shares in first_fills:  # bought on Friday: the legs work from Monday on
            if buy.remaining:
                manager.fill(buy, min(shares, buy.remaining), 10.0)
        day = MONDAY
        manager.clock = at("09:30:00", day)
        for kind, value in steps:
            if kind == "entry" and buy.remaining:
                manager.fill(buy, min(value, buy.remaining), 10.0)
            elif kind == "price":
                prices(bus, value, day=day)
            elif kind == "next_day":
                day = CALENDAR.next_trading_day(day)
                manager.clock = at("09:30:00", day)
            else:
                working = [c for c in manager.children if c.triggered and not c.is_final]
                if working and kind == "leg_fill":
                    manager.fill(working[0], min(value, working[0].remaining), 10.0)
                elif working and value in TRANSITIONS[working[0].status]:
                    manager.end(working[0], value)
            settle(bus)
            left = buy.filled_shares - sum(c.filled_shares for c in manager.children)
            assert left >= 0  # the legs never sold more than the entry bought
            for order_type in ("limit", "stop"):  # either role alone could sell all it holds: never more than is left
                assert sum(c.remaining for c in manager.children if c.order_type == order_type) <= left
            # what works at the broker at once (released, not ended) never exceeds what is left
            assert sum(c.remaining for c in manager.children if c.triggered) <= left
