"""Every order type and status transition on the paper broker, over two simulated days and over
their recording replayed: the same orders and the same fills both ways.

Real parts throughout: an in-process spot server publishing the simulated market on nng, the
strategy's agent, the order manager, the order emulator and the ``PaperBroker`` matching against
the spots.  The strategy below places its orders from timers at fixed market times; the prices it
uses were read off the simulated market (``SimMarket`` is deterministic), and
``test_the_simulated_days_make_every_case_certain`` checks those readings, so each case is certain.

Day 1 (Thursday) buys: what it buys becomes sellable on day 2 (Friday), where the stop, the
stop-limit, the trailing stop and the bracket's legs sell it (T+1).  The simulated run is
``run_sim`` twice with the same strategy (its book, broker and emulator carry over the night); the
replay is one journal holding both days.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import hkrt
from hkrt.adapters.paper.execution import PaperBroker
from hkrt.bus import EventBus
from hkrt.feed.server import SpotServer
from hkrt.feed.transport import SpotPublisher
from hkrt.fetcher.sim import SimConfig, SimMarket
from hkrt.strategy import run_replay, run_sim
from hkrt.strategy.order import Order
from hkrt.strategy.order_manager import REFUSED_BY_STRATEGY

DAY1 = dt.date(2026, 11, 19)  # Thursday
DAY2 = dt.date(2026, 11, 20)  # Friday, the next trading day
SYMBOLS = 5  # SH600000, SH600001, SZ000001, SZ000002, SZ300001
SPEED = 50_000.0
CASH = 1_000_000.0

# Each case's symbol and prices, read off the simulated days (checked by the first test).
MARKET_BUY = ("SH600000", 1000)  # day 1 09:35: takes the asks on arrival, the rest over later spots
RESTING_LIMIT = ("SZ000002", 300, 5.60)  # day 1: below the 09:35 price 5.70; the day's low 5.57 trades through
NEVER_FILLS = ("SZ000002", 1000, 5.20)  # day 1: inside the limits 5.14..6.28, below the day's low: expires
IOC = ("SZ000001", 5000, 19.63)  # day 1: at the fifth ask; the book shows 4,500, a quarter of it may fill
FOK = ("SZ300001", 5000, 12.28)  # day 1: the same, all or nothing: cancelled
TO_CANCEL = ("SZ300001", 500, 11.50)  # day 1: far below the market; the strategy cancels it at 09:40
OFF_TICK = ("SZ000002", 100, 5.705)
OUTSIDE_LIMITS = ("SZ000002", 100, 6.50)  # day 1's limit up is 6.28
BRACKET = ("SH600001", 500, 49.50, 46.00)  # day 1 market entry; day 2: never 49.50, 46.00 at 09:38:57
T1_STOP = ("SH600000", 100, 75.00)  # day 1 10:00: a stop sell above the market fires at once -> T+1 at the broker
STOP = ("SH600000", 68.00)  # day 2: 69.28 at 09:35, first at or below 68.00 at 11:29:33
STOP_LIMIT = ("SZ000002", 56.20, 56.10)  # day 2: 56.28 at 09:35, 56.19 at 09:36:21
TRAIL = ("SZ000001", 1.00)  # day 2: falls 2.04 from a high after 09:35

CODES = ["SH600000", "SH600001", "SZ000001", "SZ000002", "SZ300001"]


def sim_closes(day: dt.date) -> dict[str, list[tuple[dt.datetime, float]]]:
    """symbol -> [(time, last price)] of a simulated day, from the market itself."""
    out: dict[str, list[tuple[dt.datetime, float]]] = {}
    market = SimMarket(day, SimConfig(symbols=SYMBOLS))
    for t in market.times():
        snap = market.snapshot(t)
        for sym, close in zip(snap["symbol"], snap["close"], strict=True):
            out.setdefault(sym.decode(), []).append((t, float(close)))
    return out


def at(day: dt.date, hhmm: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time.fromisoformat(hhmm))


class LifecycleStrategy:
    """The test's strategy: its orders by case name, and what on_order / on_trade saw."""

    def __init__(self) -> None:
        s = self.strategy = hkrt.Strategy(CODES, ktypes=["MIN"], cash=CASH, name="e2e")
        self.cases: dict[str, Order] = {}
        self.seen_orders: list[tuple[str, str, int]] = []  # (client id, status, filled) per on_order call
        self.seen_trades: list[tuple[str, str, int, float]] = []  # (client id, trade id, shares, price)
        self.cancel_answer: bool | None = None
        s.on_order(self._on_order)
        s.on_trade(self._on_trade)
        s.run_daily_at(self._open, "09:35")
        s.run_daily_at(self._later, "09:40")
        s.run_daily_at(self._ten, "10:00")

    def _on_order(self, order: Order) -> None:
        self.seen_orders.append((order.client_order_id, order.status, order.filled_shares))

    def _on_trade(self, order: Order, trade: Any) -> None:
        self.seen_trades.append((order.client_order_id, trade.trade_id, trade.shares, trade.price))

    def _open(self) -> None:
        s, now = self.strategy, self.strategy.now
        assert now is not None
        if now.date() == DAY1:
            sym, n = MARKET_BUY
            self.cases["market"] = s.order(sym, n)
            sym, n, px = RESTING_LIMIT
            self.cases["resting_limit"] = s.order(sym, n, px, order_type="limit")
            sym, n, px = NEVER_FILLS
            self.cases["never_fills"] = s.order(sym, n, px, order_type="limit")
            sym, n, px = IOC
            self.cases["ioc"] = s.order(sym, n, px, order_type="limit", tif="ioc")
            sym, n, px = FOK
            self.cases["fok"] = s.order(sym, n, px, order_type="limit", tif="fok")
            sym, n, px = TO_CANCEL
            self.cases["to_cancel"] = s.order(sym, n, px, order_type="limit")
            sym, n, px = OFF_TICK
            self.cases["off_tick"] = s.order(sym, n, px, order_type="limit")
            sym, n, px = OUTSIDE_LIMITS
            self.cases["outside_limits"] = s.order(sym, n, px, order_type="limit")
            sym, n, tp, sl = BRACKET
            self.cases["bracket"] = s.order(sym, n, take_profit=tp, stop_loss=sl)
        else:  # day 2: yesterday's shares are sellable
            sym, stop = STOP
            self.cases["stop"] = s.order(sym, -s.position(sym), order_type="stop", stop_price=stop)
            sym, stop, limit = STOP_LIMIT
            self.cases["stop_limit"] = s.order(sym, -s.position(sym), limit, order_type="stop_limit", stop_price=stop)
            sym, trail = TRAIL
            self.cases["trailing_stop"] = s.order(sym, -s.position(sym), order_type="trailing_stop", trail=trail)

    def _later(self) -> None:
        if self.strategy.now is not None and self.strategy.now.date() == DAY1:
            self.cancel_answer = self.strategy.cancel(self.cases["to_cancel"])

    def _ten(self) -> None:
        s = self.strategy
        if s.now is not None and s.now.date() == DAY1:
            sym, n, stop = T1_STOP
            self.cases["broker_rejects"] = s.order(sym, -n, order_type="stop", stop_price=stop)


def statuses(order: Order) -> list[str]:
    return [status for _, status, _ in order.history]


def record_days(path: Path, days: list[dt.date]) -> None:
    """A spot server's journal (--record) of whole simulated days, published to nobody."""
    with SpotPublisher(f"inproc://e2e-{secrets.token_hex(6)}", record=path, simulated_time=True,
                       heartbeat_interval=0) as publisher:  # fmt: skip
        server = SpotServer(publisher)
        for day in days:
            server.run_sim(SimMarket(day, SimConfig(symbols=SYMBOLS)), speed=1e9)


def comparable_orders(strategy: hkrt.Strategy) -> list[dict[str, Any]]:
    """The orders without their client ids' run tag (the parent named by its index)."""
    orders = strategy.order_manager.orders
    index = {o.client_order_id: i for i, o in enumerate(orders)}
    rows = []
    for o in orders:
        row = {k: v for k, v in vars(o).items() if k not in ("client_order_id", "parent_id", "results", "history")}
        row["parent"] = index.get(o.parent_id)
        row["history"] = o.history
        rows.append(row)
    return rows


def fills(strategy: hkrt.Strategy) -> list[tuple[Any, ...]]:
    return [(t.datetime, t.symbol, t.side, t.price, t.shares, t.fees) for t in strategy.book.trades]


@pytest.fixture(scope="module")
def simulated() -> Iterator[LifecycleStrategy]:
    run = LifecycleStrategy()
    for day in (DAY1, DAY2):
        report = run_sim(run.strategy, day, symbols=SYMBOLS, speed=SPEED, handle_signals=False)
        assert report.gaps == 0 and report.day_closed, report
    yield run


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LifecycleStrategy]:
    journal = tmp_path_factory.mktemp("journal") / "days.hkj"
    record_days(journal, [DAY1, DAY2])
    run = LifecycleStrategy()
    report = run_replay(run.strategy, journal, handle_signals=False)
    assert report.gaps == 0 and report.day_closed, report
    yield run


def test_the_simulated_days_make_every_case_certain() -> None:
    one, two = sim_closes(DAY1), sim_closes(DAY2)

    def price(days: dict[str, list[tuple[dt.datetime, float]]], sym: str, when: dt.datetime) -> float:
        return next(c for t, c in days[sym] if t == when)

    def after(days: dict[str, list[tuple[dt.datetime, float]]], sym: str, when: dt.datetime) -> list[float]:
        return [c for t, c in days[sym] if t > when]

    open1, open2 = at(DAY1, "09:35"), at(DAY2, "09:35")
    sym, _, limit = RESTING_LIMIT
    assert price(one, sym, open1) > limit >= min(after(one, sym, open1))
    sym, _, limit = NEVER_FILLS
    assert min(after(one, sym, open1)) > limit
    sym, _, limit = TO_CANCEL
    assert min(after(one, sym, open1)) > limit
    sym, _, stop = T1_STOP
    assert price(one, sym, at(DAY1, "10:00")) < stop  # a sell stop above the market fires on the next spot
    sym, _, take_profit, stop_loss = BRACKET
    day2 = [c for t, c in two[sym] if c > 0]
    assert day2[0] > stop_loss and max(day2) < take_profit and min(day2) <= stop_loss
    sym, stop = STOP
    assert price(two, sym, open2) > stop >= min(after(two, sym, open2))
    sym, stop, _ = STOP_LIMIT
    assert price(two, sym, open2) > stop >= min(after(two, sym, open2))
    sym, trail = TRAIL
    high, drop = 0.0, 0.0
    for c in [price(two, sym, open2), *after(two, sym, open2)]:
        high, drop = max(high, c), max(drop, high - c)
    assert drop > trail


def first_at_or_below(day: dt.date, sym: str, price: float, after: dt.datetime) -> dt.datetime:
    """The first simulated spot after ``after`` with a trade at or below ``price`` (the auction's
    indicative prices before 09:25 are no trades)."""
    return next(t for t, c in sim_closes(day)[sym] if t > after and t.time() >= dt.time(9, 25) and 0 < c <= price)


def test_every_order_type_and_transition_on_the_paper_broker(simulated: LifecycleStrategy) -> None:
    s, cases = simulated.strategy, simulated.cases
    broker = s.brokers[0]
    assert isinstance(broker, PaperBroker)
    # a market buy: some shares at once from the asks, the rest over later spots
    market = cases["market"]
    got = statuses(market)
    assert got[:3] == ["submitted", "accepted", "partially_filled"] and got[-1] == "filled"
    assert len({t.datetime for t in s.book.trades if t.client_order_id == market.client_order_id}) > 1
    # a limit below the market rests, then fills at its limit when the price trades through it
    resting = cases["resting_limit"]
    assert statuses(resting) == ["submitted", "accepted", "filled"] and resting.average_price <= RESTING_LIMIT[2]
    assert resting.updated == first_at_or_below(DAY1, RESTING_LIMIT[0], RESTING_LIMIT[2], at(DAY1, "09:35"))
    never = cases["never_fills"]
    assert statuses(never) == ["submitted", "accepted", "expired"] and never.updated == at(DAY1, "15:00")
    ioc = cases["ioc"]
    assert statuses(ioc)[:3] == ["submitted", "accepted", "partially_filled"] and statuses(ioc)[-1] == "cancelled"
    # a quarter of each of the five ask levels 700..1100 of SZ000001 (the sim's book)
    assert ioc.filled_shares == sum(n // 4 for n in (700, 800, 900, 1000, 1100)) and ioc.reason.startswith("ioc:")
    assert statuses(cases["fok"]) == ["submitted", "accepted", "cancelled"] and cases["fok"].filled_shares == 0
    assert cases["fok"].reason.startswith("fok:")
    assert simulated.cancel_answer is True
    to_cancel = cases["to_cancel"]
    assert statuses(to_cancel) == ["submitted", "accepted", "cancelled"] and to_cancel.updated == at(DAY1, "09:40")
    for name in ("off_tick", "outside_limits"):  # pre-trade: refused, never sent
        o = cases[name]
        assert statuses(o) == ["submitted", "rejected"] and o.broker_order_id == "" and not o.results, o
    assert "off the 0.01 yuan tick" in cases["off_tick"].reason
    assert "limits" in cases["outside_limits"].reason
    # the broker's own refusal: a stop sell of shares bought today fires, and the counter says T+1
    rejected = cases["broker_rejects"]
    assert statuses(rejected) == ["submitted", "rejected"] and rejected.triggered
    assert "insufficient shares" in rejected.reason and "next trading day" in rejected.reason
    # day 2: the stop, the stop-limit and the trailing stop sell yesterday's shares
    stop = cases["stop"]
    fired = first_at_or_below(DAY2, STOP[0], STOP[1], at(DAY2, "09:35"))
    assert statuses(stop)[:2] == ["submitted", "accepted"] and stop.status == "filled"
    # (an emulated order goes out dated by the spot that fired it, not by the market clock, which
    # moves only at the end of that spot's cycle)
    assert fired == stop.history[1][0] and stop.filled_shares == MARKET_BUY[1]
    stop_limit = cases["stop_limit"]
    assert stop_limit.status == "filled" and stop_limit.average_price >= STOP_LIMIT[2]
    fired = first_at_or_below(DAY2, STOP_LIMIT[0], STOP_LIMIT[1], at(DAY2, "09:35"))
    assert stop_limit.history[1][0] == fired
    trailing = cases["trailing_stop"]
    assert trailing.status == "filled" and trailing.filled_shares == ioc.filled_shares and trailing.triggered
    assert s.positions == {}
    # the bracket: legs made as the entry filled, active on day 2; the stop-loss sold, the take-profit cancelled
    entry = cases["bracket"]
    legs = [o for o in s.order_manager.orders if o.parent_id == entry.client_order_id]
    assert entry.status == "filled" and [(leg.order_type, leg.shares) for leg in legs] == [
        ("limit", 500),
        ("stop", 500),
    ]
    take_profit, stop_loss = legs
    assert stop_loss.status == "filled" and take_profit.status == "cancelled"
    assert take_profit.reason.startswith("one cancels the other"), take_profit.reason
    fired = first_at_or_below(DAY2, BRACKET[0], BRACKET[3], at(DAY2, "09:00"))  # not an auction price
    assert stop_loss.history[1][0] == fired
    # one cancels the other: the take-profit working at the broker is cancelled first, then the stop-loss sells
    assert take_profit.history[-1][0] <= stop_loss.history[1][0]
    # on_order saw every status change of every order, on_trade every fill
    for o in s.order_manager.orders:
        seen = [status for cid, status, _ in simulated.seen_orders if cid == o.client_order_id]
        # an order refused before sending was never "submitted" anywhere: its one event says rejected
        expected = statuses(o)[1:] if o.broker == REFUSED_BY_STRATEGY else statuses(o)
        assert seen == expected, (o, seen)
    assert sorted(t[1] for t in simulated.seen_trades) == sorted(t.trade_id for t in s.book.trades)
    # the money: cash = initial - buys - fees + sells, in the book and at the broker
    buys = sum(t.amount for t in s.book.trades if t.side == "buy")
    sells = sum(t.amount for t in s.book.trades if t.side == "sell")
    fees = sum(t.fees for t in s.book.trades)
    assert fees == pytest.approx(sum(o.fees for o in s.order_manager.orders))
    assert s.cash == pytest.approx(CASH - buys - fees + sells, abs=0.01)
    assert broker.cash == pytest.approx(s.cash, abs=0.01)


def test_a_replay_of_the_recorded_days_gives_the_same_orders_and_fills(
    simulated: LifecycleStrategy, replayed: LifecycleStrategy
) -> None:
    sim, rep = comparable_orders(simulated.strategy), comparable_orders(replayed.strategy)
    for a, b in zip(sim, rep, strict=False):
        assert a == b
    assert len(sim) == len(rep)
    assert fills(simulated.strategy) == fills(replayed.strategy)
    assert replayed.strategy.cash == simulated.strategy.cash


class _Spot:
    pass


class _Report:
    pass


def test_an_event_a_handler_publishes_is_dispatched_before_those_queued_meanwhile() -> None:
    """The bus's causal order that makes a replay run as the live day did: a broker's report on an
    order placed while handling a spot reaches the order manager before the next spot, however far
    the feed's thread had queued ahead (before the fix, it went behind them)."""
    seen: list[str] = []
    handling = threading.Event()
    queued = threading.Event()
    with EventBus() as bus:

        def on_spot(event: _Spot) -> None:
            seen.append("spot")
            if len(seen) == 1:
                handling.set()
                assert queued.wait(5)  # the feed queued its next spot meanwhile
                bus.publish(_Report())

        bus.subscribe(_Spot, on_spot)
        bus.subscribe(_Report, lambda event: seen.append("report"))
        bus.publish(_Spot())
        assert handling.wait(5)
        bus.publish(_Spot())
        queued.set()
        assert bus.wait_idle(5)
    assert seen == ["spot", "report", "spot"]
