"""The strategy runtime's rules, without a feed: lot rounding, timers, the book (T+1), orders."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hkrt
from hkrt.core.calendar import TradingCalendar
from hkrt.strategy import lot_rule, round_buy, round_sell
from hkrt.strategy.timers import TimerSet, parse_interval, parse_time

FRIDAY = dt.date(2026, 11, 20)
MONDAY = dt.date(2026, 11, 23)


# ----------------------------------------------------------------------------- lots
@pytest.mark.parametrize(
    ("symbol", "num", "want"),
    [
        ("SH600000", 250, 200),  # main board: whole 100-share lots
        ("SH600000", 99, 0),
        ("SZ000001", 1000, 1000),
        ("SZ300001", 150.7, 100),  # ChiNext: lots of 100 too
        ("SH688001", 199, 0),  # STAR: at least 200 ...
        ("SH688001", 200, 200),
        ("SH688001", 201, 201),  # ... then single shares
        ("SH689009", 2677.9, 2677),
        ("BJ920001", 99, 0),  # Beijing: at least 100, then single shares
        ("BJ920001", 101, 101),
        ("SH600000", -5, 0),
    ],
)
def test_buy_rounding(symbol: str, num: float, want: int) -> None:
    assert round_buy(symbol, num) == want


@pytest.mark.parametrize(
    ("symbol", "num", "held", "want"),
    [
        ("SH600000", 250, 1000, 200),
        ("SH600000", 150, 150, 150),  # the whole holding, odd lot included
        ("SH600000", 500, 150, 150),  # never more than held
        ("SH600000", 50, 150, 0),  # a part of a holding below one lot
        ("SH688001", 150, 350, 0),  # STAR: below 200 only as the whole holding
        ("SH688001", 201, 350, 201),
        ("SH688001", 350, 350, 350),
        ("BJ920001", 120, 300, 120),
        ("SH600000", 100, 0, 0),
    ],
)
def test_sell_rounding(symbol: str, num: float, held: float, want: int) -> None:
    assert round_sell(symbol, num, held) == want


SYMBOLS = ["SH600000", "SZ000001", "SZ300750", "SH688001", "BJ920001"]


@given(st.sampled_from(SYMBOLS), st.floats(0, 1e6))
def test_buy_rounding_is_the_largest_valid_quantity(symbol: str, num: float) -> None:
    rule = lot_rule(symbol)
    got = round_buy(symbol, num)
    assert 0 <= got <= num + 1e-6
    if got:
        assert got >= rule.minimum and (got - rule.minimum) % rule.step == 0
    nxt = rule.minimum if got == 0 else got + rule.step
    assert nxt > num  # the next valid quantity would exceed the request


@given(st.sampled_from(SYMBOLS), st.integers(0, 100_000), st.integers(0, 100_000))
def test_sell_rounding_never_exceeds_the_request_or_the_holding(symbol: str, num: int, held: int) -> None:
    rule = lot_rule(symbol)
    got = round_sell(symbol, num, held)
    assert 0 <= got <= min(num, held)
    if got and got != held:
        assert got >= rule.minimum and (got - rule.minimum) % rule.step == 0


# ---------------------------------------------------------------------------- timers
def readings(day: dt.date, start: str, end: str, step: float = 3.0) -> list[dt.datetime]:
    t, stop = dt.datetime.combine(day, parse_time(start)), dt.datetime.combine(day, parse_time(end))
    out = []
    while t <= stop:
        out.append(t)
        t += dt.timedelta(seconds=step)
    return out


def fire_times(timers: TimerSet, clock: list[dt.datetime]) -> list[tuple[dt.datetime, str, dt.datetime]]:
    fired = []
    for now in clock:
        for instant, timer in timers.advance(now):
            fired.append((now, timer.name, instant))
    return fired


def test_run_daily_at_fires_once_a_trading_day_at_the_first_reading_at_or_after_its_time() -> None:
    timers = TimerSet(TradingCalendar.china())
    timers.add(lambda: None, at=parse_time("14:50"))
    clock = readings(FRIDAY, "14:49:50", "14:50:10", 7)  # 14:49:50, 14:49:57, 14:50:04, 14:50:11? no: <= 14:50:10
    fired = fire_times(timers, clock)
    assert [(f[0].time(), f[2].time()) for f in fired] == [(dt.time(14, 50, 4), dt.time(14, 50))]
    # Saturday and Sunday are not trading days; Monday fires again
    weekend = [dt.datetime(2026, 11, 21, 14, 49), dt.datetime(2026, 11, 21, 14, 51), dt.datetime(2026, 11, 22, 15)]
    assert fire_times(timers, weekend) == []
    monday = fire_times(timers, [dt.datetime(2026, 11, 23, 14, 49, 59), dt.datetime(2026, 11, 23, 14, 50)])
    assert [f[2] for f in monday] == [dt.datetime(2026, 11, 23, 14, 50)]


def test_a_timer_is_not_fired_late_when_the_strategy_started_after_it() -> None:
    timers = TimerSet(TradingCalendar.china())
    timers.add(lambda: None, at=parse_time("14:50"))
    assert fire_times(timers, readings(FRIDAY, "14:55", "15:00")) == []


def test_instants_of_an_earlier_day_are_missed_not_fired() -> None:
    timers = TimerSet(TradingCalendar.china())
    timer = timers.add(lambda: None, at=parse_time("14:50"))
    # the feed stops at 10:00 on Friday and comes back on Monday at 09:30
    fired = fire_times(timers, [dt.datetime.combine(FRIDAY, dt.time(10)), dt.datetime.combine(MONDAY, dt.time(9, 30))])
    assert fired == [] and timer.missed == 1


def test_run_daily_fires_from_each_session_open_until_its_close() -> None:
    timers = TimerSet(TradingCalendar.china())
    timers.add(lambda: None, interval=parse_interval("30min"))
    fired = fire_times(timers, readings(FRIDAY, "09:15", "15:00:03"))
    assert [f[2].strftime("%H:%M") for f in fired] == [
        "09:30", "10:00", "10:30", "11:00", "13:00", "13:30", "14:00", "14:30",
    ]  # fmt: skip
    # each fired at the first 3-second reading at or after its instant
    assert all(f[0] - f[2] < dt.timedelta(seconds=3) for f in fired)


def test_timers_due_together_fire_in_time_then_insertion_order() -> None:
    timers = TimerSet(TradingCalendar.china())
    timers.add(lambda: None, at=parse_time("10:00:01"))
    a = timers.add(lambda: None, at=parse_time("10:00"))
    b = timers.add(lambda: None, interval=dt.timedelta(minutes=30))
    a.name, b.name = "a", "b"
    clock = [dt.datetime.combine(FRIDAY, dt.time(9, 59)), dt.datetime.combine(FRIDAY, dt.time(10, 0, 5))]
    fired = fire_times(timers, clock)
    assert [f[1] for f in fired][:2] == ["a", "b"]
    assert [f[2].time() for f in fired] == [dt.time(10), dt.time(10), dt.time(10, 0, 1)]


def test_the_clock_never_goes_back() -> None:
    timers = TimerSet(TradingCalendar.china())
    timers.add(lambda: None, at=parse_time("10:00"))
    t = dt.datetime.combine(FRIDAY, dt.time(10, 0, 3))
    assert fire_times(timers, [t - dt.timedelta(minutes=1), t, t - dt.timedelta(seconds=30), t]) != []
    assert timers.clock == t


@pytest.mark.parametrize(("text", "seconds"), [("5min", 300), ("30s", 30), ("1h", 3600), (90, 90), ("1.5min", 90)])
def test_intervals(text: object, seconds: float) -> None:
    assert parse_interval(text).total_seconds() == seconds  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["soon", "0s", "-5min", ""])
def test_bad_intervals_and_times_are_clear(bad: str) -> None:
    with pytest.raises(ValueError, match="interval"):
        parse_interval(bad)
    with pytest.raises(ValueError, match="not a time of day"):
        parse_time("25:99")


# ------------------------------------------------------------------ orders and book
def make(cash: float = 100_000.0) -> tuple[hkrt.Strategy, hkrt.TestOrderBroker]:
    broker = hkrt.TestOrderBroker(cash=cash)  # instant fills, no fees: the book charges none either (fees=0)
    return hkrt.Strategy(["SH600000", "SH688001", "BJ920001"], ["MIN"], brokers=[broker], cash=cash, fees=0), broker


def test_order_rounds_to_lots_and_limits_buys_to_cash() -> None:
    s, broker = make(100_000)
    t = s.order("600000.SH", 1234, price=10.0)
    assert (t.side, t.shares, t.ok, t.results[0].status) == ("buy", 1200, True, hkrt.OrderStatus.Filled)
    t = s.order("sh688001", 250, price=20.0)
    assert t.shares == 250
    # cash left: 100000 - 12000 - 5000 = 83000; 9000 shares of BJ920001 at 10 would cost 90000
    t = s.order("BJ920001", 9000, price=10.0)
    assert t.shares == 8300 and s.cash == pytest.approx(0.0)
    assert broker.cash == pytest.approx(0.0)
    assert {k: p.shares for k, p in s.positions.items()} == {"SH600000": 1200, "SH688001": 250, "BJ920001": 8300}


def test_sells_follow_t_plus_1_and_the_broker_gets_the_same_order() -> None:
    s, broker = make(100_000)
    s._advance_clock(dt.datetime.combine(FRIDAY, dt.time(10)))
    s.order("SH600000", 1000, price=10.0)
    refused = s.order("SH600000", -500, price=10.5)
    assert refused.shares == 0 and "T+1" in refused.error and not refused.results
    s._advance_clock(dt.datetime.combine(MONDAY, dt.time(9, 31)))
    sold = s.order("SH600000", -550, price=11.0)
    assert sold.shares == 500 and sold.ok
    assert s.position("SH600000") == 500
    assert s.cash == pytest.approx(100_000 - 10_000 + 5_500)
    rec = broker.records[-1]
    assert (rec.side.name, rec.market, rec.code, rec.num, rec.price) == ("Sell", "SH", "600000", 500.0, 11.0)
    assert rec.datetime == dt.datetime.combine(MONDAY, dt.time(9, 31))


def test_order_value_and_targets() -> None:
    s, _ = make(1_000_000)
    assert s.order_value("SH600000", 50_000, price=12.34).shares == 4000  # 4051.8 -> 4000
    assert s.order_target("SH600000", 4000, price=12.34) is None
    s._advance_clock(dt.datetime.combine(MONDAY, dt.time(10)))
    t = s.order_target_value("SH600000", 20_000, price=10.0)  # hold 4000, want 2000
    assert t is not None and (t.side, t.shares) == ("sell", 2000)


def test_refused_orders_are_recorded_and_never_sent() -> None:
    s, broker = make(1_000)
    assert s.order("SH600000", 100).error.startswith("no valid price")  # no feed: no price known
    assert s.order("SH600000", 100, price=50.0).shares == 0  # 1000 yuan buys 20 shares: below a lot
    assert broker.records == []
    orders = s.orders
    assert list(orders["status"]) == ["rejected", "rejected"] and list(orders["broker"]) == ["(strategy)"] * 2
    assert orders["reason"].str.startswith(("no valid price", "cash:")).all()
    with pytest.raises(ValueError):
        s.order("XX123", 100, price=1.0)


def test_a_failing_broker_is_recorded_and_leaves_the_book_alone() -> None:
    class Down(hkrt.OrderBrokerBase):
        def __init__(self) -> None:
            super().__init__("down")

        def _buy(self, *args: object) -> None:
            raise ConnectionError("broker unreachable")

        _sell = _buy

        def _get_asset_info(self) -> str:
            return ""

    s = hkrt.Strategy(["SH600000"], brokers=[Down()], cash=10_000)
    t = s.order("SH600000", 100, price=10.0)
    assert not t.ok and t.results[0].status == hkrt.OrderStatus.Failed and "unreachable" in t.results[0].error
    assert s.cash == 10_000 and s.positions == {}
    assert s.orders.iloc[0][["broker", "status"]].tolist() == ["down", "rejected"]
    assert s.orders.iloc[0]["reason"] == "Failed: ConnectionError: broker unreachable"


def test_secondary_brokers_get_every_order_the_primary_decides_the_book() -> None:
    primary, mirror = hkrt.TestOrderBroker(cash=5_000), hkrt.TestOrderBroker(cash=0, name="mirror")
    s = hkrt.Strategy(["SH600000"], brokers=[primary, mirror], cash=5_000)
    t = s.order("SH600000", 300, price=10.0)
    assert [r.status.name for r in t.results] == ["Filled", "Rejected"]  # the mirror has no cash
    assert s.position("SH600000") == 300
    assert list(s.orders["broker"]) == ["TestOrderBroker"]  # one row per order: the primary's
    legs = s.broker_orders
    assert legs[["broker", "primary", "result"]].values.tolist() == [
        ["TestOrderBroker", True, "Filled"],
        ["mirror", False, "Rejected"],
    ]


def test_construction_errors_are_clear() -> None:
    with pytest.raises(ValueError, match="codes is empty"):
        hkrt.Strategy([])
    with pytest.raises(ValueError, match="MIN7"):
        hkrt.Strategy(["SH600000"], ["MIN7"])
    s = hkrt.Strategy(["SH600000"], ["MIN5"])
    with pytest.raises(ValueError, match="not among the strategy's ktypes"):
        s.on_bar(ktypes=["DAY"])(lambda *a: None)
    with pytest.raises(TypeError, match="time of day is missing"):
        s.run_daily_at(lambda: None)


# ------------------------------------------------------------- live wall clock
def test_live_timers_follow_the_wall_clock_only_while_todays_feed_is_silent(monkeypatch) -> None:
    from hkrt.strategy import strategy as module

    # the feed falls silent before lunch and stays so into the afternoon (an order at lunch itself would
    # be refused by the risk engine's trading-hours check: the exchange takes none then)
    wall = dt.datetime.combine(FRIDAY, dt.time(13, 5))
    monkeypatch.setattr(module, "_china_now", lambda: wall)
    s, broker = make(100_000)
    fired: list[dt.datetime | None] = []

    @s.run_daily_at("13:01")
    def afternoon() -> None:
        fired.append(s.now)
        s.order("SH600000", 100, price=10.0)

    s._advance_clock(dt.datetime.combine(FRIDAY, dt.time(11, 29, 57)))  # today's feed, then silence
    s._wall_tick()
    assert fired == []  # the feed spoke less than WALL_CLOCK_AFTER seconds ago
    s._last_data -= module.WALL_CLOCK_AFTER + 1
    s._wall_tick()
    assert fired == [wall]  # fired by the wall clock, and its order dated by it
    assert broker.records[-1].datetime == wall
    assert s.now == dt.datetime.combine(FRIDAY, dt.time(11, 29, 57))  # the data clock did not move


def test_a_feed_of_another_day_never_lets_the_wall_clock_date_orders(monkeypatch) -> None:
    from hkrt.strategy import strategy as module

    monkeypatch.setattr(module, "_china_now", lambda: dt.datetime.combine(MONDAY, dt.time(14, 55)))
    s, _ = make(100_000)
    fired: list[object] = []
    s.run_daily_at(lambda: fired.append(s.now), "14:50")
    s._advance_clock(dt.datetime.combine(FRIDAY, dt.time(14, 0)))  # an old day, replayed by mistake
    s._last_data -= module.WALL_CLOCK_AFTER + 1
    s._wall_tick()
    assert fired == [] and s.now == dt.datetime.combine(FRIDAY, dt.time(14, 0))
    s._advance_clock(dt.datetime.combine(FRIDAY, dt.time(14, 50)))
    assert fired == [dt.datetime.combine(FRIDAY, dt.time(14, 50))]  # its own time: dated in the past
